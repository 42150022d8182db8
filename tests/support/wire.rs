//! Raw wire bytes, written by hand from the protocol description, for the
//! tests that play a peer themselves: varints, text, frames and the
//! connecting side's handshake, and a small raw peer ([`RawPeer`]) that
//! sends requests and reads their replies.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// bincode's standard varint, as the wire uses it: < 251 in one byte, else
/// a marker and LE bytes.
pub fn varint(out: &mut Vec<u8>, n: u64) {
    if n < 251 {
        out.push(n as u8);
    } else if n <= u16::MAX as u64 {
        out.push(251);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(252);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// A string: its length as a varint, then its UTF-8 bytes.
pub fn text(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// `u32be len | payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// The connecting side's handshake frame: magic, `version`, the service
/// `name`, the largest frame this peer accepts (64 MiB) and its 32-byte
/// nonce for the token challenge (zeros: a raw peer has no token).
pub fn hello(version: u16, name: &str) -> Vec<u8> {
    let mut body = tether::protocol::MAGIC.to_vec();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&(64u32 << 20).to_be_bytes());
    body.extend_from_slice(&[0; 32]);
    frame(&body)
}

/// The payload of the next frame `io` reads.
pub async fn read_frame<S: AsyncRead + Unpin>(io: &mut S) -> Vec<u8> {
    let len = io.read_u32().await.unwrap() as usize;
    let mut payload = vec![0; len];
    io.read_exact(&mut payload).await.unwrap();
    payload
}

/// Wire code of `ErrorKind::Timeout` (its index in `ALL_KINDS`).
pub const KIND_TIMEOUT: u8 = 3;

/// Wire code of `ErrorKind::UnknownObject`.
pub const KIND_UNKNOWN_OBJECT: u8 = 6;

/// `Request { seq, target, timeout_ms, op }`: `op` already encoded.
pub fn request(seq: u64, target: u64, timeout_ms: u64, op: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    varint(&mut out, seq);
    varint(&mut out, target);
    varint(&mut out, timeout_ms);
    out.extend_from_slice(op);
    out
}

/// `Pipelined { seq, subject, timeout_ms, op }` on an object of the
/// receiver's (`answer` false) or on its answer to an earlier pipelined
/// request (`answer` true): `op` already encoded.
pub fn pipelined(seq: u64, answer: bool, id: u64, timeout_ms: u64, op: &[u8]) -> Vec<u8> {
    let mut out = vec![10];
    varint(&mut out, seq);
    out.push(u8::from(answer));
    varint(&mut out, id);
    varint(&mut out, timeout_ms);
    out.extend_from_slice(op);
    out
}

/// `Finish(ids)`: the sender needs these answers no more.
pub fn finish(ids: &[u64]) -> Vec<u8> {
    let mut out = vec![11];
    varint(&mut out, ids.len() as u64);
    for &id in ids {
        varint(&mut out, id);
    }
    out
}

/// The `GetAttr` operation.
pub fn getattr(name: &str) -> Vec<u8> {
    let mut out = vec![1];
    text(&mut out, name);
    out
}

/// The `GetRoot` operation.
pub const GET_ROOT: &[u8] = &[0];

/// The `CallMethod` operation: `name` with positional arguments (each an
/// encoded value) and no named ones.
pub fn call_method(name: &str, positional: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![5];
    text(&mut out, name);
    varint(&mut out, positional.len() as u64);
    for value in positional {
        out.extend_from_slice(value);
    }
    varint(&mut out, 0);
    out
}

/// An `Int` value (tag 3, zigzag varint).
pub fn int(n: i64) -> Vec<u8> {
    let mut out = vec![3];
    varint(&mut out, ((n << 1) ^ (n >> 63)) as u64);
    out
}

/// A value as the raw peer reads it (only the kinds its tests meet).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    None,
    Int(i64),
    Str(String),
    /// A reference to one of the sender's objects, by its id.
    Mine(u64),
}

/// A reply as the raw peer reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok {
        seq: u64,
        value: Val,
    },
    Err {
        seq: u64,
        kind: u8,
        type_name: String,
        message: String,
    },
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().expect("the frame ends early");
        self.0 = rest;
        b
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn varint(&mut self) -> u64 {
        match self.u8() {
            n if n < 251 => n as u64,
            251 => u16::from_le_bytes(self.take(2).try_into().unwrap()) as u64,
            252 => u32::from_le_bytes(self.take(4).try_into().unwrap()) as u64,
            253 => u64::from_le_bytes(self.take(8).try_into().unwrap()),
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
            3 => {
                let z = self.varint();
                Val::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            5 => Val::Str(self.text()),
            10 => Val::Mine(self.varint()),
            tag => panic!("a value of tag {tag}, which the raw peer does not read"),
        }
    }
}

/// A connecting peer that speaks raw frames: the handshake, requests, and
/// the replies to them.
pub struct RawPeer<S> {
    pub io: S,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawPeer<S> {
    /// Send the hello and read the answer, which must accept us.
    pub async fn handshake(io: S) -> RawPeer<S> {
        Self::handshake_as(io, tether::protocol::PROTOCOL_VERSION).await
    }

    /// Send a hello speaking protocol `version`, and read the answer,
    /// which must accept us in that version.
    pub async fn handshake_as(mut io: S, version: u16) -> RawPeer<S> {
        io.write_all(&hello(version, "Raw")).await.unwrap();
        let answer = read_frame(&mut io).await;
        assert_eq!(&answer[..6], tether::protocol::MAGIC);
        assert_eq!(answer[6..8], version.to_be_bytes(), "{answer:02x?}");
        assert_eq!(answer[8], 0, "refused: {answer:02x?}");
        RawPeer { io }
    }

    /// Send one frame with `payload`.
    pub async fn send(&mut self, payload: &[u8]) {
        self.io.write_all(&frame(payload)).await.unwrap();
        self.io.flush().await.unwrap();
    }

    /// The next reply, past any `Release` frames (the server may release
    /// our objects at any time).
    pub async fn reply(&mut self) -> Reply {
        loop {
            let payload = read_frame(&mut self.io).await;
            let mut r = Reader(&payload[1..]);
            let reply = match payload[0] {
                1 => Reply::Ok {
                    seq: r.varint(),
                    value: r.value(),
                },
                2 => {
                    let reply = Reply::Err {
                        seq: r.varint(),
                        kind: r.u8(),
                        type_name: r.text(),
                        message: r.text(),
                    };
                    // The trace and the cause are not needed here.
                    r.0 = &[];
                    reply
                }
                3 => continue,
                tag => panic!("a frame of tag {tag} where a reply was expected"),
            };
            assert!(r.0.is_empty(), "trailing bytes after {reply:?}");
            return reply;
        }
    }

    /// Request `op` on object `target` (with a 5 s deadline) and read the
    /// reply.
    pub async fn call(&mut self, seq: u64, target: u64, op: &[u8]) -> Reply {
        self.send(&request(seq, target, 5_000, op)).await;
        self.reply().await
    }

    /// The id of the server's root object.
    pub async fn root(&mut self, seq: u64) -> u64 {
        self.object(seq, 0, GET_ROOT).await
    }

    /// The id of the object that `op` on `target` returns.
    pub async fn object(&mut self, seq: u64, target: u64, op: &[u8]) -> u64 {
        match self.call(seq, target, op).await {
            Reply::Ok {
                seq: got,
                value: Val::Mine(id),
            } if got == seq => id,
            other => panic!("expected an object reference, got {other:?}"),
        }
    }
}
