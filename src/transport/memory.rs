//! Two connected peers in one process, over an in-memory pipe.
//!
//! For tests, examples and doctests: the same protocol, handshake and tasks
//! as over TCP, without sockets.
//!
//! ```
//! # use tether::{Object, Member, Args, BoxFuture, CallContext, Result, Value};
//! # struct Hello;
//! # impl Object for Hello {
//! #     fn type_name(&self) -> &str { "Hello" }
//! #     fn members(&self) -> &[Member] { const M: &[Member] = &[Member::method("hi", "() -> str", "")]; M }
//! #     fn call_method<'a>(&'a self, _: &'a str, _: Args, _: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
//! #         Box::pin(async { Ok("hello".into()) })
//! #     }
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (client, _server) = tether::transport::memory::pair(
//!     tether::Builder::default(),
//!     tether::Builder::default().root(Hello),
//! ).await.unwrap();
//! let root = client.root().await.unwrap();
//! assert_eq!(root.call_method("hi", ()).await.unwrap(), Value::from("hello"));
//! # });
//! ```

use crate::{Builder, Connection, Result};

/// Bytes the in-memory pipe buffers in each direction.
const PIPE_BUFFER: usize = 256 * 1024;

/// Connect `client` to `server` in memory; returns both ends (client first).
pub async fn pair(client: Builder, server: Builder) -> Result<(Connection, Connection)> {
    let (a, b) = tokio::io::duplex(PIPE_BUFFER);
    let (c, s) = tokio::join!(
        client.connect_io(a, Some("memory".into())),
        server.accept_io(b, Some("memory".into()))
    );
    Ok((c?, s?))
}
