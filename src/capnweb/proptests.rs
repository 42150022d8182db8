//! Property tests of a session against messages built from Cap'n Web's
//! own words: whatever a peer sends, the session answers, aborts with a
//! reason, or goes on, and never panics; a session ended after any of it
//! holds nothing.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::session::{Kind, Session};
use crate::{NetRef, Policy};

/// JSON made mostly of the protocol's tags, small ids and nesting, so
/// that messages often mean something and sometimes almost do.
fn expression() -> impl Strategy<Value = Json> {
    let tags = prop_oneof![
        Just("push"),
        Just("pull"),
        Just("resolve"),
        Just("reject"),
        Just("release"),
        Just("abort"),
        Just("stream"),
        Just("pipeline"),
        Just("import"),
        Just("export"),
        Just("promise"),
        Just("remap"),
        Just("bigint"),
        Just("bytes"),
        Just("date"),
        Just("error"),
        Just("undefined"),
        Just("nan"),
        Just("add"),
        Just("echo"),
        Just("__inspect__"),
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (-3i64..6).prop_map(|n| json!(n)),
        tags.prop_map(|t| json!(t)),
        "[a-zA-Z0-9+/=]{0,6}".prop_map(Json::String),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            4 => vec(inner.clone(), 0..5).prop_map(Json::Array),
            1 => vec(inner.clone(), 0..4).prop_map(|items| json!([items])),
            1 => vec(("[a-z]{1,3}", inner), 0..3)
                .prop_map(|fields| Json::Object(fields.into_iter().collect())),
        ]
    })
}

/// What the test session serves: a root with `add` and `echo`.
#[derive(Clone)]
struct Root;

#[crate::expose]
impl Root {
    /// a + b.
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    /// The argument.
    #[method]
    fn echo(&self, value: crate::Value) -> crate::Value {
        value
    }
}

/// A message: mostly a message tag and its arguments, sometimes anything.
fn message() -> impl Strategy<Value = Json> {
    let kind = prop_oneof![
        Just("push"),
        Just("pull"),
        Just("resolve"),
        Just("reject"),
        Just("release"),
        Just("stream"),
    ];
    let call = (
        prop_oneof![Just("pipeline"), Just("import")],
        -2i64..4,
        vec(
            prop_oneof![Just("add"), Just("echo"), Just("__dir__"), Just("x")],
            0..3,
        ),
        vec(expression(), 0..3),
    )
        .prop_map(|(tag, id, path, args)| json!([tag, id, path, args]));
    prop_oneof![
        1 => expression(),
        2 => (kind.clone(), vec(expression(), 0..3)).prop_map(|(kind, rest)| {
            let mut items = vec![json!(kind)];
            items.extend(rest);
            Json::Array(items)
        }),
        3 => call.prop_map(|call| json!(["push", call])),
        2 => (kind, -2i64..5, -1i64..3).prop_map(|(kind, id, n)| json!([kind, id, n])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_messages_are_answered_or_refused_never_a_panic(messages in vec(message(), 1..8)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (out, mut sent) = mpsc::unbounded_channel();
            let config = super::Config { max_entries: 64, ..Default::default() };
            let session = Session::new(NetRef::new(Root), Policy::default(), config, None, out, Kind::Socket);
            for message in &messages {
                if session.receive(&message.to_string()).is_err() {
                    break;
                }
            }
            session.end();
            // What the session started stops with it: once those tasks
            // have run, nothing holds the session but this test.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            assert_eq!(std::sync::Arc::strong_count(&session), 1);
            while let Ok(text) = sent.try_recv() {
                let _: Json = serde_json::from_str(&text).expect("what the session sends is JSON");
            }
        });
    }
}
