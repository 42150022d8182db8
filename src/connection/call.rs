//! Our requests: send, wait with a deadline, cancel on drop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::shared::Shared;
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
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let timeout = timeout.unwrap_or(self.config.call_timeout);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let request = Message::Request {
            seq,
            target,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            op,
        };
        let frame = self.encode(&request)?;
        let rx = self.expect_reply(seq)?;
        // Armed before the frame is queued: from here on, dropping this
        // future (or timing out) removes the entry and cancels on the peer.
        let mut guard = Pending {
            shared: self,
            seq,
            settled: false,
        };
        self.send_frame(frame)?;
        // Only now may the references in the request be dropped: a release
        // queued before the request would reach the owner first, and the
        // request would name an object it no longer has.
        drop(request);
        let result = tokio::time::timeout(timeout, rx).await;
        match result {
            Ok(Ok(reply)) => {
                guard.settled = true;
                reply
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
        let rx = self.expect_reply(seq)?;
        let mut guard = Pending {
            shared: self,
            seq,
            settled: false,
        };
        let started = tokio::time::Instant::now();
        self.send(&Message::Ping(seq))?;
        let timeout = self.config.call_timeout;
        let reply = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| Error::new(ErrorKind::Timeout, format!("no pong within {timeout:?}")))?;
        guard.settled = true;
        reply.map_err(|_| self.closed_error())??;
        Ok(started.elapsed())
    }

    /// Register a reply slot for `seq`.
    fn expect_reply(&self, seq: u64) -> Result<oneshot::Receiver<Result<Value>>> {
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
