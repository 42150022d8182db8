//! The two tasks that move bytes: one reads and routes frames, one writes.
//!
//! The reader never waits on anything but the socket (and, for a large
//! frame, its decoding on a blocking thread, `protocol::aside`): replies complete a
//! pending call, requests run in the reader as far as they go without
//! waiting and continue in a task of their own if they must wait, so a
//! side blocked in a call still serves the peer's callbacks, to any depth.
//! (Object code that computes for long without awaiting holds up the
//! connection's reading meanwhile, as it would hold a runtime thread.)
//! The writer takes everything queued since its last write and sends it in
//! one write, so many small frames (replies, releases) cost one system
//! call; under load it lets the other tasks queue theirs first (one yield),
//! and large frames go out from where they were encoded, uncopied.

use std::future::Future;
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use super::incoming;
use super::shared::{Outbound, Shared, Wire};
use crate::error::raise;
use crate::protocol::aside;
use crate::protocol::capped::Capped;
use crate::protocol::frame::Message;
use crate::protocol::framing::{FrameDecoder, FrameError};
use crate::service::table::lock;
use crate::{Error, ErrorKind};

/// Frames at least this large are decoded on a blocking thread, which
/// this connection's reader awaits (keeping its frames in order) while the
/// runtime's workers go on serving every other connection: decoding a
/// frame of many small values takes milliseconds per megabyte.
const DECODE_ASIDE: usize = 64 * 1024;

/// Stop gathering frames into one write beyond this many bytes.
const MAX_COALESCE: usize = 256 * 1024;

/// Frames at least this large are written from where they were encoded
/// rather than copied into the write buffer.
const DIRECT_WRITE: usize = 16 * 1024;

/// Most releases per frame (each at most 20 bytes encoded).
const RELEASES_PER_FRAME: usize = 1024;

/// How long a closing writer may spend flushing its last frames.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

pub(crate) async fn read_loop<R>(shared: Arc<Shared>, io: R)
where
    R: AsyncRead + Unpin,
{
    let mut frames = FramedRead::new(
        Capped::new(io),
        FrameDecoder::new(shared.config.max_frame_len),
    );
    // One waiter for the whole loop, polled only when no frame is ready
    // (a new one per frame would join and leave the token's waiter list
    // each time); a stream of frames cannot hide the end, since `closed`
    // is checked before each.
    let cancelled = shared.shutdown.cancelled();
    tokio::pin!(cancelled);
    let reason = loop {
        let next = std::future::poll_fn(|cx| {
            if shared.is_closed() {
                return Poll::Ready(None);
            }
            match frames.poll_next_unpin(cx) {
                Poll::Ready(next) => Poll::Ready(Some(next)),
                Poll::Pending => cancelled.as_mut().poll(cx).map(|()| None),
            }
        })
        .await;
        let Some(next) = next else { return };
        match next {
            None => break raise::closed("the peer closed the connection"),
            Some(Err(FrameError::TooLarge { len, max })) => {
                break raise::protocol(format!(
                    "protocol violation: the peer sent a frame of {len} bytes, over the limit of {max} bytes"
                ))
            }
            Some(Err(FrameError::Io(e))) => {
                break Error::with_source(ErrorKind::Transport, format!("read failed: {e}"), e)
            }
            Some(Ok(payload)) if payload.len() >= DECODE_ASIDE => {
                shared.heard_from_peer();
                shared.reading_more.store(false, Ordering::Relaxed);
                let decoding = shared.clone();
                let payload = payload.freeze();
                let decoding = aside::decode_aside(move || {
                    incoming::decode_frame(&decoding, &payload)
                });
                let decoded = tokio::select! {
                    biased;
                    () = cancelled.as_mut() => return,
                    decoded = decoding => decoded,
                };
                let decoded =
                    decoded.unwrap_or_else(|| Err(raise::protocol("decoding a frame panicked")));
                if let Err(err) = decoded.and_then(|d| incoming::dispatch(&shared, d)) {
                    break err;
                }
            }
            Some(Ok(payload)) => {
                shared.heard_from_peer();
                let more = !frames.read_buffer().is_empty();
                shared.reading_more.store(more, Ordering::Relaxed);
                if let Err(err) = incoming::handle_frame(&shared, payload) {
                    break err;
                }
            }
        }
    };
    if matches!(
        reason.kind(),
        ErrorKind::Protocol | ErrorKind::LimitExceeded
    ) {
        tracing::warn!(connection = shared.number, %reason, "closing connection");
    }
    shared.terminate(reason);
}

pub(crate) async fn write_loop<W>(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    io: W,
) where
    W: AsyncWrite + Send + Unpin + 'static,
{
    let mut batch = Batch::new(shared.clone());
    // The transport while this task writes; while it is idle, in
    // `shared.wire`, where a sender finding nothing queued writes its
    // frame itself (`Shared::send_frame`).
    let mut held: Option<Wire> = None;
    lock(&shared.wire).io = Some(Box::new(io));
    let shutdown = shared.shutdown.clone();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        // A frame already waiting when the last write ends means other
        // tasks are queueing as fast as we write: then give them one turn
        // before writing, so their frames join this write (fewer, larger
        // writes). A lone frame on an idle connection is written at once.
        let (first, busy) = match rx.try_recv() {
            Ok(msg) => (Some(msg), true),
            Err(_) => {
                let msg = tokio::select! {
                    biased;
                    msg = rx.recv() => msg,
                    _ = &mut cancelled => None,
                };
                (msg, false)
            }
        };
        let Some(first) = first else { break };
        if held.is_none() {
            held = take_wire(&shared, &mut batch);
        }
        let Some(io) = held.as_mut() else { break };
        batch.add(first);
        batch.drain(&mut rx);
        if busy && batch.len < MAX_COALESCE {
            tokio::task::yield_now().await;
            batch.drain(&mut rx);
        }
        batch.flush_releases();
        let outcome = {
            let write = batch.write(io);
            tokio::pin!(write);
            tokio::select! {
                result = &mut write => Written::Done(result),
                // Closing while a write is blocked: finish it if the peer
                // takes it soon (so the Close frame lands on a frame
                // boundary); a peer that stopped reading cannot hold up
                // the close.
                _ = &mut cancelled => {
                    match tokio::time::timeout(CLOSE_FLUSH, &mut write).await {
                        Ok(_) => Written::Closing,
                        Err(_) => Written::Stuck,
                    }
                }
            }
        };
        match outcome {
            Written::Done(Ok(())) => {
                let messages = batch.messages;
                batch.clear();
                // Everything queued is written: give the transport back.
                let mut wire = lock(&shared.wire);
                if shared.unwritten.fetch_sub(messages, Ordering::SeqCst) == messages {
                    wire.io = held.take();
                }
            }
            Written::Done(Err(e)) => {
                shared.terminate(Error::with_source(
                    ErrorKind::Transport,
                    format!("write failed: {e}"),
                    e,
                ));
                break;
            }
            Written::Closing => break,
            Written::Stuck => {
                shared.writer_done.cancel();
                return;
            }
        }
    }

    // Closing: send what is still queued (releases are moot now) and a
    // Close saying why, within a bounded time (the peer may not be reading).
    batch.clear();
    if held.is_none() {
        held = take_wire(&shared, &mut batch);
    }
    if let Some(mut io) = held {
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Outbound::Frame(frame) => batch.add_bytes(frame),
                Outbound::Parts(parts) => parts.into_iter().for_each(|p| batch.add_bytes(p)),
                Outbound::Releases(_) | Outbound::Finish => {}
            }
        }
        if let Ok(frame) = shared.encode(&Message::Close(shared.farewell())) {
            batch.add_bytes(frame);
        }
        let _ = tokio::time::timeout(CLOSE_FLUSH, async {
            let _ = batch.write(&mut io).await;
            let _ = io.shutdown().await;
        })
        .await;
    }
    shared.writer_done.cancel();
}

/// Take the transport back from `shared.wire` (for good: senders no longer
/// write through), with what is left of a frame written through, which
/// goes first into `batch`. `None` only if it was lost.
fn take_wire(shared: &Shared, batch: &mut Batch) -> Option<Wire> {
    let mut wire = lock(&shared.wire);
    let tail = std::mem::take(&mut wire.tail);
    if !tail.is_empty() {
        batch.add_bytes(tail);
    }
    wire.io.take()
}

enum Written {
    Done(std::io::Result<()>),
    Closing,
    Stuck,
}

/// Write and flush (free on TCP, needed by buffering transports).
async fn write_and_flush<W: AsyncWrite + Unpin>(io: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

/// Write `parts` in order, as few system calls as the transport allows,
/// then flush.
async fn write_parts<W: AsyncWrite + Unpin>(
    io: &mut W,
    parts: &mut [Bytes],
) -> std::io::Result<()> {
    let mut first = 0;
    while first < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts[first..].iter().map(|p| IoSlice::new(p)).collect();
        let mut written = io.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let part = &mut parts[first];
            if written >= part.len() {
                written -= part.len();
                first += 1;
            } else {
                part.advance(written);
                written = 0;
            }
        }
    }
    io.flush().await
}

/// The bytes of one write, with consecutive releases gathered into one
/// frame placed where the first of them was queued. Small frames are
/// copied into one buffer; a large one is written from where it was
/// encoded, between the buffered bytes before and after it.
struct Batch {
    shared: Arc<Shared>,
    buf: BytesMut,
    /// Set when a large frame was queued: everything to write, in order
    /// (`buf` holds only what came after the last of them).
    parts: Vec<Bytes>,
    /// Bytes gathered in all.
    len: usize,
    /// Messages taken from the queue.
    messages: usize,
    releases: Vec<(u64, u64)>,
    /// Releases that fit in one frame the peer accepts.
    per_frame: usize,
}

impl Batch {
    fn new(shared: Arc<Shared>) -> Batch {
        let per_frame = (shared.send_limit.saturating_sub(16) / 20).clamp(1, RELEASES_PER_FRAME);
        Batch {
            shared,
            buf: BytesMut::with_capacity(8 * 1024),
            parts: Vec::new(),
            len: 0,
            messages: 0,
            releases: Vec::new(),
            per_frame,
        }
    }

    /// Take what is queued, up to [`MAX_COALESCE`] bytes.
    fn drain(&mut self, rx: &mut mpsc::UnboundedReceiver<Outbound>) {
        while self.len < MAX_COALESCE {
            match rx.try_recv() {
                Ok(msg) => self.add(msg),
                Err(_) => break,
            }
        }
    }

    fn add(&mut self, msg: Outbound) {
        self.messages += 1;
        match msg {
            Outbound::Frame(frame) => {
                self.flush_releases();
                self.shared.frame_written(frame.len());
                self.add_bytes(frame);
            }
            Outbound::Parts(parts) => {
                self.flush_releases();
                self.shared
                    .frame_written(crate::protocol::codec::parts_len(&parts));
                for part in parts {
                    self.add_bytes(part);
                }
            }
            Outbound::Releases(pairs) => {
                for (id, count) in pairs {
                    self.add_release(id, count);
                }
            }
            // The write and flush that follow are the point.
            Outbound::Finish => {}
        }
    }

    fn add_release(&mut self, id: u64, count: u64) {
        self.releases.push((id, count));
        if self.releases.len() == self.per_frame {
            self.flush_releases();
        }
    }

    /// Append `bytes` to what is written next.
    fn add_bytes(&mut self, bytes: Bytes) {
        self.len += bytes.len();
        if bytes.len() >= DIRECT_WRITE {
            if !self.buf.is_empty() {
                self.parts.push(self.buf.split().freeze());
            }
            self.parts.push(bytes);
        } else {
            self.buf.extend_from_slice(&bytes);
        }
    }

    /// Write everything gathered.
    async fn write<W: AsyncWrite + Unpin>(&mut self, io: &mut W) -> std::io::Result<()> {
        if self.parts.is_empty() {
            return write_and_flush(io, &self.buf).await;
        }
        if !self.buf.is_empty() {
            self.parts.push(self.buf.split().freeze());
        }
        write_parts(io, &mut self.parts).await
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.parts.clear();
        self.len = 0;
        self.messages = 0;
    }

    fn flush_releases(&mut self) {
        if self.releases.is_empty() {
            return;
        }
        let pairs = std::mem::take(&mut self.releases);
        match self.shared.encode(&Message::Release(pairs)) {
            Ok(frame) => {
                self.len += frame.len();
                self.buf.extend_from_slice(&frame)
            }
            Err(err) => {
                tracing::warn!(connection = self.shared.number, %err, "cannot send releases")
            }
        }
    }
}

/// Ping a quiet peer every `interval`; a peer silent for two intervals is
/// declared dead, so its pending calls fail and its objects are released
/// (half-open TCP connections included).
///
/// The reader only flags that a frame arrived; this task turns the flag
/// into a time once per tick, so "last heard" is the tick that first saw
/// the frame (at most one interval late, which the two-interval rule
/// absorbs: a peer is still declared dead after two silent ticks).
pub(crate) async fn keepalive(shared: Arc<Shared>, interval: Duration) {
    let mut last_heard = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(last_heard + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            now = ticks.tick() => now,
        };
        if shared.heard_since_last_look() {
            last_heard = now;
        }
        let silent = now.saturating_duration_since(last_heard);
        if silent >= interval * 2 {
            shared.terminate_saying(
                Error::new(
                    ErrorKind::Timeout,
                    format!("the peer stopped answering (nothing heard for {silent:?})"),
                ),
                format!("it heard nothing from this side for {silent:?}"),
            );
            return;
        }
        if silent >= interval {
            let seq = shared
                .next_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // The pong is matched by nothing: any frame from the peer counts.
            let _ = shared.send(&Message::Ping(seq));
        }
    }
}
