//! RPyC 6.x messages: one type byte, then the brine of `(seq, args)`.
//!
//! A request's args are `(handler, boxed arguments)`, a reply's the boxed
//! result, an exception's the exception tuple (see `vinegar`). RPyC 5.x put
//! the type inside the brine tuple instead, so its payloads begin with the
//! 3-tuple tag `0x12`; the two do not interoperate and a 5.x peer is
//! refused with an error saying so.

use super::brine::{Brine, BrineError, Cursor};
use crate::protocol::budget::DecodeBudget;

const REQUEST: u8 = 1;
const REPLY: u8 = 2;
const EXCEPTION: u8 = 3;

/// The first byte of every RPyC 5.x payload (brine's 3-tuple tag).
const V5_TUPLE3: u8 = 0x12;

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// Run `handler` with the (boxed) `args`; answered by `seq`.
    Request { seq: i64, handler: i64, args: Brine },
    /// The (boxed) result of request `seq`.
    Reply { seq: i64, value: Brine },
    /// Request `seq` raised; `value` is the exception tuple (or 1 for
    /// `StopIteration`).
    Exception { seq: i64, value: Brine },
}

/// Why a payload is not a 6.x message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnvelopeError {
    #[error("the peer speaks RPyC 5.x (its messages begin with 0x12); this side speaks RPyC 6.x: upgrade the peer to rpyc 6")]
    Version5,
    #[error(
        "unknown RPyC message type {0} (a client with RPYC_BIND_THREADS=true is not supported)"
    )]
    UnknownType(u8),
    #[error("an empty RPyC message")]
    Empty,
    #[error("bad brine in an RPyC message: {0}")]
    Brine(#[from] BrineError),
    #[error("an RPyC message of the wrong shape: {0}")]
    Shape(&'static str),
}

impl Message {
    /// The payload of this message.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (kind, seq, args) = match self {
            Message::Request { seq, handler, args } => (
                REQUEST,
                *seq,
                Brine::Tuple(vec![Brine::Int(*handler as i128), args.clone()]),
            ),
            Message::Reply { seq, value } => (REPLY, *seq, value.clone()),
            Message::Exception { seq, value } => (EXCEPTION, *seq, value.clone()),
        };
        let mut out = vec![kind];
        Brine::Tuple(vec![Brine::Int(seq as i128), args]).encode_into(&mut out);
        out
    }

    /// Parse a payload.
    #[cfg(test)]
    pub(crate) fn decode(payload: &[u8]) -> Result<Message, EnvelopeError> {
        let (header, mut body) = Header::parse(payload)?;
        let value = body.value_within(header.body_depth(), &mut DecodeBudget::new(usize::MAX))?;
        body.finish()?;
        Ok(match header.kind {
            Kind::Request => Message::Request {
                seq: header.seq,
                handler: header.handler,
                args: value,
            },
            Kind::Reply => Message::Reply {
                seq: header.seq,
                value,
            },
            Kind::Exception => Message::Exception {
                seq: header.seq,
                value,
            },
        })
    }
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Reply,
    Exception,
}

/// A message's type, sequence number and (for a request) handler, read
/// before its body so that a body too large to build can still be
/// answered, or can fail the call it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) seq: i64,
    /// The handler of a request (0 otherwise).
    pub(crate) handler: i64,
}

/// What the small parts of the envelope (sequence number, handler) may
/// decode to: an integer takes a few dozen bytes.
const SMALL: usize = 1024;

impl Header {
    /// Read the header of `payload`; the cursor returned is at the body
    /// (a request's boxed arguments, a reply's boxed value, an
    /// exception's tuple), the last value of the payload.
    pub(crate) fn parse(payload: &[u8]) -> Result<(Header, Cursor<'_>), EnvelopeError> {
        let (&kind, body) = payload.split_first().ok_or(EnvelopeError::Empty)?;
        let kind = match kind {
            REQUEST => Kind::Request,
            REPLY => Kind::Reply,
            EXCEPTION => Kind::Exception,
            V5_TUPLE3 => return Err(EnvelopeError::Version5),
            other => return Err(EnvelopeError::UnknownType(other)),
        };
        let mut cursor = Cursor::new(body);
        if cursor.tuple_len()? != Some(2) {
            return Err(EnvelopeError::Shape("not a (seq, args) pair"));
        }
        let seq = small_int(&mut cursor, 1).ok_or(EnvelopeError::Shape(
            "a sequence number that is not an integer",
        ))??;
        let mut handler = 0;
        if kind == Kind::Request {
            if cursor.tuple_len()? != Some(2) {
                return Err(EnvelopeError::Shape(
                    "a request that is not (handler, args)",
                ));
            }
            handler = small_int(&mut cursor, 2)
                .ok_or(EnvelopeError::Shape("a handler that is not an integer"))??;
        }
        Ok((Header { kind, seq, handler }, cursor))
    }

    /// How deep the body is nested in the payload's brine.
    pub(crate) fn body_depth(&self) -> usize {
        match self.kind {
            Kind::Request => 2,
            _ => 1,
        }
    }
}

/// The next value, if it is an integer that fits an `i64` (`None` if it is
/// anything else); brine errors are errors.
fn small_int(cursor: &mut Cursor<'_>, depth: usize) -> Option<Result<i64, EnvelopeError>> {
    match cursor.value_within(depth, &mut DecodeBudget::new(SMALL)) {
        Ok(value) => value.as_i64().map(Ok),
        Err(BrineError::OverBudget) => None,
        Err(e) => Some(Err(e.into())),
    }
}

/// The payload an RPyC 5.x peer reads as an exception answering its
/// request `seq`: 5.x envelopes are the brine of `(type, seq, args)`.
pub(crate) fn version5_refusal(seq: &Brine, exception: Brine) -> Vec<u8> {
    Brine::Tuple(vec![Brine::Int(EXCEPTION as i128), seq.clone(), exception]).encode()
}

/// The sequence number of a 5.x payload, if it is one (read without
/// building the rest of the payload).
pub(crate) fn version5_seq(payload: &[u8]) -> Option<Brine> {
    let mut cursor = Cursor::new(payload);
    if cursor.tuple_len().ok()? != Some(3) {
        return None;
    }
    cursor.skip(1).ok()?;
    let seq = cursor.value_within(1, &mut DecodeBudget::new(SMALL)).ok()?;
    cursor.skip(1).ok()?;
    cursor.finish().ok()?;
    Some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_getroot_request_decodes() {
        let payload = [0x01, 0x11, 0x50, 0x11, 0x53, 0x11, 0x51, 0x02];
        let msg = Message::decode(&payload).unwrap();
        assert_eq!(
            msg,
            Message::Request {
                seq: 0,
                handler: 3,
                args: Brine::Tuple(vec![Brine::Int(1), Brine::Tuple(vec![])]),
            }
        );
        assert_eq!(msg.encode(), payload);
    }

    #[test]
    fn the_worked_stop_iteration_reply_encodes() {
        let msg = Message::Exception {
            seq: 5,
            value: Brine::Int(1),
        };
        assert_eq!(msg.encode(), [0x03, 0x11, 0x55, 0x51]);
    }

    #[test]
    fn a_5x_payload_is_recognised_and_refused() {
        let v5 = Brine::Tuple(vec![Brine::Int(1), Brine::Int(0), Brine::Tuple(vec![])]).encode();
        assert!(matches!(Message::decode(&v5), Err(EnvelopeError::Version5)));
        assert_eq!(version5_seq(&v5), Some(Brine::Int(0)));
    }

    #[test]
    fn the_header_is_read_before_the_body_is_built() {
        let mut payload = vec![1u8];
        // (seq 7, (handler 4, <a body>)), the pair and tuples in their
        // long forms, as another encoder might write them.
        payload.extend_from_slice(&[0x14, 2, 0x57, 0x15, 0, 0, 0, 2, 0x54]);
        let body = Brine::Tuple(vec![Brine::None; 100]).encode();
        payload.extend_from_slice(&body);
        let (header, mut cursor) = Header::parse(&payload).unwrap();
        assert_eq!(
            header,
            Header {
                kind: Kind::Request,
                seq: 7,
                handler: 4
            }
        );
        assert_eq!(header.body_depth(), 2);
        assert_eq!(cursor.remaining(), body.len());
        cursor.skip(2).unwrap();
        cursor.finish().unwrap();
        // A sequence number that is not a small integer is a shape error.
        let mut big_seq = vec![2u8, 0x11, 0x08, 0x0f];
        big_seq.extend_from_slice(&5000u32.to_be_bytes());
        big_seq.extend(std::iter::repeat_n(b'a', 5000));
        big_seq.push(0x00);
        assert!(matches!(
            Header::parse(&big_seq),
            Err(EnvelopeError::Shape(_))
        ));
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert!(matches!(Message::decode(&[]), Err(EnvelopeError::Empty)));
        assert!(matches!(
            Message::decode(&[9, 0]),
            Err(EnvelopeError::UnknownType(9))
        ));
        assert!(matches!(
            Message::decode(&[2, 0x50]),
            Err(EnvelopeError::Shape(_))
        ));
        assert!(matches!(
            Message::decode(&[1, 0x11, 0x50, 0x50]),
            Err(EnvelopeError::Shape(_))
        ));
        assert!(matches!(
            Message::decode(&[2, 0x11, 0x00, 0x50]),
            Err(EnvelopeError::Shape(_))
        ));
        assert!(matches!(
            Message::decode(&[2, 0x11]),
            Err(EnvelopeError::Brine(_))
        ));
    }
}
