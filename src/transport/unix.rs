//! Unix domain sockets.

use std::path::Path;

use tokio::net::UnixStream;

use crate::{Error, ErrorKind, Result};

/// Connect to the socket at `path`.
pub(crate) async fn connect(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).await.map_err(|e| {
        Error::with_source(
            ErrorKind::Transport,
            format!("cannot connect to {}: {e}", path.display()),
            e,
        )
    })
}
