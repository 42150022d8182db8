//! The XML-RPC introspection and multicall methods, answered from the
//! object's own introspection (the members `#[tether::expose]` declares,
//! with their signatures and doc comments). JSON-RPC clients may call them
//! too.
//!
//! - `system.listMethods()`: the object's methods, then these four;
//! - `system.methodSignature(name)`: `[[return, param, ...]]` in XML-RPC
//!   type names (`int`, `double`, `string`, `boolean`, `base64`, `array`,
//!   `struct`, `nil`; `any` for anything, `*T` for "any number of T");
//! - `system.methodHelp(name)`: the method's doc text alone (empty if it
//!   has none), as CPython's server answers; the signature is
//!   `methodSignature`'s;
//! - `system.multicall(calls)`: each `{'methodName': .., 'params': [..]}`
//!   run in order; each result is a one-element array or a fault struct,
//!   and one failure does not stop the rest.

use super::fault::{Fault, FaultKind};
use super::Gateway;
use crate::service::object::{Member, MemberKind};
use crate::{Args, IntoArgs, Value};

/// What every system method's name starts with.
pub(crate) const PREFIX: &str = "system.";

/// The system methods: name, signature and help, as `Member`s so they list
/// and describe themselves like the object's own.
const SYSTEM: &[Member] = &[
    Member::method(
        "system.listMethods",
        "() -> list[str]",
        "The names of the methods this server offers.",
    ),
    Member::method(
        "system.methodSignature",
        "(name: str) -> list[list[str]]",
        "The signature of the method `name`: [[return type, parameter types...]].",
    ),
    Member::method(
        "system.methodHelp",
        "(name: str) -> str",
        "The documentation of the method `name`.",
    ),
    Member::method(
        "system.multicall",
        "(calls: list[map[str, any]]) -> list[any]",
        "Run each {'methodName': str, 'params': list} in order; each result is \
         [value] or a fault struct {'faultCode': int, 'faultString': str}.",
    ),
];

/// Run the system method `name`.
pub(crate) async fn call(gateway: &Gateway, name: &str, args: Args) -> Result<Value, Fault> {
    match name {
        "system.multicall" => multicall(gateway, args).await,
        _ => introspect(gateway, name, args).await,
    }
}

/// Run a system method other than multicall.
async fn introspect(gateway: &Gateway, name: &str, args: Args) -> Result<Value, Fault> {
    match name {
        "system.listMethods" => {
            no_args(name, args)?;
            let methods = methods(gateway).await?;
            Ok(Value::List(
                methods.iter().map(|m| Value::from(&*m.name)).collect(),
            ))
        }
        "system.methodSignature" => {
            let member = find(gateway, &one_name(name, args)?).await?;
            Ok(match xmlrpc_signature(&member.signature) {
                Some(types) => Value::List(vec![Value::List(
                    types.into_iter().map(Value::Str).collect(),
                )]),
                // The convention for "no signature known".
                None => Value::from("undef"),
            })
        }
        "system.methodHelp" => {
            let member = find(gateway, &one_name(name, args)?).await?;
            Ok(Value::Str(member.doc.to_string()))
        }
        _ => Err(Fault::new(
            FaultKind::MethodNotFound,
            format!("there is no system method '{name}'"),
        )),
    }
}

/// The object's methods followed by the system ones.
async fn methods(gateway: &Gateway) -> Result<Vec<Member>, Fault> {
    let mut methods: Vec<Member> = gateway
        .members()
        .await?
        .into_iter()
        .filter(|m| m.kind == MemberKind::Method && !m.name.starts_with(PREFIX))
        .collect();
    methods.extend(SYSTEM.iter().cloned());
    Ok(methods)
}

async fn find(gateway: &Gateway, name: &str) -> Result<Member, Fault> {
    methods(gateway)
        .await?
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Fault::new(FaultKind::MethodNotFound, format!("no method '{name}'")))
}

fn no_args(method: &str, args: Args) -> Result<(), Fault> {
    args.parse::<()>().map_err(|e| {
        Fault::new(
            FaultKind::InvalidParams,
            format!("{method}(): {}", e.message()),
        )
    })
}

fn one_name(method: &str, args: Args) -> Result<String, Fault> {
    args.parse::<String>().map_err(|e| {
        Fault::new(
            FaultKind::InvalidParams,
            format!("{method}(name): {}", e.message()),
        )
    })
}

/// `system.multicall(calls)`.
async fn multicall(gateway: &Gateway, args: Args) -> Result<Value, Fault> {
    let calls: Vec<Value> = args.parse().map_err(|e| {
        Fault::new(
            FaultKind::InvalidParams,
            format!(
                "system.multicall(calls) takes one array of calls: {}",
                e.message()
            ),
        )
    })?;
    let limit = gateway.config().max_batch;
    if calls.len() > limit {
        return Err(Fault::new(
            FaultKind::InvalidRequest,
            format!(
                "system.multicall of {} calls exceeds the limit of {limit}",
                calls.len()
            ),
        ));
    }
    let mut results = Vec::with_capacity(calls.len());
    for entry in calls {
        let outcome = match one_call(entry) {
            Ok((name, _)) if name == "system.multicall" => Err(Fault::new(
                FaultKind::InvalidRequest,
                "system.multicall cannot be nested",
            )),
            Ok((name, args)) if name.starts_with(PREFIX) => introspect(gateway, &name, args).await,
            Ok((name, args)) => gateway.call_method(&name, args).await,
            Err(fault) => Err(fault),
        };
        results.push(match outcome {
            Ok(value) => Value::List(vec![value]),
            Err(fault) => fault_struct(&fault),
        });
    }
    Ok(Value::List(results))
}

/// The method name and arguments of one multicall entry.
fn one_call(entry: Value) -> Result<(String, Args), Fault> {
    let invalid = |why: &str| {
        Fault::new(
            FaultKind::InvalidRequest,
            format!("each multicall entry must be {{'methodName': str, 'params': array}}: {why}"),
        )
    };
    let Value::Map(pairs) = entry else {
        return Err(invalid(&format!("got a {}", entry.type_name())));
    };
    let mut name = None;
    let mut params = Vec::new();
    for (key, value) in pairs {
        match (key.as_str(), value) {
            (Some("methodName"), Value::Str(s)) => name = Some(s),
            (Some("params"), Value::List(items)) => params = items,
            (Some("methodName"), _) => return Err(invalid("'methodName' is not a string")),
            (Some("params"), _) => return Err(invalid("'params' is not an array")),
            _ => return Err(invalid(&format!("unexpected member {key}"))),
        }
    }
    let name = name.ok_or_else(|| invalid("'methodName' is missing"))?;
    Ok((name, params.into_args()))
}

/// A fault as multicall reports it: `{'faultCode': .., 'faultString': ..}`.
fn fault_struct(fault: &Fault) -> Value {
    Value::map([
        ("faultCode", Value::Int(fault.kind().xml_code())),
        ("faultString", Value::from(fault.message())),
    ])
}

/// `(a: float, *rest: int) -> list[float]` as `["array", "double", "*int"]`;
/// `None` when the text is not a signature of that shape.
fn xmlrpc_signature(signature: &str) -> Option<Vec<String>> {
    let inner = signature.trim().strip_prefix('(')?;
    let close = closing_paren(inner)?;
    let params = &inner[..close];
    let after = inner[close + 1..].trim();
    let ret = match after.strip_prefix("->") {
        Some(ret) => ret.trim(),
        None if after.is_empty() => "any",
        None => return None,
    };
    let mut types = vec![xmlrpc_type(ret)];
    for param in split_top_level(params, ',') {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let param = param.strip_suffix("= None").unwrap_or(param).trim();
        let (name, ty) = match param.split_once(':') {
            Some((name, ty)) => (name.trim(), ty.trim()),
            None => (param, "any"),
        };
        types.push(match name.starts_with('*') {
            true => format!("*{}", xmlrpc_type(ty)),
            false => xmlrpc_type(ty),
        });
    }
    Some(types)
}

/// The index of the `)` closing a parenthesis already opened.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ']' => depth = depth.checked_sub(1)?,
            ')' if depth == 0 => return Some(at),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `text` split at each `sep` outside brackets.
fn split_top_level(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                parts.push(&text[start..at]);
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A tether type name (`float`, `list[int]`, `str | None`) in XML-RPC's words.
fn xmlrpc_type(ty: &str) -> String {
    let names: Vec<&str> = split_top_level(ty, '|')
        .into_iter()
        .map(|alt| {
            let alt = alt.trim();
            let base = alt.split('[').next().unwrap_or(alt);
            match base {
                "int" => "int",
                "float" => "double",
                "str" => "string",
                "bool" => "boolean",
                "bytes" => "base64",
                "datetime" => "dateTime.iso8601",
                "None" => "nil",
                "list" | "tuple" => "array",
                "map" | "dict" => "struct",
                _ => alt,
            }
        })
        .collect();
    names.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(text: &str) -> Option<Vec<String>> {
        xmlrpc_signature(text)
    }

    #[test]
    fn signatures_use_xmlrpc_type_names() {
        assert_eq!(
            sig("(a: float, b: float, c: float) -> list[float]").unwrap(),
            ["array", "double", "double", "double"]
        );
        assert_eq!(sig("(*things) -> any").unwrap(), ["any", "*any"]);
        assert_eq!(
            sig("(*args) -> list[tuple[any, int | None]]").unwrap(),
            ["array", "*any"]
        );
        assert_eq!(
            sig("(m: map[str, int], n: int | None = None) -> None").unwrap(),
            ["nil", "struct", "int | nil"]
        );
        assert_eq!(sig("()").unwrap(), ["any"]);
        assert_eq!(
            sig("(at: datetime) -> datetime | None").unwrap(),
            ["dateTime.iso8601 | nil", "dateTime.iso8601"]
        );
    }

    #[test]
    fn text_that_is_no_signature_is_undefined() {
        assert_eq!(sig("int"), None);
        assert_eq!(sig("(a: int"), None);
        assert_eq!(sig("(a) junk"), None);
    }
}
