//! Promise pipelining on the wire (protocol 4): a chain reaches the owner
//! whole before its first step resolves; the owner checks its policy at
//! every step, keeps order, honours the chain's deadline, and lets every
//! answer go; a peer abusing the answers table gets errors, not a hang.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::wait_until;
use support::wire::{self, RawPeer, Reply, Val, KIND_UNKNOWN_OBJECT};
use tether::{Builder, Config, Connection, ErrorKind, NetRef, Result, Value};
use tokio::sync::Semaphore;

/// A root whose `gated` steps wait until the test opens the gate, so a
/// test can see what reached the owner while a step is unresolved.
#[derive(Clone)]
struct Gate {
    open: Arc<Semaphore>,
    /// Values `record` saw, in the order its calls ran.
    log: Arc<Mutex<Vec<i64>>>,
    /// `Step` objects alive.
    alive: Arc<AtomicI64>,
    /// `gated` calls waiting at the gate.
    waiting: Arc<AtomicI64>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            open: Arc::new(Semaphore::new(0)),
            log: Arc::default(),
            alive: Arc::default(),
            waiting: Arc::default(),
        }
    }

    fn step(&self, value: i64) -> NetRef {
        self.alive.fetch_add(1, Ordering::SeqCst);
        NetRef::new(Step {
            value,
            gate: self.clone(),
        })
    }

    fn open(&self) {
        self.open.add_permits(1_000);
    }
}

/// Counts a `gated` call while it waits; dropped when it ends or is
/// dropped.
struct Waiting(Arc<AtomicI64>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tether::expose]
impl Gate {
    /// A step holding `value`, once the test opens the gate.
    #[method]
    async fn gated(&self, value: i64) -> NetRef {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(self.waiting.clone());
        let _permit = self.open.acquire().await.expect("the gate stays");
        self.step(value)
    }

    /// A step holding `value`, at once.
    #[method]
    fn step_at(&self, value: i64) -> NetRef {
        self.step(value)
    }

    /// `n` times "x".
    #[method]
    fn text(&self, n: usize) -> String {
        "x".repeat(n)
    }

    /// The length of `text`.
    #[method]
    fn length(&self, text: String) -> usize {
        text.len()
    }
}

struct Step {
    value: i64,
    gate: Gate,
}

impl Drop for Step {
    fn drop(&mut self) {
        self.gate.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tether::expose]
impl Step {
    /// The step after this one (its value plus one).
    #[method]
    fn next(&self) -> NetRef {
        self.gate.step(self.value + 1)
    }

    /// The value it holds.
    #[method]
    fn value(&self) -> i64 {
        self.value
    }

    /// Note `n` in the gate's log; returns it.
    #[method]
    fn record(&self, n: i64) -> i64 {
        self.gate.log.lock().unwrap().push(n);
        n
    }

    /// This step, through a view that allows only `value`.
    #[method]
    fn sealed(&self) -> Result<NetRef> {
        tether::restrict(&self.gate.step(self.value), &["value"])
    }
}

async fn pair(gate: &Gate) -> (Connection, Connection) {
    support::memory_pair_with(Builder::default(), Builder::default().root(gate.clone())).await
}

/// Wait until the server keeps `answers` answers and serves `serving`
/// calls.
async fn wait_for_owner(server: &Connection, answers: usize, serving: usize) {
    wait_until(|| {
        let stats = server.stats();
        (stats.answers, stats.serving) == (answers, serving)
    })
    .await;
}

#[tokio::test]
async fn a_chain_reaches_the_owner_whole_before_its_first_step_resolves() {
    let gate = Gate::new();
    let (client, server) = pair(&gate).await;
    let root = client.root().await.unwrap();
    let (exported, imported) = (server.stats().exported, client.stats().imported);

    let chain = root
        .promise()
        .call_method("gated", (5,))
        .call_method("next", ())
        .call_method("next", ())
        .call_method("value", ());
    // All four are at the owner while the first waits at the gate: sent
    // step by step, only the first could be.
    wait_for_owner(&server, 4, 4).await;
    assert_eq!(gate.waiting.load(Ordering::SeqCst), 1);
    gate.open();
    assert_eq!(chain.await.unwrap(), Value::from(7));

    // Every answer, object and proxy goes with the promises.
    wait_for_owner(&server, 0, 0).await;
    wait_until(|| server.stats().exported == exported).await;
    wait_until(|| client.stats().imported == imported).await;
    wait_until(|| gate.alive.load(Ordering::SeqCst) == 0).await;
}

#[tokio::test]
async fn operations_on_an_unresolved_answer_start_in_the_order_sent() {
    let gate = Gate::new();
    let (client, server) = pair(&gate).await;
    let root = client.root().await.unwrap();
    let step = root.promise().call_method("gated", (0,));
    let records: Vec<_> = (0..30).map(|n| step.call_method("record", (n,))).collect();
    wait_for_owner(&server, 31, 31).await;
    gate.open();
    for (n, record) in records.into_iter().enumerate().rev() {
        assert_eq!(record.await.unwrap(), Value::from(n as i64));
    }
    assert_eq!(*gate.log.lock().unwrap(), (0..30).collect::<Vec<i64>>());
}

#[tokio::test]
async fn a_denied_step_fails_itself_and_its_dependents_naming_the_step() {
    let gate = Gate::new();
    let (client, server) = pair(&gate).await;
    let root = client.root().await.unwrap();
    let sealed = root
        .promise()
        .call_method("gated", (1,))
        .call_method("sealed", ());
    let denied = sealed.call_method("next", ());
    let after = denied.call_method("value", ());
    let allowed = sealed.call_method("value", ());
    wait_for_owner(&server, 5, 5).await;
    gate.open();

    let err = denied.await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().starts_with("step .next(…)"), "{err}");
    let err = after.await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().starts_with("step .next(…)"), "{err}");
    // The same target's allowed step, and the connection, are untouched.
    assert_eq!(allowed.await.unwrap(), Value::from(1));
    assert_eq!(
        sealed.call_method("value", ()).await.unwrap(),
        Value::from(1)
    );
    drop(sealed);
    wait_for_owner(&server, 0, 0).await;
}

#[tokio::test]
async fn dropping_an_unawaited_pipelined_step_cancels_it_and_its_answer() {
    let gate = Gate::new();
    let (client, server) = pair(&gate).await;
    let root = client.root().await.unwrap();
    let step = root.promise().call_method("gated", (1,));
    let next = step.call_method("next", ());
    wait_for_owner(&server, 2, 2).await;
    drop(step);
    // `next` still depends on it: nothing is cancelled yet.
    assert_eq!(gate.waiting.load(Ordering::SeqCst), 1);
    drop(next);
    wait_for_owner(&server, 0, 0).await;
    wait_until(|| gate.waiting.load(Ordering::SeqCst) == 0).await;
    assert_eq!(client.stats().in_flight, 0);
}

#[tokio::test]
async fn a_chain_has_one_deadline_and_everything_lets_go_after_it() {
    let gate = Gate::new();
    let (client, server) = pair(&gate).await;
    let root = client.root().await.unwrap();
    let step = root
        .promise()
        .with_timeout(Duration::from_millis(200))
        .call_method("gated", (1,));
    let next = step.call_method("next", ());
    // The gate never opens: both fail when the chain's deadline passes.
    let err = next.await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let err = step.await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    wait_for_owner(&server, 0, 0).await;
    wait_until(|| gate.waiting.load(Ordering::SeqCst) == 0).await;
    // The connection goes on.
    let value = root
        .promise()
        .call_method("step_at", (4,))
        .call_method("value", ());
    assert_eq!(value.await.unwrap(), Value::from(4));
}

#[tokio::test]
async fn a_promise_passed_as_an_argument_is_used_where_its_answer_is_kept() {
    let gate = Gate::new();
    let (client, server) = pair(&gate).await;
    let root = client.root().await.unwrap();
    let one = root
        .promise()
        .call_method("gated", (1,))
        .call_method("value", ());
    let recorded = root
        .promise()
        .call_method("step_at", (10,))
        .call_method("record", (one.clone(),));
    // Both chains are at the owner before the first step resolves (all
    // but `step_at` waiting).
    wait_for_owner(&server, 4, 3).await;
    gate.open();
    assert_eq!(recorded.await.unwrap(), Value::from(1));
    assert_eq!(*gate.log.lock().unwrap(), [1]);

    // Nested in a list, and passed in a plain call once sent.
    let listed = root
        .promise()
        .call_method("step_at", (2,))
        .call_method("value", ());
    let echoed = root.call_method("step_at", (one,)).await.unwrap();
    let echoed = NetRef::try_from(echoed).unwrap();
    assert_eq!(
        echoed.call_method("value", ()).await.unwrap(),
        Value::from(1)
    );
    drop(listed);

    // A failed promise fails what it is passed to, with its own error.
    let denied = root
        .promise()
        .call_method("step_at", (1,))
        .call_method("sealed", ())
        .call_method("next", ());
    let err = root
        .promise()
        .call_method("step_at", (denied,))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().starts_with("step .next(…)"), "{err}");
    wait_for_owner(&server, 0, 0).await;
}

#[tokio::test]
async fn a_promise_passed_elsewhere_is_awaited_first_or_refused_in_a_plain_call() {
    let gate = Gate::new();
    let (client, _server) = pair(&gate).await;
    let root = client.root().await.unwrap();
    let three = root
        .promise()
        .call_method("step_at", (3,))
        .call_method("value", ());

    // An operation on a local object's promise puts the value in.
    let local = NetRef::new(Gate::new());
    let here = local
        .promise()
        .call_method("step_at", (three.clone(),))
        .call_method("value", ());
    assert_eq!(here.await.unwrap(), Value::from(3));

    // A plain call on another connection cannot: it says so.
    let other_gate = Gate::new();
    let (other, _other_server) = pair(&other_gate).await;
    let other_root = other.root().await.unwrap();
    let err = other_root
        .call_method("step_at", (three,))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
    assert!(
        err.message().contains("not pending on this connection"),
        "{err}"
    );
}

/// A root that hands out objects of a third peer's.
#[derive(Clone)]
struct Forwarder {
    third: NetRef,
}

#[tether::expose]
impl Forwarder {
    /// A step of the third peer's, holding `value`.
    #[method]
    async fn their_step(&self, value: i64) -> Result<NetRef> {
        NetRef::try_from(self.third.call_method("step_at", (value,)).await?)
    }
}

#[tokio::test]
async fn a_promise_of_a_third_peers_object_is_resolved_there_and_forwarded() {
    let gate = Gate::new();
    let (to_third, third) = pair(&gate).await;
    let forwarder = Forwarder {
        third: to_third.root().await.unwrap(),
    };
    let (client, owner) =
        support::memory_pair_with(Builder::default(), Builder::default().root(forwarder)).await;
    let root = client.root().await.unwrap();
    let value = root
        .promise()
        .call_method("their_step", (5,))
        .call_method("next", ())
        .call_method("value", ());
    assert_eq!(value.await.unwrap(), Value::from(6));
    // The owner kept answers for the chain and let them go; the third
    // peer was called plainly and kept none.
    wait_for_owner(&owner, 0, 0).await;
    assert_eq!(third.stats().answers, 0);
    wait_until(|| gate.alive.load(Ordering::SeqCst) == 0).await;
}

// ------------------------------------------------ a peer playing by hand

async fn raw_pair(gate: &Gate, config: Config) -> (RawPeer<tokio::io::DuplexStream>, Connection) {
    let (peer_end, server_end) = tokio::io::duplex(64 * 1024);
    let (peer, server) = tokio::join!(
        RawPeer::handshake(peer_end),
        Builder::default()
            .config(config)
            .root(gate.clone())
            .accept_io(server_end, None)
    );
    (peer, server.unwrap())
}

fn call(name: &str, args: &[Vec<u8>]) -> Vec<u8> {
    wire::call_method(name, args)
}

#[tokio::test]
async fn raw_requests_on_answers_resolve_and_unknown_answers_fail_alone() {
    let gate = Gate::new();
    let (mut peer, server) = raw_pair(&gate, Config::default()).await;
    let root = peer.root(1).await;
    peer.send(&wire::pipelined(
        2,
        false,
        root,
        5_000,
        &call("step_at", &[wire::int(3)]),
    ))
    .await;
    peer.send(&wire::pipelined(3, true, 2, 5_000, &call("value", &[])))
        .await;
    let mut replies = vec![peer.reply().await, peer.reply().await];
    replies.sort_by_key(|r| match r {
        Reply::Ok { seq, .. } | Reply::Err { seq, .. } => *seq,
    });
    assert!(
        matches!(
            replies[0],
            Reply::Ok {
                seq: 2,
                value: Val::Mine(_)
            }
        ),
        "{replies:?}"
    );
    assert_eq!(
        replies[1],
        Reply::Ok {
            seq: 3,
            value: Val::Int(3)
        }
    );

    // An answer never made, and one finished, are unknown; the
    // connection goes on.
    peer.send(&wire::finish(&[2, 77])).await;
    wait_until(|| server.stats().answers == 1).await;
    for (seq, answer) in [(4, 99), (5, 2)] {
        peer.send(&wire::pipelined(
            seq,
            true,
            answer,
            5_000,
            &call("value", &[]),
        ))
        .await;
        match peer.reply().await {
            Reply::Err {
                seq: got,
                kind,
                message,
                ..
            } => {
                assert_eq!((got, kind), (seq, KIND_UNKNOWN_OBJECT));
                assert!(message.contains("no promised answer"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    // Nor is a request's own answer its target.
    peer.send(&wire::pipelined(8, true, 8, 5_000, &call("value", &[])))
        .await;
    match peer.reply().await {
        Reply::Err { seq: 8, kind, .. } => assert_eq!(kind, KIND_UNKNOWN_OBJECT),
        other => panic!("expected an error, got {other:?}"),
    }
    // An argument naming an unknown answer fails its call alone.
    let mut unknown = vec![11];
    wire::varint(&mut unknown, 4242);
    peer.send(&wire::pipelined(
        9,
        false,
        root,
        5_000,
        &call("step_at", &[unknown]),
    ))
    .await;
    match peer.reply().await {
        Reply::Err {
            seq: 9,
            kind,
            message,
            ..
        } => {
            assert_eq!(kind, KIND_UNKNOWN_OBJECT, "{message}");
            assert!(message.contains("no promised answer 4242"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // An answer that is a plain value cannot be operated on.
    peer.send(&wire::pipelined(6, true, 3, 5_000, &wire::getattr("x")))
        .await;
    match peer.reply().await {
        Reply::Err {
            seq: 6, message, ..
        } => assert!(message.contains("got int"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    let reply = peer.call(7, root, &call("step_at", &[wire::int(1)])).await;
    assert!(
        matches!(
            reply,
            Reply::Ok {
                seq: 7,
                value: Val::Mine(_)
            }
        ),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_peer_reusing_a_kept_answer_number_is_disconnected() {
    let gate = Gate::new();
    let (mut peer, server) = raw_pair(&gate, Config::default()).await;
    let root = peer.root(1).await;
    let op = call("step_at", &[wire::int(1)]);
    peer.send(&wire::pipelined(2, false, root, 5_000, &op))
        .await;
    assert!(matches!(peer.reply().await, Reply::Ok { seq: 2, .. }));
    peer.send(&wire::pipelined(2, false, root, 5_000, &op))
        .await;
    let err = server.closed().await;
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.message().contains("reused answer number 2"), "{err}");
    assert_eq!(server.stats().answers, 0);
}

#[tokio::test]
async fn answers_past_the_limit_fail_alone_until_some_are_finished() {
    let gate = Gate::new();
    let (mut peer, server) = raw_pair(&gate, Config::default().max_answers(2)).await;
    let root = peer.root(1).await;
    let op = call("step_at", &[wire::int(1)]);
    for seq in [2, 3] {
        peer.send(&wire::pipelined(seq, false, root, 5_000, &op))
            .await;
        assert!(matches!(peer.reply().await, Reply::Ok { .. }));
    }
    peer.send(&wire::pipelined(4, false, root, 5_000, &op))
        .await;
    match peer.reply().await {
        Reply::Err {
            seq: 4, message, ..
        } => {
            assert!(message.contains("Config::max_answers"), "{message}")
        }
        other => panic!("expected the limit, got {other:?}"),
    }
    peer.send(&wire::finish(&[2])).await;
    wait_until(|| server.stats().answers == 1).await;
    peer.send(&wire::pipelined(5, false, root, 5_000, &op))
        .await;
    assert!(matches!(peer.reply().await, Reply::Ok { seq: 5, .. }));
}

#[tokio::test]
async fn a_call_refused_as_too_many_never_runs_and_fails_its_dependents() {
    let gate = Gate::new();
    let (mut peer, server) = raw_pair(&gate, Config::default().max_serving(1)).await;
    let root = peer.root(1).await;
    peer.send(&wire::pipelined(
        2,
        false,
        root,
        60_000,
        &call("gated", &[wire::int(1)]),
    ))
    .await;
    wait_for_owner(&server, 1, 1).await;
    // One call is running, the limit: the next is refused, and what is
    // built on it fails the same way without running it.
    peer.send(&wire::pipelined(
        3,
        false,
        root,
        5_000,
        &call("step_at", &[wire::int(7)]),
    ))
    .await;
    peer.send(&wire::pipelined(4, true, 3, 5_000, &call("value", &[])))
        .await;
    for seq in [3, 4] {
        match peer.reply().await {
            Reply::Err {
                seq: got, message, ..
            } => {
                assert_eq!(got, seq);
                assert!(message.contains("too many calls in progress"), "{message}");
            }
            other => panic!("expected the limit, got {other:?}"),
        }
    }
    assert_eq!(gate.alive.load(Ordering::SeqCst), 0);
    gate.open();
    assert!(matches!(peer.reply().await, Reply::Ok { seq: 2, .. }));
}

#[tokio::test]
async fn one_connections_answers_are_out_of_anothers_reach() {
    let gate = Gate::new();
    let (mut alice, _server_a) = raw_pair(&gate, Config::default()).await;
    let (mut mallory, _server_m) = raw_pair(&gate, Config::default()).await;
    let root = alice.root(1).await;
    alice
        .send(&wire::pipelined(
            2,
            false,
            root,
            5_000,
            &call("step_at", &[wire::int(42)]),
        ))
        .await;
    assert!(matches!(alice.reply().await, Reply::Ok { seq: 2, .. }));
    mallory
        .send(&wire::pipelined(3, true, 2, 5_000, &call("value", &[])))
        .await;
    match mallory.reply().await {
        Reply::Err { kind, message, .. } => {
            assert_eq!(kind, KIND_UNKNOWN_OBJECT);
            assert!(!message.contains("42"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_vanishing_mid_chain_leaves_no_answer_or_work_behind() {
    let gate = Gate::new();
    let (mut peer, server) = raw_pair(&gate, Config::default()).await;
    let root = peer.root(1).await;
    peer.send(&wire::pipelined(
        2,
        false,
        root,
        60_000,
        &call("gated", &[wire::int(1)]),
    ))
    .await;
    peer.send(&wire::pipelined(3, true, 2, 60_000, &call("next", &[])))
        .await;
    wait_for_owner(&server, 2, 2).await;
    drop(peer);
    server.closed().await;
    assert_eq!(server.stats().answers, 0);
    wait_until(|| gate.waiting.load(Ordering::SeqCst) == 0).await;
    wait_until(|| server.stats().serving == 0).await;
    assert_eq!(gate.alive.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_version_3_client_is_served_as_before() {
    let gate = Gate::new();
    let (peer_end, server_end) = tokio::io::duplex(64 * 1024);
    let (mut peer, server) = tokio::join!(
        RawPeer::handshake_as(peer_end, 3),
        Builder::default()
            .root(gate.clone())
            .accept_io(server_end, None)
    );
    let server = server.unwrap();
    let root = peer.root(1).await;
    let step = peer
        .object(2, root, &call("step_at", &[wire::int(9)]))
        .await;
    assert_eq!(
        peer.call(3, step, &call("value", &[])).await,
        Reply::Ok {
            seq: 3,
            value: Val::Int(9)
        }
    );
    assert_eq!(server.stats().answers, 0);
}

// ------------------------------------------------------- typed proxies

/// Hands out counters, once the gate opens.
#[tether::service]
pub trait Counters {
    /// A counter at `start`.
    async fn counter(&self, start: i64) -> tether::Result<CounterProxy>;
}

/// One counter.
#[tether::service]
pub trait Counter {
    /// A counter one higher.
    async fn next(&self) -> tether::Result<CounterProxy>;
    /// Its number.
    async fn value(&self) -> tether::Result<i64>;
}

#[derive(Clone)]
struct GatedCounters(Arc<Semaphore>);

impl Counters for GatedCounters {
    async fn counter(&self, start: i64) -> tether::Result<CounterProxy> {
        let _permit = self.0.acquire().await.expect("the gate stays");
        Ok(OneCounter(start).proxy())
    }
}

struct OneCounter(i64);

impl OneCounter {
    fn proxy(self) -> CounterProxy {
        CounterProxy::new(NetRef::new(CounterObject(self)))
    }
}

impl Counter for OneCounter {
    async fn next(&self) -> tether::Result<CounterProxy> {
        Ok(OneCounter(self.0 + 1).proxy())
    }
    async fn value(&self) -> tether::Result<i64> {
        Ok(self.0)
    }
}

#[tokio::test]
async fn typed_proxies_pipeline_through_the_services_they_return() {
    let gate = Arc::new(Semaphore::new(0));
    let (client, server) = support::memory_pair_with(
        Builder::default(),
        Builder::default().root(CountersObject(GatedCounters(gate.clone()))),
    )
    .await;
    let counters = CountersProxy::new(client.root().await.unwrap());

    // Typed all the way: CountersPromise -> CounterPromise -> TypedPromise<i64>.
    let seven = counters.promise().counter(5).next().next().value();
    wait_for_owner(&server, 4, 4).await;
    gate.add_permits(100);
    assert_eq!(seven.await.unwrap(), 7);

    // A promised service resolves to its proxy; the proxy calls as before.
    let two: CounterProxy = counters.promise().counter(1).next().await.unwrap();
    assert_eq!(two.value().await.unwrap(), 2);
    assert_eq!(two.promise().next().value().await.unwrap(), 3);
    drop(two);
    wait_for_owner(&server, 0, 0).await;
}

#[tokio::test]
async fn an_answer_keeps_a_plain_value_only_up_to_a_bound_and_its_reply_has_it_whole() {
    let gate = Gate::new();
    let (client, server) = pair(&gate).await;
    let root = client.root().await.unwrap();
    let small = root.promise().call_method("text", (10,));
    let large = root.promise().call_method("text", (100_000,));
    let of_small = root.promise().call_method("length", (&small,));
    let of_large = root.promise().call_method("length", (&large,));
    assert_eq!(of_small.await.unwrap(), Value::from(10));
    let err = of_large.await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.message().contains("4096 bytes"), "{err}");
    assert_eq!(large.await.unwrap(), Value::from("x".repeat(100_000)));
    assert_eq!(small.await.unwrap(), Value::from("x".repeat(10)));
    wait_for_owner(&server, 0, 0).await;
}
