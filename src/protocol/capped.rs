//! Reads of at most a fixed size, so that taking a large frame off the
//! socket never holds a runtime worker for long.
//!
//! A frame's buffer grows as its bytes arrive, and its spare capacity can
//! reach megabytes: one `read` into it would copy as much as the socket
//! holds (several MiB) in one system call, on the worker thread that every
//! other connection's tasks share. Capping each read bounds that pause to
//! the time of copying [`MAX_READ`] bytes; the reader then yields to the
//! runtime's cooperative budget like any other task.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Most bytes one read takes from the transport.
pub(crate) const MAX_READ: usize = 256 * 1024;

/// `R`, read at most [`MAX_READ`] bytes at a time.
#[derive(Debug)]
pub(crate) struct Capped<R> {
    inner: R,
}

impl<R> Capped<R> {
    pub(crate) fn new(inner: R) -> Capped<R> {
        Capped { inner }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Capped<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() <= MAX_READ {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        // A part of the caller's buffer, initialised (a memset of at most
        // MAX_READ bytes) so that it can be advanced over safely.
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(MAX_READ));
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn each_read_takes_at_most_the_cap_and_nothing_is_lost() {
        let data: Vec<u8> = (0..3 * MAX_READ + 17).map(|i| (i % 251) as u8).collect();
        let mut reader = Capped::new(&data[..]);
        let mut big = vec![0; 2 * MAX_READ];
        assert_eq!(reader.read(&mut big).await.unwrap(), MAX_READ);
        let mut rest = big[..MAX_READ].to_vec();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, data);
    }
}
