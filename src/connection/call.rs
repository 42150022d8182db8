//! Our requests: send, wait with a deadline, cancel on drop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::shared::{Reply, Shared};
use crate::error::raise;
use crate::protocol::frame::{Message, Op};
use crate::{Error, ErrorKind, Result, Value};

impl Shared {
    /// Send `op` on the peer's object `target` and wait for the reply.
    ///
    /// Dropping the returned future before it completes tells the peer to
    /// abort the work. After `timeout` (the connection's default when
    /// `None`) the call fails with [`ErrorKind::Timeout`] and is cancelled
    /// on the peer the same way.
    pub(crate) async fn request(
        self: &Arc<Self>,
        target: u64,
        op: Op,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let timeout = timeout.unwrap_or(self.config.call_timeout);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let request = Message::Request {
            seq,
            target,
            timeout_ms: millis(timeout),
            op,
        };
        match self.exchange(seq, request, timeout).await? {
            Reply::One(result) => result,
            Reply::Many(_) => Err(raise::protocol("a batch reply answered a single request")),
        }
    }

    /// Send several operations in one frame; their outcomes come back in
    /// one frame, in order. The whole batch shares `timeout`.
    pub(crate) async fn request_batch(
        self: &Arc<Self>,
        calls: Vec<(u64, Op)>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Result<Value>>> {
        let timeout = timeout.unwrap_or(self.config.call_timeout);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let expected = calls.len();
        let batch = Message::Batch {
            seq,
            timeout_ms: millis(timeout),
            calls,
        };
        match self.exchange(seq, batch, timeout).await? {
            Reply::Many(results) if results.len() == expected => Ok(results),
            Reply::Many(results) => Err(raise::protocol(format!(
                "a batch of {expected} calls was answered with {} outcomes",
                results.len()
            ))),
            // A whole-batch failure (deadline on the owner, connection end).
            Reply::One(Err(err)) => Err(err),
            Reply::One(Ok(_)) => Err(raise::protocol("a single reply answered a batch")),
        }
    }

    /// Queue `message` (numbered `seq`) and wait for what answers it.
    async fn exchange(
        self: &Arc<Self>,
        seq: u64,
        message: Message,
        timeout: Duration,
    ) -> Result<Reply> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let frame = self.encode(&message)?;
        let rx = self.expect_reply(seq)?;
        // Armed before the frame is queued: from here on, dropping this
        // future (or timing out) removes the entry and cancels on the peer.
        let mut guard = Pending {
            shared: self,
            seq,
            settled: false,
        };
        self.send_frame(frame)?;
        // Only now may the references in the message be dropped: a release
        // queued before the message would reach the owner first, and the
        // message would name an object it no longer has.
        drop(message);
        match tokio::time::timeout(timeout, rx).await {
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
            .exchange(seq, Message::Ping(seq), self.config.call_timeout)
            .await?
        {
            Reply::One(Ok(_)) => Ok(started.elapsed()),
            Reply::One(Err(err)) => Err(err),
            Reply::Many(_) => Err(raise::protocol("a batch reply answered a ping")),
        }
    }

    /// Register a reply slot for `seq`.
    fn expect_reply(&self, seq: u64) -> Result<oneshot::Receiver<Reply>> {
        let (tx, rx) = oneshot::channel();
        self.in_flight.insert(seq, tx);
        // `terminate` sets `closed` before draining the table: if it is set
        // now, the drain may have missed this entry, so fail here instead.
        if self.is_closed() {
            self.in_flight.remove(&seq);
            return Err(self.closed_error());
        }
        Ok(rx)
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
        if self.settled {
            return;
        }
        if self.shared.in_flight.remove(&self.seq).is_some() && !self.shared.is_closed() {
            let _ = self.shared.send(&Message::Cancel(self.seq));
        }
    }
}
