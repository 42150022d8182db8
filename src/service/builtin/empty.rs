//! The root of a side that serves nothing (a plain client's).

use crate::service::object::Object;

/// An object with no members: every operation on it is denied.
pub(crate) struct Empty;

impl Object for Empty {
    fn type_name(&self) -> &str {
        "Empty"
    }
}
