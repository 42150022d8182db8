//! The server side of sessions: remembers recent outcomes per session and
//! joins calls that are still running.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::raise;
use crate::protocol::frame::Op;
use crate::service::policy::Policy;
use crate::{Args, BoxFuture, CallContext, Error, Member, NetRef, Object, Result, Value};

/// How an error about a session the host does not know begins.
pub(super) const UNKNOWN_SESSION: &str = "unknown session";

/// How much a [`SessionHost`] remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions kept; opening one more forgets the least recently used.
    pub max_sessions: usize,
    /// Finished outcomes kept per session; one more forgets the oldest
    /// call id, after which a retry of it fails with `OutcomeUnknown`.
    pub outcomes_per_session: usize,
}

impl Default for SessionLimits {
    /// 1 024 sessions of 256 outcomes each.
    fn default() -> SessionLimits {
        SessionLimits {
            max_sessions: 1024,
            outcomes_per_session: 256,
        }
    }
}

/// Serves an object so that calls made through a
/// [`Session`](super::Session) run at most once, even when the client
/// retries them over a new connection. See the [module docs](super).
///
/// Members: `open()` starts a session and returns its id; `call(session,
/// call_id, method, *args, **kwargs)` calls `method` on the wrapped object
/// at most once per `(session, call_id)`; `forget(session)` ends a session;
/// `root()` is the wrapped object itself, for calls that need no
/// bookkeeping. The connection's policy applies to the wrapped object as
/// if it were served directly.
///
/// Clones share their sessions, so a server that serves a clone per
/// connection ([`Server::serve`](crate::Server::serve)) lets a session
/// continue over any of them.
#[derive(Clone)]
pub struct SessionHost {
    root: NetRef,
    limits: SessionLimits,
    sessions: Arc<Mutex<HashMap<String, Arc<SessionState>>>>,
}

impl SessionHost {
    /// Wrap `root` with the default [`SessionLimits`].
    pub fn new(root: NetRef) -> SessionHost {
        SessionHost::with_limits(root, SessionLimits::default())
    }

    /// Wrap `root`, remembering as much as `limits` says.
    pub fn with_limits(root: NetRef, limits: SessionLimits) -> SessionHost {
        SessionHost {
            root,
            limits: SessionLimits {
                max_sessions: limits.max_sessions.max(1),
                outcomes_per_session: limits.outcomes_per_session.max(1),
            },
            sessions: Arc::default(),
        }
    }

    /// Sessions currently remembered.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }

    fn open(&self) -> String {
        let id = new_session_id();
        let mut sessions = self.sessions.lock().unwrap();
        if sessions.len() >= self.limits.max_sessions {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| *s.last_used.lock().unwrap())
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        let state = SessionState {
            calls: Mutex::default(),
            last_used: Mutex::new(Instant::now()),
        };
        sessions.insert(id.clone(), Arc::new(state));
        id
    }

    fn session(&self, id: &str) -> Result<Arc<SessionState>> {
        let session = self.sessions.lock().unwrap().get(id).cloned();
        let session = session.ok_or_else(|| {
            raise::outcome_unknown(format!(
                "{UNKNOWN_SESSION} '{id}' (forgotten, or the server restarted)"
            ))
        })?;
        *session.last_used.lock().unwrap() = Instant::now();
        Ok(session)
    }

    /// `call(session, call_id, method, *args, **kwargs)`.
    async fn call_once(&self, mut args: Args, cx: &CallContext) -> Result<Value> {
        if args.positional.len() < 3 {
            return Err(raise::bad_args(
                "call() takes a session id, a call id and a method name, then the method's arguments",
            ));
        }
        let mut head = args.positional.drain(..3);
        let session: String = head.next().unwrap().try_into()?;
        let call_id: u64 = head.next().unwrap().try_into()?;
        let method: String = head.next().unwrap().try_into()?;
        drop(head);
        let session = self.session(&session)?;

        let waiting = match session.begin(call_id)? {
            Begin::Done(outcome) => return outcome,
            Begin::Running(waiting) => waiting,
            Begin::Start(done) => {
                // Runs to the end even if this caller's connection goes away:
                // the retry on the next connection collects the outcome.
                let root = self.root.clone();
                let policy = cx
                    .connection()
                    .map(|c| c.shared().config.policy.clone())
                    .unwrap_or_else(Policy::trusted);
                let cx = cx.clone();
                let waiting = done.subscribe();
                let limit = self.limits.outcomes_per_session;
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
                    session.finish(call_id, outcome.clone(), limit);
                    done.send_replace(Some(outcome));
                });
                waiting
            }
        };
        wait_for(waiting, call_id).await
    }
}

/// The outcome of a call another request started.
async fn wait_for(
    mut waiting: watch::Receiver<Option<Result<Value>>>,
    call_id: u64,
) -> Result<Value> {
    match waiting.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().expect("waited for Some"),
        Err(_) => Err(raise::outcome_unknown(format!(
            "call {call_id} was stopped before it finished (the server is shutting down)"
        ))),
    }
}

/// What one session remembers.
struct SessionState {
    calls: Mutex<Calls>,
    last_used: Mutex<Instant>,
}

#[derive(Default)]
struct Calls {
    outcomes: BTreeMap<u64, Outcome>,
    /// Finished outcomes among `outcomes`.
    finished: usize,
    /// Ids below this may have run and are no longer remembered.
    forgotten_below: u64,
}

enum Outcome {
    Running(watch::Receiver<Option<Result<Value>>>),
    Done(Result<Value>),
}

enum Begin {
    Done(Result<Value>),
    Running(watch::Receiver<Option<Result<Value>>>),
    Start(watch::Sender<Option<Result<Value>>>),
}

impl SessionState {
    fn begin(&self, call_id: u64) -> Result<Begin> {
        let mut calls = self.calls.lock().unwrap();
        match calls.outcomes.get(&call_id) {
            Some(Outcome::Done(outcome)) => return Ok(Begin::Done(outcome.clone())),
            Some(Outcome::Running(waiting)) => return Ok(Begin::Running(waiting.clone())),
            None => {}
        }
        if call_id < calls.forgotten_below {
            return Err(raise::outcome_unknown(format!(
                "call {call_id} is no longer remembered: it may or may not have run"
            )));
        }
        let (done, waiting) = watch::channel(None);
        calls.outcomes.insert(call_id, Outcome::Running(waiting));
        Ok(Begin::Start(done))
    }

    fn finish(&self, call_id: u64, outcome: Result<Value>, limit: usize) {
        let mut calls = self.calls.lock().unwrap();
        calls.outcomes.insert(call_id, Outcome::Done(outcome));
        calls.finished += 1;
        while calls.finished > limit {
            let oldest = calls
                .outcomes
                .iter()
                .find(|(_, o)| matches!(o, Outcome::Done(_)))
                .map(|(id, _)| *id);
            let Some(oldest) = oldest else { break };
            calls.outcomes.remove(&oldest);
            calls.finished -= 1;
            calls.forgotten_below = calls.forgotten_below.max(oldest + 1);
        }
    }
}

/// 128 unpredictable bits, as hex: SipHash keyed from the OS's randomness
/// (std's `RandomState`), so ids cannot be guessed from one another.
fn new_session_id() -> String {
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        h.finish()
    };
    format!("{:016x}{:016x}", word(), word())
}

const MEMBERS: &[Member] = &[
    Member::method("open", "() -> str", "Start a session; return its id."),
    Member::method(
        "call",
        "(session: str, call_id: int, method: str, *args, **kwargs) -> any",
        "Call method(*args, **kwargs) on the served object at most once per (session, call_id).",
    ),
    Member::method("forget", "(session: str) -> None", "End a session."),
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
                    Ok(Value::from(self.open()))
                }
                "call" => self.call_once(args, cx).await,
                "forget" => {
                    let (id,): (String,) = args.parse()?;
                    self.sessions.lock().unwrap().remove(&id);
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
            .field("limits", &self.limits)
            .field("sessions", &self.session_count())
            .finish()
    }
}
