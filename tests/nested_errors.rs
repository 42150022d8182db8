//! Review: the kind of a nested failure leaks to the outer caller.
//!
//! `ErrorKind::seen_by_caller` (src/error.rs) keeps `Timeout` and
//! `Cancelled` across the wire, and `Error::to_remote` keeps the inner
//! kind when an owner propagates an error it got from *another* call. So a
//! caller whose own deadline is far away gets `is_timeout() == true`
//! because the owner's nested call timed out; retry-on-timeout logic
//! cannot tell its own deadline from someone else's.

mod support;

use std::time::Duration;

use support::memory_pair_with;
use tether::{
    Args, BoxFuture, Builder, CallContext, ErrorKind, Member, NetRef, Object, Result, Value,
};

struct Impatient;

impl Object for Impatient {
    fn type_name(&self) -> &str {
        "Impatient"
    }
    fn members(&self) -> &[Member] {
        const M: &[Member] = &[Member::method(
            "run",
            "(f)",
            "Call f with a 50 ms deadline.",
        )];
        M
    }
    fn call_method<'a>(
        &'a self,
        _name: &'a str,
        args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            let f: NetRef = args.parse()?;
            f.with_timeout(Duration::from_millis(50)).call(()).await
        })
    }
}

/// Virtual time: the nested 50 ms deadline passes, the caller's 20 s one
/// does not.
#[tokio::test(start_paused = true)]
async fn an_owners_nested_timeout_is_not_reported_as_the_callers_own_timeout() {
    let (client, _server) =
        memory_pair_with(Builder::default(), Builder::default().root(Impatient)).await;
    let root = client.root().await.unwrap();
    let slow = tether::callback(|(): ()| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    });
    let err = root
        .with_timeout(Duration::from_secs(20))
        .call_method("run", (slow,))
        .await
        .unwrap_err();
    // The owner's call failed: a remote error, named after the nested
    // timeout, not the caller's own Timeout.
    assert_eq!(
        err.kind(),
        ErrorKind::Remote,
        "the caller's 20 s call failed after 50 ms with: {err:#}"
    );
    assert_eq!(err.type_name(), Some("tether::TimeoutError"), "{err:#}");
    assert!(err.message().contains("no reply within 50ms"), "{err:#}");
}
