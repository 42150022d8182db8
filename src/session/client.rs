//! The client side of sessions: numbered calls, retried over new
//! connections with the same number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::host::UNKNOWN_SESSION;
use crate::error::raise;
use crate::{Args, BoxFuture, Connection, Error, ErrorKind, IntoArgs, NetRef, Result, Value};

/// Makes a new connection to a server whose root is a
/// [`SessionHost`](super::SessionHost).
type Connector = Arc<dyn Fn() -> BoxFuture<'static, Result<Connection>> + Send + Sync>;

/// A client session whose calls run at most once, across reconnects.
/// See the [module docs](super).
///
/// Cheap to share behind an `Arc`; calls from several tasks run
/// concurrently over one connection.
pub struct Session {
    connector: Connector,
    attempts: usize,
    backoff: Duration,
    link: tokio::sync::Mutex<Option<Link>>,
    id: Mutex<Option<String>>,
    next_call: AtomicU64,
    reconnects: AtomicU64,
}

/// One connection to the host.
#[derive(Clone)]
struct Link {
    conn: Connection,
    host: NetRef,
}

/// Options for a [`Session`]: how to connect and how hard to retry.
pub struct SessionBuilder {
    connector: Connector,
    attempts: usize,
    backoff: Duration,
}

impl SessionBuilder {
    /// A session that makes each connection with `connect`.
    ///
    /// ```
    /// # async fn demo(addr: std::net::SocketAddr) -> tether::Result<()> {
    /// let session = tether::session::SessionBuilder::new(move || {
    ///     Box::pin(tether::Connection::builder().connect(addr))
    /// })
    /// .attempts(5)
    /// .build()
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub fn new<F>(connect: F) -> SessionBuilder
    where
        F: Fn() -> BoxFuture<'static, Result<Connection>> + Send + Sync + 'static,
    {
        SessionBuilder {
            connector: Arc::new(connect),
            attempts: 4,
            backoff: Duration::from_millis(50),
        }
    }

    /// Tries per call, the first included (default 4, at least 1).
    pub fn attempts(mut self, attempts: usize) -> SessionBuilder {
        self.attempts = attempts.max(1);
        self
    }

    /// Wait before the first retry; doubled for each further one, up to
    /// 2 s (default 50 ms).
    pub fn backoff(mut self, backoff: Duration) -> SessionBuilder {
        self.backoff = backoff;
        self
    }

    /// Connect and open the session.
    pub async fn build(self) -> Result<Session> {
        let session = Session {
            connector: self.connector,
            attempts: self.attempts,
            backoff: self.backoff,
            link: tokio::sync::Mutex::new(None),
            id: Mutex::new(None),
            next_call: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        };
        session.link_and_id().await?;
        Ok(session)
    }
}

impl Session {
    /// Connect over TCP to a server serving a
    /// [`SessionHost`](super::SessionHost), and open a session.
    pub async fn connect<A>(addr: A) -> Result<Session>
    where
        A: tokio::net::ToSocketAddrs + Clone + Send + Sync + 'static,
    {
        SessionBuilder::new(move || {
            let addr = addr.clone();
            Box::pin(async move { Connection::builder().connect(addr).await })
        })
        .build()
        .await
    }

    /// Call `method` on the served object at most once.
    ///
    /// If the connection is lost, the call is sent again over a new one
    /// with the same call id: the host answers with the outcome of the
    /// run that already happened, joins it if it is still running, or
    /// runs it if it never arrived. Fails with
    /// [`ErrorKind::OutcomeUnknown`] when that cannot be told (the host
    /// forgot the call, or lost the session in a restart, after a send that
    /// may have reached it), and with the last connection error when every
    /// attempt failed before anything could have been sent.
    pub async fn call(&self, method: &str, args: impl IntoArgs) -> Result<Value> {
        let call_id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let args = args.into_args();
        let mut maybe_sent = false;
        let mut last = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                self.pause(attempt).await;
            }
            let (link, session) = match self.link_and_id().await {
                Ok(both) => both,
                Err(err) if is_lost(&err, None) => {
                    last = Some(err);
                    continue;
                }
                Err(err) => return Err(err),
            };
            let mut sent = Args {
                positional: vec![session.into(), Value::Int(call_id as i64), method.into()],
                named: args.named.clone(),
            };
            sent.positional.extend(args.positional.iter().cloned());
            match link.host.call_method("call", sent).await {
                Ok(value) => return Ok(value),
                Err(err) if is_lost(&err, Some(&link.conn)) => {
                    maybe_sent = true;
                    self.drop_link(&link).await;
                    last = Some(err);
                }
                Err(err) if unknown_session(&err) && !maybe_sent => {
                    // The host lost the session (a restart) and this call
                    // never reached it before: safe to run in a new one.
                    self.id.lock().unwrap().take();
                    last = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        let last = last.expect("at least one attempt");
        if maybe_sent {
            return Err(raise::outcome_unknown(format!(
                "call {call_id} ({method}) may or may not have run: the connection was lost and \
                 {} attempts did not get its outcome (last: {last})",
                self.attempts
            )));
        }
        Err(last)
    }

    /// Call `method` on the served object, retrying plainly over a new
    /// connection when the connection is lost. Only for methods that are
    /// safe to run more than once (reads, "set to" rather than "add").
    pub async fn call_idempotent(&self, method: &str, args: impl IntoArgs) -> Result<Value> {
        let args = args.into_args();
        self.retry_plainly(|link| {
            let args = args.clone();
            async move {
                match link.host.call_method("root", ()).await? {
                    Value::Ref(root) => root.call_method(method, args).await,
                    other => Err(raise::type_mismatch("the served object", other.type_name())),
                }
            }
        })
        .await
    }

    /// End the session: the host forgets its remembered outcomes (and
    /// the objects they hold), then the connection closes. Retried over a
    /// new connection like [`call_idempotent`](Session::call_idempotent).
    pub async fn end(self) -> Result<()> {
        let Some(id) = self.id() else {
            return Ok(());
        };
        self.retry_plainly(|link| {
            let id = id.clone();
            async move {
                let outcome = link.host.call_method("forget", (id,)).await;
                if outcome.is_ok() {
                    link.conn.close().await;
                }
                outcome.map(drop)
            }
        })
        .await
    }

    /// Run `op` on the live connection; when the connection is lost before
    /// or during it, connect again and run it again, up to `attempts` times.
    async fn retry_plainly<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Link) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut last = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                self.pause(attempt).await;
            }
            let link = match self.link().await {
                Ok(link) => link,
                Err(err) if is_lost(&err, None) => {
                    last = Some(err);
                    continue;
                }
                Err(err) => return Err(err),
            };
            match op(link.clone()).await {
                Err(err) if is_lost(&err, Some(&link.conn)) => {
                    self.drop_link(&link).await;
                    last = Some(err);
                }
                outcome => return outcome,
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// The session's token on the host, once opened: it names the session
    /// and proves its ownership, so keep it secret. See the
    /// [module docs](super#who-may-use-a-session).
    pub fn id(&self) -> Option<String> {
        self.id.lock().unwrap().clone()
    }

    /// How many times the session connected again after losing its
    /// connection.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// The current connection and the session id, opening either as needed.
    async fn link_and_id(&self) -> Result<(Link, String)> {
        let link = self.link().await?;
        if let Some(id) = self.id() {
            return Ok((link, id));
        }
        let id: String = link.host.call_method("open", ()).await?.try_into()?;
        *self.id.lock().unwrap() = Some(id.clone());
        Ok((link, id))
    }

    /// The live connection, or a new one.
    async fn link(&self) -> Result<Link> {
        let mut current = self.link.lock().await;
        if let Some(link) = current.as_ref().filter(|l| !l.conn.is_closed()) {
            return Ok(link.clone());
        }
        if current.take().is_some() {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let conn = (self.connector)().await?;
        let host = conn.root().await?;
        let link = Link { conn, host };
        *current = Some(link.clone());
        Ok(link)
    }

    /// Forget `link` (if it is still the current one) and close it.
    async fn drop_link(&self, link: &Link) {
        let mut current = self.link.lock().await;
        if current
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(l.conn.shared(), link.conn.shared()))
        {
            current.take();
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        drop(current);
        link.conn.close().await;
    }

    async fn pause(&self, attempt: usize) {
        let factor = 1u32 << (attempt - 1).min(16);
        tokio::time::sleep((self.backoff * factor).min(Duration::from_secs(2))).await;
    }
}

/// Whether `err` means the connection is gone (rather than the call
/// failing on its own).
fn is_lost(err: &Error, conn: Option<&Connection>) -> bool {
    matches!(err.kind(), ErrorKind::Transport | ErrorKind::Closed)
        || conn.is_some_and(Connection::is_closed)
}

fn unknown_session(err: &Error) -> bool {
    err.kind() == ErrorKind::OutcomeUnknown && err.message().starts_with(UNKNOWN_SESSION)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("open", &self.id().is_some())
            .field("attempts", &self.attempts)
            .field("reconnects", &self.reconnects())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}
