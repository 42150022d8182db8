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
//! # Who may use a session
//!
//! A session belongs to whoever opened it. `open` returns a token of 256
//! random bits (128 naming the session, 128 of secret, from the operating
//! system's CSPRNG); every later call must present the whole token, whose
//! secret is compared in constant time, and, on a server that
//! authenticates its peers (tokens, client certificates), come from the
//! same [`peer_identity`](crate::Connection::peer_identity) that opened
//! it. Anything else, another identity holding a stolen token included,
//! is answered exactly as a session that never existed: `OutcomeUnknown`,
//! the same message, nothing run. [`Session::id`] is that token: keep it
//! as secret as a password (the `Debug` output of a [`Session`] omits it).
//!
//! # What a host remembers, and for how long
//!
//! [`SessionLimits`] bounds it, per owner and in all: sessions, outcomes
//! per session, bytes of outcomes. An *owner* is an authenticated
//! identity, or, without authentication, each session on its own; at its
//! quota an owner forgets its own oldest sessions or outcomes, never
//! another's, and at the host's bounds a new session is refused
//! (`LimitExceeded`) and a new outcome is not remembered. A call whose
//! outcome was not remembered (too large, or over the bounds) still
//! answers its caller; a retry of it is `OutcomeUnknown`, saying why.
//! Sessions idle for [`SessionLimits::idle_timeout`] (default 10 minutes,
//! as Java RMI's leases) are forgotten.
//!
//! Objects that session calls return are held by the remembered outcome:
//! they live exactly as long as the session remembers that outcome (until
//! the session ends, expires, or forgets the call to stay within its
//! quotas), whether or not the connection they were first sent over is
//! still open, and only the session's owner can reach them (by retrying
//! the call). A session re-fetches only the host after a reconnect, so
//! address resumable work by method name on the wrapped root.

mod client;
mod host;
mod ledger;

pub use client::{Session, SessionBuilder};
pub use host::{SessionHost, SessionLimits};
