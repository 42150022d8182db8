//! `Value`: what travels between peers.
//!
//! Plain data (`None`, `Bool`, `Int`, `Float`, `Str`, `Bytes`, `DateTime`,
//! `List`, `Map`)
//! is copied to the peer; a [`Value::Ref`] is sent as an object id, and the
//! peer gets a [`NetRef`] that calls back into the owner.
//!
//! - [`convert`](self::convert): `From`/`TryFrom` between `Value` and common Rust
//!   types, and the [`FromValue`] trait behind them;
//! - [`args`](self::args): [`Args`], positional and named arguments, with
//!   tuples as argument lists ([`IntoArgs`], [`FromArgs`]);
//! - [`datetime`](self::datetime): [`DateTime`], an instant in UTC, and
//!   how each protocol carries it;
//! - `ser` / `de`: any serde type to and from `Value` ([`to_value`],
//!   [`from_value`]): structs travel by value, like Pyro's pickled objects.

pub(crate) mod args;
pub(crate) mod convert;
pub(crate) mod datetime;
mod de;
mod refs;
mod ser;

use std::fmt;

pub use self::args::{Args, FromArgs, IntoArgs};
pub use self::convert::FromValue;
pub use self::datetime::DateTime;
pub use self::de::from_value;
pub use self::ser::to_value;
use crate::netref::NetRef;

/// A value that crosses a connection: data by value, objects by reference.
///
/// ```
/// use tether::Value;
/// let v = Value::from(vec![Value::from(1), Value::from("two")]);
/// assert_eq!(v.to_string(), "[1, 'two']");
/// let n: i64 = Value::from(42).try_into().unwrap();
/// assert_eq!(n, 42);
/// ```
#[derive(Clone, Default, PartialEq)]
pub enum Value {
    /// Nothing (Python's `None`, Rust's `()` and `Option::None`).
    #[default]
    None,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    Str(String),
    /// Raw bytes. A large value received from a peer shares the memory of
    /// the frame it arrived in, and one sent is written from its own
    /// memory: neither is copied ([`bytes::Bytes`] is a reference-counted
    /// buffer; `Vec::from(bytes)` takes it back without a copy when it is
    /// the only reference to a buffer of its own).
    Bytes(bytes::Bytes),
    /// An instant in UTC (XML-RPC's `dateTime.iso8601`, JavaScript's
    /// `Date`); see [`DateTime`] for how each way in maps it.
    DateTime(DateTime),
    /// An ordered sequence (also what tuples become).
    List(Vec<Value>),
    /// Key/value pairs in insertion order; keys are usually `Str`.
    Map(Vec<(Value, Value)>),
    /// A reference to an object: ours (sent by reference) or the peer's.
    Ref(NetRef),
}

impl Value {
    /// A short name of the variant, as used in type errors (`"int"`, `"str"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "none",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::DateTime(_) => "datetime",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Ref(_) => "object",
        }
    }

    /// True for [`Value::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The text of a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer of an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The items of a `List`.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The reference of a `Ref`.
    pub fn as_ref(&self) -> Option<&NetRef> {
        match self {
            Value::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// The value stored under a string key of a `Map`.
    ///
    /// ```
    /// # use tether::Value;
    /// let m = Value::Map(vec![(Value::from("age"), Value::from(42))]);
    /// assert_eq!(m.get("age"), Some(&Value::from(42)));
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Build a `Map` from string keys.
    pub fn map<K: Into<String>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::Str(k.into()), v.into()))
                .collect(),
        )
    }

    /// Convert into any type that implements [`FromValue`].
    pub fn into_typed<T: FromValue>(self) -> crate::Result<T> {
        T::from_value(self)
    }
}

fn write_str_repr(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("'")
}

/// Python-like rendering: `None`, `True`, `3`, `2.5`, `'text'`, `b'\x00'`,
/// `[1, 2]`, `{'k': 'v'}`, `<netref ...>`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 => {
                write!(f, "{x:.1}")
            }
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write_str_repr(f, s),
            Value::Bytes(b) => {
                f.write_str("b'")?;
                for &byte in b {
                    match byte {
                        b'\'' => f.write_str("\\'")?,
                        b'\\' => f.write_str("\\\\")?,
                        0x20..=0x7e => write!(f, "{}", byte as char)?,
                        _ => write!(f, "\\x{byte:02x}")?,
                    }
                }
                f.write_str("'")
            }
            Value::DateTime(t) => write!(f, "{t}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Ref(r) => write!(f, "{r:?}"),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
