//! The HTTP side: routes, and which protocol a request speaks.
//!
//! A request's protocol comes from its content type: `text/xml`,
//! `application/xml` or `…+xml` is XML-RPC, any type naming `json`
//! (`application/json`, `application/json-rpc`) is JSON-RPC. Without a
//! content type, or with `text/plain`, the body's first character decides
//! (`<` or `{`/`[`). Anything else is HTTP 415. The body itself (its
//! limit, deadline and content coding) is `body`'s.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::body::{self, Refusal};
use super::{jsonrpc, xmlrpc, Gateway};

/// `POST /` and `POST /RPC2`, both answering either protocol.
pub(crate) fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/", post(handle))
        .route("/RPC2", post(handle))
        .with_state(gateway)
}

/// Which protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Xml,
    Json,
}

/// One request, with the feature `otel` in a span of its own, a child of
/// the span its `traceparent` header names.
async fn handle(State(gateway): State<Gateway>, request: Request) -> Response {
    #[cfg(feature = "otel")]
    {
        use tracing::Instrument;
        let parent = crate::trace::traceparent_of(request.headers());
        let span = crate::trace::http_span(request.uri().path(), parent);
        respond(gateway, request).instrument(span).await
    }
    #[cfg(not(feature = "otel"))]
    respond(gateway, request).await
}

async fn respond(gateway: Gateway, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let received = body::receive(gateway.config(), &parts.headers, body, |headers| {
        declared_protocol(headers.get(header::CONTENT_TYPE)).map_err(|()| Refusal::media_type())
    })
    .await;
    let (declared, body) = match received {
        Ok(received) => received,
        Err(refusal) => return refusal.into_response(),
    };
    let protocol = match declared.or_else(|| sniff(&body)) {
        Some(protocol) => protocol,
        None => return Refusal::media_type().into_response(),
    };
    match protocol {
        Protocol::Xml => {
            let xml = xmlrpc::respond(&gateway, &body).await;
            ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response()
        }
        Protocol::Json => match jsonrpc::respond(&gateway, &body).await {
            Some(json) => (
                [(header::CONTENT_TYPE, "application/json")],
                json.to_string(),
            )
                .into_response(),
            // Notifications only: HTTP 200 with an empty body (204 would
            // break clients built on xmlrpc.client's transport).
            None => StatusCode::OK.into_response(),
        },
    }
}

/// The protocol the content type names; `None` when it leaves the choice
/// to the body; `Err` for a type that is neither.
fn declared_protocol(content_type: Option<&HeaderValue>) -> Result<Option<Protocol>, ()> {
    let Some(value) = content_type else {
        return Ok(None);
    };
    let text = value.to_str().map_err(drop)?;
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" | "text/plain" => Ok(None),
        "text/xml" | "application/xml" => Ok(Some(Protocol::Xml)),
        t if t.ends_with("+xml") => Ok(Some(Protocol::Xml)),
        t if t.contains("json") => Ok(Some(Protocol::Json)),
        _ => Err(()),
    }
}

/// The protocol a body's first visible character suggests.
fn sniff(body: &[u8]) -> Option<Protocol> {
    // A UTF-8 byte order mark is not visible.
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace())? {
        b'<' => Some(Protocol::Xml),
        b'{' | b'[' => Some(Protocol::Json),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(value: &'static str) -> Result<Option<Protocol>, ()> {
        declared_protocol(Some(&HeaderValue::from_static(value)))
    }

    #[test]
    fn content_types_name_the_protocol() {
        assert_eq!(declared("text/xml"), Ok(Some(Protocol::Xml)));
        assert_eq!(declared("Text/XML; charset=utf-8"), Ok(Some(Protocol::Xml)));
        assert_eq!(declared("application/json-rpc"), Ok(Some(Protocol::Json)));
        assert_eq!(declared("application/json"), Ok(Some(Protocol::Json)));
        assert_eq!(declared("text/plain"), Ok(None));
        assert_eq!(declared_protocol(None), Ok(None));
        assert_eq!(declared("image/png"), Err(()));
    }

    #[test]
    fn bodies_without_a_type_are_sniffed() {
        assert_eq!(sniff(b"  <?xml version='1.0'?>"), Some(Protocol::Xml));
        assert_eq!(sniff(b"\xef\xbb\xbf{\"jsonrpc\""), Some(Protocol::Json));
        assert_eq!(sniff(b"\n[{}]"), Some(Protocol::Json));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b""), None);
    }
}
