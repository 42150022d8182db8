//! Promises (`NetRef::promise`): operations started without waiting,
//! chained on results not yet in, with errors, cancellation and release.
//! Today each step waits for its target (no pipelining on the wire yet).

mod support;

use std::sync::atomic::Ordering;

use support::{memory_pair, wait_until, TestService};
use tether::{ErrorKind, Value};

#[tokio::test]
async fn a_chain_of_steps_resolves_and_its_objects_are_released() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, _server) = memory_pair(service).await;
    let root = client.root().await.unwrap();
    let imported = client.stats().imported;

    let counter = root.promise().call_method("make_counter", ());
    let first = counter.call_method("incr", ());
    assert_eq!(first.await.unwrap(), Value::from(1));
    let second = counter.call_method("incr", ());
    assert_eq!(second.await.unwrap(), Value::from(2));
    assert_eq!(counter.getattr("value").await.unwrap(), Value::from(2));
    let names = root.promise().dir().await.unwrap();
    assert!(names
        .as_list()
        .unwrap()
        .contains(&Value::from("make_counter")));

    // The promised counter is released with the promise.
    assert_eq!(probe.counters_alive.load(Ordering::SeqCst), 1);
    drop(counter);
    wait_until(|| probe.counters_alive.load(Ordering::SeqCst) == 0).await;
    wait_until(|| client.stats().imported == imported).await;
}

#[tokio::test]
async fn an_error_fails_its_step_and_its_dependents_only() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();

    // A denied step names itself; what depends on it fails the same way.
    let hidden = root.promise().getattr("secret");
    let after = hidden.call_method("anything", ());
    let err = hidden.await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().starts_with("step .secret"), "{err}");
    let err2 = after.await.unwrap_err();
    assert_eq!(err2.kind(), ErrorKind::Denied);
    assert!(err2.message().starts_with("step .secret"), "{err2}");

    // A step on a value that is not an object says so.
    let err = root
        .promise()
        .call_method("add", (1, 2))
        .call_method("incr", ())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Type, "{err}");
    assert!(err.message().starts_with("step .incr(…)"), "{err}");

    // An unrelated operation on the same root is untouched.
    let sum = root.promise().call_method("add", (2, 3));
    assert_eq!(sum.await.unwrap(), Value::from(5));
}

#[tokio::test]
async fn dropping_a_promise_nothing_depends_on_cancels_its_call_on_the_peer() {
    let service = TestService::default();
    let probe = service.probe.clone();
    let (client, _server) = memory_pair(service).await;
    let root = client.root().await.unwrap();

    let slow = root.promise().call_method("slow", (600_000,));
    wait_until(|| probe.started.load(Ordering::SeqCst) == 1).await;
    drop(slow);
    wait_until(|| probe.aborted.load(Ordering::SeqCst) == 1).await;
    wait_until(|| client.stats().in_flight == 0).await;

    // A dependent keeps its target running: dropping the target's own
    // handle cancels nothing while a step waits on it.
    let counter = root.promise().call_method("make_counter", ());
    let incr = counter.call_method("incr", ());
    drop(counter);
    assert_eq!(incr.await.unwrap(), Value::from(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_on_one_promised_target_run_in_the_order_made() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let counter = root.promise().call_method("make_counter", ());
    let steps: Vec<_> = (0..50).map(|_| counter.call_method("incr", ())).collect();
    let mut seen = Vec::new();
    for step in steps {
        seen.push(step.await.unwrap().as_int().unwrap());
    }
    assert_eq!(seen, (1..=50).collect::<Vec<i64>>());
}
