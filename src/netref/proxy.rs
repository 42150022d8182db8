//! Remote references: one proxy per imported id, released on last drop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::connection::Shared;

/// The state behind every clone of a remote [`NetRef`](super::NetRef).
pub(crate) struct Proxy {
    /// The owner's id for the object on this connection.
    pub(crate) id: u64,
    /// Process-wide identity, so forwarding the proxy to a third peer keeps
    /// one id there too.
    pub(crate) uid: u64,
    /// How many times the id arrived while this proxy lived; sent back in
    /// the release so the owner's count stays right when it re-sends the
    /// object while a release is in flight.
    received: AtomicU64,
    pub(crate) conn: Arc<Shared>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let received = *self.received.get_mut();
        self.conn
            .proxy_dropped(self.id, self as *const Proxy, received);
    }
}

/// The proxies of one connection, by id. Weak, so dropping the last
/// `NetRef` is what releases an object.
#[derive(Default)]
pub(crate) struct ImportTable {
    proxies: DashMap<u64, Weak<Proxy>>,
}

impl ImportTable {
    /// The proxy for `id`, counting one more receipt; created if needed.
    pub(crate) fn import(&self, id: u64, conn: &Arc<Shared>) -> Arc<Proxy> {
        let fresh = || {
            conn.user_ref_added();
            Arc::new(Proxy {
                id,
                uid: crate::netref::next_uid(),
                received: AtomicU64::new(1),
                conn: conn.clone(),
            })
        };
        match self.proxies.entry(id) {
            Entry::Occupied(mut slot) => {
                // A failed upgrade means the last clone is being dropped
                // right now; its release covers only the receipts it saw,
                // and the new proxy starts counting afresh.
                if let Some(proxy) = slot.get().upgrade() {
                    proxy.received.fetch_add(1, Ordering::Relaxed);
                    return proxy;
                }
                let proxy = fresh();
                slot.insert(Arc::downgrade(&proxy));
                proxy
            }
            Entry::Vacant(slot) => {
                let proxy = fresh();
                slot.insert(Arc::downgrade(&proxy));
                proxy
            }
        }
    }

    /// Forget `id` if it still maps to the proxy at `ptr` (a newer proxy for
    /// the same id may already have replaced it).
    pub(crate) fn forget(&self, id: u64, ptr: *const Proxy) {
        self.proxies
            .remove_if(&id, |_, weak| std::ptr::eq(weak.as_ptr(), ptr));
    }

    /// Live proxies.
    pub(crate) fn len(&self) -> usize {
        self.proxies.len()
    }
}
