//! The demo service `tether shell` serves in-process when given no address.

use std::sync::atomic::{AtomicI64, Ordering};

use tether::{Error, NetRef, Result, Value};

/// A small service to try the shell on: methods with docs, attributes, a
/// method returning an object, and an iterable.
#[derive(Clone, Debug, Default)]
pub struct Demo;

#[tether::expose(name = "Demo")]
impl Demo {
    /// What this service is.
    #[getter]
    fn name(&self) -> String {
        "tether demo service".to_string()
    }

    /// The version of tether serving it.
    #[getter]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// Add two integers.
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Greet someone: `greet('ann')`, or `greet('ann', greeting='hi')`.
    #[method]
    fn greet(&self, name: String, greeting: Option<String>) -> String {
        format!("{}, {name}!", greeting.as_deref().unwrap_or("Hello"))
    }

    /// Sum any number of numbers: `total(1, 2.5, 3)`.
    #[method]
    fn total(&self, #[rest] numbers: Vec<f64>) -> f64 {
        numbers.iter().sum()
    }

    /// Multiply each number by `factor` (2 when left out).
    #[method]
    fn scale(&self, numbers: Vec<f64>, factor: Option<f64>) -> Vec<f64> {
        let factor = factor.unwrap_or(2.0);
        numbers.iter().map(|x| x * factor).collect()
    }

    /// Divide `a` by `b`; dividing by zero fails with ZeroDivisionError.
    #[method]
    fn divide(&self, a: f64, b: f64) -> Result<f64> {
        if b == 0.0 {
            return Err(Error::app("ZeroDivisionError", "division by zero"));
        }
        Ok(a / b)
    }

    /// Send back whatever it is given, to see how values travel.
    #[method]
    fn echo(&self, value: Value) -> Value {
        value
    }

    /// A new counter object, starting at `start` (0 when left out).
    ///
    /// The counter lives on the server; you get a reference to it.
    #[method]
    fn counter(&self, start: Option<i64>) -> NetRef {
        NetRef::new(Counter {
            value: AtomicI64::new(start.unwrap_or(0)),
            step: AtomicI64::new(1),
        })
    }

    /// The squares 0, 1, 4, ... of the first `n` numbers, as a remote
    /// iterable: `list(root.squares(5))`.
    #[method]
    fn squares(&self, n: i64) -> NetRef {
        NetRef::new(Squares {
            next: AtomicI64::new(0),
            end: n.max(0),
        })
    }
}

/// A counter living on the server.
#[derive(Debug)]
pub struct Counter {
    value: AtomicI64,
    step: AtomicI64,
}

#[tether::expose(name = "Counter")]
impl Counter {
    /// Add the step (or `by`) to the count; return the new count.
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

    /// What `increment()` adds (writable: `c.step = 5`).
    #[getter]
    fn step(&self) -> i64 {
        self.step.load(Ordering::SeqCst)
    }

    #[setter]
    fn set_step(&self, step: i64) {
        self.step.store(step, Ordering::SeqCst);
    }

    #[op(repr)]
    fn describe(&self) -> String {
        format!("<Counter value={}>", self.value.load(Ordering::SeqCst))
    }
}

/// Squares of 0..end, one per `next`.
#[derive(Debug)]
pub struct Squares {
    next: AtomicI64,
    end: i64,
}

#[tether::expose(name = "Squares")]
impl Squares {
    /// How many squares are left.
    #[getter]
    fn remaining(&self) -> i64 {
        (self.end - self.next.load(Ordering::SeqCst)).max(0)
    }

    #[op(next)]
    fn advance(&self) -> Option<i64> {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        (i < self.end).then_some(i * i)
    }

    #[op(repr)]
    fn describe(&self) -> String {
        format!("<Squares, {} left>", self.remaining())
    }
}
