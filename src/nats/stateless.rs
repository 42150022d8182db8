//! Stateless requests for any NATS client: one micro-service endpoint
//! `NAME.METHOD` (queue group `q`) per method of the root.
//!
//! The request body is JSON: an array of positional arguments, an object
//! of named ones, or empty for none. The reply is the JSON result. Errors
//! carry the services protocol's `Nats-Service-Error` (the message) and
//! `Nats-Service-Error-Code` headers: 400 for a request that is not one
//! (bad JSON, bad arguments), 404 for a method the object does not expose,
//! 413 for a body over the limit, 500 for an error the method raised or a
//! result that cannot be sent (a netref: values only, as through the HTTP
//! gateway), 503 when the instance is running as many requests as it
//! takes. Calls take the gateway's path ([`Gateway`]): the same
//! dispatcher, policy, deadline, depth limit and JSON mapping.
//!
//! With the feature `otel`, each request is served in a span of its own,
//! a child of the span its `traceparent` header names (as the gateway's
//! HTTP requests are; see [`crate::trace`]).
//!
//! Requests carry no identity: they are served the root an
//! unauthenticated peer gets, and a server that requires a token offers
//! no stateless endpoints at all. Who may send them is NATS's to say
//! (its accounts and permissions).

use std::sync::Arc;

use async_nats::service::{error::Error as ServiceError, Request, Service};
use futures_util::stream::{select_all, StreamExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::discovery::is_name;
use crate::gateway::fault::{Fault, FaultKind};
use crate::gateway::{jsonrpc, Gateway};
use crate::service::object::MemberKind;
use crate::{Args, Error, ErrorKind, Result};

/// Most stateless requests one instance runs at once.
pub(crate) const MAX_RUNNING: usize = 256;

/// Add an endpoint per method of `gateway`'s object to `service` (under
/// `name`, on `client`'s connection) and answer them until `stop`.
pub(crate) async fn serve(
    client: &async_nats::Client,
    service: &Service,
    name: &str,
    gateway: Gateway,
    stop: CancellationToken,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let members = gateway
        .members()
        .await
        .map_err(|f| Error::new(ErrorKind::Application, f.message().to_string()))?;
    let group = service.group(name);
    let mut endpoints = Vec::new();
    for member in members {
        if member.kind != MemberKind::Method || !is_name(&member.name) {
            continue;
        }
        let method = member.name.to_string();
        let endpoint = group
            .endpoint_builder()
            .name(&method)
            .add(&method)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    format!("cannot add the endpoint {name}.{method}: {e}"),
                )
            })?;
        endpoints.push(endpoint.map(move |request| (method.clone(), request)));
    }
    // Serving starts once the broker has the subscriptions.
    let _ = client.flush().await;
    let running = Arc::new(Semaphore::new(MAX_RUNNING));
    let mut requests = select_all(endpoints);
    Ok(async move {
        loop {
            let (method, request) = tokio::select! {
                _ = stop.cancelled() => break,
                next = requests.next() => match next {
                    Some(next) => next,
                    None => break,
                },
            };
            let Ok(permit) = running.clone().try_acquire_owned() else {
                let busy = ServiceError {
                    status: format!("busy: {MAX_RUNNING} requests are running"),
                    code: 503,
                };
                let _ = request.respond(Err(busy)).await;
                continue;
            };
            let gateway = gateway.clone();
            tokio::spawn(async move {
                answer(&gateway, &method, request).await;
                drop(permit);
            });
        }
    })
}

/// Run one request and reply; with the feature `otel`, in a span of its
/// own, a child of the span its `traceparent` header names.
async fn answer(gateway: &Gateway, method: &str, request: Request) {
    #[cfg(feature = "otel")]
    {
        use tracing::Instrument;
        let parent = crate::trace::nats_traceparent_of(request.message.headers.as_ref());
        let span = crate::trace::nats_span(request.message.subject.as_str(), parent);
        respond(gateway, method, request).instrument(span).await
    }
    #[cfg(not(feature = "otel"))]
    respond(gateway, method, request).await
}

/// Run one request and reply.
async fn respond(gateway: &Gateway, method: &str, request: Request) {
    let body = &request.message.payload;
    let limit = gateway.config().max_body;
    let reply = if body.len() > limit {
        Err(ServiceError {
            status: format!(
                "the request is {} bytes, over the limit of {limit}",
                body.len()
            ),
            code: 413,
        })
    } else {
        match call(gateway, method, body).await {
            Ok(body) => Ok(body.into()),
            Err(fault) => Err(ServiceError {
                status: fault.message().to_string(),
                code: code(fault.kind()),
            }),
        }
    };
    if let Err(err) = request.respond(reply).await {
        // Most likely a result over the broker's largest message.
        let failed = ServiceError {
            status: format!("the result of {method}() cannot be sent: {err}"),
            code: 500,
        };
        let _ = request.respond(Err(failed)).await;
    }
}

async fn call(gateway: &Gateway, method: &str, body: &[u8]) -> std::result::Result<Vec<u8>, Fault> {
    let args = arguments(body, gateway.config().max_depth)?;
    let result = gateway.call_method(method, args).await?;
    let json = jsonrpc::json_of(&result)?;
    Ok(serde_json::to_vec(&json).expect("JSON serializes"))
}

/// The arguments in a request body.
fn arguments(body: &[u8], max_depth: usize) -> std::result::Result<Args, Fault> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Args::new());
    }
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Fault::new(FaultKind::Parse, format!("malformed JSON: {e}")))?;
    match json {
        json @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {
            jsonrpc::arguments(json, max_depth)
        }
        _ => Err(Fault::new(
            FaultKind::InvalidParams,
            "the body must be a JSON array of arguments or an object of named ones",
        )),
    }
}

/// The `Nats-Service-Error-Code` for a fault.
fn code(kind: FaultKind) -> usize {
    match kind {
        FaultKind::Parse | FaultKind::InvalidRequest | FaultKind::InvalidParams => 400,
        FaultKind::MethodNotFound => 404,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_give_positional_named_or_no_arguments() {
        let args = arguments(b"[1, \"a\"]", 10).unwrap();
        assert_eq!(args.positional.len(), 2);
        let args = arguments(br#"{"b": 2}"#, 10).unwrap();
        assert_eq!(args.named.len(), 1);
        assert!(arguments(b"  ", 10).unwrap().positional.is_empty());
        assert_eq!(arguments(b"[1,", 10).unwrap_err().kind(), FaultKind::Parse);
        assert_eq!(
            arguments(b"7", 10).unwrap_err().kind(),
            FaultKind::InvalidParams
        );
    }
}
