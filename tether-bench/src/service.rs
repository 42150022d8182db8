//! What the servers serve: the tether service (written with
//! `#[tether::expose]`, as a user would) and the tarpc peer service.

use tether::{CallContext, LocalFile, NetRef, Value};

/// The root object of every benchmark connection.
#[derive(Clone, Default)]
pub struct Bench;

/// The object `make` hands out: eight bytes of its own.
pub struct Small {
    n: i64,
}

#[tether::expose(name = "Small")]
impl Small {
    /// Its number.
    #[method]
    fn get(&self) -> i64 {
        self.n
    }
}

/// A step of the pipelining workload's chains: `counter(5).next().next().value()`.
pub struct Counter {
    n: i64,
}

#[tether::expose(name = "Counter")]
impl Counter {
    /// A new counter one higher.
    #[method]
    fn next(&self) -> NetRef {
        NetRef::new(Counter { n: self.n + 1 })
    }

    /// Its number.
    #[method]
    fn value(&self) -> i64 {
        self.n
    }
}

/// What one `Small` is, without tether's bookkeeping around it.
pub const SMALL_SIZE: usize = std::mem::size_of::<Small>();

#[tether::expose(name = "Bench")]
impl Bench {
    /// The null call: no arguments, an int back.
    #[method]
    fn null(&self) -> i64 {
        42
    }

    /// Echo a value (the payload workload sends `Value::Bytes`).
    #[method]
    fn echo(&self, data: Value) -> Value {
        data
    }

    /// Call `cb(1)` once, then return what it returned.
    #[method]
    async fn call_back(&self, cb: NetRef) -> tether::Result<i64> {
        i64::try_from(cb.call((1,)).await?)
    }

    /// A new object per call (the netref workload drops it at once).
    #[method]
    fn make(&self) -> NetRef {
        NetRef::new(Small { n: 7 })
    }

    /// `n` new objects in one reply (to build a million quickly).
    #[method]
    fn make_many(&self, n: i64) -> Vec<NetRef> {
        (0..n).map(|n| NetRef::new(Small { n })).collect()
    }

    /// How many of our objects the caller's connection holds.
    #[method]
    fn exported(&self, cx: &CallContext) -> i64 {
        cx.connection().map_or(-1, |c| c.stats().exported as i64)
    }

    /// Live heap bytes of this process (counted only in the memory server).
    #[method]
    fn heap(&self) -> i64 {
        crate::sys::heap_live()
    }

    /// Allocations and bytes allocated by this process so far (counted only
    /// in the memory server).
    #[method]
    fn allocs(&self) -> Vec<i64> {
        let (n, bytes) = crate::sys::allocations();
        vec![n as i64, bytes as i64]
    }

    /// A counter at `start`, the first step of the pipelining workload's
    /// chains.
    #[method]
    fn counter(&self, start: i64) -> NetRef {
        NetRef::new(Counter { n: start })
    }

    /// Open a file of ours with a Python mode string (`"rb"`, `"r"`,
    /// `"wb"`, ...) and hand it out by reference.
    #[method]
    async fn open(&self, path: String, mode: String) -> tether::Result<NetRef> {
        Ok(NetRef::new(LocalFile::open_with(&path, &mode).await?))
    }
}

/// The tarpc peer: the same null call.
#[tarpc::service]
pub trait Peer {
    /// No arguments, an int back.
    async fn null() -> i64;
}

/// tarpc's implementation of [`Peer`].
#[derive(Clone)]
pub struct PeerImpl;

impl Peer for PeerImpl {
    async fn null(self, _: tarpc::context::Context) -> i64 {
        42
    }
}
