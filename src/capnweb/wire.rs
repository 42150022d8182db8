//! Cap'n Web's JSON: reading a message within the limits, and writing
//! tether values and errors as its expressions.
//!
//! A message is one JSON value, usually an array whose first element names
//! it (`["push", expr]`). In an expression, JSON's own types stand for
//! themselves, except arrays: `[[...]]` is an array, and any other array
//! is a typed value (`["bigint", "123"]`, `["bytes", "AAE"]`) or a
//! reference (`["export", -1]`). Reading references is the session's
//! business (`eval`); plain values are written here.

use base64::Engine as _;
use serde_json::{json, Value as Json};

use crate::error::{raise, RemoteError};
use crate::{Error, ErrorKind, NetRef, Value};

/// The largest integer JavaScript's numbers hold exactly (2^53 - 1);
/// integers past it travel as `bigint`.
pub(crate) const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Most digits of a `bigint` read (an `i64` has 19).
const MAX_BIGINT_DIGITS: usize = 40;

/// Parse one message, refusing one nested deeper than `max_depth`. The
/// size was checked by the transport.
pub(crate) fn parse(text: &str, max_depth: usize) -> Result<Json, Error> {
    // serde_json refuses nesting past 128 on its own, so parsing itself
    // cannot exhaust the stack; the depth walk below is iterative.
    let message: Json = serde_json::from_str(text)
        .map_err(|e| raise::protocol(format!("a message that is not JSON: {e}")))?;
    let mut stack = vec![(&message, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Json>> = match value {
            Json::Array(items) => Box::new(items.iter()),
            Json::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        if depth >= max_depth {
            return Err(raise::limit(format!(
                "a message nested deeper than {max_depth} levels (capnweb::Config::max_depth)"
            )));
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(message)
}

/// The number `n` as a tether value: an integer when it is one exactly.
pub(crate) fn number(n: &serde_json::Number) -> Value {
    match n.as_i64() {
        Some(i) => Value::Int(i),
        None => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() <= MAX_SAFE_INTEGER as f64 => {
                Value::Int(x as i64)
            }
            Some(x) => Value::Float(x),
            None => Value::Float(f64::NAN),
        },
    }
}

/// A `bigint`'s decimal text as an integer, if it fits 64 bits.
pub(crate) fn bigint(digits: &str) -> Result<Value, Error> {
    if digits.len() > MAX_BIGINT_DIGITS {
        return Err(raise::limit(format!(
            "a bigint of {} digits: tether's integers have 64 bits",
            digits.len()
        )));
    }
    digits.parse::<i64>().map(Value::Int).map_err(|_| {
        raise::bad_args(format!(
            "the bigint {digits} does not fit tether's 64-bit integers"
        ))
    })
}

/// A `bytes` expression's base64 text (padded or not).
pub(crate) fn bytes(text: &str) -> Result<Value, Error> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(text)
        .map(Value::from)
        .map_err(|e| raise::protocol(format!("bytes that are not base64: {e}")))
}

/// Write `value` as an expression; `reference` writes each object.
pub(crate) fn encode(value: &Value, reference: &mut dyn FnMut(&NetRef) -> Json) -> Json {
    match value {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) if n.unsigned_abs() <= MAX_SAFE_INTEGER as u64 => json!(n),
        Value::Int(n) => json!(["bigint", n.to_string()]),
        Value::Float(x) if x.is_nan() => json!(["nan"]),
        Value::Float(x) if x.is_infinite() && *x > 0.0 => json!(["inf"]),
        Value::Float(x) if x.is_infinite() => json!(["-inf"]),
        Value::Float(x) => json!(x),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => json!([
            "bytes",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
        ]),
        Value::DateTime(t) => json!(["date", t.unix_millis()]),
        Value::List(items) => {
            let items = items.iter().map(|v| encode(v, reference)).collect();
            Json::Array(vec![Json::Array(items)])
        }
        Value::Map(pairs) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| (key_text(k), encode(v, reference)))
                .collect(),
        ),
        Value::Ref(netref) => reference(netref),
    }
}

/// A map key as JavaScript's property name: text as it is, other keys as
/// Python would print them.
fn key_text(key: &Value) -> String {
    match key {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An error as the expression `["error", name, message, stack, props]`:
/// the JavaScript class by kind (`TypeError` for bad arguments and type
/// errors, `RangeError` for limits, `Error` otherwise), tether's type name
/// and kind as the properties `type` and `kind`. No stack.
pub(crate) fn error(err: &RemoteError) -> Json {
    let class = match err.kind() {
        ErrorKind::BadArguments | ErrorKind::Type => "TypeError",
        ErrorKind::LimitExceeded => "RangeError",
        _ => "Error",
    };
    json!([
        "error",
        class,
        err.message(),
        null,
        { "type": err.type_name(), "kind": err.kind().as_str() }
    ])
}

/// The error an `["error", name, message, ...]` expression describes, as
/// raised by the peer.
pub(crate) fn read_error(items: &[Json], location: &str) -> Option<Error> {
    let name = items.get(1)?.as_str()?;
    let message = items.get(2)?.as_str()?;
    let type_name = items
        .get(4)
        .and_then(|props| props.get("type"))
        .and_then(Json::as_str)
        .unwrap_or(name);
    Some(Error::from_remote(
        Error::app(type_name, message).to_remote(location),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_refs(_: &NetRef) -> Json {
        unreachable!("no references here")
    }

    #[test]
    fn values_are_written_as_capnweb_reads_them() {
        let value = Value::List(vec![
            Value::Int(1),
            Value::Int(1 << 60),
            Value::Float(f64::INFINITY),
            Value::from("x"),
            Value::Bytes(vec![0, 1, 2, 3].into()),
            Value::map([("k", Value::None)]),
        ]);
        assert_eq!(
            encode(&value, &mut no_refs),
            json!([[
                1,
                ["bigint", "1152921504606846976"],
                ["inf"],
                "x",
                ["bytes", "AAECAw"],
                {"k": null}
            ]])
        );
    }

    #[test]
    fn numbers_and_bigints_read_as_integers_where_exact() {
        assert_eq!(number(&serde_json::Number::from(7)), Value::Int(7));
        let two = serde_json::Number::from_f64(2.0).unwrap();
        assert_eq!(number(&two), Value::Int(2));
        let half = serde_json::Number::from_f64(0.5).unwrap();
        assert_eq!(number(&half), Value::Float(0.5));
        assert_eq!(bigint("-42").unwrap(), Value::Int(-42));
        assert_eq!(
            bigint("99999999999999999999").unwrap_err().kind(),
            ErrorKind::BadArguments
        );
        assert_eq!(
            bigint(&"9".repeat(10_000)).unwrap_err().kind(),
            ErrorKind::LimitExceeded
        );
        assert_eq!(
            bytes("AAECAw").unwrap(),
            Value::Bytes(vec![0, 1, 2, 3].into())
        );
        assert_eq!(
            bytes("AAECAw==").unwrap(),
            Value::Bytes(vec![0, 1, 2, 3].into())
        );
    }

    #[test]
    fn deep_messages_are_refused_before_they_are_read() {
        let deep = format!("{}1{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(
            parse(&deep, 64).unwrap_err().kind(),
            ErrorKind::LimitExceeded
        );
        let fine = format!("{}1{}", "[".repeat(64), "]".repeat(64));
        assert!(parse(&fine, 64).is_ok());
        assert_eq!(parse("[1,", 64).unwrap_err().kind(), ErrorKind::Protocol);
    }
}
