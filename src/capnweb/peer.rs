//! [`PeerObject`]: an object the JavaScript peer sent (a function, an
//! `RpcTarget`), held on the tether side.
//!
//! Wrapped in an ordinary [`NetRef`](crate::NetRef), so Rust code calls a
//! JavaScript callback as it calls any object: `callback.call((i,))`. The
//! dispatcher hands every operation to [`Forwarded::perform`], which
//! becomes a `push` and `pull` on the session: calling the object itself,
//! calling a method (a property path of one name, with arguments), or
//! reading a property. The peer's own code decides what is allowed. When
//! the last clone drops, a `release` tells the peer how many times it
//! sent the object.

use std::sync::atomic::AtomicU64;
use std::sync::Weak;

use super::session::Session;
use crate::error::raise;
use crate::protocol::frame::Op;
use crate::service::forward::Forwarded;
use crate::service::object::{BoxFuture, CallContext, Object};
use crate::{Args, Result, Value};

/// An object of the JavaScript peer's, by its id there.
pub(crate) struct PeerObject {
    pub(super) session: Weak<Session>,
    pub(super) id: i64,
    /// Times the peer sent it while this proxy lived.
    pub(super) introduced: AtomicU64,
}

impl PeerObject {
    async fn ask(&self, path: Vec<String>, args: Option<Args>, cx: &CallContext) -> Result<Value> {
        let session = self
            .session
            .upgrade()
            .ok_or_else(|| raise::closed("the Cap'n Web session ended"))?;
        session.ask(self.id, path, args, cx.deadline()).await
    }
}

impl Forwarded for PeerObject {
    fn perform<'a>(&'a self, op: Op, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            match op {
                Op::Call(args) => self.ask(Vec::new(), Some(args), cx).await,
                Op::CallMethod(name, args) => self.ask(vec![name], Some(args), cx).await,
                Op::GetAttr(name) => self.ask(vec![name], None, cx).await,
                Op::Repr | Op::Str => Ok(Value::Str(self.repr())),
                Op::Hash => Ok(Value::Int(self.id)),
                // Letting go is the drop's business.
                Op::Close => Ok(Value::None),
                other => Err(raise::unsupported(
                    self.type_name(),
                    &format!("{} over Cap'n Web", other.describe()),
                )),
            }
        })
    }
}

impl Object for PeerObject {
    fn type_name(&self) -> &str {
        "JavaScript object"
    }

    // Every operation reaches `perform` through the dispatcher; this is
    // for code that calls the trait directly.
    fn call<'a>(&'a self, args: Args, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        Box::pin(self.ask(Vec::new(), Some(args), cx))
    }

    fn repr(&self) -> String {
        format!("<JavaScript object {} over Cap'n Web>", self.id)
    }
}

impl std::fmt::Debug for PeerObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr())
    }
}

impl Drop for PeerObject {
    fn drop(&mut self) {
        if let Some(session) = self.session.upgrade() {
            session.peer_object_dropped(self.id, *self.introduced.get_mut());
        }
    }
}

/// What a `pipe` the peer opens stands for: streams are not supported, so
/// every call on it fails (alone).
pub(crate) struct NoStreams;

impl Object for NoStreams {
    fn type_name(&self) -> &str {
        "stream (not supported by tether's Cap'n Web endpoint)"
    }
}
