//! Promised answers: the owner side of promise pipelining.
//!
//! A caller may send an operation without waiting for it and name the
//! outcome by a number of its choosing; the owner keeps that outcome here,
//! as an [`Answer`], so that operations the caller sends next can run on
//! it before the caller has seen it. One [`Answers`] table belongs to one
//! connection (the numbers are the peer's own, so no other peer can reach
//! them), and lives until the peer finishes each answer or the
//! connection ends.
//!
//! An answer is a shared future of its work's outcome and a turnstile:
//! operations received on one answer start in the order they were
//! received, whenever the answer resolves. Finishing an answer drops only
//! the table's hold: operations already received on it keep it alive, and
//! the work stops (is dropped) once neither its reply nor any of them
//! waits for it.
//!
//! Nothing here knows the wire: tether's own protocol
//! ([`Message::Pipelined`](crate::protocol::frame::Message)) uses it, and
//! so can any other protocol with promises.

use std::future::Future;
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use futures_util::future::{Either, FutureExt, Shared};
use tokio::sync::oneshot;

use crate::error::{raise, RemoteError};
use crate::protocol::frame::Op;
use crate::service::table::lock;
use crate::{Args, BoxFuture, Error, NetRef, Value};

/// The largest plain value (about, in bytes) an answer keeps for the
/// operations made on it; objects are kept whatever their size.
pub(crate) const MAX_KEPT_VALUE: usize = 4096;

/// Whether `value` takes at most `budget` bytes, about: text and bytes
/// their length, anything else (a reference too) eight.
fn fits(value: &Value, budget: usize) -> bool {
    measure(value, budget).is_some()
}

/// How many bytes `value` takes, about (as [`fits`] counts), if at most
/// `limit`; `None` past it (counting stops there).
pub(crate) fn measure(value: &Value, limit: usize) -> Option<usize> {
    fn take(value: &Value, budget: &mut usize) -> bool {
        let own = match value {
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            _ => 8,
        };
        let Some(left) = budget.checked_sub(own) else {
            return false;
        };
        *budget = left;
        match value {
            Value::List(items) => items.iter().all(|v| take(v, budget)),
            Value::Map(pairs) => pairs
                .iter()
                .all(|(k, v)| take(k, budget) && take(v, budget)),
            _ => true,
        }
    }
    let mut budget = limit;
    take(value, &mut budget).then(|| limit - budget)
}

/// What an answer resolves to: a value, or the error as the caller will
/// read it.
pub(crate) type Outcome<T = Value> = std::result::Result<T, RemoteError>;

/// The outcome of one pipelined operation, whenever it comes; clones share
/// it.
#[derive(Clone)]
pub(crate) struct Answer {
    outcome: Shared<BoxFuture<'static, Outcome>>,
    /// Dropped when the operation made last on this answer has started:
    /// the next one waits for that.
    last: Arc<std::sync::Mutex<Option<oneshot::Receiver<()>>>>,
}

impl Answer {
    /// The answer `work` will give. The work runs while something awaits
    /// the answer (its reply, an operation on it), and is dropped with the
    /// last clone.
    pub(crate) fn new(work: impl Future<Output = Outcome> + Send + 'static) -> Answer {
        Answer {
            outcome: work.boxed().shared(),
            last: Arc::default(),
        }
    }

    /// The answer `work` will give as kept for the operations made on it,
    /// and the reply's future, which runs the work and gets its whole
    /// outcome. A plain value larger than [`MAX_KEPT_VALUE`] is not kept:
    /// the reply has it, and what is made on the answer fails with a
    /// [`LimitExceeded`](crate::ErrorKind::LimitExceeded) error located at
    /// `location()`. So a peer that never finishes its answers holds at
    /// most that much per answer, whatever its calls return.
    pub(crate) fn with_reply(
        work: impl Future<Output = Outcome> + Send + 'static,
        location: impl FnOnce() -> String + Send + 'static,
    ) -> (Answer, BoxFuture<'static, Outcome>) {
        let (whole_tx, whole) = oneshot::channel();
        let answer = Answer::new(async move {
            let outcome = work.await;
            let kept = match &outcome {
                Ok(value) if !fits(value, MAX_KEPT_VALUE) => Err(raise::limit(format!(
                    "the answer is a {} larger than the {MAX_KEPT_VALUE} bytes an \
                         answer keeps for what is made on it: await it, then send it",
                    value.type_name()
                ))
                .to_remote(&location())),
                kept => kept.clone(),
            };
            let _ = whole_tx.send(outcome);
            kept
        });
        let driver = answer.clone();
        let reply = async move {
            let kept = driver.outcome().await;
            drop(driver);
            whole.await.unwrap_or(kept)
        };
        (answer, Box::pin(reply))
    }

    /// Wait for the outcome.
    pub(crate) async fn outcome(&self) -> Outcome {
        self.outcome.clone().await
    }

    /// Run `op` on the object the answer resolves to, once it has, after
    /// every operation made on this answer before this call has started.
    /// `ready` (the operation's arguments, say) is awaited in turn too,
    /// and given to `op`. An answer that failed fails `op` with its own
    /// error; one that resolved to a plain value fails it with a type
    /// error located at `location()`.
    ///
    /// The turn is taken here, when called, not when the future is first
    /// polled: call it where the operations arrive, in their order.
    pub(crate) fn then<A, F, Fut>(
        &self,
        ready: impl Future<Output = Outcome<A>>,
        op: F,
        location: impl FnOnce() -> String,
    ) -> impl Future<Output = Outcome>
    where
        F: FnOnce(NetRef, A) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        self.after(ready, move |value, ready| match value {
            Value::Ref(netref) => Either::Left(op(netref, ready)),
            other => {
                let err = raise::type_mismatch("an object to operate on", other.type_name());
                Either::Right(std::future::ready(Err(err.to_remote(&location()))))
            }
        })
    }

    /// As [`then`](Answer::then), with whatever value the answer resolved
    /// to (a protocol whose operations also reach into plain values, such
    /// as Cap'n Web's property paths, decides what to do with it).
    pub(crate) fn after<A, F, Fut>(
        &self,
        ready: impl Future<Output = Outcome<A>>,
        op: F,
    ) -> impl Future<Output = Outcome>
    where
        F: FnOnce(Value, A) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let (started, now_started) = oneshot::channel::<()>();
        let before = lock(&self.last).replace(now_started);
        let outcome = self.outcome.clone();
        async move {
            // The one before has started (or was dropped: then it never will).
            if let Some(before) = before {
                let _ = before.await;
            }
            let mut started = Some(started);
            let value = outcome.await?;
            let ready = ready.await?;
            let mut work = std::pin::pin!(op(value, ready));
            // The next operation may start once this one has been polled:
            // an operation that completes at once is done, and one that
            // waits has started (as a call on an object does when first
            // polled).
            std::future::poll_fn(|cx| {
                let polled = work.as_mut().poll(cx);
                started.take();
                polled
            })
            .await
        }
    }
}

/// An argument naming one of our answers (`WireRef::Answer`), as decoded:
/// it stands in for the answer's outcome until [`resolve_in`] puts that
/// in its place, before the call it came with runs.
pub(crate) struct AnswerArg(pub(crate) Answer);

impl crate::Object for AnswerArg {
    fn type_name(&self) -> &str {
        "promised answer"
    }
}

/// `op` with every [`AnswerArg`] in its arguments replaced by its answer's
/// outcome, once known; the first failed answer's error otherwise.
pub(crate) async fn resolve_in(op: Op) -> Outcome<Op> {
    Ok(match op {
        Op::Call(args) => Op::Call(resolve_args(args).await?),
        Op::CallMethod(name, args) => Op::CallMethod(name, resolve_args(args).await?),
        Op::SetAttr(name, value) => Op::SetAttr(name, resolve_value(value).await?),
        Op::Eq(value) => Op::Eq(resolve_value(value).await?),
        other => other,
    })
}

async fn resolve_args(args: Args) -> Outcome<Args> {
    let mut resolved = Args::new();
    for value in args.positional {
        resolved.positional.push(resolve_value(value).await?);
    }
    for (name, value) in args.named {
        resolved.named.push((name, resolve_value(value).await?));
    }
    Ok(resolved)
}

fn resolve_value(value: Value) -> BoxFuture<'static, Outcome<Value>> {
    Box::pin(async move {
        Ok(match value {
            Value::Ref(netref) => match netref.downcast_ref::<AnswerArg>() {
                Some(AnswerArg(answer)) => answer.outcome().await?,
                None => Value::Ref(netref),
            },
            Value::List(items) => {
                let mut resolved = Vec::with_capacity(items.len());
                for item in items {
                    resolved.push(resolve_value(item).await?);
                }
                Value::List(resolved)
            }
            Value::Map(pairs) => {
                let mut resolved = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    resolved.push((resolve_value(k).await?, resolve_value(v).await?));
                }
                Value::Map(resolved)
            }
            plain => plain,
        })
    })
}

/// One connection's promised answers, by the peer's numbers.
pub(crate) struct Answers {
    table: DashMap<u64, Answer>,
    limit: usize,
}

/// Why an answer was not kept.
pub(crate) enum NotKept {
    /// The peer used a number still in use: it breaks the protocol.
    Reused(Error),
    /// The table is full: the operation fails alone.
    Full(Error),
}

impl Answers {
    /// An empty table keeping at most `limit` answers at once.
    pub(crate) fn new(limit: usize) -> Answers {
        Answers {
            table: DashMap::new(),
            limit,
        }
    }

    /// Keep `answer` as number `id` until [`finish`](Answers::finish).
    pub(crate) fn keep(&self, id: u64, answer: Answer) -> Result<(), NotKept> {
        if self.table.len() >= self.limit {
            return Err(NotKept::Full(raise::limit(format!(
                "too many promised answers kept for the peer on this connection \
                 (limit {}; Config::max_answers)",
                self.limit
            ))));
        }
        match self.table.entry(id) {
            Entry::Occupied(_) => Err(NotKept::Reused(raise::protocol(format!(
                "protocol violation: the peer reused answer number {id} before finishing it"
            )))),
            Entry::Vacant(slot) => {
                slot.insert(answer);
                Ok(())
            }
        }
    }

    /// Answer `id`, to run operations on.
    pub(crate) fn get(&self, id: u64) -> Result<Answer, Error> {
        self.table.get(&id).map(|a| a.clone()).ok_or_else(|| {
            raise::unknown_object(id).context(format!(
                "no promised answer {id} on this side (never made, refused, or already finished)"
            ))
        })
    }

    /// The peer needs these answers no more.
    pub(crate) fn finish(&self, ids: &[u64]) {
        for id in ids {
            // Dropped outside the table's lock: dropping the work may run
            // object code's destructors.
            let removed = self.table.remove(id);
            drop(removed);
        }
    }

    /// Answers kept now.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Drop every answer (the connection ended).
    pub(crate) fn clear(&self) {
        let ids: Vec<u64> = self.table.iter().map(|e| *e.key()).collect();
        self.finish(&ids);
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_kept_value_is_measured_within_its_bound() {
        assert!(fits(&Value::from("x".repeat(4096)), 4096));
        assert!(!fits(&Value::from("x".repeat(4097)), 4096));
        let nested = Value::List(vec![Value::from("x".repeat(2000)); 3]);
        assert!(!fits(&nested, 4096));
        assert!(fits(&Value::List(vec![Value::Int(1); 100]), 4096));
        let wide = Value::Map(vec![(Value::from("k"), Value::from(vec![0u8; 5000]))]);
        assert!(!fits(&wide, 4096));
    }

    use super::*;
    use crate::ErrorKind;

    fn object() -> NetRef {
        struct Thing;
        impl crate::Object for Thing {
            fn type_name(&self) -> &str {
                "Thing"
            }
        }
        NetRef::new(Thing)
    }

    #[tokio::test]
    async fn operations_on_an_answer_start_in_the_order_they_arrived() {
        let (resolve, resolved) = tokio::sync::oneshot::channel();
        let answer = Answer::new(async move { Ok(Value::Ref(resolved.await.unwrap())) });
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut ops = Vec::new();
        for n in 0..5 {
            let order = order.clone();
            let answer = answer.clone();
            let mut op = Box::pin(async move {
                answer
                    .then(
                        async { Ok(()) },
                        |_, ()| async move {
                            order.lock().unwrap().push(n);
                            Ok(Value::Int(n))
                        },
                        String::new,
                    )
                    .await
            });
            // Its turn was taken when `then` was called, in this order.
            assert!(op.as_mut().now_or_never().is_none());
            ops.push(tokio::spawn(op));
        }
        // Awaited in reverse, so the runtime's order is not the answer.
        resolve.send(object()).ok().unwrap();
        for op in ops.into_iter().rev() {
            op.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_failed_or_plain_answer_fails_what_runs_on_it() {
        let failed = Answer::new(async {
            Err(raise::denied("no").to_remote("in getattr 'secret' on a Thing object"))
        });
        let err = failed
            .then(
                async { Ok(()) },
                |_, ()| async { Ok(Value::None) },
                || "unused".into(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.trace(), ["in getattr 'secret' on a Thing object"]);
        let plain = Answer::new(async { Ok(Value::Int(3)) });
        let err = plain
            .then(
                async { Ok(()) },
                |_, ()| async { Ok(Value::None) },
                || "in add()".into(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        assert_eq!(err.trace(), ["in add()"]);
    }

    #[tokio::test]
    async fn numbers_are_kept_once_within_the_limit_and_finishing_lets_go() {
        let answers = Answers::new(2);
        let kept = || Answer::new(async { Ok(Value::None) });
        assert!(answers.keep(1, kept()).is_ok());
        assert!(matches!(answers.keep(1, kept()), Err(NotKept::Reused(_))));
        assert!(answers.keep(2, kept()).is_ok());
        assert!(matches!(answers.keep(3, kept()), Err(NotKept::Full(_))));
        answers.finish(&[1, 7]);
        assert_eq!(answers.len(), 1);
        assert!(answers.get(1).is_err());
        assert!(answers.get(2).is_ok());
        answers.clear();
        assert_eq!(answers.len(), 0);
    }

    #[tokio::test]
    async fn work_nothing_waits_for_is_dropped_with_its_last_answer() {
        struct Dropped(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.take().unwrap().send(());
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let guard = Dropped(Some(tx));
        let answers = Answers::new(4);
        let answer = Answer::new(async move {
            let _guard = guard;
            std::future::pending::<Outcome>().await
        });
        answers.keep(9, answer.clone()).ok().unwrap();
        let waiting = tokio::spawn(async move { answer.outcome().await });
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        answers.finish(&[9]);
        rx.await.expect("the work was dropped");
    }
}
