//! A hand-written peer that speaks raw bytes to a real tether server: garbage,
//! wrong versions, silence, malformed and oversized frames, stale ids. Each
//! test checks what the server answers (reply bytes, `Close` text, end of
//! stream) and that it keeps serving well-behaved clients.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::{Builder, Config, Connection, ErrorKind, Server, ServerBuilder, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::wire::{frame, hello, text, varint};
use support::{wait_until, TestService};

// ------------------------------------------------------------ allocations

/// Records the largest single allocation the test process ever made, so a
/// test can show the server did not allocate what a hostile header claimed.
struct TrackLargest;

static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

// SAFETY (the reason for `unsafe` here): a pass-through to the system
// allocator that only records sizes; every pointer and layout is handed to
// `System` unchanged, so its contract is the caller's contract.
unsafe impl GlobalAlloc for TrackLargest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: TrackLargest = TrackLargest;

// ------------------------------------------------------------ wire helpers

/// Safety bound for anything that could hang; never used for correctness.
const BOUND: Duration = Duration::from_secs(10);

/// Wire code of `ErrorKind::UnknownObject` (its index in `ALL_KINDS`).
const KIND_UNKNOWN_OBJECT: u8 = 6;

/// Wire code of `ErrorKind::Timeout`.
const KIND_TIMEOUT: u8 = 3;

/// Wire code of `ErrorKind::LimitExceeded`.
const KIND_LIMIT_EXCEEDED: u8 = 10;

const MSG_REQUEST: u8 = 0;
const MSG_RELEASE: u8 = 3;
const MSG_CANCEL: u8 = 4;
const MSG_PING: u8 = 5;

const OP_GETROOT: u8 = 0;
const OP_CALLMETHOD: u8 = 5;

/// An `Int` value (tag 3, zigzag varint).
fn int_value(n: i64) -> Vec<u8> {
    let mut out = vec![3];
    varint(&mut out, ((n << 1) ^ (n >> 63)) as u64);
    out
}

fn request(seq: u64, target: u64, op: &[u8]) -> Vec<u8> {
    request_with_deadline(seq, target, 5_000, op)
}

fn request_with_deadline(seq: u64, target: u64, timeout_ms: u64, op: &[u8]) -> Vec<u8> {
    let mut out = vec![MSG_REQUEST];
    varint(&mut out, seq);
    varint(&mut out, target);
    varint(&mut out, timeout_ms);
    out.extend_from_slice(op);
    out
}

fn op_call_method(name: &str, positional: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![OP_CALLMETHOD];
    text(&mut out, name);
    varint(&mut out, positional.len() as u64);
    for v in positional {
        out.extend_from_slice(v);
    }
    varint(&mut out, 0); // no named arguments
    out
}

fn release(pairs: &[(u64, u64)]) -> Vec<u8> {
    let mut out = vec![MSG_RELEASE];
    varint(&mut out, pairs.len() as u64);
    for &(id, count) in pairs {
        varint(&mut out, id);
        varint(&mut out, count);
    }
    out
}

fn cancel(seq: u64) -> Vec<u8> {
    let mut out = vec![MSG_CANCEL];
    varint(&mut out, seq);
    out
}

fn ping(n: u64) -> Vec<u8> {
    let mut out = vec![MSG_PING];
    varint(&mut out, n);
    out
}

/// A value as the raw peer reads it.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Val>),
    Map(Vec<(Val, Val)>),
    Yours(u64),
    Mine(u64),
}

/// A message as the raw peer reads it.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    ReplyOk {
        seq: u64,
        value: Val,
    },
    ReplyErr {
        seq: u64,
        kind: u8,
        type_name: String,
        message: String,
    },
    Release(Vec<(u64, u64)>),
    Pong(u64),
    Close(String),
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn u8(&mut self) -> u8 {
        let b = *self.buf.get(self.pos).expect("frame ends early");
        self.pos += 1;
        b
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    fn varint(&mut self) -> u64 {
        match self.u8() {
            251 => u16::from_le_bytes(self.take(2).try_into().unwrap()) as u64,
            252 => u32::from_le_bytes(self.take(4).try_into().unwrap()) as u64,
            253 => u64::from_le_bytes(self.take(8).try_into().unwrap()),
            n if n < 251 => n as u64,
            other => panic!("unexpected varint marker {other}"),
        }
    }

    fn text(&mut self) -> String {
        let n = self.varint() as usize;
        String::from_utf8(self.take(n).to_vec()).expect("UTF-8 text")
    }

    fn value(&mut self) -> Val {
        match self.u8() {
            0 => Val::None,
            1 => Val::Bool(false),
            2 => Val::Bool(true),
            3 => {
                let z = self.varint();
                Val::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            4 => Val::Float(f64::from_le_bytes(self.take(8).try_into().unwrap())),
            5 => Val::Str(self.text()),
            6 => {
                let n = self.varint() as usize;
                Val::Bytes(self.take(n).to_vec())
            }
            7 => {
                let n = self.varint();
                Val::List((0..n).map(|_| self.value()).collect())
            }
            8 => {
                let n = self.varint();
                Val::Map((0..n).map(|_| (self.value(), self.value())).collect())
            }
            9 => Val::Yours(self.varint()),
            10 => Val::Mine(self.varint()),
            tag => panic!("unknown value tag {tag}"),
        }
    }

    fn message(&mut self) -> Msg {
        let msg = match self.u8() {
            1 => {
                let seq = self.varint();
                Msg::ReplyOk {
                    seq,
                    value: self.value(),
                }
            }
            2 => {
                let seq = self.varint();
                let kind = self.u8();
                let type_name = self.text();
                let message = self.text();
                for _ in 0..self.varint() {
                    self.text();
                }
                // The cause chain is not needed here; skip it whole.
                self.pos = self.buf.len();
                Msg::ReplyErr {
                    seq,
                    kind,
                    type_name,
                    message,
                }
            }
            3 => {
                let n = self.varint();
                Msg::Release((0..n).map(|_| (self.varint(), self.varint())).collect())
            }
            6 => Msg::Pong(self.varint()),
            7 => Msg::Close(self.text()),
            tag => panic!("the server sent an unexpected message tag {tag}"),
        };
        assert_eq!(self.pos, self.buf.len(), "trailing bytes in {msg:?}");
        msg
    }
}

/// The server's handshake answer.
#[derive(Debug)]
struct Answer {
    version: u16,
    status: u8,
    text: String,
}

async fn read_answer<S: AsyncRead + Unpin>(io: &mut S) -> Answer {
    let len = io.read_u32().await.expect("handshake answer length") as usize;
    let mut body = vec![0; len];
    io.read_exact(&mut body).await.expect("handshake answer");
    assert_eq!(&body[..6], b"TETHER", "answer magic");
    let version = u16::from_be_bytes([body[6], body[7]]);
    let status = body[8];
    let text_len = u16::from_be_bytes([body[9], body[10]]) as usize;
    let text = String::from_utf8(body[11..11 + text_len].to_vec()).unwrap();
    Answer {
        version,
        status,
        text,
    }
}

/// Read everything until the peer closes; `Ok(bytes)` on a clean end of
/// stream, `Err` when the connection was reset (the server closed with our
/// unread bytes still queued, which some kernels answer with a reset).
async fn read_until_closed<S: AsyncRead + Unpin>(io: &mut S) -> std::io::Result<Vec<u8>> {
    read_until_closed_within(io, BOUND).await
}

/// [`read_until_closed`], waiting at most `bound`.
async fn read_until_closed_within<S: AsyncRead + Unpin>(
    io: &mut S,
    bound: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    tokio::time::timeout(bound, io.read_to_end(&mut out))
        .await
        .expect("the server did not close the connection")?;
    Ok(out)
}

/// A raw peer after a successful handshake.
struct Peer<S> {
    io: S,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Peer<S> {
    async fn handshake(mut io: S) -> Peer<S> {
        io.write_all(&hello(tether::protocol::PROTOCOL_VERSION, "BadPeer"))
            .await
            .unwrap();
        let answer = read_answer(&mut io).await;
        assert_eq!(answer.status, 0, "refused: {}", answer.text);
        assert_eq!(answer.text, "TestService");
        Peer { io }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
        self.io.flush().await.unwrap();
    }

    async fn send(&mut self, payload: &[u8]) {
        self.send_raw(&frame(payload)).await;
    }

    /// The next frame, or `None` when the server closed the connection.
    async fn recv(&mut self) -> Option<Msg> {
        tokio::time::timeout(BOUND, async {
            let len = match self.io.read_u32().await {
                Ok(len) => len as usize,
                Err(_) => return None,
            };
            let mut payload = vec![0; len];
            self.io.read_exact(&mut payload).await.ok()?;
            Some(
                Parser {
                    buf: &payload,
                    pos: 0,
                }
                .message(),
            )
        })
        .await
        .expect("no frame from the server within the bound")
    }

    /// The next frame that is not a `Release` (the server may release our
    /// objects at any time; the raw peer never sends any, so none come).
    async fn recv_msg(&mut self) -> Msg {
        loop {
            match self.recv().await {
                Some(Msg::Release(_)) => continue,
                Some(msg) => return msg,
                None => panic!("the server closed the connection unexpectedly"),
            }
        }
    }

    /// Expect a `Close` frame, then the end of the stream; returns its text.
    async fn expect_close(&mut self) -> String {
        let text = match self.recv_msg().await {
            Msg::Close(text) => text,
            other => panic!("expected Close, got {other:?}"),
        };
        assert_eq!(self.recv().await, None, "frames after Close");
        text
    }

    async fn call(&mut self, seq: u64, target: u64, op: &[u8]) -> Msg {
        self.send(&request(seq, target, op)).await;
        self.recv_msg().await
    }

    /// The root's wire id.
    async fn root_id(&mut self, seq: u64) -> u64 {
        match self.call(seq, 0, &[OP_GETROOT]).await {
            Msg::ReplyOk {
                seq: s,
                value: Val::Mine(id),
            } if s == seq => id,
            other => panic!("expected the root reference, got {other:?}"),
        }
    }

    /// A new `Counter` from the root `root`: its wire id.
    async fn make_counter(&mut self, seq: u64, root: u64) -> u64 {
        match self
            .call(seq, root, &op_call_method("make_counter", &[]))
            .await
        {
            Msg::ReplyOk {
                seq: s,
                value: Val::Mine(id),
            } if s == seq => id,
            other => panic!("expected a Counter reference, got {other:?}"),
        }
    }

    async fn add(&mut self, seq: u64, target: u64, a: i64, b: i64) -> Msg {
        self.call(
            seq,
            target,
            &op_call_method("add", &[int_value(a), int_value(b)]),
        )
        .await
    }

    /// A Ping gets the matching Pong: the connection is alive and in sync.
    async fn assert_alive(&mut self, n: u64) {
        self.send(&ping(n)).await;
        assert_eq!(self.recv_msg().await, Msg::Pong(n));
    }
}

fn assert_unknown_object(msg: Msg, want_seq: u64) {
    match msg {
        Msg::ReplyErr {
            seq,
            kind,
            type_name,
            message,
        } => {
            assert_eq!(seq, want_seq);
            assert_eq!(kind, KIND_UNKNOWN_OBJECT, "{type_name}: {message}");
            assert!(message.contains("no object with id"), "{message}");
        }
        other => panic!("expected an UnknownObject error reply, got {other:?}"),
    }
}

// ------------------------------------------------------------ servers

async fn start(builder: ServerBuilder) -> SocketAddr {
    let server = builder.bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(TestService::default()));
    addr
}

async fn start_default() -> SocketAddr {
    start(Server::builder()).await
}

/// Bytes each way an in-memory pipe of [`pipe_peer`] holds.
const PIPE_BUFFER: usize = 64 * 1024;

/// A raw peer over an in-memory pipe, through `Builder::accept_io`: the
/// peer, the server's side of the connection, and the service's probe.
async fn pipe_peer() -> (
    Peer<tokio::io::DuplexStream>,
    Connection,
    Arc<support::Probe>,
) {
    pipe_peer_with(Config::default()).await
}

/// [`pipe_peer`] with the server's side configured by `config`.
async fn pipe_peer_with(
    config: Config,
) -> (
    Peer<tokio::io::DuplexStream>,
    Connection,
    Arc<support::Probe>,
) {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client_end, server_end) = tokio::io::duplex(PIPE_BUFFER);
    let (peer, server) = tokio::time::timeout(BOUND, async {
        tokio::join!(
            Peer::handshake(client_end),
            Builder::default()
                .root(service)
                .config(config)
                .accept_io(server_end, None)
        )
    })
    .await
    .expect("handshake over the pipe");
    (peer, server.expect("server side of the pipe"), probe)
}

async fn raw_peer(addr: SocketAddr) -> Peer<TcpStream> {
    Peer::handshake(TcpStream::connect(addr).await.unwrap()).await
}

/// A well-behaved client still gets served.
async fn assert_serves(addr: SocketAddr) {
    tokio::time::timeout(BOUND, async {
        let conn = tether::connect(addr).await.expect("connect");
        let root = conn.root().await.expect("root");
        let sum = root.call_method("add", (20, 22)).await.expect("add");
        assert_eq!(sum, Value::from(42));
    })
    .await
    .expect("well-behaved client not served in time");
}

// ------------------------------------------------------------ handshake

/// A server that counts the connections it accepted (handshake done).
async fn start_counting() -> (SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let addr = start(Server::builder().on_connect(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    }))
    .await;
    (addr, accepted)
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_dropped_and_the_server_keeps_serving() {
    let (addr, accepted) = start_counting().await;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    // Exactly the ten bytes the server reads before it decides (a length
    // and the magic): with nothing of ours left unread, it closes cleanly
    // and we see all it sent. (With more, the kernel may answer the rest
    // with a reset, which would hide an answer.)
    raw.write_all(b"GET / HTTP").await.unwrap();
    assert_eq!(
        read_until_closed(&mut raw).await.unwrap(),
        b"",
        "the server answered garbage"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "garbage was accepted");
    assert_serves(addr).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn another_protocol_version_is_refused_with_a_version_mismatch_text() {
    let addr = start_default().await;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&hello(99, "Future")).await.unwrap();
    let answer = read_answer(&mut raw).await;
    assert_eq!(answer.status, 1, "{answer:?}");
    assert_eq!(answer.version, tether::protocol::PROTOCOL_VERSION);
    assert!(answer.text.contains("version mismatch"), "{answer:?}");
    assert!(answer.text.contains("99"), "{answer:?}");
    assert_eq!(read_until_closed(&mut raw).await.unwrap(), b"");
    assert_serves(addr).await;
}

#[tokio::test]
async fn a_malformed_hello_is_closed_without_being_accepted() {
    let (addr, accepted) = start_counting().await;
    let version = tether::protocol::PROTOCOL_VERSION.to_be_bytes();
    // A hello claiming 5000 bytes (at most 1024 are allowed): closed
    // without an answer.
    let mut too_long = 5_000u32.to_be_bytes().to_vec();
    too_long.extend_from_slice(b"TETHER");
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&too_long).await.unwrap();
    assert_eq!(read_until_closed(&mut raw).await.unwrap(), b"");

    // One too short to hold a version: closed without an answer.
    let mut no_version = 6u32.to_be_bytes().to_vec();
    no_version.extend_from_slice(b"TETHER");
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&no_version).await.unwrap();
    assert_eq!(read_until_closed(&mut raw).await.unwrap(), b"");

    // One of this version whose name claims 500 bytes but carries none:
    // refused, with the reason.
    let mut bad_name = 10u32.to_be_bytes().to_vec();
    bad_name.extend_from_slice(b"TETHER");
    bad_name.extend_from_slice(&version);
    bad_name.extend_from_slice(&500u16.to_be_bytes());
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&bad_name).await.unwrap();
    let answer = read_answer(&mut raw).await;
    assert_eq!(
        (answer.status, answer.text.as_str()),
        (1, "truncated handshake")
    );
    assert_eq!(read_until_closed(&mut raw).await.unwrap(), b"");

    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a malformed hello was accepted"
    );
    assert_serves(addr).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connecting_to_a_non_tether_server_fails_with_a_protocol_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Answers with HTTP and keeps the socket open: the client must decide
    // from the bytes, not wait for a close.
    let stranger = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
        let mut sink = Vec::new();
        let _ = sock.read_to_end(&mut sink).await;
    });
    let err = tokio::time::timeout(BOUND, tether::connect(addr))
        .await
        .expect("connect hung on a non-tether server")
        .expect_err("connected to a non-tether server");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(
        err.message().contains("does not speak the tether protocol"),
        "{err}"
    );
    stranger.abort();
}

/// In virtual time, over a pipe (no real I/O for the clock to skip past):
/// the client gives up exactly when its setting says, not at the 10 s
/// default.
#[tokio::test(start_paused = true)]
async fn a_silent_server_fails_the_client_handshake_after_its_timeout() {
    // A "server" that takes the hello and never answers.
    let (client_end, _silent) = tokio::io::duplex(PIPE_BUFFER);
    let config = Config::default().handshake_timeout(Duration::from_millis(200));
    let started = tokio::time::Instant::now();
    let err = tokio::time::timeout(
        BOUND,
        Builder::default()
            .config(config)
            .connect_io(client_end, None),
    )
    .await
    .expect("connect hung on a silent server")
    .expect_err("connected to a silent server");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(200));
}

#[tokio::test]
async fn a_handshake_that_never_comes_is_dropped_after_the_handshake_timeout() {
    // Cut off after 1 s; waited for at most 5 s, half the default of 10 s,
    // so a server that ignored the setting fails here.
    let config = Config::default().handshake_timeout(Duration::from_secs(1));
    let cut_off = Duration::from_secs(5);
    assert!(cut_off < Config::default().handshake_timeout);
    let addr = start(Server::builder().config(config)).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&hello(1, "Half")[..7]).await.unwrap();
    let closed = read_until_closed_within(&mut silent, cut_off).await;
    assert_eq!(closed.unwrap(), b"");
    let closed = read_until_closed_within(&mut half, cut_off).await;
    assert_eq!(closed.unwrap(), b"");
    assert_serves(addr).await;
}

// ------------------------------------------------------------ bad frames

#[tokio::test]
async fn a_garbage_frame_gets_a_protocol_violation_close() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    peer.send(&[0xff, 0xfe, 0x00, 0x13, 0x37]).await;
    let text = peer.expect_close().await;
    assert!(text.contains("protocol violation"), "{text}");
    assert!(text.contains("unknown message tag 255"), "{text}");
    assert_serves(addr).await;
}

#[tokio::test]
async fn a_frame_with_trailing_bytes_gets_a_protocol_violation_close() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    let mut payload = ping(1);
    payload.extend_from_slice(b"junk");
    peer.send(&payload).await;
    let text = peer.expect_close().await;
    assert!(text.contains("protocol violation"), "{text}");
    assert!(text.contains("trailing"), "{text}");
}

#[tokio::test]
async fn a_truncated_frame_then_disconnect_is_cleaned_up() {
    let conns: Arc<Mutex<Vec<Connection>>> = Arc::default();
    let seen = conns.clone();
    let addr =
        start(Server::builder().on_connect(move |c| seen.lock().unwrap().push(c.clone()))).await;

    let mut peer = raw_peer(addr).await;
    peer.root_id(1).await;
    wait_until(|| conns.lock().unwrap().len() == 1).await;
    let bad = conns.lock().unwrap()[0].clone();
    assert_eq!(bad.stats().exported, 1, "the root was exported");

    // Header says 100 bytes, 10 follow, then the socket closes.
    let mut bytes = 100u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 10]);
    peer.send_raw(&bytes).await;
    drop(peer);

    let reason = tokio::time::timeout(BOUND, bad.closed())
        .await
        .expect("the truncated connection was never closed");
    assert!(bad.is_closed());
    assert_ne!(reason.kind(), ErrorKind::Protocol, "{reason}");
    assert_eq!(bad.stats().exported, 0, "exports not released: {reason}");
    assert_eq!(bad.stats().serving, 0);

    assert_serves(addr).await;
    assert_eq!(conns.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_oversized_frame_header_gets_a_close_naming_the_limit_without_allocating_it() {
    let config = Config::default().max_frame_len(1024);
    let addr = start(Server::builder().config(config)).await;
    let mut peer = raw_peer(addr).await;
    // Only the header: the server must refuse on the claim alone, not wait
    // for (or make room for) a gigabyte. The largest-allocation counter is
    // process-wide and other tests run alongside, so the claim is far
    // beyond anything they allocate (they stay under a few MiB).
    peer.send_raw(&(1u32 << 30).to_be_bytes()).await;
    let text = peer.expect_close().await;
    assert!(text.contains("protocol violation"), "{text}");
    assert!(text.contains("limit of 1024 bytes"), "{text}");
    let largest = LARGEST_ALLOC.load(Ordering::Relaxed);
    assert!(
        largest < 1 << 30,
        "something allocated {largest} bytes after a 1 GiB claim"
    );
    assert_serves(addr).await;
}

#[tokio::test]
async fn a_deeply_nested_value_gets_a_close_about_nesting() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    let mut nested = Vec::with_capacity(20_001);
    for _ in 0..10_000 {
        nested.extend_from_slice(&[7, 1]); // a list of one item ...
    }
    nested.push(0); // ... down to None
    peer.send(&request(1, 0, &op_call_method("echo", &[nested])))
        .await;
    let text = peer.expect_close().await;
    assert!(text.contains("protocol violation"), "{text}");
    assert!(text.contains("nests deeper than"), "{text}");
    assert_serves(addr).await;
}

// ------------------------------------------------------------ ids, releases, cancels

#[tokio::test]
async fn a_request_on_an_unknown_id_gets_an_unknown_object_reply() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    for (seq, id) in [(1, 12_345), (2, 0), (3, u64::MAX)] {
        let reply = peer.add(seq, id, 1, 2).await;
        assert_unknown_object(reply, seq);
    }
    peer.assert_alive(7).await;
    // Still usable for real work.
    let root = peer.root_id(4).await;
    assert_eq!(
        peer.add(5, root, 1, 2).await,
        Msg::ReplyOk {
            seq: 5,
            value: Val::Int(3)
        }
    );
}

#[tokio::test]
async fn a_request_on_a_released_id_gets_an_unknown_object_reply() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    let root = peer.root_id(1).await;
    assert_eq!(
        peer.add(2, root, 2, 3).await,
        Msg::ReplyOk {
            seq: 2,
            value: Val::Int(5)
        }
    );
    peer.send(&release(&[(root, 1)])).await;
    assert_unknown_object(peer.add(3, root, 2, 3).await, 3);
    peer.assert_alive(9).await;

    // Exported again, the root gets a new id; the stale one stays dead.
    let again = peer.root_id(4).await;
    assert_ne!(again, root, "a released id was reissued unchanged");
    assert_unknown_object(peer.add(5, root, 1, 1).await, 5);
    assert_eq!(
        peer.add(6, again, 1, 1).await,
        Msg::ReplyOk {
            seq: 6,
            value: Val::Int(2)
        }
    );
}

#[tokio::test]
async fn a_released_counter_is_dropped_and_its_id_is_unknown() {
    let (mut peer, server, probe) = pipe_peer().await;

    let root = peer.root_id(1).await;
    let counter = peer.make_counter(2, root).await;
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 1);
    assert_eq!(server.stats().exported, 2);
    assert_eq!(
        peer.call(3, counter, &op_call_method("incr", &[])).await,
        Msg::ReplyOk {
            seq: 3,
            value: Val::Int(1)
        }
    );

    peer.send(&release(&[(counter, 1)])).await;
    assert_unknown_object(peer.call(4, counter, &op_call_method("incr", &[])).await, 4);
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 0);
    assert_eq!(server.stats().exported, 1, "only the root is left");
    peer.assert_alive(5).await;
}

#[tokio::test]
async fn a_release_of_an_unknown_id_is_ignored() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    peer.send(&release(&[(424_242, 1), (0, 0), (u64::MAX, u64::MAX)]))
        .await;
    peer.assert_alive(1).await;
    let root = peer.root_id(2).await;
    assert_eq!(
        peer.add(3, root, 1, 1).await,
        Msg::ReplyOk {
            seq: 3,
            value: Val::Int(2)
        }
    );
}

#[tokio::test]
async fn a_release_with_a_huge_count_removes_the_object_without_crashing() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    let root = peer.root_id(1).await;
    peer.send(&release(&[(root, u64::MAX)])).await;
    peer.assert_alive(2).await;
    assert_unknown_object(peer.add(3, root, 1, 1).await, 3);
    peer.assert_alive(4).await;
    assert_serves(addr).await;
}

#[tokio::test]
async fn a_release_claiming_more_pairs_than_the_frame_holds_is_a_protocol_violation() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    let mut payload = vec![MSG_RELEASE];
    varint(&mut payload, u64::MAX);
    peer.send(&payload).await;
    let text = peer.expect_close().await;
    assert!(text.contains("protocol violation"), "{text}");
    assert_serves(addr).await;
}

#[tokio::test]
async fn a_cancel_for_an_unknown_request_is_ignored() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    peer.send(&cancel(4_242)).await;
    peer.send(&cancel(u64::MAX)).await;
    peer.assert_alive(1).await;
}

#[tokio::test]
async fn reusing_the_number_of_a_running_request_is_a_protocol_violation() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(service));
    let mut peer = raw_peer(addr).await;
    let root = peer.root_id(1).await;
    peer.send(&request(
        7,
        root,
        &op_call_method("slow", &[int_value(5_000)]),
    ))
    .await;
    wait_until(|| probe.started.load(Ordering::SeqCst) == 1).await;
    peer.send(&request(
        7,
        root,
        &op_call_method("add", &[int_value(1), int_value(2)]),
    ))
    .await;
    let text = peer.expect_close().await;
    assert!(text.contains("protocol violation"), "{text}");
    assert!(text.contains("reused request number 7"), "{text}");
    // The running call was aborted with the connection, not left to finish.
    wait_until(|| probe.aborted.load(Ordering::SeqCst) == 1).await;
    assert_serves(addr).await;
}

#[tokio::test]
async fn a_peer_chosen_deadline_is_honoured_at_both_extremes() {
    let addr = start_default().await;
    let mut peer = raw_peer(addr).await;
    let root = peer.root_id(1).await;
    // u64::MAX milliseconds must not overflow the server's clock arithmetic.
    let add = op_call_method("add", &[int_value(1), int_value(2)]);
    peer.send(&request_with_deadline(2, root, u64::MAX, &add))
        .await;
    assert_eq!(
        peer.recv_msg().await,
        Msg::ReplyOk {
            seq: 2,
            value: Val::Int(3)
        }
    );
    // 1 ms for a 10 s call: a Timeout reply, not a hang.
    let slow = op_call_method("slow", &[int_value(10_000)]);
    peer.send(&request_with_deadline(3, root, 1, &slow)).await;
    match peer.recv_msg().await {
        Msg::ReplyErr {
            seq: 3,
            kind,
            message,
            ..
        } => assert_eq!(kind, KIND_TIMEOUT, "{message}"),
        other => panic!("expected a timeout reply, got {other:?}"),
    }
    peer.assert_alive(4).await;
}

// ------------------------------------------------------------ under load

/// One hostile connection, by `round`: garbage for a handshake, a garbage
/// frame after a good handshake, or a 4 GiB frame header.
async fn misbehave(addr: SocketAddr, round: usize) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    match round % 3 {
        0 => {
            let _ = sock.write_all(b"\x00\x00\x00\x10NOT-TETHER-AT-ALL").await;
        }
        1 => {
            let mut peer = Peer::handshake(sock).await;
            peer.send(&[0xde, 0xad, 0xbe, 0xef]).await;
            let text = peer.expect_close().await;
            assert!(text.contains("protocol violation"), "{text}");
            return;
        }
        _ => {
            let mut peer = Peer::handshake(sock).await;
            peer.send_raw(&u32::MAX.to_be_bytes()).await;
            let text = peer.expect_close().await;
            assert!(text.contains("over the limit"), "{text}");
            return;
        }
    }
    let _ = read_until_closed(&mut sock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_clients_are_served_while_a_bad_client_sends_garbage() {
    let addr = start_default().await;
    let stop = Arc::new(AtomicBool::new(false));
    let (rounds_tx, mut rounds_rx) = tokio::sync::mpsc::unbounded_channel();
    let bad = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                misbehave(addr, round).await;
                round += 1;
                let _ = rounds_tx.send(round);
            }
            round
        }
    });
    // Let each kind of misbehaviour happen once before the good clients start.
    for _ in 0..3 {
        tokio::time::timeout(BOUND, rounds_rx.recv())
            .await
            .expect("bad client stalled")
            .expect("bad client failed");
    }

    let good: Vec<_> = (0..10i64)
        .map(|client| {
            tokio::spawn(async move {
                let conn = tether::connect(addr).await.expect("connect");
                let root = conn.root().await.expect("root");
                for i in 0..50i64 {
                    let sum = root.call_method("add", (client, i)).await.expect("add");
                    assert_eq!(sum, Value::from(client + i));
                    let echoed = root
                        .call_method("echo", (format!("{client}:{i}"),))
                        .await
                        .expect("echo");
                    assert_eq!(echoed, Value::from(format!("{client}:{i}")));
                }
            })
        })
        .collect();
    tokio::time::timeout(BOUND, async {
        for task in good {
            task.await.expect("a well-behaved client failed");
        }
    })
    .await
    .expect("well-behaved clients did not finish in time");

    stop.store(true, Ordering::SeqCst);
    let rounds = tokio::time::timeout(BOUND, bad)
        .await
        .expect("bad client did not stop")
        .expect("bad client panicked");
    assert!(rounds >= 3, "only {rounds} bad rounds ran");
}

// ------------------------------------------------------------ backpressure

/// A peer that writes but never reads: the server's queue for it is capped
/// (`Config::max_queued_bytes`), then the peer is dropped with a reason.
/// Over an in-memory pipe, so what the peer gets the server to take is
/// counted exactly: at most the limit and the pipe's buffers.
#[tokio::test]
async fn a_peer_that_never_reads_cannot_make_the_server_buffer_without_bound() {
    const LIMIT: usize = 1 << 20;
    let config = Config::default().max_queued_bytes(LIMIT);
    let (mut peer, conn, _probe) = pipe_peer_with(config).await;
    // Pipeline pings and never read a pong: once the pipe back is full the
    // server has to queue its pongs, up to its limit, then drop the peer.
    let mut pings = Vec::new();
    for n in 0..1_000u64 {
        pings.extend_from_slice(&frame(&ping(n)));
    }
    // Far more than a server keeping to its limit takes.
    let most = 16 * LIMIT;
    let (mut sent, mut at) = (0usize, 0usize);
    let refused = tokio::time::timeout(BOUND, async {
        while sent < most {
            match peer.io.write(&pings[at..]).await {
                Ok(n) => {
                    sent += n;
                    at = (at + n) % pings.len();
                }
                Err(err) => return Some(err),
            }
        }
        None
    })
    .await
    .expect("the server neither read on nor dropped the peer");
    let refused = refused.unwrap_or_else(|| panic!("the server took {sent} bytes and went on"));
    eprintln!("the server took {sent} bytes of pings before dropping the peer");
    assert_eq!(refused.kind(), std::io::ErrorKind::BrokenPipe, "{refused}");
    assert!(
        sent <= LIMIT + 3 * PIPE_BUFFER,
        "the server took {sent} bytes from a peer that does not read (limit {LIMIT})"
    );
    // It gave up on that peer with a reason.
    let reason = tokio::time::timeout(BOUND, conn.closed())
        .await
        .expect("closed");
    assert_eq!(reason.kind(), ErrorKind::LimitExceeded, "{reason}");
    assert!(reason.message().contains("not reading"), "{reason}");
}

// ------------------------------------------------------------ forged ids and floods

#[tokio::test]
async fn an_id_exported_to_another_connection_is_unknown_on_this_one() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(service));

    let mut owner = raw_peer(addr).await;
    let root = owner.root_id(1).await;
    let counter = owner.make_counter(2, root).await;

    // Another connection names the owner's counter: its own table has no
    // such id, whatever the owner's holds.
    let mut thief = raw_peer(addr).await;
    let thief_root = thief.root_id(1).await;
    assert_ne!(thief_root, counter);
    let reply = thief.call(2, counter, &op_call_method("incr", &[])).await;
    assert_unknown_object(reply, 2);
    // Nor can it release the owner's object.
    thief.send(&release(&[(counter, 1)])).await;
    thief.assert_alive(3).await;

    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 1);
    assert_eq!(
        owner.call(3, counter, &op_call_method("incr", &[])).await,
        Msg::ReplyOk {
            seq: 3,
            value: Val::Int(1)
        }
    );
}

#[tokio::test]
async fn calls_beyond_the_serving_limit_are_refused_and_the_connection_recovers() {
    const LIMIT: usize = 4;
    let service = TestService::default();
    let probe = service.probe.clone();
    let server = Server::builder()
        .config(Config::default().max_serving(LIMIT))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(service));
    let mut peer = raw_peer(addr).await;
    let root = peer.root_id(1).await;

    // LIMIT calls that stay in progress, then a flood of 200 more in one write.
    let slow = op_call_method("slow", &[int_value(60_000)]);
    let mut burst = Vec::new();
    for seq in 0..LIMIT as u64 {
        burst.extend_from_slice(&frame(&request_with_deadline(
            100 + seq,
            root,
            120_000,
            &slow,
        )));
    }
    peer.send_raw(&burst).await;
    wait_until(|| probe.started.load(Ordering::SeqCst) == LIMIT).await;
    let add = op_call_method("add", &[int_value(1), int_value(2)]);
    let mut flood = Vec::new();
    for seq in 0..200u64 {
        flood.extend_from_slice(&frame(&request(1_000 + seq, root, &add)));
    }
    peer.send_raw(&flood).await;
    for want in 0..200u64 {
        match peer.recv_msg().await {
            Msg::ReplyErr {
                seq, kind, message, ..
            } => {
                assert_eq!(seq, 1_000 + want);
                assert_eq!(kind, KIND_LIMIT_EXCEEDED, "{message}");
                assert!(message.contains("too many calls"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(probe.started.load(Ordering::SeqCst), LIMIT, "none ran");

    // Cancelling the slow calls frees their places.
    for seq in 0..LIMIT as u64 {
        peer.send(&cancel(100 + seq)).await;
    }
    wait_until(|| probe.aborted.load(Ordering::SeqCst) == LIMIT).await;
    // A cancelled call is not answered (its caller has gone): the next
    // frame is the reply to a new call, which now has room to run.
    assert_eq!(
        peer.add(5, root, 20, 22).await,
        Msg::ReplyOk {
            seq: 5,
            value: Val::Int(42)
        }
    );
    assert_serves(addr).await;
}

#[tokio::test]
async fn a_flood_of_releases_leaves_the_table_intact_and_the_server_serving() {
    let (mut peer, server, probe) = pipe_peer().await;
    let root = peer.root_id(1).await;
    let counter = peer.make_counter(2, root).await;

    // 20 000 release frames naming ids the peer never held, or zero counts
    // of ones it holds: none of them may remove a live object.
    for round in 0..20u64 {
        let mut flood = Vec::new();
        for i in 0..1_000u64 {
            let pairs = [
                (counter + 1 + round * 1_000 + i, 1),
                (counter, 0),
                (root, 0),
            ];
            flood.extend_from_slice(&frame(&release(&pairs)));
        }
        peer.send_raw(&flood).await;
    }
    peer.assert_alive(3).await;
    assert_eq!(server.stats().exported, 2, "root and counter stay");
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 1);
    assert_eq!(
        peer.call(4, counter, &op_call_method("incr", &[])).await,
        Msg::ReplyOk {
            seq: 4,
            value: Val::Int(1)
        }
    );
}

#[tokio::test]
async fn a_request_claiming_a_depth_past_the_limit_is_refused_and_the_connection_goes_on() {
    let server = Server::builder()
        .config(Config::default().max_call_depth(8))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(TestService::default()));
    let mut peer = raw_peer(addr).await;
    let root = peer.root_id(1).await;
    let add = op_call_method("add", &[int_value(1), int_value(2)]);
    // The depth follows the operation: 9, then u32::MAX.
    for (seq, depth) in [(2u64, 9u64), (3, u32::MAX as u64)] {
        let mut deep = request(seq, root, &add);
        varint(&mut deep, depth);
        peer.send(&deep).await;
        match peer.recv_msg().await {
            Msg::ReplyErr {
                seq: got,
                kind,
                message,
                ..
            } => {
                assert_eq!(got, seq);
                assert_eq!(kind, KIND_LIMIT_EXCEEDED, "{message}");
                assert!(message.contains("max_call_depth"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // At the limit, and without a depth at all, calls run.
    let mut at_limit = request(4, root, &add);
    varint(&mut at_limit, 8);
    peer.send(&at_limit).await;
    peer.send(&request(5, root, &add)).await;
    for seq in [4, 5] {
        match peer.recv_msg().await {
            Msg::ReplyOk { seq: got, value } => {
                assert_eq!((got, value), (seq, Val::Int(3)));
            }
            other => panic!("expected 3, got {other:?}"),
        }
    }
}
