//! A child process served by reference: [`Process`], like Python's
//! `subprocess.Popen`.

use std::ffi::OsStr;
use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

use super::fs::os_error;
use super::stream::Stream;
use crate::__private::ArgReader;
use crate::error::raise;
use crate::service::object::{BoxFuture, CallContext, Member, Object};
use crate::{Args, Error, NetRef, Result, Value};

/// Held while a child is spawned. The child's ends of its pipes are open
/// in this process from their creation until the spawn returns, and a
/// child forked meanwhile (on another thread) inherits them and keeps them
/// until it executes its program (they are close-on-exec), which under
/// load can outlast the first child: a write to the first child's stdin
/// after it ended then succeeds instead of failing with a broken pipe.
/// Spawning one at a time closes that window, as Go's `syscall.ForkLock`
/// does.
static SPAWNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

const MEMBERS: &[Member] = &[
    Member::method(
        "wait",
        "(timeout: float = None) -> int | None",
        "Wait for the process to end and return its exit code; None when a signal killed it \
         (see the signal attribute). With a timeout (seconds), fails with TimeoutExpired if \
         it is still running then.",
    ),
    Member::method(
        "poll",
        "() -> int | None",
        "The exit code if the process has ended, else None (without waiting).",
    ),
    Member::method(
        "kill",
        "() -> None",
        "Kill the process (SIGKILL on Unix). Does nothing if it has already ended; use wait() \
         to see it go.",
    ),
    Member::attribute("pid", "int", "The process id."),
    Member::attribute(
        "returncode",
        "int | None",
        "The exit code; None while the process runs, and when a signal killed it.",
    ),
    Member::attribute(
        "signal",
        "int | None",
        "The number of the signal that killed the process; None while it runs or when it exited.",
    ),
    Member::attribute("running", "bool", "True until the process has ended."),
    Member::attribute("args", "list[str]", "The program and its arguments."),
    Member::attribute(
        "stdin",
        "Stream | None",
        "The child's standard input, a writable stream; None when not piped. Close it to \
         send the end of input.",
    ),
    Member::attribute(
        "stdout",
        "Stream | None",
        "The child's standard output, a readable stream; None when not piped.",
    ),
    Member::attribute(
        "stderr",
        "Stream | None",
        "The child's standard error, a readable stream; None when not piped.",
    ),
];

/// How the child ended, once it has: its status, or why waiting failed.
type Outcome = Option<std::result::Result<ExitStatus, String>>;

/// A child process of ours that a peer can watch and steer through a
/// netref, like Python's `subprocess.Popen`.
///
/// Members: `wait(timeout=None) -> int | None`, `poll()`, `kill()`, and
/// the attributes `pid`, `returncode`, `signal`, `running`, `args`,
/// `stdin`, `stdout` and `stderr`. The three streams are [`Stream`]s
/// served by reference (the same netref each time; `None` when that stream
/// was not piped), so the peer reads the child's output with `read`,
/// `readline` or iteration, writes its input with `write` and ends it with
/// `close`, or wraps them in [`RemoteFile`](crate::RemoteFile) for
/// `tokio::io::copy`.
///
/// # Exit status
///
/// `wait()` returns the exit code, or `None` when a signal killed the
/// process; `signal` then holds the signal's number (9 after `kill()`).
/// `returncode` and `poll()` give the exit code without waiting (`None`
/// while it runs); `running` tells the two `None`s apart.
///
/// # Lifetime
///
/// The process is killed (and reaped, so no zombie is left) when the
/// `Process` is dropped: when its last reference goes, which for a peer
/// means its last netref is released or its connection ends. A process
/// that should outlive its handle is not what this type is for. The
/// [close operation](crate::NetRef::close) kills it too. Streams the peer
/// still holds stay open; they reach their end once the child is gone.
///
/// A background task owns the child and reaps it, so `kill()` and
/// `returncode` never wait behind a pending `wait()`.
///
/// # Errors
///
/// Spawning fails with Python's exception names, naming the program (or
/// the working directory, if that is what is missing):
/// `FileNotFoundError: [Errno 2] No such file or directory: 'nosuchprog'`,
/// `PermissionError` for a file that is not executable. `wait(timeout)`
/// fails with `TimeoutExpired`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tether::{NetRef, Process, Value};
///
/// // In a real program the netref is handed to a peer.
/// let child = NetRef::new(Process::spawn("sh", ["-c", "echo hi; exit 3"]).unwrap());
/// let stdout = NetRef::try_from(child.getattr("stdout").await.unwrap()).unwrap();
/// assert_eq!(stdout.call_method("read", ()).await.unwrap(), Value::from(&b"hi\n"[..]));
/// assert_eq!(child.call_method("wait", ()).await.unwrap(), Value::from(3));
/// # });
/// ```
pub struct Process {
    pid: Option<u32>,
    args: Vec<String>,
    stdin: Option<NetRef>,
    stdout: Option<NetRef>,
    stderr: Option<NetRef>,
    /// Asks the supervising task to kill the child; dropped with us, which
    /// kills it too.
    kill: mpsc::UnboundedSender<()>,
    outcome: watch::Receiver<Outcome>,
}

impl Process {
    /// Spawn `program` with `args`, its stdin, stdout and stderr piped,
    /// in this process's environment and directory. Must be called within a
    /// tokio runtime.
    ///
    /// For an environment, a directory or other stdio, configure a
    /// [`tokio::process::Command`] and use [`Process::from_command`].
    pub fn spawn<I, S>(program: impl AsRef<OsStr>, args: I) -> Result<Process>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Process::from_command(command)
    }

    /// Spawn a configured command. Its streams that are piped become the
    /// `stdin`, `stdout` and `stderr` streams; the others are `None`.
    /// `kill_on_drop` is set, whatever the command said. Must be called
    /// within a tokio runtime.
    ///
    /// Spawns through `Process` take turns, so a child never holds another
    /// child's pipes: once a child has ended, writing to its stdin fails
    /// with `BrokenPipeError`, and closing its stdin is the end of its
    /// input. A fork by other code in the process can still hold them
    /// briefly, until it executes its program.
    pub fn from_command(mut command: Command) -> Result<Process> {
        command.kill_on_drop(true);
        let std = command.as_std();
        let mut args = vec![std.get_program().to_string_lossy().into_owned()];
        args.extend(std.get_args().map(|a| a.to_string_lossy().into_owned()));
        let cwd = std.get_current_dir().map(|d| d.to_path_buf());
        let spawned = {
            let _turn = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
            command.spawn()
        };
        let mut child = spawned.map_err(|e| {
            match &cwd {
                // The OS reports a missing directory as a missing program.
                Some(dir) if !dir.is_dir() => {
                    os_error(std::fs::metadata(dir).err().unwrap_or(e), dir)
                }
                _ => os_error(e, &args[0]),
            }
        })?;
        let pid = child.id();
        let label = |what: &str| match pid {
            Some(pid) => format!("{what} of {} (pid {pid})", args[0]),
            None => format!("{what} of {}", args[0]),
        };
        let stdin = child
            .stdin
            .take()
            .map(|s| NetRef::new(Stream::writer(s).with_name(label("stdin"))));
        let stdout = child
            .stdout
            .take()
            .map(|s| NetRef::new(Stream::reader(s).with_name(label("stdout"))));
        let stderr = child
            .stderr
            .take()
            .map(|s| NetRef::new(Stream::reader(s).with_name(label("stderr"))));
        let (kill, kill_rx) = mpsc::unbounded_channel();
        let (outcome_tx, outcome) = watch::channel(None);
        tokio::spawn(supervise(child, kill_rx, outcome_tx));
        Ok(Process {
            pid,
            args,
            stdin,
            stdout,
            stderr,
            kill,
            outcome,
        })
    }

    /// The process id (`None` only if it was reaped before we asked).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The child's stdin as a [`Stream`] netref, if piped.
    pub fn stdin(&self) -> Option<&NetRef> {
        self.stdin.as_ref()
    }

    /// The child's stdout as a [`Stream`] netref, if piped.
    pub fn stdout(&self) -> Option<&NetRef> {
        self.stdout.as_ref()
    }

    /// The child's stderr as a [`Stream`] netref, if piped.
    pub fn stderr(&self) -> Option<&NetRef> {
        self.stderr.as_ref()
    }

    /// Kill the child (SIGKILL on Unix); nothing if it has ended.
    pub fn kill(&self) {
        let _ = self.kill.send(());
    }

    /// Wait until the child has ended; its status.
    pub async fn wait(&self) -> Result<ExitStatus> {
        let mut outcome = self.outcome.clone();
        let done = outcome
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::app("OSError", "the process supervisor stopped"))?;
        match done.as_ref() {
            Some(Ok(status)) => Ok(*status),
            Some(Err(why)) => Err(Error::app("OSError", why.clone())),
            None => unreachable!("waited for Some"),
        }
    }

    /// The status if the child has ended.
    pub fn try_status(&self) -> Option<ExitStatus> {
        self.outcome
            .borrow()
            .as_ref()
            .and_then(|r| r.as_ref().ok().copied())
    }

    fn args_value(&self) -> Value {
        self.args.iter().map(Value::from).collect()
    }

    fn returncode(&self) -> Value {
        Value::from(self.try_status().and_then(|s| s.code()))
    }

    fn wait_value(status: ExitStatus) -> Value {
        Value::from(status.code())
    }

    async fn wait_for(&self, timeout: Option<f64>) -> Result<Value> {
        let Some(seconds) = timeout else {
            return self.wait().await.map(Process::wait_value);
        };
        let limit = Duration::try_from_secs_f64(seconds.max(0.0))
            .map_err(|e| raise::bad_args(format!("argument 'timeout': {e}")))?;
        match tokio::time::timeout(limit, self.wait()).await {
            Ok(status) => status.map(Process::wait_value),
            Err(_) => Err(Error::app(
                "TimeoutExpired",
                format!(
                    "Command {} timed out after {seconds} seconds",
                    self.args_value()
                ),
            )),
        }
    }
}

/// Own the child: reap it when it ends, kill it when asked or when the
/// `Process` is dropped, and publish how it ended.
async fn supervise(
    mut child: Child,
    mut kill: mpsc::UnboundedReceiver<()>,
    outcome: watch::Sender<Outcome>,
) {
    let mut listening = true;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            asked = kill.recv(), if listening => {
                // `None`: the `Process` is gone; kill, then keep reaping.
                listening = asked.is_some();
                if let Err(err) = child.start_kill() {
                    tracing::debug!(%err, "kill after the child ended");
                }
            }
        }
    };
    let _ = outcome.send(Some(
        status.map_err(|e| format!("waiting for the process failed: {e}")),
    ));
}

/// The signal that ended the process, if one did.
#[cfg(unix)]
fn signal_of(status: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

#[cfg(not(unix))]
fn signal_of(_status: ExitStatus) -> Option<i32> {
    None
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("args", &self.args)
            .field("status", &self.try_status())
            .finish()
    }
}

impl Object for Process {
    fn type_name(&self) -> &str {
        "Process"
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
                "wait" => {
                    let mut a = ArgReader::new(args);
                    let timeout: Option<f64> = a.one("timeout", true)?;
                    a.finish()?;
                    self.wait_for(timeout).await
                }
                "poll" => {
                    args.parse::<()>()?;
                    Ok(self.returncode())
                }
                "kill" => {
                    args.parse::<()>()?;
                    self.kill();
                    Ok(Value::None)
                }
                other => Err(raise::no_member(self.type_name(), other)),
            }
        })
    }

    fn get_attr<'a>(&'a self, name: &'a str, _cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        let value = match name {
            "pid" => Ok(Value::from(self.pid.map(i64::from))),
            "returncode" => Ok(self.returncode()),
            "signal" => Ok(Value::from(
                self.try_status().and_then(signal_of).map(i64::from),
            )),
            "running" => Ok(Value::from(self.outcome.borrow().is_none())),
            "args" => Ok(self.args_value()),
            "stdin" => Ok(Value::from(self.stdin.clone())),
            "stdout" => Ok(Value::from(self.stdout.clone())),
            "stderr" => Ok(Value::from(self.stderr.clone())),
            other => Err(raise::no_member(self.type_name(), other)),
        };
        Box::pin(async move { value })
    }

    /// Kills the process.
    fn close<'a>(&'a self, _cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        self.kill();
        Box::pin(async { Ok(()) })
    }

    fn repr(&self) -> String {
        let state = match self.outcome.borrow().as_ref() {
            None => "running".to_string(),
            Some(Ok(status)) => match (status.code(), signal_of(*status)) {
                (Some(code), _) => format!("returncode={code}"),
                (None, Some(signal)) => format!("signal={signal}"),
                (None, None) => "ended".to_string(),
            },
            Some(Err(_)) => "unknown".to_string(),
        };
        let pid = self.pid.map_or("?".to_string(), |p| p.to_string());
        format!("<Process pid={pid} args={} {state}>", self.args_value())
    }
}

/// Spawn for the classic service: `program` with `args`, all three streams
/// piped; `env` replaces the environment (as Python's `Popen(env=..)`),
/// `cwd` sets the directory.
pub(crate) fn spawn_with(
    program: &str,
    args: &[String],
    env: Option<&std::collections::BTreeMap<String, String>>,
    cwd: Option<&str>,
) -> Result<Process> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(env) = env {
        command.env_clear().envs(env);
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    Process::from_command(command)
}
