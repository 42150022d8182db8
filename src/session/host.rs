//! The server side of sessions: remembers recent outcomes per session and
//! joins calls that are still running.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use super::ledger::{Begin, Caller, Ledger, Shared};
use crate::service::table::lock;

use crate::error::raise;
use crate::protocol::frame::Op;
use crate::service::policy::Policy;
use crate::{Args, BoxFuture, CallContext, Error, Member, NetRef, Object, Result, Value};

/// How an error about a session the host does not know begins.
pub(super) const UNKNOWN_SESSION: &str = "unknown session";

/// How much a [`SessionHost`] remembers, and for how long.
///
/// An *owner* is an authenticated identity (all its sessions together) or,
/// for a peer that did not authenticate, each session on its own. At its
/// own quota an owner forgets its own oldest sessions and outcomes, never
/// another owner's; at the host's bounds a new session is refused and a
/// new outcome is not remembered (a retry of that call is then
/// [`OutcomeUnknown`](crate::ErrorKind::OutcomeUnknown)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionLimits {
    /// Sessions kept in all; past it, opening one fails with
    /// [`LimitExceeded`](crate::ErrorKind::LimitExceeded) until idle ones
    /// expire. Default: 4 096.
    pub max_sessions: usize,
    /// Sessions kept per authenticated identity; opening one more forgets
    /// that identity's least recently used one. Default: 16.
    pub sessions_per_owner: usize,
    /// Finished outcomes kept per session; one more forgets the oldest
    /// call id, after which a retry of it fails with `OutcomeUnknown`.
    /// Default: 256.
    pub outcomes_per_session: usize,
    /// Bytes of remembered outcomes per owner (values counted as the
    /// decoding budget counts them: 40 bytes each plus text and bytes);
    /// past it the owner's oldest outcomes are forgotten, and an outcome
    /// larger than this alone is not remembered. Default: 16 MiB.
    pub bytes_per_owner: usize,
    /// Bytes of remembered outcomes in all; an outcome that would pass it
    /// (after its owner's own older ones are forgotten) is not remembered.
    /// Default: 256 MiB.
    pub max_bytes: usize,
    /// A session with no call for this long is forgotten, with everything
    /// it remembers, the objects its outcomes hold included. Default: 10
    /// minutes (Java RMI's lease).
    pub idle_timeout: Duration,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            max_sessions: 4096,
            sessions_per_owner: 16,
            outcomes_per_session: 256,
            bytes_per_owner: 16 << 20,
            max_bytes: 256 << 20,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl SessionLimits {
    /// Set [`max_sessions`](SessionLimits::max_sessions) (at least 1).
    pub fn max_sessions(mut self, n: usize) -> SessionLimits {
        self.max_sessions = n.max(1);
        self
    }

    /// Set [`sessions_per_owner`](SessionLimits::sessions_per_owner) (at
    /// least 1).
    pub fn sessions_per_owner(mut self, n: usize) -> SessionLimits {
        self.sessions_per_owner = n.max(1);
        self
    }

    /// Set [`outcomes_per_session`](SessionLimits::outcomes_per_session)
    /// (at least 1).
    pub fn outcomes_per_session(mut self, n: usize) -> SessionLimits {
        self.outcomes_per_session = n.max(1);
        self
    }

    /// Set [`bytes_per_owner`](SessionLimits::bytes_per_owner).
    pub fn bytes_per_owner(mut self, bytes: usize) -> SessionLimits {
        self.bytes_per_owner = bytes;
        self
    }

    /// Set [`max_bytes`](SessionLimits::max_bytes).
    pub fn max_bytes(mut self, bytes: usize) -> SessionLimits {
        self.max_bytes = bytes;
        self
    }

    /// Set [`idle_timeout`](SessionLimits::idle_timeout).
    pub fn idle_timeout(mut self, idle: Duration) -> SessionLimits {
        self.idle_timeout = idle;
        self
    }
}

/// Serves an object so that calls made through a
/// [`Session`](super::Session) run at most once, even when the client
/// retries them over a new connection. See the [module docs](super).
///
/// Members: `open()` starts a session and returns its token (an opaque
/// secret: whoever holds it *and* is the same authenticated identity can
/// use the session); `call(token, call_id, method, *args, **kwargs)` calls
/// `method` on the wrapped object at most once per `(session, call_id)`;
/// `forget(token)` ends a session; `root()` is the wrapped object itself,
/// for calls that need no bookkeeping. The connection's policy applies to
/// the wrapped object as if it were served directly.
///
/// Clones share their sessions, so a server that serves a clone per
/// connection ([`Server::serve`](crate::Server::serve)) lets a session
/// continue over any of them.
#[derive(Clone)]
pub struct SessionHost {
    root: NetRef,
    ledger: Arc<Mutex<Ledger>>,
    /// Whether a task forgets idle sessions yet (started with the first
    /// session, as `new` may run outside a runtime).
    sweeping: Arc<AtomicBool>,
}

impl SessionHost {
    /// Wrap `root` with the default [`SessionLimits`].
    pub fn new(root: NetRef) -> SessionHost {
        SessionHost::with_limits(root, SessionLimits::default())
    }

    /// Wrap `root`, remembering as much as `limits` says.
    pub fn with_limits(root: NetRef, limits: SessionLimits) -> SessionHost {
        let limits = SessionLimits {
            max_sessions: limits.max_sessions.max(1),
            sessions_per_owner: limits.sessions_per_owner.max(1),
            outcomes_per_session: limits.outcomes_per_session.max(1),
            ..limits
        };
        SessionHost {
            root,
            ledger: Arc::new(Mutex::new(Ledger::new(limits))),
            sweeping: Arc::default(),
        }
    }

    /// Sessions currently remembered.
    pub fn session_count(&self) -> usize {
        self.ledger().len()
    }

    /// Bytes of outcomes currently remembered, as
    /// [`SessionLimits::max_bytes`] counts them.
    pub fn remembered_bytes(&self) -> usize {
        self.ledger().bytes()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    fn open(&self, caller: Caller<'_>) -> Result<String> {
        self.sweep_idle();
        let (token, forgotten) = self.ledger().open(caller, Instant::now())?;
        drop(forgotten);
        Ok(token)
    }

    /// Start the task that forgets idle sessions, once.
    fn sweep_idle(&self) {
        if self.sweeping.swap(true, Ordering::SeqCst) {
            return;
        }
        let ledger = Arc::downgrade(&self.ledger);
        tokio::spawn(async move {
            loop {
                let next = {
                    let Some(ledger) = ledger.upgrade() else {
                        return;
                    };
                    let mut ledger = lock(&ledger);
                    let forgotten = ledger.expire(Instant::now());
                    let next = ledger.next_expiry();
                    drop(ledger);
                    drop(forgotten);
                    next
                };
                // With nothing that can expire, look again a minute later
                // (a session opened meanwhile expires no sooner than that
                // far past its last call).
                let at = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
                tokio::time::sleep_until(at).await;
            }
        });
    }

    /// `call(token, call_id, method, *args, **kwargs)`.
    async fn call_once(&self, mut args: Args, cx: &CallContext) -> Result<Value> {
        if args.positional.len() < 3 {
            return Err(raise::bad_args(
                "call() takes a session token, a call id and a method name, then the method's arguments",
            ));
        }
        let mut head = args.positional.drain(..3);
        let token: String = head.next().unwrap().try_into()?;
        let call_id: u64 = head.next().unwrap().try_into()?;
        let method: String = head.next().unwrap().try_into()?;
        drop(head);
        let caller = caller_of(cx);
        let (begin, forgotten) =
            self.ledger()
                .begin(&token, caller.as_deref(), call_id, Instant::now())?;
        drop(forgotten);

        let waiting = match begin {
            Begin::Done(outcome) => return outcome,
            Begin::Running(waiting) => waiting,
            Begin::Start(session, done) => {
                // Runs to the end even if this caller's connection goes away:
                // the retry on the next connection collects the outcome.
                let root = self.root.clone();
                let policy = cx
                    .connection()
                    .map(|c| c.shared().config.policy.clone())
                    .unwrap_or_else(Policy::trusted);
                let cx = cx.clone();
                let waiting = done.subscribe();
                let ledger = self.ledger.clone();
                tokio::spawn(async move {
                    let work = root.serve(Op::CallMethod(method, args), &policy, &cx);
                    let outcome =
                        AssertUnwindSafe(work)
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| {
                                Err(Error::app(
                                    "Panic",
                                    "the method panicked during a session call",
                                ))
                            });
                    let forgotten =
                        lock(&ledger).finish(&session, call_id, outcome.clone(), Instant::now());
                    drop(forgotten);
                    done.send_replace(Some(outcome));
                });
                waiting
            }
        };
        wait_for(waiting, call_id).await
    }

    /// `forget(token)`: the same answer whether or not there was such a
    /// session for this caller.
    fn forget(&self, token: &str, cx: &CallContext) {
        let caller = caller_of(cx);
        let forgotten = self.ledger().forget(token, caller.as_deref());
        drop(forgotten);
    }
}

/// Who is calling, as sessions are owned: the authenticated identity of
/// the connection (with how it authenticated, so a certificate's subject
/// and a token's name never match), or `None`.
fn caller_of(cx: &CallContext) -> Option<String> {
    cx.peer_identity()
        .map(|who| format!("{:?}:{}", who.method(), who.name()))
}

/// The outcome of a call another request started.
async fn wait_for(mut waiting: Shared, call_id: u64) -> Result<Value> {
    match waiting.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().expect("waited for Some"),
        Err(_) => Err(raise::outcome_unknown(format!(
            "call {call_id} was stopped before it finished (the server is shutting down)"
        ))),
    }
}

const MEMBERS: &[Member] = &[
    Member::method(
        "open",
        "() -> str",
        "Start a session; return its token (a secret: keep it).",
    ),
    Member::method(
        "call",
        "(token: str, call_id: int, method: str, *args, **kwargs) -> any",
        "Call method(*args, **kwargs) on the served object at most once per (session, call_id).",
    ),
    Member::method("forget", "(token: str) -> None", "End a session."),
    Member::method(
        "root",
        "() -> object",
        "The served object itself, for calls without bookkeeping.",
    ),
];

impl Object for SessionHost {
    fn type_name(&self) -> &str {
        "SessionHost"
    }

    fn members(&self) -> &[Member] {
        MEMBERS
    }

    fn call_method<'a>(
        &'a self,
        name: &'a str,
        args: Args,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            match name {
                "open" => {
                    args.parse::<()>()?;
                    Ok(Value::from(self.open(caller_of(cx).as_deref())?))
                }
                "call" => self.call_once(args, cx).await,
                "forget" => {
                    let (token,): (String,) = args.parse()?;
                    self.forget(&token, cx);
                    Ok(Value::None)
                }
                "root" => {
                    args.parse::<()>()?;
                    Ok(Value::Ref(self.root.clone()))
                }
                _ => Err(raise::no_member("SessionHost", name)),
            }
        })
    }
}

impl std::fmt::Debug for SessionHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHost")
            .field("root", &self.root)
            .field("sessions", &self.session_count())
            .finish()
    }
}
