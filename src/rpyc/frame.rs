//! RPyC's frames: `u32` big-endian payload length, a `u8` compressed flag,
//! the payload, then one extra byte (`\n`) that the length does not count.
//!
//! Like the native framing, the read buffer grows with the bytes that
//! arrive, not with the length the peer declared. A compressed payload
//! (flag 1) is a zlib stream, inflated by an [`Inflater`] a step at a
//! time, never past the smaller of two bounds:
//!
//! - the frame limit ([`Config::max_frame_len`](crate::Config)): a
//!   compressed frame may not carry more than an uncompressed one;
//! - [`MAX_INFLATE_RATIO`] times the compressed size: a small "zip bomb"
//!   cannot make this side inflate (and spend time on) far more than the
//!   peer sent.
//!
//! Past either the frame is refused and the connection closed, as for an
//! oversized frame, having allocated nothing in proportion to what it
//! would have inflated to.

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};
use tokio_util::codec::Decoder;

/// Length, then compressed flag.
pub(crate) const HEADER_LEN: usize = 5;

/// The byte after every payload (RPyC's "flusher").
const TRAILER: u8 = b'\n';

/// Most bytes reserved beyond what has arrived of a frame.
const READ_AHEAD: usize = 64 * 1024;

/// Most bytes a compressed payload may inflate to per byte of it.
///
/// Python's rpyc compresses every payload over 3000 bytes with zlib at
/// level 1, and zlib's fast levels (1 to 3) never reach 230:1 whatever the
/// input (measured with zlib 1.2.13 on runs of one byte, short repeated
/// patterns and a brine tuple of `None`s: 229:1 at most; zlib-ng's level 1
/// stays under 160:1). Levels 4 to 9 reach zlib's ceiling of about
/// 1030:1, which only a bomb, or a sender that raised the level and sends
/// degenerate data, comes near. 256 leaves room above what rpyc sends
/// and refuses a maximal bomb after inflating a quarter of it.
pub const MAX_INFLATE_RATIO: usize = 256;

/// Why a frame could not be read; the connection cannot continue after it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error(
        "a compressed frame of {compressed} bytes inflates to more than {} bytes, \
         {MAX_INFLATE_RATIO} times its size (rpyc's zlib level 1 stays under 230 times): \
         refused as a compression bomb",
        compressed.saturating_mul(MAX_INFLATE_RATIO)
    )]
    Bomb { compressed: usize },
    #[error("a frame has compressed flag {0} (RPyC sends 0 or 1)")]
    BadFlag(u8),
    #[error("a compressed frame is not a valid zlib stream: {0}")]
    Inflate(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One frame as it arrived: its payload, compressed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFrame {
    pub(crate) compressed: bool,
    pub(crate) payload: Bytes,
}

/// Cuts the byte stream into frames of at most `max_len` bytes of payload
/// (inflating is left to an [`Inflater`], so that it can run off the
/// runtime's threads).
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
    type Item = RawFrame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RawFrame>, FrameError> {
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
        Ok(Some(RawFrame {
            compressed: flag == 1,
            payload,
        }))
    }
}

/// Inflates one compressed payload, never past `bound` bytes of output:
/// the frame limit, or [`MAX_INFLATE_RATIO`] times the compressed size if
/// that is less.
///
/// [`run`](Inflater::run) inflates a first part into a buffer grown by
/// doubling (small frames end there). [`finish`](Inflater::finish)
/// inflates the rest into a fixed scratch buffer only to measure it,
/// refusing the frame as soon as it passes the bound, then inflates the
/// whole stream again into a buffer of exactly its size: a bomb is
/// refused having allocated nothing in proportion to it, and a large
/// payload is never copied into a larger buffer (at the price of
/// inflating it twice, off the runtime's threads).
pub(crate) struct Inflater {
    zlib: Decompress,
    input: Bytes,
    out: Vec<u8>,
    bound: usize,
    max_len: usize,
    done: bool,
}

/// The buffer the rest of a large payload is measured in.
const SCRATCH: usize = 32 * 1024;

impl Inflater {
    pub(crate) fn new(input: Bytes, max_len: usize) -> Inflater {
        let bound = max_len.min(input.len().saturating_mul(MAX_INFLATE_RATIO));
        Inflater {
            zlib: Decompress::new(true),
            input,
            out: Vec::new(),
            bound,
            max_len,
            done: false,
        }
    }

    /// Inflate until the stream ends (true) or `until` bytes are out
    /// (false: [`finish`](Inflater::finish) does the rest).
    pub(crate) fn run(&mut self, until: usize) -> Result<bool, FrameError> {
        let target = until.min(self.bound);
        while !self.done {
            if self.out.len() >= target {
                if target < self.bound {
                    return Ok(false);
                }
                // Full at the bound: fine only if the stream ends here.
                if self.measure()? > self.bound {
                    return Err(self.past_the_bound());
                }
                break;
            }
            if self.out.len() == self.out.capacity() {
                let grow = self.out.len().max(4096).min(target - self.out.len());
                self.out.reserve_exact(grow);
            }
            self.done = inflate_step(&mut self.zlib, &self.input, |zlib, input| {
                zlib.decompress_vec(input, &mut self.out, FlushDecompress::None)
            })?;
        }
        Ok(true)
    }

    /// Inflate the rest of the stream into scratch space, and return the
    /// whole stream's size, stopping as soon as it passes the bound.
    fn measure(&mut self) -> Result<usize, FrameError> {
        let mut scratch = vec![0u8; SCRATCH];
        while !self.done && self.zlib.total_out() as usize <= self.bound {
            self.done = inflate_step(&mut self.zlib, &self.input, |zlib, input| {
                zlib.decompress(input, &mut scratch, FlushDecompress::None)
            })?;
        }
        Ok(self.zlib.total_out() as usize)
    }

    fn past_the_bound(&self) -> FrameError {
        if self.bound < self.max_len {
            FrameError::Bomb {
                compressed: self.input.len(),
            }
        } else {
            FrameError::TooLarge {
                len: self.zlib.total_out() as usize,
                max: self.max_len,
            }
        }
    }

    /// The whole payload.
    pub(crate) fn finish(mut self) -> Result<Bytes, FrameError> {
        if self.done || self.run(0)? {
            return Ok(Bytes::from(self.out));
        }
        let len = self.measure()?;
        if len > self.bound {
            return Err(self.past_the_bound());
        }
        drop(std::mem::take(&mut self.out));
        let mut zlib = Decompress::new(true);
        let mut out = Vec::with_capacity(len);
        while !inflate_step(&mut zlib, &self.input, |zlib, input| {
            zlib.decompress_vec(input, &mut out, FlushDecompress::None)
        })? {}
        Ok(Bytes::from(out))
    }
}

/// One call of `inflate` on what `zlib` has not yet read of `input`: true
/// once the stream has ended, an error if it is corrupt or made no
/// progress (it ends early).
fn inflate_step(
    zlib: &mut Decompress,
    input: &[u8],
    inflate: impl FnOnce(&mut Decompress, &[u8]) -> Result<Status, flate2::DecompressError>,
) -> Result<bool, FrameError> {
    let (read, written) = (zlib.total_in(), zlib.total_out());
    let status = inflate(zlib, &input[read as usize..]).map_err(inflate_error)?;
    if status == Status::StreamEnd {
        return Ok(true);
    }
    if (read, written) == (zlib.total_in(), zlib.total_out()) {
        return Err(ends_early());
    }
    Ok(false)
}

fn inflate_error(e: flate2::DecompressError) -> FrameError {
    FrameError::Inflate(e.to_string())
}

fn ends_early() -> FrameError {
    FrameError::Inflate("the stream ends early".into())
}

/// A whole payload: as it came, or inflated.
#[cfg(test)]
fn payload(frame: RawFrame, max_len: usize) -> Result<Bytes, FrameError> {
    if frame.compressed {
        Inflater::new(frame.payload, max_len).finish()
    } else {
        Ok(frame.payload)
    }
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
            out.push(payload(frame, d.max_len)?);
        }
        Ok(out)
    }

    fn zlib(data: &[u8], level: u32) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    fn compressed_frame(compressed: &[u8]) -> Vec<u8> {
        let mut frame = (compressed.len() as u32).to_be_bytes().to_vec();
        frame.push(1);
        frame.extend_from_slice(compressed);
        frame.push(b'\n');
        frame
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
                out.push(f.payload);
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
        let frame = compressed_frame(&zlib(&payload, 1));
        let mut d = FrameDecoder::new(1 << 20);
        assert_eq!(
            decode_all(&mut d, &frame).unwrap(),
            vec![Bytes::from(payload)]
        );
    }

    #[test]
    fn what_python_sends_at_level_1_is_within_the_ratio() {
        // The most compressible payload there is, at rpyc's level.
        let payload = vec![0u8; 8 << 20];
        let compressed = zlib(&payload, 1);
        assert!(payload.len() / compressed.len() < MAX_INFLATE_RATIO);
        let out = Inflater::new(compressed.into(), 64 << 20).finish().unwrap();
        assert_eq!(out.len(), payload.len());
    }

    #[test]
    fn a_compressed_payload_inflating_past_the_limit_is_refused() {
        let frame = compressed_frame(&zlib(&[0u8; 1 << 20], 1));
        let mut d = FrameDecoder::new(64 * 1024);
        assert!(matches!(
            decode_all(&mut d, &frame),
            Err(FrameError::TooLarge { max: 65536, .. })
        ));
    }

    #[test]
    fn a_bomb_is_refused_by_its_ratio_with_nothing_allocated_for_it() {
        let compressed = zlib(&vec![0u8; 16 << 20], 9);
        let len = compressed.len();
        let mut inflater = Inflater::new(compressed.into(), 64 << 20);
        assert_eq!(inflater.bound, len * MAX_INFLATE_RATIO);
        assert!(!inflater.run(1000).unwrap());
        assert!(inflater.measure().unwrap() > inflater.bound);
        assert!(inflater.out.capacity() <= 1000);
        let err = inflater.past_the_bound();
        assert!(matches!(err, FrameError::Bomb { compressed } if compressed == len));
        assert!(err.to_string().contains("compression bomb"), "{err}");
        let again = Inflater::new(zlib(&vec![0u8; 16 << 20], 9).into(), 64 << 20);
        assert!(matches!(again.finish(), Err(FrameError::Bomb { .. })));
    }

    #[test]
    fn inflating_stops_at_each_step_and_goes_on() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut inflater = Inflater::new(zlib(&payload, 1).into(), 1 << 20);
        assert!(!inflater.run(1000).unwrap());
        assert_eq!(inflater.out.len(), 1000);
        assert!(inflater.out.capacity() <= 1000);
        assert_eq!(inflater.finish().unwrap(), Bytes::from(payload));
    }

    #[test]
    fn a_payload_exactly_at_the_bound_is_accepted_and_one_byte_more_is_not() {
        for (len, at_once) in [(4096, true), (100_000, true), (100_000, false)] {
            let compressed = || Bytes::from(zlib(&vec![5u8; len], 1));
            let inline = |mut inflater: Inflater| {
                if at_once {
                    inflater.run(usize::MAX).map(|_| inflater.out.len())
                } else {
                    inflater.finish().map(|out| out.len())
                }
            };
            assert_eq!(inline(Inflater::new(compressed(), len)).unwrap(), len);
            assert!(matches!(
                inline(Inflater::new(compressed(), len - 1)),
                Err(FrameError::TooLarge { .. })
            ));
        }
    }

    #[test]
    fn garbage_or_truncated_compressed_data_is_an_error() {
        let frame = [0, 0, 0, 3, 1, 1, 2, 3, b'\n'];
        let mut d = FrameDecoder::new(1024);
        assert!(matches!(
            decode_all(&mut d, &frame),
            Err(FrameError::Inflate(_))
        ));
        let mut cut = zlib(&[1u8; 5000], 1);
        cut.truncate(cut.len() - 6);
        assert!(matches!(
            Inflater::new(cut.into(), 1 << 20).finish(),
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
