//! The objects one connection has sent to its peer.
//!
//! Ids are slotmap keys (index and generation in one `u64`), so an id that
//! was released never reaches a newer object stored in the same slot. Each
//! object has one id however often it is sent, and a count of sends; the
//! peer's releases subtract what it received, and the entry goes when the
//! count reaches zero.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use slotmap::{DefaultKey, Key, KeyData, SlotMap};

use crate::netref::NetRef;

/// Lock a connection's table (or other per-connection state). A panic while
/// holding it cannot leave the data half-changed (each critical section is
/// one table operation), so a poisoned lock is taken as it is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Drop released objects outside every lock; a panicking destructor is
/// logged, not allowed to take the connection's reader down.
pub(crate) fn drop_objects(connection: u64, objects: Vec<NetRef>) {
    for object in objects {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(object))).is_err() {
            tracing::error!(
                connection,
                "an object's destructor panicked while being released"
            );
        }
    }
}

struct Entry {
    netref: NetRef,
    sent: u64,
}

/// Exported objects of one connection. Not synchronised: the connection
/// keeps it behind a mutex and never drops objects while holding it.
#[derive(Default)]
pub(crate) struct ExportTable {
    slots: SlotMap<DefaultKey, Entry>,
    by_uid: HashMap<u64, DefaultKey>,
}

/// What a release did.
#[derive(Debug)]
pub(crate) enum Released {
    /// The object is still referenced by the peer.
    Kept,
    /// The last reference went; drop the object outside the lock.
    Removed(NetRef),
    /// The id names nothing (stale or forged).
    Unknown,
    /// The peer released more than it was sent; the entry was removed.
    TooMany(NetRef),
}

impl ExportTable {
    /// The wire id of `netref`, counting one more send.
    pub(crate) fn export(&mut self, netref: &NetRef) -> u64 {
        let uid = netref.uid();
        if let Some(key) = self.by_uid.get(&uid) {
            if let Some(entry) = self.slots.get_mut(*key) {
                entry.sent += 1;
                return key.data().as_ffi();
            }
        }
        let key = self.slots.insert(Entry {
            netref: netref.clone(),
            sent: 1,
        });
        self.by_uid.insert(uid, key);
        key.data().as_ffi()
    }

    /// The object with wire id `id`, if it is still exported.
    pub(crate) fn get(&self, id: u64) -> Option<NetRef> {
        self.slots.get(key(id)).map(|e| e.netref.clone())
    }

    /// The peer dropped its proxy for `id` after receiving it `count` times.
    pub(crate) fn release(&mut self, id: u64, count: u64) -> Released {
        let k = key(id);
        let Some(entry) = self.slots.get_mut(k) else {
            return Released::Unknown;
        };
        if count < entry.sent {
            entry.sent -= count;
            return Released::Kept;
        }
        let too_many = count > entry.sent;
        let entry = self.slots.remove(k).expect("entry checked above");
        self.by_uid.remove(&entry.netref.uid());
        if too_many {
            Released::TooMany(entry.netref)
        } else {
            Released::Removed(entry.netref)
        }
    }

    /// Take every entry out (the connection ended).
    pub(crate) fn drain(&mut self) -> Vec<NetRef> {
        self.by_uid.clear();
        self.slots.drain().map(|(_, e)| e.netref).collect()
    }

    /// Objects currently exported.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

fn key(id: u64) -> DefaultKey {
    KeyData::from_ffi(id).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::builtin::empty::Empty;

    #[test]
    fn an_object_sent_twice_has_one_id_and_needs_both_releases() {
        let mut t = ExportTable::default();
        let obj = NetRef::new(Empty);
        let id = t.export(&obj);
        assert_eq!(t.export(&obj), id);
        assert!(matches!(t.release(id, 1), Released::Kept));
        assert!(matches!(t.release(id, 1), Released::Removed(_)));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_stale_id_never_reaches_the_next_object_in_its_slot() {
        let mut t = ExportTable::default();
        let first = t.export(&NetRef::new(Empty));
        assert!(matches!(t.release(first, 1), Released::Removed(_)));
        let second = t.export(&NetRef::new(Empty));
        assert_ne!(first, second);
        assert!(t.get(first).is_none());
        assert!(t.get(second).is_some());
        assert!(matches!(t.release(first, 1), Released::Unknown));
    }

    #[test]
    fn forged_ids_name_nothing() {
        let mut t = ExportTable::default();
        let id = t.export(&NetRef::new(Empty));
        let other_generation = id + (2 << 32);
        for id in [other_generation, u64::MAX, 12345, id + 1] {
            assert!(t.get(id).is_none(), "{id:#x}");
        }
    }
}
