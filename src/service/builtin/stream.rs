//! Any tokio byte stream served by reference: [`Stream`].
//!
//! A [`Stream`] wraps an [`AsyncRead`], an [`AsyncWrite`] or both (a socket,
//! a pipe, a child's stdout, one end of [`tokio::io::duplex`]) and serves it
//! with the members of a Python binary stream, so a peer reads and writes it
//! with the same calls as a [`LocalFile`](crate::LocalFile) opened in binary
//! mode, and [`RemoteFile`](crate::RemoteFile) turns the netref back into a
//! tokio stream on the other side.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::__private::ArgReader;
use crate::error::raise;
use crate::service::object::{BoxFuture, CallContext, Member, Object};
use crate::{Args, Error, Result, Value};

/// Read buffer of the reading half.
const BUFFER: usize = 64 * 1024;
/// The most one `read(n)` asks of the underlying reader at once.
const MAX_READ: usize = 4 << 20;

const MEMBERS: &[Member] = &[
    Member::method(
        "read",
        "(n: int = -1) -> bytes",
        "Read up to n bytes: waits until at least one byte is available and returns what is, \
         without waiting for all n (b'' at the end of the stream). With n negative or missing, \
         reads to the end of the stream. Also accepts size=n.",
    ),
    Member::method(
        "readline",
        "(size: int = -1) -> bytes",
        "Read one line, keeping its trailing newline (at most size bytes when size >= 0); \
         b'' at the end of the stream.",
    ),
    Member::method(
        "readlines",
        "() -> list[bytes]",
        "Read to the end of the stream and return its lines, each with its trailing newline.",
    ),
    Member::method(
        "write",
        "(data: bytes) -> int",
        "Write all of data (str is written as UTF-8); returns the number of bytes written. \
         Writes go straight to the underlying writer.",
    ),
    Member::method(
        "flush",
        "() -> None",
        "Flush the underlying writer (nothing to do for a read-only stream).",
    ),
    Member::method(
        "close",
        "() -> None",
        "Close both directions: the writer is shut down (a child's stdin sees the end of its \
         input) and pending reads and writes fail. Later operations fail with ValueError; \
         closing twice is allowed.",
    ),
    Member::method(
        "seek",
        "(offset: int, whence: int = 0) -> int",
        "Streams are not seekable: always fails with UnsupportedOperation.",
    ),
    Member::method(
        "tell",
        "() -> int",
        "Streams have no position: always fails with UnsupportedOperation.",
    ),
    Member::method("readable", "() -> bool", "Whether the stream can be read."),
    Member::method(
        "writable",
        "() -> bool",
        "Whether the stream can be written.",
    ),
    Member::method("seekable", "() -> bool", "False: streams cannot seek."),
    Member::attribute(
        "name",
        "str",
        "What the stream is, e.g. 'stdout of pid 42'.",
    ),
    Member::attribute("closed", "bool", "True once the stream is closed."),
];

type Reader = BufReader<Box<dyn AsyncRead + Send + Unpin>>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A byte stream of ours that a peer can use through a netref, like a
/// Python binary stream (a pipe or socket file).
///
/// Build it over a reader ([`Stream::reader`]), a writer
/// ([`Stream::writer`]) or both ([`Stream::duplex`]); a
/// [`Process`](crate::Process) serves its child's stdin, stdout and stderr
/// this way.
///
/// # Members
///
/// - `read(n=-1) -> bytes`: up to `n` bytes; it waits for the first byte
///   and then returns what is available, without waiting for all `n` (as
///   Python's `read1` and a raw pipe's `read` do), so an interactive peer
///   (a shell, `cat`) is never stuck waiting for a full buffer. `b''` means
///   the end of the stream. A negative or missing `n` reads to the end.
/// - `readline(size=-1) -> bytes`, `readlines() -> list[bytes]`;
/// - `write(data) -> int`: writes all of `data` (bytes; a `str` is written
///   as UTF-8) straight to the underlying writer and returns its length;
/// - `flush()`, `close()`;
/// - `seek(..)` and `tell()` fail with `UnsupportedOperation`;
/// - `readable()`, `writable()`, `seekable()`, and the attributes `name`
///   and `closed`.
///
/// Iterating it yields its lines (bytes, with their newlines), a batch of
/// lines per request ([`NetRef::iter`](crate::NetRef::iter)). A batch is
/// full unless the stream ended, so iterating a slow producer's output
/// hands lines over a batch at a time; to see each line as soon as it is
/// complete, call `readline` or iterate with
/// [`RemoteIter::batch_size`](crate::RemoteIter::batch_size)`(1)`.
///
/// Reading and writing are independent: a read waiting for data does not
/// hold up a write (a duplex stream is split into its halves), so a peer
/// can write to a child's stdin while another call waits on its stdout.
/// Reads run one at a time in call order, and so do writes.
///
/// # With `RemoteFile`
///
/// [`RemoteFile`](crate::RemoteFile) over a stream netref gives the peer a
/// tokio [`AsyncRead`]/[`AsyncWrite`] again, so `tokio::io::copy` works
/// across the connection. Seeking fails (`io::ErrorKind::Unsupported`); on
/// a duplex stream use one `RemoteFile` for reading and another (over the
/// same netref) for writing, since a `RemoteFile` moves back over its
/// read-ahead with a seek before it writes.
///
/// # Closing and errors
///
/// `close()` (or the close operation) shuts the writer down and drops both
/// halves, failing any read or write in progress; later operations fail
/// with `ValueError: I/O operation on closed file.` Dropping the last
/// reference (or the connection ending) drops both halves too. Using the
/// missing half fails with `UnsupportedOperation: not readable` (or
/// `not writable`); I/O errors arrive as `OSError` (or the matching
/// subclass, `BrokenPipeError` for a reader that went away) with the
/// stream's name.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tether::{NetRef, Stream, Value};
/// use tokio::io::AsyncWriteExt;
///
/// let (mine, mut theirs) = tokio::io::duplex(1024);
/// // In a real program the netref is handed to a peer.
/// let stream = NetRef::new(Stream::duplex(mine).with_name("demo"));
/// theirs.write_all(b"hello\nworld\n").await.unwrap();
/// assert_eq!(stream.call_method("readline", ()).await.unwrap(), Value::from(&b"hello\n"[..]));
/// stream.call_method("write", (Value::from(&b"ping"[..]),)).await.unwrap();
/// stream.close().await.unwrap();
/// let err = stream.call_method("read", ()).await.unwrap_err();
/// assert_eq!(err.to_string(), "ValueError: I/O operation on closed file.");
/// # });
/// ```
pub struct Stream {
    name: String,
    /// `None`: the stream cannot be read. The inner `None`: closed.
    reader: Option<Mutex<Option<Reader>>>,
    writer: Option<Mutex<Option<Writer>>>,
    closed: AtomicBool,
    /// Cancelled by `close`, failing the reads and writes in progress.
    closing: CancellationToken,
}

impl Stream {
    /// Serve a reader: `read`, `readline` and iteration work, `write`
    /// fails with `UnsupportedOperation`.
    pub fn reader(reader: impl AsyncRead + Send + Unpin + 'static) -> Stream {
        Stream::from_parts(Some(Box::new(reader)), None)
    }

    /// Serve a writer: `write` and `flush` work, reading fails with
    /// `UnsupportedOperation`.
    pub fn writer(writer: impl AsyncWrite + Send + Unpin + 'static) -> Stream {
        Stream::from_parts(None, Some(Box::new(writer)))
    }

    /// Serve something both readable and writable (a socket, one end of
    /// [`tokio::io::duplex`]). It is split in two halves, so a pending read
    /// does not block a write.
    pub fn duplex(stream: impl AsyncRead + AsyncWrite + Send + Unpin + 'static) -> Stream {
        let (r, w) = tokio::io::split(stream);
        Stream::from_parts(Some(Box::new(r)), Some(Box::new(w)))
    }

    fn from_parts(
        reader: Option<Box<dyn AsyncRead + Send + Unpin>>,
        writer: Option<Writer>,
    ) -> Stream {
        Stream {
            name: "<stream>".to_string(),
            reader: reader.map(|r| Mutex::new(Some(BufReader::with_capacity(BUFFER, r)))),
            writer: writer.map(|w| Mutex::new(Some(w))),
            closed: AtomicBool::new(false),
            closing: CancellationToken::new(),
        }
    }

    /// Set the `name` attribute (shown in `repr` and error messages).
    pub fn with_name(mut self, name: impl Into<String>) -> Stream {
        self.name = name.into();
        self
    }

    /// The `name` attribute.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the stream can be read.
    pub fn is_readable(&self) -> bool {
        self.reader.is_some()
    }

    /// Whether the stream can be written.
    pub fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    /// True once the stream is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Run `op` on the reading half: after the reads before it, failing
    /// if the stream is (or gets) closed meanwhile.
    async fn with_reader<T>(
        &self,
        op: impl for<'r> FnOnce(&'r mut Reader) -> BoxFuture<'r, io::Result<T>>,
    ) -> Result<T> {
        let Some(half) = &self.reader else {
            return Err(unsupported("not readable", &self.name));
        };
        let mut guard = self.until_closed(async { Ok(half.lock().await) }).await?;
        let reader = guard.as_mut().ok_or_else(closed_file)?;
        self.until_closed(op(reader)).await
    }

    /// As [`with_reader`](Self::with_reader), for the writing half.
    async fn with_writer<T>(
        &self,
        op: impl for<'w> FnOnce(&'w mut Writer) -> BoxFuture<'w, io::Result<T>>,
    ) -> Result<T> {
        let Some(half) = &self.writer else {
            return Err(unsupported("not writable", &self.name));
        };
        let mut guard = self.until_closed(async { Ok(half.lock().await) }).await?;
        let writer = guard.as_mut().ok_or_else(closed_file)?;
        self.until_closed(op(writer)).await
    }

    /// `fut`, unless the stream is closed first.
    async fn until_closed<T>(
        &self,
        fut: impl std::future::Future<Output = io::Result<T>>,
    ) -> Result<T> {
        if self.closing.is_cancelled() {
            return Err(closed_file());
        }
        tokio::select! {
            biased;
            _ = self.closing.cancelled() => Err(closed_file()),
            out = fut => out.map_err(|e| stream_error(e, &self.name)),
        }
    }

    async fn read(&self, n: Option<usize>) -> Result<Value> {
        self.with_reader(|r| {
            Box::pin(async move {
                let mut out = Vec::new();
                match n {
                    None => {
                        r.read_to_end(&mut out).await?;
                    }
                    Some(0) => {}
                    Some(n) => {
                        out.resize(n.min(MAX_READ), 0);
                        let got = r.read(&mut out).await?;
                        out.truncate(got);
                    }
                }
                Ok(Value::Bytes(out.into()))
            })
        })
        .await
    }

    async fn readline(&self, limit: Option<usize>) -> Result<Value> {
        self.with_reader(|r| {
            Box::pin(async move {
                let mut line = Vec::new();
                read_line(r, limit, &mut line).await?;
                Ok(Value::Bytes(line.into()))
            })
        })
        .await
    }

    /// Up to `max` lines; fewer only at the end of the stream.
    async fn lines(&self, max: usize) -> Result<Vec<Value>> {
        self.with_reader(|r| {
            Box::pin(async move {
                let mut lines = Vec::new();
                while lines.len() < max {
                    let mut line = Vec::new();
                    read_line(r, None, &mut line).await?;
                    if line.is_empty() {
                        break;
                    }
                    lines.push(Value::Bytes(line.into()));
                }
                Ok(lines)
            })
        })
        .await
    }

    async fn write(&self, data: Value) -> Result<Value> {
        let data = match data {
            Value::Bytes(b) => b.into(),
            Value::Str(s) => s.into_bytes(),
            other => {
                return Err(raise::bad_args(format!(
                    "a bytes-like object is required, not '{}'",
                    other.type_name()
                )))
            }
        };
        let len = data.len();
        self.with_writer(|w| {
            Box::pin(async move {
                w.write_all(&data).await?;
                Ok(())
            })
        })
        .await?;
        Ok(Value::Int(i64::try_from(len).unwrap_or(i64::MAX)))
    }

    async fn flush(&self) -> Result<Value> {
        if self.writer.is_none() {
            return if self.is_closed() {
                Err(closed_file())
            } else {
                Ok(Value::None)
            };
        }
        self.with_writer(|w| Box::pin(async move { w.flush().await }))
            .await
            .map(|()| Value::None)
    }

    /// Fail what is in progress, shut the writer down and drop both halves.
    async fn close_stream(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.closing.cancel();
        let mut result = Ok(());
        if let Some(half) = &self.writer {
            let writer = half.lock().await.take();
            if let Some(mut writer) = writer {
                result = writer
                    .shutdown()
                    .await
                    .map_err(|e| stream_error(e, &self.name));
            }
        }
        if let Some(half) = &self.reader {
            half.lock().await.take();
        }
        result
    }

    fn not_seekable(&self) -> Error {
        unsupported("File or stream is not seekable.", &self.name)
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("name", &self.name)
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Object for Stream {
    fn type_name(&self) -> &str {
        "Stream"
    }

    fn members(&self) -> &[Member] {
        MEMBERS
    }

    fn call_method<'a>(
        &'a self,
        name: &'a str,
        args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            match name {
                "read" => {
                    let n = read_size(args)?;
                    self.read(n).await
                }
                "readline" => {
                    let mut a = ArgReader::new(args);
                    let size: Option<i64> = a.one("size", true)?;
                    a.finish()?;
                    let limit = size.filter(|n| *n >= 0).map(|n| n as usize);
                    self.readline(limit).await
                }
                "readlines" => {
                    args.parse::<()>()?;
                    Ok(Value::List(self.lines(usize::MAX).await?))
                }
                "write" => {
                    let mut a = ArgReader::new(args);
                    let data: Value = a.one("data", false)?;
                    a.finish()?;
                    self.write(data).await
                }
                "flush" => {
                    args.parse::<()>()?;
                    self.flush().await
                }
                "close" => {
                    args.parse::<()>()?;
                    self.close_stream().await.map(|()| Value::None)
                }
                "seek" => {
                    let mut a = ArgReader::new(args);
                    let _offset: i64 = a.one("offset", false)?;
                    let _whence: Option<i64> = a.one("whence", true)?;
                    a.finish()?;
                    Err(self.not_seekable())
                }
                "tell" => {
                    args.parse::<()>()?;
                    Err(self.not_seekable())
                }
                "readable" => {
                    args.parse::<()>()?;
                    Ok(Value::from(self.is_readable()))
                }
                "writable" => {
                    args.parse::<()>()?;
                    Ok(Value::from(self.is_writable()))
                }
                "seekable" => {
                    args.parse::<()>()?;
                    Ok(Value::from(false))
                }
                other => Err(raise::no_member(self.type_name(), other)),
            }
        })
    }

    fn get_attr<'a>(&'a self, name: &'a str, _cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        let value = match name {
            "name" => Ok(Value::from(self.name.as_str())),
            "closed" => Ok(Value::from(self.is_closed())),
            other => Err(raise::no_member(self.type_name(), other)),
        };
        Box::pin(async move { value })
    }

    fn next<'a>(&'a self, _cx: &'a CallContext) -> BoxFuture<'a, Result<Option<Value>>> {
        Box::pin(async move { Ok(self.lines(1).await?.pop()) })
    }

    /// Reads up to `max` lines in one go (fewer only at the end).
    fn next_batch<'a>(
        &'a self,
        max: usize,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<Value>>> {
        Box::pin(async move { self.lines(max).await })
    }

    fn close<'a>(&'a self, _cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.close_stream())
    }

    fn repr(&self) -> String {
        let mode = match (self.is_readable(), self.is_writable()) {
            (true, true) => "rb+",
            (true, false) => "rb",
            _ => "wb",
        };
        format!(
            "<{}Stream name={} mode='{mode}'>",
            if self.is_closed() { "closed " } else { "" },
            Value::from(self.name.as_str()),
        )
    }
}

/// Read one line (through `\n`), at most `limit` bytes, into `out`.
async fn read_line(
    r: &mut (impl AsyncBufRead + Unpin),
    limit: Option<usize>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    loop {
        let room = limit.map_or(usize::MAX, |l| l - out.len());
        if room == 0 {
            return Ok(());
        }
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        let take = &buf[..buf.len().min(room)];
        let (used, done) = match take.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (take.len(), false),
        };
        out.extend_from_slice(&take[..used]);
        r.consume(used);
        if done {
            return Ok(());
        }
    }
}

/// `read`'s size from `read()`, `read(n)`, `read(None)`, `read(n=..)` or
/// `read(size=..)`; `None` means to the end.
pub(crate) fn read_size(mut args: Args) -> Result<Option<usize>> {
    let named = match (args.take_named("n"), args.take_named("size")) {
        (Some(_), Some(_)) => return Err(raise::bad_args("give the size as n or size, not both")),
        (a, b) => a.or(b),
    };
    if let Some(value) = named {
        if !args.positional.is_empty() {
            return Err(raise::bad_args("got multiple values for argument 'n'"));
        }
        args.named.push(("n".to_string(), value));
    }
    let mut a = ArgReader::new(args);
    let n: Option<i64> = a.one("n", true)?;
    a.finish()?;
    Ok(n.filter(|n| *n >= 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
}

/// "ValueError: I/O operation on closed file.", as Python says it.
fn closed_file() -> Error {
    Error::app("ValueError", "I/O operation on closed file.")
}

/// `io.UnsupportedOperation`, naming the stream.
fn unsupported(what: &str, name: &str) -> Error {
    Error::app(
        "UnsupportedOperation",
        format!("{what} ({})", Value::from(name)),
    )
}

/// An I/O error of the stream, as Python names it, with the stream's name.
fn stream_error(err: io::Error, name: &str) -> Error {
    super::fs::os_error_text(err, &Value::from(name).to_string())
}
