//! Iterating a remote object in batches.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::NetRef;
use crate::service::object::BoxFuture;
use crate::{Result, Value};

const FIRST_BATCH: u32 = 16;
const MAX_BATCH: u32 = 1024;

/// Items of an iterable object, fetched a batch per round trip.
///
/// The first request asks for 16 items and each next one for twice as many,
/// up to 1024, so short iterations stay cheap and long ones cost few round
/// trips. Use it as a [`Stream`] or through [`next`](RemoteIter::next).
///
/// Items are taken from the owner's iterator a batch at a time: items
/// fetched but not yet consumed are lost if the `RemoteIter` is dropped.
pub struct RemoteIter {
    netref: NetRef,
    buffer: VecDeque<Value>,
    batch: u32,
    grow: bool,
    exhausted: bool,
    pending: Option<BoxFuture<'static, Result<Vec<Value>>>>,
}

impl RemoteIter {
    pub(crate) fn new(netref: NetRef) -> RemoteIter {
        RemoteIter {
            netref,
            buffer: VecDeque::new(),
            batch: FIRST_BATCH,
            grow: true,
            exhausted: false,
            pending: None,
        }
    }

    /// Fetch exactly `n` items per round trip instead of growing batches
    /// (`n` of 1 asks for one item at a time; at most
    /// [`MAX_NEXT_BATCH`](crate::protocol::MAX_NEXT_BATCH)).
    pub fn batch_size(mut self, n: u32) -> RemoteIter {
        self.batch = n.clamp(1, crate::service::dispatch::MAX_NEXT_BATCH);
        self.grow = false;
        self
    }

    /// The next item, `None` at the end. An error ends the iteration.
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Option<Result<Value>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// All remaining items.
    pub async fn collect_all(mut self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        while let Some(item) = self.next().await {
            out.push(item?);
        }
        Ok(out)
    }
}

impl Stream for RemoteIter {
    type Item = Result<Value>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Value>>> {
        let this = &mut *self;
        loop {
            if let Some(item) = this.buffer.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            if this.exhausted {
                return Poll::Ready(None);
            }
            let batch = this.batch;
            let fut = this.pending.get_or_insert_with(|| {
                let netref = this.netref.clone();
                Box::pin(async move { netref.next_batch(batch).await })
            });
            let result = match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result,
            };
            this.pending = None;
            match result {
                Ok(items) => {
                    this.exhausted = items.len() < batch as usize;
                    this.buffer.extend(items);
                    if this.grow {
                        this.batch = (batch * 2).min(MAX_BATCH);
                    }
                }
                Err(err) => {
                    this.exhausted = true;
                    return Poll::Ready(Some(Err(err)));
                }
            }
        }
    }
}

impl std::fmt::Debug for RemoteIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteIter")
            .field("netref", &self.netref)
            .field("buffered", &self.buffer.len())
            .field("exhausted", &self.exhausted)
            .finish()
    }
}
