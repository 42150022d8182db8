//! A blocking facade over the async API, for scripts, tests and shells.
//!
//! Each [`Connection`] owns a small tokio runtime (one worker thread) that
//! keeps the connection's reader and writer running between calls, so
//! callbacks passed to the peer are served promptly even while the calling
//! thread is doing something else. Every method blocks the calling thread
//! until the remote operation completes. Do not call these from inside an
//! async runtime: use the async API there.
//!
//! ```
//! # struct Calc;
//! # #[tether::expose] impl Calc { #[method] fn add(&self, a: i64, b: i64) -> i64 { a + b } }
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! # let server = rt.block_on(tether::Server::bind("127.0.0.1:0")).unwrap();
//! # let addr = server.local_addr().unwrap();
//! # #[derive(Clone)] struct Svc;
//! # #[tether::expose] impl Svc { #[method] fn add(&self, a: i64, b: i64) -> i64 { a + b } }
//! # rt.spawn(server.serve(Svc));
//! let conn = tether::blocking::connect(addr).unwrap();
//! let root = conn.root().unwrap();
//! let sum: i64 = root.call_method("add", (1, 2)).unwrap().try_into().unwrap();
//! assert_eq!(sum, 3);
//! ```
//!
//! [`connect_rpyc`] opens a [`RpycSession`] on a Python RPyC server (a
//! `rpyc.Service`, or the stock `rpyc_classic`) the same way; its root is
//! an ordinary blocking [`NetRef`]:
//!
//! ```no_run
//! let session = tether::blocking::connect_rpyc("127.0.0.1:18812").unwrap(); // rpyc_classic
//! let root = session.root().unwrap();
//! assert_eq!(root.call_method("eval", ("6 * 7",)).unwrap(), tether::Value::from(42));
//! ```

use std::fmt;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::{Error, ErrorKind, IntoArgs, Member, Result, Stats, Value};

/// Connect over TCP with default settings; see [`crate::connect`].
pub fn connect(addr: impl ToSocketAddrs) -> Result<Connection> {
    connect_with(crate::Builder::default(), addr)
}

/// Connect over TCP with the given settings and root object.
pub fn connect_with(builder: crate::Builder, addr: impl ToSocketAddrs) -> Result<Connection> {
    let addrs = resolve(addr)?;
    let rt = runtime()?;
    let inner = rt.block_on(builder.connect(&addrs[..]))?;
    Ok(Connection { rt, inner })
}

/// Connect to an instance of a service found on NATS (see
/// [`crate::nats::Connector`]).
#[cfg(feature = "nats")]
pub fn connect_nats(connector: crate::nats::Connector) -> Result<Connection> {
    let rt = runtime()?;
    let inner = rt.block_on(connector.connect())?;
    Ok(Connection { rt, inner })
}

/// Connect over a Unix socket with default settings.
#[cfg(unix)]
pub fn connect_unix(path: impl AsRef<std::path::Path>) -> Result<Connection> {
    connect_unix_with(crate::Builder::default(), path)
}

/// Connect over a Unix socket with the given settings (credentials, root
/// object).
#[cfg(unix)]
pub fn connect_unix_with(
    builder: crate::Builder,
    path: impl AsRef<std::path::Path>,
) -> Result<Connection> {
    let rt = runtime()?;
    let inner = rt.block_on(builder.connect_unix(path))?;
    Ok(Connection { rt, inner })
}

/// Connect over TCP to a Python RPyC server; see [`crate::rpyc::connect`].
pub fn connect_rpyc(addr: impl ToSocketAddrs) -> Result<RpycSession> {
    connect_rpyc_with(crate::Builder::default(), addr)
}

/// Connect to a Python RPyC server with the given settings, root object
/// and TLS; see [`crate::rpyc::connect_with`].
pub fn connect_rpyc_with(builder: crate::Builder, addr: impl ToSocketAddrs) -> Result<RpycSession> {
    let addrs = resolve(addr)?;
    let rt = runtime()?;
    let inner = rt.block_on(crate::rpyc::connect_with(builder, &addrs[..]))?;
    Ok(RpycSession { inner, rt })
}

fn resolve(addr: impl ToSocketAddrs) -> Result<Vec<std::net::SocketAddr>> {
    Ok(addr
        .to_socket_addrs()
        .map_err(|e| Error::with_source(ErrorKind::Transport, format!("bad address: {e}"), e))?
        .collect())
}

/// The runtime a blocking connection owns: one worker keeps its tasks
/// running between calls.
fn runtime() -> Result<Arc<Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tether-blocking")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| Error::with_source(ErrorKind::Transport, "cannot start a runtime", e))
}

/// A connection driven by its own runtime; see [`crate::Connection`].
#[derive(Clone)]
pub struct Connection {
    rt: Arc<Runtime>,
    inner: crate::Connection,
}

impl Connection {
    /// The peer's root object.
    pub fn root(&self) -> Result<NetRef> {
        let root = self.rt.block_on(self.inner.root())?;
        Ok(self.wrap(root))
    }

    /// Use an async reference (from a returned [`Value`]) blockingly.
    pub fn wrap(&self, netref: crate::NetRef) -> NetRef {
        NetRef {
            rt: self.rt.clone(),
            inner: netref,
        }
    }

    /// The reference in `value`, for blocking use.
    pub fn wrap_value(&self, value: Value) -> Result<NetRef> {
        crate::NetRef::try_from(value).map(|r| self.wrap(r))
    }

    /// One round trip.
    pub fn ping(&self) -> Result<Duration> {
        self.rt.block_on(self.inner.ping())
    }

    /// Object and call counts.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Close the connection.
    pub fn close(&self) {
        self.rt.block_on(self.inner.close())
    }

    /// The async connection underneath.
    pub fn as_async(&self) -> &crate::Connection {
        &self.inner
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::Connection")
            .field(&self.inner)
            .finish()
    }
}

/// A connection to a Python RPyC server driven by its own runtime; see
/// [`crate::rpyc::Session`].
///
/// The connection closes once every handle to it (this one, its clones and
/// every [`NetRef`] to the peer's objects) is dropped, or at
/// [`close`](RpycSession::close).
#[derive(Clone)]
pub struct RpycSession {
    // Declared before the runtime, so it is dropped (and says goodbye)
    // while the runtime still runs.
    inner: crate::rpyc::Session,
    rt: Arc<Runtime>,
}

impl RpycSession {
    /// The server's root object (its service).
    pub fn root(&self) -> Result<NetRef> {
        let root = self.rt.block_on(self.inner.root())?;
        Ok(self.wrap(root))
    }

    /// Use an async reference (from a returned [`Value`]) blockingly.
    pub fn wrap(&self, netref: crate::NetRef) -> NetRef {
        NetRef {
            rt: self.rt.clone(),
            inner: netref,
        }
    }

    /// Object and call counts.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Close the connection (telling the server with RPyC's CLOSE).
    pub fn close(&self) {
        self.rt.block_on(self.inner.close())
    }

    /// The async session underneath.
    pub fn as_async(&self) -> &crate::rpyc::Session {
        &self.inner
    }
}

impl fmt::Debug for RpycSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::RpycSession")
            .field(&self.inner)
            .finish()
    }
}

/// A reference whose operations block; see [`crate::NetRef`].
#[derive(Clone)]
pub struct NetRef {
    rt: Arc<Runtime>,
    inner: crate::NetRef,
}

impl NetRef {
    /// Call the method `name`.
    pub fn call_method(&self, name: &str, args: impl IntoArgs) -> Result<Value> {
        self.rt.block_on(self.inner.call_method(name, args))
    }

    /// Call the object itself.
    pub fn call(&self, args: impl IntoArgs) -> Result<Value> {
        self.rt.block_on(self.inner.call(args))
    }

    /// Read an attribute.
    pub fn getattr(&self, name: &str) -> Result<Value> {
        self.rt.block_on(self.inner.getattr(name))
    }

    /// Assign a writable attribute.
    pub fn setattr(&self, name: &str, value: impl Into<Value>) -> Result<()> {
        self.rt.block_on(self.inner.setattr(name, value))
    }

    /// Delete a writable attribute.
    pub fn delattr(&self, name: &str) -> Result<()> {
        self.rt.block_on(self.inner.delattr(name))
    }

    /// The exposed member names.
    pub fn dir(&self) -> Result<Vec<String>> {
        self.rt.block_on(self.inner.dir())
    }

    /// The exposed members with signatures and docs.
    pub fn inspect(&self) -> Result<Vec<Member>> {
        self.rt.block_on(self.inner.inspect())
    }

    /// The owner's `repr`.
    pub fn repr(&self) -> Result<String> {
        self.rt.block_on(self.inner.repr())
    }

    /// The owner's `str`.
    pub fn str(&self) -> Result<String> {
        self.rt.block_on(self.inner.str())
    }

    /// The next item of an iterable object.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&self) -> Result<Option<Value>> {
        self.rt.block_on(self.inner.next())
    }

    /// Iterate with batched read-ahead, as an ordinary iterator.
    pub fn iter(&self) -> Iter {
        Iter {
            rt: self.rt.clone(),
            inner: self.inner.iter(),
        }
    }

    /// Release the resource the object holds.
    pub fn close(&self) -> Result<()> {
        self.rt.block_on(self.inner.close())
    }

    /// The same reference with another deadline per call.
    pub fn with_timeout(&self, timeout: Duration) -> NetRef {
        NetRef {
            rt: self.rt.clone(),
            inner: self.inner.with_timeout(timeout),
        }
    }

    /// The reference in `value` (returned by a call on this one), for
    /// blocking use.
    pub fn wrap_value(&self, value: Value) -> Result<NetRef> {
        crate::NetRef::try_from(value).map(|inner| NetRef {
            rt: self.rt.clone(),
            inner,
        })
    }

    /// The async reference underneath (to pass as an argument, say).
    pub fn as_async(&self) -> &crate::NetRef {
        &self.inner
    }
}

impl From<NetRef> for Value {
    fn from(r: NetRef) -> Value {
        Value::Ref(r.inner)
    }
}

/// The reference in a returned value, as the async [`NetRef`](crate::NetRef)
/// converts: `let counter: blocking::NetRef = root.call_method("counter",
/// ())?.try_into()?`. Its calls block on a runtime the process shares for
/// such references (one worker, started when first needed); the
/// connection's own tasks stay on the connection's runtime.
impl TryFrom<Value> for NetRef {
    type Error = Error;

    fn try_from(value: Value) -> Result<NetRef> {
        let inner = crate::NetRef::try_from(value)?;
        Ok(NetRef {
            rt: shared_runtime()?,
            inner,
        })
    }
}

/// The runtime references made by [`NetRef::try_from`] block on.
fn shared_runtime() -> Result<Arc<Runtime>> {
    static SHARED: std::sync::OnceLock<Arc<Runtime>> = std::sync::OnceLock::new();
    if let Some(rt) = SHARED.get() {
        return Ok(rt.clone());
    }
    let rt = runtime()?;
    Ok(SHARED.get_or_init(|| rt).clone())
}

impl fmt::Debug for NetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::NetRef")
            .field(&self.inner)
            .finish()
    }
}

/// Items of a remote iterable, fetched in batches; see [`crate::RemoteIter`].
pub struct Iter {
    rt: Arc<Runtime>,
    inner: crate::RemoteIter,
}

impl Iterator for Iter {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        self.rt.block_on(self.inner.next())
    }
}

impl fmt::Debug for Iter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::Iter").field(&self.inner).finish()
    }
}
