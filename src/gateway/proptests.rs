//! Property tests of the gateway's codecs: whatever a value holds, it
//! survives the trip through XML-RPC and JSON; whatever bytes a client
//! sends, the decoders answer with a value or a fault, never a panic.

use proptest::collection::vec;
use proptest::prelude::*;

use super::{jsonrpc, xmlrpc};
use crate::Value;

/// Plain values XML-RPC carries: finite floats, string keys, text without
/// the control characters XML 1.0 forbids; depth ≤ 4.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::Float),
        "[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\u{fffe}\\u{ffff}]{0,12}".prop_map(Value::Str),
        vec(any::<u8>(), 0..=8).prop_map(|b: Vec<u8>| Value::Bytes(b.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..=8).prop_map(Value::List),
            vec(("\\PC{0,6}", inner), 0..=8).prop_map(|pairs| Value::Map(
                pairs.into_iter().map(|(k, v)| (Value::Str(k), v)).collect()
            )),
        ]
    })
}

/// Struct members with the same name twice keep both in a `Value` but not
/// in JSON; leave such values out of the JSON trip.
fn unique_keys(v: &Value) -> bool {
    match v {
        Value::List(items) => items.iter().all(unique_keys),
        Value::Map(pairs) => {
            let mut keys: Vec<_> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort();
            keys.windows(2).all(|w| w[0] != w[1]) && pairs.iter().all(|(_, v)| unique_keys(v))
        }
        _ => true,
    }
}

fn has_bytes(v: &Value) -> bool {
    match v {
        Value::Bytes(_) => true,
        Value::List(items) => items.iter().any(has_bytes),
        Value::Map(pairs) => pairs.iter().any(|(_, v)| has_bytes(v)),
        _ => false,
    }
}

/// Sorted map entries, as a JSON object returns them.
fn sorted(v: Value) -> Value {
    match v {
        Value::List(items) => Value::List(items.into_iter().map(sorted).collect()),
        Value::Map(mut pairs) => {
            pairs.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
            Value::Map(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn values_survive_xmlrpc(v in value()) {
        let response = xmlrpc::encode::response(&v).unwrap();
        let call = response
            .replace("methodResponse", "methodCall")
            .replace("<methodCall>\n", "<methodCall><methodName>m</methodName>");
        let back = xmlrpc::decode::method_call(call.as_bytes(), 32).unwrap().params;
        prop_assert_eq!(back, vec![v]);
    }

    #[test]
    fn values_survive_json(v in value().prop_filter("JSON-able", |v| unique_keys(v) && !has_bytes(v))) {
        let json = jsonrpc::json_of(&v).unwrap();
        let back = jsonrpc::value(json, 32).unwrap();
        prop_assert_eq!(sorted(back), sorted(v));
    }

    #[test]
    fn xml_decoder_never_panics_on_bytes(body in vec(any::<u8>(), 0..512)) {
        let _ = xmlrpc::decode::method_call(&body, 8);
    }

    #[test]
    fn xml_decoder_never_panics_on_damaged_calls(
        v in value(),
        cut in any::<prop::sample::Index>(),
        junk in "[<>/&;a-z\"' ]{0,4}",
    ) {
        let response = xmlrpc::encode::response(&v).unwrap();
        let call = response
            .replace("methodResponse", "methodCall")
            .replace("<methodCall>\n", "<methodCall><methodName>m</methodName>");
        let at = cut.index(call.len());
        if call.is_char_boundary(at) {
            let damaged = format!("{}{junk}{}", &call[..at], &call[at..]);
            let _ = xmlrpc::decode::method_call(damaged.as_bytes(), 8);
        }
    }
}
