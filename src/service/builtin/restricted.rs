//! A view of an object exposing a subset of its members.

use crate::error::raise;
use crate::netref::LocalRef;
use crate::service::dispatch::no_member;
use crate::service::object::{BoxFuture, CallContext, Member, Object};
use crate::{Args, Result, Value};

/// Built by [`restrict`](crate::restrict). The dispatcher only lets through
/// names in `members`; the checks here repeat that, so the view stays
/// narrow even when called in-process.
pub(crate) struct Restricted {
    pub(crate) inner: LocalRef,
    pub(crate) members: Vec<Member>,
    /// Whether `close` was among the allowed names: closing a resource is
    /// a power a narrowed view must be given explicitly.
    pub(crate) allow_close: bool,
}

impl Restricted {
    fn check(&self, name: &str) -> Result<()> {
        if self.members.iter().any(|m| m.name == name) {
            Ok(())
        } else {
            Err(no_member(self.type_name(), name, &self.members))
        }
    }
}

impl Object for Restricted {
    fn type_name(&self) -> &str {
        self.inner.object.type_name()
    }

    fn members(&self) -> &[Member] {
        &self.members
    }

    fn call_method<'a>(
        &'a self,
        name: &'a str,
        args: Args,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        match self.check(name) {
            Ok(()) => self.inner.object.call_method(name, args, cx),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn get_attr<'a>(&'a self, name: &'a str, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        match self.check(name) {
            Ok(()) => self.inner.object.get_attr(name, cx),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn set_attr<'a>(
        &'a self,
        name: &'a str,
        value: Value,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<()>> {
        match self.check(name) {
            Ok(()) => self.inner.object.set_attr(name, value, cx),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn del_attr<'a>(&'a self, name: &'a str, cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        match self.check(name) {
            Ok(()) => self.inner.object.del_attr(name, cx),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    // Operations that name no member pass through: the view narrows what
    // can be named, not what the object is (callable, iterable). Close
    // passes only when "close" was allowed.

    fn call<'a>(&'a self, args: Args, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        self.inner.object.call(args, cx)
    }

    fn next<'a>(&'a self, cx: &'a CallContext) -> BoxFuture<'a, Result<Option<Value>>> {
        self.inner.object.next(cx)
    }

    fn next_batch<'a>(
        &'a self,
        max: usize,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<Value>>> {
        self.inner.object.next_batch(max, cx)
    }

    fn close<'a>(&'a self, cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        if self.allow_close {
            self.inner.object.close(cx)
        } else {
            Box::pin(async move {
                Err(raise::denied(format!(
                    "this view of '{}' does not allow close",
                    self.type_name()
                )))
            })
        }
    }

    fn repr(&self) -> String {
        format!("<restricted view of {}>", self.inner.object.repr())
    }

    fn str(&self) -> String {
        self.inner.object.str()
    }

    fn hash(&self) -> Option<i64> {
        self.inner.object.hash()
    }

    fn eq(&self, other: &Value) -> Option<bool> {
        self.inner.object.eq(other)
    }
}
