//! Handles other than files: a remote child process (`tether::Process`)
//! with its stdin, stdout and stderr as remote streams, and the generic
//! stream wrapper (`tether::Stream`) over any tokio reader or writer, used
//! directly and through `RemoteFile`. Every test is bounded in time and
//! stays in memory or on loopback.
#![cfg(unix)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::{Args, Builder, Connection, ErrorKind, NetRef, Process, RemoteFile, Stream, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// The service under test: spawns processes, and hands out a stream the
/// test put in its slot.
#[derive(Clone, Default)]
struct Handles {
    slot: Arc<Mutex<Option<NetRef>>>,
}

#[tether::expose]
impl Handles {
    /// Run a program with its stdio piped.
    #[method]
    fn spawn(&self, program: String, args: Vec<String>) -> tether::Result<NetRef> {
        Ok(NetRef::new(Process::spawn(program, args)?))
    }

    /// The stream the test prepared.
    #[method]
    fn stream(&self) -> Option<NetRef> {
        self.slot.lock().unwrap().take()
    }
}

struct Setup {
    client: Connection,
    server: Connection,
    root: NetRef,
    service: Handles,
}

impl Setup {
    async fn new() -> Setup {
        let service = Handles::default();
        let (client, server) = tether::transport::memory::pair(
            Builder::default(),
            Builder::default().root(service.clone()),
        )
        .await
        .unwrap();
        let root = client.root().await.unwrap();
        Setup {
            client,
            server,
            root,
            service,
        }
    }

    async fn spawn(&self, program: &str, args: &[&str]) -> NetRef {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        let child = self
            .root
            .call_method("spawn", (program, Value::List(args)))
            .await
            .unwrap_or_else(|e| panic!("spawn {program}: {e:#}"));
        NetRef::try_from(child).unwrap()
    }

    /// Serve `stream` to the client; the client's netref to it.
    async fn serve_stream(&self, stream: Stream) -> NetRef {
        *self.service.slot.lock().unwrap() = Some(NetRef::new(stream));
        NetRef::try_from(self.root.call_method("stream", ()).await.unwrap()).unwrap()
    }

    /// Make sure every release the client queued has reached the server.
    async fn settle(&self) {
        self.client.ping().await.unwrap();
        self.server.ping().await.unwrap();
    }
}

async fn call(obj: &NetRef, method: &str, args: impl tether::IntoArgs) -> Value {
    obj.call_method(method, args)
        .await
        .unwrap_or_else(|err| panic!("{method}: {err:#}"))
}

async fn attr(obj: &NetRef, name: &str) -> Value {
    obj.getattr(name)
        .await
        .unwrap_or_else(|err| panic!("{name}: {err:#}"))
}

async fn stream_of(process: &NetRef, name: &str) -> NetRef {
    NetRef::try_from(attr(process, name).await).unwrap()
}

fn bytes(b: &[u8]) -> Value {
    Value::from(b)
}

async fn pid_of(process: &NetRef) -> u32 {
    u32::try_from(attr(process, "pid").await.as_int().unwrap()).unwrap()
}

/// Whether process `pid` is alive (a zombie counts as dead).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // "pid (comm) S ...": the state follows the last ')'.
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    } else {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Poll (bounded) until `cond` holds; panics after 10 s so nothing hangs.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Everything a readable stream netref has left, by `read()`.
async fn read_all(stream: &NetRef) -> Vec<u8> {
    Vec::<u8>::try_from(call(stream, "read", ()).await).unwrap()
}

#[tokio::test]
async fn output_error_output_and_exit_code() {
    let s = Setup::new().await;
    let child = s
        .spawn("sh", &["-c", "echo out; echo err >&2; exit 3"])
        .await;
    let stdout = stream_of(&child, "stdout").await;
    let stderr = stream_of(&child, "stderr").await;
    assert_eq!(read_all(&stdout).await, b"out\n");
    assert_eq!(read_all(&stderr).await, b"err\n");
    assert_eq!(call(&child, "wait", ()).await, Value::from(3));
    assert_eq!(attr(&child, "returncode").await, Value::from(3));
    assert_eq!(call(&child, "poll", ()).await, Value::from(3));
    assert_eq!(attr(&child, "signal").await, Value::None);
    assert_eq!(attr(&child, "running").await, Value::from(false));
    assert!(pid_of(&child).await > 0);
    assert_eq!(
        attr(&child, "args").await,
        Value::from(vec![
            Value::from("sh"),
            Value::from("-c"),
            Value::from("echo out; echo err >&2; exit 3")
        ])
    );
    // The same stream each time: one netref.
    assert_eq!(stream_of(&child, "stdout").await, stdout);
    assert!(child.repr().await.unwrap().contains("returncode=3"));
    // At the end, reads return b''.
    assert_eq!(call(&stdout, "read", (10,)).await, bytes(b""));
    assert_eq!(call(&stdout, "readline", ()).await, bytes(b""));
}

#[tokio::test]
async fn write_to_cat_and_read_it_back() {
    let s = Setup::new().await;
    let cat = s.spawn("cat", &[]).await;
    let stdin = stream_of(&cat, "stdin").await;
    let stdout = stream_of(&cat, "stdout").await;
    assert_eq!(attr(&cat, "returncode").await, Value::None);
    assert_eq!(attr(&cat, "running").await, Value::from(true));

    // Interactive: a read returns what is there, without waiting for n bytes.
    assert_eq!(
        call(&stdin, "write", (bytes(b"hello\n"),)).await,
        Value::from(6)
    );
    assert_eq!(call(&stdout, "read", (1000,)).await, bytes(b"hello\n"));
    // str is written as UTF-8.
    assert_eq!(call(&stdin, "write", ("héllo\n",)).await, Value::from(7));
    assert_eq!(
        call(&stdout, "readline", ()).await,
        bytes("héllo\n".as_bytes())
    );

    // Lines by iteration: everything written before stdin is closed.
    call(&stdin, "write", (bytes(b"one\ntwo\nthree"),)).await;
    call(&stdin, "flush", ()).await;
    call(&stdin, "close", ()).await;
    assert_eq!(attr(&stdin, "closed").await, Value::from(true));
    let lines = stdout.iter().collect_all().await.unwrap();
    assert_eq!(
        lines,
        vec![bytes(b"one\n"), bytes(b"two\n"), bytes(b"three")]
    );
    assert_eq!(call(&cat, "wait", ()).await, Value::from(0));

    // Writing to a closed stdin is Python's closed-file error.
    let err = stdin
        .call_method("write", (bytes(b"x"),))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "ValueError: I/O operation on closed file.");
}

#[tokio::test]
async fn stdio_streams_say_what_they_cannot_do() {
    let s = Setup::new().await;
    let cat = s.spawn("cat", &[]).await;
    let stdin = stream_of(&cat, "stdin").await;
    let stdout = stream_of(&cat, "stdout").await;
    assert_eq!(call(&stdin, "readable", ()).await, Value::from(false));
    assert_eq!(call(&stdin, "writable", ()).await, Value::from(true));
    assert_eq!(call(&stdout, "readable", ()).await, Value::from(true));
    assert_eq!(call(&stdout, "seekable", ()).await, Value::from(false));
    let err = stdin.call_method("read", ()).await.unwrap_err();
    assert_eq!(err.type_name(), Some("UnsupportedOperation"), "{err}");
    assert!(err.message().contains("stdin of cat (pid "), "{err}");
    let err = stdout
        .call_method("write", (bytes(b"x"),))
        .await
        .unwrap_err();
    assert_eq!(err.type_name(), Some("UnsupportedOperation"), "{err}");
    for (method, args) in [("seek", Args::new().arg(0)), ("tell", Args::new())] {
        let err = stdout.call_method(method, args).await.unwrap_err();
        assert_eq!(err.type_name(), Some("UnsupportedOperation"), "{err}");
    }
    let err = stdin.call_method("write", (5,)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
    let name = String::try_from(attr(&stdout, "name").await).unwrap();
    assert!(name.starts_with("stdout of cat (pid "), "{name}");
    assert_eq!(
        stdout.dir().await.unwrap(),
        [
            "read",
            "readline",
            "readlines",
            "write",
            "flush",
            "close",
            "seek",
            "tell",
            "readable",
            "writable",
            "seekable",
            "name",
            "closed"
        ]
    );
    call(&cat, "kill", ()).await;
}

#[tokio::test]
async fn writing_to_a_process_that_ended_is_a_broken_pipe() {
    let s = Setup::new().await;
    let child = s.spawn("true", &[]).await;
    let stdin = stream_of(&child, "stdin").await;
    assert_eq!(call(&child, "wait", ()).await, Value::from(0));
    let err = stdin
        .call_method("write", (bytes(b"nobody reads this\n"),))
        .await
        .unwrap_err();
    assert_eq!(err.type_name(), Some("BrokenPipeError"), "{err}");
}

#[tokio::test]
async fn copy_from_remote_stdout_and_into_remote_stdin() {
    let s = Setup::new().await;
    // 1 MiB that is not periodic in a 64 KiB window.
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cat = s.spawn("cat", &[]).await;
    let mut stdin = RemoteFile::new(stream_of(&cat, "stdin").await);
    let mut stdout = RemoteFile::new(stream_of(&cat, "stdout").await);

    // Write and read at once: cat stops reading when its output pipe is full.
    let to_send = data.clone();
    let writer = tokio::spawn(async move {
        tokio::io::copy(&mut to_send.as_slice(), &mut stdin)
            .await
            .unwrap();
        stdin.shutdown().await.unwrap(); // closes cat's stdin
    });
    let mut received = Vec::new();
    let copied = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::copy(&mut stdout, &mut received),
    )
    .await
    .expect("copy finished")
    .unwrap();
    writer.await.unwrap();
    assert_eq!(copied, data.len() as u64);
    assert!(received == data, "the bytes differ");
    assert_eq!(call(&cat, "wait", ()).await, Value::from(0));

    // A stream cannot seek: the io error says so.
    let err = stdout.seek(std::io::SeekFrom::Start(0)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}

#[tokio::test]
async fn kill_then_wait_reports_the_signal() {
    let s = Setup::new().await;
    let sleeper = s.spawn("sleep", &["60"]).await;
    let err = sleeper
        .call_method("wait", Args::new().named("timeout", 0.05))
        .await
        .unwrap_err();
    assert_eq!(err.type_name(), Some("TimeoutExpired"), "{err}");
    assert!(err.message().contains("sleep"), "{err}");
    assert_eq!(call(&sleeper, "poll", ()).await, Value::None);

    call(&sleeper, "kill", ()).await;
    assert_eq!(call(&sleeper, "wait", ()).await, Value::None);
    assert_eq!(attr(&sleeper, "signal").await, Value::from(9));
    assert_eq!(attr(&sleeper, "returncode").await, Value::None);
    assert_eq!(attr(&sleeper, "running").await, Value::from(false));
    assert!(sleeper.repr().await.unwrap().contains("signal=9"));
    // Killing again is harmless.
    call(&sleeper, "kill", ()).await;
    // Its stdout reaches its end.
    assert_eq!(read_all(&stream_of(&sleeper, "stdout").await).await, b"");
}

#[tokio::test]
async fn a_process_is_killed_when_its_last_netref_drops() {
    let s = Setup::new().await;
    let sleeper = s.spawn("sleep", &["60"]).await;
    let pid = pid_of(&sleeper).await;
    assert!(alive(pid));
    // Holding a stream keeps the stream, not the process.
    let stdout = stream_of(&sleeper, "stdout").await;
    drop(sleeper);
    s.settle().await;
    eventually("the dropped process is killed", || !alive(pid)).await;
    assert_eq!(read_all(&stdout).await, b"");
}

#[tokio::test]
async fn processes_are_killed_when_the_connection_ends() {
    let server = tether::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let serving = tokio::spawn(server.serve(Handles::default()));
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let (mut pids, mut held) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let child = NetRef::try_from(
            root.call_method("spawn", ("sleep", vec![Value::from("60")]))
                .await
                .unwrap(),
        )
        .unwrap();
        pids.push(pid_of(&child).await);
        held.push(child); // never released: only the disconnect ends them
    }
    assert!(pids.iter().all(|&pid| alive(pid)));
    conn.close().await;
    eventually("both processes are killed", || {
        pids.iter().all(|&pid| !alive(pid))
    })
    .await;
    drop(held);
    serving.abort();
}

#[tokio::test]
async fn spawning_a_missing_program_is_file_not_found() {
    let s = Setup::new().await;
    let err = s
        .root
        .call_method("spawn", ("tether-no-such-program", Value::List(vec![])))
        .await
        .unwrap_err();
    assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err}");
    assert!(err.message().contains("'tether-no-such-program'"), "{err}");
}

#[tokio::test]
async fn process_from_a_command_with_env_cwd_and_no_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new("sh");
    command
        .args(["-c", "echo \"$GREETING from $(pwd)\""])
        .env("GREETING", "hi")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let child = NetRef::new(Process::from_command(command).unwrap());
    assert_eq!(attr(&child, "stdin").await, Value::None);
    assert_eq!(attr(&child, "stderr").await, Value::None);
    let out = read_all(&stream_of(&child, "stdout").await).await;
    let expected = format!("hi from {}\n", dir.path().canonicalize().unwrap().display());
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(call(&child, "wait", ()).await, Value::from(0));
}

#[tokio::test]
async fn stream_over_a_duplex_pipe() {
    let s = Setup::new().await;
    let (mine, mut theirs) = tokio::io::duplex(1024);
    let stream = s
        .serve_stream(Stream::duplex(mine).with_name("duplex"))
        .await;
    assert_eq!(attr(&stream, "name").await, Value::from("duplex"));
    assert!(stream.repr().await.unwrap().contains("mode='rb+'"));

    // Peer reads what the local end writes: by line, by size, by batch.
    theirs
        .write_all(b"first\nsecond\nthird\nfourth\n")
        .await
        .unwrap();
    assert_eq!(call(&stream, "readline", ()).await, bytes(b"first\n"));
    assert_eq!(
        call(&stream, "readline", Args::new().named("size", 3)).await,
        bytes(b"sec")
    );
    assert_eq!(call(&stream, "read", (4,)).await, bytes(b"ond\n"));
    // Line by line as they come, or a batch of lines per round trip.
    let mut lines = stream.iter().batch_size(1);
    assert_eq!(lines.next().await.unwrap().unwrap(), bytes(b"third\n"));
    drop(lines);
    theirs.write_all(b"fifth\nsixth\n").await.unwrap();
    let batch = stream.next_batch(3).await.unwrap();
    assert_eq!(
        batch,
        vec![bytes(b"fourth\n"), bytes(b"fifth\n"), bytes(b"sixth\n")]
    );

    // The local end reads what the peer writes.
    assert_eq!(
        call(&stream, "write", (bytes(b"pong"),)).await,
        Value::from(4)
    );
    let mut got = [0u8; 4];
    theirs.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"pong");

    // A read waiting for data does not hold up a write.
    let pending = {
        let stream = stream.clone();
        tokio::spawn(async move { stream.call_method("readline", ()).await })
    };
    eventually("the read is waiting on the server", || {
        s.server.stats().serving == 1
    })
    .await;
    call(&stream, "write", (bytes(b"while reading"),)).await;
    assert!(!pending.is_finished(), "the read did not wait for data");
    let mut got = [0u8; 13];
    theirs.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"while reading");
    theirs.write_all(b"late line\n").await.unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), bytes(b"late line\n"));

    // Closing fails a read in progress and every later operation.
    let pending = {
        let stream = stream.clone();
        tokio::spawn(async move { stream.call_method("read", (10,)).await })
    };
    eventually("the read is waiting on the server", || {
        s.server.stats().serving == 1
    })
    .await;
    stream.close().await.unwrap();
    let err = pending.await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "ValueError: I/O operation on closed file.");
    let err = stream.call_method("readline", ()).await.unwrap_err();
    assert_eq!(err.to_string(), "ValueError: I/O operation on closed file.");
    call(&stream, "close", ()).await; // twice is fine
    assert_eq!(attr(&stream, "closed").await, Value::from(true));
    // The local end sees the end of the stream.
    let mut rest = Vec::new();
    theirs.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn remote_file_over_a_stream_copies_both_ways() {
    let s = Setup::new().await;
    let (mine, theirs) = tokio::io::duplex(4096);
    let stream = s.serve_stream(Stream::duplex(mine)).await;
    let (mut their_read, mut their_write) = tokio::io::split(theirs);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();

    // Local end -> peer, through a RemoteFile reader.
    let to_send = data.clone();
    let producer = tokio::spawn(async move {
        their_write.write_all(&to_send).await.unwrap();
        their_write.shutdown().await.unwrap();
    });
    let mut received = Vec::new();
    tokio::io::copy(&mut RemoteFile::new(stream.clone()), &mut received)
        .await
        .unwrap();
    producer.await.unwrap();
    assert!(received == data, "the bytes differ");

    // Peer -> local end, through a second RemoteFile used for writing.
    let consumer = tokio::spawn(async move {
        let mut got = Vec::new();
        their_read.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut writer = RemoteFile::new(stream.clone());
    tokio::io::copy(&mut data.as_slice(), &mut writer)
        .await
        .unwrap();
    writer.shutdown().await.unwrap(); // closes the stream
    let got = tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap();
    assert!(got == data, "the bytes differ");
}

#[tokio::test]
async fn reader_and_writer_streams_and_drop() {
    let (reader_end, mut feed) = tokio::io::duplex(64);
    let reader = NetRef::new(Stream::reader(reader_end));
    feed.write_all(b"a\nb\n").await.unwrap();
    drop(feed);
    assert_eq!(
        call(&reader, "readlines", ()).await,
        Value::from(vec![bytes(b"a\n"), bytes(b"b\n")])
    );
    assert_eq!(call(&reader, "flush", ()).await, Value::None);
    assert!(reader.repr().await.unwrap().contains("mode='rb'"));

    let (writer_end, mut drain) = tokio::io::duplex(64);
    let writer = NetRef::new(Stream::writer(writer_end));
    call(&writer, "write", (bytes(b"xyz"),)).await;
    drop(writer); // the last reference: the writer is dropped
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), drain.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"xyz");
}
