//! Reads of at most a fixed size, and a fixed amount per turn, so that
//! taking a large frame off the socket never holds a runtime worker for
//! long.
//!
//! A frame's buffer grows as its bytes arrive, and its spare capacity can
//! reach megabytes: one `read` into it would copy as much as the socket
//! holds (several MiB) in one system call, on the worker thread that every
//! other connection's tasks share. Capping each read bounds that pause to
//! the time of copying [`MAX_READ`] bytes. Tokio's cooperative budget
//! would still let a reader whose socket always has data go on for 128
//! reads (32 MiB) before yielding, so the reader also yields by itself
//! after [`TURN_BYTES`] read without a pause: a peer streaming a large
//! frame gets its turn, and every other connection on the worker gets
//! theirs in between.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Most bytes one read takes from the transport.
pub(crate) const MAX_READ: usize = 256 * 1024;

/// Most bytes read in one turn: past them the reader yields to the
/// runtime before reading more.
pub(crate) const TURN_BYTES: usize = 2 * MAX_READ;

/// `R`, read at most [`MAX_READ`] bytes at a time and [`TURN_BYTES`] per
/// turn of the task reading it.
#[derive(Debug)]
pub(crate) struct Capped<R> {
    inner: R,
    /// Bytes read since the reader last waited or yielded.
    this_turn: usize,
}

impl<R> Capped<R> {
    pub(crate) fn new(inner: R) -> Capped<R> {
        Capped {
            inner,
            this_turn: 0,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Capped<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.this_turn >= TURN_BYTES {
            self.this_turn = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = if buf.remaining() <= MAX_READ {
            let before = buf.filled().len();
            let read = Pin::new(&mut self.inner).poll_read(cx, buf);
            self.waited_unless_ready(&read);
            ready!(read)?;
            buf.filled().len() - before
        } else {
            // A part of the caller's buffer, initialised (a memset of at
            // most MAX_READ bytes) so that it can be advanced over safely.
            let mut part = ReadBuf::new(buf.initialize_unfilled_to(MAX_READ));
            let read = Pin::new(&mut self.inner).poll_read(cx, &mut part);
            self.waited_unless_ready(&read);
            ready!(read)?;
            let n = part.filled().len();
            buf.advance(n);
            n
        };
        self.this_turn += n;
        Poll::Ready(Ok(()))
    }
}

impl<R> Capped<R> {
    /// A read that is not ready waits for the socket: a new turn begins.
    fn waited_unless_ready<T>(&mut self, read: &Poll<T>) {
        if read.is_pending() {
            self.this_turn = 0;
        }
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

    #[tokio::test]
    async fn a_reader_with_data_always_ready_yields_after_a_turn() {
        use std::future::Future;
        let data = vec![7u8; 3 * TURN_BYTES];
        let mut reader = Capped::new(&data[..]);
        let mut buf = vec![0; MAX_READ];
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut ready = 0;
        loop {
            let mut read = Box::pin(reader.read(&mut buf));
            match read.as_mut().poll(&mut cx) {
                Poll::Ready(n) => {
                    assert_eq!(n.unwrap(), MAX_READ);
                    ready += MAX_READ;
                }
                Poll::Pending => break,
            }
        }
        assert_eq!(ready, TURN_BYTES, "the turn ends after TURN_BYTES");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(
            ready + rest.len(),
            data.len(),
            "nothing lost across the yield"
        );
    }
}
