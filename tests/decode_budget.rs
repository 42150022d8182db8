//! `Config::max_decoded_bytes`: what a peer's frames may decode to, and
//! what the calls in progress may hold decoded at once. Over it a request
//! or reply fails alone with `LimitExceeded`; the connection goes on, and
//! references in the refused frame are still counted and released.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use support::{memory_pair_with, wait_until};
use tether::{Builder, Config, ErrorKind, Value};
use tokio::sync::Semaphore;

/// Echoes, holds arguments while a gate is shut, and makes large lists.
#[derive(Clone)]
struct Sink {
    gate: Arc<Semaphore>,
    holding: Arc<AtomicUsize>,
    echoed: Arc<AtomicUsize>,
}

impl Default for Sink {
    fn default() -> Sink {
        Sink {
            gate: Arc::new(Semaphore::new(0)),
            holding: Arc::default(),
            echoed: Arc::default(),
        }
    }
}

#[tether::expose]
impl Sink {
    /// `value`, back.
    #[method]
    fn echo(&self, value: Value) -> Value {
        self.echoed.fetch_add(1, Ordering::SeqCst);
        value
    }

    /// Hold `value` until the test opens the gate; return its length.
    #[method]
    async fn hold(&self, value: Vec<Value>) -> usize {
        self.holding.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.unwrap().forget();
        value.len()
    }

    /// A list of `n` `None`s.
    #[method]
    fn nones(&self, n: usize) -> Vec<Value> {
        vec![Value::None; n]
    }
}

fn nones(n: usize) -> Value {
    Value::List(vec![Value::None; n])
}

/// Each `None` counts as one value (40 bytes on 64-bit targets), its list
/// one more.
const VALUE: usize = std::mem::size_of::<Value>();

async fn pair(
    client: Config,
    server: Config,
    sink: Sink,
) -> (tether::Connection, tether::Connection) {
    memory_pair_with(
        Builder::default().config(client),
        Builder::default().config(server).root(sink),
    )
    .await
}

#[tokio::test]
async fn a_request_decoding_past_the_budget_fails_alone_and_the_connection_goes_on() {
    let sink = Sink::default();
    let budget = 64 * 1024;
    let (client, _server) = pair(
        Config::default(),
        Config::default().max_decoded_bytes(budget),
        sink.clone(),
    )
    .await;
    let root = client.root().await.unwrap();

    // 10 000 one-byte `None`s: 10 KB on the wire, 400 KB decoded.
    let err = root
        .call_method("echo", (nones(10_000),))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err:#}");
    assert!(
        err.message().contains("max_decoded_bytes"),
        "the error names the setting: {err:#}"
    );
    assert_eq!(sink.echoed.load(Ordering::SeqCst), 0, "the call never ran");

    // Just under the budget passes, and the connection is still there.
    let fits = budget / VALUE - 64;
    let back = root.call_method("echo", (nones(fits),)).await.unwrap();
    assert_eq!(back, nones(fits));
    assert!(!client.is_closed());
}

#[tokio::test]
async fn a_reply_decoding_past_the_callers_budget_fails_that_call_only() {
    let (client, _server) = pair(
        Config::default().max_decoded_bytes(64 * 1024),
        Config::default(),
        Sink::default(),
    )
    .await;
    let root = client.root().await.unwrap();
    let err = root.call_method("nones", (10_000,)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err:#}");
    let small = root.call_method("nones", (10,)).await.unwrap();
    assert_eq!(small, nones(10));
}

#[tokio::test]
async fn arguments_of_calls_in_progress_count_until_their_calls_end() {
    let sink = Sink::default();
    // Room for one held list of 1 500 values (48 KB), not two.
    let (client, _server) = pair(
        Config::default(),
        Config::default().max_decoded_bytes(80 * 1024),
        sink.clone(),
    )
    .await;
    let root = client.root().await.unwrap();

    let first = tokio::spawn({
        let root = root.clone();
        async move { root.call_method("hold", (nones(1_500),)).await }
    });
    wait_until(|| sink.holding.load(Ordering::SeqCst) == 1).await;

    let err = root.call_method("hold", (nones(1_500),)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err:#}");
    assert!(
        err.message().contains("held by calls still in progress"),
        "the error says why: {err:#}"
    );
    assert_eq!(sink.holding.load(Ordering::SeqCst), 1, "refused unrun");

    // The first call ends, its arguments are given back: room again.
    sink.gate.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap(), Value::from(1_500));
    sink.gate.add_permits(1);
    let again = root.call_method("hold", (nones(1_500),)).await.unwrap();
    assert_eq!(again, Value::from(1_500));
}

#[tokio::test]
async fn references_in_a_refused_request_are_still_counted_and_released() {
    let (client, server) = pair(
        Config::default(),
        Config::default().max_decoded_bytes(64 * 1024),
        Sink::default(),
    )
    .await;
    let root = client.root().await.unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    let seen = called.clone();
    let cb = tether::callback(move |_: ()| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    // The callback comes after the budget is spent.
    let args = Value::List(vec![nones(10_000), Value::Ref(cb.clone())]);
    let err = root.call_method("echo", (args,)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err:#}");
    drop(cb);
    // The server imported the callback while parsing, then released it.
    wait_until(|| client.stats().exported == 0 && server.stats().imported == 0).await;
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn large_frames_decoded_off_the_reader_reach_their_calls() {
    // Frames over 64 KiB are decoded on a blocking thread, small ones in
    // the reader: interleaved, each reply still reaches its own call.
    let (client, _server) = pair(Config::default(), Config::default(), Sink::default()).await;
    let root = client.root().await.unwrap();
    let big = Value::Bytes(vec![9; 200_000].into());
    let calls = (0..20).map(|i| {
        let root = root.clone();
        let arg = if i % 2 == 0 {
            big.clone()
        } else {
            Value::from(i)
        };
        async move { (root.call_method("echo", (arg.clone(),)).await.unwrap(), arg) }
    });
    for (back, sent) in futures_util::future::join_all(calls).await {
        assert_eq!(back, sent);
    }
}
