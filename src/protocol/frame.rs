//! The messages two peers exchange after the handshake.
//!
//! A handful of kinds, as in RPyC: a request names a target object and one
//! [`Op`]; a reply answers it by sequence number; a batch carries several
//! requests answered in one frame; releases, cancels, pings and close need
//! no reply. A pipelined request (protocol 4) is a request whose result
//! the owner also keeps, as answer `seq`, so that later requests can
//! target it before its reply has arrived; `Finish` lets it go. Requests
//! of every kind may carry the caller's [`TraceContext`] (protocol 5).
//! Bytes are in [`codec`](super::codec).

use crate::error::RemoteError;
use crate::{Args, Value};

/// One message on the wire.
#[derive(Debug)]
pub(crate) enum Message {
    /// Run `op` on the receiver's object `target` (unused for `GetRoot`);
    /// the caller gives up after `timeout_ms` (a relative deadline, so clock
    /// skew between peers does not matter). `depth` is how deeply the call
    /// is nested in calls being served (0: made by no serving call); on the
    /// wire it follows the operation, and only when not 0 or followed by a
    /// `trace`, the span the call was made in (protocol 5).
    Request {
        seq: u64,
        target: u64,
        timeout_ms: u64,
        depth: u32,
        trace: Option<Box<TraceContext>>,
        op: Op,
    },
    /// The outcome of the request numbered `seq`.
    Reply {
        seq: u64,
        result: Result<Value, RemoteError>,
    },
    /// The sender dropped its proxies for these ids; each pair is
    /// `(id, number of times the sender received the id)`.
    Release(Vec<(u64, u64)>),
    /// The sender no longer waits for request `seq`; abort it.
    Cancel(u64),
    /// Liveness probe; answered with `Pong` carrying the same number.
    Ping(u64),
    /// Answer to `Ping`.
    Pong(u64),
    /// The sender is closing the connection, and says why in words true
    /// for the receiver (empty for a plain close); the receiver reads it
    /// after "the peer closed the connection: ".
    Close(String),
    /// Several operations, run in order by the receiver, answered by one
    /// `BatchReply`; one failing does not stop the others.
    Batch {
        seq: u64,
        timeout_ms: u64,
        depth: u32,
        trace: Option<Box<TraceContext>>,
        calls: Vec<(u64, Op)>,
    },
    /// The outcomes of a `Batch`, in its order.
    BatchReply {
        seq: u64,
        results: Vec<Result<Value, RemoteError>>,
    },
    /// Run `op` on `subject`, answer it as a `Request` is answered, and
    /// keep its outcome as answer `seq` (the caller's number, never reused)
    /// until the caller sends `Finish`. Protocol 4.
    Pipelined {
        seq: u64,
        subject: Subject,
        timeout_ms: u64,
        depth: u32,
        trace: Option<Box<TraceContext>>,
        op: Op,
    },
    /// The sender no longer needs these answers of the receiver's; each
    /// is dropped once nothing sent before it depends on it. Protocol 4.
    Finish(Vec<u64>),
}

/// The span a request was made in, as W3C Trace Context's `traceparent`
/// carries it: the ids of the trace and of the caller's span, and the
/// trace flags (bit 0: sampled). The callee's span for the request is a
/// child of it, so both sides' spans join in one trace.
///
/// Carried (protocol 5) whether or not this build records traces (the
/// `otel` feature): a build without it reads and ignores it. Boxed in a
/// [`Message`], which it would otherwise make a quarter larger for every
/// call, traced or not (messages are moved a few times per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) flags: u8,
}

impl TraceContext {
    /// Bytes of a trace context on the wire.
    pub(crate) const WIRE_LEN: usize = 16 + 8 + 1;

    /// A context W3C Trace Context accepts: neither id is all zeros.
    pub(crate) fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }
}

/// What a pipelined request runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    /// An object of the receiver's, by its id on this connection.
    Object(u64),
    /// The outcome of the receiver's answer to pipelined request `seq`,
    /// once it is known.
    Answer(u64),
}

/// One operation on an object, mirroring RPyC's handler set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// The root object of the receiver's side of the connection.
    GetRoot,
    /// Read an attribute (a method name yields a bound method).
    GetAttr(String),
    /// Write a writable attribute.
    SetAttr(String, Value),
    /// Delete a writable attribute.
    DelAttr(String),
    /// Call the object itself.
    Call(Args),
    /// Call one of its methods.
    CallMethod(String, Args),
    /// The names of its exposed members.
    Dir,
    /// Its `repr`.
    Repr,
    /// Its `str`.
    Str,
    /// Its hash.
    Hash,
    /// Equality with a value.
    Eq(Value),
    /// Its exposed members with kinds, signatures and docs.
    Inspect,
    /// Up to `max` next items (a reply shorter than `max` means exhausted).
    Next(u32),
    /// Release the resource it holds.
    Close,
}

impl Op {
    /// A short name for traces and logs (its [`Display`](std::fmt::Display)).
    pub(crate) fn describe(&self) -> String {
        self.to_string()
    }
}

/// `add()`, `getattr 'x'`, `dir`: what a log line or a span calls it,
/// written only when one is (a span's name is formatted only when the
/// span is recorded).
impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::GetRoot => f.write_str("get root"),
            Op::GetAttr(n) => write!(f, "getattr '{n}'"),
            Op::SetAttr(n, _) => write!(f, "setattr '{n}'"),
            Op::DelAttr(n) => write!(f, "delattr '{n}'"),
            Op::Call(_) => f.write_str("call"),
            Op::CallMethod(n, _) => write!(f, "{n}()"),
            Op::Dir => f.write_str("dir"),
            Op::Repr => f.write_str("repr"),
            Op::Str => f.write_str("str"),
            Op::Hash => f.write_str("hash"),
            Op::Eq(_) => f.write_str("eq"),
            Op::Inspect => f.write_str("inspect"),
            Op::Next(_) => f.write_str("next"),
            Op::Close => f.write_str("close"),
        }
    }
}

/// What describing an operation in an error's location or a log line
/// needs, kept aside before the operation goes to the object: the
/// operation without its arguments, so nothing is formatted unless an
/// error happens.
pub(crate) struct Label(Op);

impl Label {
    pub(crate) fn of(op: &Op) -> Label {
        Label(match op {
            Op::SetAttr(name, _) => Op::SetAttr(name.clone(), Value::None),
            Op::Call(_) => Op::Call(Args::default()),
            Op::CallMethod(name, _) => Op::CallMethod(name.clone(), Args::default()),
            Op::Eq(_) => Op::Eq(Value::None),
            // The rest carry no arguments.
            other => other.clone(),
        })
    }

    /// [`Op::describe`] of the operation.
    pub(crate) fn describe(&self) -> String {
        self.0.describe()
    }
}

/// How a reference travels, named from the receiver's side (as RPyC does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireRef {
    /// "This is yours": an object the receiver owns, coming back.
    Yours(u64),
    /// "This is mine": the sender owns it and counted one more send.
    Mine(u64),
    /// "Your answer": the outcome of the receiver's answer to the sender's
    /// pipelined request with this number, once it is known (protocol 4).
    Answer(u64),
}
