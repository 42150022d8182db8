//! RPyC 6.x messages: one type byte, then the brine of `(seq, args)`.
//!
//! A request's args are `(handler, boxed arguments)`, a reply's the boxed
//! result, an exception's the exception tuple (see `vinegar`). RPyC 5.x put
//! the type inside the brine tuple instead, so its payloads begin with the
//! 3-tuple tag `0x12`; the two do not interoperate and a 5.x peer is
//! refused with an error saying so.

use super::brine::{Brine, BrineError};

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
    pub(crate) fn decode(payload: &[u8]) -> Result<Message, EnvelopeError> {
        let (&kind, body) = payload.split_first().ok_or(EnvelopeError::Empty)?;
        match kind {
            REQUEST | REPLY | EXCEPTION => {}
            V5_TUPLE3 => return Err(EnvelopeError::Version5),
            other => return Err(EnvelopeError::UnknownType(other)),
        }
        let Brine::Tuple(pair) = Brine::decode(body)? else {
            return Err(EnvelopeError::Shape("not a (seq, args) pair"));
        };
        let [seq, args]: [Brine; 2] = pair
            .try_into()
            .map_err(|_| EnvelopeError::Shape("not a (seq, args) pair"))?;
        let seq = seq.as_i64().ok_or(EnvelopeError::Shape(
            "a sequence number that is not an integer",
        ))?;
        Ok(match kind {
            REQUEST => {
                let Brine::Tuple(parts) = args else {
                    return Err(EnvelopeError::Shape(
                        "a request that is not (handler, args)",
                    ));
                };
                let [handler, args]: [Brine; 2] = parts
                    .try_into()
                    .map_err(|_| EnvelopeError::Shape("a request that is not (handler, args)"))?;
                let handler = handler
                    .as_i64()
                    .ok_or(EnvelopeError::Shape("a handler that is not an integer"))?;
                Message::Request { seq, handler, args }
            }
            REPLY => Message::Reply { seq, value: args },
            _ => Message::Exception { seq, value: args },
        })
    }
}

/// The payload an RPyC 5.x peer reads as an exception answering its
/// request `seq`: 5.x envelopes are the brine of `(type, seq, args)`.
pub(crate) fn version5_refusal(seq: &Brine, exception: Brine) -> Vec<u8> {
    Brine::Tuple(vec![Brine::Int(EXCEPTION as i128), seq.clone(), exception]).encode()
}

/// The sequence number of a 5.x payload, if it is one.
pub(crate) fn version5_seq(payload: &[u8]) -> Option<Brine> {
    match Brine::decode(payload).ok()? {
        Brine::Tuple(mut items) if items.len() == 3 => Some(items.swap_remove(1)),
        _ => None,
    }
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
