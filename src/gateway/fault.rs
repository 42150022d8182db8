//! What a failed gateway call reports, in both protocols.
//!
//! A [`Fault`] has a [`FaultKind`] and a message. Each protocol turns the
//! kind into its own number: the five errors JSON-RPC 2.0 defines use the
//! same codes in XML-RPC (the "specification for fault code
//! interoperability" that Python, PHP and Apache XML-RPC servers follow);
//! an error raised by the object itself is `-32500` in XML-RPC (that
//! specification's "application error") and `-32000` in JSON-RPC (the
//! first of its implementation-defined server errors).

use std::fmt;

use crate::{Error, ErrorKind};

/// Why a call failed, as the gateway's protocols distinguish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// The body is not well-formed XML or JSON (`-32700`).
    Parse,
    /// Well-formed, but not a request the protocol allows (`-32600`).
    InvalidRequest,
    /// No such method, or not one the object exposes (`-32601`).
    MethodNotFound,
    /// Arguments the method does not take (`-32602`).
    InvalidParams,
    /// The gateway could not complete the call: a result that cannot be
    /// sent (an object reference, a value the protocol cannot express),
    /// a deadline, a lost connection to a forwarded object (`-32603`).
    Internal,
    /// The object's method raised an error (`-32500` in XML-RPC, `-32000`
    /// in JSON-RPC), such as `ValueError: math domain error`.
    Application,
}

impl FaultKind {
    /// The code JSON-RPC 2.0 uses for this kind.
    pub fn json_code(self) -> i64 {
        match self {
            FaultKind::Application => -32000,
            other => other.shared_code(),
        }
    }

    /// The code XML-RPC (`faultCode`) uses for this kind.
    pub fn xml_code(self) -> i64 {
        match self {
            FaultKind::Application => -32500,
            other => other.shared_code(),
        }
    }

    fn shared_code(self) -> i64 {
        match self {
            FaultKind::Parse => -32700,
            FaultKind::InvalidRequest => -32600,
            FaultKind::MethodNotFound => -32601,
            FaultKind::InvalidParams => -32602,
            FaultKind::Internal | FaultKind::Application => -32603,
        }
    }

    /// The short title the JSON-RPC specification gives the code.
    fn title(self) -> &'static str {
        match self {
            FaultKind::Parse => "Parse error",
            FaultKind::InvalidRequest => "Invalid Request",
            FaultKind::MethodNotFound => "Method not found",
            FaultKind::InvalidParams => "Invalid params",
            FaultKind::Internal => "Internal error",
            FaultKind::Application => "Server error",
        }
    }
}

/// A failed call: its kind and a message for people. Each protocol sends
/// it in its own form (`faultCode`/`faultString`, `code`/`message`).
///
/// The message of an application error is the object's own, as
/// `ValueError: math domain error`; the others start with the kind's title,
/// as `Method not found: 'Calculator' object has no exposed member 'nope'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    kind: FaultKind,
    message: String,
}

impl Fault {
    /// A fault of `kind`; `detail` follows the kind's title in the message.
    pub(crate) fn new(kind: FaultKind, detail: impl fmt::Display) -> Fault {
        let message = match kind {
            FaultKind::Application => detail.to_string(),
            _ => format!("{}: {detail}", kind.title()),
        };
        Fault { kind, message }
    }

    /// What went wrong.
    pub(crate) fn kind(&self) -> FaultKind {
        self.kind
    }

    /// The message sent as `faultString` (XML-RPC) or `message` (JSON-RPC).
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The fault for a tether error raised by a call.
    pub(crate) fn from_error(err: &Error) -> Fault {
        let kind = match err.kind() {
            ErrorKind::Denied | ErrorKind::Unsupported => FaultKind::MethodNotFound,
            ErrorKind::BadArguments => FaultKind::InvalidParams,
            ErrorKind::Application | ErrorKind::Remote => FaultKind::Application,
            _ => FaultKind::Internal,
        };
        match kind {
            // "ValueError: math domain error", as Python would print it.
            FaultKind::Application => Fault::new(kind, err),
            _ => Fault::new(kind, err.message()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_errors_keep_the_objects_own_words() {
        let fault = Fault::from_error(&Error::app("ValueError", "math domain error"));
        assert_eq!(fault.kind(), FaultKind::Application);
        assert_eq!(fault.message(), "ValueError: math domain error");
        assert_eq!(
            (fault.kind().xml_code(), fault.kind().json_code()),
            (-32500, -32000)
        );
    }

    #[test]
    fn other_faults_start_with_the_spec_title() {
        let fault = Fault::new(FaultKind::MethodNotFound, "no method 'x'");
        assert_eq!(fault.message(), "Method not found: no method 'x'");
        assert_eq!(fault.kind().xml_code(), -32601);
        assert_eq!(fault.kind().json_code(), -32601);
    }
}
