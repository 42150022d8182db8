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

use std::process::ExitCode;

use tether::{LocalFile, NetRef, Value};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18861".to_string());
    let path = args.next().unwrap_or_else(|| "testfile.txt".to_string());
    match run(&addr, &path).await {
        Ok(count) => {
            println!("The number of lines in the file was {count}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("line_counter_client: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(addr: &str, path: &str) -> Result<i64, String> {
    let file = LocalFile::open(path)
        .await
        .map_err(|err| format!("cannot open the file to count: {err}"))?;
    let conn = tether::connect(addr).await.map_err(|err| {
        format!("cannot connect to {addr}: {err}\n(is line_counter_server running there?)")
    })?;
    let root = conn
        .root()
        .await
        .map_err(|err| format!("no root object: {err}"))?;

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
