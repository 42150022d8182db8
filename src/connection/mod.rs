//! One symmetric connection between two peers.
//!
//! After the handshake the two sides are equal: each can get the other's
//! root object and call anything it was given. Inside:
//!
//! - `shared`: the state both tasks and every handle share (tables, pending
//!   calls, the writer queue) and the teardown that ends it all at once;
//! - `driver`: the reader task (routes frames) and the writer task
//!   (coalesces queued frames into few writes);
//! - `incoming`: frames from the peer, and serving its requests: each is
//!   polled once in the reader, in arrival order, and only one that must
//!   wait gets a task of its own with its deadline and cancellation;
//! - `call`: our requests, with deadline and cancel-on-drop;
//! - `batch`: several calls in one frame ([`Batch`]).
//!
//! A connection lives until either side closes it, the transport fails, the
//! peer breaks the protocol, or every [`Connection`] handle and every remote
//! [`NetRef`] of it is dropped.

mod batch;
mod call;
mod config;
pub(crate) mod depth;
mod driver;
mod incoming;
pub(crate) mod shared;
mod slots;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::ToSocketAddrs;
use tokio::sync::mpsc;

pub use self::batch::Batch;
pub(crate) use self::call::Queued;
pub use self::config::Config;
pub(crate) use self::shared::Shared;
use crate::auth::{GrantFn, PeerIdentity, Token, Tokens};
use crate::error::raise;
use crate::protocol::frame::Op;
use crate::protocol::handshake::{self, Refusal};
use crate::service::builtin::empty::Empty;
use crate::transport::tls::TlsClient;
use crate::{transport, Grant, NetRef, Object, Result};

/// A handle to a connection; clones share it.
///
/// ```no_run
/// # async fn demo() -> tether::Result<()> {
/// let conn = tether::connect("127.0.0.1:18861").await?;
/// let root = conn.root().await?;
/// let n: i64 = root.call_method("add", (1, 2)).await?.try_into()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

/// Counts as one user reference; the last one to go closes the connection.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.user_ref_dropped();
    }
}

/// Object counts of one connection, to see leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Our objects the peer holds references to.
    pub exported: usize,
    /// The peer's objects we hold proxies for.
    pub imported: usize,
    /// Our calls waiting for replies.
    pub in_flight: usize,
    /// The peer's calls we are running.
    pub serving: usize,
    /// Outcomes of the peer's pipelined calls we keep for it
    /// ([`Config::max_answers`]).
    pub answers: usize,
}

impl Connection {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Connection {
        shared.user_ref_added();
        Connection {
            handle: Arc::new(Handle { shared }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Options for a new connection: the root this side serves, limits,
    /// policy.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The peer's root object.
    pub async fn root(&self) -> Result<NetRef> {
        let value = self.shared().request(0, Op::GetRoot, None).await?;
        NetRef::try_from(value)
    }

    /// The name of the peer's root service, from the handshake.
    pub fn peer_service(&self) -> &str {
        &self.shared().peer_service
    }

    /// Who the peer proved to be in the handshake: on a server, the
    /// client's token name or certificate subject; on a client over TLS,
    /// the server certificate's subject. `None` when it proved nothing.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.shared().peer_identity.as_ref()
    }

    /// The peer's address, when the transport has one.
    pub fn peer_addr(&self) -> Option<&str> {
        self.shared().peer_addr.as_deref()
    }

    /// Object and call counts right now.
    pub fn stats(&self) -> Stats {
        let s = self.shared();
        Stats {
            exported: s.exported(),
            imported: s.imports.len(),
            in_flight: s.in_flight.len(),
            serving: s.serving.len(),
            answers: s.answers.len(),
        }
    }

    /// One round trip to the peer and back.
    pub async fn ping(&self) -> Result<Duration> {
        self.shared().ping().await
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared().is_closed()
    }

    /// Close the connection: pending calls fail with
    /// [`ErrorKind::Closed`](crate::ErrorKind), the peer is told, and
    /// everything it held of ours is released. Returns once the last frame
    /// is written (or could not be).
    pub async fn close(&self) {
        self.shared()
            .terminate(raise::closed("closed by this side"));
        self.shared().writer_done.cancelled().await;
    }

    /// Wait until the connection ends, and say why.
    pub async fn closed(&self) -> crate::Error {
        self.shared().shutdown.cancelled().await;
        self.shared()
            .close_reason()
            .unwrap_or_else(|| raise::closed("the connection is closed"))
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared();
        f.debug_struct("Connection")
            .field("number", &s.number)
            .field("peer_service", &s.peer_service)
            .field("peer_addr", &s.peer_addr)
            .field("closed", &s.is_closed())
            .finish()
    }
}

/// Connect over TCP with default settings, serving nothing to the server
/// but the callbacks passed to it.
pub async fn connect(addr: impl ToSocketAddrs) -> Result<Connection> {
    Connection::builder().connect(addr).await
}

/// How to set up a connection: the root object this side serves, its
/// [`Config`], and its credentials (a [`Token`], [TLS](Builder::tls)).
/// Clones make connections with the same settings (and the same root).
#[derive(Default, Clone)]
pub struct Builder {
    root: Option<NetRef>,
    config: Config,
    /// Connecting: the secret to prove when the server asks.
    token: Option<Token>,
    /// Accepting: the tokens a client must prove one of.
    tokens: Option<Tokens>,
    /// Connecting: TLS around the stream.
    tls: Option<TlsClient>,
    /// Accepting: the root and policy per client identity.
    grant: Option<GrantFn>,
    /// Who the transport (TLS) says the peer is.
    transport_identity: Option<PeerIdentity>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("root", &self.root)
            .field("config", &self.config)
            .field("token", &self.token)
            .field("tokens", &self.tokens)
            .field("tls", &self.tls)
            .field("grant_per_identity", &self.grant.is_some())
            .finish()
    }
}

impl Builder {
    /// The object the peer gets from `root()` (default: an object with no
    /// members).
    pub fn root<O: Object>(self, root: O) -> Builder {
        self.root_ref(NetRef::new(root))
    }

    /// Like [`root`](Builder::root), for an object already in a `NetRef`.
    pub fn root_ref(mut self, root: NetRef) -> Builder {
        self.root = Some(root);
        self
    }

    /// The connection's settings.
    pub fn config(mut self, config: Config) -> Builder {
        self.config = config;
        self
    }

    /// Connecting: prove this token when the server asks for one (see
    /// [`Token`]). The server must then prove it holds the token too, so a
    /// client with a token refuses ([`ErrorKind::Denied`](crate::ErrorKind))
    /// a server that does not ask for it.
    pub fn token(mut self, token: Token) -> Builder {
        self.token = Some(token);
        self
    }

    /// Accepting: require every client to prove one of these tokens; its
    /// name becomes the client's [`PeerIdentity`]. Empty: no challenge.
    pub fn tokens(mut self, tokens: Tokens) -> Builder {
        self.tokens = Some(tokens);
        self
    }

    /// Connecting: run TLS over the stream (TCP or Unix socket) before
    /// tether's handshake; the server's certificate subject becomes the
    /// connection's [`PeerIdentity`].
    pub fn tls(mut self, tls: TlsClient) -> Builder {
        self.tls = Some(tls);
        self
    }

    /// Accepting: once the client is authenticated, let `grant` pick the
    /// root object and policy it gets from its identity (`None` when it
    /// proved none); when `grant` returns `None` the client is denied
    /// ([`ErrorKind::Denied`](crate::ErrorKind)). Replaces
    /// [`root`](Builder::root).
    pub fn grant_per_identity(
        mut self,
        grant: impl Fn(Option<&PeerIdentity>) -> Option<Grant> + Send + Sync + 'static,
    ) -> Builder {
        self.grant = Some(std::sync::Arc::new(grant));
        self
    }

    pub(crate) fn grant_fn(mut self, grant: GrantFn) -> Builder {
        self.grant = Some(grant);
        self
    }

    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.config.handshake_timeout
    }

    /// Whether connecting runs TLS.
    #[cfg(feature = "nats")]
    pub(crate) fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Accepting a Python RPyC client, which has no handshake and cannot
    /// prove a token: the root and settings it gets, or why it is refused.
    pub(crate) fn rpyc_grant(&self) -> std::result::Result<(NetRef, Config), String> {
        if self.tokens.is_some() {
            return Err("this server requires a token, which an RPyC client cannot prove".into());
        }
        let mut config = self.config.clone();
        let root = match &self.grant {
            None => self.root.clone().unwrap_or_else(|| NetRef::new(Empty)),
            Some(grant) => match grant(self.transport_identity.as_ref()) {
                Some(granted) => {
                    if let Some(policy) = granted.policy {
                        config.policy = policy;
                    }
                    granted.root
                }
                None => return Err("this client may not connect".into()),
            },
        };
        Ok((root, config))
    }

    pub(crate) fn transport_identity(mut self, identity: Option<PeerIdentity>) -> Builder {
        self.transport_identity = identity;
        self
    }

    /// Connect over TCP (with TLS when [`tls`](Builder::tls) is set). All
    /// of it, from the TCP connect to the end of the handshake, must be
    /// done within [`Config::handshake_timeout`], else it fails with
    /// [`ErrorKind::Timeout`](crate::ErrorKind).
    pub async fn connect(self, addr: impl ToSocketAddrs) -> Result<Connection> {
        transport::connect_within(self.config.handshake_timeout, async {
            let (stream, peer) = transport::tcp::connect(addr).await?;
            self.connect_io(stream, Some(peer)).await
        })
        .await
    }

    /// Connect over a Unix socket (with TLS when [`tls`](Builder::tls) is
    /// set), within [`Config::handshake_timeout`] as
    /// [`connect`](Builder::connect) is.
    #[cfg(unix)]
    pub async fn connect_unix(self, path: impl AsRef<std::path::Path>) -> Result<Connection> {
        let path = path.as_ref();
        transport::connect_within(self.config.handshake_timeout, async {
            let stream = transport::unix::connect(path).await?;
            self.connect_io(stream, Some(path.display().to_string()))
                .await
        })
        .await
    }

    /// Connecting to a Python RPyC server, which has no handshake: the
    /// root Python gets, the settings, and TLS if any. A token cannot be
    /// proved to it.
    pub(crate) fn into_rpyc_client(self) -> Result<(NetRef, Config, Option<TlsClient>)> {
        if self.token.is_some() {
            return Err(raise::bad_args(
                "an RPyC server cannot check a token: connect without one",
            ));
        }
        let root = self.root.unwrap_or_else(|| NetRef::new(Empty));
        Ok((root, self.config, self.tls))
    }

    /// Run the connecting side of the protocol over any byte stream (with
    /// TLS when [`tls`](Builder::tls) is set).
    pub async fn connect_io<IO>(mut self, io: IO, peer_addr: Option<String>) -> Result<Connection>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        match self.tls.take() {
            Some(tls) => {
                let (stream, identity) = tls.connect(io, self.config.handshake_timeout).await?;
                self.transport_identity = identity;
                establish(stream, Side::Connecting, self, peer_addr).await
            }
            None => establish(io, Side::Connecting, self, peer_addr).await,
        }
    }

    /// Run the accepting side of the protocol over any byte stream.
    pub async fn accept_io<IO>(self, io: IO, peer_addr: Option<String>) -> Result<Connection>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        establish(io, Side::Accepting(None), self, peer_addr).await
    }

    pub(crate) async fn refuse_io<IO>(self, io: IO, reason: String) -> Result<Connection>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        establish(io, Side::Accepting(Some(Refusal(reason))), self, None).await
    }
}

enum Side {
    Connecting,
    Accepting(Option<Refusal>),
}

async fn establish<IO>(
    mut io: IO,
    side: Side,
    builder: Builder,
    peer_addr: Option<String>,
) -> Result<Connection>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut root = builder.root.unwrap_or_else(|| NetRef::new(Empty));
    let mut config = builder.config;
    let peer = match side {
        Side::Connecting => {
            let hello = handshake::Hello {
                service: &service_name(&root),
                max_frame: config.max_frame_len,
                token: builder.token.as_ref(),
                timeout: config.handshake_timeout,
            };
            let mut peer = handshake::client(&mut io, hello).await?;
            peer.identity = builder.transport_identity;
            peer
        }
        Side::Accepting(refusal) => {
            let rules = handshake::Rules {
                max_frame: config.max_frame_len,
                refusal,
                tokens: builder.tokens.as_ref(),
                identity: builder.transport_identity,
                timeout: config.handshake_timeout,
            };
            let mut granted = None;
            let grant = builder.grant;
            let decide = |who: Option<&PeerIdentity>| match &grant {
                None => Ok(service_name(&root)),
                Some(grant) => match grant(who) {
                    Some(g) => {
                        let name = service_name(&g.root);
                        granted = Some(g);
                        Ok(name)
                    }
                    None => Err(match who {
                        Some(who) => format!("'{}' may not connect", who.name()),
                        None => "an unauthenticated client may not connect".to_string(),
                    }),
                },
            };
            let peer = handshake::server(&mut io, rules, decide).await?;
            if let Some(granted) = granted {
                root = granted.root;
                if let Some(policy) = granted.policy {
                    config.policy = policy;
                }
            }
            peer
        }
    };
    let local_service = service_name(&root);
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::new(
        config,
        root,
        local_service,
        peer,
        peer_addr,
        tx,
    ));
    let conn = Connection::from_shared(shared.clone());
    let (read_half, write_half) = tokio::io::split(io);
    if let Some(interval) = shared.config.keepalive {
        tokio::spawn(driver::keepalive(shared.clone(), interval));
    }
    tokio::spawn(driver::read_loop(shared.clone(), read_half));
    tokio::spawn(driver::write_loop(shared, rx, write_half));
    Ok(conn)
}

/// The name of our root service, announced in the handshake.
fn service_name(root: &NetRef) -> String {
    match &root.target {
        crate::netref::Target::Local(local) => local.object.type_name().to_string(),
        crate::netref::Target::Remote(_) => "proxy".to_string(),
    }
}
