//! The source document's XML-RPC multicall client: the calculator calls of
//! `calculator_client`, sent to the server as ONE batch (one frame out, one
//! frame back) instead of one round trip each. The server runs them in
//! order; each outcome is a value or an error, and the failing
//! `quadratic(1, 0, 1)` does not stop the calls around it.
//!
//! Start `calculator_server` first, then:
//!
//! ```text
//! cargo run --example multicall                    # 127.0.0.1:7001
//! cargo run --example multicall -- 127.0.0.1:7002
//! ```
//!
//! Output:
//!
//! ```text
//! sent 8 calls in one batch
//! addtogether('x', 'y', 'z') -> 'xyz'
//! addtogether(20, 30, 4, 1) -> 55
//! quadratic(2, -4, 0) -> [2.0, 0.0]
//! quadratic(1, 0, 1) -> error: ValueError: math domain error
//! quadratic(1, 2, 1) -> [-1.0]
//! ...
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use tether::{Args, Value};

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, common::CALCULATOR_ADDR);
    common::exit_code(run(&addr).await)
}

async fn run(addr: &str) -> Result<(), String> {
    let (conn, root) = common::connect_root(addr, "calculator_server").await?;

    let arthur = Value::map([
        ("name", Value::from("Arthur")),
        (
            "data",
            Value::map([("age", Value::from(42)), ("sex", Value::from("M"))]),
        ),
    ]);
    // (as written in Python, method, arguments); the failing call sits in
    // the middle to show that the calls after it still run.
    let calls: Vec<(&str, &str, Args)> = vec![
        (
            "addtogether('x', 'y', 'z')",
            "addtogether",
            args(("x", "y", "z")),
        ),
        (
            "addtogether(20, 30, 4, 1)",
            "addtogether",
            args((20, 30, 4, 1)),
        ),
        ("quadratic(2, -4, 0)", "quadratic", args((2, -4, 0))),
        ("quadratic(1, 0, 1)", "quadratic", args((1, 0, 1))),
        ("quadratic(1, 2, 1)", "quadratic", args((1, 2, 1))),
        (
            "remote_repr((1, 2.0, 'three'))",
            "remote_repr",
            args(((1, 2.0, "three"),)),
        ),
        (
            "remote_repr([1, 2.0, 'three'])",
            "remote_repr",
            args((vec![Value::from(1), Value::from(2.0), Value::from("three")],)),
        ),
        (
            "remote_repr({'name': 'Arthur', 'data': {'age': 42, 'sex': 'M'}})",
            "remote_repr",
            args((arthur,)),
        ),
    ];

    let mut batch = conn.batch();
    for (_, method, call_args) in &calls {
        batch
            .call_method(&root, method, call_args.clone())
            .map_err(|err| format!("cannot add {method} to the batch: {err}"))?;
    }
    println!("sent {} calls in one batch", batch.len());
    let outcomes = batch
        .send()
        .await
        .map_err(|err| format!("the batch failed: {err:#}"))?;

    for ((call, _, _), outcome) in calls.iter().zip(outcomes) {
        match outcome {
            Ok(value) => println!("{call} -> {value}"),
            Err(err) => println!(
                "{call} -> error: {}: {}",
                err.type_name().unwrap_or("Error"),
                err.message()
            ),
        }
    }
    Ok(())
}

/// A tuple of arguments as [`Args`], so calls of different arities fit in
/// one list.
fn args(tuple: impl tether::IntoArgs) -> Args {
    tuple.into_args()
}
