//! Connecting to a service by name.
//!
//! A [`Connector`] asks the broker for the service's live instances
//! ([`instances`](super::instances)), orders them least recently used
//! first, and connects directly to the first whose advertised endpoint
//! answers, trying the next when one fails. When none can be reached
//! directly (or the instances advertise no endpoint), [`Route::Auto`]
//! falls back to the broker tunnel; [`Route::Broker`] goes there at once
//! and [`Route::Direct`] never does. Either way the result is an ordinary
//! [`Connection`], with the settings, token and TLS of the [`Builder`]
//! given: tokens and TLS run over the tunnel exactly as over TCP.

use std::fmt;
use std::sync::Arc;

use async_nats::{Client, ConnectOptions};
use tokio::sync::OnceCell;

use super::discovery::{self, check_name, Instance, Picker};
use super::tunnel;
use crate::session::SessionBuilder;
use crate::{transport, Builder, Connection, Error, ErrorKind, Result};

/// Which way [`Connector::connect`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Route {
    /// Directly when an instance can be reached, else through the broker
    /// (the default).
    #[default]
    Auto,
    /// Directly only.
    Direct,
    /// Through the broker only (`connect_via_broker`).
    Broker,
}

/// Connects to instances of one service found on NATS. Clones share the
/// broker connection and the memory of which instance was used when.
///
/// ```no_run
/// # async fn demo() -> tether::Result<()> {
/// use tether::nats::{Connector, Route};
/// let calc = Connector::new("nats://127.0.0.1:4222", "calc")
///     .builder(tether::Connection::builder().token(tether::Token::new("s3cret")?))
///     .route(Route::Auto);
/// let conn = calc.connect().await?;            // one instance
/// let other = calc.connect().await?;           // the next one, if there are several
/// let sum: i64 = conn.root().await?.call_method("add", (1, 2)).await?.try_into()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connector {
    url: String,
    service: String,
    options: ConnectOptions,
    builder: Builder,
    route: Route,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    client: OnceCell<Client>,
    picker: Picker,
}

impl Connector {
    /// Connect to service `service` found on the NATS server at `url`.
    pub fn new(url: impl Into<String>, service: impl Into<String>) -> Connector {
        Connector {
            url: url.into(),
            service: service.into(),
            options: ConnectOptions::new(),
            builder: Builder::default(),
            route: Route::Auto,
            shared: Arc::default(),
        }
    }

    /// The settings of each connection: root served to the instance,
    /// [`Config`](crate::Config), token, TLS.
    pub fn builder(mut self, builder: Builder) -> Connector {
        self.builder = builder;
        self
    }

    /// How to connect to NATS itself: credentials, TLS (async-nats's
    /// options).
    pub fn nats_options(mut self, options: ConnectOptions) -> Connector {
        self.options = options;
        self.shared = Arc::default();
        self
    }

    /// Which way to connect (default [`Route::Auto`]).
    pub fn route(mut self, route: Route) -> Connector {
        self.route = route;
        self
    }

    /// The service's live instances now.
    pub async fn instances(&self) -> Result<Vec<Instance>> {
        discovery::instances(self.client().await?, &self.service).await
    }

    /// Connect to one instance. Bounded by the builder's
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout) per
    /// attempt. Finding the instances first costs one broker round trip
    /// plus the 50 ms the answers are gathered for (see
    /// [`instances`](super::instances)); [`Route::Broker`] skips it.
    pub async fn connect(&self) -> Result<Connection> {
        let found = match self.route {
            Route::Broker => Vec::new(),
            _ => self.instances().await?,
        };
        self.connect_among(found).await
    }

    /// Connect to one of `found` (from [`instances`](Connector::instances),
    /// kept by the caller): the same choice, order and fallback as
    /// [`connect`](Connector::connect), without asking the broker again.
    pub async fn connect_among(&self, found: Vec<Instance>) -> Result<Connection> {
        check_name(&self.service)?;
        let client = self.client().await?;
        if self.route == Route::Broker {
            return self.through_broker(client).await;
        }
        if found.is_empty() {
            return Err(Error::new(
                ErrorKind::Transport,
                format!(
                    "no instance of '{}' is registered on {}",
                    self.service, self.url
                ),
            ));
        }
        let mut failures = Vec::new();
        for instance in self.shared.picker.order(found) {
            for endpoint in &instance.endpoints {
                match self.direct(endpoint).await {
                    Ok(conn) => {
                        self.shared.picker.used(&instance.id);
                        return Ok(conn);
                    }
                    // Credentials are not a matter of reachability: another
                    // instance or the broker would refuse them as well.
                    Err(err) if err.kind() == ErrorKind::Denied => return Err(err),
                    Err(err) => failures.push(format!("{endpoint}: {}", err.message())),
                }
            }
        }
        if self.route == Route::Auto {
            match self.through_broker(client).await {
                Ok(conn) => return Ok(conn),
                Err(err) if err.kind() == ErrorKind::Denied => return Err(err),
                Err(err) => failures.push(format!("through the broker: {}", err.message())),
            }
        }
        if failures.is_empty() {
            failures.push("no instance advertises a direct endpoint".into());
        }
        Err(Error::new(
            ErrorKind::Transport,
            format!(
                "cannot connect to '{}': {}",
                self.service,
                failures.join("; ")
            ),
        ))
    }

    /// A [`Session`](crate::session::Session) whose reconnects find the
    /// service by name again, so they land on a live instance. Calls whose
    /// outcome was on an instance that is gone fail with
    /// [`ErrorKind::OutcomeUnknown`] (a session lives on the instance
    /// that opened it); the next call opens a new session on the new one.
    pub fn session(&self) -> SessionBuilder {
        let connector = self.clone();
        SessionBuilder::new(move || {
            let connector = connector.clone();
            Box::pin(async move { connector.connect().await })
        })
    }

    async fn client(&self) -> Result<&Client> {
        self.shared
            .client
            .get_or_try_init(|| async {
                self.options
                    .clone()
                    .connect(self.url.as_str())
                    .await
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Transport,
                            format!("cannot connect to NATS at {}: {e}", self.url),
                        )
                    })
            })
            .await
    }

    async fn direct(&self, endpoint: &str) -> Result<Connection> {
        let (tls, addr) = match endpoint.split_once("://") {
            Some(("tcp", addr)) => (false, addr),
            Some(("tls", addr)) => (true, addr),
            _ => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "not an endpoint this client knows",
                ))
            }
        };
        match (tls, self.builder.has_tls()) {
            (true, false) => Err(Error::new(
                ErrorKind::Transport,
                "the instance speaks TLS: give the builder a TlsClient",
            )),
            (false, true) => Err(Error::new(
                ErrorKind::Transport,
                "the instance speaks plain TCP, and this client requires TLS",
            )),
            _ => self.builder.clone().connect(addr).await,
        }
    }

    async fn through_broker(&self, client: &Client) -> Result<Connection> {
        let builder = self.builder.clone();
        transport::connect_within(builder.handshake_timeout(), async {
            let (stream, instance) = tunnel::open(client, &self.service).await?;
            let peer = format!("nats:{}/{instance}", self.service);
            builder.connect_io(stream, Some(peer)).await
        })
        .await
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("url", &self.url)
            .field("service", &self.service)
            .field("route", &self.route)
            .field("builder", &self.builder)
            .finish_non_exhaustive()
    }
}

/// Connect to an instance of `service` found on the NATS server at `url`,
/// directly when possible, else through the broker. See [`Connector`] for
/// the settings.
pub async fn connect(url: &str, service: &str) -> Result<Connection> {
    Connector::new(url, service).connect().await
}

/// Connect to an instance of `service` through the broker only: the whole
/// connection runs over NATS subjects.
pub async fn connect_via_broker(url: &str, service: &str) -> Result<Connection> {
    Connector::new(url, service)
        .route(Route::Broker)
        .connect()
        .await
}
