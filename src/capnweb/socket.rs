//! One WebSocket session's loop, whichever side opened the socket: the
//! peer's messages into the session, the session's messages out, until
//! either side closes, a message breaks the protocol, the session ends on
//! its own (a client that let go of everything), or the peer stops
//! answering pings (gone without closing: its machine or network).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::session::Session;
use crate::error::raise;

/// A WebSocket message, as the loop needs to tell them apart.
pub(crate) enum Frame {
    Text(String),
    Binary,
    Close,
    /// Pings and pongs: the WebSocket library answers them.
    Control,
}

/// What the loop sends: the session's messages, and pings.
pub(crate) enum Outgoing {
    Text(String),
    Ping,
}

/// Pings a peer may leave unanswered (sending nothing at all) before it
/// is taken for gone: it has this many intervals to answer the first.
const UNANSWERED_PINGS: u32 = 2;

/// Run `session` over a socket's `frames` and `sink` until it ends (or
/// `stop` completes: the server stopping); then
/// end the session and close the socket, after what the session said
/// last (an abort's reason). With `keepalive`, the peer is pinged that
/// often, and the session ends once it has sent nothing for
/// [`UNANSWERED_PINGS`] pings.
pub(crate) async fn run<In, Out, E>(
    session: &Arc<Session>,
    mut frames: In,
    mut sink: Out,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    keepalive: Option<Duration>,
    stop: impl Future<Output = ()>,
) where
    In: Stream<Item = Result<Frame, E>> + Unpin,
    Out: Sink<Outgoing> + Unpin,
    E: std::fmt::Display,
{
    let mut stop = std::pin::pin!(stop);
    // Without keepalive, a tick that never comes.
    let every = keepalive.unwrap_or(Duration::from_secs(u32::MAX.into()));
    let mut ping = interval_at(Instant::now() + every, every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut unanswered = 0;
    loop {
        tokio::select! {
            incoming = frames.next() => match incoming.inspect(|_| unanswered = 0) {
                Some(Ok(Frame::Text(text))) => {
                    if let Err(err) = session.receive(&text) {
                        tracing::debug!("Cap'n Web session aborted: {err}");
                        session.abort(&err);
                        break;
                    }
                }
                Some(Ok(Frame::Binary)) => {
                    session.abort(&raise::protocol("a binary message: Cap'n Web sends text"));
                    break;
                }
                Some(Ok(Frame::Control)) => {}
                Some(Err(err)) => {
                    // A message over the size limit, a broken connection.
                    tracing::debug!("Cap'n Web socket failed: {err}");
                    break;
                }
                Some(Ok(Frame::Close)) | None => break,
            },
            Some(text) = outgoing.recv() => {
                // What is queued goes in one write.
                let write = write_queued(session, &mut sink, text, &mut outgoing);
                if !unless_over(session, stop.as_mut(), write).await {
                    break;
                }
            }
            _ = ping.tick(), if keepalive.is_some() => {
                if unanswered == UNANSWERED_PINGS {
                    tracing::debug!(
                        "Cap'n Web peer gone: nothing from it for {UNANSWERED_PINGS} pings, {every:?} apart"
                    );
                    break;
                }
                unanswered += 1;
                let ping = async { sink.send(Outgoing::Ping).await.is_ok() };
                if !unless_over(session, stop.as_mut(), ping).await {
                    break;
                }
            }
            () = session.ended.cancelled() => break,
            () = &mut stop => break,
        }
    }
    session.end();
    // What the session said last (an abort's reason), then the close; a
    // peer that does not read is dropped without them.
    let closing = async {
        while let Ok(text) = outgoing.try_recv() {
            if sink.feed(Outgoing::Text(text)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(CLOSE_WITHIN, closing).await;
}

/// How long the last messages and the close may take to write.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// Feed `first` and whatever else is queued to `sink`, then flush;
/// false once the socket fails.
async fn write_queued<Out: Sink<Outgoing> + Unpin>(
    session: &Session,
    sink: &mut Out,
    first: String,
    outgoing: &mut mpsc::UnboundedReceiver<String>,
) -> bool {
    let mut next = Some(first);
    while let Some(text) = next {
        session.written(text.len());
        if sink.feed(Outgoing::Text(text)).await.is_err() {
            return false;
        }
        next = outgoing.try_recv().ok();
    }
    sink.flush().await.is_ok()
}

/// What `write` says (whether the socket took it), or false as soon as
/// the session ends or `stop` completes: a peer that stopped reading
/// holds a write up only until then (the session ends when too much
/// waits for it, `Config::max_queued`).
async fn unless_over<S: Future<Output = ()>>(
    session: &Session,
    stop: std::pin::Pin<&mut S>,
    write: impl Future<Output = bool>,
) -> bool {
    tokio::select! {
        written = write => written,
        () = session.ended.cancelled() => false,
        () = stop => false,
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::capnweb::session::Kind;
    use crate::capnweb::Config;
    use crate::{NetRef, Policy};
    use serde_json::json;

    #[derive(Clone)]
    struct Echo;

    #[crate::expose]
    impl Echo {
        /// The argument.
        #[method]
        fn echo(&self, value: crate::Value) -> crate::Value {
            value
        }
    }

    /// A session's loop over channels.
    struct Socket {
        /// What the peer sends.
        peer: mpsc::UnboundedSender<Result<Frame, String>>,
        /// What the loop sent.
        sent: mpsc::UnboundedReceiver<Outgoing>,
        session: Arc<Session>,
        running: tokio::task::JoinHandle<()>,
    }

    /// A WebSocket session serving `Echo`, and what it queues to send.
    fn session(config: Config) -> (Arc<Session>, mpsc::UnboundedReceiver<String>) {
        let (out, outgoing) = mpsc::unbounded_channel();
        let session = Session::new(
            NetRef::new(Echo),
            Policy::default(),
            config,
            None,
            out,
            Kind::Socket,
        );
        (session, outgoing)
    }

    fn socket(config: Config) -> Socket {
        let keepalive = config.keepalive;
        let (session, outgoing) = session(config);
        let (peer, mut from_peer) = mpsc::unbounded_channel();
        let frames = futures_util::stream::poll_fn(move |cx| from_peer.poll_recv(cx));
        let (to_peer, sent) = mpsc::unbounded_channel();
        let sink = futures_util::sink::unfold(to_peer, |to_peer, message| async move {
            let _ = to_peer.send(message);
            Ok::<_, Infallible>(to_peer)
        });
        let running = tokio::spawn({
            let session = session.clone();
            async move {
                let stop = std::future::pending();
                run(&session, frames, Box::pin(sink), outgoing, keepalive, stop).await;
            }
        });
        Socket {
            peer,
            sent,
            session,
            running,
        }
    }

    fn is_ping(message: Option<Outgoing>) -> bool {
        matches!(message, Some(Outgoing::Ping))
    }

    // The clock is paused: it moves only when every task waits for it, so
    // the intervals below are exact.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_answers_stays_and_one_silent_for_two_pings_is_let_go() {
        let every = Duration::from_secs(30);
        let Socket {
            peer,
            mut sent,
            session,
            running,
        } = socket(Config {
            keepalive: Some(every),
            ..Config::default()
        });
        for _ in 0..10 {
            assert!(is_ping(sent.recv().await));
            peer.send(Ok(Frame::Control)).unwrap();
        }
        // Silent from the tenth ping on: two more, then the end.
        let silent_since = Instant::now();
        assert!(is_ping(sent.recv().await));
        assert!(is_ping(sent.recv().await));
        running.await.unwrap();
        assert_eq!(silent_since.elapsed(), 3 * every);
        assert!(session.ended.is_cancelled());
        assert!(sent.recv().await.is_none(), "nothing after the end");
    }

    #[tokio::test(start_paused = true)]
    async fn without_keepalive_a_silent_peer_is_never_pinged() {
        let Socket {
            peer: _peer,
            mut sent,
            session,
            running,
        } = socket(Config {
            keepalive: None,
            ..Config::default()
        });
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        assert!(sent.try_recv().is_err());
        assert!(!running.is_finished());
        session.end();
        running.await.unwrap();
    }

    /// A push of a call of `echo` with `text`.
    fn echo_call(text: &str) -> String {
        json!(["push", ["pipeline", 0, ["echo"], [text]]]).to_string()
    }

    #[tokio::test]
    async fn a_peer_that_reads_nothing_is_let_go_past_max_queued() {
        let (session, mut outgoing) = session(Config {
            max_queued: 10_000,
            ..Config::default()
        });
        let text = "x".repeat(3_000);
        // Calls answer at once or later: until the session ends.
        for id in 1..=10 {
            if session.ended.is_cancelled() {
                break;
            }
            session.receive(&echo_call(&text)).unwrap();
            session.receive(&json!(["pull", id]).to_string()).unwrap();
        }
        tokio::time::timeout(Duration::from_secs(60), session.ended.cancelled())
            .await
            .expect("the session did not end within a minute");
        let mut sent = Vec::new();
        while let Ok(text) = outgoing.try_recv() {
            sent.push(text);
        }
        let abort = sent.pop().unwrap();
        assert!(
            abort.starts_with(r#"["abort""#) && abort.contains("max_queued"),
            "{abort}"
        );
        // Three answers of 3,000 bytes and some fit in 10,000; the fourth
        // does not.
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(sent.iter().all(|s| s.starts_with(r#"["resolve""#)));
    }

    #[tokio::test]
    async fn a_peer_that_reads_what_it_is_sent_may_be_sent_more_than_max_queued() {
        let Socket {
            peer,
            mut sent,
            session,
            running,
        } = socket(Config {
            max_queued: 10_000,
            ..Config::default()
        });
        let text = "x".repeat(3_000);
        for id in 1..=10 {
            peer.send(Ok(Frame::Text(echo_call(&text)))).unwrap();
            let pull = json!(["pull", id]).to_string();
            peer.send(Ok(Frame::Text(pull))).unwrap();
            match sent.recv().await {
                Some(Outgoing::Text(answer)) => {
                    assert!(
                        answer.starts_with(&format!(r#"["resolve",{id},"#)),
                        "{answer}"
                    )
                }
                _ => panic!("no answer to call {id}"),
            }
        }
        assert!(!session.ended.is_cancelled());
        session.end();
        running.await.unwrap();
    }

    /// A peer that stops reading holds the loop up in a write: once the
    /// session ends (too much waiting for it), the loop lets the socket go
    /// within [`CLOSE_WITHIN`] rather than wait on it for ever.
    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_is_given_up_when_the_session_ends() {
        let (session, outgoing) = session(Config::default());
        let (peer, mut from_peer) = mpsc::unbounded_channel::<Result<Frame, String>>();
        let frames = futures_util::stream::poll_fn(move |cx| from_peer.poll_recv(cx));
        // A socket whose first write never completes, and says when it began.
        let (blocked, mut is_blocked) = mpsc::unbounded_channel();
        let sink = futures_util::sink::unfold((), move |(), _: Outgoing| {
            let _ = blocked.send(());
            std::future::pending::<Result<(), Infallible>>()
        });
        let running = tokio::spawn({
            let session = session.clone();
            async move {
                let stop = std::future::pending();
                run(&session, frames, Box::pin(sink), outgoing, None, stop).await;
            }
        });
        peer.send(Ok(Frame::Text(echo_call("hello")))).unwrap();
        let pull = json!(["pull", 1]).to_string();
        peer.send(Ok(Frame::Text(pull))).unwrap();
        is_blocked.recv().await.unwrap();

        let started = Instant::now();
        session.abort(&raise::limit("as if too much were waiting"));
        tokio::time::timeout(Duration::from_secs(3600), running)
            .await
            .expect("the loop waited on the write for an hour")
            .unwrap();
        assert_eq!(started.elapsed(), CLOSE_WITHIN);
    }
}
