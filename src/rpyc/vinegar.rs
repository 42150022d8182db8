//! Exceptions across the wire ("vinegar" in RPyC): `((module, class),
//! args, attrs, traceback_text)`, or the integer 1 for `StopIteration`.
//!
//! Our errors become Python exceptions a Python peer re-raises as real
//! builtin classes where one fits: a missing or denied member is
//! `AttributeError`, bad arguments or an unsupported operation
//! `TypeError`, an error whose type name is a Python builtin exception
//! (`Error::app("ValueError", ..)`, or a Python callback's own
//! `ValueError` coming back) that exception. Others arrive as RPyC's
//! generic `tether.<Type>` exception. The traceback text carries tether's
//! trace, including the Python trace of a callback that failed on the way,
//! so the Python user sees both under "Remote Traceback".

use super::brine::Brine;
use crate::error::RemoteError;
use crate::{Error, ErrorKind};

/// What `StopIteration` travels as.
pub(crate) const STOP_ITERATION: i128 = 1;

/// The type name tether gives a Python `StopIteration`.
pub(crate) const STOP_ITERATION_NAME: &str = "StopIteration";

/// Builtin exception classes Python re-raises as themselves.
const PYTHON_BUILTINS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BufferError",
    "ConnectionError",
    "EOFError",
    "Exception",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "IndexError",
    "IsADirectoryError",
    "KeyError",
    "LookupError",
    "MemoryError",
    "NotADirectoryError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PermissionError",
    "RecursionError",
    "ReferenceError",
    "RuntimeError",
    "StopIteration",
    "TimeoutError",
    "TypeError",
    "UnicodeError",
    "ValueError",
    "ZeroDivisionError",
];

/// `err`, raised while `location`, as the exception tuple.
pub(crate) fn dump(err: &Error, location: &str) -> Brine {
    let remote = err.to_remote(location);
    let (module, class) = python_class(err, &remote);
    let trace = remote.render_trace().replacen(
        "Remote trace (outermost first):",
        "Traceback from tether (outermost first):",
        1,
    );
    Brine::Tuple(vec![
        Brine::Tuple(vec![Brine::Str(module), Brine::Str(class)]),
        Brine::Tuple(vec![Brine::Str(err.message().to_string())]),
        Brine::Tuple(vec![Brine::Tuple(vec![
            Brine::Str("_remote_version".into()),
            Brine::Str("<version denied>".into()),
        ])]),
        Brine::Str(trace),
    ])
}

fn python_class(err: &Error, remote: &RemoteError) -> (String, String) {
    let mut innermost = remote;
    while let Some(cause) = innermost.cause() {
        innermost = cause;
    }
    let name = innermost.type_name();
    if PYTHON_BUILTINS.contains(&name) {
        return ("builtins".into(), name.into());
    }
    let kind = match err.remote() {
        Some(r) => {
            let mut inner = r;
            while let Some(c) = inner.cause() {
                inner = c;
            }
            inner.kind()
        }
        None => err.kind(),
    };
    let builtin = match kind {
        ErrorKind::Denied => "AttributeError",
        ErrorKind::UnknownObject => "ReferenceError",
        ErrorKind::Unsupported | ErrorKind::BadArguments | ErrorKind::Type => "TypeError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::Closed | ErrorKind::Transport => "ConnectionError",
        ErrorKind::LimitExceeded | ErrorKind::Protocol | ErrorKind::Cancelled => "RuntimeError",
        _ => {
            let class = name.strip_prefix("tether::").unwrap_or(name);
            return ("tether".into(), class.into());
        }
    };
    ("builtins".into(), builtin.into())
}

/// The peer's exception as a tether error: its class (`ValueError`, or
/// `module.Class` outside builtins), its arguments as the message, its
/// traceback text as the trace.
pub(crate) fn load(value: &Brine) -> Error {
    let remote = match value {
        Brine::Int(STOP_ITERATION) => RemoteError {
            kind: ErrorKind::Application,
            type_name: STOP_ITERATION_NAME.into(),
            message: String::new(),
            trace: Vec::new(),
            cause: None,
        },
        Brine::Str(s) => plain(s.clone(), String::new(), ""),
        Brine::Tuple(parts) if parts.len() == 4 => {
            let class = match parts[0].as_tuple() {
                Some([Brine::Str(m), Brine::Str(c)]) if m == "builtins" => c.clone(),
                Some([Brine::Str(m), Brine::Str(c)]) => format!("{m}.{c}"),
                _ => "Exception".to_string(),
            };
            let message = match parts[1].as_tuple() {
                Some([Brine::Str(s)]) => s.clone(),
                Some([]) => String::new(),
                Some(items) => render(items),
                None => String::new(),
            };
            plain(class, message, parts[3].as_str().unwrap_or(""))
        }
        other => plain("Exception".into(), format!("{other:?}"), ""),
    };
    Error::from_remote(remote)
}

fn plain(type_name: String, message: String, trace: &str) -> RemoteError {
    RemoteError {
        kind: ErrorKind::Application,
        type_name,
        message,
        trace: trace
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        cause: None,
    }
}

/// Python's `str(args)`, roughly, for exceptions with several arguments.
fn render(items: &[Brine]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|b| match super::boxing::from_data(b.clone()) {
            Ok(v) => v.to_string(),
            Err(_) => format!("{b:?}"),
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// True for the error a Python `StopIteration` became.
pub(crate) fn is_stop_iteration(err: &Error) -> bool {
    err.remote()
        .is_some_and(|r| r.type_name() == STOP_ITERATION_NAME && r.cause().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::raise;

    fn class_of(b: &Brine) -> (String, String) {
        match b.as_tuple().unwrap()[0].as_tuple().unwrap() {
            [Brine::Str(m), Brine::Str(c)] => (m.clone(), c.clone()),
            _ => panic!(),
        }
    }

    #[test]
    fn tether_errors_map_to_python_builtins() {
        let cases = [
            (raise::no_member("Calc", "x"), "AttributeError"),
            (raise::bad_args("argument 0"), "TypeError"),
            (raise::unsupported("Calc", "callable"), "TypeError"),
            (Error::app("ValueError", "math domain error"), "ValueError"),
        ];
        for (err, class) in cases {
            assert_eq!(
                class_of(&dump(&err, "here")),
                ("builtins".into(), class.into())
            );
        }
        assert_eq!(
            class_of(&dump(&Error::app("MathError", "no"), "here")),
            ("tether".into(), "MathError".into())
        );
    }

    #[test]
    fn a_python_exception_round_trips_with_its_class_and_trace() {
        let exc = Brine::Tuple(vec![
            Brine::Tuple(vec![
                Brine::Str("builtins".into()),
                Brine::Str("KeyError".into()),
            ]),
            Brine::Tuple(vec![Brine::Str("k".into())]),
            Brine::Tuple(vec![]),
            Brine::Str(
                "Traceback (most recent call last):\n  File \"x.py\"\nKeyError: 'k'\n".into(),
            ),
        ]);
        let err = load(&exc);
        assert_eq!(err.kind(), ErrorKind::Remote);
        assert_eq!(err.type_name(), Some("KeyError"));
        assert_eq!(err.message(), "k");
        assert_eq!(err.remote().unwrap().trace().len(), 3);
        // Passed on to Python again, it is still a KeyError.
        assert_eq!(
            class_of(&dump(&err, "on the way")),
            ("builtins".into(), "KeyError".into())
        );
        assert!(is_stop_iteration(&load(&Brine::Int(1))));
    }
}
