//! A result or a fault as an XML-RPC `methodResponse`.
//!
//! Written by hand: the format is small and fixed. Text is escaped, `\r`
//! included (so it survives the reader's line-end normalisation);
//! characters XML 1.0 cannot carry at all (most control characters) make
//! the response a fault instead of a document no client can read.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::gateway::fault::{Fault, FaultKind};
use crate::Value;

const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// The response carrying `result`, or the fault it cannot be sent as.
pub(crate) fn response(result: &Value) -> Result<String, Fault> {
    let mut out = String::from(HEADER);
    out.push_str("<methodResponse>\n<params>\n<param>\n");
    value(&mut out, result)?;
    out.push_str("\n</param>\n</params>\n</methodResponse>\n");
    Ok(out)
}

/// The response carrying `fault` as `{faultCode, faultString}`.
pub(crate) fn fault(fault: &Fault) -> String {
    let mut out = String::from(HEADER);
    out.push_str("<methodResponse>\n<fault>\n");
    let detail = Value::map([
        ("faultCode", Value::Int(fault.kind().xml_code())),
        ("faultString", Value::from(fault.message())),
    ]);
    if value(&mut out, &detail).is_err() {
        // The message held characters XML cannot carry; send it without them.
        let clean: String = fault.message().chars().filter(|&c| xml_char(c)).collect();
        let detail = Value::map([
            ("faultCode", Value::Int(fault.kind().xml_code())),
            ("faultString", Value::Str(clean)),
        ]);
        let _ = value(&mut out, &detail);
    }
    out.push_str("\n</fault>\n</methodResponse>\n");
    out
}

fn value(out: &mut String, v: &Value) -> Result<(), Fault> {
    out.push_str("<value>");
    match v {
        Value::None => out.push_str("<nil/>"),
        Value::Bool(b) => {
            let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::Int(n) if i32::try_from(*n).is_ok() => {
            let _ = write!(out, "<int>{n}</int>");
        }
        // Beyond XML-RPC's 32 bits: the common extension, which Python reads.
        Value::Int(n) => {
            let _ = write!(out, "<i8>{n}</i8>");
        }
        Value::Float(x) => {
            let _ = write!(out, "<double>{x:?}</double>");
        }
        Value::Str(s) => {
            out.push_str("<string>");
            text(out, s)?;
            out.push_str("</string>");
        }
        Value::Bytes(b) => {
            out.push_str("<base64>");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push_str("</base64>");
        }
        Value::DateTime(t) => {
            let _ = write!(
                out,
                "<dateTime.iso8601>{}</dateTime.iso8601>",
                t.to_xmlrpc()
            );
        }
        Value::List(items) => {
            out.push_str("<array><data>\n");
            for item in items {
                value(out, item)?;
                out.push('\n');
            }
            out.push_str("</data></array>");
        }
        Value::Map(pairs) => {
            out.push_str("<struct>\n");
            for (key, item) in pairs {
                let Value::Str(name) = key else {
                    return Err(Fault::new(
                        FaultKind::Internal,
                        format!(
                            "a struct's member names must be strings, not {} ({key})",
                            key.type_name()
                        ),
                    ));
                };
                out.push_str("<member><name>");
                text(out, name)?;
                out.push_str("</name>");
                value(out, item)?;
                out.push_str("</member>\n");
            }
            out.push_str("</struct>");
        }
        Value::Ref(r) => {
            return Err(Fault::new(
                FaultKind::Internal,
                format!("{r:?} is an object; the gateway passes values only"),
            ))
        }
    }
    out.push_str("</value>");
    Ok(())
}

/// `s` as escaped character data.
fn text(out: &mut String, s: &str) -> Result<(), Fault> {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char(c) => out.push(c),
            c => {
                return Err(Fault::new(
                    FaultKind::Internal,
                    format!(
                        "the text holds U+{:04X}, which XML 1.0 cannot carry; send such data as bytes (base64)",
                        c as u32
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// Whether XML 1.0 allows `c` in a document.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::xmlrpc::decode;

    /// Encode `v` as the only parameter of a call and decode it back.
    fn round_trip(v: &Value) -> Value {
        let response = response(v).unwrap();
        let body = response
            .replace("methodResponse", "methodCall")
            .replace("<methodCall>\n", "<methodCall><methodName>m</methodName>");
        decode::method_call(body.as_bytes(), 32)
            .unwrap()
            .params
            .remove(0)
    }

    #[test]
    fn values_survive_a_round_trip() {
        for v in [
            Value::None,
            Value::Bool(false),
            Value::Int(-3),
            Value::Int(1 << 40),
            Value::Float(0.1),
            Value::Float(-2.0),
            Value::from("a < b & c > d\r\n\ttab"),
            Value::Bytes(vec![0, 255, 7].into()),
            Value::List(vec![Value::from(1), Value::List(vec![])]),
            Value::map([("name", Value::from("Arthur")), ("x", Value::None)]),
        ] {
            assert_eq!(round_trip(&v), v);
        }
    }

    #[test]
    fn what_xml_cannot_carry_is_a_fault() {
        let fault = response(&Value::from("bell \u{7}")).unwrap_err();
        assert_eq!(fault.kind(), FaultKind::Internal);
        assert!(fault.message().contains("U+0007"), "{fault}");
        let fault = response(&Value::Map(vec![(Value::Int(1), Value::None)])).unwrap_err();
        assert!(fault.message().contains("must be strings"), "{fault}");
    }

    #[test]
    fn faults_carry_code_and_string() {
        let xml = fault(&Fault::new(FaultKind::MethodNotFound, "no method 'x'"));
        assert!(xml.contains("<name>faultCode</name><value><int>-32601</int></value>"));
        assert!(xml.contains("<string>Method not found: no method 'x'</string>"));
    }
}
