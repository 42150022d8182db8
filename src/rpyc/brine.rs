//! Brine, RPyC's serializer for immutable values: what travels by value.
//!
//! One tag byte, then the value; multi-byte numbers are big-endian. Only
//! `None`, booleans, integers, floats, complex numbers, bytes, `str`,
//! tuples, frozensets, slices and the singletons `NotImplemented` and
//! `Ellipsis` have tags; everything else travels by reference (see the
//! boxing in [`rpyc`](super)).
//!
//! Decoding is bounded: nesting deeper than [`MAX_DEPTH`] is refused, an
//! integer that does not fit an `i128` is refused, and no length the peer
//! declares is trusted beyond the bytes actually present.
//!
//! ```
//! use tether::rpyc::Brine;
//! let value = Brine::Tuple(vec![Brine::Int(1), Brine::Str("hi".into())]);
//! let bytes = value.encode();
//! assert_eq!(bytes, [0x11, 0x51, 0x08, 0x0b, b'h', b'i']);
//! assert_eq!(Brine::decode(&bytes).unwrap(), value);
//! ```

/// Deepest nesting of tuples (and frozensets and slices) decoded.
pub const MAX_DEPTH: usize = 64;

const NONE: u8 = 0x00;
const EMPTY_BYTES: u8 = 0x01;
const EMPTY_TUPLE: u8 = 0x02;
const TRUE: u8 = 0x03;
const FALSE: u8 = 0x04;
const NOT_IMPLEMENTED: u8 = 0x05;
const ELLIPSIS: u8 = 0x06;
const STR: u8 = 0x08;
const BYTES1: u8 = 0x0a;
const BYTES4: u8 = 0x0d;
const BYTES_L1: u8 = 0x0e;
const BYTES_L4: u8 = 0x0f;
const TUPLE1: u8 = 0x10;
const TUPLE4: u8 = 0x13;
const TUPLE_L1: u8 = 0x14;
const TUPLE_L4: u8 = 0x15;
const INT_L1: u8 = 0x16;
const INT_L4: u8 = 0x17;
const FLOAT: u8 = 0x18;
const SLICE: u8 = 0x19;
const FROZENSET: u8 = 0x1a;
const COMPLEX: u8 = 0x1b;
/// Small integers -48..=159 are one byte: the value plus this.
const SMALL_INT_BIAS: i128 = 0x50;
const SMALL_INT_FIRST: u8 = 0x20;
const SMALL_INT_LAST: u8 = 0xef;

/// One brine value.
#[derive(Debug, Clone, PartialEq)]
pub enum Brine {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// `NotImplemented` (what a comparison returns when it cannot compare).
    NotImplemented,
    /// `Ellipsis` (`...`).
    Ellipsis,
    /// An integer (Python's are unbounded; brine carries them as decimal text).
    Int(i128),
    /// A float.
    Float(f64),
    /// A complex number: real and imaginary parts.
    Complex(f64, f64),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `str`.
    Str(String),
    /// A tuple.
    Tuple(Vec<Brine>),
    /// A frozenset, as its items in the order they travelled.
    FrozenSet(Vec<Brine>),
    /// A slice: start, stop, step.
    Slice(Box<[Brine; 3]>),
}

/// Why bytes are not valid brine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrineError {
    /// The input ended inside a value.
    #[error("brine ended inside a value")]
    Truncated,
    /// A tag byte brine does not define.
    #[error("unknown brine tag {0:#04x}")]
    UnknownTag(u8),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("brine nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// An integer that is not decimal text.
    #[error("a brine integer is not decimal text")]
    BadInt,
    /// An integer that does not fit an `i128`.
    #[error("a brine integer of {0} digits does not fit 128 bits")]
    IntTooLarge(usize),
    /// A `str` whose bytes are not UTF-8, or that is not followed by bytes.
    #[error("a brine str is not UTF-8 bytes")]
    BadStr,
    /// A slice not followed by a 3-tuple, or a frozenset not by a tuple.
    #[error("a brine {0} is not followed by the tuple it needs")]
    BadShape(&'static str),
    /// Bytes left after the value.
    #[error("{0} bytes after the brine value")]
    Trailing(usize),
}

impl Brine {
    /// The brine bytes of this value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Append the brine bytes of this value to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Brine::None => out.push(NONE),
            Brine::Bool(true) => out.push(TRUE),
            Brine::Bool(false) => out.push(FALSE),
            Brine::NotImplemented => out.push(NOT_IMPLEMENTED),
            Brine::Ellipsis => out.push(ELLIPSIS),
            Brine::Int(n) => encode_int(*n, out),
            Brine::Float(x) => {
                out.push(FLOAT);
                out.extend_from_slice(&x.to_be_bytes());
            }
            Brine::Complex(re, im) => {
                out.push(COMPLEX);
                out.extend_from_slice(&re.to_be_bytes());
                out.extend_from_slice(&im.to_be_bytes());
            }
            Brine::Bytes(b) => encode_bytes(b, out),
            Brine::Str(s) => {
                out.push(STR);
                encode_bytes(s.as_bytes(), out);
            }
            Brine::Tuple(items) => encode_tuple(items, out),
            Brine::FrozenSet(items) => {
                out.push(FROZENSET);
                encode_tuple(items, out);
            }
            Brine::Slice(parts) => {
                out.push(SLICE);
                encode_tuple(&parts[..], out);
            }
        }
    }

    /// Decode exactly one value from `bytes` (nothing may follow it).
    pub fn decode(bytes: &[u8]) -> Result<Brine, BrineError> {
        let mut reader = Reader { bytes, at: 0 };
        let value = reader.value(0)?;
        match bytes.len() - reader.at {
            0 => Ok(value),
            n => Err(BrineError::Trailing(n)),
        }
    }

    /// The integer, if this is one that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Brine::Int(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// The text, if this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Brine::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Brine]> {
        match self {
            Brine::Tuple(items) => Some(items),
            _ => None,
        }
    }
}

fn encode_int(n: i128, out: &mut Vec<u8>) {
    if (-48..=159).contains(&n) {
        out.push((n + SMALL_INT_BIAS) as u8);
        return;
    }
    // At most 40 characters: always the one-byte length form.
    let text = n.to_string();
    out.push(INT_L1);
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    match b.len() {
        0 => out.push(EMPTY_BYTES),
        n @ 1..=4 => out.push(BYTES1 + (n as u8 - 1)),
        n if n < 256 => {
            out.push(BYTES_L1);
            out.push(n as u8);
        }
        n => {
            out.push(BYTES_L4);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(b);
}

fn encode_tuple(items: &[Brine], out: &mut Vec<u8>) {
    match items.len() {
        0 => out.push(EMPTY_TUPLE),
        n @ 1..=4 => out.push(TUPLE1 + (n as u8 - 1)),
        n if n < 256 => {
            out.push(TUPLE_L1);
            out.push(n as u8);
        }
        n => {
            out.push(TUPLE_L4);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    for item in items {
        item.encode_into(out);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BrineError> {
        let end = self.at.checked_add(n).ok_or(BrineError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(BrineError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, BrineError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, BrineError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn f64(&mut self) -> Result<f64, BrineError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn value(&mut self, depth: usize) -> Result<Brine, BrineError> {
        let tag = self.u8()?;
        Ok(match tag {
            NONE => Brine::None,
            EMPTY_BYTES => Brine::Bytes(Vec::new()),
            EMPTY_TUPLE => Brine::Tuple(Vec::new()),
            TRUE => Brine::Bool(true),
            FALSE => Brine::Bool(false),
            NOT_IMPLEMENTED => Brine::NotImplemented,
            ELLIPSIS => Brine::Ellipsis,
            STR => {
                let bytes = self.bytes_item()?;
                Brine::Str(String::from_utf8(bytes.to_vec()).map_err(|_| BrineError::BadStr)?)
            }
            BYTES1..=BYTES4 => Brine::Bytes(self.take((tag - BYTES1 + 1) as usize)?.to_vec()),
            BYTES_L1 => {
                let n = self.u8()? as usize;
                Brine::Bytes(self.take(n)?.to_vec())
            }
            BYTES_L4 => {
                let n = self.u32()?;
                Brine::Bytes(self.take(n)?.to_vec())
            }
            TUPLE1..=TUPLE4 => Brine::Tuple(self.items((tag - TUPLE1 + 1) as usize, depth)?),
            TUPLE_L1 => {
                let n = self.u8()? as usize;
                Brine::Tuple(self.items(n, depth)?)
            }
            TUPLE_L4 => {
                let n = self.u32()?;
                Brine::Tuple(self.items(n, depth)?)
            }
            INT_L1 => {
                let n = self.u8()? as usize;
                Brine::Int(parse_int(self.take(n)?)?)
            }
            INT_L4 => {
                let n = self.u32()?;
                Brine::Int(parse_int(self.take(n)?)?)
            }
            FLOAT => Brine::Float(self.f64()?),
            COMPLEX => Brine::Complex(self.f64()?, self.f64()?),
            SLICE => match self.nested(depth)? {
                Brine::Tuple(items) if items.len() == 3 => {
                    let [a, b, c]: [Brine; 3] = items
                        .try_into()
                        .map_err(|_| BrineError::BadShape("slice"))?;
                    Brine::Slice(Box::new([a, b, c]))
                }
                _ => return Err(BrineError::BadShape("slice")),
            },
            FROZENSET => match self.nested(depth)? {
                Brine::Tuple(items) => Brine::FrozenSet(items),
                _ => return Err(BrineError::BadShape("frozenset")),
            },
            SMALL_INT_FIRST..=SMALL_INT_LAST => Brine::Int(tag as i128 - SMALL_INT_BIAS),
            other => return Err(BrineError::UnknownTag(other)),
        })
    }

    /// The bytes item a `str` tag must be followed by.
    fn bytes_item(&mut self) -> Result<&'a [u8], BrineError> {
        let tag = self.u8()?;
        let n = match tag {
            EMPTY_BYTES => 0,
            BYTES1..=BYTES4 => (tag - BYTES1 + 1) as usize,
            BYTES_L1 => self.u8()? as usize,
            BYTES_L4 => self.u32()?,
            _ => return Err(BrineError::BadStr),
        };
        self.take(n)
    }

    fn nested(&mut self, depth: usize) -> Result<Brine, BrineError> {
        if depth >= MAX_DEPTH {
            return Err(BrineError::TooDeep);
        }
        self.value(depth + 1)
    }

    fn items(&mut self, n: usize, depth: usize) -> Result<Vec<Brine>, BrineError> {
        if depth >= MAX_DEPTH {
            return Err(BrineError::TooDeep);
        }
        // Every item takes at least one byte: a count beyond what is left
        // is a lie, and reserving for it would let a peer make us allocate.
        if n > self.remaining() {
            return Err(BrineError::Truncated);
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }
}

/// Python writes `str(int)`: an optional `-`, then digits.
fn parse_int(text: &[u8]) -> Result<i128, BrineError> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(BrineError::BadInt);
    }
    let text = std::str::from_utf8(text).map_err(|_| BrineError::BadInt)?;
    text.parse::<i128>()
        .map_err(|_| BrineError::IntTooLarge(digits.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Brine) {
        let bytes = value.encode();
        assert_eq!(Brine::decode(&bytes).unwrap(), value, "{bytes:02x?}");
    }

    #[test]
    fn the_documented_examples_encode_as_python_does() {
        assert_eq!(Brine::Int(0).encode(), [0x50]);
        assert_eq!(Brine::Int(-1).encode(), [0x4f]);
        assert_eq!(Brine::Int(160).encode(), [0x16, 3, b'1', b'6', b'0']);
        assert_eq!(Brine::Str("hi".into()).encode(), [0x08, 0x0b, b'h', b'i']);
        let five = Brine::Tuple((1..=5).map(Brine::Int).collect());
        assert_eq!(five.encode(), [0x14, 5, 0x51, 0x52, 0x53, 0x54, 0x55]);
        assert_eq!(
            Brine::Float(1.5).encode(),
            [0x18, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn every_tag_round_trips() {
        for value in [
            Brine::None,
            Brine::Bool(true),
            Brine::Bool(false),
            Brine::NotImplemented,
            Brine::Ellipsis,
            Brine::Int(-48),
            Brine::Int(159),
            Brine::Int(-49),
            Brine::Int(160),
            Brine::Int(i128::MAX),
            Brine::Int(i128::MIN),
            Brine::Float(-0.25),
            Brine::Complex(1.0, -2.0),
            Brine::Bytes(vec![]),
            Brine::Bytes(vec![1]),
            Brine::Bytes(vec![1, 2, 3, 4]),
            Brine::Bytes(vec![9; 255]),
            Brine::Bytes(vec![9; 256]),
            Brine::Str(String::new()),
            Brine::Str("héllo".into()),
            Brine::Tuple(vec![]),
            Brine::Tuple(vec![Brine::None; 4]),
            Brine::Tuple(vec![Brine::None; 255]),
            Brine::Tuple(vec![Brine::Int(7); 300]),
            Brine::FrozenSet(vec![Brine::Int(1), Brine::Int(2)]),
            Brine::Slice(Box::new([Brine::Int(1), Brine::None, Brine::Int(-1)])),
        ] {
            round_trip(value);
        }
    }

    #[test]
    fn truncated_input_is_an_error_at_every_cut() {
        let value = Brine::Tuple(vec![
            Brine::Str("hello world".into()),
            Brine::Int(123_456_789_012_345),
            Brine::Float(2.5),
            Brine::Bytes(vec![0; 300]),
        ]);
        let bytes = value.encode();
        for cut in 0..bytes.len() {
            assert_eq!(
                Brine::decode(&bytes[..cut]),
                Err(BrineError::Truncated),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn declared_lengths_beyond_the_input_allocate_nothing() {
        assert_eq!(
            Brine::decode(&[0x15, 0xff, 0xff, 0xff, 0xff]),
            Err(BrineError::Truncated)
        );
        assert_eq!(
            Brine::decode(&[0x0f, 0xff, 0xff, 0xff, 0xff]),
            Err(BrineError::Truncated)
        );
        assert_eq!(
            Brine::decode(&[0x17, 0xff, 0xff, 0xff, 0xff]),
            Err(BrineError::Truncated)
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = vec![0x10; 10_000];
        bytes.push(0x00);
        assert_eq!(Brine::decode(&bytes), Err(BrineError::TooDeep));
        let mut ok = vec![0x10; MAX_DEPTH];
        ok.push(0x00);
        assert!(Brine::decode(&ok).is_ok());
    }

    #[test]
    fn bad_values_are_errors() {
        assert_eq!(Brine::decode(&[0x07]), Err(BrineError::UnknownTag(7)));
        assert_eq!(Brine::decode(&[0xff]), Err(BrineError::UnknownTag(0xff)));
        assert_eq!(
            Brine::decode(&[0x16, 2, b'1', b'x']),
            Err(BrineError::BadInt)
        );
        assert_eq!(Brine::decode(&[0x16, 1, b'-']), Err(BrineError::BadInt));
        let big = [&[0x16, 45][..], &[b'9'; 45][..]].concat();
        assert_eq!(Brine::decode(&big), Err(BrineError::IntTooLarge(45)));
        assert_eq!(Brine::decode(&[0x08, 0x0a, 0xff]), Err(BrineError::BadStr));
        assert_eq!(Brine::decode(&[0x08, 0x50]), Err(BrineError::BadStr));
        assert_eq!(
            Brine::decode(&[0x19, 0x10, 0x00]),
            Err(BrineError::BadShape("slice"))
        );
        assert_eq!(
            Brine::decode(&[0x1a, 0x00]),
            Err(BrineError::BadShape("frozenset"))
        );
        assert_eq!(Brine::decode(&[0x00, 0x00]), Err(BrineError::Trailing(1)));
        assert_eq!(Brine::decode(&[0x08; 100_000]), Err(BrineError::BadStr));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every short input and a pseudo-random walk.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 40)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = Brine::decode(&bytes);
        }
    }
}
