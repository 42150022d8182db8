//! Traces across calls: one call's spans on the caller, on the owner and
//! in the callbacks it makes join in one OpenTelemetry trace (feature
//! `otel`).
//!
//! With the feature on, tether makes a [`tracing`] span for each call on
//! both sides:
//!
//! | span | where | its parent |
//! |---|---|---|
//! | `tether.call` (`otel.kind` client) | the caller, around sending and waiting | the caller's current span |
//! | `tether.serve` (`otel.kind` server) | the owner, around running the operation | the caller's `tether.call`, from the request |
//! | `tether.http` (`otel.kind` server) | the gateway, around one HTTP request | the request's `traceparent` header |
//! | `tether.serve` (`otel.kind` internal) | the gateway, around each call in it | the `tether.http` span |
//! | `tether.serve` (`otel.kind` server) | the Cap'n Web endpoint, around each call | the `traceparent` header of the WebSocket upgrade or the HTTP batch |
//! | `tether.nats` (`otel.kind` server) | a stateless NATS request, around it | the message's `traceparent` header |
//! | `tether.serve` (`otel.kind` internal) | a stateless NATS request, around its call | the `tether.nats` span |
//!
//! Each span's `otel.name` is the operation (`add()`, `getattr 'name'`,
//! `batch of 3`), and `connection` the connection's number in logs. The
//! owner runs the operation inside its `tether.serve` span, so a call the
//! operation makes (a callback to the caller, a call to a third peer) is a
//! `tether.call` under it, and the trace follows it across every hop. A
//! pipelined chain, a batch, and a promise's later steps are traced the
//! same way (a promise's step is a child of the span the promise was made
//! in).
//!
//! Spans become OpenTelemetry spans through
//! [`tracing_opentelemetry`]'s layer, installed by the application with
//! its tracer and exporter of choice. Without such a layer the spans are
//! plain `tracing` spans (or nothing, if no subscriber wants them) and no
//! trace context is sent. The layer must be of the version tether builds
//! ([`tracing_opentelemetry`] and [`opentelemetry`] are re-exported here
//! to name it): a layer of another version is not seen, and traces stop
//! at tether.
//!
//! `examples/traces.rs` installs such a layer with the SDK's in-memory
//! exporter, makes a call whose method calls the caller back, and prints
//! the four spans of its one trace.
//!
//! # On the wire
//!
//! A request carries the caller's span as W3C Trace Context's
//! `traceparent` does: trace id (16 bytes), span id (8) and trace flags
//! (1; bit 0 is "sampled", which the owner's sampler follows). They
//! follow the request's nesting depth, last in the frame, only when the
//! caller is in a trace, and only to a peer speaking protocol 5 or later:
//! an older peer would refuse the bytes it does not know. A build
//! without the feature reads the context and ignores it, so the wire is
//! the same either way. A context shorter than its 25 bytes, or with an
//! id of all zeros, is a protocol error.
//!
//! Over HTTP, the gateway and the Cap'n Web endpoint read a
//! `traceparent` header, as stateless NATS requests read one among their
//! message's headers (version `00` and later versions' first four
//! fields, lowercase hex, ids not all zeros). One that does not parse is
//! ignored: the calls start a trace of their own, and the request is
//! served as without it.
//!
//! # Cost
//!
//! Without the feature: the branches that leave the context out, and a
//! message a word larger (the null call's instruction count, on `main` at
//! `a0e3baf`: 13,899 before, 14,056 with the feature off). With it, while no subscriber
//! takes `info` spans: no span is made, only a check per call and a
//! span-less wrapper around it (14,577). Once one does: a span per call
//! on each side, and for a traced call 26 bytes more per request.

#[cfg(feature = "otel")]
pub use opentelemetry;
#[cfg(feature = "otel")]
pub use tracing_opentelemetry;

#[cfg(not(feature = "otel"))]
use std::fmt::Display;
#[cfg(not(feature = "otel"))]
use std::future::Future;

use crate::protocol::frame::TraceContext;

/// The span of one of our calls, made before the request is sent: the
/// context the request carries, and the span the call runs in. Nothing
/// at all without the `otel` feature.
pub(crate) struct CallSpan {
    #[cfg(feature = "otel")]
    span: tracing::Span,
}

/// The span of one call we serve. Nothing at all without the `otel`
/// feature.
pub(crate) struct ServeSpan {
    #[cfg(feature = "otel")]
    span: tracing::Span,
}

#[cfg(not(feature = "otel"))]
impl CallSpan {
    /// A call to the peer on connection `connection`, doing `what`.
    #[inline(always)]
    pub(crate) fn start(_connection: u64, _what: &dyn Display) -> CallSpan {
        CallSpan {}
    }

    /// The context to send, when the peer takes one (`peer_takes_it`).
    #[inline(always)]
    pub(crate) fn context(&self, _peer_takes_it: bool) -> Option<TraceContext> {
        None
    }

    /// `call`, run in the span.
    #[inline(always)]
    pub(crate) fn instrument<F: Future>(self, call: F) -> F {
        call
    }
}

#[cfg(not(feature = "otel"))]
impl ServeSpan {
    /// Serving `what` for the peer on connection `connection`, called in
    /// the span `parent` names (none: the current span).
    #[inline(always)]
    pub(crate) fn start(
        _connection: u64,
        _what: &dyn Display,
        _parent: Option<TraceContext>,
    ) -> ServeSpan {
        ServeSpan {}
    }

    /// A call the gateway runs in the span of its HTTP request.
    #[cfg(feature = "gateway")]
    #[inline(always)]
    pub(crate) fn gateway(_what: &dyn Display) -> ServeSpan {
        ServeSpan {}
    }

    /// A call a Cap'n Web peer made, in the span its session's
    /// `traceparent` named (none: the current span).
    #[cfg(feature = "capnweb")]
    #[inline(always)]
    pub(crate) fn capnweb(_what: &dyn Display, _parent: Option<TraceContext>) -> ServeSpan {
        ServeSpan {}
    }

    /// `work`, run in the span.
    #[inline(always)]
    pub(crate) fn instrument<F: Future>(self, work: F) -> F {
        work
    }
}

/// `work`, to be spawned, run in the span current here (so what it
/// calls is traced under the span that started it).
#[cfg(not(feature = "otel"))]
#[inline(always)]
pub(crate) fn in_current_span<F: Future>(work: F) -> F {
    work
}

#[cfg(feature = "otel")]
mod otel {
    use std::fmt::Display;
    use std::future::Future;

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing::instrument::{Instrument, Instrumented};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::{CallSpan, ServeSpan, TraceContext};

    impl CallSpan {
        /// A call to the peer on connection `connection`, doing `what`.
        pub(crate) fn start(connection: u64, what: &dyn Display) -> CallSpan {
            if !wanted() {
                return CallSpan {
                    span: tracing::Span::none(),
                };
            }
            CallSpan {
                span: tracing::info_span!(
                    "tether.call",
                    otel.name = %what,
                    otel.kind = "client",
                    connection,
                ),
            }
        }

        /// The context to send, when the peer takes one (`peer_takes_it`)
        /// and the span is in an OpenTelemetry trace.
        pub(crate) fn context(&self, peer_takes_it: bool) -> Option<TraceContext> {
            if !peer_takes_it || self.span.is_disabled() {
                return None;
            }
            of_span(&self.span)
        }

        /// `call`, run in the span.
        pub(crate) fn instrument<F: Future>(self, call: F) -> Instrumented<F> {
            call.instrument(self.span)
        }
    }

    impl ServeSpan {
        /// Serving `what` for the peer on connection `connection`, called
        /// in the span `parent` names (none: the current span).
        pub(crate) fn start(
            connection: u64,
            what: &dyn Display,
            parent: Option<TraceContext>,
        ) -> ServeSpan {
            if !wanted() {
                return ServeSpan::none();
            }
            let span = under_remote(
                tracing::info_span!(
                    "tether.serve",
                    otel.name = %what,
                    otel.kind = "server",
                    connection,
                ),
                parent,
            );
            ServeSpan { span }
        }

        /// A call the gateway runs in the span of its HTTP request.
        #[cfg(feature = "gateway")]
        pub(crate) fn gateway(what: &dyn Display) -> ServeSpan {
            if !wanted() {
                return ServeSpan::none();
            }
            ServeSpan {
                span: tracing::info_span!(
                    "tether.serve",
                    otel.name = %what,
                    otel.kind = "internal",
                ),
            }
        }

        /// A call a Cap'n Web peer made, in the span its session's
        /// `traceparent` named (none: the current span).
        #[cfg(feature = "capnweb")]
        pub(crate) fn capnweb(what: &dyn Display, parent: Option<TraceContext>) -> ServeSpan {
            if !wanted() {
                return ServeSpan::none();
            }
            let span = under_remote(
                tracing::info_span!(
                    "tether.serve",
                    otel.name = %what,
                    otel.kind = "server",
                ),
                parent,
            );
            ServeSpan { span }
        }

        /// `work`, run in the span.
        pub(crate) fn instrument<F: Future>(self, work: F) -> Instrumented<F> {
            work.instrument(self.span)
        }

        fn none() -> ServeSpan {
            ServeSpan {
                span: tracing::Span::none(),
            }
        }
    }

    /// Whether any subscriber takes `info` spans: if none does, no span
    /// is made at all, not even the disabled one `tracing` would make and
    /// hand to the `log` crate when its `log` feature is on (a dependency
    /// may turn it on), which costs a tenth of a null call.
    #[inline(always)]
    fn wanted() -> bool {
        tracing::level_enabled!(tracing::Level::INFO)
    }

    /// The span of one HTTP request to the gateway, a child of the span
    /// its `traceparent` header names, if any.
    #[cfg(feature = "gateway")]
    pub(crate) fn http_span(path: &str, traceparent: Option<TraceContext>) -> tracing::Span {
        if !wanted() {
            return tracing::Span::none();
        }
        under_remote(
            tracing::info_span!(
                "tether.http",
                otel.name = %format_args!("POST {path}"),
                otel.kind = "server",
            ),
            traceparent,
        )
    }

    /// The span of one stateless NATS request to `subject`, a child of the
    /// span its `traceparent` header names, if any.
    #[cfg(feature = "nats")]
    pub(crate) fn nats_span(subject: &str, traceparent: Option<TraceContext>) -> tracing::Span {
        if !wanted() {
            return tracing::Span::none();
        }
        under_remote(
            tracing::info_span!(
                "tether.nats",
                otel.name = %subject,
                otel.kind = "server",
            ),
            traceparent,
        )
    }

    /// `work`, to be spawned, run in the span current here.
    pub(crate) fn in_current_span<F: Future>(work: F) -> Instrumented<F> {
        work.in_current_span()
    }

    /// The OpenTelemetry context of `span`, if it has a valid one (an
    /// OpenTelemetry layer is installed and records it).
    fn of_span(span: &tracing::Span) -> Option<TraceContext> {
        let cx = span.context();
        let span_ref = cx.span();
        let sc = span_ref.span_context();
        sc.is_valid().then(|| TraceContext {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    }

    /// `span`, made a child of the peer's span `parent` if there is one.
    fn under_remote(span: tracing::Span, parent: Option<TraceContext>) -> tracing::Span {
        if let Some(parent) = parent {
            set_remote_parent(&span, parent);
        }
        span
    }

    /// Make `span` a child of the peer's span `parent`.
    fn set_remote_parent(span: &tracing::Span, parent: TraceContext) {
        let remote = SpanContext::new(
            TraceId::from_bytes(parent.trace_id),
            SpanId::from_bytes(parent.span_id),
            TraceFlags::new(parent.flags),
            true,
            TraceState::default(),
        );
        // Fails only when no OpenTelemetry layer records the span: then
        // there is no trace to join.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}

#[cfg(all(feature = "otel", feature = "gateway"))]
pub(crate) use self::otel::http_span;
#[cfg(feature = "otel")]
pub(crate) use self::otel::in_current_span;
#[cfg(all(feature = "otel", feature = "nats"))]
pub(crate) use self::otel::nats_span;

/// The context the request's `traceparent` header names, when it has
/// exactly one that parses.
#[cfg(all(feature = "otel", feature = "gateway"))]
pub(crate) fn traceparent_of(headers: &axum::http::HeaderMap) -> Option<TraceContext> {
    only_one(headers.get_all("traceparent").iter().map(|v| v.as_bytes()))
}

/// The context a NATS message's `traceparent` header names, when it has
/// exactly one that parses.
#[cfg(all(feature = "otel", feature = "nats"))]
pub(crate) fn nats_traceparent_of(headers: Option<&async_nats::HeaderMap>) -> Option<TraceContext> {
    let values = headers?.get_all("traceparent");
    only_one(values.map(|v| v.as_str().as_bytes()))
}

/// The context named by the one `traceparent` value of a request; none
/// when there is none, more than one, or one that does not parse.
#[cfg(all(feature = "otel", feature = "gateway"))]
fn only_one<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Option<TraceContext> {
    match (values.next(), values.next()) {
        (Some(value), None) => parse_traceparent(value),
        _ => None,
    }
}

/// The context a W3C `traceparent` header names
/// (`{version}-{trace id}-{span id}-{flags}`, lowercase hex), if it is one
/// version `00` allows, or a later version starts with; `None` for
/// anything else, which the caller ignores.
#[cfg(all(feature = "otel", feature = "gateway"))]
pub(crate) fn parse_traceparent(header: &[u8]) -> Option<TraceContext> {
    fn hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
        if text.len() != 2 * N {
            return None;
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0; N];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(out)
    }
    let header = header.trim_ascii();
    let mut fields = header.split(|&c| c == b'-');
    let [version] = hex::<1>(fields.next()?)?;
    let trace_id = hex::<16>(fields.next()?)?;
    let span_id = hex::<8>(fields.next()?)?;
    let [flags] = hex::<1>(fields.next()?)?;
    let rest = fields.next();
    // Version ff is invalid; 00 has exactly four fields; a later version
    // may add fields after them, which are not read.
    let known = match version {
        0xff => false,
        0x00 => rest.is_none(),
        _ => true,
    };
    let trace = TraceContext {
        trace_id,
        span_id,
        flags,
    };
    (known && trace.is_valid()).then_some(trace)
}

#[cfg(all(test, feature = "otel", feature = "gateway"))]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_w3c_traceparent_is_read() {
        let trace = parse_traceparent(GOOD.as_bytes()).unwrap();
        assert_eq!(trace.trace_id[..4], [0x4b, 0xf9, 0x2f, 0x35]);
        assert_eq!(trace.trace_id[15], 0x36);
        assert_eq!(
            trace.span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(trace.flags, 1);
        // Surrounding blanks are not part of the value.
        assert_eq!(
            parse_traceparent(format!(" {GOOD}\t").as_bytes()),
            Some(trace)
        );
        // A later version: its first four fields, the rest not read.
        let later = GOOD.replacen("00", "cc", 1) + "-what-ever";
        assert_eq!(parse_traceparent(later.as_bytes()), Some(trace));
    }

    #[test]
    fn anything_else_is_ignored() {
        let bad = [
            "",
            "-",
            "00",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{e9}",
        ];
        for header in bad {
            assert_eq!(parse_traceparent(header.as_bytes()), None, "{header:?}");
        }
        // Not text at all.
        assert_eq!(parse_traceparent(&[0xff, 0xfe, b'-', 0]), None);
    }
}
