//! Standard async I/O over netrefs: `RemoteFile` makes a file the server
//! hands out a tokio `AsyncRead`/`AsyncBufRead`/`AsyncWrite`/`AsyncSeek`,
//! so `tokio::io::copy` and `BufReader::lines` work on it, over an
//! in-memory pair and over TCP, with few round trips and with errors as
//! `std::io::Error`s.

use std::io::{ErrorKind as IoKind, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tether::{
    Args, BoxFuture, Builder, CallContext, Connection, LocalFile, Member, NetRef, Object,
    RemoteFile, Result, Value,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};

/// Remote calls the files of one service received, by method.
#[derive(Default)]
struct Counts {
    reads: AtomicUsize,
    writes: AtomicUsize,
}

/// The service: Python's `open(path, mode)`, serving a counted `LocalFile`
/// by reference.
#[derive(Clone, Default)]
struct Files {
    counts: Arc<Counts>,
}

#[tether::expose]
impl Files {
    /// Open a file of the server's, as Python's `open(path, mode='r')`.
    #[method]
    async fn open(&self, path: String, mode: Option<String>) -> tether::Result<NetRef> {
        let file = LocalFile::open_with(path, mode.as_deref().unwrap_or("r")).await?;
        Ok(NetRef::new(Counted {
            file,
            counts: self.counts.clone(),
        }))
    }
}

/// A `LocalFile` that counts the `read` and `write` calls it serves.
struct Counted {
    file: LocalFile,
    counts: Arc<Counts>,
}

impl Object for Counted {
    fn type_name(&self) -> &str {
        self.file.type_name()
    }

    fn members(&self) -> &[Member] {
        self.file.members()
    }

    fn call_method<'a>(
        &'a self,
        name: &'a str,
        args: Args,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        match name {
            "read" => self.counts.reads.fetch_add(1, Ordering::SeqCst),
            "write" => self.counts.writes.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        self.file.call_method(name, args, cx)
    }

    fn get_attr<'a>(&'a self, name: &'a str, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        self.file.get_attr(name, cx)
    }

    fn next_batch<'a>(
        &'a self,
        max: usize,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<Value>>> {
        self.file.next_batch(max, cx)
    }

    fn close<'a>(&'a self, cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        self.file.close(cx)
    }
}

/// A client connected in memory to a `Files` server.
async fn memory() -> (Connection, Connection, Files) {
    let files = Files::default();
    let (client, server) =
        tether::transport::memory::pair(Builder::default(), Builder::default().root(files.clone()))
            .await
            .unwrap();
    (client, server, files)
}

async fn open(root: &NetRef, path: &Path, mode: &str) -> tether::Result<NetRef> {
    let path = path.to_string_lossy().into_owned();
    NetRef::try_from(root.call_method("open", (path, mode)).await?)
}

/// `len` bytes from a fixed seed (xorshift64*), the same on every run.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Compare without printing megabytes on failure.
fn assert_same(got: &[u8], want: &[u8]) {
    let first_difference = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "got {} bytes, want {}; first difference at {first_difference:?}",
        got.len(),
        want.len()
    );
}

/// Bound every test so a bug shows up as a failure, not a hang.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("no hang")
}

/// A few MB of random data: local file → RemoteFile (write mode) with
/// `tokio::io::copy`, then RemoteFile (read mode) → a local Vec, byte for
/// byte, with about one round trip per 64 KiB each way.
async fn copy_both_ways(root: &NetRef, counts: &Counts) {
    const LEN: usize = 3 * 1024 * 1024 + 12_345;
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(LEN, 0x7e7e_4e12);
    let source = dir.path().join("source.bin");
    std::fs::write(&source, &data).unwrap();
    let target = dir.path().join("remote.bin");

    let mut local = tokio::fs::File::open(&source).await.unwrap();
    let mut remote = RemoteFile::new(open(root, &target, "wb").await.unwrap());
    let copied = tokio::io::copy(&mut local, &mut remote).await.unwrap();
    assert_eq!(copied, LEN as u64);
    remote.shutdown().await.unwrap();
    assert_same(&std::fs::read(&target).unwrap(), &data);
    // `copy` flushes whenever the file it reads is not ready, so the number
    // of writes depends on the disk; from a source that is always ready,
    // writes are gathered into 64 KiB calls.
    counts.writes.store(0, Ordering::SeqCst);
    let mut remote = RemoteFile::new(open(root, &target, "wb").await.unwrap());
    let copied = tokio::io::copy(&mut &data[..], &mut remote).await.unwrap();
    assert_eq!(copied, LEN as u64);
    remote.shutdown().await.unwrap();
    assert_same(&std::fs::read(&target).unwrap(), &data);
    let writes = counts.writes.swap(0, Ordering::SeqCst);
    assert!(
        writes <= LEN / (64 * 1024) + 1,
        "{writes} write calls for {LEN} bytes"
    );

    let mut remote = RemoteFile::new(open(root, &target, "rb").await.unwrap());
    let mut back = Vec::new();
    let copied = tokio::io::copy(&mut remote, &mut back).await.unwrap();
    assert_eq!(copied, LEN as u64);
    assert_same(&back, &data);
    let reads = counts.reads.swap(0, Ordering::SeqCst);
    assert!(
        reads <= LEN / (64 * 1024) + 2,
        "{reads} read calls for {LEN} bytes"
    );
}

#[tokio::test]
async fn copy_through_a_remote_file_in_memory() {
    let (client, _server, files) = memory().await;
    let root = client.root().await.unwrap();
    bounded(copy_both_ways(&root, &files.counts)).await;
}

#[tokio::test]
async fn copy_through_a_remote_file_over_tcp() {
    let files = Files::default();
    let server = tether::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(files.clone()));
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    bounded(copy_both_ways(&root, &files.counts)).await;
}

#[tokio::test]
async fn buf_reader_lines_over_a_remote_text_file() {
    let (client, _server, files) = memory().await;
    let root = client.root().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.txt");
    let lines: Vec<String> = (0..20_000).map(|i| format!("line {i}: héllo")).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    bounded(async {
        // tokio's BufReader over it, the file opened in binary mode.
        let file = open(&root, &path, "rb").await.unwrap();
        let mut reader = BufReader::new(RemoteFile::new(file)).lines();
        let mut got = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            got.push(line);
        }
        assert_eq!(got, lines);
        // About 400 KB: a handful of 64 KiB reads, not one per line.
        let reads = files.counts.reads.swap(0, Ordering::SeqCst);
        assert!(reads <= 10, "{reads} read calls");

        // RemoteFile is an AsyncBufRead itself, and reads text-mode files too.
        let file = open(&root, &path, "r").await.unwrap();
        let mut reader = RemoteFile::new(file).lines();
        let mut got = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            got.push(line);
        }
        assert_eq!(got, lines);
    })
    .await;
}

#[tokio::test]
async fn seek_then_read_and_write() {
    let (client, _server, _files) = memory().await;
    let root = client.root().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seek.bin");
    let data = random_bytes(200_000, 42);
    std::fs::write(&path, &data).unwrap();

    bounded(async {
        let mut file = RemoteFile::new(open(&root, &path, "r+b").await.unwrap());
        let mut ten = [0u8; 10];
        assert_eq!(file.seek(SeekFrom::Start(100_000)).await.unwrap(), 100_000);
        file.read_exact(&mut ten).await.unwrap();
        assert_eq!(ten, data[100_000..100_010]);
        // Current counts from what the reader consumed, not what it read ahead.
        assert_eq!(file.stream_position().await.unwrap(), 100_010);
        assert_eq!(file.seek(SeekFrom::Current(-20)).await.unwrap(), 99_990);
        file.read_exact(&mut ten).await.unwrap();
        assert_eq!(ten, data[99_990..100_000]);
        assert_eq!(file.seek(SeekFrom::End(-5)).await.unwrap(), 199_995);
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).await.unwrap();
        assert_eq!(tail, data[199_995..]);

        // Overwrite in the middle, read it back.
        file.seek(SeekFrom::Start(50)).await.unwrap();
        file.write_all(b"HELLO").await.unwrap();
        file.rewind().await.unwrap();
        let mut head = [0u8; 60];
        file.read_exact(&mut head).await.unwrap();
        assert_eq!(&head[..50], &data[..50]);
        assert_eq!(&head[50..55], b"HELLO");
        assert_eq!(&head[55..], &data[55..60]);
        // A write right after a read lands where the reader is.
        file.write_all(b"!!").await.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 62);
        file.shutdown().await.unwrap();

        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[50..55], b"HELLO");
        assert_eq!(&on_disk[60..62], b"!!");
        assert_same(&on_disk[62..], &data[62..]);
    })
    .await;
}

#[tokio::test]
async fn a_file_closed_underneath_fails_with_an_io_error() {
    let (client, _server, _files) = memory().await;
    let root = client.root().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closing.bin");
    std::fs::write(&path, random_bytes(10_000, 7)).unwrap();

    bounded(async {
        let netref = open(&root, &path, "rb").await.unwrap();
        let mut file = RemoteFile::new(netref.clone()).with_read_ahead(1000);
        let mut some = [0u8; 100];
        file.read_exact(&mut some).await.unwrap();
        netref.call_method("close", ()).await.unwrap();
        // What was read ahead is still there; the next round trip fails.
        let mut rest = Vec::new();
        let err = file.read_to_end(&mut rest).await.unwrap_err();
        assert_eq!(rest.len(), 900);
        assert_eq!(err.kind(), IoKind::InvalidInput, "{err}");
        let inner = err.get_ref().unwrap().downcast_ref::<tether::Error>();
        let inner = inner.expect("the tether error inside");
        assert_eq!(inner.type_name(), Some("ValueError"));
        assert_eq!(inner.message(), "I/O operation on closed file.");

        // Buffered writes fail on flush.
        let netref = open(&root, &dir.path().join("w.bin"), "wb").await.unwrap();
        let mut file = RemoteFile::new(netref.clone());
        file.write_all(b"pending").await.unwrap();
        netref.close().await.unwrap();
        let err = file.flush().await.unwrap_err();
        assert_eq!(err.kind(), IoKind::InvalidInput, "{err}");
    })
    .await;
}

#[tokio::test]
async fn the_end_of_the_connection_fails_reads_and_writes() {
    let (client, server, _files) = memory().await;
    let root = client.root().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.bin");
    std::fs::write(&path, b"data").unwrap();
    let mut reader = RemoteFile::new(open(&root, &path, "rb").await.unwrap());
    let mut writer = RemoteFile::new(open(&root, &dir.path().join("w.bin"), "wb").await.unwrap());
    writer.write_all(b"buffered").await.unwrap();

    server.close().await;
    bounded(async {
        let mut buf = Vec::new();
        let err = reader.read_to_end(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), IoKind::ConnectionAborted, "{err}");
        let inner = err.get_ref().unwrap().downcast_ref::<tether::Error>();
        assert!(inner.unwrap().is_closed());
        let err = writer.shutdown().await.unwrap_err();
        assert_eq!(err.kind(), IoKind::ConnectionAborted, "{err}");
    })
    .await;
}

#[tokio::test]
async fn remote_errors_have_matching_io_kinds() {
    let (client, _server, _files) = memory().await;
    let root = client.root().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kinds.txt");
    std::fs::write(&path, "text\n").unwrap();

    bounded(async {
        // Opening: the error of the `open` call, as an io::Error.
        let err = open(&root, &dir.path().join("missing"), "rb")
            .await
            .unwrap_err();
        assert_eq!(std::io::Error::from(err).kind(), IoKind::NotFound);
        let err = open(&root, &path, "x").await.unwrap_err();
        assert_eq!(std::io::Error::from(err).kind(), IoKind::AlreadyExists);
        let err = open(&root, dir.path(), "rb").await.unwrap_err();
        assert_eq!(std::io::Error::from(err).kind(), IoKind::IsADirectory);

        // Writing a file opened for reading.
        let mut file = RemoteFile::new(open(&root, &path, "rb").await.unwrap());
        file.write_all(b"x").await.unwrap(); // buffered
        let err = file.flush().await.unwrap_err();
        assert_eq!(err.kind(), IoKind::Unsupported, "{err}");
        assert!(err.to_string().contains("kinds.txt"), "{err}");

        // Reading a file opened for writing.
        let mut file = RemoteFile::new(open(&root, &path, "ab").await.unwrap());
        let err = file.read_u8().await.unwrap_err();
        assert_eq!(err.kind(), IoKind::Unsupported, "{err}");

        // Bytes to a text-mode file.
        let mut file = RemoteFile::new(open(&root, &path, "a").await.unwrap());
        file.write_all(b"x").await.unwrap();
        let err = file.shutdown().await.unwrap_err();
        assert_eq!(err.kind(), IoKind::InvalidInput, "{err}");
    })
    .await;
}
