//! Promises: an operation started without waiting for it, whose result
//! can already be the target of the next operation ([`Promise`]).
//!
//! On a tether connection (protocol 4) each operation goes out at once
//! as a pipelined request: the owner keeps its outcome as an answer
//! (`service::answers`), and operations on a promise not yet resolved
//! name that answer, so a chain costs one round trip. Elsewhere (a local
//! object, a Python object over RPyC, a peer of protocol 3) each
//! operation waits for its target and is then an ordinary call.

use std::fmt;
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{FutureExt, Shared};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{NetRef, Target};
use crate::connection::{Queued, Shared as Connection};
use crate::error::raise;
use crate::protocol::frame::{Op, Subject};
use crate::trace;
use crate::{Args, BoxFuture, Error, ErrorKind, IntoArgs, Result, Value};

type Outcome = Shared<BoxFuture<'static, Result<Value>>>;

/// The result of an operation that may not have arrived yet; also the
/// target of further operations. Await it (or [`value`](Promise::value))
/// for the [`Value`]. Clones share the operation.
///
/// ```
/// # use tether::{NetRef, Value};
/// # #[derive(Clone)] struct Counters;
/// # #[tether::expose] impl Counters {
/// #     /// A counter starting at `start`.
/// #     #[method] fn counter(&self, start: i64) -> NetRef { NetRef::new(Counter(start.into())) }
/// # }
/// # struct Counter(std::sync::atomic::AtomicI64);
/// # #[tether::expose] impl Counter {
/// #     /// Add one.
/// #     #[method] fn increment(&self) -> i64 { self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 }
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let (client, _server) = tether::transport::memory::pair(
/// #     tether::Builder::default(), tether::Builder::default().root(Counters)).await.unwrap();
/// let root = client.root().await?;
/// let counter = root.promise().call_method("counter", (5,)); // started, not awaited
/// let six = counter.call_method("increment", ());            // on the promised counter
/// assert_eq!(six.await?, Value::from(6));
/// let two = root.promise().call_method("counter", (1,)).call_method("increment", ());
/// assert_eq!(two.await?, Value::from(2));
/// # Ok::<(), tether::Error>(()) }).unwrap();
/// ```
///
/// # Pipelining
///
/// On a connection to a tether peer, every operation is sent as soon as
/// it is made, even when its target is a promise still unresolved: the
/// peer keeps each outcome and runs the next operation on it when it is
/// in, so the chain above costs one round trip, not two. The peer checks
/// its policy at every step exactly as for a direct call. Where the peer
/// cannot pipeline (a Python object over RPyC, a peer speaking protocol
/// 3) or the object is local, each operation waits for its target and
/// then runs as an ordinary call: same results, one round trip per step.
///
/// A promise can be an argument of an operation on another promise
/// (`Value::from(&promise)`): where its answer is kept the owner puts it
/// in without a round trip; elsewhere the operation waits for its value.
///
/// A promise that resolves to an object of a third peer (one the owner
/// holds a proxy for) is resolved first on the owner: operations on it
/// are forwarded to the third peer as ordinary calls, one hop at a time.
///
/// # Semantics
///
/// - A step whose target failed fails with the same error; a step that
///   fails itself says which step it was (`.secret`: ...). Errors never
///   reach operations that do not depend on them.
/// - Operations made on one promised target reach the peer in the order
///   they were made (each sends its request only after the one made
///   before it has), and the owner starts them in that order. One that
///   takes promises as arguments starts once they are in (on a promised
///   target it still keeps its turn; on a plain object a later call may
///   start first).
/// - A chain has one deadline, counted from its first operation: the
///   [`NetRef`]'s timeout, else the connection's
///   [`call_timeout`](crate::Config::call_timeout), unless
///   [`with_timeout`](Promise::with_timeout) sets another. Every step
///   must be done by then.
/// - Dropping a promise that nothing else holds (no clone, no dependent
///   operation) cancels its operation, on the peer too, as dropping a
///   call does; a dependent operation keeps its target alive until its
///   own result is in.
/// - An object a promise resolved to is released once the promise and
///   its dependents are gone, as any [`NetRef`] is, and so is the answer
///   the peer kept for it ([`Stats::answers`](crate::Stats)).
#[derive(Clone)]
pub struct Promise {
    outcome: Outcome,
    /// The step, as `.name(…)`, for messages.
    step: Arc<str>,
    /// Cancels the operation when the last clone and dependent are gone.
    _running: Option<Arc<Running>>,
    /// When the operation last made on this promise has sent its request:
    /// the next one waits for it, so they reach the peer in order.
    last_queued: Arc<Mutex<Option<watch::Receiver<bool>>>>,
    /// The answer the peer keeps for this operation, when it was
    /// pipelined: operations on this promise name it.
    answer: Option<Arc<PromisedAnswer>>,
    /// When the chain this operation belongs to must be done.
    deadline: Option<Instant>,
}

/// A peer's answer to one of our pipelined requests; the peer is told to
/// let it go (`Finish`) when the last holder, the operation's task
/// included, drops this.
struct PromisedAnswer {
    conn: Arc<Connection>,
    seq: u64,
    /// Becomes true once the request is queued; closed if it never will be.
    queued: watch::Receiver<bool>,
}

impl PromisedAnswer {
    /// Wait until the request is queued: false if it never will be.
    async fn queued(&self) -> bool {
        self.queued.clone().wait_for(|queued| *queued).await.is_ok()
    }
}

impl Drop for PromisedAnswer {
    fn drop(&mut self) {
        if *self.queued.borrow() {
            self.conn.finish_answer(self.seq);
        }
    }
}

/// Where an operation on a promise goes.
enum Route {
    /// Pipelined on the connection, on this subject.
    Pipelined(Arc<Connection>, Subject),
    /// Once the target is known, as an ordinary operation on it.
    StepByStep,
}

/// The task of one operation, aborted when dropped.
struct Running(tokio::task::AbortHandle);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl NetRef {
    /// This object as a resolved [`Promise`], to start operations on it
    /// without waiting: `root.promise().call_method("counter", (5,))`.
    pub fn promise(&self) -> Promise {
        Promise::resolved(Value::Ref(self.clone()), "root")
    }
}

impl Promise {
    fn resolved(value: Value, step: &str) -> Promise {
        let outcome = futures_util::future::ready(Ok(value)).boxed().shared();
        // Polled once here, so `peek` sees the value at once.
        let _ = outcome.clone().now_or_never();
        Promise {
            outcome,
            step: step.into(),
            _running: None,
            last_queued: Arc::default(),
            answer: None,
            deadline: None,
        }
    }

    /// A promise already failed with `error`: what an operation whose
    /// arguments cannot be sent gives, so a chain reports it when awaited.
    pub fn rejected(error: Error) -> Promise {
        let outcome = futures_util::future::ready(Err(error)).boxed().shared();
        let _ = outcome.clone().now_or_never();
        Promise {
            outcome,
            step: "rejected".into(),
            _running: None,
            last_queued: Arc::default(),
            answer: None,
            deadline: None,
        }
    }

    /// The same promise, with the deadline of the operations made on it
    /// from now on: `timeout` from now for the whole rest of the chain.
    pub fn with_timeout(&self, timeout: Duration) -> Promise {
        Promise {
            deadline: Instant::now().checked_add(timeout),
            ..self.clone()
        }
    }

    /// How an operation on this promise is sent, and the chain's deadline.
    fn route(&self) -> (Route, Option<Instant>) {
        let (route, timeout) = match (&self.answer, self.outcome.peek()) {
            (Some(answer), _) => (
                Route::Pipelined(answer.conn.clone(), Subject::Answer(answer.seq)),
                answer.conn.config.call_timeout,
            ),
            (None, Some(Ok(Value::Ref(netref)))) => match &netref.target {
                Target::Remote(proxy) if proxy.conn.pipelines => (
                    Route::Pipelined(proxy.conn.clone(), Subject::Object(proxy.id)),
                    netref.timeout.unwrap_or(proxy.conn.config.call_timeout),
                ),
                _ => return (Route::StepByStep, self.deadline),
            },
            _ => return (Route::StepByStep, self.deadline),
        };
        let deadline = self
            .deadline
            .or_else(|| Instant::now().checked_add(timeout));
        (route, deadline)
    }

    /// Start `op` on this promise's object: pipelined at once where the
    /// peer takes it, else once the object is known; either way after the
    /// operation made before it on this promise has sent its request.
    /// Must be called within a tokio runtime.
    fn then(&self, step: String, op: Op) -> Promise {
        let (queued_tx, queued) = watch::channel(false);
        let before = self.last_queued.lock().unwrap().replace(queued.clone());
        let (route, deadline) = self.route();
        let target = self.clone();
        let label = step.clone();
        let mut answer = None;
        let task = match route {
            Route::Pipelined(conn, subject) => {
                let seq = conn.next_request_number();
                let kept = Arc::new(PromisedAnswer {
                    conn: conn.clone(),
                    seq,
                    queued,
                });
                answer = Some(kept.clone());
                tokio::spawn(trace::in_current_span(async move {
                    // The peer is told to finish the answer only after this
                    // task is done, when the request can no longer go out.
                    let _kept = kept;
                    let send = Pipelined {
                        conn: &conn,
                        seq,
                        subject,
                        deadline,
                        queued: &queued_tx,
                    };
                    pipelined(target, before, send, op)
                        .await
                        .map_err(|failed| failed.attributed(&label))
                }))
            }
            Route::StepByStep => tokio::spawn(trace::in_current_span(async move {
                step_by_step(target, before, deadline, op, &queued_tx)
                    .await
                    .map_err(|failed| failed.attributed(&label))
            })),
        };
        let running = Arc::new(Running(task.abort_handle()));
        let outcome = async move {
            match task.await {
                Ok(outcome) => outcome,
                Err(joined) if joined.is_cancelled() => {
                    Err(Error::new(ErrorKind::Cancelled, "the promise was dropped"))
                }
                Err(_) => Err(Error::new(
                    ErrorKind::Application,
                    "the promise's operation panicked",
                )),
            }
        }
        .boxed()
        .shared();
        Promise {
            outcome,
            step: step.into(),
            _running: Some(running),
            last_queued: Arc::default(),
            answer,
            deadline,
        }
    }

    /// Call method `name` of the promised object.
    pub fn call_method(&self, name: &str, args: impl IntoArgs) -> Promise {
        self.then(
            format!(".{name}(…)"),
            Op::CallMethod(name.to_string(), args.into_args()),
        )
    }

    /// Call the promised object itself.
    pub fn call(&self, args: impl IntoArgs) -> Promise {
        self.then("(…)".to_string(), Op::Call(args.into_args()))
    }

    /// Read attribute `name` of the promised object.
    pub fn getattr(&self, name: &str) -> Promise {
        self.then(format!(".{name}"), Op::GetAttr(name.to_string()))
    }

    /// The names the promised object lists, as a list of strings.
    pub fn dir(&self) -> Promise {
        self.then("dir()".to_string(), Op::Dir)
    }

    /// Wait for the result.
    pub async fn value(&self) -> Result<Value> {
        self.outcome.clone().await
    }

    /// Wait for the result, which must be an object.
    pub async fn netref(&self) -> Result<NetRef> {
        match self.value().await? {
            Value::Ref(netref) => Ok(netref),
            other => Err(raise::type_mismatch("an object", other.type_name())),
        }
    }
}

impl IntoFuture for Promise {
    type Output = Result<Value>;
    type IntoFuture = BoxFuture<'static, Result<Value>>;

    fn into_future(self) -> Self::IntoFuture {
        // The whole promise goes along (not just its outcome, as a
        // field-wise capture would take): awaiting it keeps its operation
        // alive.
        Box::pin(async move {
            let promise = self;
            promise.outcome.clone().await
        })
    }
}

/// A [`Promise`] of a `T`: what a typed proxy's promise
/// (`#[tether::service]`) gives for a method whose result is a value
/// rather than an object. Awaiting it converts the result as the proxy's
/// method would.
pub struct TypedPromise<T> {
    promise: Promise,
    _result: PhantomData<fn() -> T>,
}

impl<T> TypedPromise<T> {
    /// The promise of the value `promise` resolves to, converted to `T`.
    pub fn new(promise: Promise) -> TypedPromise<T> {
        TypedPromise {
            promise,
            _result: PhantomData,
        }
    }

    /// The untyped promise.
    pub fn promise(&self) -> &Promise {
        &self.promise
    }
}

impl<T> Clone for TypedPromise<T> {
    fn clone(&self) -> Self {
        TypedPromise::new(self.promise.clone())
    }
}

impl<T> fmt::Debug for TypedPromise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TypedPromise").field(&self.promise).finish()
    }
}

impl<T: DeserializeOwned + Send + 'static> IntoFuture for TypedPromise<T> {
    type Output = Result<T>;
    type IntoFuture = BoxFuture<'static, Result<T>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let value = self.promise.await?;
            crate::__private::from_return(value)
        })
    }
}

impl fmt::Debug for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("step", &self.step)
            .field("resolved", &self.outcome.peek().is_some())
            .finish()
    }
}

/// A promise passed as an argument ([`Value::from`] a [`Promise`]). On the
/// connection that pipelined it, it travels as the peer's answer
/// (`WireRef::Answer`) once its request is queued; anywhere else an
/// operation on a promise puts its value in its place first.
pub(crate) struct PromiseArg(Promise);

impl crate::Object for PromiseArg {
    fn type_name(&self) -> &str {
        "promise"
    }
}

impl PromiseArg {
    /// The number of the peer's answer that stands for this promise on
    /// `conn`: its request went out there. Else the error for a call that
    /// passes it directly (operations on promises never do).
    pub(crate) fn answer_on(&self, conn: &Arc<Connection>) -> Result<u64> {
        match &self.0.answer {
            Some(answer) if Arc::ptr_eq(&answer.conn, conn) && *answer.queued.borrow() => {
                Ok(answer.seq)
            }
            _ => Err(raise::bad_args(format!(
                "the promise {} passed as an argument is not pending on this connection: \
                 pass it to an operation on a promise (which waits for it), or await it \
                 and pass its value",
                self.0.step
            ))),
        }
    }
}

impl From<Promise> for Value {
    /// The promise as an argument of an operation on another promise:
    /// the peer that keeps its answer uses that, without a round trip.
    fn from(promise: Promise) -> Value {
        Value::Ref(NetRef::new(PromiseArg(promise)))
    }
}

impl From<&Promise> for Value {
    fn from(promise: &Promise) -> Value {
        Value::from(promise.clone())
    }
}

/// `op` ready to be sent on `conn` (`None`: to be run on an object as an
/// ordinary operation): every promise in its arguments either pending on
/// `conn` with its request queued (and listed, in the second place), or
/// replaced by its value.
async fn with_promised_args(
    op: Op,
    conn: Option<&Arc<Connection>>,
) -> std::result::Result<(Op, Vec<Promise>), Failed> {
    let mut pending = Vec::new();
    let mut fix = async |args: Args| {
        let mut fixed = Args::new();
        for value in args.positional {
            fixed
                .positional
                .push(promised_value(value, conn, &mut pending).await?);
        }
        for (name, value) in args.named {
            fixed
                .named
                .push((name, promised_value(value, conn, &mut pending).await?));
        }
        Ok::<_, Failed>(fixed)
    };
    let op = match op {
        Op::Call(args) => Op::Call(fix(args).await?),
        Op::CallMethod(name, args) => Op::CallMethod(name, fix(args).await?),
        other => other,
    };
    Ok((op, pending))
}

/// `value` with the promises in it (at any depth) ready as in
/// [`with_promised_args`], those left in it added to `pending`.
fn promised_value<'a>(
    value: Value,
    conn: Option<&'a Arc<Connection>>,
    pending: &'a mut Vec<Promise>,
) -> BoxFuture<'a, std::result::Result<Value, Failed>> {
    Box::pin(async move {
        Ok(match value {
            Value::Ref(netref) => match netref.downcast_ref::<PromiseArg>() {
                Some(PromiseArg(promise)) => {
                    let here = promise
                        .answer
                        .as_ref()
                        .filter(|a| conn.is_some_and(|c| Arc::ptr_eq(&a.conn, c)));
                    match here {
                        Some(answer) if answer.queued().await => {
                            pending.push(promise.clone());
                            Value::Ref(netref)
                        }
                        _ => promise.value().await.map_err(Failed::Target)?,
                    }
                }
                None => Value::Ref(netref),
            },
            Value::List(items) => {
                let mut fixed = Vec::with_capacity(items.len());
                for item in items {
                    fixed.push(promised_value(item, conn, pending).await?);
                }
                Value::List(fixed)
            }
            Value::Map(pairs) => {
                let mut fixed = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let k = promised_value(k, conn, pending).await?;
                    fixed.push((k, promised_value(v, conn, pending).await?));
                }
                Value::Map(fixed)
            }
            plain => plain,
        })
    })
}

/// Why an operation failed: its target did (the target's error stands
/// for it), or it did itself (its error gets the step's name).
enum Failed {
    Target(Error),
    Itself(Error),
}

impl Failed {
    fn attributed(self, step: &str) -> Error {
        match self {
            Failed::Target(err) => err,
            Failed::Itself(err) => err.context(format!("step {step}")),
        }
    }
}

/// What a pipelined operation is sent with.
struct Pipelined<'a> {
    conn: &'a Arc<Connection>,
    seq: u64,
    subject: Subject,
    deadline: Option<Instant>,
    queued: &'a Queued,
}

/// Send `op` pipelined, after its target's request and after `before`
/// (the operation made on the same target before it) are queued.
async fn pipelined(
    target: Promise,
    before: Option<watch::Receiver<bool>>,
    send: Pipelined<'_>,
    op: Op,
) -> std::result::Result<Value, Failed> {
    if let Some(answer) = &target.answer {
        if !answer.queued().await {
            // It failed before it was sent: that is the error.
            return Err(match target.value().await {
                Err(err) => Failed::Target(err),
                Ok(_) => Failed::Itself(raise::closed("the target's request was never sent")),
            });
        }
    }
    let (op, promised_args) = with_promised_args(op, Some(send.conn)).await?;
    if let Some(mut before) = before {
        let _ = before.wait_for(|queued| *queued).await;
    }
    let timeout = match send.deadline {
        Some(at) => at.saturating_duration_since(Instant::now()),
        None => send.conn.config.call_timeout,
    };
    let sent = send
        .conn
        .request_pipelined(send.seq, send.subject, op, timeout, send.queued)
        .await;
    match sent {
        Ok(value) => Ok(value),
        // The peer answers an operation on a failed target, or with a
        // failed promise among its arguments, with that one's error; their
        // own outcomes say whether that is it.
        Err(own) => {
            if let Err(theirs) = target.value().await {
                return Err(Failed::Target(theirs));
            }
            for promised in promised_args {
                if let Err(theirs) = promised.value().await {
                    return Err(Failed::Target(theirs));
                }
            }
            Err(Failed::Itself(own))
        }
    }
}

/// Run `op` once `target` resolves, as an ordinary operation on the
/// object, after `before` is queued.
async fn step_by_step(
    target: Promise,
    before: Option<watch::Receiver<bool>>,
    deadline: Option<Instant>,
    op: Op,
    queued: &Queued,
) -> std::result::Result<Value, Failed> {
    let value = target.value().await;
    let (op, _) = with_promised_args(op, None).await?;
    // The operation made before this one on the same target sends first
    // (or has failed or been dropped: then it never will).
    if let Some(mut before) = before {
        let _ = before.wait_for(|queued| *queued).await;
    }
    // Once its result is in, the target may go: the object it resolved to
    // is held by `netref` for as long as `op` runs.
    drop(target);
    let netref = match value {
        Ok(Value::Ref(netref)) => netref,
        Ok(other) => {
            let mismatch = raise::type_mismatch("an object", other.type_name());
            return Err(Failed::Itself(mismatch));
        }
        Err(err) => return Err(Failed::Target(err)),
    };
    let netref = match deadline {
        Some(at) => netref.with_timeout(at.saturating_duration_since(Instant::now())),
        None => netref,
    };
    // A request is queued on its first poll: say so then, so the next
    // operation's request follows it on the connection.
    let mut op = netref.perform(op).boxed();
    std::future::poll_fn(|cx| {
        let polled = op.as_mut().poll(cx);
        queued.send_replace(true);
        polled
    })
    .await
    .map_err(Failed::Itself)
}
