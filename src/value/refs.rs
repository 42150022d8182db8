//! Object references through serde: `Serialize` and `Deserialize` for
//! [`NetRef`], understood by tether's own [`to_value`](super::to_value) and
//! [`from_value`](super::from_value) and refused by every other format.
//!
//! # The trick
//!
//! serde's data model has no "opaque handle" type, and a serializer only sees
//! `&T` with `T` erased, so tether's `Value` serializer cannot recognize a
//! `NetRef` by its type. Like `serde_json`'s `RawValue`, a `NetRef` instead
//! announces itself as a newtype struct with a private magic name,
//! [`TOKEN`], and hands the reference over out of band, through a
//! thread-local slot:
//!
//! - **Serialize.** `NetRef::serialize` calls
//!   `serialize_newtype_struct(TOKEN, &Outbound(self))`. Tether's serializer
//!   recognizes `TOKEN`, *arms* the outgoing slot ([`catch`]) and serializes
//!   the `Outbound`; `Outbound::serialize` sees the armed slot, drops a clone
//!   of the reference into it, and tether's serializer takes it back out as
//!   `Value::Ref`. Any other serializer (bincode, serde_json, serde's own
//!   buffering) does not arm the slot, so `Outbound::serialize` refuses with
//!   [`NOT_DATA`] instead of writing a meaningless number.
//! - **Deserialize.** `NetRef::deserialize` calls
//!   `deserialize_newtype_struct(TOKEN, NetRefVisitor)`. Tether's deserializer,
//!   holding a `Value::Ref(r)`, puts `r` into the incoming slot for the
//!   duration of `visitor.visit_newtype_struct(..)` ([`hand_over`]), and
//!   `NetRefVisitor` takes it out ([`take`]). Anywhere else the slot is empty
//!   and the visitor fails with [`NOT_REF`]. A `Value::Ref` read with
//!   `deserialize_any` is handed over the same way, and `Value`'s own visitor
//!   takes the slot in `visit_newtype_struct`: that is how
//!   `from_value::<Value>` returns references unchanged. Any other visitor
//!   refuses the newtype ("an object reference cannot be converted by value").
//!
//! Each slot holds at most one reference, and only for the span of one call
//! that tether's serializer or deserializer makes: while the outgoing slot is
//! armed only `Outbound::serialize` runs, and while the incoming slot is
//! filled only the visitor being fed runs. So a reference is not picked up by
//! the wrong reader, nested `to_value`/`from_value` calls (from inside a
//! `Serialize` or `Deserialize` impl) work, and a guard restores the slot on
//! every exit, error or panic, so the slot never keeps a reference alive.
//!
//! # Limits
//!
//! - serde *buffers* the input of `#[serde(untagged)]` and internally tagged
//!   (`#[serde(tag = "..")]`) enums and of structs with `#[serde(flatten)]`
//!   fields into its private `Content` type before deserializing it. `Content`
//!   is plain data and cannot hold a reference, so from_value fails with a
//!   clear error ("... cannot hold object references") when a reference is
//!   found in such input, rather than inventing data. Serializing those types
//!   works except for a `NetRef` directly inside an internally tagged newtype
//!   variant (serde's tagging wrapper sees it, and it fails with `NOT_DATA`).
//! - A reference cannot be converted through any other serde format, even
//!   from inside a `to_value` call; that is the point.
//! - Only the private, unnameable-by-accident name `TOKEN` triggers any of
//!   this; a type that spells that name itself gets an error, not a reference.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};

use crate::netref::NetRef;

/// The newtype name a `NetRef` uses to announce itself to tether's serde code.
pub(super) const TOKEN: &str = "$tether::private::NetRef";

/// Why a `NetRef` refuses a serializer other than tether's.
pub(super) const NOT_DATA: &str =
    "a tether NetRef can only be converted with tether::to_value (it is a reference, not data)";

/// Why a `NetRef` cannot come from a deserializer other than tether's.
pub(super) const NOT_REF: &str =
    "a tether NetRef can only be produced by tether::from_value from a Value::Ref \
     (it is a reference, not data)";

/// State of the outgoing slot: between `catch` arming it and taking it back,
/// `Outbound::serialize` fills it.
enum Outgoing {
    Idle,
    Armed,
    Caught(NetRef),
}

thread_local! {
    static OUTGOING: RefCell<Outgoing> = const { RefCell::new(Outgoing::Idle) };
    static INCOMING: RefCell<Option<NetRef>> = const { RefCell::new(None) };
}

/// Restores the outgoing slot to its previous state when dropped.
struct Disarm(Option<Outgoing>);

impl Disarm {
    /// Restore the previous state now and return the current one.
    fn finish(mut self) -> Outgoing {
        let prev = self.0.take().unwrap_or(Outgoing::Idle);
        OUTGOING.with(|slot| slot.replace(prev))
    }
}

impl Drop for Disarm {
    fn drop(&mut self) {
        if let Some(prev) = self.0.take() {
            // Dropped outside the borrow: a NetRef's drop may do work.
            let left = OUTGOING.with(|slot| slot.replace(prev));
            drop(left);
        }
    }
}

/// Run `serialize`, which serializes the value a `NetRef` passed along with
/// [`TOKEN`], with the outgoing slot armed; the reference it deposited, if any.
pub(super) fn catch<T, E>(serialize: impl FnOnce() -> Result<T, E>) -> Result<Option<NetRef>, E> {
    let guard = Disarm(Some(OUTGOING.with(|slot| slot.replace(Outgoing::Armed))));
    let result = serialize();
    let state = guard.finish();
    result?;
    Ok(match state {
        Outgoing::Caught(r) => Some(r),
        Outgoing::Idle | Outgoing::Armed => None,
    })
}

/// Empties the incoming slot (back to its previous content) when dropped.
struct Reclaim(Option<Option<NetRef>>);

impl Drop for Reclaim {
    fn drop(&mut self) {
        if let Some(prev) = self.0.take() {
            let left = INCOMING.with(|slot| slot.replace(prev));
            drop(left);
        }
    }
}

/// Run `visit` with `r` in the incoming slot, for the visitor to
/// [`take`]; whatever it leaves there is dropped afterwards.
pub(super) fn hand_over<T>(r: NetRef, visit: impl FnOnce() -> T) -> T {
    let _reclaim = Reclaim(Some(INCOMING.with(|slot| slot.replace(Some(r)))));
    visit()
}

/// Take the reference being handed over, if any.
pub(super) fn take() -> Option<NetRef> {
    INCOMING.with(|slot| slot.take())
}

/// True while a reference is being handed over and not yet taken.
pub(super) fn handing_over() -> bool {
    INCOMING.with(|slot| slot.borrow().is_some())
}

/// A reference on its way into tether's serializer (see the module docs).
struct Outbound<'a>(&'a NetRef);

impl Serialize for Outbound<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let caught = OUTGOING.with(|slot| {
            let mut slot = slot.borrow_mut();
            match *slot {
                Outgoing::Armed => {
                    *slot = Outgoing::Caught(self.0.clone());
                    true
                }
                Outgoing::Idle | Outgoing::Caught(_) => false,
            }
        });
        if caught {
            // Tether's serializer discards this and takes the slot instead.
            serializer.serialize_unit()
        } else {
            Err(ser::Error::custom(NOT_DATA))
        }
    }
}

/// Becomes `Value::Ref` (the same reference) in [`to_value`](super::to_value);
/// an error with any other serializer.
impl Serialize for NetRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(TOKEN, &Outbound(self))
    }
}

/// Comes from a `Value::Ref` (the same reference) in
/// [`from_value`](super::from_value); an error anywhere else.
impl<'de> Deserialize<'de> for NetRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NetRef, D::Error> {
        deserializer.deserialize_newtype_struct(TOKEN, NetRefVisitor)
    }
}

/// Takes the reference tether's deserializer hands over.
struct NetRefVisitor;

impl<'de> Visitor<'de> for NetRefVisitor {
    type Value = NetRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only other deserializers show this (tether's own says "object").
        f.write_str(
            "an object reference (a tether NetRef, which only tether::from_value \
             can produce, from a Value::Ref)",
        )
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, _: D) -> Result<NetRef, D::Error> {
        take().ok_or_else(|| de::Error::custom(NOT_REF))
    }
}

/// True when neither slot holds or expects a reference.
#[cfg(test)]
pub(super) fn slots_are_empty() -> bool {
    OUTGOING.with(|slot| matches!(*slot.borrow(), Outgoing::Idle)) && !handing_over()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    use serde::{Deserialize, Serialize};

    use super::{slots_are_empty, NOT_DATA, NOT_REF};
    use crate::netref::{NetRef, Target};
    use crate::service::object::Object;
    use crate::value::{from_value, to_value, Value};
    use crate::ErrorKind;

    struct Thing(&'static str);
    impl Object for Thing {
        fn type_name(&self) -> &str {
            self.0
        }
    }

    fn thing(name: &'static str) -> NetRef {
        NetRef::new(Thing(name))
    }

    /// How many handles share the local object behind `r` (`r` included).
    fn handles(r: &NetRef) -> usize {
        match &r.target {
            Target::Local(local) => Arc::strong_count(local),
            Target::Remote(proxy) => Arc::strong_count(proxy),
        }
    }

    fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    /// Is `a` the very same reference as `b` (not just an equal-looking one)?
    fn same(a: &NetRef, b: &NetRef) {
        assert_eq!(a, b);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Job {
        name: String,
        target: NetRef,
        helpers: Vec<NetRef>,
        backup: Option<NetRef>,
        pair: (NetRef, i32),
        by_name: BTreeMap<String, NetRef>,
    }

    #[test]
    fn struct_with_refs_round_trips_with_identity() {
        let (a, b, c) = (thing("A"), thing("B"), thing("C"));
        let job = Job {
            name: "j".into(),
            target: a.clone(),
            helpers: vec![b.clone(), a.clone()],
            backup: Some(c.clone()),
            pair: (b.clone(), 7),
            by_name: [("c".to_owned(), c.clone())].into_iter().collect(),
        };
        let value = to_value(&job).unwrap();
        assert_eq!(value.get("name"), Some(&s("j")));
        same(value.get("target").unwrap().as_ref().unwrap(), &a);
        assert_eq!(
            value.get("helpers"),
            Some(&Value::List(vec![
                Value::Ref(b.clone()),
                Value::Ref(a.clone())
            ]))
        );
        assert_eq!(value.get("backup"), Some(&Value::Ref(c.clone())));
        assert_eq!(
            value.get("pair"),
            Some(&Value::List(vec![Value::Ref(b.clone()), Value::Int(7)]))
        );
        let back: Job = from_value(value).unwrap();
        assert_eq!(back, job);
        same(&back.target, &a);
        same(back.backup.as_ref().unwrap(), &c);
        assert_ne!(back.target, b);
        drop((job, back));
        // Only our own handles are left: the slots kept nothing.
        assert_eq!((handles(&a), handles(&b), handles(&c)), (1, 1, 1));
        assert!(slots_are_empty());
    }

    #[test]
    fn containers_of_refs() {
        let (a, b) = (thing("A"), thing("B"));
        let refs = vec![a.clone(), b.clone()];
        let value = to_value(&refs).unwrap();
        assert_eq!(
            value,
            Value::List(vec![Value::Ref(a.clone()), Value::Ref(b.clone())])
        );
        assert_eq!(from_value::<Vec<NetRef>>(value).unwrap(), refs);

        assert_eq!(to_value(&Some(a.clone())).unwrap(), Value::Ref(a.clone()));
        assert_eq!(to_value(&None::<NetRef>).unwrap(), Value::None);
        assert_eq!(
            from_value::<Option<NetRef>>(Value::Ref(a.clone())).unwrap(),
            Some(a.clone())
        );
        assert_eq!(from_value::<Option<NetRef>>(Value::None).unwrap(), None);

        let map: HashMap<String, NetRef> = [("a".to_owned(), a.clone())].into_iter().collect();
        let value = to_value(&map).unwrap();
        assert_eq!(value, Value::Map(vec![(s("a"), Value::Ref(a.clone()))]));
        assert_eq!(from_value::<HashMap<String, NetRef>>(value).unwrap(), map);

        let tuple = (1u8, a.clone(), "x".to_owned(), b.clone());
        let value = to_value(&tuple).unwrap();
        assert_eq!(
            value,
            Value::List(vec![
                Value::Int(1),
                Value::Ref(a.clone()),
                s("x"),
                Value::Ref(b.clone())
            ])
        );
        assert_eq!(
            from_value::<(u8, NetRef, String, NetRef)>(value).unwrap(),
            tuple
        );

        // A reference may sit behind a Box (or any other forwarding wrapper).
        let boxed = to_value(&Box::new(a.clone())).unwrap();
        assert_eq!(
            from_value::<Box<NetRef>>(boxed).unwrap(),
            Box::new(a.clone())
        );
        drop((refs, map, tuple));
        assert_eq!((handles(&a), handles(&b)), (1, 1));
        assert!(slots_are_empty());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Handle(NetRef);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder(Value);

    #[test]
    fn value_with_nested_refs_round_trips() {
        let (a, b) = (thing("A"), thing("B"));
        let value = Value::Map(vec![
            (s("one"), Value::Ref(a.clone())),
            (
                s("more"),
                Value::List(vec![
                    Value::Int(1),
                    Value::Ref(b.clone()),
                    Value::Map(vec![(Value::Ref(a.clone()), Value::Ref(b.clone()))]),
                ]),
            ),
        ]);
        assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
        assert_eq!(to_value(&value).unwrap(), value);
        assert_eq!(
            from_value::<Value>(to_value(&value).unwrap()).unwrap(),
            value
        );
        assert_eq!(
            from_value::<Value>(Value::Ref(a.clone())).unwrap(),
            Value::Ref(a.clone())
        );
        // Through newtypes, a Vec<Value> and an Option<Value> too.
        assert_eq!(
            from_value::<Handle>(Value::Ref(a.clone())).unwrap(),
            Handle(a.clone())
        );
        assert_eq!(to_value(&Handle(a.clone())).unwrap(), Value::Ref(a.clone()));
        let held = Holder(Value::Ref(b.clone()));
        assert_eq!(
            from_value::<Holder>(to_value(&held).unwrap()).unwrap(),
            held
        );
        let list = Value::List(vec![Value::Ref(a.clone()), Value::None]);
        assert_eq!(
            from_value::<Vec<Option<Value>>>(list).unwrap(),
            vec![Some(Value::Ref(a.clone())), None]
        );
        drop((value, held));
        assert_eq!((handles(&a), handles(&b)), (1, 1));
        assert!(slots_are_empty());
    }

    #[test]
    fn other_serializers_refuse_refs() {
        let a = thing("A");
        let config = bincode::config::standard();
        let err = bincode::serde::encode_to_vec(&a, config).unwrap_err();
        assert!(err.to_string().contains(NOT_DATA), "{err}");
        // Inside a struct, and as a Value::Ref, too.
        let job = Handle(a.clone());
        let err = bincode::serde::encode_to_vec(&job, config).unwrap_err();
        assert!(err.to_string().contains(NOT_DATA), "{err}");
        let value = Value::List(vec![Value::Int(1), Value::Ref(a.clone())]);
        let err = bincode::serde::encode_to_vec(&value, config).unwrap_err();
        assert!(err.to_string().contains(NOT_DATA), "{err}");
        // Even from inside a to_value call.
        struct Sneaky(NetRef);
        impl Serialize for Sneaky {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let bytes = bincode::serde::encode_to_vec(&self.0, bincode::config::standard())
                    .map_err(serde::ser::Error::custom)?;
                s.serialize_bytes(&bytes)
            }
        }
        let err = to_value(&Sneaky(a.clone())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        assert!(err.message().contains(NOT_DATA), "{}", err.message());
        drop((job, value));
        assert_eq!(handles(&a), 1);
        assert!(slots_are_empty());
    }

    #[test]
    fn other_deserializers_refuse_refs() {
        let config = bincode::config::standard();
        let err = bincode::serde::decode_from_slice::<NetRef, _>(&[0], config).unwrap_err();
        assert!(err.to_string().contains(NOT_REF), "{err}");
        let err = bincode::serde::decode_from_slice::<Handle, _>(&[5], config).unwrap_err();
        assert!(err.to_string().contains(NOT_REF), "{err}");
        // serde's in-memory deserializers as well.
        use serde::de::IntoDeserializer;
        let de = IntoDeserializer::<serde::de::value::Error>::into_deserializer(3u64);
        let err = NetRef::deserialize(de).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid type: integer `3`, expected an object reference (a tether NetRef, \
             which only tether::from_value can produce, from a Value::Ref)"
        );
        assert!(slots_are_empty());
    }

    /// Serializes a struct holding a reference by converting it with a nested
    /// `to_value` first.
    struct Nested {
        inner: Handle,
        also: NetRef,
    }

    impl Serialize for Nested {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeStruct;
            let inner = to_value(&self.inner).map_err(serde::ser::Error::custom)?;
            let mut st = s.serialize_struct("Nested", 3)?;
            st.serialize_field("also", &self.also)?;
            st.serialize_field("inner", &inner)?;
            // And one more nested call between two fields.
            let again = from_value::<NetRef>(to_value(&self.also).unwrap()).unwrap();
            st.serialize_field("again", &again)?;
            st.end()
        }
    }

    #[test]
    fn nested_to_value_and_from_value() {
        let (a, b) = (thing("A"), thing("B"));
        let nested = Nested {
            inner: Handle(a.clone()),
            also: b.clone(),
        };
        let value = to_value(&nested).unwrap();
        assert_eq!(
            value,
            Value::Map(vec![
                (s("also"), Value::Ref(b.clone())),
                (s("inner"), Value::Ref(a.clone())),
                (s("again"), Value::Ref(b.clone())),
            ])
        );

        /// Reads its reference through a nested `from_value`.
        #[derive(Debug)]
        struct Reader(NetRef, NetRef);
        impl<'de> Deserialize<'de> for Reader {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reader, D::Error> {
                let (first, rest): (NetRef, Value) = Deserialize::deserialize(d)?;
                let second = from_value::<Handle>(rest).map_err(serde::de::Error::custom)?;
                Ok(Reader(first, second.0))
            }
        }
        let pair = Value::List(vec![Value::Ref(a.clone()), Value::Ref(b.clone())]);
        let reader = from_value::<Reader>(pair).unwrap();
        same(&reader.0, &a);
        same(&reader.1, &b);
        drop((nested, value, reader));
        assert_eq!((handles(&a), handles(&b)), (1, 1));
        assert!(slots_are_empty());
    }

    /// Fails to serialize.
    struct Broken;
    impl Serialize for Broken {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("broken on purpose"))
        }
    }

    /// Panics when serialized.
    struct Bomb;
    impl Serialize for Bomb {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            panic!("bomb")
        }
    }

    #[test]
    fn nothing_is_left_behind_after_errors_and_panics() {
        #[derive(Serialize)]
        struct Half {
            first: NetRef,
            second: Broken,
        }
        let a = thing("A");
        let err = to_value(&Half {
            first: a.clone(),
            second: Broken,
        })
        .unwrap_err();
        assert_eq!(err.message(), "broken on purpose");
        assert!(slots_are_empty());
        assert_eq!(handles(&a), 1);

        #[derive(Serialize)]
        struct Boom {
            first: NetRef,
            second: Bomb,
        }
        let boom = Boom {
            first: a.clone(),
            second: Bomb,
        };
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| to_value(&boom)));
        assert!(caught.is_err());
        assert!(slots_are_empty());
        drop(boom);
        assert_eq!(handles(&a), 1);

        // Deserializing: a reference read, then a bad field.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Pair {
            first: NetRef,
            second: i32,
        }
        let value = Value::Map(vec![
            (s("first"), Value::Ref(a.clone())),
            (s("second"), s("2")),
        ]);
        let err = from_value::<Pair>(value).unwrap_err();
        assert_eq!(err.message(), "expected int, got str");
        assert!(slots_are_empty());
        assert_eq!(handles(&a), 1);

        // Everything still works afterwards.
        assert_eq!(to_value(&a).unwrap(), Value::Ref(a.clone()));
    }

    #[test]
    fn a_ref_field_given_data_is_a_type_error() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Job {
            target: NetRef,
        }
        let err = from_value::<Job>(Value::Map(vec![(s("target"), Value::Int(3))])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        assert_eq!(err.message(), "expected object, got int");
        let err = from_value::<NetRef>(s("x")).unwrap_err();
        assert_eq!(err.message(), "expected object, got str");
        let err = from_value::<Vec<NetRef>>(Value::List(vec![Value::None])).unwrap_err();
        assert_eq!(err.message(), "expected object, got none");
        let err = from_value::<Job>(Value::Map(vec![])).unwrap_err();
        assert_eq!(err.message(), "missing field `target`");
        // And data fields given a reference still refuse it.
        let err = from_value::<Vec<i32>>(Value::List(vec![Value::Ref(thing("A"))])).unwrap_err();
        assert_eq!(
            err.message(),
            "an object reference cannot be converted by value (expected int)"
        );
        assert!(slots_are_empty());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Either {
        Num(i64),
        Obj(NetRef),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    enum Tagged {
        Job { target: NetRef },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Flat {
        name: String,
        #[serde(flatten)]
        rest: HashMap<String, NetRef>,
    }

    #[test]
    fn buffered_enums_and_flatten_refuse_refs_clearly() {
        let a = thing("A");
        // Serializing does not buffer: these work.
        assert_eq!(
            to_value(&Either::Obj(a.clone())).unwrap(),
            Value::Ref(a.clone())
        );
        let tagged = to_value(&Tagged::Job { target: a.clone() }).unwrap();
        assert_eq!(
            tagged,
            Value::Map(vec![
                (s("kind"), s("Job")),
                (s("target"), Value::Ref(a.clone()))
            ])
        );
        let flat = Flat {
            name: "n".into(),
            rest: [("r".to_owned(), a.clone())].into_iter().collect(),
        };
        let flat_value = to_value(&flat).unwrap();
        assert_eq!(
            flat_value,
            Value::Map(vec![(s("name"), s("n")), (s("r"), Value::Ref(a.clone()))])
        );

        // Deserializing buffers into serde's Content, which cannot hold a
        // reference: a clear error, never a made-up value.
        let expected = "an object reference cannot be converted by value (expected any value): \
                        serde's buffered content (untagged or internally tagged enums, \
                        flattened fields) cannot hold object references";
        assert_eq!(from_value::<Either>(Value::Int(3)).unwrap(), Either::Num(3));
        let err = from_value::<Either>(Value::Ref(a.clone())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        assert_eq!(err.message(), expected);
        assert_eq!(
            from_value::<Tagged>(tagged).unwrap_err().message(),
            expected
        );
        assert_eq!(
            from_value::<Flat>(flat_value).unwrap_err().message(),
            expected
        );
        // A buffered NetRef field given plain data fails too.
        let err = from_value::<Tagged>(Value::Map(vec![
            (s("kind"), s("Job")),
            (s("target"), Value::Int(1)),
        ]))
        .unwrap_err();
        assert_eq!(err.message(), NOT_REF);

        drop(flat);
        assert_eq!(handles(&a), 1);
        assert!(slots_are_empty());
    }

    #[test]
    fn internally_tagged_newtype_of_a_ref_is_refused() {
        #[derive(Serialize)]
        #[serde(tag = "kind")]
        enum Wrapped {
            Obj(NetRef),
        }
        let a = thing("A");
        let err = to_value(&Wrapped::Obj(a.clone())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        assert_eq!(err.message(), NOT_DATA);
        assert_eq!(handles(&a), 1);
        assert!(slots_are_empty());
    }

    #[test]
    fn the_private_name_alone_does_not_make_a_ref() {
        /// Spells the private name without being a NetRef.
        struct Impostor;
        impl Serialize for Impostor {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_newtype_struct(super::TOKEN, &5u8)
            }
        }
        let err = to_value(&Impostor).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type);
        assert!(slots_are_empty());

        /// Reads the private name, wanting a number.
        #[derive(Debug)]
        struct Reader;
        impl<'de> Deserialize<'de> for Reader {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reader, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Reader;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a number")
                    }
                }
                d.deserialize_newtype_struct(super::TOKEN, V)
            }
        }
        let a = thing("A");
        let err = from_value::<Reader>(Value::Ref(a.clone())).unwrap_err();
        assert_eq!(
            err.message(),
            "an object reference cannot be converted by value (expected a number)"
        );
        assert_eq!(handles(&a), 1);
        assert!(slots_are_empty());
    }
}
