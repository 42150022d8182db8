//! The tether half of the RPyC benchmark: the same small service as the
//! Python reference server in `examples/python/rpyc_bench.py`, for Python
//! rpyc clients (127.0.0.1:18871, or the address given).
//!
//! ```text
//! cargo run --release --example rpyc_bench_server
//! python examples/python/rpyc_bench.py 18871
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};

use tether::{NetRef, Result, Value};

/// What the benchmark calls.
#[derive(Clone)]
struct BenchService;

#[tether::expose]
impl BenchService {
    /// A null call.
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// One callback to the client.
    #[method]
    async fn apply(&self, f: NetRef, x: Value) -> Result<Value> {
        f.call((x,)).await
    }

    /// An iterator of 0..n.
    #[method]
    fn count(&self, n: i64) -> NetRef {
        NetRef::new(Counter {
            next: AtomicI64::new(0),
            end: n,
        })
    }
}

struct Counter {
    next: AtomicI64,
    end: i64,
}

#[tether::expose]
impl Counter {
    #[op(next)]
    fn step(&self) -> Option<i64> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n < self.end).then_some(n)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, "127.0.0.1:18871");
    common::serve_until_ctrl_c(&addr, BenchService).await
}
