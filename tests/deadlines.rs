//! Deadlines, cancellation, and disconnects: no call waits forever.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::wire::{self, RawPeer, Reply};
use support::{memory_pair, memory_pair_with, wait_until, TestService};
use tether::{Builder, Config, ErrorKind, Value};

#[tokio::test]
async fn a_call_past_its_deadline_fails_with_timeout_and_is_aborted_on_the_owner() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let err = root
        .with_timeout(Duration::from_millis(50))
        .call_method("slow", (60_000,))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    wait_until(|| probe.aborted.load(Ordering::SeqCst) == 1).await;
    assert_eq!(server.stats().serving, 0);
    assert_eq!(client.stats().in_flight, 0);
    // The connection is fine afterwards.
    assert_eq!(
        root.call_method("add", (1, 1)).await.unwrap(),
        Value::from(2)
    );
}

/// Long deadlines (a second and more) are watched by one sweeper per
/// connection rather than a timer per call: such a call still fails on
/// time with the caller's own timeout (not the owner's backstop a little
/// later), is withdrawn from the owner, and other calls go on. Virtual
/// time, so the test takes no real seconds.
#[tokio::test(start_paused = true)]
async fn a_call_past_a_long_deadline_fails_with_timeout_and_is_aborted_on_the_owner() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let started = tokio::time::Instant::now();
    let two = root.with_timeout(Duration::from_secs(2));
    let five = root.with_timeout(Duration::from_secs(5));
    let (late, on_time) = tokio::join!(
        two.call_method("slow", (60_000,)),
        five.call_method("slow", (3_000,)),
    );
    let err = late.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("no reply within 2s"), "{err}");
    assert_eq!(on_time.unwrap(), Value::from(3_000));
    assert!(started.elapsed() >= Duration::from_secs(3));
    wait_until(|| probe.aborted.load(Ordering::SeqCst) == 1).await;
    assert_eq!(server.stats().serving, 0);
    assert_eq!(client.stats().in_flight, 0);
    // After idling, the sweeper still watches new calls.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let err = root
        .with_timeout(Duration::from_secs(1))
        .call_method("slow", (60_000,))
        .await
        .unwrap_err();
    assert!(err.message().contains("no reply within 1s"), "{err}");
    wait_until(|| probe.aborted.load(Ordering::SeqCst) == 2).await;
}

#[tokio::test]
async fn the_connection_default_deadline_applies_to_every_call() {
    let (client, _server) = memory_pair_with(
        Builder::default().config(Config::default().call_timeout(Duration::from_millis(50))),
        Builder::default().root(TestService::default()),
    )
    .await;
    let root = client.root().await.unwrap();
    let err = root.call_method("slow", (60_000,)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    // A per-reference deadline overrides it.
    let v = root
        .with_timeout(Duration::from_secs(30))
        .call_method("slow", (80,))
        .await
        .unwrap();
    assert_eq!(v, Value::from(80));
}

/// The caller's deadline travels with the request, and the owner stops the
/// work past it even when the caller never cancels: here a raw peer that
/// sends a 100 ms call and waits, with no timer of its own. Virtual time
/// over a pipe, so the owner's timer is the only one that can answer.
#[tokio::test(start_paused = true)]
async fn the_owner_enforces_the_callers_deadline_too() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (peer_end, server_end) = tokio::io::duplex(64 * 1024);
    let (mut peer, server) = tokio::join!(
        RawPeer::handshake(peer_end),
        Builder::default().root(service).accept_io(server_end, None)
    );
    let server = server.unwrap();
    let root = peer.root(1).await;
    let started = tokio::time::Instant::now();
    let slow = wire::call_method("slow", &[wire::int(60_000)]);
    peer.send(&wire::request(2, root, 100, &slow)).await;
    // Bounded well inside the owner's own defaults (30 s), so only the
    // caller's deadline can have stopped the call.
    let reply = tokio::time::timeout(Duration::from_secs(10), peer.reply())
        .await
        .expect("the owner never stopped the call");
    match reply {
        Reply::Err {
            seq: 2,
            kind,
            message,
            ..
        } => {
            assert_eq!(kind, wire::KIND_TIMEOUT, "{message}");
            assert!(message.contains("ran past its deadline"), "{message}");
        }
        other => panic!("expected the owner's timeout, got {other:?}"),
    }
    // Not before the caller's deadline; the work was started, then dropped.
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(probe.started.load(Ordering::SeqCst), 1);
    assert_eq!(probe.aborted.load(Ordering::SeqCst), 1);
    assert_eq!(server.stats().serving, 0);
}

#[tokio::test]
async fn dropping_a_call_future_cancels_it_on_the_peer() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let call = tokio::spawn({
        let root = root.clone();
        async move { root.call_method("slow", (60_000,)).await }
    });
    wait_until(|| probe.started.load(Ordering::SeqCst) == 1).await;
    call.abort();
    wait_until(|| probe.aborted.load(Ordering::SeqCst) == 1).await;
    wait_until(|| server.stats().serving == 0).await;
    assert_eq!(client.stats().in_flight, 0);
}

#[tokio::test]
async fn cancelling_a_call_cancels_the_callbacks_it_was_waiting_on() {
    // client → server.call_back(cb) → client's cb sleeps; dropping the
    // client's call cancels the server's work, which cancels the callback.
    let client_service = TestService::default();
    let client_probe = client_service.probe.clone();
    let (client, _server) = memory_pair_with(
        Builder::default().root(client_service),
        Builder::default().root(TestService::default()),
    )
    .await;
    let root = client.root().await.unwrap();
    let slow_cb = tether::callback({
        let probe = client_probe.clone();
        move |ms: i64| {
            let probe = probe.clone();
            async move {
                let service = TestService {
                    probe,
                    ..Default::default()
                };
                let me = tether::NetRef::new(service);
                me.call_method("slow", (ms,)).await
            }
        }
    });
    let call = tokio::spawn(async move { root.call_method("call_back", (slow_cb, 60_000)).await });
    wait_until(|| client_probe.started.load(Ordering::SeqCst) == 1).await;
    call.abort();
    wait_until(|| client_probe.aborted.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test]
async fn pending_calls_fail_at_once_when_the_connection_drops() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let root = root.clone();
            tokio::spawn(async move { root.call_method("slow", (60_000,)).await })
        })
        .collect();
    wait_until(|| probe.started.load(Ordering::SeqCst) == 5).await;
    server.close().await;
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    }
    // The server's work was aborted with the connection.
    wait_until(|| probe.aborted.load(Ordering::SeqCst) == 5).await;
    let err = root.call_method("add", (1, 1)).await.unwrap_err();
    assert!(err.is_closed());
    assert!(client.is_closed());
}

#[tokio::test]
async fn calls_from_both_sides_fail_when_the_peer_vanishes_mid_call() {
    let (client, server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let call = tokio::spawn(async move { root.call_method("slow", (60_000,)).await });
    // The server side goes away without a goodbye: drop every handle.
    drop(server);
    let err = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("no hang")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    // The reason depends on what noticed first (the peer's Close, EOF, or
    // a failed write); that the connection ended does not.
    client.closed().await;
    assert!(client.is_closed());
}
