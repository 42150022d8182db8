//! Beyond one machine: finding servers, spreading load, and RPC through
//! a NATS message broker (feature `nats`, on by default).
//!
//! A [`Server`](crate::Server) given a [`Registration`] registers itself
//! on NATS as a micro service under a name (the services protocol,
//! ADR-32, so `nats micro ls`, `nats micro info NAME` and any NATS client
//! see it). Clients then find its instances by name instead of by
//! address:
//!
//! ```no_run
//! # #[derive(Clone)] struct Calculator;
//! # #[tether::expose] impl Calculator {
//! #     /// Add two integers.
//! #     #[method] fn add(&self, a: i64, b: i64) -> i64 { a + b }
//! # }
//! # async fn demo() -> tether::Result<()> {
//! use tether::nats::Registration;
//!
//! // An instance: listens on its own port, registered as "calc".
//! let server = tether::Server::builder()
//!     .nats(Registration::new("nats://127.0.0.1:4222", "calc"))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! tokio::spawn(server.serve(Calculator));
//!
//! // A client: finds an instance by name, connects to it directly.
//! let conn = tether::nats::connect("nats://127.0.0.1:4222", "calc").await?;
//! let sum: i64 = conn.root().await?.call_method("add", (1, 2)).await?.try_into()?;
//!
//! // The same through the broker, for a client with no route to it.
//! let tunnelled = tether::nats::connect_via_broker("nats://127.0.0.1:4222", "calc").await?;
//! # Ok(()) }
//! ```
//!
//! # How the pieces fit
//!
//! - [`registration`](Registration): the server side: the micro service,
//!   its metadata (direct endpoints, protocol version), and on shutdown
//!   leaving the broker;
//! - `discovery`: asking `$SRV.INFO.NAME` for the live [`Instance`]s and
//!   choosing among them (least recently used by this client first, ties
//!   at random);
//! - `connect`: the client side, [`Connector`]: direct first, then the
//!   next instance, then the broker ([`Route`]);
//! - `tunnel`: the broker tunnel, a byte stream over two subjects private
//!   to the connection, with sequence numbers (a lost message closes the
//!   connection with an error) and credit-based flow control; tether's
//!   whole protocol, handshake and token challenge and TLS included, runs
//!   over it unchanged;
//! - `stateless`: `NAME.METHOD` endpoints answering JSON requests from
//!   any NATS client through the HTTP gateway's call path.
//!
//! # Failover
//!
//! Each new connection goes to a live instance; a connection's objects
//! live on the instance that made them, so a connection lost with its
//! instance is lost. [`Connector::session`] gives a
//! [`Session`](crate::session::Session) that reconnects by name: calls
//! made after the loss run on another instance, and a call in flight when
//! its instance died fails with
//! [`OutcomeUnknown`](crate::ErrorKind::OutcomeUnknown) (it may or may not
//! have run there) and never runs twice.
//!
//! # Security
//!
//! The broker sees the tunnel's bytes and decides who may publish and
//! subscribe to a service's subjects: use NATS accounts and credentials
//! (`nats_options`) so strangers cannot reach them, and tether's own
//! token and TLS on top, which a tunnelled client must pass exactly as a
//! direct one. Stateless requests carry no identity (see `stateless`).

mod connect;
mod discovery;
mod registration;
mod stateless;
mod tunnel;

pub use self::connect::{connect, connect_via_broker, Connector, Route};
pub use self::discovery::{instances, Instance, META_ENDPOINTS, META_PROTOCOL};
pub(crate) use self::registration::Registered;
pub use self::registration::Registration;
pub(crate) use self::stateless::serve as serve_stateless;
pub use self::tunnel::TunnelStream;

/// The error an answer from a NATS micro service carries, if any: its
/// `Nats-Service-Error` (the message) and `Nats-Service-Error-Code` (0
/// when missing or not a number), as the services protocol defines them.
/// For reading the answers of stateless requests:
///
/// ```no_run
/// # async fn demo(client: tether::nats::async_nats::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let answer = client.request("calc.add", "[1]".into()).await?;
/// if let Some(err) = tether::nats::service_error(&answer) {
///     println!("{} {}", err.code, err.status);      // 400 Invalid params: ...
/// }
/// # Ok(()) }
/// ```
pub fn service_error(answer: &async_nats::Message) -> Option<async_nats::service::error::Error> {
    let headers = answer.headers.as_ref()?;
    let status = headers.get(async_nats::service::NATS_SERVICE_ERROR)?;
    let code = headers
        .get(async_nats::service::NATS_SERVICE_ERROR_CODE)
        .and_then(|c| c.as_str().parse().ok())
        .unwrap_or(0);
    Some(async_nats::service::error::Error {
        status: status.as_str().to_string(),
        code,
    })
}

/// The async-nats crate tether uses, for its [`ConnectOptions`](async_nats::ConnectOptions)
/// and for talking to the broker directly.
pub use async_nats;
