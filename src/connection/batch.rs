//! Several calls in one frame, answered in one frame (XML-RPC's multicall).

use std::sync::Arc;
use std::time::Duration;

use super::Connection;
use crate::error::raise;
use crate::netref::Target;
use crate::protocol::frame::Op;
use crate::{IntoArgs, NetRef, Result, Value};

/// Calls collected to be sent to the peer together.
///
/// The peer runs them in order and answers with every outcome at once: a
/// value or an error each, one failure not stopping the rest. The targets
/// must be the peer's objects on this connection.
///
/// ```
/// # use tether::{Args, BoxFuture, CallContext, Member, Object, Result, Value};
/// # struct Calc;
/// # #[tether::expose] impl Calc { #[method] fn add(&self, a: i64, b: i64) -> i64 { a + b } }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let (conn, _server) = tether::transport::memory::pair(
/// #     tether::Builder::default(), tether::Builder::default().root(Calc)).await.unwrap();
/// let root = conn.root().await.unwrap();
/// let mut batch = conn.batch();
/// batch.call_method(&root, "add", (1, 2)).unwrap();
/// batch.call_method(&root, "add", ("one", 2)).unwrap();
/// let results = batch.send().await.unwrap();
/// assert_eq!(results[0].as_ref().unwrap(), &Value::from(3));
/// assert!(results[1].is_err());
/// # });
/// ```
#[derive(Debug)]
#[must_use = "a batch does nothing until sent"]
pub struct Batch {
    conn: Connection,
    calls: Vec<(u64, Op)>,
    /// The targets, kept alive until the batch is sent.
    targets: Vec<NetRef>,
    timeout: Option<Duration>,
}

impl Connection {
    /// Start a batch of calls to the peer.
    pub fn batch(&self) -> Batch {
        Batch {
            conn: self.clone(),
            calls: Vec::new(),
            targets: Vec::new(),
            timeout: None,
        }
    }
}

impl Batch {
    fn push(&mut self, target: &NetRef, op: Op) -> Result<usize> {
        let id = match &target.target {
            Target::Remote(proxy) if Arc::ptr_eq(&proxy.conn, &self.conn.handle.shared) => proxy.id,
            _ => {
                return Err(raise::unsupported(
                    "batch",
                    "able to include objects other than the peer's on this connection",
                ))
            }
        };
        self.calls.push((id, op));
        self.targets.push(target.clone());
        Ok(self.calls.len() - 1)
    }

    /// Add `target.name(args)`; returns its position in the results.
    pub fn call_method(
        &mut self,
        target: &NetRef,
        name: &str,
        args: impl IntoArgs,
    ) -> Result<usize> {
        self.push(target, Op::CallMethod(name.to_string(), args.into_args()))
    }

    /// Add `target(args)`; returns its position in the results.
    pub fn call(&mut self, target: &NetRef, args: impl IntoArgs) -> Result<usize> {
        self.push(target, Op::Call(args.into_args()))
    }

    /// Add `target.name` (an attribute read); returns its position.
    pub fn getattr(&mut self, target: &NetRef, name: &str) -> Result<usize> {
        self.push(target, Op::GetAttr(name.to_string()))
    }

    /// Calls collected so far.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// A deadline for the whole batch (default: the connection's).
    pub fn timeout(mut self, timeout: Duration) -> Batch {
        self.timeout = Some(timeout);
        self
    }

    /// Send every call in one frame; the outcomes, in order. The outer
    /// error is for the batch as a whole (timeout, closed connection).
    pub async fn send(self) -> Result<Vec<Result<Value>>> {
        if self.calls.is_empty() {
            return Ok(Vec::new());
        }
        let results = self
            .conn
            .handle
            .shared
            .request_batch(self.calls, self.timeout)
            .await;
        drop(self.targets);
        results
    }
}
