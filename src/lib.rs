//! tether: an RPyC-style remote-object runtime.
//!
//! Two peers share one symmetric connection. Each keeps a table of the
//! objects it handed out and passes *references* to them ([`NetRef`])
//! instead of copies; data ([`Value`]) travels by value. Calling a method
//! on a netref sends a request to the object's owner. A closure passed as an
//! argument ([`callback`]) becomes a netref on the other side, and when the
//! server calls it, the call travels back over the same connection, even
//! while the client's own call is still waiting.
//!
//! # Defining a service
//!
//! Put [`expose`] on an ordinary `impl` block. Marked methods become remote
//! methods (sync or async); doc comments become help text, parameter names
//! and types the signature. Anything else stays private to Rust.
//!
//! ```
//! use tether::{NetRef, Result};
//!
//! #[derive(Clone)]
//! struct LineCounter;
//!
//! #[tether::expose]
//! impl LineCounter {
//!     /// Call `function(line)` for each line of `fileobj`; return the count.
//!     #[method]
//!     async fn line_counter(&self, fileobj: NetRef, function: NetRef) -> Result<i64> {
//!         let mut count = 0;
//!         let mut lines = fileobj.iter();            // batched: few round trips
//!         while let Some(line) = lines.next().await {
//!             function.call((line?,)).await?;        // back to the client
//!             count += 1;
//!         }
//!         Ok(count)
//!     }
//! }
//! # async fn demo() -> tether::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("tether-doc-{}", std::process::id()));
//! # std::fs::write(&dir, "a\nb\n").unwrap();
//! # let path = dir.clone();
//!
//! // Serve it: a clone of the service is the root of every connection.
//! let server = tether::Server::bind("127.0.0.1:0").await?;
//! let addr = server.local_addr()?;
//! tokio::spawn(server.serve(LineCounter));
//!
//! // Call it dynamically, passing a local file and a closure by reference.
//! let conn = tether::connect(addr).await?;
//! let root = conn.root().await?;
//! let file = NetRef::new(tether::LocalFile::open(&path).await?);
//! let noisy = tether::callback(|line: String| async move {
//!     println!("Noisy: {line:?}");
//!     Ok(())
//! });
//! let n: i64 = root.call_method("line_counter", (file, noisy)).await?.try_into()?;
//! assert_eq!(n, 2);
//!
//! // Introspect it, as XML-RPC's system.listMethods / methodHelp do.
//! for member in root.inspect().await? {
//!     println!("{}{}: {}", member.name, member.signature, member.doc);
//! }
//!
//! // Batch calls: one frame out, one frame back, failures per call.
//! let mut batch = conn.batch();
//! batch.getattr(&root, "line_counter")?;
//! batch.call_method(&root, "no_such_method", ())?;
//! let results = batch.send().await?;
//! assert!(results[0].is_ok() && results[1].is_err());
//! # std::fs::remove_file(&dir).ok();
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! For a typed client, define the service as a trait with [`service`]: it
//! generates a proxy implementing the trait and a wrapper serving any
//! implementation.
//!
//! ```
//! #[tether::service]
//! pub trait Calc {
//!     /// Add two integers.
//!     async fn add(&self, a: i64, b: i64) -> tether::Result<i64>;
//! }
//!
//! #[derive(Clone)]
//! struct MyCalc;
//! impl Calc for MyCalc {
//!     async fn add(&self, a: i64, b: i64) -> tether::Result<i64> { Ok(a + b) }
//! }
//!
//! # async fn demo() -> tether::Result<()> {
//! let server = tether::Server::bind("127.0.0.1:0").await?;
//! let addr = server.local_addr()?;
//! tokio::spawn(server.serve(CalcObject(MyCalc)));
//!
//! let calc = CalcProxy::new(tether::connect(addr).await?.root().await?);
//! let three: i64 = calc.add(1, 2).await?;     // checked by the compiler
//! assert_eq!(three, 3);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! Data that derives serde travels by value; [`by_ref`] sends it by
//! reference instead, and [`Callback`] types a callback parameter.
//!
//! An [`Object`] can also be written by hand, for full control (iteration,
//! computed member lists); see its docs.
//!
//! # Layout
//!
//! - [`protocol`]: handshake, frames and the bincode codec;
//! - `connection`: [`Connection`], its reader and writer tasks, pending
//!   calls with deadlines and cancellation;
//! - `auth`: [`PeerIdentity`], [`Token`]s and the [`Grant`] a server gives
//!   each identity;
//! - `netref`: [`NetRef`], the one handle to local and remote objects;
//! - `service`: [`Object`], export tables, [`Policy`] and the dispatcher;
//! - `value`: [`Value`] and conversions, serde included;
//! - [`server`]: [`Server`], accepting connections (native and RPyC);
//! - [`rpyc`]: Python RPyC 6.x clients served by the same objects;
//! - [`transport`]: TCP, Unix sockets, [TLS](transport::tls) and in-memory pairs;
//! - [`blocking`]: the same API for code that does not use async;
//! - [`gateway`]: any object over XML-RPC and JSON-RPC 2.0 on HTTP
//!   (feature `gateway`, on by default);
//! - `trace`: one OpenTelemetry trace across a call's hops, callbacks
//!   included (feature `otel`, off by default).
//!
//! # Lifetime and release
//!
//! An owner counts how often it sent each object; the receiver keeps one
//! proxy per id and, when its last clone drops, sends one release with the
//! number it received (releases are batched). Everything a peer held is
//! released when the connection ends. [`Connection::stats`] shows the
//! counts. A connection closes itself once its last [`Connection`] handle
//! and last remote [`NetRef`] are dropped.
//!
//! # Cancel safety
//!
//! Dropping the future of a remote call cancels it: the owner is told and
//! aborts the work (including any calls that work was making in turn).
//! Every call has a deadline (30 s unless configured per connection with
//! [`Config::call_timeout`] or per reference with [`NetRef::with_timeout`]).
//! When a connection ends, every pending call on it fails at once with
//! [`ErrorKind::Closed`].
//!
//! # Security
//!
//! Deny by default: a peer reaches only the members an object declares,
//! `setattr`/`delattr` are off unless the [`Policy`] enables them, and
//! [`restrict`] narrows an object to a named subset. Object ids are only
//! valid on the connection that issued them and carry a generation, so a
//! released id never reaches a newer object. A peer that sends garbage, an
//! oversized frame or a too-deep value is disconnected with a clear error;
//! other connections are not affected.
//!
//! Peers can be authenticated with TLS certificates
//! ([`transport::tls`]) or a token challenge ([`Token`], [`Tokens`]); the
//! peer's [`PeerIdentity`] reaches served objects through
//! [`CallContext::peer_identity`], and a server can give each identity its
//! own root object and policy ([`Server::serve_per_identity`]). See
//! `SECURITY.md` for the threat model and defaults.
//!
//! # Stability
//!
//! Pre-1.0: the API and the wire protocol ([`protocol::PROTOCOL_VERSION`])
//! may change. Peers of different protocol versions refuse each other in
//! the handshake with a clear error.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

// Lets the crate use its own macros, whose expansions name `::tether`.
extern crate self as tether;

mod auth;
pub mod blocking;
#[cfg(feature = "capnweb")]
pub mod capnweb;
pub mod classic;
mod connection;
mod error;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "nats")]
pub mod nats;
mod netref;
pub mod protocol;
pub mod rpyc;
pub mod server;
mod service;
pub mod session;
#[cfg(feature = "otel")]
pub mod trace;
#[cfg(not(feature = "otel"))]
mod trace;
pub mod transport;
mod value;

pub use crate::auth::{AuthMethod, Grant, PeerIdentity, Token, Tokens};
pub use crate::connection::{connect, Batch, Builder, Config, Connection, Stats};
pub use crate::error::{Error, ErrorKind, RemoteError, Result};
pub use crate::netref::io::RemoteFile;
pub use crate::netref::{NetRef, Promise, RemoteIter, TypedPromise};
pub use crate::server::{Server, ServerBuilder};
pub use crate::service::builtin::process::Process;
pub use crate::service::builtin::stream::Stream;
pub use crate::service::{
    by_ref, callback, callback_sync, restrict, BoxFuture, CallContext, Callback, LocalFile, Member,
    MemberKind, Object, Policy,
};
pub use crate::value::convert::ListOf;
pub use crate::value::{
    from_value, to_value, Args, DateTime, FromArgs, FromValue, IntoArgs, Value,
};

/// Turn an inherent `impl` block into an [`Object`].
///
/// Methods marked `#[method]` become remote methods, `#[getter]` and
/// `#[setter]` methods become a remote attribute (the setter's name without
/// its `set_` prefix, or given: `#[setter(name)]`); every other method stays
/// private to Rust. Methods take `&self` and may be `async`; they may return
/// a plain value or a `Result` whose error converts into [`Error`]: `?`
/// works on tether's own errors, `std::io::Error` and the standard parse
/// and conversion errors (`"x".parse::<i64>()?` reaches a Python caller as
/// `ValueError`); for any other error write `.map_err(Error::from_std)?`.
/// A function the peer passes arrives as a [`Callback`] (or a [`NetRef`]).
/// Arguments and results convert through serde ([`to_value`]/[`from_value`]),
/// so any serde type works, and so do [`NetRef`] (objects by reference),
/// `Option` (may be left out), `Vec`, maps and tuples. A last `#[rest]
/// things: Vec<T>` parameter takes every remaining positional argument; a
/// `&CallContext` parameter receives the call's context. Doc comments become
/// help text and parameter names and types the signature, as
/// [`NetRef::inspect`] shows. Wrong argument counts or types reach the
/// caller as [`ErrorKind::BadArguments`] naming the method, the parameter
/// and the expected type. `#[expose(name = "Calc")]` sets the type name;
/// `#[expose(unhashable)]` makes `hash` on the object a
/// [`ErrorKind::Type`] error (`TypeError: unhashable type` in Python), as
/// for a mutable collection.
///
/// Operations that name no member are marked `#[op(..)]`: `#[op(repr)]` and
/// `#[op(str)]` (a plain `fn(&self) -> String`), `#[op(call)]` (calling the
/// object itself; arguments as for a method), `#[op(next)]` (iteration:
/// returns `Option<T>`, `None` at the end), `#[op(close)]`, and a `with`
/// block's two ends: `#[op(enter)]` (no arguments; what the block gets,
/// instead of the object itself) and `#[op(exit)]` (one argument, the
/// `Option<Error>` the block raised; returns `bool`, true to swallow the
/// error, or nothing). Python clients over RPyC, the shell's `with` and
/// [`NetRef::enter`]/[`NetRef::exit`] reach them.
///
/// ```
/// struct Calculator;
///
/// #[tether::expose]
/// impl Calculator {
///     /// Add two integers.
///     #[method]
///     fn add(&self, a: i64, b: i64) -> i64 { a + b }
///
///     /// Sum any number of floats.
///     #[method]
///     async fn total(&self, #[rest] things: Vec<f64>) -> f64 { things.iter().sum() }
///
///     fn helper(&self) {}   // not reachable by a peer
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let calc = tether::NetRef::new(Calculator);
/// assert_eq!(calc.call_method("add", (1, 2)).await.unwrap(), tether::Value::from(3));
/// assert_eq!(calc.call_method("total", (1.5, 2, 3)).await.unwrap(), tether::Value::from(6.5));
/// let add = &calc.inspect().await.unwrap()[0];
/// assert_eq!(add.signature, "(a: int, b: int) -> int");
/// assert_eq!(add.doc, "Add two integers.");
/// # });
/// ```
pub use tether_macros::expose;

/// Define a service as a trait: typed clients and any number of servers.
///
/// On a trait of `async fn`s taking `&self` and returning
/// `tether::Result<T>`, generates:
///
/// - the trait, its methods returning `impl Future + Send` (implementations
///   may still write `async fn`);
/// - `{Trait}Proxy`, a client over a [`NetRef`] implementing the trait, so
///   calls type-check: `calc.add(1, 2).await?`;
/// - `{Trait}Object<T>`, which serves any implementation as an [`Object`]
///   with the same members, signatures and docs as `#[expose]` would give;
/// - `{Trait}Promise`, a promised remote object ([`Promise`]): from
///   `proxy.promise()`, each method starts its call at once and returns
///   the promise of its result (another service's `{Other}Promise` for a
///   `{Other}Proxy`, a [`Promise`] for a [`NetRef`], a [`TypedPromise`]
///   otherwise), pipelined on a tether peer; awaiting gives the proxy.
///
/// A proxy serializes as the reference it wraps, so methods may take and
/// return other services' proxies.
///
/// ```
/// #[tether::service]
/// pub trait Calc {
///     /// Add two integers.
///     async fn add(&self, a: i64, b: i64) -> tether::Result<i64>;
/// }
///
/// struct MyCalc;
/// impl Calc for MyCalc {
///     async fn add(&self, a: i64, b: i64) -> tether::Result<i64> { Ok(a + b) }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (client, _server) = tether::transport::memory::pair(
///     tether::Builder::default(),
///     tether::Builder::default().root(CalcObject(MyCalc)),
/// ).await.unwrap();
/// let calc = CalcProxy::new(client.root().await.unwrap());
/// assert_eq!(calc.add(1, 2).await.unwrap(), 3);
/// assert_eq!(calc.promise().add(3, 4).await.unwrap(), 7);
/// # });
/// ```
pub use tether_macros::service;

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __private;
