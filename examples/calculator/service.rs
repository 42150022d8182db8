//! The service of the source document's XML-RPC and JSON-RPC examples,
//! shared by `calculator_server` and `tests/calculator.rs`.
//!
//! ```python
//! def addtogether(*things):
//!     """Add together everything in the list `things`."""
//!     return reduce(operator.add, things)
//!
//! def quadratic(a, b, c):
//!     """Determine `x` values satisfying: `a` * x*x + `b` * x + c == 0"""
//!     b24ac = sqrt(b*b - 4.0*a*c)
//!     return list(set([(-b - b24ac) / 2.0*a, (-b + b24ac) / 2.0*a]))
//!
//! def remote_repr(arg):
//!     """Return the `repr()` rendering of the supplied `arg`."""
//!     return arg
//!
//! def lengths(*args):                      # the JSON-RPC server
//!     ...                                  # (arg, len(arg) or None) pairs
//! ```
//!
//! Differences from the Python, on purpose: `quadratic` uses the correct
//! formula `(-b ± sqrt(b² − 4ac)) / 2a` (the original divides by 2 and then
//! multiplies by `a`) and returns its roots in a fixed order, the `+` root
//! first; and `addtogether` accepts numbers, strings, bytes or lists only
//! (Python would also add a single dict, or booleans as numbers).

use tether::{Error, Result, Value};

/// The calculator the document's XML-RPC server registers, with the
/// JSON-RPC server's `lengths` as a fourth method: one root object serves
/// every client example.
#[derive(Clone, Debug, Default)]
pub struct Calculator;

#[tether::expose]
impl Calculator {
    /// Add together everything in the list `things`: numbers add (an int
    /// if all are ints, else a float), strings and bytes concatenate, lists
    /// join. Mixing kinds, or passing nothing, is a TypeError.
    #[method]
    fn addtogether(&self, #[rest] things: Vec<Value>) -> Result<Value> {
        add_together(things)
    }

    /// Determine `x` values satisfying: `a` * x*x + `b` * x + `c` == 0.
    /// Returns the distinct real roots, the `+` root first; a ValueError
    /// when there is none (negative discriminant).
    #[method]
    fn quadratic(&self, a: f64, b: f64, c: f64) -> Result<Vec<f64>> {
        quadratic(a, b, c)
    }

    /// Return the supplied `arg` unchanged, so the caller sees how it
    /// travelled (a tuple arrives as a list).
    #[method]
    fn remote_repr(&self, arg: Value) -> Value {
        arg
    }

    /// For each argument, the pair `[arg, length]`: the number of characters
    /// of a string, of items of bytes, a list or a map, and None for values
    /// without a length (numbers, booleans, None).
    #[method]
    fn lengths(&self, #[rest] args: Vec<Value>) -> Vec<(Value, Option<usize>)> {
        args.into_iter()
            .map(|arg| {
                let len = length(&arg);
                (arg, len)
            })
            .collect()
    }
}

/// `reduce(operator.add, things)` for the kinds of value that add up.
pub fn add_together(things: Vec<Value>) -> Result<Value> {
    let mut things = things.into_iter();
    let Some(mut total) = things.next() else {
        return Err(Error::app(
            "TypeError",
            "addtogether() needs at least one thing to add",
        ));
    };
    if !matches!(
        total,
        Value::Int(_) | Value::Float(_) | Value::Str(_) | Value::Bytes(_) | Value::List(_)
    ) {
        return Err(Error::app(
            "TypeError",
            format!("cannot add '{}' values", total.type_name()),
        ));
    }
    for thing in things {
        total = match (total, thing) {
            (Value::Int(x), Value::Int(y)) => Value::Int(
                x.checked_add(y)
                    .ok_or_else(|| Error::app("OverflowError", "integer sum out of range"))?,
            ),
            (Value::Int(x), Value::Float(y)) => Value::Float(x as f64 + y),
            (Value::Float(x), Value::Int(y)) => Value::Float(x + y as f64),
            (Value::Float(x), Value::Float(y)) => Value::Float(x + y),
            (Value::Str(mut x), Value::Str(y)) => {
                x.push_str(&y);
                Value::Str(x)
            }
            (Value::Bytes(x), Value::Bytes(y)) => Value::Bytes([x, y].concat().into()),
            (Value::List(mut x), Value::List(y)) => {
                x.extend(y);
                Value::List(x)
            }
            (x, y) => {
                return Err(Error::app(
                    "TypeError",
                    format!(
                        "unsupported operand type(s) for +: '{}' and '{}'",
                        x.type_name(),
                        y.type_name()
                    ),
                ))
            }
        };
    }
    Ok(total)
}

/// The distinct real roots of `a`x² + `b`x + `c` = 0, `+` root first.
pub fn quadratic(a: f64, b: f64, c: f64) -> Result<Vec<f64>> {
    if a == 0.0 {
        return Err(Error::app(
            "ZeroDivisionError",
            "float division by zero (a = 0 is not a quadratic equation)",
        ));
    }
    let discriminant = b * b - 4.0 * a * c;
    // Also refuses NaN (from NaN or infinite coefficients).
    if discriminant < 0.0 || discriminant.is_nan() {
        return Err(Error::app("ValueError", "math domain error"));
    }
    let root = discriminant.sqrt();
    // `+ 0.0` turns a -0.0 into 0.0, which reads better.
    let plus = (-b + root) / (2.0 * a) + 0.0;
    let minus = (-b - root) / (2.0 * a) + 0.0;
    Ok(if plus == minus {
        vec![plus]
    } else {
        vec![plus, minus]
    })
}

/// Python's `len(arg)`, or None for values without a length.
pub fn length(arg: &Value) -> Option<usize> {
    match arg {
        Value::Str(s) => Some(s.chars().count()),
        Value::Bytes(b) => Some(b.len()),
        Value::List(items) => Some(items.len()),
        Value::Map(pairs) => Some(pairs.len()),
        _ => None,
    }
}
