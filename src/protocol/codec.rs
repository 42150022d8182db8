//! Messages to bytes and back, with bincode.
//!
//! A frame is a 4-byte big-endian payload length followed by the payload,
//! the layout of tokio-util's `LengthDelimitedCodec`, which reads them. The
//! payload is bincode (standard config: little-endian varints) written by
//! hand-coded `Encode`/`BorrowDecode` impls, so that:
//!
//! - references are resolved while encoding and decoding, through
//!   [`RefCodec`], without an intermediate tree;
//! - no length the peer declares is trusted: text and bytes are borrowed
//!   from the received frame (so a claimed length larger than the frame fails
//!   before any allocation), and lists reserve at most what the frame could
//!   hold;
//! - nesting is bounded by [`MAX_DEPTH`], so a hostile frame cannot overflow
//!   the stack;
//! - what the values take once decoded is counted against a
//!   [`DecodeBudget`] (see `protocol::budget`): past it, decoding goes on
//!   parsing to the end of the frame without building anything more, and
//!   the message fails alone.
//!
//! This is the only module that knows the encoding; swapping bincode means
//! rewriting this file alone.

use std::cell::RefCell;

use bincode::de::read::{BorrowReader, Reader};
use bincode::de::BorrowDecoder;
use bincode::enc::write::Writer;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{BorrowDecode, Decode, Encode};
use bytes::{BufMut, Bytes, BytesMut};

use super::budget::DecodeBudget;
use super::frame::{Message, Op, Subject, TraceContext, WireRef};
use crate::error::{raise, RemoteError};
use crate::netref::NetRef;
use crate::{Args, Error, ErrorKind, Result, Value};

/// How deep values (lists in lists, error causes) may nest in one frame.
pub const MAX_DEPTH: u32 = 128;

/// Most items reserved ahead of decoding them. A declared count is checked
/// against the bytes left, but an item may decode to many times its encoded
/// size (and lists nest), so vectors grow with the items that actually
/// decode rather than with the count.
const PREALLOC: usize = 1024;

/// Bytes of the length prefix in front of every frame.
pub(crate) const HEADER_LEN: usize = 4;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Turns references into wire ids and back; implemented by a connection.
pub(crate) trait RefCodec {
    /// The wire form of `netref` for this connection, counting a send when
    /// the object is ours.
    fn export(&self, netref: &NetRef) -> Result<WireRef>;
    /// The reference a wire id names, counting a receipt when it is the peer's.
    fn import(&self, wire: WireRef) -> Result<NetRef>;
    /// Whether the peer reads dates (protocol 5); an older peer is sent
    /// their RFC 3339 text.
    fn reads_dates(&self) -> bool {
        true
    }
}

/// Encode `message` into a complete frame (length prefix included).
///
/// Fails with [`ErrorKind::LimitExceeded`] when the payload would exceed
/// `max_payload`, and with the exporter's error when a reference cannot be
/// sent.
pub(crate) fn encode(message: &Message, refs: &dyn RefCodec, max_payload: usize) -> Result<Bytes> {
    encode_into(&mut BytesMut::with_capacity(64), message, refs, max_payload)
}

/// [`encode`] into `buf` (which must be empty), whose memory the frame
/// then shares: a buffer kept by the caller takes its memory back for the
/// next frame once this one is dropped (`BytesMut::reserve`).
pub(crate) fn encode_into(
    buf: &mut BytesMut,
    message: &Message,
    refs: &dyn RefCodec,
    max_payload: usize,
) -> Result<Bytes> {
    encode_in(buf, message, refs, max_payload, None)?;
    Ok(buf.split().freeze())
}

/// Bytes values at least this large are written from their own memory by
/// [`encode_spliced_into`].
pub(crate) const SPLICE_FROM: usize = 16 * 1024;

/// A frame to write: whole, or in parts, in order, when bytes values were
/// left in their own memory.
pub(crate) enum Frame {
    /// One buffer, length prefix included.
    Whole(Bytes),
    /// The encoded bytes around each large bytes value, and the values.
    Parts(Vec<Bytes>),
}

impl Frame {
    /// Its length on the wire.
    pub(crate) fn len(&self) -> usize {
        match self {
            Frame::Whole(frame) => frame.len(),
            Frame::Parts(parts) => parts_len(parts),
        }
    }
}

/// The length on the wire of a frame in `parts`.
pub(crate) fn parts_len(parts: &[Bytes]) -> usize {
    parts.iter().map(Bytes::len).sum()
}

/// [`encode_into`], leaving bytes values of [`SPLICE_FROM`] and more where
/// they are: the frame is then the encoded bytes around them and the
/// values themselves, written with no copy.
pub(crate) fn encode_spliced_into(
    buf: &mut BytesMut,
    message: &Message,
    refs: &dyn RefCodec,
    max_payload: usize,
) -> Result<Frame> {
    let splices = RefCell::new(Splices::default());
    encode_in(buf, message, refs, max_payload, Some(&splices))?;
    let encoded = buf.split().freeze();
    let splices = splices.into_inner();
    if splices.at.is_empty() {
        return Ok(Frame::Whole(encoded));
    }
    let mut parts = Vec::with_capacity(2 * splices.at.len() + 1);
    let mut from = 0;
    for (at, value) in splices.at {
        parts.push(encoded.slice(from..at));
        parts.push(value);
        from = at;
    }
    parts.push(encoded.slice(from..));
    Ok(Frame::Parts(parts))
}

/// Whether `message` is a reply holding a bytes value of [`SPLICE_FROM`]
/// or more, as its result or an item of it: worth
/// [`encode_spliced_into`]. Deeper values are not looked for.
pub(crate) fn worth_splicing(message: &Message) -> bool {
    let large = |v: &Value| matches!(v, Value::Bytes(b) if b.len() >= SPLICE_FROM);
    match message {
        Message::Reply {
            result: Ok(value), ..
        } => match value {
            Value::List(items) => items.iter().any(large),
            Value::Map(pairs) => pairs.iter().any(|(_, v)| large(v)),
            value => large(value),
        },
        _ => false,
    }
}

/// Large bytes values left out of the buffer while encoding.
#[derive(Default)]
struct Splices {
    /// The value being written, offered to the writer.
    offered: Option<Bytes>,
    /// Where each value left out belongs in the buffer, and the value.
    at: Vec<(usize, Bytes)>,
}

/// Encode `message` into `buf` with its length prefix, leaving out large
/// bytes values when given `splices`.
fn encode_in(
    buf: &mut BytesMut,
    message: &Message,
    refs: &dyn RefCodec,
    max_payload: usize,
    splices: Option<&RefCell<Splices>>,
) -> Result<()> {
    buf.clear();
    buf.put_u32(0);
    let out = Outgoing {
        message,
        refs,
        failure: RefCell::new(None),
        splices,
    };
    let writer = FrameWriter {
        buf: &mut *buf,
        splices,
    };
    let written = bincode::encode_into_writer(&out, writer, config());
    if let Some(err) = out.failure.into_inner() {
        return Err(err);
    }
    written.map_err(|e| raise::protocol(format!("cannot encode message: {e}")))?;
    let spliced = splices.map_or(0, |s| s.borrow().at.iter().map(|(_, v)| v.len()).sum());
    let payload = buf.len() - HEADER_LEN + spliced;
    if payload > max_payload {
        return Err(raise::limit(format!(
            "message of {payload} bytes exceeds the frame limit of {max_payload} bytes"
        )));
    }
    let len = u32::try_from(payload)
        .map_err(|_| raise::limit(format!("message of {payload} bytes is too large")))?;
    buf[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A decoded message, plus the first reference in it that could not be
/// resolved (the message is still complete; that value reads as `None`),
/// and what its values were counted at.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) message: Message,
    pub(crate) bad_ref: Option<Error>,
    /// Some of its values name answers of ours (`WireRef::Answer`): they
    /// stand in for the answers' outcomes until those are known.
    pub(crate) names_answers: bool,
    /// When [`exceeded`](DecodeBudget::exceeded), the message's values are
    /// incomplete (its header and ids are not) and it must fail.
    pub(crate) budget: DecodeBudget,
}

/// Decode one frame's payload (without the length prefix), with no bound
/// on what its values take (fuzzing, tests).
pub(crate) fn decode(payload: &[u8], refs: &dyn RefCodec) -> Result<Decoded> {
    decode_within(payload, refs, usize::MAX)
}

/// Decode one frame's payload (without the length prefix), building at
/// most `budget` bytes of values.
///
/// A malformed payload is a protocol error: the connection cannot trust
/// anything after it.
pub(crate) fn decode_within(payload: &[u8], refs: &dyn RefCodec, budget: usize) -> Result<Decoded> {
    decode_in(payload, None, refs, budget)
}

/// [`decode_within`] a received frame's payload, whose large bytes values
/// share its memory rather than being copied (see [`shares`]).
pub(crate) fn decode_shared(
    payload: &Bytes,
    refs: &dyn RefCodec,
    budget: usize,
) -> Result<Decoded> {
    decode_in(payload, Some(payload), refs, budget)
}

/// Bytes values shorter than this are copied out of the frame (so a
/// frame shorter than this shares nothing).
pub(crate) const SHARE_FROM: usize = 4096;

/// Whether a bytes value of `len` in a frame of `frame_len` shares the
/// frame's memory: when large, and at least a quarter of the frame, so
/// that a value kept holds at most four times its size.
fn shares(len: usize, frame_len: usize) -> bool {
    len >= SHARE_FROM && len.saturating_mul(4) >= frame_len
}

fn decode_in(
    payload: &[u8],
    frame: Option<&Bytes>,
    refs: &dyn RefCodec,
    budget: usize,
) -> Result<Decoded> {
    let mut cx = DecodeCx {
        refs,
        frame,
        bad_ref: None,
        budget: DecodeBudget::new(budget),
    };
    let (message, used): (Incoming, usize) =
        bincode::borrow_decode_from_slice_with_context(payload, config(), &mut cx)
            .map_err(|e| raise::protocol(format!("malformed message: {e}")))?;
    if used != payload.len() {
        return Err(raise::protocol(format!(
            "malformed message: {} trailing bytes",
            payload.len() - used
        )));
    }
    Ok(Decoded {
        message: message.0,
        bad_ref: cx.bad_ref,
        names_answers: false,
        budget: cx.budget,
    })
}

struct FrameWriter<'a> {
    buf: &'a mut BytesMut,
    splices: Option<&'a RefCell<Splices>>,
}

impl Writer for FrameWriter<'_> {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        if bytes.len() < SPLICE_FROM || !self.left_out(bytes) {
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }
}

impl FrameWriter<'_> {
    /// Leave `bytes` out of the buffer if they are the large bytes value
    /// offered to be written from its own memory.
    #[cold]
    #[inline(never)]
    fn left_out(&mut self, bytes: &[u8]) -> bool {
        let Some(splices) = self.splices else {
            return false;
        };
        let mut splices = splices.borrow_mut();
        match splices
            .offered
            .take()
            .filter(|v| v.as_ptr() == bytes.as_ptr() && v.len() == bytes.len())
        {
            Some(value) => {
                splices.at.push((self.buf.len(), value));
                true
            }
            None => false,
        }
    }
}

// Tags. Append only: they are the protocol.
const MSG_REQUEST: u8 = 0;
const MSG_REPLY_OK: u8 = 1;
const MSG_REPLY_ERR: u8 = 2;
const MSG_RELEASE: u8 = 3;
const MSG_CANCEL: u8 = 4;
const MSG_PING: u8 = 5;
const MSG_PONG: u8 = 6;
const MSG_CLOSE: u8 = 7;
const MSG_BATCH: u8 = 8;
const MSG_BATCH_REPLY: u8 = 9;
const MSG_PIPELINED: u8 = 10;
const MSG_FINISH: u8 = 11;

const SUBJECT_OBJECT: u8 = 0;
const SUBJECT_ANSWER: u8 = 1;

const OP_GETROOT: u8 = 0;
const OP_GETATTR: u8 = 1;
const OP_SETATTR: u8 = 2;
const OP_DELATTR: u8 = 3;
const OP_CALL: u8 = 4;
const OP_CALLMETHOD: u8 = 5;
const OP_DIR: u8 = 6;
const OP_REPR: u8 = 7;
const OP_STR: u8 = 8;
const OP_HASH: u8 = 9;
const OP_EQ: u8 = 10;
const OP_INSPECT: u8 = 11;
const OP_NEXT: u8 = 12;
const OP_CLOSE: u8 = 13;

const VAL_NONE: u8 = 0;
const VAL_FALSE: u8 = 1;
const VAL_TRUE: u8 = 2;
const VAL_INT: u8 = 3;
const VAL_FLOAT: u8 = 4;
const VAL_STR: u8 = 5;
const VAL_BYTES: u8 = 6;
const VAL_LIST: u8 = 7;
const VAL_MAP: u8 = 8;
const VAL_YOURS: u8 = 9;
const VAL_MINE: u8 = 10;
const VAL_ANSWER: u8 = 11;
/// Protocol 5: seconds since the Unix epoch, then nanoseconds.
const VAL_DATETIME: u8 = 12;

// ---------------------------------------------------------------- encoding

/// What follows a request's operation, last in its message: its nesting
/// depth, then its trace context (protocol 5). The depth is written only
/// when not 0 or when a trace context follows (which needs it in front to
/// be told apart), so a call made by no serving call and in no trace
/// (nearly all) is encoded as before depths and traces.
#[inline(always)]
fn trailer<E: Encoder>(
    e: &mut E,
    depth: u32,
    trace: Option<&TraceContext>,
) -> Result<(), EncodeError> {
    if depth == 0 && trace.is_none() {
        return Ok(());
    }
    written_trailer(e, depth, trace)
}

/// [`trailer`] when there is one.
fn written_trailer<E: Encoder>(
    e: &mut E,
    depth: u32,
    trace: Option<&TraceContext>,
) -> Result<(), EncodeError> {
    depth.encode(e)?;
    if let Some(trace) = trace {
        e.writer().write(&trace.trace_id)?;
        e.writer().write(&trace.span_id)?;
        e.writer().write(&[trace.flags])?;
    }
    Ok(())
}

/// The depth and trace context [`trailer`] wrote: 0 and none when the
/// message ends before them. A trace context is 25 bytes, both ids not
/// all zeros; anything else is malformed.
#[inline(always)]
fn decode_trailer<'de, D: BorrowDecoder<'de>>(
    d: &mut D,
) -> Result<(u32, Option<Box<TraceContext>>), DecodeError> {
    if d.reader().peek_read(1).is_none() {
        return Ok((0, None));
    }
    decode_written_trailer(d)
}

/// [`decode_trailer`] when the message goes on after the operation.
fn decode_written_trailer<'de, D: BorrowDecoder<'de>>(
    d: &mut D,
) -> Result<(u32, Option<Box<TraceContext>>), DecodeError> {
    let depth = u32::decode(d)?;
    if d.reader().peek_read(1).is_none() {
        return Ok((depth, None));
    }
    let Some(bytes) = d.reader().peek_read(TraceContext::WIRE_LEN) else {
        return Err(DecodeError::OtherString(format!(
            "a truncated trace context (shorter than its {} bytes)",
            TraceContext::WIRE_LEN
        )));
    };
    let mut trace = TraceContext {
        trace_id: [0; 16],
        span_id: [0; 8],
        flags: bytes[24],
    };
    trace.trace_id.copy_from_slice(&bytes[..16]);
    trace.span_id.copy_from_slice(&bytes[16..24]);
    d.reader().consume(TraceContext::WIRE_LEN);
    if !trace.is_valid() {
        return Err(DecodeError::OtherString(
            "an invalid trace context (a trace or span id of all zeros)".into(),
        ));
    }
    Ok((depth, Some(Box::new(trace))))
}

struct Outgoing<'a> {
    message: &'a Message,
    refs: &'a dyn RefCodec,
    /// An export failure, kept with its kind (bincode errors are strings).
    failure: RefCell<Option<Error>>,
    /// Where large bytes values are offered to the writer to leave out.
    splices: Option<&'a RefCell<Splices>>,
}

impl Encode for Outgoing<'_> {
    fn encode<E: Encoder>(&self, e: &mut E) -> Result<(), EncodeError> {
        match self.message {
            Message::Request {
                seq,
                target,
                timeout_ms,
                depth,
                trace,
                op,
            } => {
                MSG_REQUEST.encode(e)?;
                seq.encode(e)?;
                target.encode(e)?;
                timeout_ms.encode(e)?;
                self.op(e, op)?;
                trailer(e, *depth, trace.as_deref())
            }
            Message::Reply { seq, result } => match result {
                Ok(value) => {
                    MSG_REPLY_OK.encode(e)?;
                    seq.encode(e)?;
                    self.value(e, value)
                }
                Err(err) => {
                    MSG_REPLY_ERR.encode(e)?;
                    seq.encode(e)?;
                    remote_error(e, err, 0)
                }
            },
            Message::Release(pairs) => {
                MSG_RELEASE.encode(e)?;
                (pairs.len() as u64).encode(e)?;
                for (id, count) in pairs {
                    id.encode(e)?;
                    count.encode(e)?;
                }
                Ok(())
            }
            Message::Cancel(seq) => {
                MSG_CANCEL.encode(e)?;
                seq.encode(e)
            }
            Message::Ping(n) => {
                MSG_PING.encode(e)?;
                n.encode(e)
            }
            Message::Pong(n) => {
                MSG_PONG.encode(e)?;
                n.encode(e)
            }
            Message::Close(reason) => {
                MSG_CLOSE.encode(e)?;
                text(e, reason)
            }
            Message::Batch {
                seq,
                timeout_ms,
                depth,
                trace,
                calls,
            } => {
                MSG_BATCH.encode(e)?;
                seq.encode(e)?;
                timeout_ms.encode(e)?;
                (calls.len() as u64).encode(e)?;
                for (target, op) in calls {
                    target.encode(e)?;
                    self.op(e, op)?;
                }
                trailer(e, *depth, trace.as_deref())
            }
            Message::BatchReply { seq, results } => {
                MSG_BATCH_REPLY.encode(e)?;
                seq.encode(e)?;
                (results.len() as u64).encode(e)?;
                for result in results {
                    self.result(e, result)?;
                }
                Ok(())
            }
            Message::Pipelined {
                seq,
                subject,
                timeout_ms,
                depth,
                trace,
                op,
            } => {
                MSG_PIPELINED.encode(e)?;
                seq.encode(e)?;
                let (tag, id) = match subject {
                    Subject::Object(id) => (SUBJECT_OBJECT, id),
                    Subject::Answer(id) => (SUBJECT_ANSWER, id),
                };
                tag.encode(e)?;
                id.encode(e)?;
                timeout_ms.encode(e)?;
                self.op(e, op)?;
                trailer(e, *depth, trace.as_deref())
            }
            Message::Finish(answers) => {
                MSG_FINISH.encode(e)?;
                (answers.len() as u64).encode(e)?;
                for id in answers {
                    id.encode(e)?;
                }
                Ok(())
            }
        }
    }
}

impl Outgoing<'_> {
    fn op<E: Encoder>(&self, e: &mut E, op: &Op) -> Result<(), EncodeError> {
        match op {
            Op::GetRoot => OP_GETROOT.encode(e),
            Op::GetAttr(name) => {
                OP_GETATTR.encode(e)?;
                text(e, name)
            }
            Op::SetAttr(name, value) => {
                OP_SETATTR.encode(e)?;
                text(e, name)?;
                self.value(e, value)
            }
            Op::DelAttr(name) => {
                OP_DELATTR.encode(e)?;
                text(e, name)
            }
            Op::Call(args) => {
                OP_CALL.encode(e)?;
                self.args(e, args)
            }
            Op::CallMethod(name, args) => {
                OP_CALLMETHOD.encode(e)?;
                text(e, name)?;
                self.args(e, args)
            }
            Op::Dir => OP_DIR.encode(e),
            Op::Repr => OP_REPR.encode(e),
            Op::Str => OP_STR.encode(e),
            Op::Hash => OP_HASH.encode(e),
            Op::Eq(other) => {
                OP_EQ.encode(e)?;
                self.value(e, other)
            }
            Op::Inspect => OP_INSPECT.encode(e),
            Op::Next(max) => {
                OP_NEXT.encode(e)?;
                max.encode(e)
            }
            Op::Close => OP_CLOSE.encode(e),
        }
    }

    /// One outcome in a batch reply: 0 and a value, or 1 and an error.
    fn result<E: Encoder>(
        &self,
        e: &mut E,
        result: &Result<Value, RemoteError>,
    ) -> Result<(), EncodeError> {
        match result {
            Ok(value) => {
                0u8.encode(e)?;
                self.value(e, value)
            }
            Err(err) => {
                1u8.encode(e)?;
                remote_error(e, err, 0)
            }
        }
    }

    fn args<E: Encoder>(&self, e: &mut E, args: &Args) -> Result<(), EncodeError> {
        (args.positional.len() as u64).encode(e)?;
        for v in &args.positional {
            self.value(e, v)?;
        }
        (args.named.len() as u64).encode(e)?;
        for (name, v) in &args.named {
            text(e, name)?;
            self.value(e, v)?;
        }
        Ok(())
    }

    fn value<E: Encoder>(&self, e: &mut E, value: &Value) -> Result<(), EncodeError> {
        self.value_at(e, value, 0)
    }

    fn value_at<E: Encoder>(
        &self,
        e: &mut E,
        value: &Value,
        depth: u32,
    ) -> Result<(), EncodeError> {
        if depth > MAX_DEPTH {
            return Err(self.fail(raise::limit(format!(
                "value nests deeper than {MAX_DEPTH} levels"
            ))));
        }
        match value {
            Value::None => VAL_NONE.encode(e),
            Value::Bool(false) => VAL_FALSE.encode(e),
            Value::Bool(true) => VAL_TRUE.encode(e),
            Value::Int(n) => {
                VAL_INT.encode(e)?;
                n.encode(e)
            }
            Value::Float(x) => {
                VAL_FLOAT.encode(e)?;
                x.encode(e)
            }
            Value::Str(s) => {
                VAL_STR.encode(e)?;
                text(e, s)
            }
            Value::Bytes(b) => {
                VAL_BYTES.encode(e)?;
                (b.len() as u64).encode(e)?;
                if let Some(splices) = self.splices.filter(|_| b.len() >= SPLICE_FROM) {
                    splices.borrow_mut().offered = Some(b.clone());
                }
                e.writer().write(b)
            }
            Value::DateTime(t) if self.refs.reads_dates() => {
                VAL_DATETIME.encode(e)?;
                t.unix_seconds().encode(e)?;
                t.subsec_nanos().encode(e)
            }
            Value::DateTime(t) => {
                VAL_STR.encode(e)?;
                text(e, &t.to_rfc3339())
            }
            Value::List(items) => {
                VAL_LIST.encode(e)?;
                (items.len() as u64).encode(e)?;
                for item in items {
                    self.value_at(e, item, depth + 1)?;
                }
                Ok(())
            }
            Value::Map(pairs) => {
                VAL_MAP.encode(e)?;
                (pairs.len() as u64).encode(e)?;
                for (k, v) in pairs {
                    self.value_at(e, k, depth + 1)?;
                    self.value_at(e, v, depth + 1)?;
                }
                Ok(())
            }
            Value::Ref(r) => match self.refs.export(r) {
                Ok(WireRef::Yours(id)) => {
                    VAL_YOURS.encode(e)?;
                    id.encode(e)
                }
                Ok(WireRef::Mine(id)) => {
                    VAL_MINE.encode(e)?;
                    id.encode(e)
                }
                Ok(WireRef::Answer(id)) => {
                    VAL_ANSWER.encode(e)?;
                    id.encode(e)
                }
                Err(err) => Err(self.fail(err)),
            },
        }
    }

    fn fail(&self, err: Error) -> EncodeError {
        let text = err.to_string();
        self.failure.borrow_mut().get_or_insert(err);
        EncodeError::OtherString(text)
    }
}

fn text<E: Encoder>(e: &mut E, s: &str) -> Result<(), EncodeError> {
    (s.len() as u64).encode(e)?;
    e.writer().write(s.as_bytes())
}

fn remote_error<E: Encoder>(e: &mut E, err: &RemoteError, depth: u32) -> Result<(), EncodeError> {
    err.kind.to_wire().encode(e)?;
    text(e, &err.type_name)?;
    text(e, &err.message)?;
    (err.trace.len() as u64).encode(e)?;
    for line in &err.trace {
        text(e, line)?;
    }
    match &err.cause {
        // Causes beyond the depth limit are cut rather than failing the reply.
        Some(cause) if depth < MAX_DEPTH => {
            1u8.encode(e)?;
            remote_error(e, cause, depth + 1)
        }
        _ => 0u8.encode(e),
    }
}

// ---------------------------------------------------------------- decoding

pub(crate) struct DecodeCx<'r> {
    refs: &'r dyn RefCodec,
    /// The frame being decoded, when its large bytes values may share it.
    frame: Option<&'r Bytes>,
    bad_ref: Option<Error>,
    budget: DecodeBudget,
}

/// Count a value with `extra` bytes of text or bytes; false once the
/// budget is spent, when the caller builds nothing more.
fn charge<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(d: &mut D, extra: usize) -> bool {
    d.context().budget.charge_value(extra)
}

/// Whether the budget is spent.
fn spent<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(d: &mut D) -> bool {
    d.context().budget.exceeded()
}

/// Past the budget, pass over as many of the next `n` values as are plain
/// scalars (no lists, maps or references: nothing to count) lying whole in
/// the next few KiB of the frame, at a few nanoseconds each rather than a
/// full decode; returns how many. 0 when the next value needs decoding.
fn skip_scalars<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(d: &mut D, n: usize) -> usize {
    let Some(len) = [4096, 256, 16]
        .into_iter()
        .find(|&len| d.reader().peek_read(len).is_some())
    else {
        return 0;
    };
    let chunk = d.reader().peek_read(len).unwrap_or_default();
    let (mut at, mut items) = (0, 0);
    while items < n {
        let Some(len) = scalar_len(&chunk[at..]) else {
            break;
        };
        at += len;
        items += 1;
    }
    d.reader().consume(at);
    items
}

/// The encoded length of the scalar value at the start of `bytes`, if it
/// is one and lies whole in `bytes`.
fn scalar_len(bytes: &[u8]) -> Option<usize> {
    let varint = |b: &[u8]| -> Option<(u64, usize)> {
        Some(match *b.first()? {
            n @ 0..=250 => (n as u64, 1),
            251 => (u16::from_le_bytes(b.get(1..3)?.try_into().ok()?) as u64, 3),
            252 => (u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as u64, 5),
            253 => (u64::from_le_bytes(b.get(1..9)?.try_into().ok()?), 9),
            _ => return None,
        })
    };
    let len = match *bytes.first()? {
        VAL_NONE | VAL_FALSE | VAL_TRUE => 1,
        VAL_INT => 1 + varint(&bytes[1..])?.1,
        VAL_FLOAT => 9,
        VAL_STR | VAL_BYTES => {
            let (n, size) = varint(&bytes[1..])?;
            1 + size + usize::try_from(n).ok()?
        }
        _ => return None,
    };
    (len <= bytes.len()).then_some(len)
}

/// Decode `n` values, passing each that is kept to `keep`; past the budget
/// plain scalars are passed over quickly and nothing is kept.
fn values<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(
    d: &mut D,
    n: usize,
    depth: u32,
    mut keep: impl FnMut(Value),
) -> Result<(), DecodeError> {
    let mut left = n;
    while left > 0 {
        if spent(d) {
            let skipped = skip_scalars(d, left);
            left -= skipped;
            if skipped > 0 {
                continue;
            }
        }
        let item = value(d, depth)?;
        if !spent(d) {
            keep(item);
        }
        left -= 1;
    }
    Ok(())
}

struct Incoming(Message);

/// Shorthand for the decoders these functions accept.
trait Dec<'de, 'x, 'r: 'x>: BorrowDecoder<'de, Context = &'x mut DecodeCx<'r>> {}
impl<'de, 'x, 'r: 'x, D: BorrowDecoder<'de, Context = &'x mut DecodeCx<'r>>> Dec<'de, 'x, 'r>
    for D
{
}

impl<'de, 'x, 'r: 'x> BorrowDecode<'de, &'x mut DecodeCx<'r>> for Incoming {
    fn borrow_decode<D: BorrowDecoder<'de, Context = &'x mut DecodeCx<'r>>>(
        d: &mut D,
    ) -> Result<Self, DecodeError> {
        let message = match u8::decode(d)? {
            MSG_REQUEST => {
                let seq = u64::decode(d)?;
                let target = u64::decode(d)?;
                let timeout_ms = u64::decode(d)?;
                let op = op(d)?;
                let (depth, trace) = decode_trailer(d)?;
                Message::Request {
                    seq,
                    target,
                    timeout_ms,
                    depth,
                    trace,
                    op,
                }
            }
            MSG_REPLY_OK => {
                let seq = u64::decode(d)?;
                Message::Reply {
                    seq,
                    result: Ok(value(d, 0)?),
                }
            }
            MSG_REPLY_ERR => {
                let seq = u64::decode(d)?;
                Message::Reply {
                    seq,
                    result: Err(decode_remote_error(d, 0)?),
                }
            }
            MSG_RELEASE => {
                let n = len(d, 2)?;
                let mut pairs = Vec::with_capacity(n.min(PREALLOC));
                for _ in 0..n {
                    pairs.push((u64::decode(d)?, u64::decode(d)?));
                }
                Message::Release(pairs)
            }
            MSG_CANCEL => Message::Cancel(u64::decode(d)?),
            MSG_PING => Message::Ping(u64::decode(d)?),
            MSG_PONG => Message::Pong(u64::decode(d)?),
            MSG_CLOSE => Message::Close(string(d)?),
            MSG_BATCH => {
                let seq = u64::decode(d)?;
                let timeout_ms = u64::decode(d)?;
                let n = len(d, 2)?;
                let mut calls = Vec::with_capacity(n.min(PREALLOC));
                for _ in 0..n {
                    let target = u64::decode(d)?;
                    calls.push((target, op(d)?));
                }
                let (depth, trace) = decode_trailer(d)?;
                Message::Batch {
                    seq,
                    timeout_ms,
                    depth,
                    trace,
                    calls,
                }
            }
            MSG_BATCH_REPLY => {
                let seq = u64::decode(d)?;
                let n = len(d, 2)?;
                let mut results = Vec::with_capacity(n.min(PREALLOC));
                for _ in 0..n {
                    results.push(match u8::decode(d)? {
                        0 => Ok(value(d, 0)?),
                        1 => Err(decode_remote_error(d, 0)?),
                        other => {
                            return Err(DecodeError::OtherString(format!(
                                "bad outcome flag {other}"
                            )))
                        }
                    });
                }
                Message::BatchReply { seq, results }
            }
            MSG_PIPELINED => {
                let seq = u64::decode(d)?;
                let subject = match u8::decode(d)? {
                    SUBJECT_OBJECT => Subject::Object(u64::decode(d)?),
                    SUBJECT_ANSWER => Subject::Answer(u64::decode(d)?),
                    other => {
                        return Err(DecodeError::OtherString(format!(
                            "bad pipelined subject {other}"
                        )))
                    }
                };
                let timeout_ms = u64::decode(d)?;
                let op = op(d)?;
                let (depth, trace) = decode_trailer(d)?;
                Message::Pipelined {
                    seq,
                    subject,
                    timeout_ms,
                    depth,
                    trace,
                    op,
                }
            }
            MSG_FINISH => {
                let n = len(d, 1)?;
                let mut answers = Vec::with_capacity(n.min(PREALLOC));
                for _ in 0..n {
                    answers.push(u64::decode(d)?);
                }
                Message::Finish(answers)
            }
            tag => {
                return Err(DecodeError::OtherString(format!(
                    "unknown message tag {tag}"
                )))
            }
        };
        Ok(Incoming(message))
    }
}

/// A declared count of items, each at least `min_item_bytes` long: refused
/// when the rest of the frame could not hold that many.
fn len<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(
    d: &mut D,
    min_item_bytes: usize,
) -> Result<usize, DecodeError> {
    let n = u64::decode(d)?;
    let n =
        usize::try_from(n).map_err(|_| DecodeError::OtherString(format!("count {n} too large")))?;
    let needed = n.saturating_mul(min_item_bytes);
    if needed > 0 && d.reader().peek_read(needed).is_none() {
        return Err(DecodeError::OtherString(format!(
            "declared {n} items but the frame is shorter"
        )));
    }
    Ok(n)
}

fn borrowed_bytes<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(
    d: &mut D,
) -> Result<&'de [u8], DecodeError> {
    let n = u64::decode(d)?;
    let n = usize::try_from(n)
        .map_err(|_| DecodeError::OtherString(format!("length {n} too large")))?;
    d.borrow_reader().take_bytes(n)
}

/// Text, copied out of the frame while the budget lasts (empty after).
fn string<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(d: &mut D) -> Result<String, DecodeError> {
    let bytes = borrowed_bytes(d)?;
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DecodeError::OtherString(format!("invalid UTF-8 in text: {e}")))?;
    Ok(if charge(d, text.len()) {
        text.to_string()
    } else {
        String::new()
    })
}

fn op<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(d: &mut D) -> Result<Op, DecodeError> {
    Ok(match u8::decode(d)? {
        OP_GETROOT => Op::GetRoot,
        OP_GETATTR => Op::GetAttr(string(d)?),
        OP_SETATTR => {
            let name = string(d)?;
            Op::SetAttr(name, value(d, 0)?)
        }
        OP_DELATTR => Op::DelAttr(string(d)?),
        OP_CALL => Op::Call(args(d)?),
        OP_CALLMETHOD => {
            let name = string(d)?;
            Op::CallMethod(name, args(d)?)
        }
        OP_DIR => Op::Dir,
        OP_REPR => Op::Repr,
        OP_STR => Op::Str,
        OP_HASH => Op::Hash,
        OP_EQ => Op::Eq(value(d, 0)?),
        OP_INSPECT => Op::Inspect,
        OP_NEXT => Op::Next(u32::decode(d)?),
        OP_CLOSE => Op::Close,
        tag => {
            return Err(DecodeError::OtherString(format!(
                "unknown operation tag {tag}"
            )))
        }
    })
}

fn args<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(d: &mut D) -> Result<Args, DecodeError> {
    let n = len(d, 1)?;
    let mut positional = Vec::with_capacity(n.min(PREALLOC));
    values(d, n, 0, |item| positional.push(item))?;
    let n = len(d, 2)?;
    let mut named = Vec::with_capacity(n.min(PREALLOC));
    for _ in 0..n {
        let name = string(d)?;
        let item = value(d, 0)?;
        if !spent(d) {
            named.push((name, item));
        }
    }
    Ok(Args { positional, named })
}

fn value<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(
    d: &mut D,
    depth: u32,
) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::OtherString(format!(
            "value nests deeper than {MAX_DEPTH} levels"
        )));
    }
    // Past the budget every value still parses (and every reference is
    // still counted) but reads as `None`, and lists stop growing.
    Ok(match u8::decode(d)? {
        VAL_NONE => {
            charge(d, 0);
            Value::None
        }
        tag @ (VAL_FALSE | VAL_TRUE) => {
            if charge(d, 0) {
                Value::Bool(tag == VAL_TRUE)
            } else {
                Value::None
            }
        }
        VAL_INT => {
            let n = i64::decode(d)?;
            if charge(d, 0) {
                Value::Int(n)
            } else {
                Value::None
            }
        }
        VAL_FLOAT => {
            let x = f64::decode(d)?;
            if charge(d, 0) {
                Value::Float(x)
            } else {
                Value::None
            }
        }
        VAL_STR => {
            // `string` counted it, text and all.
            let text = string(d)?;
            if spent(d) {
                Value::None
            } else {
                Value::Str(text)
            }
        }
        VAL_BYTES => {
            let bytes = borrowed_bytes(d)?;
            if charge(d, bytes.len()) {
                Value::Bytes(match d.context().frame {
                    Some(frame) if shares(bytes.len(), frame.len()) => frame.slice_ref(bytes),
                    _ => Bytes::copy_from_slice(bytes),
                })
            } else {
                Value::None
            }
        }
        VAL_DATETIME => {
            let seconds = i64::decode(d)?;
            let nanos = u32::decode(d)?;
            let t = crate::DateTime::from_unix(seconds, nanos)
                .map_err(|e| DecodeError::OtherString(format!("invalid date: {}", e.message())))?;
            if charge(d, 0) {
                Value::DateTime(t)
            } else {
                Value::None
            }
        }
        VAL_LIST => {
            let n = len(d, 1)?;
            let building = charge(d, 0);
            let mut items = Vec::with_capacity(if building { n.min(PREALLOC) } else { 0 });
            values(d, n, depth + 1, |item| items.push(item))?;
            if spent(d) {
                Value::None
            } else {
                Value::List(items)
            }
        }
        VAL_MAP => {
            let n = len(d, 2)?;
            let building = charge(d, 0);
            let mut pairs = Vec::with_capacity(if building { n.min(PREALLOC) } else { 0 });
            for _ in 0..n {
                let k = value(d, depth + 1)?;
                let v = value(d, depth + 1)?;
                if !spent(d) {
                    pairs.push((k, v));
                }
            }
            if spent(d) {
                Value::None
            } else {
                Value::Map(pairs)
            }
        }
        tag @ (VAL_YOURS | VAL_MINE | VAL_ANSWER) => {
            let id = u64::decode(d)?;
            let wire = match tag {
                VAL_YOURS => WireRef::Yours(id),
                VAL_MINE => WireRef::Mine(id),
                _ => WireRef::Answer(id),
            };
            let cx = d.context();
            match cx.refs.import(wire) {
                // Counted even past the budget (the caller drops it then,
                // which releases it).
                Ok(netref) => {
                    charge(d, 0);
                    Value::Ref(netref)
                }
                Err(err) => {
                    // Keep decoding so every "mine" id in the frame is still
                    // counted (and later released); the caller fails the
                    // message with this error.
                    cx.bad_ref.get_or_insert(err);
                    Value::None
                }
            }
        }
        tag => return Err(DecodeError::OtherString(format!("unknown value tag {tag}"))),
    })
}

fn decode_remote_error<'de, 'x, 'r: 'x, D: Dec<'de, 'x, 'r>>(
    d: &mut D,
    depth: u32,
) -> Result<RemoteError, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::OtherString(format!(
            "error causes nest deeper than {MAX_DEPTH} levels"
        )));
    }
    let kind = ErrorKind::from_wire(u8::decode(d)?);
    let type_name = string(d)?;
    let message = string(d)?;
    let n = len(d, 1)?;
    let mut trace = Vec::with_capacity(n.min(PREALLOC));
    for _ in 0..n {
        trace.push(string(d)?);
    }
    let cause = match u8::decode(d)? {
        0 => None,
        1 => Some(Box::new(decode_remote_error(d, depth + 1)?)),
        other => return Err(DecodeError::OtherString(format!("bad cause flag {other}"))),
    };
    Ok(RemoteError {
        kind,
        type_name,
        message,
        trace,
        cause,
    })
}

/// A [`RefCodec`] with no objects: every reference is refused. For decoding
/// frames outside a connection (fuzzing, tests).
pub(crate) struct NoRefs;

impl RefCodec for NoRefs {
    fn export(&self, _: &NetRef) -> Result<WireRef> {
        Err(raise::protocol("references cannot be sent here"))
    }
    fn import(&self, wire: WireRef) -> Result<NetRef> {
        let (WireRef::Yours(id) | WireRef::Mine(id) | WireRef::Answer(id)) = wire;
        Err(raise::unknown_object(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_budget_every_shape_is_parsed_to_the_end() {
        let scalars = vec![
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(125),
            Value::Int(126),
            Value::Int(40_000),
            Value::Int(-70_000),
            Value::Int(i64::from(u32::MAX) + 7),
            Value::Int(i64::MIN),
            Value::Float(1.5),
            Value::Str(String::new()),
            Value::Str("x".repeat(300)),
            Value::Bytes(vec![7; 5_000].into()),
            Value::DateTime(crate::DateTime::from_unix(-62_135_596_800, 999_999_999).unwrap()),
        ];
        let mut mixed = Vec::new();
        for round in 0..20 {
            mixed.extend(scalars.iter().cloned());
            mixed.push(Value::List(scalars.clone()));
            mixed.push(Value::Map(vec![(Value::Int(round), Value::List(vec![]))]));
        }
        let message = Message::Request {
            seq: 9,
            target: 3,
            timeout_ms: 1000,
            depth: 0,
            trace: None,
            op: Op::CallMethod(
                "echo".into(),
                Args {
                    positional: vec![Value::List(mixed.clone()), Value::from("after")],
                    named: vec![("k".into(), Value::List(mixed))],
                },
            ),
        };
        let frame = encode(&message, &NoRefs, usize::MAX).unwrap();
        let whole = decode(&frame[HEADER_LEN..], &NoRefs).unwrap();
        assert_eq!(format!("{:?}", whole.message), format!("{message:?}"));
        for budget in [0, 1, 100, 4096, 100_000, whole.budget.used() - 1] {
            let cut = decode_within(&frame[HEADER_LEN..], &NoRefs, budget).unwrap();
            assert!(cut.budget.exceeded(), "budget {budget}");
            assert!(cut.budget.used() <= budget);
            let Message::Request {
                seq: 9, target: 3, ..
            } = cut.message
            else {
                panic!("header lost at budget {budget}: {:?}", cut.message)
            };
        }
        let exact = decode_within(&frame[HEADER_LEN..], &NoRefs, whole.budget.used()).unwrap();
        assert!(!exact.budget.exceeded());
        assert_eq!(format!("{:?}", exact.message), format!("{message:?}"));
    }

    /// A peer of protocol 4, which has no dates.
    struct OldPeer;
    impl RefCodec for OldPeer {
        fn export(&self, netref: &NetRef) -> Result<WireRef> {
            NoRefs.export(netref)
        }
        fn import(&self, wire: WireRef) -> Result<NetRef> {
            NoRefs.import(wire)
        }
        fn reads_dates(&self) -> bool {
            false
        }
    }

    #[test]
    fn dates_travel_as_dates_and_as_text_to_a_peer_without_them() {
        let t = crate::DateTime::from_unix(1_796_397_158, 250_000_000).unwrap();
        let reply = |value| Message::Reply {
            seq: 1,
            result: Ok(value),
        };
        let sent = reply(Value::List(vec![Value::DateTime(t), Value::from(1)]));
        let frame = encode(&sent, &NoRefs, usize::MAX).unwrap();
        let got = decode(&frame[HEADER_LEN..], &NoRefs).unwrap().message;
        assert_eq!(format!("{got:?}"), format!("{sent:?}"));
        let frame = encode(&sent, &OldPeer, usize::MAX).unwrap();
        let got = decode(&frame[HEADER_LEN..], &NoRefs).unwrap().message;
        let text = reply(Value::List(vec![
            Value::from("2026-12-04T15:12:38.25Z"),
            Value::from(1),
        ]));
        assert_eq!(format!("{got:?}"), format!("{text:?}"));
    }

    #[test]
    fn a_date_out_of_range_is_a_protocol_error() {
        // A reply (tag 1, seq 1) holding tag 12 with a bad second or nanosecond.
        for (seconds, nanos) in [(i64::MAX, 0u32), (0, 1_000_000_000), (-62_135_596_801, 0)] {
            let mut payload = Vec::new();
            payload.extend(bincode::encode_to_vec(MSG_REPLY_OK, config()).unwrap());
            payload.extend(bincode::encode_to_vec(1u64, config()).unwrap());
            payload.extend(bincode::encode_to_vec(VAL_DATETIME, config()).unwrap());
            payload.extend(bincode::encode_to_vec(seconds, config()).unwrap());
            payload.extend(bincode::encode_to_vec(nanos, config()).unwrap());
            let err = decode(&payload, &NoRefs).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "{seconds} {nanos}: {err}");
            assert!(err.message().contains("invalid date"), "{err}");
        }
    }

    /// The bytes values of a reply to `value`, decoded from its frame as
    /// received, each with whether it lies in the frame's memory.
    fn bytes_received(value: Value) -> Vec<(usize, bool)> {
        let frame = encode(
            &Message::Reply {
                seq: 1,
                result: Ok(value),
            },
            &NoRefs,
            usize::MAX,
        )
        .unwrap()
        .slice(HEADER_LEN..);
        let Message::Reply {
            result: Ok(value), ..
        } = decode_shared(&frame, &NoRefs, usize::MAX).unwrap().message
        else {
            panic!("not a reply")
        };
        let inside = |b: &Bytes| {
            let range = frame.as_ptr_range();
            range.contains(&b.as_ptr()) && b.as_ptr_range().end <= range.end
        };
        match value {
            Value::Bytes(b) => vec![(b.len(), inside(&b))],
            Value::List(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Bytes(b) => (b.len(), inside(&b)),
                    other => panic!("not bytes: {other:?}"),
                })
                .collect(),
            other => panic!("not bytes: {other:?}"),
        }
    }

    #[test]
    fn large_bytes_share_the_received_frame_and_small_ones_are_copied() {
        let bytes = |n: usize| Value::Bytes(vec![7u8; n].into());
        assert_eq!(bytes_received(bytes(65_536)), [(65_536, true)]);
        assert_eq!(
            bytes_received(bytes(SHARE_FROM - 1)),
            [(SHARE_FROM - 1, false)]
        );
        // Three large values of a third each share; a value of less than
        // a quarter of its frame is copied, so that keeping it does not
        // keep more than four times its size.
        let thirds = Value::List(vec![bytes(16_384); 3]);
        assert_eq!(bytes_received(thirds), [(16_384, true); 3]);
        let small_part = Value::List(vec![bytes(8_192), bytes(65_536)]);
        assert_eq!(bytes_received(small_part), [(8_192, false), (65_536, true)]);
        // Decoded from a plain slice, everything is copied.
        let frame = encode(
            &Message::Reply {
                seq: 1,
                result: Ok(bytes(65_536)),
            },
            &NoRefs,
            usize::MAX,
        )
        .unwrap();
        let Message::Reply {
            result: Ok(Value::Bytes(b)),
            ..
        } = decode(&frame[HEADER_LEN..], &NoRefs).unwrap().message
        else {
            panic!("not bytes")
        };
        assert!(!frame.as_ptr_range().contains(&b.as_ptr()));
    }

    #[test]
    fn large_bytes_are_left_in_their_own_memory_and_the_parts_make_the_frame() {
        let big = Bytes::from(vec![9u8; SPLICE_FROM]);
        let message = Message::Reply {
            seq: 3,
            result: Ok(Value::List(vec![
                Value::Bytes(big.clone()),
                Value::from(1),
                Value::Bytes(Bytes::from(vec![1u8; SPLICE_FROM - 1])),
                Value::Bytes(big.clone()),
            ])),
        };
        let whole = encode(&message, &NoRefs, usize::MAX).unwrap();
        let Frame::Parts(parts) =
            encode_spliced_into(&mut BytesMut::new(), &message, &NoRefs, usize::MAX).unwrap()
        else {
            panic!("not in parts")
        };
        assert_eq!(parts.len(), 5, "around and between the two large values");
        assert_eq!(
            parts[1].as_ptr(),
            big.as_ptr(),
            "written from its own memory"
        );
        assert_eq!(parts[3].as_ptr(), big.as_ptr());
        assert_eq!(
            parts.concat(),
            whole.to_vec(),
            "the same frame, length included"
        );
        // The limit counts what is left out.
        let err = encode_spliced_into(&mut BytesMut::new(), &message, &NoRefs, whole.len() - 5)
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded);
        // Nothing large: one buffer.
        let small = Message::Reply {
            seq: 3,
            result: Ok(Value::Bytes(Bytes::from(vec![1u8; SPLICE_FROM - 1]))),
        };
        let Frame::Whole(frame) =
            encode_spliced_into(&mut BytesMut::new(), &small, &NoRefs, usize::MAX).unwrap()
        else {
            panic!("in parts")
        };
        assert_eq!(frame, encode(&small, &NoRefs, usize::MAX).unwrap());
    }

    fn round_trip(message: &Message) -> Message {
        let frame = encode(message, &NoRefs, usize::MAX).unwrap();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - HEADER_LEN);
        let decoded = decode(&frame[HEADER_LEN..], &NoRefs).unwrap();
        assert!(decoded.bad_ref.is_none());
        decoded.message
    }

    #[test]
    fn request_round_trips() {
        let op = Op::CallMethod(
            "add".into(),
            Args::new()
                .arg(1)
                .arg(Value::map([(
                    "k",
                    vec![Value::from(2.5), Value::Bytes(vec![0, 255].into())],
                )]))
                .named("scale", "x"),
        );
        let msg = Message::Request {
            seq: 7,
            target: u64::MAX,
            timeout_ms: 30_000,
            depth: 0,
            trace: None,
            op: op.clone(),
        };
        match round_trip(&msg) {
            Message::Request {
                seq: 7,
                target: u64::MAX,
                timeout_ms: 30_000,
                depth: 0,
                trace: None,
                op: got,
            } => assert_eq!(got, op),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_nested_requests_depth_round_trips() {
        let msg = Message::Request {
            seq: 1,
            target: 2,
            timeout_ms: 3,
            depth: 300,
            trace: None,
            op: Op::Dir,
        };
        match round_trip(&msg) {
            Message::Request {
                depth: 300,
                trace: None,
                op: Op::Dir,
                ..
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    const TRACE: TraceContext = TraceContext {
        trace_id: [0x4b; 16],
        span_id: [0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7, 0x01],
        flags: 1,
    };

    #[test]
    fn a_trace_context_round_trips_on_every_kind_of_request() {
        let op = Op::CallMethod("add".into(), Args::new().arg(1).arg(2));
        for depth in [0, 1, 300] {
            match round_trip(&Message::Request {
                seq: 1,
                target: 2,
                timeout_ms: 3,
                depth,
                trace: Some(Box::new(TRACE)),
                op: op.clone(),
            }) {
                Message::Request {
                    depth: got_depth,
                    trace: Some(got),
                    op: got_op,
                    ..
                } => assert_eq!((got_depth, *got, &got_op), (depth, TRACE, &op)),
                other => panic!("unexpected {other:?}"),
            }
            match round_trip(&Message::Batch {
                seq: 1,
                timeout_ms: 3,
                depth,
                trace: Some(Box::new(TRACE)),
                calls: vec![(2, op.clone()), (3, Op::Dir)],
            }) {
                Message::Batch {
                    depth: got_depth,
                    trace: Some(got),
                    calls,
                    ..
                } => {
                    assert_eq!((got_depth, *got, calls.len()), (depth, TRACE, 2));
                }
                other => panic!("unexpected {other:?}"),
            }
            match round_trip(&Message::Pipelined {
                seq: 1,
                subject: Subject::Answer(4),
                timeout_ms: 3,
                depth,
                trace: Some(Box::new(TRACE)),
                op: op.clone(),
            }) {
                Message::Pipelined {
                    depth: got_depth,
                    trace: Some(got),
                    op: got_op,
                    ..
                } => assert_eq!((got_depth, *got, &got_op), (depth, TRACE, &op)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn request_bytes(depth: u32, trace: Option<TraceContext>) -> Vec<u8> {
        let trace = trace.map(Box::new);
        let message = Message::Request {
            seq: 7,
            target: 1,
            timeout_ms: 30_000,
            depth,
            trace,
            op: Op::CallMethod("ping".into(), Args::new()),
        };
        encode(&message, &NoRefs, usize::MAX).unwrap()[HEADER_LEN..].to_vec()
    }

    #[test]
    fn no_trace_context_adds_nothing_to_the_wire() {
        // tag, seq, target, timeout (251 + u16), op: tag, name, 0 and 0 args
        let mut expected = vec![MSG_REQUEST, 7, 1, 251, 0x30, 0x75, OP_CALLMETHOD, 4];
        expected.extend_from_slice(b"ping");
        expected.extend_from_slice(&[0, 0]);
        assert_eq!(request_bytes(0, None), expected);
        // With one: the depth (here 0) and then its 25 bytes.
        let traced = request_bytes(0, Some(TRACE));
        assert_eq!(traced.len(), expected.len() + 1 + TraceContext::WIRE_LEN);
        assert_eq!(traced[expected.len()], 0);
        assert_eq!(&traced[expected.len() + 1..][..16], &TRACE.trace_id);
        assert_eq!(&traced[expected.len() + 17..][..8], &TRACE.span_id);
        assert_eq!(traced.last(), Some(&TRACE.flags));
    }

    #[test]
    fn a_truncated_or_invalid_trace_context_is_a_protocol_error() {
        let traced = request_bytes(2, Some(TRACE));
        let before = traced.len() - TraceContext::WIRE_LEN;
        for len in before + 1..traced.len() {
            let err = decode(&traced[..len], &NoRefs).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol);
            assert!(
                err.message().contains("truncated trace context"),
                "{len}: {err}"
            );
        }
        for zeroed in [before..before + 16, before + 16..before + 24] {
            let mut bad = traced.clone();
            bad[zeroed].fill(0);
            let err = decode(&bad, &NoRefs).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol);
            assert!(err.message().contains("invalid trace context"), "{err}");
        }
        let mut longer = traced.clone();
        longer.push(0);
        let err = decode(&longer, &NoRefs).unwrap_err();
        assert!(err.message().contains("trailing"), "{err}");
    }

    #[test]
    fn every_cut_of_a_traced_frame_decodes_or_fails_without_panicking() {
        let traced = request_bytes(300, Some(TRACE));
        let before = traced.len() - TraceContext::WIRE_LEN;
        for len in 0..=traced.len() {
            match decode(&traced[..len], &NoRefs) {
                Ok(decoded) => {
                    let Message::Request { trace, .. } = decoded.message else {
                        panic!("{len}: {:?}", decoded.message)
                    };
                    // Whole, or cut before the context (and the depth).
                    assert!(len <= before || len == traced.len(), "{len}");
                    assert_eq!(trace.is_some(), len == traced.len());
                }
                Err(err) => assert_eq!(err.kind(), ErrorKind::Protocol, "{len}: {err}"),
            }
        }
    }

    #[test]
    fn error_reply_keeps_the_cause_chain() {
        let inner = RemoteError {
            kind: ErrorKind::Application,
            type_name: "ValueError".into(),
            message: "bad line".into(),
            trace: vec!["in callback".into()],
            cause: None,
        };
        let outer = RemoteError {
            cause: Some(Box::new(inner.clone())),
            trace: vec!["in line_counter()".into()],
            ..inner.clone()
        };
        match round_trip(&Message::Reply {
            seq: 1,
            result: Err(outer.clone()),
        }) {
            Message::Reply { result: Err(e), .. } => assert_eq!(e, outer),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn pipelined_requests_and_finish_round_trip() {
        for (subject, depth) in [(Subject::Object(7), 0), (Subject::Answer(u64::MAX), 3)] {
            let op = Op::CallMethod("counter".into(), Args::new().arg(5));
            match round_trip(&Message::Pipelined {
                seq: 41,
                subject,
                timeout_ms: 250,
                depth,
                trace: None,
                op: op.clone(),
            }) {
                Message::Pipelined {
                    seq: 41,
                    subject: got_subject,
                    timeout_ms: 250,
                    depth: got_depth,
                    trace: None,
                    op: got_op,
                } => {
                    assert_eq!((got_subject, got_depth, got_op), (subject, depth, op));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        match round_trip(&Message::Finish(vec![1, 2, u64::MAX])) {
            Message::Finish(ids) => assert_eq!(ids, [1, 2, u64::MAX]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_bad_subject_or_a_finish_longer_than_its_frame_is_refused() {
        let mut bytes = encode(
            &Message::Pipelined {
                seq: 1,
                subject: Subject::Object(2),
                timeout_ms: 3,
                depth: 0,
                trace: None,
                op: Op::Dir,
            },
            &NoRefs,
            1 << 20,
        )
        .unwrap()[HEADER_LEN..]
            .to_vec();
        // tag, seq, then the subject's kind
        bytes[2] = 9;
        let Err(err) = decode(&bytes, &NoRefs) else {
            panic!("a bad subject was read")
        };
        assert!(err.message().contains("subject"), "{err}");
        // a count of a billion answers in a frame of a few bytes
        let mut finish = vec![MSG_FINISH, 252];
        finish.extend_from_slice(&1_000_000_000u32.to_le_bytes());
        let Err(err) = decode(&finish, &NoRefs) else {
            panic!("a short frame was read")
        };
        assert!(err.message().contains("shorter"), "{err}");
    }

    #[test]
    fn batch_and_batch_reply_round_trip() {
        let calls = vec![
            (3, Op::CallMethod("add".into(), Args::new().arg(1).arg(2))),
            (4, Op::GetAttr("x".into())),
        ];
        match round_trip(&Message::Batch {
            seq: 9,
            timeout_ms: 5,
            depth: 2,
            trace: None,
            calls: calls.clone(),
        }) {
            Message::Batch {
                seq: 9,
                timeout_ms: 5,
                depth: 2,
                trace: None,
                calls: got,
            } => assert_eq!(got, calls),
            other => panic!("unexpected {other:?}"),
        }
        let err = RemoteError {
            kind: ErrorKind::Application,
            type_name: "ValueError".into(),
            message: "no".into(),
            trace: vec![],
            cause: None,
        };
        let results = vec![Ok(Value::from(3)), Err(err)];
        match round_trip(&Message::BatchReply {
            seq: 9,
            results: results.clone(),
        }) {
            Message::BatchReply {
                seq: 9,
                results: got,
            } => assert_eq!(got, results),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn oversized_message_is_refused_before_sending() {
        let msg = Message::Close("x".repeat(100));
        let err = encode(&msg, &NoRefs, 50).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    }

    #[test]
    fn claimed_lengths_beyond_the_frame_are_refused() {
        // A Str value claiming u64::MAX bytes; a list claiming 2^40 items.
        for payload in [
            vec![
                MSG_REPLY_OK,
                1,
                VAL_STR,
                0xfd,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
            ],
            vec![MSG_REPLY_OK, 1, VAL_LIST, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0],
        ] {
            let err = decode(&payload, &NoRefs).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut payload = vec![MSG_REPLY_OK, 1];
        payload.extend(std::iter::repeat_n([VAL_LIST, 1], 100_000).flatten());
        payload.push(VAL_NONE);
        let err = decode(&payload, &NoRefs).unwrap_err();
        assert!(err.message().contains("nests deeper"), "{err}");
    }

    #[test]
    fn unknown_reference_is_reported_without_failing_the_frame() {
        let payload = [MSG_REPLY_OK, 1, VAL_YOURS, 5];
        let decoded = decode(&payload, &NoRefs).unwrap();
        assert_eq!(decoded.bad_ref.unwrap().kind(), ErrorKind::UnknownObject);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let err = decode(&[MSG_PING, 1, 0], &NoRefs).unwrap_err();
        assert!(err.message().contains("trailing"), "{err}");
    }
}
