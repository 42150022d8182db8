//! The HTTP side: `GET /capnweb` upgrades to a WebSocket session, `POST
//! /capnweb` is one HTTP batch; both first check the request's origin and
//! bearer token.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::session::{Kind, Session};
use super::socket::{self, Frame, Outgoing};
use super::CapnWeb;
use crate::gateway::body;
use crate::gateway::listen::ConnectionHold;
use crate::protocol::frame::TraceContext;
use crate::Grant;

/// The path both transports are served at.
pub(crate) const PATH: &str = "/capnweb";

/// `GET` and `POST` at [`PATH`].
pub(crate) fn router(endpoint: CapnWeb) -> Router {
    Router::new()
        .route(PATH, get(websocket).post(batch))
        .with_state(endpoint)
}

/// A request the endpoint turns away before any session starts.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = (self.0, self.1).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
        }
        response
    }
}

impl CapnWeb {
    /// What this request's peer gets: its origin allowed, its token (if
    /// the endpoint asks for one) known.
    fn admit(&self, headers: &HeaderMap) -> Result<(Grant, Option<crate::PeerIdentity>), Refused> {
        if self.open_sessions().len() >= self.config().max_sessions {
            return Err(Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "too many Cap'n Web sessions open (limit {}; capnweb::Config::max_sessions)\n",
                    self.config().max_sessions
                ),
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            if !self.origin_allowed(origin, host) {
                tracing::debug!(origin, "Cap'n Web request refused: origin not allowed");
                return Err(Refused(
                    StatusCode::FORBIDDEN,
                    format!("origin {origin} is not allowed (see CapnWeb::allow_origin)\n"),
                ));
            }
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        self.grant(presented).map_err(|why| {
            tracing::debug!("Cap'n Web request refused: {why}");
            Refused(StatusCode::UNAUTHORIZED, format!("{why}\n"))
        })
    }
}

async fn websocket(State(endpoint): State<CapnWeb>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let (grant, identity) = match endpoint.admit(&parts.headers) {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    // Served by `serve`/`serve_router`: the connection's place and the stop
    // signal, kept by the session (which outlives the HTTP connection).
    let hold = parts.extensions.get::<ConnectionHold>().cloned();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let trace_parent = trace_parent(&parts.headers);
    let max = endpoint.config().max_message;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            run_socket(endpoint, grant, identity, socket, hold, trace_parent).await;
        })
}

/// One WebSocket session, from upgrade to close.
async fn run_socket(
    endpoint: CapnWeb,
    grant: Grant,
    identity: Option<crate::PeerIdentity>,
    socket: WebSocket,
    hold: Option<ConnectionHold>,
    trace_parent: Option<TraceContext>,
) {
    let (out, outgoing) = mpsc::unbounded_channel();
    let session = endpoint.open(grant, identity, out, Kind::Socket);
    traced_under(&session, trace_parent);
    let (sink, stream) = socket.split();
    let frames = stream.map(|message| {
        message.map(|message| match message {
            Message::Text(text) => Frame::Text(text.as_str().to_owned()),
            Message::Binary(_) => Frame::Binary,
            Message::Close(_) => Frame::Close,
            Message::Ping(_) | Message::Pong(_) => Frame::Control,
        })
    });
    let sink = sink.with(|out: Outgoing| async move {
        Ok::<_, axum::Error>(match out {
            Outgoing::Text(text) => Message::Text(text.into()),
            Outgoing::Ping => Message::Ping(Default::default()),
        })
    });
    let keepalive = endpoint.config().keepalive;
    let stopping = async move {
        match &hold {
            Some(hold) => hold.stopping().await,
            None => std::future::pending().await,
        }
    };
    socket::run(
        &session,
        frames,
        Box::pin(sink),
        outgoing,
        keepalive,
        stopping,
    )
    .await;
}

/// The span the request's `traceparent` header names (feature `otel`;
/// without it, none).
fn trace_parent(headers: &HeaderMap) -> Option<TraceContext> {
    #[cfg(feature = "otel")]
    return crate::trace::traceparent_of(headers);
    #[cfg(not(feature = "otel"))]
    {
        let _ = headers;
        None
    }
}

/// Make `session`'s calls children of `parent`, if any.
fn traced_under(session: &Session, parent: Option<TraceContext>) {
    #[cfg(feature = "otel")]
    if let Some(parent) = parent {
        session.set_trace_parent(parent);
    }
    #[cfg(not(feature = "otel"))]
    let _ = (session, parent);
}

async fn batch(State(endpoint): State<CapnWeb>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (grant, identity) = match endpoint.admit(&parts.headers) {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    let http = endpoint.http_config();
    let body = match body::receive(&http, &parts.headers, body, |_| Ok(())).await {
        Ok(((), body)) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return Refused(StatusCode::BAD_REQUEST, "the batch is not UTF-8\n".into()).into_response();
    };
    let lines: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').collect()
    };
    let max_batch = endpoint.config().max_batch;
    if lines.len() > max_batch {
        return Refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a batch of {} messages; at most {max_batch} (capnweb::Config::max_batch)\n",
                lines.len()
            ),
        )
        .into_response();
    }
    let (out, mut outgoing) = mpsc::unbounded_channel();
    let session = endpoint.open(grant, identity, out, Kind::Batch);
    traced_under(&session, trace_parent(&parts.headers));
    let mut aborted = false;
    for line in lines {
        if let Err(err) = session.receive(line) {
            tracing::debug!("Cap'n Web batch aborted: {err}");
            session.abort(&err);
            aborted = true;
            break;
        }
    }
    if !aborted {
        session.drained().await;
    }
    session.end();
    let mut answer = Vec::new();
    while let Ok(text) = outgoing.try_recv() {
        answer.push(text);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        answer.join("\n"),
    )
        .into_response()
}
