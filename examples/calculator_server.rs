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

#[path = "common/mod.rs"]
mod common;

#[path = "calculator/service.rs"]
mod service;

use std::process::ExitCode;

use service::Calculator;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, common::CALCULATOR_ADDR);
    common::serve_until_ctrl_c(&addr, Calculator).await
}
