//! Review: the user reference a served request holds (its `CallContext`
//! connection, src/connection/incoming.rs `run`) is dropped when `run`
//! returns, *before* `reply()` queues the answer. If it was the last user
//! reference, `terminate` runs first and the reply races the writer's
//! final drain: the caller sometimes gets `Closed` for a call that ran.
//!
//! The race is made certain rather than likely: the object serving the
//! call, once released, keeps the thread that drops it until the caller
//! has its outcome. Had the connection ended before the reply was queued,
//! that drop comes between the two (the request's own reference to the
//! object goes last), so the writer finishes without the reply and the
//! caller sees `Closed`, every time. Otherwise the reply is on its way
//! before anything is released.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use support::memory_pair_with;
use tether::{Builder, NetRef, Value};
use tokio::sync::{watch, Semaphore};

/// What the test sees of the objects it hands out.
struct Seen {
    /// Objects dropped once their caller had its outcome.
    dropped: watch::Sender<usize>,
    /// Objects that gave up waiting for their caller (a bug: never).
    gave_up: AtomicUsize,
}

/// An object whose `hold` call waits for the test, and whose drop waits
/// for the caller to have the outcome of that call.
struct Held {
    started: watch::Sender<bool>,
    finish: Arc<Semaphore>,
    caller_done: Mutex<mpsc::Receiver<()>>,
    seen: Arc<Seen>,
}

#[tether::expose]
impl Held {
    /// Wait until the test lets the call finish; returns `v`.
    #[method]
    async fn hold(&self, v: i64) -> i64 {
        self.started.send_replace(true);
        self.finish.acquire().await.unwrap().forget();
        v
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let caller_done = self.caller_done.get_mut().unwrap();
        // Blocks this worker only; its other tasks move to another thread.
        let waited =
            tokio::task::block_in_place(|| caller_done.recv_timeout(Duration::from_secs(10)));
        if waited.is_err() {
            self.seen.gave_up.fetch_add(1, Ordering::SeqCst);
        }
        self.seen.dropped.send_modify(|n| *n += 1);
    }
}

/// The root: hands out the one [`Held`] object (not the root itself, which
/// the connection keeps for as long as it lives).
struct Maker(Mutex<Option<Held>>);

#[tether::expose]
impl Maker {
    /// The held object, the first time.
    #[method]
    fn make(&self) -> Option<NetRef> {
        self.0.lock().unwrap().take().map(NetRef::new)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_in_flight_when_the_owner_drops_its_last_handle_still_gets_its_reply() {
    const RUNS: usize = 20;
    let seen = Arc::new(Seen {
        dropped: watch::channel(0).0,
        gave_up: AtomicUsize::new(0),
    });
    let mut dropped = seen.dropped.subscribe();
    let mut lost = 0;
    for run in 1..=RUNS {
        let (started, mut has_started) = watch::channel(false);
        let finish = Arc::new(Semaphore::new(0));
        let (done, caller_done) = mpsc::channel();
        let held = Held {
            started,
            finish: finish.clone(),
            caller_done: Mutex::new(caller_done),
            seen: seen.clone(),
        };
        let maker = Maker(Mutex::new(Some(held)));
        let (client, server) =
            memory_pair_with(Builder::default(), Builder::default().root(maker)).await;
        let root = client.root().await.unwrap();
        let held = NetRef::try_from(root.call_method("make", ()).await.unwrap()).unwrap();
        let call = tokio::spawn(async move {
            let outcome = held.call_method("hold", (30,)).await;
            let _ = done.send(());
            outcome
        });
        tokio::time::timeout(Duration::from_secs(5), has_started.wait_for(|s| *s))
            .await
            .expect("the call never started")
            .unwrap();
        // The owner keeps no handle; the running request's context is the
        // last user reference, so the connection closes when it finishes,
        // which it does only now.
        drop(server);
        finish.add_permits(1);
        let outcome = tokio::time::timeout(Duration::from_secs(20), call)
            .await
            .expect("bounded")
            .unwrap();
        match outcome {
            Ok(v) => assert_eq!(v, Value::from(30)),
            Err(e) => {
                assert!(e.is_closed(), "{e:?}");
                lost += 1;
            }
        }
        // The held object goes with the connection, after its caller had
        // the outcome.
        tokio::time::timeout(Duration::from_secs(20), dropped.wait_for(|&n| n == run))
            .await
            .expect("the held object was never dropped")
            .unwrap();
    }
    assert_eq!(lost, 0, "{lost} of {RUNS} completed calls lost their reply");
    assert_eq!(
        seen.gave_up.load(Ordering::SeqCst),
        0,
        "drops that gave up waiting"
    );
}
