//! Accepting connections: one root object per connection, a connection
//! limit, authentication, graceful shutdown.
//!
//! The accept loop hands each stream to a task of its own, which runs the
//! TLS handshake (when [`ServerBuilder::tls`] is set) and tether's own
//! (with its token challenge when [`ServerBuilder::tokens`] is set), both
//! bounded by [`Config::handshake_timeout`]. A connection that fails its
//! handshake, presents wrong credentials or breaks the protocol ends alone,
//! with a log line saying why; every connection served, of either
//! dialect, is logged at info when it opens (number, peer, identity) and
//! when it ends (with the reason). Shutdown
//! stops accepting, closes every connection (their pending calls fail with
//! `Closed`) and returns once all are gone.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::GrantFn;
use crate::transport::tls::TlsServer;
use crate::{
    transport, Builder, Config, Connection, Error, ErrorKind, Grant, NetRef, Object, PeerIdentity,
    Result, Tokens,
};

type OnConnect = Arc<dyn Fn(&Connection) + Send + Sync>;

/// A listening tether server.
///
/// ```no_run
/// # #[derive(Clone)] struct MyService;
/// # impl tether::Object for MyService { fn type_name(&self) -> &str { "MyService" } }
/// # async fn demo() -> tether::Result<()> {
/// let server = tether::Server::bind("127.0.0.1:0").await?;
/// let addr = server.local_addr()?;
/// tokio::spawn(server.serve(MyService));
/// let conn = tether::connect(addr).await?;
/// # Ok(()) }
/// ```
pub struct Server {
    listener: Listener,
    config: Config,
    max_connections: usize,
    on_connect: Option<OnConnect>,
    tls: Option<TlsServer>,
    tokens: Option<Tokens>,
    /// Registered on NATS (see [`ServerBuilder::nats`]).
    #[cfg(feature = "nats")]
    nats: Option<crate::nats::Registered>,
}

enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = match &self.listener {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            #[cfg(unix)]
            Listener::Unix(_, path) => path.display().to_string(),
        };
        f.debug_struct("Server")
            .field("addr", &addr)
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls.is_some())
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// Settings of a [`Server`] before it binds.
#[derive(Clone)]
pub struct ServerBuilder {
    config: Config,
    max_connections: usize,
    on_connect: Option<OnConnect>,
    tls: Option<TlsServer>,
    tokens: Option<Tokens>,
    #[cfg(feature = "nats")]
    nats: Option<crate::nats::Registration>,
}

impl Default for ServerBuilder {
    fn default() -> ServerBuilder {
        ServerBuilder {
            config: Config::default(),
            max_connections: 1024,
            on_connect: None,
            tls: None,
            tokens: None,
            #[cfg(feature = "nats")]
            nats: None,
        }
    }
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl ServerBuilder {
    /// Settings of every accepted connection.
    pub fn config(mut self, config: Config) -> ServerBuilder {
        self.config = config;
        self
    }

    /// Most connections open at once (default 1024). Past it, a new client
    /// is refused in the handshake with a clear error.
    pub fn max_connections(mut self, n: usize) -> ServerBuilder {
        self.max_connections = n;
        self
    }

    /// Run `f` for every connection once its handshake succeeded (to log it,
    /// or keep the handle to inspect its [`Stats`](crate::Stats)).
    ///
    /// Tether clients only: a Python RPyC client on the same port (see
    /// [`crate::rpyc`]) is served by an [`rpyc::Session`](crate::rpyc::Session),
    /// which is not a [`Connection`], and `f` is not called for it. To watch
    /// RPyC clients, accept them yourself and serve each with
    /// [`rpyc::serve_io`](crate::rpyc::serve_io), which returns its session.
    pub fn on_connect(mut self, f: impl Fn(&Connection) + Send + Sync + 'static) -> ServerBuilder {
        self.on_connect = Some(Arc::new(f));
        self
    }

    /// Speak TLS: every client must complete a TLS handshake first (and,
    /// with [`TlsServer::mutual_from_pem`], present a certificate whose
    /// subject becomes its [`PeerIdentity`]).
    pub fn tls(mut self, tls: TlsServer) -> ServerBuilder {
        self.tls = Some(tls);
        self
    }

    /// Require every client to prove one of these tokens in the handshake;
    /// the token's name becomes its [`PeerIdentity`]. A client with a
    /// wrong token or none is denied and the server logs why.
    pub fn tokens(mut self, tokens: Tokens) -> ServerBuilder {
        self.tokens = Some(tokens);
        self
    }

    /// Also register on NATS as a micro service, so clients find this
    /// server by name and can reach it through the broker (see
    /// [`crate::nats`]). Binding then connects to the broker and fails
    /// if it cannot register.
    #[cfg(feature = "nats")]
    pub fn nats(mut self, registration: crate::nats::Registration) -> ServerBuilder {
        self.nats = Some(registration);
        self
    }

    /// Listen on a TCP address.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<Server> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::with_source(ErrorKind::Transport, format!("cannot bind: {e}"), e)
        })?;
        self.into_server(Listener::Tcp(listener)).await
    }

    /// Listen on a Unix socket at `path` (which must not exist yet).
    #[cfg(unix)]
    pub async fn bind_unix(self, path: impl AsRef<std::path::Path>) -> Result<Server> {
        let path = path.as_ref().to_path_buf();
        let listener = tokio::net::UnixListener::bind(&path).map_err(|e| {
            Error::with_source(
                ErrorKind::Transport,
                format!("cannot bind {}: {e}", path.display()),
                e,
            )
        })?;
        self.into_server(Listener::Unix(listener, path)).await
    }

    async fn into_server(self, listener: Listener) -> Result<Server> {
        #[cfg(feature = "nats")]
        let nats = match self.nats {
            Some(registration) => {
                let bound = match &listener {
                    Listener::Tcp(l) => l.local_addr().ok(),
                    #[cfg(unix)]
                    Listener::Unix(..) => None,
                };
                Some(registration.register(bound, self.tls.is_some()).await?)
            }
            None => None,
        };
        Ok(Server {
            listener,
            config: self.config,
            max_connections: self.max_connections,
            on_connect: self.on_connect,
            tls: self.tls,
            tokens: self.tokens,
            #[cfg(feature = "nats")]
            nats,
        })
    }
}

impl Server {
    /// Settings before binding.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Listen on a TCP address with default settings.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Server> {
        Server::builder().bind(addr).await
    }

    /// Listen on a Unix socket with default settings.
    #[cfg(unix)]
    pub async fn bind_unix(path: impl AsRef<std::path::Path>) -> Result<Server> {
        Server::builder().bind_unix(path).await
    }

    /// The TCP address bound (useful after binding port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        match &self.listener {
            Listener::Tcp(l) => l
                .local_addr()
                .map_err(|e| Error::with_source(ErrorKind::Transport, "no local address", e)),
            #[cfg(unix)]
            Listener::Unix(..) => Err(Error::new(
                ErrorKind::Unsupported,
                "a Unix socket server has no TCP address",
            )),
        }
    }

    /// The id the services protocol gave this server on NATS, when it
    /// registered there ([`ServerBuilder::nats`]).
    #[cfg(feature = "nats")]
    pub fn nats_instance(&self) -> Option<&str> {
        self.nats.as_ref().map(|n| n.id.as_str())
    }

    /// Serve a clone of `service` as the root of each connection, forever.
    ///
    /// A plain function returning a boxed future (not an `async fn`), so a
    /// `service` that is not `Clone` is one compile error, at the call.
    pub fn serve<O: Object + Clone>(self, service: O) -> crate::BoxFuture<'static, Result<()>> {
        let make_root = move || NetRef::new(service.clone());
        Box::pin(self.serve_fn(make_root, std::future::pending()))
    }

    /// Serve until `shutdown` completes, then close every connection and
    /// return once they are gone.
    pub async fn serve_until<O: Object + Clone>(
        self,
        service: O,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        self.serve_fn(move || NetRef::new(service.clone()), shutdown)
            .await
    }

    /// Serve the object `make_root` returns as the root of each connection.
    pub async fn serve_fn(
        self,
        make_root: impl Fn() -> NetRef + Send + Sync + 'static,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        self.run(move |b| b.root_ref(make_root()), shutdown).await
    }

    /// Serve each client what `grant` gives its identity (`None`: it proved
    /// none): a root object and optionally a [`Policy`](crate::Policy). A
    /// client for which `grant` returns `None` is denied
    /// ([`ErrorKind::Denied`]) before it sees anything.
    ///
    /// ```no_run
    /// # #[derive(Clone)] struct Notes;
    /// # impl tether::Object for Notes { fn type_name(&self) -> &str { "Notes" } }
    /// use tether::{Grant, NetRef, Policy};
    /// # async fn demo() -> tether::Result<()> {
    /// let tokens = tether::Tokens::new().with("admin", "s3cret-a")?.with("reader", "s3cret-r")?;
    /// let server = tether::Server::builder().tokens(tokens).bind("127.0.0.1:0").await?;
    /// server.serve_per_identity(|who| match who?.name() {
    ///     "admin" => Some(Grant::new(Notes).policy(Policy::default().allow_setattr(true))),
    ///     "reader" => tether::restrict(&NetRef::new(Notes), &["list"]).ok().map(Grant::from_ref),
    ///     _ => None,
    /// }, std::future::pending()).await
    /// # }
    /// ```
    pub async fn serve_per_identity(
        self,
        grant: impl Fn(Option<&PeerIdentity>) -> Option<Grant> + Send + Sync + 'static,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let grant: GrantFn = Arc::new(grant);
        self.run(move |b| b.grant_fn(grant.clone()), shutdown).await
    }

    /// The accept loop; `setup` adds the root (or how to pick it) to each
    /// connection's builder. Streams come from the listener and, when the
    /// server is registered on NATS, from the broker tunnel; both take the
    /// same path from there.
    async fn run(
        mut self,
        setup: impl Fn(Builder) -> Builder + Send + Sync + 'static,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let admission = Admission {
            setup: Arc::new(setup),
            config: self.config.clone(),
            tokens: self.tokens.clone(),
            tls: self.tls.clone(),
            on_connect: self.on_connect.clone(),
            limit: Arc::new(Semaphore::new(self.max_connections)),
            max: self.max_connections,
            stop: CancellationToken::new(),
        };
        let mut tasks = JoinSet::new();
        let mut tunnels = self.start_nats(&admission, &mut tasks).await?;
        let mut backoff = Duration::from_millis(10);
        tokio::pin!(shutdown);
        loop {
            let (io, peer) = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                accepted = accept(&self.listener, self.config.keepalive) => match accepted {
                    Ok(accepted) => {
                        backoff = Duration::from_millis(10);
                        accepted
                    }
                    Err(err) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin, and keep serving the
                        // connections we have.
                        tracing::warn!(%err, "accept failed; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                },
                tunnelled = next_tunnel(&mut tunnels) => tunnelled,
            };
            while tasks.try_join_next().is_some() {}
            tasks.spawn(admission.clone().serve(io, peer));
        }
        // Leave the broker first: no new clients find or reach us there.
        #[cfg(feature = "nats")]
        if let Some(nats) = &mut self.nats {
            nats.deregister().await;
        }
        admission.stop.cancel();
        while tasks.join_next().await.is_some() {}
        #[cfg(feature = "nats")]
        if let Some(nats) = &self.nats {
            nats.close().await;
        }
        #[cfg(unix)]
        if let Listener::Unix(_, path) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// Start what the NATS registration serves: the tunnel's openings
    /// (their streams come back through what this returns) and the
    /// stateless endpoints, which serve the root an unauthenticated peer
    /// gets (none when the server requires a token).
    #[cfg(feature = "nats")]
    async fn start_nats(
        &mut self,
        admission: &Admission,
        tasks: &mut JoinSet<()>,
    ) -> Result<Tunnels> {
        let Some(nats) = self.nats.as_mut() else {
            return Ok(None);
        };
        let (accepted, tunnels) = tokio::sync::mpsc::channel(16);
        if let Some(accepting) = nats.accept_tunnels(accepted, admission.stop.clone()) {
            tasks.spawn(accepting);
        }
        if nats.stateless {
            match admission.builder().rpyc_grant() {
                Ok((root, config)) => {
                    let gateway =
                        crate::gateway::Gateway::from_ref(root).with_policy(config.policy);
                    let service = nats.service.as_ref().expect("a registered service");
                    let serving = crate::nats::serve_stateless(
                        &nats.client,
                        service,
                        &nats.name,
                        gateway,
                        admission.stop.clone(),
                    )
                    .await?;
                    tasks.spawn(serving);
                }
                Err(why) => {
                    tracing::info!(service = %nats.name, %why, "no stateless endpoints on NATS")
                }
            }
        }
        Ok(Some(tunnels))
    }

    #[cfg(not(feature = "nats"))]
    async fn start_nats(&mut self, _: &Admission, _: &mut JoinSet<()>) -> Result<Tunnels> {
        Ok(None)
    }
}

/// Streams from the broker tunnel, when registered on NATS.
#[cfg(feature = "nats")]
type Tunnels = Option<tokio::sync::mpsc::Receiver<(crate::nats::TunnelStream, String)>>;
#[cfg(not(feature = "nats"))]
type Tunnels = Option<std::convert::Infallible>;

/// The next tunnelled stream; never, without any.
async fn next_tunnel(tunnels: &mut Tunnels) -> (Box<dyn Stream>, String) {
    #[cfg(feature = "nats")]
    if let Some(tunnels) = tunnels {
        if let Some((stream, peer)) = tunnels.recv().await {
            return (Box::new(stream), peer);
        }
    }
    let _ = tunnels;
    std::future::pending().await
}

/// What every accepted stream goes through: the connection limit, TLS,
/// tether's handshake (or an RPyC client's session), then serving.
#[derive(Clone)]
struct Admission {
    setup: Arc<dyn Fn(Builder) -> Builder + Send + Sync>,
    config: Config,
    tokens: Option<Tokens>,
    tls: Option<TlsServer>,
    on_connect: Option<OnConnect>,
    limit: Arc<Semaphore>,
    max: usize,
    stop: CancellationToken,
}

impl Admission {
    /// A connection's builder: settings, root, tokens.
    fn builder(&self) -> Builder {
        let mut builder = (self.setup)(Builder::default().config(self.config.clone()));
        if let Some(tokens) = &self.tokens {
            builder = builder.tokens(tokens.clone());
        }
        builder
    }

    /// Serve the stream `io` from `peer` to its end.
    async fn serve(self, io: Box<dyn Stream>, peer: String) {
        let builder = self.builder();
        let permit = self.limit.clone().try_acquire_owned().ok();
        let refusal = match permit {
            Some(_) => None,
            None => Some(format!(
                "the server is at its limit of {} connections",
                self.max
            )),
        };
        let _permit = permit;
        let established = match &self.tls {
            Some(tls) => {
                let timeout = builder.handshake_timeout();
                match tls.accept(io, timeout).await {
                    Ok((stream, identity)) => {
                        let builder = builder.transport_identity(identity);
                        handshake(builder, stream, &peer, refusal, &self.stop).await
                    }
                    Err(err) => Err(err),
                }
            }
            None => handshake(builder, io, &peer, refusal, &self.stop).await,
        };
        match established {
            // A Python RPyC client, served to its end.
            Ok(None) => {}
            Ok(Some(conn)) => {
                if let Some(f) = &self.on_connect {
                    f(&conn);
                }
                tracing::info!(
                    connection = conn.shared().number,
                    %peer,
                    identity = conn.peer_identity().map(PeerIdentity::name),
                    "connection opened"
                );
                serve_to_end(&conn, &peer, &self.stop).await;
            }
            Err(err) if err.kind() == ErrorKind::Denied => {
                tracing::warn!(%peer, %err, "client denied")
            }
            Err(err) => tracing::info!(%peer, %err, "handshake failed"),
        }
    }
}

/// Accept `io`, or answer its hello with `refusal` and close. One port,
/// two dialects: a Python RPyC client is served here to its end (`None`);
/// a tether client's connection is returned.
async fn handshake<IO>(
    builder: Builder,
    io: IO,
    peer: &str,
    refusal: Option<String>,
    stop: &CancellationToken,
) -> Result<Option<Connection>>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    match refusal {
        None => {
            let Some(io) = crate::rpyc::serve_if_rpyc(io, &builder, peer, stop).await else {
                return Ok(None);
            };
            builder
                .accept_io(io, Some(peer.to_string()))
                .await
                .map(Some)
        }
        Some(why) => {
            tracing::info!(%peer, "refused: {why}");
            builder.refuse_io(io, why).await.map(Some)
        }
    }
}

/// A served connection of either dialect, as the server watches it.
pub(crate) trait Served {
    /// Its process-wide number, as logs show it.
    fn number(&self) -> u64;
    /// Wait until it ends; why it did.
    async fn closed(&self) -> Error;
    /// Close it from this side.
    async fn close(&self);
}

impl Served for Connection {
    fn number(&self) -> u64 {
        self.shared().number
    }
    async fn closed(&self) -> Error {
        Connection::closed(self).await
    }
    async fn close(&self) {
        Connection::close(self).await
    }
}

/// Wait for `conn` (from `peer`) to end, closing it when `stop` fires
/// first, and log why it ended.
pub(crate) async fn serve_to_end(conn: &impl Served, peer: &str, stop: &CancellationToken) {
    let reason = tokio::select! {
        reason = conn.closed() => reason,
        _ = stop.cancelled() => {
            conn.close().await;
            conn.closed().await
        }
    };
    tracing::info!(connection = conn.number(), %peer, %reason, "connection closed");
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Accept the next stream. TCP streams get keepalive at `keepalive`
/// before the dialect is known: RPyC connections have no other way to
/// notice a dead peer (see `rpyc`'s "Liveness").
async fn accept(
    listener: &Listener,
    keepalive: Option<Duration>,
) -> std::io::Result<(Box<dyn Stream>, String)> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, addr) = l.accept().await?;
            transport::tcp::prepare(&stream);
            transport::tcp::keepalive(&stream, keepalive);
            Ok((Box::new(stream), addr.to_string()))
        }
        #[cfg(unix)]
        Listener::Unix(l, path) => {
            let (stream, _) = l.accept().await?;
            Ok((Box::new(stream), path.display().to_string()))
        }
    }
}
