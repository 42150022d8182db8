//! Receiving a request body: its size limit and deadline, its content
//! coding, and reading to the end what is refused.
//!
//! A body is read whole, at most [`Config::max_body`] bytes, within
//! [`Config::body_timeout`]. `Content-Encoding: gzip` (or `x-gzip`) and
//! `deflate` (zlib, as HTTP defines it) are inflated from memory, the
//! output bounded by the same limit: inflating stops one byte past it, so
//! a small body that would inflate to gigabytes costs at most
//! `max_body + 1` bytes before its 413. `identity` is no coding at all;
//! any other coding, or more than one, is HTTP 415 (with
//! `Accept-Encoding` naming the ones taken); compressed data that does
//! not inflate is HTTP 400. No body is ever parsed as anything but what
//! it decodes to.
//!
//! A refused body is still read to its end, up to
//! [`Config::max_discard`] bytes, before the answer goes out: HTTP/1.1
//! clients commonly send the whole body before reading, and a connection
//! closed under them with bytes unread fails their write (or resets the
//! connection under the answer) instead of showing them the status.

use std::borrow::Cow;
use std::io::Read;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use flate2::read::{MultiGzDecoder, ZlibDecoder};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::Config;

/// The codings named in `Accept-Encoding` when one is refused.
const ACCEPTED_CODINGS: &str = "gzip, deflate";

/// A request refused before either protocol sees it: an HTTP status and a
/// line for people.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    message: Cow<'static, str>,
    /// The body was not read to its end: the connection must close.
    close: bool,
    /// The refusal is of the content coding: name the ones taken.
    name_codings: bool,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            close: false,
            name_codings: false,
        }
    }

    /// HTTP 415 for a content type that is neither protocol.
    pub(super) fn media_type() -> Refusal {
        Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send XML-RPC as text/xml or JSON-RPC as application/json\n",
        )
    }

    fn too_large(limit: usize, what: &str) -> Refusal {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body{what} exceeds the gateway's limit of {limit} bytes\n"),
        )
    }

    fn coding(message: String) -> Refusal {
        Refusal {
            name_codings: true,
            ..Refusal::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
        }
    }

    /// The HTTP status (for tests).
    #[cfg(test)]
    fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message).into_response();
        let headers = response.headers_mut();
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.name_codings {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(ACCEPTED_CODINGS),
            );
        }
        response
    }
}

/// The body of a request, read whole within `config`'s limits and
/// decoded. `check` looks at the request first (its content type, say):
/// a refusal from it is answered like the gateway's own, the body read to
/// its end first when the limits allow.
pub(crate) async fn receive<T>(
    config: &Config,
    headers: &HeaderMap,
    body: Body,
    check: impl FnOnce(&HeaderMap) -> Result<T, Refusal>,
) -> Result<(T, Bytes), Refusal> {
    let deadline = Instant::now() + config.body_timeout;
    let mut incoming = Incoming {
        stream: body.into_data_stream(),
        seen: 0,
        ended: false,
    };
    let receiving = async {
        let outcome = match check(headers) {
            Ok(checked) => read(config, headers, &mut incoming)
                .await
                .map(|body| (checked, body)),
            Err(refusal) => Err(refusal),
        };
        outcome.map_err(|mut refusal| {
            refusal.close = !incoming.ended;
            refusal
        })
    };
    let outcome = match tokio::time::timeout_at(deadline, receiving).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => {
            let mut refusal = Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {:?}\n",
                    config.body_timeout
                ),
            );
            refusal.close = true;
            return Err(refusal);
        }
    };
    let Err(mut refusal) = outcome else {
        return outcome;
    };
    // Read what is left of a refused body, unless the client is waiting
    // for `100 Continue` (reading would tell it to send) or the body is
    // larger than we take the trouble to read.
    let declared = declared_length(headers);
    if refusal.close
        && !expects_continue(headers)
        && declared.is_none_or(|n| n <= config.max_discard as u64)
    {
        // Within the body's deadline, as the rest of it was.
        let draining = incoming.drain(config.max_discard as u64);
        refusal.close = !tokio::time::timeout_at(deadline, draining)
            .await
            .unwrap_or(false);
    }
    Err(refusal)
}

/// Checks the headers, reads the body within the limit and decodes it.
async fn read(
    config: &Config,
    headers: &HeaderMap,
    incoming: &mut Incoming,
) -> Result<Bytes, Refusal> {
    let coding = Coding::of(headers)?;
    let limit = config.max_body;
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(Refusal::too_large(limit, ""));
    }
    let raw = incoming.read_to_end(limit).await?;
    coding.decode(raw, limit)
}

/// The body as it arrives, with how much of it has.
struct Incoming {
    stream: BodyDataStream,
    /// Bytes received so far.
    seen: u64,
    /// The end of the body was reached.
    ended: bool,
}

impl Incoming {
    /// The next piece; `None` at the end. A body that cannot be read (the
    /// client went away, or broke the chunked framing) is HTTP 400.
    async fn next(&mut self) -> Result<Option<Bytes>, Refusal> {
        match self.stream.next().await {
            Some(Ok(piece)) => {
                self.seen += piece.len() as u64;
                Ok(Some(piece))
            }
            None => {
                self.ended = true;
                Ok(None)
            }
            Some(Err(err)) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {err}\n"),
            )),
        }
    }

    /// The whole body, at most `limit` bytes; HTTP 413 as soon as it
    /// passes that. Nothing is allocated from a length the client merely
    /// declares.
    async fn read_to_end(&mut self, limit: usize) -> Result<Bytes, Refusal> {
        let mut whole = BytesMut::new();
        while let Some(piece) = self.next().await? {
            if whole.len() + piece.len() > limit {
                return Err(Refusal::too_large(limit, ""));
            }
            whole.extend_from_slice(&piece);
        }
        Ok(whole.freeze())
    }

    /// Reads the rest of the body and throws it away, as long as the
    /// whole body stays within `max` bytes; whether it reached the end.
    async fn drain(&mut self, max: u64) -> bool {
        while !self.ended && self.seen <= max {
            if self.next().await.is_err() {
                return false;
            }
        }
        self.ended && self.seen <= max
    }
}

/// A request body's content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
}

impl Coding {
    /// The coding `Content-Encoding` names: none (or `identity`), `gzip`
    /// (`x-gzip`) or `deflate`. Anything else, or two compressions, is
    /// HTTP 415; a header that is not text, HTTP 400.
    fn of(headers: &HeaderMap) -> Result<Coding, Refusal> {
        let mut coding = Coding::Identity;
        for value in headers.get_all(header::CONTENT_ENCODING) {
            let text = value.to_str().map_err(|_| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "the Content-Encoding header is not readable text\n",
                )
            })?;
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let this = match name.to_ascii_lowercase().as_str() {
                    "identity" => continue,
                    "gzip" | "x-gzip" => Coding::Gzip,
                    "deflate" => Coding::Deflate,
                    _ => {
                        return Err(Refusal::coding(format!(
                            "the gateway cannot decode the content coding {name:?}; \
                             send the body as it is, or with {ACCEPTED_CODINGS}\n"
                        )))
                    }
                };
                if coding != Coding::Identity {
                    return Err(Refusal::coding(
                        "the gateway decodes one content coding, not several\n".into(),
                    ));
                }
                coding = this;
            }
        }
        Ok(coding)
    }

    /// `raw` decoded, at most `limit` bytes of it: HTTP 413 past that,
    /// without inflating further; HTTP 400 when it does not decode.
    fn decode(self, raw: Bytes, limit: usize) -> Result<Bytes, Refusal> {
        match self {
            Coding::Identity => Ok(raw),
            Coding::Gzip => inflate(MultiGzDecoder::new(&raw[..]), "gzip", limit),
            Coding::Deflate => inflate(ZlibDecoder::new(&raw[..]), "deflate", limit),
        }
    }
}

/// Everything `decoder` gives, at most `limit` bytes: it is asked for one
/// byte more, never further.
fn inflate(decoder: impl Read, name: &str, limit: usize) -> Result<Bytes, Refusal> {
    let mut inflated = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|err| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid {name} data: {err}\n"),
            )
        })?;
    if inflated.len() > limit {
        return Err(Refusal::too_large(limit, " (inflated)"));
    }
    Ok(inflated.into())
}

/// The `Content-Length` the request declares, if readable.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the client waits for `100 Continue` before sending its body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::{GzEncoder, ZlibEncoder};
    use flate2::Compression;

    use super::*;

    fn coding(value: &'static str) -> Result<Coding, StatusCode> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(value));
        Coding::of(&headers).map_err(|r| r.status())
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap().into()
    }

    #[test]
    fn content_encodings_are_named_or_refused() {
        assert_eq!(Coding::of(&HeaderMap::new()).unwrap(), Coding::Identity);
        assert_eq!(coding("gzip"), Ok(Coding::Gzip));
        assert_eq!(coding("X-GZip"), Ok(Coding::Gzip));
        assert_eq!(coding("deflate"), Ok(Coding::Deflate));
        assert_eq!(coding("identity, gzip"), Ok(Coding::Gzip));
        assert_eq!(coding(""), Ok(Coding::Identity));
        let unsupported = Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(coding("br"), unsupported);
        assert_eq!(coding("gzip, gzip"), unsupported);
        assert_eq!(coding("gzip;q=1"), unsupported);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_bytes(b"gz\xffip").unwrap(),
        );
        assert_eq!(
            Coding::of(&headers).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn gzip_and_deflate_inflate_within_the_limit() {
        let text = b"<?xml version='1.0'?><methodCall/>".repeat(10);
        assert_eq!(
            Coding::Gzip.decode(gzip(&text), text.len()).unwrap(),
            &text[..]
        );
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&text).unwrap();
        let zlib = Bytes::from(zlib.finish().unwrap());
        assert_eq!(Coding::Deflate.decode(zlib, text.len()).unwrap(), &text[..]);
        // Concatenated gzip members are one body.
        let two = [gzip(b"<a"), gzip(b"/>")].concat();
        assert_eq!(Coding::Gzip.decode(two.into(), 10).unwrap(), &b"<a/>"[..]);
        // One byte over, inflated: 413.
        let refused = Coding::Gzip.decode(gzip(&text), text.len() - 1);
        assert_eq!(refused.unwrap_err().status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn broken_compressed_data_is_a_bad_request() {
        let whole = gzip(b"<?xml version='1.0'?><methodCall/>");
        let cases = [
            Bytes::from_static(b"<?xml version='1.0'?><methodCall/>"),
            whole.slice(..whole.len() - 4),
            [&whole[..], b"trailing"].concat().into(),
        ];
        for raw in cases {
            let refused = Coding::Gzip.decode(raw.clone(), 1 << 20);
            assert_eq!(
                refused.unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{raw:?}"
            );
        }
        let refused = Coding::Deflate.decode(whole, 1 << 20);
        assert_eq!(refused.unwrap_err().status(), StatusCode::BAD_REQUEST);
    }

    /// A reader that counts the bytes it gives.
    struct Counted<R> {
        inner: R,
        given: usize,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.given += n;
            Ok(n)
        }
    }

    #[test]
    fn a_gzip_bomb_is_inflated_no_further_than_the_limit() {
        // 1 MiB of zeros is about 1 KiB of gzip; 1024 copies, one gzip
        // member each, inflate to 1 GiB.
        let member = gzip(&vec![0; 1 << 20]);
        let bomb = member.repeat(1024);
        let limit = 64 * 1024;
        let mut counted = Counted {
            inner: MultiGzDecoder::new(&bomb[..]),
            given: 0,
        };
        let refused = inflate(&mut counted, "gzip", limit);
        assert_eq!(refused.unwrap_err().status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(counted.given, limit + 1);
    }
}
