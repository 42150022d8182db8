//! Review: the user reference a served request holds (its `CallContext`
//! connection, src/connection/incoming.rs `run`) is dropped when `run`
//! returns, *before* `reply()` queues the answer. If it was the last user
//! reference, `terminate` runs first and the reply races the writer's
//! final drain: the caller sometimes gets `Closed` for a call that ran.

mod support;

use std::time::Duration;

use support::{memory_pair_with, TestService};
use tether::{Builder, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_in_flight_when_the_owner_drops_its_last_handle_still_gets_its_reply() {
    let mut lost = 0;
    for _ in 0..100 {
        let (client, server) = memory_pair_with(
            Builder::default(),
            Builder::default().root(TestService::default()),
        )
        .await;
        let root = client.root().await.unwrap();
        let call = tokio::spawn(async move { root.call_method("slow", (30,)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The owner keeps no handle; the running request's context is the
        // last user reference, so the connection closes when it finishes.
        drop(server);
        let outcome = tokio::time::timeout(Duration::from_secs(5), call)
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
    }
    assert_eq!(lost, 0, "{lost} of 100 completed calls lost their reply");
}
