//! Small objects tether provides: callbacks, bound methods, restricted views
//! and the empty root of a side that serves nothing.

pub(crate) mod bound_method;
pub(crate) mod by_ref;
pub(crate) mod callback;
pub(crate) mod empty;
pub(crate) mod file;
pub(crate) mod fs;
pub(crate) mod process;
pub(crate) mod restricted;
pub(crate) mod stream;
