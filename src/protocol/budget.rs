//! What decoding a peer's frame may allocate, and what a connection holds
//! decoded at once.
//!
//! A frame's bytes are bounded by the frame limit, but its decoded values
//! are not: a one-byte `None` becomes a 40-byte [`Value`], and a compressed
//! frame (RPyC) inflates before it is even parsed. So the decoders of both
//! dialects count what they build against a [`DecodeBudget`]:
//!
//! - every value costs [`VALUE_COST`] bytes, text and bytes their length
//!   besides;
//! - once the budget is spent the decoder stops building (lists stop
//!   growing, text is not copied) but goes on *parsing* to the end of the
//!   frame, so the frame's sequence number, and every reference in it, is
//!   still known: the request or reply fails alone with
//!   [`ErrorKind::LimitExceeded`](crate::ErrorKind::LimitExceeded) and the
//!   connection goes on;
//! - the budget of a frame is what the connection has left: the decoded
//!   arguments of calls still being served are [`HeldBytes`] until their
//!   call ends, so one connection never holds more than
//!   [`Config::max_decoded_bytes`](crate::Config::max_decoded_bytes)
//!   decoded at once, however its frames are shaped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::raise;
use crate::{Error, Value};

/// What one decoded value costs besides its text or bytes.
pub(crate) const VALUE_COST: usize = std::mem::size_of::<Value>();

/// Bytes a decoder may still build.
#[derive(Debug)]
pub(crate) struct DecodeBudget {
    limit: usize,
    used: usize,
    exceeded: bool,
}

impl DecodeBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> DecodeBudget {
        DecodeBudget {
            limit,
            used: 0,
            exceeded: false,
        }
    }

    /// Count `bytes` more. False once the budget is spent (and from then
    /// on): the caller then stops building.
    pub(crate) fn charge(&mut self, bytes: usize) -> bool {
        if self.exceeded {
            return false;
        }
        match self.used.checked_add(bytes) {
            Some(used) if used <= self.limit => {
                self.used = used;
                true
            }
            _ => {
                self.exceeded = true;
                false
            }
        }
    }

    /// Count one value of `extra` bytes of text or bytes.
    pub(crate) fn charge_value(&mut self, extra: usize) -> bool {
        self.charge(VALUE_COST.saturating_add(extra))
    }

    /// Whether a charge failed.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Bytes counted so far.
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// The error a request or reply over the budget fails with.
    /// `held` is what calls in progress held when decoding began.
    pub(crate) fn error(&self, held: usize) -> Error {
        let what = if held == 0 {
            String::new()
        } else {
            format!(" ({held} of them held by calls still in progress)")
        };
        raise::limit(format!(
            "the message decodes to more than the {} bytes left of this connection's \
             decoding budget{what}; raise Config::max_decoded_bytes to accept it",
            self.limit
        ))
    }
}

/// Decoded bytes a connection holds for the calls it is serving.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldBytes(Arc<AtomicUsize>);

impl HeldBytes {
    /// Bytes held now.
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// What is left of `budget` for the next frame.
    pub(crate) fn left(&self, budget: usize) -> usize {
        budget.saturating_sub(self.get())
    }

    /// Hold `bytes` until the returned guard drops.
    pub(crate) fn hold(&self, bytes: usize) -> HeldGuard {
        self.0.fetch_add(bytes, Ordering::Relaxed);
        HeldGuard {
            held: self.clone(),
            bytes,
        }
    }
}

/// Gives its bytes back to a [`HeldBytes`] when dropped.
#[derive(Debug)]
pub(crate) struct HeldGuard {
    held: HeldBytes,
    bytes: usize,
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        self.held.0.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_stays_spent_once_a_charge_fails() {
        let mut budget = DecodeBudget::new(100);
        assert!(budget.charge(60));
        assert!(!budget.charge(41));
        assert!(budget.exceeded());
        assert!(!budget.charge(1), "nothing is counted after the limit");
        assert_eq!(budget.used(), 60);
    }

    #[test]
    fn a_charge_that_overflows_fails() {
        let mut budget = DecodeBudget::new(usize::MAX);
        assert!(budget.charge(usize::MAX));
        assert!(!budget.charge(1));
    }

    #[test]
    fn held_bytes_return_when_the_guard_drops() {
        let held = HeldBytes::default();
        let a = held.hold(30);
        let b = held.hold(12);
        assert_eq!(held.get(), 42);
        assert_eq!(held.left(100), 58);
        drop(a);
        assert_eq!(held.get(), 12);
        drop(b);
        assert_eq!(held.left(100), 100);
    }
}
