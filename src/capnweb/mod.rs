//! Cap'n Web: tether objects for JavaScript and the browser.
//!
//! [Cap'n Web](https://github.com/cloudflare/capnweb) (npm `capnweb`) is
//! JavaScript's object-capability RPC: JSON messages over a WebSocket or
//! HTTP batches, objects and functions passed by reference, callbacks both
//! ways and promise pipelining, the same model as tether's. A [`CapnWeb`]
//! endpoint serves one object to its clients at `/capnweb`: `GET` upgrades
//! to a WebSocket session, `POST` is one HTTP batch.
//!
//! ```no_run
//! # #[derive(Clone)] struct Calculator;
//! # #[tether::expose] impl Calculator {
//! #     /// Add two integers.
//! #     #[method] fn add(&self, a: i64, b: i64) -> i64 { a + b }
//! # }
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tether::capnweb::CapnWeb::new(Calculator).serve(listener).await
//! # }
//! ```
//!
//! ```js
//! import { newWebSocketRpcSession } from "capnweb";
//! using api = newWebSocketRpcSession("ws://127.0.0.1:8080/capnweb");
//! console.log(await api.add(1, 2));        // 3
//! ```
//!
//! The route shares a port with the XML-RPC/JSON-RPC gateway, or joins
//! any axum application:
//!
//! ```no_run
//! # #[derive(Clone)] struct Calculator;
//! # #[tether::expose] impl Calculator {
//! #     /// Add two integers.
//! #     #[method] fn add(&self, a: i64, b: i64) -> i64 { a + b }
//! # }
//! # async fn demo() -> std::io::Result<()> {
//! use tether::{capnweb::CapnWeb, gateway::{self, Gateway}};
//!
//! let app = Gateway::new(Calculator).router()            // POST / and /RPC2
//!     .merge(CapnWeb::new(Calculator).router());         // GET and POST /capnweb
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! gateway::serve_router(app, gateway::Config::default(), listener, std::future::pending()).await;
//! # Ok(()) }
//! ```
//!
//! # What maps to what
//!
//! - `api.name` reads an attribute and `api.method(args)` calls a method,
//!   through the same dispatcher and member check as the native protocol
//!   (`getattr`, `call_method`); a property path (`api.a.b(1)`) reads each
//!   step, on objects and on plain maps and lists alike.
//! - Every object also answers `__inspect__()` (its members, each a map
//!   of `name`, `kind`, `signature` and `doc`), `__dir__()`, `__repr__()`
//!   and `__str__()`, as it does natively: what a console needs to show
//!   it.
//! - A result holding an object ([`Value::Ref`](crate::Value)) reaches
//!   JavaScript as a stub; calls on it come back to the object. Disposing
//!   the stub (`using`, `[Symbol.dispose]()`) releases it, as a tether
//!   peer's release does.
//! - A JavaScript function or `RpcTarget` passed as an argument arrives as
//!   an ordinary [`NetRef`]: `callback.call((i,))` calls the function back
//!   over the same session (a WebSocket; an HTTP batch has no way back), and
//!   dropping the last clone releases it.
//! - Promise pipelining: `api.counter(5).increment()` is sent at once; the
//!   second call runs on the first's result when it is ready, in the order
//!   sent.
//! - An error is a rejected promise with an `Error` (`TypeError` for bad
//!   arguments and type errors, `RangeError` for limits) whose `message`
//!   is tether's message, and whose `type` and `kind` properties are
//!   tether's type name (`ValueError`) and [`ErrorKind`](crate::ErrorKind).
//!   No stack is sent.
//!
//! | JavaScript | tether [`Value`](crate::Value) |
//! |---|---|
//! | `null`, `undefined` | `None` (tether sends `null`) |
//! | boolean | `Bool` |
//! | number | `Int` when integral, else `Float` (`Int` beyond ±(2^53 − 1) is sent as a `bigint`) |
//! | `bigint` | `Int` (beyond 64 bits: a `TypeError`) |
//! | string, `URL` | `Str` |
//! | `Uint8Array` (any byte container) | `Bytes` (sent as `Uint8Array`) |
//! | `Date` | `DateTime` (an invalid `Date` is a `TypeError`) |
//! | array | `List` |
//! | plain object | `Map` (keys that are not text are sent as their text) |
//! | `Error` | `Map` with `name` and `message` |
//! | function, `RpcTarget`, stub | `Ref` |
//!
//! The other way, [`connect`] makes tether a client of a Cap'n Web server
//! (a Node or Workers program using `capnweb`): its main object is an
//! ordinary [`NetRef`], with the same mapping of values and errors.
//!
//! Not supported, each failing only the call it is in, with a message
//! saying so: `.map()` over a
//! promise (`remap`), streams and `Blob`s, `Headers`/`Request`/`Response`,
//! promises passed as arguments (await them first).
//!
//! # Safety at the door
//!
//! - **Origins.** A request with an `Origin` header (every browser sends
//!   one) is refused with `403` unless the origin is one given to
//!   [`CapnWeb::allow_origin`], or the endpoint's own (its host and port
//!   are the request's `Host`) when that host is an IP address or
//!   `localhost` (a page served under another name could be an attacker's
//!   name pointed at the endpoint's address: DNS rebinding): a page on another site cannot open a
//!   WebSocket to the endpoint with the user's cookies (cross-site
//!   WebSocket hijacking), nor post batches to it. Programs outside a
//!   browser send no `Origin` and are not concerned.
//! - **Tokens.** With [`CapnWeb::tokens`], every request needs
//!   `Authorization: Bearer <secret>` with one of the [`Tokens`]' secrets
//!   (`401` otherwise); its name is the [`PeerIdentity`] the grant function
//!   sees and calls see in [`CallContext::peer_identity`](crate::CallContext::peer_identity).
//!   The secret crosses the connection whole: use TLS in front of it.
//! - **Limits** ([`Config`]): message size and nesting, table entries,
//!   calls running at once, a deadline per call, messages per batch.
//!   Malformed messages, unknown ids, over-releases and messages past a
//!   limit end the session with an `abort` message saying why; a call
//!   refused by policy or failing in object code fails alone.
//! - **Policy.** Calls go through [`Policy`] and the object's declared
//!   members exactly as native calls do ([`CapnWeb::policy`]).
//!
//! Queued answers are not bounded by count: a client that sends calls and
//! never reads holds what they return until its connection's buffers
//! fill, within the table limit.
//!
//! # How the pieces fit
//!
//! - `http`: the routes, the origin and token checks, and the HTTP
//!   batch;
//! - `socket`: a WebSocket session's loop, server or client;
//! - `client`: [`connect`], tether as a client of Cap'n Web servers;
//! - `session`: one session's import and export tables, and what each
//!   message does to them;
//! - `eval`: reading an expression, its calls made into work that starts
//!   in message order;
//! - `peer`: the JavaScript peer's objects as tether objects;
//! - `wire`: JSON in and out: limits, numbers, bytes, errors;
//! - [`Config`]: the limits.

mod client;
mod config;
mod eval;
mod http;
pub(crate) mod peer;
#[cfg(test)]
mod proptests;
mod session;
mod socket;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use self::client::{connect, connect_with};
pub use self::config::Config;
use self::session::Session;
pub use self::session::SessionStats;
use crate::service::table::lock;
use crate::{Grant, NetRef, Object, PeerIdentity, Policy, Tokens};

/// The Cap'n Web endpoint for one object.
///
/// Cloning is cheap; clones are the same endpoint. Every session starts
/// from the same root object (or, with [`tokens`](CapnWeb::tokens), the
/// one its identity's grant gives).
#[derive(Clone)]
pub struct CapnWeb {
    inner: Arc<Inner>,
}

struct Inner {
    access: Access,
    policy: Policy,
    config: Config,
    origins: Vec<String>,
    /// Every session opened, by number, while it lives.
    sessions: Mutex<HashMap<u64, Weak<Session>>>,
    next_session: AtomicU64,
}

/// Who may start a session, and what root it gets.
#[derive(Clone)]
enum Access {
    Open(NetRef),
    Tokens {
        tokens: Tokens,
        grant: Arc<dyn Fn(&PeerIdentity) -> Grant + Send + Sync>,
    },
}

/// How many sessions an endpoint has, and what they hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sessions open now.
    pub sessions: usize,
    /// Their entries, added up.
    pub held: SessionStats,
}

impl CapnWeb {
    /// An endpoint serving `object`, open to any client (see
    /// [`tokens`](CapnWeb::tokens)), with the default [`Config`] and
    /// [`Policy`].
    pub fn new<O: Object>(object: O) -> CapnWeb {
        CapnWeb::from_ref(NetRef::new(object))
    }

    /// An endpoint serving the object behind `root` (a
    /// [`restrict`](crate::restrict)ed view, say).
    pub fn from_ref(root: NetRef) -> CapnWeb {
        CapnWeb::build(
            Access::Open(root),
            Policy::default(),
            Config::default(),
            Vec::new(),
        )
    }

    fn build(access: Access, policy: Policy, config: Config, origins: Vec<String>) -> CapnWeb {
        CapnWeb {
            inner: Arc::new(Inner {
                access,
                policy,
                config,
                origins,
                sessions: Mutex::default(),
                next_session: AtomicU64::new(1),
            }),
        }
    }

    fn rebuild(
        &self,
        change: impl FnOnce(&mut Access, &mut Policy, &mut Config, &mut Vec<String>),
    ) -> CapnWeb {
        let mut access = self.inner.access.clone();
        let mut policy = self.inner.policy.clone();
        let mut config = self.inner.config.clone();
        let mut origins = self.inner.origins.clone();
        change(&mut access, &mut policy, &mut config, &mut origins);
        CapnWeb::build(access, policy, config, origins)
    }

    /// The same endpoint with other limits.
    pub fn with_config(self, config: Config) -> CapnWeb {
        self.rebuild(|_, _, c, _| *c = config)
    }

    /// The same endpoint under `policy` (a grant's own policy wins for its
    /// identity).
    pub fn policy(self, policy: Policy) -> CapnWeb {
        self.rebuild(|_, p, _, _| *p = policy)
    }

    /// Also accept requests from pages of `origin` (as browsers write it:
    /// `https://app.example.com`, `http://localhost:5173`), besides the
    /// endpoint's own.
    pub fn allow_origin(self, origin: impl Into<String>) -> CapnWeb {
        let origin = origin.into();
        self.rebuild(|_, _, _, o| o.push(origin))
    }

    /// Require a bearer token: `grant` gives each identity its root (and
    /// maybe its policy), as [`Server::serve_per_identity`](crate::Server::serve_per_identity) does.
    ///
    /// ```
    /// # #[derive(Clone)] struct Notes;
    /// # impl tether::Object for Notes { fn type_name(&self) -> &str { "Notes" } }
    /// let tokens = tether::Tokens::new().with("alice", "a-long-random-secret")?;
    /// let endpoint = tether::capnweb::CapnWeb::new(Notes)
    ///     .tokens(tokens, |_who| tether::Grant::new(Notes));
    /// # Ok::<(), tether::Error>(())
    /// ```
    pub fn tokens(
        self,
        tokens: Tokens,
        grant: impl Fn(&PeerIdentity) -> Grant + Send + Sync + 'static,
    ) -> CapnWeb {
        let grant = Arc::new(grant);
        self.rebuild(|a, _, _, _| *a = Access::Tokens { tokens, grant })
    }

    /// The endpoint's limits.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The route `/capnweb` (`GET` for WebSocket sessions, `POST` for HTTP
    /// batches), to merge into an axum application.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// Serve on `listener` until `shutdown` completes, with the gateway's
    /// HTTP limits (connection bound, header timeout; see
    /// [`gateway::Config`](crate::gateway::Config)).
    pub async fn serve_until<F>(self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let config = self.http_config();
        crate::gateway::serve_router(self.router(), config, listener, shutdown).await;
        Ok(())
    }

    /// Serve on `listener` for as long as the returned future is polled.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        self.serve_until(listener, std::future::pending()).await
    }

    /// The sessions open now and what they hold.
    pub fn stats(&self) -> Stats {
        let sessions = self.open_sessions();
        let mut stats = Stats {
            sessions: sessions.len(),
            held: SessionStats::default(),
        };
        for session in sessions {
            let held = session.stats();
            stats.held.exports += held.exports;
            stats.held.imports += held.imports;
        }
        stats
    }

    /// Sessions not yet ended (batches in progress included); the table
    /// forgets the others.
    fn open_sessions(&self) -> Vec<Arc<Session>> {
        let mut sessions = lock(&self.inner.sessions);
        sessions.retain(|_, s| s.upgrade().is_some_and(|s| !s.ended.is_cancelled()));
        sessions.values().filter_map(Weak::upgrade).collect()
    }

    /// The HTTP limits batches are read with.
    fn http_config(&self) -> crate::gateway::Config {
        crate::gateway::Config {
            max_body: self.inner.config.max_message,
            max_discard: 8 * self.inner.config.max_message,
            ..Default::default()
        }
    }

    /// What a peer presenting `token` gets, or why it gets nothing.
    fn grant(&self, token: Option<&str>) -> Result<(Grant, Option<PeerIdentity>), String> {
        match &self.inner.access {
            Access::Open(root) => Ok((Grant::from_ref(root.clone()), None)),
            Access::Tokens { tokens, grant } => {
                let token = token.ok_or("this endpoint needs a bearer token")?;
                let name = tokens
                    .find_secret(token.as_bytes())
                    .ok_or("the bearer token is not one this endpoint accepts")?;
                let identity = PeerIdentity::new(name, crate::AuthMethod::Token);
                Ok((grant(&identity), Some(identity)))
            }
        }
    }

    /// Whether a page of `origin` may use the endpoint reached as `host`:
    /// one of the allowed origins, or the endpoint's own when it is reached
    /// by address or as `localhost`. A name that is not one of those could
    /// be an attacker's, pointed at this address (DNS rebinding): give it
    /// to [`allow_origin`](CapnWeb::allow_origin).
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        if self.inner.origins.iter().any(|o| o == origin) {
            return true;
        }
        let authority = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        let same = authority.is_some_and(|a| !host.is_empty() && a.eq_ignore_ascii_case(host));
        same && is_address_or_localhost(host)
    }

    /// A new session for `grant`, sending to `out`.
    fn open(
        &self,
        grant: Grant,
        identity: Option<PeerIdentity>,
        out: mpsc::UnboundedSender<String>,
        kind: session::Kind,
    ) -> SessionGuard {
        let policy = grant.policy.unwrap_or_else(|| self.inner.policy.clone());
        let session = Session::new(
            grant.root,
            policy,
            self.inner.config.clone(),
            identity,
            out,
            kind,
        );
        let number = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        let mut sessions = lock(&self.inner.sessions);
        sessions.retain(|_, s| s.strong_count() > 0);
        sessions.insert(number, Arc::downgrade(&session));
        SessionGuard(session)
    }
}

/// Whether the host of a `Host` header (`127.0.0.1:8080`, `[::1]:80`,
/// `localhost:3000`) is an IP address or `localhost`.
fn is_address_or_localhost(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// A session that ends when its transport lets go of it.
struct SessionGuard(Arc<Session>);

impl std::ops::Deref for SessionGuard {
    type Target = Arc<Session>;
    fn deref(&self) -> &Arc<Session> {
        &self.0
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl fmt::Debug for CapnWeb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapnWeb")
            .field("config", &self.inner.config)
            .field("origins", &self.inner.origins)
            .finish_non_exhaustive()
    }
}
