//! From one operation to one call on a local object, with every check in
//! one place.
//!
//! Every operation that names a member (getattr, setattr, delattr, call
//! method) is checked against the object's declared members here, before
//! any object code runs; so are the policy switches. There is no other path
//! from the wire to an object, so no handler can skip the check (RPyC's
//! CVE-2019-16328 was one that did).

use crate::error::raise;
use crate::netref::{LocalRef, NetRef};
use crate::protocol::frame::Op;
use crate::service::builtin::bound_method::BoundMethod;
use crate::service::object::{CallContext, Member, MemberKind, Object};
use crate::service::policy::Policy;
use crate::{Error, ErrorKind, Result, Value};

pub(crate) use crate::protocol::MAX_NEXT_BATCH;

/// Run `op` on `local` for a caller governed by `policy`.
pub(crate) async fn dispatch(
    local: &LocalRef,
    op: Op,
    policy: &Policy,
    cx: &CallContext,
) -> Result<Value> {
    let obj: &dyn Object = &local.object;
    // A Python object held over RPyC: its owner's policy governs it, as for
    // any remote object, so every operation is forwarded unchecked here.
    if let Some(python) = crate::rpyc::remote::as_python(obj) {
        return python.perform(op, cx).await;
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
        Op::CallMethod(name, args) => {
            if member(obj, &name)?.kind != MemberKind::Method {
                return Err(raise::unsupported(
                    &format!("{}.{name}", obj.type_name()),
                    "a method",
                ));
            }
            obj.call_method(&name, args, cx)
                .await
                .map_err(|e| located(e, obj, &format!("{name}()")))
        }
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

/// The declared member `name`, or the same denial whether it is hidden or
/// missing (so names never leak).
fn member<'o>(obj: &'o dyn Object, name: &str) -> Result<&'o Member> {
    obj.members()
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| raise::no_member(obj.type_name(), name))
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
