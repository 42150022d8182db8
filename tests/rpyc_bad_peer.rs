//! A misbehaving RPyC peer, played with raw frames against a tether
//! server: garbage, truncated, oversized and compressed-bomb frames,
//! forged object ids, an RPyC 5.x client, CLOSE, and a peer past each of
//! the per-connection limits. Each gets a clear answer or a closed
//! connection, and the server goes on serving others.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tether::rpyc::{Brine, Session};
use tether::{Config, ErrorKind, NetRef, Result, Server, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/zlib_bomb.rs"]
mod zlib_bomb;

struct Calc;

#[tether::expose]
impl Calc {
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

const GETROOT: i128 = 3;
const GETATTR: i128 = 4;
const CALL: i128 = 7;
const CALLATTR: i128 = 8;
const DEL: i128 = 15;

async fn start(max_frame_len: usize) -> SocketAddr {
    let server = Server::builder()
        .config(Config::default().max_frame_len(max_frame_len))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve_fn(|| tether::NetRef::new(Calc), std::future::pending()));
    addr
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.push(0);
    out.extend_from_slice(payload);
    out.push(b'\n');
    out
}

fn request(seq: i128, handler: i128, args: Brine) -> Vec<u8> {
    let mut payload = vec![1u8];
    payload.extend(
        Brine::Tuple(vec![
            Brine::Int(seq),
            Brine::Tuple(vec![Brine::Int(handler), args]),
        ])
        .encode(),
    );
    frame(&payload)
}

fn boxed(label: i128, value: Brine) -> Brine {
    Brine::Tuple(vec![Brine::Int(label), value])
}

fn no_args() -> Brine {
    boxed(1, Brine::Tuple(vec![]))
}

/// The next frame's payload, or `None` at end of stream.
async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut header))
        .await
        .expect("an answer in time")
        .ok()?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    assert_eq!(header[4], 0, "tether sends uncompressed frames");
    let mut body = vec![0u8; len + 1];
    s.read_exact(&mut body).await.ok()?;
    assert_eq!(body.pop(), Some(b'\n'));
    Some(body)
}

/// The (message type, seq, args) of a 6.x payload.
fn decode(payload: &[u8]) -> (u8, Brine, Brine) {
    let Brine::Tuple(pair) = Brine::decode(&payload[1..]).unwrap() else {
        panic!("not a pair")
    };
    let [seq, args]: [Brine; 2] = pair.try_into().unwrap();
    (payload[0], seq, args)
}

/// The server closes cleanly: every test here sends only whole frames (or
/// a header alone), which the server reads before closing, so nothing of
/// ours is left unread for the kernel to answer with a reset.
async fn assert_closed(s: &mut TcpStream) {
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .expect("a clean end of stream");
    assert_eq!(n, 0, "nothing but the end of the stream: {rest:02x?}");
}

/// A fresh RPyC client still gets the root.
async fn still_serves(addr: SocketAddr) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&request(0, GETROOT, no_args())).await.unwrap();
    let (kind, seq, _) = decode(&read_frame(&mut s).await.unwrap());
    assert_eq!((kind, seq), (2, Brine::Int(0)));
}

/// The (module, class) of an exception reply.
fn exception_class(args: &Brine) -> (String, String) {
    match args.as_tuple().unwrap()[0].as_tuple().unwrap() {
        [Brine::Str(m), Brine::Str(c)] => (m.clone(), c.clone()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn garbage_after_a_frame_header_closes_that_connection_only() {
    let addr = start(1 << 20).await;
    for payload in [
        &[9u8, 0x50][..],                                   // unknown message type
        &[1, 0x07][..],                                     // unknown brine tag
        &[1, 0x11, 0x50][..],                               // truncated brine
        &[2, 0x11, 0x50, 0x15, 0xff, 0xff, 0xff, 0xff][..], // lying tuple length
        &[][..],                                            // empty payload
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&frame(payload)).await.unwrap();
        assert_closed(&mut s).await;
    }
    let mut deep = vec![1u8];
    deep.extend(std::iter::repeat_n(0x10, 100_000));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&frame(&deep)).await.unwrap();
    assert_closed(&mut s).await;
    still_serves(addr).await;
}

#[tokio::test]
async fn oversized_frames_and_inflation_bombs_are_refused() {
    let addr = start(4096).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x00, 0x10, 0x00, 0x00, 0x00]).await.unwrap();
    assert_closed(&mut s).await;

    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 1 << 20]).unwrap();
    let bomb = z.finish().unwrap();
    let mut bytes = (bomb.len() as u32).to_be_bytes().to_vec();
    bytes.push(1);
    bytes.extend_from_slice(&bomb);
    bytes.push(b'\n');
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    assert_closed(&mut s).await;
    still_serves(addr).await;
}

#[tokio::test]
async fn a_compressed_request_is_served() {
    let addr = start(1 << 20).await;
    let payload = {
        let mut p = vec![1u8];
        p.extend(
            Brine::Tuple(vec![
                Brine::Int(7),
                Brine::Tuple(vec![Brine::Int(GETROOT), no_args()]),
            ])
            .encode(),
        );
        p
    };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&payload).unwrap();
    let compressed = z.finish().unwrap();
    let mut bytes = (compressed.len() as u32).to_be_bytes().to_vec();
    bytes.push(1);
    bytes.extend_from_slice(&compressed);
    bytes.push(b'\n');
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    let (kind, seq, _) = decode(&read_frame(&mut s).await.unwrap());
    assert_eq!((kind, seq), (2, Brine::Int(7)));
}

#[tokio::test]
async fn forged_object_ids_get_an_exception_and_the_connection_goes_on() {
    let addr = start(1 << 20).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let forged = boxed(
        3,
        Brine::Tuple(vec![
            Brine::Str("tether.Calc".into()),
            Brine::Int(1),
            Brine::Int(12345),
        ]),
    );
    let args = boxed(
        2,
        Brine::Tuple(vec![forged.clone(), boxed(1, Brine::Str("add".into()))]),
    );
    s.write_all(&request(0, GETATTR, args)).await.unwrap();
    let (kind, seq, exc) = decode(&read_frame(&mut s).await.unwrap());
    assert_eq!((kind, seq), (3, Brine::Int(0)));
    assert_eq!(
        exception_class(&exc),
        ("builtins".into(), "ReferenceError".into())
    );

    // A DEL of a forged id releases nothing; its reply is None.
    let del = boxed(2, Brine::Tuple(vec![forged, boxed(1, Brine::Int(5))]));
    s.write_all(&request(1, DEL, del)).await.unwrap();
    let (kind, seq, _) = decode(&read_frame(&mut s).await.unwrap());
    assert_eq!((kind, seq), (2, Brine::Int(1)));

    s.write_all(&request(2, GETROOT, no_args())).await.unwrap();
    let (kind, seq, _) = decode(&read_frame(&mut s).await.unwrap());
    assert_eq!((kind, seq), (2, Brine::Int(2)));
}

#[tokio::test]
async fn a_missing_attribute_is_an_attribute_error_each_time_it_is_asked() {
    let addr = start(1 << 20).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&request(0, GETROOT, no_args())).await.unwrap();
    let (_, _, root) = decode(&read_frame(&mut s).await.unwrap());
    let pack = root.as_tuple().unwrap()[1].clone();
    assert_eq!(root.as_tuple().unwrap()[0], Brine::Int(4), "by reference");
    // Python asks a failed lookup twice; both are answered alike.
    for seq in 1..=2 {
        let args = boxed(
            2,
            Brine::Tuple(vec![
                boxed(3, pack.clone()),
                boxed(1, Brine::Str("nope".into())),
            ]),
        );
        s.write_all(&request(seq, GETATTR, args)).await.unwrap();
        let (kind, _, exc) = decode(&read_frame(&mut s).await.unwrap());
        assert_eq!(kind, 3);
        assert_eq!(
            exception_class(&exc),
            ("builtins".into(), "AttributeError".into())
        );
    }
}

#[tokio::test]
async fn a_5x_client_is_told_in_its_own_envelope_then_disconnected() {
    let addr = start(1 << 20).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // 5.x: brine of (MSG_REQUEST, seq, (HANDLE_GETROOT, ())).
    let v5 = Brine::Tuple(vec![
        Brine::Int(1),
        Brine::Int(0),
        Brine::Tuple(vec![Brine::Int(GETROOT), no_args()]),
    ]);
    s.write_all(&frame(&v5.encode())).await.unwrap();
    let answer = Brine::decode(&read_frame(&mut s).await.unwrap()).unwrap();
    let parts = answer.as_tuple().unwrap();
    assert_eq!(parts[..2], [Brine::Int(3), Brine::Int(0)]);
    let message = &parts[2].as_tuple().unwrap()[1];
    assert!(format!("{message:?}").contains("RPyC 5.x"), "{message:?}");
    assert_closed(&mut s).await;
}

#[tokio::test]
async fn close_is_never_answered_the_socket_just_closes() {
    let addr = start(1 << 20).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&request(0, 2, no_args())).await.unwrap();
    assert_closed(&mut s).await;
}

#[tokio::test]
async fn a_del_answered_by_the_peer_is_acknowledged_with_a_reply_it_ignores() {
    // rpyc leaves Nagle's algorithm on: its answer to our DEL must not wait
    // for a delayed ACK, so tether answers it with a reply naming no request.
    let addr = start(1 << 20).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&request(0, GETROOT, no_args())).await.unwrap();
    let (_, _, root) = decode(&read_frame(&mut s).await.unwrap());
    let root_pack = root.as_tuple().unwrap()[1].clone();
    // CALLATTR root.add(1, <a "Python" object>): the object arrives, the
    // call fails on its type, and tether releases the object with a DEL.
    let ours = Brine::Tuple(vec![
        Brine::Str("builtins.object".into()),
        Brine::Int(7),
        Brine::Int(8),
    ]);
    let args = boxed(
        2,
        Brine::Tuple(vec![
            boxed(3, root_pack),
            boxed(1, Brine::Str("add".into())),
            boxed(
                2,
                Brine::Tuple(vec![boxed(1, Brine::Int(1)), boxed(4, ours.clone())]),
            ),
            boxed(1, Brine::Tuple(vec![])),
        ]),
    );
    s.write_all(&request(1, 8, args)).await.unwrap();
    let mut del_seq = None;
    let mut answered = false;
    while del_seq.is_none() || !answered {
        let (kind, seq, args) = decode(&read_frame(&mut s).await.unwrap());
        match kind {
            3 => {
                assert_eq!(seq, Brine::Int(1));
                assert_eq!(
                    exception_class(&args),
                    ("builtins".into(), "TypeError".into())
                );
                answered = true;
            }
            1 => {
                let parts = args.as_tuple().unwrap();
                assert_eq!(parts[0], Brine::Int(DEL));
                assert!(format!("{:?}", parts[1]).contains("builtins.object"));
                del_seq = Some(seq);
            }
            other => panic!("unexpected message type {other}"),
        }
    }
    // Answer the DEL as rpyc does; tether acknowledges the answer.
    let mut payload = vec![2u8];
    payload.extend(Brine::Tuple(vec![del_seq.unwrap(), boxed(1, Brine::None)]).encode());
    s.write_all(&frame(&payload)).await.unwrap();
    let (kind, seq, value) = decode(&read_frame(&mut s).await.unwrap());
    assert_eq!(
        (kind, seq, value),
        (2, Brine::Int(-1), boxed(1, Brine::None))
    );
}

// ---------------------------------------------------------------------
// Decoding budget, compression bombs and the per-connection limits, each
// against a connection served with `serve_io` so the test holds its
// `Session` and can wait for it to end.

/// The service of the tests below.
#[derive(Clone, Default)]
struct Lab {
    /// `hold` returns once this is notified.
    gate: Arc<tokio::sync::Notify>,
}

#[tether::expose]
impl Lab {
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    #[method]
    fn echo(&self, value: Value) -> Value {
        value
    }

    /// Holds its argument until the gate opens.
    #[method]
    async fn hold(&self, data: Value) -> i64 {
        self.gate.notified().await;
        drop(data);
        1
    }

    /// A new object each time.
    #[method]
    fn make(&self) -> NetRef {
        NetRef::new(self.clone())
    }

    #[method]
    async fn apply(&self, f: NetRef) -> Result<Value> {
        f.call(()).await
    }

    #[method]
    fn blob(&self, n: usize) -> Value {
        Value::Bytes(vec![7; n].into())
    }
}

/// A listener; each connection the test makes is served `lab` under
/// `config` with `serve_io`.
struct Host {
    listener: TcpListener,
    lab: Lab,
    config: Config,
}

impl Host {
    async fn new(config: Config) -> Host {
        Host {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            lab: Lab::default(),
            config,
        }
    }

    /// A raw client, and the server's side of its connection.
    async fn connect(&self) -> (Peer, Session) {
        let addr = self.listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), self.listener.accept());
        let (stream, peer) = accepted.unwrap();
        let session = tether::rpyc::serve_io(
            stream,
            NetRef::new(self.lab.clone()),
            self.config.clone(),
            Some(peer.to_string()),
        );
        let peer = Peer {
            s: client.unwrap(),
            released: Vec::new(),
        };
        (peer, session)
    }

    /// A fresh client is served: it gets the root and adds.
    async fn still_serves(&self) {
        let (mut peer, _session) = self.connect().await;
        let root = peer.root(0).await;
        let (kind, value) = peer.call(1, &root, "add", two(1, 2)).await;
        assert_eq!((kind, value), (2, boxed(1, Brine::Int(3))));
    }
}

/// Why the server's side of a connection ended (the connection must end;
/// the timeout only turns a hang into a failure).
async fn ended(session: &Session) -> tether::Error {
    tokio::time::timeout(Duration::from_secs(60), session.closed())
        .await
        .expect("the server closes the connection")
}

/// A raw RPyC client.
struct Peer {
    s: TcpStream,
    /// Id packs the server released with DEL on the way.
    released: Vec<(Brine, Brine)>,
}

impl Peer {
    async fn send(&mut self, seq: i128, handler: i128, args: Brine) {
        self.s
            .write_all(&request(seq, handler, args))
            .await
            .unwrap();
    }

    async fn send_payload(&mut self, payload: &[u8]) {
        self.s.write_all(&frame(payload)).await.unwrap();
    }

    /// The answer (message type, boxed value or exception) to our
    /// request `seq`; DELs the server sends on the way are recorded.
    async fn answer(&mut self, seq: i128) -> (u8, Brine) {
        loop {
            let payload = read_frame(&mut self.s).await.expect("an answer");
            let (kind, got, args) = decode(&payload);
            if kind == 1 {
                let parts = args.as_tuple().unwrap();
                assert_eq!(parts[0], Brine::Int(DEL), "an unexpected request");
                let del = parts[1].as_tuple().unwrap()[1].as_tuple().unwrap();
                self.released
                    .push((del[0].as_tuple().unwrap()[1].clone(), del[1].clone()));
                continue;
            }
            assert_eq!(got, Brine::Int(seq), "answers come in order here");
            return (kind, args);
        }
    }

    /// GETROOT as `seq`: the root's id pack.
    async fn root(&mut self, seq: i128) -> Brine {
        self.send(seq, GETROOT, no_args()).await;
        let (kind, root) = self.answer(seq).await;
        assert_eq!(kind, 2);
        root.as_tuple().unwrap()[1].clone()
    }

    /// `obj.name(*positional)` as `seq` (CALLATTR), positional boxed.
    async fn call(
        &mut self,
        seq: i128,
        obj: &Brine,
        name: &str,
        positional: Vec<Brine>,
    ) -> (u8, Brine) {
        self.send(seq, CALLATTR, callattr_args(obj, name, positional))
            .await;
        self.answer(seq).await
    }
}

/// Two integers, boxed, as positional arguments.
fn two(a: i128, b: i128) -> Vec<Brine> {
    vec![boxed(1, Brine::Int(a)), boxed(1, Brine::Int(b))]
}

fn callattr_args(obj: &Brine, name: &str, positional: Vec<Brine>) -> Brine {
    boxed(
        2,
        Brine::Tuple(vec![
            boxed(3, obj.clone()),
            boxed(1, Brine::Str(name.into())),
            boxed(2, Brine::Tuple(positional)),
            boxed(1, Brine::Tuple(vec![])),
        ]),
    )
}

/// The payload of CALLATTR `seq` calling `obj.name(<n Nones>, *rest)`,
/// written out without building the tuple of `None`s.
fn call_with_nones(seq: i128, obj: &Brine, name: &str, n: usize, rest: &[Brine]) -> Vec<u8> {
    let (mut payload, suffix) = around_nones(seq, obj, name, n, rest);
    payload.extend(std::iter::repeat_n(0x00, n));
    payload.extend(suffix);
    payload
}

/// The same payload as one compressed frame at zlib `level`.
fn compressed_call_with_nones(seq: i128, obj: &Brine, name: &str, n: usize, level: u32) -> Vec<u8> {
    let (prefix, suffix) = around_nones(seq, obj, name, n, &[]);
    let compressed = zlib_bomb::zlib_with_zeros(&prefix, n, &suffix, level);
    let mut out = (compressed.len() as u32).to_be_bytes().to_vec();
    out.push(1);
    out.extend_from_slice(&compressed);
    out.push(b'\n');
    out
}

/// What comes before and after the `None`s of `call_with_nones`.
fn around_nones(
    seq: i128,
    obj: &Brine,
    name: &str,
    n: usize,
    rest: &[Brine],
) -> (Vec<u8>, Vec<u8>) {
    let mut p = vec![1u8, 0x11];
    p.extend(Brine::Int(seq).encode());
    p.push(0x11);
    p.extend(Brine::Int(CALLATTR).encode());
    p.extend([0x11, 0x52, 0x13]); // (2, 4 boxed items)
    p.extend(boxed(3, obj.clone()).encode());
    p.extend(boxed(1, Brine::Str(name.into())).encode());
    p.extend([0x11, 0x52, 0x14, 1 + rest.len() as u8]); // (2, positional)
    p.extend([0x11, 0x51, 0x15]); // (1, tuple of n ...
    p.extend((n as u32).to_be_bytes());
    let mut suffix = Vec::new(); // ... Nones), then the rest
    for item in rest {
        suffix.extend(item.encode());
    }
    suffix.extend(boxed(1, Brine::Tuple(vec![])).encode());
    (p, suffix)
}

/// The message of an exception reply.
fn exception_message(args: &Brine) -> String {
    match &args.as_tuple().unwrap()[1].as_tuple().unwrap()[0] {
        Brine::Str(m) => m.clone(),
        other => panic!("{other:?}"),
    }
}

/// An exception reply that says a limit was passed, naming `setting`.
fn assert_limit(kind: u8, args: &Brine, setting: &str) {
    assert_eq!(kind, 3, "an exception: {args:?}");
    assert_eq!(
        exception_class(args),
        ("builtins".into(), "RuntimeError".into())
    );
    let message = exception_message(args);
    assert!(message.contains(setting), "{message}");
}

/// An object of the peer's, as it would send it: (4, id pack).
fn peers_object(n: i128) -> (Brine, Brine) {
    let pack = Brine::Tuple(vec![
        Brine::Str("builtins.function".into()),
        Brine::Int(77),
        Brine::Int(n),
    ]);
    (boxed(4, pack.clone()), pack)
}

#[tokio::test]
async fn the_issues_zlib_bomb_is_refused_as_a_bomb_and_others_are_served() {
    // 60 MiB of `None`s in ~61 KB: about 1000:1.
    let host = Host::new(Config::default()).await;
    let (mut peer, session) = host.connect().await;
    let pack = peer.root(0).await;
    let bomb = compressed_call_with_nones(1, &pack, "echo", 60 << 20, 9);
    assert!(bomb.len() < 70_000, "{}", bomb.len());
    peer.s.write_all(&bomb).await.unwrap();
    let reason = ended(&session).await;
    assert_eq!(reason.kind(), ErrorKind::Protocol, "{reason:#}");
    assert!(reason.message().contains("compression bomb"), "{reason:#}");
    assert_closed(&mut peer.s).await;
    host.still_serves().await;
}

#[tokio::test]
async fn a_level_1_bomb_within_the_ratio_fails_its_request_alone() {
    // What rpyc itself would send: zlib level 1 (~229:1). It inflates
    // (on the blocking pool: over 64 KiB), but its million `None`s would
    // take 32 MB decoded: over the budget, so the request fails and the
    // connection goes on.
    let host = Host::new(Config::default().max_decoded_bytes(8 << 20)).await;
    let (mut peer, session) = host.connect().await;
    let pack = peer.root(0).await;
    let frame = compressed_call_with_nones(1, &pack, "echo", 1 << 20, 1);
    peer.s.write_all(&frame).await.unwrap();
    let (kind, args) = peer.answer(1).await;
    assert_limit(kind, &args, "max_decoded_bytes");
    let (kind, value) = peer.call(2, &pack, "add", two(1, 2)).await;
    assert_eq!((kind, value), (2, boxed(1, Brine::Int(3))));
    assert!(!session.is_closed());
    assert_eq!(session.stats().serving, 0);
}

#[tokio::test]
async fn a_request_over_the_decoding_budget_fails_alone_and_its_references_are_released() {
    let host = Host::new(Config::default().max_decoded_bytes(64 * 1024)).await;
    let (mut peer, session) = host.connect().await;
    let pack = peer.root(0).await;
    // 10 000 `None`s take 320 KB decoded; the request also carries an
    // object of ours, twice, which the server must give back.
    let (ours, our_pack) = peers_object(5);
    let payload = call_with_nones(1, &pack, "echo", 10_000, &[ours.clone(), ours]);
    peer.send_payload(&payload).await;
    let (kind, args) = peer.answer(1).await;
    assert_limit(kind, &args, "max_decoded_bytes");
    assert!(
        exception_message(&args).contains("65536"),
        "{}",
        exception_message(&args)
    );
    // The same request within the budget is served.
    let payload = call_with_nones(2, &pack, "echo", 100, &[]);
    peer.send_payload(&payload).await;
    let (kind, _) = peer.answer(2).await;
    assert_eq!(kind, 2);
    // The release of both receipts of our object was sent before the
    // answer to the next request.
    let (kind, _) = peer.call(3, &pack, "add", two(1, 1)).await;
    assert_eq!(kind, 2);
    assert_eq!(peer.released, [(our_pack, boxed(1, Brine::Int(2)))]);
    assert_eq!(session.stats().imported, 0);
}

#[tokio::test]
async fn arguments_held_by_a_call_in_progress_count_against_the_budget_until_it_ends() {
    let host = Host::new(Config::default().max_decoded_bytes(100_000)).await;
    let (mut peer, _session) = host.connect().await;
    let pack = peer.root(0).await;
    let text = |n| boxed(1, Brine::Str("x".repeat(n)));
    // Held by `hold` until the gate opens: 60 KB of the 100 KB.
    peer.send(
        1,
        CALLATTR,
        callattr_args(&pack, "hold", vec![text(60_000)]),
    )
    .await;
    let (kind, args) = peer.call(2, &pack, "echo", vec![text(60_000)]).await;
    assert_limit(kind, &args, "held by calls still in progress");
    host.lab.gate.notify_one();
    let (kind, _) = peer.answer(1).await;
    assert_eq!(kind, 2);
    let (kind, value) = peer.call(3, &pack, "echo", vec![text(60_000)]).await;
    assert_eq!((kind, value), (2, text(60_000)));
}

#[tokio::test]
async fn a_release_is_read_even_while_calls_in_progress_hold_the_whole_budget() {
    // What a `hold` request costs to decode (rpyc_read_frame says whether
    // a frame fits a budget), found on a first server; the second is
    // given exactly that budget.
    let probe = Host::new(Config::default()).await;
    let (mut p, _) = probe.connect().await;
    let text = || boxed(1, Brine::Str("x".repeat(1000)));
    let hold = request(
        2,
        CALLATTR,
        callattr_args(&p.root(0).await, "hold", vec![text()]),
    );
    let fits = |budget| {
        let config = Config::default().max_decoded_bytes(budget);
        tether::__private::rpyc_read_frame(&hold, &config).is_ok()
    };
    let (mut low, mut high) = (0, 1 << 20);
    while low < high {
        let mid = (low + high) / 2;
        if fits(mid) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    let host = Host::new(Config::default().max_decoded_bytes(low)).await;
    let (mut peer, session) = host.connect().await;
    let root = peer.root(0).await;
    let (kind, made) = peer.call(1, &root, "make", vec![]).await;
    assert_eq!(kind, 2);
    peer.send(2, CALLATTR, callattr_args(&root, "hold", vec![text()]))
        .await;
    // The whole budget is held: any other request is refused ...
    let (kind, args) = peer.call(3, &root, "add", two(1, 1)).await;
    assert_limit(kind, &args, "max_decoded_bytes");
    // ... but a release is still read.
    let del = boxed(
        2,
        Brine::Tuple(vec![
            boxed(3, made.as_tuple().unwrap()[1].clone()),
            boxed(1, Brine::Int(1)),
        ]),
    );
    peer.send(4, DEL, del).await;
    assert_eq!(peer.answer(4).await.0, 2);
    assert_eq!(session.stats().exported, 1);
    host.lab.gate.notify_one();
    assert_eq!(peer.answer(2).await.0, 2);
}

#[tokio::test]
async fn nested_tuples_declaring_the_whole_frame_each_close_the_connection() {
    // 60 levels each declaring a million items, then a million `None`s:
    // before, each level reserved room for its count (~2 GB in all);
    // tests/rpyc_allocation.rs checks that no more than one level's is.
    let host = Host::new(Config::default().max_frame_len(4 << 20)).await;
    let (mut peer, session) = host.connect().await;
    let mut payload = vec![2u8, 0x11, 0x50];
    for _ in 0..60 {
        payload.push(0x15);
        payload.extend(1_000_000u32.to_be_bytes());
    }
    payload.extend(std::iter::repeat_n(0u8, 1_000_000));
    peer.send_payload(&payload).await;
    let reason = ended(&session).await;
    assert_eq!(reason.kind(), ErrorKind::Protocol, "{reason:#}");
    assert!(reason.message().contains("brine"), "{reason:#}");
    assert_closed(&mut peer.s).await;
    host.still_serves().await;
}

#[tokio::test]
async fn past_max_serving_a_request_is_refused_and_the_connection_goes_on() {
    let host = Host::new(Config::default().max_serving(1)).await;
    let (mut peer, _session) = host.connect().await;
    let pack = peer.root(0).await;
    peer.send(
        1,
        CALLATTR,
        callattr_args(&pack, "hold", vec![boxed(1, Brine::None)]),
    )
    .await;
    let (kind, args) = peer.call(2, &pack, "add", two(1, 1)).await;
    assert_limit(kind, &args, "max_serving");
    host.lab.gate.notify_one();
    assert_eq!(peer.answer(1).await.0, 2);
    let (kind, value) = peer.call(3, &pack, "add", two(1, 1)).await;
    assert_eq!((kind, value), (2, boxed(1, Brine::Int(2))));
}

#[tokio::test]
async fn past_max_exported_a_reply_fails_alone_until_objects_are_released() {
    let host = Host::new(Config::default().max_exported(2)).await;
    let (mut peer, session) = host.connect().await;
    let root = peer.root(0).await;
    let (kind, first) = peer.call(1, &root, "make", vec![]).await;
    assert_eq!(kind, 2);
    let (kind, args) = peer.call(2, &root, "make", vec![]).await;
    assert_limit(kind, &args, "max_exported");
    assert_eq!(session.stats().exported, 2);
    // Releasing the first object makes room.
    let del = boxed(
        2,
        Brine::Tuple(vec![
            boxed(3, first.as_tuple().unwrap()[1].clone()),
            boxed(1, Brine::Int(1)),
        ]),
    );
    peer.send(3, DEL, del).await;
    assert_eq!(peer.answer(3).await.0, 2);
    let (kind, _) = peer.call(4, &root, "make", vec![]).await;
    assert_eq!(kind, 2);
    assert_eq!(session.stats().exported, 2);
}

#[tokio::test]
async fn a_request_nested_past_max_call_depth_is_refused_without_running() {
    // RPyC carries no depth: a request that arrives while the server waits
    // on its callback into us is taken as nested in that callback.
    let host = Host::new(Config::default().max_call_depth(1)).await;
    let (mut peer, _session) = host.connect().await;
    let root = peer.root(0).await;
    let (callback, _) = peers_object(9);
    peer.send(1, CALLATTR, callattr_args(&root, "apply", vec![callback]))
        .await;
    // The server calls our callback (served at depth 0, its call goes out
    // at depth 1) ...
    let (kind, callback_seq, args) = decode(&read_frame(&mut peer.s).await.unwrap());
    assert_eq!(kind, 1);
    assert_eq!(args.as_tuple().unwrap()[0], Brine::Int(CALL));
    // ... and while it waits, our request would run at depth 2.
    let (kind, args) = peer.call(2, &root, "add", two(1, 1)).await;
    assert_limit(kind, &args, "max_call_depth");
    // Answering the callback completes the first call.
    let mut payload = vec![2u8];
    payload.extend(Brine::Tuple(vec![callback_seq, boxed(1, Brine::Int(5))]).encode());
    peer.send_payload(&payload).await;
    assert_eq!(peer.answer(1).await, (2, boxed(1, Brine::Int(5))));
    // With nothing waiting, requests run again.
    let (kind, value) = peer.call(3, &root, "add", two(1, 1)).await;
    assert_eq!((kind, value), (2, boxed(1, Brine::Int(2))));
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_closed_past_max_queued_bytes() {
    let host = Host::new(Config::default().max_queued_bytes(64 * 1024)).await;
    let (mut peer, session) = host.connect().await;
    let root = peer.root(0).await;
    // 64 MiB of replies, far more than the sockets' buffers take, and
    // the client reads none of them.
    for seq in 1..=128 {
        peer.send(
            seq,
            CALLATTR,
            callattr_args(&root, "blob", vec![boxed(1, Brine::Int(512 * 1024))]),
        )
        .await;
    }
    let reason = ended(&session).await;
    assert_eq!(reason.kind(), ErrorKind::LimitExceeded, "{reason:#}");
    assert!(reason.message().contains("not reading"), "{reason:#}");
    host.still_serves().await;
}

#[tokio::test]
async fn past_max_in_flight_our_requests_wait_for_a_slot() {
    // tether as the client of a raw "Python server".
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stream, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let mut server = accepted.unwrap().0;
    let conn = tether::rpyc::connect_io(
        stream.unwrap(),
        NetRef::new(Lab::default()),
        Config::default().max_in_flight(1),
        None,
    );
    let answer = |seq: Brine, value: Brine| {
        let mut payload = vec![2u8];
        payload.extend(Brine::Tuple(vec![seq, value]).encode());
        frame(&payload)
    };
    let root = tokio::spawn({
        let conn = conn.clone();
        async move { conn.root().await }
    });
    let (_, seq, _) = decode(&read_frame(&mut server).await.unwrap());
    let pack = Brine::Tuple(vec![
        Brine::Str("builtins.object".into()),
        Brine::Int(1),
        Brine::Int(2),
    ]);
    server
        .write_all(&answer(seq, boxed(4, pack)))
        .await
        .unwrap();
    let root = root.await.unwrap().unwrap();
    // Two calls started in the same poll: the second waits for a slot
    // before it is even numbered, let alone sent.
    let calls = tokio::spawn(async move {
        tokio::join!(
            root.call_method("add", (1, 2)),
            root.call_method("add", (3, 4))
        )
    });
    let (kind, first, _) = decode(&read_frame(&mut server).await.unwrap());
    assert_eq!(kind, 1);
    assert_eq!(conn.stats().in_flight, 1, "{:?}", conn.stats());
    server
        .write_all(&answer(first, boxed(1, Brine::Int(3))))
        .await
        .unwrap();
    let (kind, second, _) = decode(&read_frame(&mut server).await.unwrap());
    assert_eq!(kind, 1);
    server
        .write_all(&answer(second, boxed(1, Brine::Int(7))))
        .await
        .unwrap();
    let (a, b) = calls.await.unwrap();
    assert_eq!((a.unwrap(), b.unwrap()), (Value::from(3), Value::from(7)));
}
