//! tether: an RPyC-style remote-object runtime.
//!
//! Two peers share one symmetric connection. Each keeps a table of the
//! objects it handed out and passes *references* to them ([`NetRef`])
//! instead of copies; data ([`Value`]) travels by value. Calling a method
//! on a netref sends a request to the object's owner. A closure passed as an
//! argument ([`callback`]) becomes a netref on the other side, and when the
//! server calls it, the call travels back over the same connection, even
//! while the client's own call is still waiting.
//!
//! ```
//! use tether::{Args, BoxFuture, CallContext, Member, NetRef, Object, Result, Value};
//!
//! /// Counts the lines a client's reader object yields, reporting each to a callback.
//! struct LineCounter;
//!
//! impl Object for LineCounter {
//!     fn type_name(&self) -> &str { "LineCounter" }
//!     fn members(&self) -> &[Member] {
//!         const M: &[Member] = &[Member::method(
//!             "line_counter", "(lines: iterable, function: callable) -> int", "Count lines.")];
//!         M
//!     }
//!     fn call_method<'a>(&'a self, _name: &'a str, args: Args, _cx: &'a CallContext)
//!         -> BoxFuture<'a, Result<Value>> {
//!         Box::pin(async move {
//!             let (lines, function): (NetRef, NetRef) = args.parse()?;
//!             let mut count = 0;
//!             let mut iter = lines.iter();
//!             while let Some(line) = iter.next().await {
//!                 function.call((line?,)).await?;   // back to the client
//!                 count += 1;
//!             }
//!             Ok(Value::from(count))
//!         })
//!     }
//! }
//!
//! # struct Lines(std::sync::Mutex<std::vec::IntoIter<&'static str>>);
//! # impl Object for Lines {
//! #     fn type_name(&self) -> &str { "Lines" }
//! #     fn next<'a>(&'a self, _: &'a CallContext) -> BoxFuture<'a, Result<Option<Value>>> {
//! #         let item = self.0.lock().unwrap().next().map(Value::from);
//! #         Box::pin(async move { Ok(item) })
//! #     }
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (client, _server) = tether::transport::memory::pair(
//!     tether::Builder::default(),
//!     tether::Builder::default().root(LineCounter),
//! ).await.unwrap();
//!
//! let file = NetRef::new(Lines(std::sync::Mutex::new(vec!["a", "b"].into_iter())));
//! let noisy = tether::callback(|line: String| async move {
//!     println!("Noisy: {line:?}");
//!     Ok(())
//! });
//! let root = client.root().await.unwrap();
//! let n: i64 = root.call_method("line_counter", (file, noisy)).await.unwrap().try_into().unwrap();
//! assert_eq!(n, 2);
//! # });
//! ```
//!
//! # Layout
//!
//! - [`protocol`]: handshake, frames and the bincode codec;
//! - `connection`: [`Connection`], its reader and writer tasks, pending
//!   calls with deadlines and cancellation;
//! - `netref`: [`NetRef`], the one handle to local and remote objects;
//! - `service`: [`Object`], export tables, [`Policy`] and the dispatcher;
//! - `value`: [`Value`] and conversions, serde included;
//! - [`server`]: [`Server`], accepting connections;
//! - [`transport`]: TCP, Unix sockets and in-memory pairs.
//!
//! # Lifetime and release
//!
//! An owner counts how often it sent each object; the receiver keeps one
//! proxy per id and, when its last clone drops, sends one release with the
//! number it received (releases are batched). Everything a peer held is
//! released when the connection ends. [`Connection::stats`] shows the
//! counts. A connection closes itself once its last [`Connection`] handle
//! and last remote [`NetRef`] are dropped.
//!
//! # Cancel safety
//!
//! Dropping the future of a remote call cancels it: the owner is told and
//! aborts the work (including any calls that work was making in turn).
//! Every call has a deadline (30 s unless configured per connection with
//! [`Config::call_timeout`] or per reference with [`NetRef::with_timeout`]).
//! When a connection ends, every pending call on it fails at once with
//! [`ErrorKind::Closed`].
//!
//! # Security
//!
//! Deny by default: a peer reaches only the members an object declares,
//! `setattr`/`delattr` are off unless the [`Policy`] enables them, and
//! [`restrict`] narrows an object to a named subset. Object ids are only
//! valid on the connection that issued them and carry a generation, so a
//! released id never reaches a newer object. A peer that sends garbage, an
//! oversized frame or a too-deep value is disconnected with a clear error;
//! other connections are not affected.
//!
//! # Stability
//!
//! Pre-1.0: the API and the wire protocol ([`protocol::PROTOCOL_VERSION`])
//! may change. Peers of different protocol versions refuse each other in
//! the handshake with a clear error.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

mod connection;
mod error;
mod netref;
pub mod protocol;
pub mod server;
mod service;
pub mod transport;
mod value;

pub use crate::connection::{connect, Builder, Config, Connection, Stats};
pub use crate::error::{Error, ErrorKind, RemoteError, Result};
pub use crate::netref::{NetRef, RemoteIter};
pub use crate::server::{Server, ServerBuilder};
pub use crate::service::{
    callback, callback_sync, restrict, BoxFuture, CallContext, LocalFile, Member, MemberKind,
    Object, Policy,
};
pub use crate::value::convert::ListOf;
pub use crate::value::{from_value, to_value, Args, FromArgs, FromValue, IntoArgs, Value};

/// Items for tether's own tools (fuzz targets, benchmarks); not a stable API.
#[doc(hidden)]
pub mod __private {
    /// Decode one frame payload with no connection behind it, as the reader
    /// would; for fuzzing the decoder. Never panics.
    pub fn decode_frame(payload: &[u8]) -> Result<(), crate::Error> {
        crate::protocol::codec::decode(payload, &crate::protocol::codec::NoRefs).map(drop)
    }
}
