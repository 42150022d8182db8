//! Shared pieces of the integration tests: a test service and ways to
//! connect to it (in memory and over TCP), and raw wire bytes ([`wire`]).
#![allow(dead_code)]

pub mod faults;
pub mod nats;
#[cfg(feature = "nats")]
pub mod nats_client;
pub mod node;
pub mod python;
pub mod wire;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::{
    Args, BoxFuture, Builder, CallContext, Connection, Error, Member, NetRef, Object, Result, Value,
};

/// What a test can observe of the service from outside.
#[derive(Default)]
pub struct Probe {
    /// `slow` calls that started.
    pub started: AtomicUsize,
    /// `slow` calls whose future was dropped before finishing.
    pub aborted: AtomicUsize,
    /// `Counter` objects alive.
    pub counters_alive: AtomicI64,
    /// Wakes tests waiting for `started`/`aborted` to change.
    pub changed: tokio::sync::Notify,
}

/// The service most tests talk to.
#[derive(Clone, Default)]
pub struct TestService {
    pub probe: Arc<Probe>,
    pub label: Arc<Mutex<String>>,
}

const MEMBERS: &[Member] = &[
    Member::method("add", "(a: int, b: int) -> int", "Add two integers."),
    Member::method("echo", "(value: any) -> any", "Return the argument."),
    Member::method(
        "fail",
        "(type_name: str, message: str)",
        "Raise an application error.",
    ),
    Member::method("slow", "(ms: int) -> int", "Sleep, then return ms."),
    Member::method(
        "call_back",
        "(function: callable, arg: any) -> any",
        "Call function(arg) and return its result.",
    ),
    Member::method(
        "ping_pong",
        "(peer: object, depth: int) -> int",
        "Call peer.ping_pong(self, depth - 1) until depth is 0; returns the depth reached.",
    ),
    Member::method("make_counter", "() -> Counter", "A new Counter object."),
    Member::method(
        "same",
        "(a: object, b: object) -> bool",
        "Whether both arguments are the same object.",
    ),
    Member::method(
        "invoke",
        "(obj: object, name: str) -> any",
        "Return obj.name().",
    ),
    Member::method(
        "kwargs",
        "(*args, **kwargs) -> map",
        "Return the named arguments as a map.",
    ),
    Member::attribute(
        "label",
        "str",
        "A label tests can write when the policy allows.",
    )
    .writable(),
    Member::attribute("version", "int", "A read-only attribute."),
];

impl Object for TestService {
    fn type_name(&self) -> &str {
        "TestService"
    }

    fn members(&self) -> &[Member] {
        MEMBERS
    }

    fn call_method<'a>(
        &'a self,
        name: &'a str,
        args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            match name {
                "add" => {
                    let (a, b): (i64, i64) = args.parse()?;
                    Ok(Value::from(a + b))
                }
                "echo" => args.parse::<Value>(),
                "fail" => {
                    let (t, m): (String, String) = args.parse()?;
                    Err(Error::app(t, m))
                }
                "slow" => {
                    let ms: u64 = args.parse()?;
                    self.probe.started.fetch_add(1, Ordering::SeqCst);
                    self.probe.changed.notify_waiters();
                    let guard = AbortGuard(self.probe.clone(), true);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let mut guard = guard;
                    guard.1 = false;
                    Ok(Value::from(ms as i64))
                }
                "call_back" => {
                    let (f, arg): (NetRef, Value) = args.parse()?;
                    f.call((arg,)).await
                }
                "ping_pong" => {
                    let (peer, depth): (NetRef, i64) = args.parse()?;
                    if depth == 0 {
                        return Ok(Value::from(0));
                    }
                    let me = Value::Ref(NetRef::new(self.clone()));
                    let reached: i64 = peer
                        .call_method("ping_pong", (me, depth - 1))
                        .await?
                        .try_into()?;
                    Ok(Value::from(reached + 1))
                }
                "make_counter" => Ok(Value::Ref(NetRef::new(Counter::new(self.probe.clone())))),
                "same" => {
                    let (a, b): (NetRef, NetRef) = args.parse()?;
                    Ok(Value::from(a == b))
                }
                "invoke" => {
                    let (obj, method): (NetRef, String) = args.parse()?;
                    obj.call_method(&method, ()).await
                }
                "kwargs" => Ok(Value::Map(
                    args.named
                        .into_iter()
                        .map(|(k, v)| (Value::from(k), v))
                        .collect(),
                )),
                _ => unreachable!("undeclared member {name}"),
            }
        })
    }

    fn get_attr<'a>(&'a self, name: &'a str, _cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            match name {
                "label" => Ok(Value::from(self.label.lock().unwrap().clone())),
                "version" => Ok(Value::from(3)),
                _ => unreachable!(),
            }
        })
    }

    fn set_attr<'a>(
        &'a self,
        name: &'a str,
        value: Value,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            assert_eq!(name, "label");
            *self.label.lock().unwrap() = value.try_into()?;
            Ok(())
        })
    }

    fn del_attr<'a>(&'a self, name: &'a str, _cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            assert_eq!(name, "label");
            self.label.lock().unwrap().clear();
            Ok(())
        })
    }
}

struct AbortGuard(Arc<Probe>, bool);

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if self.1 {
            self.0.aborted.fetch_add(1, Ordering::SeqCst);
            self.0.changed.notify_waiters();
        }
    }
}

/// A small object with state, counted while alive.
pub struct Counter {
    probe: Arc<Probe>,
    value: AtomicI64,
}

impl Counter {
    pub fn new(probe: Arc<Probe>) -> Counter {
        probe.counters_alive.fetch_add(1, Ordering::SeqCst);
        Counter {
            probe,
            value: AtomicI64::new(0),
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.probe.counters_alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Object for Counter {
    fn type_name(&self) -> &str {
        "Counter"
    }

    fn members(&self) -> &[Member] {
        const M: &[Member] = &[
            Member::method("incr", "() -> int", "Add one; return the new value."),
            Member::attribute("value", "int", "The current value."),
        ];
        M
    }

    fn call_method<'a>(
        &'a self,
        _name: &'a str,
        args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            args.parse::<()>()?;
            Ok(Value::from(self.value.fetch_add(1, Ordering::SeqCst) + 1))
        })
    }

    fn get_attr<'a>(
        &'a self,
        _name: &'a str,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move { Ok(Value::from(self.value.load(Ordering::SeqCst))) })
    }
}

/// An iterator object: 0, 1, ... up to its end (exclusive).
pub struct Count(AtomicI64, i64);

impl Count {
    /// 0, 1, ..., `end` - 1.
    pub fn upto(end: i64) -> Count {
        Count(AtomicI64::new(0), end)
    }
}

impl Object for Count {
    fn type_name(&self) -> &str {
        "Count"
    }
    fn next<'a>(&'a self, _cx: &'a CallContext) -> BoxFuture<'a, Result<Option<Value>>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok((n < self.1).then(|| Value::from(n))) })
    }
}

/// A client and server connected in memory, the server serving `service`.
pub async fn memory_pair(service: TestService) -> (Connection, Connection) {
    memory_pair_with(Builder::default(), Builder::default().root(service)).await
}

/// Like [`memory_pair`] with both builders given.
pub async fn memory_pair_with(client: Builder, server: Builder) -> (Connection, Connection) {
    tether::transport::memory::pair(client, server)
        .await
        .expect("in-memory handshake")
}

/// Wait (bounded) until `cond` holds, re-checking whenever `probe` changes
/// or the runtime yields; panics after 10 s so a broken test cannot hang.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("condition not reached within 10 s");
}
