//! JSON-RPC 2.0: single requests, notifications and batches.
//!
//! - params may be an array (positional) or an object (named: matched to
//!   the method's parameter names);
//! - a request without `"id"` is a notification: it runs, and nothing is
//!   sent back for it; a body of notifications only gets an empty reply;
//! - a batch runs its calls concurrently and answers them in order;
//! - errors use the specification's codes: `-32700` parse error, `-32600`
//!   invalid request, `-32601` method not found, `-32602` invalid params,
//!   `-32603` internal error, and `-32000` for errors the method raised.
//!
//! Every answer is HTTP 200, errors included (clients built on
//! `xmlrpc.client`'s transport, such as jsonrpclib, read no other status).

use base64::Engine as _;
use futures_util::future::join_all;
use serde_json::{json, Map, Number, Value as Json};

use super::fault::{Fault, FaultKind};
use super::Gateway;
use crate::{Args, Value};

/// The response body to the request `body`; `None` when nothing is to be
/// sent back (notifications only).
pub(crate) async fn respond(gateway: &Gateway, body: &[u8]) -> Option<Json> {
    let request: Json = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            let fault = Fault::new(FaultKind::Parse, format!("malformed JSON: {e}"));
            return Some(error(&fault, Json::Null));
        }
    };
    match request {
        Json::Array(batch) if batch.is_empty() => Some(error(
            &Fault::new(FaultKind::InvalidRequest, "an empty batch"),
            Json::Null,
        )),
        Json::Array(batch) if batch.len() > gateway.config().max_batch => Some(error(
            &Fault::new(
                FaultKind::InvalidRequest,
                format!(
                    "a batch of {} requests exceeds the limit of {}",
                    batch.len(),
                    gateway.config().max_batch
                ),
            ),
            Json::Null,
        )),
        Json::Array(batch) => {
            let replies = join_all(batch.into_iter().map(|one| request_one(gateway, one))).await;
            let replies: Vec<Json> = replies.into_iter().flatten().collect();
            (!replies.is_empty()).then_some(Json::Array(replies))
        }
        one => request_one(gateway, one).await,
    }
}

/// The reply to one request object; `None` for a notification.
async fn request_one(gateway: &Gateway, request: Json) -> Option<Json> {
    let invalid =
        |why: &str, id: Json| Some(error(&Fault::new(FaultKind::InvalidRequest, why), id));
    let Json::Object(mut request) = request else {
        return invalid("a request must be an object", Json::Null);
    };
    // Absent: a notification. Present: a string, a number or null.
    let id = match request.remove("id") {
        None => None,
        Some(id @ (Json::String(_) | Json::Number(_) | Json::Null)) => Some(id),
        Some(_) => return invalid("\"id\" must be a string, a number or null", Json::Null),
    };
    let reply_id = id.clone().unwrap_or(Json::Null);
    if request.get("jsonrpc") != Some(&json!("2.0")) {
        return invalid("\"jsonrpc\" must be exactly \"2.0\"", reply_id);
    }
    let Some(Json::String(method)) = request.remove("method") else {
        return invalid("\"method\" must be a string", reply_id);
    };
    let depth = gateway.config().max_depth;
    let args = match request.remove("params") {
        None => Ok(Args::new()),
        Some(params @ (Json::Array(_) | Json::Object(_))) => arguments(params, depth),
        Some(_) => return invalid("\"params\" must be an array or an object", reply_id),
    };
    let outcome = match args {
        Ok(args) => gateway.call(&method, args).await,
        Err(fault) => Err(fault),
    };
    id.as_ref()?;
    Some(match outcome.and_then(|result| json_of(&result)) {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": reply_id}),
        Err(fault) => error(&fault, reply_id),
    })
}

/// Arguments from JSON: an array gives positional ones, an object named
/// ones (matched to the method's parameter names), anything else none.
pub(crate) fn arguments(params: Json, max_depth: usize) -> Result<Args, Fault> {
    match params {
        Json::Array(items) => items
            .into_iter()
            .map(|item| value(item, max_depth))
            .collect::<Result<Vec<_>, _>>()
            .map(|positional| Args {
                positional,
                named: Vec::new(),
            }),
        Json::Object(fields) => fields
            .into_iter()
            .map(|(name, item)| Ok((name, value(item, max_depth)?)))
            .collect::<Result<Vec<_>, _>>()
            .map(|named| Args {
                positional: Vec::new(),
                named,
            }),
        _ => Ok(Args::new()),
    }
}

/// An error response.
fn error(fault: &Fault, id: Json) -> Json {
    json!({
        "jsonrpc": "2.0",
        "error": {"code": fault.kind().json_code(), "message": fault.message()},
        "id": id,
    })
}

/// A JSON value as a tether value, `max_depth` levels deep at most.
pub(crate) fn value(json: Json, max_depth: usize) -> Result<Value, Fault> {
    fn convert(json: Json, depth: usize, max: usize) -> Result<Value, Fault> {
        let nested = matches!(json, Json::Array(_) | Json::Object(_));
        if nested && depth >= max {
            return Err(Fault::new(
                FaultKind::InvalidRequest,
                format!("values nest deeper than {max} levels"),
            ));
        }
        Ok(match json {
            Json::Null => Value::None,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                // Beyond i64 (or a fraction): the nearest float.
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Value::Str(s),
            Json::Array(items) => Value::List(
                items
                    .into_iter()
                    .map(|item| convert(item, depth + 1, max))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(fields) => Value::Map(
                fields
                    .into_iter()
                    .map(|(k, v)| Ok((Value::Str(k), convert(v, depth + 1, max)?)))
                    .collect::<Result<_, Fault>>()?,
            ),
        })
    }
    convert(json, 0, max_depth)
}

/// A result as JSON, or the fault it cannot be sent as. Its depth was
/// checked before (see `call`), so the recursion is bounded.
pub(crate) fn json_of(v: &Value) -> Result<Json, Fault> {
    let cannot = |why: String| Err(Fault::new(FaultKind::Internal, why));
    Ok(match v {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        Value::Float(x) => match Number::from_f64(*x) {
            Some(n) => Json::Number(n),
            None => return cannot(format!("{x} has no JSON form")),
        },
        Value::Str(s) => Json::String(s.clone()),
        // JSON has no bytes; base64 text is what JSON APIs commonly send.
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        // JSON has no dates; RFC 3339 text is what JSON APIs send.
        Value::DateTime(t) => Json::String(t.to_rfc3339()),
        Value::List(items) => Json::Array(items.iter().map(json_of).collect::<Result<_, _>>()?),
        Value::Map(pairs) => {
            let mut object = Map::with_capacity(pairs.len());
            for (key, item) in pairs {
                let Value::Str(name) = key else {
                    return cannot(format!(
                        "a JSON object's keys must be strings, not {} ({key})",
                        key.type_name()
                    ));
                };
                object.insert(name.clone(), json_of(item)?);
            }
            Json::Object(object)
        }
        Value::Ref(r) => {
            return cannot(format!(
                "{r:?} is an object; the gateway passes values only"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_convert_both_ways() {
        let json = json!({"n": 1, "x": 2.5, "s": "t", "l": [true, null], "big": 1e20});
        let v = value(json, 32).unwrap();
        assert_eq!(v.get("n"), Some(&Value::Int(1)));
        assert_eq!(v.get("big"), Some(&Value::Float(1e20)));
        assert_eq!(
            json_of(&v).unwrap(),
            json!({"n": 1, "x": 2.5, "s": "t", "l": [true, null], "big": 1e20})
        );
        assert_eq!(
            json_of(&Value::Bytes(vec![0, 1].into())).unwrap(),
            json!("AAE=")
        );
    }

    #[test]
    fn what_json_cannot_carry_is_a_fault() {
        assert!(json_of(&Value::Float(f64::NAN)).is_err());
        assert!(json_of(&Value::Map(vec![(Value::Int(1), Value::None)])).is_err());
    }

    #[test]
    fn nesting_is_limited() {
        let nested = (0..4).fold(json!(1), |v, _| json!([v]));
        assert!(value(nested.clone(), 4).is_ok());
        let fault = value(nested, 3).unwrap_err();
        assert_eq!(fault.kind(), FaultKind::InvalidRequest);
    }
}
