//! XML-RPC and JSON-RPC 2.0 over HTTP for any object, so programs in any
//! language reach a tether service with the clients they already have.
//!
//! A [`Gateway`] serves one object (usually the same service a
//! [`Server`](crate::Server) serves natively) at `/` and `/RPC2`. Each POST
//! is told apart by its content type (`text/xml` or `application/xml` for
//! XML-RPC, any `…json…` type for JSON-RPC) or, without a content type (or
//! with `text/plain`), by its first character (`<` or `{`/`[`), so Python's
//! `xmlrpc.client` and `jsonrpclib` both work unchanged against one address:
//!
//! ```python
//! import xmlrpc.client
//! proxy = xmlrpc.client.ServerProxy('http://127.0.0.1:7001')
//! print(proxy.quadratic(2, -4, 0))          # [2.0, 0.0]
//!
//! import jsonrpclib
//! proxy = jsonrpclib.ServerProxy('http://127.0.0.1:7001')
//! print(proxy.lengths('hi', 27, 'itsgoodday'))
//! ```
//!
//! The gateway is an axum [`Router`]: serve it alone
//! ([`Gateway::serve_until`]) or merge it into an existing application
//! beside other routes ([`Gateway::router`]).
//!
//! ```no_run
//! # #[derive(Clone)] struct Calculator;
//! # #[tether::expose] impl Calculator {
//! #     /// Add two integers.
//! #     #[method] fn add(&self, a: i64, b: i64) -> i64 { a + b }
//! # }
//! # async fn demo() -> std::io::Result<()> {
//! use tether::gateway::Gateway;
//!
//! let app = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .merge(Gateway::new(Calculator).router());     // adds POST / and /RPC2
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # How the pieces fit
//!
//! - `listen`: serving a listener: hyper's HTTP/1.1 connections, their
//!   bound and their header timeout;
//! - `http`: the one request handler: content type, which protocol;
//! - `body`: receiving a body: its limit and deadline, `gzip`/`deflate`
//!   inflated within the limit, and what is refused read to its end;
//! - `xmlrpc`: XML-RPC `methodCall` in (with `quick-xml`), `methodResponse`
//!   out, every value type of the specification plus `nil`;
//! - `jsonrpc`: JSON-RPC 2.0 requests, notifications and batches;
//! - `call`: one call, for either protocol: the object's methods through the
//!   same dispatcher and member check as the native protocol, then the check
//!   that the result is plain data;
//! - `system`: `system.listMethods`, `system.methodSignature`,
//!   `system.methodHelp` and `system.multicall`, from the object's
//!   introspection (its `#[tether::expose]` signatures and doc comments);
//! - `fault`: failures ([`FaultKind`]) and their codes in both protocols;
//! - [`Config`]: limits, timeouts and the call deadline.
//!
//! # Values
//!
//! | tether [`Value`](crate::Value) | XML-RPC | JSON |
//! |---|---|---|
//! | `None` | `<nil/>` | `null` |
//! | `Bool` | `<boolean>` | `true`/`false` |
//! | `Int` | `<int>` (`<i8>` beyond 32 bits; `<i4>`, `<i8>` accepted) | number |
//! | `Float` | `<double>` | number (NaN and infinities cannot be sent) |
//! | `Str` | `<string>` (or untyped text) | string |
//! | `Bytes` | `<base64>` | base64 text (results only) |
//! | [`DateTime`](crate::DateTime) | `<dateTime.iso8601>` (`20261204T15:12:38`, UTC; read as UTC when it names no offset) | RFC 3339 text (results only; text converts where a `DateTime` parameter expects one) |
//! | `List` | `<array>` | array |
//! | `Map` (string keys) | `<struct>` | object |
//!
//! A date is written in whole seconds, the form Python's client and most
//! others read. Objects never cross: a result that
//! holds an object reference (a [`NetRef`]) is answered with an
//! internal-error fault saying that the gateway passes values only.
//!
//! # Limits
//!
//! What one client may send or hold is bounded, each by a [`Config`] field
//! with a documented default:
//!
//! | what | default | past it |
//! |---|---|---|
//! | connections at once ([`Gateway::serve`] only) | 1024 | closed on accept, with a best-effort `503` |
//! | time to send a request's head, and to stay idle between requests ([`Gateway::serve`] only) | 10 s | connection closed |
//! | time to send a request's body | 30 s | `408`, connection closed |
//! | body size, as sent and inflated | 1 MiB | `413` |
//! | refused body read to its end before the answer | 8 MiB (8 × the body limit) | answered at once, connection closed |
//! | value nesting | 32 levels | invalid-request fault |
//! | calls per batch or multicall | 1000 | invalid-request fault |
//! | time per call | 30 s | internal-error fault |
//!
//! `Content-Encoding: gzip` (or `x-gzip`) and `deflate` bodies, as
//! Python's `xmlrpc.client` sends past its `encode_threshold`, are
//! inflated with the output bounded by the body limit: a "gzip bomb"
//! costs at most the limit plus one byte before its `413`. Another coding
//! is `415` (the answer's `Accept-Encoding` names the two taken), data
//! that does not inflate is `400`; neither is ever parsed as the raw body.
//!
//! A refused body (too large, of another type or coding) is read and
//! thrown away before the answer, up to the discard bound: clients such as
//! `xmlrpc.client` send their whole body before they read, and would see a
//! broken pipe instead of the `413` if the gateway closed on them. A
//! client that sends `Expect: 100-continue` is answered without being
//! asked for its body.
//!
//! A [`Gateway::router`] mounted in another server leaves connections to
//! that server: give it a header timeout and a connection bound there.
//! Writing answers has no deadline of its own: a client that never reads
//! holds its connection, within the connection bound.
//!
//! # Security
//!
//! Only the object's declared methods (and the four `system.` methods) can
//! be called: the gateway goes through the same member check as the native
//! protocol, attributes are not reachable at all, and serving a
//! [`restrict`](crate::restrict)ed view narrows the methods further.
//! Requests are bounded as above; bad input gets the protocol's own error
//! (see [`FaultKind`]) or an HTTP status, never a crash. The gateway does
//! no authentication and no TLS: bind it to loopback, or mount it behind
//! whatever guards your application.

pub(crate) mod body;
mod call;
mod config;
pub(crate) mod fault;
mod http;
pub(crate) mod jsonrpc;
pub(crate) mod listen;
#[cfg(test)]
mod proptests;
mod system;
mod xmlrpc;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use self::config::Config;
pub use self::fault::FaultKind;
use crate::service::policy::Policy;
use crate::{NetRef, Object};

/// The axum router type a gateway is served as.
#[doc(no_inline)]
pub use axum::Router;

/// XML-RPC and JSON-RPC over HTTP for one object.
///
/// Cloning is cheap; clones serve the same object. Unlike a
/// [`Server`](crate::Server), which gives each connection its own clone of
/// the service, every HTTP request reaches the same object.
///
/// ```no_run
/// # #[derive(Clone)] struct Calculator;
/// # impl tether::Object for Calculator { fn type_name(&self) -> &str { "Calculator" } }
/// # async fn demo() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7001").await?;
/// let gateway = tether::gateway::Gateway::new(Calculator);
/// gateway.serve_until(listener, async { tokio::signal::ctrl_c().await.ok(); }).await
/// # }
/// ```
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    root: NetRef,
    config: Config,
    /// Which members calls may use (default: the declared ones).
    policy: Policy,
}

impl Gateway {
    /// A gateway to `object`, with the default [`Config`].
    pub fn new<O: Object>(object: O) -> Gateway {
        Gateway::from_ref(NetRef::new(object))
    }

    /// A gateway to the object behind `root`: a local object (a
    /// [`restrict`](crate::restrict)ed view, say) or a remote one, whose
    /// calls are then forwarded over its connection.
    pub fn from_ref(root: NetRef) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                root,
                config: Config::default(),
                policy: Policy::default(),
            }),
        }
    }

    /// The same gateway with other settings.
    pub fn with_config(self, config: Config) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                root: self.inner.root.clone(),
                config,
                policy: self.inner.policy.clone(),
            }),
        }
    }

    /// The same gateway under `policy` (what a grant gave the peers it
    /// serves) instead of the default.
    #[cfg(feature = "nats")]
    pub(crate) fn with_policy(self, policy: Policy) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                root: self.inner.root.clone(),
                config: self.inner.config.clone(),
                policy,
            }),
        }
    }

    /// The gateway's settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The routes `POST /` and `POST /RPC2`, both serving XML-RPC and
    /// JSON-RPC. Merge them into an application with [`Router::merge`], or
    /// put them under a prefix with [`Router::nest`].
    ///
    /// ```
    /// # #[derive(Clone)] struct Calculator;
    /// # #[tether::expose] impl Calculator {
    /// #     /// Add two integers.
    /// #     #[method] fn add(&self, a: i64, b: i64) -> i64 { a + b }
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use tower::ServiceExt; // oneshot: one request, no socket
    ///
    /// let router = tether::gateway::Gateway::new(Calculator).router();
    /// let call = r#"{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}"#;
    /// let request = axum::http::Request::post("/RPC2")
    ///     .header("content-type", "application/json")
    ///     .body(axum::body::Body::from(call))
    ///     .unwrap();
    /// let response = router.oneshot(request).await.unwrap();
    /// let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    /// assert_eq!(&body[..], br#"{"id":1,"jsonrpc":"2.0","result":3}"#);
    /// # });
    /// ```
    pub fn router(&self) -> Router {
        http::router(self.clone())
    }

    /// Serve on `listener` until `shutdown` completes; then stop accepting,
    /// let requests in progress finish, and return.
    ///
    /// Connections are HTTP/1.1, at most
    /// [`Config::max_connections`] at once, each closed when a request
    /// head takes longer than [`Config::header_timeout`] to arrive or the
    /// connection stays idle that long (see [Limits](self#limits)).
    /// Failed accepts are retried, so this returns only after `shutdown`,
    /// always `Ok`.
    pub async fn serve_until<F>(self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let config = self.config().clone();
        listen::serve(self.router(), config, listener, shutdown).await;
        Ok(())
    }

    /// Serve on `listener` for as long as the returned future is polled,
    /// as [`serve_until`](Gateway::serve_until) does.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        self.serve_until(listener, std::future::pending()).await
    }
}

/// Serve any axum `router` (a [`Gateway::router`], a
/// [`CapnWeb`](crate::capnweb::CapnWeb) route, pages of your own, merged)
/// on `listener` the way [`Gateway::serve_until`] does: HTTP/1.1 with
/// WebSocket upgrades, [`Config::max_connections`] at once, each held to
/// [`Config::header_timeout`]; on `shutdown`, stop accepting and let
/// requests in progress finish.
pub async fn serve_router(
    router: Router,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) {
    listen::serve(router, config, listener, shutdown).await;
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("root", &self.inner.root)
            .field("config", &self.inner.config)
            .finish()
    }
}
