//! `getattr` of a method name: a callable that calls the method.

use crate::netref::LocalRef;
use crate::protocol::frame::Op;
use crate::service::dispatch;
use crate::service::object::{BoxFuture, CallContext, Object};
use crate::service::policy::Policy;
use crate::{Args, Result, Value};

/// A method bound to its object, as RPyC's `root.add` is.
pub(crate) struct BoundMethod {
    pub(crate) target: LocalRef,
    pub(crate) name: String,
}

impl Object for BoundMethod {
    fn type_name(&self) -> &str {
        "method"
    }

    fn call<'a>(&'a self, args: Args, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        // The method was checked against the members when it was bound;
        // dispatch checks again, so a bound method never widens access.
        let op = Op::CallMethod(self.name.clone(), args);
        Box::pin(async move { dispatch::dispatch(&self.target, op, &Policy::trusted(), cx).await })
    }

    fn repr(&self) -> String {
        format!(
            "<bound method {}.{}>",
            self.target.object.type_name(),
            self.name
        )
    }
}
