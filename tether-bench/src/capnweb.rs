//! The `capnweb` workload: the real `capnweb` client in Node calling a
//! tether server's Cap'n Web endpoint, against the same client calling a
//! Node capnweb server with the same methods (issue 16).
//!
//! tether's endpoint runs in this process (whose runtime has nothing else
//! to do meanwhile); the Node server (`tests/js/bench-server.mjs`) and the
//! client (`tests/js/bench-client.mjs`) are processes of their own, with
//! the npm packages of `tests/js` (installed on first use, as the tests
//! do). The client times, interleaved in rounds of 100: a null call, a
//! call that calls the client back once, and a pipelined chain of four
//! calls (`api.step().step().step().done()`). Figures: `capnweb.tether.*`
//! and `capnweb.node.*` medians and p99s in µs, and `capnweb.ratio.*`,
//! Node's median over tether's (above 1: tether is faster).

use std::process::Stdio;

use tether::capnweb::CapnWeb;
use tether::{NetRef, Result, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::report;
use crate::support::node;
use crate::work::Plan;

/// The methods both servers offer.
#[derive(Clone)]
struct Api;

#[tether::expose]
impl Api {
    /// Nothing.
    #[method]
    fn null(&self) -> Value {
        Value::None
    }

    /// Call `f(1)`; what it returned.
    #[method]
    async fn callback(&self, f: NetRef) -> Result<Value> {
        f.call((1,)).await
    }

    /// A `Step` one deep.
    #[method]
    fn step(&self) -> NetRef {
        NetRef::new(Step(1))
    }
}

/// A link of the pipelined chain.
struct Step(i64);

#[tether::expose]
impl Step {
    /// A `Step` one deeper.
    #[method]
    fn step(&self) -> NetRef {
        NetRef::new(Step(self.0 + 1))
    }

    /// How deep this one is.
    #[method]
    fn done(&self) -> i64 {
        self.0
    }
}

/// Run the workload and report its figures (`capnweb.*`).
pub async fn run(plan: Plan) {
    let ops = if plan.quick { 1_000 } else { 5_000 };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let tether_url = format!("ws://{}/capnweb", listener.local_addr().unwrap());
    tokio::spawn(CapnWeb::new(Api).serve(listener));

    let mut server = node::node("bench-server.mjs")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start node bench-server.mjs");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.ok().flatten().unwrap_or_default();
    let port = first
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("bench-server.mjs said {first:?}"));
    let node_url = format!("ws://127.0.0.1:{port}/capnweb");

    let output = node::node("bench-client.mjs")
        .arg(ops.to_string())
        .arg(&tether_url)
        .arg(&node_url)
        .output()
        .await
        .expect("run node bench-client.mjs");
    let _ = server.kill().await;
    assert!(
        output.status.success(),
        "bench-client.mjs failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text.lines() {
        let figure: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let (server, op) = (
            figure["server"].as_str().unwrap(),
            figure["op"].as_str().unwrap(),
        );
        for key in ["median_us", "p99_us"] {
            let name = format!("capnweb.{server}.{op}.{}", key.trim_end_matches("_us"));
            report::fig(&name, figure[key].as_f64().unwrap(), "us");
        }
    }
    for op in ["null", "callback", "chain4"] {
        let median = |server: &str| report::get(&format!("capnweb.{server}.{op}.median"));
        if let (Some(tether), Some(node)) = (median("tether"), median("node")) {
            report::fig(&format!("capnweb.ratio.{op}"), node / tether, "x");
        }
    }
}
