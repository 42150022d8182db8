//! The `tether` binary as scripts use it: `serve` as a child process,
//! `call` and `cp` against it, exit codes, stdout and stderr.
//!
//! Each server is a `tether serve --tcp 127.0.0.1:0` child: the OS picks a
//! free port (no window in which another process could take it) and the
//! test reads the address from the `serving ... on ADDR` line instead of
//! sleeping. [`Served`] kills and reaps the child when it drops, even when
//! the test fails. A server started with [`Served::start_logged`] also
//! hands over its stderr line by line, and a test waits for the log line an
//! event must produce ([`Served::expect_log`]).

mod support;

use std::future::Future as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tether::{NetRef, Value};

use support::rpyc_server::PythonServer;

const TETHER: &str = env!("CARGO_BIN_EXE_tether");
const STARTUP: Duration = Duration::from_secs(30);

/// A `tether serve` child process; killed and reaped on drop.
struct Served {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
    /// Its stderr, line by line, when started with [`Served::start_logged`].
    log: Option<mpsc::Receiver<String>>,
}

/// The lines `from` produces, on a channel fed by a thread of its own.
fn lines_of(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl Served {
    /// `tether serve ARGS...` on a free loopback port.
    fn start(args: &[&str]) -> Served {
        let mut full = vec!["serve", "--tcp", "127.0.0.1:0"];
        full.extend_from_slice(args);
        Served::start_raw(&full)
    }

    /// `tether serve ARGS...` on a free loopback port, with `RUST_LOG` as
    /// given (removed when `None`) and its log lines kept for
    /// [`Served::expect_log`].
    fn start_logged(args: &[&str], rust_log: Option<&str>) -> Served {
        let mut full = vec!["serve", "--tcp", "127.0.0.1:0"];
        full.extend_from_slice(args);
        let mut command = Command::new(TETHER);
        command.args(&full).stderr(Stdio::piped());
        match rust_log {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        Served::spawn(command)
    }

    /// `tether ARGS...`, waiting for its `serving WHAT on ADDR` line. Its
    /// warnings and errors go to the test's stderr; its other log lines
    /// (a line per connection) are left out.
    fn start_raw(args: &[&str]) -> Served {
        let mut command = Command::new(TETHER);
        command
            .args(args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit());
        Served::spawn(command)
    }

    /// Run `command` (its stderr already set), waiting for its `serving
    /// WHAT on ADDR` line.
    fn spawn(mut command: Command) -> Served {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn tether serve");
        let lines = lines_of(child.stdout.take().unwrap());
        let log = child.stderr.take().map(lines_of);
        let mut served = Served {
            child,
            addr: String::new(),
            lines,
            log,
        };
        let first = served.next_line();
        let (_, addr) = first
            .rsplit_once(" on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        assert!(first.starts_with("serving "), "{first:?}");
        served.addr = addr.to_string();
        served
    }

    /// The next line the server prints (at most 30 s away).
    fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(STARTUP) {
            Ok(line) => line,
            Err(e) => {
                let status = self.child.try_wait();
                panic!("no line from the server ({e}); its status: {status:?}")
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next log line containing every one of `needles`, skipping
    /// others; fails if none comes within the (generous) bound or the
    /// server exits first.
    fn expect_log(&mut self, needles: &[&str]) -> String {
        let log = self.log.as_ref().expect("started with start_logged");
        let deadline = Instant::now() + STARTUP;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.recv_timeout(left) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return line,
                Ok(line) => skipped.push(line),
                Err(e) => panic!("no log line with {needles:?} ({e}); other lines: {skipped:#?}"),
            }
        }
    }

    /// Send a signal with kill(1).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Wait (at most 30 s) for the child to exit by itself.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `tether ARGS...` to completion.
fn tether(args: &[&str]) -> Output {
    Command::new(TETHER)
        .args(args)
        .env_remove("TETHER_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run tether")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// `tether call ADDR ARGS...`, which must succeed; its stdout.
fn call_ok(addr: &str, args: &[&str]) -> String {
    let mut full = vec!["call", addr];
    full.extend_from_slice(args);
    let out = tether(&full);
    assert!(
        out.status.success(),
        "tether {full:?} failed: {}",
        stderr(&out)
    );
    assert_eq!(stderr(&out), "", "tether {full:?}");
    stdout(&out)
}

/// `tether call ADDR ARGS...`, which must fail with code 1 and print
/// nothing on stdout; its stderr.
fn call_err(addr: &str, args: &[&str]) -> String {
    let mut full = vec!["call", addr];
    full.extend_from_slice(args);
    let out = tether(&full);
    assert_eq!(out.status.code(), Some(1), "tether {full:?}: {out:?}");
    assert_eq!(stdout(&out), "", "tether {full:?}");
    stderr(&out)
}

/// A loopback port nothing listens on, and the socket that keeps it so:
/// bound but not listening, so a connection there is refused and no other
/// test's listener can take the port meanwhile (one merely closed again
/// could be).
fn closed_port() -> (SocketAddr, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    (socket.local_addr().unwrap(), socket)
}

/// `len` bytes from xorshift64*, from `seed`, or from `TETHER_TEST_SEED`
/// when set (to try others); the seed is printed, so a failure can be
/// replayed.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let seed = match std::env::var("TETHER_TEST_SEED") {
        Ok(s) => s.parse().expect("TETHER_TEST_SEED is a u64"),
        Err(_) => seed,
    };
    eprintln!("random_bytes({len}): seed {seed} (TETHER_TEST_SEED={seed} replays it)");
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn call_prints_results_as_json() {
    let server = Served::start(&[]);
    let addr = server.addr.as_str();
    assert_eq!(call_ok(addr, &["add", "1", "2", "3"]), "6\n");
    assert_eq!(call_ok(addr, &["add", "-4", "1"]), "-3\n");
    assert_eq!(call_ok(addr, &["divide", "1", "4"]), "0.25\n");
    // Not JSON: a plain string. JSON strings keep what looks like a number.
    assert_eq!(call_ok(addr, &["greet", "world"]), "\"hello, world!\"\n");
    assert_eq!(call_ok(addr, &["echo", "\"42\""]), "\"42\"\n");
    assert_eq!(
        call_ok(addr, &["greet", "you", "--named", "greeting=hi"]),
        "\"hi, you!\"\n"
    );
    assert_eq!(
        call_ok(
            addr,
            &["echo", r#"[1, "two", 3.5, true, null, {"k": [1]}]"#]
        ),
        "[1,\"two\",3.5,true,null,{\"k\":[1]}]\n"
    );
    assert_eq!(call_ok(addr, &["echo", "[]"]), "[]\n");
    // Bytes are arrays of numbers; objects show their repr.
    assert_eq!(call_ok(addr, &["encode", "hé"]), "[104,195,169]\n");
    assert_eq!(
        call_ok(addr, &["squares", "3"]),
        "{\"$ref\":\"<Squares, 3 left>\"}\n"
    );
    // A dotted path: getattr, then the method.
    assert_eq!(call_ok(addr, &["notes.add", "buy milk"]), "1\n");
    assert_eq!(call_ok(addr, &["notes.add", "\"call mum\""]), "2\n");
    assert_eq!(
        call_ok(addr, &["notes.list", "--pretty"]),
        "[\n  \"buy milk\",\n  \"call mum\"\n]\n"
    );
    assert_eq!(call_ok(addr, &["--get", "notes.count"]), "2\n");
    assert_eq!(call_ok(addr, &["--get", "label"]), "\"demo\"\n");
    let info: serde_json::Value = serde_json::from_str(&call_ok(addr, &["info"])).unwrap();
    assert_eq!(info["service"], "demo");
    assert_eq!(info["pid"], server.pid());
}

/// The demo as a program sees it through tether's client API: a callback
/// served over the same connection while the call waits, an iterator, an
/// object by reference, an attribute other connections see.
#[tokio::test]
async fn the_served_demo_calls_back_iterates_and_shares_its_label() {
    let server = Served::start(&[]);
    let conn = tether::connect(server.addr.as_str()).await.unwrap();
    let root = conn.root().await.unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let callback = tether::callback(move |i: i64| {
        record.lock().unwrap().push(i);
        async { Ok(()) }
    });
    let n = root.call_method("count_to", (3, callback)).await.unwrap();
    assert_eq!(n, Value::from(3));
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);

    let squares = NetRef::try_from(root.call_method("squares", (5,)).await.unwrap()).unwrap();
    let items = squares.iter().collect_all().await.unwrap();
    assert_eq!(items, [0, 1, 4, 9, 16].map(Value::from));

    let counter = NetRef::try_from(root.call_method("counter", (5,)).await.unwrap()).unwrap();
    let six = counter.call_method("increment", ()).await.unwrap();
    assert_eq!(six, Value::from(6));
    assert_eq!(counter.getattr("value").await.unwrap(), Value::from(6));

    root.setattr("label", "mine").await.unwrap();
    assert_eq!(call_ok(&server.addr, &["--get", "label"]), "\"mine\"\n");
}

/// `tether run` with no address runs on the same demo: lambdas become
/// callbacks of `count_to`, called in order over the file's connection,
/// and a callback may call the server again.
#[test]
fn run_without_an_address_calls_back_from_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("count.py");
    std::fs::write(
        &script,
        "print(root.count_to(3, lambda i: print(i * 10)))\n\
         print(root.count_to(2, lambda i: print(root.add(i, 100))))\n\
         print(sum([x for x in root.squares(4)]))\n",
    )
    .unwrap();
    let out = tether(&["run", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "10\n20\n30\n3\n101\n102\n2\n14\n");
}

#[test]
fn a_failing_call_exits_1_with_the_error_on_stderr() {
    let server = Served::start(&[]);
    let addr = server.addr.as_str();
    assert_eq!(
        call_err(addr, &["divide", "1", "0"]),
        "error: ZeroDivisionError: division by zero\n"
    );
    assert_eq!(
        call_err(addr, &["add", "1", "two"]),
        "error: tether::BadArgumentsError: Demo.add(): argument 2: expected int, got str\n"
    );
    assert_eq!(
        call_err(addr, &["no_such_method"]),
        "error: tether::DeniedError: 'Demo' object has no exposed member 'no_such_method'\n"
    );
    assert_eq!(
        call_err(addr, &["label.upper"]),
        "error: TypeError: label is str, not an object\n"
    );
    // Near misses and attributes called get a hint.
    assert_eq!(
        call_err(addr, &["ad", "1", "2"]),
        "error: tether::DeniedError: 'Demo' object has no exposed member 'ad'; did you mean 'add'?\n"
    );
    assert_eq!(
        call_err(addr, &["label"]),
        format!(
            "error: tether::UnsupportedError: 'Demo.label' is an attribute, not a method: \
             read it instead of calling it (--get reads it: tether call {addr} --get label)\n"
        )
    );
    let (refused, _kept) = closed_port();
    let refused = refused.to_string();
    let message = call_err(&refused, &["add", "1"]);
    assert!(
        message.starts_with(&format!("error: cannot connect to {refused}: ")),
        "{message}"
    );
    // Usage errors are clap's: exit code 2.
    let out = tether(&["call", addr]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = tether(&["call", addr, "add", "--named", "novalue"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("expected NAME=VALUE"), "{out:?}");
    let out = tether(&["call", "nowhere", "add"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn an_integer_beyond_64_bits_is_refused_as_such() {
    // Refused while reading the arguments, before connecting.
    let out = tether(&["call", "1", "add", "1", "99999999999999999999"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let message = stderr(&out);
    assert!(
        message.contains("the integer 99999999999999999999 is too large to send"),
        "{message}"
    );
    assert!(!message.contains("float"), "{message}");
}

#[test]
fn a_call_past_its_deadline_fails() {
    let server = Served::start(&[]);
    assert_eq!(
        call_err(&server.addr, &["sleep", "5", "--timeout", "0.2"]),
        "error: timeout: no reply within 200ms\n"
    );
}

#[test]
fn dir_lists_members_with_signatures_and_docs() {
    let server = Served::start(&[]);
    let addr = server.addr.as_str();
    let text = call_ok(addr, &["--dir"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "<Demo service \"demo\">");
    assert!(lines.contains(&"  add(*numbers: int) -> int"), "{text}");
    assert!(
        lines.contains(&"      Add any number of integers: add(1, 2, 3) is 6, add() is 0."),
        "{text}"
    );
    assert!(
        lines.contains(&"  label: str (attribute, writable)"),
        "{text}"
    );
    assert!(lines.contains(&"  version: str (attribute)"), "{text}");

    let notes = call_ok(addr, &["--dir", "notes"]);
    assert!(notes.starts_with("<Notebook with 0 notes>\n"), "{notes}");
    assert!(notes.contains("\n  add(text: str) -> int\n"), "{notes}");

    let json: serde_json::Value =
        serde_json::from_str(&call_ok(addr, &["--dir", "--json", "notes"])).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["add", "list", "clear", "count"]);
    assert_eq!(json[3]["kind"], "attribute");
    assert_eq!(json[0]["signature"], "(text: str) -> int");

    assert_eq!(
        call_err(addr, &["--dir", "nothing"]),
        "error: tether::DeniedError: 'Demo' object has no exposed member 'nothing'\n"
    );
}

#[test]
fn cp_copies_both_ways_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&["--classic"]);
    let data = random_bytes(1 << 20 | 12345, 0x5EED_0001);
    let local = dir.path().join("local.bin");
    std::fs::write(&local, &data).unwrap();

    // Up.
    let remote_path = dir.path().join("remote.bin");
    let remote = format!("{}:{}", server.addr, remote_path.display());
    let out = tether(&["cp", local.to_str().unwrap(), &remote]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), format!("copied {} bytes\n", data.len()));
    assert_eq!(stderr(&out), "", "no progress bar without a terminal");
    assert!(std::fs::read(&remote_path).unwrap() == data);

    // Down, over an existing file.
    let back = dir.path().join("back.bin");
    std::fs::write(&back, b"old contents").unwrap();
    let out = tether(&["cp", &remote, back.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), format!("copied {} bytes\n", data.len()));
    assert!(std::fs::read(&back).unwrap() == data);

    // Down into a directory: the file keeps its name. Quietly.
    let into = dir.path().join("into");
    std::fs::create_dir(&into).unwrap();
    let out = tether(&["cp", "--quiet", &remote, into.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "");
    assert!(std::fs::read(into.join("remote.bin")).unwrap() == data);

    // Up into a remote directory (a path ending in /); an empty file.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let remote_dir = format!("{}:{}/into/", server.addr, dir.path().display());
    let out = tether(&["cp", empty.to_str().unwrap(), &remote_dir]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "copied 0 bytes\n");
    assert_eq!(std::fs::read(into.join("empty")).unwrap(), b"");
}

#[test]
fn cp_into_remote_directories_and_onto_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&["--classic"]);
    let data = random_bytes(300_000, 0x5EED_0002);
    let local = dir.path().join("data.bin");
    std::fs::write(&local, &data).unwrap();
    let local_arg = local.to_str().unwrap();

    // An existing remote directory, named without a trailing slash.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let out = tether(&[
        "cp",
        local_arg,
        &format!("{}:{}", server.addr, sub.display()),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read(sub.join("data.bin")).unwrap() == data);

    // The server runs here: copying a file onto itself, either way, must
    // not truncate it (both directions write a new file, then rename).
    let same = format!("{}:{}", server.addr, local.display());
    for (src, dst) in [(local_arg, same.as_str()), (same.as_str(), local_arg)] {
        let out = tether(&["cp", src, dst]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(stdout(&out), format!("copied {} bytes\n", data.len()));
        assert!(std::fs::read(&local).unwrap() == data);
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["data.bin", "sub"], "no temporary files left");
}

#[test]
fn cp_reports_errors_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&["--classic"]);
    let missing = format!("{}:{}/missing", server.addr, dir.path().display());
    let target = dir.path().join("target");
    let out = tether(&["cp", &missing, target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let message = stderr(&out);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains("FileNotFoundError"), "{message}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let out = tether(&["cp", dir.path().join("nope").to_str().unwrap(), &missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("cannot open"), "{out:?}");

    // Into a remote directory that does not exist: nothing is left behind.
    let source = dir.path().join("source");
    std::fs::write(&source, b"data").unwrap();
    let nowhere = format!("{}:{}/no/such/dir/x", server.addr, dir.path().display());
    let out = tether(&["cp", source.to_str().unwrap(), &nowhere]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!("error: cannot write {nowhere}: FileNotFoundError")),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let out = tether(&["cp", "a", "b"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("ADDR:PATH"), "{out:?}");
}

#[test]
fn cp_takes_a_port_alone_and_its_errors_name_the_users_paths() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&["--classic"]);
    let source = dir.path().join("source");
    std::fs::write(&source, b"some data").unwrap();
    let source = source.to_str().unwrap();

    // PORT:/PATH, on 127.0.0.1, as `call` takes PORT.
    let (_, port) = server.addr.rsplit_once(':').unwrap();
    let out = tether(&[
        "cp",
        &format!("{port}:{source}"),
        dir.path().join("copy").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(dir.path().join("copy")).unwrap(),
        b"some data"
    );

    // A destination that cannot be written is named as given, not as the
    // temporary file beside it.
    let nowhere = dir.path().join("no/such/dir/copy");
    let nowhere = nowhere.to_str().unwrap();
    let out = tether(&["cp", &format!("{port}:{source}"), nowhere]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!("error: cannot write {nowhere}: ")),
        "{message}"
    );
    assert!(!message.contains("tether-cp"), "{message}");

    // A server that serves no files says which one does.
    let demo = Served::start(&[]);
    let out = tether(&["cp", source, &format!("{}:/tmp/x", demo.addr)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let message = stderr(&out);
    assert!(message.contains("serves no files"), "{message}");
    assert!(message.contains("tether serve --classic"), "{message}");
}

#[test]
fn the_classic_service_refuses_non_loopback_addresses() {
    // Refused before binding: nothing listens on 0.0.0.0.
    let out = tether(&["serve", "--classic", "--tcp", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(stdout(&out), "");
    let message = stderr(&out);
    assert!(message.contains("not a loopback address"), "{message}");
    assert!(message.contains("--allow-remote"), "{message}");

    // --allow-remote means nothing for the demo.
    let out = tether(&["serve", "--allow-remote", "--tcp", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // Loopback names are fine.
    let server = Served::start_raw(&["serve", "--classic", "--tcp", "localhost:0"]);
    assert!(server.addr.starts_with("127.0.0.1:") || server.addr.starts_with("[::1]:"));
}

#[test]
fn serve_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tether.sock");
    let socket_arg = socket.to_str().unwrap();
    let mut server = Served::start_raw(&["serve", "--unix", socket_arg]);
    assert_eq!(server.addr, format!("unix:{socket_arg}"));
    assert_eq!(call_ok(&server.addr, &["add", "20", "22"]), "42\n");

    // The shell reaches it too (input piped: one line, then end of input).
    let home = tempfile::tempdir().unwrap();
    let mut shell = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["shell", &server.addr])
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(b"root.add(40, 2)\n")
        .unwrap();
    let out = shell.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("42"),
        "{out:?}"
    );

    // A second server on the same socket is refused.
    let out = tether(&["serve", "--unix", socket_arg]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("already listening"), "{out:?}");

    // Stopped gracefully, it removes its socket.
    server.signal("TERM");
    assert!(server.wait_exit().success());
    assert!(!socket.exists());

    // Killed, it leaves the socket behind; the next server replaces it.
    let mut server = Served::start_raw(&["serve", "--unix", socket_arg]);
    server.child.kill().unwrap();
    server.wait_exit();
    assert!(socket.exists());
    let server = Served::start_raw(&["serve", "--unix", socket_arg]);
    assert_eq!(call_ok(&server.addr, &["add", "1"]), "1\n");
}

#[test]
fn serve_stops_on_ctrl_c() {
    let mut server = Served::start(&["--max-connections", "4"]);
    assert_eq!(server.next_line_after_signal("INT"), "shutting down");
    assert!(server.wait_exit().success());
}

impl Served {
    fn next_line_after_signal(&mut self, name: &str) -> String {
        self.signal(name);
        self.next_line()
    }
}

#[test]
fn servers_are_killed_when_their_guard_drops() {
    let server = Served::start(&[]);
    let addr: SocketAddr = server.addr.parse().unwrap();
    let pid = server.pid();
    assert!(TcpStream::connect(addr).is_ok());
    drop(server);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still runs"
    );
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn help_and_version() {
    let out = tether(&["--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for command in ["serve", "shell", "call", "cp"] {
        assert!(help.contains(command), "{help}");
    }
    let out = tether(&["call", "--help"]);
    assert!(stdout(&out).contains("tether call 127.0.0.1:18812 add 1 2 3"));
    let out = tether(&["--version"]);
    assert_eq!(
        stdout(&out),
        format!("tether {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn shell_opens_on_a_server_in_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let server = Served::start(&[]);
    let mut command = Command::new(TETHER);
    command
        .args(["shell", &server.addr])
        .env("HOME", home.path());
    let mut shell = expectrl::Session::spawn(command).expect("spawn the shell in a pty");
    shell.set_expect_timeout(Some(STARTUP));
    shell.expect("tether> ").unwrap();
    shell
        .send_line("root.notes.add(\"from the shell\")")
        .unwrap();
    shell.expect("1\r\n").unwrap();
    shell.expect("tether> ").unwrap();
    // An error does not end the session.
    shell.send_line("root.divide(1, 0)").unwrap();
    shell.expect("ZeroDivisionError: division by zero").unwrap();
    shell.expect("tether> ").unwrap();
    shell.send_line("exit").unwrap();
    shell.expect(expectrl::Eof).unwrap();
    // What the shell did is there for the next client.
    assert_eq!(
        call_ok(&server.addr, &["notes.list"]),
        "[\"from the shell\"]\n"
    );
}

#[test]
fn shell_refuses_what_it_cannot_reach() {
    let out = tether(&["shell", "unix:/nowhere.sock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).starts_with("error: cannot connect to unix:/nowhere.sock"),
        "{out:?}"
    );
    let (refused, _kept) = closed_port();
    let refused = refused.to_string();
    let out = tether(&["shell", &refused]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).starts_with(&format!("error: cannot connect to {refused}: ")),
        "{out:?}"
    );
}

#[test]
fn serve_with_tokens_and_call_proving_one() {
    let served = Served::start(&["--token", "ops=cli-secret-0123456789"]);
    let token = ["--token", "cli-secret-0123456789"];
    assert_eq!(
        call_ok(&served.addr, &["add", "1", "2", token[0], token[1]]),
        "3\n"
    );
    let err = call_err(&served.addr, &["add", "1", "2"]);
    assert!(err.contains("requires a token"), "{err}");
    let err = call_err(
        &served.addr,
        &["add", "1", "2", "--token", "a-wrong-secret"],
    );
    assert!(err.contains("denied"), "{err}");
    // The client reads TETHER_TOKEN too.
    let out = Command::new(TETHER)
        .args(["call", &served.addr, "add", "1", "2"])
        .env("TETHER_TOKEN", "cli-secret-0123456789")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "3\n");
}

#[test]
fn serve_and_call_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let served = Served::start(&["--tls-cert", &pki.cert, "--tls-key", &pki.key]);
    let ca_pem = pki.ca.clone();
    assert_eq!(
        call_ok(&served.addr, &["add", "1", "2", "--tls-ca", &ca_pem]),
        "3\n"
    );
    // Without TLS the client cannot talk to it; with the wrong name it
    // does not trust it.
    call_err(&served.addr, &["add", "1", "2"]);
    let err = call_err(
        &served.addr,
        &[
            "add",
            "1",
            "2",
            "--tls-ca",
            &ca_pem,
            "--tls-name",
            "example.com",
        ],
    );
    assert!(err.contains("certificate"), "{err}");
}

/// A test CA and a certificate it issued for 127.0.0.1, as PEM files.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

impl Pki {
    /// Make them in `dir`.
    fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "CLI test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca.self_signed(&ca_key).unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = server.signed_by(&server_key, &ca, &ca_key).unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
        let pki = Pki {
            ca: path("ca.pem"),
            cert: path("server.pem"),
            key: path("server.key"),
        };
        std::fs::write(&pki.ca, ca.pem()).unwrap();
        std::fs::write(&pki.cert, server.pem()).unwrap();
        std::fs::write(&pki.key, server_key.serialize_pem()).unwrap();
        pki
    }
}

/// A TCP connection to `addr` of our own, and the address the server sees
/// it from (`peer=` in its log lines).
async fn socket_to(addr: &str) -> (tokio::net::TcpStream, String) {
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client = socket.local_addr().unwrap().to_string();
    (socket, client)
}

/// The `connection=N` field of a log line.
fn connection_field(line: &str) -> String {
    let start = line.find("connection=").expect("a connection field");
    let field = &line[start..];
    field.split(' ').next().unwrap().to_string()
}

// The log tests block on the child's stderr while the client's connection
// runs on the runtime's worker threads, hence `multi_thread`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_connections_object_errors_and_disconnects() {
    let mut server = Served::start_logged(&[], None);
    let (socket, client) = socket_to(&server.addr).await;
    let peer = format!("peer={client}");
    let conn = tether::Connection::builder()
        .connect_io(socket, Some(server.addr.clone()))
        .await
        .unwrap();
    let opened = server.expect_log(&["connection opened", &peer]);
    assert!(opened.contains(" INFO "), "{opened}");
    let number = connection_field(&opened);

    let root = conn.root().await.unwrap();
    root.call_method("divide", (1, 0)).await.unwrap_err();
    let raised = server.expect_log(&["object raised an error", &number]);
    assert!(raised.contains(" INFO "), "{raised}");
    assert!(raised.contains("call=\"divide()\""), "{raised}");
    assert!(
        raised.contains("error=ZeroDivisionError: division by zero"),
        "{raised}"
    );

    drop(root);
    drop(conn);
    let closed = server.expect_log(&["connection closed", &number, &peer]);
    assert!(
        closed.contains("reason=connection closed: the peer closed the connection"),
        "{closed}"
    );
}

/// What the test's RPyC client serves the server: nothing.
struct Nothing;

#[tether::expose]
impl Nothing {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_rpyc_connections_and_their_object_errors() {
    let mut server = Served::start_logged(&[], None);
    let (socket, client) = socket_to(&server.addr).await;
    let peer = format!("peer={client}");
    // tether's own RPyC client: the server tells the dialect by its first
    // bytes, as it does for Python's.
    let session = tether::rpyc::connect_io(
        socket,
        NetRef::new(Nothing),
        tether::Config::default(),
        Some(server.addr.clone()),
    );
    let root = session.root().await.unwrap();
    let opened = server.expect_log(&["connection opened", &peer, "dialect=\"rpyc\""]);
    let number = connection_field(&opened);
    root.call_method("divide", (1, 0)).await.unwrap_err();
    server.expect_log(&["object raised an error", &number, "ZeroDivisionError"]);
    drop(root);
    drop(session);
    server.expect_log(&["connection closed", &number, &peer]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_clients_denied_for_their_token() {
    let secret = "log-test-secret-0123456789";
    let mut server = Served::start_logged(&["--token", &format!("ops={secret}")], None);
    for (token, why) in [
        (Some("not-the-secret-at-all"), "matches no known token"),
        (None, "it sent no token"),
    ] {
        let (socket, client) = socket_to(&server.addr).await;
        let mut builder = tether::Connection::builder();
        if let Some(token) = token {
            builder = builder.token(tether::Token::new(token).unwrap());
        }
        let err = builder
            .connect_io(socket, Some(server.addr.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), tether::ErrorKind::Denied, "{err}");
        let line = server.expect_log(&["client denied", &format!("peer={client}")]);
        assert!(line.contains(" WARN "), "{line}");
        assert!(line.contains(why), "{line}");
        assert!(!line.contains(secret), "{line}");
    }
    // The one that knows the secret gets in, and is named in the log.
    let (socket, client) = socket_to(&server.addr).await;
    let _conn = tether::Connection::builder()
        .token(tether::Token::new(secret).unwrap())
        .connect_io(socket, Some(server.addr.clone()))
        .await
        .unwrap();
    let opened = server.expect_log(&["connection opened", &format!("peer={client}")]);
    assert!(opened.contains("identity=\"ops\""), "{opened}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_clients_denied_for_lacking_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    // Client certificates are required, and must come from our CA.
    let mut server = Served::start_logged(
        &[
            "--tls-cert",
            &pki.cert,
            "--tls-key",
            &pki.key,
            "--tls-ca",
            &pki.ca,
        ],
        None,
    );
    let (socket, client) = socket_to(&server.addr).await;
    let ca = std::fs::read(&pki.ca).unwrap();
    let tls = tether::transport::tls::TlsClient::from_pem(&ca, "127.0.0.1").unwrap();
    // TLS 1.3 may let the client finish before the server has checked it:
    // the refusal then shows on the first call instead.
    let refused = match tether::Connection::builder()
        .tls(tls)
        .connect_io(socket, Some(server.addr.clone()))
        .await
    {
        Ok(conn) => conn.root().await.map(drop),
        Err(err) => Err(err),
    };
    assert!(refused.is_err());
    let line = server.expect_log(&["client denied", &format!("peer={client}")]);
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains("certificate"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_v_logs_refused_and_cancelled_calls() {
    let mut server = Served::start_logged(&["-v"], None);
    let (socket, client) = socket_to(&server.addr).await;
    let conn = tether::Connection::builder()
        .connect_io(socket, Some(server.addr.clone()))
        .await
        .unwrap();
    let opened = server.expect_log(&["connection opened", &format!("peer={client}")]);
    let number = connection_field(&opened);
    let root = conn.root().await.unwrap();

    root.call_method("nope", ()).await.unwrap_err();
    let refused = server.expect_log(&["call failed", &number, "kind=\"denied\""]);
    assert!(refused.contains(" DEBUG "), "{refused}");

    // The caller gives up on a long sleep: one poll sends the request,
    // dropping the call then sends the cancel, after it on the same stream.
    let mut call = Box::pin(root.call_method("sleep", (3600,)));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
    assert!(first.is_pending());
    drop(call);
    server.expect_log(&["call cancelled by the peer", &number]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_rust_log() {
    // Debug events without -v: RUST_LOG decides.
    let mut server = Served::start_logged(&[], Some("tether=debug"));
    let conn = tether::connect(server.addr.as_str()).await.unwrap();
    let root = conn.root().await.unwrap();
    root.call_method("nope", ()).await.unwrap_err();
    server.expect_log(&["call failed", "kind=\"denied\""]);
}

/// `tether ARGS...` with `input` on its stdin, to completion.
fn tether_with_input(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(TETHER)
        .args(args)
        .env_remove("TETHER_TOKEN")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tether");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `--timeout` bounds connecting, in every subcommand: here a listener
/// that never accepts, so the kernel completes the TCP connect and nobody
/// ever answers the handshake. (An RPyC connection has no handshake: its
/// first call, for the root object, is what runs out of time.)
#[test]
fn the_timeout_bounds_connecting() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let remote = format!("{addr}:/tmp/x");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("x");
    std::fs::write(&local, b"data").unwrap();
    let local = local.to_str().unwrap();
    let script = dir.path().join("script.py");
    std::fs::write(&script, "print(root)\n").unwrap();
    let script = script.to_str().unwrap();
    for args in [
        &["call", &addr, "add", "1", "2"][..],
        &["cp", &remote, dir.path().to_str().unwrap()],
        &["cp", local, &remote],
        &["shell", &addr],
        &["shell", "--rpyc", &addr],
        &["run", script, &addr],
        &["run", script, "--rpyc", &addr],
    ] {
        let mut args = args.to_vec();
        args.extend(["--timeout", "0.2"]);
        let out = tether(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let message = stderr(&out);
        assert!(message.contains("timeout"), "{args:?}: {message}");
        assert!(message.contains("within 200ms"), "{args:?}: {message}");
    }
}

/// `--timeout` is the deadline of each call in the shell, on either
/// dialect.
#[test]
fn the_timeout_is_the_deadline_of_shell_calls() {
    let server = Served::start(&[]);
    let out = tether_with_input(
        &["shell", &server.addr, "--timeout", "0.3"],
        "root.sleep(5)\n",
    );
    assert!(
        stderr(&out).contains("no reply within 300ms"),
        "{}",
        stderr(&out)
    );

    let python = PythonServer::classic();
    let out = tether_with_input(
        &["shell", "--rpyc", &python.addr(), "--timeout", "0.3"],
        "root.eval('__import__(\"time\").sleep(30)')\n",
    );
    assert!(stderr(&out).contains("within 300ms"), "{}", stderr(&out));
}

/// A Python RPyC server reached without `--rpyc` is recognised at once:
/// with an hour to connect, the answer is still the hint, not a timeout.
#[test]
fn an_rpyc_server_reached_natively_gets_a_hint() {
    let python = PythonServer::classic();
    let addr = python.addr();
    let out = tether(&["shell", &addr, "--timeout", "3600"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr(&out),
        format!("error: cannot connect to {addr}: this looks like an RPyC server: try --rpyc\n")
    );

    // `call` has no --rpyc: the shell's is suggested.
    let python = PythonServer::service();
    let addr = python.addr();
    let err = call_err(&addr, &["add", "1", "2", "--timeout", "3600"]);
    assert_eq!(
        err,
        format!(
            "error: cannot connect to {addr}: this looks like an RPyC server: \
             try tether shell --rpyc {addr}\n"
        )
    );
}

/// `tether shell --rpyc` and `run --rpyc` speak TLS to a Python server
/// started with `rpyc_classic --ssl-keyfile K --ssl-certfile C`.
#[test]
fn shell_and_run_speak_tls_to_rpyc() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let python =
        PythonServer::classic_with(&["--ssl-keyfile", &pki.key, "--ssl-certfile", &pki.cert]);
    let out = tether_with_input(
        &["shell", "--rpyc", &python.addr(), "--tls-ca", &pki.ca],
        "root.eval('6 * 7')\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).lines().any(|l| l.ends_with("42")),
        "{}",
        stdout(&out)
    );

    // `tether run --rpyc` too.
    let python =
        PythonServer::classic_with(&["--ssl-keyfile", &pki.key, "--ssl-certfile", &pki.cert]);
    let script = dir.path().join("script.py");
    std::fs::write(&script, "print(root.eval('6 * 7'))\n").unwrap();
    let out = tether(&[
        "run",
        script.to_str().unwrap(),
        "--rpyc",
        &python.addr(),
        "--tls-ca",
        &pki.ca,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "42\n");
}

/// Debian's `chromium`, or the browser `CHROMIUM` names; `None` without.
fn chromium() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(path.into());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("chromium"))
        .find(|path| path.is_file())
}

#[test]
fn the_web_console_in_a_real_browser() {
    let Some(browser) = chromium() else {
        eprintln!(
            "\n*** SKIPPED the_web_console_in_a_real_browser: no chromium on PATH (.ci/run \
             installs Debian's; or set CHROMIUM=/path/to/chromium) ***\n"
        );
        return;
    };
    let mut served = Served::start(&["--web", "127.0.0.1:0"]);
    let line = served.next_line();
    let url = line
        .strip_prefix("web console on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_string();
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-console.png");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let output = runtime
        .block_on(async {
            support::node::node("console.mjs")
                .arg(&url)
                .arg(&browser)
                .arg(&screenshot)
                .output()
                .await
        })
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.ends_with("done\n"),
        "console.mjs:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        screenshot.is_file(),
        "the screenshot at {}",
        screenshot.display()
    );
    drop(served);
}

#[test]
fn the_vendored_capnweb_is_the_locked_npm_package() {
    let installed = support::node::node_modules().join("capnweb/dist/index.js");
    let installed = std::fs::read_to_string(&installed).unwrap();
    let vendored = include_str!("../web/vendor/capnweb.js");
    assert!(
        installed == vendored,
        "tether-cli/web/vendor/capnweb.js differs from the capnweb of tests/js/package-lock.json: \
         copy node_modules/capnweb/dist/index.js over it"
    );
}

#[test]
fn the_web_console_refuses_tokens_browsers_cannot_send() {
    let output = Command::new(TETHER)
        .args(["serve", "--tcp", "127.0.0.1:0", "--web", "127.0.0.1:0"])
        .args(["--token", "alice=a-long-secret"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--web does not take tokens"), "{stderr}");
}
