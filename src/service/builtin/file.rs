//! A local text file served by reference (being written).

use crate::service::object::Object;

/// A file of ours that a peer can read through a netref.
#[derive(Debug)]
pub struct LocalFile;

impl Object for LocalFile {
    fn type_name(&self) -> &str {
        "LocalFile"
    }
}
