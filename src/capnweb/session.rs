//! One Cap'n Web session: its two tables and what each message does to
//! them.
//!
//! **Exports** are what the peer can name: `0` is the root; positive ids
//! are the peer's calls (each `push` takes the next one), kept as
//! [`Answer`]s so that calls sent next can run on their results before
//! the peer has seen them (pipelining); negative ids are objects sent to
//! the peer, chosen here, counted per sending until the peer releases
//! them. **Imports** are what the peer sent us: its objects (a JavaScript
//! function, an `RpcTarget`), each held as a [`PeerObject`] in an
//! ordinary [`NetRef`], and the calls made on them (`questions`), waiting
//! for the peer's `resolve` or `reject`.
//!
//! Messages are read in order, by one reader: a call's target, arguments
//! and turn are all fixed when its message is read, and the call itself
//! is polled once there, so calls start in the order they were sent. What
//! must wait (a call that awaits, a pull of an unfinished answer) goes on
//! in a task of its own, ended with the session.
//!
//! Nothing here knows the transport: a WebSocket or an HTTP batch feeds
//! [`Session::receive`] and sends what comes out of the session's queue.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Waker};

use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::Config;
use super::eval::{Budget, Eval, Reading};
use super::peer::PeerObject;
use super::wire;
use crate::error::{raise, RemoteError};
use crate::netref::{LocalRef, Target};
use crate::protocol::frame::TraceContext;
use crate::service::answers::{Answer, Outcome};
use crate::service::object::CallContext;
use crate::service::policy::Policy;
use crate::service::table::lock;
use crate::{Error, NetRef, PeerIdentity, Result, Value};

/// One session, shared by its reader, its tasks and the peer's objects
/// it holds (weakly).
pub(crate) struct Session {
    pub(super) policy: Policy,
    pub(super) config: Config,
    pub(super) identity: Option<PeerIdentity>,
    pub(super) tables: Mutex<Tables>,
    /// Peer objects dropped since the reader last looked: their import
    /// entries are cleared then (a drop may happen anywhere, even while
    /// the tables are locked).
    dropped: Mutex<Vec<i64>>,
    /// Messages for the peer, in order; the transport sends them.
    out: mpsc::UnboundedSender<String>,
    /// Bytes of those messages not yet handed to the socket (a WebSocket
    /// loop counts them off as it takes them to write; a batch's whole
    /// answer counts).
    queued: AtomicUsize,
    /// Cancelled when the session ends: work still running stops.
    pub(super) ended: CancellationToken,
    /// The peer's calls running now.
    pub(super) running: AtomicUsize,
    /// Pulled answers not yet sent (an HTTP batch answers when none is).
    unsent: watch::Sender<usize>,
    /// Where `this` is, for the peer objects made from it.
    pub(super) me: Weak<Session>,
    /// What kind of session this is.
    kind: Kind,
    /// The peer's objects held (their proxies alive): a client's session
    /// ends when the last goes.
    peer_objects: AtomicUsize,
    /// Bytes of the peer's calls kept until released, against
    /// [`Config::max_held`].
    held: AtomicUsize,
    /// The span the request that opened the session named in its
    /// `traceparent` header: the peer's calls are its children.
    #[cfg(feature = "otel")]
    trace_parent: std::sync::OnceLock<TraceContext>,
}

/// What a session serves, and to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A server's WebSocket session.
    Socket,
    /// A server's HTTP batch: the peer cannot answer calls on its objects.
    Batch,
    /// Our session as a client of another Cap'n Web server: it ends when
    /// the last of that server's objects we hold is dropped.
    Client,
}

/// The session's two tables.
pub(crate) struct Tables {
    pub(super) exports: HashMap<i64, Export>,
    /// The export id of each of our objects sent to the peer, by identity,
    /// so an object sent twice is one stub.
    by_uid: HashMap<u64, i64>,
    /// The id the peer's next push takes.
    next_push: i64,
    /// The id our next sent object takes (counting down from -1).
    next_export: i64,
    /// The peer's objects we hold, by the peer's id.
    pub(super) imports: HashMap<i64, std::sync::Weak<crate::netref::Local<dyn crate::Object>>>,
    /// Our calls on the peer's objects, by the id our push took.
    questions: HashMap<i64, oneshot::Sender<Result<Eval>>>,
    /// The id our next push takes.
    next_question: i64,
}

/// What an export id names.
pub(super) enum Export {
    /// An object of ours, sent `sent` times and not yet released as often.
    Object { netref: NetRef, sent: u64 },
    /// The outcome of one of the peer's calls: kept for the calls made on
    /// it (a plain value up to [`MAX_KEPT_VALUE`](crate::service::answers::MAX_KEPT_VALUE)),
    /// and whole for its pull, until pulled.
    Answer {
        answer: Answer,
        reply: Option<crate::BoxFuture<'static, Outcome>>,
        /// The bytes of its message, counted in [`Session::held`].
        held: usize,
    },
}

impl Tables {
    fn new(root: &NetRef) -> Tables {
        let mut exports = HashMap::new();
        exports.insert(
            0,
            Export::Object {
                netref: root.clone(),
                sent: 1,
            },
        );
        Tables {
            exports,
            by_uid: HashMap::new(),
            next_push: 1,
            next_export: -1,
            imports: HashMap::new(),
            questions: HashMap::new(),
            next_question: 1,
        }
    }

    /// Entries held, against [`Config::max_entries`].
    fn len(&self) -> usize {
        self.exports.len() + self.imports.len() + self.questions.len()
    }
}

/// How many entries one session holds, for [`CapnWeb::stats`](super::CapnWeb::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// The peer's calls kept (not yet released) and our objects it holds;
    /// the root is not counted.
    pub exports: usize,
    /// The peer's objects tether holds, and our calls on them not yet
    /// answered.
    pub imports: usize,
}

impl Session {
    /// A session serving `root` under `policy`; what it sends goes to `out`.
    pub(crate) fn new(
        root: NetRef,
        policy: Policy,
        config: Config,
        identity: Option<PeerIdentity>,
        out: mpsc::UnboundedSender<String>,
        kind: Kind,
    ) -> Arc<Session> {
        Arc::new_cyclic(|me| Session {
            tables: Mutex::new(Tables::new(&root)),
            policy,
            config,
            identity,
            dropped: Mutex::default(),
            out,
            queued: AtomicUsize::new(0),
            ended: CancellationToken::new(),
            running: AtomicUsize::new(0),
            unsent: watch::channel(0).0,
            me: me.clone(),
            kind,
            peer_objects: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            #[cfg(feature = "otel")]
            trace_parent: std::sync::OnceLock::new(),
        })
    }

    /// Make the peer's calls children of the span `parent` (from the
    /// `traceparent` header of the request that opened the session);
    /// before the first message.
    #[cfg(feature = "otel")]
    pub(crate) fn set_trace_parent(&self, parent: TraceContext) {
        let _ = self.trace_parent.set(parent);
    }

    /// The span the peer's calls are children of, if any.
    pub(super) fn trace_parent(&self) -> Option<TraceContext> {
        #[cfg(feature = "otel")]
        return self.trace_parent.get().copied();
        #[cfg(not(feature = "otel"))]
        None
    }

    /// Read one message from the peer. An error breaks the protocol (or a
    /// limit): the session must end, after [`abort`](Session::abort).
    pub(crate) fn receive(self: &Arc<Self>, text: &str) -> Result<()> {
        self.forget_dropped();
        let message = wire::parse(text, self.config.max_depth)?;
        let items = message
            .as_array()
            .filter(|items| !items.is_empty())
            .ok_or_else(|| raise::protocol("a message that is not a non-empty array"))?;
        let kind = items[0].as_str().unwrap_or("");
        match (kind, &items[1..]) {
            ("push", [expression]) => self.push(expression, false, text.len()),
            ("stream", [expression]) => self.push(expression, true, text.len()),
            ("pull", [id]) => self.pull(id_of(id)?),
            ("resolve", [id, expression]) => {
                let id = id_of(id)?;
                // Read now, in order: the objects in it are ours from here,
                // and let go (released) if nobody waits for them.
                let eval = self.read(expression)?;
                self.answered(id, Ok(eval))
            }
            ("reject", [id, expression]) => {
                let location = "in a call on the peer's object";
                let err = expression
                    .as_array()
                    .filter(|e| e.first().and_then(Json::as_str) == Some("error"))
                    .and_then(|e| wire::read_error(e, location))
                    .unwrap_or_else(|| Error::app("Error", format!("rejected with {expression}")));
                self.answered(id_of(id)?, Err(err))
            }
            ("release", [id, count]) => {
                let count = count
                    .as_u64()
                    .ok_or_else(|| raise::protocol("a release count that is not a number"))?;
                self.release(id_of(id)?, count)
            }
            ("abort", [reason, ..]) => Err(raise::closed(format!(
                "the peer aborted the session: {}",
                describe_abort(reason)
            ))),
            ("pipe", []) => {
                // A pipe takes the next push id; what is written to it
                // fails, and so does the call its readable end is passed to.
                let mut tables = lock(&self.tables);
                self.check_room(&tables)?;
                let id = tables.next_push;
                tables.next_push += 1;
                let refused = NetRef::new(super::peer::NoStreams);
                tables.exports.insert(
                    id,
                    Export::Object {
                        netref: refused,
                        sent: 1,
                    },
                );
                Ok(())
            }
            _ => Err(raise::protocol(format!(
                "an unknown or malformed message: {}",
                shorten(&message)
            ))),
        }
    }

    /// Tell the peer why the session ends (best effort), and end it.
    pub(crate) fn abort(&self, why: &Error) {
        let reason = wire::error(&why.to_remote("in tether's Cap'n Web session"));
        // Past the bound too: it is the last message.
        self.enqueue(json!(["abort", reason]).to_string());
        self.end();
    }

    /// End the session: work still running stops, every object the peer
    /// held is let go, and calls on the peer's objects fail.
    pub(crate) fn end(&self) {
        self.ended.cancel();
        let (exports, questions) = {
            let mut tables = lock(&self.tables);
            tables.by_uid.clear();
            tables.imports.clear();
            (
                std::mem::take(&mut tables.exports),
                std::mem::take(&mut tables.questions),
            )
        };
        // Dropped outside the lock: dropping runs object code.
        drop(exports);
        for (_, waiting) in questions {
            let _ = waiting.send(Err(raise::closed("the Cap'n Web session ended")));
        }
    }

    /// Wait until every pulled answer has been sent (or the session
    /// ended).
    pub(crate) async fn drained(&self) {
        let mut unsent = self.unsent.subscribe();
        tokio::select! {
            _ = unsent.wait_for(|n| *n == 0) => {}
            () = self.ended.cancelled() => {}
        }
    }

    /// How many entries the session holds.
    pub(crate) fn stats(&self) -> SessionStats {
        self.forget_dropped();
        let tables = lock(&self.tables);
        SessionStats {
            exports: tables.exports.len().saturating_sub(1),
            imports: tables.imports.len() + tables.questions.len(),
        }
    }

    /// The context the peer's calls run in.
    pub(super) fn call_context(&self) -> CallContext {
        CallContext {
            connection: None,
            handle: Default::default(),
            deadline: Some(Instant::now() + self.config.call_timeout),
            identity: self.identity.clone(),
        }
    }

    /// Queue `message` for the peer. Past [`Config::max_queued`] bytes
    /// waiting to be written, the peer is taken for one that does not
    /// read what it asked for: the session ends with an abort saying so,
    /// and the message is dropped.
    pub(super) fn send(&self, message: Json) {
        let text = message.to_string();
        let max = self.config.max_queued;
        if self.queued.load(Ordering::Relaxed) + text.len() > max {
            if !self.ended.is_cancelled() {
                self.abort(&raise::limit(format!(
                    "more than {max} bytes of messages wait for the peer to read them \
                     (capnweb::Config::max_queued)"
                )));
            }
            return;
        }
        self.enqueue(text);
    }

    /// Queue `text` for the peer, counted.
    fn enqueue(&self, text: String) {
        self.queued.fetch_add(text.len(), Ordering::Relaxed);
        let _ = self.out.send(text);
    }

    /// `bytes` of the queued messages were written to the peer.
    pub(super) fn written(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// `["push", expr]`: evaluate the expression as the peer's next call.
    fn push(self: &Arc<Self>, expression: &Json, stream: bool, size: usize) -> Result<()> {
        let held = self.held.fetch_add(size, Ordering::Relaxed) + size;
        if held > self.config.max_held {
            self.held.fetch_sub(size, Ordering::Relaxed);
            return Err(raise::limit(format!(
                "the peer's calls not yet released take more than {} bytes \
                 (capnweb::Config::max_held)",
                self.config.max_held
            )));
        }
        let (id, eval) = {
            let mut tables = lock(&self.tables);
            let read = self.check_room(&tables).and_then(|()| {
                let mut reading = Reading {
                    tables: &mut tables,
                    budget: Budget::new(self.config.max_message),
                };
                self.eval(expression, &mut reading)
            });
            let eval = match read {
                Ok(eval) => eval,
                Err(err) => {
                    self.held.fetch_sub(size, Ordering::Relaxed);
                    return Err(err);
                }
            };
            let id = tables.next_push;
            tables.next_push += 1;
            (id, eval)
        };
        let work: crate::BoxFuture<'static, Outcome> = match eval {
            Eval::Ready(value) => Box::pin(std::future::ready(Ok(value))),
            Eval::Later(work) => Box::pin(self.running_call(work)),
        };
        let (answer, reply) = Answer::with_reply(work, move || format!("in the call {id}"));
        lock(&self.tables).exports.insert(
            id,
            Export::Answer {
                answer: answer.clone(),
                reply: Some(reply),
                held: size,
            },
        );
        self.drive(answer);
        if stream {
            // Pulled at once, and released once answered.
            self.pull(id)?;
            self.release(id, 1)?;
        }
        Ok(())
    }

    /// `work` under the call deadline, counted among the running calls
    /// (refused past [`Config::max_running`]).
    fn running_call(
        self: &Arc<Self>,
        work: crate::BoxFuture<'static, Outcome>,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let over = self.running.fetch_add(1, Ordering::Relaxed) >= self.config.max_running;
        let session = self.clone();
        let timeout = self.config.call_timeout;
        async move {
            struct Running(Arc<Session>);
            impl Drop for Running {
                fn drop(&mut self) {
                    self.0.running.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let _running = Running(session.clone());
            if over {
                return Err(raise::limit(format!(
                    "too many calls running in this Cap'n Web session (limit {}; \
                     capnweb::Config::max_running)",
                    session.config.max_running
                ))
                .to_remote("accepting the call"));
            }
            match tokio::time::timeout(timeout, work).await {
                Ok(outcome) => outcome,
                Err(_) => Err(RemoteError::deadline(
                    format!("the call ran past its deadline of {timeout:?}"),
                    "in tether's Cap'n Web session",
                )),
            }
        }
    }

    /// Run `answer`'s work whether or not anyone pulls it: polled once
    /// here, in message order, then in a task until done or the session
    /// ends.
    fn drive(&self, answer: Answer) {
        self.start(async move {
            let _ = answer.outcome().await;
        });
    }

    /// Start `work` (see [`start`]); it stops when the session ends.
    fn start(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let ended = self.ended.clone();
        start(Box::pin(async move {
            tokio::select! {
                () = work => {}
                () = ended.cancelled() => {}
            }
        }));
    }

    /// `["pull", id]`: send the answer's outcome once it is known.
    fn pull(self: &Arc<Self>, id: i64) -> Result<()> {
        let reply = {
            let mut tables = lock(&self.tables);
            match tables.exports.get_mut(&id) {
                Some(Export::Answer { reply, .. }) => match reply.take() {
                    Some(reply) => reply,
                    None => return Ok(()),
                },
                Some(Export::Object { .. }) => {
                    return Err(raise::protocol(format!(
                        "the peer pulled {id}, which is an object, not a call"
                    )))
                }
                None => return Err(no_export(id)),
            }
        };
        self.unsent.send_modify(|n| *n += 1);
        let session = self.clone();
        self.start(async move {
            let outcome = reply.await;
            session.resolve(id, outcome);
            session.unsent.send_modify(|n| *n -= 1);
        });
        Ok(())
    }

    /// Send `["resolve", id, value]` or `["reject", id, error]`.
    fn resolve(&self, id: i64, outcome: Outcome) {
        let message = match outcome {
            Ok(value) => match self.encode(&value) {
                Ok(expression) => json!(["resolve", id, expression]),
                Err(err) => json!([
                    "reject",
                    id,
                    wire::error(&err.to_remote("sending the result"))
                ]),
            },
            Err(err) => json!(["reject", id, wire::error(&err)]),
        };
        self.send(message);
    }

    /// `value` as an expression, our objects in it exported (counted per
    /// sending) and the peer's own named as its imports. Fails when the
    /// tables are full.
    pub(super) fn encode(&self, value: &Value) -> Result<Json> {
        let mut tables = lock(&self.tables);
        let mut full = None;
        // Sent here, to undo if the value cannot be sent whole.
        let mut counted: Vec<i64> = Vec::new();
        let expression = wire::encode(value, &mut |netref| {
            if let Some(id) = self.own_import(netref) {
                return json!(["import", id]);
            }
            let uid = netref.uid();
            if let Some(&id) = tables.by_uid.get(&uid) {
                if let Some(Export::Object { sent, .. }) = tables.exports.get_mut(&id) {
                    *sent += 1;
                    counted.push(id);
                    return json!(["export", id]);
                }
            }
            if let Err(err) = self.check_room(&tables) {
                full = Some(err);
                return Json::Null;
            }
            let id = tables.next_export;
            tables.next_export -= 1;
            tables.by_uid.insert(uid, id);
            tables.exports.insert(
                id,
                Export::Object {
                    netref: netref.clone(),
                    sent: 1,
                },
            );
            counted.push(id);
            json!(["export", id])
        });
        let Some(err) = full else {
            return Ok(expression);
        };
        // The peer never sees these sendings: take them back.
        let mut dropped = Vec::new();
        for id in counted {
            if let Some(Export::Object { sent, .. }) = tables.exports.get_mut(&id) {
                *sent -= 1;
                if *sent == 0 {
                    if let Some(Export::Object { netref, .. }) = tables.exports.remove(&id) {
                        tables.by_uid.remove(&netref.uid());
                        dropped.push(netref);
                    }
                }
            }
        }
        drop(tables);
        drop(dropped);
        Err(err)
    }

    /// The peer's id for `netref`, when it is the peer's own object.
    fn own_import(&self, netref: &NetRef) -> Option<i64> {
        let peer = netref.downcast_ref::<PeerObject>()?;
        peer.session.ptr_eq(&self.me).then_some(peer.id)
    }

    /// `["release", id, count]`: the peer holds `id` `count` times less.
    fn release(&self, id: i64, count: u64) -> Result<()> {
        let released = {
            let mut tables = lock(&self.tables);
            let Some(entry) = tables.exports.get_mut(&id) else {
                return Err(no_export(id));
            };
            match entry {
                Export::Object { sent, .. } if id != 0 => {
                    if count > *sent {
                        return Err(raise::protocol(format!(
                            "the peer released {id} {count} times; it was sent {sent} times"
                        )));
                    }
                    *sent -= count;
                    if *sent > 0 {
                        return Ok(());
                    }
                }
                // The root stays for the whole session.
                Export::Object { .. } => return Ok(()),
                Export::Answer { .. } => {}
            }
            let released = tables.exports.remove(&id);
            match &released {
                Some(Export::Object { netref, .. }) => {
                    tables.by_uid.remove(&netref.uid());
                }
                Some(Export::Answer { held, .. }) => {
                    self.held.fetch_sub(*held, Ordering::Relaxed);
                }
                None => {}
            }
            released
        };
        // Dropped outside the lock: dropping runs object code.
        drop(released);
        Ok(())
    }

    /// The peer's object `id` (sent to us once more), as a `NetRef`: the
    /// same one while we hold it.
    pub(super) fn import(&self, id: i64, tables: &mut Tables) -> Result<NetRef> {
        if let Some(local) = tables.imports.get(&id).and_then(|weak| weak.upgrade()) {
            if let Some(peer) = (&local.object as &dyn std::any::Any).downcast_ref::<PeerObject>() {
                peer.introduced.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(NetRef::from_target(Target::Local(local)));
        }
        self.check_room(tables)?;
        let netref = NetRef::new(PeerObject {
            session: self.me.clone(),
            id,
            introduced: AtomicU64::new(1),
        });
        self.peer_objects.fetch_add(1, Ordering::Relaxed);
        if let Target::Local(local) = &netref.target {
            let weak: std::sync::Weak<crate::netref::Local<dyn crate::Object>> =
                LocalRef::downgrade(local);
            tables.imports.insert(id, weak);
        }
        Ok(netref)
    }

    /// A peer object was dropped: tell the peer, and clear its entry when
    /// the reader next looks.
    pub(super) fn peer_object_dropped(&self, id: i64, introduced: u64) {
        self.send(json!(["release", id, introduced]));
        lock(&self.dropped).push(id);
        let left = self.peer_objects.fetch_sub(1, Ordering::Relaxed) - 1;
        if left == 0 && self.kind == Kind::Client {
            // Nothing of the server's is held: as a tether connection
            // whose last handle is dropped, the session closes.
            self.ended.cancel();
        }
    }

    fn forget_dropped(&self) {
        let dropped = std::mem::take(&mut *lock(&self.dropped));
        if dropped.is_empty() {
            return;
        }
        let mut tables = lock(&self.tables);
        for id in dropped {
            if tables
                .imports
                .get(&id)
                .is_some_and(|weak| weak.strong_count() == 0)
            {
                tables.imports.remove(&id);
            }
        }
    }

    /// Call the peer's object `id` (at `path`, with `args`, or read the
    /// property at `path`): our push, its pull, and the peer's answer.
    pub(super) async fn ask(
        self: &Arc<Self>,
        id: i64,
        path: Vec<String>,
        args: Option<crate::Args>,
        deadline: Option<Instant>,
    ) -> Result<Value> {
        if self.ended.is_cancelled() {
            return Err(raise::closed("the Cap'n Web session ended"));
        }
        if self.kind == Kind::Batch {
            return Err(crate::Error::new(
                crate::ErrorKind::Unsupported,
                "an HTTP batch cannot call the client's objects back: \
                 use a WebSocket session for callbacks",
            ));
        }
        let mut expression = vec![json!("pipeline"), json!(id), json!(path)];
        if let Some(args) = args {
            if !args.named.is_empty() {
                return Err(raise::bad_args(
                    "a JavaScript function takes positional arguments only",
                ));
            }
            self.check_room(&lock(&self.tables))?;
            match self.encode(&Value::List(args.positional))? {
                Json::Array(mut wrapped) if wrapped.len() == 1 => {
                    expression.push(wrapped.remove(0))
                }
                _ => unreachable!("a list is written as [[...]]"),
            }
        }
        let (answered, answer) = oneshot::channel();
        let question = {
            let mut tables = lock(&self.tables);
            // Checked under the lock `end` takes: a question asked after
            // the session ended would wait for nothing.
            if self.ended.is_cancelled() {
                return Err(raise::closed("the Cap'n Web session ended"));
            }
            self.check_room(&tables)?;
            let question = tables.next_question;
            tables.next_question += 1;
            tables.questions.insert(question, answered);
            // Sent under the lock, so pushes leave in the order of their ids.
            self.send(json!(["push", expression]));
            self.send(json!(["pull", question]));
            question
        };
        let deadline = deadline.unwrap_or_else(|| Instant::now() + self.config.call_timeout);
        let resolution = match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(resolution)) => resolution,
            Ok(Err(_)) => Err(raise::closed("the Cap'n Web session ended")),
            Err(_) => {
                // Released here only if the answer did not come (and was
                // released) meanwhile.
                if lock(&self.tables).questions.remove(&question).is_some() {
                    self.send(json!(["release", question, 1]));
                }
                return Err(Error::new(
                    crate::ErrorKind::Timeout,
                    "the JavaScript peer did not answer in time",
                ));
            }
        };
        match resolution? {
            Eval::Ready(value) => Ok(value),
            // Calls on our objects the answer carries: as limited as the
            // peer's own calls.
            Eval::Later(work) => self.running_call(work).await.map_err(Error::from_remote),
        }
    }

    /// Read an expression outside a push (the peer's answer to our call).
    fn read(self: &Arc<Self>, expression: &Json) -> Result<Eval> {
        let mut tables = lock(&self.tables);
        let mut reading = Reading {
            tables: &mut tables,
            budget: Budget::new(self.config.max_message),
        };
        self.eval(expression, &mut reading)
    }

    /// `["resolve" | "reject", id, ...]`: the answer to our call `id`.
    fn answered(&self, id: i64, resolution: Result<Eval>) -> Result<()> {
        let waiting = lock(&self.tables).questions.remove(&id);
        match waiting {
            Some(waiting) => {
                // The peer keeps the answer until released; we have it.
                self.send(json!(["release", id, 1]));
                let _ = waiting.send(resolution);
                Ok(())
            }
            // Given up on (a timeout) and released meanwhile, or a promise
            // the peer sent and we let go: what it carried is dropped (and
            // released) here, as the reference implementation does.
            None => Ok(()),
        }
    }

    /// An error when the tables hold [`Config::max_entries`] already.
    pub(super) fn check_room(&self, tables: &Tables) -> Result<()> {
        if tables.len() < self.config.max_entries {
            return Ok(());
        }
        Err(raise::limit(format!(
            "the session's tables are full ({} entries; capnweb::Config::max_entries)",
            self.config.max_entries
        )))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.ended.cancel();
    }
}

/// An id in a message.
fn id_of(id: &Json) -> Result<i64> {
    id.as_i64()
        .ok_or_else(|| raise::protocol(format!("an id that is not an integer: {}", shorten(id))))
}

pub(super) fn no_export(id: i64) -> Error {
    raise::protocol(format!(
        "the peer named {id}, which is not on this session's export table \
         (never sent, or already released)"
    ))
}

/// What an abort message says, briefly.
fn describe_abort(reason: &Json) -> String {
    match reason.as_array() {
        Some(items) if items.first().and_then(Json::as_str) == Some("error") => items
            .get(2)
            .and_then(Json::as_str)
            .unwrap_or("(no message)")
            .chars()
            .take(200)
            .collect(),
        _ => shorten(reason),
    }
}

/// A JSON value's text, cut to 100 characters, for error messages.
pub(super) fn shorten(value: &Json) -> String {
    let text = value.to_string();
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// Poll `work` once here, then, if it must wait, in a task of its own:
/// so work started by messages starts in their order.
///
/// The first poll is made outside tokio's cooperative budget: a call whose
/// first wait is on a tokio lock must join that lock's queue now, in
/// message order, rather than be told to yield by a budget the reader has
/// spent.
fn start(mut work: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
    let first = tokio::task::unconstrained(std::future::poll_fn(|cx| {
        std::task::Poll::Ready(work.as_mut().poll(cx))
    }));
    let mut first = std::pin::pin!(first);
    let polled = first.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    if let std::task::Poll::Ready(std::task::Poll::Pending) = polled {
        tokio::spawn(work);
    }
}
