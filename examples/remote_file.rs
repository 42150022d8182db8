//! Remote files: a server hands out its files *by reference* through
//! `open(name, mode)`, and a client uses them as Python file objects and
//! as tokio byte streams. One process: the server listens on an ephemeral
//! port of 127.0.0.1 and serves a fresh temporary directory; the client
//!
//! 1. writes `notes.txt` remotely (mode `w`, `write`, `close`);
//! 2. reads it back line by line (iteration, a batch of lines per round
//!    trip) and asks for its `metadata`;
//! 3. copies it to `copy.txt` with `tokio::io::copy` between two
//!    [`RemoteFile`]s (reads in flight while streaming, writes gathered
//!    into 64 KiB calls), then downloads the copy;
//! 4. prints the sizes and an FNV-1a checksum of what it wrote and what
//!    came back, and fails unless they match.
//!
//! ```text
//! cargo run --example remote_file
//! ```

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use tether::{Error, LocalFile, NetRef, RemoteFile, Value};
use tokio::io::AsyncWriteExt;

/// Serves the files of one directory.
#[derive(Clone)]
struct FileServer {
    root: PathBuf,
}

#[tether::expose]
impl FileServer {
    /// Open `name` (a path inside the served directory) as Python's
    /// `open(name, mode='r')` does; the file is served by reference.
    #[method]
    async fn open(&self, name: String, mode: Option<String>) -> tether::Result<NetRef> {
        let path = self.resolve(&name)?;
        let file = LocalFile::open_with(path, mode.as_deref().unwrap_or("r")).await?;
        Ok(NetRef::new(file))
    }

    /// Only plain relative names: no `..`, no absolute paths.
    fn resolve(&self, name: &str) -> tether::Result<PathBuf> {
        let relative = Path::new(name);
        if relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            Ok(self.root.join(relative))
        } else {
            Err(Error::app(
                "PermissionError",
                format!("{} is outside the served directory", Value::from(name)),
            ))
        }
    }
}

/// FNV-1a, 64 bits: a small checksum that needs no extra crate.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

async fn open(root: &NetRef, name: &str, mode: &str) -> Result<NetRef, Box<dyn std::error::Error>> {
    Ok(NetRef::try_from(
        root.call_method("open", (name, mode)).await?,
    )?)
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let served = tempfile::tempdir()?;
    let server = tether::Server::bind("127.0.0.1:0").await?;
    let addr = server.local_addr()?;
    tokio::spawn(server.serve(FileServer {
        root: served.path().to_path_buf(),
    }));
    println!("serving {} on {addr}", served.path().display());

    let conn = tether::connect(addr).await?;
    let root = conn.root().await?;

    // 1. Write a text file on the server.
    let lines: Vec<String> = (1..=2000)
        .map(|i| format!("{i:04} the quick brown fox jumps over the lazy dog\n"))
        .collect();
    let notes = open(&root, "notes.txt", "w").await?;
    let mut written = 0;
    for line in &lines {
        written += i64::try_from(notes.call_method("write", (line.as_str(),)).await?)?;
    }
    notes.call_method("close", ()).await?;
    println!(
        "wrote notes.txt remotely: {} lines, {written} characters",
        lines.len()
    );

    // 2. Read it back by lines, a batch per round trip.
    let notes = open(&root, "notes.txt", "r").await?;
    let mut count = 0;
    let mut iter = notes.iter();
    while let Some(line) = iter.next().await {
        let line = String::try_from(line?)?;
        if count < 2 {
            print!("  read back: {line}");
        }
        count += 1;
    }
    let meta = notes.call_method("metadata", ()).await?;
    println!(
        "read back {count} lines; metadata: size {}, is_file {}",
        meta.get("size").unwrap_or(&Value::None),
        meta.get("is_file").unwrap_or(&Value::None)
    );
    notes.call_method("close", ()).await?;

    // 3. Copy it remotely with tokio::io::copy, then download the copy.
    let mut source = RemoteFile::new(open(&root, "notes.txt", "rb").await?);
    let mut target = RemoteFile::new(open(&root, "copy.txt", "wb").await?);
    let copied = tokio::io::copy(&mut source, &mut target).await?;
    target.shutdown().await?;
    source.shutdown().await?;
    println!("copied notes.txt to copy.txt through RemoteFile: {copied} bytes");

    let mut download = RemoteFile::new(open(&root, "copy.txt", "rb").await?);
    let mut received = Vec::new();
    tokio::io::copy(&mut download, &mut received).await?;
    download.shutdown().await?;

    // 4. Compare.
    let original = lines.concat().into_bytes();
    println!(
        "original: {} bytes, fnv1a {:016x}",
        original.len(),
        fnv1a(&original)
    );
    println!(
        "copy:     {} bytes, fnv1a {:016x}",
        received.len(),
        fnv1a(&received)
    );
    Ok(original == received && count == lines.len())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => {
            println!("the copy matches");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("remote_file: the copy differs from the original");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("remote_file: {err}");
            ExitCode::FAILURE
        }
    }
}
