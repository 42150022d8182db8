//! One call through the gateway, whichever protocol carried it.
//!
//! Method calls take the path a peer's call takes on the native protocol:
//! [`NetRef::serve`] with a deny-by-default [`Policy`], so the dispatcher
//! checks the name against the object's declared members before any object
//! code runs. The result must then be plain data: references cannot cross
//! HTTP.

use tokio::time::Instant;

use super::fault::{Fault, FaultKind};
use super::{system, Gateway};
use crate::netref::NetRef;
use crate::protocol::frame::Op;
use crate::service::object::{CallContext, Member};
use crate::trace::ServeSpan;
use crate::{Args, Value};

impl Gateway {
    /// Run `method` (a `system.` method or one of the object's) with `args`.
    pub(crate) async fn call(&self, method: &str, args: Args) -> Result<Value, Fault> {
        if method.starts_with(system::PREFIX) {
            system::call(self, method, args).await
        } else {
            self.call_method(method, args).await
        }
    }

    /// Call the object's method `name`; the result as plain data.
    pub(crate) async fn call_method(&self, name: &str, args: Args) -> Result<Value, Fault> {
        let value = self
            .run(Op::CallMethod(name.to_string(), args), name)
            .await?;
        self.plain(value, name)
    }

    /// The object's members, as its introspection describes them.
    pub(crate) async fn members(&self) -> Result<Vec<Member>, Fault> {
        let described = self.run(Op::Inspect, "system.listMethods").await?;
        let list = match described {
            Value::List(items) => items,
            other => {
                return Err(Fault::new(
                    FaultKind::Internal,
                    format!("introspection returned a {}", other.type_name()),
                ))
            }
        };
        list.into_iter()
            .map(|m| Member::from_value(m).map_err(|e| Fault::from_error(&e)))
            .collect()
    }

    /// Run `op` on the root under the gateway's policy and deadline.
    async fn run(&self, op: Op, what: &str) -> Result<Value, Fault> {
        let timeout = self.inner.config.call_timeout;
        let deadline = Instant::now() + timeout;
        let cx = CallContext {
            connection: None,
            handle: Default::default(),
            deadline: Some(deadline),
            identity: None,
        };
        let policy = &self.inner.policy;
        let span = ServeSpan::gateway(&op);
        let call = span.instrument(self.inner.root.serve(op, policy, &cx));
        // Dropping the call on timeout cancels it, as a native deadline does.
        match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Fault::from_error(&err)),
            Err(_) => Err(Fault::new(
                FaultKind::Internal,
                format!("{what}() did not finish within {timeout:?}"),
            )),
        }
    }

    /// `value` if it is plain data no deeper than the limit.
    fn plain(&self, value: Value, method: &str) -> Result<Value, Fault> {
        match first_obstacle(&value, self.inner.config.max_depth) {
            None => Ok(value),
            Some(Obstacle::Object(object)) => Err(Fault::new(
                FaultKind::Internal,
                format!(
                    "the result of {method}() holds an object reference ({}); \
                     the gateway passes values only, so the method must return data",
                    object.describe()
                ),
            )),
            Some(Obstacle::TooDeep) => Err(Fault::new(
                FaultKind::Internal,
                format!(
                    "the result of {method}() nests deeper than {} levels",
                    self.inner.config.max_depth
                ),
            )),
        }
    }
}

/// Why a value cannot be sent over the gateway.
enum Obstacle<'v> {
    Object(&'v NetRef),
    TooDeep,
}

/// The first reason `value` cannot be sent, if any. Walks at most
/// `max_depth` levels, so a deep value cannot exhaust the stack here.
fn first_obstacle(value: &Value, max_depth: usize) -> Option<Obstacle<'_>> {
    fn walk(value: &Value, depth: usize, max: usize) -> Option<Obstacle<'_>> {
        let nested = matches!(value, Value::List(_) | Value::Map(_));
        if nested && depth >= max {
            return Some(Obstacle::TooDeep);
        }
        match value {
            Value::Ref(object) => Some(Obstacle::Object(object)),
            Value::List(items) => items.iter().find_map(|v| walk(v, depth + 1, max)),
            Value::Map(pairs) => pairs
                .iter()
                .find_map(|(k, v)| walk(k, depth + 1, max).or_else(|| walk(v, depth + 1, max))),
            _ => None,
        }
    }
    walk(value, 0, max_depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Value {
        (0..levels).fold(Value::from(1), |v, _| Value::List(vec![v]))
    }

    #[test]
    fn values_as_deep_as_the_limit_pass_and_deeper_ones_do_not() {
        assert!(first_obstacle(&nested(3), 3).is_none());
        assert!(matches!(
            first_obstacle(&nested(4), 3),
            Some(Obstacle::TooDeep)
        ));
    }

    #[test]
    fn a_reference_anywhere_is_found() {
        struct Thing;
        impl crate::Object for Thing {
            fn type_name(&self) -> &str {
                "Thing"
            }
        }
        let value = Value::map([("x", Value::List(vec![Value::Ref(NetRef::new(Thing))]))]);
        assert!(matches!(
            first_obstacle(&value, 10),
            Some(Obstacle::Object(_))
        ));
    }
}
