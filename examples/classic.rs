//! The classic service: a trusted peer uses this host's files and
//! programs. One process: the service listens on an ephemeral port of
//! 127.0.0.1 (it refuses non-loopback addresses unless told otherwise),
//! and a client
//!
//! 1. asks for the host's information;
//! 2. creates a directory in a fresh temporary directory, writes a file
//!    there with `open(path, 'w')`, reads it back, lists the directory and
//!    stats the file;
//! 3. runs `uname -a` on the host and prints its output and exit code;
//! 4. shows that binding the classic service to 0.0.0.0 is refused.
//!
//! ```text
//! cargo run --example classic
//! ```

use std::process::ExitCode;

use tether::{NetRef, Value};

type Failure = Box<dyn std::error::Error>;

async fn run() -> Result<(), Failure> {
    let (addr, server) = tether::classic::serve_loopback("127.0.0.1:0").await?;
    println!("classic service on {addr}");

    let conn = tether::connect(addr).await?;
    let host = conn.root().await?;
    let info = host.call_method("hostinfo", ()).await?;
    let field = |key: &str| match info.get(key) {
        Some(Value::Str(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "?".to_string(),
    };
    println!(
        "host: {} ({} {}), server pid {}, user {}",
        field("hostname"),
        field("os"),
        field("arch"),
        field("pid"),
        field("user"),
    );

    // Files: all paths are the host's (here the same machine).
    let temp = tempfile::tempdir()?;
    let dir = temp.path().join("notes");
    let dir = dir.to_string_lossy();
    host.call_method("mkdir", (dir.as_ref(),)).await?;
    let path = format!("{dir}/hello.txt");
    let file = NetRef::try_from(host.call_method("open", (path.as_str(), "w")).await?)?;
    file.call_method("write", ("hello from the client\nsecond line\n",))
        .await?;
    file.close().await?;
    let file = NetRef::try_from(host.call_method("open", (path.as_str(),)).await?)?;
    let text = String::try_from(file.call_method("read", ()).await?)?;
    print!("read back:\n{text}");
    println!(
        "listdir({dir}) = {}",
        host.call_method("listdir", (dir.as_ref(),)).await?
    );
    let stat = host.call_method("stat", (path.as_str(),)).await?;
    println!(
        "stat: size={} is_file={} mode={:o}",
        stat.get("size").unwrap_or(&Value::None),
        stat.get("is_file").unwrap_or(&Value::None),
        stat.get("mode").and_then(Value::as_int).unwrap_or(0),
    );
    let err = host
        .call_method("stat", (format!("{dir}/missing.txt"),))
        .await
        .unwrap_err();
    println!("stat of a missing file: {err}");

    // Programs: stdout is a remote stream.
    let uname = NetRef::try_from(
        host.call_method("spawn", ("uname", vec![Value::from("-a")]))
            .await?,
    )?;
    let stdout = NetRef::try_from(uname.getattr("stdout").await?)?;
    let output = Vec::<u8>::try_from(stdout.call_method("read", ()).await?)?;
    let code = uname.call_method("wait", ()).await?;
    print!("uname -a: {}", String::from_utf8_lossy(&output));
    println!("exit code: {code}");

    // Loopback only, unless explicitly allowed.
    let refused = tether::classic::serve_loopback("0.0.0.0:0")
        .await
        .unwrap_err();
    println!("binding 0.0.0.0: {refused}");

    conn.close().await;
    server.abort();
    if code != Value::from(0) {
        return Err(format!("uname exited with {code}").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("classic: {err}");
            ExitCode::FAILURE
        }
    }
}
