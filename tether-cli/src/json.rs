//! Values to and from the JSON of `tether call`.
//!
//! Arguments: a literal that parses as JSON is that value (`42`, `-1.5`,
//! `true`, `null`, `"text"`, `[1, "a"]`, `{"k": 1}`); anything else is a
//! plain string, so `tether call ADDR greet world` passes `"world"`.
//!
//! Results, as JSON:
//!
//! | tether value | JSON                                     |
//! |--------------|------------------------------------------|
//! | None         | `null`                                   |
//! | Bool, Int, Str | the same                               |
//! | Float        | a number (`null` when NaN or infinite)   |
//! | Bytes        | an array of numbers 0..=255              |
//! | List         | an array                                 |
//! | Map          | an object; non-string keys become their Python-style text (`1`, `True`) |
//! | an object    | `{"$ref": "<its repr>"}`                 |
//!
//! Bytes become arrays rather than base64 so no decoder is needed
//! (`jq -r '.[]'`, `bytes(json.load(f))`), at the price of size.

use serde_json::Value as Json;
use tether::{BoxFuture, Value};

/// A command-line literal as a value. An integer beyond 64 bits is
/// refused as such (JSON would read it as the nearest float, and the
/// method would then complain of a float).
pub fn parse_literal(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Json>(text) {
        Ok(json) => {
            if let Some(n) = oversized_integer(text) {
                return Err(format!(
                    "{text}: the integer {n} is too large to send: tether's integers are \
                     64-bit ({} to {})",
                    i64::MIN,
                    i64::MAX
                ));
            }
            tether::to_value(&json).map_err(|e| format!("{text}: {}", e.message()))
        }
        Err(_) => Ok(Value::from(text)),
    }
}

/// The first integer in the JSON `text` (already parsed, so well formed)
/// that does not fit in an `i64`; strings are skipped.
fn oversized_integer(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                at += 1;
                while at < bytes.len()
                    && matches!(bytes[at], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    at += 1;
                }
                let number = &text[start..at];
                if !number.contains(['.', 'e', 'E']) && number.parse::<i64>().is_err() {
                    return Some(number);
                }
            }
            _ => at += 1,
        }
    }
    None
}

/// A `NAME=VALUE` named argument.
pub fn parse_named(text: &str) -> Result<(String, Value), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), parse_literal(value)?)),
        _ => Err(format!("--named {text:?}: expected NAME=VALUE")),
    }
}

/// A result as JSON; objects are asked for their repr.
pub fn to_json(value: Value) -> BoxFuture<'static, Json> {
    Box::pin(async move {
        match value {
            Value::None => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Int(n) => Json::from(n),
            Value::Float(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
            Value::Str(s) => Json::String(s),
            Value::Bytes(bytes) => Json::Array(bytes.into_iter().map(Json::from).collect()),
            Value::DateTime(t) => Json::String(t.to_rfc3339()),
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(to_json(item).await);
                }
                Json::Array(out)
            }
            Value::Map(pairs) => {
                let mut out = serde_json::Map::with_capacity(pairs.len());
                for (key, value) in pairs {
                    let key = match key {
                        Value::Str(s) => s,
                        other => other.to_string(),
                    };
                    out.insert(key, to_json(value).await);
                }
                Json::Object(out)
            }
            Value::Ref(netref) => {
                let repr = match netref.repr().await {
                    Ok(repr) => repr,
                    Err(_) => format!("{netref:?}"),
                };
                serde_json::json!({ "$ref": repr })
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(parse_literal("42"), Ok(Value::from(42)));
        assert_eq!(parse_literal("-1.5"), Ok(Value::from(-1.5)));
        assert_eq!(parse_literal("true"), Ok(Value::from(true)));
        assert_eq!(parse_literal("null"), Ok(Value::None));
        assert_eq!(parse_literal("\"42\""), Ok(Value::from("42")));
        assert_eq!(parse_literal("hello world"), Ok(Value::from("hello world")));
        assert_eq!(parse_literal(""), Ok(Value::from("")));
        assert_eq!(
            parse_literal("[1, \"a\"]"),
            Ok(Value::from(vec![Value::from(1), Value::from("a")]))
        );
        assert_eq!(
            parse_literal("{\"k\": [true]}"),
            Ok(Value::map([("k", Value::from(vec![Value::from(true)]))]))
        );
        assert!(parse_literal("18446744073709551615").is_err());
        assert_eq!(
            parse_literal("9223372036854775807"),
            Ok(Value::from(i64::MAX))
        );
        assert_eq!(
            parse_literal("-9223372036854775808"),
            Ok(Value::from(i64::MIN))
        );
        assert_eq!(parse_named("a=1"), Ok(("a".into(), Value::from(1))));
        assert_eq!(parse_named("a=b=c"), Ok(("a".into(), Value::from("b=c"))));
        assert!(parse_named("=1").is_err());
        assert!(parse_named("a").is_err());
    }

    #[test]
    fn integers_beyond_64_bits_say_so() {
        for (text, n) in [
            ("99999999999999999999", "99999999999999999999"),
            ("9223372036854775808", "9223372036854775808"),
            ("-9223372036854775809", "-9223372036854775809"),
            (
                r#"[1, {"k": "99999999999999999999", "n": 1e30}, 123456789012345678901]"#,
                "123456789012345678901",
            ),
        ] {
            let err = parse_literal(text).unwrap_err();
            assert!(
                err.contains(&format!("the integer {n} is too large to send")),
                "{text}: {err}"
            );
        }
        // Text and floats are not integers.
        assert_eq!(
            parse_literal(r#""99999999999999999999""#),
            Ok(Value::from("99999999999999999999"))
        );
        assert_eq!(parse_literal("1e30"), Ok(Value::from(1e30)));
        assert_eq!(oversized_integer(r#"["a\"1", 2]"#), None);
    }

    #[tokio::test]
    async fn results() {
        let value = Value::from(vec![
            Value::None,
            Value::from(1.5),
            Value::from(f64::NAN),
            Value::Bytes(vec![0, 255].into()),
            Value::Map(vec![
                (Value::from(1), Value::from("one")),
                (Value::from("k"), Value::from(true)),
            ]),
        ]);
        let json = to_json(value).await;
        assert_eq!(
            json.to_string(),
            r#"[null,1.5,null,[0,255],{"1":"one","k":true}]"#
        );
    }
}
