//! Remote files: a server hands out `LocalFile`s by reference through an
//! `open(path, mode)` method, and the client uses them as Python file
//! objects over an in-memory connection: every operation, the errors of
//! each, and when the file is closed (explicitly, when the last reference
//! drops, when the connection ends).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tether::{Args, Builder, Connection, ErrorKind, LocalFile, NetRef, Value};

/// The service under test: Python's `open`, serving the file by reference.
#[derive(Clone)]
struct Files;

#[tether::expose]
impl Files {
    /// Open a file of the server's, as Python's `open(path, mode='r')`.
    #[method]
    async fn open(&self, path: String, mode: Option<String>) -> tether::Result<NetRef> {
        let mode = mode.as_deref().unwrap_or("r");
        Ok(NetRef::new(LocalFile::open_with(path, mode).await?))
    }
}

struct Setup {
    client: Connection,
    server: Connection,
    root: NetRef,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let (client, server) =
            tether::transport::memory::pair(Builder::default(), Builder::default().root(Files))
                .await
                .unwrap();
        let root = client.root().await.unwrap();
        Setup {
            client,
            server,
            root,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `contents` to `name` locally; its path as a string.
    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }

    async fn open(&self, path: impl AsRef<Path>, mode: &str) -> tether::Result<NetRef> {
        let path = path.as_ref().to_string_lossy().into_owned();
        let file = self.root.call_method("open", (path, mode)).await?;
        Ok(NetRef::try_from(file).unwrap())
    }

    /// Make sure every release the client queued has reached the server.
    async fn settle(&self) {
        self.client.ping().await.unwrap();
        self.server.ping().await.unwrap();
    }
}

async fn call(file: &NetRef, method: &str, args: impl tether::IntoArgs) -> Value {
    file.call_method(method, args)
        .await
        .unwrap_or_else(|err| panic!("{method}: {err:#}"))
}

fn bytes(b: &[u8]) -> Value {
    Value::from(b)
}

/// Whether this process has `path` open (Linux: the links in /proc/self/fd).
/// Other tests of this binary run in parallel, so look for the path rather
/// than count descriptors.
#[cfg(target_os = "linux")]
fn is_open(path: &Path) -> bool {
    let path = path.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .any(|target| target == path)
}

/// Poll (bounded) until `cond` holds; panics after 10 s so nothing hangs.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn text_files_write_then_read_by_line_read_and_readlines() {
    let s = Setup::new().await;
    let path = s.path("poem.txt");
    let file = s.open(&path, "w").await.unwrap();
    assert_eq!(
        call(&file, "write", ("first line\n",)).await,
        Value::from(11)
    );
    assert_eq!(
        call(&file, "write", ("héllo\nlast",)).await,
        Value::from(10)
    );
    call(&file, "close", ()).await;
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "first line\nhéllo\nlast"
    );

    let file = s.open(&path, "r").await.unwrap();
    assert_eq!(
        call(&file, "readline", ()).await,
        Value::from("first line\n")
    );
    assert_eq!(call(&file, "read", (2,)).await, Value::from("hé"));
    assert_eq!(
        call(&file, "readlines", ()).await,
        Value::from(vec![Value::from("llo\n"), Value::from("last")])
    );
    assert_eq!(call(&file, "readline", ()).await, Value::from(""));
    assert_eq!(call(&file, "read", ()).await, Value::from(""));

    // Iteration by line, batched: 10 000 lines in a handful of requests.
    let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
    let path = s.file("long.txt", &text);
    let file = s.open(&path, "r").await.unwrap();
    let lines = file.iter().collect_all().await.unwrap();
    assert_eq!(lines.len(), 10_000);
    assert_eq!(lines[9_999], Value::from("line 9999\n"));
    let again = s.open(&path, "r").await.unwrap();
    assert_eq!(again.next_batch(100).await.unwrap().len(), 100);
    assert_eq!(
        call(&again, "readline", ()).await,
        Value::from("line 100\n")
    );
}

#[tokio::test]
async fn binary_files_read_and_write_bytes() {
    let s = Setup::new().await;
    let path = s.path("data.bin");
    let file = s.open(&path, "wb").await.unwrap();
    assert_eq!(
        call(&file, "write", (bytes(b"\x00\xff\nrest"),)).await,
        Value::from(7)
    );
    call(&file, "close", ()).await;
    let file = s.open(&path, "rb").await.unwrap();
    assert_eq!(call(&file, "readline", ()).await, bytes(b"\x00\xff\n"));
    assert_eq!(call(&file, "read", (2,)).await, bytes(b"re"));
    assert_eq!(call(&file, "read", ()).await, bytes(b"st"));
    assert_eq!(call(&file, "read", ()).await, bytes(b""));
    assert_eq!(
        file.getattr("mode").await.unwrap(),
        Value::from("rb"),
        "binary mode shows as Python's"
    );
}

/// Calls sent on one file without waiting for each reply still run in the
/// order they were sent: each is first polled by the connection's reader in
/// arrival order, so they queue for the file's lock in that order. On a
/// multi-threaded runtime, where tasks spawned together run in no fixed
/// order, as a server runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_calls_on_one_file_run_in_the_order_sent() {
    let s = Setup::new().await;
    let path = s.path("pipelined.bin");
    let file = s.open(&path, "w+b").await.unwrap();
    let chunks: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 1 + i as usize]).collect();
    let writes = chunks
        .iter()
        .map(|c| file.call_method("write", (Value::from(c.clone()),)));
    for (i, written) in futures_util::future::join_all(writes)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            written.unwrap(),
            Value::from(chunks[i].len() as i64),
            "write {i}"
        );
    }
    call(&file, "seek", (0,)).await;
    let reads = chunks
        .iter()
        .map(|c| file.call_method("read", (c.len() as i64,)));
    let read: Vec<Value> = futures_util::future::join_all(reads)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let expected: Vec<Value> = chunks.iter().map(|c| bytes(c)).collect();
    assert_eq!(read, expected, "reads answered out of order");
    call(&file, "close", ()).await;
    let on_disk: Vec<u8> = chunks.concat();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        on_disk,
        "writes ran out of order"
    );
}

/// Sequential binary reads of one size (16 KiB and more) are read ahead on
/// the server; what every operation sees is the same as without: reads,
/// `tell`, a write after reads (lands where reading stopped), the end.
#[tokio::test]
async fn streaming_reads_are_read_ahead_without_changing_what_is_seen() {
    const N: usize = 20_000;
    let s = Setup::new().await;
    let data: Vec<u8> = (0..(10 * N + 1234) as u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let path = s.file("stream.bin", &data);
    let file = s.open(&path, "r+b").await.unwrap();
    let chunk = |i: usize| bytes(&data[i * N..(i + 1) * N]);
    for i in 0..4 {
        assert_eq!(call(&file, "read", (N as i64,)).await, chunk(i), "read {i}");
    }
    assert_eq!(call(&file, "tell", ()).await, Value::from((4 * N) as i64));
    for i in 4..7 {
        assert_eq!(call(&file, "read", (N as i64,)).await, chunk(i), "read {i}");
    }
    // A different size breaks the streak and is served as asked.
    assert_eq!(
        call(&file, "read", (3,)).await,
        bytes(&data[7 * N..7 * N + 3])
    );
    assert_eq!(call(&file, "write", (bytes(b"XYZ"),)).await, Value::from(3));
    assert_eq!(
        call(&file, "tell", ()).await,
        Value::from((7 * N + 6) as i64)
    );
    let mut rest = Vec::new();
    loop {
        match call(&file, "read", (N as i64,)).await {
            Value::Bytes(b) if b.is_empty() => break,
            Value::Bytes(b) => rest.extend_from_slice(&b),
            other => panic!("read gave {other:?}"),
        }
    }
    assert_eq!(rest, data[7 * N + 6..], "the reads after the write");
    call(&file, "close", ()).await;
    let mut expected = data.clone();
    expected[7 * N + 3..7 * N + 6].copy_from_slice(b"XYZ");
    assert_eq!(std::fs::read(&path).unwrap(), expected);
}

#[tokio::test]
async fn every_mode_opens_as_in_python() {
    let s = Setup::new().await;
    let path = s.file("modes.txt", "abc\n");

    // r+: read and write, from the start, no truncation.
    let file = s.open(&path, "r+").await.unwrap();
    assert_eq!(call(&file, "read", (1,)).await, Value::from("a"));
    call(&file, "write", ("X",)).await;
    call(&file, "seek", (0,)).await;
    assert_eq!(call(&file, "read", ()).await, Value::from("aXc\n"));
    call(&file, "close", ()).await;

    // a: writes go to the end; the position starts there.
    let file = s.open(&path, "a").await.unwrap();
    assert_eq!(call(&file, "tell", ()).await, Value::from(4));
    call(&file, "write", ("more\n",)).await;
    call(&file, "close", ()).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "aXc\nmore\n");

    // a+: reads anywhere, writes still at the end.
    let file = s.open(&path, "a+").await.unwrap();
    call(&file, "seek", (0,)).await;
    assert_eq!(call(&file, "readline", ()).await, Value::from("aXc\n"));
    call(&file, "write", ("end\n",)).await;
    call(&file, "seek", (0,)).await;
    assert_eq!(
        call(&file, "read", ()).await,
        Value::from("aXc\nmore\nend\n")
    );
    call(&file, "close", ()).await;

    // w+: truncates, then reads back what it wrote.
    let file = s.open(&path, "w+").await.unwrap();
    assert_eq!(call(&file, "read", ()).await, Value::from(""));
    call(&file, "write", ("new\n",)).await;
    call(&file, "seek", (0,)).await;
    assert_eq!(call(&file, "read", ()).await, Value::from("new\n"));
    call(&file, "close", ()).await;

    // x: creates a new file, refuses an existing one.
    let fresh = s.path("fresh.bin");
    let file = s.open(&fresh, "xb").await.unwrap();
    call(&file, "write", (bytes(b"x"),)).await;
    call(&file, "close", ()).await;
    assert_eq!(std::fs::read(&fresh).unwrap(), b"x");
    let err = s.open(&fresh, "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote, "{err:#}");
    assert_eq!(err.type_name(), Some("FileExistsError"), "{err:#}");
    assert!(err.message().contains("fresh.bin"), "{err}");

    // w, a and x+ create missing files; r and r+ do not.
    for (mode, creates) in [
        ("w", true),
        ("ab", true),
        ("x+", true),
        ("r", false),
        ("r+b", false),
    ] {
        let path = s.path(&format!("created-{mode}"));
        let result = s.open(&path, mode).await;
        assert_eq!(result.is_ok(), creates, "{mode}");
        assert_eq!(path.exists(), creates, "{mode}");
    }

    // The mode attribute is spelled canonically.
    for (given, shown) in [("r+b", "rb+"), ("w+", "w+"), ("at", "a")] {
        let file = s.open(&path, given).await.unwrap();
        assert_eq!(file.getattr("mode").await.unwrap(), Value::from(shown));
    }
}

#[tokio::test]
async fn seek_tell_flush_truncate_and_metadata() {
    let s = Setup::new().await;
    let path = s.file("seek.bin", b"0123456789");
    let file = s.open(&path, "r+b").await.unwrap();

    assert_eq!(call(&file, "seek", (3,)).await, Value::from(3));
    assert_eq!(call(&file, "read", (2,)).await, bytes(b"34"));
    assert_eq!(call(&file, "tell", ()).await, Value::from(5));
    assert_eq!(call(&file, "seek", (-2, 1)).await, Value::from(3));
    assert_eq!(
        call(&file, "seek", Args::new().arg(-1).named("whence", 2)).await,
        Value::from(9)
    );
    assert_eq!(call(&file, "read", ()).await, bytes(b"9"));

    // Writes are buffered until flush.
    call(&file, "seek", (0,)).await;
    call(&file, "write", (bytes(b"ab"),)).await;
    assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
    assert_eq!(call(&file, "flush", ()).await, Value::None);
    assert_eq!(std::fs::read(&path).unwrap(), b"ab23456789");

    // truncate: to the position by default, the position stays.
    assert_eq!(call(&file, "truncate", ()).await, Value::from(2));
    assert_eq!(std::fs::read(&path).unwrap(), b"ab");
    assert_eq!(call(&file, "truncate", (5,)).await, Value::from(5));
    assert_eq!(call(&file, "tell", ()).await, Value::from(2));
    assert_eq!(std::fs::read(&path).unwrap(), b"ab\0\0\0");

    // metadata sees buffered writes (it flushes first).
    call(&file, "seek", (0, 2)).await;
    call(&file, "write", (bytes(b"xyz"),)).await;
    let meta = call(&file, "metadata", ()).await;
    assert_eq!(meta.get("size"), Some(&Value::from(8)));
    assert_eq!(meta.get("is_file"), Some(&Value::from(true)));
    assert_eq!(meta.get("is_dir"), Some(&Value::from(false)));
    assert_eq!(meta.get("readonly"), Some(&Value::from(false)));
    let modified: f64 = meta.get("modified").unwrap().clone().try_into().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - modified).abs() < 600.0,
        "modified {modified}, now {now}"
    );
}

#[tokio::test]
async fn members_are_listed_with_signatures_and_attributes_answer() {
    let s = Setup::new().await;
    let path = s.file("m.txt", "x");
    let file = s.open(&path, "r").await.unwrap();
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
    let members = file.inspect().await.unwrap();
    let write = members.iter().find(|m| m.name == "write").unwrap();
    assert_eq!(write.signature, "(data: str) -> int");
    let binary = s.open(&path, "rb").await.unwrap();
    let members = binary.inspect().await.unwrap();
    let write = members.iter().find(|m| m.name == "write").unwrap();
    assert_eq!(write.signature, "(data: bytes) -> int");

    assert_eq!(
        file.getattr("name").await.unwrap(),
        Value::from(path.as_str())
    );
    assert_eq!(file.getattr("closed").await.unwrap(), Value::from(false));
    assert!(file.repr().await.unwrap().starts_with("<LocalFile name="));
}

#[tokio::test]
async fn a_missing_file_is_file_not_found_naming_the_path() {
    let s = Setup::new().await;
    for mode in ["r", "rb", "r+"] {
        let err = s.open(s.path("missing.txt"), mode).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Remote, "{err:#}");
        assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err:#}");
        assert!(err.message().starts_with("[Errno 2] "), "{err}");
        assert!(err.message().contains("missing.txt"), "{err}");
    }
    // A missing directory on the way, when writing.
    let err = s
        .open(s.path("no-such-dir/new.txt"), "w")
        .await
        .unwrap_err();
    assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err:#}");
}

#[tokio::test]
async fn directories_are_not_files() {
    let s = Setup::new().await;
    for mode in ["r", "w", "a+"] {
        let err = s.open(s.dir.path(), mode).await.unwrap_err();
        assert_eq!(
            err.type_name(),
            Some("IsADirectoryError"),
            "{mode}: {err:#}"
        );
    }
    let file = s.file("plain.txt", "x");
    let err = s.open(format!("{file}/below"), "r").await.unwrap_err();
    assert_eq!(err.type_name(), Some("NotADirectoryError"), "{err:#}");
}

#[cfg(unix)]
#[tokio::test]
async fn permission_denied_is_a_permission_error() {
    use std::os::unix::fs::PermissionsExt;

    let s = Setup::new().await;
    let path = s.file("secret.txt", "top secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&path).is_ok() {
        // Root (or CAP_DAC_OVERRIDE) reads it anyway, as in CI: the checks
        // below run again in a copy of this test as `nobody`.
        assert!(
            std::env::var_os(AS_NOBODY).is_none(),
            "permission checks are bypassed even as nobody"
        );
        return run_as_nobody("permission_denied_is_a_permission_error").await;
    }
    for mode in ["r", "rb", "w", "a", "r+"] {
        let err = s.open(&path, mode).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Remote, "{err:#}");
        assert_eq!(err.type_name(), Some("PermissionError"), "{mode}: {err:#}");
        assert!(err.message().starts_with("[Errno 13] "), "{err}");
        assert!(err.message().contains("secret.txt"), "{err}");
    }
    // The file was left alone (no truncation by "w").
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "top secret");
}

/// Set in the environment of a test run again by [`run_as_nobody`].
#[cfg(unix)]
const AS_NOBODY: &str = "TETHER_TEST_AS_NOBODY";

/// Run test `name` again, alone, as the user `nobody` (uid and gid 65534),
/// from a copy of this test binary in a temporary directory `nobody` owns
/// (its temporary files go there too); it must run and pass.
#[cfg(unix)]
async fn run_as_nobody(name: &str) {
    use std::os::unix::fs::PermissionsExt;
    const NOBODY: u32 = 65534;

    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    // A copy, so the checkout's own directories need not be open to nobody.
    let exe = dir.path().join("files-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = tokio::process::Command::new(&exe);
    command
        .args(["--exact", name, "--test-threads=1"])
        .env(AS_NOBODY, "1")
        .env("TMPDIR", dir.path())
        .current_dir(dir.path())
        .uid(NOBODY)
        .gid(NOBODY)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the test as nobody did not finish within 60 s")
        .expect("run the test as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} as nobody: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_operation_after_close_is_a_value_error() {
    let s = Setup::new().await;
    let path = s.file("closed.txt", "a\nb\n");
    let file = s.open(&path, "r+").await.unwrap();
    call(&file, "close", ()).await;
    assert_eq!(file.getattr("closed").await.unwrap(), Value::from(true));
    let attempts: Vec<(&str, Args)> = vec![
        ("read", Args::new()),
        ("readline", Args::new()),
        ("readlines", Args::new()),
        ("write", Args::new().arg("x")),
        ("seek", Args::new().arg(0)),
        ("tell", Args::new()),
        ("flush", Args::new()),
        ("truncate", Args::new()),
        ("metadata", Args::new()),
    ];
    for (method, args) in attempts {
        let err = file.call_method(method, args).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Remote, "{method}: {err:#}");
        assert_eq!(
            err.to_string(),
            "ValueError: I/O operation on closed file.",
            "{method}"
        );
    }
    let err = file.next().await.unwrap_err();
    assert_eq!(err.type_name(), Some("ValueError"));
    // Closing again, either way, is fine.
    call(&file, "close", ()).await;
    file.close().await.unwrap();
    assert!(file.repr().await.unwrap().starts_with("<closed LocalFile"));
}

#[tokio::test]
async fn writing_a_read_only_file_or_reading_a_write_only_one_is_unsupported() {
    let s = Setup::new().await;
    let path = s.file("ro.txt", "data\n");
    let file = s.open(&path, "r").await.unwrap();
    for (method, args) in [("write", Args::new().arg("x")), ("truncate", Args::new())] {
        let err = file.call_method(method, args).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Remote, "{err:#}");
        assert_eq!(err.type_name(), Some("UnsupportedOperation"), "{err:#}");
        assert!(err.message().starts_with("not writable"), "{err}");
        assert!(err.message().contains("ro.txt"), "{err}");
    }
    // Reading still works and the file is untouched.
    assert_eq!(call(&file, "read", ()).await, Value::from("data\n"));

    let file = s.open(s.path("wo.txt"), "a").await.unwrap();
    for (method, args) in [
        ("read", Args::new()),
        ("readline", Args::new()),
        ("readlines", Args::new()),
    ] {
        let err = file.call_method(method, args).await.unwrap_err();
        assert_eq!(err.type_name(), Some("UnsupportedOperation"), "{err:#}");
        assert!(err.message().starts_with("not readable"), "{err}");
        assert!(err.message().contains("wo.txt"), "{err}");
    }
    let err = file.iter().collect_all().await.unwrap_err();
    assert_eq!(err.type_name(), Some("UnsupportedOperation"), "{err:#}");
}

#[tokio::test]
async fn bad_modes_and_argument_types_are_rejected() {
    let s = Setup::new().await;
    let path = s.file("args.txt", "x");
    for mode in ["rw", "", "z", "r++", "rbt"] {
        let err = s.open(&path, mode).await.unwrap_err();
        assert_eq!(err.type_name(), Some("ValueError"), "{mode:?}: {err:#}");
    }
    let text = s.open(&path, "r+").await.unwrap();
    let err = text.call_method("write", (bytes(b"x"),)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err:#}");
    let binary = s.open(&path, "r+b").await.unwrap();
    let err = binary.call_method("write", ("x",)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err:#}");
    let err = binary.call_method("seek", ("0",)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err:#}");
    let err = binary.call_method("seek", (-1,)).await.unwrap_err();
    assert_eq!(err.to_string(), "ValueError: negative seek position -1");
}

#[tokio::test]
async fn explicit_close_releases_the_os_file_at_once() {
    let s = Setup::new().await;
    let path = s.path("explicit.txt");
    let file = s.open(&path, "w").await.unwrap();
    call(&file, "write", ("buffered",)).await;
    #[cfg(target_os = "linux")]
    assert!(is_open(&path));
    call(&file, "close", ()).await;
    #[cfg(target_os = "linux")]
    assert!(!is_open(&path));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "buffered");
    // Our reference is still valid; only the file is closed.
    assert_eq!(file.getattr("closed").await.unwrap(), Value::from(true));
}

#[tokio::test]
async fn dropping_the_last_reference_flushes_and_closes_the_file() {
    let s = Setup::new().await;
    let path = s.path("dropped.txt");
    let file = s.open(&path, "w").await.unwrap();
    call(&file, "write", ("still buffered",)).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    // The client holds the root and the file.
    assert_eq!(s.server.stats().exported, 2, "{:?}", s.server.stats());
    let copy = file.clone();
    drop(file);
    s.settle().await;
    // A clone still holds it.
    #[cfg(target_os = "linux")]
    assert!(is_open(&path));
    assert_eq!(s.server.stats().exported, 2, "{:?}", s.server.stats());

    drop(copy);
    s.settle().await;
    eventually("the server released the file", || {
        s.server.stats().exported == 1
    })
    .await;
    #[cfg(target_os = "linux")]
    eventually("the file descriptor is closed", || !is_open(&path)).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "still buffered");

    // The same for a local reference, synchronously.
    let local = NetRef::new(
        LocalFile::open_with(s.path("local.txt"), "w")
            .await
            .unwrap(),
    );
    call(&local, "write", ("local",)).await;
    drop(local);
    #[cfg(target_os = "linux")]
    assert!(!is_open(&s.path("local.txt")));
    assert_eq!(
        std::fs::read_to_string(s.path("local.txt")).unwrap(),
        "local"
    );
}

#[tokio::test]
async fn the_end_of_the_connection_flushes_and_closes_the_file() {
    let s = Setup::new().await;
    let path = s.path("disconnect.bin");
    let file = s.open(&path, "wb").await.unwrap();
    call(&file, "write", (bytes(b"written before the end"),)).await;
    let reader = s.open(s.file("other.txt", "x"), "r").await.unwrap();
    #[cfg(target_os = "linux")]
    assert!(is_open(&path));
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    // The root and the two files.
    assert_eq!(s.server.stats().exported, 3);

    // The client goes away while still holding both references.
    s.client.close().await;
    tokio::time::timeout(Duration::from_secs(10), s.server.closed())
        .await
        .expect("the server side saw the end");
    eventually("the server dropped what the client held", || {
        s.server.stats().exported == 0
    })
    .await;
    #[cfg(target_os = "linux")]
    eventually("the file descriptors are closed", || {
        !is_open(&path) && !is_open(&s.path("other.txt"))
    })
    .await;
    eventually("the buffered write reached the disk", || {
        std::fs::read(&path).unwrap() == b"written before the end"
    })
    .await;

    // The client's references now fail cleanly.
    let err = file.call_method("tell", ()).await.unwrap_err();
    assert!(err.is_closed(), "{err:#}");
    drop(reader);
}
