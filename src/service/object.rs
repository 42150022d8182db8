//! The owner side of a remote object: the [`Object`] trait and its members.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use crate::connection::{Connection, Shared};
use crate::error::raise;
use crate::{Args, Error, Result, Value};

/// A boxed, sendable future: what [`Object`]'s async operations return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What kind of member an object exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberKind {
    /// A method, reached with `call_method` (or `getattr` then `call`).
    Method,
    /// An attribute, reached with `getattr`; `writable` ones also accept
    /// `setattr`/`delattr` when the connection's [`Policy`](crate::Policy)
    /// allows those at all.
    Attribute {
        /// Whether the peer may assign or delete it (policy permitting).
        writable: bool,
    },
}

/// One exposed member: its name, kind, signature and documentation.
///
/// Members are the whole of what a peer can reach: an operation naming
/// anything else is denied, and `dir`/`inspect` list only these.
///
/// ```
/// use tether::{Member, MemberKind};
/// const ADD: Member = Member::method("add", "(a: int, b: int) -> int", "Add two numbers.");
/// assert_eq!(ADD.kind, MemberKind::Method);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The name the peer uses.
    pub name: Cow<'static, str>,
    /// Method or attribute.
    pub kind: MemberKind,
    /// A signature such as `(a: int, b: int) -> int`, or an attribute's type.
    pub signature: Cow<'static, str>,
    /// Help text.
    pub doc: Cow<'static, str>,
}

impl Member {
    /// A method member.
    pub const fn method(name: &'static str, signature: &'static str, doc: &'static str) -> Member {
        Member {
            name: Cow::Borrowed(name),
            kind: MemberKind::Method,
            signature: Cow::Borrowed(signature),
            doc: Cow::Borrowed(doc),
        }
    }

    /// A read-only attribute member.
    pub const fn attribute(name: &'static str, type_: &'static str, doc: &'static str) -> Member {
        Member {
            name: Cow::Borrowed(name),
            kind: MemberKind::Attribute { writable: false },
            signature: Cow::Borrowed(type_),
            doc: Cow::Borrowed(doc),
        }
    }

    /// The same member, made writable (for attributes).
    pub const fn writable(mut self) -> Member {
        if let MemberKind::Attribute { .. } = self.kind {
            self.kind = MemberKind::Attribute { writable: true };
        }
        self
    }

    /// A `Value` form of the member (a map with name, kind, signature, doc),
    /// as `inspect` sends it.
    pub(crate) fn to_value(&self) -> Value {
        let kind = match self.kind {
            MemberKind::Method => "method",
            MemberKind::Attribute { writable: false } => "attribute",
            MemberKind::Attribute { writable: true } => "writable attribute",
        };
        Value::map([
            ("name", Value::from(self.name.as_ref())),
            ("kind", Value::from(kind)),
            ("signature", Value::from(self.signature.as_ref())),
            ("doc", Value::from(self.doc.as_ref())),
        ])
    }

    pub(crate) fn from_value(value: Value) -> Result<Member> {
        let text = |key: &str| -> Result<String> {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| raise::protocol(format!("member description without '{key}'")))
        };
        let kind = match text("kind")?.as_str() {
            "method" => MemberKind::Method,
            "attribute" => MemberKind::Attribute { writable: false },
            "writable attribute" => MemberKind::Attribute { writable: true },
            other => return Err(raise::protocol(format!("unknown member kind '{other}'"))),
        };
        Ok(Member {
            name: Cow::Owned(text("name")?),
            kind,
            signature: Cow::Owned(text("signature")?),
            doc: Cow::Owned(text("doc")?),
        })
    }
}

/// What an operation knows about where it came from.
#[derive(Clone, Default)]
pub struct CallContext {
    /// The connection the request arrived on.
    pub(crate) connection: Option<Arc<Shared>>,
    /// `connection` as a [`Connection`] handle, made the first time object
    /// code asks for it: most calls never do, and a handle is an
    /// allocation and a count of the connection's users.
    pub(crate) handle: OnceLock<Connection>,
    pub(crate) deadline: Option<tokio::time::Instant>,
    /// Who the caller proved to be, when it came without a connection (a
    /// Cap'n Web session's bearer token).
    pub(crate) identity: Option<crate::PeerIdentity>,
}

impl CallContext {
    /// When the caller stops waiting for this call, if it said. Calls this
    /// one makes in turn can use what is left
    /// ([`NetRef::with_timeout`](crate::NetRef::with_timeout)); tether does
    /// so itself when it forwards a call to a third peer.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// The connection the request arrived on; `None` for a call made
    /// in-process on a local object.
    pub fn connection(&self) -> Option<&Connection> {
        let shared = self.connection.as_ref()?;
        Some(
            self.handle
                .get_or_init(|| Connection::from_shared(shared.clone())),
        )
    }

    /// Who the caller proved to be (a token's name or a certificate's
    /// subject); `None` when its connection was not authenticated or the
    /// call was made in-process. See [`PeerIdentity`](crate::PeerIdentity).
    pub fn peer_identity(&self) -> Option<&crate::PeerIdentity> {
        match &self.identity {
            Some(identity) => Some(identity),
            None => self.connection.as_ref()?.peer_identity.as_ref(),
        }
    }
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("connection", &self.connection.as_ref().map(|s| s.number))
            .field("deadline", &self.deadline)
            .field("identity", &self.identity)
            .finish()
    }
}

/// An object that can be served to a peer by reference.
///
/// Only [`type_name`](Object::type_name) is required. Everything a peer can
/// name is declared by [`members`](Object::members): tether checks every
/// `getattr`, `setattr`, `delattr` and `call_method` against that list before
/// your code runs, so an undeclared name is unreachable whatever the
/// dispatch methods do. The other operations have safe defaults: not
/// callable, not iterable, identity equality and hash, `close` does nothing.
///
/// Implement it by hand as below, or with [`#[tether::expose]`](crate::expose).
///
/// Each call starts on the connection's reader, in the order the peer's
/// requests arrived, and moves to a task of its own only when it first
/// waits. So a method that computes for a long time without awaiting
/// holds up the other calls of that connection meanwhile: put such work
/// in [`tokio::task::spawn_blocking`] (or yield now and then).
///
/// ```
/// use tether::{Args, BoxFuture, CallContext, Member, Object, Result, Value};
///
/// struct Calculator;
///
/// impl Object for Calculator {
///     fn type_name(&self) -> &str { "Calculator" }
///     fn members(&self) -> &[Member] {
///         const M: &[Member] = &[Member::method("add", "(a: int, b: int) -> int", "Add.")];
///         M
///     }
///     fn call_method<'a>(&'a self, name: &'a str, args: Args, _cx: &'a CallContext)
///         -> BoxFuture<'a, Result<Value>> {
///         Box::pin(async move {
///             match name {
///                 "add" => { let (a, b): (i64, i64) = args.parse()?; Ok((a + b).into()) }
///                 _ => unreachable!("tether only dispatches declared members"),
///             }
///         })
///     }
/// }
/// ```
pub trait Object: Any + Send + Sync {
    /// The type name shown in `repr`, errors and `inspect`.
    fn type_name(&self) -> &str;

    /// The members a peer may reach. Default: none.
    fn members(&self) -> &[Member] {
        &[]
    }

    /// Run the method `name` (always one of the declared methods).
    fn call_method<'a>(
        &'a self,
        name: &'a str,
        args: Args,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        let _ = (args, cx);
        Box::pin(async move { Err(raise::no_member(self.type_name(), name)) })
    }

    /// Read the attribute `name` (always one of the declared attributes).
    fn get_attr<'a>(&'a self, name: &'a str, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        let _ = cx;
        Box::pin(async move { Err(raise::no_member(self.type_name(), name)) })
    }

    /// Assign the writable attribute `name` (policy permitting).
    fn set_attr<'a>(
        &'a self,
        name: &'a str,
        value: Value,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<()>> {
        let _ = (value, cx);
        Box::pin(async move { Err(raise::no_member(self.type_name(), name)) })
    }

    /// Delete the writable attribute `name` (policy permitting).
    fn del_attr<'a>(&'a self, name: &'a str, cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        let _ = cx;
        Box::pin(async move { Err(raise::no_member(self.type_name(), name)) })
    }

    /// Call the object itself (callbacks, bound methods). Default: not callable.
    fn call<'a>(&'a self, args: Args, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        let _ = (args, cx);
        Box::pin(async move { Err(raise::unsupported(self.type_name(), "callable")) })
    }

    /// The next item, for iterable objects; `None` when exhausted.
    /// Default: not iterable.
    fn next<'a>(&'a self, cx: &'a CallContext) -> BoxFuture<'a, Result<Option<Value>>> {
        let _ = cx;
        Box::pin(async move { Err(raise::unsupported(self.type_name(), "iterable")) })
    }

    /// Up to `max` next items at once; fewer only when exhausted. The default
    /// calls [`next`](Object::next) repeatedly; override it when a batch is
    /// cheaper to produce in one go.
    fn next_batch<'a>(
        &'a self,
        max: usize,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<Value>>> {
        Box::pin(async move {
            let mut items = Vec::with_capacity(max.min(1024));
            while items.len() < max {
                match self.next(cx).await? {
                    Some(item) => items.push(item),
                    None => break,
                }
            }
            Ok(items)
        })
    }

    /// Release a held resource (a file, a process). Default: nothing to do.
    fn close<'a>(&'a self, cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        let _ = cx;
        Box::pin(async { Ok(()) })
    }

    /// Entering a `with` block on the object (Python's `__enter__`): what
    /// the block's `as` target gets. `None`, the default, is the object
    /// itself.
    fn enter<'a>(&'a self, cx: &'a CallContext) -> BoxFuture<'a, Result<Option<Value>>> {
        let _ = cx;
        Box::pin(async { Ok(None) })
    }

    /// Leaving a `with` block (Python's `__exit__`): `error` is what the
    /// block raised, if it raised. `true` suppresses that error, as an
    /// `__exit__` returning true does. The default closes the object
    /// ([`close`](Object::close)) and suppresses nothing.
    fn exit<'a>(
        &'a self,
        error: Option<Error>,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = error;
        Box::pin(async move { self.close(cx).await.map(|()| false) })
    }

    /// `repr`: a developer-facing description.
    fn repr(&self) -> String {
        format!("<{} object>", self.type_name())
    }

    /// `str`: a user-facing description. Default: the `repr`.
    fn str(&self) -> String {
        self.repr()
    }

    /// A hash; `None` (the default) hashes by identity.
    fn hash(&self) -> Option<i64> {
        None
    }

    /// Whether the object can be hashed at all (default: yes). One that
    /// cannot (a mutable collection, say) answers `hash` with a
    /// [`Type`](crate::ErrorKind::Type) error, which a Python peer sees as
    /// `TypeError: unhashable type`. `#[tether::expose(unhashable)]`
    /// declares it.
    fn hashable(&self) -> bool {
        true
    }

    /// Equality with another value; `None` (the default) compares identity.
    fn eq(&self, other: &Value) -> Option<bool> {
        let _ = other;
        None
    }
}
