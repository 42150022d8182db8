//! Review: `RemoteIter::batch_size(n)` with n > 65 536 ends the iteration
//! after the first batch. The owner clamps `Next(max)` to MAX_NEXT_BATCH
//! (src/service/dispatch.rs), and RemoteIter / `NetRef::next_batch` read a
//! short batch as "exhausted" (src/netref/iter.rs).

mod support;

use support::{memory_pair_with, Count};
use tether::{Builder, NetRef};

const N: i64 = 100_000;

#[tokio::test]
async fn a_large_batch_size_does_not_truncate_a_local_iteration() {
    let it = NetRef::new(Count::upto(N));
    let all = it.iter().batch_size(N as u32).collect_all().await.unwrap();
    assert_eq!(all.len(), N as usize);
}

#[tokio::test]
async fn a_large_batch_size_does_not_truncate_a_remote_iteration() {
    let (client, _server) =
        memory_pair_with(Builder::default(), Builder::default().root(Count::upto(N))).await;
    let root = client.root().await.unwrap();
    let all = root
        .iter()
        .batch_size(N as u32)
        .collect_all()
        .await
        .unwrap();
    assert_eq!(all.len(), N as usize);
}
