//! The tasks of one RPyC connection: the reader routes each message, the
//! writer sends queued frames, and each of the peer's requests is served
//! in a task of its own, so a side waiting on a callback still serves the
//! peer's nested requests, to any depth.
//!
//! Two requests are handled by the reader itself, in order: `DEL` (so a
//! reply that follows it on the wire finds the table already updated) and
//! `CLOSE` (never answered: the socket is closed).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use super::boxing::box_value;
use super::brine::Brine;
use super::decode::{decode_frame, Failure, Incoming};
use super::envelope::{self, EnvelopeError, Message};
use super::frame::{self, FrameDecoder, FrameError};
use super::handler;
use super::id_pack::IdPack;
use super::serve::{self, Raised};
use super::session::{Refs, State};
use super::vinegar;
use crate::connection::depth;
use crate::error::raise;
use crate::protocol::budget::HeldGuard;
use crate::protocol::capped::Capped;
use crate::{Error, ErrorKind, NetRef, Result, Value};

/// Stop gathering frames into one write beyond this many bytes.
const MAX_COALESCE: usize = 256 * 1024;

/// How long a closing writer may spend flushing its last frames.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

pub(crate) async fn read_loop<R: AsyncRead + Unpin>(state: Arc<State>, io: R) {
    let mut frames = FramedRead::new(
        Capped::new(io),
        FrameDecoder::new(state.config.max_frame_len),
    );
    let reason = loop {
        let next = tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => return,
            next = frames.next() => next,
        };
        let frame = match next {
            None => break raise::closed("the Python peer closed the connection"),
            Some(Err(FrameError::Io(e))) => {
                break Error::with_source(ErrorKind::Transport, format!("read failed: {e}"), e)
            }
            Some(Err(e)) => break raise::protocol(format!("protocol violation: {e}")),
            Some(Ok(frame)) => frame,
        };
        // Awaited here, so frames are handled in the order they came.
        let decoded = tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => return,
            decoded = decode_frame(&state, frame) => decoded,
        };
        let message = match decoded {
            Ok(message) => message,
            Err(Failure::Version5(seq)) => {
                refuse_version5(&state, seq);
                break raise::protocol(EnvelopeError::Version5);
            }
            Err(e) => break raise::protocol(format!("protocol violation: {e}")),
        };
        if let Err(err) = route(&state, message) {
            break err;
        }
    };
    if reason.kind() == ErrorKind::Protocol {
        tracing::warn!(connection = state.number, %reason, "closing RPyC connection");
    }
    state.terminate(reason);
}

/// Act on one message; an error ends the connection.
fn route(state: &Arc<State>, message: Incoming) -> Result<()> {
    match message {
        Incoming::Close => return Err(raise::closed("the Python peer closed the connection")),
        Incoming::Outcome { seq, result } => state.complete(seq, result),
        Incoming::Release { seq, args } => {
            release(state, &args);
            reply(state, seq, Ok(Value::None));
        }
        Incoming::Refused {
            seq,
            handler,
            error,
        } => {
            let location = format!("decoding the arguments of {}", handler::name(handler));
            reply(state, seq, Err(Raised::Error(error, location)));
        }
        Incoming::Request {
            seq,
            handler,
            args,
            held,
        } => match args {
            Ok((args, refs)) => spawn_serving(state, seq, handler, args, refs, held),
            Err(err) => {
                let location = format!("unboxing the arguments of {}", handler::name(handler));
                reply(state, seq, Err(Raised::Error(err, location)));
            }
        },
    }
    Ok(())
}

/// `DEL(obj, count)`: the peer dropped its proxy for our object after
/// receiving it `count` times. Read from the raw box: the object itself is
/// not needed, only its id.
fn release(state: &State, args: &Brine) {
    let parts = args
        .as_tuple()
        .and_then(|pair| pair.get(1))
        .and_then(Brine::as_tuple)
        .unwrap_or_default();
    let target = parts
        .first()
        .and_then(Brine::as_tuple)
        .and_then(|b| b.get(1))
        .and_then(IdPack::from_brine);
    let count = match parts.get(1).and_then(Brine::as_tuple) {
        Some([_, Brine::Int(n)]) => u64::try_from(*n).unwrap_or(0),
        _ => 1,
    };
    match target.as_ref().and_then(IdPack::table_id) {
        Some(id) if count > 0 => state.release(id, count),
        _ => tracing::debug!(connection = state.number, "malformed DEL ignored"),
    }
}

/// Serve request `seq` in a task of its own, unless that would pass
/// [`Config::max_serving`](crate::Config::max_serving) or
/// [`Config::max_call_depth`](crate::Config::max_call_depth). `held`
/// counts the arguments' decoded bytes until the call ends.
fn spawn_serving(
    state: &Arc<State>,
    seq: i64,
    handler: i64,
    args: Vec<Value>,
    refs: Vec<NetRef>,
    held: HeldGuard,
) {
    let depth = state.depth_of_incoming();
    let refusal = if state.serving.load(Ordering::Relaxed) >= state.config.max_serving {
        Some(raise::limit(format!(
            "too many calls in progress on this connection (limit {}, Config::max_serving)",
            state.config.max_serving
        )))
    } else if depth > state.config.max_call_depth {
        Some(raise::limit(format!(
            "calls nested {depth} deep: past this side's limit of {} (Config::max_call_depth; \
             RPyC carries no depth, so a request is counted one deeper than the deepest \
             call of ours waiting for the peer)",
            state.config.max_call_depth
        )))
    } else {
        None
    };
    if let Some(err) = refusal {
        reply(
            state,
            seq,
            Err(Raised::Error(err, "accepting the call".into())),
        );
        return;
    }
    state.serving.fetch_add(1, Ordering::Relaxed);
    let state = state.clone();
    // The request's references are released after the reply is queued, as
    // Python does. A DEL ahead of the reply has a Python client answer it
    // and then write its next request while that answer is unacknowledged:
    // with Nagle's algorithm on (rpyc's default) the request waits for our
    // delayed ACK, 40 ms per call (measured: examples/python/rpyc_bench.py).
    tokio::spawn(async move {
        let work = AssertUnwindSafe(depth::serving(depth, serve::serve(&state, handler, args)))
            .catch_unwind()
            .map(|outcome| {
                outcome.unwrap_or_else(|panic| {
                    let text = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".into());
                    let err = Error::app("RuntimeError", format!("the method panicked: {text}"));
                    Err(Raised::Error(
                        err,
                        format!("serving {}", handler::name(handler)),
                    ))
                })
            });
        let outcome = tokio::select! {
            outcome = work => Some(outcome),
            _ = state.shutdown.cancelled() => None,
        };
        // The call has ended (its arguments are gone): it counts no more,
        // before the peer can hear so and send its next request.
        state.serving.fetch_sub(1, Ordering::Relaxed);
        drop(held);
        if let Some(outcome) = outcome {
            reply(&state, seq, outcome);
        }
        drop(refs);
    });
}

/// Send the reply (or exception) for the peer's request `seq`.
fn reply(state: &Arc<State>, seq: i64, outcome: Result<Value, Raised>) {
    let mut refs = Refs::new(state);
    // The outcome (and the references in it) outlives the queueing of the
    // reply: dropping a Python object's proxy sends DEL, which must not
    // overtake the reply that names the object.
    let message = match outcome.as_ref().map(|value| box_value(value, &refs)) {
        Ok(Ok(value)) => Message::Reply { seq, value },
        Ok(Err(err)) => {
            // Nothing of a reply that cannot be boxed is sent: take back
            // what was exported before the failure.
            refs.undo();
            refs = Refs::new(state);
            Message::Exception {
                seq,
                value: vinegar::dump(&err, "boxing the reply"),
            }
        }
        Err(&Raised::StopIteration) => Message::Exception {
            seq,
            value: Brine::Int(vinegar::STOP_ITERATION),
        },
        Err(Raised::Error(err, location)) => Message::Exception {
            seq,
            value: vinegar::dump(err, location),
        },
    };
    if state.send(&message).is_err() {
        refs.undo();
    }
    drop(outcome);
}

/// Tell an RPyC 5.x client why it is refused, in its own envelope, before
/// the connection closes (best effort: it is the last thing sent).
fn refuse_version5(state: &State, seq: Option<Brine>) {
    let Some(seq) = seq else {
        return;
    };
    let err = Error::app("RuntimeError", EnvelopeError::Version5.to_string());
    let exception = vinegar::dump(&err, "reading the first request");
    let _ = state.send_frame(frame::encode(&envelope::version5_refusal(&seq, exception)));
}

pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    state: Arc<State>,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    mut io: W,
) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        let first = tokio::select! {
            biased;
            frame = rx.recv() => frame,
            _ = state.shutdown.cancelled() => None,
        };
        let Some(first) = first else { break };
        buf.extend_from_slice(&first);
        while buf.len() < MAX_COALESCE {
            match rx.try_recv() {
                Ok(frame) => buf.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        let len = buf.len();
        let outcome = {
            let write = async {
                io.write_all(&buf).await?;
                io.flush().await
            };
            tokio::pin!(write);
            tokio::select! {
                result = &mut write => Some(result),
                // Closing while a write is blocked: finish it if the peer
                // takes it soon, so the stream ends on a frame boundary.
                _ = state.shutdown.cancelled() => {
                    let _ = tokio::time::timeout(CLOSE_FLUSH, &mut write).await;
                    None
                }
            }
        };
        state.written(len);
        buf.clear();
        match outcome {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                state.terminate(Error::with_source(
                    ErrorKind::Transport,
                    format!("write failed: {e}"),
                    e,
                ));
                break;
            }
            None => break,
        }
    }
    // Closing: what was queued (a refusal, say) still goes out, briefly.
    while let Ok(frame) = rx.try_recv() {
        buf.extend_from_slice(&frame);
    }
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        let _ = io.write_all(&buf).await;
        let _ = io.shutdown().await;
    })
    .await;
    state.writer_done.cancel();
}
