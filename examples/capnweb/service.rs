//! The service `examples/capnweb.rs` serves to JavaScript: a call, an
//! object returned by reference, and a method that calls the caller back.

use std::sync::{Arc, Mutex};

use tether::{Callback, Error, NetRef, Result, Value};

/// The root object JavaScript clients get.
#[derive(Clone, Default)]
pub struct Hello;

#[tether::expose]
impl Hello {
    /// Add two integers.
    #[method]
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// A greeting for `name`.
    #[method]
    pub fn greet(&self, name: String) -> String {
        format!("Hello, {name}!")
    }

    /// a / b; dividing by zero is a ValueError.
    #[method]
    pub fn divide(&self, a: f64, b: f64) -> Result<f64> {
        if b == 0.0 {
            return Err(Error::app("ValueError", "division by zero"));
        }
        Ok(a / b)
    }

    /// A counter object starting at `start`, held by reference.
    #[method]
    pub fn counter(&self, start: i64) -> NetRef {
        NetRef::new(Counter(Arc::new(Mutex::new(start))))
    }

    /// Call `callback(i)` for i = 1..=n, in order, each after the one
    /// before returned; n.
    #[method]
    pub async fn count_to(&self, n: i64, callback: Callback<i64, Value>) -> Result<i64> {
        for i in 1..=n {
            callback.call(i).await?;
        }
        Ok(n)
    }
}

/// A number that goes up.
#[derive(Clone)]
pub struct Counter(Arc<Mutex<i64>>);

#[tether::expose]
impl Counter {
    /// Add one; the new value.
    #[method]
    pub fn increment(&self) -> i64 {
        let mut n = self.0.lock().unwrap();
        *n += 1;
        *n
    }

    /// The current value.
    #[getter]
    pub fn value(&self) -> i64 {
        *self.0.lock().unwrap()
    }
}
