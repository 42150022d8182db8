//! The server half of the source document's RPyC program: a
//! `LineCounterService` whose `line_counter(fileobj, function)` reads a
//! file object that lives on the *client*, calls the client's callback for
//! every line, and returns the number of lines.
//!
//! Run it (listens on 127.0.0.1:18861, or on the address given), then run
//! `line_counter_client` in another terminal:
//!
//! ```text
//! cargo run --example line_counter_server
//! cargo run --example line_counter_server -- 127.0.0.1:18862
//! ```
//!
//! Stop it with Ctrl-C.

#[path = "line_counter/service.rs"]
mod service;

use std::process::ExitCode;

use service::LineCounterService;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18861".to_string());
    let server = match tether::Server::bind(addr.as_str()).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("line_counter_server: cannot listen on {addr}: {err}");
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
    match server.serve_until(LineCounterService, ctrl_c).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("line_counter_server: {err}");
            ExitCode::FAILURE
        }
    }
}
