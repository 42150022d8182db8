//! Boxing: values as RPyC passes them, by value or by reference.
//!
//! A boxed value is a `(label, payload)` pair, labels named from the
//! receiver's side: 1 a brine value, 2 a tuple holding at least one
//! reference (each item boxed), 3 "this is yours" (an id pack of an object
//! the receiver owns, coming back), 4 "this is mine" (the sender owns it and
//! counted one more send). Tether's `List` travels as a tuple, a `Map` as a
//! tuple of `(key, value)` pairs; Python values tether's [`Value`] cannot
//! hold (complex, slice, `Ellipsis`, `NotImplemented`, integers beyond
//! `i64`) are a type error naming what arrived.

use super::brine::{Brine, BrineError, Cursor, MAX_DEPTH};
use super::id_pack::IdPack;
use crate::error::raise;
use crate::netref::NetRef;
use crate::protocol::budget::DecodeBudget;
use crate::{Error, ErrorKind, Result, Value};

const VALUE: i128 = 1;
const TUPLE: i128 = 2;
const YOURS: i128 = 3;
const MINE: i128 = 4;

/// Where references come from and go to: one RPyC connection's tables.
pub(crate) trait RefTable {
    /// Box `netref` for the peer: `(3, id_pack)` for the peer's own object
    /// coming back, `(4, id_pack)` for ours (counting one more send).
    fn export(&self, netref: &NetRef) -> Result<Brine>;
    /// The object of ours the peer names.
    fn yours(&self, pack: IdPack) -> Result<NetRef>;
    /// The proxy for the peer's object (one per id pack, counting receipts).
    fn mine(&self, pack: IdPack) -> Result<NetRef>;
}

pub(crate) fn labelled(label: i128, payload: Brine) -> Brine {
    Brine::Tuple(vec![Brine::Int(label), payload])
}

/// `(3, id_pack)`: a reference to one of the receiver's own objects.
pub(crate) fn yours(pack: &IdPack) -> Brine {
    labelled(YOURS, pack.to_brine())
}

/// `(4, id_pack)`: a reference to one of the sender's objects.
pub(crate) fn mine(pack: &IdPack) -> Brine {
    labelled(MINE, pack.to_brine())
}

/// Box `value`.
pub(crate) fn box_value(value: &Value, refs: &dyn RefTable) -> Result<Brine> {
    if let Some(data) = as_data(value) {
        return Ok(labelled(VALUE, data));
    }
    match value {
        Value::List(items) => boxed_tuple(items.iter().map(|v| box_value(v, refs))),
        Value::Map(pairs) => boxed_tuple(
            pairs
                .iter()
                .map(|(k, v)| boxed_tuple([box_value(k, refs), box_value(v, refs)].into_iter())),
        ),
        Value::Ref(netref) => refs.export(netref),
        _ => unreachable!("plain data is boxed above"),
    }
}

/// Box already-boxed items as one tuple: by value when every item is.
pub(crate) fn box_tuple(items: Vec<Brine>) -> Brine {
    let mut values = Vec::with_capacity(items.len());
    for item in &items {
        match item.as_tuple() {
            Some([Brine::Int(VALUE), v]) => values.push(v.clone()),
            _ => return labelled(TUPLE, Brine::Tuple(items)),
        }
    }
    labelled(VALUE, Brine::Tuple(values))
}

fn boxed_tuple(items: impl Iterator<Item = Result<Brine>>) -> Result<Brine> {
    Ok(box_tuple(items.collect::<Result<Vec<_>>>()?))
}

/// `value` as brine, if it holds no reference.
fn as_data(value: &Value) -> Option<Brine> {
    Some(match value {
        Value::None => Brine::None,
        Value::Bool(b) => Brine::Bool(*b),
        Value::Int(n) => Brine::Int(*n as i128),
        Value::Float(x) => Brine::Float(*x),
        Value::Str(s) => Brine::Str(s.clone()),
        Value::Bytes(b) => Brine::Bytes(b.to_vec()),
        // brine has no date: Python gets the RFC 3339 text.
        Value::DateTime(t) => Brine::Str(t.to_rfc3339()),
        Value::List(items) => Brine::Tuple(items.iter().map(as_data).collect::<Option<_>>()?),
        Value::Map(pairs) => Brine::Tuple(
            pairs
                .iter()
                .map(|(k, v)| Some(Brine::Tuple(vec![as_data(k)?, as_data(v)?])))
                .collect::<Option<_>>()?,
        ),
        Value::Ref(_) => return None,
    })
}

/// Unbox a `(label, payload)` pair.
pub(crate) fn unbox(boxed: Brine, refs: &dyn RefTable) -> Result<Value> {
    let Brine::Tuple(pair) = boxed else {
        return Err(raise::protocol(
            "a boxed value that is not a (label, value) pair",
        ));
    };
    let [label, payload]: [Brine; 2] = pair
        .try_into()
        .map_err(|_| raise::protocol("a boxed value that is not a (label, value) pair"))?;
    match label {
        Brine::Int(VALUE) => from_data(payload),
        Brine::Int(TUPLE) => match payload {
            Brine::Tuple(items) => Ok(Value::List(
                items
                    .into_iter()
                    .map(|item| unbox(item, refs))
                    .collect::<Result<_>>()?,
            )),
            _ => Err(raise::protocol("a boxed tuple that is not a tuple")),
        },
        Brine::Int(label @ (YOURS | MINE)) => {
            let pack = IdPack::from_brine(&payload)
                .ok_or_else(|| raise::protocol("a reference whose id pack is malformed"))?;
            let netref = if label == YOURS {
                refs.yours(pack)?
            } else {
                refs.mine(pack)?
            };
            Ok(Value::Ref(netref))
        }
        other => Err(raise::protocol(format!("unknown boxing label {other:?}"))),
    }
}

/// What an id pack may decode to: a name and two integers.
const ID_PACK_BUDGET: usize = 4096;

/// Walk the boxed value at `cursor`, nested `depth` deep, without
/// building it, and call `mine` with each reference the sender owns
/// (label 4): a message too large to build still counted one send of
/// each with its sender, to be released. Parts that are not boxes are
/// skipped; brine errors are returned.
pub(crate) fn scan_mine(
    cursor: &mut Cursor<'_>,
    depth: usize,
    mine: &mut dyn FnMut(IdPack),
) -> Result<(), BrineError> {
    let start = cursor.mark();
    if depth >= MAX_DEPTH || cursor.tuple_len()? != Some(2) {
        cursor.reset(start);
        return cursor.skip(depth);
    }
    let label = cursor
        .value_within(depth + 1, &mut DecodeBudget::new(ID_PACK_BUDGET))
        .ok();
    match label {
        Some(Brine::Int(TUPLE)) => match cursor.tuple_len()? {
            Some(n) if depth + 1 < MAX_DEPTH => {
                for _ in 0..n {
                    scan_mine(cursor, depth + 2, mine)?;
                }
                Ok(())
            }
            _ => {
                cursor.reset(start);
                cursor.skip(depth)
            }
        },
        Some(Brine::Int(MINE)) => {
            let at = cursor.mark();
            match cursor.value_within(depth + 1, &mut DecodeBudget::new(ID_PACK_BUDGET)) {
                Ok(pack) => {
                    if let Some(pack) = IdPack::from_brine(&pack) {
                        mine(pack);
                    }
                    Ok(())
                }
                Err(_) => {
                    cursor.reset(at);
                    cursor.skip(depth + 1)
                }
            }
        }
        _ => {
            cursor.reset(start);
            cursor.skip(depth)
        }
    }
}

/// A brine value as a tether value.
pub(crate) fn from_data(b: Brine) -> Result<Value> {
    Ok(match b {
        Brine::None => Value::None,
        Brine::Bool(b) => Value::Bool(b),
        Brine::Int(n) => Value::Int(i64::try_from(n).map_err(|_| {
            Error::new(
                ErrorKind::Type,
                format!("the integer {n} does not fit tether's 64-bit Int"),
            )
        })?),
        Brine::Float(x) => Value::Float(x),
        Brine::Str(s) => Value::Str(s),
        Brine::Bytes(b) => Value::from(b),
        Brine::Tuple(items) | Brine::FrozenSet(items) => {
            Value::List(items.into_iter().map(from_data).collect::<Result<_>>()?)
        }
        Brine::Complex(..) => return Err(unrepresentable("complex")),
        Brine::Slice(..) => return Err(unrepresentable("slice")),
        Brine::Ellipsis => return Err(unrepresentable("Ellipsis")),
        Brine::NotImplemented => return Err(unrepresentable("NotImplemented")),
    })
}

fn unrepresentable(what: &str) -> Error {
    Error::new(
        ErrorKind::Type,
        format!("a Python {what} has no tether Value"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::builtin::empty::Empty;
    use std::cell::RefCell;

    /// Exports get consecutive ids; imports are recorded.
    #[derive(Default)]
    struct Table {
        exported: RefCell<Vec<NetRef>>,
    }

    impl RefTable for Table {
        fn export(&self, netref: &NetRef) -> Result<Brine> {
            let mut e = self.exported.borrow_mut();
            e.push(netref.clone());
            Ok(mine(&IdPack::ours(netref, e.len() as u64)))
        }
        fn yours(&self, pack: IdPack) -> Result<NetRef> {
            let id = pack.table_id().unwrap() as usize;
            self.exported
                .borrow()
                .get(id - 1)
                .cloned()
                .ok_or_else(|| raise::unknown_object(id as u64))
        }
        fn mine(&self, _pack: IdPack) -> Result<NetRef> {
            Ok(NetRef::new(Empty))
        }
    }

    #[test]
    fn data_is_boxed_by_value_and_comes_back() {
        let t = Table::default();
        let v = Value::List(vec![
            Value::from(1),
            Value::from("a"),
            Value::Bytes(vec![0].into()),
        ]);
        let boxed = box_value(&v, &t).unwrap();
        assert_eq!(
            boxed,
            labelled(
                VALUE,
                Brine::Tuple(vec![
                    Brine::Int(1),
                    Brine::Str("a".into()),
                    Brine::Bytes(vec![0])
                ])
            )
        );
        assert_eq!(unbox(boxed, &t).unwrap(), v);
    }

    #[test]
    fn a_tuple_with_a_reference_is_boxed_item_by_item() {
        let t = Table::default();
        let obj = NetRef::new(Empty);
        let v = Value::List(vec![Value::from(1), Value::Ref(obj.clone())]);
        let boxed = box_value(&v, &t).unwrap();
        let Brine::Tuple(pair) = &boxed else { panic!() };
        assert_eq!(pair[0], Brine::Int(TUPLE));
        // Sent back as "yours", it is the same object.
        let back = labelled(YOURS, IdPack::ours(&obj, 1).to_brine());
        assert_eq!(unbox(back, &t).unwrap(), Value::Ref(obj));
    }

    #[test]
    fn values_tether_cannot_hold_are_type_errors() {
        let t = Table::default();
        for b in [
            Brine::Complex(1.0, 2.0),
            Brine::Ellipsis,
            Brine::NotImplemented,
            Brine::Int(1 << 70),
        ] {
            let err = unbox(labelled(VALUE, b), &t).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Type);
        }
    }

    #[test]
    fn a_scan_finds_the_senders_references_at_any_depth_and_nothing_else() {
        let pack = |n: i128| IdPack {
            name: "builtins.object".into(),
            class_id: 1,
            instance_id: n,
        };
        let boxed = labelled(
            TUPLE,
            Brine::Tuple(vec![
                mine(&pack(1)),
                labelled(VALUE, Brine::Tuple(vec![Brine::Int(4), pack(9).to_brine()])),
                yours(&pack(8)),
                labelled(TUPLE, Brine::Tuple(vec![mine(&pack(2)), mine(&pack(1))])),
            ]),
        );
        let bytes = boxed.encode();
        let mut cursor = Cursor::new(&bytes);
        let mut found = Vec::new();
        scan_mine(&mut cursor, 0, &mut |p| found.push(p.instance_id)).unwrap();
        cursor.finish().unwrap();
        assert_eq!(found, [1, 2, 1]);
        // Not boxing at all: walked past, nothing found.
        let bytes = Brine::Tuple(vec![Brine::None; 3]).encode();
        let mut cursor = Cursor::new(&bytes);
        scan_mine(&mut cursor, 0, &mut |_| panic!("no reference")).unwrap();
        cursor.finish().unwrap();
        // Bad brine is an error.
        let mut cursor = Cursor::new(&[0x11, 0x54, 0x07]);
        assert!(scan_mine(&mut cursor, 0, &mut drop).is_err());
    }

    #[test]
    fn malformed_boxes_are_protocol_errors() {
        let t = Table::default();
        for b in [
            Brine::Int(1),
            Brine::Tuple(vec![Brine::Int(9), Brine::None]),
            labelled(TUPLE, Brine::None),
            labelled(MINE, Brine::Int(3)),
        ] {
            assert_eq!(unbox(b, &t).unwrap_err().kind(), ErrorKind::Protocol);
        }
    }
}
