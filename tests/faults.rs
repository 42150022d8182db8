//! Faults between two peers (tests/support/faults.rs): frames delivered a few
//! bytes at a time, connections cut before, inside and after chosen frames
//! (mid-call, mid-callback, during a release), and a black hole that keeps
//! both ends open. After each: no call hangs, no reply reaches the wrong
//! caller, and no object is left alive on either side.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use support::faults::{faulty_pair, tag, Control, Dir, Fault, Keep};
use support::{wait_until, Probe, TestService};
use tether::{Builder, Config, Connection, ErrorKind, NetRef, Value};

/// Safety bound for anything that could hang; never used for correctness.
const BOUND: Duration = Duration::from_secs(10);

async fn pair() -> (Connection, Connection, Control, Arc<Probe>) {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, server, control) =
        faulty_pair(Builder::default(), Builder::default().root(service)).await;
    (client, server, control, probe)
}

/// Both ends saw the connection end, and neither holds any object.
async fn assert_nothing_left(client: &Connection, server: &Connection, probe: &Probe) {
    tokio::time::timeout(BOUND, async {
        client.closed().await;
        server.closed().await;
    })
    .await
    .expect("both ends notice the cut");
    for (side, conn) in [("client", client), ("server", server)] {
        let stats = conn.stats();
        assert_eq!(
            (
                stats.exported,
                stats.imported,
                stats.in_flight,
                stats.serving
            ),
            (0, 0, 0, 0),
            "{side} still holds {stats:?}"
        );
    }
    wait_until(|| probe.counters_alive.load(Ordering::SeqCst) == 0).await;
}

/// A call that fails because the connection went away, within the bound.
async fn fails_with_the_connection(call: impl std::future::Future<Output = tether::Result<Value>>) {
    let err = tokio::time::timeout(BOUND, call)
        .await
        .expect("the call hung after the cut")
        .expect_err("the call succeeded across a cut");
    assert!(
        matches!(err.kind(), ErrorKind::Transport | ErrorKind::Closed),
        "{err:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_in_tiny_pieces_still_reach_the_right_callers() {
    let (client, _server, control, _probe) = pair().await;
    control.split_into_chunks(3);
    let root = client.root().await.unwrap();
    let calls = (0..48i64).map(|i| {
        let root = root.clone();
        async move {
            match i % 3 {
                0 => {
                    let sum = root.call_method("add", (i, 1000)).await.unwrap();
                    assert_eq!(sum, Value::from(i + 1000));
                }
                1 => {
                    let text = format!("echo-{i}-{}", "x".repeat(i as usize * 40));
                    let back = root.call_method("echo", (text.clone(),)).await.unwrap();
                    assert_eq!(back, Value::from(text));
                }
                _ => {
                    let cb = tether::callback_sync(move |n: i64| Ok(n * 10 + i));
                    let back = root.call_method("call_back", (cb, i)).await.unwrap();
                    assert_eq!(back, Value::from(i * 10 + i));
                }
            }
        }
    });
    tokio::time::timeout(BOUND, futures_util::future::join_all(calls))
        .await
        .expect("calls over a chunked relay finished");
}

#[tokio::test]
async fn a_cut_in_the_middle_of_a_request_fails_the_call_and_frees_everything() {
    let (client, server, control, probe) = pair().await;
    let root = client.root().await.unwrap();
    let counter = root.call_method("make_counter", ()).await.unwrap();
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 1);
    control.arm(Fault::Cut {
        dir: Dir::ToServer,
        tag: tag::REQUEST,
        nth: 0,
        keep: Keep::Half,
    });
    fails_with_the_connection(root.call_method("echo", ("x".repeat(1000),))).await;
    // Later calls fail at once too.
    fails_with_the_connection(root.call_method("add", (1, 2))).await;
    drop((root, counter));
    assert_nothing_left(&client, &server, &probe).await;
}

#[tokio::test]
async fn a_reply_lost_after_the_server_ran_the_call_fails_the_caller() {
    let (client, server, control, probe) = pair().await;
    let root = client.root().await.unwrap();
    let counter = match root.call_method("make_counter", ()).await.unwrap() {
        Value::Ref(r) => r,
        other => panic!("expected a counter, got {other:?}"),
    };
    control.arm(Fault::Cut {
        dir: Dir::ToClient,
        tag: tag::REPLY_OK,
        nth: 0,
        keep: Keep::Nothing,
    });
    fails_with_the_connection(counter.call_method("incr", ())).await;
    control.struck().await;
    drop((root, counter));
    assert_nothing_left(&client, &server, &probe).await;
}

#[tokio::test]
async fn a_cut_while_the_server_calls_back_fails_both_calls_and_frees_the_callback() {
    let (client, server, control, probe) = pair().await;
    let root = client.root().await.unwrap();
    let state = Arc::new(());
    let held = state.clone();
    let cb = tether::callback_sync(move |n: i64| {
        let _ = &held;
        Ok(n)
    });
    // The server's callback request reaches the client; the cut comes before
    // the callback's reply can go back.
    control.arm(Fault::Cut {
        dir: Dir::ToClient,
        tag: tag::REQUEST,
        nth: 0,
        keep: Keep::All,
    });
    fails_with_the_connection(root.call_method("call_back", (cb, 5))).await;
    drop(root);
    assert_nothing_left(&client, &server, &probe).await;
    // The closure (and what it captured) is gone from the client's table.
    wait_until(|| Arc::strong_count(&state) == 1).await;
}

#[tokio::test]
async fn a_cut_in_the_middle_of_a_release_leaves_no_object_behind() {
    let (client, server, control, probe) = pair().await;
    let root = client.root().await.unwrap();
    let mut counters: Vec<NetRef> = Vec::new();
    for _ in 0..10 {
        match root.call_method("make_counter", ()).await.unwrap() {
            Value::Ref(r) => counters.push(r),
            other => panic!("expected a counter, got {other:?}"),
        }
    }
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 10);
    control.arm(Fault::Cut {
        dir: Dir::ToServer,
        tag: tag::RELEASE,
        nth: 0,
        keep: Keep::Half,
    });
    drop(counters);
    tokio::time::timeout(BOUND, control.struck())
        .await
        .expect("the release frame went out");
    drop(root);
    assert_nothing_left(&client, &server, &probe).await;
}

#[tokio::test(start_paused = true)]
async fn a_black_hole_is_found_by_keepalive_and_everything_is_freed() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let config = Config::default().keepalive(Some(Duration::from_secs(1)));
    let (client, server, control) = faulty_pair(
        Builder::default().config(config.clone()),
        Builder::default().root(service).config(config),
    )
    .await;
    let root = client.root().await.unwrap();
    let counter = root.call_method("make_counter", ()).await.unwrap();
    control.arm(Fault::Blackhole {
        dir: Dir::ToServer,
        tag: tag::REQUEST,
        nth: 0,
    });
    let err = root
        .call_method("add", (1, 2))
        .await
        .expect_err("a call into a black hole");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Timeout | ErrorKind::Transport | ErrorKind::Closed
        ),
        "{err:#}"
    );
    drop((root, counter));
    for conn in [&client, &server] {
        let reason = conn.closed().await;
        assert_eq!(reason.kind(), ErrorKind::Timeout, "{reason}");
        assert!(reason.message().contains("stopped answering"), "{reason}");
    }
    assert_nothing_left(&client, &server, &probe).await;
}
