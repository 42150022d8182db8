//! Reading an expression: its plain values at once, its references
//! against the session's tables, its calls as work to run.
//!
//! Everything that names a table entry is looked up while the message is
//! read, so a later message cannot change what an earlier one meant; the
//! calls become one future, which runs each call after its arguments, and
//! each call on an unfinished answer in its turn on that answer.

use std::sync::Arc;

use serde_json::Value as Json;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::session::{no_export, shorten, Export, Session, Tables};
use super::wire;
use crate::error::raise;
use crate::protocol::frame::Op;
use crate::service::answers::{measure, Answer, Outcome};
use crate::trace::ServeSpan;
use crate::{Args, BoxFuture, DateTime, Error, ErrorKind, Result, Value};

/// An expression, read.
pub(super) enum Eval {
    /// A value known now.
    Ready(Value),
    /// A value that calls must produce first.
    Later(BoxFuture<'static, Outcome>),
}

impl Eval {
    fn failed(err: Error, location: &str) -> Eval {
        let err = err.to_remote(location);
        Eval::Later(Box::pin(std::future::ready(Err(err))))
    }

    fn into_future(self) -> BoxFuture<'static, Outcome> {
        match self {
            Eval::Ready(value) => Box::pin(std::future::ready(Ok(value))),
            Eval::Later(work) => work,
        }
    }
}

/// What reading one message needs: the tables, and the budget of what its
/// references to earlier answers may copy.
pub(super) struct Reading<'t> {
    pub(super) tables: &'t mut Tables,
    pub(super) budget: Budget,
}

/// Bytes (about, as [`measure`] counts) that the values copied from
/// earlier answers into one message may take: without it, a message naming
/// one answer thousands of times would make thousands of copies.
#[derive(Clone)]
pub(super) struct Budget(Arc<AtomicUsize>);

impl Budget {
    pub(super) fn new(bytes: usize) -> Budget {
        Budget(Arc::new(AtomicUsize::new(bytes)))
    }

    /// `outcome`, if its value fits in what is left (which it then takes).
    fn charge(&self, outcome: Outcome) -> Outcome {
        let value = outcome?;
        let left = self.0.load(Ordering::Relaxed);
        let taken = measure(&value, left).and_then(|size| {
            self.0
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(size)
                })
                .ok()
        });
        match taken {
            Some(_) => Ok(value),
            None => Err(raise::limit(
                "the values this message copies from earlier answers exceed the message \
                 size limit (capnweb::Config::max_message)",
            )
            .to_remote("reading the message")),
        }
    }
}

/// What a reference names.
enum Subject {
    Value(Value),
    Answer(Answer),
}

/// One step of a property path.
#[derive(Clone)]
enum Key {
    Name(String),
    Index(usize),
}

/// A path followed, and called when `.1`: `.counter.add()`, for a span.
struct Walk<'a>(&'a [Key], bool);

impl std::fmt::Display for Walk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for key in self.0 {
            write!(f, "{key}")?;
        }
        if self.1 {
            f.write_str("()")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Name(name) => write!(f, ".{name}"),
            Key::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl Session {
    /// Read `expression`. An error breaks the protocol; a value tether
    /// cannot take (a date, a stream) fails only the call it is in.
    pub(super) fn eval(self: &Arc<Self>, expression: &Json, r: &mut Reading<'_>) -> Result<Eval> {
        match expression {
            Json::Null => Ok(Eval::Ready(Value::None)),
            Json::Bool(b) => Ok(Eval::Ready(Value::Bool(*b))),
            Json::Number(n) => Ok(Eval::Ready(wire::number(n))),
            Json::String(s) => Ok(Eval::Ready(Value::Str(s.clone()))),
            Json::Object(fields) => {
                let mut keys = Vec::with_capacity(fields.len());
                let mut values = Vec::with_capacity(fields.len());
                for (key, value) in fields {
                    keys.push(Value::Str(key.clone()));
                    values.push(self.eval(value, r)?);
                }
                Ok(all(values, move |values| {
                    Value::Map(keys.into_iter().zip(values).collect())
                }))
            }
            Json::Array(items) => match items.as_slice() {
                [Json::Array(inner)] => {
                    let values = inner
                        .iter()
                        .map(|item| self.eval(item, r))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(all(values, Value::List))
                }
                [Json::String(tag), ..] => self.special(tag, items, r),
                _ => Err(raise::protocol(format!(
                    "an array that is neither [[...]] nor a typed value: {}",
                    shorten(expression)
                ))),
            },
        }
    }

    fn special(self: &Arc<Self>, tag: &str, items: &[Json], r: &mut Reading<'_>) -> Result<Eval> {
        let unsupported = |what: &str| {
            Ok(Eval::failed(
                Error::new(
                    ErrorKind::Unsupported,
                    format!("{what} is not supported by tether's Cap'n Web endpoint"),
                ),
                "reading the call's arguments",
            ))
        };
        let malformed = || {
            raise::protocol(format!(
                "a malformed '{tag}' expression: {}",
                shorten(&Json::Array(items.to_vec()))
            ))
        };
        match (tag, &items[1..]) {
            ("undefined", []) => Ok(Eval::Ready(Value::None)),
            ("inf", []) => Ok(Eval::Ready(Value::Float(f64::INFINITY))),
            ("-inf", []) => Ok(Eval::Ready(Value::Float(f64::NEG_INFINITY))),
            ("nan", []) => Ok(Eval::Ready(Value::Float(f64::NAN))),
            ("bigint", [Json::String(digits)]) => Ok(match wire::bigint(digits) {
                Ok(value) => Eval::Ready(value),
                Err(err) => Eval::failed(err, "reading a bigint"),
            }),
            ("bytes", [Json::String(text), ..]) => Ok(Eval::Ready(wire::bytes(text)?)),
            ("url", [Json::String(href)]) => Ok(Eval::Ready(Value::Str(href.clone()))),
            ("error", [Json::String(name), Json::String(message), ..]) => {
                Ok(Eval::Ready(Value::map([
                    ("name", name.as_str()),
                    ("message", message.as_str()),
                ])))
            }
            ("export", [id]) => {
                let id = id.as_i64().ok_or_else(malformed)?;
                Ok(Eval::Ready(Value::Ref(self.import(id, r.tables)?)))
            }
            ("promise", [id]) => {
                // Taken and let go at once, so the peer's table stays clean.
                let id = id.as_i64().ok_or_else(malformed)?;
                drop(self.import(id, r.tables)?);
                unsupported("a promise passed as an argument (await it first)")
            }
            ("import" | "pipeline", [id, rest @ ..]) if rest.len() <= 2 => {
                let id = id.as_i64().ok_or_else(malformed)?;
                let subject = match r.tables.exports.get(&id) {
                    Some(Export::Object { netref, .. }) => {
                        Subject::Value(Value::Ref(netref.clone()))
                    }
                    Some(Export::Answer { answer, .. }) => Subject::Answer(answer.clone()),
                    None => return Err(no_export(id)),
                };
                let path = match rest.first() {
                    None => Vec::new(),
                    Some(Json::Array(keys)) => keys
                        .iter()
                        .map(|key| match key {
                            Json::String(name) => Some(Key::Name(name.clone())),
                            Json::Number(n) => n.as_u64().map(|i| Key::Index(i as usize)),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(malformed)?,
                    Some(_) => return Err(malformed()),
                };
                let args = match rest.get(1) {
                    None => None,
                    Some(Json::Array(args)) => {
                        let values = args
                            .iter()
                            .map(|arg| self.eval(arg, r))
                            .collect::<Result<Vec<_>>>()?;
                        Some(all(values, Value::List))
                    }
                    Some(_) => return Err(malformed()),
                };
                Ok(self.operate(subject, path, args, &r.budget))
            }
            ("remap", _) => unsupported(".map() over a promise"),
            ("date", [Json::Number(ms)]) => Ok(match ms.as_f64().map(DateTime::from_unix_millis) {
                Some(Ok(t)) => Eval::Ready(Value::DateTime(t)),
                Some(Err(err)) => Eval::failed(err, "reading a Date"),
                None => return Err(malformed()),
            }),
            // An invalid Date's time is NaN, which JSON writes as null.
            ("date", [Json::Null]) => Ok(Eval::failed(
                raise::type_mismatch("a date", "an invalid Date"),
                "reading a Date",
            )),
            ("writable" | "readable" | "blob", _) => unsupported("a stream"),
            ("headers" | "request" | "response", _) => unsupported("a Fetch API object"),
            _ => Err(malformed()),
        }
    }

    /// The work of reading `path` on `subject`, and of calling what it
    /// leads to with `args` when given.
    fn operate(
        self: &Arc<Self>,
        subject: Subject,
        path: Vec<Key>,
        args: Option<Eval>,
        budget: &Budget,
    ) -> Eval {
        let args = args.map(Eval::into_future);
        match subject {
            Subject::Value(value) if path.is_empty() && args.is_none() => Eval::Ready(value),
            Subject::Value(value) => {
                let session = self.clone();
                Eval::Later(Box::pin(async move {
                    let args = match args {
                        Some(args) => Some(args.await?),
                        None => None,
                    };
                    session.walk(value, path, args).await
                }))
            }
            Subject::Answer(answer) if path.is_empty() && args.is_none() => {
                let budget = budget.clone();
                Eval::Later(Box::pin(
                    async move { budget.charge(answer.outcome().await) },
                ))
            }
            Subject::Answer(answer) => {
                let session = self.clone();
                let args = async move {
                    match args {
                        Some(args) => args.await.map(Some),
                        None => Ok(None),
                    }
                };
                let work = answer.after(args, move |value, args| {
                    session.walk_owned(value, path, args)
                });
                let budget = budget.clone();
                Eval::Later(Box::pin(async move { budget.charge(work.await) }))
            }
        }
    }

    fn walk_owned(
        self: Arc<Self>,
        value: Value,
        path: Vec<Key>,
        args: Option<Value>,
    ) -> BoxFuture<'static, Outcome> {
        Box::pin(async move { self.walk(value, path, args).await })
    }

    /// Follow `path` from `value`, then call what it leads to with `args`
    /// (a list), if given.
    async fn walk(&self, value: Value, path: Vec<Key>, args: Option<Value>) -> Outcome {
        let location = || {
            let path: String = path.iter().map(Key::to_string).collect();
            match args {
                Some(_) => format!("in the call {path}()"),
                None => format!("reading {path}"),
            }
        };
        let run = async {
            let cx = self.call_context();
            let args = args.clone().map(|list| Args {
                positional: match list {
                    Value::List(items) => items,
                    other => vec![other],
                },
                named: Vec::new(),
            });
            let (steps, last) = match (&args, path.split_last()) {
                (Some(_), Some((last, steps))) => (steps, Some(last)),
                _ => (&path[..], None),
            };
            let mut current = value;
            for key in steps {
                current = self.get(current, key, &cx).await?;
            }
            match (args, last) {
                (None, _) => Ok(current),
                (Some(args), Some(Key::Name(name))) => match current {
                    Value::Ref(target) => {
                        let op = match introspection(name, &args) {
                            Some(op) => op,
                            None => Op::CallMethod(name.clone(), args),
                        };
                        target.serve(op, &self.policy, &cx).await
                    }
                    other => {
                        let member = self.get(other, &Key::Name(name.clone()), &cx).await?;
                        self.call(member, args, &cx).await
                    }
                },
                (Some(args), Some(key)) => {
                    let member = self.get(current, key, &cx).await?;
                    self.call(member, args, &cx).await
                }
                (Some(args), None) => self.call(current, args, &cx).await,
            }
        };
        let span = ServeSpan::capnweb(&Walk(&path, args.is_some()), self.trace_parent());
        span.instrument(run)
            .await
            .map_err(|err: Error| err.to_remote(&location()))
    }

    async fn get(&self, value: Value, key: &Key, cx: &crate::CallContext) -> Result<Value> {
        match (value, key) {
            (Value::Ref(target), Key::Name(name)) => {
                target
                    .serve(Op::GetAttr(name.clone()), &self.policy, cx)
                    .await
            }
            (Value::Map(pairs), Key::Name(name)) => Ok(pairs
                .into_iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v)
                .unwrap_or(Value::None)),
            (Value::List(mut items), Key::Index(i)) if *i < items.len() => {
                Ok(items.swap_remove(*i))
            }
            (Value::List(_), Key::Index(_)) => Ok(Value::None),
            (other, key) => Err(Error::new(
                ErrorKind::Type,
                format!("cannot read {key} of a {}", other.type_name()),
            )),
        }
    }

    async fn call(&self, value: Value, args: Args, cx: &crate::CallContext) -> Result<Value> {
        match value {
            Value::Ref(target) => target.serve(Op::Call(args), &self.policy, cx).await,
            other => Err(Error::new(
                ErrorKind::Type,
                format!("a {} is not a function", other.type_name()),
            )),
        }
    }
}

/// The operation a call of `name` without arguments stands for, when it
/// is one of the questions every object answers natively (and a browser
/// console asks): `__inspect__()` its members with signatures and docs,
/// `__dir__()` their names, `__repr__()` and `__str__()`.
fn introspection(name: &str, args: &Args) -> Option<Op> {
    if !args.positional.is_empty() || !args.named.is_empty() {
        return None;
    }
    match name {
        "__inspect__" => Some(Op::Inspect),
        "__dir__" => Some(Op::Dir),
        "__repr__" => Some(Op::Repr),
        "__str__" => Some(Op::Str),
        _ => None,
    }
}

/// One value of several: ready at once when all of them are.
fn all(values: Vec<Eval>, build: impl FnOnce(Vec<Value>) -> Value + Send + 'static) -> Eval {
    if values.iter().all(|v| matches!(v, Eval::Ready(_))) {
        let values = values
            .into_iter()
            .map(|v| match v {
                Eval::Ready(value) => value,
                Eval::Later(_) => unreachable!("all are ready"),
            })
            .collect();
        return Eval::Ready(build(values));
    }
    let futures: Vec<_> = values.into_iter().map(Eval::into_future).collect();
    Eval::Later(Box::pin(async move {
        let mut done = Vec::with_capacity(futures.len());
        // In order: a call in an earlier argument starts first.
        for future in futures {
            done.push(future.await?);
        }
        Ok(build(done))
    }))
}
