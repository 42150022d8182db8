//! A local file served by reference: what a client hands a server so the
//! server can read it (RPyC's `line_counter(fileobj, function)`).
//!
//! [`LocalFile`] behaves like a Python file opened for reading: `readline`
//! returns one line with its trailing newline (`''` at the end of the file),
//! `read(n)` returns up to `n` characters (everything left without `n`),
//! iterating yields lines, and every operation on a closed file fails with
//! `ValueError: I/O operation on closed file.`. A file opened with
//! [`LocalFile::open_binary`] gives `bytes` instead of `str`.
//!
//! The file is read on tokio's blocking pool (`spawn_blocking`), one
//! operation at a time and in the order the calls arrived, so a slow disk
//! never stalls the connection's tasks. An operation whose caller gave up
//! (deadline, cancellation) still finishes on the pool, so the file
//! position stays consistent.
//!
//! Errors have Python's type names, so a peer can branch on them:
//! `FileNotFoundError`, `PermissionError`, `IsADirectoryError`, `OSError`,
//! `UnicodeDecodeError` (text mode, for bytes that are not UTF-8) and
//! `ValueError` (closed file).
//!
//! Text mode reads UTF-8 and splits lines on `\n` only; `\r\n` stays in the
//! line as it is in the file.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::error::raise;
use crate::service::object::{BoxFuture, CallContext, Member, Object};
use crate::{Args, Error, Result, Value};

const TEXT_MEMBERS: &[Member] = &[
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
        "close",
        "() -> None",
        "Close the file; later reads fail with ValueError. Closing twice is allowed.",
    ),
    Member::attribute("name", "str", "The path the file was opened with."),
    Member::attribute("mode", "str", "'r' (text) or 'rb' (binary)."),
    Member::attribute("closed", "bool", "True once the file is closed."),
];

const BINARY_MEMBERS: &[Member] = &[
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
        "close",
        "() -> None",
        "Close the file; later reads fail with ValueError. Closing twice is allowed.",
    ),
    Member::attribute("name", "str", "The path the file was opened with."),
    Member::attribute("mode", "str", "'r' (text) or 'rb' (binary)."),
    Member::attribute("closed", "bool", "True once the file is closed."),
];

/// Whether reads return `str` (UTF-8 checked) or `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Binary,
}

/// A file of ours, opened for reading, that a peer can read through a
/// netref, like a Python file object.
///
/// Members: `readline()`, `read(n=-1)`, `readlines()`, `close()` and the
/// attributes `name`, `mode` and `closed`. Iterating it yields its lines
/// with their trailing newlines; batched iteration reads a whole batch of
/// lines in one go. Dropping the last reference closes the file.
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
/// # });
/// ```
pub struct LocalFile {
    name: String,
    mode: Mode,
    closed: AtomicBool,
    /// `None` once closed. Locked (in call order) by each operation and
    /// moved into the blocking task that does the I/O.
    reader: Arc<Mutex<Option<BufReader<File>>>>,
}

impl LocalFile {
    /// Open `path` for reading as UTF-8 text (Python's `open(path)`).
    ///
    /// Fails with an application error named like Python's exception:
    /// `FileNotFoundError`, `PermissionError`, `IsADirectoryError` or
    /// `OSError`, whose message names the path.
    pub async fn open(path: impl AsRef<Path>) -> Result<LocalFile> {
        LocalFile::open_mode(path.as_ref(), Mode::Text).await
    }

    /// Open `path` for reading as bytes (Python's `open(path, 'rb')`):
    /// reads return `bytes` and `read(n)` counts bytes.
    pub async fn open_binary(path: impl AsRef<Path>) -> Result<LocalFile> {
        LocalFile::open_mode(path.as_ref(), Mode::Binary).await
    }

    async fn open_mode(path: &Path, mode: Mode) -> Result<LocalFile> {
        let name = path.to_string_lossy().into_owned();
        let owned = path.to_path_buf();
        let opened = blocking(move || {
            let file = File::open(&owned)?;
            if file.metadata()?.is_dir() {
                return Err(io::Error::from(io::ErrorKind::IsADirectory));
            }
            Ok(file)
        })
        .await
        .and_then(|r| r.map_err(|e| os_error(e, &name)))?;
        Ok(LocalFile {
            name,
            mode,
            closed: AtomicBool::new(false),
            reader: Arc::new(Mutex::new(Some(BufReader::new(opened)))),
        })
    }

    /// The path the file was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once the file is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Run `op` on the open reader on the blocking pool, after every
    /// operation that started before it.
    async fn with_reader<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut BufReader<File>, Mode) -> Result<T, ReadError> + Send + 'static,
    {
        let mut guard = self.reader.clone().lock_owned().await;
        if guard.is_none() {
            return Err(closed_file());
        }
        let mode = self.mode;
        let result = blocking(move || match guard.as_mut() {
            Some(reader) => op(reader, mode),
            None => Err(ReadError::Closed),
        })
        .await?;
        result.map_err(|e| match e {
            ReadError::Io(e) => os_error(e, &self.name),
            ReadError::Utf8 { at } => Error::app(
                "UnicodeDecodeError",
                format!(
                    "'utf-8' codec can't decode the bytes at {at} of a read from '{}': \
                     invalid UTF-8 (open it with LocalFile::open_binary to read bytes)",
                    self.name
                ),
            ),
            ReadError::Closed => closed_file(),
        })
    }

    async fn readline(&self) -> Result<Value> {
        self.with_reader(|r, mode| {
            let mut line = Vec::new();
            r.read_until(b'\n', &mut line)?;
            decode(line, mode)
        })
        .await
    }

    async fn read(&self, n: Option<usize>) -> Result<Value> {
        self.with_reader(move |r, mode| {
            let mut out = Vec::new();
            match (n, mode) {
                (None, _) => {
                    r.read_to_end(&mut out)?;
                }
                (Some(n), Mode::Binary) => {
                    r.take(n as u64).read_to_end(&mut out)?;
                }
                (Some(n), Mode::Text) => read_chars(r, n, &mut out)?,
            }
            decode(out, mode)
        })
        .await
    }

    /// Up to `max` lines (all of them for `None`); fewer only at the end.
    async fn lines(&self, max: Option<usize>) -> Result<Vec<Value>> {
        self.with_reader(move |r, mode| {
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

    async fn close_file(&self) -> Result<()> {
        let mut guard = self.reader.clone().lock_owned().await;
        self.closed.store(true, Ordering::SeqCst);
        // Closing a file descriptor can block (network file systems).
        let file = guard.take();
        blocking(move || drop(file)).await
    }
}

impl fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFile")
            .field("name", &self.name)
            .field("mode", &self.mode_str())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl LocalFile {
    fn mode_str(&self) -> &'static str {
        match self.mode {
            Mode::Text => "r",
            Mode::Binary => "rb",
        }
    }
}

impl Object for LocalFile {
    fn type_name(&self) -> &str {
        "LocalFile"
    }

    fn members(&self) -> &[Member] {
        match self.mode {
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
            "mode" => Ok(Value::from(self.mode_str())),
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
            self.mode_str()
        )
    }
}

/// Why a read failed, before the path is put into the message.
enum ReadError {
    Io(io::Error),
    Utf8 { at: usize },
    Closed,
}

impl From<io::Error> for ReadError {
    fn from(err: io::Error) -> ReadError {
        ReadError::Io(err)
    }
}

/// Run blocking file I/O on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::app("OSError", format!("file operation did not complete: {e}")))
}

/// `str` (checked UTF-8) or `bytes`, as the mode says.
fn decode(bytes: Vec<u8>, mode: Mode) -> Result<Value, ReadError> {
    match mode {
        Mode::Binary => Ok(Value::Bytes(bytes)),
        Mode::Text => String::from_utf8(bytes)
            .map(Value::Str)
            .map_err(|e| ReadError::Utf8 {
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

/// An I/O error as Python names it, with the path in the message:
/// `FileNotFoundError: [Errno 2] No such file or directory: 'x.txt'`.
fn os_error(err: io::Error, path: &str) -> Error {
    let type_name = match err.kind() {
        io::ErrorKind::NotFound => "FileNotFoundError",
        io::ErrorKind::PermissionDenied => "PermissionError",
        io::ErrorKind::IsADirectory => "IsADirectoryError",
        _ => "OSError",
    };
    let text = err.to_string();
    let message = match err.raw_os_error() {
        Some(code) => {
            let text = text.trim_end_matches(&format!(" (os error {code})"));
            format!("[Errno {code}] {text}: {}", Value::from(path))
        }
        None => format!("{text}: {}", Value::from(path)),
    };
    Error::app(type_name, message)
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
            Value::Bytes(b"a".to_vec())
        );
        assert_eq!(
            file.iter().collect_all().await.unwrap(),
            vec![
                Value::Bytes(b"\xff\n".to_vec()),
                Value::Bytes(b"b".to_vec())
            ]
        );
        assert_eq!(file.getattr("mode").await.unwrap(), Value::from("rb"));
    }

    #[tokio::test]
    async fn dropping_the_last_reference_closes_the_file() {
        let (_tmp, file) = open(b"x").await;
        let weak = Arc::downgrade(&file.downcast_ref::<LocalFile>().unwrap().reader);
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
