//! The source document's XML-RPC introspection client: asks the server for
//! its methods (`system.listMethods`), and prints each one's signature
//! (`system.methodSignature`) and help (`system.methodHelp`). In tether all
//! three come from one call, `NetRef::inspect`, on any object.
//!
//! Start `calculator_server` first, then:
//!
//! ```text
//! cargo run --example list_methods                    # 127.0.0.1:7001
//! cargo run --example list_methods -- 127.0.0.1:7002
//! ```
//!
//! Output:
//!
//! ```text
//! addtogether(*things) -> any
//!     Add together everything in the list `things`: numbers add (an int
//!     ...
//! quadratic(a: float, b: float, c: float) -> list[float]
//!     Determine `x` values satisfying: `a` * x*x + `b` * x + `c` == 0.
//!     ...
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use tether::MemberKind;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, common::CALCULATOR_ADDR);
    common::exit_code(run(&addr).await)
}

async fn run(addr: &str) -> Result<(), String> {
    let (_conn, root) = common::connect_root(addr, "calculator_server").await?;
    let members = root
        .inspect()
        .await
        .map_err(|err| format!("inspect failed: {err:#}"))?;
    for member in members
        .iter()
        .filter(|m| matches!(m.kind, MemberKind::Method))
    {
        // The signature already has its parentheses: `(a: float, ...) -> ...`.
        println!("{}{}", member.name, member.signature);
        for line in member.doc.lines() {
            println!("    {line}");
        }
    }
    Ok(())
}
