//! The source document's JSON-RPC program: `lengths(*args)` returns, for
//! each argument, the pair `[arg, length]`, with None for an argument that
//! has no length (Python's `len()` raising TypeError). The calculator
//! server exposes it next to the calculator's methods.
//!
//! Start `calculator_server` first, then:
//!
//! ```text
//! cargo run --example lengths                    # 127.0.0.1:7001
//! cargo run --example lengths -- 127.0.0.1:7002
//! ```
//!
//! Output:
//!
//! ```text
//! lengths('hi', 27, 'itsgoodday') -> [['hi', 2], [27, None], ['itsgoodday', 10]]
//! 'hi' has length 2
//! 27 has length None
//! 'itsgoodday' has length 10
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use tether::Value;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, common::CALCULATOR_ADDR);
    common::exit_code(run(&addr).await)
}

async fn run(addr: &str) -> Result<(), String> {
    let (_conn, root) = common::connect_root(addr, "calculator_server").await?;

    let reply = root
        .call_method("lengths", ("hi", 27, "itsgoodday"))
        .await
        .map_err(|err| format!("lengths failed: {err:#}"))?;
    println!("lengths('hi', 27, 'itsgoodday') -> {reply}");

    // The reply is a list of [arg, length] pairs; typed, that is a
    // Vec<(Value, Option<i64>)>.
    let pairs: Vec<(Value, Option<i64>)> =
        tether::from_value(reply).map_err(|err| format!("unexpected reply: {err}"))?;
    for (arg, len) in pairs {
        println!("{arg} has length {}", Value::from(len));
    }
    Ok(())
}
