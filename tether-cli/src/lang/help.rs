//! `help(x)`: what a remote object or method offers, from the members
//! its owner declares (signatures and docs).

use tether::{Member, MemberKind};

/// `name(signature)` or `name: type`, then the doc, indented; a bare name
/// for a member with neither (a Python attribute).
pub fn member_help(m: &Member) -> String {
    if m.signature.is_empty() && m.doc.trim().is_empty() {
        return m.name.to_string();
    }
    let head = match m.kind {
        MemberKind::Method => format!("{}{}", m.name, m.signature),
        MemberKind::Attribute { writable } => format!(
            "{}: {}  ({})",
            m.name,
            m.signature,
            if writable {
                "writable attribute"
            } else {
                "read-only attribute"
            }
        ),
    };
    let doc = match m.doc.trim() {
        "" => "(no documentation)",
        doc => doc,
    };
    let mut out = head;
    for line in doc.lines() {
        out.push('\n');
        if !line.trim().is_empty() {
            out.push_str("    ");
            out.push_str(line.trim_end());
        }
    }
    out
}

/// Help on an object: its `repr` and doc, then its methods and
/// attributes.
pub fn object_help(repr: &str, doc: Option<&str>, members: &[Member]) -> String {
    if members.is_empty() && doc.is_none() {
        return format!("{repr} exposes no members.");
    }
    let mut out = format!("Help on {repr}:\n");
    for line in doc.iter().flat_map(|doc| doc.lines()) {
        out.push_str(&format!("    {}\n", line.trim_end()).replace("    \n", "\n"));
    }
    for (title, methods) in [("Methods", true), ("Attributes", false)] {
        let group: Vec<&Member> = members
            .iter()
            .filter(|m| (m.kind == MemberKind::Method) == methods)
            .collect();
        if group.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{title}:\n"));
        for m in group {
            for line in member_help(m).lines() {
                if !line.is_empty() {
                    out.push_str("  ");
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
    }
    out.trim_end().to_string()
}
