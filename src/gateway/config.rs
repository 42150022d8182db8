//! Settings of a gateway: its limits on what a client may send and how
//! long it may take, how many connections it serves, and the deadline of
//! each call.

use std::time::Duration;

/// The deepest nesting [`Config::max_depth`] accepts. JSON bodies are
/// parsed with `serde_json`, which refuses anything deeper than 128 levels
/// before the gateway sees it.
pub(crate) const DEPTH_CEILING: usize = 100;

/// [`Config::max_discard`] as a multiple of [`Config::max_body`], unless
/// set otherwise.
const DISCARD_FACTOR: usize = 8;

/// Settings of a [`Gateway`](super::Gateway).
///
/// Start from `Config::default()` and change what you need; the defaults
/// may change between versions.
///
/// The connection settings ([`header_timeout`](Config::header_timeout),
/// [`max_connections`](Config::max_connections)) apply when the gateway
/// serves a listener itself ([`Gateway::serve`](super::Gateway::serve),
/// [`Gateway::serve_until`](super::Gateway::serve_until)); a
/// [`router`](super::Gateway::router) mounted in another server has that
/// server's connections and settings. Everything else applies to each
/// request either way.
///
/// ```
/// use std::time::Duration;
/// let config = tether::gateway::Config::default()
///     .max_body(64 * 1024)
///     .call_timeout(Duration::from_secs(5))
///     .max_connections(100);
/// assert_eq!(config.max_body, 64 * 1024);
/// assert_eq!(config.max_discard, 8 * 64 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Largest request body, in bytes, both as sent and, for a compressed
    /// body (`Content-Encoding: gzip` or `deflate`), once inflated; the
    /// inflating stops one byte past it. A larger body is answered with
    /// HTTP 413 and never parsed. Default: 1 MiB.
    pub max_body: usize,
    /// How much of a refused body (too large, or of a type or coding the
    /// gateway does not take) is read and thrown away before the answer,
    /// in bytes, counting the whole body. Clients such as Python's
    /// `xmlrpc.client` send the whole body before they read any answer:
    /// had the gateway closed the connection unread, they would see a
    /// broken pipe or a reset instead of the 413. A body that declares a
    /// larger `Content-Length`, or turns out longer, is answered at once
    /// and its connection closed (the client may then miss the answer); so
    /// is a client that asked to wait for `100 Continue`, which has sent
    /// nothing yet. Nothing read this way is kept. Default: 8 MiB, and
    /// [`Config::max_body`] sets it to 8 times the body limit.
    pub max_discard: usize,
    /// How deep values may nest in a request (an array in a struct in an
    /// array is 3) and in a result. A deeper request is refused as an
    /// invalid request, a deeper result with an internal-error fault
    /// (JSON nested past 128 levels is not even parsed: a parse error).
    /// Default: 32. At most 100.
    pub max_depth: usize,
    /// Most calls in one JSON-RPC batch or one `system.multicall`; a larger
    /// one is refused whole as an invalid request. Default: 1000.
    pub max_batch: usize,
    /// Deadline of each call on the object; past it the call is cancelled
    /// and answered with an internal-error fault. Default: 30 s.
    pub call_timeout: Duration,
    /// How long a client may take to send a request's head (the request
    /// line and headers), counted from when its connection opens or the
    /// previous answer on it was sent. So it is also how long an idle
    /// keep-alive connection stays open. Past it the connection is closed
    /// without an answer, which stops clients that hold connections by
    /// sending headers a byte at a time ("slowloris"). Default: 10 s.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body, once its head
    /// has arrived. Past it the request is answered with HTTP 408 and the
    /// connection closed. Default: 30 s.
    pub body_timeout: Duration,
    /// Most connections served at once. A connection beyond is closed as
    /// soon as it is accepted, after a best-effort HTTP 503 that it may
    /// or may not read; the connections already open go on as before.
    /// Default: 1024.
    pub max_connections: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_body: 1 << 20,
            max_discard: DISCARD_FACTOR << 20,
            max_depth: 32,
            max_batch: 1000,
            call_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

impl Config {
    /// Set [`max_body`](Config::max_body), and
    /// [`max_discard`](Config::max_discard) to 8 times as much (set it
    /// after this to choose otherwise).
    pub fn max_body(mut self, bytes: usize) -> Config {
        self.max_body = bytes;
        self.max_discard = bytes.saturating_mul(DISCARD_FACTOR);
        self
    }

    /// Set [`max_discard`](Config::max_discard).
    pub fn max_discard(mut self, bytes: usize) -> Config {
        self.max_discard = bytes;
        self
    }

    /// Set [`max_depth`](Config::max_depth) (clamped to 1 ..= 100).
    pub fn max_depth(mut self, depth: usize) -> Config {
        self.max_depth = depth.clamp(1, DEPTH_CEILING);
        self
    }

    /// Set [`max_batch`](Config::max_batch) (at least 1).
    pub fn max_batch(mut self, calls: usize) -> Config {
        self.max_batch = calls.max(1);
        self
    }

    /// Set [`call_timeout`](Config::call_timeout).
    pub fn call_timeout(mut self, timeout: Duration) -> Config {
        self.call_timeout = timeout;
        self
    }

    /// Set [`header_timeout`](Config::header_timeout).
    pub fn header_timeout(mut self, timeout: Duration) -> Config {
        self.header_timeout = timeout;
        self
    }

    /// Set [`body_timeout`](Config::body_timeout).
    pub fn body_timeout(mut self, timeout: Duration) -> Config {
        self.body_timeout = timeout;
        self
    }

    /// Set [`max_connections`](Config::max_connections) (at least 1).
    pub fn max_connections(mut self, connections: usize) -> Config {
        self.max_connections = connections.max(1);
        self
    }
}
