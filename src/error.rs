//! The one public error type, its kinds, and the error a peer sends back.
//!
//! Every fallible tether operation returns [`Error`]. Branch on
//! [`Error::kind`]; the `Display` text is meant for people and may change.
//! When the failure happened on the other side of a connection, the peer's
//! own description travels as a [`RemoteError`]: its type name, message, the
//! trace of hops it crossed and, when it came from a callback, the error it
//! wraps ([`RemoteError::cause`]).

use std::fmt;
use std::sync::Arc;

/// A `Result` whose error is [`tether::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in a form programs can branch on.
///
/// New kinds may be added; match with a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The byte stream failed: connect refused, reset, broken pipe.
    Transport,
    /// The peer broke the protocol: garbage bytes, an oversized frame, a bad
    /// handshake, another protocol version.
    Protocol,
    /// The call's deadline passed before a reply arrived.
    Timeout,
    /// The call was cancelled before it finished.
    Cancelled,
    /// The policy of the object's owner does not allow this operation, or the
    /// member is not exposed (the two are indistinguishable on purpose).
    Denied,
    /// The object id is unknown to its supposed owner: never exported, already
    /// released, or exported on another connection.
    UnknownObject,
    /// The object does not support the operation (not callable, not iterable).
    Unsupported,
    /// Arguments did not fit the method: wrong count or wrong types.
    BadArguments,
    /// A value could not be converted to or from a Rust type.
    Type,
    /// A configured limit was exceeded (frame size, nesting depth, ...).
    LimitExceeded,
    /// The connection is closed; the call did not run (or its outcome is unknown).
    Closed,
    /// Object code failed locally with an application error (see [`Error::app`]).
    Application,
    /// Object code on the peer failed; see [`Error::remote`] for details.
    Remote,
    /// The call may or may not have run, and cannot be asked about again:
    /// its connection was lost and the owner no longer remembers it (see
    /// [`session`](crate::session), which resolves the other cases).
    OutcomeUnknown,
}

impl ErrorKind {
    /// A stable lowercase name, used on the wire and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transport => "transport",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Denied => "denied",
            ErrorKind::UnknownObject => "unknown object",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::BadArguments => "bad arguments",
            ErrorKind::Type => "type",
            ErrorKind::LimitExceeded => "limit exceeded",
            ErrorKind::Closed => "connection closed",
            ErrorKind::Application => "application",
            ErrorKind::Remote => "remote",
            ErrorKind::OutcomeUnknown => "outcome unknown",
        }
    }

    pub(crate) fn to_wire(self) -> u8 {
        ALL_KINDS.iter().position(|k| *k == self).unwrap_or(0) as u8
    }

    pub(crate) fn from_wire(code: u8) -> ErrorKind {
        ALL_KINDS
            .get(code as usize)
            .copied()
            .unwrap_or(ErrorKind::Remote)
    }

    /// The kind a caller sees for an error of this kind raised by the peer.
    ///
    /// Policy, lookup, argument and deadline failures keep their kind across
    /// the wire so callers can branch on them; everything else (application
    /// errors, and the owner's own transport failures) becomes `Remote`.
    fn seen_by_caller(self) -> ErrorKind {
        match self {
            ErrorKind::Denied
            | ErrorKind::UnknownObject
            | ErrorKind::Unsupported
            | ErrorKind::BadArguments
            | ErrorKind::Type
            | ErrorKind::LimitExceeded
            | ErrorKind::Timeout
            | ErrorKind::Cancelled
            | ErrorKind::OutcomeUnknown => self,
            _ => ErrorKind::Remote,
        }
    }
}

/// Wire codes are positions in this list: append only.
const ALL_KINDS: [ErrorKind; 14] = [
    ErrorKind::Remote,
    ErrorKind::Transport,
    ErrorKind::Protocol,
    ErrorKind::Timeout,
    ErrorKind::Cancelled,
    ErrorKind::Denied,
    ErrorKind::UnknownObject,
    ErrorKind::Unsupported,
    ErrorKind::BadArguments,
    ErrorKind::Type,
    ErrorKind::LimitExceeded,
    ErrorKind::Closed,
    ErrorKind::Application,
    ErrorKind::OutcomeUnknown,
];

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every tether operation.
///
/// Cheap to clone. Use [`kind`](Error::kind) or the `is_*` helpers to branch,
/// [`remote`](Error::remote) for what the peer reported. The alternate format
/// (`{:#}`) prints the remote trace as well.
///
/// Object code creates errors with [`Error::app`] (an application error with a
/// type name, like a Python exception class) or [`Error::from_std`].
#[derive(Clone)]
pub struct Error {
    inner: Arc<ErrorImpl>,
}

struct ErrorImpl {
    kind: ErrorKind,
    message: String,
    type_name: Option<String>,
    remote: Option<RemoteError>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Arc::new(ErrorImpl {
                kind,
                message: message.into(),
                type_name: None,
                remote: None,
                source: None,
            }),
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            inner: Arc::new(ErrorImpl {
                kind,
                message: message.into(),
                type_name: None,
                remote: None,
                source: Some(Arc::new(source)),
            }),
        }
    }

    /// An application error raised by object code, with a type name the peer
    /// sees (like a Python exception class) and a message.
    ///
    /// ```
    /// let err = tether::Error::app("ValueError", "math domain error");
    /// assert_eq!(err.kind(), tether::ErrorKind::Application);
    /// assert_eq!(err.to_string(), "ValueError: math domain error");
    /// ```
    pub fn app(type_name: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            inner: Arc::new(ErrorImpl {
                kind: ErrorKind::Application,
                message: message.into(),
                type_name: Some(type_name.into()),
                remote: None,
                source: None,
            }),
        }
    }

    /// An application error from any standard error; its Rust type name becomes
    /// the type name the peer sees.
    pub fn from_std<E: std::error::Error + Send + Sync + 'static>(err: E) -> Error {
        let type_name = std::any::type_name::<E>().to_string();
        Error {
            inner: Arc::new(ErrorImpl {
                kind: ErrorKind::Application,
                message: err.to_string(),
                type_name: Some(type_name),
                remote: None,
                source: Some(Arc::new(err)),
            }),
        }
    }

    /// A failure reported by the peer.
    pub(crate) fn from_remote(remote: RemoteError) -> Error {
        Error {
            inner: Arc::new(ErrorImpl {
                kind: remote.kind.seen_by_caller(),
                message: remote.message.clone(),
                type_name: Some(remote.type_name.clone()),
                remote: Some(remote),
                source: None,
            }),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The human-readable message, without kind or type name.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The type name of an application or remote error (`"ValueError"`).
    pub fn type_name(&self) -> Option<&str> {
        self.inner.type_name.as_deref()
    }

    /// What the peer reported, when the failure happened on the other side.
    pub fn remote(&self) -> Option<&RemoteError> {
        self.inner.remote.as_ref()
    }

    /// When connecting failed because the peer speaks another of the
    /// dialects tether knows: which one. A native connection that reached a
    /// Python RPyC server fails at once with [`ErrorKind::Protocol`] and
    /// `Some(Dialect::Rpyc)`: connect with
    /// [`rpyc::connect`](crate::rpyc::connect) instead.
    pub fn peer_dialect(&self) -> Option<crate::rpyc::Dialect> {
        let source = self.inner.source.as_deref()?;
        source
            .downcast_ref::<crate::rpyc::OtherDialect>()
            .map(|other| other.0)
    }

    /// True for [`ErrorKind::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// True for [`ErrorKind::Closed`].
    pub fn is_closed(&self) -> bool {
        self.kind() == ErrorKind::Closed
    }

    /// True for [`ErrorKind::Denied`].
    pub fn is_denied(&self) -> bool {
        self.kind() == ErrorKind::Denied
    }

    /// True for [`ErrorKind::Remote`].
    pub fn is_remote(&self) -> bool {
        self.kind() == ErrorKind::Remote
    }

    /// This error as the peer will receive it, with `location` added as the
    /// newest line of the trace. An error that itself came from a peer (for
    /// example raised in a client's callback) keeps its type and message and
    /// is nested as the cause, so the chain stays intact across hops.
    ///
    /// A timeout or cancellation of a call the owner made in turn is not the
    /// caller's own deadline passing, so it travels as `Remote` (the
    /// original kind stays in the cause); the owner's own deadline error is
    /// built with [`RemoteError::deadline`].
    pub(crate) fn to_remote(&self, location: &str) -> RemoteError {
        let outer_kind = |kind: ErrorKind| match kind {
            ErrorKind::Timeout | ErrorKind::Cancelled => ErrorKind::Remote,
            other => other,
        };
        match &self.inner.remote {
            Some(inner) => RemoteError {
                kind: outer_kind(inner.kind),
                type_name: inner.type_name.clone(),
                message: inner.message.clone(),
                trace: vec![location.to_string()],
                cause: Some(Box::new(inner.clone())),
            },
            None => RemoteError {
                kind: outer_kind(self.inner.kind),
                type_name: self
                    .inner
                    .type_name
                    .clone()
                    .unwrap_or_else(|| format!("tether::{}", camel(self.inner.kind))),
                message: self.inner.message.clone(),
                trace: vec![location.to_string()],
                cause: None,
            },
        }
    }

    /// The same error with `context` put in front of its message.
    pub(crate) fn context(self, context: impl fmt::Display) -> Error {
        let message = format!("{context}: {}", self.inner.message);
        let mut inner = ErrorImpl {
            kind: self.inner.kind,
            message,
            type_name: self.inner.type_name.clone(),
            remote: self.inner.remote.clone(),
            source: self.inner.source.clone(),
        };
        if let Some(remote) = inner.remote.as_mut() {
            remote.message = inner.message.clone();
        }
        Error {
            inner: Arc::new(inner),
        }
    }
}

fn camel(kind: ErrorKind) -> String {
    kind.as_str()
        .split(' ')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<String>()
        + "Error"
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(t) = &self.inner.type_name {
            d.field("type_name", t);
        }
        d.field("message", &self.inner.message);
        if let Some(r) = &self.inner.remote {
            d.field("remote", r);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.type_name, &self.inner.remote) {
            (_, Some(remote)) => {
                write!(f, "{}: {}", remote.type_name, remote.message)?;
                if f.alternate() {
                    write!(f, "\n{}", remote.render_trace())?;
                }
                Ok(())
            }
            (Some(t), None) => write!(f, "{t}: {}", self.inner.message),
            (None, None) => write!(f, "{}: {}", self.inner.kind, self.inner.message),
        }
    }
}

impl std::error::Error for Error {
    /// A local cause (an I/O error, say), or for a remote failure the error
    /// it wraps, so a callback's error shows up in `anyhow`-style chains.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Some(source) = self.inner.source.as_deref() {
            return Some(source as &(dyn std::error::Error + 'static));
        }
        self.inner
            .remote
            .as_ref()
            .and_then(|r| r.cause())
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Standard parse and conversion errors, so `?` works on them in object
/// code: each is an application error named as Python names the same
/// failure (`int("x")` raises `ValueError`), with the original kept as
/// its [`source`](std::error::Error::source). For any other standard
/// error, [`Error::from_std`] (`.map_err(Error::from_std)?`).
macro_rules! std_errors_as {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl From<$ty> for Error {
            fn from(err: $ty) -> Error {
                Error {
                    inner: Arc::new(ErrorImpl {
                        kind: ErrorKind::Application,
                        message: err.to_string(),
                        type_name: Some($name.to_string()),
                        remote: None,
                        source: Some(Arc::new(err)),
                    }),
                }
            }
        }
    )*};
}

std_errors_as! {
    std::num::ParseIntError => "ValueError",
    std::num::ParseFloatError => "ValueError",
    std::str::ParseBoolError => "ValueError",
    std::char::ParseCharError => "ValueError",
    std::net::AddrParseError => "ValueError",
    std::num::TryFromIntError => "OverflowError",
    std::str::Utf8Error => "UnicodeDecodeError",
    std::string::FromUtf8Error => "UnicodeDecodeError",
}

impl From<std::io::Error> for Error {
    /// An I/O failure inside object code (reading a file, say) is an
    /// application error the peer sees as `std::io::Error`.
    fn from(err: std::io::Error) -> Error {
        Error::from_std(err)
    }
}

/// An error as the peer reported it: type name, message, the trace of hops
/// it crossed (newest last... see [`render_trace`](RemoteError::render_trace)),
/// and the error it wraps when it came from a callback on a third hop.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError {
    pub(crate) kind: ErrorKind,
    pub(crate) type_name: String,
    pub(crate) message: String,
    pub(crate) trace: Vec<String>,
    pub(crate) cause: Option<Box<RemoteError>>,
}

impl RemoteError {
    /// The owner's report that the call itself ran past its deadline.
    pub(crate) fn deadline(message: String, location: &str) -> RemoteError {
        RemoteError {
            kind: ErrorKind::Timeout,
            type_name: "tether::TimeoutError".into(),
            message,
            trace: vec![location.to_string()],
            cause: None,
        }
    }

    /// The kind the owner gave the failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The error's type name on the owner (`"ValueError"`, `"std::io::Error"`).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The owner's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the error passed on this hop, one line per frame.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// The error this one wraps: for an error raised in a callback and
    /// propagated through the server's method, the callback's own error.
    pub fn cause(&self) -> Option<&RemoteError> {
        self.cause.as_deref()
    }

    /// Every hop from the outermost to the original error, as text in the
    /// spirit of Python's "Remote Traceback".
    pub fn render_trace(&self) -> String {
        let mut out = String::from("Remote trace (outermost first):");
        let mut cur = Some(self);
        while let Some(err) = cur {
            for line in &err.trace {
                out.push_str("\n  ");
                out.push_str(line);
            }
            if err.cause.is_none() {
                out.push_str(&format!("\n{}: {}", err.type_name, err.message));
            }
            cur = err.cause.as_deref();
        }
        out
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

/// Shorthands for the errors tether itself raises, so messages stay uniform.
pub(crate) mod raise {
    use super::{Error, ErrorKind};

    pub(crate) fn closed(why: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Closed, why.to_string())
    }

    pub(crate) fn protocol(why: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Protocol, why.to_string())
    }

    pub(crate) fn denied(why: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Denied, why.to_string())
    }

    pub(crate) fn no_member(type_name: &str, name: &str) -> Error {
        no_member_near(type_name, name, None)
    }

    /// [`no_member`], suggesting `near` (an exposed member) when given.
    pub(crate) fn no_member_near(type_name: &str, name: &str, near: Option<&str>) -> Error {
        let hint = near.map_or(String::new(), |near| format!("; did you mean '{near}'?"));
        denied(format!(
            "'{type_name}' object has no exposed member '{name}'{hint}"
        ))
    }

    pub(crate) fn unsupported(type_name: &str, what: &str) -> Error {
        Error::new(
            ErrorKind::Unsupported,
            format!("'{type_name}' object is not {what}"),
        )
    }

    pub(crate) fn type_mismatch(expected: &str, got: &str) -> Error {
        Error::new(ErrorKind::Type, format!("expected {expected}, got {got}"))
    }

    pub(crate) fn bad_args(why: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::BadArguments, why.to_string())
    }

    pub(crate) fn limit(why: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::LimitExceeded, why.to_string())
    }

    pub(crate) fn outcome_unknown(why: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::OutcomeUnknown, why.to_string())
    }

    pub(crate) fn unknown_object(id: u64) -> Error {
        Error::new(
            ErrorKind::UnknownObject,
            format!("no object with id {id:#x} on this connection (never exported here, or already released)"),
        )
    }
}
