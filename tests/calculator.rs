//! The source document's XML-RPC and JSON-RPC programs end to end over
//! TCP: the `Calculator` of `examples/calculator_server.rs`
//! (`addtogether`, `quadratic`, `remote_repr`, `lengths`), its
//! introspection (`examples/list_methods.rs`), the client's calls
//! (`examples/calculator_client.rs`), the same calls as one batch
//! (`examples/multicall.rs`) and `lengths` (`examples/lengths.rs`).
//!
//! `quadratic` returns its distinct roots in a fixed order: the `+` root
//! `(-b + sqrt(b² − 4ac)) / 2a` first, then the `−` root.

#[path = "../examples/calculator/service.rs"]
mod service;

use service::Calculator;
use tether::{Args, ErrorKind, IntoArgs, MemberKind, NetRef, Value};

/// A server with the calculator on an ephemeral port, and a client's root
/// reference to it (its connection stays open as long as the reference).
async fn calculator() -> NetRef {
    let server = tether::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(Calculator));
    let conn = tether::connect(addr).await.unwrap();
    conn.root().await.unwrap()
}

fn list(items: impl IntoIterator<Item = Value>) -> Value {
    Value::List(items.into_iter().collect())
}

fn floats(xs: &[f64]) -> Value {
    list(xs.iter().map(|&x| Value::Float(x)))
}

fn arthur() -> Value {
    Value::map([
        ("name", Value::from("Arthur")),
        (
            "data",
            Value::map([("age", Value::from(42)), ("sex", Value::from("M"))]),
        ),
    ])
}

/// Call and expect an error the server raised; (type name, message).
async fn fails(root: &NetRef, method: &str, args: impl IntoArgs) -> (ErrorKind, String, String) {
    let err = root.call_method(method, args).await.unwrap_err();
    assert!(err.remote().is_some(), "not raised by the server: {err:#}");
    (
        err.kind(),
        err.type_name().unwrap_or_default().to_string(),
        err.message().to_string(),
    )
}

// ---- addtogether(*things) ----

#[tokio::test]
async fn addtogether_concatenates_strings() {
    let root = calculator().await;
    let v = root
        .call_method("addtogether", ("x", "y", "z"))
        .await
        .unwrap();
    assert_eq!(v, Value::Str("xyz".into()));
}

#[tokio::test]
async fn addtogether_sums_ints_to_an_int() {
    let root = calculator().await;
    let v = root
        .call_method("addtogether", (20, 30, 4, 1))
        .await
        .unwrap();
    assert_eq!(v, Value::Int(55));
    let v = root.call_method("addtogether", (-7,)).await.unwrap();
    assert_eq!(v, Value::Int(-7));
}

#[tokio::test]
async fn addtogether_sums_floats_and_mixed_numbers_to_a_float() {
    let root = calculator().await;
    let v = root.call_method("addtogether", (1.5, 2.25)).await.unwrap();
    assert_eq!(v, Value::Float(3.75));
    let v = root.call_method("addtogether", (1, 2.5, 3)).await.unwrap();
    assert_eq!(v, Value::Float(6.5));
}

#[tokio::test]
async fn addtogether_joins_lists_and_bytes() {
    let root = calculator().await;
    let a = list([Value::from(1), Value::from("two")]);
    let b = list([]);
    let c = list([Value::from(3.0), list([Value::from(4)])]);
    let v = root.call_method("addtogether", (a, b, c)).await.unwrap();
    assert_eq!(
        v,
        list([
            Value::from(1),
            Value::from("two"),
            Value::from(3.0),
            list([Value::from(4)]),
        ])
    );
    let v = root
        .call_method(
            "addtogether",
            (
                Value::Bytes(b"ab".to_vec().into()),
                Value::Bytes(b"\x00c".to_vec().into()),
            ),
        )
        .await
        .unwrap();
    assert_eq!(v, Value::Bytes(b"ab\x00c".to_vec().into()));
}

#[tokio::test]
async fn addtogether_of_mixed_kinds_is_a_type_error() {
    let root = calculator().await;
    let (kind, type_name, message) = fails(&root, "addtogether", (1, "two")).await;
    assert_eq!(kind, ErrorKind::Remote);
    assert_eq!(type_name, "TypeError");
    assert_eq!(
        message,
        "unsupported operand type(s) for +: 'int' and 'str'"
    );

    let (_, type_name, message) = fails(&root, "addtogether", ("a", list([Value::from(1)]))).await;
    assert_eq!(type_name, "TypeError");
    assert_eq!(
        message,
        "unsupported operand type(s) for +: 'str' and 'list'"
    );

    // Booleans and None are not numbers here; a lone map does not add.
    let (_, type_name, _) = fails(&root, "addtogether", (true, 1)).await;
    assert_eq!(type_name, "TypeError");
    let (_, type_name, _) = fails(&root, "addtogether", (Value::None,)).await;
    assert_eq!(type_name, "TypeError");
    let (_, type_name, _) = fails(&root, "addtogether", (arthur(),)).await;
    assert_eq!(type_name, "TypeError");
}

#[tokio::test]
async fn addtogether_of_nothing_is_a_type_error() {
    let root = calculator().await;
    let (kind, type_name, message) = fails(&root, "addtogether", ()).await;
    assert_eq!(kind, ErrorKind::Remote);
    assert_eq!(type_name, "TypeError");
    assert!(message.contains("at least one"), "{message}");
}

#[tokio::test]
async fn addtogether_reports_int_overflow() {
    let root = calculator().await;
    let (_, type_name, _) = fails(&root, "addtogether", (i64::MAX, 1)).await;
    assert_eq!(type_name, "OverflowError");
}

// ---- quadratic(a, b, c) ----

#[tokio::test]
async fn quadratic_returns_the_plus_root_then_the_minus_root() {
    let root = calculator().await;
    // 2x² − 4x = 0: x = (4 ± 4) / 4.
    let v = root.call_method("quadratic", (2, -4, 0)).await.unwrap();
    assert_eq!(v, floats(&[2.0, 0.0]));
    // x² − 3x + 2 = 0: x = 2 or 1.
    let v = root.call_method("quadratic", (1, -3, 2)).await.unwrap();
    assert_eq!(v, floats(&[2.0, 1.0]));
    // Floats too; 4x² − 1 = 0: x = ±0.5.
    let v = root
        .call_method("quadratic", (4.0, 0.0, -1.0))
        .await
        .unwrap();
    assert_eq!(v, floats(&[0.5, -0.5]));
}

#[tokio::test]
async fn quadratic_gives_a_double_root_once() {
    let root = calculator().await;
    let v = root.call_method("quadratic", (1, 2, 1)).await.unwrap();
    assert_eq!(v, floats(&[-1.0]));
    // x² = 0: one root, 0.0 (not -0.0).
    let v = root.call_method("quadratic", (1, 0, 0)).await.unwrap();
    assert_eq!(v.to_string(), "[0.0]");
}

#[tokio::test]
async fn quadratic_without_real_roots_is_a_math_domain_error() {
    let root = calculator().await;
    let err = root.call_method("quadratic", (1, 0, 1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote, "{err:#}");
    assert_eq!(err.type_name(), Some("ValueError"), "{err:#}");
    assert_eq!(err.message(), "math domain error");
    assert_eq!(err.to_string(), "ValueError: math domain error");
    let remote = err.remote().unwrap();
    assert_eq!(remote.type_name(), "ValueError");
    assert_eq!(remote.message(), "math domain error");
    // The connection is fine afterwards.
    let v = root.call_method("quadratic", (1, 2, 1)).await.unwrap();
    assert_eq!(v, floats(&[-1.0]));
}

#[tokio::test]
async fn quadratic_with_a_zero_is_an_error() {
    let root = calculator().await;
    let (kind, type_name, message) = fails(&root, "quadratic", (0, 2, 1)).await;
    assert_eq!(kind, ErrorKind::Remote);
    assert_eq!(type_name, "ZeroDivisionError");
    assert!(message.contains("a = 0"), "{message}");
}

#[tokio::test]
async fn quadratic_with_bad_arguments_names_the_parameter() {
    let root = calculator().await;
    let err = root.call_method("quadratic", (1, 2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err:#}");
    assert!(err.message().contains("quadratic"), "{err:#}");
    assert!(err.message().contains("'c'"), "{err:#}");

    let err = root
        .call_method("quadratic", ("one", 2, 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err:#}");
    assert!(err.message().contains("'a'"), "{err:#}");
    assert!(err.message().contains("float"), "{err:#}");

    let err = root
        .call_method("quadratic", (1, 2, 3, 4))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err:#}");
}

// ---- remote_repr(arg) ----

#[tokio::test]
async fn remote_repr_echoes_a_tuple_as_a_list() {
    let root = calculator().await;
    let v = root
        .call_method("remote_repr", ((1, 2.0, "three"),))
        .await
        .unwrap();
    assert_eq!(
        v,
        list([Value::Int(1), Value::Float(2.0), Value::from("three")])
    );
    assert_eq!(v.to_string(), "[1, 2.0, 'three']");
}

#[tokio::test]
async fn remote_repr_echoes_a_list() {
    let root = calculator().await;
    let sent = list([Value::Int(1), Value::Float(2.0), Value::from("three")]);
    let v = root
        .call_method("remote_repr", (sent.clone(),))
        .await
        .unwrap();
    assert_eq!(v, sent);
}

#[tokio::test]
async fn remote_repr_echoes_nested_maps_in_order() {
    let root = calculator().await;
    let v = root.call_method("remote_repr", (arthur(),)).await.unwrap();
    assert_eq!(v, arthur());
    assert_eq!(
        v.to_string(),
        "{'name': 'Arthur', 'data': {'age': 42, 'sex': 'M'}}"
    );
}

#[tokio::test]
async fn remote_repr_echoes_every_kind_of_data() {
    let root = calculator().await;
    for sent in [
        Value::None,
        Value::Bool(true),
        Value::Int(i64::MIN),
        Value::Float(-0.125),
        Value::from("naïve 'quoted'\n"),
        Value::Bytes(vec![0, 159, 255].into()),
        list([]),
        Value::Map(vec![]),
        Value::Map(vec![(Value::Int(1), list([Value::None]))]),
    ] {
        let v = root
            .call_method("remote_repr", (sent.clone(),))
            .await
            .unwrap();
        assert_eq!(v, sent);
    }
}

// ---- lengths(*args) ----

#[tokio::test]
async fn lengths_pairs_each_argument_with_its_length_or_none() {
    let root = calculator().await;
    let v = root
        .call_method("lengths", ("hi", 27, "itsgoodday"))
        .await
        .unwrap();
    assert_eq!(
        v,
        list([
            list([Value::from("hi"), Value::Int(2)]),
            list([Value::Int(27), Value::None]),
            list([Value::from("itsgoodday"), Value::Int(10)]),
        ])
    );
    assert_eq!(v.to_string(), "[['hi', 2], [27, None], ['itsgoodday', 10]]");
}

#[tokio::test]
async fn lengths_counts_characters_items_and_entries() {
    let root = calculator().await;
    let args: Vec<Value> = vec![
        Value::from("héllo"),
        Value::Bytes(vec![1, 2, 3].into()),
        list([Value::None, Value::None]),
        arthur(),
        Value::Float(2.5),
        Value::Bool(false),
        Value::None,
    ];
    let v = root.call_method("lengths", args.clone()).await.unwrap();
    let lens: Vec<Value> = v
        .as_list()
        .unwrap()
        .iter()
        .map(|pair| pair.as_list().unwrap()[1].clone())
        .collect();
    assert_eq!(
        lens,
        vec![
            Value::Int(5),
            Value::Int(3),
            Value::Int(2),
            Value::Int(2),
            Value::None,
            Value::None,
            Value::None,
        ]
    );
    let echoed: Vec<Value> = v
        .as_list()
        .unwrap()
        .iter()
        .map(|pair| pair.as_list().unwrap()[0].clone())
        .collect();
    assert_eq!(echoed, args);
    assert_eq!(root.call_method("lengths", ()).await.unwrap(), list([]));
}

// ---- introspection (list_methods) ----

#[tokio::test]
async fn introspection_lists_the_four_methods_with_signatures_and_help() {
    let root = calculator().await;
    let members = root.inspect().await.unwrap();
    let methods: Vec<(&str, &str)> = members
        .iter()
        .filter(|m| m.kind == MemberKind::Method)
        .map(|m| (&*m.name, &*m.signature))
        .collect();
    assert_eq!(
        methods,
        vec![
            ("addtogether", "(*things) -> any"),
            ("quadratic", "(a: float, b: float, c: float) -> list[float]"),
            ("remote_repr", "(arg: any) -> any"),
            ("lengths", "(*args) -> list[tuple[any, int | None]]"),
        ]
    );
    let doc = |name: &str| {
        members
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .doc
            .to_string()
    };
    assert!(doc("addtogether").starts_with("Add together everything in the list `things`"));
    assert!(doc("quadratic").starts_with("Determine `x` values satisfying"));
    assert!(doc("remote_repr").starts_with("Return the supplied `arg` unchanged"));
    assert!(doc("lengths").starts_with("For each argument, the pair `[arg, length]`"));
    // Doc comments only: no leading `///` spaces, lines joined by newlines.
    assert!(!doc("quadratic").contains("  "), "{}", doc("quadratic"));

    let mut names = root.dir().await.unwrap();
    names.sort();
    assert_eq!(
        names,
        vec!["addtogether", "lengths", "quadratic", "remote_repr"]
    );
}

#[tokio::test]
async fn methods_not_exposed_are_not_reachable() {
    let root = calculator().await;
    let err = root
        .call_method("add_together", ((1, 2),))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err:#}");
}

// ---- multicall ----

/// The client example's calls, the failing one in the middle.
fn document_calls() -> Vec<(&'static str, Args)> {
    vec![
        ("addtogether", ("x", "y", "z").into_args()),
        ("addtogether", (20, 30, 4, 1).into_args()),
        ("quadratic", (2, -4, 0).into_args()),
        ("quadratic", (1, 0, 1).into_args()),
        ("quadratic", (1, 2, 1).into_args()),
        ("remote_repr", ((1, 2.0, "three"),).into_args()),
        (
            "remote_repr",
            (list([
                Value::from(1),
                Value::from(2.0),
                Value::from("three"),
            ]),)
                .into_args(),
        ),
        ("remote_repr", (arthur(),).into_args()),
        ("lengths", ("hi", 27, "itsgoodday").into_args()),
    ]
}

#[tokio::test]
async fn a_multicall_batch_returns_every_outcome_in_order() {
    let root = calculator().await;
    let conn = root.connection().unwrap();
    let mut batch = conn.batch();
    for (i, (method, args)) in document_calls().into_iter().enumerate() {
        assert_eq!(batch.call_method(&root, method, args).unwrap(), i);
    }
    let outcomes = batch.send().await.unwrap();
    assert_eq!(outcomes.len(), 9);

    let three = list([Value::Int(1), Value::Float(2.0), Value::from("three")]);
    let expected = [
        Some(Value::from("xyz")),
        Some(Value::Int(55)),
        Some(floats(&[2.0, 0.0])),
        None,
        Some(floats(&[-1.0])),
        Some(three.clone()),
        Some(three),
        Some(arthur()),
        Some(list([
            list([Value::from("hi"), Value::Int(2)]),
            list([Value::Int(27), Value::None]),
            list([Value::from("itsgoodday"), Value::Int(10)]),
        ])),
    ];
    for (i, (outcome, expected)) in outcomes.iter().zip(expected).enumerate() {
        match (outcome, expected) {
            (Ok(v), Some(want)) => assert_eq!(v, &want, "call {i}"),
            (Err(err), None) => {
                assert_eq!(err.type_name(), Some("ValueError"), "{err:#}");
                assert_eq!(err.message(), "math domain error");
            }
            (outcome, expected) => panic!("call {i}: got {outcome:?}, expected {expected:?}"),
        }
    }
}

#[tokio::test]
async fn a_batch_gives_the_same_values_as_single_calls() {
    let root = calculator().await;
    let conn = root.connection().unwrap();
    let mut batch = conn.batch();
    for (method, args) in document_calls() {
        batch.call_method(&root, method, args).unwrap();
    }
    let outcomes = batch.send().await.unwrap();
    for ((method, args), outcome) in document_calls().into_iter().zip(outcomes) {
        let single = root.call_method(method, args).await;
        match (single, outcome) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{method}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{method}"),
            (a, b) => panic!("{method}: single {a:?}, batched {b:?}"),
        }
    }
}

#[tokio::test]
async fn many_calls_in_flight_at_once_each_get_their_own_answer() {
    let root = calculator().await;
    // Spawned together, the calls are pipelined on the one connection.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let root = root.clone();
            tokio::spawn(async move { root.call_method("addtogether", (i, i, 1)).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), Value::Int(2 * i as i64 + 1));
    }
}
