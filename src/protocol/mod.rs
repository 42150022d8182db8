//! The wire format: handshake, frames, and the codec between them.
//!
//! - `handshake`: raw magic/version/service-name exchange, first bytes on
//!   every connection ([`MAGIC`], [`PROTOCOL_VERSION`]);
//! - `framing`: the byte stream cut into length-prefixed frames, memory
//!   following the bytes that arrive rather than the lengths declared;
//! - `frame`: the message kinds and the operations a request carries;
//! - `budget`: what decoding a frame may allocate, shared by both
//!   dialects' decoders;
//! - `capped`: reads of bounded size and a bounded amount per turn, so a
//!   large frame never holds a runtime worker for long;
//! - `aside`: large frames decoded on the blocking pool, one fewer at a
//!   time than the machine has cores, so the workers always keep one;
//! - `codec`: messages to length-prefixed bincode frames and back,
//!   resolving object references on the way ([`MAX_DEPTH`]).
//!
//! Nothing here touches sockets beyond the handshake; the connection module
//! drives the frames.

pub(crate) mod aside;
pub(crate) mod budget;
pub(crate) mod capped;
pub(crate) mod codec;
pub(crate) mod frame;
pub(crate) mod framing;
pub(crate) mod handshake;

pub use self::codec::MAX_DEPTH;

/// Most items one `next` request may return: owners cap a batch here, and
/// callers ask for no more, so a short batch always means "exhausted".
pub const MAX_NEXT_BATCH: u32 = 65_536;
pub use self::handshake::{MAGIC, PROTOCOL_VERSION};
