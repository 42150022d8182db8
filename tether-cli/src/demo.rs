//! The demo service: what `tether serve` offers by default and what
//! `tether shell` serves in-process when given no address, so both show
//! the same thing. Methods with positional, optional and `*rest`
//! arguments, attributes (one writable), objects returned by reference, an
//! iterator, a method that calls the caller back, a cancellable wait and a
//! notebook shared by every connection, each with help text.
//!
//! ```text
//! $ tether serve &
//! $ tether call 127.0.0.1:18812 add 1 2 3
//! 6
//! $ tether call 127.0.0.1:18812 notes.add '"buy milk"'
//! 1
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether::{Callback, Config, Error, NetRef, Policy, Result, Server, Value};
use tokio::sync::watch;

/// The longest `sleep` the demo accepts, in seconds.
const MAX_SLEEP: f64 = 3600.0;

/// The demo service's root object. Clones share their state, so every
/// connection to one server sees the same label, notebook and count of
/// sleeps.
#[derive(Clone)]
pub struct Demo {
    shared: Arc<Shared>,
}

struct Shared {
    label: Mutex<String>,
    notes: NetRef,
    started: Instant,
    /// How many `sleep` calls are running; a watch, so a test can wait for
    /// a cancelled one to stop rather than poll.
    sleeping: watch::Sender<usize>,
}

impl Demo {
    /// A fresh demo service.
    pub fn new() -> Demo {
        Demo {
            shared: Arc::new(Shared {
                label: Mutex::new("demo".to_string()),
                notes: NetRef::new(Notebook::default()),
                started: Instant::now(),
                sleeping: watch::Sender::new(0),
            }),
        }
    }

    /// The number of `sleep` calls running, now and as it changes.
    #[cfg(test)]
    fn sleeping_now(&self) -> watch::Receiver<usize> {
        self.shared.sleeping.subscribe()
    }
}

impl Default for Demo {
    fn default() -> Demo {
        Demo::new()
    }
}

/// The connection settings the demo is served with: tether's defaults,
/// with `setattr` allowed so `root.label = "mine"` and `c.step = 5` work.
pub fn config() -> Config {
    Config::default().policy(Policy::default().allow_setattr(true))
}

/// Serve `demo` on 127.0.0.1 (a port the OS picks) from a task of the
/// current runtime, with [`config`]; returns the address.
pub async fn serve_on_loopback(demo: Demo) -> Result<SocketAddr> {
    let server = Server::builder()
        .config(config())
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr()?;
    tokio::spawn(server.serve(demo));
    Ok(addr)
}

#[tether::expose(name = "Demo")]
impl Demo {
    #[op(repr)]
    fn describe(&self) -> String {
        format!("<Demo service {:?}>", self.shared.label.lock().unwrap())
    }

    /// Add any number of integers: add(1, 2, 3) is 6, add() is 0.
    #[method]
    fn add(&self, #[rest] numbers: Vec<i64>) -> Result<i64> {
        numbers.iter().try_fold(0i64, |sum, &n| {
            sum.checked_add(n)
                .ok_or_else(|| Error::app("OverflowError", "the sum does not fit in 64 bits"))
        })
    }

    /// Greet name: greet('ann') is 'hello, ann!', greet('ann', greeting='hi')
    /// is 'hi, ann!'.
    #[method]
    fn greet(&self, name: String, greeting: Option<String>) -> String {
        format!("{}, {name}!", greeting.as_deref().unwrap_or("hello"))
    }

    /// Divide a by b: divide(1, 4) is 0.25; dividing by zero raises
    /// ZeroDivisionError, which reaches the caller as a remote error.
    #[method]
    fn divide(&self, a: f64, b: f64) -> Result<f64> {
        if b == 0.0 {
            return Err(Error::app("ZeroDivisionError", "division by zero"));
        }
        Ok(a / b)
    }

    /// Send value back unchanged, to see how values travel: lists, maps,
    /// bytes and None come back as copies, objects as the same reference.
    #[method]
    fn echo(&self, value: Value) -> Value {
        value
    }

    /// The UTF-8 bytes of text: encode('hé') is b'h\xc3\xa9'.
    #[method]
    fn encode(&self, text: String) -> Vec<u8> {
        text.into_bytes()
    }

    /// An iterator over the squares 0, 1, 4, ... of 0 .. n-1, living on the
    /// server and read in batches: for x in root.squares(4), or
    /// list(root.squares(4)). Like a Python iterator it is read once.
    #[method]
    fn squares(&self, n: i64) -> NetRef {
        NetRef::new(Squares {
            next: AtomicI64::new(0),
            end: n.max(0),
        })
    }

    /// A new counter object on the server, starting at start (0 when left
    /// out); you get a reference: c = root.counter(5); c.increment() is 6.
    #[method]
    fn counter(&self, start: Option<i64>) -> NetRef {
        NetRef::new(Counter {
            value: AtomicI64::new(start.unwrap_or(0)),
            step: AtomicI64::new(1),
        })
    }

    /// Call callback(i) for i = 1, 2, ..., n in order, over the caller's
    /// own connection while this call waits, then return n. An error the
    /// callback raises stops the count and reaches the caller.
    #[method]
    async fn count_to(&self, n: i64, callback: Callback<i64, Value>) -> Result<i64> {
        if n < 0 {
            return Err(Error::app("ValueError", "n must not be negative"));
        }
        for i in 1..=n {
            callback.call(i).await?;
        }
        Ok(n)
    }

    /// Wait for seconds (0 to 3600), then return them. Cancellable: when
    /// the caller gives up (a deadline, Ctrl-C, a dropped call) the wait
    /// stops on the server too; see sleeping.
    #[method]
    async fn sleep(&self, seconds: f64) -> Result<f64> {
        if !(0.0..=MAX_SLEEP).contains(&seconds) {
            return Err(Error::app(
                "ValueError",
                format!("seconds must be between 0 and {MAX_SLEEP}"),
            ));
        }
        let _running = Sleeping::start(&self.shared.sleeping);
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        Ok(seconds)
    }

    /// About this server: service, version, pid and uptime in seconds.
    #[method]
    fn info(&self) -> Value {
        Value::map([
            ("service", Value::from("demo")),
            ("version", Value::from(env!("CARGO_PKG_VERSION"))),
            ("pid", Value::from(i64::from(std::process::id()))),
            (
                "uptime",
                Value::from(self.shared.started.elapsed().as_secs_f64()),
            ),
        ])
    }

    /// A label anyone connected may change: root.label = 'mine'.
    #[getter]
    fn label(&self) -> String {
        self.shared.label.lock().unwrap().clone()
    }

    #[setter]
    fn set_label(&self, label: String) {
        *self.shared.label.lock().unwrap() = label;
    }

    /// The version of tether serving this (read-only).
    #[getter]
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// A notebook shared by everyone connected: notes.add('text'),
    /// notes.list(), notes.clear().
    #[getter]
    fn notes(&self) -> NetRef {
        self.shared.notes.clone()
    }

    /// How many sleep() calls are running now, on every connection: back
    /// to 0 once a cancelled one has stopped.
    #[getter]
    fn sleeping(&self) -> i64 {
        *self.shared.sleeping.borrow() as i64
    }
}

/// One running `sleep`, counted in [`Shared::sleeping`] from `start`
/// until dropped, which is also what cancelling the call does.
struct Sleeping<'a>(&'a watch::Sender<usize>);

impl<'a> Sleeping<'a> {
    fn start(count: &'a watch::Sender<usize>) -> Sleeping<'a> {
        count.send_modify(|n| *n += 1);
        Sleeping(count)
    }
}

impl Drop for Sleeping<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The demo's shared notebook.
#[derive(Default)]
struct Notebook {
    notes: Mutex<Vec<String>>,
}

#[tether::expose]
impl Notebook {
    #[op(repr)]
    fn describe(&self) -> String {
        match self.notes.lock().unwrap().len() {
            1 => "<Notebook with 1 note>".to_string(),
            n => format!("<Notebook with {n} notes>"),
        }
    }

    /// Add a note; returns how many there are now.
    #[method]
    fn add(&self, text: String) -> i64 {
        let mut notes = self.notes.lock().unwrap();
        notes.push(text);
        notes.len() as i64
    }

    /// Every note, oldest first.
    #[method]
    fn list(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }

    /// Remove every note; returns how many there were.
    #[method]
    fn clear(&self) -> i64 {
        std::mem::take(&mut *self.notes.lock().unwrap()).len() as i64
    }

    /// How many notes there are.
    #[getter]
    fn count(&self) -> i64 {
        self.notes.lock().unwrap().len() as i64
    }
}

/// A counter living on the server.
struct Counter {
    value: AtomicI64,
    step: AtomicI64,
}

#[tether::expose(name = "Counter")]
impl Counter {
    #[op(repr)]
    fn describe(&self) -> String {
        format!("<Counter value={}>", self.value.load(Ordering::SeqCst))
    }

    /// Add step (or by) to the count and return the new count.
    #[method]
    fn increment(&self, by: Option<i64>) -> i64 {
        let by = by.unwrap_or_else(|| self.step.load(Ordering::SeqCst));
        self.value.fetch_add(by, Ordering::SeqCst) + by
    }

    /// Set the count back to zero.
    #[method]
    fn reset(&self) {
        self.value.store(0, Ordering::SeqCst);
    }

    /// The current count.
    #[getter]
    fn value(&self) -> i64 {
        self.value.load(Ordering::SeqCst)
    }

    /// What increment() adds when given nothing (writable: c.step = 5).
    #[getter]
    fn step(&self) -> i64 {
        self.step.load(Ordering::SeqCst)
    }

    #[setter]
    fn set_step(&self, step: i64) {
        self.step.store(step, Ordering::SeqCst);
    }
}

/// The squares of 0 .. end-1, one per `next`.
struct Squares {
    next: AtomicI64,
    end: i64,
}

#[tether::expose(name = "Squares")]
impl Squares {
    #[op(repr)]
    fn describe(&self) -> String {
        format!("<Squares, {} left>", self.remaining())
    }

    #[op(next)]
    fn advance(&self) -> Result<Option<i64>> {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        if i >= self.end {
            return Ok(None);
        }
        i.checked_mul(i).map(Some).ok_or_else(|| {
            Error::app(
                "OverflowError",
                format!("{i} squared does not fit in 64 bits"),
            )
        })
    }

    /// How many squares are left to read.
    #[getter]
    fn remaining(&self) -> i64 {
        (self.end - self.next.load(Ordering::SeqCst)).max(0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Generous bound on anything a test waits for; never reached when the
    /// code works.
    const BOUND: Duration = Duration::from_secs(30);

    /// The demo served on loopback, and the root object as a client sees it.
    async fn connected(demo: Demo) -> (tether::Connection, NetRef) {
        let addr = serve_on_loopback(demo).await.unwrap();
        let conn = tether::connect(addr).await.unwrap();
        let root = conn.root().await.unwrap();
        (conn, root)
    }

    #[tokio::test]
    async fn members_work_in_process() {
        let demo = NetRef::new(Demo::new());
        let six = demo.call_method("add", (1, 2, 3)).await.unwrap();
        assert_eq!(six, Value::from(6));
        let notes = NetRef::try_from(demo.getattr("notes").await.unwrap()).unwrap();
        assert_eq!(
            notes.call_method("add", ("x",)).await.unwrap(),
            Value::from(1)
        );
        let squares = NetRef::try_from(demo.call_method("squares", (4,)).await.unwrap()).unwrap();
        let items = squares.iter().collect_all().await.unwrap();
        assert_eq!(items, [0, 1, 4, 9].map(Value::from));
        let counter = NetRef::try_from(demo.call_method("counter", (5,)).await.unwrap()).unwrap();
        assert_eq!(
            counter.call_method("increment", ()).await.unwrap(),
            Value::from(6)
        );
        assert_eq!(counter.getattr("value").await.unwrap(), Value::from(6));
        let err = demo.call_method("divide", (1, 0)).await.unwrap_err();
        assert_eq!(err.to_string(), "ZeroDivisionError: division by zero");
    }

    /// A callback that records each number it is called with, and raises
    /// ValueError when called with `fail_at`; what it has seen.
    fn recording(fail_at: Option<i64>) -> (NetRef, Arc<Mutex<Vec<i64>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let callback = tether::callback_sync(move |i: i64| {
            record.lock().unwrap().push(i);
            match fail_at {
                Some(n) if n == i => Err(Error::app("ValueError", "two is enough")),
                _ => Ok(()),
            }
        });
        (callback, seen)
    }

    #[tokio::test]
    async fn count_to_calls_the_caller_back_in_order() {
        let (_conn, root) = connected(Demo::new()).await;
        let (callback, seen) = recording(None);
        let n = root.call_method("count_to", (4, callback)).await.unwrap();
        assert_eq!(n, Value::from(4));
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn an_error_in_the_callback_stops_count_to_and_reaches_the_caller() {
        let (_conn, root) = connected(Demo::new()).await;
        let (callback, seen) = recording(Some(2));
        let err = root
            .call_method("count_to", (5, callback))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), tether::ErrorKind::Remote, "{err:#}");
        assert_eq!(err.to_string(), "ValueError: two is enough");
        let remote = err.remote().unwrap();
        let cause = remote
            .cause()
            .expect("the callback's own error as the cause");
        assert_eq!(cause.to_string(), "ValueError: two is enough");
        assert_eq!(*seen.lock().unwrap(), [1, 2]);
    }

    #[tokio::test]
    async fn a_dropped_sleep_stops_on_the_server() {
        let demo = Demo::new();
        let mut sleeping = demo.sleeping_now();
        let (_conn, root) = connected(demo).await;
        let call = tokio::spawn(async move { root.call_method("sleep", (MAX_SLEEP,)).await });
        tokio::time::timeout(BOUND, sleeping.wait_for(|n| *n == 1))
            .await
            .expect("the sleep starts")
            .unwrap();
        // Dropping the call future (here, by aborting its task) sends the
        // server a cancel; the sleep must end there, long before its hour.
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
        tokio::time::timeout(BOUND, sleeping.wait_for(|n| *n == 0))
            .await
            .expect("the cancelled sleep stops on the server")
            .unwrap();
    }
}
