//! What the shell is connected to: a tether peer or a Python RPyC server.
//!
//! Both hand out ordinary [`tether::NetRef`]s; they differ in what the
//! peer is called, in how an object's members are listed (tether declares
//! them with signatures; Python has `dir` and RPyC's INSPECT, which lists
//! only the methods of an object's class) and in what the shell offers
//! beyond `root` (`modules` on a classic RPyC server).

use std::collections::BTreeMap;

use tether::blocking::{self, Connection, RpycSession};
use tether::{Member, MemberKind, Value};

/// A connection with a root object.
#[derive(Debug)]
pub enum Peer {
    /// A tether server.
    Tether(Connection),
    /// A Python RPyC server (`rpyc_classic`, or a `rpyc.Service`).
    Rpyc(RpycSession),
}

/// What RPyC's default policy (`allow_exposed_attrs`) lets a client name
/// without: `root.add` reaches a service's `exposed_add`.
const EXPOSED_PREFIX: &str = "exposed_";

impl Peer {
    /// The peer's root object.
    pub fn root(&self) -> tether::Result<blocking::NetRef> {
        match self {
            Peer::Tether(conn) => conn.root(),
            Peer::Rpyc(session) => session.root(),
        }
    }

    /// `netref`, for blocking use.
    pub fn wrap(&self, netref: tether::NetRef) -> blocking::NetRef {
        match self {
            Peer::Tether(conn) => conn.wrap(netref),
            Peer::Rpyc(session) => session.wrap(netref),
        }
    }

    /// True once the connection is gone.
    pub fn is_closed(&self) -> bool {
        match self {
            Peer::Tether(conn) => conn.as_async().is_closed(),
            Peer::Rpyc(session) => session.is_closed(),
        }
    }

    /// What the banner calls the peer: the service name of a tether peer
    /// (from the handshake); a Python service's `get_service_name()`
    /// (`SLAVE` for `rpyc_classic`).
    pub fn describe(&self, root: &blocking::NetRef) -> String {
        match self {
            Peer::Tether(conn) => conn.as_async().peer_service().to_string(),
            Peer::Rpyc(_) => match root.call_method("get_service_name", ()) {
                Ok(Value::Str(name)) => format!("the Python RPyC service {name}"),
                _ => "a Python RPyC server".to_string(),
            },
        }
    }

    /// Variables the shell starts with besides `root`: on a classic RPyC
    /// server (whose root has `getmodule`), `modules`, as Python's
    /// `conn.modules`: `modules.sys` imports `sys` on the server.
    pub fn extra_vars(&self, root: &blocking::NetRef) -> BTreeMap<String, Value> {
        let mut vars = BTreeMap::new();
        if let Peer::Rpyc(_) = self {
            if let Ok(modules) = classic_modules(root) {
                vars.insert("modules".to_string(), Value::from(modules));
            }
        }
        vars
    }

    /// The members of `object`: tether's declared ones; for a Python
    /// object, the public names of its `dir()` (a service's `exposed_`
    /// names without the prefix), methods where INSPECT lists them as
    /// callable, attributes otherwise.
    pub fn members(&self, object: &blocking::NetRef) -> tether::Result<Vec<Member>> {
        match self {
            Peer::Tether(_) => object.inspect(),
            Peer::Rpyc(_) => {
                let methods = object.inspect()?;
                let mut members: BTreeMap<String, Member> = BTreeMap::new();
                for name in object.dir()? {
                    let short = name.strip_prefix(EXPOSED_PREFIX).unwrap_or(&name);
                    if short.starts_with('_') || members.contains_key(short) {
                        continue;
                    }
                    let member = match methods.iter().find(|m| m.name == name) {
                        Some(m) => Member {
                            name: short.to_string().into(),
                            ..m.clone()
                        },
                        None => Member {
                            name: short.to_string().into(),
                            // Neither its type nor whether the server lets
                            // it be assigned is known without reading it.
                            kind: MemberKind::Attribute { writable: false },
                            signature: "".into(),
                            doc: "".into(),
                        },
                    };
                    members.insert(short.to_string(), member);
                }
                Ok(members.into_values().collect())
            }
        }
    }

    /// A Python object's `__doc__`, when it has one.
    pub fn doc(&self, object: &blocking::NetRef) -> Option<String> {
        match self {
            Peer::Tether(_) => None,
            Peer::Rpyc(_) => match object.getattr("__doc__") {
                Ok(Value::Str(doc)) if !doc.trim().is_empty() => Some(clean_doc(&doc)),
                _ => None,
            },
        }
    }
}

/// A `ModuleNamespace` on the server (RPyC's own class, the one behind
/// Python's `conn.modules`), importing with the root's `getmodule`.
fn classic_modules(root: &blocking::NetRef) -> tether::Result<blocking::NetRef> {
    let getmodule = root.getattr("getmodule")?;
    let service = root.wrap_value(root.call_method("getmodule", ("rpyc.core.service",))?)?;
    root.wrap_value(service.call_method("ModuleNamespace", (getmodule,))?)
}

/// A docstring as Python's `inspect.cleandoc` shows it: the first line
/// stripped, the others dedented by their common indentation.
fn clean_doc(doc: &str) -> String {
    let mut lines = doc.trim().lines();
    let first = lines.next().unwrap_or("").trim();
    let rest: Vec<&str> = lines.collect();
    let indent = rest
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    std::iter::once(first)
        .chain(
            rest.iter()
                .map(|l| l.get(indent..).unwrap_or("").trim_end()),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::clean_doc;

    #[test]
    fn docstrings_are_dedented_as_python_shows_them() {
        let doc = "Join two paths.\n        If one is absolute,\n          the other goes.\n\n    ";
        assert_eq!(
            clean_doc(doc),
            "Join two paths.\nIf one is absolute,\n  the other goes."
        );
        assert_eq!(clean_doc("\n  One line.  "), "One line.");
    }
}
