//! [`PyObject`]: a Python peer's object held on the tether side.
//!
//! Wrapped in an ordinary [`NetRef`], so tether code calls a Python
//! function or reads a Python file exactly as it would a tether peer's
//! object. The dispatcher hands every operation on it to
//! [`PyObject::perform`], which sends the RPyC request it corresponds to:
//! the Python side's own policy decides (an object is governed by its
//! owner). Iteration asks `__iter__` once, then reads in batches with
//! `BUFFITER`. When the last clone drops, `DEL` tells Python how many times
//! it sent the object.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use super::boxing::{self, box_tuple, box_value, labelled};
use super::brine::Brine;
use super::handler;
use super::id_pack::IdPack;
use super::session::{Refs, State};
use crate::error::raise;
use crate::protocol::frame::Op;
use crate::service::dispatch::MAX_NEXT_BATCH;
use crate::service::object::{BoxFuture, CallContext, Member, Object};
use crate::{Args, Error, ErrorKind, FromValue, NetRef, Result, Value};

/// A Python object, by reference.
pub(crate) struct PyObject {
    pub(crate) state: Arc<State>,
    pub(crate) id_pack: IdPack,
    /// Times the id pack arrived while this proxy lived.
    pub(crate) received: AtomicU64,
    token: u64,
    /// What to read items from, once `__iter__` was asked.
    iterator: tokio::sync::Mutex<Option<Iterating>>,
}

enum Iterating {
    /// `__iter__` returned the object itself (files, generators).
    ItSelf,
    /// Another object (a list's iterator), held so it lives (and is
    /// released) with this one.
    Other { pack: IdPack, _alive: NetRef },
}

impl PyObject {
    pub(crate) fn new(state: Arc<State>, id_pack: IdPack, token: u64) -> PyObject {
        PyObject {
            state,
            id_pack,
            received: AtomicU64::new(1),
            token,
            iterator: tokio::sync::Mutex::new(None),
        }
    }

    /// Run `op` on the Python object.
    pub(crate) async fn perform(&self, op: Op, cx: &CallContext) -> Result<Value> {
        let timeout = cx
            .deadline()
            .map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        let me = boxing::yours(&self.id_pack);
        let text = |s: &str| labelled(1, Brine::Str(s.to_string()));
        match op {
            Op::GetRoot => Err(raise::protocol("get root names no object")),
            Op::GetAttr(name) => {
                self.ask(handler::GETATTR, vec![me, text(&name)], timeout)
                    .await
            }
            Op::SetAttr(name, value) => {
                let mut items = vec![me, text(&name)];
                self.ask_with(handler::SETATTR, &mut items, &[value], timeout)
                    .await
                    .map(|_| Value::None)
            }
            Op::DelAttr(name) => self
                .ask(handler::DELATTR, vec![me, text(&name)], timeout)
                .await
                .map(|_| Value::None),
            Op::Call(args) => {
                let (positional, named) = split(args);
                let mut items = vec![me];
                self.ask_with(handler::CALL, &mut items, &[positional, named], timeout)
                    .await
            }
            Op::CallMethod(name, args) => {
                let (positional, named) = split(args);
                let mut items = vec![me, text(&name)];
                self.ask_with(handler::CALLATTR, &mut items, &[positional, named], timeout)
                    .await
            }
            Op::Dir => self.ask(handler::DIR, vec![me], timeout).await,
            Op::Repr => self.ask(handler::REPR, vec![me], timeout).await,
            Op::Str => self.ask(handler::STR, vec![me], timeout).await,
            Op::Hash => self.ask(handler::HASH, vec![me], timeout).await,
            Op::Eq(other) => {
                let mut items = vec![me];
                let result = self
                    .ask_with(
                        handler::CMP,
                        &mut items,
                        &[other, Value::from("__eq__")],
                        timeout,
                    )
                    .await;
                match result {
                    Ok(Value::Bool(b)) => Ok(Value::Bool(b)),
                    // NotImplemented: Python falls back to identity, and a
                    // Python object is never identical to anything else.
                    Err(e) if e.kind() == ErrorKind::Type => Ok(Value::Bool(false)),
                    Ok(other) => Err(raise::type_mismatch("bool", other.type_name())),
                    Err(e) => Err(e),
                }
            }
            Op::Inspect => {
                let pack = labelled(1, self.id_pack.to_brine());
                let methods = self.ask(handler::INSPECT, vec![pack], timeout).await?;
                Ok(Value::List(
                    methods
                        .as_list()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|m| match m.as_list()? {
                            [Value::Str(name), doc] => Some(
                                Member {
                                    name: name.clone().into(),
                                    kind: crate::MemberKind::Method,
                                    signature: "(...)".into(),
                                    doc: doc.as_str().unwrap_or("").to_string().into(),
                                }
                                .to_value(),
                            ),
                            _ => None,
                        })
                        .collect(),
                ))
            }
            Op::Next(max) => self.next_items(max.min(MAX_NEXT_BATCH), timeout).await,
            Op::Close => self
                .ask(
                    handler::CTXEXIT,
                    vec![me, labelled(1, Brine::None)],
                    timeout,
                )
                .await
                .map(|_| Value::None),
        }
    }

    /// Up to `max` next items: `__iter__` once, then `BUFFITER`.
    async fn next_items(&self, max: u32, timeout: Option<Duration>) -> Result<Value> {
        let mut iterating = self.iterator.lock().await;
        if iterating.is_none() {
            let me = boxing::yours(&self.id_pack);
            let args = labelled(1, Brine::Str("__iter__".into()));
            let empty = labelled(1, Brine::Tuple(vec![]));
            let it = self
                .ask(
                    handler::CALLATTR,
                    vec![me, args, empty.clone(), empty],
                    timeout,
                )
                .await
                .map_err(|e| match e.type_name() {
                    Some("AttributeError") | Some("TypeError") => Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "'{}' object is not iterable: {}",
                            self.id_pack.name,
                            e.message()
                        ),
                    ),
                    _ => e,
                })?;
            let Value::Ref(it) = it else {
                return Err(raise::type_mismatch("an iterator", it.type_name()));
            };
            *iterating = Some(match it.downcast_ref::<PyObject>() {
                Some(py) if py.id_pack == self.id_pack => Iterating::ItSelf,
                Some(py) => Iterating::Other {
                    pack: py.id_pack.clone(),
                    _alive: it.clone(),
                },
                None => return Err(raise::type_mismatch("a Python iterator", "a tether object")),
            });
        }
        let target = match iterating.as_ref() {
            Some(Iterating::Other { pack, .. }) => boxing::yours(pack),
            _ => boxing::yours(&self.id_pack),
        };
        let count = labelled(1, Brine::Int(max as i128));
        let items = self
            .ask(handler::BUFFITER, vec![target, count], timeout)
            .await?;
        match items {
            Value::List(items) if items.len() <= max as usize => Ok(Value::List(items)),
            Value::List(items) => Err(raise::protocol(format!(
                "asked for {max} items, got {}",
                items.len()
            ))),
            other => Err(raise::type_mismatch("a tuple of items", other.type_name())),
        }
    }

    async fn ask(
        &self,
        handler: i64,
        items: Vec<Brine>,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        self.state.request(handler, box_tuple(items), timeout).await
    }

    /// Send `handler` with `items` followed by `values` boxed.
    async fn ask_with(
        &self,
        handler: i64,
        items: &mut Vec<Brine>,
        values: &[Value],
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let refs = Refs::new(&self.state);
        for value in values {
            match box_value(value, &refs) {
                Ok(b) => items.push(b),
                Err(e) => {
                    refs.undo();
                    return Err(e);
                }
            }
        }
        drop(refs);
        self.ask(handler, std::mem::take(items), timeout).await
    }
}

/// Arguments as RPyC's CALL takes them: a tuple, and a tuple of
/// `(name, value)` pairs.
fn split(args: Args) -> (Value, Value) {
    let named = args
        .named
        .into_iter()
        .map(|(k, v)| Value::List(vec![Value::Str(k), v]))
        .collect();
    (Value::List(args.positional), Value::List(named))
}

impl Drop for PyObject {
    fn drop(&mut self) {
        let received = *self.received.get_mut();
        self.state
            .proxy_dropped(&self.id_pack, self.token, received);
    }
}

impl crate::service::forward::Forwarded for PyObject {
    fn perform<'a>(&'a self, op: Op, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        Box::pin(PyObject::perform(self, op, cx))
    }
}

impl Object for PyObject {
    fn type_name(&self) -> &str {
        &self.id_pack.name
    }

    // Every operation reaches `perform` through the dispatcher; these are
    // for code that calls the trait directly.
    fn call<'a>(&'a self, args: Args, cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        Box::pin(self.perform(Op::Call(args), cx))
    }

    fn next_batch<'a>(
        &'a self,
        max: usize,
        cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<Value>>> {
        Box::pin(async move {
            let max = max.min(MAX_NEXT_BATCH as usize) as u32;
            Vec::<Value>::from_value(self.perform(Op::Next(max), cx).await?)
        })
    }

    fn close<'a>(&'a self, cx: &'a CallContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.perform(Op::Close, cx).await.map(drop) })
    }

    fn repr(&self) -> String {
        format!("<Python {} object>", self.id_pack.name)
    }
}

impl std::fmt::Debug for PyObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<remote {} {:#x} on RPyC connection {}>",
            self.id_pack.name, self.id_pack.instance_id, self.state.number
        )
    }
}

/// For the dispatcher: the Python object behind `netref`, if it is one.
pub(crate) fn as_python(object: &dyn Object) -> Option<&PyObject> {
    (object as &dyn std::any::Any).downcast_ref::<PyObject>()
}
