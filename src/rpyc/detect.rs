//! Telling the dialect of a new connection from its first bytes, so one
//! port serves native tether clients and Python RPyC clients alike.
//!
//! Both begin with a 4-byte length. A tether client's handshake follows it
//! with the magic `TETHER`; an RPyC client's first frame with its
//! compressed flag, 0 or 1. So the fifth byte decides (`T` or not). The bytes read to
//! decide are handed back in front of the stream ([`Rewind`]), so each
//! dialect's own code reads the connection from its first byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The protocol a connecting peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// tether's own protocol (its handshake begins with `TETHER`).
    Tether,
    /// Python RPyC 6.x (its first frame's flag byte is 0 or 1).
    Rpyc,
}

/// Bytes needed to decide.
const PREFIX: usize = 5;

/// Read the first bytes of `io` and say which dialect they are; the bytes
/// are not lost: read the returned stream from its start. A stream that
/// ends or errs first is an error; one matching neither is called tether,
/// whose handshake then refuses it with its usual clear error.
pub async fn detect<IO: AsyncRead + Unpin>(mut io: IO) -> io::Result<(Dialect, Rewind<IO>)> {
    let mut prefix = [0u8; PREFIX];
    io.read_exact(&mut prefix).await?;
    let dialect = if looks_like_rpyc(&prefix) {
        Dialect::Rpyc
    } else {
        Dialect::Tether
    };
    Ok((dialect, Rewind::new(prefix.to_vec(), io)))
}

/// Whether a stream's first bytes (at least five) are an RPyC frame's:
/// a length, then a compressed flag of 0 or 1 where tether's `TETHER`
/// begins.
pub(crate) fn looks_like_rpyc(first: &[u8]) -> bool {
    matches!(first.get(4), Some(0 | 1))
}

/// The source of an error that means "the peer speaks this other dialect"
/// (see [`Error::peer_dialect`](crate::Error::peer_dialect)).
#[derive(Debug)]
pub(crate) struct OtherDialect(pub(crate) Dialect);

impl std::fmt::Display for OtherDialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Dialect::Tether => f.write_str("the peer speaks the tether protocol"),
            Dialect::Rpyc => f.write_str("the peer speaks RPyC"),
        }
    }
}

impl std::error::Error for OtherDialect {}

/// A stream with some already-read bytes put back in front of it.
#[derive(Debug)]
pub struct Rewind<IO> {
    prefix: Vec<u8>,
    at: usize,
    inner: IO,
}

impl<IO> Rewind<IO> {
    /// `inner`, to be read after `prefix`.
    pub fn new(prefix: Vec<u8>, inner: IO) -> Rewind<IO> {
        Rewind {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn the_fifth_byte_tells_the_dialects_apart_and_nothing_is_lost() {
        for (bytes, dialect) in [
            (
                &b"\x00\x00\x00\x08\x00\x01\x11\x50\x11\x53\x11\x51\x02\n"[..],
                Dialect::Rpyc,
            ),
            (&b"\x00\x00\x00\x0bTETHER\x00\x01..."[..], Dialect::Tether),
        ] {
            let (mut a, b) = tokio::io::duplex(64);
            a.write_all(bytes).await.unwrap();
            drop(a);
            let (found, mut rest) = detect(b).await.unwrap();
            assert_eq!(found, dialect);
            let mut all = Vec::new();
            rest.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, bytes);
        }
    }

    #[tokio::test]
    async fn a_stream_ending_early_is_an_error() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"\x00\x00").await.unwrap();
        drop(a);
        assert!(detect(b).await.is_err());
    }
}
