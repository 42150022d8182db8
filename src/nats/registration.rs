//! A server registered on NATS as a micro service.
//!
//! [`Registration`] is given to [`ServerBuilder::nats`]; binding then
//! connects to the broker and starts the instance as a NATS micro service
//! (async-nats's `service` module answers `$SRV.PING`, `$SRV.INFO` and
//! `$SRV.STATS` for all services, by name and by instance id, and counts
//! requests and errors per endpoint). Its metadata carries the instance's
//! direct endpoints and tether's protocol version. Serving adds the
//! endpoints: `NAME.tether-tunnel` (the [broker tunnel](super::tunnel))
//! and one `NAME.METHOD` per method of the root ([stateless
//! requests](super::stateless)). Shutting the server down stops the
//! micro service first, so the instance no longer answers `$SRV.PING`
//! before its connections close.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use async_nats::service::{Service, ServiceExt};
use async_nats::{Client, ConnectOptions};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::discovery::{check_name, META_ENDPOINTS, META_PROTOCOL};
use super::tunnel::{self, Flow, Opening, TunnelStream};
use crate::{Error, ErrorKind, Result};

/// How a [`Server`](crate::Server) registers on NATS: the broker, the
/// service name, and what it offers there.
///
/// ```no_run
/// # #[derive(Clone)] struct Calculator;
/// # impl tether::Object for Calculator { fn type_name(&self) -> &str { "Calculator" } }
/// # async fn demo() -> tether::Result<()> {
/// use tether::nats::Registration;
/// let server = tether::Server::builder()
///     .nats(Registration::new("nats://127.0.0.1:4222", "calc").version("1.2.0"))
///     .bind("127.0.0.1:0")
///     .await?;
/// server.serve(Calculator).await
/// # }
/// ```
#[derive(Clone)]
pub struct Registration {
    url: String,
    name: String,
    version: String,
    description: String,
    options: ConnectOptions,
    advertise: Option<Vec<String>>,
    tunnel: bool,
    stateless: bool,
    inbox_prefix: String,
}

/// Where tunnel clients receive unless told otherwise: NATS's own
/// default inbox prefix.
pub(crate) const INBOX_PREFIX: &str = "_INBOX";

impl Registration {
    /// Register as service `name` on the NATS server at `url`
    /// (`nats://HOST:PORT`; several comma-separated).
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Registration {
        Registration {
            url: url.into(),
            name: name.into(),
            version: "0.0.0".into(),
            description: String::new(),
            options: ConnectOptions::new(),
            advertise: None,
            tunnel: true,
            stateless: true,
            inbox_prefix: INBOX_PREFIX.into(),
        }
    }

    /// The service's semver version (default `0.0.0`).
    pub fn version(mut self, version: impl Into<String>) -> Registration {
        self.version = version.into();
        self
    }

    /// The description `$SRV.INFO` shows.
    pub fn description(mut self, description: impl Into<String>) -> Registration {
        self.description = description.into();
        self
    }

    /// How to connect to NATS: credentials, TLS, names (async-nats's own
    /// options; default: none). The registration installs its own event
    /// callback (to know when the broker connection has closed, and to
    /// log its events at debug; async-nats logs them at info itself),
    /// replacing one set here.
    pub fn nats_options(mut self, options: ConnectOptions) -> Registration {
        self.options = options;
        self
    }

    /// The direct endpoints to publish (`tcp://HOST:PORT` or
    /// `tls://HOST:PORT`) instead of the address bound. Needed when the
    /// server binds an unspecified address (`0.0.0.0`), which names no
    /// host a client could reach; an empty list publishes none, so
    /// clients use the broker tunnel.
    pub fn advertise(mut self, endpoints: impl IntoIterator<Item = String>) -> Registration {
        self.advertise = Some(endpoints.into_iter().collect());
        self
    }

    /// Accept connections through the broker (default: yes).
    pub fn tunnel(mut self, on: bool) -> Registration {
        self.tunnel = on;
        self
    }

    /// The prefix every tunnel client's inbox must start with (default
    /// `_INBOX`, NATS's own; set it to the clients'
    /// `custom_inbox_prefix`). The instance publishes a tunnel's bytes to
    /// the inbox the client names, so it refuses any other subject: a
    /// stranger cannot make it publish to `$JS.API.…` or to another
    /// service with its permissions.
    pub fn tunnel_inbox_prefix(mut self, prefix: impl Into<String>) -> Registration {
        self.inbox_prefix = prefix.into();
        self
    }

    /// Answer stateless JSON requests on `NAME.METHOD` (default: yes, on
    /// a server that does not require a token).
    pub fn stateless(mut self, on: bool) -> Registration {
        self.stateless = on;
        self
    }

    /// Connect to the broker and start the micro service; `bound` is the
    /// server's own address (`None` for a Unix socket), `tls` whether it
    /// speaks TLS.
    pub(crate) async fn register(self, bound: Option<SocketAddr>, tls: bool) -> Result<Registered> {
        check_name(&self.name)?;
        let closed = CancellationToken::new();
        let on_close = closed.clone();
        let name = self.name.clone();
        let client = self
            .options
            .clone()
            .event_callback(move |event| {
                let on_close = on_close.clone();
                let name = name.clone();
                async move {
                    match event {
                        async_nats::Event::Closed => on_close.cancel(),
                        event => tracing::debug!(service = %name, %event, "NATS connection"),
                    }
                }
            })
            .connect(self.url.as_str())
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    format!("cannot connect to NATS at {}: {e}", self.url),
                )
            })?;
        let endpoints = match self.advertise.clone() {
            Some(list) => list,
            None => bound
                .filter(|addr| !addr.ip().is_unspecified())
                .map(|addr| vec![format!("{}://{addr}", if tls { "tls" } else { "tcp" })])
                .unwrap_or_default(),
        };
        let metadata = HashMap::from([
            (META_ENDPOINTS.to_string(), endpoints.join(",")),
            (
                META_PROTOCOL.to_string(),
                crate::protocol::handshake::PROTOCOL_VERSION.to_string(),
            ),
        ]);
        let service = client
            .service_builder()
            .description(&self.description)
            .metadata(metadata)
            .start(&self.name, &self.version)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::BadArguments,
                    format!("cannot register '{}' on NATS: {e}", self.name),
                )
            })?;
        let tunnels = match self.tunnel {
            true => Some(
                service
                    .group(&self.name)
                    .endpoint_builder()
                    .name(tunnel::ENDPOINT)
                    .add(tunnel::ENDPOINT)
                    .await
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Transport,
                            format!("cannot add the tunnel endpoint: {e}"),
                        )
                    })?,
            ),
            false => None,
        };
        // Subscribing only queues the request to the broker: wait until it
        // has them all, so that once binding returns every client finds
        // this instance (a round trip: the broker answers in order).
        client.flush().await.map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                format!("cannot register '{}' on NATS: {e}", self.name),
            )
        })?;
        let id = service.info().await.id;
        tracing::info!(service = %self.name, %id, nats = %self.url,
            endpoints = %endpoints.join(","), "registered on NATS");
        Ok(Registered {
            inbox_prefix: format!("{}.", self.inbox_prefix),
            closed,
            id,
            name: self.name,
            stateless: self.stateless,
            client,
            service: Some(service),
            tunnels,
        })
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("url", &self.url)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("advertise", &self.advertise)
            .field("tunnel", &self.tunnel)
            .field("stateless", &self.stateless)
            .finish_non_exhaustive()
    }
}

/// A running registration, owned by the server.
pub(crate) struct Registered {
    /// The instance id the services protocol gave this server.
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) stateless: bool,
    pub(crate) client: Client,
    /// What a tunnel client's inbox must start with (dot included).
    inbox_prefix: String,
    /// Cancelled once the broker connection has closed.
    closed: CancellationToken,
    pub(crate) service: Option<Service>,
    tunnels: Option<async_nats::service::endpoint::Endpoint>,
}

impl Registered {
    /// Accept tunnel openings until `stop`, handing each new stream (and a
    /// name for its peer) to `accepted`.
    pub(crate) fn accept_tunnels(
        &mut self,
        accepted: mpsc::Sender<(TunnelStream, String)>,
        stop: CancellationToken,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let mut requests = self.tunnels.take()?;
        let client = self.client.clone();
        let name = self.name.clone();
        let id = self.id.clone();
        let prefix = self.inbox_prefix.clone();
        Some(async move {
            loop {
                let request = tokio::select! {
                    _ = stop.cancelled() => break,
                    request = requests.next() => match request {
                        Some(request) => request,
                        None => break,
                    },
                };
                match open_for(&client, &request, &id, &prefix).await {
                    Ok((stream, peer)) => {
                        if accepted.send((stream, peer)).await.is_err() {
                            break;
                        }
                    }
                    Err(why) => {
                        tracing::info!(service = %name, %why, "tunnel refused");
                        let _ = request
                            .respond(Err(async_nats::service::error::Error {
                                status: why,
                                code: 400,
                            }))
                            .await;
                    }
                }
            }
        })
    }

    /// Leave the broker: stop answering the services protocol and the
    /// endpoints, and flush so the broker knows at once. Tunnels already
    /// open go on until the server closes them.
    pub(crate) async fn deregister(&mut self) {
        if let Some(service) = self.service.take() {
            let _ = service.stop().await;
        }
        let _ = self.client.flush().await;
    }

    /// Close the broker connection, once every tunnel has said goodbye,
    /// and wait until it is closed: from then on the broker knows nothing
    /// of this instance (no subscription answers `$SRV.PING`).
    pub(crate) async fn close(&self) {
        let _ = self.client.flush().await;
        if self.client.drain().await.is_ok() {
            let bound = std::time::Duration::from_secs(10);
            if tokio::time::timeout(bound, self.closed.cancelled())
                .await
                .is_err()
            {
                tracing::warn!(service = %self.name, "the NATS connection did not close within {bound:?}");
            }
        }
    }
}

/// A server dropped without shutting down (its serving task aborted, say)
/// still leaves the broker: the micro service stops answering, and the
/// endpoints' subscriptions go with the tasks that held them.
impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = service.stop().await;
                });
            }
        }
    }
}

/// Answer one opening request: subscribe our end, reply with its inbox.
async fn open_for(
    client: &Client,
    request: &async_nats::service::Request,
    id: &str,
    inbox_prefix: &str,
) -> std::result::Result<(TunnelStream, String), String> {
    let theirs: Opening = serde_json::from_slice(&request.message.payload)
        .map_err(|e| format!("not a tunnel opening: {e}"))?;
    theirs.check()?;
    if !theirs.inbox.starts_with(inbox_prefix) || theirs.inbox.len() == inbox_prefix.len() {
        return Err(format!(
            "the tunnel inbox must be under {inbox_prefix}> on this instance"
        ));
    }
    let inbox = client.new_inbox();
    let subscription = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    let mut ours = Opening::offer(client, inbox);
    ours.instance = Some(id.to_string());
    let flow = Flow::between(&ours, &theirs, client);
    let answer = serde_json::to_vec(&ours).expect("an opening serializes");
    request
        .respond(Ok(answer.into()))
        .await
        .map_err(|e| format!("cannot answer: {e}"))?;
    let peer = format!("nats:{}", theirs.inbox);
    Ok((
        TunnelStream::new(client.clone(), subscription, theirs.inbox, flow),
        peer,
    ))
}
