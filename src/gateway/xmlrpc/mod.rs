//! XML-RPC: a `methodCall` in, a `methodResponse` out.
//!
//! - [`decode`]: the request, checked against the specification with
//!   bounded nesting;
//! - [`encode`]: the response, a value or a fault.
//!
//! Every answer is HTTP 200 with an XML body, faults included, as XML-RPC
//! clients expect.

pub(crate) mod decode;
pub(crate) mod encode;

use super::Gateway;
use crate::IntoArgs;

/// The response document to the request `body`.
pub(crate) async fn respond(gateway: &Gateway, body: &[u8]) -> String {
    let call = match decode::method_call(body, gateway.config().max_depth) {
        Ok(call) => call,
        Err(fault) => return encode::fault(&fault),
    };
    let outcome = gateway.call(&call.name, call.params.into_args()).await;
    match outcome.and_then(|result| encode::response(&result)) {
        Ok(xml) => xml,
        Err(fault) => encode::fault(&fault),
    }
}
