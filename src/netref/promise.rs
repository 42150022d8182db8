//! Promises: an operation started without waiting for it, whose result
//! can already be the target of the next operation ([`Promise`]).

use std::fmt;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};

use futures_util::future::{FutureExt, Shared};
use tokio::sync::oneshot;

use super::NetRef;
use crate::error::raise;
use crate::{BoxFuture, Error, ErrorKind, IntoArgs, Result, Value};

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
/// # What happens today
///
/// Each operation runs in a task of its own as soon as it is made: it
/// waits for its target's result, then sends its request, so a chain of
/// four costs four round trips (one per step, without the caller waiting
/// between them). Sending the whole chain at once, for the owner to
/// evaluate, is planned for the wire; this API is the one it will keep,
/// and the step-by-step path stays for peers that cannot pipeline
/// (RPyC).
///
/// # Semantics
///
/// - A step whose target failed fails with the same error; a step that
///   fails itself says which step it was (`.secret`: ...). Errors never
///   reach operations that do not depend on them.
/// - Operations made on one promised target reach the peer in the order
///   they were made (each sends its request only after the one made
///   before it has), so the owner starts them in that order. (A call that
///   must first wait for a free slot, past
///   [`Config::max_in_flight`](crate::Config::max_in_flight), counts as
///   sent when it has its slot.)
/// - Dropping a promise that nothing else holds (no clone, no dependent
///   operation) cancels its operation, on the peer too, as dropping a
///   call does; a dependent operation keeps its target alive until the
///   target's result is in.
/// - An object a promise resolved to is released once the promise and
///   its dependents are gone, as any [`NetRef`] is.
#[derive(Clone)]
pub struct Promise {
    outcome: Outcome,
    /// The step, as `.name(…)`, for messages.
    step: Arc<str>,
    /// Cancels the operation when the last clone and dependent are gone.
    _running: Option<Arc<Running>>,
    /// When the operation last made on this promise has sent its request:
    /// the next one waits for it, so they reach the peer in order.
    last_started: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
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
        Promise {
            outcome: futures_util::future::ready(Ok(value)).boxed().shared(),
            step: step.into(),
            _running: None,
            last_started: Arc::default(),
        }
    }

    /// Start `op` on this promise's object once it is known, after the
    /// operation made before it on this promise has sent its request.
    /// Must be called within a tokio runtime.
    fn then<F>(&self, step: String, op: F) -> Promise
    where
        F: FnOnce(NetRef) -> BoxFuture<'static, Result<Value>> + Send + 'static,
    {
        let target = self.clone();
        let label = step.clone();
        let (started, now_started) = oneshot::channel();
        let before = self.last_started.lock().unwrap().replace(now_started);
        let task = tokio::spawn(async move {
            let value = target.outcome.clone().await;
            // The operation made before this one on the same target sends
            // first (or has failed or been dropped: then it never will).
            if let Some(before) = before {
                let _ = before.await;
            }
            // Once its result is in, the target may go: the object it
            // resolved to is held by `netref` for as long as `op` runs.
            drop(target);
            let step_failed = |e: Error| e.context(format!("step {label}"));
            let netref = match value {
                Ok(Value::Ref(netref)) => netref,
                Ok(other) => {
                    let mismatch = raise::type_mismatch("an object", other.type_name());
                    return Err(step_failed(mismatch));
                }
                Err(err) => return Err(err),
            };
            // A request is queued on its first poll: say so then, so the
            // next operation's request follows it on the connection.
            let mut op = op(netref);
            let mut started = Some(started);
            std::future::poll_fn(|cx| {
                let polled = op.as_mut().poll(cx);
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                polled
            })
            .await
            .map_err(step_failed)
        });
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
            last_started: Arc::default(),
        }
    }

    /// Call method `name` of the promised object.
    pub fn call_method(&self, name: &str, args: impl IntoArgs) -> Promise {
        let name = name.to_string();
        let args = args.into_args();
        self.then(format!(".{name}(…)"), move |target| {
            Box::pin(async move { target.call_method(&name, args).await })
        })
    }

    /// Call the promised object itself.
    pub fn call(&self, args: impl IntoArgs) -> Promise {
        let args = args.into_args();
        self.then("(…)".to_string(), move |target| {
            Box::pin(async move { target.call(args).await })
        })
    }

    /// Read attribute `name` of the promised object.
    pub fn getattr(&self, name: &str) -> Promise {
        let name = name.to_string();
        self.then(format!(".{name}"), move |target| {
            Box::pin(async move { target.getattr(&name).await })
        })
    }

    /// The names the promised object lists, as a list of strings.
    pub fn dir(&self) -> Promise {
        self.then("dir()".to_string(), |target| {
            Box::pin(async move {
                let names = target.dir().await?;
                Ok(Value::List(names.into_iter().map(Value::from).collect()))
            })
        })
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

impl fmt::Debug for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("step", &self.step)
            .field("resolved", &self.outcome.peek().is_some())
            .finish()
    }
}
