//! The server: TCP and Unix sockets, a connection limit, graceful
//! shutdown, and connections that do not affect each other.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::wire::{self, RawPeer, Reply, Val};
use support::TestService;
use tether::{Connection, ErrorKind, Server, Value};
use tokio::net::TcpStream;

async fn spawn_tcp(
    builder: tether::ServerBuilder,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<tether::Result<()>>,
) {
    let server = builder.bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_until(TestService::default(), async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

#[tokio::test]
async fn the_design_surface_works_over_tcp() {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(TestService::default()));
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let v: Value = root.call_method("add", (1, 2)).await.unwrap();
    let n: i64 = v.try_into().unwrap();
    assert_eq!(n, 3);
    assert_eq!(conn.peer_addr(), Some(addr.to_string().as_str()));
    let cb = tether::callback(|line: String| async move { Ok(line.len() as i64) });
    assert_eq!(
        root.call_method("call_back", (cb, "four")).await.unwrap(),
        Value::from(4)
    );
    assert_eq!(root.getattr("version").await.unwrap(), Value::from(3));
    assert!(root.dir().await.unwrap().contains(&"add".to_string()));
}

/// Two raw peers, so b can name a's object by its wire id, as a hostile
/// client would.
#[tokio::test]
async fn each_connection_gets_its_own_root_and_tables() {
    let (addr, _stop, _task) = spawn_tcp(Server::builder()).await;
    let mut a = RawPeer::handshake(TcpStream::connect(addr).await.unwrap()).await;
    let mut b = RawPeer::handshake(TcpStream::connect(addr).await.unwrap()).await;
    let incr = wire::call_method("incr", &[]);

    let a_root = a.root(1).await;
    let counter = a
        .object(2, a_root, &wire::call_method("make_counter", &[]))
        .await;
    assert_eq!(
        a.call(3, counter, &incr).await,
        Reply::Ok {
            seq: 3,
            value: Val::Int(1)
        }
    );

    // b cannot reach a's counter: ids are per connection, and b's table
    // holds only its own root.
    let b_root = b.root(1).await;
    assert_ne!(b_root, counter);
    match b.call(2, counter, &incr).await {
        Reply::Err { seq: 2, kind, .. } => assert_eq!(kind, wire::KIND_UNKNOWN_OBJECT),
        other => panic!("b reached a's counter: {other:?}"),
    }
    // b's own counter is another object; a's was not touched.
    let b_counter = b
        .object(3, b_root, &wire::call_method("make_counter", &[]))
        .await;
    assert_eq!(
        b.call(4, b_counter, &incr).await,
        Reply::Ok {
            seq: 4,
            value: Val::Int(1)
        }
    );
    assert_eq!(
        a.call(4, counter, &incr).await,
        Reply::Ok {
            seq: 4,
            value: Val::Int(2)
        }
    );
}

#[cfg(unix)]
#[tokio::test]
async fn unix_sockets_carry_the_same_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tether.sock");
    let server = Server::bind_unix(&path).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_until(TestService::default(), async {
        let _ = stopped.await;
    }));
    let conn = tether::Builder::default()
        .connect_unix(&path)
        .await
        .unwrap();
    let root = conn.root().await.unwrap();
    assert_eq!(
        root.call_method("add", (20, 22)).await.unwrap(),
        Value::from(42)
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[tokio::test]
async fn past_the_connection_limit_clients_are_refused_with_a_reason() {
    let (addr, _stop, _task) = spawn_tcp(Server::builder().max_connections(2)).await;
    let a = tether::connect(addr).await.unwrap();
    let b = tether::connect(addr).await.unwrap();
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    let err = tether::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.message().contains("limit of 2 connections"), "{err}");
    // Freeing a slot lets the next client in.
    a.close().await;
    // The slot frees once the server has noticed; retry until then.
    let c = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tether::connect(addr).await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    })
    .await
    .expect("a slot frees after a client leaves");
    c.ping().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_closes_connections_and_fails_pending_calls() {
    let (addr, stop, task) = spawn_tcp(Server::builder()).await;
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let pending = tokio::spawn(async move { root.call_method("slow", (60_000,)).await });
    conn.ping().await.unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("shutdown completes")
        .unwrap()
        .unwrap();
    let err = pending.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(tether::connect(addr).await.is_err(), "no longer listening");
}

#[tokio::test]
async fn a_connection_that_dies_mid_call_does_not_affect_the_others() {
    let server_side: Arc<Mutex<Vec<Connection>>> = Arc::default();
    let seen = server_side.clone();
    let (addr, _stop, _task) =
        spawn_tcp(Server::builder().on_connect(move |c| seen.lock().unwrap().push(c.clone())))
            .await;
    let good = tether::connect(addr).await.unwrap();
    let good_root = good.root().await.unwrap();

    let doomed = tether::connect(addr).await.unwrap();
    let doomed_root = doomed.root().await.unwrap();
    let hanging = tokio::spawn(async move { doomed_root.call_method("slow", (60_000,)).await });
    doomed.ping().await.unwrap();
    doomed.close().await;
    let err = hanging.await.unwrap().unwrap_err();
    assert!(err.is_closed());

    // The server noticed and released that connection's objects.
    let doomed_server_side = server_side.lock().unwrap()[1].clone();
    doomed_server_side.closed().await;
    assert_eq!(doomed_server_side.stats().exported, 0);
    assert_eq!(
        good_root.call_method("add", (1, 2)).await.unwrap(),
        Value::from(3)
    );
}

#[tokio::test]
async fn connecting_to_nothing_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = tether::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
}
