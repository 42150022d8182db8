//! RPyC 6.x's own wire protocol, as a second dialect of tether's object
//! model: Python programs using `rpyc.connect(host, port)` (rpyc 6.0.2,
//! unmodified) use tether services, and tether uses Python RPyC servers.
//!
//! ```text
//! # Python
//! import rpyc
//! conn = rpyc.connect("localhost", 18861, config={"allow_public_attrs": True})
//! print(conn.root.line_counter(open("notes.txt"), print))
//! ```
//!
//! A [`Server`](crate::Server) tells the dialect of each connection from its
//! first bytes ([`detect`]), so one port serves both kinds of client.
//! [`serve_io`] runs the serving side over any byte stream; [`connect`]
//! opens a connection to a Python server (a `rpyc.Service`, or the stock
//! `rpyc_classic`; [`connect_with`] for settings and TLS), whose
//! [`Session::root`] is an ordinary [`NetRef`]:
//!
//! ```no_run
//! # async fn demo() -> tether::Result<()> {
//! let conn = tether::rpyc::connect("127.0.0.1:18812").await?;   // rpyc_classic
//! let root = conn.root().await?;
//! let os = tether::NetRef::try_from(root.call_method("getmodule", ("os",)).await?)?;
//! println!("{}", os.call_method("getcwd", ()).await?);
//! # Ok(()) }
//! ```
//!
//! The protocol is symmetric: either side calls the other's objects, and
//! Python objects reach tether code as [`NetRef`]s (a Python function is
//! called with [`NetRef::call`], a file iterated with [`NetRef::iter`]).
//!
//! # How the pieces fit
//!
//! - `frame`: length, compressed flag, payload and the extra `\n`; zlib
//!   inflated within the frame limit and [`MAX_INFLATE_RATIO`];
//! - [`brine`]: RPyC's value serializer ([`Brine`]), bounded in depth and
//!   allocation;
//! - `envelope`: message type plus `(seq, args)`, the header read before
//!   the body; 5.x peers refused;
//! - `decode`: from a frame to a message within the connection's decoding
//!   budget, large frames off the runtime's threads (its docs have the
//!   design);
//! - `boxing` and `id_pack`: values by value or by reference, and how an
//!   object is named on the wire;
//! - `vinegar`: exceptions both ways;
//! - `session`: the connection's tables, tether's own export table and
//!   one proxy per Python object;
//! - `remote`: a Python object held on the tether side, in an ordinary
//!   [`NetRef`];
//! - `serve`: each RPyC handler as one of tether's operations;
//! - `driver`: the reader and writer tasks.
//!
//! # Security
//!
//! The Python peer reaches our objects through the same dispatcher as a
//! native peer: only declared members, setattr/delattr only when the
//! [`Policy`](crate::Policy) allows, and every handler that names an
//! attribute (GETATTR, SETATTR, DELATTR, CALLATTR, CMP, CTXEXIT) is
//! checked, comparisons included (RPyC's CVE-2019-16328 was a CMP that
//! skipped the check). Pickling is never honoured. Python objects passed
//! to tether are governed by the Python side's own policy: by default a
//! tether service can call a Python function and iterate a Python file,
//! but reading other public attributes needs the client's
//! `allow_public_attrs`.
//!
//! # Limits
//!
//! An RPyC connection has the same [`Config`] limits as a native one,
//! as far as RPyC can carry them:
//!
//! - [`max_frame_len`](crate::Config::max_frame_len): frames, compressed
//!   or not. A compressed payload may also inflate to no more than
//!   [`MAX_INFLATE_RATIO`] (256) times its size: rpyc compresses at zlib
//!   level 1, which stays under 230:1, while a bomb made at a higher
//!   level reaches ~1030:1. Past either, the connection is closed (logged
//!   at warn, with the reason), having allocated nothing in proportion to
//!   what the frame would have inflated to. Brine nests at most
//!   [`brine::MAX_DEPTH`] deep, and no count it declares reserves more
//!   than the bytes left can hold.
//! - [`max_decoded_bytes`](crate::Config::max_decoded_bytes): what one
//!   message decodes to, together with the arguments of the calls being
//!   served. A request over what is left is answered with
//!   [`ErrorKind::LimitExceeded`](crate::ErrorKind::LimitExceeded) (a
//!   `RuntimeError` in Python) without running; a reply over it fails the
//!   call it answers. Either way the message is read to its end without
//!   being built, the objects it carried are released (`DEL`), and the
//!   connection goes on. A `DEL` or `CLOSE` is read within 4 KiB of its
//!   own, so a release is never lost to a budget that calls hold.
//! - [`max_serving`](crate::Config::max_serving),
//!   [`max_exported`](crate::Config::max_exported): a request past them
//!   is answered with `LimitExceeded`; a reply that would export an object
//!   past `max_exported` is replaced by that error, nothing of it
//!   exported.
//! - [`max_queued_bytes`](crate::Config::max_queued_bytes): a peer that
//!   stops reading its replies is disconnected.
//! - [`max_in_flight`](crate::Config::max_in_flight): our requests past it
//!   wait for a slot, within their deadline.
//! - [`max_call_depth`](crate::Config::max_call_depth): RPyC messages
//!   carry no depth, so it is followed locally. Each request of ours
//!   records the depth it was made at, and a request of the peer's is
//!   taken to be nested in the deepest of ours that waits (a Python peer
//!   serves requests only while it waits): it runs one deeper, or at 0
//!   when none waits, and past the limit it is refused without running.
//!   Ping-pong between two sides nested in each other is thereby bounded;
//!   with a multi-threaded peer the count may run ahead of the truth,
//!   never behind it.
//! - [`handshake_timeout`](crate::Config::handshake_timeout): on a
//!   [`Server`](crate::Server), the first bytes (which tell the dialect)
//!   must come within it. RPyC has no handshake after that. Connecting
//!   ([`connect_with`]), TCP and TLS must be done within it.
//! - [`keepalive`](crate::Config::keepalive): TCP keepalive, see
//!   "Liveness".
//!
//! # Differences from a Python server
//!
//! - Values: tether's `List` reaches Python as a tuple and a `Map` as a
//!   tuple of `(key, value)` pairs; Python's complex numbers, slices,
//!   `Ellipsis` and integers beyond 64 bits have no tether value and are
//!   refused with a `TypeError`.
//! - Every tether object's Python proxy offers `__call__`, `__iter__`,
//!   `__next__` and `with`; using one the object does not support raises
//!   `TypeError` from the server.
//! - Errors: see `vinegar`'s mapping; a tether error with a Python builtin
//!   exception name (`Error::app("ValueError", ..)`) is raised as that class.
//! - A client with `RPYC_BIND_THREADS=true` (experimental in rpyc) is not
//!   supported.
//! - [`ServerBuilder::on_connect`](crate::ServerBuilder::on_connect) is
//!   not called for RPyC clients: its callback takes a native
//!   [`Connection`](crate::Connection). Serve them with [`serve_io`] to
//!   hold each [`Session`].
//!
//! # Liveness
//!
//! RPyC has a PING request both ways, but tether never sends it: a Python
//! peer reads its socket only while one of its threads waits on the
//! connection. A server's connection thread between requests does, but a
//! client between its own calls does not (unless it runs a
//! `BgServingThread`), and neither does a server's thread busy running a
//! long request. A ping could go unanswered for as long as the peer
//! likes, so silence cannot tell a quiet peer from a dead one, and
//! declaring it dead would cut off healthy clients.
//!
//! So [`Config::keepalive`](crate::Config::keepalive) turns on TCP
//! keepalive instead, on the connections a [`Server`](crate::Server)
//! accepts and those [`connect`] opens: once a connection has been idle
//! for the interval, the kernel sends probes (four, a quarter interval
//! apart), which the peer's kernel answers whatever its program is doing.
//! A dead host or a half-open connection is reset within about two
//! intervals, its calls fail and its objects are released; a quiet peer
//! never is. A stream handed to [`serve_io`] or [`connect_io`] is the
//! caller's: set keepalive on it yourself (e.g. with `socket2`). A call
//! waiting on the peer ends at
//! [`Config::call_timeout`](crate::Config::call_timeout) in any case.
//!
//! # Fairness
//!
//! Each connection's reader decodes its frames in order; a frame whose
//! payload, or inflated output, is over 64 KiB is inflated, decoded and
//! unboxed on tokio's blocking pool while that reader waits for it, so
//! one peer's large or compressed frames never hold the runtime's worker
//! threads that every other connection shares.

mod boxing;
pub mod brine;
mod decode;
mod detect;
mod driver;
mod envelope;
mod frame;
mod handler;
mod id_pack;
pub(crate) mod remote;
mod serve;
mod session;
mod vinegar;

use std::fmt;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::ToSocketAddrs;
use tokio::sync::mpsc;

pub use self::brine::{Brine, BrineError};
pub(crate) use self::decode::read_detached;
pub use self::detect::{detect, Dialect, Rewind};
pub(crate) use self::detect::{looks_like_rpyc, OtherDialect};
pub use self::frame::MAX_INFLATE_RATIO;
use self::session::State;
use crate::error::raise;
use crate::{transport, Builder, Config, Error, NetRef, Result, Stats};

/// One RPyC connection; clones share it.
///
/// A served connection ([`serve_io`]) lives until the Python peer closes
/// it (or [`close`](Session::close)); dropping a `Session` does not close
/// it. A connection this side opened ([`connect`]) closes itself once
/// every `Session` handle and every [`NetRef`] to the peer's objects is
/// dropped.
#[derive(Clone)]
pub struct Session {
    handle: Arc<Handle>,
}

/// Counts as one user reference of the connection.
struct Handle {
    state: Arc<State>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.state.user_ref_dropped();
    }
}

impl Session {
    fn new(state: Arc<State>) -> Session {
        state.user_ref_added();
        Session {
            handle: Arc::new(Handle { state }),
        }
    }

    fn state(&self) -> &Arc<State> {
        &self.handle.state
    }

    /// The peer's root object (its service), as a [`NetRef`] whose
    /// operations become RPyC requests.
    ///
    /// ```no_run
    /// # async fn demo() -> tether::Result<()> {
    /// let conn = tether::rpyc::connect("127.0.0.1:18812").await?;
    /// let root = conn.root().await?;
    /// let three = root.call_method("eval", ("1 + 2",)).await?;
    /// assert_eq!(three, tether::Value::from(3));
    /// # Ok(()) }
    /// ```
    pub async fn root(&self) -> Result<NetRef> {
        let root = self
            .state()
            .request(handler::GETROOT, boxing::box_tuple(Vec::new()), None)
            .await?;
        NetRef::try_from(root)
    }

    /// Object and call counts right now: `exported` counts our objects the
    /// Python peer holds, `imported` its objects tether holds.
    pub fn stats(&self) -> Stats {
        self.state().stats()
    }

    /// The peer's address, when the transport has one.
    pub fn peer_addr(&self) -> Option<&str> {
        self.state().peer_addr.as_deref()
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.state().is_closed()
    }

    /// Close the connection (telling the peer with RPyC's CLOSE); returns
    /// once the socket is shut.
    pub async fn close(&self) {
        self.state()
            .close_politely(raise::closed("closed by this side"));
        self.state().writer_done.cancelled().await;
    }

    /// Wait until the connection ends, and say why.
    pub async fn closed(&self) -> Error {
        self.state().shutdown.cancelled().await;
        self.state()
            .close_reason()
            .unwrap_or_else(|| raise::closed("the connection is closed"))
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Session")
            .field("number", &state.number)
            .field("peer_addr", &state.peer_addr)
            .field("closed", &state.is_closed())
            .finish()
    }
}

/// The server's hook: detect the dialect of an accepted stream (within the
/// handshake timeout); serve an RPyC client what `builder` grants it, to
/// the end (or until `stop`), and return `None`; or hand a tether client's
/// stream back, bytes intact.
pub(crate) async fn serve_if_rpyc<IO>(
    io: IO,
    builder: &crate::Builder,
    peer: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<Rewind<IO>>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let timeout = builder.handshake_timeout();
    let io = match tokio::time::timeout(timeout, detect(io)).await {
        Ok(Ok((Dialect::Rpyc, io))) => io,
        Ok(Ok((_, io))) => return Some(io),
        Ok(Err(err)) => {
            tracing::info!(%peer, %err, "connection ended before its first bytes");
            return None;
        }
        Err(_) => {
            tracing::info!(%peer, "no first bytes within {timeout:?}");
            return None;
        }
    };
    let (root, config) = match builder.rpyc_grant() {
        Ok(granted) => granted,
        Err(why) => {
            tracing::warn!(%peer, %why, "RPyC client denied");
            return None;
        }
    };
    let session = serve_io(io, root, config, Some(peer.to_string()));
    tracing::info!(
        connection = session.state().number,
        %peer,
        dialect = "rpyc",
        "connection opened"
    );
    crate::server::serve_to_end(&session, peer, stop).await;
    None
}

impl crate::server::Served for Session {
    fn number(&self) -> u64 {
        self.state().number
    }
    async fn closed(&self) -> Error {
        Session::closed(self).await
    }
    async fn close(&self) {
        Session::close(self).await
    }
}

/// Serve `root` to the Python RPyC client at the other end of `io`.
///
/// RPyC has no handshake: the client simply starts sending requests. The
/// connection runs in tasks of its own; the returned [`Session`] watches it.
///
/// ```no_run
/// # #[derive(Clone)] struct MyService;
/// # impl tether::Object for MyService { fn type_name(&self) -> &str { "MyService" } }
/// # async fn demo() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:18861").await?;
/// loop {
///     let (stream, peer) = listener.accept().await?;
///     let root = tether::NetRef::new(MyService);
///     tether::rpyc::serve_io(stream, root, tether::Config::default(), Some(peer.to_string()));
/// }
/// # }
/// ```
pub fn serve_io<IO>(io: IO, root: NetRef, config: Config, peer_addr: Option<String>) -> Session
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    start(io, root, config, peer_addr, false)
}

/// Connect to a Python RPyC server (a `rpyc.Service`, or the stock
/// `rpyc_classic`) over TCP, serving it nothing of ours but what we pass it.
pub async fn connect(addr: impl ToSocketAddrs) -> Result<Session> {
    connect_with(Builder::default(), addr).await
}

/// [`connect`] as `builder` says: its [`Config`] (the deadline of each
/// call, the limits; connecting must be done within
/// [`handshake_timeout`](Config::handshake_timeout)), the root Python gets
/// from its `conn.root`, and [TLS](Builder::tls) around the TCP stream, for
/// a server started with `rpyc_classic --ssl-keyfile ... --ssl-certfile ...`
/// (`rpyc.ssl_connect`'s peer). RPyC cannot check a [`Token`](crate::Token):
/// a builder with one fails with
/// [`ErrorKind::BadArguments`](crate::ErrorKind).
///
/// ```no_run
/// # async fn demo(ca: Vec<u8>) -> tether::Result<()> {
/// use std::time::Duration;
/// let tls = tether::transport::tls::TlsClient::from_pem(&ca, "localhost")?;
/// let config = tether::Config::default().call_timeout(Duration::from_secs(5));
/// let builder = tether::Builder::default().tls(tls).config(config);
/// let conn = tether::rpyc::connect_with(builder, "127.0.0.1:18821").await?;
/// # Ok(()) }
/// ```
pub async fn connect_with(builder: Builder, addr: impl ToSocketAddrs) -> Result<Session> {
    let (root, config, tls) = builder.into_rpyc_client()?;
    let timeout = config.handshake_timeout;
    transport::connect_within(timeout, async move {
        let (stream, peer) = transport::tcp::connect(addr).await?;
        transport::tcp::keepalive(&stream, config.keepalive);
        Ok(match tls {
            Some(tls) => {
                let (stream, _) = tls.connect(stream, timeout).await?;
                connect_io(stream, root, config, Some(peer))
            }
            None => connect_io(stream, root, config, Some(peer)),
        })
    })
    .await
}

/// Run the connecting side over any byte stream; `root` is what the Python
/// side gets from its `conn.root`. The connection closes itself once every
/// handle to it is dropped.
pub fn connect_io<IO>(io: IO, root: NetRef, config: Config, peer_addr: Option<String>) -> Session
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    start(io, root, config, peer_addr, true)
}

fn start<IO>(
    io: IO,
    root: NetRef,
    config: Config,
    peer_addr: Option<String>,
    auto_close: bool,
) -> Session
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new(State::new(config, root, peer_addr, tx, auto_close));
    let (read_half, write_half) = tokio::io::split(io);
    tokio::spawn(driver::read_loop(state.clone(), read_half));
    tokio::spawn(driver::write_loop(state.clone(), rx, write_half));
    Session::new(state)
}
