//! Property tests: arbitrary values survive a real connection unchanged,
//! serde types survive `to_value`/`from_value`, and the frame decoder never
//! panics on arbitrary or mutated bytes.

mod support;

use std::collections::HashMap;

use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tether::{Args, Connection, NetRef, Value};
use tokio::runtime::Runtime;

use support::wire::{text, varint};
use support::TestService;

// ------------------------------------------------------------ strategies

fn float() -> impl Strategy<Value = f64> {
    // Value's PartialEq compares f64 with ==, so NaN never equals itself.
    any::<f64>().prop_filter("NaN is not equal to itself", |x| !x.is_nan())
}

/// Any date tether carries: the years 1 to 9999, to the nanosecond.
fn datetime() -> impl Strategy<Value = tether::DateTime> {
    (-62_135_596_800i64..=253_402_300_799, 0u32..1_000_000_000)
        .prop_map(|(s, n)| tether::DateTime::from_unix(s, n).unwrap())
}

/// Any `Value` without references: depth ≤ 4, collections of ≤ 8 items.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1i64),
            Just(250),
            Just(251)
        ]
        .prop_map(Value::Int),
        float().prop_map(Value::Float),
        "\\PC{0,8}".prop_map(Value::Str),
        vec(any::<u8>(), 0..=8).prop_map(|b: Vec<u8>| Value::Bytes(b.into())),
        datetime().prop_map(Value::DateTime),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..=8).prop_map(Value::List),
            vec((inner.clone(), inner), 0..=8).prop_map(Value::Map),
        ]
    })
}

// ------------------------------------------------------------ one connection for all cases

/// A runtime and an in-memory connection to a `TestService`, shared by every
/// case of a property (proptest itself is synchronous).
struct Echo {
    rt: Runtime,
    root: NetRef,
    _conns: (Connection, Connection),
}

impl Echo {
    fn new() -> Echo {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (conns, root) = rt.block_on(async {
            let (client, server) = support::memory_pair(TestService::default()).await;
            let root = client.root().await.expect("root");
            ((client, server), root)
        });
        Echo {
            rt,
            root,
            _conns: conns,
        }
    }

    fn echo(&self, v: Value) -> Value {
        self.rt
            .block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    self.root.call_method("echo", Args::new().arg(v)),
                )
                .await
                .expect("echo timed out")
            })
            .expect("echo failed")
    }
}

#[test]
fn any_value_survives_an_echo_unchanged() {
    let echo = Echo::new();
    proptest!(ProptestConfig::with_cases(64), |(v in value())| {
        let back = echo.echo(v.clone());
        prop_assert_eq!(back, v);
    });
}

/// Bytes patterned so that a part out of place shows.
fn patterned(n: usize, seed: u8) -> Value {
    Value::Bytes(
        (0..n)
            .map(|i| (i % 251) as u8 ^ seed)
            .collect::<Vec<u8>>()
            .into(),
    )
}

/// Large bytes values are written from their own memory, between the
/// encoded bytes around them: over TCP and in memory, alone, several in
/// one frame, and many frames at once (queued to the writer), every byte
/// arrives in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bytes_arrive_whole_whether_written_in_parts_or_not() {
    let server = tether::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(TestService::default()));
    let tcp = tether::connect(addr).await.unwrap();
    let (memory, _server) = support::memory_pair(TestService::default()).await;
    for conn in [&tcp, &memory] {
        let root = conn.root().await.unwrap();
        for n in [0, 100, 16 * 1024 - 1, 16 * 1024, 65_536, 1 << 20] {
            let v = patterned(n, 7);
            assert_eq!(
                root.call_method("echo", (v.clone(),)).await.unwrap(),
                v,
                "{n}"
            );
        }
        let several = Value::List(vec![
            patterned(65_536, 1),
            Value::from("between"),
            patterned(20_000, 2),
            patterned(10, 3),
            patterned(300_000, 4),
        ]);
        let back = root.call_method("echo", (several.clone(),)).await.unwrap();
        assert_eq!(back, several);
        let calls = (0..16u8).map(|i| {
            let root = root.clone();
            async move {
                let v = patterned(100_000 + usize::from(i) * 1000, i);
                (root.call_method("echo", (v.clone(),)).await.unwrap(), v)
            }
        });
        for (back, sent) in futures_util::future::join_all(calls).await {
            assert_eq!(back, sent);
        }
    }
}

// ------------------------------------------------------------ serde

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(i32, i32),
    Named { name: String, sides: Option<u8> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meters(f32);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inner {
    label: String,
    weight: Option<f64>,
    flags: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u32,
    name: String,
    small: i8,
    letter: char,
    length: Meters,
    pair: (i64, String),
    tags: Vec<String>,
    counts: HashMap<String, i64>,
    shape: Shape,
    shapes: Vec<Shape>,
    inner: Option<Inner>,
    children: Vec<Inner>,
    maybe_list: Option<Vec<Option<i64>>>,
    at: tether::DateTime,
    when: Option<tether::DateTime>,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        float().prop_map(Shape::Circle),
        (any::<i32>(), any::<i32>()).prop_map(|(w, h)| Shape::Rect(w, h)),
        ("\\PC{0,8}", any::<Option<u8>>()).prop_map(|(name, sides)| Shape::Named { name, sides }),
    ]
}

fn inner() -> impl Strategy<Value = Inner> {
    (
        "\\PC{0,8}",
        proptest::option::of(float()),
        vec(any::<bool>(), 0..=8),
    )
        .prop_map(|(label, weight, flags)| Inner {
            label,
            weight,
            flags,
        })
}

fn record() -> impl Strategy<Value = Record> {
    let scalars = (
        any::<u32>(),
        "\\PC{0,8}",
        any::<i8>(),
        any::<char>(),
        any::<f32>().prop_filter("not NaN", |x| !x.is_nan()),
        (any::<i64>(), "\\PC{0,8}"),
    );
    let collections = (
        vec("\\PC{0,8}", 0..=8),
        hash_map("\\PC{0,8}", any::<i64>(), 0..=8),
        shape(),
        vec(shape(), 0..=8),
        proptest::option::of(inner()),
        vec(inner(), 0..=4),
        proptest::option::of(vec(any::<Option<i64>>(), 0..=8)),
    );
    let dates = (datetime(), proptest::option::of(datetime()));
    (scalars, collections, dates).prop_map(
        |(
            (id, name, small, letter, length, pair),
            (tags, counts, shape, shapes, inner, children, maybe_list),
            (at, when),
        )| Record {
            id,
            name,
            small,
            letter,
            length: Meters(length),
            pair,
            tags,
            counts,
            shape,
            shapes,
            inner,
            children,
            maybe_list,
            at,
            when,
        },
    )
}

#[test]
fn serde_records_survive_to_value_and_from_value() {
    proptest!(ProptestConfig::with_cases(128), |(r in record())| {
        let v = tether::to_value(&r).expect("to_value");
        prop_assert!(matches!(v, Value::Map(_)), "a struct becomes a map: {:?}", v);
        let back: Record = tether::from_value(v).expect("from_value");
        prop_assert_eq!(back, r);
    });
}

#[test]
fn serde_records_survive_an_echo() {
    let echo = Echo::new();
    proptest!(ProptestConfig::with_cases(32), |(r in record())| {
        let v = tether::to_value(&r).expect("to_value");
        let back: Record = tether::from_value(echo.echo(v)).expect("from_value");
        prop_assert_eq!(back, r);
    });
}

// ------------------------------------------------------------ frame decoder

/// A value in its wire form, written by hand from the protocol description.
fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::None => out.push(0),
        Value::Bool(false) => out.push(1),
        Value::Bool(true) => out.push(2),
        Value::Int(n) => {
            out.push(3);
            varint(out, ((n << 1) ^ (n >> 63)) as u64);
        }
        Value::Float(x) => {
            out.push(4);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Str(s) => {
            out.push(5);
            text(out, s);
        }
        Value::Bytes(b) => {
            out.push(6);
            varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::DateTime(t) => {
            out.push(12);
            let s = t.unix_seconds();
            varint(out, ((s << 1) ^ (s >> 63)) as u64);
            varint(out, u64::from(t.subsec_nanos()));
        }
        Value::List(items) => {
            out.push(7);
            varint(out, items.len() as u64);
            items.iter().for_each(|i| encode_value(out, i));
        }
        Value::Map(pairs) => {
            out.push(8);
            varint(out, pairs.len() as u64);
            for (k, v) in pairs {
                encode_value(out, k);
                encode_value(out, v);
            }
        }
        Value::Ref(_) => unreachable!("strategies make no references"),
    }
}

/// Valid payloads of every message kind, built around `v`, each with the
/// values it carries (as `frame_values` lists them).
fn valid_payloads(v: &Value, n: u64) -> Vec<(Vec<u8>, Vec<Value>)> {
    let mut val = Vec::new();
    encode_value(&mut val, v);
    let mut out = Vec::new();

    // Request { seq, target, timeout_ms, CallMethod("echo", [v], scale=v) }
    let mut p = vec![0];
    varint(&mut p, n);
    varint(&mut p, n.rotate_left(32));
    varint(&mut p, 30_000);
    p.push(5);
    text(&mut p, "echo");
    varint(&mut p, 1);
    p.extend_from_slice(&val);
    varint(&mut p, 1);
    text(&mut p, "scale");
    p.extend_from_slice(&val);
    out.push((p, vec![v.clone(), v.clone()]));

    // Request with SetAttr, Eq, Next and the argument-less operations.
    for op in [2u8, 10, 12, 0, 6, 7, 8, 9, 11, 13, 1, 3] {
        let mut p = vec![0];
        varint(&mut p, n);
        varint(&mut p, 1);
        varint(&mut p, 0);
        p.push(op);
        let mut carried = vec![];
        match op {
            2 => {
                text(&mut p, "label");
                p.extend_from_slice(&val);
                carried.push(v.clone());
            }
            10 => {
                p.extend_from_slice(&val);
                carried.push(v.clone());
            }
            12 => varint(&mut p, n & 0xffff_ffff),
            1 | 3 => text(&mut p, "name"),
            _ => {}
        }
        out.push((p, carried));
    }

    // ReplyOk { seq, v }
    let mut p = vec![1];
    varint(&mut p, n);
    p.extend_from_slice(&val);
    out.push((p, vec![v.clone()]));

    // ReplyErr { seq, kind, type, message, trace, cause: one level }
    let mut p = vec![2];
    varint(&mut p, n);
    for level in 0..2 {
        p.push(12);
        text(&mut p, "ValueError");
        text(&mut p, "math domain error");
        varint(&mut p, 1);
        text(&mut p, "in quadratic()");
        p.push(if level == 0 { 1 } else { 0 });
    }
    out.push((p, vec![]));

    // Release, Cancel, Ping, Pong, Close
    let mut p = vec![3];
    varint(&mut p, 2);
    for id in [n, u64::MAX - n] {
        varint(&mut p, id);
        varint(&mut p, 1);
    }
    out.push((p, vec![]));
    for tag in [4u8, 5, 6] {
        let mut p = vec![tag];
        varint(&mut p, n);
        out.push((p, vec![]));
    }
    let mut p = vec![7];
    text(&mut p, "bye");
    out.push((p, vec![]));
    out
}

/// How to damage a payload.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Xor(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Xor(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match *m {
        Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
        _ if len == 0 => {}
        Mutation::Set(i, b) => bytes[i % len] = b,
        Mutation::Xor(i, b) => bytes[i % len] ^= b,
        Mutation::Remove(i) => {
            bytes.remove(i % len);
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
    }
}

#[test]
fn the_decoder_accepts_every_hand_built_valid_frame() {
    proptest!(ProptestConfig::with_cases(64), |(v in value(), n in any::<u64>())| {
        for (payload, carried) in valid_payloads(&v, n) {
            let decoded = tether::__private::frame_values(&payload);
            prop_assert!(decoded.is_ok(), "{:?} on {:02x?}", decoded, payload);
            prop_assert_eq!(decoded.unwrap(), carried, "on {:02x?}", payload);
        }
    });
}

#[test]
fn the_decoder_never_panics_on_arbitrary_bytes() {
    proptest!(ProptestConfig::with_cases(2048), |(bytes in vec(any::<u8>(), 0..=256))| {
        let _ = tether::__private::decode_frame(&bytes);
    });
}

#[test]
fn the_decoder_never_panics_on_mutated_frames() {
    proptest!(
        ProptestConfig::with_cases(512),
        |(v in value(), n in any::<u64>(), which in any::<usize>(), ms in vec(mutation(), 1..=8))| {
            let payloads = valid_payloads(&v, n);
            let mut bytes = payloads[which % payloads.len()].0.clone();
            for m in &ms {
                apply(&mut bytes, m);
            }
            let _ = tether::__private::decode_frame(&bytes);
        }
    );
}

#[test]
fn the_decoder_refuses_deep_nesting_and_huge_claims_without_panicking() {
    // Deterministic edges next to the random ones above.
    let mut deep = vec![1, 1];
    for _ in 0..100_000 {
        deep.extend_from_slice(&[7, 1]);
    }
    deep.push(0);
    let err = tether::__private::decode_frame(&deep).unwrap_err();
    assert_eq!(err.kind(), tether::ErrorKind::Protocol);
    assert!(err.message().contains("nests deeper"), "{err}");

    for claim in [
        vec![1u8, 1, 5],
        vec![1, 1, 6],
        vec![1, 1, 7],
        vec![1, 1, 8],
        vec![3],
    ] {
        let mut p = claim;
        varint(&mut p, u64::MAX);
        let err = tether::__private::decode_frame(&p).unwrap_err();
        assert_eq!(err.kind(), tether::ErrorKind::Protocol, "{err}");
    }
    assert!(tether::__private::decode_frame(&[]).is_err());
}
