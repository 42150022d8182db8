//! Review: `Config::max_frame_len` is per side and never exchanged.
//!
//! - A reply over the *caller's* limit kills the whole connection (the
//!   reader treats it as a protocol violation) although the docs promise
//!   the call fails with `LimitExceeded`.
//! - A release batch over *our own* limit fails to encode in the writer and
//!   is dropped with a warning: the owner keeps the objects forever
//!   (src/connection/driver.rs `Batch::flush_releases`).

mod support;

use std::time::Duration;

use support::{memory_pair_with, TestService};
use tether::{
    Args, BoxFuture, Builder, CallContext, Config, ErrorKind, Member, NetRef, Object, Result, Value,
};

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
            Ok(Value::Bytes(vec![7; n]))
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
