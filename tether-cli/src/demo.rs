//! The demo service: what `tether serve` offers by default and what
//! `tether shell` starts in-process when given no address. A handful of
//! methods, attributes, a nested object and an iterable, each with help
//! text, so a newcomer has something to list, call and inspect.
//!
//! ```text
//! $ tether serve &
//! $ tether call 127.0.0.1:18812 add 1 2 3
//! 6
//! $ tether call 127.0.0.1:18812 notes.add '"buy milk"'
//! 1
//! ```

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether::{Error, NetRef, Result, Value};

/// The demo service's root object; clones share their state, so every
/// connection sees the same label and notebook.
#[derive(Clone)]
pub struct Demo {
    shared: Arc<Shared>,
}

struct Shared {
    label: Mutex<String>,
    notes: NetRef,
    started: Instant,
}

impl Demo {
    /// A fresh demo service.
    pub fn new() -> Demo {
        Demo {
            shared: Arc::new(Shared {
                label: Mutex::new("demo".to_string()),
                notes: NetRef::new(Notebook::default()),
                started: Instant::now(),
            }),
        }
    }
}

impl Default for Demo {
    fn default() -> Demo {
        Demo::new()
    }
}

#[tether::expose(name = "Demo")]
impl Demo {
    #[op(repr)]
    fn describe(&self) -> String {
        format!("<Demo service {:?}>", self.shared.label.lock().unwrap())
    }

    /// Add any number of integers: add(1, 2, 3) is 6.
    #[method]
    fn add(&self, #[rest] numbers: Vec<i64>) -> Result<i64> {
        numbers.iter().try_fold(0i64, |sum, &n| {
            sum.checked_add(n)
                .ok_or_else(|| Error::app("OverflowError", "the sum does not fit in 64 bits"))
        })
    }

    /// Say hello to name; greeting defaults to "hello".
    #[method]
    fn greet(&self, name: String, greeting: Option<String>) -> String {
        format!("{}, {name}!", greeting.as_deref().unwrap_or("hello"))
    }

    /// Divide a by b; dividing by zero raises ZeroDivisionError.
    #[method]
    fn divide(&self, a: f64, b: f64) -> Result<f64> {
        if b == 0.0 {
            return Err(Error::app("ZeroDivisionError", "float division by zero"));
        }
        Ok(a / b)
    }

    /// Return value unchanged (any value: lists, maps, bytes, objects).
    #[method]
    fn echo(&self, value: Value) -> Value {
        value
    }

    /// The UTF-8 bytes of text.
    #[method]
    fn encode(&self, text: String) -> Vec<u8> {
        text.into_bytes()
    }

    /// An iterable object yielding 0, 1, ..., n - 1 (fetched in batches).
    #[method]
    fn numbers(&self, n: i64) -> NetRef {
        NetRef::new(Numbers {
            next: AtomicI64::new(0),
            end: n.max(0),
        })
    }

    /// Wait for seconds (at most 3600), then return them: try a deadline
    /// or Ctrl-C on it.
    #[method]
    async fn sleep(&self, seconds: f64) -> Result<f64> {
        if !(0.0..=3600.0).contains(&seconds) {
            return Err(Error::app(
                "ValueError",
                "seconds must be between 0 and 3600",
            ));
        }
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

    /// A label anyone connected may change (root.label = "mine").
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

    /// A notebook shared by everyone connected: notes.add("text"),
    /// notes.list(), notes.clear().
    #[getter]
    fn notes(&self) -> NetRef {
        self.shared.notes.clone()
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

/// 0..end, handed out one batch at a time.
struct Numbers {
    next: AtomicI64,
    end: i64,
}

#[tether::expose]
impl Numbers {
    #[op(repr)]
    fn describe(&self) -> String {
        format!("<Numbers 0..{}>", self.end)
    }

    #[op(next)]
    fn advance(&self) -> Option<i64> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        (n < self.end).then_some(n)
    }

    /// How many numbers there are in all.
    #[method]
    fn len(&self) -> i64 {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let numbers = NetRef::try_from(demo.call_method("numbers", (3,)).await.unwrap()).unwrap();
        let items = numbers.iter().collect_all().await.unwrap();
        assert_eq!(items, vec![Value::from(0), Value::from(1), Value::from(2)]);
        let err = demo.call_method("divide", (1, 0)).await.unwrap_err();
        assert_eq!(err.to_string(), "ZeroDivisionError: float division by zero");
    }
}
