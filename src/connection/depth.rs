//! How deeply a call is nested in calls being served
//! ([`Config::max_call_depth`](super::Config::max_call_depth)).
//!
//! Serving a peer's request at depth `d` runs its work with `d` set for
//! the task; a call that work makes (through any connection) goes out at
//! `d + 1`. A call made outside any serving is at depth 0.

use std::future::Future;

tokio::task_local! {
    /// The depth of the request being served by this task.
    static SERVING: u32;
}

/// The depth of a call made here and now.
pub(crate) fn of_new_call() -> u32 {
    SERVING.try_with(|d| d.saturating_add(1)).unwrap_or(0)
}

/// Run `work`, the serving of a request at `depth`.
pub(crate) fn serving<F: Future>(depth: u32, work: F) -> impl Future<Output = F::Output> {
    SERVING.scope(depth, work)
}
