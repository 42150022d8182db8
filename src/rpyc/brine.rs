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
//! declares is trusted beyond the bytes actually present: a tuple may
//! declare no more items than the bytes left can hold at one byte each,
//! less one byte for each item still due in the tuples around it, so the
//! slots reserved at once never outnumber the input's bytes however the
//! tuples nest. RPyC's reader also charges what it builds to the
//! connection's decoding budget
//! ([`Config::max_decoded_bytes`](crate::Config::max_decoded_bytes)).
//!
//! ```
//! use tether::rpyc::Brine;
//! let value = Brine::Tuple(vec![Brine::Int(1), Brine::Str("hi".into())]);
//! let bytes = value.encode();
//! assert_eq!(bytes, [0x11, 0x51, 0x08, 0x0b, b'h', b'i']);
//! assert_eq!(Brine::decode(&bytes).unwrap(), value);
//! ```

use crate::protocol::budget::{DecodeBudget, VALUE_COST};

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
    /// The value decodes to more than the decoder may build (only from a
    /// decoder with a budget: RPyC's reader, within
    /// [`Config::max_decoded_bytes`](crate::Config::max_decoded_bytes)).
    #[error("brine that decodes to more than this side's decoding budget")]
    OverBudget,
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
        Brine::decode_within(bytes, &mut DecodeBudget::new(usize::MAX))
    }

    /// Decode exactly one value, charging what it builds to `budget`.
    pub(crate) fn decode_within(
        bytes: &[u8],
        budget: &mut DecodeBudget,
    ) -> Result<Brine, BrineError> {
        let mut cursor = Cursor::new(bytes);
        let value = cursor.value_within(0, budget)?;
        cursor.finish()?;
        Ok(value)
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

/// Reads brine from a byte slice, one value (or tuple header) at a time.
///
/// Two rules bound what it allocates, whatever the bytes declare:
///
/// - every value takes at least one byte, so a tuple may declare no more
///   items than the bytes left can hold, *less* one byte for each item
///   still due in the tuples around it (`promised`): however the tuples
///   nest, the slots reserved at once never outnumber the input's bytes;
/// - what it builds is charged to a [`DecodeBudget`] before it is
///   allocated: [`VALUE_COST`] per value (a tuple's slots when it is
///   declared), text and bytes their length besides. Past the budget it
///   stops with [`BrineError::OverBudget`].
///
/// [`skip`](Cursor::skip) walks a value without building anything.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Items declared by the tuples being read and not yet begun.
    promised: usize,
}

/// Where a [`Cursor`] was, to go back there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    at: usize,
    promised: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor {
            bytes,
            at: 0,
            promised: 0,
        }
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            at: self.at,
            promised: self.promised,
        }
    }

    pub(crate) fn reset(&mut self, mark: Mark) {
        self.at = mark.at;
        self.promised = mark.promised;
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// An error unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), BrineError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(BrineError::Trailing(n)),
        }
    }

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

    /// If a tuple begins here, read its header and return its length;
    /// otherwise read nothing.
    pub(crate) fn tuple_len(&mut self) -> Result<Option<usize>, BrineError> {
        let mark = self.mark();
        let tag = self.u8()?;
        let n = match tag {
            EMPTY_TUPLE => 0,
            TUPLE1..=TUPLE4 => (tag - TUPLE1 + 1) as usize,
            TUPLE_L1 => self.u8()? as usize,
            TUPLE_L4 => self.u32()?,
            _ => {
                self.reset(mark);
                return Ok(None);
            }
        };
        Ok(Some(n))
    }

    /// Decode one value nested `depth` deep, its own slot charged too.
    pub(crate) fn value_within(
        &mut self,
        depth: usize,
        budget: &mut DecodeBudget,
    ) -> Result<Brine, BrineError> {
        if !budget.charge_value(0) {
            return Err(BrineError::OverBudget);
        }
        self.value(depth, budget)
    }

    /// Decode one value nested `depth` deep; its slot is already charged.
    fn value(&mut self, depth: usize, budget: &mut DecodeBudget) -> Result<Brine, BrineError> {
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
                let text = std::str::from_utf8(bytes).map_err(|_| BrineError::BadStr)?;
                charge(budget, text.len())?;
                Brine::Str(text.to_string())
            }
            BYTES1..=BYTES_L4 => {
                let n = self.bytes_len(tag)?;
                let bytes = self.take(n)?;
                charge(budget, bytes.len())?;
                Brine::Bytes(bytes.to_vec())
            }
            TUPLE1..=TUPLE4 => {
                Brine::Tuple(self.items((tag - TUPLE1 + 1) as usize, depth, budget)?)
            }
            TUPLE_L1 => {
                let n = self.u8()? as usize;
                Brine::Tuple(self.items(n, depth, budget)?)
            }
            TUPLE_L4 => {
                let n = self.u32()?;
                Brine::Tuple(self.items(n, depth, budget)?)
            }
            INT_L1 | INT_L4 => Brine::Int(self.int_text(tag)?),
            FLOAT => Brine::Float(self.f64()?),
            COMPLEX => Brine::Complex(self.f64()?, self.f64()?),
            SLICE => {
                self.nested_depth(depth)?;
                match self.value(depth + 1, budget)? {
                    Brine::Tuple(items) if items.len() == 3 => {
                        let [a, b, c]: [Brine; 3] = items
                            .try_into()
                            .map_err(|_| BrineError::BadShape("slice"))?;
                        Brine::Slice(Box::new([a, b, c]))
                    }
                    _ => return Err(BrineError::BadShape("slice")),
                }
            }
            FROZENSET => {
                self.nested_depth(depth)?;
                match self.value(depth + 1, budget)? {
                    Brine::Tuple(items) => Brine::FrozenSet(items),
                    _ => return Err(BrineError::BadShape("frozenset")),
                }
            }
            SMALL_INT_FIRST..=SMALL_INT_LAST => Brine::Int(tag as i128 - SMALL_INT_BIAS),
            other => return Err(BrineError::UnknownTag(other)),
        })
    }

    /// Read one value nested `depth` deep without building it: the same
    /// checks as decoding (so the same inputs are refused), no allocation.
    pub(crate) fn skip(&mut self, depth: usize) -> Result<(), BrineError> {
        let tag = self.u8()?;
        match tag {
            NONE | EMPTY_BYTES | EMPTY_TUPLE | TRUE | FALSE | NOT_IMPLEMENTED | ELLIPSIS => {}
            SMALL_INT_FIRST..=SMALL_INT_LAST => {}
            STR => {
                let bytes = self.bytes_item()?;
                std::str::from_utf8(bytes).map_err(|_| BrineError::BadStr)?;
            }
            BYTES1..=BYTES_L4 => {
                let n = self.bytes_len(tag)?;
                self.take(n)?;
            }
            TUPLE1..=TUPLE4 => self.skip_items((tag - TUPLE1 + 1) as usize, depth)?,
            TUPLE_L1 => {
                let n = self.u8()? as usize;
                self.skip_items(n, depth)?;
            }
            TUPLE_L4 => {
                let n = self.u32()?;
                self.skip_items(n, depth)?;
            }
            INT_L1 | INT_L4 => {
                self.int_text(tag)?;
            }
            FLOAT => {
                self.take(8)?;
            }
            COMPLEX => {
                self.take(16)?;
            }
            SLICE | FROZENSET => {
                self.nested_depth(depth)?;
                let what = if tag == SLICE { "slice" } else { "frozenset" };
                match self.tuple_len()? {
                    Some(n) if tag == FROZENSET || n == 3 => self.skip_items(n, depth + 1)?,
                    _ => return Err(BrineError::BadShape(what)),
                }
            }
            other => return Err(BrineError::UnknownTag(other)),
        }
        Ok(())
    }

    /// The length of a bytes value whose tag was just read.
    fn bytes_len(&mut self, tag: u8) -> Result<usize, BrineError> {
        Ok(match tag {
            EMPTY_BYTES => 0,
            BYTES1..=BYTES4 => (tag - BYTES1 + 1) as usize,
            BYTES_L1 => self.u8()? as usize,
            BYTES_L4 => self.u32()?,
            _ => return Err(BrineError::BadStr),
        })
    }

    /// The bytes item a `str` tag must be followed by.
    fn bytes_item(&mut self) -> Result<&'a [u8], BrineError> {
        let tag = self.u8()?;
        let n = self.bytes_len(tag)?;
        self.take(n)
    }

    fn int_text(&mut self, tag: u8) -> Result<i128, BrineError> {
        let n = if tag == INT_L1 {
            self.u8()? as usize
        } else {
            self.u32()?
        };
        parse_int(self.take(n)?)
    }

    fn nested_depth(&self, depth: usize) -> Result<(), BrineError> {
        if depth >= MAX_DEPTH {
            return Err(BrineError::TooDeep);
        }
        Ok(())
    }

    /// Check a tuple's declared length `n` against the bytes left.
    fn declared(&self, n: usize, depth: usize) -> Result<(), BrineError> {
        self.nested_depth(depth)?;
        // Every item takes at least one byte, and so does every item still
        // due in the tuples around this one: a count beyond that is a lie,
        // and reserving for it would let a peer make us allocate.
        if n > self.remaining().saturating_sub(self.promised) {
            return Err(BrineError::Truncated);
        }
        Ok(())
    }

    fn items(
        &mut self,
        n: usize,
        depth: usize,
        budget: &mut DecodeBudget,
    ) -> Result<Vec<Brine>, BrineError> {
        self.declared(n, depth)?;
        // The slots are charged before they are reserved.
        charge(budget, n.saturating_mul(VALUE_COST))?;
        let mut items = Vec::with_capacity(n);
        self.promised += n;
        for _ in 0..n {
            self.promised -= 1;
            items.push(self.value(depth + 1, budget)?);
        }
        Ok(items)
    }

    fn skip_items(&mut self, n: usize, depth: usize) -> Result<(), BrineError> {
        self.declared(n, depth)?;
        self.promised += n;
        for _ in 0..n {
            self.promised -= 1;
            self.skip(depth + 1)?;
        }
        Ok(())
    }
}

fn charge(budget: &mut DecodeBudget, bytes: usize) -> Result<(), BrineError> {
    if budget.charge(bytes) {
        Ok(())
    } else {
        Err(BrineError::OverBudget)
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
    fn nested_tuples_cannot_declare_more_items_than_the_bytes_hold() {
        // Each level declares as many items as there are bytes left: only
        // the outermost may, since its items are due before the bytes of
        // any inner tuple can count for the inner one.
        let n: u32 = 1000;
        let mut bytes = Vec::new();
        for _ in 0..3 {
            bytes.push(0x15);
            bytes.extend_from_slice(&n.to_be_bytes());
        }
        bytes.extend(std::iter::repeat_n(0u8, n as usize));
        let mut budget = DecodeBudget::new(usize::MAX);
        assert_eq!(
            Brine::decode_within(&bytes, &mut budget),
            Err(BrineError::Truncated)
        );
        // Refused at the second level, before its slots were reserved.
        assert_eq!(budget.used(), (n as usize + 1) * VALUE_COST);
        // An honest nesting of the same shape decodes.
        let honest = Brine::Tuple(vec![
            Brine::Tuple(vec![Brine::None; 500]),
            Brine::Tuple(vec![Brine::None; 500]),
        ]);
        round_trip(honest);
    }

    #[test]
    fn a_budget_stops_decoding_before_the_slots_are_reserved() {
        let mut bytes = vec![0x15];
        bytes.extend_from_slice(&100_000u32.to_be_bytes());
        bytes.extend(std::iter::repeat_n(0u8, 100_000));
        let mut budget = DecodeBudget::new(1 << 20);
        assert_eq!(
            Brine::decode_within(&bytes, &mut budget),
            Err(BrineError::OverBudget)
        );
        assert!(budget.used() <= VALUE_COST, "nothing was built");
        let mut enough = DecodeBudget::new(4 << 20);
        assert!(Brine::decode_within(&bytes, &mut enough).is_ok());
        assert_eq!(enough.used(), 100_001 * VALUE_COST);
        // Text and bytes count their length besides.
        let text = Brine::Str("x".repeat(10_000)).encode();
        let mut small = DecodeBudget::new(10_000);
        assert_eq!(
            Brine::decode_within(&text, &mut small),
            Err(BrineError::OverBudget)
        );
    }

    #[test]
    fn a_brine_node_costs_no_more_than_a_value() {
        assert!(std::mem::size_of::<Brine>() <= VALUE_COST);
    }

    #[test]
    fn skipping_accepts_and_refuses_what_decoding_does() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut inputs: Vec<Vec<u8>> = vec![
            Brine::Tuple(vec![
                Brine::Str("héllo".into()),
                Brine::Slice(Box::new([Brine::Int(1), Brine::None, Brine::Int(-1)])),
                Brine::FrozenSet(vec![Brine::Int(1)]),
                Brine::Complex(1.0, 2.0),
                Brine::Bytes(vec![1; 300]),
                Brine::Int(1 << 100),
            ])
            .encode(),
            vec![0x19, 0x11, 0x00, 0x00],
            vec![0x08, 0x0a, 0xff],
        ];
        for len in 0..3000 {
            inputs.push(
                (0..len % 24)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly tags that nest, so tuples are exercised.
                        [0x00, 0x10, 0x11, 0x14, 0x19, 0x1a, 0x08, 0x0b, 0x50, 0x02]
                            [seed as usize % 10]
                            ^ ((seed >> 60) as u8 & 1)
                    })
                    .collect(),
            );
        }
        for bytes in inputs {
            let decoded = Brine::decode(&bytes);
            let mut cursor = Cursor::new(&bytes);
            let skipped = cursor.skip(0).and_then(|()| cursor.finish());
            assert_eq!(
                decoded.is_ok(),
                skipped.is_ok(),
                "{bytes:02x?}: {decoded:?} {skipped:?}"
            );
        }
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
