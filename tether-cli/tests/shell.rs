//! `tether shell` as a person uses it: through a pseudo-terminal, typing
//! lines, pressing Tab, reading what appears on the screen.
//!
//! Most tests run the shell with no address, so it starts its embedded
//! demo server; the `rpyc_*` ones start real Python RPyC servers (rpyc
//! 6.0.2, from the test environment of `tests/support/python.rs`) and use
//! `tether shell --rpyc`. Every wait is bounded ([`TIMEOUT`]), so a broken
//! shell fails the test instead of hanging it.

#![cfg(unix)]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use expectrl::{Eof, Regex, Session, WaitStatus};

use support::rpyc_server::PythonServer;

const TIMEOUT: Duration = Duration::from_secs(20);
const PROMPT: &str = "tether> ";

/// `tether shell ARGS...`.
fn shell_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.arg("shell").args(args);
    cmd
}

/// A shell in a pseudo-terminal, with its own empty HOME.
struct Shell {
    p: Session,
    home: tempfile::TempDir,
}

impl Shell {
    /// `tether shell` on its embedded demo server.
    fn start() -> Shell {
        Shell::start_with(&[], "tether shell: connected to Demo at 127.0.0.1:")
    }

    /// The shell on its embedded demo server, and that server's address
    /// (from the banner), for a second client.
    fn start_embedded() -> (Shell, String) {
        let mut shell = Shell::spawn(&[]);
        shell.expect("tether shell: connected to Demo at ");
        let addr = shell.expect(" (an embedded demo server)");
        shell.expect(PROMPT);
        (shell, addr.trim().to_string())
    }

    /// `tether shell ARGS...`, once its banner (starting with `banner`)
    /// and first prompt are on the screen.
    fn start_with(args: &[&str], banner: &str) -> Shell {
        let mut shell = Shell::spawn(args);
        shell.expect(banner);
        shell.expect("help(root)");
        shell.expect(PROMPT);
        shell
    }

    /// `tether shell ARGS...` in a pseudo-terminal, with its own empty HOME.
    fn spawn(args: &[&str]) -> Shell {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = shell_command(args);
        cmd.env("HOME", home.path())
            .env("TERM", "xterm")
            .env_remove("NO_COLOR");
        let mut p = Session::spawn(cmd).expect("spawn the shell in a pty");
        p.set_expect_timeout(Some(TIMEOUT));
        Shell { p, home }
    }

    fn expect(&mut self, needle: &str) -> String {
        match self.p.expect(needle) {
            Ok(found) => String::from_utf8_lossy(found.before()).into_owned(),
            Err(e) => panic!("waiting for {needle:?}: {e}"),
        }
    }

    /// Wait for a line of output matching `pattern` (a regex matched
    /// against one whole line, so typed input echoed on the prompt's line
    /// does not count).
    fn expect_line(&mut self, pattern: &str) -> String {
        let re = format!(r"(?:^|\n){pattern}\r?\n");
        match self.p.expect(Regex(re.as_str())) {
            Ok(found) => String::from_utf8_lossy(found.get(0).unwrap()).into_owned(),
            Err(e) => panic!("waiting for a line matching {pattern:?}: {e}"),
        }
    }

    /// End a block (`def`, `for`) with an empty line, and wait for the
    /// next prompt: the line editor's new one (it turns bracketed paste
    /// back on first), not one of its redraws of the block, which start
    /// with the prompt too. A line typed before the new prompt would be
    /// read ahead with the block and lost.
    fn end_block(&mut self) {
        self.type_line("");
        self.expect("\x1b[?2004h");
        self.expect(PROMPT);
    }

    /// Type a line and press Enter.
    fn type_line(&mut self, line: &str) {
        self.p.send(line).unwrap();
        self.p.send("\r").unwrap();
    }

    /// Type `line`, expect a line of output matching `pattern`, then the
    /// next prompt.
    fn run(&mut self, line: &str, pattern: &str) -> String {
        self.type_line(line);
        let out = self.expect_line(pattern);
        self.expect(PROMPT);
        out
    }

    /// Leave with `exit`; the shell must end with status 0.
    fn exit(mut self) -> tempfile::TempDir {
        self.type_line("exit");
        self.p.expect(Eof).expect("the shell ends after exit");
        let status = self.p.get_process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "exit status: {status:?}"
        );
        self.home
    }
}

#[test]
fn a_call_with_literal_arguments_prints_its_result() {
    let mut sh = Shell::start();
    sh.run("root.add(1, 2)", "3");
    sh.run("root.greet('ann', greeting='hi')", "'hi, ann!'");
    sh.run(
        r#"root.echo({"a": [1, 2.5, None, True]})"#,
        r"\{'a': \[1, 2\.5, None, True\]\}",
    );
    sh.exit();
}

#[test]
fn variables_hold_remote_objects() {
    let mut sh = Shell::start();
    sh.type_line("c = root.counter(5)");
    sh.expect(PROMPT);
    sh.run("c", "<Counter value=5>");
    sh.run("c.increment()", "6");
    sh.run("c.increment(by=10)", "16");
    sh.run("c.value", "16");
    sh.run("_", "16");
    sh.run("list(root.squares(5))", r"\[0, 1, 4, 9, 16\]");
    sh.exit();
}

#[test]
fn the_embedded_demo_has_a_settable_label_and_a_notebook() {
    let mut sh = Shell::start();
    sh.type_line("root.label = 'mine'");
    sh.expect(PROMPT);
    sh.run("root.label", "'mine'");
    sh.run("root", r#"<Demo service "mine">"#);
    sh.run("root.notes.add('buy milk')", "1");
    sh.run("root.notes.list()", r"\['buy milk'\]");
    sh.run("root.sleeping", "0");
    sh.exit();
}

#[test]
fn help_shows_the_remote_docs() {
    let mut sh = Shell::start();
    sh.type_line("help(root)");
    sh.expect("Help on <Demo service \"demo\">:");
    sh.expect("add(*numbers: int) -> int");
    sh.expect_line(r"      Add any number of integers: add\(1, 2, 3\) is 6, add\(\) is 0\.");
    sh.expect_line(r"  count_to\(n: int, callback: callable\[int\]\) -> int");
    sh.expect(PROMPT);
    sh.type_line("help(root.greet)");
    sh.expect_line(r"greet\(name: str, greeting: str \| None = None\) -> str");
    sh.expect_line("    Greet name: .*");
    sh.expect(PROMPT);
    sh.exit();
}

#[test]
fn tab_completes_remote_member_names() {
    let mut sh = Shell::start();
    sh.p.send("root.ad").unwrap();
    sh.p.send("\t").unwrap();
    // The line on the screen now reads `root.add(`.
    sh.expect("tether> root.add(");
    sh.p.send("1, 2)").unwrap();
    sh.p.send("\r").unwrap();
    sh.expect_line("3");
    sh.expect(PROMPT);

    // Variables complete too, and so do the members of what they hold.
    sh.type_line("counter_one = root.counter()");
    sh.expect(PROMPT);
    sh.p.send("counter_o").unwrap();
    sh.p.send("\t").unwrap();
    sh.expect("counter_one");
    sh.p.send(".incr").unwrap();
    sh.p.send("\t").unwrap();
    sh.expect("counter_one.increment(");
    sh.p.send(")\r").unwrap();
    sh.expect_line("1");
    sh.expect(PROMPT);
    sh.exit();
}

#[test]
fn errors_are_shown_and_the_session_goes_on() {
    let mut sh = Shell::start();
    sh.type_line("root.nope()");
    sh.expect_line(r"tether::DeniedError: 'Demo' object has no exposed member 'nope'");
    sh.expect(PROMPT);
    sh.type_line("root.divide(1, 0)");
    sh.expect_line("ZeroDivisionError: division by zero");
    sh.expect(PROMPT);
    sh.type_line("trace");
    sh.expect_line(r"Remote trace \(outermost first\):");
    sh.expect_line(r"  in divide\(\) on a Demo object .*");
    sh.expect(PROMPT);
    sh.type_line("root.add(1,, 2)");
    sh.expect_line("SyntaxError: invalid syntax.*");
    sh.expect(PROMPT);
    sh.type_line("nothing_here");
    sh.expect_line("NameError: name 'nothing_here' is not defined.*");
    sh.expect(PROMPT);
    // Still connected.
    sh.run("root.add(2, 2)", "4");
    sh.exit();
}

#[test]
fn history_is_saved_in_home() {
    let mut sh = Shell::start();
    sh.run("root.add(40, 2)", "42");
    let home = sh.exit();
    let history = std::fs::read_to_string(home.path().join(".tether_history")).unwrap();
    assert!(history.contains("root.add(40, 2)"), "{history}");
}

#[test]
fn ctrl_d_leaves_with_status_zero() {
    let mut sh = Shell::start();
    sh.p.send("\x04").unwrap();
    sh.p.expect(Eof).expect("the shell ends on Ctrl-D");
    let status = sh.p.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status: {status:?}"
    );
}

#[test]
fn piped_input_runs_line_by_line() {
    let mut cmd = shell_command(&[]);
    let home = tempfile::tempdir().unwrap();
    let mut child = cmd
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"x = root.counter(1)\nx.increment()\nroot.nope\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.lines().any(|l| l.ends_with('2')), "{stdout}");
    assert!(stderr.contains("DeniedError"), "{stderr}");
}

/// A service of the test's own, served in-process.
#[derive(Clone)]
struct Greeter;

#[tether::expose(name = "Greeter")]
impl Greeter {
    /// Say hello to `name`.
    #[method]
    fn hello(&self, name: String) -> String {
        format!("hello {name}")
    }
}

#[test]
fn connects_to_a_server_at_an_address() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(tether::Server::bind("127.0.0.1:0")).unwrap();
    let addr = server.local_addr().unwrap().to_string();
    rt.spawn(server.serve(Greeter));

    let mut sh = Shell::start_with(
        &[&addr],
        &format!("tether shell: connected to Greeter at {addr}."),
    );
    sh.run("root.hello('bob')", "'hello bob'");
    sh.type_line("help(root.hello)");
    sh.expect_line(r"hello\(name: str\) -> str");
    sh.expect_line("    Say hello to `name`.");
    sh.expect(PROMPT);

    // The server goes away: the next call fails, and the shell says so and
    // ends with a failure status.
    rt.shutdown_timeout(Duration::from_secs(5));
    sh.type_line("root.hello('again')");
    sh.expect("closed");
    sh.p.expect(Eof)
        .expect("the shell ends once the connection is gone");
    let status = sh.p.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, code) if code != 0),
        "exit status: {status:?}"
    );
}

#[test]
fn connects_to_a_service_found_on_nats_directly_or_through_the_broker() {
    let nats = support::nats::NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registration = tether::nats::Registration::new(nats.url(), "greeter");
    let server = rt
        .block_on(
            tether::Server::builder()
                .nats(registration)
                .bind("127.0.0.1:0"),
        )
        .unwrap();
    rt.spawn(server.serve(Greeter));
    let address = format!("{}/greeter", nats.url());
    for route in [None, Some("--via-broker")] {
        let args: Vec<&str> = route.into_iter().chain([address.as_str()]).collect();
        let mut sh = Shell::start_with(
            &args,
            &format!("tether shell: connected to Greeter at {address}."),
        );
        sh.run("root.hello('bob')", "'hello bob'");
        sh.run("[root.hello(n) for n in 'ab']", r"\['hello a', 'hello b'\]");
        sh.exit();
    }
}

#[test]
fn rpyc_shell_on_rpyc_classic_evaluates_imports_and_shows_exceptions() {
    let server = PythonServer::classic();
    let addr = server.addr();
    let mut sh = Shell::start_with(
        &["--rpyc", &addr],
        &format!("tether shell: connected to the Python RPyC service SLAVE at {addr}."),
    );
    sh.run(r#"root.eval("6*7")"#, "42");
    sh.type_line("root.execute('x = [1, 2, 3]')");
    sh.expect(PROMPT);
    sh.run("root.eval('sum(x)')", "6");
    // Python's conn.modules: modules.NAME imports NAME on the server.
    sh.run("modules.os.getpid()", &server.child.id().to_string());
    sh.run("modules.sys.version_info.major", "3");
    sh.run("modules.os.path.join('a', 'b')", "'a/b'");
    sh.run("root.getmodule('os').sep", "'/'");
    // Tab completes the methods of a Python object, and follows attribute
    // chains (a module's functions are attributes to RPyC's INSPECT, so
    // no bracket is added).
    sh.p.send("root.getmod").unwrap();
    sh.p.send("\t").unwrap();
    sh.expect("root.getmodule(");
    sh.p.send("'os').name\r").unwrap();
    sh.expect_line("'posix'");
    sh.expect(PROMPT);
    sh.p.send("modules.os.path.joi").unwrap();
    sh.p.send("\t").unwrap();
    sh.expect("modules.os.path.join");
    sh.p.send("('c', 'd')\r").unwrap();
    sh.expect_line("'c/d'");
    sh.expect(PROMPT);
    // help shows a Python function's docstring.
    sh.type_line("help(modules.os.path.join)");
    sh.expect_line("Help on <function join at .*>:");
    sh.expect_line("    Join two or more pathname components.*");
    sh.expect(PROMPT);

    // A Python exception: its type and message, then its traceback.
    sh.run("root.eval('1/0')", "ZeroDivisionError: division by zero");
    sh.type_line("trace");
    sh.expect_line(".*ZeroDivisionError.*");
    sh.expect(PROMPT);
    sh.run("root.nope", "AttributeError: .*nope.*");
    // Still connected.
    sh.run("root.eval('2**10')", "1024");
    sh.exit();
}

#[test]
fn rpyc_shell_on_a_python_service_calls_with_keywords_and_shows_help() {
    let server = PythonServer::service();
    let addr = server.addr();
    let mut sh = Shell::start_with(
        &["--rpyc", &addr],
        &format!("tether shell: connected to the Python RPyC service LAB at {addr}."),
    );
    sh.run("root.add(40, 2)", "42");
    sh.run("root.greet('tether', punctuation='?')", r"'hello tether\?'");
    sh.run("root.version", "'1.0'");
    sh.run("list(root.numbers(4))", r"\[0, 1, 2, 3\]");
    sh.type_line("help(root)");
    sh.expect("Help on ");
    sh.expect_line("  greet.*");
    sh.expect(PROMPT);
    sh.p.send("root.gre").unwrap();
    sh.p.send("\t").unwrap();
    sh.expect("root.greet(");
    sh.p.send("'ann')\r").unwrap();
    sh.expect_line("'hello ann!'");
    sh.expect(PROMPT);

    sh.run("root.fail()", "ValueError: python says no");
    sh.type_line("trace");
    sh.expect_line(r".*raise ValueError\(.python says no.\)");
    sh.expect(PROMPT);
    sh.exit();
}

#[test]
fn rpyc_shell_refuses_tokens_and_unix_sockets() {
    for (args, says) in [
        (&["--rpyc", "unix:/tmp/nothing.sock"][..], "over TCP"),
        (
            &["--rpyc", "127.0.0.1:1", "--token", "a-secret-0123456789"][..],
            "cannot check a token",
        ),
    ] {
        let out = shell_command(args)
            .env_remove("TETHER_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn rpyc_shell_ends_when_the_python_server_goes_away() {
    let mut server = PythonServer::classic();
    let addr = server.addr();
    let mut sh = Shell::start_with(&["--rpyc", &addr], "tether shell: connected to ");
    sh.run("root.eval('1+2')", "3");

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    sh.type_line("root.eval('1+2')");
    sh.expect("closed");
    sh.p.expect(Eof)
        .expect("the shell ends once the connection is gone");
    let status = sh.p.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, code) if code != 0),
        "exit status: {status:?}"
    );
}

#[test]
fn rpyc_shell_says_when_nothing_listens() {
    // A port that was free a moment ago: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = shell_command(&["--rpyc", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn the_prompt_speaks_python_with_callbacks_and_ctrl_c_cancels_a_call() {
    let (mut sh, addr) = Shell::start_embedded();
    // The issue's transcript, line by line.
    sh.run("root.add(1, 2)", "3");
    sh.type_line("root.count_to(3, lambda i: print(i * 10))");
    sh.expect_line("10");
    sh.expect_line("20");
    sh.expect_line("30");
    sh.expect_line("3");
    sh.expect(PROMPT);
    sh.type_line("total = sum([x for x in root.squares(4)])");
    sh.expect(PROMPT);
    sh.run("total", "14");
    // A callback that calls the server again, and a def with a loop.
    sh.run("root.count_to(2, lambda i: root.add(i, 100))", "2");
    sh.type_line("def tens(i):");
    sh.type_line("    for k in range(i):");
    sh.type_line("        print('x' * (k + 1))");
    sh.end_block();
    sh.type_line("root.count_to(2, tens)");
    sh.expect_line("x");
    sh.expect_line("x");
    sh.expect_line("xx");
    sh.expect_line("2");
    sh.expect(PROMPT);

    // Ctrl-C during a call: the shell says `cancelled`, the sleep stops
    // on the server (its `sleeping` count, read over a second
    // connection, goes back to 0) and the variables are still there.
    let watcher = tether::blocking::connect(addr.as_str()).unwrap();
    let demo = watcher.root().unwrap();
    let sleeping = || -> i64 { demo.getattr("sleeping").unwrap().try_into().unwrap() };
    sh.type_line("root.sleep(30)");
    let mut polls = 0;
    while sleeping() == 0 {
        polls += 1;
        assert!(polls < 100_000, "the sleep never started");
    }
    sh.p.send("\x03").unwrap();
    sh.expect_line("cancelled");
    sh.expect(PROMPT);
    while sleeping() != 0 {
        polls += 1;
        assert!(
            polls < 200_000,
            "the sleep was never cancelled on the server"
        );
    }
    sh.run("total", "14");
}

#[test]
fn ctrl_c_at_the_prompt_once_is_noted_and_twice_leaves() {
    let mut sh = Shell::start();
    sh.type_line("kept = 7");
    sh.expect(PROMPT);
    sh.p.send("\x03").unwrap();
    sh.expect("KeyboardInterrupt");
    sh.expect(PROMPT);
    // Anything typed in between starts the count again.
    sh.run("kept", "7");
    sh.p.send("\x03").unwrap();
    sh.expect(PROMPT);
    sh.p.send("\x03").unwrap();
    sh.p.expect(Eof).expect("the shell ends on a second Ctrl-C");
    let status = sh.p.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status: {status:?}"
    );
}
