//! Raw wire bytes, written by hand from the protocol description, for the
//! tests that play a peer themselves: varints, text, frames and the
//! connecting side's handshake.

use tokio::io::{AsyncRead, AsyncReadExt};

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
