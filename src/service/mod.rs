//! The owner side: objects, the table of what a connection exported, the
//! policy that guards them, and the dispatcher that applies it.
//!
//! - [`object`](self::object): the [`Object`] trait and its [`Member`]s;
//! - [`policy`](self::policy): deny-by-default [`Policy`] and restricted views;
//! - [`table`](self::table): per-connection export table (slotmap ids with
//!   generations, one id per object, send counts);
//! - [`dispatch`](self::dispatch): one function from an operation to a call on
//!   an object, with every policy check in one place;
//! - [`builtin`](self::builtin): callbacks, bound methods and other small objects;
//! - [`answers`](self::answers): promised answers, the outcomes of pipelined
//!   operations kept for the operations that follow them;
//! - [`forward`](self::forward): objects another protocol's peer owns
//!   (RPyC, Cap'n Web), whose operations go to that peer unchecked.

pub(crate) mod answers;
pub(crate) mod builtin;
pub(crate) mod dispatch;
pub(crate) mod forward;
pub(crate) mod object;
pub(crate) mod policy;
pub(crate) mod table;

pub use self::builtin::by_ref::by_ref;
pub use self::builtin::callback::{callback, callback_sync, Callback};
pub use self::builtin::file::LocalFile;
pub use self::object::{BoxFuture, CallContext, Member, MemberKind, Object};
pub use self::policy::{restrict, Policy};
