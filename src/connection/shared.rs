//! The state both halves of a connection share.

use std::cell::RefCell;
use std::hash::BuildHasherDefault;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::config::{Config, MIN_FRAME_LEN};
use crate::error::raise;
use crate::netref::promise::PromiseArg;
use crate::netref::{ImportTable, NetRef, Proxy, Target};
use crate::protocol::codec::{self, Frame, NoRefs, RefCodec};
use crate::protocol::frame::{Message, WireRef};
use crate::protocol::handshake::{PeerHello, DATES_SINCE, PIPELINING_SINCE, TRACE_VERSION};
use crate::service::answers::{AnswerArg, Answers};
use crate::service::table::{drop_objects, lock, ExportTable, Released};
use crate::{Error, ErrorKind, Result, Value};

/// What the writer task is asked to send.
pub(crate) enum Outbound {
    /// An encoded frame, length prefix included.
    Frame(Bytes),
    /// A frame in parts, in order: large bytes values written from their
    /// own memory between the encoded bytes around them.
    Parts(Vec<Bytes>),
    /// Releases of the peer's objects, gathered beside the queue first
    /// (`Shared::hold_release`); the writer batches consecutive ones into
    /// one frame. Being queued only after every frame queued before the
    /// proxy was dropped, a release never overtakes a frame that still
    /// names the object.
    Releases(Vec<(u64, u64)>),
    /// Nothing to add: finish a write-through (write its tail, flush).
    Finish,
}

/// The writing half of the transport, type-erased so that whoever sends
/// may write through.
pub(crate) type Wire = Box<dyn AsyncWrite + Send + Unpin>;

/// The writing half while the writer task does not need it.
#[derive(Default)]
pub(crate) struct WireSlot {
    /// `Some` while the writer is idle: a sender finding nothing queued
    /// may then write its frame itself (see [`Shared::send_frame`]).
    pub(crate) io: Option<Wire>,
    /// The part of a written-through frame the transport did not take at
    /// once; the writer sends it before anything else.
    pub(crate) tail: Bytes,
}

/// What completes one of our requests.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The outcome of a request (or a ping's pong, as `Ok(None)`); also how
    /// a whole batch fails when the connection ends.
    One(Result<Value>),
    /// The outcomes of a batch, in order.
    Many(Vec<Result<Value>>),
}

/// One of our requests awaiting its reply.
pub(crate) struct Awaiting {
    pub(crate) reply: oneshot::Sender<Reply>,
    /// For a long deadline, when the connection's sweeper fails the call,
    /// and the timeout the caller gave; `None` when the caller keeps a
    /// timer of its own (short deadlines) or has none.
    pub(crate) deadline: Option<(tokio::time::Instant, std::time::Duration)>,
}

/// The hasher of [`Shared::in_flight`], keyed by our own request numbers.
///
/// The default (SipHash) defends against keys a peer picks to collide,
/// which these are not (this side numbers its requests), and costs more
/// than the rest of a lookup; a call looks its number up twice. One
/// multiplication by an odd constant (as FxHash does) spreads consecutive
/// numbers over dashmap's shards (chosen by the high bits) and
/// hashbrown's buckets (the low bits, where it is a bijection). Maps keyed
/// by the peer's numbers (`serving`, answers, imports) keep SipHash.
#[derive(Default, Clone, Copy)]
pub(crate) struct SeqHasher(u64);

impl SeqHasher {
    /// FxHash's 64-bit constant.
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|b| self.add(u64::from(*b)));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
}

/// The state of the task that fails calls past long deadlines
/// (`call.rs`, `sweep`), one timer for all of a connection's calls.
#[derive(Default)]
pub(crate) struct Sweeper {
    /// The task was spawned (on the first call with a long deadline).
    pub(crate) started: AtomicBool,
    /// It found no call waiting and sleeps until `wake`.
    pub(crate) idle: AtomicBool,
    pub(crate) wake: tokio::sync::Notify,
}

/// Everything about one connection, shared by its reader and writer tasks,
/// the tasks serving the peer's requests, and every handle and proxy.
pub(crate) struct Shared {
    /// A process-wide number for logs and `Debug`.
    pub(crate) number: u64,
    pub(crate) config: Config,
    /// The peer's root service name, from the handshake.
    pub(crate) peer_service: String,
    /// The largest frame we send: the smaller of our limit and the peer's.
    pub(crate) send_limit: usize,
    /// Our root service name.
    pub(crate) local_service: String,
    /// The object the peer gets from `root()`.
    pub(crate) root: NetRef,
    pub(crate) peer_addr: Option<String>,
    /// Who the peer proved to be in the handshake.
    pub(crate) peer_identity: Option<crate::PeerIdentity>,
    /// The peer takes pipelined requests (protocol 4 and later).
    pub(crate) pipelines: bool,
    /// The peer reads dates (protocol 5); an older one is sent text.
    pub(crate) dates: bool,
    /// The peer takes a trace context in requests (protocol 5 and later).
    pub(crate) traces: bool,

    pub(crate) out: mpsc::UnboundedSender<Outbound>,
    /// Messages queued for the writer and not yet written.
    pub(crate) unwritten: AtomicUsize,
    /// The reader has more of the peer's bytes buffered: replies to them
    /// are coming, so frames are left to the writer to batch.
    pub(crate) reading_more: AtomicBool,
    pub(crate) wire: Mutex<WireSlot>,
    /// Where frames are encoded: its memory comes back once the frame
    /// encoded last is written and dropped (see `encode`).
    encode_buf: Mutex<BytesMut>,
    /// Our requests awaiting replies (pings too), by sequence number.
    pub(crate) in_flight: DashMap<u64, Awaiting, BuildHasherDefault<SeqHasher>>,
    pub(crate) sweeper: Sweeper,
    /// Releases not yet queued: they go out with the next frame, or with
    /// the sweeper's next look (25 ms), whichever comes first.
    releases: Mutex<Vec<(u64, u64)>>,
    /// The peer's answers we need no more, held back as releases are
    /// (and sent with them).
    finishes: Mutex<Vec<u64>>,
    /// Releases or finishes are held back.
    pub(crate) releases_pending: AtomicBool,
    /// The runtime the connection's tasks run on, where the sweeper is
    /// started too (calls may come from other runtimes).
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    pub(crate) next_seq: AtomicU64,
    /// Our calls waiting for their reply (`in_flight.len()` without
    /// visiting every shard), for [`Shared::send_frame`].
    pub(crate) calls_waiting: AtomicUsize,
    /// Our calls allowed to wait for replies at once
    /// ([`Config::max_in_flight`]).
    pub(crate) call_slots: super::slots::Slots,
    /// The peer's requests being served, by its sequence number.
    /// Each entry carries a nonce so a finished task removes only its own
    /// entry, not a newer request that reused the number after a cancel.
    pub(crate) serving: DashMap<u64, (u64, CancellationToken)>,
    /// Decoded arguments held by the peer's calls still being served,
    /// counted against [`Config::max_decoded_bytes`].
    pub(crate) decoded_held: crate::protocol::budget::HeldBytes,
    pub(crate) next_nonce: AtomicU64,
    /// Bytes queued for the writer and not yet written.
    queued: AtomicUsize,
    /// A frame arrived since the keepalive task last looked. A flag, not
    /// a time: the reader sets it per frame, which must not cost a clock
    /// read; the keepalive task, which looks once per interval, notes the
    /// time itself (see [`Shared::heard_since_last_look`]).
    heard: AtomicBool,

    exports: Mutex<ExportTable>,
    pub(crate) imports: ImportTable,
    /// The outcomes of the peer's pipelined requests, kept for the
    /// requests that follow them.
    pub(crate) answers: Answers,

    /// Cancelled when the connection ends; the serving tasks' tokens are
    /// its children, so they stop with it.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the writer has flushed its last frame.
    pub(crate) writer_done: CancellationToken,
    closed: AtomicBool,
    /// Why the connection ended, and what its `Close` tells the peer.
    close_reason: Mutex<Option<(Error, String)>>,
    /// `Connection` handles plus live proxies; reaching zero closes.
    user_refs: AtomicUsize,
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// A fresh connection number, unique in the process across both dialects
/// (native and RPyC), so `connection=N` in a log names one connection.
pub(crate) fn next_connection_number() -> u64 {
    NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed)
}

/// The messages carrying what was held back: releases, then finishes.
fn held_messages(pairs: Vec<(u64, u64)>, finishes: Vec<u64>) -> impl Iterator<Item = Message> {
    let releases = (!pairs.is_empty()).then(|| Message::Release(pairs));
    let finishes = (!finishes.is_empty()).then(|| Message::Finish(finishes));
    releases.into_iter().chain(finishes)
}

/// Releases gathered beside the queue before they are queued at once.
const RELEASES_HELD: usize = 1024;

/// How much encoding memory a connection keeps once it sends small frames
/// again.
const ENCODE_KEEP: usize = 64 * 1024;

/// The encoding buffer is used when it has at least this much room without
/// allocating.
const ENCODE_ROOM: usize = 256;

/// A new encoding buffer, when the last one's memory is still held by
/// frames not yet written, is this large: room for a few dozen small
/// frames carved from one allocation.
const ENCODE_CHUNK: usize = 8 * 1024;

/// What a queued frame costs: its bytes plus the bookkeeping around them.
fn queued_cost(frame_len: usize) -> usize {
    frame_len + 64
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        root: NetRef,
        local_service: String,
        peer: PeerHello,
        peer_addr: Option<String>,
        out: mpsc::UnboundedSender<Outbound>,
    ) -> Shared {
        let peer_service = peer.service;
        let call_slots = super::slots::Slots::new(config.max_in_flight);
        let answers = Answers::new(config.max_answers);
        Shared {
            send_limit: config.max_frame_len.min(peer.max_frame.max(MIN_FRAME_LEN)),
            number: next_connection_number(),
            config,
            peer_service,
            local_service,
            root,
            peer_addr,
            peer_identity: peer.identity,
            pipelines: peer.version >= PIPELINING_SINCE,
            dates: peer.version >= DATES_SINCE,
            traces: peer.version >= TRACE_VERSION,
            out,
            unwritten: AtomicUsize::new(0),
            reading_more: AtomicBool::new(false),
            wire: Mutex::new(WireSlot::default()),
            encode_buf: Mutex::new(BytesMut::with_capacity(ENCODE_ROOM)),
            in_flight: DashMap::default(),
            sweeper: Sweeper::default(),
            releases: Mutex::new(Vec::new()),
            finishes: Mutex::new(Vec::new()),
            releases_pending: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::try_current().ok(),
            next_seq: AtomicU64::new(1),
            calls_waiting: AtomicUsize::new(0),
            call_slots,
            serving: DashMap::new(),
            decoded_held: Default::default(),
            next_nonce: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            heard: AtomicBool::new(false),
            exports: Mutex::new(ExportTable::default()),
            imports: ImportTable::default(),
            answers,
            shutdown: CancellationToken::new(),
            writer_done: CancellationToken::new(),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            user_refs: AtomicUsize::new(0),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The error for operations attempted after the connection ended.
    pub(crate) fn closed_error(&self) -> Error {
        match lock(&self.close_reason).as_ref().map(|(reason, _)| reason) {
            Some(reason) if reason.kind() == ErrorKind::Closed => reason.clone(),
            Some(reason) => raise::closed(format!("{} ({})", reason.kind(), reason.message())),
            None => raise::closed("the connection is closed"),
        }
    }

    /// Encode `message` for this connection. If encoding fails after some
    /// of our objects were counted as sent, those sends are taken back.
    pub(crate) fn encode(self: &Arc<Self>, message: &Message) -> Result<Bytes> {
        self.encode_with(message, codec::encode_into, Bytes::len)
    }

    /// [`encode`](Self::encode), leaving large bytes values in their own
    /// memory (see [`codec::encode_spliced_into`]); for
    /// [`send_spliced`](Self::send_spliced).
    pub(crate) fn encode_spliced(self: &Arc<Self>, message: &Message) -> Result<Frame> {
        self.encode_with(message, codec::encode_spliced_into, Frame::len)
    }

    #[inline(always)]
    fn encode_with<F>(
        self: &Arc<Self>,
        message: &Message,
        encode: impl Fn(&mut BytesMut, &Message, &dyn RefCodec, usize) -> Result<F>,
        len: impl Fn(&F) -> usize,
    ) -> Result<F> {
        let refs = Refs::new(self);
        // Reusing one buffer saves an allocation per frame, and for large
        // frames, memory the allocator would otherwise hand back to the OS
        // and fault in again every call. Its memory is reused once free
        // again (the frames made from it written), or while it has room
        // left: frames still queued or in flight (calls pipelined) are
        // carved one after another from one chunk of ENCODE_CHUNK bytes,
        // and a new chunk is started when it is used up. A frame larger
        // than what is left grows the buffer as before (a copy of what it
        // encoded so far). Only another task encoding at the same time
        // gets a buffer of its own.
        let arena = self.encode_buf.try_lock().ok().map(|mut buf| {
            if !buf.try_reclaim(ENCODE_ROOM) {
                *buf = BytesMut::with_capacity(ENCODE_CHUNK);
            }
            buf
        });
        let result = match arena {
            Some(mut buf) => {
                let result = encode(&mut buf, message, &refs, self.send_limit);
                // Memory kept for large frames is let go with the first
                // small one after them, so a connection keeps at most one
                // large buffer, and only while it sends large frames.
                if buf.capacity() > ENCODE_KEEP
                    && result.as_ref().is_ok_and(|f| len(f) <= ENCODE_KEEP)
                {
                    *buf = BytesMut::with_capacity(ENCODE_ROOM);
                }
                result
            }
            None => encode(
                &mut BytesMut::with_capacity(64),
                message,
                &refs,
                self.send_limit,
            ),
        };
        if result.is_err() {
            let sent = refs.exported.into_inner();
            if !sent.is_empty() {
                self.release_exports(sent.into_iter().map(|id| (id, 1)).collect());
            }
        }
        result
    }

    /// Queue an encoded frame for the writer.
    ///
    /// A peer that does not read what we send would make this queue grow
    /// without bound; past [`Config::max_queued_bytes`] of backlog the
    /// connection is closed instead (a frame is always accepted onto a
    /// backlog below the limit, so one maximal frame always fits).
    ///
    /// When the connection is quiet (every sequential call: nothing
    /// queued, the writer idle, no other call of ours waiting, no more of
    /// the peer's requests read), the frame is written here and now,
    /// without waking the writer task: the hand-off would cost a task
    /// wake-up per frame. Under load frames go to the writer, which gathers
    /// them into few writes.
    pub(crate) fn send_frame(self: &Arc<Self>, frame: Bytes) -> Result<()> {
        let quiet = self.is_quiet();
        // Releases held back go first, in the same write.
        let frame = if self.releases_pending.load(Ordering::Relaxed) {
            match quiet.then(|| self.releases_before(&frame)).flatten() {
                Some(both) => both,
                None => {
                    self.flush_releases();
                    frame
                }
            }
        } else {
            frame
        };
        if quiet && self.write_through(&frame) {
            return Ok(());
        }
        self.queue_frame(frame.len(), Outbound::Frame(frame))
    }

    /// Queue a frame of `len` bytes, counted against
    /// [`Config::max_queued_bytes`].
    fn queue_frame(self: &Arc<Self>, len: usize, frame: Outbound) -> Result<()> {
        let cost = queued_cost(len);
        let backlog = self.queued.fetch_add(cost, Ordering::AcqRel);
        if backlog > self.config.max_queued_bytes {
            self.queued.fetch_sub(cost, Ordering::AcqRel);
            let limit = self.config.max_queued_bytes;
            let err = raise::limit(format!(
                "the peer is not reading: more than {limit} bytes are waiting to be sent to it"
            ));
            self.terminate_saying(
                err.clone(),
                format!("this side did not read: more than {limit} bytes were waiting for it"),
            );
            return Err(err);
        }
        self.queue(frame).map_err(|_| self.closed_error())
    }

    /// [`send_frame`](Self::send_frame) for a frame that may be in parts
    /// (see [`codec::encode_spliced_into`]). Releases held back go first,
    /// on their own.
    #[inline]
    pub(crate) fn send_spliced(self: &Arc<Self>, frame: Frame) -> Result<()> {
        let parts = match frame {
            Frame::Whole(frame) => return self.send_frame(frame),
            Frame::Parts(parts) => parts,
        };
        let quiet = self.is_quiet();
        self.flush_releases();
        let len = codec::parts_len(&parts);
        if quiet && self.write_through_parts(&parts, len) {
            return Ok(());
        }
        self.queue_frame(len, Outbound::Parts(parts))
    }

    /// Nothing queued, the writer idle, no other call of ours waiting and
    /// no more of the peer's frames read: a frame may be written through.
    #[inline(always)]
    fn is_quiet(&self) -> bool {
        self.unwritten.load(Ordering::Acquire) == 0
            && !self.reading_more.load(Ordering::Relaxed)
            && self.calls_waiting.load(Ordering::Relaxed) <= 1
    }

    /// Hand `message` to the writer task.
    fn queue(&self, message: Outbound) -> Result<(), mpsc::error::SendError<Outbound>> {
        self.unwritten.fetch_add(1, Ordering::SeqCst);
        self.out.send(message)
    }

    /// Write `frame` to the transport at once if the writer is idle with
    /// nothing queued and the transport takes it without waiting; false if
    /// it must be queued instead. A frame the transport took only part of
    /// is finished by the writer, before anything queued after it.
    #[inline(always)]
    fn write_through(&self, frame: &Bytes) -> bool {
        self.write_through_with(
            frame.len(),
            |io, cx| Pin::new(io).poll_write(cx, frame),
            |written| frame.slice(written..),
        )
    }

    /// [`write_through`](Self::write_through) a frame in parts, `len`
    /// bytes in all, in one vectored write; what the transport did not
    /// take is copied for the writer to finish.
    fn write_through_parts(&self, parts: &[Bytes], len: usize) -> bool {
        self.write_through_with(
            len,
            |io, cx| {
                let slices: Vec<std::io::IoSlice<'_>> =
                    parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
                Pin::new(io).poll_write_vectored(cx, &slices)
            },
            |mut written| {
                let mut rest = BytesMut::with_capacity(len - written);
                for part in parts {
                    let skip = written.min(part.len());
                    rest.extend_from_slice(&part[skip..]);
                    written -= skip;
                }
                rest.freeze()
            },
        )
    }

    /// Write `len` bytes through with `write` (one attempt, no waiting);
    /// `rest(n)` is what is left after the first `n`, for the writer.
    #[inline(always)]
    fn write_through_with(
        &self,
        len: usize,
        write: impl FnOnce(&mut Wire, &mut Context<'_>) -> Poll<std::io::Result<usize>>,
        rest: impl FnOnce(usize) -> Bytes,
    ) -> bool {
        let Ok(mut wire) = self.wire.try_lock() else {
            return false;
        };
        // Checked again under the lock, which the writer holds when it
        // takes the transport back or gives it up.
        if self.unwritten.load(Ordering::SeqCst) != 0 || self.is_closed() {
            return false;
        }
        let Some(io) = wire.io.as_mut() else {
            return false;
        };
        let mut cx = Context::from_waker(Waker::noop());
        let written = match write(io, &mut cx) {
            Poll::Ready(Ok(n)) if n > 0 => n,
            // Not writable now, or failing: the writer deals with it.
            _ => return false,
        };
        let flushed = matches!(Pin::new(&mut *io).poll_flush(&mut cx), Poll::Ready(Ok(())));
        if written < len || !flushed {
            wire.tail = rest(written);
            let _ = self.queue(Outbound::Finish);
        }
        true
    }

    /// A frame arrived from the peer. Only a load when the flag is already
    /// set (every frame but the first after a look), so the reader does
    /// not keep writing a cache line other threads read.
    #[inline]
    pub(crate) fn heard_from_peer(&self) {
        if !self.heard.load(Ordering::Relaxed) {
            self.heard.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the peer sent anything since the last call (for keepalive).
    pub(crate) fn heard_since_last_look(&self) -> bool {
        self.heard.swap(false, Ordering::Relaxed)
    }

    /// The writer wrote `frame`.
    pub(crate) fn frame_written(&self, frame_len: usize) {
        self.queued
            .fetch_sub(queued_cost(frame_len), Ordering::AcqRel);
    }

    /// Encode and queue a message that carries no references.
    pub(crate) fn send(self: &Arc<Self>, message: &Message) -> Result<()> {
        let frame = self.encode(message)?;
        self.send_frame(frame)
    }

    /// A proxy's last clone dropped: forget it and queue its release.
    pub(crate) fn proxy_dropped(self: &Arc<Self>, id: u64, ptr: *const Proxy, received: u64) {
        self.imports.forget(id, ptr);
        if !self.is_closed() {
            self.hold_release(id, received);
        }
        self.user_ref_dropped();
    }

    /// Gather a release beside the queue rather than wake the writer for
    /// it: it leaves with the next frame, or within one look of the sweeper
    /// (which it wakes if idle), or at once when many are gathered.
    fn hold_release(self: &Arc<Self>, id: u64, count: u64) {
        let many = {
            let mut held = lock(&self.releases);
            held.push((id, count));
            self.releases_pending.store(true, Ordering::SeqCst);
            held.len() >= RELEASES_HELD
        };
        self.held_back(many);
    }

    /// Gather the finishing of the peer's answer `seq` beside the queue,
    /// as [`hold_release`](Shared::hold_release) does a release.
    pub(crate) fn hold_finish(self: &Arc<Self>, seq: u64) {
        let many = {
            let mut held = lock(&self.finishes);
            held.push(seq);
            self.releases_pending.store(true, Ordering::SeqCst);
            held.len() >= RELEASES_HELD
        };
        self.held_back(many);
    }

    /// Something was held back: send it now when `many` are, else leave
    /// it for the next frame or the sweeper.
    fn held_back(self: &Arc<Self>, many: bool) {
        if many || self.runtime.is_none() {
            self.flush_releases();
        } else {
            self.watch_deadlines();
        }
    }

    /// The releases held back, encoded, followed by `frame`; `None` if
    /// there were none or they do not fit one frame.
    fn releases_before(self: &Arc<Self>, frame: &Bytes) -> Option<Bytes> {
        let per_frame = (self.send_limit.saturating_sub(16) / 20).clamp(1, RELEASES_HELD);
        let (pairs, finishes) = {
            let mut held = lock(&self.releases);
            let mut finishes = lock(&self.finishes);
            if held.len() > per_frame || finishes.len() > per_frame {
                return None;
            }
            self.releases_pending.store(false, Ordering::SeqCst);
            (std::mem::take(&mut *held), std::mem::take(&mut *finishes))
        };
        let mut encoded = Vec::with_capacity(2);
        for message in held_messages(pairs, finishes) {
            match self.encode(&message) {
                Ok(bytes) => encoded.push(bytes),
                Err(err) => {
                    tracing::warn!(connection = self.number, %err, "cannot send releases");
                }
            }
        }
        if encoded.is_empty() {
            return None;
        }
        let len = encoded.iter().map(Bytes::len).sum::<usize>() + frame.len();
        let mut all = BytesMut::with_capacity(len);
        for bytes in encoded {
            all.extend_from_slice(&bytes);
        }
        all.extend_from_slice(frame);
        Some(all.freeze())
    }

    /// Queue the releases held back, if any.
    pub(crate) fn flush_releases(&self) {
        if !self.releases_pending.swap(false, Ordering::SeqCst) {
            return;
        }
        let pairs = std::mem::take(&mut *lock(&self.releases));
        let finishes = std::mem::take(&mut *lock(&self.finishes));
        if self.is_closed() {
            return;
        }
        if !pairs.is_empty() {
            let _ = self.queue(Outbound::Releases(pairs));
        }
        // As many per frame as the peer's frame limit takes.
        let per_frame = (self.send_limit.saturating_sub(16) / 10).max(1);
        for finishes in finishes.chunks(per_frame) {
            match codec::encode(
                &Message::Finish(finishes.to_vec()),
                &NoRefs,
                self.send_limit,
            ) {
                Ok(frame) => {
                    // Counted as `send_frame` counts, since the writer
                    // uncounts every frame it writes; too small to check
                    // against the backlog limit.
                    self.queued
                        .fetch_add(queued_cost(frame.len()), Ordering::AcqRel);
                    let _ = self.queue(Outbound::Frame(frame));
                }
                Err(err) => {
                    tracing::warn!(connection = self.number, %err, "cannot send finishes")
                }
            }
        }
    }

    /// The peer released objects it received.
    pub(crate) fn release_exports(&self, pairs: Vec<(u64, u64)>) {
        let mut dropped = Vec::new();
        {
            let mut table = lock(&self.exports);
            for (id, count) in pairs {
                match table.release(id, count) {
                    Released::Kept => {}
                    Released::Removed(netref) => dropped.push(netref),
                    Released::TooMany(netref) => {
                        tracing::warn!(
                            connection = self.number,
                            id,
                            count,
                            "peer released an object more times than it was sent"
                        );
                        dropped.push(netref);
                    }
                    // Harmless: a stale or forged id releases nothing.
                    Released::Unknown => {
                        tracing::debug!(connection = self.number, id, "release of an unknown id")
                    }
                }
            }
        }
        // Objects are dropped here, outside the lock: their destructors may
        // come back into the table.
        drop_objects(self.number, dropped);
    }

    /// Export-table size, for [`Stats`](super::Stats).
    pub(crate) fn exported(&self) -> usize {
        lock(&self.exports).len()
    }

    /// The exported object `id`, for serving a request on it.
    pub(crate) fn exported_object(&self, id: u64) -> Result<NetRef> {
        lock(&self.exports)
            .get(id)
            .ok_or_else(|| raise::unknown_object(id))
    }

    pub(crate) fn user_ref_added(&self) {
        self.user_refs.fetch_add(1, Ordering::SeqCst);
    }

    /// A handle or proxy went away; when none is left nobody can use the
    /// connection any more, so close it.
    pub(crate) fn user_ref_dropped(&self) {
        if self.user_refs.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.terminate_saying(
                raise::closed("every handle to the connection was dropped"),
                "it dropped every handle to the connection".to_string(),
            );
        }
    }

    /// End the connection (once): stop the tasks, fail every pending call
    /// with `reason`, release everything the peer held. The writer still
    /// sends what was queued, then a `Close` saying why (see [`farewell`]).
    pub(crate) fn terminate(&self, reason: Error) {
        let farewell = farewell(&reason);
        self.terminate_saying(reason, farewell);
    }

    /// [`terminate`](Shared::terminate), telling the peer `farewell`: why,
    /// in words true on its side (see [`farewell`]).
    pub(crate) fn terminate_saying(&self, reason: Error, farewell: String) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::debug!(connection = self.number, %reason, "connection ends");
        *lock(&self.close_reason) = Some((reason, farewell));

        // A call registered after this drain sees `closed` and fails itself.
        let seqs: Vec<u64> = self.in_flight.iter().map(|e| *e.key()).collect();
        for seq in seqs {
            if let Some((_, waiting)) = self.in_flight.remove(&seq) {
                let _ = waiting.reply.send(Reply::One(Err(self.closed_error())));
            }
        }
        // Take the objects out first, drop them after the lock is released.
        let exported = lock(&self.exports).drain();
        drop_objects(self.number, exported);
        // Answers still pending hold work that holds this connection.
        self.answers.clear();
        // Last, so that whoever `Connection::closed` wakes sees every call
        // failed and every exported object released.
        self.shutdown.cancel();
    }

    /// The reason the connection ended, once it has.
    pub(crate) fn close_reason(&self) -> Option<Error> {
        lock(&self.close_reason)
            .as_ref()
            .map(|(reason, _)| reason.clone())
    }

    /// What the `Close` frame tells the peer, once the connection ended.
    pub(crate) fn farewell(&self) -> String {
        lock(&self.close_reason)
            .as_ref()
            .map(|(_, farewell)| farewell.clone())
            .unwrap_or_default()
    }
}

/// What a `Close` tells the peer about `reason`, which the peer reads as
/// "the peer closed the connection: {farewell}", or without the colon when
/// it is empty. Our messages speak from this side ("the peer sent ...";
/// "closed by this side"), which would be false there, so: nothing for a
/// plain close, and the message quoted as ours otherwise. Reasons worth
/// saying in the peer's own terms are given to
/// [`terminate_saying`](Shared::terminate_saying) instead.
fn farewell(reason: &Error) -> String {
    match reason.kind() {
        ErrorKind::Closed => String::new(),
        kind => format!("it reported a {kind} error: \"{}\"", reason.message()),
    }
}

/// The connection's reference codec: our objects get ids in the export
/// table, the peer's come back as its ids, and proxies of other connections
/// are exported as forwarders.
pub(crate) struct Refs<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    /// Ids counted as sent while encoding, to take back if encoding fails.
    pub(crate) exported: RefCell<Vec<u64>>,
    /// A decoded value named one of our answers.
    pub(crate) named_answers: std::cell::Cell<bool>,
}

impl<'a> Refs<'a> {
    /// A codec for one message.
    pub(crate) fn new(shared: &'a Arc<Shared>) -> Refs<'a> {
        Refs {
            shared,
            exported: RefCell::new(Vec::new()),
            named_answers: std::cell::Cell::new(false),
        }
    }
}

impl RefCodec for Refs<'_> {
    fn reads_dates(&self) -> bool {
        self.shared.dates
    }

    fn export(&self, netref: &NetRef) -> Result<WireRef> {
        match &netref.target {
            Target::Remote(proxy) if Arc::ptr_eq(&proxy.conn, self.shared) => {
                return Ok(WireRef::Yours(proxy.id));
            }
            Target::Local(_) => {
                if let Some(promise) = netref.downcast_ref::<PromiseArg>() {
                    return promise.answer_on(self.shared).map(WireRef::Answer);
                }
            }
            Target::Remote(_) => {}
        }
        let id = {
            let mut table = lock(&self.shared.exports);
            // Checked under the lock `terminate` drains: nothing is exported
            // into a table that will never be drained again.
            if self.shared.is_closed() {
                return Err(self.shared.closed_error());
            }
            let before = table.len();
            let id = table.export(netref);
            if table.len() > before && before >= self.shared.config.max_exported {
                // A new object past the limit: taken back at once (the
                // message still holds the object, so nothing is dropped
                // here), and the whole message fails with what it sent.
                let _ = table.release(id, 1);
                return Err(raise::limit(format!(
                    "the peer already holds {before} of this side's objects, \
                     the limit (Config::max_exported); it must release some first"
                )));
            }
            id
        };
        self.exported.borrow_mut().push(id);
        Ok(WireRef::Mine(id))
    }

    fn import(&self, wire: WireRef) -> Result<NetRef> {
        match wire {
            WireRef::Yours(id) => self.shared.exported_object(id),
            WireRef::Answer(id) => {
                let answer = self.shared.answers.get(id)?;
                self.named_answers.set(true);
                Ok(NetRef::new(AnswerArg(answer)))
            }
            WireRef::Mine(id) => Ok(NetRef::from_target(Target::Remote(
                self.shared.imports.import(id, self.shared),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_request_numbers_spread_over_shards_and_buckets() {
        use std::hash::BuildHasher;
        let hasher = BuildHasherDefault::<SeqHasher>::default();
        let hashes: Vec<u64> = (1..=256u64).map(|n| hasher.hash_one(n)).collect();
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 56).collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xff).collect();
        assert!(high.len() > 128, "{} distinct high bytes", high.len());
        assert_eq!(low.len(), 256, "the low byte is a bijection");
    }

    #[test]
    fn a_farewell_quotes_our_words_or_says_nothing() {
        assert_eq!(farewell(&raise::closed("closed by this side")), "");
        let violation = raise::protocol("protocol violation: the peer sent a frame of 9 bytes");
        assert_eq!(
            farewell(&violation),
            "it reported a protocol error: \"protocol violation: the peer sent a frame of 9 bytes\""
        );
    }
}
