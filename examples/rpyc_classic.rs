//! tether driving Python's stock `rpyc_classic` server: the interactive
//! session case, from Rust. Evaluates an expression, runs a statement,
//! imports a module and walks a getattr chain, hands Python a Rust closure
//! to call, and shows a Python exception with its traceback.
//!
//! Start the classic server (rpyc 6.x), then this example:
//!
//! ```text
//! pip install rpyc==6.0.2
//! rpyc_classic --host 127.0.0.1              # listens on 18812
//! cargo run --example rpyc_classic [-- ADDR]
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use tether::NetRef;

async fn run(addr: &str) -> Result<(), String> {
    let conn = tether::rpyc::connect(addr).await.map_err(|e| {
        format!(
            "cannot connect to {addr}: {e}\n(is `rpyc_classic --host 127.0.0.1` running there?)"
        )
    })?;
    let root = conn.root().await.map_err(|e| e.to_string())?;
    let fail = |e: tether::Error| format!("{e:#}");

    let answer = root.call_method("eval", ("6 * 7",)).await.map_err(fail)?;
    println!("eval('6 * 7') = {answer}");

    root.call_method(
        "execute",
        ("import platform; who = platform.python_version()",),
    )
    .await
    .map_err(fail)?;
    let who = root.call_method("eval", ("who",)).await.map_err(fail)?;
    println!("the server runs Python {who}");

    let os = NetRef::try_from(root.call_method("getmodule", ("os",)).await.map_err(fail)?)
        .map_err(fail)?;
    let cwd = os.call_method("getcwd", ()).await.map_err(fail)?;
    let path = NetRef::try_from(os.getattr("path").await.map_err(fail)?).map_err(fail)?;
    let joined = path
        .call_method("join", (cwd.clone(), "notes.txt"))
        .await
        .map_err(fail)?;
    println!("os.getcwd() = {cwd}; os.path.join(cwd, 'notes.txt') = {joined}");

    let mapper = NetRef::try_from(
        root.call_method("eval", ("lambda f: tuple(f(i) for i in range(5))",))
            .await
            .map_err(fail)?,
    )
    .map_err(fail)?;
    let square = tether::callback(|x: i64| async move { Ok(x * x) });
    let squares = mapper.call((square,)).await.map_err(fail)?;
    println!("Python called a Rust closure: {squares}");

    match root.call_method("eval", ("1 / 0",)).await {
        Err(err) => println!(
            "eval('1 / 0') raised {}: {}",
            err.type_name().unwrap_or("?"),
            err.message()
        ),
        Ok(v) => println!("eval('1 / 0') = {v}?"),
    }
    conn.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, "127.0.0.1:18812");
    common::exit_code(run(&addr).await)
}
