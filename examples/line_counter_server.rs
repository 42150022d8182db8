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

#[path = "common/mod.rs"]
mod common;

#[path = "line_counter/service.rs"]
mod service;

use std::process::ExitCode;

use service::LineCounterService;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, common::LINE_COUNTER_ADDR);
    common::serve_until_ctrl_c(&addr, LineCounterService).await
}
