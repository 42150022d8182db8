//! Data sent by reference: `tether::by_ref(vec)` keeps a list or map on
//! this side and lets the peer read it piecewise.

use std::sync::Mutex;

use serde::Serialize;

use crate::error::raise;
use crate::netref::NetRef;
use crate::service::object::{BoxFuture, Member, Object};
use crate::{Args, CallContext, Error, ErrorKind, Result, Value};

/// Send `data` by reference instead of by value.
///
/// Plain data normally travels by value: the peer gets a copy, which is
/// right for small results and for anything the peer will read whole. Send
/// by reference when the data is large and the peer needs only part of it,
/// or when it must see one shared, current copy: the peer gets a netref
/// with `len()`, `get(key)` (an index for a list, a key for a map),
/// `keys()`, `copy()` (the whole value) and iteration, and each of those is
/// a round trip.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let big = tether::by_ref(&vec![10, 20, 30]).unwrap();
/// assert_eq!(big.call_method("len", ()).await.unwrap(), tether::Value::from(3));
/// assert_eq!(big.call_method("get", (1,)).await.unwrap(), tether::Value::from(20));
/// # });
/// ```
pub fn by_ref<T: Serialize + ?Sized>(data: &T) -> Result<NetRef> {
    let value = crate::to_value(data)?;
    Ok(NetRef::new(Shared {
        value,
        cursor: Mutex::new(0),
    }))
}

struct Shared {
    value: Value,
    /// Position of the object's own iteration.
    cursor: Mutex<usize>,
}

impl Shared {
    fn len(&self) -> Result<usize> {
        match &self.value {
            Value::List(items) => Ok(items.len()),
            Value::Map(pairs) => Ok(pairs.len()),
            Value::Str(s) => Ok(s.chars().count()),
            Value::Bytes(b) => Ok(b.len()),
            other => Err(raise::unsupported(other.type_name(), "sized")),
        }
    }

    fn get(&self, key: Value) -> Result<Value> {
        match (&self.value, &key) {
            (Value::List(items), Value::Int(i)) => {
                let index = if *i < 0 { items.len() as i64 + i } else { *i };
                usize::try_from(index)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(|| Error::app("IndexError", format!("list index {i} out of range")))
            }
            (Value::Map(pairs), _) => pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| Error::app("KeyError", key.to_string())),
            (other, _) => Err(Error::new(
                ErrorKind::Type,
                format!(
                    "cannot index {} with {}",
                    other.type_name(),
                    key.type_name()
                ),
            )),
        }
    }

    fn item_at(&self, at: usize) -> Option<Value> {
        match &self.value {
            Value::List(items) => items.get(at).cloned(),
            Value::Map(pairs) => pairs.get(at).map(|(k, _)| k.clone()),
            _ => None,
        }
    }
}

const MEMBERS: &[Member] = &[
    Member::method(
        "len",
        "() -> int",
        "Number of items (entries of a map, characters of a string).",
    ),
    Member::method(
        "get",
        "(key: any) -> any",
        "The item at an index (negative counts from the end) or under a key.",
    ),
    Member::method("keys", "() -> list", "A map's keys, or a list's indices."),
    Member::method("copy", "() -> any", "The whole value, by value."),
];

impl Object for Shared {
    fn type_name(&self) -> &str {
        "ByRef"
    }

    fn members(&self) -> &[Member] {
        MEMBERS
    }

    fn call_method<'a>(
        &'a self,
        name: &'a str,
        args: Args,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Value>> {
        let result = match name {
            "len" => args.parse::<()>().and_then(|()| {
                let n = self.len()?;
                Value::try_from(n)
            }),
            "get" => args.parse::<Value>().and_then(|key| self.get(key)),
            "keys" => args.parse::<()>().and_then(|()| match &self.value {
                Value::Map(pairs) => {
                    Ok(Value::List(pairs.iter().map(|(k, _)| k.clone()).collect()))
                }
                _ => Ok(Value::List(
                    (0..self.len()? as i64).map(Value::Int).collect(),
                )),
            }),
            "copy" => args.parse::<()>().map(|()| self.value.clone()),
            _ => Err(raise::no_member("ByRef", name)),
        };
        Box::pin(async move { result })
    }

    fn next<'a>(&'a self, _cx: &'a CallContext) -> BoxFuture<'a, Result<Option<Value>>> {
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let item = self.item_at(*cursor);
        if item.is_some() {
            *cursor += 1;
        }
        Box::pin(async move { Ok(item) })
    }

    fn repr(&self) -> String {
        format!("<by-reference {}>", self.value.type_name())
    }
}
