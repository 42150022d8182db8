//! Call arguments: positional values plus named ones.
//!
//! Callers pass anything [`IntoArgs`]: `()`, a tuple of `Into<Value>` items,
//! a `Vec<Value>` or an [`Args`] built with [`Args::named`] for keyword
//! arguments. Owners take them apart with [`Args::parse`] into a tuple of
//! [`FromValue`] types, which checks the count and each type and reports the
//! position of the first argument that does not fit.

use super::{FromValue, Value};
use crate::error::raise;
use crate::Result;

/// The arguments of a call: positional values and `name=value` pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// Positional arguments, in order.
    pub positional: Vec<Value>,
    /// Named (keyword) arguments, in the order given.
    pub named: Vec<(String, Value)>,
}

impl Args {
    /// No arguments.
    pub fn new() -> Args {
        Args::default()
    }

    /// Add a positional argument.
    pub fn arg(mut self, value: impl Into<Value>) -> Args {
        self.positional.push(value.into());
        self
    }

    /// Add a named argument.
    ///
    /// ```
    /// let args = tether::Args::new().arg(1).named("scale", 2.5);
    /// assert_eq!(args.positional.len(), 1);
    /// assert_eq!(args.named[0].0, "scale");
    /// ```
    pub fn named(mut self, name: impl Into<String>, value: impl Into<Value>) -> Args {
        self.named.push((name.into(), value.into()));
        self
    }

    /// Number of positional arguments.
    pub fn len(&self) -> usize {
        self.positional.len()
    }

    /// True when there are no arguments at all.
    pub fn is_empty(&self) -> bool {
        self.positional.is_empty() && self.named.is_empty()
    }

    /// Take out the named argument `name`, if given.
    pub fn take_named(&mut self, name: &str) -> Option<Value> {
        let at = self.named.iter().position(|(n, _)| n == name)?;
        Some(self.named.remove(at).1)
    }

    /// Convert the arguments into a tuple (or a single value) of Rust types.
    ///
    /// ```
    /// use tether::{Args, Value};
    /// let args = Args::new().arg(2).arg("x");
    /// let (n, s): (i64, String) = args.parse().unwrap();
    /// assert_eq!((n, s.as_str()), (2, "x"));
    ///
    /// let err = Args::new().arg("two").parse::<(i64,)>().unwrap_err();
    /// assert_eq!(err.kind(), tether::ErrorKind::BadArguments);
    /// assert_eq!(err.message(), "argument 1: expected int, got str");
    /// ```
    pub fn parse<T: FromArgs>(self) -> Result<T> {
        T::from_args(self)
    }
}

/// Something that can be passed as the arguments of a call: a tuple of
/// values (`(1, "two")`; one argument is `(x,)`, none `()`), a
/// `Vec<Value>`, or [`Args`] for named ones.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a list of call arguments",
    label = "arguments go in a tuple",
    note = "one argument is a one-element tuple, `(x,)`; none is `()`; named ones are `Args::new().named(..)`"
)]
pub trait IntoArgs {
    /// Build the argument list.
    fn into_args(self) -> Args;
}

impl IntoArgs for Args {
    fn into_args(self) -> Args {
        self
    }
}

impl IntoArgs for Vec<Value> {
    fn into_args(self) -> Args {
        Args {
            positional: self,
            named: Vec::new(),
        }
    }
}

impl IntoArgs for () {
    fn into_args(self) -> Args {
        Args::default()
    }
}

/// Something an owner can take apart from [`Args`]: a tuple of
/// [`FromValue`] types (one per positional argument) or a single one.
pub trait FromArgs: Sized {
    /// Check the count and convert each argument.
    fn from_args(args: Args) -> Result<Self>;
}

impl FromArgs for Args {
    fn from_args(args: Args) -> Result<Args> {
        Ok(args)
    }
}

impl FromArgs for () {
    fn from_args(args: Args) -> Result<()> {
        expect_count(&args, 0)
    }
}

/// A single argument converts directly, so a callback can take `String`
/// rather than `(String,)`.
impl<T: FromValue> FromArgs for T {
    fn from_args(args: Args) -> Result<T> {
        expect_count(&args, 1)?;
        let mut it = args.positional.into_iter();
        convert_arg(1, it.next().unwrap_or_default())
    }
}

fn expect_count(args: &Args, n: usize) -> Result<()> {
    if let Some((name, _)) = args.named.first() {
        return Err(raise::bad_args(format!(
            "unexpected named argument '{name}'"
        )));
    }
    if args.positional.len() != n {
        return Err(raise::bad_args(format!(
            "takes {n} argument{} but {} {} given",
            if n == 1 { "" } else { "s" },
            args.positional.len(),
            if args.positional.len() == 1 {
                "was"
            } else {
                "were"
            },
        )));
    }
    Ok(())
}

/// Argument number `place`, counted from 1 as people count.
fn convert_arg<T: FromValue>(place: usize, value: Value) -> Result<T> {
    T::from_value(value).map_err(|e| raise::bad_args(format!("argument {place}: {}", e.message())))
}

macro_rules! tuple_args {
    ($n:expr; $($name:ident $idx:tt)+) => {
        impl<$($name: Into<Value>),+> IntoArgs for ($($name,)+) {
            fn into_args(self) -> Args {
                Args { positional: vec![$(self.$idx.into()),+], named: Vec::new() }
            }
        }

        impl<$($name: FromValue),+> FromArgs for ($($name,)+) {
            fn from_args(args: Args) -> Result<Self> {
                expect_count(&args, $n)?;
                let mut it = args.positional.into_iter();
                Ok(($(convert_arg::<$name>($idx + 1, it.next().unwrap_or_default())?,)+))
            }
        }
    };
}
tuple_args!(1; A 0);
tuple_args!(2; A 0 B 1);
tuple_args!(3; A 0 B 1 C 2);
tuple_args!(4; A 0 B 1 C 2 D 3);
tuple_args!(5; A 0 B 1 C 2 D 3 E 4);
tuple_args!(6; A 0 B 1 C 2 D 3 E 4 F 5);
tuple_args!(7; A 0 B 1 C 2 D 3 E 4 F 5 G 6);
tuple_args!(8; A 0 B 1 C 2 D 3 E 4 F 5 G 6 H 7);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn tuples_become_positional_arguments() {
        let args = (1, "two", 3.0).into_args();
        assert_eq!(
            args.positional,
            vec![Value::Int(1), Value::from("two"), Value::Float(3.0)]
        );
    }

    #[test]
    fn wrong_count_is_reported() {
        let err = (1, 2).into_args().parse::<(i64,)>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadArguments);
        assert_eq!(err.message(), "takes 1 argument but 2 were given");
        let err = ().into_args().parse::<String>().unwrap_err();
        assert_eq!(err.message(), "takes 1 argument but 0 were given");
    }

    #[test]
    fn single_value_parses_without_tuple() {
        let s: String = ("hi",).into_args().parse().unwrap();
        assert_eq!(s, "hi");
    }

    #[test]
    fn unexpected_named_argument_is_refused() {
        let err = Args::new().named("x", 1).parse::<()>().unwrap_err();
        assert_eq!(err.message(), "unexpected named argument 'x'");
    }
}
