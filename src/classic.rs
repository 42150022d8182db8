//! The classic service: this host's files, processes and environment for
//! a trusted peer, like RPyC's classic mode.
//!
//! [`Classic`] is an ordinary [`Object`]; serve it as the root of a
//! server and a peer can open files, list and change directories, run
//! programs and read the environment:
//!
//! | member | does |
//! |---|---|
//! | `open(path, mode='r') -> LocalFile` | open a file, with Python's modes (see [`LocalFile`]) |
//! | `listdir(path='.') -> list[str]` | the names in a directory, sorted |
//! | `stat(path) -> map` | `size`, `modified`, `accessed`, `is_file`, `is_dir`, `is_symlink`, `readonly`, `mode` |
//! | `mkdir(path, parents=False, exist_ok=False)` | create a directory |
//! | `remove(path)` | remove a file, a link or an empty directory |
//! | `rename(src, dst)` | rename or move, replacing a file at `dst` |
//! | `spawn(program, args=[], env=None, cwd=None) -> Process` | run a program, its stdio piped (see [`Process`](crate::Process)) |
//! | `getenv(name) -> str \| None` | one environment variable |
//! | `environ() -> map` | the whole environment |
//! | `hostinfo() -> map` | `hostname`, `os`, `family`, `arch`, `pid`, `cwd`, `user`, `version` |
//! | `cwd() -> str` | this process's current directory |
//!
//! Relative paths are relative to the serving process's current
//! directory. Errors carry Python's exception names and the path:
//! `FileNotFoundError: [Errno 2] No such file or directory: '/tmp/x'`,
//! `PermissionError`, `NotADirectoryError`, `FileExistsError`, `OSError`.
//!
//! # Security
//!
//! The classic service hands whoever connects the powers of the serving
//! process: reading and writing every file it may, running any program as
//! its user, reading its environment (where secrets often live). Treat a
//! connection to it as a login shell. Therefore:
//!
//! - **Off unless asked for.** Nothing in tether serves it by default; a
//!   program must name [`Classic`] as a root.
//! - **Loopback only by default.** [`Classic::bind`], [`Classic::spawn_server`]
//!   and [`serve_loopback`] refuse any address that is not loopback
//!   (`127.0.0.0/8`, `::1`, or a name resolving only to those) with an
//!   [`ErrorKind::Denied`] error, before binding anything. Serving it on
//!   other addresses takes an explicit [`Classic::allow_remote`]`(true)`;
//!   do that only on a network where every host that can reach the port is
//!   trusted. Unix sockets ([`Classic::bind_unix`]) are local and guarded
//!   by the socket file's permissions. (The check is in these helpers: a
//!   program passing `Classic` to its own [`Server`] decides for itself.)
//! - **Narrow it with the policy.** It is an ordinary object, so
//!   [`restrict`](crate::restrict) serves a subset of its members. A
//!   read-only view:
//!
//!   ```
//!   use tether::{classic::Classic, NetRef};
//!   let read_only = tether::restrict(
//!       &NetRef::new(Classic::new()),
//!       &["open", "listdir", "stat", "cwd"],
//!   ).unwrap();
//!   // Serve it: `server.serve_fn(move || read_only.clone(), shutdown)`.
//!   ```
//!
//!   Every other member is then denied (and hidden from `dir`/`inspect`)
//!   exactly as if it did not exist. Note that `open` still accepts write
//!   modes: for a truly read-only service, write an object of your own
//!   whose `open` calls [`LocalFile::open_binary`] or [`LocalFile::open`].
//! - What the peer opens or spawns is released with its connection: files
//!   are closed and processes killed when the last netref drops or the
//!   connection ends.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (addr, _server) = tether::classic::serve_loopback("127.0.0.1:0").await.unwrap();
//! let conn = tether::connect(addr).await.unwrap();
//! let host = conn.root().await.unwrap();
//! let info = host.call_method("hostinfo", ()).await.unwrap();
//! assert_eq!(info.get("pid"), Some(&tether::Value::from(std::process::id() as i64)));
//!
//! let refused = tether::classic::serve_loopback("0.0.0.0:0").await.unwrap_err();
//! assert_eq!(refused.kind(), tether::ErrorKind::Denied);
//! # });
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use tokio::net::ToSocketAddrs;
use tokio::task::JoinHandle;

use crate::__private::ArgReader;
use crate::error::raise;
use crate::service::builtin::{fs, process};
use crate::{
    Args, BoxFuture, CallContext, Error, ErrorKind, LocalFile, Member, NetRef, Object, Result,
    Server, ServerBuilder, Value,
};

const MEMBERS: &[Member] = &[
    Member::method(
        "open",
        "(path: str, mode: str = 'r') -> LocalFile",
        "Open a file of this host, as Python's open(path, mode): 'r', 'w', 'a', 'x', with 'b' \
         for bytes and '+' for reading and writing.",
    ),
    Member::method(
        "listdir",
        "(path: str = '.') -> list[str]",
        "The names of the entries of a directory, sorted.",
    ),
    Member::method(
        "stat",
        "(path: str) -> map",
        "Metadata, following links: size, modified and accessed (Unix seconds), is_file, \
         is_dir, is_symlink, readonly and mode (st_mode bits).",
    ),
    Member::method(
        "mkdir",
        "(path: str, parents: bool = False, exist_ok: bool = False) -> None",
        "Create a directory; with parents, its missing parents too; with exist_ok, an \
         existing directory is fine.",
    ),
    Member::method(
        "remove",
        "(path: str) -> None",
        "Remove a file, a symbolic link or an empty directory.",
    ),
    Member::method(
        "rename",
        "(src: str, dst: str) -> None",
        "Rename or move src to dst, replacing a file at dst.",
    ),
    Member::method(
        "spawn",
        "(program: str, args: list[str] = [], env: map = None, cwd: str = None) -> Process",
        "Run a program with its stdin, stdout and stderr piped. env, if given, replaces the \
         environment (as Popen's env does); cwd sets the working directory. The process is \
         killed when its last netref drops or the connection ends.",
    ),
    Member::method(
        "getenv",
        "(name: str) -> str | None",
        "An environment variable of the serving process; None when unset.",
    ),
    Member::method(
        "environ",
        "() -> map",
        "Every environment variable of the serving process.",
    ),
    Member::method(
        "hostinfo",
        "() -> map",
        "hostname, os, family, arch, pid, cwd, user and version (of tether) of the serving \
         process.",
    ),
    Member::method(
        "cwd",
        "() -> str",
        "The serving process's current directory.",
    ),
];

/// The classic service: this host's filesystem, processes, environment
/// and host information for a trusted peer. See the [module
/// docs](crate::classic), and their Security section before serving it.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tether::{classic::Classic, NetRef, Value};
/// let host = NetRef::new(Classic::new());
/// let cwd = host.call_method("cwd", ()).await.unwrap();
/// assert_eq!(cwd, Value::from(std::env::current_dir().unwrap().to_string_lossy().as_ref()));
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Classic {
    allow_remote: bool,
}

impl Classic {
    /// The classic service, for loopback addresses only.
    pub fn new() -> Classic {
        Classic::default()
    }

    /// Allow [`bind`](Classic::bind) and [`spawn_server`](Classic::spawn_server)
    /// to listen on addresses other than loopback (default: refused). Only
    /// on a network where everyone who can reach the port is trusted with
    /// this host.
    pub fn allow_remote(mut self, allow: bool) -> Classic {
        self.allow_remote = allow;
        self
    }

    /// Whether non-loopback addresses are allowed.
    pub fn remote_allowed(&self) -> bool {
        self.allow_remote
    }

    /// `Ok` if this service may listen on `addr`: a loopback address, or
    /// any address after [`allow_remote`](Classic::allow_remote)`(true)`.
    /// Otherwise an [`ErrorKind::Denied`] error saying why and how to opt
    /// in.
    pub fn check_address(&self, addr: SocketAddr) -> Result<()> {
        if self.allow_remote || is_loopback(addr.ip()) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Denied,
            format!(
                "refusing to serve the classic service on {addr}: not a loopback address. \
                 The classic service gives every peer this host's files, processes and \
                 environment, so it listens on loopback (127.0.0.1, ::1, localhost) only, unless \
                 you opt in with Classic::new().allow_remote(true) on a trusted network"
            ),
        ))
    }

    /// Listen on `addr` (TCP) with default settings, after checking every
    /// address it resolves to with [`check_address`](Classic::check_address).
    /// Serve with `server.serve(classic)`.
    pub async fn bind(&self, addr: impl ToSocketAddrs) -> Result<Server> {
        self.bind_with(Server::builder(), addr).await
    }

    /// As [`bind`](Classic::bind), with settings (limits, deadlines).
    pub async fn bind_with(
        &self,
        builder: ServerBuilder,
        addr: impl ToSocketAddrs,
    ) -> Result<Server> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| {
                Error::with_source(ErrorKind::Transport, format!("cannot resolve: {e}"), e)
            })?
            .collect();
        if addrs.is_empty() {
            return Err(Error::new(
                ErrorKind::Transport,
                "cannot bind: the address resolved to nothing",
            ));
        }
        for addr in &addrs {
            self.check_address(*addr)?;
        }
        builder.bind(&addrs[..]).await
    }

    /// Listen on a Unix socket at `path` (which must not exist yet). Unix
    /// sockets are local; the socket file's permissions decide who may
    /// connect.
    #[cfg(unix)]
    pub async fn bind_unix(&self, path: impl AsRef<std::path::Path>) -> Result<Server> {
        Server::bind_unix(path).await
    }

    /// Bind `addr` (checked as [`bind`](Classic::bind) does) and serve this
    /// service on it in a background task: the address bound and the task
    /// (abort it to stop serving).
    pub async fn spawn_server(
        self,
        addr: impl ToSocketAddrs,
    ) -> Result<(SocketAddr, JoinHandle<Result<()>>)> {
        let server = self.bind(addr).await?;
        let bound = server.local_addr()?;
        Ok((bound, tokio::spawn(server.serve(self))))
    }
}

/// Serve the classic service on a loopback address in a background task;
/// any other address is refused with an [`ErrorKind::Denied`] error (see
/// [`Classic::allow_remote`] to opt in). Returns the address bound (useful
/// with port 0) and the serving task.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (addr, task) = tether::classic::serve_loopback("localhost:0").await.unwrap();
/// assert!(addr.ip().is_loopback());
/// task.abort();
/// # });
/// ```
pub async fn serve_loopback(
    addr: impl ToSocketAddrs,
) -> Result<(SocketAddr, JoinHandle<Result<()>>)> {
    Classic::new().spawn_server(addr).await
}

/// Loopback, counting IPv4 loopback addresses mapped into IPv6.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The environment, as a map of strings (bytes that are not UTF-8 shown
/// as U+FFFD).
fn environ() -> Value {
    let vars: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    Value::from(vars)
}

fn getenv(name: &str) -> Option<String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| getenv("HOSTNAME"))
        .or_else(|| getenv("COMPUTERNAME"))
}

fn hostinfo() -> Value {
    let user = getenv("USER")
        .or_else(|| getenv("USERNAME"))
        .or_else(|| getenv("LOGNAME"));
    Value::map([
        ("hostname", Value::from(hostname())),
        ("os", Value::from(std::env::consts::OS)),
        ("family", Value::from(std::env::consts::FAMILY)),
        ("arch", Value::from(std::env::consts::ARCH)),
        ("pid", Value::from(i64::from(std::process::id()))),
        ("cwd", Value::from(fs::cwd().ok())),
        ("user", Value::from(user)),
        ("version", Value::from(env!("CARGO_PKG_VERSION"))),
    ])
}

impl Object for Classic {
    fn type_name(&self) -> &str {
        "Classic"
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
            let mut a = ArgReader::new(args);
            match name {
                "open" => {
                    let path: String = a.one("path", false)?;
                    let mode: Option<String> = a.one("mode", true)?;
                    a.finish()?;
                    let file = LocalFile::open_with(path, mode.as_deref().unwrap_or("r")).await?;
                    Ok(Value::from(NetRef::new(file)))
                }
                "listdir" => {
                    let path: Option<String> = a.one("path", true)?;
                    a.finish()?;
                    fs::listdir(path.unwrap_or_else(|| ".".into())).await
                }
                "stat" => {
                    let path: String = a.one("path", false)?;
                    a.finish()?;
                    fs::stat(path).await
                }
                "mkdir" => {
                    let path: String = a.one("path", false)?;
                    let parents: Option<bool> = a.one("parents", true)?;
                    let exist_ok: Option<bool> = a.one("exist_ok", true)?;
                    a.finish()?;
                    fs::mkdir(path, parents.unwrap_or(false), exist_ok.unwrap_or(false)).await
                }
                "remove" => {
                    let path: String = a.one("path", false)?;
                    a.finish()?;
                    fs::remove(path).await
                }
                "rename" => {
                    let src: String = a.one("src", false)?;
                    let dst: String = a.one("dst", false)?;
                    a.finish()?;
                    fs::rename(src, dst).await
                }
                "spawn" => {
                    let program: String = a.one("program", false)?;
                    let args: Option<Vec<String>> = a.one("args", true)?;
                    let env: Option<BTreeMap<String, String>> = a.one("env", true)?;
                    let cwd: Option<String> = a.one("cwd", true)?;
                    a.finish()?;
                    let child = process::spawn_with(
                        &program,
                        &args.unwrap_or_default(),
                        env.as_ref(),
                        cwd.as_deref(),
                    )?;
                    Ok(Value::from(NetRef::new(child)))
                }
                "getenv" => {
                    let name: String = a.one("name", false)?;
                    a.finish()?;
                    Ok(Value::from(getenv(&name)))
                }
                "environ" => {
                    a.finish()?;
                    Ok(environ())
                }
                "hostinfo" => {
                    a.finish()?;
                    Ok(hostinfo())
                }
                "cwd" => {
                    a.finish()?;
                    fs::cwd().map(Value::from)
                }
                other => Err(raise::no_member(self.type_name(), other)),
            }
        })
    }

    fn repr(&self) -> String {
        format!(
            "<Classic service of {} (pid {})>",
            Value::from(hostname().unwrap_or_else(|| "this host".into())),
            std::process::id()
        )
    }
}
