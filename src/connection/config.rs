//! Settings of one connection.

use std::time::Duration;

use crate::service::policy::Policy;

/// Settings of a connection; each side has its own.
///
/// Start from `Config::default()` and change what you need; the defaults may
/// change between versions.
///
/// # What bounds a connection's memory
///
/// - Frames: one frame of at most [`max_frame_len`](Config::max_frame_len)
///   is read at a time.
/// - Decoded values: a frame's values take more room than its bytes (a
///   1-byte `None` becomes a 40-byte [`Value`](crate::Value)), so decoding
///   is counted against [`max_decoded_bytes`](Config::max_decoded_bytes),
///   which bounds one frame's values *and* the decoded arguments of every
///   call still being served, together.
/// - Calls served: at most [`max_serving`](Config::max_serving) at once,
///   each holding its decoded arguments (counted above) and what its
///   object code holds.
/// - Replies and requests waiting to be written: at most
///   [`max_queued_bytes`](Config::max_queued_bytes) (plus one frame).
/// - Our calls waiting for replies: at most
///   [`max_in_flight`](Config::max_in_flight).
/// - Objects the peer holds: at most [`max_exported`](Config::max_exported).
/// - Nesting of callbacks: at most [`max_call_depth`](Config::max_call_depth).
/// - Promised answers kept for the peer: at most
///   [`max_answers`](Config::max_answers).
///
/// So the worst case is roughly `max_frame_len + max_decoded_bytes +
/// max_queued_bytes` (with the defaults, 64 + 128 + 64 MiB), plus what
/// `max_serving` calls and `max_exported` objects of your own code hold.
/// Values are counted at 40 bytes each plus their text and bytes; a list
/// growing while it decodes may briefly hold up to twice its slots.
///
/// ```
/// use std::time::Duration;
/// let config = tether::Config::default()
///     .call_timeout(Duration::from_secs(5))
///     .max_frame_len(1 << 20);
/// assert_eq!(config.call_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Deadline of each call made on this connection unless the netref says
    /// otherwise ([`NetRef::with_timeout`](crate::NetRef::with_timeout)).
    /// Default: 30 s.
    pub call_timeout: Duration,
    /// Largest frame accepted, in bytes of payload. Both sides announce
    /// their limit in the handshake and never send the other more, so a
    /// call whose request or reply would be larger fails alone with
    /// [`ErrorKind::LimitExceeded`](crate::ErrorKind); a peer that sends a
    /// larger frame anyway is disconnected.
    /// Default: 64 MiB. At most 4 GiB − 1.
    pub max_frame_len: usize,
    /// Most bytes of decoded values this side holds for the peer at once:
    /// what one frame decodes to, plus the decoded arguments of the
    /// peer's calls still being served. Each value counts 40 bytes, text
    /// and bytes their length besides. A request over what is left is
    /// answered with [`ErrorKind::LimitExceeded`](crate::ErrorKind)
    /// without running, a reply over it fails its call the same way; the
    /// frame is parsed to its end without building more, and the
    /// connection goes on. Keep it above `max_frame_len` so that any
    /// frame of plain text or bytes fits. Default: 128 MiB.
    pub max_decoded_bytes: usize,
    /// How long connecting may take. A side that connects
    /// ([`Builder::connect`](crate::Builder::connect),
    /// [`rpyc::connect_with`](crate::rpyc::connect_with)) must be done
    /// within it from the TCP connect to the end of the handshake; on
    /// every stream, the TLS handshake and tether's own (token challenge
    /// included) are each bounded by it too. A peer that stalls is cut off
    /// with [`ErrorKind::Timeout`](crate::ErrorKind). Default: 10 s.
    pub handshake_timeout: Duration,
    /// How often to ping a peer that has sent nothing; one silent for two
    /// intervals is declared dead (its pending calls fail with
    /// [`ErrorKind::Closed`](crate::ErrorKind), its objects are released).
    /// The same interval sets TCP keepalive on every stream a server
    /// accepts and on RPyC client connections, whose peers cannot answer a
    /// ping of ours: the peer's kernel answers the probes instead, so a
    /// vanished host is found within about two intervals.
    /// `None` turns both off. Default: 30 s.
    pub keepalive: Option<Duration>,
    /// Most of the peer's calls this side runs at once; past it a call is
    /// answered at once with [`ErrorKind::LimitExceeded`](crate::ErrorKind).
    /// Default: 10 000.
    pub max_serving: usize,
    /// Most bytes waiting to be sent to a peer that is not reading them.
    /// Past it the connection is closed with
    /// [`ErrorKind::LimitExceeded`](crate::ErrorKind), so a peer that
    /// sends requests but never reads the replies cannot make this side
    /// buffer without bound. A frame is always accepted while the backlog
    /// is below the limit. Default: 64 MiB.
    pub max_queued_bytes: usize,
    /// Most of our calls (and batches, each counting as one) waiting for
    /// the peer's reply at once. A call beyond it waits for one to finish
    /// before it is sent (backpressure, not an unbounded queue): the wait
    /// counts against its deadline, ends with
    /// [`ErrorKind::Timeout`](crate::ErrorKind) when that passes first, and
    /// is abandoned by dropping the call. Pings are not counted. Calls
    /// made while serving the peer's calls count too, so callbacks nested
    /// deeper than this limit wait until their deadline.
    /// Default: 10 000.
    pub max_in_flight: usize,
    /// Most of this side's objects the peer may hold references to at
    /// once. A call or reply that would send a new object beyond it fails
    /// with [`ErrorKind::LimitExceeded`](crate::ErrorKind) for the caller
    /// whose message carried it, and nothing of that message is exported;
    /// objects the peer releases make room again. Objects already
    /// exported may be sent again freely. Each costs the owner about 110
    /// bytes besides the object itself. Default: 1 000 000.
    pub max_exported: usize,
    /// Deepest nesting of calls this side serves. A call made while
    /// serving a peer's call (a callback into the caller, or a call on to a
    /// third peer) is one level deeper than it; a request deeper than this
    /// is answered with [`ErrorKind::LimitExceeded`](crate::ErrorKind)
    /// without running, so ping-pong between two peers cannot go on
    /// without bound. Depth is followed through the serving task: a call
    /// made from a task that object code spawns starts again at 0.
    /// Default: 256.
    pub max_call_depth: u32,
    /// Most promised answers this side keeps for the peer at once: the
    /// outcomes of its pipelined operations ([`Promise`](crate::Promise)),
    /// each kept until the peer finishes it so that later operations can
    /// run on it. A pipelined operation beyond it fails alone with
    /// [`ErrorKind::LimitExceeded`](crate::ErrorKind). Each costs the
    /// value it holds plus about 200 bytes. Default: 10 000.
    pub max_answers: usize,
    /// What the peer may do to this side's objects. Default: deny setattr
    /// and delattr.
    pub policy: Policy,
}

/// The smallest frame limit: room for a release batch and an error reply.
pub(crate) const MIN_FRAME_LEN: usize = 1024;

impl Default for Config {
    fn default() -> Config {
        Config {
            call_timeout: Duration::from_secs(30),
            max_frame_len: 64 << 20,
            max_decoded_bytes: 128 << 20,
            handshake_timeout: Duration::from_secs(10),
            max_queued_bytes: 64 << 20,
            max_serving: 10_000,
            max_answers: 10_000,
            max_in_flight: 10_000,
            max_exported: 1_000_000,
            max_call_depth: 256,
            keepalive: Some(Duration::from_secs(30)),
            policy: Policy::default(),
        }
    }
}

impl Config {
    /// Set [`call_timeout`](Config::call_timeout).
    pub fn call_timeout(mut self, timeout: Duration) -> Config {
        self.call_timeout = timeout;
        self
    }

    /// Set [`max_frame_len`](Config::max_frame_len) (clamped to 1 KiB ..
    /// 4 GiB − 1).
    pub fn max_frame_len(mut self, bytes: usize) -> Config {
        self.max_frame_len = bytes.clamp(MIN_FRAME_LEN, u32::MAX as usize);
        self
    }

    /// Set [`max_decoded_bytes`](Config::max_decoded_bytes).
    pub fn max_decoded_bytes(mut self, bytes: usize) -> Config {
        self.max_decoded_bytes = bytes;
        self
    }

    /// Set [`handshake_timeout`](Config::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Config {
        self.handshake_timeout = timeout;
        self
    }

    /// Set [`keepalive`](Config::keepalive).
    pub fn keepalive(mut self, interval: Option<Duration>) -> Config {
        self.keepalive = interval;
        self
    }

    /// Set [`max_answers`](Config::max_answers).
    pub fn max_answers(mut self, answers: usize) -> Config {
        self.max_answers = answers;
        self
    }

    /// Set [`max_serving`](Config::max_serving).
    pub fn max_serving(mut self, calls: usize) -> Config {
        self.max_serving = calls;
        self
    }

    /// Set [`max_queued_bytes`](Config::max_queued_bytes).
    pub fn max_queued_bytes(mut self, bytes: usize) -> Config {
        self.max_queued_bytes = bytes;
        self
    }

    /// Set [`max_in_flight`](Config::max_in_flight) (at least 1).
    pub fn max_in_flight(mut self, calls: usize) -> Config {
        self.max_in_flight = calls.max(1);
        self
    }

    /// Set [`max_exported`](Config::max_exported).
    pub fn max_exported(mut self, objects: usize) -> Config {
        self.max_exported = objects;
        self
    }

    /// Set [`max_call_depth`](Config::max_call_depth).
    pub fn max_call_depth(mut self, depth: u32) -> Config {
        self.max_call_depth = depth;
        self
    }

    /// Set [`policy`](Config::policy).
    pub fn policy(mut self, policy: Policy) -> Config {
        self.policy = policy;
        self
    }
}
