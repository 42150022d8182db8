//! Objects owned by a peer of another protocol (a Python program over
//! RPyC, a JavaScript one over Cap'n Web), held as tether objects.
//!
//! Such an object is wrapped in an ordinary local [`NetRef`](crate::NetRef)
//! so tether code uses it like any other, but its owner's policy governs
//! it: the dispatcher hands every operation on it, unchecked, to
//! [`Forwarded::perform`], which sends the request its protocol has for it.

use std::fmt;

use crate::protocol::frame::Op;
use crate::service::object::{BoxFuture, CallContext, Object};
use crate::{Result, Value};

/// An object another protocol's peer owns.
pub(crate) trait Forwarded: fmt::Debug + Send + Sync {
    /// Run `op` on the object, on its owner.
    fn perform<'a>(&'a self, op: Op, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>>;
}

/// The forwarded object behind `object`, if it is one.
pub(crate) fn as_forwarded(object: &dyn Object) -> Option<&dyn Forwarded> {
    let any = object as &dyn std::any::Any;
    if let Some(python) = any.downcast_ref::<crate::rpyc::remote::PyObject>() {
        return Some(python);
    }
    #[cfg(feature = "capnweb")]
    if let Some(javascript) = any.downcast_ref::<crate::capnweb::peer::PeerObject>() {
        return Some(javascript);
    }
    None
}
