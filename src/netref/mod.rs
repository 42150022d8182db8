//! The proxy side: [`NetRef`], the one handle to any object.
//!
//! A `NetRef` is either *local* (an object of ours, for example a callback
//! about to be passed to a peer, or one of ours that a peer sent back) or
//! *remote* (a proxy for an object a peer owns). Every operation is the same
//! call on both; a remote one becomes a request on the owner's connection.
//!
//! - [`proxy`](self::proxy): the remote state, one proxy per id per connection,
//!   and the import table that keeps it unique;
//! - [`iter`](self::iter): [`RemoteIter`], batched iteration as a `Stream`;
//! - `promise`: [`Promise`], operations started without waiting, usable
//!   at once as the target of the next;
//! - `io`: [`RemoteFile`](crate::RemoteFile), tokio's async I/O traits over a remote file.
//!
//! # Drop behavior
//!
//! Clones of a remote `NetRef` share one proxy. When the last clone drops,
//! the proxy queues a release carrying the number of times its id arrived;
//! the connection's writer sends all queued releases in one frame the next
//! time it writes. The owner frees the object when every send is released,
//! or when the connection ends. A connection whose last handle (its
//! [`Connection`] values and remote `NetRef`s) is dropped closes itself.

pub(crate) mod io;
pub(crate) mod iter;
pub(crate) mod promise;
pub(crate) mod proxy;

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use self::iter::RemoteIter;
pub use self::promise::{Promise, TypedPromise};
pub(crate) use self::proxy::{ImportTable, Proxy};
use crate::connection::Connection;
use crate::error::raise;
use crate::protocol::frame::Op;
use crate::service::dispatch;
use crate::service::object::{CallContext, Member, Object};
use crate::service::policy::Policy;
use crate::{Args, Error, FromValue, IntoArgs, Result, Value};

/// An object of ours with its identity, as the export table holds it.
pub(crate) struct Local<T: ?Sized> {
    /// Unique in this process, so an object sent twice gets one id.
    pub(crate) uid: u64,
    pub(crate) object: T,
}

/// Shared handle to a local object.
pub(crate) type LocalRef = Arc<Local<dyn Object>>;

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// A fresh process-wide identity for a local object or proxy.
pub(crate) fn next_uid() -> u64 {
    NEXT_UID.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone)]
pub(crate) enum Target {
    Local(LocalRef),
    Remote(Arc<Proxy>),
}

/// A reference to an object, here or on a peer.
///
/// Cloning is cheap and keeps one identity: equality compares identity, not
/// contents. Every operation is `async` and returns [`Result`]; remote ones
/// fail with [`ErrorKind::Closed`](crate::ErrorKind) once the connection is
/// gone and with [`ErrorKind::Timeout`](crate::ErrorKind) after the deadline
/// (see [`with_timeout`](NetRef::with_timeout)).
///
/// # Drop behavior
///
/// Clones share one proxy; when the last clone of a remote reference drops,
/// a release is queued for the owner (batched with others, and never ahead
/// of a frame that still names the object).
#[derive(Clone)]
pub struct NetRef {
    pub(crate) target: Target,
    timeout: Option<Duration>,
}

impl NetRef {
    /// Wrap one of our objects so it can be passed to a peer by reference.
    ///
    /// ```
    /// # use tether::{NetRef, Object};
    /// struct Counter;
    /// impl Object for Counter { fn type_name(&self) -> &str { "Counter" } }
    /// let r = NetRef::new(Counter);
    /// assert!(r.is_local());
    /// assert!(r.downcast_ref::<Counter>().is_some());
    /// ```
    pub fn new<O: Object>(object: O) -> NetRef {
        let local: LocalRef = Arc::new(Local {
            uid: next_uid(),
            object,
        });
        NetRef::from_target(Target::Local(local))
    }

    pub(crate) fn from_target(target: Target) -> NetRef {
        NetRef {
            target,
            timeout: None,
        }
    }

    /// True when the object lives in this process. A Python object reached
    /// over RPyC ([`rpyc`](crate::rpyc)), or a JavaScript one over Cap'n
    /// Web, is not local, though tether holds its proxy as an object of its
    /// own.
    pub fn is_local(&self) -> bool {
        match &self.target {
            Target::Local(local) => crate::service::forward::as_forwarded(&local.object).is_none(),
            Target::Remote(_) => false,
        }
    }

    /// The object itself, when it is local and of type `T`.
    pub fn downcast_ref<T: Object>(&self) -> Option<&T> {
        match &self.target {
            Target::Local(local) => (&local.object as &dyn Any).downcast_ref::<T>(),
            Target::Remote(_) => None,
        }
    }

    /// The connection a remote reference belongs to (`None` for a Python
    /// object, whose connection is an [`rpyc::Session`](crate::rpyc::Session)).
    pub fn connection(&self) -> Option<Connection> {
        match &self.target {
            Target::Local(_) => None,
            Target::Remote(proxy) => Some(Connection::from_shared(proxy.conn.clone())),
        }
    }

    /// The same reference with another deadline for each of its calls
    /// (the connection's default, 30 s unless configured, otherwise).
    pub fn with_timeout(&self, timeout: Duration) -> NetRef {
        NetRef {
            target: self.target.clone(),
            timeout: Some(timeout),
        }
    }

    /// What the object is, for traces: its type name if local.
    pub(crate) fn describe(&self) -> String {
        match &self.target {
            Target::Local(local) => format!("a {} object", local.object.type_name()),
            Target::Remote(proxy) => format!(
                "object {:#x} of peer '{}'",
                proxy.id, proxy.conn.peer_service
            ),
        }
    }

    /// Process-wide identity of the referenced object (or proxy).
    pub(crate) fn uid(&self) -> u64 {
        match &self.target {
            Target::Local(local) => local.uid,
            Target::Remote(proxy) => proxy.uid,
        }
    }

    /// Run one operation on the object, wherever it lives.
    pub(crate) async fn perform(&self, op: Op) -> Result<Value> {
        match &self.target {
            Target::Local(local) => {
                dispatch::dispatch(local, op, &Policy::trusted(), &CallContext::default()).await
            }
            Target::Remote(proxy) => proxy.conn.request(proxy.id, op, self.timeout).await,
        }
    }

    /// Run one operation on behalf of a peer, under `policy`. A local object
    /// is checked against the policy; a remote one (a proxy we forward to)
    /// is governed by its own owner's policy.
    pub(crate) async fn serve(&self, op: Op, policy: &Policy, cx: &CallContext) -> Result<Value> {
        match &self.target {
            Target::Local(local) => dispatch::dispatch(local, op, policy, cx).await,
            // Boxed: a forwarded call holds a whole request of our own
            // (message, encoding, reply channel), which would otherwise
            // make every served call's future that much larger, and the
            // reader moves it once per call.
            Target::Remote(_) => Box::pin(self.forward(op, cx)).await,
        }
    }

    /// [`serve`](NetRef::serve) of `Op::CallMethod(name, args)`, the name
    /// lent: the caller keeps it to describe a failure without a copy.
    pub(crate) async fn serve_method(
        &self,
        name: &str,
        args: Args,
        cx: &CallContext,
    ) -> Result<Value> {
        match &self.target {
            Target::Local(local) => dispatch::call_method(local, name, args, cx).await,
            Target::Remote(_) => {
                Box::pin(self.forward(Op::CallMethod(name.to_string(), args), cx)).await
            }
        }
    }

    /// Forward `op` to the owner of this proxy, with what is left of the
    /// caller's deadline.
    async fn forward(&self, op: Op, cx: &CallContext) -> Result<Value> {
        match cx.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                self.with_timeout(left).perform(op).await
            }
            None => self.perform(op).await,
        }
    }

    /// Call the method `name` with `args` (a tuple, `()`, or [`Args`](crate::Args)).
    pub async fn call_method(&self, name: &str, args: impl IntoArgs) -> Result<Value> {
        self.perform(Op::CallMethod(name.to_string(), args.into_args()))
            .await
    }

    /// Call the object itself (a callback, a bound method).
    pub async fn call(&self, args: impl IntoArgs) -> Result<Value> {
        self.perform(Op::Call(args.into_args())).await
    }

    /// Read an attribute; for a method name, a callable bound method.
    pub async fn getattr(&self, name: &str) -> Result<Value> {
        self.perform(Op::GetAttr(name.to_string())).await
    }

    /// Assign a writable attribute (the owner's policy must allow setattr).
    pub async fn setattr(&self, name: &str, value: impl Into<Value>) -> Result<()> {
        self.perform(Op::SetAttr(name.to_string(), value.into()))
            .await
            .map(drop)
    }

    /// Delete a writable attribute (the owner's policy must allow delattr).
    pub async fn delattr(&self, name: &str) -> Result<()> {
        self.perform(Op::DelAttr(name.to_string())).await.map(drop)
    }

    /// The names of the exposed members.
    pub async fn dir(&self) -> Result<Vec<String>> {
        let names: crate::value::convert::ListOf<String> =
            FromValue::from_value(self.perform(Op::Dir).await?)?;
        Ok(names.0)
    }

    /// The exposed members with kind, signature and documentation.
    pub async fn inspect(&self) -> Result<Vec<Member>> {
        let list = Vec::<Value>::from_value(self.perform(Op::Inspect).await?)?;
        list.into_iter().map(Member::from_value).collect()
    }

    /// The owner's `repr` of the object.
    pub async fn repr(&self) -> Result<String> {
        String::from_value(self.perform(Op::Repr).await?)
    }

    /// The owner's `str` of the object.
    pub async fn str(&self) -> Result<String> {
        String::from_value(self.perform(Op::Str).await?)
    }

    /// The owner's hash of the object.
    pub async fn remote_hash(&self) -> Result<i64> {
        i64::from_value(self.perform(Op::Hash).await?)
    }

    /// Equality as the owner defines it (identity unless it says otherwise).
    pub async fn remote_eq(&self, other: impl Into<Value>) -> Result<bool> {
        bool::from_value(self.perform(Op::Eq(other.into())).await?)
    }

    /// The next item of an iterable object, `None` when exhausted.
    pub async fn next(&self) -> Result<Option<Value>> {
        Ok(self.next_batch(1).await?.pop())
    }

    /// Up to `max` next items in one round trip; fewer means exhausted.
    /// `max` is capped at [`MAX_NEXT_BATCH`](crate::protocol::MAX_NEXT_BATCH),
    /// the most an owner hands out at once.
    pub async fn next_batch(&self, max: u32) -> Result<Vec<Value>> {
        let max = max.min(dispatch::MAX_NEXT_BATCH);
        let items = Vec::<Value>::from_value(self.perform(Op::Next(max)).await?)?;
        if items.len() > max as usize {
            return Err(raise::protocol(format!(
                "asked for {max} items, got {}",
                items.len()
            )));
        }
        Ok(items)
    }

    /// Iterate the object with batched read-ahead; see [`RemoteIter`].
    pub fn iter(&self) -> RemoteIter {
        RemoteIter::new(self.clone())
    }

    /// Start a `with` block on the object: what the owner's
    /// [`Object::enter`] gives (by default the object itself).
    ///
    /// On the wire this is a call of `__enter__`, as in Python, so a
    /// Python object over RPyC runs its own.
    pub async fn enter(&self) -> Result<Value> {
        self.call_method(dispatch::ENTER, ()).await
    }

    /// End a `with` block on the object, telling the owner's
    /// [`Object::exit`] the error the block ended with, if any; `true`
    /// means the owner suppressed it. By default the owner closes the
    /// object and suppresses nothing.
    pub async fn exit(&self, error: Option<&Error>) -> Result<bool> {
        let (type_name, message) = match error {
            Some(e) => (
                Some(e.type_name().unwrap_or(e.kind().as_str()).to_string()),
                Some(e.message().to_string()),
            ),
            None => (None, None),
        };
        bool::from_value(
            self.call_method(dispatch::EXIT, (type_name, message))
                .await?,
        )
    }

    /// Ask the owner to release the resource the object holds.
    pub async fn close(&self) -> Result<()> {
        self.perform(Op::Close).await.map(drop)
    }
}

/// References are equal when they name the same object: the same local
/// object, or the same object of the same peer (a connection keeps one
/// proxy per object it imported while any reference to it lives). So a
/// `NetRef` can key a `HashMap` or fill a `HashSet`; its hash follows the
/// same identity. (Clippy's `mutable_key_type` lint cannot see that the
/// counters inside take no part: list `tether::NetRef` under
/// `ignore-interior-mutability` in your `clippy.toml`, as tether does.)
impl PartialEq for NetRef {
    fn eq(&self, other: &NetRef) -> bool {
        self.uid() == other.uid()
    }
}

impl Eq for NetRef {}

impl std::hash::Hash for NetRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.uid().hash(state);
    }
}

impl fmt::Debug for NetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Local(local) => match crate::service::forward::as_forwarded(&local.object) {
                Some(foreign) => write!(f, "{foreign:?}"),
                None => write!(f, "<local {}>", local.object.type_name()),
            },
            Target::Remote(proxy) => write!(
                f,
                "<netref {:#x} on connection {}>",
                proxy.id, proxy.conn.number
            ),
        }
    }
}
