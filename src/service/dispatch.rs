//! From one operation to one call on a local object, with every check in
//! one place.
//!
//! Every operation that names a member (getattr, setattr, delattr, call
//! method) is checked against the object's declared members here, before
//! any object code runs; so are the policy switches. There is no other path
//! from the wire to an object, so no handler can skip the check (RPyC's
//! CVE-2019-16328 was one that did).

use crate::error::raise;
use crate::netref::{LocalRef, NetRef, Target};
use crate::protocol::frame::Op;
use crate::service::builtin::bound_method::BoundMethod;
use crate::service::object::{CallContext, Member, MemberKind, Object};
use crate::service::policy::Policy;
use crate::{Args, Error, ErrorKind, Result, Value};

pub(crate) use crate::protocol::MAX_NEXT_BATCH;

/// The method a `with` block's start calls, as in Python: it reaches
/// [`Object::enter`], declared or not. Its arguments: none.
pub(crate) const ENTER: &str = "__enter__";
/// The method a `with` block's end calls: it reaches [`Object::exit`].
/// Its arguments: the error's type name and message, or two `None`s.
pub(crate) const EXIT: &str = "__exit__";

/// Run `op` on `local` for a caller governed by `policy`.
pub(crate) async fn dispatch(
    local: &LocalRef,
    op: Op,
    policy: &Policy,
    cx: &CallContext,
) -> Result<Value> {
    let obj: &dyn Object = &local.object;
    // A Python or JavaScript object held over RPyC or Cap'n Web: its
    // owner's policy governs it, as for any remote object, so every
    // operation is forwarded unchecked here.
    if let Some(foreign) = crate::service::forward::as_forwarded(obj) {
        return foreign.perform(op, cx).await;
    }
    match op {
        Op::GetRoot => Err(raise::protocol("get root names no object")),
        Op::GetAttr(name) => match member(obj, &name)?.kind {
            MemberKind::Method => Ok(Value::Ref(NetRef::new(BoundMethod {
                target: local.clone(),
                name,
            }))),
            MemberKind::Attribute { .. } => obj
                .get_attr(&name, cx)
                .await
                .map_err(|e| located(e, obj, &name)),
        },
        Op::SetAttr(name, value) => {
            writable(obj, &name, policy.setattr_allowed(), "setattr")?;
            obj.set_attr(&name, value, cx)
                .await
                .map_err(|e| located(e, obj, &name))?;
            Ok(Value::None)
        }
        Op::DelAttr(name) => {
            writable(obj, &name, policy.delattr_allowed(), "delattr")?;
            obj.del_attr(&name, cx)
                .await
                .map_err(|e| located(e, obj, &name))?;
            Ok(Value::None)
        }
        Op::CallMethod(name, args) => call_declared(local, &name, args, cx).await,
        Op::Call(args) => obj.call(args, cx).await,
        Op::Dir => Ok(Value::List(
            obj.members()
                .iter()
                .map(|m| Value::from(m.name.as_ref()))
                .collect(),
        )),
        Op::Inspect => Ok(Value::List(
            obj.members().iter().map(Member::to_value).collect(),
        )),
        Op::Repr => Ok(Value::Str(obj.repr())),
        Op::Str => Ok(Value::Str(obj.str())),
        Op::Hash if !obj.hashable() => Err(Error::new(
            ErrorKind::Type,
            format!("unhashable type: '{}'", obj.type_name()),
        )),
        Op::Hash => Ok(Value::Int(obj.hash().unwrap_or(local.uid as i64))),
        Op::Eq(other) => Ok(Value::Bool(
            obj.eq(&other)
                .unwrap_or_else(|| matches!(&other, Value::Ref(r) if r.uid() == local.uid)),
        )),
        Op::Next(max) => {
            let max = max.min(MAX_NEXT_BATCH) as usize;
            let items = obj.next_batch(max, cx).await?;
            if items.len() > max {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "{}::next_batch returned {} items for a batch of {max}",
                        obj.type_name(),
                        items.len()
                    ),
                ));
            }
            Ok(Value::List(items))
        }
        Op::Close => obj.close(cx).await.map(|()| Value::None),
    }
}

/// Call the method `name` of `local` for a caller: [`dispatch`] of
/// `Op::CallMethod`, with the name lent rather than moved, so a caller
/// that still needs it (to describe a failure) need not copy it first.
pub(crate) async fn call_method(
    local: &LocalRef,
    name: &str,
    args: Args,
    cx: &CallContext,
) -> Result<Value> {
    // As in `dispatch`: another protocol's object is forwarded unchecked.
    let obj: &dyn Object = &local.object;
    if let Some(foreign) = crate::service::forward::as_forwarded(obj) {
        return foreign
            .perform(Op::CallMethod(name.to_string(), args), cx)
            .await;
    }
    call_declared(local, name, args, cx).await
}

/// Call the method `name` of `local`, a tether object: `__enter__` and
/// `__exit__` reach [`Object::enter`] and [`Object::exit`]; any other
/// name must be a declared method.
async fn call_declared(
    local: &LocalRef,
    name: &str,
    args: Args,
    cx: &CallContext,
) -> Result<Value> {
    let obj: &dyn Object = &local.object;
    match name {
        ENTER => {
            args.parse::<()>()?;
            match obj.enter(cx).await? {
                Some(value) => Ok(value),
                None => Ok(Value::Ref(NetRef::from_target(Target::Local(
                    local.clone(),
                )))),
            }
        }
        EXIT => {
            let (type_name, message) = args.parse::<(Option<String>, Option<String>)>()?;
            let error = match (type_name, message) {
                (None, None) => None,
                (type_name, message) => Some(Error::app(
                    type_name.unwrap_or_else(|| "Exception".into()),
                    message.unwrap_or_default(),
                )),
            };
            obj.exit(error, cx).await.map(Value::Bool)
        }
        _ => {
            if member(obj, name)?.kind != MemberKind::Method {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "'{}.{name}' is an attribute, not a method: read it instead of calling it",
                        obj.type_name()
                    ),
                ));
            }
            obj.call_method(name, args, cx)
                .await
                .map_err(|e| located(e, obj, &format!("{name}()")))
        }
    }
}

/// The declared member `name`, or the same denial whether it is hidden or
/// missing (so names never leak).
fn member<'o>(obj: &'o dyn Object, name: &str) -> Result<&'o Member> {
    let members = obj.members();
    members
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| no_member(obj.type_name(), name, members))
}

/// The denial for `name`, which is not among `members`, with the nearest
/// of them as a suggestion when one is close: "did you mean 'add'?". Only
/// declared names are offered, which the caller may list anyway (`dir`),
/// so a hidden name is never revealed.
pub(crate) fn no_member(type_name: &str, name: &str, members: &[Member]) -> Error {
    let near = nearest(name, members.iter().map(|m| m.name.as_ref()));
    raise::no_member_near(type_name, name, near)
}

/// The candidate closest to `name` by edit distance (a swap of two
/// neighbours counts once), if close enough to be a slip: at most one edit
/// for short names, one more per four characters. The first of equals wins.
fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, c)| {
            let longer = name.chars().count().max(c.chars().count());
            *distance <= 1.max(longer / 4) && *distance < longer
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn writable(obj: &dyn Object, name: &str, allowed: bool, what: &str) -> Result<()> {
    let kind = member(obj, name)?.kind;
    if !allowed {
        return Err(raise::denied(format!(
            "{what} is not allowed on this connection (see Policy::allow_{what})"
        )));
    }
    match kind {
        MemberKind::Attribute { writable: true } => Ok(()),
        _ => Err(raise::denied(format!(
            "'{}' object's member '{name}' is read-only",
            obj.type_name()
        ))),
    }
}

/// Log a peer's request that failed on connection `connection`: `call`
/// (as [`Op::describe`] says it) on `object`. Errors that object code
/// raised (an application error, or a remote one from a peer it called in
/// turn) are logged at info, so a server shows them by default; errors
/// tether answered with around the object (denied, bad arguments,
/// unsupported, limits...) at debug.
pub(crate) fn log_failed_call(connection: u64, call: &str, object: &NetRef, err: &Error) {
    match err.kind() {
        ErrorKind::Application | ErrorKind::Remote => tracing::info!(
            connection,
            call,
            object = object.describe().as_str(),
            error = %err,
            "object raised an error"
        ),
        kind => tracing::debug!(
            connection,
            call,
            object = object.describe().as_str(),
            kind = kind.as_str(),
            error = %err,
            "call failed"
        ),
    }
}

/// Put the member into argument errors, so the caller learns which method
/// refused which argument.
fn located(err: Error, obj: &dyn Object, what: &str) -> Error {
    match err.kind() {
        ErrorKind::BadArguments | ErrorKind::Type if err.remote().is_none() => {
            err.context(format!("{}.{what}", obj.type_name()))
        }
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn slips_are_matched_and_strangers_are_not() {
        let names = ["add", "echo", "label", "notes", "increment", "a"];
        let near = |typed: &str| nearest(typed, names.iter().copied());
        assert_eq!(near("ad"), Some("add"));
        assert_eq!(near("Add"), Some("add"));
        assert_eq!(near("ehco"), Some("echo"));
        assert_eq!(near("notse"), Some("notes"));
        assert_eq!(near("incremnt"), Some("increment"));
        assert_eq!(near("b"), None, "a one-letter name replaced is no slip");
        assert_eq!(near("sub"), None);
        assert_eq!(near("add"), None, "the name itself is not a suggestion");
        assert_eq!(nearest("x", std::iter::empty()), None);
    }
}
