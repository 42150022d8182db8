//! Per-connection limits: frame size, calls in flight, exported objects,
//! nesting depth of callbacks.
//!
//! Review: `Config::max_frame_len` is per side and never exchanged.
//!
//! - A reply over the *caller's* limit kills the whole connection (the
//!   reader treats it as a protocol violation) although the docs promise
//!   the call fails with `LimitExceeded`.
//! - A release batch over *our own* limit fails to encode in the writer and
//!   is dropped with a warning: the owner keeps the objects forever
//!   (src/connection/driver.rs `Batch::flush_releases`).

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{memory_pair_with, TestService};
use tether::{
    Args, BoxFuture, Builder, CallContext, Config, ErrorKind, Member, NetRef, Object, Result, Value,
};
use tokio::sync::watch;

struct Big;

impl Object for Big {
    fn type_name(&self) -> &str {
        "Big"
    }
    fn members(&self) -> &[Member] {
        const M: &[Member] = &[Member::method("big", "(n: int) -> bytes", "n bytes.")];
        M
    }
    fn call_method<'a>(
        &'a self,
        _name: &'a str,
        args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            let n: usize = args.parse()?;
            Ok(Value::Bytes(vec![7; n].into()))
        })
    }
}

#[tokio::test]
async fn a_reply_over_the_callers_frame_limit_fails_that_call_only() {
    let client_cfg = Config::default().max_frame_len(4096);
    let (client, _server) = memory_pair_with(
        Builder::default().config(client_cfg),
        Builder::default().root(Big),
    )
    .await;
    let root = client.root().await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), root.call_method("big", (10_000,)))
        .await
        .unwrap()
        .unwrap_err();
    // Config::max_frame_len docs: "a call whose request or reply would be
    // larger fails with ErrorKind::LimitExceeded".
    assert_eq!(
        err.kind(),
        ErrorKind::LimitExceeded,
        "got {err:?}; connection closed: {}",
        client.is_closed()
    );
    assert!(
        !client.is_closed(),
        "one large reply closed the whole connection"
    );
}

#[tokio::test]
async fn releases_are_not_lost_when_a_batch_exceeds_our_own_frame_limit() {
    let client_cfg = Config::default().max_frame_len(2048);
    let (client, server) = memory_pair_with(
        Builder::default().config(client_cfg),
        Builder::default().root(TestService::default()),
    )
    .await;
    let root = client.root().await.unwrap();
    let mut counters = Vec::new();
    for _ in 0..600 {
        let c = NetRef::try_from(root.call_method("make_counter", ()).await.unwrap()).unwrap();
        counters.push(c);
    }
    assert_eq!(server.stats().exported, 601);
    // Dropped together (current-thread runtime: the writer sees all 600
    // releases at once, ~10 bytes each, one frame of ~6 KB > 2 KiB).
    drop(counters);
    client.ping().await.unwrap();
    client.ping().await.unwrap();
    assert_eq!(
        server.stats().exported,
        1,
        "the owner still holds objects whose proxies were all dropped"
    );
}

/// `wait()` returns once the gate opens; counts how many wait at once.
struct Gate {
    open: watch::Receiver<bool>,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Gate {
    fn new() -> (Arc<Gate>, watch::Sender<bool>) {
        let (tx, open) = watch::channel(false);
        let gate = Gate {
            open,
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        };
        (Arc::new(gate), tx)
    }
}

struct GateObject(Arc<Gate>);

impl Object for GateObject {
    fn type_name(&self) -> &str {
        "Gate"
    }
    fn members(&self) -> &[Member] {
        const M: &[Member] = &[Member::method("wait", "() -> None", "Wait for the gate.")];
        M
    }
    fn call_method<'a>(
        &'a self,
        _name: &'a str,
        _args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            let gate = &self.0;
            let now = gate.now.fetch_add(1, Ordering::SeqCst) + 1;
            gate.most.fetch_max(now, Ordering::SeqCst);
            let mut open = gate.open.clone();
            let _ = open.wait_for(|open| *open).await;
            gate.now.fetch_sub(1, Ordering::SeqCst);
            Ok(Value::None)
        })
    }
}

/// Yield until `done()` holds (bounded: the test fails after 5 s).
async fn until(mut done: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("condition not reached within 5 s");
}

/// `call`, counting itself in `polled` once it has been polled: a call
/// takes a slot and is sent, or starts waiting for one, on its first poll.
async fn counted<F: Future>(call: F, polled: &watch::Sender<usize>) -> F::Output {
    let mut call = std::pin::pin!(call);
    let mut first = true;
    std::future::poll_fn(|cx| {
        let out = call.as_mut().poll(cx);
        if std::mem::take(&mut first) {
            polled.send_modify(|n| *n += 1);
        }
        out
    })
    .await
}

#[tokio::test]
async fn callers_beyond_max_in_flight_wait_for_a_slot_and_all_complete() {
    let (gate, open) = Gate::new();
    let (client, server) = memory_pair_with(
        Builder::default().config(Config::default().max_in_flight(4)),
        Builder::default().root(GateObject(gate.clone())),
    )
    .await;
    let root = client.root().await.unwrap();
    let polled = Arc::new(watch::channel(0usize).0);
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let root = root.clone();
            let polled = polled.clone();
            tokio::spawn(async move { counted(root.call_method("wait", ()), &polled).await })
        })
        .collect();
    // Every caller has tried to send: none went past the limit.
    polled.subscribe().wait_for(|&n| n == 20).await.unwrap();
    assert_eq!(client.stats().in_flight, 4);
    until(|| server.stats().serving == 4).await;
    assert_eq!(gate.now.load(Ordering::SeqCst), 4);
    open.send(true).unwrap();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), Value::None);
    }
    assert_eq!(
        gate.most.load(Ordering::SeqCst),
        4,
        "never more than 4 at once"
    );
    assert_eq!(client.stats().in_flight, 0);
    assert!(!client.is_closed());
}

#[tokio::test]
async fn a_call_waiting_for_a_slot_is_bounded_by_its_deadline_and_cancellable() {
    let (gate, open) = Gate::new();
    let (client, _server) = memory_pair_with(
        Builder::default().config(Config::default().max_in_flight(1)),
        Builder::default().root(GateObject(gate.clone())),
    )
    .await;
    let root = client.root().await.unwrap();
    let holder = {
        let root = root.clone();
        tokio::spawn(async move { root.call_method("wait", ()).await })
    };
    until(|| gate.now.load(Ordering::SeqCst) == 1).await;
    // Its deadline passes while it waits to be sent.
    let err = root
        .with_timeout(Duration::from_millis(50))
        .call_method("wait", ())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("max_in_flight"), "{err}");
    // A waiting call dropped gives up its place without taking a slot.
    let mut waiting = Box::pin(root.call_method("wait", ()));
    std::future::poll_fn(|cx| {
        assert!(waiting.as_mut().poll(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    drop(waiting);
    open.send(true).unwrap();
    holder.await.unwrap().unwrap();
    assert_eq!(root.call_method("wait", ()).await.unwrap(), Value::None);
    assert_eq!(gate.most.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_reply_exporting_past_max_exported_fails_and_releasing_makes_room() {
    let (client, server) = memory_pair_with(
        Builder::default(),
        Builder::default()
            .root(TestService::default())
            .config(Config::default().max_exported(3)),
    )
    .await;
    let root = client.root().await.unwrap(); // the root is one
    let first = root.call_method("make_counter", ()).await.unwrap();
    let _second = root.call_method("make_counter", ()).await.unwrap();
    assert_eq!(server.stats().exported, 3);
    let err = root.call_method("make_counter", ()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.message().contains("max_exported"), "{err}");
    assert_eq!(server.stats().exported, 3, "nothing half-exported");
    assert!(!client.is_closed() && !server.is_closed());
    // Objects already exported may still be sent.
    let again = root.call_method("echo", (first.clone(),)).await.unwrap();
    assert_eq!(again, first);
    drop(again);
    drop(first);
    client.ping().await.unwrap();
    client.ping().await.unwrap();
    assert_eq!(server.stats().exported, 2);
    root.call_method("make_counter", ()).await.unwrap();
    assert_eq!(server.stats().exported, 3);
}

#[tokio::test]
async fn a_call_passing_callbacks_past_max_exported_fails_whole_and_alone() {
    let (client, _server) = memory_pair_with(
        Builder::default().config(Config::default().max_exported(1)),
        Builder::default().root(TestService::default()),
    )
    .await;
    let root = client.root().await.unwrap();
    let one = tether::callback_sync(|n: i64| Ok(n));
    let two = tether::callback_sync(|n: i64| Ok(n));
    let err = root
        .call_method("same", (one.clone(), two.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert_eq!(
        client.stats().exported,
        0,
        "the first callback was taken back with the call"
    );
    assert!(!client.is_closed());
    // One object, sent twice, fits.
    assert_eq!(
        root.call_method("same", (one.clone(), one)).await.unwrap(),
        Value::from(true)
    );
}

#[tokio::test]
async fn callbacks_nested_past_max_call_depth_fail_cleanly_on_both_sides() {
    // Each ping_pong makes the other side call back one level deeper: the
    // server serves depths 0, 2, 4..., the client 1, 3, 5...
    let (client, server) = memory_pair_with(
        Builder::default().root(TestService::default()),
        Builder::default()
            .root(TestService::default())
            .config(Config::default().max_call_depth(4)),
    )
    .await;
    let root = client.root().await.unwrap();
    let mine = NetRef::new(TestService::default());
    let reached = root.call_method("ping_pong", (mine.clone(), 5)).await;
    assert_eq!(reached.unwrap(), Value::from(5), "depth 5 is the client's");
    // Depth 6 reaches the server: refused there, the error unwinds through
    // every level on both sides back to the first caller.
    let err = root
        .call_method("ping_pong", (mine.clone(), 6))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.message().contains("max_call_depth"), "{err}");
    assert!(!client.is_closed() && !server.is_closed());
    assert_eq!(server.stats().serving, 0);
    assert_eq!(client.stats().serving, 0);
    assert_eq!(
        root.call_method("ping_pong", (mine.clone(), 2))
            .await
            .unwrap(),
        Value::from(2)
    );
}

#[tokio::test]
async fn the_callers_own_limit_refuses_the_callbacks_nested_too_deep() {
    let (client, server) = memory_pair_with(
        Builder::default()
            .root(TestService::default())
            .config(Config::default().max_call_depth(3)),
        Builder::default().root(TestService::default()),
    )
    .await;
    let root = client.root().await.unwrap();
    let mine = NetRef::new(TestService::default());
    assert_eq!(
        root.call_method("ping_pong", (mine.clone(), 4))
            .await
            .unwrap(),
        Value::from(4)
    );
    // Depth 5 is the client's to serve, past its limit of 3.
    let err = root
        .call_method("ping_pong", (mine.clone(), 5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(!client.is_closed() && !server.is_closed());
    assert_eq!(
        root.call_method("ping_pong", (mine, 1)).await.unwrap(),
        Value::from(1)
    );
}
