//! A [`Value`] to any `serde::Deserialize` type ([`from_value`]), and
//! `Deserialize` for `Value` itself.
//!
//! The reverse of [`to_value`](super::to_value), and strict: an `Int` becomes
//! any integer type it fits in (or a float), but a `Float` never becomes an
//! integer; `Bytes` also reads as a sequence of `u8`; an enum comes from a
//! variant name (`Str`) or a one-entry `Map` `{name: content}`.
//!
//! Object references are preserved: a `Value::Ref` becomes the same
//! [`NetRef`](crate::NetRef) wherever the target type has a `NetRef` (a field,
//! a `Vec<NetRef>`, an `Option<NetRef>`, a map value) and stays a `Value::Ref`
//! wherever it has a `Value`. Read as any other type, a reference is an error
//! ("an object reference cannot be converted by value"), and so it is inside
//! input that serde buffers (untagged and internally tagged enums, flattened
//! fields), which cannot hold one; see `refs` for the mechanism.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Expected, Visitor};
use serde::Deserialize;

use super::ser::SerdeError;
use super::{datetime, refs};
use crate::value::Value;
use crate::Result;

/// Convert a [`Value`] to any deserializable type.
///
/// References are kept: a `Value::Ref` becomes the very same
/// [`NetRef`](crate::NetRef) where `T` has a `NetRef`, and stays a
/// `Value::Ref` where `T` has a `Value` (so `from_value::<Value>(v)` is `v`).
///
/// Fails (kind `Type`) when the value does not have the expected shape; the
/// message names what was expected and what was found ("expected object, got
/// int" for data where a `NetRef` belongs, "an object reference cannot be
/// converted by value" for a reference where data belongs). A reference inside
/// an untagged or internally tagged enum, or a `#[serde(flatten)]` field, is
/// an error too: serde buffers those as plain data first.
///
/// ```
/// use serde::Deserialize;
/// use tether::{from_value, NetRef, Object, Value};
///
/// struct Printer;
/// impl Object for Printer { fn type_name(&self) -> &str { "Printer" } }
///
/// #[derive(Debug, Deserialize)]
/// struct Job {
///     copies: u32,
///     printers: Vec<NetRef>,
/// }
///
/// let printer = NetRef::new(Printer);
/// let value = Value::map([
///     ("copies", Value::Int(2)),
///     ("printers", Value::List(vec![Value::Ref(printer.clone())])),
/// ]);
/// let job: Job = from_value(value.clone()).unwrap();
/// assert_eq!(job.printers, [printer]); // the same object, not a copy
/// assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
///
/// let err = from_value::<Job>(Value::map([
///     ("copies", Value::Int(2)),
///     ("printers", Value::List(vec![Value::Int(7)])),
/// ])).unwrap_err();
/// assert_eq!(err.message(), "expected object, got int");
/// ```
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(ValueDeserializer(value)).map_err(SerdeError::into_error)
}

/// The deserializer behind [`from_value`]: one owned value.
struct ValueDeserializer(Value);

impl ValueDeserializer {
    /// The integer of an `Int`.
    fn int(self) -> Result<i64, SerdeError> {
        match self.0 {
            Value::Int(n) => Ok(n),
            other => Err(SerdeError::mismatch("int", &other)),
        }
    }

    /// The items of a `List`, or the bytes of `Bytes` as `Int`s.
    fn items(self) -> Result<Vec<Value>, SerdeError> {
        match self.0 {
            Value::List(items) => Ok(items),
            Value::Bytes(bytes) => Ok(bytes.into_iter().map(|b| Value::Int(b.into())).collect()),
            other => Err(SerdeError::mismatch("list", &other)),
        }
    }

    /// A tuple (or array) of exactly `len` items.
    fn tuple<'de, V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, SerdeError> {
        let items = self.items()?;
        if items.len() != len {
            return Err(SerdeError::msg(format!(
                "expected a tuple of {len} items, got a list of {}",
                items.len()
            )));
        }
        visit_list(items, visitor)
    }
}

/// Feed `items` to `visitor` as a sequence; every item must be consumed.
fn visit_list<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, SerdeError> {
    let len = items.len();
    let mut access = ListAccess(items.into_iter());
    let out = visitor.visit_seq(&mut access)?;
    match access.0.len() {
        0 => Ok(out),
        left => Err(SerdeError::msg(format!(
            "expected a list of {} items, got {len}",
            len - left
        ))),
    }
}

/// Feed `pairs` to `visitor` as a map; every entry must be consumed.
fn visit_pairs<'de, V: Visitor<'de>>(
    pairs: Vec<(Value, Value)>,
    visitor: V,
) -> Result<V::Value, SerdeError> {
    let len = pairs.len();
    let mut access = PairsAccess {
        pairs: pairs.into_iter(),
        value: None,
    };
    let out = visitor.visit_map(&mut access)?;
    match access.pairs.len() {
        0 => Ok(out),
        left => Err(SerdeError::msg(format!(
            "expected a map of {} entries, got {len}",
            len - left
        ))),
    }
}

/// `deserialize_*` methods for integer types: an `Int` in range.
macro_rules! deserialize_ints {
    ($($method:ident => $ty:ident . $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
            let n = self.int()?;
            let n = $ty::try_from(n).map_err(|_| {
                SerdeError::msg(format!("integer {n} out of range for {}", stringify!($ty)))
            })?;
            visitor.$visit(n)
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = SerdeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::None => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(n) => visitor.visit_i64(n),
            Value::Float(x) => visitor.visit_f64(x),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b.into()),
            // Through serde a date is its RFC 3339 text, which `DateTime`,
            // `time` and `chrono` types read back.
            Value::DateTime(t) => datetime::hand_over(t, |text| visitor.visit_string(text)),
            Value::List(items) => visit_list(items, visitor),
            Value::Map(pairs) => visit_pairs(pairs, visitor),
            // `Value`'s visitor takes the reference; others refuse it.
            Value::Ref(r) => refs::hand_over(r, || visitor.visit_newtype_struct(RefHandOff::FIRST)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(b),
            other => Err(SerdeError::mismatch("bool", &other)),
        }
    }

    deserialize_ints! {
        deserialize_i8 => i8.visit_i8,
        deserialize_i16 => i16.visit_i16,
        deserialize_i32 => i32.visit_i32,
        deserialize_i64 => i64.visit_i64,
        deserialize_i128 => i128.visit_i128,
        deserialize_u8 => u8.visit_u8,
        deserialize_u16 => u16.visit_u16,
        deserialize_u32 => u32.visit_u32,
        deserialize_u64 => u64.visit_u64,
        deserialize_u128 => u128.visit_u128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Float(x) => visitor.visit_f32(x as f32),
            Value::Int(n) => visitor.visit_f32(n as f32),
            other => Err(SerdeError::mismatch("float", &other)),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Float(x) => visitor.visit_f64(x),
            Value::Int(n) => visitor.visit_f64(n as f64),
            other => Err(SerdeError::mismatch("float", &other)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Str(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => visitor.visit_char(c),
                    _ => Err(SerdeError::msg(format!(
                        "expected a single-character str, got a str of {} characters",
                        s.chars().count()
                    ))),
                }
            }
            other => Err(SerdeError::mismatch("str", &other)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Str(s) => visitor.visit_string(s),
            Value::DateTime(t) => datetime::hand_over(t, |text| visitor.visit_string(text)),
            other => Err(SerdeError::mismatch("str", &other)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Bytes(b) => visitor.visit_byte_buf(b.into()),
            Value::List(items) => visit_list(items, visitor),
            other => Err(SerdeError::mismatch("bytes", &other)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::None => visitor.visit_unit(),
            other => Err(SerdeError::mismatch("none", &other)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        if name == refs::TOKEN {
            // A NetRef: it takes the reference out of the slot.
            return match self.0 {
                Value::Ref(r) => {
                    refs::hand_over(r, || visitor.visit_newtype_struct(RefHandOff::FIRST))
                }
                other => Err(SerdeError::mismatch("object", &other)),
            };
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        visit_list(self.items()?, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        self.tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        self.tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Map(pairs) => visit_pairs(pairs, visitor),
            other => Err(SerdeError::mismatch("map", &other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Map(pairs) => visit_pairs(pairs, visitor),
            other => Err(SerdeError::mismatch(
                &format!("map for struct {name}"),
                &other,
            )),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        let (variant, content) = match self.0 {
            Value::Str(s) => (Value::Str(s), None),
            Value::Map(pairs) => {
                let len = pairs.len();
                let mut pairs = pairs.into_iter();
                match (pairs.next(), pairs.next()) {
                    (Some((key, content)), None) => (key, Some(content)),
                    _ => {
                        return Err(SerdeError::msg(format!(
                            "expected a map of 1 entry for enum {name}, got a map of {len} entries"
                        )))
                    }
                }
            }
            other => {
                let expected = format!("str or map for enum {name}");
                return Err(SerdeError::mismatch(&expected, &other));
            }
        };
        visitor.visit_enum(EnumAccess { variant, content })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        match self.0 {
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b.into()),
            Value::Int(n) => match u64::try_from(n) {
                Ok(index) => visitor.visit_u64(index),
                Err(_) => Err(SerdeError::msg(format!("integer {n} is not a valid index"))),
            },
            other => Err(SerdeError::mismatch("str", &other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// What a visitor is given, as the inside of a newtype, while a reference is
/// in the hand-over slot (see `refs`): `NetRef`'s and `Value`'s visitors take
/// the slot and ignore it. A visitor that reads it with `deserialize_any` (to
/// read the newtype's inside as a `Value`, say) is offered the reference once
/// more; any other read is an error, since a reference is no data. That
/// includes serde's buffering of untagged and internally tagged enums and of
/// flattened fields, which is why the error mentions them.
struct RefHandOff {
    /// Whether `deserialize_any` may offer the reference again. Only once:
    /// serde's buffering reads a newtype's inside with `deserialize_any`, and
    /// would go round forever.
    reoffer: bool,
}

impl RefHandOff {
    const FIRST: RefHandOff = RefHandOff { reoffer: true };
}

impl<'de> Deserializer<'de> for RefHandOff {
    type Error = SerdeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        if self.reoffer && refs::handing_over() {
            return visitor.visit_newtype_struct(RefHandOff { reoffer: false });
        }
        Err(SerdeError::msg(format!(
            "an object reference cannot be converted by value (expected {}): serde's buffered \
             content (untagged or internally tagged enums, flattened fields) cannot hold \
             object references",
            &visitor as &dyn Expected
        )))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        visitor.visit_some(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct enum identifier
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The items of a `List`, one at a time.
struct ListAccess(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for ListAccess {
    type Error = SerdeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, SerdeError> {
        self.0
            .next()
            .map(|item| seed.deserialize(ValueDeserializer(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of a `Map`, one at a time.
struct PairsAccess {
    pairs: std::vec::IntoIter<(Value, Value)>,
    /// The value of the key just returned.
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for PairsAccess {
    type Error = SerdeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SerdeError> {
        match self.pairs.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(ValueDeserializer(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, SerdeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| SerdeError::msg("map value requested before its key"))?;
        seed.deserialize(ValueDeserializer(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
}

/// An enum value: the variant (a name) and its content, if any.
struct EnumAccess {
    variant: Value,
    content: Option<Value>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = SerdeError;
    type Variant = VariantAccess;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, VariantAccess), SerdeError> {
        let variant = seed.deserialize(ValueDeserializer(self.variant))?;
        Ok((variant, VariantAccess(self.content)))
    }
}

/// The content of an enum variant: absent when the enum was a bare name.
struct VariantAccess(Option<Value>);

impl VariantAccess {
    fn content(self, kind: &str) -> Result<ValueDeserializer, SerdeError> {
        self.0.map(ValueDeserializer).ok_or_else(|| {
            SerdeError::msg(format!(
                "expected a {kind} variant with content, got a bare variant name"
            ))
        })
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = SerdeError;

    fn unit_variant(self) -> Result<(), SerdeError> {
        match self.0 {
            None | Some(Value::None) => Ok(()),
            Some(other) => Err(SerdeError::mismatch("none for a unit variant", &other)),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, SerdeError> {
        seed.deserialize(self.content("newtype")?)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        self.content("tuple")?.tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        match self.content("struct")?.0 {
            Value::Map(pairs) => visit_pairs(pairs, visitor),
            other => Err(SerdeError::mismatch("map for a struct variant", &other)),
        }
    }
}

/// Any self-describing data as a `Value`: integers must fit in an `i64`,
/// sequences become `List`, maps `Map`, `None`/unit `None`; in
/// [`from_value`], a `Value::Ref` stays the same `Value::Ref`.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// An integer that must fit in an `i64`.
fn int<N: Copy + fmt::Display + TryInto<i64>, E: de::Error>(n: N) -> Result<Value, E> {
    n.try_into()
        .map(Value::Int)
        .map_err(|_| E::custom(format!("integer {n} does not fit in 64 bits")))
}

/// Builds a `Value` from whatever the deserializer finds.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("plain data (none, bool, int, float, str, bytes, list or map)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        int(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        int(v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        int(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        // A date handed over as its text stays a date.
        Ok(match datetime::take_handed(&v) {
            Some(t) => Value::DateTime(t),
            None => Value::Str(v),
        })
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        // Tether's deserializer hands a `Value::Ref` over this way.
        match refs::take() {
            Some(r) => Ok(Value::Ref(r)),
            None => Value::deserialize(deserializer),
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(pair) = map.next_entry()? {
            pairs.push(pair);
        }
        Ok(Value::Map(pairs))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::de::IntoDeserializer;
    use serde::{Deserialize, Serialize};

    use super::from_value;
    use crate::netref::NetRef;
    use crate::service::object::Object;
    use crate::value::{to_value, Value};
    use crate::ErrorKind;

    fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
    }

    fn ints(items: &[i64]) -> Value {
        Value::List(items.iter().map(|&n| Value::Int(n)).collect())
    }

    /// The message of the error converting `value` to `T`.
    fn fails<T: serde::de::DeserializeOwned + std::fmt::Debug>(value: Value) -> String {
        let err = from_value::<T>(value).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        err.message().to_owned()
    }

    fn object() -> Value {
        struct Thing;
        impl Object for Thing {
            fn type_name(&self) -> &str {
                "Thing"
            }
        }
        Value::Ref(NetRef::new(Thing))
    }

    /// Deserializes through `deserialize_byte_buf`, like `serde_bytes::ByteBuf`.
    #[derive(Debug, PartialEq)]
    struct Buf(Vec<u8>);
    impl<'de> Deserialize<'de> for Buf {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Buf, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Buf;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Buf, E> {
                    Ok(Buf(v))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut a: A,
                ) -> Result<Buf, A::Error> {
                    let mut bytes = Vec::new();
                    while let Some(b) = a.next_element()? {
                        bytes.push(b);
                    }
                    Ok(Buf(bytes))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    #[test]
    fn primitives() {
        assert!(from_value::<bool>(Value::Bool(true)).unwrap());
        assert_eq!(from_value::<i8>(Value::Int(-128)).unwrap(), -128);
        assert_eq!(from_value::<u16>(Value::Int(65535)).unwrap(), 65535);
        assert_eq!(from_value::<i64>(Value::Int(i64::MIN)).unwrap(), i64::MIN);
        assert_eq!(
            from_value::<u64>(Value::Int(i64::MAX)).unwrap(),
            i64::MAX as u64
        );
        assert_eq!(from_value::<i128>(Value::Int(-3)).unwrap(), -3);
        assert_eq!(from_value::<u128>(Value::Int(3)).unwrap(), 3);
        assert_eq!(from_value::<f64>(Value::Float(2.5)).unwrap(), 2.5);
        assert_eq!(from_value::<f32>(Value::Float(0.5)).unwrap(), 0.5);
        assert_eq!(from_value::<f64>(Value::Int(7)).unwrap(), 7.0);
        assert_eq!(from_value::<f32>(Value::Int(-2)).unwrap(), -2.0);
        assert_eq!(from_value::<String>(s("hé")).unwrap(), "hé");
        assert_eq!(from_value::<char>(s("é")).unwrap(), 'é');
        from_value::<()>(Value::None).unwrap();
        assert_eq!(
            from_value::<Buf>(Value::Bytes(vec![0, 9].into())).unwrap(),
            Buf(vec![0, 9])
        );
        assert_eq!(from_value::<Buf>(ints(&[1, 2])).unwrap(), Buf(vec![1, 2]));
    }

    #[test]
    fn integer_range_and_type_errors() {
        assert_eq!(
            fails::<u8>(Value::Int(300)),
            "integer 300 out of range for u8"
        );
        assert_eq!(
            fails::<u64>(Value::Int(-1)),
            "integer -1 out of range for u64"
        );
        assert_eq!(
            fails::<i8>(Value::Int(-129)),
            "integer -129 out of range for i8"
        );
        assert_eq!(fails::<i32>(Value::Float(1.0)), "expected int, got float");
        assert_eq!(fails::<u8>(s("1")), "expected int, got str");
        assert_eq!(fails::<f64>(s("1.0")), "expected float, got str");
        assert_eq!(fails::<bool>(Value::Int(1)), "expected bool, got int");
        assert_eq!(
            fails::<String>(Value::Bytes(vec![].into())),
            "expected str, got bytes"
        );
        assert_eq!(
            fails::<char>(s("ab")),
            "expected a single-character str, got a str of 2 characters"
        );
        assert_eq!(fails::<()>(Value::Int(0)), "expected none, got int");
        assert_eq!(fails::<Buf>(Value::Int(0)), "expected bytes, got int");
    }

    #[test]
    fn options() {
        assert_eq!(from_value::<Option<i32>>(Value::None).unwrap(), None);
        assert_eq!(from_value::<Option<i32>>(Value::Int(4)).unwrap(), Some(4));
        assert_eq!(
            from_value::<Option<Option<String>>>(s("x")).unwrap(),
            Some(Some("x".to_owned()))
        );
        assert_eq!(fails::<Option<i32>>(s("x")), "expected int, got str");
    }

    #[test]
    fn sequences_and_bytes() {
        assert_eq!(
            from_value::<Vec<i32>>(ints(&[1, 2, 3])).unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(
            from_value::<Vec<u8>>(Value::Bytes(vec![7, 255].into())).unwrap(),
            vec![7, 255]
        );
        assert_eq!(from_value::<Vec<u8>>(ints(&[7, 8])).unwrap(), vec![7, 8]);
        assert_eq!(
            from_value::<[u8; 2]>(Value::Bytes(vec![1, 2].into())).unwrap(),
            [1, 2]
        );
        assert_eq!(
            fails::<Vec<u8>>(ints(&[256])),
            "integer 256 out of range for u8"
        );
        assert_eq!(fails::<Vec<i32>>(Value::Int(1)), "expected list, got int");
        let nested = Value::List(vec![ints(&[1]), Value::List(vec![])]);
        assert_eq!(
            from_value::<Vec<Vec<i64>>>(nested).unwrap(),
            vec![vec![1], vec![]]
        );
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Pair(i32, String);

    #[test]
    fn tuples_check_their_length() {
        let value = Value::List(vec![Value::Int(1), s("a"), Value::Bool(true)]);
        assert_eq!(
            from_value::<(i32, String, bool)>(value.clone()).unwrap(),
            (1, "a".to_owned(), true)
        );
        assert_eq!(
            fails::<(i32, String)>(value),
            "expected a tuple of 2 items, got a list of 3"
        );
        assert_eq!(
            fails::<(i32, String, bool)>(ints(&[1])),
            "expected a tuple of 3 items, got a list of 1"
        );
        let pair = Value::List(vec![Value::Int(5), s("b")]);
        assert_eq!(from_value::<Pair>(pair).unwrap(), Pair(5, "b".into()));
        assert_eq!(fails::<Pair>(s("x")), "expected list, got str");
    }

    #[test]
    fn maps() {
        let value = Value::Map(vec![(Value::Int(2), s("b")), (Value::Int(1), s("a"))]);
        let b: BTreeMap<u8, String> = from_value(value.clone()).unwrap();
        assert_eq!(
            b.into_iter().collect::<Vec<_>>(),
            [(1, "a".into()), (2, "b".into())]
        );
        let h: HashMap<i64, String> = from_value(value).unwrap();
        assert_eq!(h.get(&2).map(String::as_str), Some("b"));
        let h: HashMap<String, f64> = from_value(map(vec![("x", Value::Int(1))])).unwrap();
        assert_eq!(h["x"], 1.0);
        assert_eq!(
            fails::<HashMap<String, i32>>(ints(&[])),
            "expected map, got list"
        );
        let bad_key = Value::Map(vec![(s("k"), Value::Int(1))]);
        assert_eq!(fails::<HashMap<i32, i32>>(bad_key), "expected int, got str");
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Meters(f64);

    #[derive(Debug, PartialEq, Deserialize)]
    struct Shape {
        name: String,
        points: Vec<Point>,
        #[serde(default)]
        closed: bool,
    }

    #[test]
    fn structs() {
        from_value::<Unit>(Value::None).unwrap();
        assert_eq!(from_value::<Meters>(Value::Int(3)).unwrap(), Meters(3.0));
        let value = map(vec![
            ("name", s("tri")),
            ("extra", object()),
            (
                "points",
                Value::List(vec![map(vec![("y", Value::Int(2)), ("x", Value::Int(1))])]),
            ),
        ]);
        let shape: Shape = from_value(value).unwrap();
        assert_eq!(
            shape,
            Shape {
                name: "tri".into(),
                points: vec![Point { x: 1, y: 2 }],
                closed: false
            }
        );
        assert_eq!(
            fails::<Point>(map(vec![("x", Value::Int(1))])),
            "missing field `y`"
        );
        assert_eq!(
            fails::<Point>(ints(&[1, 2])),
            "expected map for struct Point, got list"
        );
        let bad = map(vec![("x", Value::Int(1)), ("y", s("2"))]);
        assert_eq!(fails::<Point>(bad), "expected int, got str");
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Empty,
        Circle(f64),
        Rect(u8, u8),
        Named { name: String },
    }

    #[test]
    fn enums() {
        assert_eq!(from_value::<Kind>(s("Empty")).unwrap(), Kind::Empty);
        assert_eq!(
            from_value::<Kind>(map(vec![("Empty", Value::None)])).unwrap(),
            Kind::Empty
        );
        assert_eq!(
            from_value::<Kind>(map(vec![("Circle", Value::Float(1.5))])).unwrap(),
            Kind::Circle(1.5)
        );
        assert_eq!(
            from_value::<Kind>(map(vec![("Rect", ints(&[2, 3]))])).unwrap(),
            Kind::Rect(2, 3)
        );
        assert_eq!(
            from_value::<Kind>(map(vec![("Named", map(vec![("name", s("n"))]))])).unwrap(),
            Kind::Named { name: "n".into() }
        );
        assert_eq!(
            fails::<Kind>(s("Nope")),
            "unknown variant `Nope`, expected one of `Empty`, `Circle`, `Rect`, `Named`"
        );
        assert_eq!(
            fails::<Kind>(s("Circle")),
            "expected a newtype variant with content, got a bare variant name"
        );
        assert_eq!(
            fails::<Kind>(map(vec![("Rect", ints(&[1]))])),
            "expected a tuple of 2 items, got a list of 1"
        );
        assert_eq!(
            fails::<Kind>(map(vec![("Named", ints(&[]))])),
            "expected map for a struct variant, got list"
        );
        assert_eq!(
            fails::<Kind>(map(vec![("Empty", Value::Int(1))])),
            "expected none for a unit variant, got int"
        );
        assert_eq!(
            fails::<Kind>(map(vec![])),
            "expected a map of 1 entry for enum Kind, got a map of 0 entries"
        );
        assert_eq!(
            fails::<Kind>(Value::Int(0)),
            "expected str or map for enum Kind, got int"
        );
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Num(i64),
        Text(String),
        Point { x: i32, y: i32 },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "type")]
    enum Tagged {
        A { x: i32 },
    }

    #[test]
    fn visitor_errors_use_the_same_wording() {
        assert_eq!(
            fails::<Kind>(Value::Map(vec![(Value::Int(7), Value::None)])),
            "expected variant index 0 <= i < 4, got integer `7`"
        );
        assert_eq!(
            fails::<std::num::NonZeroU8>(Value::Int(0)),
            "expected a nonzero u8, got integer `0`"
        );
        // Internally tagged enums read fields from serde's buffered content.
        let tagged = map(vec![("type", s("A")), ("x", s("2"))]);
        assert_eq!(fails::<Tagged>(tagged), "expected i32, got string \"2\"");
        let tagged = map(vec![("type", s("A")), ("x", Value::Int(1))]);
        assert_eq!(from_value::<Tagged>(tagged).unwrap(), Tagged::A { x: 1 });
        assert_eq!(
            fails::<Loose>(Value::Bool(true)),
            "data did not match any variant of untagged enum Loose"
        );
    }

    #[test]
    fn untagged_enums_use_deserialize_any() {
        assert_eq!(from_value::<Loose>(Value::Int(4)).unwrap(), Loose::Num(4));
        assert_eq!(
            from_value::<Loose>(s("t")).unwrap(),
            Loose::Text("t".into())
        );
        let point = map(vec![("x", Value::Int(1)), ("y", Value::Int(2))]);
        assert_eq!(
            from_value::<Loose>(point).unwrap(),
            Loose::Point { x: 1, y: 2 }
        );
    }

    #[test]
    fn refs_are_not_converted_by_value() {
        assert_eq!(
            fails::<i32>(object()),
            "an object reference cannot be converted by value (expected int)"
        );
        assert_eq!(
            fails::<Option<String>>(object()),
            "an object reference cannot be converted by value (expected str)"
        );
        assert_eq!(
            fails::<Point>(object()),
            "an object reference cannot be converted by value (expected map for struct Point)"
        );
        // A self-describing type (deserialize_any) that wants a number.
        #[derive(Debug)]
        struct Number;
        impl<'de> Deserialize<'de> for Number {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Number;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a number")
                    }
                    fn visit_i64<E>(self, _: i64) -> Result<Number, E> {
                        Ok(Number)
                    }
                }
                d.deserialize_any(V)
            }
        }
        from_value::<Number>(Value::Int(1)).unwrap();
        // One that reads a newtype's inside as a Value gets the reference.
        #[derive(Debug)]
        struct Inside(Value);
        impl<'de> Deserialize<'de> for Inside {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Inside, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Inside;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("anything")
                    }
                    fn visit_newtype_struct<D: serde::Deserializer<'de>>(
                        self,
                        d: D,
                    ) -> Result<Inside, D::Error> {
                        Ok(Inside(Value::deserialize(d)?))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let thing = object();
        assert_eq!(from_value::<Inside>(thing.clone()).unwrap().0, thing);
        assert_eq!(
            fails::<Number>(object()),
            "an object reference cannot be converted by value (expected a number)"
        );
        // Skipped fields and ignored values may hold references.
        let value = map(vec![
            ("x", Value::Int(1)),
            ("y", Value::Int(2)),
            ("r", object()),
        ]);
        assert_eq!(from_value::<Point>(value).unwrap(), Point { x: 1, y: 2 });
        from_value::<serde::de::IgnoredAny>(object()).unwrap();
    }

    #[test]
    fn refs_stay_refs_in_values() {
        let value = Value::List(vec![object(), map(vec![("k", object())])]);
        assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
        let items: Vec<Value> = from_value(value.clone()).unwrap();
        assert_eq!(Value::List(items), value);
        let refs: Vec<NetRef> = from_value(Value::List(vec![object()])).unwrap();
        assert_eq!(refs.len(), 1);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        id: u64,
        name: String,
        scores: Vec<f64>,
        parent: Option<Box<Record>>,
        tags: BTreeMap<String, Vec<u8>>,
        kinds: Vec<Kind>,
        pair: (i16, char),
        nothing: (),
    }

    #[test]
    fn round_trip() {
        let child = Record {
            id: 1,
            name: "child".into(),
            scores: vec![],
            parent: None,
            tags: BTreeMap::new(),
            kinds: vec![Kind::Empty],
            pair: (-1, 'c'),
            nothing: (),
        };
        let record = Record {
            id: u64::from(u32::MAX) + 1,
            name: "root".into(),
            scores: vec![1.0, -0.5],
            parent: Some(Box::new(child)),
            tags: [("a".to_owned(), vec![1, 2]), ("b".to_owned(), vec![])]
                .into_iter()
                .collect(),
            kinds: vec![
                Kind::Circle(2.0),
                Kind::Rect(1, 2),
                Kind::Named { name: "n".into() },
            ],
            pair: (300, 'é'),
            nothing: (),
        };
        let value = to_value(&record).unwrap();
        assert_eq!(value.get("id"), Some(&Value::Int(4_294_967_296)));
        assert_eq!(value.get("nothing"), Some(&Value::None));
        assert_eq!(from_value::<Record>(value).unwrap(), record);
    }

    #[test]
    fn compact_std_types_round_trip() {
        let ip = std::net::Ipv4Addr::new(10, 0, 0, 1);
        let value = to_value(&ip).unwrap();
        assert_eq!(value, ints(&[10, 0, 0, 1]));
        assert_eq!(from_value::<std::net::Ipv4Addr>(value).unwrap(), ip);
        let duration = std::time::Duration::new(3, 5);
        let value = to_value(&duration).unwrap();
        assert_eq!(
            value,
            map(vec![("secs", Value::Int(3)), ("nanos", Value::Int(5))])
        );
        assert_eq!(from_value::<std::time::Duration>(value).unwrap(), duration);
    }

    #[test]
    fn value_deserializes_as_itself() {
        let values = [
            Value::None,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Float(-1.25),
            s("t"),
            Value::Bytes(vec![0, 1].into()),
            Value::List(vec![Value::None, ints(&[1, 2])]),
            Value::Map(vec![
                (Value::Int(1), Value::Bytes(vec![].into())),
                (s("k"), map(vec![])),
            ]),
        ];
        for value in values {
            assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
            assert_eq!(to_value(&value).unwrap(), value);
        }
    }

    #[test]
    fn value_from_other_deserializers() {
        type E = serde::de::value::Error;
        let de = |n: u64| IntoDeserializer::<E>::into_deserializer(n);
        assert_eq!(Value::deserialize(de(5)).unwrap(), Value::Int(5));
        let err = Value::deserialize(de(u64::MAX)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "integer 18446744073709551615 does not fit in 64 bits"
        );
        let de = IntoDeserializer::<E>::into_deserializer(-3i128);
        assert_eq!(Value::deserialize(de).unwrap(), Value::Int(-3));
        let de = IntoDeserializer::<E>::into_deserializer('z');
        assert_eq!(Value::deserialize(de).unwrap(), s("z"));
        let de = IntoDeserializer::<E>::into_deserializer(vec![1u8, 2]);
        assert_eq!(Value::deserialize(de).unwrap(), ints(&[1, 2]));
        let de = IntoDeserializer::<E>::into_deserializer(());
        assert_eq!(Value::deserialize(de).unwrap(), Value::None);
        let de = IntoDeserializer::<E>::into_deserializer(BTreeMap::from([("k", 1u8)]));
        assert_eq!(
            Value::deserialize(de).unwrap(),
            map(vec![("k", Value::Int(1))])
        );
    }
}
