//! `#[tether::service]`: one trait, typed proxies and any number of
//! implementations, in memory and over TCP.

use serde::{Deserialize, Serialize};
use tether::{Builder, Connection, Error, ErrorKind, MemberKind, NetRef, Server, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub label: Option<String>,
}

/// A calculator, as a service.
#[tether::service]
pub trait Calc {
    /// Add two integers.
    async fn add(&self, a: i64, b: i64) -> tether::Result<i64>;

    /// Divide two floats.
    ///
    /// Refuses a zero divisor with a ZeroDivisionError.
    async fn divide(&self, a: f64, b: f64) -> tether::Result<f64>;

    /// Count and average some numbers.
    async fn summarize(&self, numbers: Vec<f64>, label: Option<String>) -> tether::Result<Summary>;

    /// Greet someone by name.
    async fn greet(&self, name: &str, excited: bool) -> tether::Result<String>;

    /// The UTF-8 bytes of a text.
    async fn encode(&self, text: String) -> tether::Result<Vec<u8>>;

    /// The bytes, reversed.
    async fn reverse(&self, data: Vec<u8>) -> tether::Result<Vec<u8>>;

    /// Sum of some bytes.
    async fn checksum(&self, data: &[u8]) -> tether::Result<u32>;

    /// Sum any number of floats.
    async fn total(&self, #[rest] things: Vec<f64>) -> tether::Result<f64>;

    /// Which implementation answers.
    async fn flavor(&self) -> tether::Result<String>;

    /// Nothing to return, but may fail: refuses a negative number.
    async fn check(&self, n: i64) -> tether::Result<()>;

    /// A default body: the flavor, shouted.
    async fn shout_flavor(&self) -> tether::Result<String> {
        Ok(self.flavor().await?.to_uppercase())
    }
}

/// Exact arithmetic.
#[derive(Clone)]
struct Exact;

impl Calc for Exact {
    async fn add(&self, a: i64, b: i64) -> tether::Result<i64> {
        Ok(a + b)
    }

    async fn divide(&self, a: f64, b: f64) -> tether::Result<f64> {
        if b == 0.0 {
            return Err(Error::app("ZeroDivisionError", "float division by zero"));
        }
        Ok(a / b)
    }

    async fn summarize(&self, numbers: Vec<f64>, label: Option<String>) -> tether::Result<Summary> {
        let count = numbers.len();
        let mean = if count == 0 {
            0.0
        } else {
            numbers.iter().sum::<f64>() / count as f64
        };
        Ok(Summary { count, mean, label })
    }

    async fn greet(&self, name: &str, excited: bool) -> tether::Result<String> {
        Ok(format!("hello {name}{}", if excited { "!" } else { "." }))
    }

    async fn encode(&self, text: String) -> tether::Result<Vec<u8>> {
        Ok(text.into_bytes())
    }

    async fn reverse(&self, mut data: Vec<u8>) -> tether::Result<Vec<u8>> {
        data.reverse();
        Ok(data)
    }

    async fn checksum(&self, data: &[u8]) -> tether::Result<u32> {
        Ok(data.iter().map(|&b| u32::from(b)).sum())
    }

    async fn total(&self, things: Vec<f64>) -> tether::Result<f64> {
        tokio::task::yield_now().await;
        Ok(things.iter().sum())
    }

    async fn flavor(&self) -> tether::Result<String> {
        Ok("exact".into())
    }

    async fn check(&self, n: i64) -> tether::Result<()> {
        if n < 0 {
            return Err(Error::app("ValueError", format!("{n} is negative")));
        }
        Ok(())
    }
}

/// Saturating arithmetic that rounds: a second implementation of the trait.
#[derive(Clone)]
struct Rounding;

impl Calc for Rounding {
    async fn add(&self, a: i64, b: i64) -> tether::Result<i64> {
        Ok(a.saturating_add(b))
    }

    async fn divide(&self, a: f64, b: f64) -> tether::Result<f64> {
        if b == 0.0 {
            return Err(Error::app("ValueError", "refusing to divide by zero"));
        }
        Ok((a / b).round())
    }

    async fn summarize(&self, numbers: Vec<f64>, label: Option<String>) -> tether::Result<Summary> {
        Ok(Summary {
            count: numbers.len(),
            mean: 0.0,
            label: label.map(|l| l.to_uppercase()),
        })
    }

    async fn greet(&self, name: &str, _excited: bool) -> tether::Result<String> {
        Ok(format!("hi {name}"))
    }

    async fn encode(&self, text: String) -> tether::Result<Vec<u8>> {
        Ok(text.to_uppercase().into_bytes())
    }

    async fn reverse(&self, data: Vec<u8>) -> tether::Result<Vec<u8>> {
        Ok(data)
    }

    async fn checksum(&self, data: &[u8]) -> tether::Result<u32> {
        Ok(data.len() as u32)
    }

    async fn total(&self, things: Vec<f64>) -> tether::Result<f64> {
        Ok(things.iter().sum::<f64>().round())
    }

    async fn flavor(&self) -> tether::Result<String> {
        Ok("rounding".into())
    }

    async fn check(&self, _n: i64) -> tether::Result<()> {
        Ok(())
    }
}

/// The checks every correct `Exact` calculator passes, local or remote: the
/// same body runs on the plain implementation and on proxies.
async fn use_calc(calc: &impl Calc) {
    assert_eq!(calc.add(2, 40).await.unwrap(), 42);
    assert_eq!(calc.divide(1.0, 4.0).await.unwrap(), 0.25);
    assert_eq!(
        calc.summarize(vec![1.0, 2.0, 6.0], Some("three".into()))
            .await
            .unwrap(),
        Summary {
            count: 3,
            mean: 3.0,
            label: Some("three".into())
        }
    );
    assert_eq!(
        calc.summarize(vec![], None).await.unwrap(),
        Summary {
            count: 0,
            mean: 0.0,
            label: None
        }
    );
    let name = String::from("ann");
    assert_eq!(calc.greet(&name, true).await.unwrap(), "hello ann!");
    assert_eq!(calc.encode("hé".into()).await.unwrap(), "hé".as_bytes());
    assert_eq!(calc.reverse(vec![1, 2, 3]).await.unwrap(), [3, 2, 1]);
    assert_eq!(calc.checksum(&[1, 2, 250]).await.unwrap(), 253);
    assert_eq!(calc.total(vec![1.5, 2.0, 3.0]).await.unwrap(), 6.5);
    assert_eq!(calc.total(vec![]).await.unwrap(), 0.0);
    assert_eq!(calc.flavor().await.unwrap(), "exact");
    assert_eq!(calc.shout_flavor().await.unwrap(), "EXACT");
    calc.check(1).await.unwrap();
    let err = calc.check(-1).await.unwrap_err();
    assert_eq!(err.type_name(), Some("ValueError"), "{err}");
    assert_eq!(err.message(), "-1 is negative");

    let err = calc.divide(1.0, 0.0).await.unwrap_err();
    assert_eq!(err.type_name(), Some("ZeroDivisionError"), "{err}");
    assert_eq!(err.message(), "float division by zero");
}

async fn memory<T: Calc>(calc: T) -> (CalcProxy, Connection, Connection) {
    let (client, server) = tether::transport::memory::pair(
        Builder::default(),
        Builder::default().root(CalcObject(calc)),
    )
    .await
    .unwrap();
    let proxy = CalcProxy::new(client.root().await.unwrap());
    (proxy, client, server)
}

#[tokio::test]
async fn the_same_checks_pass_locally_and_through_proxies() {
    use_calc(&Exact).await;

    // A proxy over an in-process object.
    use_calc(&CalcProxy::new(NetRef::new(CalcObject(Exact)))).await;

    // A proxy over a connection.
    let (proxy, _c, _s) = memory(Exact).await;
    use_calc(&proxy).await;
}

#[tokio::test]
async fn over_tcp() {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let serving = tokio::spawn(server.serve(CalcObject(Exact)));

    let conn = tether::connect(addr).await.unwrap();
    let proxy = CalcProxy::new(conn.root().await.unwrap());
    use_calc(&proxy).await;

    // A second client gets its own root, from a clone of the service.
    let other = tether::connect(addr).await.unwrap();
    let second = CalcProxy::from(other.root().await.unwrap());
    assert_eq!(second.add(1, 1).await.unwrap(), 2);
    assert_eq!(proxy.add(2, 2).await.unwrap(), 4);
    serving.abort();
}

#[tokio::test]
async fn one_trait_two_implementations() {
    let (exact, _c1, _s1) = memory(Exact).await;
    let (rounding, _c2, _s2) = memory(Rounding).await;

    assert_eq!(exact.flavor().await.unwrap(), "exact");
    assert_eq!(rounding.flavor().await.unwrap(), "rounding");
    assert_eq!(exact.divide(7.0, 2.0).await.unwrap(), 3.5);
    assert_eq!(rounding.divide(7.0, 2.0).await.unwrap(), 4.0);
    assert_eq!(rounding.add(i64::MAX, 1).await.unwrap(), i64::MAX);
    assert_eq!(rounding.greet("bo", true).await.unwrap(), "hi bo");
    assert_eq!(rounding.encode("ab".into()).await.unwrap(), b"AB");
    assert_eq!(
        rounding
            .summarize(vec![1.0], Some("x".into()))
            .await
            .unwrap()
            .label
            .as_deref(),
        Some("X")
    );
    assert_eq!(rounding.shout_flavor().await.unwrap(), "ROUNDING");

    // Both serve the one trait, so both look the same from outside.
    assert_eq!(
        exact.netref().inspect().await.unwrap(),
        rounding.netref().inspect().await.unwrap()
    );

    let err = rounding.divide(1.0, 0.0).await.unwrap_err();
    assert_eq!(err.type_name(), Some("ValueError"));
}

#[tokio::test]
async fn errors_from_the_implementation_reach_the_proxy_caller() {
    let (proxy, _c, _s) = memory(Exact).await;
    let err = proxy.divide(1.0, 0.0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote, "{err}");
    assert_eq!(err.type_name(), Some("ZeroDivisionError"));
    assert_eq!(err.message(), "float division by zero");
    assert_eq!(err.to_string(), "ZeroDivisionError: float division by zero");
    let remote = err.remote().unwrap();
    assert_eq!(remote.kind(), ErrorKind::Application);

    // Locally the same error is an application error.
    let err = Exact.divide(1.0, 0.0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Application);
    assert_eq!(err.type_name(), Some("ZeroDivisionError"));
}

#[tokio::test]
async fn the_served_object_shows_signatures_and_docs() {
    let (proxy, _c, _s) = memory(Exact).await;
    let root = proxy.netref();
    assert_eq!(root.repr().await.unwrap(), "<Calc object>");
    let members = root.inspect().await.unwrap();
    let find = |name: &str| {
        members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
            .clone()
    };
    let names: Vec<_> = members.iter().map(|m| m.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "add",
            "divide",
            "summarize",
            "greet",
            "encode",
            "reverse",
            "checksum",
            "total",
            "flavor",
            "check",
            "shout_flavor"
        ]
    );
    assert!(members.iter().all(|m| m.kind == MemberKind::Method));

    let add = find("add");
    assert_eq!(add.signature, "(a: int, b: int) -> int");
    assert_eq!(add.doc, "Add two integers.");
    let divide = find("divide");
    assert_eq!(divide.signature, "(a: float, b: float) -> float");
    assert_eq!(
        divide.doc,
        "Divide two floats.\n\nRefuses a zero divisor with a ZeroDivisionError."
    );
    assert_eq!(
        find("summarize").signature,
        "(numbers: list[float], label: str | None = None) -> Summary"
    );
    assert_eq!(find("greet").signature, "(name: str, excited: bool) -> str");
    assert_eq!(find("encode").signature, "(text: str) -> bytes");
    assert_eq!(find("reverse").signature, "(data: bytes) -> bytes");
    assert_eq!(find("checksum").signature, "(data: bytes) -> int");
    assert_eq!(find("total").signature, "(*things: float) -> float");
    assert_eq!(find("flavor").signature, "() -> str");
    assert_eq!(find("check").signature, "(n: int) -> None");
    assert_eq!(
        find("shout_flavor").doc,
        "A default body: the flavor, shouted."
    );
}

#[tokio::test]
async fn the_served_object_checks_untyped_callers() {
    let (proxy, _c, _s) = memory(Exact).await;
    let root = proxy.netref();
    // An untyped caller may leave the option out or name arguments.
    let summary = root
        .call_method(
            "summarize",
            tether::Args::new().named("numbers", vec![Value::from(2.0)]),
        )
        .await
        .unwrap();
    assert_eq!(summary.get("label"), Some(&Value::None));
    assert_eq!(
        root.call_method("encode", ("a",)).await.unwrap(),
        Value::Bytes(b"a".to_vec().into())
    );
    let err = root.call_method("add", (1, "2")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
    assert_eq!(
        err.message(),
        "Calc.add(): argument 'b': expected int, got str"
    );
}

/// Only part of `Calc`: what a proxy meets when the server is older, or
/// serves something else.
struct Partial;

#[tether::expose(name = "Calc")]
impl Partial {
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

#[tokio::test]
async fn a_proxy_against_an_object_without_the_method_is_denied() {
    let (client, _server) =
        tether::transport::memory::pair(Builder::default(), Builder::default().root(Partial))
            .await
            .unwrap();
    let proxy = CalcProxy::new(client.root().await.unwrap());
    assert_eq!(proxy.add(1, 2).await.unwrap(), 3);
    let err = proxy.flavor().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().contains("'flavor'"), "{err}");
    let err = proxy.total(vec![1.0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");

    // A proxy over something that is not a Calc at all.
    let unrelated = CalcProxy::new(tether::callback_sync(|x: i64| Ok(x)));
    let err = unrelated.add(1, 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
}

#[tokio::test]
async fn a_wrong_result_type_is_a_type_error() {
    /// Answers `flavor` with a number.
    struct Liar;

    #[tether::expose]
    impl Liar {
        #[method]
        fn flavor(&self) -> i64 {
            7
        }
    }

    let proxy = CalcProxy::try_from(Value::Ref(NetRef::new(Liar))).unwrap();
    let err = proxy.flavor().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Type, "{err}");
    assert!(err.message().contains("expected str, got int"), "{err}");
}
