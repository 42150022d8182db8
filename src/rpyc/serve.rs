//! Serving a Python peer's requests: each RPyC handler becomes one of
//! tether's own operations on the object, run through the same dispatcher
//! (and so the same member and policy checks) as a native request.
//!
//! | handler | operation |
//! | --- | --- |
//! | GETATTR, SETATTR, DELATTR | `GetAttr`, `SetAttr`, `DelAttr` (name checked) |
//! | CALL | `Call` (keyword arguments become named ones) |
//! | CALLATTR | `CallMethod` (name checked); `__iter__` returns the object, `__next__` is `Next(1)`, `__enter__`/`__exit__` reach the object's enter and exit (the exception as its class name and `str`) |
//! | CMP | `__eq__`/`__ne__` are `Eq`; any other comparison is `CallMethod` of that dunder, so it must be a declared member (CVE-2019-16328) |
//! | REPR, STR, HASH, DIR | `Repr`, `Str`, `Hash`, `Dir` |
//! | BUFFITER | `Next(count)` |
//! | CTXEXIT | the object's exit (`Object::exit`), told the block's exception as its class name and `str`; its answer suppresses it or not |
//! | INSPECT | the object's methods plus the dunders above |
//! | PICKLE | refused: pickling is never honoured |
//!
//! A name with RPyC's `exposed_` prefix is served by the member without it.

use std::sync::Arc;

use super::handler;
use super::id_pack::IdPack;
use super::remote::as_python;
use super::session::State;
use super::vinegar;
use crate::error::raise;
use crate::netref::Target;
use crate::protocol::frame::{Label, Op};
use crate::service::dispatch::{log_failed_call, EXIT, MAX_NEXT_BATCH};
use crate::service::object::CallContext;
use crate::{Args, Error, NetRef, Result, Value};

/// How a request ended, short of success.
pub(crate) enum Raised {
    /// The iterator is exhausted: RPyC's `StopIteration` (the integer 1).
    StopIteration,
    /// An error, with where it happened.
    Error(Error, String),
}

impl From<(Error, String)> for Raised {
    fn from((err, location): (Error, String)) -> Raised {
        if vinegar::is_stop_iteration(&err) {
            return Raised::StopIteration;
        }
        Raised::Error(err, location)
    }
}

/// Dunders every tether object's Python proxy forwards (INSPECT).
const PROXY_DUNDERS: &[(&str, &str)] = &[
    ("__call__", "Call the object (if it is callable)."),
    ("__iter__", "Iterate the object (if it is iterable)."),
    ("__next__", "The next item (if it is an iterator)."),
    (
        "__enter__",
        "Enter a with block; leaving it closes the object.",
    ),
];

/// Serve request `handler` with unboxed `args`.
pub(crate) async fn serve(
    state: &Arc<State>,
    handler: i64,
    args: Vec<Value>,
) -> Result<Value, Raised> {
    let location = format!(
        "serving {} (RPyC connection {}, root {})",
        handler::name(handler),
        state.number,
        state.root.describe()
    );
    let at = |e: Error| Raised::from((e, location.clone()));
    let cx = CallContext {
        connection: None,
        handle: Default::default(),
        deadline: tokio::time::Instant::now().checked_add(state.config.call_timeout),
        identity: None,
    };
    let mut args = args.into_iter();
    let mut next = |what: &str| {
        args.next().ok_or_else(|| {
            at(raise::bad_args(format!(
                "{} without {what}",
                handler::name(handler)
            )))
        })
    };
    match handler {
        handler::PING => Ok(next("data").unwrap_or(Value::None)),
        handler::GETROOT => Ok(Value::Ref(state.root.clone())),
        handler::GETATTR => {
            let (obj, name) = (
                object(next("an object")?).map_err(at)?,
                name(next("a name")?).map_err(at)?,
            );
            if name == "__doc__" && as_python(target_object(&obj)).is_none() {
                return Ok(Value::None);
            }
            run(state, &obj, Op::GetAttr(name), &cx).await.map_err(at)
        }
        handler::SETATTR => {
            let (obj, name) = (
                object(next("an object")?).map_err(at)?,
                name(next("a name")?).map_err(at)?,
            );
            let value = next("a value")?;
            run(state, &obj, Op::SetAttr(name, value), &cx)
                .await
                .map_err(at)
        }
        handler::DELATTR => {
            let (obj, name) = (
                object(next("an object")?).map_err(at)?,
                name(next("a name")?).map_err(at)?,
            );
            run(state, &obj, Op::DelAttr(name), &cx).await.map_err(at)
        }
        handler::CALL => {
            let obj = object(next("an object")?).map_err(at)?;
            let call_args =
                call_args(next("arguments")?, args_next_or_empty(&mut next)).map_err(at)?;
            run(state, &obj, Op::Call(call_args), &cx).await.map_err(at)
        }
        handler::CALLATTR => {
            let (obj, name) = (
                object(next("an object")?).map_err(at)?,
                name(next("a name")?).map_err(at)?,
            );
            let call_args =
                call_args(next("arguments")?, args_next_or_empty(&mut next)).map_err(at)?;
            call_attr(state, &obj, name, call_args, &cx)
                .await
                .map_err(|e| match e {
                    Raised::Error(e, _) => at(e),
                    stop => stop,
                })
        }
        handler::REPR => simple(state, next("an object")?, Op::Repr, &cx)
            .await
            .map_err(at),
        handler::STR => simple(state, next("an object")?, Op::Str, &cx)
            .await
            .map_err(at),
        handler::HASH => simple(state, next("an object")?, Op::Hash, &cx)
            .await
            .map_err(at),
        handler::DIR => simple(state, next("an object")?, Op::Dir, &cx)
            .await
            .map_err(at),
        handler::CMP => {
            let obj = object(next("an object")?).map_err(at)?;
            let other = next("another object")?;
            let op = name(next("an operator").unwrap_or(Value::from("__cmp__"))).map_err(at)?;
            compare(state, &obj, other, &op, &cx).await.map_err(at)
        }
        handler::BUFFITER => {
            let obj = object(next("an object")?).map_err(at)?;
            let count = next("a count")?
                .as_int()
                .unwrap_or(0)
                .clamp(0, MAX_NEXT_BATCH as i64);
            run(state, &obj, Op::Next(count as u32), &cx)
                .await
                .map_err(at)
        }
        handler::CTXEXIT => {
            // `with` on a netref sends the block's exception (or None).
            let obj = object(next("an object")?).map_err(at)?;
            let raised = raised_in_with(next("an exception").unwrap_or_default())
                .await
                .map_err(at)?;
            // Truthy suppresses the exception, as Python's `__exit__` does.
            run(state, &obj, Op::CallMethod(EXIT.to_string(), raised), &cx)
                .await
                .map_err(at)
        }
        handler::INSPECT => inspect(state, next("an id pack")?, &cx).await.map_err(at),
        handler::PICKLE => Err(at(Error::app("ValueError", "pickling is disabled"))),
        handler::OLDSLICING => Err(at(raise::unsupported(
            "tether object",
            "sliceable the Python 2 way",
        ))),
        handler::INSTANCECHECK => Ok(Value::Bool(false)),
        other => Err(at(Error::app(
            "ValueError",
            format!("unknown RPyC handler {other}"),
        ))),
    }
}

fn args_next_or_empty(next: &mut impl FnMut(&str) -> Result<Value, Raised>) -> Value {
    next("keyword arguments").unwrap_or(Value::List(Vec::new()))
}

/// Run `op` on one of our objects under the connection's policy.
async fn run(state: &State, obj: &NetRef, op: Op, cx: &CallContext) -> Result<Value> {
    let label = Label::of(&op);
    obj.serve(op, &state.config.policy, cx)
        .await
        .inspect_err(|e| log_failed_call(state.number, &label.describe(), obj, e))
}

async fn simple(state: &State, obj: Value, op: Op, cx: &CallContext) -> Result<Value> {
    run(state, &object(obj)?, op, cx).await
}

async fn call_attr(
    state: &State,
    obj: &NetRef,
    name: String,
    args: Args,
    cx: &CallContext,
) -> Result<Value, Raised> {
    let err = |e: Error| Raised::Error(e, String::new());
    // A Python object of another connection forwards its dunders as they are.
    if as_python(target_object(obj)).is_some() {
        return run(state, obj, Op::CallMethod(name, args), cx)
            .await
            .map_err(err);
    }
    match name.as_str() {
        "__iter__" => Ok(Value::Ref(obj.clone())),
        "__next__" | "next" => {
            let items = run(state, obj, Op::Next(1), cx).await.map_err(err)?;
            match items {
                Value::List(mut items) if items.len() == 1 => Ok(items.remove(0)),
                Value::List(items) if items.is_empty() => Err(Raised::StopIteration),
                other => Err(err(raise::type_mismatch("one item", other.type_name()))),
            }
        }
        "__exit__" => {
            // `__exit__(exc_type, exc_value, traceback)`.
            let exception = args.positional.into_iter().nth(1).unwrap_or_default();
            let raised = raised_in_with(exception).await.map_err(err)?;
            run(state, obj, Op::CallMethod(name, raised), cx)
                .await
                .map_err(err)
        }
        _ => run(state, obj, Op::CallMethod(name, args), cx)
            .await
            .map_err(err),
    }
}

/// The exception a Python `with` block raised (`None` if it did not), as
/// tether's `__exit__` takes it: the exception's class name and message,
/// asked of the client; or two `None`s.
///
/// A netref's `with` sends only the exception's class (rpyc's CTXEXIT,
/// "can't pass type nor traceback"), so the message is then empty, as
/// on rpyc's own server; an `__exit__` called by name gets the exception
/// itself. Both are named by their `repr` (`<class 'ValueError'>`,
/// `ValueError('no funds')`): a client does not let its objects'
/// `__class__` be read.
async fn raised_in_with(exception: Value) -> Result<Args> {
    let Value::Ref(exception) = exception else {
        return Ok(Args::new().arg(Value::None).arg(Value::None));
    };
    let repr = exception.repr().await?;
    let (type_name, message) = match repr.strip_prefix("<class '") {
        Some(class) => {
            let path = class.trim_end_matches("'>");
            let name = path.rsplit('.').next().unwrap_or(path);
            (name.to_string(), String::new())
        }
        None => {
            let name = repr.split_once('(').map_or("", |(name, _)| name);
            let name = if name.is_empty() { "Exception" } else { name };
            (name.to_string(), exception.str().await?)
        }
    };
    Ok(Args::new().arg(type_name).arg(message))
}

/// CMP: equality is identity unless the object defines it; every other
/// comparison needs the dunder as a declared member.
async fn compare(
    state: &State,
    obj: &NetRef,
    other: Value,
    op: &str,
    cx: &CallContext,
) -> Result<Value> {
    match op {
        "__eq__" => run(state, obj, Op::Eq(other), cx).await,
        "__ne__" => match run(state, obj, Op::Eq(other), cx).await? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            v => Err(raise::type_mismatch("bool", v.type_name())),
        },
        _ => {
            run(
                state,
                obj,
                Op::CallMethod(op.to_string(), Args::new().arg(other)),
                cx,
            )
            .await
        }
    }
}

/// INSPECT: the methods the Python proxy class should forward.
async fn inspect(state: &State, pack: Value, cx: &CallContext) -> Result<Value> {
    let pack = id_pack(&pack).ok_or_else(|| raise::bad_args("INSPECT without an id pack"))?;
    let obj = state.exported(&pack)?;
    let members = run(state, &obj, Op::Inspect, cx).await?;
    let mut methods: Vec<Value> = PROXY_DUNDERS
        .iter()
        .map(|(name, doc)| Value::List(vec![Value::from(*name), Value::from(*doc)]))
        .collect();
    for member in members.as_list().unwrap_or_default() {
        if member.get("kind").and_then(Value::as_str) != Some("method") {
            continue;
        }
        let (Some(name), doc) = (
            member.get("name").and_then(Value::as_str),
            member.get("doc"),
        ) else {
            continue;
        };
        if PROXY_DUNDERS.iter().any(|(n, _)| *n == name) {
            continue;
        }
        methods.push(Value::List(vec![
            Value::from(name),
            doc.cloned().unwrap_or_default(),
        ]));
    }
    Ok(Value::List(methods))
}

fn id_pack(v: &Value) -> Option<IdPack> {
    match v.as_list()? {
        [Value::Str(name), Value::Int(class_id), Value::Int(instance_id)] => Some(IdPack {
            name: name.clone(),
            class_id: *class_id as i128,
            instance_id: *instance_id as i128,
        }),
        _ => None,
    }
}

fn object(v: Value) -> Result<NetRef> {
    match v {
        Value::Ref(r) => Ok(r),
        other => Err(raise::type_mismatch(
            "an object reference",
            other.type_name(),
        )),
    }
}

/// The object behind a reference, for telling Python objects apart.
fn target_object(r: &NetRef) -> &dyn crate::Object {
    match &r.target {
        Target::Local(local) => &local.object,
        Target::Remote(_) => &crate::service::builtin::empty::Empty,
    }
}

/// An attribute name; RPyC's `exposed_` prefix names the same member.
fn name(v: Value) -> Result<String> {
    let name = match v {
        Value::Str(s) => s,
        Value::Bytes(b) => {
            String::from_utf8(b.into()).map_err(|_| raise::bad_args("a name that is not UTF-8"))?
        }
        other => return Err(raise::type_mismatch("an attribute name", other.type_name())),
    };
    Ok(match name.strip_prefix("exposed_") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => name,
    })
}

/// CALL's `args` tuple and `kwargs` tuple of `(name, value)` pairs.
fn call_args(positional: Value, named: Value) -> Result<Args> {
    let Value::List(positional) = positional else {
        return Err(raise::type_mismatch(
            "an argument tuple",
            positional.type_name(),
        ));
    };
    let Value::List(pairs) = named else {
        return Err(raise::type_mismatch(
            "a keyword argument tuple",
            named.type_name(),
        ));
    };
    let named = pairs
        .into_iter()
        .map(|pair| match pair {
            Value::List(kv) => match <[Value; 2]>::try_from(kv) {
                Ok([Value::Str(k), v]) => Ok((k, v)),
                _ => Err(raise::bad_args(
                    "a keyword argument that is not a (name, value) pair",
                )),
            },
            _ => Err(raise::bad_args(
                "a keyword argument that is not a (name, value) pair",
            )),
        })
        .collect::<Result<_>>()?;
    Ok(Args { positional, named })
}
