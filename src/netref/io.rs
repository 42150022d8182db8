//! Standard async I/O over a file netref: [`RemoteFile`].
//!
//! A remote file (a [`LocalFile`](crate::LocalFile) a peer serves, or
//! anything with the same `read`/`write`/`seek`/`flush`/`close` methods)
//! becomes a tokio [`AsyncRead`], [`AsyncBufRead`], [`AsyncWrite`] and
//! [`AsyncSeek`], so `tokio::io::copy`, `BufReader::lines`, `read_to_end`
//! and friends work on it. Reads fetch at least 64 KiB per round trip,
//! with several reads in flight while streaming, and writes are gathered
//! into 64 KiB calls, so a byte stream costs a fraction of a round trip per
//! 64 KiB rather than a round trip per call.
//!
//! Tether errors become [`std::io::Error`]s whose inner error is the
//! [`Error`] (`io_err.get_ref()` and `downcast_ref::<tether::Error>()`) and
//! whose [`io::ErrorKind`] follows the remote exception: see the
//! `From<tether::Error> for std::io::Error` impl, listed with [`Error`]'s
//! trait implementations.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};

use tokio::io::{AsyncBufRead, AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use super::NetRef;
use crate::error::raise;
use crate::service::object::BoxFuture;
use crate::{Error, ErrorKind, Value};

/// Default bytes asked for per read round trip.
const READ_AHEAD: usize = 64 * 1024;
/// Default reads kept in flight while streaming.
const READS_IN_FLIGHT: usize = 2;
/// While streaming, each read asks for twice the bytes of the one before,
/// up to this (or the size asked for, if larger).
const STREAM_READ_MAX: usize = 1 << 20;
/// Default bytes gathered before a write round trip.
const WRITE_BEHIND: usize = 64 * 1024;
/// The most one `poll_read` into a large buffer asks for at once, so a
/// single reply stays well below the default frame limit (64 MiB).
const MAX_READ: usize = 4 << 20;

/// A remote file as a tokio byte stream: [`AsyncRead`], [`AsyncBufRead`],
/// [`AsyncWrite`] and [`AsyncSeek`] over a file netref.
///
/// Use it on a file opened in binary mode (`"rb"`, `"wb"`, `"r+b"`, ...):
/// it calls the file's `read(n)`, `write(bytes)`, `seek(offset, whence)`,
/// `flush()` and `close()` methods. (Reading a text-mode file works too,
/// its `str` arriving as UTF-8 bytes; writing one fails with
/// [`io::ErrorKind::InvalidInput`], since text files take `str`.)
///
/// - **Read-ahead**: each read round trip asks for at least 64 KiB
///   ([`with_read_ahead`](RemoteFile::with_read_ahead)); `poll_read` into a
///   larger buffer asks for that much (up to 4 MiB). What is not consumed
///   stays buffered for the next read ([`AsyncBufRead`]).
/// - **Reads in flight**: once two reads in a row came back (the file is
///   being streamed), up to 2 reads are kept in flight
///   ([`with_reads_in_flight`](RemoteFile::with_reads_in_flight)), sent
///   one after the other without waiting, so the stream is not held up by
///   a round trip per read; each asks for twice the bytes of the one
///   before, up to 1 MiB (or the read-ahead, if larger), so a long stream
///   moves in 1 MiB calls and a short read costs only the read-ahead. The remote file answers them in the order they
///   were sent, and their bytes are handed out in that order. A write, a
///   seek, `flush` or `shutdown` first waits for the reads in flight (their
///   bytes then count as read ahead); reads still in flight when the end
///   of the file is reached or a read fails are cancelled. After a failed
///   read the remote position is unspecified (as after any failed read):
///   seek to an absolute position before going on.
/// - **Write-behind**: writes are gathered up to 64 KiB
///   ([`with_write_behind`](RemoteFile::with_write_behind)) and sent when
///   the buffer is full, on `flush` (which also flushes the remote file),
///   on `shutdown` (which then closes the remote file), before a seek, and
///   before a read. A write failure may therefore surface on a later call.
///   On a remote file the last write and the flush (or close) travel in one
///   batch, one round trip. Note that `tokio::io::copy` flushes its writer
///   whenever its reader is not ready, so copying from a slow source sends
///   smaller writes.
///   Data still buffered when a `RemoteFile` is dropped is lost: flush or
///   shut it down first, as with tokio's `BufWriter`.
/// - **Mixing**: a write after a read gives back what was read ahead (a
///   relative seek on the remote file) so it lands where the reader is;
///   seeking drops the read-ahead buffer; `SeekFrom::Current` counts from
///   the position the reader sees.
///
/// Apart from streaming reads, one remote operation is in flight at a
/// time. Dropping a `RemoteFile` (or the future polling it) in the middle
/// of one cancels that call (and the reads in flight).
/// [`AsyncSeek::poll_complete`] without a preceding `start_seek` returns 0,
/// as tokio's own `BufReader` does (tokio's `seek` helpers never rely on
/// it); use `stream_position()` for the position.
///
/// Errors are [`io::Error`]s wrapping the tether [`Error`], their kind
/// following the remote exception (`FileNotFoundError` → `NotFound`, ...;
/// see the `From<tether::Error> for std::io::Error` impl on [`Error`]).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
/// use tether::{LocalFile, NetRef, RemoteFile};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("data.bin");
/// // In a real program the file netref comes from a peer.
/// let netref = NetRef::new(LocalFile::open_with(&path, "w+b").await.unwrap());
///
/// let mut file = RemoteFile::new(netref);
/// file.write_all(b"one\ntwo\nthree\n").await.unwrap();
/// file.seek(std::io::SeekFrom::Start(4)).await.unwrap();
/// let mut lines = (&mut file).lines();
/// assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("two"));
/// file.rewind().await.unwrap();
/// let mut all = Vec::new();
/// file.read_to_end(&mut all).await.unwrap();
/// assert_eq!(all, b"one\ntwo\nthree\n");
/// file.shutdown().await.unwrap(); // flushes, then closes the remote file
/// # });
/// ```
pub struct RemoteFile {
    file: NetRef,
    read_ahead: usize,
    write_behind: usize,
    /// Read-ahead; `rbuf[rpos..]` is not consumed yet. The remote position
    /// is past it. A read's bytes as they arrived (sharing the frame's
    /// memory), not copied.
    rbuf: Bytes,
    rpos: usize,
    /// The last fetch returned nothing: report the end of the file once.
    eof: bool,
    /// Write-behind; the remote position is before it.
    wbuf: Vec<u8>,
    /// Writes were sent since the remote file was last flushed.
    dirty: bool,
    /// A seek asked for with `start_seek`, not sent yet.
    seek: Option<SeekFrom>,
    /// The outcome of the last seek sent, for `poll_complete`.
    sought: Option<u64>,
    /// Shut down: the remote file is closed.
    closed: bool,
    /// The one remote operation in flight other than reads.
    pending: Option<BoxFuture<'static, io::Result<Done>>>,
    /// The most reads kept in flight while streaming.
    reads_in_flight: usize,
    /// Reads sent, oldest first: their bytes follow `rbuf` in this order.
    /// Never non-empty together with `pending`.
    fetches: VecDeque<Fetch>,
    /// Reads that came back with data since the last seek, write or
    /// failure; from 2 on, the file is streamed and reads are pipelined.
    streak: u32,
    /// A read failure met while waiting for the reads in flight, reported
    /// once the bytes before it are consumed.
    failed: Option<io::Error>,
}

/// A read sent to the remote file, or what it returned, and the bytes it
/// asked for.
struct Fetch {
    asked: usize,
    state: FetchState,
}

enum FetchState {
    Sent(BoxFuture<'static, io::Result<Bytes>>),
    Back(io::Result<Bytes>),
}

/// What a finished remote operation did.
enum Done {
    /// `write` took the bytes.
    Wrote,
    /// `write` (if any) and `flush` are done.
    Flushed,
    /// `write` (if any) and `close` are done.
    Closed,
    /// The remote position moved back over the read-ahead.
    Repositioned,
    /// A requested seek is done; the new position.
    Sought(u64),
}

/// What to do after sending the write-behind buffer.
#[derive(Clone, Copy)]
enum Then {
    Nothing,
    Flush,
    Close,
}

impl RemoteFile {
    /// Wrap a netref to a remote file opened in binary mode.
    pub fn new(file: NetRef) -> RemoteFile {
        RemoteFile {
            file,
            read_ahead: READ_AHEAD,
            write_behind: WRITE_BEHIND,
            rbuf: Bytes::new(),
            rpos: 0,
            eof: false,
            wbuf: Vec::new(),
            dirty: false,
            seek: None,
            sought: None,
            closed: false,
            pending: None,
            reads_in_flight: READS_IN_FLIGHT,
            fetches: VecDeque::new(),
            streak: 0,
            failed: None,
        }
    }

    /// Keep up to `reads` reads in flight while streaming (default 2; at
    /// least 1: one at a time, the next sent as soon as the previous one
    /// is back).
    /// They grow to 1 MiB each (or the read-ahead, if larger), so up to
    /// `reads` × 1 MiB are on their way at once.
    pub fn with_reads_in_flight(mut self, reads: usize) -> RemoteFile {
        self.reads_in_flight = reads.max(1);
        self
    }

    /// Ask for at least `bytes` per read round trip (default 64 KiB; at
    /// least 1). Keep it well below the connection's frame limit.
    pub fn with_read_ahead(mut self, bytes: usize) -> RemoteFile {
        self.read_ahead = bytes.max(1);
        self
    }

    /// Gather up to `bytes` of writes per write round trip (default
    /// 64 KiB; at least 1).
    pub fn with_write_behind(mut self, bytes: usize) -> RemoteFile {
        self.write_behind = bytes.max(1);
        self
    }

    /// The file netref, for its other methods (`metadata`, `truncate`,
    /// ...). Flush first if writes may be buffered.
    pub fn netref(&self) -> &NetRef {
        &self.file
    }

    /// The file netref back; buffered writes and read-ahead are dropped.
    pub fn into_inner(self) -> NetRef {
        self.file.clone()
    }

    /// Bytes read ahead and not consumed yet.
    pub fn buffered_read(&self) -> usize {
        self.rbuf.len() - self.rpos
    }

    /// Bytes written and not sent yet.
    pub fn buffered_write(&self) -> usize {
        self.wbuf.len()
    }

    fn start(&mut self, fut: impl Future<Output = io::Result<Done>> + Send + 'static) {
        debug_assert!(self.pending.is_none());
        self.pending = Some(Box::pin(fut));
    }

    /// Drive the operation in flight, if any, and take in its outcome.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(fut) = self.pending.as_mut() {
            let result = ready!(fut.as_mut().poll(cx));
            self.pending = None;
            match result? {
                Done::Wrote => self.dirty = true,
                Done::Flushed => self.dirty = false,
                Done::Closed => {
                    self.dirty = false;
                    self.closed = true;
                }
                Done::Repositioned => {}
                Done::Sought(position) => self.sought = Some(position),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Send the write-behind buffer, then flush or close if asked. Both
    /// calls go in one batch (one round trip) when the file is remote.
    fn send(&mut self, then: Then) {
        let data = std::mem::take(&mut self.wbuf);
        let file = self.file.clone();
        self.start(async move {
            let (method, done) = match then {
                Then::Nothing => (None, Done::Wrote),
                Then::Flush => (Some("flush"), Done::Flushed),
                Then::Close => (Some("close"), Done::Closed),
            };
            let len = data.len();
            let write = (len > 0).then(|| (Value::from(data),));
            match (write, method, file.connection()) {
                (Some(args), Some(method), Some(conn)) => {
                    let mut batch = conn.batch();
                    batch.call_method(&file, "write", args)?;
                    batch.call_method(&file, method, ())?;
                    let mut results = batch.send().await?.into_iter();
                    let wrote = results.next().unwrap_or_else(|| Ok(Value::None))?;
                    check_written(&wrote, len)?;
                    results.next().unwrap_or(Ok(Value::None))?;
                }
                (write, method, _) => {
                    if let Some(args) = write {
                        check_written(&file.call_method("write", args).await?, len)?;
                    }
                    if let Some(method) = method {
                        file.call_method(method, ()).await?;
                    }
                }
            }
            Ok(done)
        });
    }

    /// Ask the remote file to move; `done` says what it was for.
    fn send_seek(&mut self, offset: i64, whence: i64, done: fn(u64) -> Done) {
        let file = self.file.clone();
        self.start(async move {
            let position = file.call_method("seek", (offset, whence)).await?;
            match position.as_int().map(u64::try_from) {
                Some(Ok(position)) => Ok(done(position)),
                _ => Err(raise::type_mismatch(
                    "a position (int >= 0) from seek",
                    position.type_name(),
                )
                .into()),
            }
        });
    }

    /// Drop the read-ahead (the remote position stays past it).
    fn drop_read_ahead(&mut self) {
        self.rbuf = Bytes::new();
        self.rpos = 0;
        self.eof = false;
        self.streak = 0;
        self.failed = None;
    }

    /// Send a `read(want)` after the ones in flight (it leaves when the
    /// fetches are next polled).
    fn fetch(&mut self, want: usize) {
        let file = self.file.clone();
        let state = FetchState::Sent(Box::pin(async move {
            let n = i64::try_from(want).unwrap_or(i64::MAX);
            match file.call_method("read", (n,)).await? {
                Value::Bytes(data) => Ok(data),
                Value::Str(text) => Ok(Bytes::from(text)),
                other => Err(raise::type_mismatch("bytes from read", other.type_name()).into()),
            }
        }));
        self.fetches.push_back(Fetch { asked: want, state });
    }

    /// Poll the reads in flight, oldest first, so they are sent in order.
    fn poll_fetches(&mut self, cx: &mut Context<'_>) {
        for fetch in &mut self.fetches {
            if let FetchState::Sent(fut) = &mut fetch.state {
                if let Poll::Ready(result) = fut.as_mut().poll(cx) {
                    fetch.state = FetchState::Back(result);
                }
            }
        }
    }

    /// Cancel the reads in flight (dropping a call cancels it).
    fn cancel_fetches(&mut self) {
        self.fetches.clear();
        self.streak = 0;
    }

    /// Wait for every read in flight and add their bytes to the
    /// read-ahead, so the remote position is just past `rbuf` again. A
    /// failure is kept for the reader, after the bytes before it.
    fn poll_settle_fetches(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.fetches.is_empty() {
            return Poll::Ready(());
        }
        self.poll_fetches(cx);
        if self
            .fetches
            .iter()
            .any(|f| matches!(f.state, FetchState::Sent(_)))
        {
            return Poll::Pending;
        }
        let mut joined = BytesMut::from(&self.rbuf[self.rpos..]);
        for fetch in std::mem::take(&mut self.fetches) {
            let FetchState::Back(result) = fetch.state else {
                unreachable!("every fetch is back")
            };
            match result {
                Ok(data) if self.failed.is_none() => joined.extend_from_slice(&data),
                Ok(_) => {}
                Err(err) => {
                    self.failed.get_or_insert(err);
                }
            }
        }
        self.rbuf = joined.freeze();
        self.rpos = 0;
        Poll::Ready(())
    }

    /// Make sure there is read-ahead to hand out, or an end of file (or a
    /// read failure) to report, asking for `want` bytes per read if round
    /// trips are needed.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_pending(cx))?;
            if self.rpos < self.rbuf.len() || self.eof {
                return Poll::Ready(Ok(()));
            }
            if let Some(err) = self.failed.take() {
                self.streak = 0;
                return Poll::Ready(Err(err));
            }
            if self.closed {
                return Poll::Ready(Err(closed_file()));
            }
            if !self.wbuf.is_empty() {
                self.send(Then::Nothing);
                continue;
            }
            if self.fetches.is_empty() {
                self.fetch(want);
            }
            self.poll_fetches(cx);
            if !matches!(
                self.fetches.front(),
                Some(Fetch {
                    state: FetchState::Back(_),
                    ..
                })
            ) {
                return Poll::Pending;
            }
            let Some(Fetch {
                asked,
                state: FetchState::Back(result),
            }) = self.fetches.pop_front()
            else {
                unreachable!("the first fetch is back")
            };
            match result {
                Ok(data) if data.is_empty() => {
                    self.eof = true;
                    self.cancel_fetches();
                }
                Ok(data) => {
                    // A short read: the end is near, send no more.
                    let full = data.len() >= asked;
                    self.rbuf = data;
                    self.rpos = 0;
                    self.streak = self.streak.saturating_add(1);
                    if self.streak >= 2 && full {
                        // Streaming: keep the pipeline full while this
                        // chunk is consumed, each read larger than the
                        // last up to STREAM_READ_MAX.
                        let most = STREAM_READ_MAX.max(want);
                        while self.fetches.len() < self.reads_in_flight {
                            let last = self.fetches.back().map_or(asked, |f| f.asked);
                            self.fetch(last.saturating_mul(2).clamp(want, most));
                        }
                        self.poll_fetches(cx);
                    }
                }
                Err(err) => {
                    self.cancel_fetches();
                    return Poll::Ready(Err(err));
                }
            }
        }
    }
}

impl AsyncRead for RemoteFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let want = buf.remaining().min(MAX_READ).max(this.read_ahead);
        ready!(this.poll_fill(cx, want))?;
        let available = &this.rbuf[this.rpos..];
        if available.is_empty() {
            this.eof = false; // reported
        } else {
            let n = available.len().min(buf.remaining());
            buf.put_slice(&available[..n]);
            this.consume_bytes(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl RemoteFile {
    fn consume_bytes(&mut self, amt: usize) {
        self.rpos = (self.rpos + amt).min(self.rbuf.len());
        if self.rpos == self.rbuf.len() {
            self.rbuf = Bytes::new();
            self.rpos = 0;
        }
    }
}

impl AsyncBufRead for RemoteFile {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        let want = this.read_ahead;
        ready!(this.poll_fill(cx, want))?;
        if this.rpos == this.rbuf.len() {
            this.eof = false; // reported
        }
        Poll::Ready(Ok(&this.rbuf[this.rpos..]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume_bytes(amt);
    }
}

impl AsyncWrite for RemoteFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_settle_fetches(cx));
        loop {
            ready!(this.poll_pending(cx))?;
            if this.closed {
                return Poll::Ready(Err(closed_file()));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let unread = this.buffered_read();
            if unread > 0 {
                // Give the read-ahead back so the write lands where the
                // reader is.
                this.drop_read_ahead();
                let back = i64::try_from(unread).map_or(i64::MIN, |n| -n);
                this.send_seek(back, 1, |_| Done::Repositioned);
                continue;
            }
            this.drop_read_ahead();
            if this.wbuf.len() >= this.write_behind {
                this.send(Then::Nothing);
                continue;
            }
            if this.wbuf.capacity() == 0 {
                this.wbuf.reserve(this.write_behind);
            }
            let n = buf.len().min(this.write_behind - this.wbuf.len());
            this.wbuf.extend_from_slice(&buf[..n]);
            return Poll::Ready(Ok(n));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_settle_fetches(cx));
        loop {
            ready!(this.poll_pending(cx))?;
            if this.wbuf.is_empty() && !this.dirty {
                return Poll::Ready(Ok(()));
            }
            if this.closed {
                return Poll::Ready(Err(closed_file()));
            }
            this.send(Then::Flush);
        }
    }

    /// Send what is buffered, then close the remote file. Later reads and
    /// writes fail; shutting down again does nothing.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_settle_fetches(cx));
        loop {
            ready!(this.poll_pending(cx))?;
            if this.closed {
                return Poll::Ready(Ok(()));
            }
            this.send(Then::Close);
        }
    }
}

impl AsyncSeek for RemoteFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        if this.seek.is_some() {
            return Err(io::Error::other(
                "a seek is already in progress: call poll_complete before start_seek",
            ));
        }
        this.seek = Some(position);
        this.sought = None;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        ready!(this.poll_settle_fetches(cx));
        loop {
            if let Err(err) = ready!(this.poll_pending(cx)) {
                this.seek = None;
                return Poll::Ready(Err(err));
            }
            if let Some(position) = this.sought.take() {
                return Poll::Ready(Ok(position));
            }
            let Some(to) = this.seek else {
                return Poll::Ready(Ok(0));
            };
            if this.closed {
                this.seek = None;
                return Poll::Ready(Err(closed_file()));
            }
            if !this.wbuf.is_empty() {
                this.send(Then::Nothing);
                continue;
            }
            let (offset, whence) = match to {
                SeekFrom::Start(n) => match i64::try_from(n) {
                    Ok(n) => (n, 0),
                    Err(_) => {
                        this.seek = None;
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("seek position {n} is too large"),
                        )));
                    }
                },
                // The remote position is past the read-ahead.
                SeekFrom::Current(n) => (n.saturating_sub(this.buffered_read() as i64), 1),
                SeekFrom::End(n) => (n, 2),
            };
            this.seek = None;
            this.drop_read_ahead();
            this.send_seek(offset, whence, Done::Sought);
        }
    }
}

impl fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteFile")
            .field("file", &self.file)
            .field("buffered_read", &self.buffered_read())
            .field("buffered_write", &self.wbuf.len())
            .field("in_flight", &self.pending.is_some())
            .field("reads_in_flight", &self.fetches.len())
            .field("closed", &self.closed)
            .finish()
    }
}

/// A remote `write` must take everything it was given.
fn check_written(wrote: &Value, len: usize) -> io::Result<()> {
    if wrote.as_int() == Some(len as i64) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("remote write took {wrote} of {len} bytes"),
        ))
    }
}

/// What a shut-down `RemoteFile` answers, as the remote file would.
fn closed_file() -> io::Error {
    Error::app("ValueError", "I/O operation on closed file.").into()
}

/// A tether error as an [`io::Error`] wrapping it, for I/O traits.
///
/// The kind follows the exception's type name where there is one
/// (`FileNotFoundError` → `NotFound`, `PermissionError` →
/// `PermissionDenied`, `IsADirectoryError` → `IsADirectory`,
/// `NotADirectoryError` → `NotADirectory`, `FileExistsError` →
/// `AlreadyExists`, `UnsupportedOperation` → `Unsupported`, `ValueError`
/// (closed file) → `InvalidInput`, `UnicodeDecodeError` → `InvalidData`,
/// `TimeoutError` → `TimedOut`), and the [`ErrorKind`] otherwise
/// (`Timeout` → `TimedOut`, `Closed` → `ConnectionAborted`, `Transport` →
/// `ConnectionReset`, `Denied` → `PermissionDenied`, `BadArguments` →
/// `InvalidInput`, `Type` and `Protocol` → `InvalidData`, `Unsupported` →
/// `Unsupported`, `Cancelled` → `Interrupted`, anything else → `Other`).
///
/// ```
/// let err = tether::Error::app("FileNotFoundError", "[Errno 2] No such file or directory: 'x'");
/// let io_err = std::io::Error::from(err);
/// assert_eq!(io_err.kind(), std::io::ErrorKind::NotFound);
/// let inner = io_err.get_ref().unwrap().downcast_ref::<tether::Error>().unwrap();
/// assert_eq!(inner.type_name(), Some("FileNotFoundError"));
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.type_name() {
            Some("FileNotFoundError") => io::ErrorKind::NotFound,
            Some("PermissionError") => io::ErrorKind::PermissionDenied,
            Some("IsADirectoryError") => io::ErrorKind::IsADirectory,
            Some("NotADirectoryError") => io::ErrorKind::NotADirectory,
            Some("FileExistsError") => io::ErrorKind::AlreadyExists,
            Some("UnsupportedOperation") => io::ErrorKind::Unsupported,
            Some("ValueError") => io::ErrorKind::InvalidInput,
            Some("UnicodeDecodeError") => io::ErrorKind::InvalidData,
            Some("TimeoutError") => io::ErrorKind::TimedOut,
            _ => match err.kind() {
                ErrorKind::Timeout => io::ErrorKind::TimedOut,
                ErrorKind::Closed => io::ErrorKind::ConnectionAborted,
                ErrorKind::Transport => io::ErrorKind::ConnectionReset,
                ErrorKind::Denied => io::ErrorKind::PermissionDenied,
                ErrorKind::BadArguments => io::ErrorKind::InvalidInput,
                ErrorKind::Type | ErrorKind::Protocol => io::ErrorKind::InvalidData,
                ErrorKind::Unsupported => io::ErrorKind::Unsupported,
                ErrorKind::Cancelled => io::ErrorKind::Interrupted,
                _ => io::ErrorKind::Other,
            },
        };
        io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalFile;
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    async fn file(contents: &[u8], mode: &str) -> (tempfile::TempDir, std::path::PathBuf, NetRef) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, contents).unwrap();
        let netref = NetRef::new(LocalFile::open_with(&path, mode).await.unwrap());
        (dir, path, netref)
    }

    #[tokio::test]
    async fn small_buffers_still_give_every_byte_in_order() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (_dir, _path, netref) = file(&data, "rb").await;
        let mut remote = RemoteFile::new(netref).with_read_ahead(100);
        let mut out = Vec::new();
        let mut chunk = [0u8; 37];
        loop {
            let n = remote.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn write_after_read_lands_where_the_reader_is() {
        let (_dir, path, netref) = file(b"0123456789", "r+b").await;
        let mut remote = RemoteFile::new(netref);
        let mut two = [0u8; 2];
        remote.read_exact(&mut two).await.unwrap();
        assert_eq!(remote.buffered_read(), 8);
        remote.write_all(b"ab").await.unwrap();
        assert_eq!(remote.stream_position().await.unwrap(), 4);
        remote.seek(SeekFrom::Current(2)).await.unwrap();
        let mut rest = Vec::new();
        remote.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"6789");
        remote.shutdown().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"01ab456789");
    }

    #[tokio::test]
    async fn writes_are_gathered_and_flushed() {
        let (_dir, path, netref) = file(b"", "wb").await;
        let mut remote = RemoteFile::new(netref).with_write_behind(10);
        remote
            .write_all(b"abcdefghijklmnopqrstuvwxyz")
            .await
            .unwrap();
        assert_eq!(remote.buffered_write(), 6);
        remote.flush().await.unwrap();
        assert_eq!(remote.buffered_write(), 0);
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefghijklmnopqrstuvwxyz");
        remote.shutdown().await.unwrap();
        remote.shutdown().await.unwrap();
        let err = remote.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn error_kinds_follow_the_exception() {
        for (err, kind) in [
            (
                Error::app("PermissionError", "x"),
                io::ErrorKind::PermissionDenied,
            ),
            (
                Error::app("FileExistsError", "x"),
                io::ErrorKind::AlreadyExists,
            ),
            (
                Error::app("UnsupportedOperation", "x"),
                io::ErrorKind::Unsupported,
            ),
            (
                Error::app("IsADirectoryError", "x"),
                io::ErrorKind::IsADirectory,
            ),
            (raise::closed("gone"), io::ErrorKind::ConnectionAborted),
            (raise::bad_args("no"), io::ErrorKind::InvalidInput),
            (Error::app("OSError", "x"), io::ErrorKind::Other),
        ] {
            let io_err = io::Error::from(err.clone());
            assert_eq!(io_err.kind(), kind, "{err}");
            assert_eq!(io_err.to_string(), err.to_string());
            let inner = io_err.into_inner().unwrap().downcast::<Error>().unwrap();
            assert_eq!(inner.type_name(), err.type_name());
        }
    }
}
