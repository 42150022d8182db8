//! What the reader does with each frame, and how a peer's request is served.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use std::time::Duration;

use tokio::time::Instant;

use super::depth;
use super::shared::{Reply, Shared};
use crate::error::raise;
use crate::error::RemoteError;
use crate::protocol::budget::HeldGuard;
use crate::protocol::codec::{self, Decoded};
use crate::protocol::frame::{Label, Message, Op, Subject, TraceContext};
use crate::service::answers::{resolve_in, Answer, NotKept, Outcome};
use crate::service::dispatch::log_failed_call;
use crate::service::object::CallContext;
use crate::trace::ServeSpan;
use crate::{BoxFuture, Error, NetRef, Result, Value};

/// How much longer than the caller the owner lets a call run.
const OWNER_GRACE: Duration = Duration::from_millis(250);

/// Decode and route one frame. An error is a protocol violation that ends
/// the connection; anything wrong with a single request is answered
/// instead.
pub(crate) fn handle_frame(shared: &Arc<Shared>, payload: BytesMut) -> Result<()> {
    let decoded = if payload.len() < codec::SHARE_FROM {
        // Nothing in it to share: decoded where it lies.
        decode_in(shared, |refs, left| {
            codec::decode_within(&payload, refs, left)
        })
    } else {
        decode_frame(shared, &payload.freeze())
    };
    dispatch(shared, decoded?)
}

/// Decode one frame within what is left of the connection's decoding
/// budget ([`Config::max_decoded_bytes`](super::Config::max_decoded_bytes)
/// less what calls in progress hold). Needs no runtime: the reader runs it
/// on a blocking thread for large frames. Large bytes values share the
/// frame's memory.
pub(crate) fn decode_frame(shared: &Arc<Shared>, payload: &Bytes) -> Result<Decoded> {
    decode_in(shared, |refs, left| {
        codec::decode_shared(payload, refs, left)
    })
}

/// Run `decode` with the connection's references and what is left of its
/// decoding budget.
fn decode_in(
    shared: &Arc<Shared>,
    decode: impl FnOnce(&super::shared::Refs<'_>, usize) -> Result<Decoded>,
) -> Result<Decoded> {
    let left = shared.decoded_held.left(shared.config.max_decoded_bytes);
    let refs = super::shared::Refs::new(shared);
    let mut decoded = decode(&refs, left)
        .map_err(|e| raise::protocol(format!("protocol violation: {}", e.message())))?;
    decoded.names_answers = refs.named_answers.get();
    Ok(decoded)
}

/// Route one decoded frame. A message whose values went over the decoding
/// budget fails alone: a request is answered with the error, a reply
/// fails its call.
pub(crate) fn dispatch(shared: &Arc<Shared>, decoded: Decoded) -> Result<()> {
    let over_budget = decoded
        .budget
        .exceeded()
        .then(|| decoded.budget.error(shared.decoded_held.get()));
    let intake = Intake {
        // What a request's values take is held until its call ends.
        held: shared.decoded_held.hold(decoded.budget.used()),
        incomplete: over_budget.or(decoded.bad_ref),
        names_answers: decoded.names_answers,
    };
    match decoded.message {
        Message::Request {
            seq,
            target,
            timeout_ms,
            depth,
            trace,
            op,
        } => serve(
            shared,
            seq,
            target,
            Nesting { depth, trace },
            // The caller's own timer fires first and cancels; the owner's
            // deadline, a little later, is the backstop should the cancel
            // never come (so the caller sees one kind of timeout error).
            Duration::from_millis(timeout_ms).saturating_add(OWNER_GRACE),
            op,
            intake,
        ),
        Message::Reply { seq, result } => {
            let result = match (result, intake.incomplete) {
                (Ok(_), Some(bad)) => Err(bad),
                (Ok(value), None) => Ok(value),
                (Err(remote), _) => Err(Error::from_remote(remote)),
            };
            // No entry: the caller gave up (timeout, cancel). Dropping the
            // value releases any reference it carried.
            if let Some((_, waiting)) = shared.in_flight.remove(&seq) {
                let _ = waiting.reply.send(Reply::One(result));
            }
            Ok(())
        }
        Message::BatchReply { seq, results } => {
            let results = results
                .into_iter()
                .map(|r| match (&intake.incomplete, r) {
                    (Some(bad), Ok(_)) => Err(bad.clone()),
                    (None, Ok(value)) => Ok(value),
                    (_, Err(remote)) => Err(Error::from_remote(remote)),
                })
                .collect();
            if let Some((_, waiting)) = shared.in_flight.remove(&seq) {
                let _ = waiting.reply.send(Reply::Many(results));
            }
            Ok(())
        }
        Message::Batch {
            seq,
            timeout_ms,
            depth,
            trace,
            calls,
        } => serve_batch(
            shared,
            seq,
            Nesting { depth, trace },
            Duration::from_millis(timeout_ms).saturating_add(OWNER_GRACE),
            calls,
            intake,
        ),
        Message::Pipelined {
            seq,
            subject,
            timeout_ms,
            depth,
            trace,
            op,
        } => serve_pipelined(
            shared,
            seq,
            subject,
            Nesting { depth, trace },
            Duration::from_millis(timeout_ms).saturating_add(OWNER_GRACE),
            op,
            intake,
        ),
        Message::Finish(answers) => {
            shared.answers.finish(&answers);
            Ok(())
        }
        Message::Release(pairs) => {
            shared.release_exports(pairs);
            Ok(())
        }
        Message::Cancel(seq) => {
            if let Some((_, (_, token))) = shared.serving.remove(&seq) {
                tracing::debug!(
                    connection = shared.number,
                    seq,
                    "call cancelled by the peer"
                );
                token.cancel();
            }
            Ok(())
        }
        Message::Ping(n) => shared.send(&Message::Pong(n)),
        Message::Pong(n) => {
            if let Some((_, waiting)) = shared.in_flight.remove(&n) {
                let _ = waiting.reply.send(Reply::One(Ok(Value::None)));
            }
            Ok(())
        }
        Message::Close(farewell) => Err(raise::closed(closed_by_peer(&farewell))),
    }
}

/// Where a request was made: how deeply nested in calls being served,
/// and in which span of the caller's (if it sent one).
struct Nesting {
    depth: u32,
    trace: Option<Box<TraceContext>>,
}

/// What decoding a message left for serving it.
struct Intake {
    /// The decoding budget its values take until its call ends.
    held: HeldGuard,
    /// Why its values are not all there: over the decoding budget, or a
    /// reference in them names nothing. The message must fail.
    incomplete: Option<Error>,
    /// Some of its arguments are our answers, to be put in before it runs.
    names_answers: bool,
}

/// Serve the peer's request `seq`: run at once, in the reader, as far as
/// it goes without waiting; only a call that must wait gets a task of its
/// own, so the reader goes on reading (and a nested callback can be served
/// while this one waits).
fn serve(
    shared: &Arc<Shared>,
    seq: u64,
    target: u64,
    Nesting { depth, trace }: Nesting,
    timeout: Duration,
    op: Op,
    intake: Intake,
) -> Result<()> {
    let span = ServeSpan::start(shared.number, &op, trace.map(|t| *t));
    // The one clock read of this request: its deadlines on both sides.
    let started = Instant::now();
    let deadline = callers_deadline(started, timeout);
    let refused = refusal(shared, depth, intake.incomplete);
    let (held, names_answers) = (intake.held, intake.names_answers);
    let work_shared = shared.clone();
    let work = async move {
        let _held = held;
        let shared = work_shared;
        let result = match refused {
            Some((err, what)) => Err((err, here(&shared, what))),
            // Kept apart so the common case carries no extra future.
            None if names_answers => match arguments_in(&shared, op).await {
                Ok(op) => run(&shared, target, op, deadline).await,
                Err(failed) => Err(failed),
            },
            None => run(&shared, target, op, deadline).await,
        };
        Message::Reply {
            seq,
            result: result.map_err(|(err, location)| err.to_remote(&location)),
        }
    };
    start_serving(
        shared,
        seq,
        (started, timeout),
        span.instrument(depth::serving(depth, work)),
    )
}

/// Why a request is answered with an error without running, and where
/// that was found: too deep, or its arguments are not all there (over the
/// decoding budget, or a reference in them names nothing).
fn refusal(shared: &Shared, depth: u32, bad_ref: Option<Error>) -> Option<(Error, &'static str)> {
    match too_deep(shared, depth) {
        Some(err) => Some((err, "accepting the call")),
        None => bad_ref.map(|err| (err, "decoding the arguments")),
    }
}

/// The error refusing a request nested `depth` deep, if that is past
/// [`Config::max_call_depth`](super::Config::max_call_depth).
fn too_deep(shared: &Shared, depth: u32) -> Option<Error> {
    (depth > shared.config.max_call_depth).then(|| {
        raise::limit(format!(
            "calls nested {depth} deep: past this side's limit of {} \
             (Config::max_call_depth)",
            shared.config.max_call_depth
        ))
    })
}

/// Serve a batch: its calls run in order, each outcome recorded, one
/// failure not stopping the rest; the whole batch shares one deadline.
fn serve_batch(
    shared: &Arc<Shared>,
    seq: u64,
    Nesting { depth, trace }: Nesting,
    timeout: Duration,
    calls: Vec<(u64, Op)>,
    intake: Intake,
) -> Result<()> {
    let span = ServeSpan::start(
        shared.number,
        &format_args!("batch of {}", calls.len()),
        trace.map(|t| *t),
    );
    // The one clock read of this request: its deadlines on both sides.
    let started = Instant::now();
    let deadline = callers_deadline(started, timeout);
    let refused = refusal(shared, depth, intake.incomplete);
    let (held, names_answers) = (intake.held, intake.names_answers);
    let work_shared = shared.clone();
    let work = async move {
        let _held = held;
        let shared = work_shared;
        let mut results = Vec::with_capacity(calls.len());
        for (target, op) in calls {
            let result = match &refused {
                Some((err, what)) => Err((err.clone(), here(&shared, what))),
                None if names_answers => match arguments_in(&shared, op).await {
                    Ok(op) => run(&shared, target, op, deadline).await,
                    Err(failed) => Err(failed),
                },
                None => run(&shared, target, op, deadline).await,
            };
            results.push(result.map_err(|(err, location)| err.to_remote(&location)));
        }
        Message::BatchReply { seq, results }
    };
    start_serving(
        shared,
        seq,
        (started, timeout),
        span.instrument(depth::serving(depth, work)),
    )
}

/// Serve a pipelined request: as [`serve`], and its outcome is kept as
/// answer `seq` for the requests that follow it ([`Answers`]), which may
/// arrive before it resolves. The work stops at the caller's deadline
/// even when only those requests wait for it.
fn serve_pipelined(
    shared: &Arc<Shared>,
    seq: u64,
    subject: Subject,
    Nesting { depth, trace }: Nesting,
    timeout: Duration,
    op: Op,
    intake: Intake,
) -> Result<()> {
    let span = ServeSpan::start(shared.number, &op, trace.map(|t| *t));
    // The one clock read of this request: its deadlines on both sides.
    let started = Instant::now();
    let deadline = callers_deadline(started, timeout);
    let refused = refusal(shared, depth, intake.incomplete);
    let (held, names_answers) = (intake.held, intake.names_answers);
    // The target answer is looked up now, before this request's own is
    // kept: a request can only run on answers made before it.
    let on = match subject {
        Subject::Object(target) => Ok(Ok(target)),
        Subject::Answer(id) => shared.answers.get(id).map(Err),
    };
    // Refused as `start_serving` would, but first: the answer dependents
    // see must be this refusal, not work that would run later anyway.
    let busy = too_busy(shared);
    let refused = busy.map(|err| (err, "accepting the call")).or(refused);
    // What runs before the operation: the refusal, if any, then the
    // answers its arguments name.
    let arguments_shared = shared.clone();
    let arguments = async move {
        let shared = arguments_shared;
        if let Some((err, what)) = refused {
            return Err(err.to_remote(&here(&shared, what)));
        }
        if !names_answers {
            return Ok(op);
        }
        arguments_in(&shared, op)
            .await
            .map_err(|(err, location)| err.to_remote(&location))
    };
    let work_shared = shared.clone();
    let work: BoxFuture<'static, Outcome> = match on {
        Ok(Ok(target)) => Box::pin(async move {
            let op = arguments.await?;
            run(&work_shared, target, op, deadline)
                .await
                .map_err(|(err, location)| err.to_remote(&location))
        }),
        // Its turn on the answer is taken now, in arrival order.
        Ok(Err(answer)) => {
            let located = shared.clone();
            let on_object = move |object, op| async move {
                run_on(&work_shared, object, op, deadline)
                    .await
                    .map_err(|(err, location)| err.to_remote(&location))
            };
            Box::pin(answer.then(arguments, on_object, move || {
                here(&located, "on a promised answer")
            }))
        }
        Err(err) => {
            let err = err.to_remote(&here(shared, "finding the promised target"));
            Box::pin(std::future::ready(Err(err)))
        }
    };
    let overdue_shared = shared.clone();
    let work = async move {
        let _held = held;
        match tokio::time::timeout_at(started + timeout, work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(overdue(&overdue_shared, timeout)),
        }
    };
    let located = shared.clone();
    let work = span.instrument(depth::serving(depth, work));
    let (answer, reply_outcome) =
        Answer::with_reply(work, move || here(&located, "keeping the answer"));
    match shared.answers.keep(seq, answer) {
        Ok(()) => {}
        Err(NotKept::Reused(violation)) => return Err(violation),
        Err(NotKept::Full(err)) => {
            let result = Err(err.to_remote(&here(shared, "accepting the call")));
            reply(shared, seq, Message::Reply { seq, result });
            return Ok(());
        }
    }
    // The connection may have ended (on another thread) since the table
    // was last cleared: what this kept would hold it forever.
    if shared.is_closed() {
        shared.answers.clear();
    }
    let work = async move {
        Message::Reply {
            seq,
            result: reply_outcome.await,
        }
    };
    start_serving(shared, seq, (started, timeout), work)
}

/// `op` with the answers its arguments name put in their place (a failed
/// one fails the call, with its error as cause).
async fn arguments_in(shared: &Shared, op: Op) -> Result<Op, (Error, String)> {
    resolve_in(op).await.map_err(|failed| {
        (
            Error::from_remote(failed),
            here(shared, "waiting for a promised argument"),
        )
    })
}

/// A user reference held until the reply is queued: a side whose last
/// handle went away while serving must still answer this call.
struct Hold(Arc<Shared>);

impl Hold {
    fn new(shared: &Arc<Shared>) -> Hold {
        shared.user_ref_added();
        Hold(shared.clone())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.user_ref_dropped();
    }
}

/// Run `work`, the serving of request `seq`, and send the reply it
/// produces; `(started, timeout)`: when the request arrived and how long
/// the owner lets it run (the arrival time is passed in rather than read
/// again: a clock read per request is enough).
///
/// The first poll happens here, in the reader, in the order the requests
/// arrived: a call that completes without waiting (every synchronous
/// method, attribute reads, `dir`...) is answered with no task, timer or
/// cancellation entry, and calls that wait on one lock (a `LocalFile`'s)
/// queue for it in arrival order. Only a call still pending after that
/// poll is moved into a task of its own, under its deadline and
/// cancellable by the peer.
fn start_serving<Fut>(
    shared: &Arc<Shared>,
    seq: u64,
    (started, timeout): (Instant, Duration),
    work: Fut,
) -> Result<()>
where
    Fut: std::future::Future<Output = Message> + Send + 'static,
{
    // Answered at once rather than queued: queueing would grow without
    // bound, and pausing the reader could deadlock nested callbacks.
    if let Some(err) = too_busy(shared) {
        let message = Message::Reply {
            seq,
            result: Err(err.to_remote(&here(shared, "accepting the call"))),
        };
        reply(shared, seq, message);
        return Ok(());
    }
    if shared.serving.contains_key(&seq) {
        return Err(raise::protocol(format!(
            "protocol violation: the peer reused request number {seq} while it was running"
        )));
    }
    let hold = Hold::new(shared);
    // A panic in object code becomes an error reply: the caller must not
    // wait for a reply that will never come.
    let mut work = Box::pin(AssertUnwindSafe(work).catch_unwind());
    // Polled with a waker that does nothing: a future still pending is
    // polled again by its task at once, which registers the task's waker.
    // Outside tokio's cooperative budget, which the reader may have spent:
    // a call whose first wait is a tokio lock must join its queue now, in
    // arrival order, not be told to yield and join it later from a task.
    let first = {
        let mut cx = Context::from_waker(Waker::noop());
        let polling = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx)));
        let mut polling = std::pin::pin!(tokio::task::unconstrained(polling));
        match polling.as_mut().poll(&mut cx) {
            Poll::Ready(polled) => polled,
            Poll::Pending => unreachable!("poll_fn above is always ready"),
        }
    };
    if let Poll::Ready(outcome) = first {
        let message = outcome.unwrap_or_else(|panic| panicked(shared, seq, panic));
        reply(shared, seq, message);
        drop(hold);
        return Ok(());
    }

    // The token is registered before the task starts, so a Cancel that
    // arrives at once still finds it.
    let token = shared.shutdown.child_token();
    let nonce = shared
        .next_nonce
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The reader is the only one to insert, and `seq` was not there.
    shared.serving.insert(seq, (nonce, token.clone()));
    let shared = shared.clone();
    tokio::spawn(async move {
        let work =
            work.map(|outcome| outcome.unwrap_or_else(|panic| panicked(&shared, seq, panic)));
        let outcome = tokio::select! {
            reply = tokio::time::timeout_at(started + timeout, work) => Some(reply.unwrap_or_else(|_| {
                Message::Reply { seq, result: Err(overdue(&shared, timeout)) }
            })),
            _ = token.cancelled() => None,
        };
        shared.serving.remove_if(&seq, |_, (n, _)| *n == nonce);
        if let Some(message) = outcome {
            reply(&shared, seq, message);
        }
        drop(hold);
    });
    Ok(())
}

/// The error refusing a call when [`Config::max_serving`] calls are
/// already running.
///
/// [`Config::max_serving`]: super::Config::max_serving
fn too_busy(shared: &Shared) -> Option<Error> {
    (shared.serving.len() >= shared.config.max_serving).then(|| {
        raise::limit(format!(
            "too many calls in progress on this connection (limit {})",
            shared.config.max_serving
        ))
    })
}

/// The owner's error for work that ran past `timeout`.
fn overdue(shared: &Shared, timeout: Duration) -> RemoteError {
    RemoteError::deadline(
        format!("the call ran past its deadline of {timeout:?}"),
        &here(shared, "waiting for the work"),
    )
}

/// When the caller of a request that arrived at `started` gives up:
/// `timeout` is the owner's, grace included.
fn callers_deadline(started: Instant, timeout: Duration) -> Option<Instant> {
    started.checked_add(timeout.saturating_sub(OWNER_GRACE))
}

/// The reply for request `seq` whose work panicked.
fn panicked(shared: &Shared, seq: u64, panic: Box<dyn std::any::Any + Send>) -> Message {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    tracing::error!(connection = shared.number, seq, panic = %text, "object code panicked");
    let err = Error::app("Panic", format!("the method panicked: {text}"));
    Message::Reply {
        seq,
        result: Err(err.to_remote(&here(shared, "running the call"))),
    }
}

fn here(shared: &Shared, what: &str) -> String {
    format!("{what} (service '{}')", shared.local_service)
}

async fn run(
    shared: &Arc<Shared>,
    target: u64,
    op: Op,
    deadline: Option<Instant>,
) -> Result<Value, (Error, String)> {
    if op == Op::GetRoot {
        return Ok(Value::Ref(shared.root.clone()));
    }
    let object = shared
        .exported_object(target)
        .map_err(|e| (e, here(shared, &Label::of(&op).describe())))?;
    run_on(shared, object, op, deadline).await
}

/// Run `op` on `object`, one of ours, for the peer.
async fn run_on(
    shared: &Arc<Shared>,
    object: NetRef,
    op: Op,
    deadline: Option<Instant>,
) -> Result<Value, (Error, String)> {
    let cx = CallContext {
        connection: Some(shared.clone()),
        handle: Default::default(),
        deadline,
        identity: None,
    };
    match op {
        // Most requests: the method's name is lent to the object and
        // formatted only if the call fails (no copy per call).
        Op::CallMethod(name, args) => object
            .serve_method(&name, args, &cx)
            .await
            .map_err(|e| failed(shared, &object, &format!("{name}()"), e)),
        op => {
            let label = Label::of(&op);
            object
                .serve(op, &shared.config.policy, &cx)
                .await
                .map_err(|e| failed(shared, &object, &label.describe(), e))
        }
    }
}

/// Log that `call` on `object` failed with `err`, and say where.
fn failed(shared: &Shared, object: &NetRef, call: &str, err: Error) -> (Error, String) {
    log_failed_call(shared.number, call, object, &err);
    let location = format!("in {call} on {}", object.describe());
    (err, here(shared, &location))
}

/// Send the reply to request `seq`. A reply that cannot be encoded (too
/// large, say) is replaced by an error reply, so the caller never hangs.
fn reply(shared: &Arc<Shared>, seq: u64, message: Message) {
    // The reply (and the references in it) must outlive the queueing of its
    // frame: see `Shared::request`.
    // Large bytes in it are written from their own memory.
    let frame = if codec::worth_splicing(&message) {
        shared.encode_spliced(&message)
    } else {
        shared.encode(&message).map(codec::Frame::Whole)
    };
    let frame = frame.or_else(|err| {
        let result = Err(err.to_remote(&here(shared, "sending the reply")));
        shared
            .encode(&Message::Reply { seq, result })
            .map(codec::Frame::Whole)
    });
    match frame {
        Ok(frame) => {
            let _ = shared.send_spliced(frame);
        }
        Err(err) => tracing::warn!(connection = shared.number, %err, "cannot send a reply"),
    }
    drop(message);
}

/// The reason for a connection the peer closed, from what its `Close`
/// said. Earlier builds said "closed by this side" for a plain close,
/// untrue on this side; it reads as a plain close too.
fn closed_by_peer(farewell: &str) -> String {
    match farewell {
        "" | "closed by this side" => "the peer closed the connection".to_string(),
        said => format!("the peer closed the connection: {said}"),
    }
}

#[cfg(test)]
mod tests {
    use super::closed_by_peer;

    #[test]
    fn a_peers_close_reads_as_one_true_sentence() {
        assert_eq!(closed_by_peer(""), "the peer closed the connection");
        assert_eq!(
            closed_by_peer("closed by this side"),
            "the peer closed the connection"
        );
        assert_eq!(
            closed_by_peer("it heard nothing from this side for 60s"),
            "the peer closed the connection: it heard nothing from this side for 60s"
        );
    }
}
