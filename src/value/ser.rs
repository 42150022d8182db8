//! Any `serde::Serialize` type to a [`Value`] ([`to_value`]), and `Serialize`
//! for `Value` itself.
//!
//! The mapping is Python-like: integers become `Int` (unsigned and 128-bit
//! ones only when they fit in an `i64`), sequences and tuples become `List`,
//! structs become `Map`s keyed by field name, `None`/`()` become `None`, and
//! enums are externally tagged like `serde_json` (a unit variant is its name,
//! any other variant a one-entry map `{name: content}`).
//!
//! Object references are preserved: a [`NetRef`](crate::NetRef) anywhere in
//! the value (a field, an item of a `Vec`, an `Option`, a map value, a
//! `Value::Ref`) becomes `Value::Ref` holding the same reference. `NetRef`'s
//! `Serialize` announces itself with a private newtype name that only this
//! serializer understands; every other serializer gets an error instead of a
//! meaningless number (see `refs` for the mechanism and its limits).

use std::fmt;

use serde::de::{Expected, Unexpected};
use serde::ser::{self, Serialize};

use super::{datetime, refs, DateTime};
use crate::error::raise;
use crate::value::Value;
use crate::{Error, ErrorKind, Result};

/// Convert any serializable value to a [`Value`].
///
/// Data is copied; object references are kept: every [`NetRef`](crate::NetRef)
/// in `value` (and every `Value::Ref`) becomes a `Value::Ref` holding the same
/// reference, so it still names the same object, and
/// [`from_value`](crate::from_value) gives it back.
///
/// Fails (kind `Type`) on an integer that does not fit in an `i64`, and when
/// the value's own `Serialize` fails. `NetRef`s only convert this way: other
/// serde formats (bincode, JSON) refuse them, since a reference is not data.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tether::{from_value, to_value, NetRef, Object, Value};
///
/// struct Printer;
/// impl Object for Printer { fn type_name(&self) -> &str { "Printer" } }
///
/// #[derive(Serialize, Deserialize)]
/// struct Job {
///     copies: u32,
///     printer: NetRef,
/// }
///
/// let printer = NetRef::new(Printer);
/// let job = Job { copies: 2, printer: printer.clone() };
/// let value = to_value(&job).unwrap();
/// assert_eq!(value.get("copies"), Some(&Value::Int(2)));
/// assert_eq!(value.get("printer"), Some(&Value::Ref(printer.clone())));
///
/// let back: Job = from_value(value).unwrap();
/// assert_eq!(back.printer, printer); // the same object, not a copy
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    value
        .serialize(ValueSerializer)
        .map_err(SerdeError::into_error)
}

/// The serde error of both directions; a tether `Type` error inside.
pub(super) struct SerdeError(Error);

impl SerdeError {
    /// A `Type` error with this message.
    pub(super) fn msg(message: impl Into<String>) -> SerdeError {
        SerdeError(Error::new(ErrorKind::Type, message))
    }

    /// "expected X, got Y", or the by-reference error when `got` is a `Ref`.
    /// (A `Ref` read as data: references only convert to `NetRef` or `Value`.)
    pub(super) fn mismatch(expected: &str, got: &Value) -> SerdeError {
        match got {
            Value::Ref(_) => SerdeError::msg(format!(
                "an object reference cannot be converted by value (expected {expected})"
            )),
            other => SerdeError(raise::type_mismatch(expected, other.type_name())),
        }
    }

    /// The tether error, for the public boundary.
    pub(super) fn into_error(self) -> Error {
        self.0
    }
}

impl fmt::Debug for SerdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SerdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.message())
    }
}

impl std::error::Error for SerdeError {}

impl ser::Error for SerdeError {
    fn custom<T: fmt::Display>(msg: T) -> SerdeError {
        SerdeError::msg(msg.to_string())
    }
}

impl serde::de::Error for SerdeError {
    fn custom<T: fmt::Display>(msg: T) -> SerdeError {
        SerdeError::msg(msg.to_string())
    }

    // The crate's "expected X, got Y" wording, for errors raised by visitors.
    fn invalid_type(got: Unexpected<'_>, expected: &dyn Expected) -> SerdeError {
        match got {
            // The deserializer shows a reference being handed over as a
            // newtype; a visitor that did not want one refuses it this way.
            Unexpected::NewtypeStruct if refs::handing_over() => SerdeError::msg(format!(
                "an object reference cannot be converted by value (expected {expected})"
            )),
            got => SerdeError::msg(format!("expected {expected}, got {got}")),
        }
    }

    fn invalid_value(got: Unexpected<'_>, expected: &dyn Expected) -> SerdeError {
        SerdeError::msg(format!("expected {expected}, got {got}"))
    }
}

/// An integer as `Int`, or an error when it does not fit in an `i64`.
fn int<N: Copy + fmt::Display + TryInto<i64>>(n: N) -> Result<Value, SerdeError> {
    n.try_into()
        .map(Value::Int)
        .map_err(|_| SerdeError::msg(format!("integer {n} does not fit in 64 bits")))
}

/// `content`, wrapped as `{variant: content}` when it belongs to an enum variant.
fn tagged(variant: Option<&'static str>, content: Value) -> Value {
    match variant {
        Some(name) => Value::Map(vec![(Value::Str(name.to_owned()), content)]),
        None => content,
    }
}

/// The serializer behind [`to_value`].
struct ValueSerializer;

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = SerdeError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, SerdeError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, SerdeError> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, SerdeError> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, SerdeError> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value, SerdeError> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, SerdeError> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, SerdeError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, SerdeError> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, SerdeError> {
        Ok(Value::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, SerdeError> {
        Ok(Value::from(v))
    }
    fn serialize_none(self) -> Result<Value, SerdeError> {
        Ok(Value::None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, SerdeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, SerdeError> {
        Ok(Value::None)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, SerdeError> {
        Ok(Value::None)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, SerdeError> {
        Ok(Value::Str(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value, SerdeError> {
        if name == refs::TOKEN {
            // A NetRef: it deposits itself while we serialize its handle.
            return match refs::catch(|| value.serialize(ValueSerializer))? {
                Some(r) => Ok(Value::Ref(r)),
                None => Err(SerdeError::msg(format!(
                    "the newtype name {name:?} is reserved for tether's NetRef"
                ))),
            };
        }
        if name == datetime::SERDE_NAME {
            // A DateTime: its text, read back as the date it is.
            return match value.serialize(ValueSerializer)? {
                Value::Str(text) => DateTime::parse(&text)
                    .map(Value::DateTime)
                    .map_err(|e| SerdeError::msg(e.message())),
                _ => Err(SerdeError::msg(format!(
                    "the newtype name {name:?} is reserved for tether's DateTime"
                ))),
            };
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, SerdeError> {
        Ok(tagged(Some(variant), value.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, SerdeError> {
        Ok(SeqBuilder::new(None, len.unwrap_or(0)))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, SerdeError> {
        Ok(SeqBuilder::new(None, len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, SerdeError> {
        Ok(SeqBuilder::new(None, len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, SerdeError> {
        Ok(SeqBuilder::new(Some(variant), len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, SerdeError> {
        Ok(MapBuilder::new(None, len.unwrap_or(0)))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, SerdeError> {
        Ok(MapBuilder::new(None, len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder, SerdeError> {
        Ok(MapBuilder::new(Some(variant), len))
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// Collects the items of a sequence, tuple or tuple variant into a `List`.
struct SeqBuilder {
    variant: Option<&'static str>,
    items: Vec<Value>,
}

impl SeqBuilder {
    fn new(variant: Option<&'static str>, len: usize) -> SeqBuilder {
        // The hint comes from the caller's type; cap it so a lying hint cannot
        // reserve much memory.
        let items = Vec::with_capacity(len.min(1024));
        SeqBuilder { variant, items }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerdeError> {
        self.items.push(value.serialize(ValueSerializer)?);
        Ok(())
    }

    fn finish(self) -> Result<Value, SerdeError> {
        Ok(tagged(self.variant, Value::List(self.items)))
    }
}

macro_rules! seq_impls {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqBuilder {
            type Ok = Value;
            type Error = SerdeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerdeError> {
                self.push(value)
            }
            fn end(self) -> Result<Value, SerdeError> {
                self.finish()
            }
        }
    )*};
}

seq_impls!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// Collects the entries of a map, struct or struct variant into a `Map`.
struct MapBuilder {
    variant: Option<&'static str>,
    pairs: Vec<(Value, Value)>,
    /// A key given to `serialize_key`, waiting for its value.
    key: Option<Value>,
}

impl MapBuilder {
    fn new(variant: Option<&'static str>, len: usize) -> MapBuilder {
        let pairs = Vec::with_capacity(len.min(1024));
        MapBuilder {
            variant,
            pairs,
            key: None,
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), SerdeError> {
        let value = value.serialize(ValueSerializer)?;
        self.pairs.push((Value::Str(key.to_owned()), value));
        Ok(())
    }

    fn finish(self) -> Result<Value, SerdeError> {
        Ok(tagged(self.variant, Value::Map(self.pairs)))
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = SerdeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerdeError> {
        self.key = Some(key.serialize(ValueSerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerdeError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| SerdeError::msg("map value serialized before its key"))?;
        self.pairs.push((key, value.serialize(ValueSerializer)?));
        Ok(())
    }

    fn end(self) -> Result<Value, SerdeError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = SerdeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerdeError> {
        self.field(key, value)
    }

    fn end(self) -> Result<Value, SerdeError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapBuilder {
    type Ok = Value;
    type Error = SerdeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerdeError> {
        self.field(key, value)
    }

    fn end(self) -> Result<Value, SerdeError> {
        self.finish()
    }
}

/// Plain data serializes as itself (`Bytes` as serde bytes, `Map` as a serde
/// map); a `Ref` serializes as its `NetRef`: kept by [`to_value`], an error
/// with any other serializer, since an object cannot travel by value.
impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::None => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(n) => serializer.serialize_i64(*n),
            Value::Float(x) => serializer.serialize_f64(*x),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::DateTime(t) => t.serialize(serializer),
            Value::List(items) => serializer.collect_seq(items),
            Value::Map(pairs) => serializer.collect_map(pairs.iter().map(|(k, v)| (k, v))),
            Value::Ref(r) => r.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;

    use super::to_value;
    use crate::netref::NetRef;
    use crate::service::object::Object;
    use crate::value::Value;
    use crate::ErrorKind;

    fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
    }

    struct Thing;
    impl Object for Thing {
        fn type_name(&self) -> &str {
            "Thing"
        }
    }

    /// Serializes through `serialize_bytes`, like `serde_bytes`.
    struct Raw(&'static [u8]);
    impl Serialize for Raw {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[test]
    fn primitives() {
        assert_eq!(to_value(&true).unwrap(), Value::Bool(true));
        assert_eq!(to_value(&-5i8).unwrap(), Value::Int(-5));
        assert_eq!(to_value(&300i16).unwrap(), Value::Int(300));
        assert_eq!(to_value(&i64::MIN).unwrap(), Value::Int(i64::MIN));
        assert_eq!(to_value(&255u8).unwrap(), Value::Int(255));
        assert_eq!(to_value(&u32::MAX).unwrap(), Value::Int(4_294_967_295));
        assert_eq!(to_value(&1.5f32).unwrap(), Value::Float(1.5));
        assert_eq!(to_value(&-2.25f64).unwrap(), Value::Float(-2.25));
        assert_eq!(to_value(&'é').unwrap(), s("é"));
        assert_eq!(to_value("hi").unwrap(), s("hi"));
        assert_eq!(to_value(&String::from("yo")).unwrap(), s("yo"));
        assert_eq!(to_value(&()).unwrap(), Value::None);
        assert_eq!(
            to_value(&Raw(b"\x00\xff")).unwrap(),
            Value::Bytes(vec![0, 255].into())
        );
    }

    #[test]
    fn wide_integers_fit_or_fail() {
        assert_eq!(to_value(&(i64::MAX as u64)).unwrap(), Value::Int(i64::MAX));
        assert_eq!(to_value(&-7i128).unwrap(), Value::Int(-7));
        assert_eq!(to_value(&7u128).unwrap(), Value::Int(7));
        let err = to_value(&u64::MAX).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        assert_eq!(
            err.message(),
            "integer 18446744073709551615 does not fit in 64 bits"
        );
        let err = to_value(&(i128::from(i64::MIN) - 1)).unwrap_err();
        assert_eq!(
            err.message(),
            "integer -9223372036854775809 does not fit in 64 bits"
        );
        // The error surfaces from deep inside a container too.
        let err = to_value(&vec![1u64, u64::MAX]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
    }

    #[test]
    fn options_and_sequences() {
        assert_eq!(to_value(&None::<i32>).unwrap(), Value::None);
        assert_eq!(to_value(&Some(3)).unwrap(), Value::Int(3));
        assert_eq!(
            to_value(&vec![Some(1), None]).unwrap(),
            Value::List(vec![Value::Int(1), Value::None])
        );
        // A plain Vec<u8> is a sequence, not bytes.
        assert_eq!(
            to_value(&vec![1u8, 2]).unwrap(),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(
            to_value(&(1, "a", 2.5)).unwrap(),
            Value::List(vec![Value::Int(1), s("a"), Value::Float(2.5)])
        );
        assert_eq!(to_value(&[0i32; 0]).unwrap(), Value::List(vec![]));
    }

    #[test]
    fn maps_keep_key_types() {
        let mut b = BTreeMap::new();
        b.insert(2, "two");
        b.insert(1, "one");
        assert_eq!(
            to_value(&b).unwrap(),
            Value::Map(vec![(Value::Int(1), s("one")), (Value::Int(2), s("two"))])
        );
        let h: HashMap<String, bool> = [("k".to_owned(), true)].into_iter().collect();
        assert_eq!(to_value(&h).unwrap(), map(vec![("k", Value::Bool(true))]));
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Meters(f64);

    #[derive(Serialize)]
    struct Pair(i32, String);

    #[derive(Serialize)]
    struct Inner {
        id: u32,
        tags: Vec<String>,
    }

    #[derive(Serialize)]
    struct Outer {
        name: String,
        inner: Inner,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        unit: Unit,
    }

    #[test]
    fn structs() {
        assert_eq!(to_value(&Unit).unwrap(), Value::None);
        assert_eq!(to_value(&Meters(2.0)).unwrap(), Value::Float(2.0));
        assert_eq!(
            to_value(&Pair(1, "x".into())).unwrap(),
            Value::List(vec![Value::Int(1), s("x")])
        );
        let outer = Outer {
            name: "n".into(),
            inner: Inner {
                id: 9,
                tags: vec!["a".into()],
            },
            note: None,
            unit: Unit,
        };
        let expected = map(vec![
            ("name", s("n")),
            (
                "inner",
                map(vec![
                    ("id", Value::Int(9)),
                    ("tags", Value::List(vec![s("a")])),
                ]),
            ),
            ("unit", Value::None),
        ]);
        assert_eq!(to_value(&outer).unwrap(), expected);
    }

    #[derive(Serialize)]
    enum Shape {
        Empty,
        Circle(f64),
        Rect(u8, u8),
        Named { name: String },
    }

    #[test]
    fn enums_are_externally_tagged() {
        assert_eq!(to_value(&Shape::Empty).unwrap(), s("Empty"));
        assert_eq!(
            to_value(&Shape::Circle(1.0)).unwrap(),
            map(vec![("Circle", Value::Float(1.0))])
        );
        assert_eq!(
            to_value(&Shape::Rect(2, 3)).unwrap(),
            map(vec![(
                "Rect",
                Value::List(vec![Value::Int(2), Value::Int(3)])
            )])
        );
        assert_eq!(
            to_value(&Shape::Named { name: "x".into() }).unwrap(),
            map(vec![("Named", map(vec![("name", s("x"))]))])
        );
    }

    #[test]
    fn value_serializes_as_itself() {
        let values = [
            Value::None,
            Value::Bool(false),
            Value::Int(-1),
            Value::Float(0.5),
            s("text"),
            Value::Bytes(vec![1, 2, 3].into()),
            Value::List(vec![Value::Int(1), Value::List(vec![])]),
            Value::Map(vec![
                (Value::Int(1), s("int key")),
                (s("nested"), map(vec![("b", Value::Bytes(vec![].into()))])),
            ]),
        ];
        for value in values {
            assert_eq!(to_value(&value).unwrap(), value);
        }
    }

    #[test]
    fn refs_are_kept_by_reference() {
        let thing = NetRef::new(Thing);
        let value = Value::List(vec![Value::Int(1), Value::Ref(thing.clone())]);
        assert_eq!(to_value(&value).unwrap(), value);
        assert_eq!(to_value(&thing).unwrap(), Value::Ref(thing.clone()));
        assert_eq!(
            to_value(&vec![Some(thing.clone()), None]).unwrap(),
            Value::List(vec![Value::Ref(thing), Value::None])
        );
    }
}
