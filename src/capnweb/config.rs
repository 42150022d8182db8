//! [`Config`]: what one Cap'n Web session may send, hold and run.

use std::time::Duration;

/// Limits of a Cap'n Web endpoint, each per session (one WebSocket, or
/// one HTTP batch request).
///
/// ```
/// let config = tether::capnweb::Config::default();
/// assert_eq!(config.max_message, 1 << 20);
/// assert_eq!(config.max_depth, 64);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest message, in bytes: one WebSocket message, or one HTTP batch
    /// body (all its messages together). A larger WebSocket message ends
    /// the session; a larger batch is answered with HTTP 413.
    /// Default: 1 MiB.
    pub max_message: usize,
    /// How deep one message's expressions may nest (an array in an object
    /// in a call's arguments is 3). A deeper message ends the session.
    /// Default: 64.
    pub max_depth: usize,
    /// Most entries a session's tables hold at once: the peer's calls not
    /// yet released, the objects sent to it and the ones it sent. A
    /// message past it ends the session. Default: 10 000.
    pub max_entries: usize,
    /// Most bytes of the peer's calls (their messages) kept until the peer
    /// releases them: a message past it ends the session. Default: 64 MiB.
    pub max_held: usize,
    /// Most sessions open at once (WebSockets and batches in progress); a
    /// request past it is answered `503`. With
    /// [`CapnWeb::serve`](super::CapnWeb::serve), each WebSocket also
    /// keeps its connection's place among the gateway's
    /// `max_connections`. Default: 1024.
    pub max_sessions: usize,
    /// Most of the peer's calls running at once; a call past it fails
    /// alone, with a `RangeError`. Default: 256.
    pub max_running: usize,
    /// Deadline of each call the peer makes, and of each call made on an
    /// object the peer sent (a JavaScript callback). Default: 30 s.
    pub call_timeout: Duration,
    /// Most messages in one HTTP batch; a larger batch is answered with
    /// HTTP 413. Default: 1000.
    pub max_batch: usize,
    /// Most bytes of messages waiting to be written to the peer: answers
    /// to a WebSocket peer that does not read them, or a batch's whole
    /// answer. Past it the session ends (a batch answers what it has, and
    /// an abort). Default: 64 MiB.
    pub max_queued: usize,
    /// How often a WebSocket peer is pinged. A peer that sends nothing,
    /// not even the pong its WebSocket library answers with, for two
    /// pings is taken for gone (its machine or network, without closing),
    /// and its session ends, releasing what it held. `None`: never
    /// pinged. Default: 30 s, as the native protocol's
    /// [`Config::keepalive`](crate::Config::keepalive).
    pub keepalive: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message: 1 << 20,
            max_depth: 64,
            max_entries: 10_000,
            max_sessions: 1024,
            max_held: 64 << 20,
            max_running: 256,
            call_timeout: Duration::from_secs(30),
            max_batch: 1000,
            max_queued: 64 << 20,
            keepalive: Some(Duration::from_secs(30)),
        }
    }
}
