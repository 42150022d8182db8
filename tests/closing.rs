//! Review: things that must never hang at close or on a failing call.
//!
//! - `close()` (and `Server` graceful shutdown) wait for the writer task,
//!   which can be stuck forever in `write_all` when the peer stops reading
//!   (src/connection/driver.rs, main loop `io.write_all(&batch.buf).await`
//!   has no timeout and does not watch `shutdown`).
//! - A panic in object code kills the serving task: no reply is ever sent,
//!   the caller waits for its whole deadline, and `serving` keeps the entry
//!   (src/connection/incoming.rs, `spawn_serving`).

mod support;

use std::time::Duration;

use support::wire::{frame, hello, read_frame, varint};
use support::{memory_pair_with, TestService};
use tether::{
    Args, BoxFuture, Builder, CallContext, ErrorKind, Member, Object, Result, Server, Value,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let b = buf[*pos];
    *pos += 1;
    let (n, len) = match b {
        0..=250 => return b as u64,
        251 => (
            u16::from_le_bytes(buf[*pos..*pos + 2].try_into().unwrap()) as u64,
            2,
        ),
        252 => (
            u32::from_le_bytes(buf[*pos..*pos + 4].try_into().unwrap()) as u64,
            4,
        ),
        _ => (
            u64::from_le_bytes(buf[*pos..*pos + 8].try_into().unwrap()),
            8,
        ),
    };
    *pos += len;
    n
}

/// The accepting half of the handshake, by hand.
async fn raw_accept<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) {
    read_frame(io).await; // the peer's hello
    let mut body = tether::protocol::MAGIC.to_vec();
    body.extend_from_slice(&tether::protocol::PROTOCOL_VERSION.to_be_bytes());
    body.push(0); // accept
    body.extend_from_slice(&3u16.to_be_bytes());
    body.extend_from_slice(b"Raw");
    body.extend_from_slice(&(64u32 << 20).to_be_bytes());
    io.write_all(&frame(&body)).await.unwrap();
}

/// The connecting half of the handshake, by hand.
async fn raw_connect<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) {
    io.write_all(&hello(tether::protocol::PROTOCOL_VERSION, "Raw"))
        .await
        .unwrap();
    let answer = read_frame(io).await;
    assert_eq!(answer[8], 0, "refused");
}

/// Each side's account of a close is true where it is read: the side
/// that closed says it did, the other that its peer did.
#[tokio::test]
async fn a_close_is_told_truly_on_both_sides() {
    let (client, server) = memory_pair_with(
        Builder::default(),
        Builder::default().root(TestService::default()),
    )
    .await;
    client.close().await;
    let theirs = server.closed().await;
    assert_eq!(theirs.kind(), ErrorKind::Closed);
    assert_eq!(theirs.message(), "the peer closed the connection");
    assert_eq!(client.closed().await.message(), "closed by this side");

    // The same when the client just drops its last handle.
    let (client, server) = memory_pair_with(
        Builder::default(),
        Builder::default().root(TestService::default()),
    )
    .await;
    drop(client);
    let theirs = server.closed().await;
    assert_eq!(
        theirs.message(),
        "the peer closed the connection: it dropped every handle to the connection"
    );
}

/// A peer that stops reading must not make `Connection::close` wait forever.
#[tokio::test]
async fn close_returns_even_when_the_peer_stopped_reading() {
    let (a, mut b) = tokio::io::duplex(4096);
    let (client, ()) = tokio::join!(
        async { Builder::default().connect_io(a, None).await.unwrap() },
        raw_accept(&mut b)
    );
    // Flood the client with pings and never read its pongs: the client's
    // writer fills the 4 KiB pipe and blocks inside write_all.
    let ping = frame(&[5, 0]);
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 20_000)
        .collect();
    b.write_all(&flood).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let closed = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    assert!(client.is_closed());
    assert!(
        closed.is_ok(),
        "Connection::close() did not return within 5 s: the writer is stuck in write_all"
    );
    drop(b);
}

/// A hostile client that never reads must not block graceful shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_finishes_even_when_a_peer_stopped_reading() {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_until(TestService::default(), async move {
        let _ = stopped.await;
    }));

    let mut peer = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw_connect(&mut peer).await;
    // get root
    let mut req = vec![0u8];
    varint(&mut req, 1); // seq
    varint(&mut req, 0); // target
    varint(&mut req, 60_000); // timeout ms
    req.push(0); // OP_GETROOT
    peer.write_all(&frame(&req)).await.unwrap();
    let reply = read_frame(&mut peer).await;
    assert_eq!(reply[0], 1, "reply ok");
    let mut pos = 1;
    let _seq = read_varint(&reply, &mut pos);
    assert_eq!(reply[pos], 10, "a reference");
    pos += 1;
    let root = read_varint(&reply, &mut pos);

    // Three 16 MiB echoes, and never read the replies.
    let blob = vec![0xabu8; 16 << 20];
    for seq in 2..5u64 {
        let mut req = vec![0u8];
        varint(&mut req, seq);
        varint(&mut req, root);
        varint(&mut req, 60_000);
        req.push(5); // OP_CALLMETHOD
        varint(&mut req, 4);
        req.extend_from_slice(b"echo");
        varint(&mut req, 1); // one positional
        req.push(6); // VAL_BYTES
        varint(&mut req, blob.len() as u64);
        req.extend_from_slice(&blob);
        varint(&mut req, 0); // no named
        peer.write_all(&frame(&req)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    stop.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), serving).await;
    assert!(
        done.is_ok(),
        "serve_until did not return within 10 s of shutdown: a connection's close() waits on a writer blocked in write_all"
    );
    drop(peer);
}

struct Boom;

impl Object for Boom {
    fn type_name(&self) -> &str {
        "Boom"
    }
    fn members(&self) -> &[Member] {
        const M: &[Member] = &[Member::method("boom", "()", "Panics.")];
        M
    }
    fn call_method<'a>(
        &'a self,
        _name: &'a str,
        _args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            let v: Vec<i64> = Vec::new();
            Ok(Value::from(v[3])) // a bug in object code, reachable by the peer
        })
    }
}

/// A panic in object code should come back as an error reply at once, not
/// leave the caller waiting for its deadline and the request in `serving`.
/// Virtual time over an in-memory pair: a caller left waiting gets
/// `Timeout` after its 30 s deadline, which the kind assertion refuses.
#[tokio::test(start_paused = true)]
async fn a_panicking_method_answers_with_an_error_instead_of_hanging_the_caller() {
    let (client, server) =
        memory_pair_with(Builder::default(), Builder::default().root(Boom)).await;
    let root = client.root().await.unwrap();
    let err = root.call_method("boom", ()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote, "{err:#}");
    assert_eq!(err.type_name(), Some("Panic"), "{err:#}");
    assert!(
        err.message()
            .contains("the method panicked: index out of bounds"),
        "{err:#}"
    );
    assert_eq!(
        server.stats().serving,
        0,
        "the panicked request stays in `serving` forever"
    );
}
