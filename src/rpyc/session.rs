//! The state of one RPyC connection: the objects each side holds of the
//! other's, our pending requests, and the queue to the writer.
//!
//! The tables are tether's own: an [`ExportTable`] counts what we sent
//! (RPyC's owner count, off by one: RPyC stores 0 for the first send and
//! removes the entry when a `DEL` carries more than the count; tether
//! stores 1 and removes it when the `DEL` carries at least the count, the
//! same rule), and each Python object we hold is one [`PyObject`] per id
//! pack, counting receipts and sending `DEL` with that count when its last
//! [`NetRef`] drops.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use super::boxing::{self, RefTable};
use super::brine::Brine;
use super::envelope::Message;
use super::frame;
use super::id_pack::IdPack;
use super::remote::PyObject;
use crate::connection::depth;
use crate::error::raise;
use crate::netref::{next_uid, Local, LocalRef, NetRef, Target};
use crate::protocol::budget::HeldBytes;
use crate::service::table::{drop_objects, lock, ExportTable, Released};
use crate::{Config, Error, ErrorKind, Result, Stats, Value};

/// One entry of the import table: the proxy's token, and the proxy weakly.
type Import = (u64, Weak<Local<PyObject>>);

/// The sequence number of the replies that only carry an ACK: rpyc numbers
/// its requests from 0 up, so a negative one names none of them.
const ACK_SEQ: i64 = -1;

/// Everything about one RPyC connection.
pub(crate) struct State {
    pub(crate) number: u64,
    pub(crate) config: Config,
    pub(crate) root: NetRef,
    pub(crate) peer_addr: Option<String>,
    out: mpsc::UnboundedSender<Bytes>,
    /// Bytes queued for the writer and not yet written.
    queued: AtomicUsize,
    exports: Mutex<ExportTable>,
    /// The peer's objects we hold, by id pack: a token (so a dying proxy
    /// forgets only its own entry) and the proxy, weakly.
    imports: Mutex<HashMap<IdPack, Import>>,
    next_token: AtomicU64,
    /// Our requests awaiting replies.
    in_flight: DashMap<i64, oneshot::Sender<Result<Value>>>,
    /// One permit per request awaiting its reply
    /// ([`Config::max_in_flight`]); closed when the connection ends.
    slots: Semaphore,
    /// How deep each of our waiting requests is nested in calls being
    /// served (depth -> how many): RPyC carries no depth, so a request of
    /// the peer's is taken to be nested in the deepest call of ours that
    /// waits ([`Config::max_call_depth`]).
    waiting_depths: Mutex<BTreeMap<u32, usize>>,
    next_seq: AtomicI64,
    /// The peer's requests being served.
    pub(crate) serving: AtomicUsize,
    /// Decoded bytes of the arguments of the requests being served
    /// ([`Config::max_decoded_bytes`]).
    pub(crate) held: HeldBytes,
    pub(crate) shutdown: CancellationToken,
    /// Cancelled once the writer flushed its last bytes.
    pub(crate) writer_done: CancellationToken,
    closed: AtomicBool,
    close_reason: Mutex<Option<Error>>,
    /// Session handles plus live proxies of the peer's objects.
    user_refs: AtomicUsize,
    /// Close once `user_refs` reaches zero (the connecting side: nobody
    /// can use the connection any more). A served connection lives until
    /// the peer closes it.
    auto_close: bool,
}

impl State {
    pub(crate) fn new(
        config: Config,
        root: NetRef,
        peer_addr: Option<String>,
        out: mpsc::UnboundedSender<Bytes>,
        auto_close: bool,
    ) -> State {
        let slots = config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        State {
            number: crate::connection::shared::next_connection_number(),
            config,
            root,
            peer_addr,
            out,
            queued: AtomicUsize::new(0),
            exports: Mutex::new(ExportTable::default()),
            imports: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(0),
            in_flight: DashMap::new(),
            slots: Semaphore::new(slots),
            waiting_depths: Mutex::new(BTreeMap::new()),
            next_seq: AtomicI64::new(0),
            serving: AtomicUsize::new(0),
            held: HeldBytes::default(),
            shutdown: CancellationToken::new(),
            writer_done: CancellationToken::new(),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            user_refs: AtomicUsize::new(0),
            auto_close,
        }
    }

    pub(crate) fn user_ref_added(&self) {
        self.user_refs.fetch_add(1, Ordering::SeqCst);
    }

    /// A handle or proxy went away; on the connecting side, when none is
    /// left, say goodbye (CLOSE, never answered) and close.
    pub(crate) fn user_ref_dropped(&self) {
        if self.user_refs.fetch_sub(1, Ordering::SeqCst) == 1 && self.auto_close {
            self.close_politely(raise::closed("every handle to the connection was dropped"));
        }
    }

    /// Send CLOSE (the peer answers it by closing), then end.
    pub(crate) fn close_politely(&self, reason: Error) {
        self.notify(super::handler::CLOSE, boxing::box_tuple(Vec::new()));
        self.terminate(reason);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn closed_error(&self) -> Error {
        match lock(&self.close_reason).as_ref() {
            Some(reason) if reason.kind() == ErrorKind::Closed => reason.clone(),
            Some(reason) => raise::closed(format!("{} ({})", reason.kind(), reason.message())),
            None => raise::closed("the connection is closed"),
        }
    }

    pub(crate) fn close_reason(&self) -> Option<Error> {
        lock(&self.close_reason).clone()
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            exported: lock(&self.exports).len(),
            imported: lock(&self.imports).len(),
            in_flight: self.in_flight.len(),
            serving: self.serving.load(Ordering::Relaxed),
            // RPyC has no pipelining.
            answers: 0,
        }
    }

    /// Encode `message` and queue it for the writer. A peer that stops
    /// reading cannot make the queue grow past `max_queued_bytes`: the
    /// connection is closed instead.
    pub(crate) fn send(&self, message: &Message) -> Result<()> {
        let frame = frame::encode(&message.encode());
        self.send_frame(frame)
    }

    pub(crate) fn send_frame(&self, frame: Bytes) -> Result<()> {
        let backlog = self.queued.fetch_add(frame.len(), Ordering::AcqRel);
        if backlog > self.config.max_queued_bytes {
            self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
            let err = raise::limit(format!(
                "the peer is not reading: more than {} bytes are waiting to be sent to it",
                self.config.max_queued_bytes
            ));
            self.terminate(err.clone());
            return Err(err);
        }
        self.out.send(frame).map_err(|_| self.closed_error())
    }

    /// The writer wrote `len` bytes.
    pub(crate) fn written(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::AcqRel);
    }

    /// Send request `handler` with boxed `args` and wait for its outcome.
    ///
    /// At most [`Config::max_in_flight`] requests wait at once: one
    /// beyond waits for a slot first, within its deadline.
    pub(crate) async fn request(
        self: &Arc<Self>,
        handler: i64,
        args: Brine,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let timeout = timeout.unwrap_or(self.config.call_timeout);
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let timed_out = |waiting_for: &str| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{waiting_for} {} within {timeout:?}",
                    super::handler::name(handler)
                ),
            )
        };
        let _slot = match within(deadline, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(self.closed_error()),
            Err(_) => {
                return Err(timed_out(&format!(
                    "no free slot among the {} requests that may wait for the \
                     Python peer at once (Config::max_in_flight) for",
                    self.config.max_in_flight
                )))
            }
        };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        // Registered before sending, so the reply always finds it; removed
        // by the guard however this future ends (timeout, drop).
        self.in_flight.insert(seq, tx);
        let _guard = InFlight::new(self, seq, depth::of_new_call());
        if self.is_closed() {
            return Err(self.closed_error());
        }
        self.send(&Message::Request { seq, handler, args })?;
        match within(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => Err(timed_out("the Python peer did not answer")),
        }
    }

    /// The depth to serve a request of the peer's at: one deeper than the
    /// deepest request of ours waiting for the peer (which the peer may be
    /// serving, as a Python peer serves requests only while it waits),
    /// or 0 when none waits.
    pub(crate) fn depth_of_incoming(&self) -> u32 {
        lock(&self.waiting_depths)
            .last_key_value()
            .map_or(0, |(depth, _)| depth.saturating_add(1))
    }

    /// Send request `handler` without waiting (RPyC's async requests; the
    /// reply, when it comes, names no pending request and is dropped).
    pub(crate) fn notify(&self, handler: i64, args: Brine) {
        if self.is_closed() {
            return;
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let _ = self.send(&Message::Request { seq, handler, args });
    }

    /// The reply (or exception) for our request `seq` arrived. Nobody
    /// waiting (a timeout): the value is dropped, releasing what it held.
    pub(crate) fn complete(&self, seq: i64, result: Result<Value>) {
        match self.in_flight.remove(&seq) {
            Some((_, tx)) => {
                let _ = tx.send(result);
            }
            // The answer to a DEL (or to a request that timed out): the one
            // message of the peer's we would leave unanswered. rpyc keeps
            // Nagle's algorithm on, so the peer's next message would wait
            // for our delayed ACK, 40 ms (measured: callbacks took 45 ms
            // each, examples/python/rpyc_bench.py). A reply naming no
            // request, which rpyc ignores, carries the ACK at once.
            None => {
                let _ = self.send(&Message::Reply {
                    seq: ACK_SEQ,
                    value: boxing::labelled(1, Brine::None),
                });
            }
        }
    }

    /// The peer released `count` receipts of our object `id`.
    pub(crate) fn release(&self, id: u64, count: u64) {
        let dropped = match lock(&self.exports).release(id, count) {
            Released::Kept | Released::Unknown => None,
            Released::Removed(netref) => Some(netref),
            Released::TooMany(netref) => {
                tracing::warn!(
                    connection = self.number,
                    id,
                    count,
                    "peer released an object more times than it was sent"
                );
                Some(netref)
            }
        };
        drop_objects(self.number, dropped.into_iter().collect());
    }

    /// Our object the peer names by `pack`.
    pub(crate) fn exported(&self, pack: &IdPack) -> Result<NetRef> {
        let id = pack.table_id().unwrap_or(0);
        lock(&self.exports).get(id).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownObject,
                format!(
                    "no object {:?} with id {} on this connection (never sent, or already released)",
                    pack.name, pack.instance_id
                ),
            )
        })
    }

    /// The proxy for the peer's object `pack`, counting one more receipt.
    fn import(self: &Arc<Self>, pack: IdPack) -> NetRef {
        let mut imports = lock(&self.imports);
        if let Some((_, weak)) = imports.get(&pack) {
            // A failed upgrade: the last clone is being dropped right now;
            // its DEL covers only the receipts it saw, and a new proxy
            // starts counting afresh.
            if let Some(local) = weak.upgrade() {
                local.object.received.fetch_add(1, Ordering::Relaxed);
                return NetRef::from_target(Target::Local(local));
            }
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.user_ref_added();
        let local = Arc::new(Local {
            uid: next_uid(),
            object: PyObject::new(self.clone(), pack.clone(), token),
        });
        imports.insert(pack, (token, Arc::downgrade(&local)));
        let local: LocalRef = local;
        NetRef::from_target(Target::Local(local))
    }

    /// A proxy died: forget it (unless a newer one replaced it) and tell
    /// the peer how many times it had received the object.
    pub(crate) fn proxy_dropped(&self, pack: &IdPack, token: u64, received: u64) {
        {
            let mut imports = lock(&self.imports);
            if imports.get(pack).is_some_and(|(t, _)| *t == token) {
                imports.remove(pack);
            }
        }
        self.release_theirs(pack, received);
        self.user_ref_dropped();
    }

    /// Tell the peer we dropped `count` receipts of its object `pack`.
    pub(crate) fn release_theirs(&self, pack: &IdPack, count: u64) {
        let args = boxing::box_tuple(vec![
            boxing::yours(pack),
            boxing::labelled(1, Brine::Int(count as i128)),
        ]);
        self.notify(super::handler::DEL, args);
    }

    /// End the connection (once): fail our pending requests, drop what the
    /// peer held of ours, stop the tasks. The writer flushes what is queued
    /// and closes the socket; RPyC sends no goodbye.
    pub(crate) fn terminate(&self, reason: Error) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::debug!(connection = self.number, %reason, "RPyC connection ends");
        *lock(&self.close_reason) = Some(reason);
        self.shutdown.cancel();
        self.slots.close();
        let seqs: Vec<i64> = self.in_flight.iter().map(|e| *e.key()).collect();
        for seq in seqs {
            if let Some((_, tx)) = self.in_flight.remove(&seq) {
                let _ = tx.send(Err(self.closed_error()));
            }
        }
        let exported = lock(&self.exports).drain();
        drop_objects(self.number, exported);
    }
}

/// `work`, unless `deadline` passes first (`None`: no deadline).
async fn within<F: std::future::Future>(
    deadline: Option<tokio::time::Instant>,
    work: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await,
        None => Ok(work.await),
    }
}

/// Removes a pending request (and its depth) however its future ends.
struct InFlight<'a> {
    state: &'a State,
    seq: i64,
    depth: u32,
}

impl<'a> InFlight<'a> {
    fn new(state: &'a State, seq: i64, depth: u32) -> InFlight<'a> {
        *lock(&state.waiting_depths).entry(depth).or_insert(0) += 1;
        InFlight { state, seq, depth }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.state.in_flight.remove(&self.seq);
        let mut depths = lock(&self.state.waiting_depths);
        if let Some(n) = depths.get_mut(&self.depth) {
            *n -= 1;
            if *n == 0 {
                depths.remove(&self.depth);
            }
        }
    }
}

/// The connection's reference table for one message: exports counted while
/// boxing are remembered, so a message that cannot be sent takes them back.
pub(crate) struct Refs<'a> {
    pub(crate) state: &'a Arc<State>,
    exported: RefCell<Vec<u64>>,
}

impl<'a> Refs<'a> {
    pub(crate) fn new(state: &'a Arc<State>) -> Refs<'a> {
        Refs {
            state,
            exported: RefCell::new(Vec::new()),
        }
    }

    /// Take back the sends counted so far (the message was not sent).
    pub(crate) fn undo(self) {
        for id in self.exported.into_inner() {
            self.state.release(id, 1);
        }
    }
}

impl RefTable for Refs<'_> {
    fn export(&self, netref: &NetRef) -> Result<Brine> {
        if let Some(py) = netref.downcast_ref::<PyObject>() {
            if Arc::ptr_eq(&py.state, self.state) {
                return Ok(boxing::yours(&py.id_pack));
            }
        }
        let id = {
            let mut table = lock(&self.state.exports);
            // Checked under the lock `terminate` drains: nothing is
            // exported into a table that will never be drained again.
            if self.state.is_closed() {
                return Err(self.state.closed_error());
            }
            let before = table.len();
            let id = table.export(netref);
            if table.len() > before && before >= self.state.config.max_exported {
                // A new object past the limit: taken back at once (the
                // message still holds the object, so nothing is dropped
                // here); the message fails, and the caller undoes what
                // else it exported.
                let _ = table.release(id, 1);
                return Err(raise::limit(format!(
                    "the Python peer already holds {before} of this side's objects, \
                     the limit (Config::max_exported); it must release some first"
                )));
            }
            id
        };
        self.exported.borrow_mut().push(id);
        Ok(boxing::mine(&IdPack::ours(netref, id)))
    }

    fn yours(&self, pack: IdPack) -> Result<NetRef> {
        self.state.exported(&pack)
    }

    fn mine(&self, pack: IdPack) -> Result<NetRef> {
        Ok(self.state.import(pack))
    }
}
