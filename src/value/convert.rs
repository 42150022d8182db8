//! Conversions between [`Value`] and common Rust types.
//!
//! Into `Value`: `From` for `()`, `bool`, integers up to `i64`/`u32`, floats,
//! `&str`, `String`, `char`, `Vec<u8>`, `bytes::Bytes` and `&[u8]` (as bytes), `Vec<Value>`,
//! `Option<T>`, `NetRef`, maps with string keys, and tuples (as lists).
//!
//! Out of `Value`: [`FromValue`], with `TryFrom<Value>` for the concrete types
//! (so `let n: i64 = value.try_into()?` works), and for `Option<T>`, `Vec<T>`,
//! maps and `NetRef`. A mismatch is an [`ErrorKind::Type`](crate::ErrorKind)
//! error naming what was expected and what arrived.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use super::{DateTime, Value};
use crate::error::raise;
use crate::netref::NetRef;
use crate::{Error, Result};

/// A type that can be taken out of a [`Value`].
///
/// Implemented for the common Rust types; use [`from_value`](crate::from_value)
/// for serde types.
pub trait FromValue: Sized {
    /// Convert, or fail with an [`ErrorKind::Type`](crate::ErrorKind) error.
    fn from_value(value: Value) -> Result<Self>;

    /// The name of the expected type, for error messages and signatures.
    fn expected() -> &'static str;
}

impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::None
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

macro_rules! int_into_value {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Int(i64::from(n))
            }
        }
    )*};
}
int_into_value!(i8, i16, i32, i64, u8, u16, u32);

impl TryFrom<u64> for Value {
    type Error = Error;
    fn try_from(n: u64) -> Result<Value> {
        i64::try_from(n)
            .map(Value::Int)
            .map_err(|_| raise::type_mismatch("an int that fits in 64 bits", &n.to_string()))
    }
}

impl TryFrom<usize> for Value {
    type Error = Error;
    fn try_from(n: usize) -> Result<Value> {
        Value::try_from(n as u64)
    }
}

impl From<f32> for Value {
    fn from(x: f32) -> Value {
        Value::Float(f64::from(x))
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(s.clone())
    }
}

impl From<char> for Value {
    fn from(c: char) -> Value {
        Value::Str(c.to_string())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b.into())
    }
}

impl From<bytes::Bytes> for Value {
    fn from(b: bytes::Bytes) -> Value {
        Value::Bytes(b)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(bytes::Bytes::copy_from_slice(b))
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::List(items)
    }
}

impl From<NetRef> for Value {
    fn from(r: NetRef) -> Value {
        Value::Ref(r)
    }
}

impl From<&NetRef> for Value {
    fn from(r: &NetRef) -> Value {
        Value::Ref(r.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::None, Into::into)
    }
}

impl<K: Into<String>, V: Into<Value>> From<HashMap<K, V>> for Value {
    fn from(m: HashMap<K, V>) -> Value {
        Value::map(m)
    }
}

impl<K: Into<String>, V: Into<Value>> From<BTreeMap<K, V>> for Value {
    fn from(m: BTreeMap<K, V>) -> Value {
        Value::map(m)
    }
}

impl<T: Into<Value>> FromIterator<T> for Value {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Value {
        Value::List(iter.into_iter().map(Into::into).collect())
    }
}

macro_rules! tuple_into_value {
    ($($name:ident)+) => {
        impl<$($name: Into<Value>),+> From<($($name,)+)> for Value {
            #[allow(non_snake_case)]
            fn from(($($name,)+): ($($name,)+)) -> Value {
                Value::List(vec![$($name.into()),+])
            }
        }
    };
}
tuple_into_value!(A);
tuple_into_value!(A B);
tuple_into_value!(A B C);
tuple_into_value!(A B C D);
tuple_into_value!(A B C D E);
tuple_into_value!(A B C D E F);

fn mismatch(expected: &str, got: &Value) -> Error {
    raise::type_mismatch(expected, got.type_name())
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Value> {
        Ok(value)
    }
    fn expected() -> &'static str {
        "any"
    }
}

impl FromValue for bool {
    fn from_value(value: Value) -> Result<bool> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(mismatch("bool", &other)),
        }
    }
    fn expected() -> &'static str {
        "bool"
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<$t> {
                match value {
                    Value::Int(n) => <$t>::try_from(n).map_err(|_| {
                        crate::Error::new(
                            crate::ErrorKind::Type,
                            format!("integer {n} out of range for {}", stringify!($t)),
                        )
                    }),
                    other => Err(mismatch("int", &other)),
                }
            }
            fn expected() -> &'static str {
                "int"
            }
        }
    )*};
}
int_from_value!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<f64> {
        match value {
            Value::Float(x) => Ok(x),
            Value::Int(n) => Ok(n as f64),
            other => Err(mismatch("float", &other)),
        }
    }
    fn expected() -> &'static str {
        "float"
    }
}

impl FromValue for f32 {
    fn from_value(value: Value) -> Result<f32> {
        f64::from_value(value).map(|x| x as f32)
    }
    fn expected() -> &'static str {
        "float"
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<String> {
        match value {
            Value::Str(s) => Ok(s),
            other => Err(mismatch("str", &other)),
        }
    }
    fn expected() -> &'static str {
        "str"
    }
}

/// Without a copy when the value holds the only reference to a buffer of
/// its own (see [`Value::Bytes`]).
impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Vec<u8>> {
        match value {
            Value::Bytes(b) => Ok(b.into()),
            other => Err(mismatch("bytes", &other)),
        }
    }
    fn expected() -> &'static str {
        "bytes"
    }
}

impl FromValue for bytes::Bytes {
    fn from_value(value: Value) -> Result<bytes::Bytes> {
        match value {
            Value::Bytes(b) => Ok(b),
            other => Err(mismatch("bytes", &other)),
        }
    }
    fn expected() -> &'static str {
        "bytes"
    }
}

/// A date, or text in one of the ISO 8601 forms [`DateTime::parse`]
/// reads (what JSON-RPC clients send).
impl FromValue for DateTime {
    fn from_value(value: Value) -> Result<DateTime> {
        match value {
            Value::DateTime(t) => Ok(t),
            Value::Str(text) => DateTime::parse(&text),
            other => Err(mismatch("datetime", &other)),
        }
    }
    fn expected() -> &'static str {
        "datetime"
    }
}

impl FromValue for Vec<Value> {
    fn from_value(value: Value) -> Result<Vec<Value>> {
        match value {
            Value::List(items) => Ok(items),
            other => Err(mismatch("list", &other)),
        }
    }
    fn expected() -> &'static str {
        "list"
    }
}

impl FromValue for NetRef {
    fn from_value(value: Value) -> Result<NetRef> {
        match value {
            Value::Ref(r) => Ok(r),
            other => Err(mismatch("object", &other)),
        }
    }
    fn expected() -> &'static str {
        "object"
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Option<T>> {
        match value {
            Value::None => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
    fn expected() -> &'static str {
        T::expected()
    }
}

/// A list whose items all convert to `T`; use [`Vec<Value>`] for mixed lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOf<T>(pub Vec<T>);

impl<T: FromValue> FromValue for ListOf<T> {
    fn from_value(value: Value) -> Result<ListOf<T>> {
        match value {
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| T::from_value(v).map_err(|e| e.context(format!("item {i}"))))
                .collect::<Result<Vec<T>>>()
                .map(ListOf),
            other => Err(mismatch("list", &other)),
        }
    }
    fn expected() -> &'static str {
        "list"
    }
}

fn map_from_value<K, V, M>(value: Value) -> Result<M>
where
    K: FromValue,
    V: FromValue,
    M: FromIterator<(K, V)>,
{
    match value {
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect(),
        other => Err(mismatch("map", &other)),
    }
}

impl<K: FromValue + Eq + Hash, V: FromValue> FromValue for HashMap<K, V> {
    fn from_value(value: Value) -> Result<HashMap<K, V>> {
        map_from_value(value)
    }
    fn expected() -> &'static str {
        "map"
    }
}

impl<K: FromValue + Ord, V: FromValue> FromValue for BTreeMap<K, V> {
    fn from_value(value: Value) -> Result<BTreeMap<K, V>> {
        map_from_value(value)
    }
    fn expected() -> &'static str {
        "map"
    }
}

macro_rules! try_from_value {
    ($($t:ty),*) => {$(
        impl TryFrom<Value> for $t {
            type Error = Error;
            fn try_from(value: Value) -> Result<$t> {
                <$t as FromValue>::from_value(value)
            }
        }
    )*};
}
try_from_value!(
    bool,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    usize,
    isize,
    f32,
    f64,
    String,
    Vec<u8>,
    bytes::Bytes,
    DateTime,
    Vec<Value>,
    NetRef
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn integers_convert_with_range_checks() {
        let v = Value::from(300);
        assert_eq!(u16::try_from(v.clone()).unwrap(), 300);
        let err = u8::try_from(v).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        assert!(err.message().contains("out of range for u8"));
        assert!(Value::try_from(u64::MAX).is_err());
        assert_eq!(Value::try_from(7usize).unwrap(), Value::Int(7));
    }

    #[test]
    fn mismatch_names_both_types() {
        let err = String::try_from(Value::from(1)).unwrap_err();
        assert_eq!(err.message(), "expected str, got int");
    }

    #[test]
    fn options_lists_and_maps() {
        assert_eq!(Option::<i64>::from_value(Value::None).unwrap(), None);
        assert_eq!(Option::<i64>::from_value(Value::from(3)).unwrap(), Some(3));
        let list: ListOf<i64> = ListOf::from_value(Value::from((1, 2, 3))).unwrap();
        assert_eq!(list.0, vec![1, 2, 3]);
        let bad = ListOf::<i64>::from_value(Value::from((1, "x"))).unwrap_err();
        assert!(bad.message().starts_with("item 1"), "{bad}");
        let m: HashMap<String, i64> =
            FromValue::from_value(Value::map([("a", 1), ("b", 2)])).unwrap();
        assert_eq!(m["b"], 2);
    }

    #[test]
    fn bytes_and_text_are_distinct() {
        assert_eq!(Value::from(&b"ab"[..]), Value::from(b"ab".to_vec()));
        assert!(String::try_from(Value::from(vec![1u8])).is_err());
        assert_eq!(Value::from('x'), Value::from("x"));
    }
}
