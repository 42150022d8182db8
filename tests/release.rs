//! Lifetime: one proxy per id, releases on last drop (batched), counts
//! that show leaks, and everything released when a connection ends.

mod support;

use std::sync::atomic::Ordering;

use support::{memory_pair, wait_until, TestService};
use tether::{NetRef, Stats, Value};

fn counts(stats: Stats) -> (usize, usize) {
    (stats.exported, stats.imported)
}

#[tokio::test]
async fn dropping_the_last_clone_releases_the_object_on_its_owner() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let counter = NetRef::try_from(root.call_method("make_counter", ()).await.unwrap()).unwrap();
    let clone = counter.clone();
    assert_eq!(counts(server.stats()), (2, 0), "root and counter exported");
    assert_eq!(counts(client.stats()), (0, 2), "one proxy each");
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 1);

    drop(counter);
    client.ping().await.unwrap();
    assert_eq!(server.stats().exported, 2, "a clone is still alive");

    drop(clone);
    // The release is queued before the ping, and the owner handles frames
    // in order: after the pong the release has been applied.
    client.ping().await.unwrap();
    assert_eq!(counts(server.stats()), (1, 0));
    assert_eq!(counts(client.stats()), (0, 1));
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 0);
}

/// A release is held back to leave with the next frame, but not for ever:
/// with nothing more sent, the connection's sweeper sends it (within 25 ms;
/// the wait is bounded at 10 s).
#[tokio::test]
async fn a_release_reaches_the_owner_with_no_later_frame() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let counter = NetRef::try_from(root.call_method("make_counter", ()).await.unwrap()).unwrap();
    assert_eq!(counts(server.stats()), (2, 0));
    drop(counter);
    wait_until(|| server.stats().exported == 1).await;
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 0);
    assert_eq!(counts(client.stats()), (0, 1));
}

#[tokio::test]
async fn an_object_received_many_times_has_one_proxy_and_one_release() {
    let (client, server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let again = client.root().await.unwrap();
    assert_eq!(root, again, "one identity");
    assert_eq!(client.stats().imported, 1, "one proxy for the id");
    let third = NetRef::try_from(root.call_method("echo", (root.clone(),)).await.unwrap()).unwrap();
    assert_eq!(third, root);
    assert_eq!(client.stats().imported, 1);
    drop((root, again, third));
    client.ping().await.unwrap();
    assert_eq!(server.stats().exported, 0);
}

#[tokio::test]
async fn many_drops_are_released_in_batches_and_nothing_leaks() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let mut counters = Vec::new();
    for _ in 0..500 {
        counters.push(root.call_method("make_counter", ()).await.unwrap());
    }
    assert_eq!(server.stats().exported, 501);
    drop(counters);
    client.ping().await.unwrap();
    assert_eq!(server.stats().exported, 1);
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn callbacks_are_released_when_the_server_drops_them() {
    let (client, server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let cb = tether::callback_sync(|x: Value| Ok(x));
    root.call_method("call_back", (cb.clone(), 1))
        .await
        .unwrap();
    // The server dropped its proxy when the method returned; its release
    // precedes its reply on the wire.
    assert_eq!(client.stats().exported, 0);
    assert_eq!(server.stats().imported, 0);
    // Our own handle is untouched.
    assert_eq!(cb.call((5,)).await.unwrap(), Value::from(5));
}

#[tokio::test]
async fn everything_the_peer_held_is_released_when_the_connection_ends() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let held: Vec<Value> =
        futures_util::future::join_all((0..10).map(|_| root.call_method("make_counter", ())))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 10);
    client.close().await;
    let reason = server.closed().await;
    assert!(reason.is_closed(), "{reason}");
    assert_eq!(server.stats().exported, 0);
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 0);
    // Proxies outliving their connection fail cleanly.
    let counter = NetRef::try_from(held[0].clone()).unwrap();
    let err = counter.call_method("incr", ()).await.unwrap_err();
    assert!(err.is_closed(), "{err}");
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let (client, server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    drop(client);
    // The root proxy still holds the connection open.
    assert_eq!(
        root.call_method("add", (1, 1)).await.unwrap(),
        Value::from(2)
    );
    drop(root);
    let reason = server.closed().await;
    assert!(reason.is_closed(), "{reason}");
    assert!(reason.message().contains("every handle"), "{reason}");
}
