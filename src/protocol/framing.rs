//! Cutting the byte stream into frames: a 4-byte big-endian length, then
//! that many bytes.
//!
//! Like tokio-util's `LengthDelimitedCodec`, except that it never reserves
//! memory for a length the peer merely declared: the buffer grows with the
//! bytes that actually arrive, at most [`READ_AHEAD`] beyond them. A peer
//! that sends a header claiming 64 MiB and then nothing costs 64 KiB.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use super::codec::HEADER_LEN;

/// Most bytes reserved beyond what has arrived of a frame.
pub(crate) const READ_AHEAD: usize = 64 * 1024;

/// Frames of at most `max_len` payload bytes.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    max_len: usize,
}

impl FrameDecoder {
    pub(crate) fn new(max_len: usize) -> FrameDecoder {
        FrameDecoder { max_len }
    }
}

/// A frame over the limit; the connection cannot continue after it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for FrameDecoder {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        let total = HEADER_LEN + len;
        if src.len() < total {
            src.reserve((total - src.len()).min(READ_AHEAD));
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        Ok(Some(src.split_to(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_at_their_declared_length() {
        let mut d = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&[0, 0, 0, 2, b'h', b'i', 0, 0, 0, 1][..]);
        assert_eq!(&d.decode(&mut buf).unwrap().unwrap()[..], b"hi");
        assert!(d.decode(&mut buf).unwrap().is_none(), "incomplete");
        buf.extend_from_slice(b"!");
        assert_eq!(&d.decode(&mut buf).unwrap().unwrap()[..], b"!");
    }

    #[test]
    fn a_declared_length_reserves_only_the_read_ahead() {
        let mut d = FrameDecoder::new(64 << 20);
        let mut buf = BytesMut::from(&(60u32 << 20).to_be_bytes()[..]);
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() <= 2 * READ_AHEAD, "{}", buf.capacity());
    }

    #[test]
    fn a_length_over_the_limit_is_an_error() {
        let mut d = FrameDecoder::new(10);
        let mut buf = BytesMut::from(&[0, 0, 0, 11][..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        ));
    }
}
