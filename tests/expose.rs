//! `#[tether::expose]` over a real (in-memory) connection: argument and
//! result conversion, attributes, visibility, introspection and errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tether::{Args, Builder, Connection, Error, ErrorKind, MemberKind, NetRef, Object, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

/// The object most tests talk to: one member of each shape.
#[derive(Default)]
struct Toolbox {
    label: Mutex<String>,
    blob: Mutex<Vec<u8>>,
    hits: AtomicI64,
}

#[tether::expose]
impl Toolbox {
    /// Add two integers.
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        self.hits.fetch_add(1, Ordering::SeqCst);
        a + b
    }

    /// Add two integers, after yielding once.
    #[method]
    async fn add_later(&self, a: i64, b: i64) -> i64 {
        tokio::task::yield_now().await;
        a + b
    }

    /// Greet someone.
    ///
    /// Says hello `times` times (once when left out).
    #[method]
    fn greet(&self, name: String, times: Option<i64>) -> Vec<String> {
        (0..times.unwrap_or(1))
            .map(|_| format!("hello {name}"))
            .collect()
    }

    /// Sum any number of floats.
    #[method]
    fn total(&self, #[rest] things: Vec<f64>) -> f64 {
        things.iter().sum()
    }

    /// Scale the positional rest by a leading factor.
    #[method]
    fn scaled(&self, factor: i64, #[rest] things: Vec<i64>) -> Vec<i64> {
        things.iter().map(|t| t * factor).collect()
    }

    /// The point halfway between two points.
    #[method]
    fn midpoint(&self, a: Point, b: Point) -> Point {
        Point {
            x: (a.x + b.x) / 2,
            y: (a.y + b.y) / 2,
        }
    }

    /// Total length of some words.
    #[method]
    fn lengths(&self, words: Vec<String>) -> usize {
        words.iter().map(String::len).sum()
    }

    /// Swap keys and values.
    #[method]
    fn invert(&self, map: HashMap<String, i64>) -> BTreeMap<i64, String> {
        map.into_iter().map(|(k, v)| (v, k)).collect()
    }

    /// Swap the two halves of a pair.
    #[method]
    fn swap(&self, pair: (i64, String)) -> (String, i64) {
        (pair.1, pair.0)
    }

    /// Upper-case a text.
    #[method]
    fn shout(&self, text: &str) -> String {
        text.to_uppercase()
    }

    /// Sum of some bytes.
    #[method]
    fn checksum(&self, data: &[u8]) -> u32 {
        data.iter().map(|&b| u32::from(b)).sum()
    }

    /// The bytes, reversed.
    #[method]
    fn reversed(&self, mut data: Vec<u8>) -> Vec<u8> {
        data.reverse();
        data
    }

    /// Divide, refusing zero.
    #[method]
    fn divide(&self, a: f64, b: f64) -> tether::Result<f64> {
        if b == 0.0 {
            return Err(Error::app("ZeroDivisionError", "division by zero"));
        }
        Ok(a / b)
    }

    /// Succeed with nothing, or fail.
    #[method]
    fn check(&self, ok: bool) -> tether::Result<()> {
        if ok {
            Ok(())
        } else {
            Err(Error::app("CheckFailed", "not ok"))
        }
    }

    /// Read a file on the server.
    #[method]
    async fn read(&self, path: String) -> std::io::Result<String> {
        tokio::fs::read_to_string(path).await
    }

    /// Whether the call arrived over a connection, and its peer address.
    #[method]
    fn origin(&self, cx: &tether::CallContext, prefix: String) -> String {
        match cx.connection() {
            Some(conn) => format!("{prefix}{}", conn.peer_addr().unwrap_or("?")),
            None => format!("{prefix}local"),
        }
    }

    /// Does nothing.
    #[method]
    fn nothing(&self) {}

    /// The label.
    #[getter]
    async fn label(&self) -> String {
        self.label.lock().unwrap().clone()
    }

    #[setter]
    fn set_label(&self, label: &str) {
        *self.label.lock().unwrap() = label.to_string();
    }

    /// Some bytes.
    #[getter]
    fn blob(&self) -> Vec<u8> {
        self.blob.lock().unwrap().clone()
    }

    #[setter]
    fn set_blob(&self, data: &[u8]) {
        *self.blob.lock().unwrap() = data.to_vec();
    }

    /// How often `add` ran.
    #[getter]
    fn hits(&self) -> i64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// A new counter object, starting at `start`.
    #[method]
    fn make_counter(&self, start: i64) -> NetRef {
        NetRef::new(Counter {
            value: AtomicI64::new(start),
        })
    }

    /// Call `function(x)` and return its result plus one.
    #[method]
    async fn apply(&self, function: NetRef, x: i64) -> tether::Result<i64> {
        let out: i64 = function.call((x,)).await?.try_into()?;
        Ok(out + 1)
    }

    /// The type of a thing (raw identifiers lose their `r#`).
    #[method]
    fn r#type(&self, r#in: String) -> String {
        format!("type of {}", r#in)
    }

    /// Not marked: Rust-only.
    #[allow(dead_code)]
    fn hidden(&self) -> i64 {
        42
    }
}

/// A counter handed out by `make_counter`.
struct Counter {
    value: AtomicI64,
}

#[tether::expose]
impl Counter {
    /// Add one; returns the new value.
    #[method]
    fn increment(&self) -> i64 {
        self.value.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// An object whose peer-visible type name differs from its Rust name.
struct Adder;

#[tether::expose(name = "Calc")]
impl Adder {
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// Serve `root` over a memory pair; the server may allow setattr.
async fn serve(root: impl Object, allow_setattr: bool) -> (NetRef, Connection, Connection) {
    let config =
        tether::Config::default().policy(tether::Policy::default().allow_setattr(allow_setattr));
    let (client, server) = tether::transport::memory::pair(
        Builder::default(),
        Builder::default().root(root).config(config),
    )
    .await
    .unwrap();
    let root = client.root().await.unwrap();
    (root, client, server)
}

async fn toolbox() -> (NetRef, Connection, Connection) {
    serve(Toolbox::default(), false).await
}

fn int(v: Value) -> i64 {
    v.try_into().unwrap()
}

#[tokio::test]
async fn sync_and_async_methods() {
    let (root, _c, _s) = toolbox().await;
    assert_eq!(int(root.call_method("add", (2, 40)).await.unwrap()), 42);
    assert_eq!(
        int(root.call_method("add_later", (2, 40)).await.unwrap()),
        42
    );
    assert_eq!(root.call_method("nothing", ()).await.unwrap(), Value::None);
}

#[tokio::test]
async fn serde_structs_travel_as_arguments_and_results() {
    let (root, _c, _s) = toolbox().await;
    let a = tether::to_value(&Point { x: 0, y: 10 }).unwrap();
    let b = tether::to_value(&Point { x: 4, y: 20 }).unwrap();
    let mid = root.call_method("midpoint", (a, b)).await.unwrap();
    assert_eq!(mid.get("x"), Some(&Value::from(2)));
    assert_eq!(
        tether::from_value::<Point>(mid).unwrap(),
        Point { x: 2, y: 15 }
    );
}

#[tokio::test]
async fn vecs_maps_and_tuples() {
    let (root, _c, _s) = toolbox().await;
    let words = tether::to_value(&vec!["ab", "cde"]).unwrap();
    assert_eq!(int(root.call_method("lengths", (words,)).await.unwrap()), 5);

    let map: HashMap<String, i64> = [("one".to_string(), 1), ("two".to_string(), 2)].into();
    let inverted = root
        .call_method("invert", (tether::to_value(&map).unwrap(),))
        .await
        .unwrap();
    let inverted: BTreeMap<i64, String> = tether::from_value(inverted).unwrap();
    assert_eq!(inverted, [(1, "one".into()), (2, "two".into())].into());

    let pair = tether::to_value(&(7, "seven")).unwrap();
    let swapped = root.call_method("swap", (pair,)).await.unwrap();
    assert_eq!(
        swapped,
        Value::List(vec![Value::from("seven"), Value::from(7)])
    );
}

#[tokio::test]
async fn an_option_left_out_is_none() {
    let (root, _c, _s) = toolbox().await;
    let once: Vec<String> =
        tether::from_value(root.call_method("greet", ("ann",)).await.unwrap()).unwrap();
    assert_eq!(once, ["hello ann"]);
    let twice: Vec<String> =
        tether::from_value(root.call_method("greet", ("bob", 2)).await.unwrap()).unwrap();
    assert_eq!(twice, ["hello bob", "hello bob"]);
    let explicit_none = root
        .call_method("greet", Args::new().arg("cy").named("times", Value::None))
        .await
        .unwrap();
    assert_eq!(explicit_none.as_list().unwrap().len(), 1);
}

#[tokio::test]
async fn named_arguments() {
    let (root, _c, _s) = toolbox().await;
    let sum = root
        .call_method("add", Args::new().arg(1).named("b", 2))
        .await
        .unwrap();
    assert_eq!(int(sum), 3);
    let all_named = root
        .call_method("add", Args::new().named("b", 20).named("a", 1))
        .await
        .unwrap();
    assert_eq!(int(all_named), 21);
    let greeting = root
        .call_method("greet", Args::new().named("times", 3).named("name", "dee"))
        .await
        .unwrap();
    assert_eq!(greeting.as_list().unwrap().len(), 3);
}

#[tokio::test]
async fn rest_takes_the_remaining_positional_arguments() {
    let (root, _c, _s) = toolbox().await;
    assert_eq!(
        root.call_method("total", (1.5, 2, 3)).await.unwrap(),
        Value::Float(6.5)
    );
    assert_eq!(
        root.call_method("total", ()).await.unwrap(),
        Value::Float(0.0)
    );
    let scaled: Vec<i64> =
        tether::from_value(root.call_method("scaled", (10, 1, 2, 3)).await.unwrap()).unwrap();
    assert_eq!(scaled, [10, 20, 30]);
}

#[tokio::test]
async fn str_and_byte_slice_parameters() {
    let (root, _c, _s) = toolbox().await;
    assert_eq!(
        root.call_method("shout", ("quiet",)).await.unwrap(),
        Value::from("QUIET")
    );
    assert_eq!(
        int(root
            .call_method("checksum", (Value::Bytes(vec![1, 2, 250].into()),))
            .await
            .unwrap()),
        253
    );
    // A list of small ints reads as bytes too.
    assert_eq!(
        int(root
            .call_method("checksum", (vec![Value::from(3), Value::from(4)],))
            .await
            .unwrap()),
        7
    );
}

#[tokio::test]
async fn a_byte_vec_result_travels_as_bytes() {
    let (root, _c, _s) = toolbox().await;
    let out = root
        .call_method("reversed", (Value::Bytes(vec![1, 2, 3].into()),))
        .await
        .unwrap();
    assert_eq!(out, Value::Bytes(vec![3, 2, 1].into()));
}

#[tokio::test]
async fn getters_and_setters() {
    let (root, _c, _s) = serve(Toolbox::default(), true).await;
    assert_eq!(root.getattr("label").await.unwrap(), Value::from(""));
    root.setattr("label", "kitchen").await.unwrap();
    assert_eq!(root.getattr("label").await.unwrap(), Value::from("kitchen"));

    root.setattr("blob", Value::Bytes(vec![9, 8].into()))
        .await
        .unwrap();
    assert_eq!(
        root.getattr("blob").await.unwrap(),
        Value::Bytes(vec![9, 8].into())
    );

    // A wrong type for the new value is refused, naming the attribute.
    let err = root.setattr("label", 5).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
    assert!(err.message().contains("Toolbox.label"), "{err}");
    assert!(err.message().contains("expected str, got int"), "{err}");

    root.call_method("add", (1, 1)).await.unwrap();
    assert_eq!(root.getattr("hits").await.unwrap(), Value::from(1));
}

#[tokio::test]
async fn a_getter_without_setter_is_read_only() {
    let (root, _c, _s) = serve(Toolbox::default(), true).await;
    let err = root.setattr("hits", 5).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().contains("read-only"), "{err}");
    assert_eq!(root.getattr("hits").await.unwrap(), Value::from(0));
}

#[tokio::test]
async fn setters_need_the_policy() {
    let (root, _c, _s) = toolbox().await;
    let err = root.setattr("label", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert_eq!(root.getattr("label").await.unwrap(), Value::from(""));
}

#[tokio::test]
async fn unmarked_methods_are_unreachable() {
    let (root, _c, _s) = toolbox().await;
    let err = root.call_method("hidden", ()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().contains("'Toolbox'"), "{err}");
    assert_eq!(
        root.getattr("hidden").await.unwrap_err().kind(),
        ErrorKind::Denied
    );
    // Setters are not members of their own: `set_label` is not a name.
    assert_eq!(
        root.call_method("set_label", ("x",))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Denied
    );
    let names = root.dir().await.unwrap();
    assert!(!names.iter().any(|n| n == "hidden" || n == "set_label"));
    assert!(names.iter().any(|n| n == "add"));
    let members = root.inspect().await.unwrap();
    assert!(!members.iter().any(|m| m.name == "hidden"));
}

#[tokio::test]
async fn inspect_shows_kinds_signatures_and_docs() {
    let (root, _c, _s) = toolbox().await;
    let members = root.inspect().await.unwrap();
    let find = |name: &str| {
        members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
            .clone()
    };

    let add = find("add");
    assert_eq!(add.kind, MemberKind::Method);
    assert_eq!(add.signature, "(a: int, b: int) -> int");
    assert_eq!(add.doc, "Add two integers.");

    let greet = find("greet");
    assert_eq!(
        greet.signature,
        "(name: str, times: int | None = None) -> list[str]"
    );
    assert_eq!(
        greet.doc,
        "Greet someone.\n\nSays hello `times` times (once when left out)."
    );

    assert_eq!(find("total").signature, "(*things: float) -> float");
    assert_eq!(
        find("scaled").signature,
        "(factor: int, *things: int) -> list[int]"
    );
    assert_eq!(find("midpoint").signature, "(a: Point, b: Point) -> Point");
    assert_eq!(
        find("invert").signature,
        "(map: map[str, int]) -> map[int, str]"
    );
    assert_eq!(
        find("swap").signature,
        "(pair: tuple[int, str]) -> tuple[str, int]"
    );
    assert_eq!(find("shout").signature, "(text: str) -> str");
    assert_eq!(find("checksum").signature, "(data: bytes) -> int");
    assert_eq!(find("reversed").signature, "(data: bytes) -> bytes");
    assert_eq!(find("divide").signature, "(a: float, b: float) -> float");
    assert_eq!(find("read").signature, "(path: str) -> str");
    // The context is not an argument.
    assert_eq!(find("origin").signature, "(prefix: str) -> str");
    assert_eq!(find("nothing").signature, "() -> None");
    assert_eq!(find("make_counter").signature, "(start: int) -> object");
    assert_eq!(find("apply").signature, "(function: object, x: int) -> int");

    let label = find("label");
    assert_eq!(label.kind, MemberKind::Attribute { writable: true });
    assert_eq!(label.signature, "str");
    assert_eq!(label.doc, "The label.");
    let hits = find("hits");
    assert_eq!(hits.kind, MemberKind::Attribute { writable: false });
    assert_eq!(hits.signature, "int");
    assert_eq!(find("blob").signature, "bytes");

    // One member per name: a getter and its setter are one attribute.
    let mut names: Vec<_> = members.iter().map(|m| m.name.to_string()).collect();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count);
    assert_eq!(root.dir().await.unwrap(), names);
}

/// Expect a `BadArguments` error whose message is exactly `message`.
async fn bad_args(root: &NetRef, method: &str, args: Args, message: &str) {
    let err = root.call_method(method, args).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
    assert_eq!(err.message(), message);
}

#[tokio::test]
async fn wrong_arguments_name_the_method_the_parameter_and_the_type() {
    let (root, _c, _s) = toolbox().await;
    bad_args(
        &root,
        "add",
        Args::new().arg(1).arg("two"),
        "Toolbox.add(): argument 'b': expected int, got str",
    )
    .await;
    bad_args(
        &root,
        "add",
        Args::new().arg(1),
        "Toolbox.add(): missing argument 'b'",
    )
    .await;
    bad_args(
        &root,
        "add",
        Args::new().arg(1).arg(2).arg(3),
        "Toolbox.add(): takes 2 arguments but 3 were given",
    )
    .await;
    bad_args(
        &root,
        "add",
        Args::new().arg(1).arg(2).named("c", 3),
        "Toolbox.add(): unexpected named argument 'c'",
    )
    .await;
    bad_args(
        &root,
        "add",
        Args::new().arg(1).arg(2).named("a", 3),
        "Toolbox.add(): got multiple values for argument 'a'",
    )
    .await;
    bad_args(
        &root,
        "shout",
        Args::new().arg(5),
        "Toolbox.shout(): argument 'text': expected str, got int",
    )
    .await;

    // Structs, options and rest arguments are checked the same way.
    let err = root.call_method("midpoint", (1, 2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
    assert!(
        err.message()
            .starts_with("Toolbox.midpoint(): argument 'a': "),
        "{err}"
    );
    let err = root.call_method("greet", ("x", "y")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
    assert!(
        err.message()
            .starts_with("Toolbox.greet(): argument 'times': "),
        "{err}"
    );
    // A `#[rest]` item has no name of its own: it is counted from 1.
    let err = root.call_method("total", (1, "x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
    assert!(
        err.message().starts_with("Toolbox.total(): argument 2: "),
        "{err}"
    );

    // Nothing ran.
    assert_eq!(root.getattr("hits").await.unwrap(), Value::from(0));
}

#[tokio::test]
async fn application_errors_reach_the_caller() {
    let (root, _c, _s) = toolbox().await;
    assert_eq!(
        root.call_method("divide", (1.0, 4.0)).await.unwrap(),
        Value::Float(0.25)
    );
    assert_eq!(
        root.call_method("check", (true,)).await.unwrap(),
        Value::None
    );
    let err = root.call_method("check", (false,)).await.unwrap_err();
    assert_eq!(err.type_name(), Some("CheckFailed"));
    assert_eq!(find_signature(&root, "check").await, "(ok: bool) -> None");

    let err = root.call_method("divide", (1.0, 0.0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote, "{err}");
    assert_eq!(err.type_name(), Some("ZeroDivisionError"));
    assert_eq!(err.message(), "division by zero");
    assert_eq!(err.remote().unwrap().kind(), ErrorKind::Application);

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let err = root
        .call_method("read", (missing.to_str().unwrap(),))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote, "{err}");
    assert!(err.type_name().unwrap().contains("io"), "{err}");

    let present = dir.path().join("present.txt");
    std::fs::write(&present, "contents").unwrap();
    assert_eq!(
        root.call_method("read", (present.to_str().unwrap(),))
            .await
            .unwrap(),
        Value::from("contents")
    );
}

async fn find_signature(root: &NetRef, name: &str) -> String {
    let members = root.inspect().await.unwrap();
    let member = members.iter().find(|m| m.name == name).unwrap();
    member.signature.to_string()
}

#[tokio::test]
async fn a_method_can_take_the_call_context() {
    let (root, _c, _s) = toolbox().await;
    assert_eq!(
        root.call_method("origin", ("from ",)).await.unwrap(),
        Value::from("from memory")
    );
    let local = NetRef::new(Toolbox::default());
    assert_eq!(
        local.call_method("origin", ("from ",)).await.unwrap(),
        Value::from("from local")
    );
}

#[tokio::test]
async fn the_name_option_sets_the_type_name() {
    let (root, _c, _s) = serve(Adder, false).await;
    assert_eq!(root.repr().await.unwrap(), "<Calc object>");
    assert_eq!(int(root.call_method("add", (1, 2)).await.unwrap()), 3);
    let err = root.call_method("add", ("1", 2)).await.unwrap_err();
    assert!(err.message().starts_with("Calc.add(): "), "{err}");
    let err = root.call_method("sub", (1, 2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(err.message().contains("'Calc'"), "{err}");
    assert_eq!(
        NetRef::new(Toolbox::default()).repr().await.unwrap(),
        "<Toolbox object>"
    );
}

#[tokio::test]
async fn a_method_can_return_a_new_object() {
    let (root, _c, _s) = toolbox().await;
    let counter = NetRef::try_from(root.call_method("make_counter", (10,)).await.unwrap()).unwrap();
    assert!(!counter.is_local());
    assert_eq!(counter.repr().await.unwrap(), "<Counter object>");
    assert_eq!(int(counter.call_method("increment", ()).await.unwrap()), 11);
    assert_eq!(int(counter.call_method("increment", ()).await.unwrap()), 12);
}

#[tokio::test]
async fn a_method_can_take_a_callback() {
    let (root, _c, _s) = toolbox().await;
    let double = tether::callback(|x: i64| async move { Ok(x * 2) });
    assert_eq!(
        int(root.call_method("apply", (double, 20)).await.unwrap()),
        41
    );
    let failing = tether::callback_sync(|_: i64| -> tether::Result<i64> {
        Err(Error::app("KeyError", "nope"))
    });
    let err = root.call_method("apply", (failing, 1)).await.unwrap_err();
    assert_eq!(err.type_name(), Some("KeyError"), "{err}");
}

#[tokio::test]
async fn raw_identifiers_lose_their_prefix() {
    let (root, _c, _s) = toolbox().await;
    assert_eq!(
        root.call_method("type", Args::new().named("in", "x"))
            .await
            .unwrap(),
        Value::from("type of x")
    );
    let members = root.inspect().await.unwrap();
    let member = members.iter().find(|m| m.name == "type").unwrap();
    assert_eq!(member.signature, "(in: str) -> str");
}

/// A countdown written entirely with the macro, operations included.
struct Countdown {
    left: std::sync::atomic::AtomicI64,
    closed: std::sync::atomic::AtomicBool,
}

#[tether::expose]
impl Countdown {
    #[op(repr)]
    fn describe(&self) -> String {
        format!(
            "<Countdown at {}>",
            self.left.load(std::sync::atomic::Ordering::SeqCst)
        )
    }

    #[op(str)]
    fn text(&self) -> String {
        "a countdown".to_string()
    }

    /// The next number, until zero.
    #[op(next)]
    async fn tick(&self) -> tether::Result<Option<i64>> {
        let n = self.left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        Ok((n > 0).then_some(n))
    }

    #[op(close)]
    fn stop(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Calling it scales a number.
    #[op(call)]
    fn scale(&self, x: i64, factor: Option<i64>) -> i64 {
        x * factor.unwrap_or(2)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn operations_other_than_members_can_be_exposed_too() {
    let countdown = Countdown {
        left: std::sync::atomic::AtomicI64::new(3),
        closed: Default::default(),
    };
    let (client, _server) = tether::transport::memory::pair(
        tether::Builder::default(),
        tether::Builder::default().root(countdown),
    )
    .await
    .unwrap();
    let root = client.root().await.unwrap();
    assert_eq!(root.repr().await.unwrap(), "<Countdown at 3>");
    assert_eq!(root.str().await.unwrap(), "a countdown");
    assert_eq!(root.call((21,)).await.unwrap(), Value::from(42));
    assert_eq!(root.call((2, 5)).await.unwrap(), Value::from(10));
    let items = root.iter().collect_all().await.unwrap();
    assert_eq!(items, vec![Value::from(3), Value::from(2), Value::from(1)]);
    root.close().await.unwrap();
    assert_eq!(root.getattr("closed").await.unwrap(), Value::Bool(true));
    // Operations are not members.
    assert_eq!(root.dir().await.unwrap(), vec!["closed"]);
}

/// A collection that may change, so it has no stable hash.
struct Shelf;

#[tether::expose(unhashable, name = "MutableShelf")]
impl Shelf {
    /// How many things are on it.
    #[method]
    fn size(&self) -> i64 {
        0
    }
}

#[tokio::test]
async fn an_unhashable_object_refuses_hash_with_a_type_error_and_equality_still_works() {
    let (root, _client, _server) = serve(Shelf, false).await;
    let err = root.remote_hash().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Type, "{err}");
    assert_eq!(err.message(), "unhashable type: 'MutableShelf'");
    assert!(root.remote_eq(Value::Ref(root.clone())).await.unwrap());
    assert_eq!(root.call_method("size", ()).await.unwrap(), Value::from(0));
    // Other objects hash as before.
    let (hashable, _c, _s) = toolbox().await;
    hashable.remote_hash().await.unwrap();
}

/// A transaction for a `with` block: it opens, then commits or rolls back.
#[derive(Default)]
struct Ledger {
    log: Mutex<Vec<String>>,
}

#[tether::expose]
impl Ledger {
    #[op(enter)]
    async fn open(&self) -> tether::Result<String> {
        self.log.lock().unwrap().push("open".into());
        Ok("entry 1".into())
    }

    /// Rolls back on an error, and swallows a `Retry`.
    #[op(exit)]
    fn finish(&self, error: Option<Error>, cx: &tether::CallContext) -> bool {
        let _ = cx;
        let line = match &error {
            None => "commit".to_string(),
            Some(e) => format!("rollback after {e}"),
        };
        self.log.lock().unwrap().push(line);
        error.is_some_and(|e| e.type_name() == Some("Retry"))
    }

    #[getter]
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn enter_and_exit_hooks_see_the_block_and_its_error() {
    let (root, _client, _server) = serve(Ledger::default(), false).await;
    assert_eq!(root.enter().await.unwrap(), Value::from("entry 1"));
    assert!(!root.exit(None).await.unwrap());
    let failed = Error::app("ValueError", "no funds");
    assert!(!root.exit(Some(&failed)).await.unwrap());
    assert!(root
        .exit(Some(&Error::app("Retry", "later")))
        .await
        .unwrap());
    let log: Vec<String> = tether::from_value(root.getattr("log").await.unwrap()).unwrap();
    assert_eq!(
        log,
        [
            "open",
            "commit",
            "rollback after ValueError: no funds",
            "rollback after Retry: later"
        ]
    );
}

/// Closes, and has no enter or exit of its own.
#[derive(Default)]
struct Door {
    closed: AtomicI64,
}

#[tether::expose]
impl Door {
    #[getter]
    fn closed(&self) -> i64 {
        self.closed.load(Ordering::SeqCst)
    }

    #[op(close)]
    fn shut(&self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn without_hooks_a_with_block_gets_the_object_and_closes_it() {
    let (root, _client, _server) = serve(Door::default(), false).await;
    let entered = NetRef::try_from(root.enter().await.unwrap()).unwrap();
    assert_eq!(entered, root, "the object itself");
    assert!(!root
        .exit(Some(&Error::app("ValueError", "x")))
        .await
        .unwrap());
    assert_eq!(root.getattr("closed").await.unwrap(), Value::from(1));
    // Arguments of the wrong shape are refused, not guessed.
    let err = root
        .call_method("__exit__", ("a", "b", "c"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
}

/// Parses text, with `?` on the standard library's errors.
struct Parser;

#[tether::expose]
impl Parser {
    #[method]
    fn int(&self, text: String) -> tether::Result<i64> {
        Ok(text.trim().parse::<i64>()?)
    }

    #[method]
    fn small(&self, n: i64) -> tether::Result<u8> {
        Ok(u8::try_from(n)?)
    }
}

#[tokio::test]
async fn question_mark_works_on_standard_parse_errors_named_as_python_names_them() {
    let (root, _client, _server) = serve(Parser, false).await;
    assert_eq!(
        root.call_method("int", (" 42 ",)).await.unwrap(),
        Value::from(42)
    );
    let err = root.call_method("int", ("x",)).await.unwrap_err();
    assert_eq!(err.type_name(), Some("ValueError"), "{err}");
    assert_eq!(err.message(), "invalid digit found in string");
    let err = root.call_method("small", (300,)).await.unwrap_err();
    assert_eq!(err.type_name(), Some("OverflowError"), "{err}");
}
