//! A local file served by reference, like a Python file object: what a
//! client hands a server so the server can read it (RPyC's
//! `line_counter(fileobj, function)`), or what a server hands a client that
//! asked to open one of its files.
//!
//! [`LocalFile`]'s docs describe the modes, members, closing and errors;
//! this page adds how the blocking work is done.
//!
//! # Threads
//!
//! Every operation runs its `std::fs` work as one task on tokio's blocking
//! pool (`spawn_blocking`), so a slow disk never stalls the connection's
//! tasks. Operations take the file's lock (a fair, FIFO tokio mutex) and
//! move the owned guard into their blocking task, so they run one at a
//! time, in the order the calls arrived: the connection polls each
//! request once as its frame is read, in arrival order, which is when an
//! operation queues for the lock, so calls pipelined on one file (several
//! sent without waiting for each reply) run in the order they were sent.
//! An operation whose
//! caller gave up (deadline, cancellation) still finishes on the pool, so
//! the file position stays consistent.
//!
//! Streaming reads skip most of those hand-offs: after two binary
//! `read(n)` of one size in a row (n from 16 KiB to 1 MiB, as
//! [`RemoteFile`](crate::RemoteFile) and `shutil.copyfileobj` do), the
//! blocking task also reads the next `n` bytes ahead; the next `read(n)` is
//! answered from them at once, without waiting for the pool, while the
//! chunk after it is read ahead in the background (holding the lock, so
//! order is kept). Any other operation first gives the bytes read ahead
//! back (seeking the file back), so positions, writes and `tell` are as
//! without it. A random reader pays at most one read of `n` too many.
//!
//! We chose this over one dedicated thread per open file: the pool reuses
//! its threads, so an operation costs a queue hand-off (microseconds, small
//! next to a round trip, and amortised by the batched operations: a batch
//! of lines per iteration request, 64 KiB per [`RemoteFile`](crate::RemoteFile)
//! read or write), while a thread per file would hold an OS thread (and its
//! stack) for every idle handle a server has handed out, and need its own
//! shutdown path when the file is dropped. The pool's threads are shared
//! by all files, and idle ones exit after a while.
//!
//! Closing on drop is the one exception: when the last reference goes, the
//! pending writes (at most 64 KiB) are written and the descriptor closed on
//! the dropping thread, so the data is in the OS as soon as the drop
//! returns. If an operation is still in flight then, its blocking task owns
//! the file and closes it when it finishes.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::fs::os_error;
use crate::error::raise;
use crate::service::object::{BoxFuture, CallContext, Member, Object};
use crate::{Args, Error, Result, Value};

/// Writes smaller than this are gathered before they reach the OS; larger
/// ones go straight through.
const WRITE_BUFFER: usize = 64 * 1024;

/// Binary reads of at least this many bytes (and at most
/// [`READ_AHEAD_MAX`]), twice in a row of the same size, are taken for
/// streaming: the next read of that size is done ahead.
const READ_AHEAD_FROM: usize = 16 * 1024;
const READ_AHEAD_MAX: usize = 1 << 20;

/// A file's member table: the members given (those that differ between
/// text and binary files, in `str` versus `bytes`), then the ones both share.
macro_rules! file_members {
    ($($specific:expr),* $(,)?) => {
        &[
            $($specific,)*
            Member::method(
                "flush",
                "() -> None",
                "Push buffered writes to the operating system.",
            ),
            Member::method(
                "truncate",
                "(size: int = None) -> int",
                "Cut (or extend) the file to size bytes, the current position by default; \
                 the position does not move. Returns the new size.",
            ),
            Member::method(
                "metadata",
                "() -> map",
                "size (bytes), modified (Unix seconds), is_file, is_dir and readonly.",
            ),
            Member::method(
                "close",
                "() -> None",
                "Flush and close the file; later operations fail with ValueError. Closing twice is \
                 allowed.",
            ),
            Member::attribute("name", "str", "The path the file was opened with."),
            Member::attribute(
                "mode",
                "str",
                "The mode it was opened with: 'r', 'w', 'a', 'x', with 'b' and '+' ('rb+').",
            ),
            Member::attribute("closed", "bool", "True once the file is closed."),
        ]
    };
}

const TEXT_MEMBERS: &[Member] = file_members![
    Member::method(
        "readline",
        "() -> str",
        "Read one line, keeping its trailing newline; '' at the end of the file.",
    ),
    Member::method(
        "read",
        "(n: int = -1) -> str",
        "Read up to n characters; everything left when n is negative or missing ('' at the end). \
         Also accepts size=n, as Python does.",
    ),
    Member::method(
        "readlines",
        "() -> list[str]",
        "Read all remaining lines, each with its trailing newline.",
    ),
    Member::method(
        "write",
        "(data: str) -> int",
        "Write a string; returns the number of characters written. Buffered until flush, \
         close, or the next read or seek.",
    ),
    Member::method(
        "seek",
        "(offset: int, whence: int = 0) -> int",
        "Move to offset (in bytes) from the start (whence 0), the current position (1) \
         or the end (2); returns the new position.",
    ),
    Member::method("tell", "() -> int", "The current position, in bytes."),
];

const BINARY_MEMBERS: &[Member] = file_members![
    Member::method(
        "readline",
        "() -> bytes",
        "Read one line, keeping its trailing newline; b'' at the end of the file.",
    ),
    Member::method(
        "read",
        "(n: int = -1) -> bytes",
        "Read up to n bytes; everything left when n is negative or missing (b'' at the end). \
         Also accepts size=n, as Python does.",
    ),
    Member::method(
        "readlines",
        "() -> list[bytes]",
        "Read all remaining lines, each with its trailing newline.",
    ),
    Member::method(
        "write",
        "(data: bytes) -> int",
        "Write bytes; returns the number written. Buffered until flush, close, or the next \
         read or seek.",
    ),
    Member::method(
        "seek",
        "(offset: int, whence: int = 0) -> int",
        "Move to offset from the start (whence 0), the current position (1) or the end (2); \
         returns the new position.",
    ),
    Member::method("tell", "() -> int", "The current position."),
];

/// Whether reads return `str` (UTF-8 checked) or `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Binary,
}

/// The first letter of a Python mode string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `r`: read an existing file.
    Read,
    /// `w`: create or truncate, then write.
    Write,
    /// `a`: create if needed, every write goes to the end.
    Append,
    /// `x`: create a new file (it must not exist), then write.
    Exclusive,
}

/// A parsed Python mode string (`"r"`, `"wb"`, `"r+b"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenMode {
    access: Access,
    /// `+`: reading and writing.
    plus: bool,
    binary: bool,
}

impl OpenMode {
    fn parse(mode: &str) -> Result<OpenMode> {
        let invalid = || Error::app("ValueError", format!("invalid mode: {}", Value::from(mode)));
        let (mut access, mut plus, mut binary, mut text) = (None, false, false, false);
        for c in mode.chars() {
            let seen = match c {
                'r' | 'w' | 'a' | 'x' => access
                    .replace(match c {
                        'r' => Access::Read,
                        'w' => Access::Write,
                        'a' => Access::Append,
                        _ => Access::Exclusive,
                    })
                    .is_some(),
                '+' => std::mem::replace(&mut plus, true),
                'b' => std::mem::replace(&mut binary, true),
                't' => std::mem::replace(&mut text, true),
                _ => return Err(invalid()),
            };
            if seen {
                return Err(invalid());
            }
        }
        if binary && text {
            return Err(Error::app(
                "ValueError",
                "can't have text and binary mode at once",
            ));
        }
        let access = access.ok_or_else(|| {
            Error::app(
                "ValueError",
                format!(
                    "Must have exactly one of create/read/write/append mode and at most one \
                     plus: {}",
                    Value::from(mode)
                ),
            )
        })?;
        Ok(OpenMode {
            access,
            plus,
            binary,
        })
    }

    fn readable(self) -> bool {
        self.access == Access::Read || self.plus
    }

    fn writable(self) -> bool {
        self.access != Access::Read || self.plus
    }

    fn data(self) -> Mode {
        if self.binary {
            Mode::Binary
        } else {
            Mode::Text
        }
    }

    fn options(self) -> OpenOptions {
        let mut options = OpenOptions::new();
        options.read(self.readable());
        match self.access {
            Access::Read => options.write(self.plus),
            Access::Write => options.write(true).create(true).truncate(true),
            Access::Append => options.append(true).create(true),
            Access::Exclusive => options.write(true).create_new(true),
        };
        options
    }

    /// The canonical spelling, as Python shows it: letter, then `b`, then `+`.
    fn as_str(self) -> &'static str {
        match (self.access, self.binary, self.plus) {
            (Access::Read, false, false) => "r",
            (Access::Read, false, true) => "r+",
            (Access::Read, true, false) => "rb",
            (Access::Read, true, true) => "rb+",
            (Access::Write, false, false) => "w",
            (Access::Write, false, true) => "w+",
            (Access::Write, true, false) => "wb",
            (Access::Write, true, true) => "wb+",
            (Access::Append, false, false) => "a",
            (Access::Append, false, true) => "a+",
            (Access::Append, true, false) => "ab",
            (Access::Append, true, true) => "ab+",
            (Access::Exclusive, false, false) => "x",
            (Access::Exclusive, false, true) => "x+",
            (Access::Exclusive, true, false) => "xb",
            (Access::Exclusive, true, true) => "xb+",
        }
    }
}

/// What an operation needs the file to have been opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Reading,
    Writing,
}

/// The open file: a read buffer over it and the writes not yet passed on.
///
/// At most one of the two holds data: a write first gives back what was
/// read ahead (seeking the file back to where the reader is), and every
/// other operation first passes on the pending writes.
///
/// Streaming binary reads (see [`READ_AHEAD_FROM`]) also keep the next
/// chunk read ahead in `ahead`; any other operation gives it back first.
struct Handle {
    reader: BufReader<File>,
    pending: Vec<u8>,
    /// The bytes after the reader's position, read ahead of a `read(n)`.
    ahead: Vec<u8>,
    /// The size of the last `read(n)` if it was binary and full, else 0.
    last_read: usize,
}

impl Handle {
    /// Pass the buffered writes to the OS. On failure they are dropped, so
    /// the error is reported once.
    fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.reader.get_mut().write_all(&self.pending);
        self.pending.clear();
        result
    }

    /// The reader, with pending writes passed on and what was read ahead
    /// given back.
    fn settled(&mut self) -> io::Result<&mut BufReader<File>> {
        self.flush_pending()?;
        self.give_back_ahead()?;
        self.last_read = 0;
        Ok(&mut self.reader)
    }

    /// Move the file back to before the bytes read ahead.
    fn give_back_ahead(&mut self) -> io::Result<()> {
        if self.ahead.is_empty() {
            return Ok(());
        }
        let back = i64::try_from(self.ahead.len()).unwrap_or(i64::MAX);
        self.ahead.clear();
        // Relative to where the reader is, its own buffer accounted for.
        self.reader.seek(SeekFrom::Current(-back)).map(drop)
    }

    /// Read the next `n` bytes into `ahead`. A failure is not reported
    /// here: the read that needs those bytes meets it again.
    fn read_ahead(&mut self, n: usize) {
        self.ahead = if n <= ONE_READ_MAX {
            read_up_to(&mut self.reader, n).unwrap_or_default()
        } else {
            let mut ahead = Vec::with_capacity(n);
            let _ = (&mut self.reader).take(n as u64).read_to_end(&mut ahead);
            ahead
        };
    }

    /// The next `n` bytes if they were read ahead for a streaming binary
    /// `read(n)`.
    fn take_ahead(&mut self, n: usize) -> Option<Vec<u8>> {
        if n < READ_AHEAD_FROM || self.last_read != n || self.ahead.len() < n {
            return None;
        }
        let rest = self.ahead.split_off(n);
        Some(std::mem::replace(&mut self.ahead, rest))
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.give_back_ahead()?;
        self.last_read = 0;
        if !self.reader.buffer().is_empty() {
            // Give back the read-ahead: the write goes where reading stopped.
            discard_read_ahead(&mut self.reader)?;
        }
        if self.pending.len() + data.len() > WRITE_BUFFER {
            self.flush_pending()?;
        }
        if data.len() >= WRITE_BUFFER {
            self.reader.get_mut().write_all(data)
        } else {
            self.pending.extend_from_slice(data);
            Ok(())
        }
    }
}

/// Largest read ahead made by [`read_up_to`]. Measured with
/// `FLAVOUR=ct tether-bench/scripts/perf-stat.sh`: for 64 KiB reads it
/// saves three of four file reads and 7 % of the CPU per read
/// (`read64k`); for `RemoteFile`'s 1 MiB reads zeroing the buffer costs
/// what the seven reads it saves do (`remotefile64k`), so those keep
/// `read_to_end`.
const ONE_READ_MAX: usize = 128 * 1024;

/// Up to `n` bytes of `r`, in as few reads as the OS allows: a file
/// gives `n` bytes in one, where `read_to_end` starts at 8 KiB and doubles
/// (four reads for 64 KiB). The buffer is zeroed first.
fn read_up_to(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    let mut filled = 0;
    while filled < n {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Err(err) = self.flush_pending() {
            tracing::warn!(%err, "buffered writes lost when closing a dropped file");
        }
    }
}

/// A file of ours that a peer can use through a netref, like a Python file
/// object.
///
/// Members: `read(n=-1)`, `readline()`, `readlines()`, `write(data)`,
/// `seek(offset, whence=0)`, `tell()`, `flush()`, `truncate(size=None)`,
/// `metadata()`, `close()` and the attributes `name`, `mode` and `closed`.
/// Iterating it yields its lines with their trailing newlines; batched
/// iteration reads a whole batch of lines in one go. Dropping the last
/// reference flushes and closes the file.
///
/// # Modes
///
/// [`LocalFile::open_with`] takes Python's mode strings: `r` (read; the
/// file must exist), `w` (write; create or truncate), `a` (append; create),
/// `x` (write; the file must not exist yet), each with `+` for reading and
/// writing (`r+`, `w+`, `a+`, `x+`) and `b` for binary (`rb`, `wb`, `r+b`,
/// ...). [`LocalFile::open`] is `r` and [`LocalFile::open_binary`] `rb`.
///
/// In text mode reads return `str` (checked UTF-8) and writes take `str`;
/// in binary mode both use `bytes`. `readline` returns one line with its
/// trailing newline (`''` at the end of the file), `read(n)` returns up to
/// `n` characters (bytes in binary mode; everything left without `n`),
/// iterating yields lines (a batch of lines per request), `write(data)`
/// returns the number of characters (bytes) written, `seek(offset,
/// whence=0)` and `truncate(size=None)` return the new position and size,
/// `tell()` the position, `metadata()` a map with `size`, `modified` (Unix
/// seconds, a float), `is_file`, `is_dir` and `readonly`. Text mode splits
/// lines on `\n` only (`\r\n` stays in the line as it is in the file), and
/// its positions (`seek`, `tell`) are byte offsets, as the cookies of
/// Python's UTF-8 text files are.
///
/// Writes are buffered (64 KiB, as the client side's
/// [`RemoteFile`](crate::RemoteFile) batches them): `flush()`, `close()`,
/// dropping the file, and any read, seek, tell, truncate or metadata push
/// them to the operating system first. Reading and writing the same `+`
/// file mix as in Python: a write goes where the reads left off.
///
/// # Closing
///
/// `close()` (or the close operation, [`NetRef::close`](crate::NetRef::close))
/// flushes and closes the file; every later operation fails with
/// `ValueError: I/O operation on closed file.`, and closing again is
/// allowed. A file nobody closed is flushed and closed when its last
/// reference is dropped: the last local [`NetRef`](crate::NetRef), the
/// peer's release of the last proxy, or the end of the connection (which
/// drops everything a peer held). If an operation is still running on the
/// blocking pool at that moment, the file is closed as soon as it finishes.
/// Flush errors at that point cannot be reported to anyone; they are logged
/// (`tracing`, at warn level).
///
/// # Errors
///
/// Errors have Python's type names, so a peer can branch on them, and
/// those about the file name its path: `FileNotFoundError`, `PermissionError`, `IsADirectoryError`,
/// `NotADirectoryError`, `FileExistsError` (mode `x`), `OSError` (anything
/// else the OS reports, with its errno), `UnsupportedOperation` (writing a
/// file opened for reading, reading one opened for writing: Python's
/// `io.UnsupportedOperation`), `UnicodeDecodeError` (text mode, for bytes
/// that are not UTF-8) and `ValueError` (a closed file, a bad mode, a
/// negative seek position or size). Arguments of the wrong type (bytes to a
/// text file, say) fail with [`ErrorKind::BadArguments`](crate::ErrorKind).
///
/// # Threads
///
/// Each operation runs its `std::fs` work as one task on tokio's blocking
/// pool (`spawn_blocking`, no thread per file), one at a time and in the
/// order the calls arrived, pipelined ones included; sequential binary
/// reads of one size are read ahead (see the module docs).
/// One whose caller gave up still finishes, so the position stays
/// consistent.
///
/// # Example
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tether::{LocalFile, NetRef, Value};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("poem.txt");
/// std::fs::write(&path, "first line\nsecond line\n").unwrap();
///
/// // Pass `file` to a peer as an argument; here we call it in-process.
/// let file = NetRef::new(LocalFile::open(&path).await.unwrap());
/// assert_eq!(file.call_method("readline", ()).await.unwrap(), Value::from("first line\n"));
/// let rest = file.iter().collect_all().await.unwrap();
/// assert_eq!(rest, vec![Value::from("second line\n")]);
/// assert_eq!(file.call_method("readline", ()).await.unwrap(), Value::from(""));
///
/// file.close().await.unwrap();
/// let err = file.call_method("read", ()).await.unwrap_err();
/// assert_eq!(err.to_string(), "ValueError: I/O operation on closed file.");
///
/// let missing = LocalFile::open(dir.path().join("nope.txt")).await.unwrap_err();
/// assert_eq!(missing.type_name(), Some("FileNotFoundError"));
///
/// // Other modes, as Python spells them.
/// let log = NetRef::new(LocalFile::open_with(dir.path().join("log.txt"), "a+").await.unwrap());
/// assert_eq!(log.call_method("write", ("hello\n",)).await.unwrap(), Value::from(6));
/// assert_eq!(log.call_method("seek", (0,)).await.unwrap(), Value::from(0));
/// assert_eq!(log.call_method("read", ()).await.unwrap(), Value::from("hello\n"));
/// # });
/// ```
pub struct LocalFile {
    name: String,
    mode: OpenMode,
    closed: AtomicBool,
    /// `None` once closed. Locked by each operation and
    /// moved into the blocking task that does the I/O.
    handle: Arc<Mutex<Option<Handle>>>,
}

impl LocalFile {
    /// Open `path` for reading as UTF-8 text (Python's `open(path)`).
    ///
    /// Fails with an application error named like Python's exception:
    /// `FileNotFoundError`, `PermissionError`, `IsADirectoryError` or
    /// `OSError`, whose message names the path.
    pub async fn open(path: impl AsRef<Path>) -> Result<LocalFile> {
        LocalFile::open_mode(path.as_ref(), OpenMode::parse("r")?).await
    }

    /// Open `path` for reading as bytes (Python's `open(path, 'rb')`):
    /// reads return `bytes` and `read(n)` counts bytes.
    pub async fn open_binary(path: impl AsRef<Path>) -> Result<LocalFile> {
        LocalFile::open_mode(path.as_ref(), OpenMode::parse("rb")?).await
    }

    /// Open `path` with a Python mode string: `r`, `w`, `a`, `x`, each
    /// optionally with `+` (read and write) and `b` (bytes instead of
    /// text), as in `open(path, "r+b")`.
    ///
    /// Fails with `ValueError` for an invalid mode, and as
    /// [`open`](LocalFile::open) does otherwise, plus `FileExistsError`
    /// when mode `x` finds the file already there.
    pub async fn open_with(path: impl AsRef<Path>, mode: &str) -> Result<LocalFile> {
        LocalFile::open_mode(path.as_ref(), OpenMode::parse(mode)?).await
    }

    async fn open_mode(path: &Path, mode: OpenMode) -> Result<LocalFile> {
        let name = path.to_string_lossy().into_owned();
        let owned = path.to_path_buf();
        let opened = blocking(move || {
            let mut file = mode.options().open(&owned)?;
            if file.metadata()?.is_dir() {
                return Err(io::Error::from(io::ErrorKind::IsADirectory));
            }
            if mode.access == Access::Append {
                // Python starts an appending file at its end, so tell() is its size.
                file.seek(SeekFrom::End(0))?;
            }
            Ok(file)
        })
        .await
        .and_then(|r| r.map_err(|e| os_error(e, &name)))?;
        Ok(LocalFile {
            name,
            mode,
            closed: AtomicBool::new(false),
            handle: Arc::new(Mutex::new(Some(Handle {
                reader: BufReader::new(opened),
                pending: Vec::new(),
                ahead: Vec::new(),
                last_read: 0,
            }))),
        })
    }

    /// The path the file was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mode, spelled as Python shows it (`"r"`, `"wb"`, `"rb+"`).
    pub fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    /// True once the file is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Run `op` on the open file on the blocking pool, after every
    /// operation that started before it.
    async fn with_handle<T, F>(&self, need: Need, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Handle, Mode) -> Result<T, OpError> + Send + 'static,
    {
        let guard = self.handle.clone().lock_owned().await;
        self.with_guard(guard, need, op).await
    }

    /// [`with_handle`](Self::with_handle) with the lock already taken.
    async fn with_guard<T, F>(
        &self,
        mut guard: OwnedMutexGuard<Option<Handle>>,
        need: Need,
        op: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Handle, Mode) -> Result<T, OpError> + Send + 'static,
    {
        if guard.is_none() {
            return Err(closed_file());
        }
        match need {
            Need::Reading if !self.mode.readable() => return Err(self.unsupported("readable")),
            Need::Writing if !self.mode.writable() => return Err(self.unsupported("writable")),
            _ => {}
        }
        let mode = self.mode.data();
        let result = blocking(move || match guard.as_mut() {
            Some(handle) => op(handle, mode),
            None => Err(OpError::Closed),
        })
        .await?;
        result.map_err(|e| match e {
            OpError::Io(e) => os_error(e, &self.name),
            OpError::Utf8 { at } => Error::app(
                "UnicodeDecodeError",
                format!(
                    "'utf-8' codec can't decode the bytes at {at} of a read from '{}': \
                     invalid UTF-8 (open it in binary mode, 'rb', to read bytes)",
                    self.name
                ),
            ),
            OpError::Closed => closed_file(),
        })
    }

    /// `io.UnsupportedOperation: not readable`, with the path and mode.
    fn unsupported(&self, what: &str) -> Error {
        Error::app(
            "UnsupportedOperation",
            format!(
                "not {what}: {} was opened with mode '{}'",
                Value::from(self.name.as_str()),
                self.mode.as_str()
            ),
        )
    }

    async fn readline(&self) -> Result<Value> {
        self.with_handle(Need::Reading, |h, mode| {
            let r = h.settled()?;
            let mut line = Vec::new();
            r.read_until(b'\n', &mut line)?;
            decode(line, mode)
        })
        .await
    }

    async fn read(&self, n: Option<usize>) -> Result<Value> {
        let mut guard = self.handle.clone().lock_owned().await;
        if let (Some(n), Some(h)) = (n, guard.as_mut()) {
            // Streaming: answered at once from what was read ahead, and
            // the next chunk is read ahead on the pool meanwhile (the lock
            // goes with it, so the next operation waits for it).
            if let Some(bytes) = h.take_ahead(n) {
                tokio::task::spawn_blocking(move || {
                    if let Some(h) = guard.as_mut() {
                        h.read_ahead(n);
                    }
                });
                return Ok(Value::Bytes(bytes.into()));
            }
        }
        self.with_guard(guard, Need::Reading, move |h, mode| {
            let streaming = h.last_read;
            let r = h.settled()?;
            let mut out = Vec::new();
            match (n, mode) {
                (None, _) => {
                    r.read_to_end(&mut out)?;
                }
                (Some(n), Mode::Binary) => {
                    out.reserve(n.min(1 << 20));
                    r.take(n as u64).read_to_end(&mut out)?;
                    if (READ_AHEAD_FROM..=READ_AHEAD_MAX).contains(&n) && out.len() == n {
                        // The second full read of this size in a row
                        // starts reading ahead.
                        if streaming == n {
                            h.read_ahead(n);
                        }
                        h.last_read = n;
                    }
                }
                (Some(n), Mode::Text) => read_chars(r, n, &mut out)?,
            }
            decode(out, mode)
        })
        .await
    }

    /// Up to `max` lines (all of them for `None`); fewer only at the end.
    async fn lines(&self, max: Option<usize>) -> Result<Vec<Value>> {
        self.with_handle(Need::Reading, move |h, mode| {
            let r = h.settled()?;
            let mut lines = Vec::new();
            while max.is_none_or(|max| lines.len() < max) {
                let mut line = Vec::new();
                if r.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                lines.push(decode(line, mode)?);
            }
            Ok(lines)
        })
        .await
    }

    async fn write(&self, data: Value) -> Result<Value> {
        let (bytes, count) = match (self.mode.data(), data) {
            (Mode::Text, Value::Str(s)) => {
                let count = s.chars().count();
                (s.into_bytes(), count)
            }
            (Mode::Binary, Value::Bytes(b)) => {
                let count = b.len();
                (b.into(), count)
            }
            (Mode::Text, other) => {
                return Err(raise::bad_args(format!(
                    "write() argument must be str, not {}",
                    other.type_name()
                )))
            }
            (Mode::Binary, other) => {
                return Err(raise::bad_args(format!(
                    "a bytes-like object is required, not '{}'",
                    other.type_name()
                )))
            }
        };
        self.with_handle(Need::Writing, move |h, _| {
            h.write(&bytes)?;
            Ok(())
        })
        .await?;
        Ok(Value::Int(i64::try_from(count).unwrap_or(i64::MAX)))
    }

    async fn seek(&self, offset: i64, whence: i64) -> Result<Value> {
        let to = match whence {
            0 if offset < 0 => {
                return Err(Error::app(
                    "ValueError",
                    format!("negative seek position {offset}"),
                ))
            }
            0 => SeekFrom::Start(offset as u64),
            1 => SeekFrom::Current(offset),
            2 => SeekFrom::End(offset),
            other => {
                return Err(Error::app(
                    "ValueError",
                    format!("invalid whence ({other}, should be 0, 1 or 2)"),
                ))
            }
        };
        self.with_handle(Need::Nothing, move |h, _| {
            Ok(position(h.settled()?.seek(to)?))
        })
        .await
    }

    async fn tell(&self) -> Result<Value> {
        self.with_handle(Need::Nothing, |h, _| {
            Ok(position(h.settled()?.stream_position()?))
        })
        .await
    }

    async fn flush(&self) -> Result<Value> {
        self.with_handle(Need::Nothing, |h, _| {
            h.flush_pending()?;
            Ok(Value::None)
        })
        .await
    }

    async fn truncate(&self, size: Option<i64>) -> Result<Value> {
        if let Some(size) = size.filter(|s| *s < 0) {
            return Err(Error::app(
                "ValueError",
                format!("negative size value {size}"),
            ));
        }
        self.with_handle(Need::Writing, move |h, _| {
            let r = h.settled()?;
            let size = match size {
                Some(size) => size as u64,
                None => r.stream_position()?,
            };
            // Drop the read-ahead: it may hold bytes that are now gone.
            discard_read_ahead(r)?;
            r.get_ref().set_len(size)?;
            Ok(position(size))
        })
        .await
    }

    async fn metadata(&self) -> Result<Value> {
        self.with_handle(Need::Nothing, |h, _| {
            let meta = h.settled()?.get_ref().metadata()?;
            let modified = match meta.modified()?.duration_since(UNIX_EPOCH) {
                Ok(after) => after.as_secs_f64(),
                Err(before) => -before.duration().as_secs_f64(),
            };
            Ok(Value::map([
                ("size", position(meta.len())),
                ("modified", Value::from(modified)),
                ("is_file", Value::from(meta.is_file())),
                ("is_dir", Value::from(meta.is_dir())),
                ("readonly", Value::from(meta.permissions().readonly())),
            ]))
        })
        .await
    }

    async fn close_file(&self) -> Result<()> {
        let mut guard = self.handle.clone().lock_owned().await;
        self.closed.store(true, Ordering::SeqCst);
        let handle = guard.take();
        drop(guard);
        // Flushing and closing a file descriptor can block (network file
        // systems). The file is closed even when the flush fails.
        blocking(move || match handle {
            Some(mut handle) => handle.flush_pending(),
            None => Ok(()),
        })
        .await?
        .map_err(|e| os_error(e, &self.name))
    }
}

impl fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFile")
            .field("name", &self.name)
            .field("mode", &self.mode.as_str())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Object for LocalFile {
    fn type_name(&self) -> &str {
        "LocalFile"
    }

    fn members(&self) -> &[Member] {
        match self.mode.data() {
            Mode::Text => TEXT_MEMBERS,
            Mode::Binary => BINARY_MEMBERS,
        }
    }

    fn call_method<'a>(
        &'a self,
        name: &'a str,
        args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            match name {
                "readline" => {
                    args.parse::<()>()?;
                    self.readline().await
                }
                "read" => {
                    let n = read_size(args)?;
                    self.read(n).await
                }
                "readlines" => {
                    args.parse::<()>()?;
                    Ok(Value::List(self.lines(None).await?))
                }
                "write" => {
                    let [data] = params(args, ["data"])?;
                    let data = data.ok_or_else(|| missing("write", "data"))?;
                    self.write(data).await
                }
                "seek" => {
                    let [offset, whence] = params(args, ["offset", "whence"])?;
                    let offset =
                        int_arg("offset", offset)?.ok_or_else(|| missing("seek", "offset"))?;
                    let whence = int_arg("whence", whence)?.unwrap_or(0);
                    self.seek(offset, whence).await
                }
                "tell" => {
                    args.parse::<()>()?;
                    self.tell().await
                }
                "flush" => {
                    args.parse::<()>()?;
                    self.flush().await
                }
                "truncate" => {
                    let [size] = params(args, ["size"])?;
                    self.truncate(int_arg("size", size)?).await
                }
                "metadata" => {
                    args.parse::<()>()?;
                    self.metadata().await
                }
                "close" => {
                    args.parse::<()>()?;
                    self.close_file().await.map(|()| Value::None)
                }
                other => Err(raise::no_member(self.type_name(), other)),
            }
        })
    }

    fn get_attr<'a>(&'a self, name: &'a str, _cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        let value = match name {
            "name" => Ok(Value::from(self.name.as_str())),
            "mode" => Ok(Value::from(self.mode.as_str())),
            "closed" => Ok(Value::from(self.is_closed())),
            other => Err(raise::no_member(self.type_name(), other)),
        };
        Box::pin(async move { value })
    }

    fn next<'a>(&'a self, _cx: &'a CallContext) -> BoxFuture<'a, Result<Option<Value>>> {
        Box::pin(async move { Ok(self.lines(Some(1)).await?.pop()) })
    }

    /// Reads up to `max` lines in one blocking task. If a line fails (bad
    /// UTF-8, an I/O error), the whole batch fails and the lines read
    /// before it in that batch are consumed, as with Python's buffered
    /// decoding.
    fn next_batch<'a>(
        &'a self,
        max: usize,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<Value>>> {
        Box::pin(async move { self.lines(Some(max)).await })
    }

    fn close<'a>(&'a self, _cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.close_file())
    }

    fn repr(&self) -> String {
        format!(
            "<{}LocalFile name={} mode='{}'>",
            if self.is_closed() { "closed " } else { "" },
            Value::from(self.name.as_str()),
            self.mode.as_str()
        )
    }
}

/// Why an operation failed, before the path is put into the message.
enum OpError {
    Io(io::Error),
    Utf8 { at: usize },
    Closed,
}

impl From<io::Error> for OpError {
    fn from(err: io::Error) -> OpError {
        OpError::Io(err)
    }
}

/// Drop what `reader` read ahead, moving the file back to where the reader
/// is. (`BufReader::seek` always empties its buffer; `stream_position`,
/// which clippy suggests for `SeekFrom::Current(0)`, keeps it.)
#[allow(clippy::seek_from_current)]
fn discard_read_ahead(reader: &mut BufReader<File>) -> io::Result<()> {
    reader.seek(SeekFrom::Current(0)).map(drop)
}

/// Run blocking file I/O on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::app("OSError", format!("file operation did not complete: {e}")))
}

/// A file position or size as an `int`.
fn position(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `str` (checked UTF-8) or `bytes`, as the mode says.
fn decode(bytes: Vec<u8>, mode: Mode) -> Result<Value, OpError> {
    match mode {
        Mode::Binary => Ok(Value::Bytes(bytes.into())),
        Mode::Text => String::from_utf8(bytes)
            .map(Value::Str)
            .map_err(|e| OpError::Utf8 {
                at: e.utf8_error().valid_up_to(),
            }),
    }
}
/// Read `n` UTF-8 characters (fewer at the end of the file) into `out`,
/// stopping right after the last byte of the `n`th character.
fn read_chars(r: &mut impl BufRead, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let mut chars = 0;
    let mut continuation = 0;
    while chars < n || continuation > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let mut used = 0;
        for &byte in buf {
            if continuation > 0 && byte & 0xC0 == 0x80 {
                continuation -= 1;
            } else {
                continuation = 0;
                if chars == n {
                    break;
                }
                chars += 1;
                continuation = match byte {
                    0xC0..=0xDF => 1,
                    0xE0..=0xEF => 2,
                    0xF0..=0xF7 => 3,
                    _ => 0,
                };
            }
            used += 1;
        }
        out.extend_from_slice(&buf[..used]);
        r.consume(used);
    }
    Ok(())
}

/// `read`'s size from `read()`, `read(n)`, `read(None)`, `read(n=..)` or
/// `read(size=..)`; `None` means everything.
fn read_size(mut args: Args) -> Result<Option<usize>> {
    let named = match (args.take_named("n"), args.take_named("size")) {
        (Some(_), Some(_)) => {
            return Err(raise::bad_args("give the size as n or size, not both"));
        }
        (a, b) => a.or(b),
    };
    if let Some((name, _)) = args.named.first() {
        return Err(raise::bad_args(format!(
            "unexpected named argument '{name}'"
        )));
    }
    let value = match (args.positional.len(), named) {
        (0, named) => named.unwrap_or(Value::None),
        (1, None) => args.positional.remove(0),
        (1, Some(_)) => return Err(raise::bad_args("got multiple values for argument 'n'")),
        (count, _) => {
            return Err(raise::bad_args(format!(
                "takes at most 1 argument but {count} were given"
            )))
        }
    };
    match value {
        Value::None => Ok(None),
        Value::Int(n) if n < 0 => Ok(None),
        Value::Int(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        other => Err(raise::bad_args(format!(
            "argument 'n': expected int, got {}",
            other.type_name()
        ))),
    }
}

/// "ValueError: I/O operation on closed file.", as Python says it.
fn closed_file() -> Error {
    Error::app("ValueError", "I/O operation on closed file.")
}

/// Arguments given by position or by name, each optional, in the order of
/// `names`; more positional arguments, a name given twice or an unknown
/// name are errors.
fn params<const N: usize>(mut args: Args, names: [&str; N]) -> Result<[Option<Value>; N]> {
    if args.positional.len() > N {
        return Err(raise::bad_args(format!(
            "takes at most {N} argument{} but {} were given",
            if N == 1 { "" } else { "s" },
            args.positional.len()
        )));
    }
    let mut out: [Option<Value>; N] = std::array::from_fn(|_| None);
    for (slot, value) in out.iter_mut().zip(args.positional.drain(..)) {
        *slot = Some(value);
    }
    for (slot, name) in out.iter_mut().zip(names) {
        if let Some(value) = args.take_named(name) {
            if slot.is_some() {
                return Err(raise::bad_args(format!(
                    "got multiple values for argument '{name}'"
                )));
            }
            *slot = Some(value);
        }
    }
    if let Some((name, _)) = args.named.first() {
        return Err(raise::bad_args(format!(
            "unexpected named argument '{name}'"
        )));
    }
    Ok(out)
}

/// An optional `int` argument (`None` counts as left out).
fn int_arg(name: &str, value: Option<Value>) -> Result<Option<i64>> {
    match value {
        None | Some(Value::None) => Ok(None),
        Some(Value::Int(n)) => Ok(Some(n)),
        Some(other) => Err(raise::bad_args(format!(
            "argument '{name}': expected int, got {}",
            other.type_name()
        ))),
    }
}

fn missing(method: &str, name: &str) -> Error {
    raise::bad_args(format!("{method}() missing required argument '{name}'"))
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, NetRef};

    fn file_with(contents: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        io::Write::write_all(&mut f, contents).unwrap();
        f
    }

    async fn open(contents: &[u8]) -> (tempfile::NamedTempFile, NetRef) {
        let tmp = file_with(contents);
        let file = NetRef::new(LocalFile::open(tmp.path()).await.unwrap());
        (tmp, file)
    }

    async fn readline(file: &NetRef) -> Result<Value> {
        file.call_method("readline", ()).await
    }

    #[tokio::test]
    async fn readline_keeps_newlines_and_returns_empty_at_the_end() {
        let (_tmp, file) = open(b"one\ntwo\nthree").await;
        assert_eq!(readline(&file).await.unwrap(), Value::from("one\n"));
        assert_eq!(readline(&file).await.unwrap(), Value::from("two\n"));
        assert_eq!(readline(&file).await.unwrap(), Value::from("three"));
        assert_eq!(readline(&file).await.unwrap(), Value::from(""));
        assert_eq!(readline(&file).await.unwrap(), Value::from(""));
    }

    #[tokio::test]
    async fn read_counts_characters_and_defaults_to_everything() {
        let (_tmp, file) = open("héllo\nwörld\n".as_bytes()).await;
        assert_eq!(
            file.call_method("read", (2,)).await.unwrap(),
            Value::from("hé")
        );
        assert_eq!(
            file.call_method("read", Args::new().named("n", 4))
                .await
                .unwrap(),
            Value::from("llo\n")
        );
        assert_eq!(
            file.call_method("read", Args::new().named("size", 0))
                .await
                .unwrap(),
            Value::from("")
        );
        assert_eq!(
            file.call_method("read", ()).await.unwrap(),
            Value::from("wörld\n")
        );
        assert_eq!(
            file.call_method("read", (-1,)).await.unwrap(),
            Value::from("")
        );
        assert_eq!(
            file.call_method("read", (5,)).await.unwrap(),
            Value::from("")
        );
    }

    #[tokio::test]
    async fn read_with_negative_or_none_reads_everything() {
        let (_tmp, file) = open(b"abc\ndef").await;
        assert_eq!(
            file.call_method("read", (-1,)).await.unwrap(),
            Value::from("abc\ndef")
        );
        let (_tmp, file) = open(b"abc").await;
        assert_eq!(
            file.call_method("read", (Value::None,)).await.unwrap(),
            Value::from("abc")
        );
    }

    #[tokio::test]
    async fn read_rejects_bad_arguments() {
        let (_tmp, file) = open(b"abc").await;
        for args in [
            Args::new().arg("3"),
            Args::new().arg(1).arg(2),
            Args::new().arg(1).named("n", 2),
            Args::new().named("count", 2),
        ] {
            let err = file.call_method("read", args).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
        }
        let err = file.call_method("readline", (1,)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadArguments);
    }

    #[tokio::test]
    async fn iteration_yields_lines_with_newlines_in_batches() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let (_tmp, file) = open(text.as_bytes()).await;
        assert_eq!(readline(&file).await.unwrap(), Value::from("line 0\n"));
        let batch = file.next_batch(10).await.unwrap();
        assert_eq!(batch.len(), 10);
        assert_eq!(batch[0], Value::from("line 1\n"));
        let rest = file.iter().collect_all().await.unwrap();
        assert_eq!(rest.len(), 89);
        assert_eq!(rest.last(), Some(&Value::from("line 99\n")));
        assert_eq!(file.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn last_line_without_newline_is_yielded() {
        let (_tmp, file) = open(b"a\nb").await;
        let lines = file.iter().collect_all().await.unwrap();
        assert_eq!(lines, vec![Value::from("a\n"), Value::from("b")]);
    }

    #[tokio::test]
    async fn readlines_returns_the_rest() {
        let (_tmp, file) = open(b"a\nb\nc\n").await;
        readline(&file).await.unwrap();
        assert_eq!(
            file.call_method("readlines", ()).await.unwrap(),
            Value::from(vec![Value::from("b\n"), Value::from("c\n")])
        );
    }

    #[tokio::test]
    async fn close_then_every_read_fails_with_value_error() {
        let (_tmp, file) = open(b"a\nb\n").await;
        assert_eq!(file.getattr("closed").await.unwrap(), Value::from(false));
        file.call_method("close", ()).await.unwrap();
        assert_eq!(file.getattr("closed").await.unwrap(), Value::from(true));
        for result in [
            readline(&file).await,
            file.call_method("read", ()).await,
            file.call_method("readlines", ()).await,
            file.next().await.map(Value::from),
        ] {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Application);
            assert_eq!(err.to_string(), "ValueError: I/O operation on closed file.");
        }
        // Closing again (either way) is fine.
        file.close().await.unwrap();
        file.call_method("close", ()).await.unwrap();
        assert!(file.repr().await.unwrap().starts_with("<closed LocalFile"));
    }

    #[tokio::test]
    async fn attributes_name_the_file() {
        let (tmp, file) = open(b"").await;
        let name = tmp.path().to_string_lossy().into_owned();
        assert_eq!(
            file.getattr("name").await.unwrap(),
            Value::from(name.as_str())
        );
        assert_eq!(file.getattr("mode").await.unwrap(), Value::from("r"));
        assert_eq!(
            file.dir().await.unwrap(),
            [
                "readline",
                "read",
                "readlines",
                "write",
                "seek",
                "tell",
                "flush",
                "truncate",
                "metadata",
                "close",
                "name",
                "mode",
                "closed"
            ]
        );
    }

    #[tokio::test]
    async fn missing_file_is_file_not_found_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.txt");
        let err = LocalFile::open(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Application);
        assert_eq!(err.type_name(), Some("FileNotFoundError"));
        assert!(err.message().contains("missing.txt"), "{err}");
        assert!(err.message().starts_with("[Errno 2] No such file"), "{err}");
    }

    #[tokio::test]
    async fn a_directory_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = LocalFile::open(dir.path()).await.unwrap_err();
        assert_eq!(err.type_name(), Some("IsADirectoryError"));
    }

    #[tokio::test]
    async fn invalid_utf8_is_a_unicode_decode_error() {
        let (_tmp, file) = open(b"ok\nbad \xff\xfe\nok again\n").await;
        assert_eq!(readline(&file).await.unwrap(), Value::from("ok\n"));
        let err = readline(&file).await.unwrap_err();
        assert_eq!(err.type_name(), Some("UnicodeDecodeError"));
        assert!(err.message().contains("at 4"), "{err}");
        assert_eq!(readline(&file).await.unwrap(), Value::from("ok again\n"));

        let (_tmp, file) = open(b"\xc3").await;
        let err = file.iter().collect_all().await.unwrap_err();
        assert_eq!(err.type_name(), Some("UnicodeDecodeError"));
    }

    #[tokio::test]
    async fn binary_mode_reads_bytes() {
        let tmp = file_with(b"a\xff\nb");
        let file = NetRef::new(LocalFile::open_binary(tmp.path()).await.unwrap());
        assert_eq!(
            file.call_method("read", (1,)).await.unwrap(),
            Value::Bytes(b"a".to_vec().into())
        );
        assert_eq!(
            file.iter().collect_all().await.unwrap(),
            vec![
                Value::Bytes(b"\xff\n".to_vec().into()),
                Value::Bytes(b"b".to_vec().into())
            ]
        );
        assert_eq!(file.getattr("mode").await.unwrap(), Value::from("rb"));
    }

    #[tokio::test]
    async fn dropping_the_last_reference_closes_the_file() {
        let (_tmp, file) = open(b"x").await;
        let weak = Arc::downgrade(&file.downcast_ref::<LocalFile>().unwrap().handle);
        drop(file);
        assert!(weak.upgrade().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reads_neither_lose_nor_repeat_lines() {
        let text: String = (0..200).map(|i| format!("{i}\n")).collect();
        let (_tmp, file) = open(text.as_bytes()).await;
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let file = file.clone();
                tokio::spawn(async move { readline(&file).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            let line = String::try_from(task.await.unwrap()).unwrap();
            seen.push(line.trim_end().parse::<u32>().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn modes_parse_as_python_spells_them() {
        for (given, canonical, readable, writable) in [
            ("r", "r", true, false),
            ("rt", "r", true, false),
            ("rb", "rb", true, false),
            ("r+", "r+", true, true),
            ("r+b", "rb+", true, true),
            ("br+", "rb+", true, true),
            ("w", "w", false, true),
            ("wb", "wb", false, true),
            ("w+", "w+", true, true),
            ("a", "a", false, true),
            ("ab+", "ab+", true, true),
            ("x", "x", false, true),
            ("x+b", "xb+", true, true),
        ] {
            let mode = OpenMode::parse(given).unwrap();
            assert_eq!(mode.as_str(), canonical, "{given}");
            assert_eq!(
                (mode.readable(), mode.writable()),
                (readable, writable),
                "{given}"
            );
        }
        for bad in ["", "rw", "rr", "r++", "bt", "rbt", "q", "b", "+"] {
            let err = OpenMode::parse(bad).unwrap_err();
            assert_eq!(err.type_name(), Some("ValueError"), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn read_write_mixes_as_in_python() {
        let tmp = file_with(b"0123456789");
        let file = NetRef::new(LocalFile::open_with(tmp.path(), "r+b").await.unwrap());
        assert_eq!(
            file.call_method("read", (2,)).await.unwrap(),
            Value::Bytes(b"01".to_vec().into())
        );
        // The read-ahead is given back: the write lands at position 2.
        file.call_method("write", (Value::Bytes(b"ab".to_vec().into()),))
            .await
            .unwrap();
        assert_eq!(file.call_method("tell", ()).await.unwrap(), Value::from(4));
        assert_eq!(
            file.call_method("read", ()).await.unwrap(),
            Value::Bytes(b"456789".to_vec().into())
        );
        file.call_method("seek", (-3, 2)).await.unwrap();
        file.call_method("write", (Value::Bytes(b"XYZW".to_vec().into()),))
            .await
            .unwrap();
        file.call_method("flush", ()).await.unwrap();
        assert_eq!(std::fs::read(tmp.path()).unwrap(), b"01ab456XYZW");
        // Truncating keeps the position and drops stale read-ahead.
        file.call_method("seek", (0,)).await.unwrap();
        file.call_method("read", (1,)).await.unwrap();
        assert_eq!(
            file.call_method("truncate", Args::new().named("size", 3))
                .await
                .unwrap(),
            Value::from(3)
        );
        assert_eq!(
            file.call_method("read", ()).await.unwrap(),
            Value::Bytes(b"1a".to_vec().into())
        );
    }

    #[tokio::test]
    async fn seek_and_truncate_reject_bad_arguments() {
        let tmp = file_with(b"abc");
        let file = NetRef::new(LocalFile::open_with(tmp.path(), "r+").await.unwrap());
        for (method, args) in [
            ("seek", Args::new()),
            ("seek", Args::new().arg("1")),
            ("seek", Args::new().arg(1).arg(0).arg(0)),
            ("seek", Args::new().arg(1).named("offset", 1)),
            ("seek", Args::new().arg(1).named("from", 1)),
            ("truncate", Args::new().arg(1.5)),
            ("write", Args::new()),
            ("write", Args::new().arg(Value::Bytes(b"x".to_vec().into()))),
        ] {
            let err = file.call_method(method, args).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadArguments, "{method}: {err}");
        }
        for (method, args, message) in [
            ("seek", (-1, 0), "negative seek position -1"),
            ("seek", (0, 3), "invalid whence (3, should be 0, 1 or 2)"),
        ] {
            let err = file.call_method(method, args).await.unwrap_err();
            assert_eq!(err.to_string(), format!("ValueError: {message}"));
        }
        let err = file.call_method("truncate", (-2,)).await.unwrap_err();
        assert_eq!(err.to_string(), "ValueError: negative size value -2");
    }

    #[test]
    fn read_chars_handles_characters_split_across_buffer_refills() {
        let text = "aé€😀b";
        for capacity in 1..=4 {
            let mut r = BufReader::with_capacity(capacity, text.as_bytes());
            let mut parts = Vec::new();
            loop {
                let mut out = Vec::new();
                read_chars(&mut r, 2, &mut out).unwrap();
                if out.is_empty() {
                    break;
                }
                parts.push(String::from_utf8(out).unwrap());
            }
            assert_eq!(parts, ["aé", "€😀", "b"], "capacity {capacity}");
        }
    }
}
