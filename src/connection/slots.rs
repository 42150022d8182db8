//! Backpressure on our own calls: at most
//! [`Config::max_in_flight`](super::Config::max_in_flight) wait for replies
//! at once; a call beyond them waits for one to finish.
//!
//! A counter rather than a `tokio::sync::Semaphore`: taking and giving
//! back a slot is one atomic operation each while nobody waits (the
//! semaphore locks a mutex on every release).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The call slots of one connection.
pub(crate) struct Slots {
    max: usize,
    used: AtomicUsize,
    /// Calls waiting for a slot; a slot given back wakes one when any.
    waiting: AtomicUsize,
    freed: Notify,
}

/// A slot taken; dropping it gives the slot back.
pub(crate) struct Slot<'a>(&'a Slots);

impl Slots {
    pub(crate) fn new(max: usize) -> Slots {
        Slots {
            max: max.max(1),
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// A slot if one is free now.
    pub(crate) fn try_take(&self) -> Option<Slot<'_>> {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self))
    }

    /// A slot, waiting for one to be given back if none is free. Dropping
    /// the future abandons the wait.
    pub(crate) async fn take(&self) -> Slot<'_> {
        loop {
            if let Some(slot) = self.try_take() {
                return slot;
            }
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let _waiting = Waiting::new(self);
            // Looked at again after announcing the wait: a slot given back
            // in between either is seen here or wakes `freed`.
            if let Some(slot) = self.try_take() {
                return slot;
            }
            freed.await;
        }
    }

    /// Slots taken now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::SeqCst);
        if self.0.waiting.load(Ordering::SeqCst) > 0 {
            self.0.freed.notify_one();
        }
    }
}

/// Counts one waiting call while it lives.
struct Waiting<'a>(&'a Slots);

impl Waiting<'_> {
    fn new(slots: &Slots) -> Waiting<'_> {
        slots.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(slots)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slot_given_back_lets_a_waiting_call_on() {
        let slots = Slots::new(1);
        let first = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        let waiter = slots.take();
        tokio::pin!(waiter);
        std::future::poll_fn(|cx| {
            assert!(std::future::Future::poll(waiter.as_mut(), cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        drop(first);
        let _second = waiter.await;
        assert_eq!(slots.used(), 1);
    }
}
