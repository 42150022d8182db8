//! What a peer may do to our objects. Deny by default.
//!
//! Three layers, each narrowing the one before:
//!
//! 1. an object's [`members`](crate::Object::members) are all a peer can
//!    name: anything else is denied, with the same error whether it exists
//!    or not, and never listed by `dir` or `inspect`;
//! 2. a [`restrict`]ed view exposes a named subset of an object's members;
//! 3. the connection's [`Policy`] switches whole operations: `setattr` and
//!    `delattr` are off unless enabled (and then only reach attributes
//!    declared writable).
//!
//! Each side's policy protects its own objects, callbacks included: a
//! server cannot do more to a client's callback than call it.

use crate::error::raise;
use crate::netref::{LocalRef, NetRef, Target};
use crate::Result;

/// Which operations a peer may use on this side's objects.
///
/// ```
/// let policy = tether::Policy::default().allow_setattr(true);
/// assert!(policy.setattr_allowed());
/// assert!(!policy.delattr_allowed());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    setattr: bool,
    delattr: bool,
}

impl Policy {
    /// Allow or forbid `setattr` on attributes declared writable (default: forbidden).
    pub fn allow_setattr(mut self, allow: bool) -> Policy {
        self.setattr = allow;
        self
    }

    /// Allow or forbid `delattr` on attributes declared writable (default: forbidden).
    pub fn allow_delattr(mut self, allow: bool) -> Policy {
        self.delattr = allow;
        self
    }

    /// Whether `setattr` is allowed.
    pub fn setattr_allowed(&self) -> bool {
        self.setattr
    }

    /// Whether `delattr` is allowed.
    pub fn delattr_allowed(&self) -> bool {
        self.delattr
    }

    /// The policy of in-process calls on our own objects.
    pub(crate) fn trusted() -> Policy {
        Policy {
            setattr: true,
            delattr: true,
        }
    }
}

/// A view of a local object that exposes only the members named in `allowed`.
///
/// Operations that name no member (call, iterate, repr, str, hash, eq) pass
/// through to the object; `close` passes only if `"close"` is among the
/// allowed names. The view is a separate object with its
/// own identity; the original keeps
/// all its members for whoever holds it. Names in `allowed` that the object
/// does not expose are ignored. A remote reference cannot be restricted
/// here (its owner's policy governs it): that is an
/// [`ErrorKind::Unsupported`](crate::ErrorKind) error.
///
/// ```
/// # use tether::{Member, Object, NetRef};
/// struct Files;
/// impl Object for Files {
///     fn type_name(&self) -> &str { "Files" }
///     fn members(&self) -> &[Member] {
///         const M: &[Member] = &[Member::method("read", "()", ""), Member::method("delete", "()", "")];
///         M
///     }
/// }
/// let read_only = tether::restrict(&NetRef::new(Files), &["read"]).unwrap();
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(read_only.dir().await.unwrap(), vec!["read".to_string()]);
/// # });
/// ```
pub fn restrict(object: &NetRef, allowed: &[&str]) -> Result<NetRef> {
    let inner: LocalRef = match &object.target {
        Target::Local(local) => local.clone(),
        Target::Remote(_) => {
            return Err(raise::unsupported(
                "remote reference",
                "restrictable here (its owner's policy governs it)",
            ))
        }
    };
    let members = inner
        .object
        .members()
        .iter()
        .filter(|m| allowed.contains(&m.name.as_ref()))
        .cloned()
        .collect();
    let allow_close = allowed.contains(&"close");
    Ok(NetRef::new(super::builtin::restricted::Restricted {
        inner,
        members,
        allow_close,
    }))
}
