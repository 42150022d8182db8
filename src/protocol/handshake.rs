//! The first exchange on a connection: who speaks what.
//!
//! The connecting side speaks first, so a server can tell from the first
//! bytes what it is talking to:
//!
//! ```text
//! hello  = len:u32be "TETHER" version:u16be name_len:u16be name max_frame:u32be
//! answer = len:u32be "TETHER" version:u16be status:u8 text_len:u16be text max_frame:u32be
//! ```
//!
//! `status` 0 accepts (`text` is the server's root service name); anything
//! else refuses and `text` says why (another version, too many
//! connections). `max_frame` is the largest frame payload the sender
//! accepts; neither side sends the other a larger one. Both sides then close or go on to framed [messages]. Raw
//! bytes rather than bincode, so a peer of any version, or no tether at all,
//! is recognised before anything is trusted.
//!
//! [messages]: super::frame::Message

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::raise;
use crate::{Error, ErrorKind, Result};

/// The magic bytes that open every tether connection.
pub const MAGIC: &[u8; 6] = b"TETHER";

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Longest handshake frame accepted (service names are short).
const MAX_HANDSHAKE: usize = 1024;

const STATUS_ACCEPT: u8 = 0;
const STATUS_REFUSE: u8 = 1;

/// What the handshake learned about the peer.
#[derive(Debug, Clone)]
pub(crate) struct PeerHello {
    pub(crate) service: String,
    /// The largest frame the peer accepts.
    pub(crate) max_frame: usize,
}

/// A refusal the server decided on before accepting.
pub(crate) struct Refusal(pub(crate) String);

fn hello_frame(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + MAGIC.len() + 2 + body.len());
    frame.extend_from_slice(&((MAGIC.len() + 2 + body.len()) as u32).to_be_bytes());
    frame.extend_from_slice(MAGIC);
    frame.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

fn short_text(s: &str) -> Vec<u8> {
    let bytes = &s.as_bytes()[..s.len().min(MAX_HANDSHAKE - 32)];
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Read one handshake frame; returns (version, rest of body).
async fn read_hello<R: AsyncRead + Unpin>(io: &mut R, who: &str) -> Result<(u16, Vec<u8>)> {
    let mut head = [0u8; 4 + 6];
    io.read_exact(&mut head).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            raise::closed(format!("{who} closed the connection during the handshake"))
        } else {
            Error::with_source(
                ErrorKind::Transport,
                format!("handshake with {who} failed"),
                e,
            )
        }
    })?;
    if &head[4..] != MAGIC {
        return Err(raise::protocol(format!(
            "{who} does not speak the tether protocol (its first bytes were {:02x?})",
            &head
        )));
    }
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if !(MAGIC.len() + 2..=MAX_HANDSHAKE).contains(&len) {
        return Err(raise::protocol(format!(
            "{who} sent a handshake of {len} bytes (expected at most {MAX_HANDSHAKE})"
        )));
    }
    let mut rest = vec![0u8; len - MAGIC.len()];
    io.read_exact(&mut rest).await.map_err(|e| {
        Error::with_source(
            ErrorKind::Transport,
            format!("handshake with {who} failed"),
            e,
        )
    })?;
    let version = u16::from_be_bytes([rest[0], rest[1]]);
    Ok((version, rest.split_off(2)))
}

/// A length-prefixed text at `at`, and the offset after it.
fn take_text(body: &[u8], at: usize) -> Option<(String, usize)> {
    let len = u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?) as usize;
    let bytes = body.get(at + 2..at + 2 + len)?;
    Some((String::from_utf8_lossy(bytes).into_owned(), at + 2 + len))
}

/// A text followed by the sender's frame limit.
fn take_text_and_limit(body: &[u8], at: usize) -> Option<(String, usize)> {
    let (text, end) = take_text(body, at)?;
    let limit = u32::from_be_bytes(body.get(end..end + 4)?.try_into().ok()?);
    Some((text, limit as usize))
}

fn with_limit(mut body: Vec<u8>, max_frame: usize) -> Vec<u8> {
    body.extend_from_slice(&(max_frame.min(u32::MAX as usize) as u32).to_be_bytes());
    body
}

/// The connecting side: send our hello, read the server's answer.
pub(crate) async fn client<IO>(
    io: &mut IO,
    service: &str,
    max_frame: usize,
    timeout: Duration,
) -> Result<PeerHello>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        io.write_all(&hello_frame(&with_limit(short_text(service), max_frame)))
            .await
            .map_err(|e| {
                Error::with_source(ErrorKind::Transport, "cannot send the handshake", e)
            })?;
        io.flush().await.map_err(|e| {
            Error::with_source(ErrorKind::Transport, "cannot send the handshake", e)
        })?;
        let (version, body) = read_hello(io, "the server").await?;
        let status = *body
            .first()
            .ok_or_else(|| raise::protocol("the server sent an empty handshake answer"))?;
        let (text, _) = take_text(&body, 1)
            .ok_or_else(|| raise::protocol("the server sent a truncated handshake answer"))?;
        if status != STATUS_ACCEPT {
            return Err(raise::closed(format!(
                "the server refused the connection: {text}"
            )));
        }
        if version != PROTOCOL_VERSION {
            return Err(raise::protocol(format!(
                "the server speaks tether protocol version {version}, this client speaks {PROTOCOL_VERSION}"
            )));
        }
        let (service, max_frame) = take_text_and_limit(&body, 1)
            .ok_or_else(|| raise::protocol("the server sent a truncated handshake answer"))?;
        Ok(PeerHello { service, max_frame })
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("no handshake answer within {timeout:?}"),
        )
    })?
}

/// The accepting side: read the client's hello, then accept with our service
/// name or refuse with `refusal`'s reason.
pub(crate) async fn server<IO>(
    io: &mut IO,
    service: &str,
    max_frame: usize,
    refusal: Option<Refusal>,
    timeout: Duration,
) -> Result<PeerHello>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        let (version, body) = read_hello(io, "the client").await?;
        let peer = take_text_and_limit(&body, 0);
        let refusal = match (refusal, &peer) {
            (Some(r), _) => Some(r.0),
            (None, _) if version != PROTOCOL_VERSION => Some(format!(
                "protocol version mismatch: the server speaks {PROTOCOL_VERSION}, the client {version}"
            )),
            (None, None) => Some("truncated handshake".to_string()),
            (None, Some(_)) => None,
        };
        let mut answer = vec![if refusal.is_some() {
            STATUS_REFUSE
        } else {
            STATUS_ACCEPT
        }];
        answer.extend(with_limit(
            short_text(refusal.as_deref().unwrap_or(service)),
            max_frame,
        ));
        io.write_all(&hello_frame(&answer)).await.map_err(|e| {
            Error::with_source(ErrorKind::Transport, "cannot answer the handshake", e)
        })?;
        io.flush().await.map_err(|e| {
            Error::with_source(ErrorKind::Transport, "cannot answer the handshake", e)
        })?;
        match refusal {
            Some(reason) => Err(raise::protocol(format!("refused the client: {reason}"))),
            None => {
                let (service, max_frame) = peer.expect("refused above when missing");
                Ok(PeerHello { service, max_frame })
            }
        }
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("no handshake from the client within {timeout:?}"),
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_sides_learn_each_others_service() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let t = Duration::from_secs(5);
        let (c, s) = tokio::join!(
            client(&mut a, "Client", 5000, t),
            server(&mut b, "Calc", 7000, None, t)
        );
        let (c, s) = (c.unwrap(), s.unwrap());
        assert_eq!((c.service.as_str(), c.max_frame), ("Calc", 7000));
        assert_eq!((s.service.as_str(), s.max_frame), ("Client", 5000));
    }

    #[tokio::test]
    async fn another_version_is_refused_with_a_reason() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let mut hello = hello_frame(&with_limit(short_text("x"), 1024));
        hello[10..12].copy_from_slice(&9u16.to_be_bytes());
        a.write_all(&hello).await.unwrap();
        let err = server(&mut b, "Calc", 1024, None, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        let (_, body) = read_hello(&mut a, "the server").await.unwrap();
        assert_eq!(body[0], STATUS_REFUSE);
        assert!(take_text(&body, 1).unwrap().0.contains("version mismatch"));
    }

    #[tokio::test]
    async fn a_stranger_is_recognised_from_its_first_bytes() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let err = server(&mut b, "Calc", 1024, None, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(
            err.message().contains("does not speak the tether protocol"),
            "{err}"
        );
    }
}
