//! Our requests: send, wait with a deadline, cancel on drop.
//!
//! A call with a short deadline (under [`SWEPT_FROM`]) waits under a timer
//! of its own. Longer ones (the default is 30 s) share one: a task per
//! connection that, while calls are waiting, looks every
//! [`SWEEP_EVERY`] for calls past their deadline and fails them, so a
//! call costs no timer registration and they fail at most that late.

use std::future::Future;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::depth;
use super::shared::{Awaiting, Reply, Shared};
use super::slots::Slot;
use crate::error::raise;
use crate::protocol::frame::{Message, Op, Subject, TraceContext};
use crate::trace::CallSpan;
use crate::{Error, ErrorKind, Result, Value};

/// Told `true` once a request is queued on its connection; dropped
/// without it, the request never will be.
pub(crate) type Queued = tokio::sync::watch::Sender<bool>;

/// Deadlines at least this long are watched by the connection's sweeper
/// instead of a timer per call.
const SWEPT_FROM: Duration = Duration::from_secs(1);

/// How often the sweeper looks while calls are waiting: a call with a long
/// deadline fails at most this much after it.
const SWEEP_EVERY: Duration = Duration::from_millis(25);

impl Shared {
    /// Send `op` on the peer's object `target` and wait for the reply.
    ///
    /// Dropping the returned future before it completes tells the peer to
    /// abort the work. After `timeout` (the connection's default when
    /// `None`) the call fails with [`ErrorKind::Timeout`] and is cancelled
    /// on the peer the same way.
    pub(crate) fn request(
        self: &Arc<Self>,
        target: u64,
        op: Op,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Value>> + Send + '_ {
        // Not an async fn: without the `otel` feature the span is nothing
        // and this is `request_in` itself, no larger future around it.
        let span = CallSpan::start(self.number, &op);
        let trace = span.context(self.traces);
        span.instrument(self.request_in(target, op, timeout, trace))
    }

    /// [`request`](Shared::request), sending `trace`.
    async fn request_in(
        self: &Arc<Self>,
        target: u64,
        op: Op,
        timeout: Option<Duration>,
        trace: Option<TraceContext>,
    ) -> Result<Value> {
        let timeout = timeout.unwrap_or(self.config.call_timeout);
        let (_slot, timeout) = self.call_slot(timeout).await?;
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let request = Message::Request {
            seq,
            target,
            timeout_ms: millis(timeout),
            depth: depth::of_new_call(),
            trace: trace.map(Box::new),
            op,
        };
        match self.exchange(seq, request, timeout, None).await? {
            Reply::One(result) => result,
            Reply::Many(_) => Err(raise::protocol("a batch reply answered a single request")),
        }
    }

    /// A fresh request number, never used on this connection before; a
    /// pipelined request's number is also its answer's.
    pub(crate) fn next_request_number(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Send `op` on `subject` as pipelined request `seq` (from
    /// [`next_request_number`](Shared::next_request_number)), telling
    /// `queued` once it is queued (requests on its answer may follow it
    /// then), and wait for the reply as [`request`](Shared::request) does.
    /// The peer keeps the answer until [`finish_answer`](Shared::finish_answer).
    pub(crate) fn request_pipelined<'a>(
        self: &'a Arc<Self>,
        seq: u64,
        subject: Subject,
        op: Op,
        timeout: Duration,
        queued: &'a Queued,
    ) -> impl Future<Output = Result<Value>> + Send + 'a {
        let span = CallSpan::start(self.number, &op);
        let trace = span.context(self.traces);
        span.instrument(async move {
            let (_slot, timeout) = self.call_slot(timeout).await?;
            let request = Message::Pipelined {
                seq,
                subject,
                timeout_ms: millis(timeout),
                depth: depth::of_new_call(),
                trace: trace.map(Box::new),
                op,
            };
            match self.exchange(seq, request, timeout, Some(queued)).await? {
                Reply::One(result) => result,
                Reply::Many(_) => Err(raise::protocol("a batch reply answered a single request")),
            }
        })
    }

    /// Tell the peer we need its answer `seq` no more: with the next
    /// frame, or the sweeper's next look, as releases go.
    pub(crate) fn finish_answer(self: &Arc<Self>, seq: u64) {
        if !self.is_closed() {
            self.hold_finish(seq);
        }
    }

    /// Send several operations in one frame; their outcomes come back in
    /// one frame, in order. The whole batch shares `timeout`.
    pub(crate) fn request_batch(
        self: &Arc<Self>,
        calls: Vec<(u64, Op)>,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Result<Value>>>> + Send + '_ {
        let expected = calls.len();
        let span = CallSpan::start(self.number, &format_args!("batch of {expected}"));
        let trace = span.context(self.traces);
        span.instrument(async move {
            let timeout = timeout.unwrap_or(self.config.call_timeout);
            let (_slot, timeout) = self.call_slot(timeout).await?;
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let batch = Message::Batch {
                seq,
                timeout_ms: millis(timeout),
                depth: depth::of_new_call(),
                trace: trace.map(Box::new),
                calls,
            };
            match self.exchange(seq, batch, timeout, None).await? {
                Reply::Many(results) if results.len() == expected => Ok(results),
                Reply::Many(results) => Err(raise::protocol(format!(
                    "a batch of {expected} calls was answered with {} outcomes",
                    results.len()
                ))),
                // A whole-batch failure (deadline on the owner, connection end).
                Reply::One(Err(err)) => Err(err),
                Reply::One(Ok(_)) => Err(raise::protocol("a single reply answered a batch")),
            }
        })
    }

    /// One of the connection's call slots ([`Config::max_in_flight`]),
    /// waiting for one to be given back when none is free; with the part of
    /// `timeout` the wait left.
    ///
    /// [`Config::max_in_flight`]: super::Config::max_in_flight
    async fn call_slot(&self, timeout: Duration) -> Result<(Slot<'_>, Duration)> {
        match self.call_slots.try_take() {
            Some(slot) => Ok((slot, timeout)),
            // Boxed: the waiting (a timer, a select) would otherwise make
            // every call's future larger.
            None => Box::pin(self.wait_for_slot(timeout)).await,
        }
    }

    /// [`call_slot`](Shared::call_slot) when none is free.
    async fn wait_for_slot(&self, timeout: Duration) -> Result<(Slot<'_>, Duration)> {
        let started = Instant::now();
        tokio::select! {
            slot = tokio::time::timeout(timeout, self.call_slots.take()) => match slot {
                Ok(slot) => Ok((slot, timeout.saturating_sub(started.elapsed()))),
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "no reply within {timeout:?}: the call waited all that time to be sent, \
                         behind {} calls already in flight (Config::max_in_flight)",
                        self.config.max_in_flight
                    ),
                )),
            },
            _ = self.shutdown.cancelled() => Err(self.closed_error()),
        }
    }

    /// Queue `message` (numbered `seq`), tell `queued` when it is, and
    /// wait for what answers it.
    async fn exchange(
        self: &Arc<Self>,
        seq: u64,
        message: Message,
        timeout: Duration,
        queued: Option<&Queued>,
    ) -> Result<Reply> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let frame = self.encode(&message)?;
        let swept = timeout >= SWEPT_FROM;
        let deadline = if swept {
            // An unrepresentable deadline is none at all.
            Instant::now().checked_add(timeout).map(|at| (at, timeout))
        } else {
            None
        };
        let rx = self.expect_reply(seq, deadline)?;
        // Armed before the frame is queued: from here on, dropping this
        // future (or timing out) removes the entry and cancels on the peer.
        self.calls_waiting.fetch_add(1, Ordering::Relaxed);
        let mut guard = Pending {
            shared: self,
            seq,
            settled: false,
        };
        self.send_frame(frame)?;
        if let Some(queued) = queued {
            queued.send_replace(true);
        }
        // Only now may the references in the message be dropped: a release
        // queued before the message would reach the owner first, and the
        // message would name an object it no longer has.
        drop(message);
        let received = if swept {
            Ok(rx.await)
        } else {
            tokio::time::timeout(timeout, rx).await
        };
        match received {
            Ok(Ok(reply)) => {
                guard.settled = true;
                Ok(reply)
            }
            // The sender went away without a reply: the connection ended.
            Ok(Err(_)) => {
                guard.settled = true;
                Err(self.closed_error())
            }
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("no reply within {timeout:?}"),
            )),
        }
    }

    /// Measure one round trip with a ping.
    pub(crate) async fn ping(self: &Arc<Self>) -> Result<Duration> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        match self
            .exchange(seq, Message::Ping(seq), self.config.call_timeout, None)
            .await?
        {
            Reply::One(Ok(_)) => Ok(started.elapsed()),
            Reply::One(Err(err)) => Err(err),
            Reply::Many(_) => Err(raise::protocol("a batch reply answered a ping")),
        }
    }

    /// Register a reply slot for `seq`, watched by the sweeper when it
    /// has a `deadline`.
    fn expect_reply(
        self: &Arc<Self>,
        seq: u64,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<oneshot::Receiver<Reply>> {
        let (tx, rx) = oneshot::channel();
        self.in_flight.insert(
            seq,
            Awaiting {
                reply: tx,
                deadline,
            },
        );
        // `terminate` sets `closed` before draining the table: if it is set
        // now, the drain may have missed this entry, so fail here instead.
        if self.is_closed() {
            self.in_flight.remove(&seq);
            return Err(self.closed_error());
        }
        if deadline.is_some() {
            self.watch_deadlines();
        }
        Ok(rx)
    }

    /// Make sure the sweeper looks at the call just registered (or the
    /// release just held back).
    pub(crate) fn watch_deadlines(self: &Arc<Self>) {
        let sweeper = &self.sweeper;
        if !sweeper.started.load(Ordering::Relaxed) && !sweeper.started.swap(true, Ordering::AcqRel)
        {
            match &self.runtime {
                Some(runtime) => drop(runtime.spawn(sweep(self.clone()))),
                None => drop(tokio::spawn(sweep(self.clone()))),
            }
            return;
        }
        // Pairs with the fence in `sweep`: either it sees our entry, or we
        // see that it went idle and wake it.
        fence(Ordering::SeqCst);
        if sweeper.idle.load(Ordering::Relaxed) && sweeper.idle.swap(false, Ordering::AcqRel) {
            sweeper.wake.notify_one();
        }
    }

    /// Fail the calls whose deadline has passed, and withdraw them from
    /// the peer.
    fn fail_overdue(self: &Arc<Self>, now: Instant) {
        let overdue: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|e| matches!(e.deadline, Some((at, _)) if at <= now))
            .map(|e| *e.key())
            .collect();
        for seq in overdue {
            let Some((_, waiting)) = self.in_flight.remove(&seq) else {
                continue;
            };
            let timeout = waiting.deadline.map(|(_, t)| t).unwrap_or_default();
            let err = Error::new(ErrorKind::Timeout, format!("no reply within {timeout:?}"));
            let _ = waiting.reply.send(Reply::One(Err(err)));
            if !self.is_closed() {
                let _ = self.send(&Message::Cancel(seq));
            }
        }
    }
}

/// The sweeper: while calls are waiting, fail those past their deadline
/// every [`SWEEP_EVERY`]; when none is waiting, sleep until one is
/// registered. Ends with the connection.
async fn sweep(shared: Arc<Shared>) {
    let shutdown = shared.shutdown.clone();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            _ = &mut cancelled => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        shared.fail_overdue(Instant::now());
        shared.flush_releases();
        shared.sweeper.idle.store(true, Ordering::Relaxed);
        // Pairs with the fence in `watch_deadlines`.
        fence(Ordering::SeqCst);
        let waiting =
            !shared.in_flight.is_empty() || shared.releases_pending.load(Ordering::Relaxed);
        if waiting && shared.sweeper.idle.swap(false, Ordering::AcqRel) {
            continue;
        }
        tokio::select! {
            _ = &mut cancelled => return,
            _ = shared.sweeper.wake.notified() => {}
        }
    }
}

/// A relative deadline in whole milliseconds, as the wire carries it.
fn millis(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
}

/// A request still waiting for its reply. Dropped unsettled (the caller's
/// future was dropped, or the deadline passed), it withdraws the request.
struct Pending<'a> {
    shared: &'a Arc<Shared>,
    seq: u64,
    settled: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.shared.calls_waiting.fetch_sub(1, Ordering::Relaxed);
        if self.settled {
            return;
        }
        if self.shared.in_flight.remove(&self.seq).is_some() && !self.shared.is_closed() {
            let _ = self.shared.send(&Message::Cancel(self.seq));
        }
    }
}
