//! How RPyC names an object sent by reference: `(name_pack, class_id,
//! instance_id)`.
//!
//! For our objects the instance id is the export-table id (a slotmap key,
//! never 0: 0 means "a class" to Python), the class id a stable hash of the
//! name, and the name tells Python which proxy class to build. Callables
//! are labelled `builtins.function` / `builtins.method`, names Python has
//! prepared proxy classes for, so it calls them without asking INSPECT
//! first; other objects are `tether.<TypeName>`, which Python INSPECTs.

use super::brine::Brine;
use super::remote::PyObject;
use crate::netref::{NetRef, Target};

/// One object's RPyC identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct IdPack {
    pub(crate) name: String,
    pub(crate) class_id: i128,
    pub(crate) instance_id: i128,
}

impl IdPack {
    /// The id pack of our object exported under table id `id`.
    pub(crate) fn ours(netref: &NetRef, id: u64) -> IdPack {
        let name = name_for(netref);
        IdPack {
            class_id: class_id(&name),
            name,
            instance_id: id as i128,
        }
    }

    pub(crate) fn to_brine(&self) -> Brine {
        Brine::Tuple(vec![
            Brine::Str(self.name.clone()),
            Brine::Int(self.class_id),
            Brine::Int(self.instance_id),
        ])
    }

    /// Python passes the name through `str()`, so bytes are accepted too.
    pub(crate) fn from_brine(b: &Brine) -> Option<IdPack> {
        let [name, class_id, instance_id] = b.as_tuple()? else {
            return None;
        };
        let name = match name {
            Brine::Str(s) => s.clone(),
            Brine::Bytes(b) => String::from_utf8(b.clone()).ok()?,
            _ => return None,
        };
        match (class_id, instance_id) {
            (Brine::Int(c), Brine::Int(i)) => Some(IdPack {
                name,
                class_id: *c,
                instance_id: *i,
            }),
            _ => None,
        }
    }

    /// Our export-table id, if this names one of our objects.
    pub(crate) fn table_id(&self) -> Option<u64> {
        u64::try_from(self.instance_id).ok()
    }
}

/// The name Python sees for one of our objects.
fn name_for(netref: &NetRef) -> String {
    match &netref.target {
        Target::Local(local) => {
            if let Some(py) = netref.downcast_ref::<PyObject>() {
                // A Python object of another connection, forwarded: keep
                // its own name so Python builds the same kind of proxy.
                return py.id_pack.name.clone();
            }
            match local.object.type_name() {
                "method" => "builtins.method".to_string(),
                "callback" => "builtins.function".to_string(),
                other => format!("tether.{}", sanitize(other)),
            }
        }
        Target::Remote(_) => "tether.proxy".to_string(),
    }
}

/// Python builds a class named after the name pack: keep it an identifier.
fn sanitize(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "object".to_string()
    } else {
        clean
    }
}

/// A stable, non-zero class id per name (FNV-1a, 48 bits).
fn class_id(name: &str) -> i128 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ((hash & 0xffff_ffff_ffff) | 1) as i128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_packs_round_trip_through_brine() {
        let pack = IdPack {
            name: "tether.Calc".into(),
            class_id: class_id("tether.Calc"),
            instance_id: 1 << 32 | 5,
        };
        assert_eq!(IdPack::from_brine(&pack.to_brine()), Some(pack.clone()));
        assert_eq!(pack.table_id(), Some(1 << 32 | 5));
        assert_ne!(pack.class_id, 0);
    }

    #[test]
    fn names_are_identifiers() {
        assert_eq!(sanitize("Vec<u8>"), "Vec_u8_");
        assert_eq!(sanitize(""), "object");
    }

    #[test]
    fn malformed_id_packs_are_rejected() {
        assert_eq!(IdPack::from_brine(&Brine::Int(1)), None);
        assert_eq!(
            IdPack::from_brine(&Brine::Tuple(vec![
                Brine::Int(1),
                Brine::Int(1),
                Brine::Int(1)
            ])),
            None
        );
    }
}
