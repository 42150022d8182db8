//! A tether object for JavaScript: the `Hello` service (`add`, `greet`,
//! `divide`, `counter`, `count_to`) at `ws://127.0.0.1:7003/capnweb` for
//! the `capnweb` npm package, over a WebSocket or HTTP batches.
//!
//! ```text
//! cargo run --example capnweb                     # 127.0.0.1:7003
//! cargo run --example capnweb -- 127.0.0.1:8003
//! ```
//!
//! Then, with the client in `tests/js/hello.mjs`:
//!
//! ```text
//! npm ci --prefix tests/js
//! node tests/js/hello.mjs http://127.0.0.1:7003/capnweb
//! ```
//!
//! Stop it with Ctrl-C.

#[path = "common/mod.rs"]
mod common;

#[path = "capnweb/service.rs"]
mod service;

use std::process::ExitCode;

use tether::capnweb::CapnWeb;

/// Where the example listens unless given another address.
const ADDR: &str = "127.0.0.1:7003";

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, ADDR);
    common::exit_code(run(&addr).await)
}

async fn run(addr: &str) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    let endpoint = CapnWeb::new(service::Hello);
    eprintln!("capnweb: serving Hello at ws://{addr}/capnweb (Ctrl-C stops)");
    endpoint
        .serve_until(listener, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
        .map_err(|err| format!("serving: {err}"))
}
