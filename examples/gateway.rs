//! The source document's XML-RPC and JSON-RPC servers in one: the
//! `Calculator` (`addtogether`, `quadratic`, `remote_repr` and the JSON-RPC
//! example's `lengths`) served over XML-RPC and JSON-RPC 2.0 on one HTTP
//! address, and over native tether on another, at the same time.
//!
//! ```text
//! cargo run --example gateway                                   # HTTP 127.0.0.1:7001, tether 127.0.0.1:7002
//! cargo run --example gateway -- 127.0.0.1:8001 127.0.0.1:8002
//! ```
//!
//! Then, from Python, with nothing but the standard library:
//!
//! ```python
//! import xmlrpc.client
//! proxy = xmlrpc.client.ServerProxy('http://127.0.0.1:7001')
//! print(proxy.system.listMethods())
//! print(proxy.quadratic(2, -4, 0))                  # [2.0, 0.0]
//! ```
//!
//! or with jsonrpclib (`pip install jsonrpclib-pelix`):
//!
//! ```python
//! import jsonrpclib
//! proxy = jsonrpclib.ServerProxy('http://127.0.0.1:7001')
//! print(proxy.lengths('hi', 27, 'itsgoodday'))      # [['hi', 2], [27, None], ['itsgoodday', 10]]
//! ```
//!
//! and the tether clients (`list_methods`, `calculator_client`, ...) with
//! the native address: `cargo run --example calculator_client -- 127.0.0.1:7002`.
//! Stop it with Ctrl-C.

#[path = "common/mod.rs"]
mod common;

#[path = "calculator/service.rs"]
mod service;

use std::process::ExitCode;

use service::Calculator;
use tether::gateway::Gateway;
use tokio::sync::watch;

/// Where the native tether server listens unless given another address.
const NATIVE_ADDR: &str = "127.0.0.1:7002";

#[tokio::main]
async fn main() -> ExitCode {
    let http_addr = common::arg_or(1, common::CALCULATOR_ADDR);
    let native_addr = common::arg_or(2, NATIVE_ADDR);
    common::exit_code(run(&http_addr, &native_addr).await)
}

async fn run(http_addr: &str, native_addr: &str) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|err| format!("cannot listen on {http_addr}: {err}"))?;
    let server = tether::Server::bind(native_addr)
        .await
        .map_err(|err| format!("cannot listen on {native_addr}: {err}"))?;
    let http_bound = listener.local_addr().map_err(|err| err.to_string())?;
    let native_bound = server.local_addr().map_err(|err| err.to_string())?;
    println!("XML-RPC and JSON-RPC on http://{http_bound}/ (and /RPC2)");
    println!("native tether on {native_bound}");

    // One Ctrl-C stops both servers.
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|&stop| stop).await;
    };
    let gateway = Gateway::new(Calculator).serve_until(listener, until_stopped(stopped.clone()));
    let native = server.serve_until(Calculator, until_stopped(stopped));
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
        let _ = stop.send(true);
    });
    let (gateway, native) = tokio::join!(gateway, native);
    gateway.map_err(|err| format!("gateway: {err}"))?;
    native.map_err(|err| format!("native server: {err}"))
}
