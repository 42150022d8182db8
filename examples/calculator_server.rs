//! The server of the source document's XML-RPC program, with its JSON-RPC
//! `lengths` added: one `Calculator` root object exposing
//! `addtogether(*things)`, `quadratic(a, b, c)`, `remote_repr(arg)` and
//! `lengths(*args)`, each documented (try `list_methods`).
//!
//! Run it (listens on 127.0.0.1:7001, or on the address given), then run
//! `list_methods`, `calculator_client`, `multicall` or `lengths` in another
//! terminal:
//!
//! ```text
//! cargo run --example calculator_server
//! cargo run --example calculator_server -- 127.0.0.1:7002
//! ```
//!
//! Stop it with Ctrl-C.

#[path = "calculator/service.rs"]
mod service;

use std::process::ExitCode;

use service::Calculator;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7001".to_string());
    let server = match tether::Server::bind(addr.as_str()).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("calculator_server: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match server.local_addr() {
        Ok(bound) => println!("listening on {bound}"),
        Err(_) => println!("listening on {addr}"),
    }
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
    };
    match server.serve_until(Calculator, ctrl_c).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("calculator_server: {err}");
            ExitCode::FAILURE
        }
    }
}
