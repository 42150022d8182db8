//! Arbitrary bytes as one frame payload, with everything built from the
//! values in it exercised: the decoder and encoder must agree on every
//! message the decoder accepts (decode, encode, decode, encode gives the
//! same bytes twice), and reading the values into Rust types through serde
//! and `FromValue` must return Ok or Err, never panic.
#![no_main]

use std::collections::{BTreeMap, HashMap};

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use tether::{FromValue, Value};

/// A shape with most of what serde can ask a deserializer for.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Shape {
    id: u32,
    small: i8,
    name: String,
    bytes: serde_bytes::ByteBuf,
    maybe: Option<f64>,
    list: Vec<Shape>,
    map: HashMap<String, i64>,
    pair: (bool, char),
    kind: Kind,
    unit: (),
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
enum Kind {
    Plain,
    New(i64),
    Tuple(u8, String),
    Struct { a: Vec<u16>, b: Option<Box<Kind>> },
}

fn exercise(value: Value) {
    let _ = tether::from_value::<Shape>(value.clone());
    let _ = tether::from_value::<Kind>(value.clone());
    let _ = tether::from_value::<BTreeMap<String, Vec<Option<u64>>>>(value.clone());
    let _ = tether::from_value::<(i128, u128, f32)>(value.clone());
    let _ = tether::from_value::<serde_json_like::Any>(value.clone());
    let _ = <HashMap<String, Option<i64>> as FromValue>::from_value(value.clone());
    let _ = <tether::ListOf<String> as FromValue>::from_value(value.clone());
    let _ = <Vec<u8> as FromValue>::from_value(value.clone());
    let _ = <Option<f64> as FromValue>::from_value(value.clone());
    let _ = format!("{value:?}");
}

/// Whatever the value is, read it as serde's self-describing data model.
mod serde_json_like {
    use serde::de::{Deserialize, Deserializer, IgnoredAny};

    pub struct Any;

    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Any, D::Error> {
            IgnoredAny::deserialize(d).map(|_| Any)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = tether::__private::check_frame_round_trip(data);
    if let Ok(values) = tether::__private::frame_values(data) {
        values.into_iter().for_each(exercise);
    }
});
