//! An unmodified Python rpyc 6.0.2 client against a tether service over
//! TCP: values both ways, keyword arguments, callbacks (nested three deep),
//! exceptions both ways, iteration of 10 000 items, `with`, the policy,
//! and release of every object at the end, checked on both sides.

mod support;

use std::process::Stdio;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::{Error, NetRef, Result, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The service the Python client talks to.
#[derive(Clone, Default)]
struct Lab {
    closed: Arc<AtomicUsize>,
    recorded: Arc<Mutex<Vec<Value>>>,
    /// How the last transaction ended.
    ended: Arc<Mutex<String>>,
}

#[tether::expose]
impl Lab {
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Keyword arguments: b defaults to -1, c to -1.
    #[method]
    fn kw(&self, a: i64, b: Option<i64>, c: Option<i64>) -> Vec<i64> {
        vec![a, b.unwrap_or(-1), c.unwrap_or(-1)]
    }

    #[method]
    fn echo(&self, value: Value) -> Value {
        value
    }

    /// A date: brine has none, so Python gets its RFC 3339 text.
    #[method]
    fn moment(&self) -> tether::DateTime {
        tether::DateTime::from_unix(1_796_397_158, 500_000_000).unwrap()
    }

    /// What Python sent, for the Rust side to check.
    #[method]
    fn record(&self, #[rest] values: Vec<Value>) {
        self.recorded.lock().unwrap().extend(values);
    }

    #[method]
    fn fail(&self) -> Result<i64> {
        Err(Error::app("ValueError", "bad value from tether"))
    }

    #[method]
    async fn apply(&self, f: NetRef, x: Value) -> Result<Value> {
        f.call((x,)).await
    }

    /// Call `f` with a tether callback; Python calls it in turn.
    #[method]
    async fn offer(&self, f: NetRef) -> Result<Value> {
        let times_ten = tether::callback(|x: i64| async move { Ok(x * 10) });
        f.call((times_ten,)).await
    }

    #[method]
    fn roundtrip(&self, obj: NetRef) -> NetRef {
        obj
    }

    /// `f(depth)` for depth > 0 (Python's `f` calls `nest` again).
    #[method]
    async fn nest(&self, f: NetRef, depth: i64) -> Result<i64> {
        if depth == 0 {
            return Ok(0);
        }
        f.call((depth,)).await?.try_into()
    }

    /// Call `f`, which fails: its type, message, and whether the Python
    /// traceback came along.
    #[method]
    async fn catch(&self, f: NetRef) -> Result<(String, String, bool)> {
        match f.call(()).await {
            Ok(v) => Err(Error::app("AssertionError", format!("f returned {v}"))),
            Err(err) => {
                let remote = err.remote().expect("a remote error");
                let traced = remote.trace().iter().any(|l| l.contains("raise KeyError"));
                Ok((
                    err.type_name().unwrap_or_default().to_string(),
                    err.message().to_string(),
                    traced,
                ))
            }
        }
    }

    #[method]
    async fn relay(&self, f: NetRef) -> Result<Value> {
        f.call(()).await
    }

    #[method]
    fn count(&self, n: i64) -> NetRef {
        NetRef::new(Counter {
            next: AtomicI64::new(0),
            end: n,
        })
    }

    /// Sum what a Python iterable yields (tether iterating Python).
    #[method]
    async fn total(&self, items: NetRef) -> Result<i64> {
        let mut sum = 0;
        let mut it = items.iter();
        while let Some(item) = it.next().await {
            sum += i64::try_from(item?)?;
        }
        Ok(sum)
    }

    #[method]
    fn resource(&self) -> NetRef {
        NetRef::new(Resource {
            closed: self.closed.clone(),
        })
    }

    #[method]
    fn closed_count(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// A transaction for a `with` block: the block gets `label + " open"`;
    /// it commits if the block ends normally, else rolls back, and
    /// swallows the error only if its label is "quiet".
    #[method]
    fn transaction(&self, label: String) -> NetRef {
        NetRef::new(Transaction {
            label,
            ended: self.ended.clone(),
        })
    }

    /// How the last transaction ended.
    #[method]
    fn last_transaction(&self) -> String {
        self.ended.lock().unwrap().clone()
    }

    /// A mutable bag: Python's `hash()` on it is a `TypeError`.
    #[method]
    fn bag(&self) -> NetRef {
        NetRef::new(Bag)
    }

    #[allow(dead_code)]
    fn helper(&self) {}
}

struct Transaction {
    label: String,
    ended: Arc<Mutex<String>>,
}

#[tether::expose]
impl Transaction {
    #[op(enter)]
    fn begin(&self) -> String {
        format!("{} open", self.label)
    }

    #[op(exit)]
    fn end(&self, error: Option<Error>) -> bool {
        *self.ended.lock().unwrap() = match &error {
            None => format!("{} committed", self.label),
            Some(e) => format!("{} rolled back: {e}", self.label),
        };
        error.is_some() && self.label == "quiet"
    }
}

struct Bag;

#[tether::expose(unhashable)]
impl Bag {
    #[method]
    fn size(&self) -> i64 {
        0
    }
}

struct Counter {
    next: AtomicI64,
    end: i64,
}

#[tether::expose]
impl Counter {
    #[op(next)]
    fn step(&self) -> Option<i64> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        (n < self.end).then_some(n)
    }
}

struct Resource {
    closed: Arc<AtomicUsize>,
}

#[tether::expose]
impl Resource {
    #[method]
    fn value(&self) -> i64 {
        99
    }

    #[op(close)]
    fn close(&self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_uses_a_tether_service_and_releases_everything() {
    let python = tokio::task::spawn_blocking(support::python::python)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let lab = Lab::default();

    let mut child = tokio::process::Command::new(python)
        .arg(support::python::script("rpyc_client.py"))
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (stream, peer) = listener.accept().await.unwrap();
    let session = tether::rpyc::serve_io(
        stream,
        NetRef::new(lab.clone()),
        tether::Config::default(),
        Some(peer.to_string()),
    );

    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut passed = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("READY ") {
                return Some(rest.to_string());
            }
            passed.push(line);
        }
        None
    })
    .await
    .expect("the Python client finished in time");
    let Some(python_holds) = ready else {
        let out = child.wait_with_output().await.unwrap();
        panic!(
            "the Python client failed after {passed:#?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert!(passed.len() > 40, "{passed:#?}");

    // Python holds nothing of tether's but the root, tether nothing of
    // Python's; Python's own table says the same from its side.
    let stats = session.stats();
    assert_eq!(
        (stats.exported, stats.imported),
        (1, 0),
        "{stats:?} after {passed:#?}"
    );
    assert_eq!(python_holds, "0");
    assert_eq!(stats.serving, 0);

    // Values arrived as Python sent them.
    assert_eq!(
        *lab.recorded.lock().unwrap(),
        vec![
            Value::None,
            Value::Bool(true),
            Value::Int(7),
            Value::Float(2.5),
            Value::from("h\u{e9}"),
            Value::Bytes(vec![0, 0xff].into()),
            Value::List(vec![Value::Int(1), Value::List(vec![Value::from("two")])]),
        ]
    );

    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    let done = stdout.next_line().await.unwrap();
    assert_eq!(done.as_deref(), Some("DONE"));
    let reason = tokio::time::timeout(Duration::from_secs(10), session.closed())
        .await
        .expect("the connection ends when Python closes it");
    assert!(reason.is_closed(), "{reason:?}");
    assert_eq!(session.stats().exported, 0);
    assert!(child.wait().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_request_over_the_decoding_budget_fails_alone() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let client = tokio::task::spawn_blocking(move || {
        support::python::run_script("rpyc_limits.py", &[&port])
    });
    let (stream, peer) = listener.accept().await.unwrap();
    let session = tether::rpyc::serve_io(
        stream,
        NetRef::new(Lab::default()),
        tether::Config::default().max_decoded_bytes(4 << 20),
        Some(peer.to_string()),
    );
    let output = client.await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ok released"), "{stdout}");
    let reason = tokio::time::timeout(Duration::from_secs(10), session.closed())
        .await
        .expect("the connection ends when Python closes it");
    assert!(reason.is_closed(), "{reason:?}");
    assert_eq!(session.stats().imported, 0);
}
