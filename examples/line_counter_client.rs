//! The client half of the source document's RPyC program: it opens a local
//! file, passes it *by reference* to the server's `line_counter` together
//! with a `noisy` callback, and prints the count. The server reads the file
//! through the connection and calls `noisy` back for every line while the
//! client's own call is still waiting.
//!
//! Start `line_counter_server` first, then, from the repository root:
//!
//! ```text
//! cargo run --example line_counter_client                       # 127.0.0.1:18861, testfile.txt
//! cargo run --example line_counter_client -- 127.0.0.1:18862 path/to/file.txt
//! ```
//!
//! Output, as in Python (`print('Noisy:', repr(line))`):
//!
//! ```text
//! Noisy: 'first line\n'
//! ...
//! The number of lines in the file was 4
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use tether::{LocalFile, NetRef, Value};

#[tokio::main]
async fn main() -> ExitCode {
    let addr = common::arg_or(1, common::LINE_COUNTER_ADDR);
    let path = common::arg_or(2, "testfile.txt");
    common::exit_code(
        run(&addr, &path)
            .await
            .map(|count| println!("The number of lines in the file was {count}")),
    )
}

async fn run(addr: &str, path: &str) -> Result<i64, String> {
    let file = LocalFile::open(path)
        .await
        .map_err(|err| format!("cannot open the file to count: {err}"))?;
    let (_conn, root) = common::connect_root(addr, "line_counter_server").await?;

    let file = NetRef::new(file);
    let noisy = tether::callback(|line: String| async move {
        // Value's Display is Python's repr: 'first line\n'.
        println!("Noisy: {}", Value::from(line));
        Ok(())
    });
    let count = root
        .call_method("line_counter", (file, noisy))
        .await
        .map_err(|err| format!("line_counter failed: {err:#}"))?;
    i64::try_from(count).map_err(|err| format!("unexpected reply: {err}"))
}
