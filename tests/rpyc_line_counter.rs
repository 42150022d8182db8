//! The source document's own Python client (examples/python/
//! line_counter_client.py, rpyc 6.0.2, unmodified) against the tether
//! line-counter server, on the same port a native tether client uses.

#[path = "../examples/line_counter/service.rs"]
mod service;
mod support;

use std::io::Write;
use std::path::Path;

use service::LineCounterService;
use tether::{LocalFile, NetRef, Server};

const LINES: &str = "first line\nsecond 'quoted' line\n\nlast, without newline";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_counts_its_file_through_the_tether_server_and_so_does_a_tether_client() {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(LineCounterService));
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(LINES.as_bytes()).unwrap();
    let path = file.path().to_path_buf();

    let client =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/line_counter_client.py");
    let port = addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(support::python::python())
            .arg(client)
            .arg(port)
            .arg(path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            r#"Noisy: 'first line\n'"#,
            r#"Noisy: "second 'quoted' line\n""#,
            r#"Noisy: '\n'"#,
            r#"Noisy: 'last, without newline'"#,
            "The number of lines in the file was 4",
        ]
    );

    // The same port still speaks tether to a tether client.
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let local = NetRef::new(LocalFile::open(file.path()).await.unwrap());
    let noisy = tether::callback(|_line: String| async move { Ok(()) });
    let n = root
        .call_method("line_counter", (local, noisy))
        .await
        .unwrap();
    assert_eq!(n, tether::Value::from(4));
}
