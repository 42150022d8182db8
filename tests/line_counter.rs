//! The source document's RPyC program end to end over TCP: the server's
//! `line_counter` reads a file that lives on the client, calling the
//! client's callback per line (the same service as
//! `examples/line_counter_server.rs`).

#[path = "../examples/line_counter/service.rs"]
mod service;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use service::LineCounterService;
use tether::{Connection, Error, ErrorKind, LocalFile, NetRef, Server};

/// A server with `LineCounterService` on an ephemeral port, and the
/// server-side connection handles as they are accepted.
async fn start_server() -> (SocketAddr, Arc<Mutex<Vec<Connection>>>) {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let log = accepted.clone();
    let server = Server::builder()
        .on_connect(move |conn| log.lock().unwrap().push(conn.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(LineCounterService));
    (addr, accepted)
}

fn temp_file(lines: &[&str]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for line in lines {
        file.write_all(line.as_bytes()).unwrap();
    }
    file
}

/// A callback that records each line it is called with.
fn collector() -> (NetRef, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let cb = tether::callback(move |line: String| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(line);
            Ok(())
        }
    });
    (cb, seen)
}

const LINES: &[&str] = &[
    "first line\n",
    "second line\n",
    "\n",
    "tab\there\n",
    "no newline at the end",
];

#[tokio::test]
async fn counts_the_clients_lines_and_calls_back_for_each_in_order() {
    let (addr, _) = start_server().await;
    let tmp = temp_file(LINES);
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let file = NetRef::new(LocalFile::open(tmp.path()).await.unwrap());
    let (cb, seen) = collector();

    let count: i64 = root
        .call_method("line_counter", (file, cb))
        .await
        .unwrap()
        .try_into()
        .unwrap();

    assert_eq!(count, LINES.len() as i64);
    assert_eq!(*seen.lock().unwrap(), LINES);
}

#[tokio::test]
async fn a_long_file_is_counted_too() {
    let (addr, _) = start_server().await;
    let lines: Vec<String> = (0..5000).map(|i| format!("line {i}\n")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let tmp = temp_file(&refs);
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let file = NetRef::new(LocalFile::open(tmp.path()).await.unwrap());
    let (cb, seen) = collector();
    let count = root.call_method("line_counter", (file, cb)).await.unwrap();
    assert_eq!(count, tether::Value::from(5000));
    assert_eq!(*seen.lock().unwrap(), lines);
}

#[tokio::test]
async fn an_error_in_the_callback_reaches_the_client_with_its_cause() {
    let (addr, _) = start_server().await;
    let tmp = temp_file(LINES);
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let file = NetRef::new(LocalFile::open(tmp.path()).await.unwrap());
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let cb = tether::callback(move |line: String| {
        let counter = counter.clone();
        async move {
            let mut n = counter.lock().unwrap();
            *n += 1;
            if *n == 2 {
                return Err(Error::app("LineRejected", format!("refusing {line:?}")));
            }
            Ok(())
        }
    });

    let err = root
        .call_method("line_counter", (file, cb))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Remote, "{err:#}");
    assert_eq!(err.type_name(), Some("LineRejected"), "{err:#}");
    let remote = err.remote().unwrap();
    let cause = remote
        .cause()
        .expect("the callback's own error as the cause");
    assert_eq!(cause.type_name(), "LineRejected");
    assert!(cause.message().contains("second line"), "{err:#}");
    // The server stopped at the failing line.
    assert_eq!(*calls.lock().unwrap(), 2);
}

#[tokio::test]
async fn the_clients_file_is_released_once_the_call_is_done() {
    let (addr, accepted) = start_server().await;
    let tmp = temp_file(LINES);
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let file = NetRef::new(LocalFile::open(tmp.path()).await.unwrap());
    let (cb, _seen) = collector();

    root.call_method("line_counter", (file.clone(), cb))
        .await
        .unwrap();
    // The server dropped its proxies when the call returned; the release
    // frame goes out with the server's next write. A ping from each side
    // makes sure it has been sent and handled.
    let server_conn = accepted.lock().unwrap()[0].clone();
    server_conn.ping().await.unwrap();
    conn.ping().await.unwrap();
    assert_eq!(conn.stats().exported, 0, "{:?}", conn.stats());
    assert_eq!(server_conn.stats().imported, 0, "{:?}", server_conn.stats());

    // Only our own reference is left: the file is still open for us.
    assert_eq!(
        file.getattr("closed").await.unwrap(),
        tether::Value::from(false)
    );
    assert_eq!(
        file.call_method("readline", ()).await.unwrap(),
        tether::Value::from("")
    );
}

#[tokio::test]
async fn a_missing_file_fails_on_the_client_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let err = LocalFile::open(dir.path().join("testfile.txt"))
        .await
        .unwrap_err();
    assert_eq!(err.type_name(), Some("FileNotFoundError"));
    assert!(err.to_string().contains("testfile.txt"), "{err}");
}
