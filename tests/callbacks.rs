//! Callbacks: closures passed by reference and called back over the same
//! connection, while the caller's own call is still pending.

mod support;

use std::sync::{Arc, Mutex};

use support::{memory_pair, memory_pair_with, TestService};
use tether::{Builder, ErrorKind, NetRef, Value};

#[tokio::test]
async fn server_calls_a_client_callback_during_the_clients_call() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let cb = tether::callback(move |word: String| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(word.clone());
            Ok(format!("{word}!"))
        }
    });
    let reply = root.call_method("call_back", (cb, "hey")).await.unwrap();
    assert_eq!(reply, Value::from("hey!"));
    assert_eq!(*seen.lock().unwrap(), vec!["hey".to_string()]);
}

#[tokio::test]
async fn sync_callbacks_work_too() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let cb = tether::callback_sync(|n: i64| Ok(n * 2));
    assert_eq!(
        root.call_method("call_back", (cb, 21)).await.unwrap(),
        Value::from(42)
    );
}

#[tokio::test]
async fn nested_calls_alternate_between_peers_to_any_depth() {
    // Both sides serve a TestService; each ping_pong call makes the other
    // side call back, so the chain goes client → server → client → ...
    let (client, _server) = memory_pair_with(
        Builder::default().root(TestService::default()),
        Builder::default().root(TestService::default()),
    )
    .await;
    let root = client.root().await.unwrap();
    let mine = NetRef::new(TestService::default());
    let reached: i64 = root
        .call_method("ping_pong", (mine, 40))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(reached, 40);
}

#[tokio::test]
async fn a_side_that_waits_on_nothing_still_serves_callbacks() {
    let (client, server) = memory_pair_with(
        Builder::default().root(TestService::default()),
        Builder::default().root(TestService::default()),
    )
    .await;
    // The client is idle; the server side calls into it.
    let client_root = server.root().await.unwrap();
    assert_eq!(
        client_root.call_method("add", (1, 1)).await.unwrap(),
        Value::from(2)
    );
    drop(client);
}

#[tokio::test]
async fn callback_argument_errors_reach_the_server_and_back() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let cb = tether::callback(|n: i64| async move { Ok(n) });
    let err = root
        .call_method("call_back", (cb, "not a number"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
    let remote = err.remote().unwrap();
    assert!(
        remote.cause().is_some(),
        "the callback's own error is kept as the cause"
    );
}

#[tokio::test]
async fn many_callbacks_run_concurrently() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let calls = (0..50).map(|i| {
        let root = root.clone();
        async move {
            let cb = tether::callback(move |n: i64| async move { Ok(n + i) });
            root.call_method("call_back", (cb, 100)).await.unwrap()
        }
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r, Value::from(100 + i as i64));
    }
}
