//! RPyC's frames: `u32` big-endian payload length, a `u8` compressed flag,
//! the payload, then one extra byte (`\n`) that the length does not count.
//!
//! A compressed payload (flag 1) is a zlib stream; it is inflated here,
//! never beyond the frame limit, so a small "zip bomb" frame cannot make
//! this side allocate more than a frame it would accept uncompressed. Like
//! the native framing, the buffer grows with the bytes that arrive, not
//! with the length the peer declared.

use std::io::Read;

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// Length, then compressed flag.
pub(crate) const HEADER_LEN: usize = 5;

/// The byte after every payload (RPyC's "flusher").
const TRAILER: u8 = b'\n';

/// Most bytes reserved beyond what has arrived of a frame.
const READ_AHEAD: usize = 64 * 1024;

/// Why a frame could not be read; the connection cannot continue after it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("a frame has compressed flag {0} (RPyC sends 0 or 1)")]
    BadFlag(u8),
    #[error("a compressed frame is not a valid zlib stream: {0}")]
    Inflate(std::io::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Cuts the byte stream into (inflated) payloads of at most `max_len` bytes.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    max_len: usize,
}

impl FrameDecoder {
    pub(crate) fn new(max_len: usize) -> FrameDecoder {
        FrameDecoder { max_len }
    }
}

impl Decoder for FrameDecoder {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let flag = header[4];
        if flag > 1 {
            return Err(FrameError::BadFlag(flag));
        }
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        let total = HEADER_LEN + len + 1;
        if src.len() < total {
            src.reserve((total - src.len()).min(READ_AHEAD));
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(len).freeze();
        // The trailer is dropped whatever it is, as RPyC does.
        src.advance(1);
        if flag == 0 {
            return Ok(Some(payload));
        }
        inflate(&payload, self.max_len).map(Some)
    }
}

/// Inflate a zlib stream, refusing output beyond `max` bytes.
fn inflate(compressed: &[u8], max: usize) -> Result<Bytes, FrameError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(2).min(max));
    let mut reader = flate2::read::ZlibDecoder::new(compressed).take(max as u64 + 1);
    reader.read_to_end(&mut out).map_err(FrameError::Inflate)?;
    if out.len() > max {
        return Err(FrameError::TooLarge {
            len: out.len(),
            max,
        });
    }
    Ok(Bytes::from(out))
}

/// One uncompressed frame around `payload`.
pub(crate) fn encode(payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(HEADER_LEN + payload.len() + 1);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&[0]);
    frame.extend_from_slice(payload);
    frame.extend_from_slice(&[TRAILER]);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn decode_all(d: &mut FrameDecoder, bytes: &[u8]) -> Result<Vec<Bytes>, FrameError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(frame) = d.decode(&mut buf)? {
            out.push(frame);
        }
        Ok(out)
    }

    #[test]
    fn the_worked_getroot_frame_round_trips() {
        let frame = encode(&[0x01, 0x11, 0x50, 0x11, 0x53, 0x11, 0x51, 0x02]);
        assert_eq!(
            &frame[..],
            &[0, 0, 0, 8, 0, 0x01, 0x11, 0x50, 0x11, 0x53, 0x11, 0x51, 0x02, 0x0a]
        );
        let mut d = FrameDecoder::new(1024);
        let frames = decode_all(&mut d, &frame).unwrap();
        assert_eq!(
            frames,
            vec![Bytes::from_static(&[
                1, 0x11, 0x50, 0x11, 0x53, 0x11, 0x51, 2
            ])]
        );
    }

    #[test]
    fn frames_split_anywhere_arrive_whole() {
        let mut stream = encode(b"hello").to_vec();
        stream.extend_from_slice(&encode(b"world"));
        let mut d = FrameDecoder::new(1024);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in stream {
            buf.extend_from_slice(&[byte]);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        assert_eq!(
            out,
            vec![Bytes::from_static(b"hello"), Bytes::from_static(b"world")]
        );
    }

    #[test]
    fn compressed_payloads_are_inflated() {
        let payload = vec![7u8; 10_000];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&payload).unwrap();
        let compressed = z.finish().unwrap();
        let mut frame = (compressed.len() as u32).to_be_bytes().to_vec();
        frame.push(1);
        frame.extend_from_slice(&compressed);
        frame.push(b'\n');
        let mut d = FrameDecoder::new(1 << 20);
        assert_eq!(
            decode_all(&mut d, &frame).unwrap(),
            vec![Bytes::from(payload)]
        );
    }

    #[test]
    fn a_compressed_payload_inflating_past_the_limit_is_refused() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 1 << 20]).unwrap();
        let compressed = z.finish().unwrap();
        let mut frame = (compressed.len() as u32).to_be_bytes().to_vec();
        frame.push(1);
        frame.extend_from_slice(&compressed);
        frame.push(b'\n');
        let mut d = FrameDecoder::new(64 * 1024);
        assert!(matches!(
            decode_all(&mut d, &frame),
            Err(FrameError::TooLarge { max: 65536, .. })
        ));
    }

    #[test]
    fn garbage_compressed_data_is_an_error() {
        let frame = [0, 0, 0, 3, 1, 1, 2, 3, b'\n'];
        let mut d = FrameDecoder::new(1024);
        assert!(matches!(
            decode_all(&mut d, &frame),
            Err(FrameError::Inflate(_))
        ));
    }

    #[test]
    fn bad_flags_and_oversized_lengths_are_errors() {
        let mut d = FrameDecoder::new(1024);
        assert!(matches!(
            decode_all(&mut d, &[0, 0, 0, 1, 2, 0, b'\n']),
            Err(FrameError::BadFlag(2))
        ));
        assert!(matches!(
            decode_all(&mut d, &[0xff, 0xff, 0xff, 0xff, 0]),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_declared_length_reserves_only_what_arrives() {
        let mut d = FrameDecoder::new(u32::MAX as usize);
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff, 0][..]);
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() <= 2 * READ_AHEAD, "{}", buf.capacity());
    }
}
