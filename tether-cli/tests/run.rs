//! `tether run FILE [ADDR]`: Python files against a server, with
//! callbacks from the file's functions, exit codes and errors.
//!
//! The server is a tether server of a `Lab` service in this test process
//! (on a runtime of its own, loopback, a port the OS picks), so the tests
//! can see what it was called with; `tether run` is a child process.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tether::{NetRef, Result, Value};

mod support;

const TETHER: &str = env!("CARGO_BIN_EXE_tether");

#[derive(Clone, Default)]
struct Lab {
    /// How the ledgers' `with` blocks ended.
    ledger_log: Arc<Mutex<Vec<String>>>,
    /// Calls of `add` so far.
    adds: Arc<AtomicI64>,
    /// What `hold` reports: "started", then "dropped" when its call is
    /// cancelled.
    events: Arc<Mutex<Option<mpsc::Sender<&'static str>>>>,
}

/// Reports "dropped" when the served call it lives in is dropped.
struct Dropped(Option<mpsc::Sender<&'static str>>);

impl Drop for Dropped {
    fn drop(&mut self) {
        if let Some(events) = &self.0 {
            let _ = events.send("dropped");
        }
    }
}

#[tether::expose]
impl Lab {
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        self.adds.fetch_add(1, Ordering::SeqCst);
        a + b
    }

    /// Divide a by b.
    #[method]
    fn divide(&self, a: f64, b: f64) -> Result<f64> {
        if b == 0.0 {
            return Err(tether::Error::app("ZeroDivisionError", "division by zero"));
        }
        Ok(a / b)
    }

    /// Calls `callback(i)` for i = 1..=n in order; returns the results.
    #[method]
    async fn map_to(&self, n: i64, callback: NetRef) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for i in 1..=n {
            out.push(callback.call((i,)).await?);
        }
        Ok(out)
    }

    #[method]
    fn echo(&self, value: Value) -> Value {
        value
    }

    /// A ledger for a `with` block; one named "quiet" swallows errors.
    #[method]
    fn ledger(&self, name: String) -> NetRef {
        NetRef::new(Ledger {
            name,
            log: self.ledger_log.clone(),
        })
    }

    /// How the ledgers' `with` blocks ended.
    #[method]
    fn ledger_log(&self) -> Vec<String> {
        self.ledger_log.lock().unwrap().clone()
    }

    /// A new object that reports "dropped" when the peer releases it.
    #[method]
    fn make(&self) -> NetRef {
        NetRef::new(Thing(Dropped(self.events.lock().unwrap().clone())))
    }

    /// Never returns; reports when it starts and when it is cancelled.
    #[method]
    async fn hold(&self) -> Result<()> {
        let events = self.events.lock().unwrap().clone();
        let _dropped = Dropped(events.clone());
        if let Some(events) = events {
            let _ = events.send("started");
        }
        std::future::pending::<()>().await;
        Ok(())
    }
}

struct Ledger {
    name: String,
    log: Arc<Mutex<Vec<String>>>,
}

#[tether::expose]
impl Ledger {
    #[op(enter)]
    fn open(&self) -> String {
        format!("{} open", self.name)
    }

    #[op(exit)]
    fn finish(&self, error: Option<tether::Error>) -> bool {
        let line = match &error {
            None => format!("{} committed", self.name),
            Some(e) => format!("{} rolled back: {e}", self.name),
        };
        self.log.lock().unwrap().push(line);
        error.is_some() && self.name == "quiet"
    }
}

/// What `make` returns.
struct Thing(#[allow(dead_code)] Dropped);

#[tether::expose]
impl Thing {
    #[method]
    fn ping(&self) -> i64 {
        1
    }

    /// Never returns; reports when it starts and, as "hold cancelled"
    /// (the object's own release being "dropped"), when it is cancelled.
    #[method]
    async fn hold(&self) -> Result<()> {
        struct Cancelled(Option<mpsc::Sender<&'static str>>);
        impl Drop for Cancelled {
            fn drop(&mut self) {
                if let Some(events) = &self.0 {
                    let _ = events.send("hold cancelled");
                }
            }
        }
        let events = (self.0).0.clone();
        let _cancelled = Cancelled(events.clone());
        if let Some(events) = events {
            let _ = events.send("started");
        }
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// A server of a fresh `Lab` on its own runtime.
struct LabServer {
    _rt: tokio::runtime::Runtime,
    addr: String,
    lab: Lab,
}

fn lab_server() -> LabServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let lab = Lab::default();
    let server = rt
        .block_on(tether::Server::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = server.local_addr().unwrap().to_string();
    rt.spawn(server.serve(lab.clone()));
    LabServer { _rt: rt, addr, lab }
}

/// `tether run` on a file holding `source`, against `addr` (none: the
/// embedded demo).
fn run(source: &str, addr: Option<&str>) -> Output {
    let (child, _file) = spawn(source, addr);
    child.wait_with_output().expect("run tether")
}

/// `tether run` started, its output piped; the file lives as long as the
/// returned guard.
fn spawn(source: &str, addr: Option<&str>) -> (std::process::Child, tempfile::NamedTempFile) {
    spawn_with(source, addr.as_slice())
}

/// `tether run FILE ARGS...`, `source` in FILE.
fn spawn_with(source: &str, extra: &[&str]) -> (std::process::Child, tempfile::NamedTempFile) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(source.as_bytes()).unwrap();
    let mut args = vec!["run".to_string(), file.path().display().to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let child = Command::new(TETHER)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tether");
    (child, file)
}

/// Safety bound on waiting for an event that should come at once.
const EVENT: Duration = Duration::from_secs(60);

/// Run `source` until the server's `hold` has started, then Ctrl-C it
/// (SIGINT to its PID); its output, and whether the server saw the call
/// cancelled.
fn interrupt_during_hold(source: &str) -> (Output, &'static str) {
    let (out, after, _) = interrupt_during_hold_events(source);
    (out, after)
}

/// As [`interrupt_during_hold`], with the server's later events.
fn interrupt_during_hold_events(
    source: &str,
) -> (Output, &'static str, mpsc::Receiver<&'static str>) {
    let server = lab_server();
    let (events, seen) = mpsc::channel();
    *server.lab.events.lock().unwrap() = Some(events);
    let (child, _file) = spawn(source, Some(&server.addr));
    assert_eq!(seen.recv_timeout(EVENT), Ok("started"));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let after = seen
        .recv_timeout(EVENT)
        .expect("the call ends on the server");
    (child.wait_with_output().unwrap(), after, seen)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_file_prints_and_exits_0() {
    let server = lab_server();
    let out = run("print(root.add(2, 3))\n", Some(&server.addr));
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "5\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(server.lab.adds.load(Ordering::SeqCst), 1);
}

#[test]
fn an_uncaught_remote_error_exits_1_with_its_trace_on_stderr() {
    let server = lab_server();
    let out = run(
        "print('before')\nroot.divide(1, 0)\nprint('after')\n",
        Some(&server.addr),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "before\n");
    let err = stderr(&out);
    assert!(
        err.contains("RemoteError: ZeroDivisionError: division by zero"),
        "{err}"
    );
    assert!(err.contains("in divide()"), "the remote trace: {err}");
}

#[test]
fn a_remote_error_can_be_caught() {
    let server = lab_server();
    let source = "\
try:
    root.divide(1, 0)
except RemoteError as e:
    print('caught', e)
";
    let out = run(source, Some(&server.addr));
    assert_eq!(stdout(&out), "caught ZeroDivisionError: division by zero\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_server_calls_back_a_lambda_and_a_def_with_a_loop() {
    let server = lab_server();
    let source = "\
print(root.map_to(3, lambda i: i * 10))
def total_to(i):
    total = 0
    for k in range(i + 1):
        total += k
    return total
print(root.map_to(4, total_to))
";
    let out = run(source, Some(&server.addr));
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "[10, 20, 30]\n[1, 3, 6, 10]\n");
}

#[test]
fn a_callback_may_call_the_server_again() {
    let server = lab_server();
    // Each callback waits for root.add while the server waits for the
    // callback: the nested call is served on the same connection.
    let out = run(
        "print(root.map_to(3, lambda i: root.add(i, 100)))\n",
        Some(&server.addr),
    );
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "[101, 102, 103]\n");
    assert_eq!(server.lab.adds.load(Ordering::SeqCst), 3);
}

#[test]
fn an_error_in_a_callback_reaches_the_server_and_comes_back() {
    let server = lab_server();
    let source = "\
def fails(i):
    raise ValueError('no ' + str(i))
try:
    root.map_to(2, fails)
except RemoteError as e:
    print(e)
";
    let out = run(source, Some(&server.addr));
    assert_eq!(stderr(&out), "");
    assert!(
        stdout(&out).contains("ValueError: no 1"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn values_keep_their_python_types_both_ways() {
    let server = lab_server();
    let source = "\
for v in [None, True, 7, 2.5, 'text', b'hi there\\n', [1, [2]], {'k': (1, 2)}]:
    print(repr(root.echo(v)))
print(root.echo(b'hi').decode())
";
    let out = run(source, Some(&server.addr));
    assert_eq!(stderr(&out), "");
    assert_eq!(
        stdout(&out),
        "None\nTrue\n7\n2.5\n'text'\nb'hi there\\n'\n[1, [2]]\n{'k': [1, 2]}\nhi\n"
    );
}

#[test]
fn an_integer_beyond_64_bits_says_so() {
    let server = lab_server();
    let out = run("root.echo(2 ** 70)\n", Some(&server.addr));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("OverflowError") && err.contains("too large") && err.contains("64-bit"),
        "{err}"
    );
}

#[test]
fn a_file_that_does_not_parse_exits_1_naming_the_line() {
    let server = lab_server();
    let out = run("x = 1\nprint(x +)\n", Some(&server.addr));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains("SyntaxError") && err.contains("row 2"),
        "{err}"
    );
    assert_eq!(server.lab.adds.load(Ordering::SeqCst), 0);
}

#[test]
fn without_an_address_the_embedded_demo_serves() {
    let out = run(
        "print(root.add(2, 3), sum([x for x in root.squares(4)]))\n",
        None,
    );
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "5 14\n");
}

#[test]
fn ctrl_c_cancels_the_call_on_the_server_and_the_file_can_go_on() {
    let source = "\
try:
    root.hold()
except KeyboardInterrupt as e:
    print('interrupted:', e)
print(root.add(1, 2))
";
    let (out, after) = interrupt_during_hold(source);
    assert_eq!(after, "dropped", "the served call was cancelled");
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "interrupted: cancelled\n3\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn ctrl_c_inside_a_callback_cancels_the_outer_call_too() {
    // The server calls the lambda, which calls hold: Ctrl-C cancels hold,
    // the lambda raises, and the outer map_to is cancelled as well.
    let source = "\
try:
    root.map_to(1, lambda i: root.hold())
except KeyboardInterrupt as e:
    print('interrupted:', e)
";
    let (out, after) = interrupt_during_hold(source);
    assert_eq!(after, "dropped");
    assert_eq!(stdout(&out), "interrupted: cancelled\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn ctrl_c_cancels_a_pipelined_chain_and_chains_give_pythons_values() {
    // `root.make().hold()` goes as one chain; Ctrl-C cancels it on the
    // server. A chain ending in a plain value's method runs that here.
    let source = "\
try:
    root.make().hold()
except KeyboardInterrupt as e:
    print('interrupted:', e)
print(root.make().ping() + root.echo('ab').upper().count('B'))
";
    let (out, after, seen) = interrupt_during_hold_events(source);
    // The held call is cancelled; the object it was made on is released
    // too, in either order.
    let mut events = vec![after];
    while !events.contains(&"hold cancelled") {
        events.push(seen.recv_timeout(EVENT).expect("hold is cancelled"));
    }
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "interrupted: cancelled\n2\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn with_runs_the_objects_enter_and_exit_which_learns_the_error() {
    let server = lab_server();
    let source = "\
with root.ledger('a') as entry:
    print(entry)
try:
    with root.ledger('b'):
        raise ValueError('no funds')
except ValueError as e:
    print('raised:', e)
with root.ledger('quiet'):
    raise KeyError('k')
print(root.ledger_log())
";
    let out = run(source, Some(&server.addr));
    assert_eq!(stderr(&out), "");
    assert_eq!(
        stdout(&out),
        "a open\nraised: no funds\n['a committed', 'b rolled back: ValueError: no funds', \
         \"quiet rolled back: KeyError: 'k'\"]\n"
    );
}

#[test]
fn an_uncaught_ctrl_c_exits_1_saying_cancelled() {
    let (out, after) = interrupt_during_hold("root.hold()\nprint('not reached')\n");
    assert_eq!(after, "dropped");
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("KeyboardInterrupt: cancelled"),
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn rpyc_objects_index_iterate_and_compare_as_in_python() {
    let server = support::rpyc_server::PythonServer::classic();
    let source = "\
root.execute(\"x = {'a': [1, 2, 3]}\")
ns = root.namespace
print(ns['x']['a'][1], len(ns['x']['a']), 'a' in ns['x'], [v * 2 for v in ns['x']['a']])
print(root.eval(\"b'hi'\").decode(), repr(ns['x']))
";
    let (child, _file) = spawn_with(source, &[&server.addr(), "--rpyc"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "2 3 True [2, 4, 6]\nhi {'a': [1, 2, 3]}\n");
}

#[test]
fn a_remote_object_the_file_lets_go_of_is_released_on_the_server() {
    let server = lab_server();
    let (events, seen) = mpsc::channel();
    *server.lab.events.lock().unwrap() = Some(events);
    // The file holds `t`, drops it, then waits in `hold` until the test
    // kills it: both events arrive while it runs, so the release was not
    // the process ending.
    let (mut child, _file) = spawn(
        "t = root.make()\nprint(t.ping())\ndel t\nroot.hold()\n",
        Some(&server.addr),
    );
    let mut first = [
        seen.recv_timeout(EVENT).unwrap(),
        seen.recv_timeout(EVENT).unwrap(),
    ];
    first.sort();
    assert_eq!(
        first,
        ["dropped", "started"],
        "released before hold began or meanwhile"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn ctrl_c_interrupts_python_code_that_is_not_waiting() {
    use std::io::{BufRead, BufReader};
    let server = lab_server();
    let (mut child, _file) = spawn(
        "print('looping', flush=True)\nwhile True:\n    pass\n",
        Some(&server.addr),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "looping");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        stderr(&out).contains("KeyboardInterrupt"),
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn help_shows_a_methods_signature_and_an_objects_members() {
    let server = lab_server();
    let out = run(
        "help(root.divide)\nhelp(root)\nhelp(3)\n",
        Some(&server.addr),
    );
    assert_eq!(stderr(&out), "");
    let text = stdout(&out);
    assert!(
        text.starts_with("divide(a: float, b: float) -> float\n    Divide a by b.\n"),
        "{text}"
    );
    assert!(text.contains("Help on "), "{text}");
    assert!(text.contains("\nMethods:\n"), "{text}");
    assert!(text.contains("  map_to(n: int, callback: "), "{text}");
    assert!(
        text.ends_with("3 is a plain int value: data copied by value, with no remote members.\n"),
        "{text}"
    );
}

#[test]
fn a_method_of_a_temporary_object_keeps_it_alive() {
    let server = lab_server();
    // `root.make()` is referenced by nothing but its bound method.
    let out = run("print(root.make().ping())\n", Some(&server.addr));
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "1\n");
}
