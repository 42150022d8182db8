//! A misbehaving RPyC peer, played with raw frames against a tether
//! server: garbage, truncated, oversized and compressed-bomb frames,
//! forged object ids, an RPyC 5.x client, CLOSE. Each gets a clear answer
//! or a closed connection, and the server goes on serving others.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tether::rpyc::Brine;
use tether::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
