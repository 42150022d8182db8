//! The source document's XML-RPC client: calls the calculator's methods in
//! the document's order and prints each result, Python-style. The last
//! call, `quadratic(1, 0, 1)`, has no real roots: the server's
//! `ValueError: math domain error` reaches the client as an error (the
//! document's `xmlrpclib.Fault`), which is printed.
//!
//! Start `calculator_server` first, then:
//!
//! ```text
//! cargo run --example calculator_client                    # 127.0.0.1:7001
//! cargo run --example calculator_client -- 127.0.0.1:7002
//! ```
//!
//! Output:
//!
//! ```text
//! addtogether('x', 'y', 'z') -> 'xyz'
//! addtogether(20, 30, 4, 1) -> 55
//! quadratic(2, -4, 0) -> [2.0, 0.0]
//! quadratic(1, 2, 1) -> [-1.0]
//! remote_repr((1, 2.0, 'three')) -> [1, 2.0, 'three']
//! remote_repr([1, 2.0, 'three']) -> [1, 2.0, 'three']
//! remote_repr({'name': 'Arthur', 'data': {'age': 42, 'sex': 'M'}}) -> {'name': 'Arthur', 'data': {'age': 42, 'sex': 'M'}}
//! quadratic(1, 0, 1) -> error: ValueError: math domain error
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use tether::{NetRef, Value};

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, common::CALCULATOR_ADDR);
    common::exit_code(run(&addr).await)
}

async fn run(addr: &str) -> Result<(), String> {
    let (_conn, root) = common::connect_root(addr, "calculator_server").await?;

    show(
        &root,
        "addtogether('x', 'y', 'z')",
        "addtogether",
        ("x", "y", "z"),
    )
    .await?;
    show(
        &root,
        "addtogether(20, 30, 4, 1)",
        "addtogether",
        (20, 30, 4, 1),
    )
    .await?;
    show(&root, "quadratic(2, -4, 0)", "quadratic", (2, -4, 0)).await?;
    show(&root, "quadratic(1, 2, 1)", "quadratic", (1, 2, 1)).await?;
    // A Rust tuple travels as a list, as a Python tuple does over XML-RPC.
    show(
        &root,
        "remote_repr((1, 2.0, 'three'))",
        "remote_repr",
        ((1, 2.0, "three"),),
    )
    .await?;
    let list = Value::from(vec![Value::from(1), Value::from(2.0), Value::from("three")]);
    show(
        &root,
        "remote_repr([1, 2.0, 'three'])",
        "remote_repr",
        (list,),
    )
    .await?;
    let arthur = Value::map([
        ("name", Value::from("Arthur")),
        (
            "data",
            Value::map([("age", Value::from(42)), ("sex", Value::from("M"))]),
        ),
    ]);
    show(
        &root,
        "remote_repr({'name': 'Arthur', 'data': {'age': 42, 'sex': 'M'}})",
        "remote_repr",
        (arthur,),
    )
    .await?;
    // No real roots: the server's ValueError comes back as an error.
    show(&root, "quadratic(1, 0, 1)", "quadratic", (1, 0, 1)).await?;
    Ok(())
}

/// Call `root.method(args)` and print `call -> result`, or the error the
/// server raised. Only a failure of the connection itself stops the client.
async fn show(
    root: &NetRef,
    call: &str,
    method: &str,
    args: impl tether::IntoArgs,
) -> Result<(), String> {
    match root.call_method(method, args).await {
        Ok(value) => println!("{call} -> {value}"),
        // Raised by the server: its type name and message.
        Err(err) if err.remote().is_some() => println!(
            "{call} -> error: {}: {}",
            err.type_name().unwrap_or("Error"),
            err.message()
        ),
        Err(err) => return Err(format!("{call} failed: {err:#}")),
    }
    Ok(())
}
