//! From a frame to a message: inflating, the envelope, brine within the
//! connection's decoding budget, unboxing.
//!
//! # Budget
//!
//! A frame's bytes are bounded by the frame limit, but what they decode to
//! is not: a one-byte `None` becomes a 32-byte value, and a compressed
//! frame inflates first. So brine charges what it builds to a
//! [`DecodeBudget`] of what the connection has left of
//! [`Config::max_decoded_bytes`](crate::Config::max_decoded_bytes): the
//! arguments of requests still being served are held
//! ([`HeldBytes`](crate::protocol::budget::HeldBytes)) until their call
//! ends. The envelope's header (type, sequence number, handler) is
//! read before the body, so a body over the budget is not built but still
//! walked to its end without allocating, which finds every reference the
//! peer counted as sent (each is released with `DEL`, as if a proxy had
//! been made and dropped); then the request alone is answered with
//! [`ErrorKind::LimitExceeded`](crate::ErrorKind::LimitExceeded), or our
//! call that the reply answers fails with it, and the connection goes on.
//! `DEL` and `CLOSE` are read within a small budget of their own
//! (`CONTROL_BUDGET`), whatever calls in progress hold.
//!
//! What is charged is the brine tree; unboxing turns it into tether values
//! one for one (moving text and bytes, not copying them), so for a moment
//! both trees' nodes exist: a frame may briefly take up to twice its
//! charge in nodes.
//!
//! # Fairness
//!
//! The reader of a connection decodes its frames one at a time, in order.
//! A frame whose payload, or inflated output, is over [`INLINE_MAX`] bytes
//! is inflated, decoded and unboxed on tokio's blocking pool, a few at a
//! time process-wide (`protocol::aside`), and the reader waits for it
//! there: the runtime's
//! worker threads, which every connection's tasks share, are never held
//! by one peer's large or compressed frames, and that peer's next frame
//! waits, so order is kept. Smaller frames, nearly all of them, are
//! decoded in place, where a hand-off would cost more than the work.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::boxing;
use super::brine::{Brine, BrineError};
use super::envelope::{self, EnvelopeError, Header, Kind};
use super::frame::{FrameError, Inflater, RawFrame};
use super::handler;
use super::id_pack::IdPack;
use super::session::{Refs, State};
use super::vinegar;
use crate::error::raise;
use crate::protocol::budget::{DecodeBudget, HeldGuard};
use crate::{Error, NetRef, Result, Value};

/// Frames larger than this (payload, or inflated output) are decoded on
/// the blocking pool; smaller ones where they are read.
pub(crate) const INLINE_MAX: usize = 64 * 1024;

/// Distinct references of an over-budget message remembered before their
/// releases are sent.
const RELEASE_BATCH: usize = 1024;

/// What a `DEL` or `CLOSE` may decode to whatever the connection has left:
/// a release must not be lost because calls in progress hold the budget
/// (an honest one is an id pack and a count, under 200 bytes).
const CONTROL_BUDGET: usize = 4096;

/// One message of the peer's, ready to route.
pub(crate) enum Incoming {
    /// A request, its arguments unboxed with the references among them
    /// (or why they could not be); its decoded bytes are held until it has
    /// been served.
    Request {
        seq: i64,
        handler: i64,
        args: Result<(Vec<Value>, Vec<NetRef>)>,
        held: HeldGuard,
    },
    /// A `DEL`, as its raw box: only the object's id is needed.
    Release { seq: i64, args: Brine },
    /// `CLOSE`: never answered, the connection ends.
    Close,
    /// The outcome of our request `seq`: a reply or an exception.
    Outcome { seq: i64, result: Result<Value> },
    /// A request answered with `error` without running (over the budget).
    Refused {
        seq: i64,
        handler: i64,
        error: Error,
    },
}

/// Why a frame ends the connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// An RPyC 5.x peer, with the sequence number of its request, if any.
    #[error("{}", EnvelopeError::Version5)]
    Version5(Option<Brine>),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
}

impl From<BrineError> for Failure {
    fn from(e: BrineError) -> Failure {
        Failure::Envelope(e.into())
    }
}

/// Decode `frame`, in place or on the blocking pool (see "Fairness").
pub(crate) async fn decode_frame(
    state: &Arc<State>,
    frame: RawFrame,
) -> std::result::Result<Incoming, Failure> {
    let held = state.held.get();
    let limit = state.held.left(state.config.max_decoded_bytes);
    let max_len = state.config.max_frame_len;
    let payload = if frame.compressed {
        let mut inflater = Inflater::new(frame.payload, max_len);
        if inflater.run(INLINE_MAX)? {
            Payload::Plain(inflater.finish()?)
        } else {
            Payload::Inflating(inflater)
        }
    } else {
        Payload::Plain(frame.payload)
    };
    match payload {
        Payload::Plain(bytes) if bytes.len() <= INLINE_MAX => decode(state, &bytes, limit, held),
        large => {
            let state = state.clone();
            crate::protocol::aside::decode_aside(move || {
                let bytes = match large {
                    Payload::Plain(bytes) => bytes,
                    Payload::Inflating(inflater) => inflater.finish()?,
                };
                decode(&state, &bytes, limit, held)
            })
            .await
            .unwrap_or_else(|| {
                Err(Failure::Envelope(EnvelopeError::Shape(
                    "a message whose decoding panicked",
                )))
            })
        }
    }
}

enum Payload {
    Plain(Bytes),
    Inflating(Inflater),
}

/// A payload's header, and its body built or found over the budget.
pub(crate) struct Parsed {
    pub(crate) header: Header,
    pub(crate) body: Body,
}

pub(crate) enum Body {
    /// The body, and the bytes charged for it.
    Built(Brine, usize),
    /// Not built: it decodes to more than the budget.
    OverBudget(DecodeBudget),
}

/// Read `payload` within `limit` bytes of values; for a body over the
/// limit, call `mine` with each reference of the sender's it carries.
pub(crate) fn parse(
    payload: &[u8],
    limit: usize,
    mine: &mut dyn FnMut(IdPack),
) -> std::result::Result<Parsed, Failure> {
    let (header, mut body) = match Header::parse(payload) {
        Ok(parsed) => parsed,
        Err(EnvelopeError::Version5) => {
            return Err(Failure::Version5(envelope::version5_seq(payload)))
        }
        Err(e) => return Err(e.into()),
    };
    let depth = header.body_depth();
    let start = body.mark();
    let control = header.kind == Kind::Request
        && (header.handler == handler::DEL || header.handler == handler::CLOSE);
    let limit = if control {
        limit.max(CONTROL_BUDGET)
    } else {
        limit
    };
    let mut budget = DecodeBudget::new(limit);
    let body = match body.value_within(depth, &mut budget) {
        Ok(value) => {
            body.finish()?;
            Body::Built(value, budget.used())
        }
        Err(BrineError::OverBudget) => {
            debug_assert!(budget.exceeded());
            body.reset(start);
            if header.kind == Kind::Exception {
                body.skip(depth)?;
            } else {
                boxing::scan_mine(&mut body, depth, mine)?;
            }
            body.finish()?;
            Body::OverBudget(budget)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Parsed { header, body })
}

/// Decode one payload within `limit` bytes of values (`held` of the
/// connection's budget being held by calls in progress).
fn decode(
    state: &Arc<State>,
    payload: &[u8],
    limit: usize,
    held: usize,
) -> std::result::Result<Incoming, Failure> {
    let parsed = {
        let mut releases = Releases::new(state);
        parse(payload, limit, &mut |pack| releases.add(pack))?
    };
    let header = parsed.header;
    if header.kind == Kind::Request && header.handler == handler::CLOSE {
        return Ok(Incoming::Close);
    }
    let (value, used) = match parsed.body {
        Body::Built(value, used) => (value, used),
        Body::OverBudget(budget) => return Ok(over_budget(header, budget.error(held))),
    };
    let seq = header.seq;
    Ok(match header.kind {
        Kind::Request if header.handler == handler::DEL => Incoming::Release { seq, args: value },
        Kind::Request => {
            let refs = Refs::new(state);
            let args = boxing::unbox(value, &refs).and_then(|v| match v {
                Value::List(items) => {
                    let refs = references(&items);
                    Ok((items, refs))
                }
                other => Err(raise::type_mismatch("an argument tuple", other.type_name())),
            });
            Incoming::Request {
                seq,
                handler: header.handler,
                args,
                held: state.held.hold(used),
            }
        }
        Kind::Reply => Incoming::Outcome {
            seq,
            result: boxing::unbox(value, &Refs::new(state)),
        },
        Kind::Exception => Incoming::Outcome {
            seq,
            result: Err(vinegar::load(&value)),
        },
    })
}

/// Read one whole frame (header, payload, trailer) as a connection under
/// `config` would, with no connection behind it: an error of kind
/// `Protocol` for a frame that would close the connection, of kind
/// `LimitExceeded` for a message that would fail alone. Decodes in place.
pub(crate) fn read_detached(frame: &[u8], config: &crate::Config) -> Result<()> {
    use tokio_util::codec::Decoder;
    let protocol = |e: &dyn std::fmt::Display| raise::protocol(format!("protocol violation: {e}"));
    let mut buf = bytes::BytesMut::from(frame);
    let frame = super::frame::FrameDecoder::new(config.max_frame_len)
        .decode(&mut buf)
        .map_err(|e| protocol(&e))?
        .ok_or_else(|| protocol(&"an incomplete frame"))?;
    let payload = if frame.compressed {
        Inflater::new(frame.payload, config.max_frame_len)
            .finish()
            .map_err(|e| protocol(&e))?
    } else {
        frame.payload
    };
    match parse(&payload, config.max_decoded_bytes, &mut drop) {
        Ok(Parsed {
            body: Body::OverBudget(budget),
            ..
        }) => Err(budget.error(0)),
        Ok(_) => Ok(()),
        Err(e) => Err(protocol(&e)),
    }
}

/// The references among `values`, at any depth (cheap clones).
fn references(values: &[Value]) -> Vec<NetRef> {
    fn walk(value: &Value, out: &mut Vec<NetRef>) {
        match value {
            Value::Ref(netref) => out.push(netref.clone()),
            Value::List(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                walk(k, out);
                walk(v, out);
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    values.iter().for_each(|v| walk(v, &mut out));
    out
}

fn over_budget(header: Header, error: Error) -> Incoming {
    match header.kind {
        Kind::Request => Incoming::Refused {
            seq: header.seq,
            handler: header.handler,
            error,
        },
        Kind::Reply | Kind::Exception => Incoming::Outcome {
            seq: header.seq,
            result: Err(error),
        },
    }
}

/// The references of a message that was not built, counted per object and
/// released with `DEL` (in batches, so a message naming many objects holds
/// little while it is walked).
struct Releases<'a> {
    state: &'a State,
    counts: HashMap<IdPack, u64>,
}

impl<'a> Releases<'a> {
    fn new(state: &'a State) -> Releases<'a> {
        Releases {
            state,
            counts: HashMap::new(),
        }
    }

    fn add(&mut self, pack: IdPack) {
        *self.counts.entry(pack).or_insert(0) += 1;
        if self.counts.len() >= RELEASE_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        for (pack, count) in self.counts.drain() {
            self.state.release_theirs(&pack, count);
        }
    }
}

impl Drop for Releases<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}
