//! What a [`SessionHost`](super::SessionHost) remembers, and for whom.
//!
//! The ledger is plain data under one lock: sessions by id, each with its
//! owner, secret, remembered outcomes and last use; what each owner uses;
//! the total of remembered bytes. It does no I/O and never drops a value
//! while locked: whatever it forgets is handed back to the caller as
//! [`Forgotten`], to drop after unlocking (dropping a reference may send a
//! release).
//!
//! # Ownership
//!
//! Opening a session returns a token: 128 random bits naming the session
//! and 128 more that only the opener learns (both from the operating
//! system's CSPRNG). Every later use must present the whole token, whose
//! secret half is compared in constant time, and, on a connection whose
//! peer authenticated, come from the same identity that opened it. A use
//! that fails either check is answered exactly as one naming a session
//! that never existed.
//!
//! # Quotas
//!
//! An owner is an authenticated identity (all its sessions together) or,
//! for a peer that did not authenticate, the session itself. Each owner
//! has a number of sessions and of remembered bytes; at its quota an owner
//! forgets its *own* oldest, never another's. The whole ledger has a
//! number of sessions and of bytes; at those bounds a new session is
//! refused and a new outcome is not remembered.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tokio::time::Instant;

use super::host::{SessionLimits, UNKNOWN_SESSION};
use crate::error::raise;
use crate::protocol::budget::VALUE_COST;
use crate::{Error, Result, Value};

/// Bytes of a session id and of its secret.
const ID_LEN: usize = 16;

type SessionId = [u8; ID_LEN];

/// The outcome of one call, as its waiters see it.
pub(super) type Shared = watch::Receiver<Option<Result<Value>>>;

/// Who a call comes from: the authenticated identity of its connection,
/// if any.
pub(super) type Caller<'a> = Option<&'a str>;

/// Values the ledger let go of, to drop once it is unlocked.
#[derive(Default)]
#[must_use = "drop it after unlocking the ledger"]
pub(super) struct Forgotten(Vec<Result<Value>>);

/// How a call on a session begins.
pub(super) enum Begin {
    /// It ran before: its remembered outcome.
    Done(Result<Value>),
    /// It is running: wait for it.
    Running(Shared),
    /// It never ran: run it, then [`Ledger::finish`] it.
    Start(SessionId, watch::Sender<Option<Result<Value>>>),
}

/// Whose quota a session counts against.
#[derive(Clone, PartialEq, Eq, Hash)]
enum OwnerKey {
    Identity(String),
    Session(SessionId),
}

#[derive(Default)]
struct Usage {
    sessions: usize,
    bytes: usize,
}

/// Everything the host remembers.
pub(super) struct Ledger {
    limits: SessionLimits,
    sessions: HashMap<SessionId, Entry>,
    owners: HashMap<OwnerKey, Usage>,
    bytes: usize,
    /// Counts finished outcomes, so the oldest can be found.
    finished: u64,
}

/// One session.
struct Entry {
    secret: [u8; ID_LEN],
    identity: Option<String>,
    last_used: Instant,
    calls: BTreeMap<u64, Outcome>,
    /// Finished outcomes among `calls` that hold a remembered result.
    remembered: usize,
    /// Ids below this may have run and are no longer remembered.
    forgotten_below: u64,
    running: usize,
}

enum Outcome {
    Running(Shared),
    Done {
        result: Result<Value>,
        bytes: usize,
        order: u64,
    },
    /// It ran, but its outcome was too large to keep.
    NotKept {
        bytes: usize,
    },
}

impl Entry {
    fn owner(&self, id: &SessionId) -> OwnerKey {
        match &self.identity {
            Some(name) => OwnerKey::Identity(name.clone()),
            None => OwnerKey::Session(*id),
        }
    }

    fn expires(&self, idle: Duration) -> Option<Instant> {
        (self.running == 0).then(|| self.last_used + idle)
    }

    /// The oldest remembered outcome: its order and call id.
    fn oldest(&self) -> Option<(u64, u64)> {
        self.calls.iter().find_map(|(id, o)| match o {
            Outcome::Done { order, .. } => Some((*order, *id)),
            _ => None,
        })
    }
}

impl Ledger {
    pub(super) fn new(limits: SessionLimits) -> Ledger {
        Ledger {
            limits,
            sessions: HashMap::new(),
            owners: HashMap::new(),
            bytes: 0,
            finished: 0,
        }
    }

    /// Sessions remembered.
    pub(super) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Bytes of outcomes remembered.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Open a session for `caller`; its token.
    pub(super) fn open(&mut self, caller: Caller<'_>, now: Instant) -> Result<(String, Forgotten)> {
        let mut forgotten = self.expire(now);
        let identity = caller.map(str::to_string);
        if let Some(name) = &identity {
            let key = OwnerKey::Identity(name.clone());
            let used = self.owners.get(&key).map_or(0, |u| u.sessions);
            if used >= self.limits.sessions_per_owner {
                // The owner's own least recently used session makes room.
                let lru = self
                    .sessions
                    .iter()
                    .filter(|(_, e)| e.identity.as_ref() == Some(name))
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(id, _)| *id);
                if let Some(lru) = lru {
                    forgotten.0.extend(self.remove(&lru).0);
                }
            }
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return Err(raise::limit(format!(
                "this server remembers {} sessions, its limit (SessionLimits::max_sessions); \
                 idle ones expire after {:?}",
                self.limits.max_sessions, self.limits.idle_timeout
            )));
        }
        let (id, secret) = (random_bytes()?, random_bytes()?);
        let entry = Entry {
            secret,
            identity,
            last_used: now,
            calls: BTreeMap::new(),
            remembered: 0,
            forgotten_below: 0,
            running: 0,
        };
        self.owners.entry(entry.owner(&id)).or_default().sessions += 1;
        self.sessions.insert(id, entry);
        Ok((format!("{}{}", hex(&id), hex(&secret)), forgotten))
    }

    /// The session `token` names, if `caller` may use it; else the same
    /// error as for a session that never existed.
    fn find(&mut self, token: &str, caller: Caller<'_>) -> Result<(SessionId, &mut Entry)> {
        let unknown = || {
            raise::outcome_unknown(format!(
                "{UNKNOWN_SESSION}: no such session for this caller (it never existed, ended, \
                 expired, or the server restarted)"
            ))
        };
        let (id, secret) = parse_token(token).ok_or_else(unknown)?;
        let entry = self.sessions.get_mut(&id).ok_or_else(unknown)?;
        let secret_ok: bool = entry.secret[..].ct_eq(&secret[..]).into();
        if !secret_ok || entry.identity.as_deref() != caller {
            return Err(unknown());
        }
        Ok((id, entry))
    }

    /// Begin call `call_id` on the session `token` names.
    pub(super) fn begin(
        &mut self,
        token: &str,
        caller: Caller<'_>,
        call_id: u64,
        now: Instant,
    ) -> Result<(Begin, Forgotten)> {
        let forgotten = self.expire(now);
        let (id, entry) = self.find(token, caller)?;
        entry.last_used = now;
        let begin = match entry.calls.get(&call_id) {
            Some(Outcome::Done { result, .. }) => Begin::Done(result.clone()),
            Some(Outcome::Running(waiting)) => Begin::Running(waiting.clone()),
            Some(Outcome::NotKept { bytes }) => {
                return Err(raise::outcome_unknown(format!(
                    "call {call_id} ran, but its outcome ({bytes} bytes) was too large to \
                     remember (SessionLimits::bytes_per_owner, max_bytes)"
                )))
            }
            None if call_id < entry.forgotten_below => {
                return Err(raise::outcome_unknown(format!(
                    "call {call_id} is no longer remembered: it may or may not have run"
                )))
            }
            None => {
                let (done, waiting) = watch::channel(None);
                entry.calls.insert(call_id, Outcome::Running(waiting));
                entry.running += 1;
                Begin::Start(id, done)
            }
        };
        Ok((begin, forgotten))
    }

    /// Record the outcome of a call [`begin`](Ledger::begin) started,
    /// unless its session is gone or it is too large to keep.
    pub(super) fn finish(
        &mut self,
        id: &SessionId,
        call_id: u64,
        result: Result<Value>,
        now: Instant,
    ) -> Forgotten {
        let mut forgotten = Forgotten::default();
        let Some(entry) = self.sessions.get_mut(id) else {
            forgotten.0.push(result);
            return forgotten;
        };
        entry.running -= 1;
        entry.last_used = now;
        let owner = entry.owner(id);
        let bytes = outcome_size(&result);
        let fits_alone = bytes <= self.limits.bytes_per_owner && bytes <= self.limits.max_bytes;
        if fits_alone {
            // Make room among the owner's own outcomes, oldest first.
            while self.owner_bytes(&owner) + bytes > self.limits.bytes_per_owner
                || self.bytes + bytes > self.limits.max_bytes
            {
                match self.forget_oldest_of(&owner) {
                    Some(value) => forgotten.0.push(value),
                    None => break,
                }
            }
        }
        let keep = fits_alone
            && self.owner_bytes(&owner) + bytes <= self.limits.bytes_per_owner
            && self.bytes + bytes <= self.limits.max_bytes;
        let entry = self.sessions.get_mut(id).expect("still there");
        if keep {
            self.finished += 1;
            entry.calls.insert(
                call_id,
                Outcome::Done {
                    result,
                    bytes,
                    order: self.finished,
                },
            );
            entry.remembered += 1;
            self.bytes += bytes;
            self.owners.entry(owner.clone()).or_default().bytes += bytes;
            if entry.remembered > self.limits.outcomes_per_session {
                forgotten.0.extend(self.forget_oldest_in(id));
            }
        } else {
            entry.calls.insert(call_id, Outcome::NotKept { bytes });
            forgotten.0.push(result);
        }
        forgotten
    }

    fn owner_bytes(&self, owner: &OwnerKey) -> usize {
        self.owners.get(owner).map_or(0, |u| u.bytes)
    }

    /// Forget the owner's oldest remembered outcome, in whichever of its
    /// sessions it is.
    fn forget_oldest_of(&mut self, owner: &OwnerKey) -> Option<Result<Value>> {
        let session = match owner {
            OwnerKey::Session(id) => *id,
            OwnerKey::Identity(name) => {
                self.sessions
                    .iter()
                    .filter(|(_, e)| e.identity.as_ref() == Some(name))
                    .filter_map(|(id, e)| e.oldest().map(|(order, _)| (order, *id)))
                    .min()?
                    .1
            }
        };
        self.forget_oldest_in(&session)
    }

    /// Forget the oldest remembered outcome of one session: a retry of
    /// any call id up to it is then `OutcomeUnknown`.
    fn forget_oldest_in(&mut self, id: &SessionId) -> Option<Result<Value>> {
        let entry = self.sessions.get_mut(id)?;
        let (_, call_id) = entry.oldest()?;
        let owner = entry.owner(id);
        let Some(Outcome::Done { result, bytes, .. }) = entry.calls.remove(&call_id) else {
            unreachable!("oldest() names a remembered outcome");
        };
        entry.remembered -= 1;
        entry.forgotten_below = entry.forgotten_below.max(call_id + 1);
        // Ids below it that were not kept are covered by `forgotten_below`.
        entry
            .calls
            .retain(|id, o| *id > call_id || matches!(o, Outcome::Running(_)));
        self.bytes -= bytes;
        if let Some(usage) = self.owners.get_mut(&owner) {
            usage.bytes -= bytes;
        }
        Some(result)
    }

    /// End the session `token` names, if `caller` may; ending an unknown
    /// session is not an error (nothing tells the two apart).
    pub(super) fn forget(&mut self, token: &str, caller: Caller<'_>) -> Forgotten {
        match self.find(token, caller) {
            Ok((id, _)) => self.remove(&id),
            Err(_) => Forgotten::default(),
        }
    }

    fn remove(&mut self, id: &SessionId) -> Forgotten {
        let Some(entry) = self.sessions.remove(id) else {
            return Forgotten::default();
        };
        let owner = entry.owner(id);
        let mut bytes = 0;
        let mut values = Vec::new();
        for outcome in entry.calls.into_values() {
            if let Outcome::Done {
                result, bytes: b, ..
            } = outcome
            {
                bytes += b;
                values.push(result);
            }
        }
        self.bytes -= bytes;
        if let Some(usage) = self.owners.get_mut(&owner) {
            usage.bytes -= bytes;
            usage.sessions -= 1;
            if usage.sessions == 0 {
                self.owners.remove(&owner);
            }
        }
        Forgotten(values)
    }

    /// Forget every session idle for the idle timeout (none with a call
    /// running).
    pub(super) fn expire(&mut self, now: Instant) -> Forgotten {
        let idle = self.limits.idle_timeout;
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.expires(idle).is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        let mut forgotten = Forgotten::default();
        for id in expired {
            forgotten.0.extend(self.remove(&id).0);
        }
        forgotten
    }

    /// When the next session expires, if one can.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        let idle = self.limits.idle_timeout;
        self.sessions.values().filter_map(|e| e.expires(idle)).min()
    }
}

/// What a remembered outcome is counted at: its values as the decoding
/// budget counts them, or an error's text.
fn outcome_size(result: &Result<Value>) -> usize {
    match result {
        Ok(value) => value_size(value),
        Err(err) => error_size(err),
    }
}

fn value_size(value: &Value) -> usize {
    VALUE_COST
        + match value {
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::List(items) => items.iter().map(value_size).sum(),
            Value::Map(pairs) => pairs
                .iter()
                .map(|(k, v)| value_size(k) + value_size(v))
                .sum(),
            _ => 0,
        }
}

fn error_size(err: &Error) -> usize {
    // The error's own text and a generous allowance for its trace.
    VALUE_COST + format!("{err:#}").len()
}

fn random_bytes() -> Result<[u8; ID_LEN]> {
    use ring::rand::SecureRandom;
    let mut bytes = [0; ID_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::new(crate::ErrorKind::Transport, "no randomness from the system"))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token's id and secret; `None` for anything that is not one.
fn parse_token(token: &str) -> Option<(SessionId, [u8; ID_LEN])> {
    let digits = token.as_bytes();
    if digits.len() != 4 * ID_LEN {
        return None;
    }
    let mut bytes = [0u8; 2 * ID_LEN];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    let (id, secret) = bytes.split_at(ID_LEN);
    Some((id.try_into().ok()?, secret.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SessionLimits {
        SessionLimits {
            max_sessions: 8,
            sessions_per_owner: 2,
            outcomes_per_session: 4,
            bytes_per_owner: 1000,
            max_bytes: 1500,
            idle_timeout: Duration::from_secs(60),
        }
    }

    fn run(ledger: &mut Ledger, token: &str, who: Caller<'_>, call: u64, value: Value) {
        let now = Instant::now();
        let (begin, _) = ledger.begin(token, who, call, now).unwrap();
        let Begin::Start(id, _) = begin else {
            panic!("call {call} ran before")
        };
        let _ = ledger.finish(&id, call, Ok(value), now);
    }

    fn replay(ledger: &mut Ledger, token: &str, who: Caller<'_>, call: u64) -> Result<Value> {
        match ledger.begin(token, who, call, Instant::now())?.0 {
            Begin::Done(outcome) => outcome,
            _ => panic!("call {call} not remembered"),
        }
    }

    #[test]
    fn tokens_are_long_random_and_parse_back() {
        let mut ledger = Ledger::new(limits());
        let (a, _) = ledger.open(None, Instant::now()).unwrap();
        let (b, _) = ledger.open(None, Instant::now()).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(parse_token(&a).is_some());
        assert!(parse_token(&a[..63]).is_none());
        assert!(parse_token(&format!("{}zz", &a[..62])).is_none());
    }

    #[test]
    fn another_caller_or_secret_is_told_the_session_is_unknown() {
        let mut ledger = Ledger::new(limits());
        let (token, _) = ledger.open(Some("alice"), Instant::now()).unwrap();
        run(&mut ledger, &token, Some("alice"), 0, Value::from("secret"));
        let unknown = ledger
            .begin(&"0".repeat(64), Some("alice"), 0, Instant::now())
            .err()
            .unwrap();
        let by_bob = ledger
            .begin(&token, Some("bob"), 0, Instant::now())
            .err()
            .unwrap();
        let anonymous = ledger.begin(&token, None, 0, Instant::now()).err().unwrap();
        let mut forged = token.clone();
        forged.replace_range(63.., if token.ends_with('0') { "1" } else { "0" });
        let wrong_secret = ledger
            .begin(&forged, Some("alice"), 0, Instant::now())
            .err()
            .unwrap();
        for err in [&by_bob, &anonymous, &wrong_secret] {
            assert_eq!(err.kind(), unknown.kind());
            assert_eq!(err.message(), unknown.message());
        }
        assert_eq!(
            replay(&mut ledger, &token, Some("alice"), 0).unwrap(),
            Value::from("secret")
        );
    }

    #[test]
    fn an_owner_at_its_quota_forgets_its_own_oldest_session_only() {
        let mut ledger = Ledger::new(limits());
        let (alice, _) = ledger.open(Some("alice"), Instant::now()).unwrap();
        let (bob1, _) = ledger.open(Some("bob"), Instant::now()).unwrap();
        for _ in 0..5 {
            let _ = ledger.open(Some("bob"), Instant::now()).unwrap();
        }
        assert_eq!(ledger.len(), 3, "alice's one and bob's two");
        assert!(ledger
            .begin(&alice, Some("alice"), 0, Instant::now())
            .is_ok());
        assert!(ledger.begin(&bob1, Some("bob"), 0, Instant::now()).is_err());
    }

    #[test]
    fn anonymous_sessions_past_the_bound_are_refused_not_evicted() {
        let mut ledger = Ledger::new(limits());
        let (first, _) = ledger.open(None, Instant::now()).unwrap();
        for _ in 1..8 {
            let _ = ledger.open(None, Instant::now()).unwrap();
        }
        let err = ledger.open(None, Instant::now()).err().unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::LimitExceeded);
        assert!(ledger.begin(&first, None, 0, Instant::now()).is_ok());
    }

    #[test]
    fn bytes_are_bounded_per_owner_and_in_all() {
        let mut ledger = Ledger::new(limits());
        let (alice, _) = ledger.open(Some("alice"), Instant::now()).unwrap();
        let (bob, _) = ledger.open(Some("bob"), Instant::now()).unwrap();
        let blob = |n: usize| Value::Bytes(vec![0; n - VALUE_COST].into());
        run(&mut ledger, &alice, Some("alice"), 0, blob(400));
        run(&mut ledger, &alice, Some("alice"), 1, blob(400));
        // A third pushes alice's oldest out: call 0 is unknown now.
        run(&mut ledger, &alice, Some("alice"), 2, blob(400));
        assert_eq!(ledger.bytes(), 800);
        let err = replay(&mut ledger, &alice, Some("alice"), 0).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::OutcomeUnknown);
        // Past the total, an owner's own older outcomes go first ...
        run(&mut ledger, &bob, Some("bob"), 0, blob(400));
        run(&mut ledger, &bob, Some("bob"), 1, blob(400));
        assert_eq!(ledger.bytes(), 1200);
        assert!(replay(&mut ledger, &bob, Some("bob"), 0).is_err());
        assert!(replay(&mut ledger, &bob, Some("bob"), 1).is_ok());
        // ... and one with none is not remembered: alice and bob keep theirs.
        let (carol, _) = ledger.open(Some("carol"), Instant::now()).unwrap();
        run(&mut ledger, &carol, Some("carol"), 0, blob(400));
        assert_eq!(ledger.bytes(), 1200);
        assert!(replay(&mut ledger, &alice, Some("alice"), 2).is_ok());
        assert!(replay(&mut ledger, &alice, Some("alice"), 1).is_ok());
        let err = replay(&mut ledger, &carol, Some("carol"), 0).unwrap_err();
        assert!(err.message().contains("too large to remember"), "{err}");
        // Too large alone: never remembered.
        run(&mut ledger, &alice, Some("alice"), 3, blob(2000));
        let err = replay(&mut ledger, &alice, Some("alice"), 3).unwrap_err();
        assert!(err.message().contains("too large to remember"), "{err}");
    }

    #[test]
    fn idle_sessions_expire_unless_a_call_runs() {
        let mut ledger = Ledger::new(limits());
        let start = Instant::now();
        let (idle, _) = ledger.open(None, start).unwrap();
        let (busy, _) = ledger.open(None, start).unwrap();
        let (Begin::Start(..), _) = ledger.begin(&busy, None, 0, start).unwrap() else {
            panic!()
        };
        assert_eq!(ledger.next_expiry(), Some(start + Duration::from_secs(60)));
        let later = start + Duration::from_secs(61);
        let _ = ledger.expire(later);
        assert_eq!(ledger.len(), 1);
        assert!(ledger.begin(&idle, None, 1, later).is_err());
        assert!(ledger.begin(&busy, None, 0, later).is_ok());
    }
}
