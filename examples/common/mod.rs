//! Start-up code shared by the example programs (not an example itself):
//! the address argument, a client's connection to a server example, and a
//! server that runs until Ctrl-C. Each example includes it with
//!
//! ```text
//! #[path = "common/mod.rs"]
//! mod common;
//! ```
//!
//! Messages on stderr start with the example's own name, as in
//! `calculator_client: cannot connect to ...`.

// Each example uses only some of these.
#![allow(dead_code)]

use std::process::ExitCode;

use tether::{Connection, NetRef, Object};

/// Where `calculator_server` listens, and its clients connect, unless given
/// another address.
pub const CALCULATOR_ADDR: &str = "127.0.0.1:7001";

/// Where `line_counter_server` listens, and `line_counter_client` connects,
/// unless given another address.
pub const LINE_COUNTER_ADDR: &str = "127.0.0.1:18861";

/// The running example's name (Cargo sets it for each example it builds).
const PROGRAM: &str = env!("CARGO_BIN_NAME");

/// The `n`th command-line argument (1 is the first after the program
/// name), or `default` when there are fewer.
pub fn arg_or(n: usize, default: &str) -> String {
    std::env::args()
        .nth(n)
        .unwrap_or_else(|| default.to_string())
}

/// Connect to `addr` and fetch the peer's root object. The connection is
/// returned too: keep it while using the root. When nobody answers, the
/// message asks whether `server`, the example expected there, is running.
pub async fn connect_root(addr: &str, server: &str) -> Result<(Connection, NetRef), String> {
    let conn = tether::connect(addr)
        .await
        .map_err(|err| format!("cannot connect to {addr}: {err}\n(is {server} running there?)"))?;
    let root = conn
        .root()
        .await
        .map_err(|err| format!("no root object: {err}"))?;
    Ok((conn, root))
}

/// The exit code for work that ended with `outcome`: success, or failure
/// after printing the message, prefixed with the example's name, on stderr.
pub fn exit_code(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{PROGRAM}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Listen on `addr`, print `listening on ADDR` (the address bound), and
/// serve a clone of `service` as the root of each connection until Ctrl-C;
/// then print `shutting down` and return once every connection is closed.
pub async fn serve_until_ctrl_c<O: Object + Clone>(addr: &str, service: O) -> ExitCode {
    let server = match tether::Server::bind(addr).await {
        Ok(server) => server,
        Err(err) => return exit_code(Err(format!("cannot listen on {addr}: {err}"))),
    };
    match server.local_addr() {
        Ok(bound) => println!("listening on {bound}"),
        Err(_) => println!("listening on {addr}"),
    }
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
    };
    exit_code(
        server
            .serve_until(service, ctrl_c)
            .await
            .map_err(|err| err.to_string()),
    )
}
