//! An XML-RPC `methodCall` into a method name and [`Value`] arguments.
//!
//! `quick-xml` reads the events; this file checks their structure against
//! the specification as it goes, with an explicit nesting limit, so a deep
//! or huge document costs a bounded amount of stack. Documents that are not
//! well-formed XML are parse errors (`-32700`); well-formed ones that are
//! not a valid call (unknown types, bad numbers, a `<!DOCTYPE>`, too deep)
//! are invalid requests (`-32600`).

use std::borrow::Cow;

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::gateway::fault::{Fault, FaultKind};
use crate::Value;

/// A decoded `methodCall`.
#[derive(Debug)]
pub(crate) struct MethodCall {
    pub(crate) name: String,
    pub(crate) params: Vec<Value>,
}

/// Decode a request body; values may nest `max_depth` levels.
pub(crate) fn method_call(body: &[u8], max_depth: usize) -> Result<MethodCall, Fault> {
    let text = text_of(body)?;
    let mut parser = Parser {
        reader: Reader::from_str(&text),
        max_depth,
    };
    parser.method_call()
}

/// The body as text, decoded from the encoding its XML declaration names
/// (UTF-8 if none): clients send US-ASCII (Python's `ServerProxy(...,
/// encoding='ascii')`), ISO-8859-1, ISO-8859-15, Windows-1252 and others.
/// Any ASCII-compatible encoding of the WHATWG Encoding Standard is read
/// (`encoding_rs`), except that ISO-8859-1 is read as itself (the standard
/// reads its label as Windows-1252); others are a parse fault.
fn text_of(body: &[u8]) -> Result<Cow<'_, str>, Fault> {
    if body.starts_with(&[0xFF, 0xFE]) || body.starts_with(&[0xFE, 0xFF]) {
        return Err(unsupported("utf-16"));
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let utf8 = |body| {
        std::str::from_utf8(body)
            .map(Cow::Borrowed)
            .map_err(|e| Fault::new(FaultKind::Parse, format!("the request is not UTF-8 ({e})")))
    };
    let Some(label) = declared_encoding(body)? else {
        return utf8(body);
    };
    let label = label.trim().to_ascii_lowercase();
    if matches!(
        label.as_str(),
        "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1"
    ) {
        return Ok(encoding_rs::mem::decode_latin1(body));
    }
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
        .filter(|e| e.is_ascii_compatible() && *e != encoding_rs::REPLACEMENT)
        .ok_or_else(|| unsupported(&label))?;
    if encoding == encoding_rs::UTF_8 {
        return utf8(body);
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(body)
        .ok_or_else(|| {
            Fault::new(
                FaultKind::Parse,
                format!("the request is not valid {}", encoding.name()),
            )
        })
}

fn unsupported(label: &str) -> Fault {
    Fault::new(
        FaultKind::Parse,
        format!(
            "unsupported encoding '{label}': send UTF-8, US-ASCII, ISO-8859-1, \
             ISO-8859-15 or Windows-1252"
        ),
    )
}

/// The encoding the body's XML declaration names, if it has one. Every
/// encoding read here writes the declaration in ASCII, so it is read from
/// the bytes before they are decoded.
fn declared_encoding(body: &[u8]) -> Result<Option<String>, Fault> {
    let mut reader = Reader::from_reader(body);
    let mut buf = Vec::new();
    match reader.read_event_into(&mut buf) {
        Ok(Event::Decl(decl)) => match decl.encoding() {
            None => Ok(None),
            Some(Ok(name)) => Ok(Some(name.into_owned())),
            Some(Err(e)) => Err(Fault::new(FaultKind::Parse, format!("malformed XML: {e}"))),
        },
        // No declaration; a body that is not XML is the parser's to report.
        _ => Ok(None),
    }
}

/// One structural piece of the document.
#[derive(Debug, PartialEq)]
enum Token {
    /// An element opens; `empty` for `<tag/>`, which has no closing token.
    Open {
        name: String,
        empty: bool,
    },
    Close(String),
    /// Character data: text, CDATA, or one resolved reference.
    Text(String),
    Eof,
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    max_depth: usize,
}

fn invalid(why: impl std::fmt::Display) -> Fault {
    Fault::new(FaultKind::InvalidRequest, why)
}

impl Parser<'_> {
    fn method_call(&mut self) -> Result<MethodCall, Fault> {
        match self.structural()? {
            Token::Open { name, empty: false } if name == "methodCall" => {}
            other => return Err(outside_root(&other, "<methodCall>")),
        }
        self.open("methodName")?;
        let name = self.text_until("methodName")?;
        if name.is_empty() {
            return Err(invalid("<methodName> is empty"));
        }
        let mut params = Vec::new();
        match self.structural()? {
            Token::Close(tag) if tag == "methodCall" => {}
            Token::Open { name, empty: true } if name == "params" => self.close("methodCall")?,
            Token::Open { name, empty: false } if name == "params" => {
                loop {
                    match self.structural()? {
                        Token::Open { name, empty: false } if name == "param" => {
                            self.open("value")
                                .and_then(|empty| self.value(empty, 1))
                                .map(|v| params.push(v))?;
                            self.close("param")?;
                        }
                        Token::Close(tag) if tag == "params" => break,
                        other => return Err(unexpected(&other, "<param> or </params>")),
                    }
                }
                self.close("methodCall")?;
            }
            other => return Err(unexpected(&other, "<params> or </methodCall>")),
        }
        match self.structural()? {
            Token::Eof => Ok(MethodCall { name, params }),
            other => Err(outside_root(&other, "the end after </methodCall>")),
        }
    }

    /// The value of a `<value>` element just opened (`empty` for
    /// `<value/>`), at nesting level `depth`.
    fn value(&mut self, empty: bool, depth: usize) -> Result<Value, Fault> {
        if empty {
            return Ok(Value::Str(String::new()));
        }
        // Untyped text is a string; whitespace around a type element is not.
        let mut text = String::new();
        let (ty, empty) = loop {
            match self.token()? {
                Token::Text(t) => text.push_str(&t),
                Token::Close(tag) if tag == "value" => return Ok(Value::Str(text)),
                Token::Open { name, empty } if is_blank(&text) => break (name, empty),
                Token::Open { name, .. } => {
                    return Err(invalid(format!("<value> mixes text with <{name}>")))
                }
                other => return Err(unexpected(&other, "a value")),
            }
        };
        let value = self.typed(&ty, empty, depth)?;
        self.close("value")?;
        Ok(value)
    }

    /// The contents of the type element `<ty>`, just opened.
    fn typed(&mut self, ty: &str, empty: bool, depth: usize) -> Result<Value, Fault> {
        if matches!(ty, "array" | "struct") && depth > self.max_depth {
            return Err(invalid(format!(
                "values nest deeper than {} levels",
                self.max_depth
            )));
        }
        match ty {
            "array" => self.array(empty, depth),
            "struct" => self.structure(empty, depth),
            "nil" | "ex:nil" => {
                if !empty {
                    self.close(ty)?;
                }
                Ok(Value::None)
            }
            _ => {
                let text = match empty {
                    true => String::new(),
                    false => self.text_until(ty)?,
                };
                scalar(ty, text)
            }
        }
    }

    fn array(&mut self, empty: bool, depth: usize) -> Result<Value, Fault> {
        if empty {
            return Err(invalid("<array/> has no <data>"));
        }
        let mut items = Vec::new();
        if !self.open("data")? {
            loop {
                match self.structural()? {
                    Token::Open { name, empty } if name == "value" => {
                        items.push(self.value(empty, depth + 1)?)
                    }
                    Token::Close(tag) if tag == "data" => break,
                    other => return Err(unexpected(&other, "<value> or </data>")),
                }
            }
        }
        self.close("array")?;
        Ok(Value::List(items))
    }

    fn structure(&mut self, empty: bool, depth: usize) -> Result<Value, Fault> {
        let mut pairs = Vec::new();
        if empty {
            return Ok(Value::Map(pairs));
        }
        loop {
            match self.structural()? {
                Token::Open { name, empty: false } if name == "member" => {
                    let key = match self.open("name")? {
                        true => String::new(),
                        false => self.text_until("name")?,
                    };
                    let empty = self.open("value")?;
                    let value = self.value(empty, depth + 1)?;
                    self.close("member")?;
                    pairs.push((Value::Str(key), value));
                }
                Token::Close(tag) if tag == "struct" => return Ok(Value::Map(pairs)),
                other => return Err(unexpected(&other, "<member> or </struct>")),
            }
        }
    }

    /// Expect `<tag>` or `<tag/>` next (blank text aside); true if empty.
    fn open(&mut self, tag: &str) -> Result<bool, Fault> {
        match self.structural()? {
            Token::Open { name, empty } if name == tag => Ok(empty),
            other => Err(unexpected(&other, &format!("<{tag}>"))),
        }
    }

    /// Expect `</tag>` next (blank text aside).
    fn close(&mut self, tag: &str) -> Result<(), Fault> {
        match self.structural()? {
            Token::Close(name) if name == tag => Ok(()),
            other => Err(unexpected(&other, &format!("</{tag}>"))),
        }
    }

    /// The text up to `</tag>`, which must hold no elements.
    fn text_until(&mut self, tag: &str) -> Result<String, Fault> {
        let mut text = String::new();
        loop {
            match self.token()? {
                Token::Text(t) => text.push_str(&t),
                Token::Close(name) if name == tag => return Ok(text),
                other => return Err(unexpected(&other, &format!("text or </{tag}>"))),
            }
        }
    }

    /// The next token that is not blank text (between elements).
    fn structural(&mut self) -> Result<Token, Fault> {
        loop {
            match self.token()? {
                Token::Text(t) if is_blank(&t) => continue,
                other => return Ok(other),
            }
        }
    }

    /// The next token; comments, processing instructions and the XML
    /// declaration are skipped, a DOCTYPE is refused (no entity tricks).
    fn token(&mut self) -> Result<Token, Fault> {
        loop {
            let event = self
                .reader
                .read_event()
                .map_err(|e| Fault::new(FaultKind::Parse, format!("malformed XML: {e}")))?;
            return Ok(match event {
                Event::Start(e) => Token::Open {
                    name: e.name().as_ref().to_string(),
                    empty: false,
                },
                Event::Empty(e) => Token::Open {
                    name: e.name().as_ref().to_string(),
                    empty: true,
                },
                Event::End(e) => Token::Close(e.name().as_ref().to_string()),
                Event::Text(t) => Token::Text(t.xml10_content().into_owned()),
                Event::CData(t) => Token::Text(t.xml10_content().into_owned()),
                Event::GeneralRef(r) => Token::Text(reference(&r.xml10_content())?.to_string()),
                // Its encoding was read before the body was decoded.
                Event::Decl(_) => continue,
                Event::Comment(_) | Event::PI(_) => continue,
                Event::DocType(_) => return Err(invalid("a <!DOCTYPE> is not allowed")),
                Event::Eof => Token::Eof,
            });
        }
    }
}

/// The character a reference (`amp`, `#10`, `#x41`) stands for.
fn reference(name: &str) -> Result<char, Fault> {
    let bad = || Fault::new(FaultKind::Parse, format!("unknown reference &{name};"));
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => {
            let number = name.strip_prefix('#').ok_or_else(bad)?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => number.parse(),
            };
            code.ok().and_then(char::from_u32).ok_or_else(bad)
        }
    }
}

/// A scalar type element's text as a value.
fn scalar(ty: &str, text: String) -> Result<Value, Fault> {
    let bad = |what: &str| invalid(format!("<{ty}> holds {what} {text:?}"));
    match ty {
        "string" => Ok(Value::Str(text)),
        "int" | "i4" | "i8" | "ex:i8" | "i1" | "i2" | "ex:i1" | "ex:i2" => text
            .trim()
            .parse()
            .map(Value::Int)
            .map_err(|_| bad("no 64-bit integer:")),
        "boolean" => match text.trim() {
            "1" => Ok(Value::Bool(true)),
            "0" => Ok(Value::Bool(false)),
            _ => Err(bad("neither 0 nor 1:")),
        },
        "double" => text
            .trim()
            .parse()
            .map(Value::Float)
            .map_err(|_| bad("no number:")),
        // Python's form (`20261204T15:12:38`), extended ISO 8601, or RFC
        // 3339; naming no offset, it is UTC.
        "dateTime.iso8601" => crate::DateTime::parse(&text)
            .map(Value::DateTime)
            .map_err(|_| bad("no ISO 8601 date and time:")),
        "base64" => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(Value::from)
                .map_err(|_| bad("no base64:"))
        }
        _ => Err(invalid(format!("<{ty}> is not an XML-RPC type"))),
    }
}

fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_whitespace())
}

/// The fault for finding `got` outside the document element: text there
/// is not XML at all, an element there is not a call.
fn outside_root(got: &Token, wanted: &str) -> Fault {
    match got {
        Token::Text(_) => Fault::new(
            FaultKind::Parse,
            "malformed XML: text outside the document element",
        ),
        other => unexpected(other, wanted),
    }
}

/// The fault for finding `got` where `wanted` belongs.
fn unexpected(got: &Token, wanted: &str) -> Fault {
    let got = match got {
        Token::Open { name, .. } => format!("<{name}>"),
        Token::Close(name) => format!("</{name}>"),
        Token::Text(text) => format!("text {:?}", text.chars().take(40).collect::<String>()),
        // The document stopped early: no well-formed XML ends there.
        Token::Eof => {
            return Fault::new(
                FaultKind::Parse,
                format!("the document ends where {wanted} belongs"),
            )
        }
    };
    invalid(format!("expected {wanted}, found {got}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(xml: &str) -> Result<MethodCall, Fault> {
        method_call(xml.as_bytes(), 32)
    }

    fn params(inner: &str) -> Result<Vec<Value>, Fault> {
        call(&format!(
            "<?xml version='1.0'?><methodCall><methodName>m</methodName><params>{inner}</params></methodCall>"
        ))
        .map(|c| c.params)
    }

    fn one(value: &str) -> Value {
        params(&format!("<param><value>{value}</value></param>"))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn every_type_of_the_specification_decodes() {
        assert_eq!(one("<int>-7</int>"), Value::Int(-7));
        assert_eq!(one("<i4> 42 </i4>"), Value::Int(42));
        assert_eq!(one("<i8>9000000000</i8>"), Value::Int(9_000_000_000));
        assert_eq!(one("<boolean>1</boolean>"), Value::Bool(true));
        assert_eq!(one("<double>-2.5</double>"), Value::Float(-2.5));
        assert_eq!(one("<string> a &amp; b </string>"), Value::from(" a & b "));
        assert_eq!(one("untyped &lt;text&#62;"), Value::from("untyped <text>"));
        assert_eq!(one("<string/>"), Value::from(""));
        assert_eq!(one("<![CDATA[<raw>]]>"), Value::from("<raw>"));
        assert_eq!(
            one("<dateTime.iso8601>20261123T22:30:00</dateTime.iso8601>"),
            Value::DateTime(crate::DateTime::from_unix(1_795_473_000, 0).unwrap())
        );
        assert_eq!(
            one("<base64>AAEC\n/w==</base64>"),
            Value::Bytes(vec![0, 1, 2, 255].into())
        );
        assert_eq!(one("<nil/>"), Value::None);
        assert_eq!(
            one("<array><data><value><int>1</int></value><value>x</value></data></array>"),
            Value::List(vec![Value::Int(1), Value::from("x")])
        );
        assert_eq!(one("<array><data/></array>"), Value::List(vec![]));
        assert_eq!(
            one("<struct><member><name>age</name><value><int>42</int></value></member></struct>"),
            Value::map([("age", 42)])
        );
    }

    #[test]
    fn calls_without_params_decode() {
        let c =
            call("<methodCall><methodName>system.listMethods</methodName></methodCall>").unwrap();
        assert_eq!((c.name.as_str(), c.params.len()), ("system.listMethods", 0));
        let c = call("<methodCall><methodName>f</methodName><params/></methodCall>").unwrap();
        assert!(c.params.is_empty());
    }

    #[test]
    fn malformed_xml_is_a_parse_error() {
        for body in [
            "<methodCall><methodName>m</methodName>",
            "<methodCall><methodName>m</methodNam></methodCall>",
            "not xml at all",
            "<methodCall><methodName>&bogus;</methodName></methodCall>",
        ] {
            let fault = call(body).unwrap_err();
            assert_eq!(fault.kind(), FaultKind::Parse, "{body}: {fault}");
        }
        let fault = method_call(b"<methodCall>\xff</methodCall>", 32).unwrap_err();
        assert_eq!(fault.kind(), FaultKind::Parse);
    }

    #[test]
    fn wrong_structure_and_values_are_invalid_requests() {
        for inner in [
            "<param><value><int>x</int></value></param>",
            "<param><value><boolean>2</boolean></value></param>",
            "<param><value><base64>!!</base64></value></param>",
            "<param><value><float>1</float></value></param>",
            "<param><value>text<int>1</int></value></param>",
            "<param><value><int>1</int></value><value/></param>",
            "<value><int>1</int></value>",
        ] {
            let fault = params(inner).unwrap_err();
            assert_eq!(fault.kind(), FaultKind::InvalidRequest, "{inner}: {fault}");
        }
        let doctype =
            "<!DOCTYPE x [<!ENTITY a 'b'>]><methodCall><methodName>m</methodName></methodCall>";
        assert_eq!(call(doctype).unwrap_err().kind(), FaultKind::InvalidRequest);
        let two_roots = "<methodCall><methodName>m</methodName></methodCall><methodCall/>";
        assert_eq!(
            call(two_roots).unwrap_err().kind(),
            FaultKind::InvalidRequest
        );
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |levels: usize| {
            let open = "<value><array><data>".repeat(levels);
            let close = "</data></array></value>".repeat(levels);
            format!("<param>{open}<value>x</value>{close}</param>")
        };
        let deep = params(&nested(32)).unwrap();
        assert!(matches!(&deep[0], Value::List(_)));
        let fault = params(&nested(33)).unwrap_err();
        assert_eq!(fault.kind(), FaultKind::InvalidRequest);
        assert!(fault.message().contains("deeper than 32"), "{fault}");
        // Far deeper than any stack could take by recursion: refused early.
        assert!(params(&nested(100_000)).is_err());
    }
}
