//! At-most-once calls across reconnects.
//!
//! A connection can break after the server ran a call but before its reply
//! arrived. Retrying blindly runs it twice ("perform transaction 312312 to
//! remove 10" removes 20); not retrying leaves the caller guessing. A
//! session settles it:
//!
//! - [`SessionHost`] wraps the object a server serves. It keeps, per client
//!   session, the outcomes of recent calls by call id, and the calls still
//!   running.
//! - [`Session`] is the client side. It numbers each call, and when the
//!   connection is lost it reconnects and sends the same call id again. The
//!   host answers a call that already ran with its remembered outcome, joins
//!   a call that is still running instead of starting it twice, and runs a
//!   call it never saw. When that cannot be known (the host forgot the call,
//!   or the server restarted and lost the session) the call fails with
//!   [`ErrorKind::OutcomeUnknown`](crate::ErrorKind::OutcomeUnknown) rather
//!   than guessing.
//! - Calls that are safe to repeat can skip the bookkeeping:
//!   [`Session::call_idempotent`] retries them plainly.
//!
//! The layering follows remoc's: sessions are an ordinary object served
//! over an ordinary connection, so the policy of the connection still
//! decides which methods of the wrapped object a peer may call, and the
//! protocol underneath is unchanged.
//!
//! ```
//! use std::sync::atomic::{AtomicI64, Ordering};
//! use std::sync::Arc;
//! use tether::session::{Session, SessionHost};
//!
//! #[derive(Clone, Default)]
//! struct Bank { balance: Arc<AtomicI64> }
//!
//! #[tether::expose]
//! impl Bank {
//!     /// Remove `amount`; return the new balance.
//!     #[method]
//!     fn withdraw(&self, amount: i64) -> i64 {
//!         self.balance.fetch_sub(amount, Ordering::SeqCst) - amount
//!     }
//! }
//! # async fn demo() -> tether::Result<()> {
//! let bank = Bank { balance: Arc::new(AtomicI64::new(100)) };
//! let server = tether::Server::bind("127.0.0.1:0").await?;
//! let addr = server.local_addr()?;
//! tokio::spawn(server.serve(SessionHost::new(tether::NetRef::new(bank.clone()))));
//!
//! let session = Session::connect(addr).await?;
//! let left = session.call("withdraw", (10,)).await?;
//! assert_eq!(left, tether::Value::from(90));
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! What a session does not cover: references. Objects returned by calls
//! belong to the connection they came over and die with it; a session
//! re-fetches only the host after a reconnect, so address resumable work
//! by method name on the wrapped root.

mod client;
mod host;

pub use client::{Session, SessionBuilder};
pub use host::{SessionHost, SessionLimits};
