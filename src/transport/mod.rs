//! Byte streams a connection can run over.
//!
//! All share one shape: something that yields an `AsyncRead + AsyncWrite`
//! stream, handed to [`Builder::connect_io`](crate::Builder::connect_io) or
//! [`Builder::accept_io`](crate::Builder::accept_io).
//!
//! - `tcp`: TCP with `TCP_NODELAY` (small frames must not wait);
//! - `unix`: Unix domain sockets;
//! - [`tls`]: TLS over either, with rustls (server and client
//!   certificates);
//! - [`memory`]: an in-process pair, for tests and examples.

pub mod memory;
pub(crate) mod tcp;
pub mod tls;
#[cfg(unix)]
pub(crate) mod unix;

use std::future::Future;
use std::time::Duration;

use crate::{Error, ErrorKind, Result};

/// Run `connecting` (a connect with everything up to a usable connection:
/// TCP, TLS, handshake) within `timeout`, else fail with
/// [`ErrorKind::Timeout`].
pub(crate) async fn connect_within<T>(
    timeout: Duration,
    connecting: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(timeout, connecting)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!("could not connect within {timeout:?}"),
            ))
        })
}
