//! The broker tunnel: a byte stream over NATS subjects, so a whole tether
//! connection can run where no direct route to an instance exists.
//!
//! # Opening
//!
//! The client subscribes to a fresh inbox of its own, then sends a request
//! to the service's `NAME.tether-tunnel` endpoint (queue group `q`, so the
//! broker picks one instance) carrying that inbox and its flow settings.
//! The instance subscribes to an inbox of its own and answers with it.
//! From then on each side publishes to the other's inbox only: two
//! subjects private to the connection. The instance then runs the same
//! handshake (TLS, token challenge, connection limit) as for a TCP client.
//!
//! # Messages
//!
//! Each message starts with a kind byte and a 64-bit big-endian number:
//!
//! - `D` seq, bytes: the next bytes of the stream, numbered from 1;
//! - `A` n: "I have consumed your first `n` data messages" (a credit);
//! - `C` 0, reason: the sender closed its end (or cut the tunnel off,
//!   and says why).
//!
//! # Order, loss and flow control
//!
//! NATS keeps order between one publisher and one subscriber but may drop
//! messages (a subscriber too slow for its buffer). A receiver expects
//! every sequence number in turn: a gap, a repeat, a message larger than
//! agreed or anything malformed ends the stream with an error that says
//! so (tether then closes the connection with it) rather than passing on
//! corrupt bytes. A sender keeps at most `window` data messages that the
//! receiver has not consumed; the receiver returns credit (`A`) only as
//! its reader takes the bytes, so a slow side slows its peer instead of
//! overflowing the broker's or the client's buffers. A peer that sends
//! past its window is cut off the same way as one that skips numbers.
//!
//! # Liveness
//!
//! A peer that vanishes without its `C` message is noticed by tether's
//! keepalive pings, which run over the tunnel as over TCP
//! ([`Config::keepalive`](crate::Config::keepalive): 30 s by default, so
//! about a minute; set it shorter on the builder for faster failover).
//! The broker tells nobody when another client disconnects, so there is
//! no quicker signal.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_nats::{Client, Subscriber};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// The endpoint (and last subject token) that opens tunnels.
pub(crate) const ENDPOINT: &str = "tether-tunnel";

/// Data messages a sender may have outstanding (default).
pub(crate) const WINDOW: u64 = 32;

/// Largest data message, in bytes of stream (default); never more than the
/// broker's `max_payload` allows.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Bytes before the data in every message: kind and number.
const HEADER: usize = 9;

const DATA: u8 = b'D';
const ACK: u8 = b'A';
const CLOSE: u8 = b'C';

/// The opening request and its answer (JSON).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Opening {
    /// Version of the tunnel protocol (1).
    pub tunnel: u32,
    /// Where the sender of this message receives.
    pub inbox: String,
    /// Data messages the sender lets its peer have outstanding.
    pub window: u64,
    /// Largest data message the sender accepts.
    pub chunk: usize,
    /// The answering instance's id (answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Opening {
    /// A request or answer offering `inbox` with the default settings,
    /// bounded by the broker's largest message.
    pub(crate) fn offer(client: &Client, inbox: String) -> Opening {
        Opening {
            tunnel: 1,
            inbox,
            window: WINDOW,
            chunk: CHUNK
                .min(client.max_payload().saturating_sub(HEADER))
                .max(1),
            instance: None,
        }
    }

    /// Check what a peer sent: a subject we may publish to, sane settings.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.tunnel != 1 {
            return Err(format!(
                "tunnel protocol {} is not spoken here (1 is)",
                self.tunnel
            ));
        }
        let valid = !self.inbox.is_empty()
            && self.inbox.len() <= 255
            && !self.inbox.starts_with('.')
            && !self.inbox.ends_with('.')
            && !self.inbox.contains("..")
            && self
                .inbox
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>');
        if !valid {
            return Err("the tunnel inbox is not a plain NATS subject".into());
        }
        if self.window == 0 || self.chunk == 0 {
            return Err("a tunnel needs a window and a chunk size above zero".into());
        }
        Ok(())
    }
}

/// Open a tunnel to an instance of `service` (the broker picks which):
/// the stream and the answering instance's id.
pub(crate) async fn open(client: &Client, service: &str) -> crate::Result<(TunnelStream, String)> {
    use crate::{Error, ErrorKind};
    let failed = |why: String| Error::new(ErrorKind::Transport, why);
    let inbox = client.new_inbox();
    let subscription = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| failed(format!("cannot subscribe on the NATS server: {e}")))?;
    let ours = Opening::offer(client, inbox);
    let request = serde_json::to_vec(&ours).expect("an opening serializes");
    let answer = client
        .request(format!("{service}.{ENDPOINT}"), request.into())
        .await
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => failed(format!(
                "no instance of '{service}' accepts connections through the broker"
            )),
            async_nats::RequestErrorKind::TimedOut => Error::new(
                ErrorKind::Timeout,
                format!("no instance of '{service}' answered the tunnel opening in time"),
            ),
            _ => failed(format!("cannot open a tunnel to '{service}': {e}")),
        })?;
    if let Some(refused) = super::service_error(&answer) {
        return Err(failed(format!(
            "'{service}' refused the tunnel: {} ({})",
            refused.status, refused.code
        )));
    }
    let theirs: Opening = serde_json::from_slice(&answer.payload).map_err(|e| {
        failed(format!(
            "'{service}' answered the tunnel opening with garbage: {e}"
        ))
    })?;
    theirs.check().map_err(|why| {
        failed(format!(
            "'{service}' answered the tunnel opening badly: {why}"
        ))
    })?;
    let flow = Flow::between(&ours, &theirs, client);
    let instance = theirs.instance.clone().unwrap_or_default();
    Ok((
        TunnelStream::new(client.clone(), subscription, theirs.inbox, flow),
        instance,
    ))
}

/// What the two ends settled on: each side's limits, as the other must
/// respect them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flow {
    /// Data messages we may send before credit returns (the peer's window).
    pub send_window: u64,
    /// Largest data message we may send (the peer's chunk).
    pub send_chunk: usize,
    /// Data messages the peer may have outstanding (our window).
    pub recv_window: u64,
    /// Largest data message we accept (our chunk).
    pub recv_chunk: usize,
}

impl Flow {
    /// The flow between `ours` (what we offered) and `theirs`.
    pub(crate) fn between(ours: &Opening, theirs: &Opening, client: &Client) -> Flow {
        let most = client.max_payload().saturating_sub(HEADER).max(1);
        Flow {
            send_window: theirs.window.min(1024),
            send_chunk: theirs.chunk.min(most),
            recv_window: ours.window,
            recv_chunk: ours.chunk,
        }
    }
}

/// One end of a tunnel: an `AsyncRead + AsyncWrite` byte stream whose bytes
/// travel as NATS messages. Dropping it tells the peer and unsubscribes.
pub struct TunnelStream {
    state: Arc<State>,
    flow: Flow,
    incoming: mpsc::UnboundedReceiver<Bytes>,
    current: Bytes,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Data messages our reader has taken whole.
    consumed: u64,
    /// The last `consumed` we sent credit for.
    credited: u64,
    closed: bool,
    inbound: tokio::task::JoinHandle<()>,
}

/// What both halves and the inbound task share.
struct State {
    flow: Mutex<SendState>,
    /// Data messages our reader consumed, for the inbound task's window check.
    consumed: AtomicU64,
}

struct SendState {
    /// Data messages sent.
    sent: u64,
    /// Data messages the peer consumed.
    acked: u64,
    /// A writer waiting for credit.
    writer: Option<Waker>,
    /// Why the tunnel failed, once it has.
    fault: Option<String>,
    /// The peer closed its end (with this reason).
    peer_closed: Option<String>,
}

enum Outgoing {
    Data(u64, Bytes),
    Ack(u64),
    Close(String),
}

impl TunnelStream {
    /// A stream receiving on `subscription` and sending to `peer_inbox`.
    pub(crate) fn new(
        client: Client,
        subscription: Subscriber,
        peer_inbox: String,
        flow: Flow,
    ) -> TunnelStream {
        let state = Arc::new(State {
            flow: Mutex::new(SendState {
                sent: 0,
                acked: 0,
                writer: None,
                fault: None,
                peer_closed: None,
            }),
            consumed: AtomicU64::new(0),
        });
        let (data_tx, incoming) = mpsc::unbounded_channel();
        let (outgoing, out_rx) = mpsc::unbounded_channel::<Outgoing>();
        let inbound = tokio::spawn(inbound(
            subscription,
            state.clone(),
            data_tx,
            outgoing.clone(),
            flow,
        ));
        tokio::spawn(publish(client, peer_inbox, out_rx, state.clone()));
        TunnelStream {
            state,
            flow,
            incoming,
            current: Bytes::new(),
            outgoing,
            consumed: 0,
            credited: 0,
            closed: false,
            inbound,
        }
    }

    fn fault(&self) -> Option<String> {
        self.state.flow.lock().unwrap().fault.clone()
    }

    /// One more data message consumed: return credit every half window.
    fn consumed_one(&mut self) {
        self.consumed += 1;
        self.state.consumed.store(self.consumed, Ordering::Release);
        if self.consumed - self.credited >= (self.flow.recv_window / 2).max(1) {
            self.credited = self.consumed;
            let _ = self.outgoing.send(Outgoing::Ack(self.consumed));
        }
    }
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.current.is_empty() {
                let n = self.current.len().min(buf.remaining());
                buf.put_slice(&self.current.split_to(n));
                if self.current.is_empty() {
                    self.consumed_one();
                }
                return Poll::Ready(Ok(()));
            }
            match self.incoming.poll_recv(cx) {
                Poll::Ready(Some(data)) => self.current = data,
                // The inbound side ended: a clean close reads as the end
                // of the stream, anything else as the error it was.
                Poll::Ready(None) => {
                    return Poll::Ready(match self.fault() {
                        Some(fault) => Err(io::Error::new(io::ErrorKind::InvalidData, fault)),
                        None => Ok(()),
                    })
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Nothing to send is no message (an empty one would be a fault).
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let seq = {
            let mut send = self.state.flow.lock().unwrap();
            if let Some(fault) = &send.fault {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    fault.clone(),
                )));
            }
            if let Some(reason) = &send.peer_closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!("the peer closed the tunnel: {reason}"),
                )));
            }
            if self.closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the tunnel is shut down for writing",
                )));
            }
            if send.sent - send.acked >= self.flow.send_window {
                send.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            send.sent += 1;
            send.sent
        };
        let n = buf.len().min(self.flow.send_chunk);
        let data = Bytes::copy_from_slice(&buf[..n]);
        match self.outgoing.send(Outgoing::Data(seq, data)) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                self.fault()
                    .unwrap_or_else(|| "the tunnel's publisher stopped".into()),
            ))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Messages go to the NATS client as they are written; it flushes
        // its own buffer.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closed {
            self.closed = true;
            let _ = self.outgoing.send(Outgoing::Close("closed".into()));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for TunnelStream {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self
                .outgoing
                .send(Outgoing::Close("the peer dropped the tunnel".into()));
        }
        self.inbound.abort();
    }
}

impl std::fmt::Debug for TunnelStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelStream")
            .field("flow", &self.flow)
            .field("consumed", &self.consumed)
            .finish()
    }
}

impl State {
    fn fail(&self, why: String) {
        let mut send = self.flow.lock().unwrap();
        send.fault.get_or_insert(why);
        if let Some(waker) = send.writer.take() {
            waker.wake();
        }
    }
}

/// Receive the peer's messages: data to the reader in order, credit to the
/// writer, and the end.
async fn inbound(
    mut subscription: Subscriber,
    state: Arc<State>,
    data: mpsc::UnboundedSender<Bytes>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    flow: Flow,
) {
    let mut expected = 1u64;
    let fault = loop {
        let Some(message) = subscription.next().await else {
            break Some("the connection to the NATS server was lost".to_string());
        };
        match parse(message.payload) {
            Err(why) => break Some(format!("a malformed tunnel message: {why}")),
            Ok(Message::Data(seq, bytes)) => {
                if seq != expected {
                    break Some(if seq > expected {
                        format!(
                            "the broker lost {} message(s) of the tunnel \
                             (expected #{expected}, got #{seq})",
                            seq - expected
                        )
                    } else {
                        format!("tunnel message #{seq} arrived again or out of order (expected #{expected})")
                    });
                }
                if bytes.len() > flow.recv_chunk {
                    break Some(format!(
                        "tunnel message #{seq} holds {} bytes, over the agreed {}",
                        bytes.len(),
                        flow.recv_chunk
                    ));
                }
                if seq - state.consumed.load(Ordering::Acquire) > flow.recv_window {
                    break Some(format!(
                        "the peer sent tunnel message #{seq} past its window of {} (flow control ignored)",
                        flow.recv_window
                    ));
                }
                expected += 1;
                if bytes.is_empty() {
                    break Some(format!("tunnel message #{seq} is empty"));
                }
                if data.send(bytes).is_err() {
                    break None;
                }
            }
            Ok(Message::Ack(n)) => {
                let mut send = state.flow.lock().unwrap();
                if n > send.sent || n < send.acked {
                    drop(send);
                    break Some(format!(
                        "the peer credited {n} messages of the tunnel, not what was sent"
                    ));
                }
                send.acked = n;
                if let Some(waker) = send.writer.take() {
                    waker.wake();
                }
            }
            Ok(Message::Close(reason)) => {
                let mut send = state.flow.lock().unwrap();
                send.peer_closed = Some(reason);
                if let Some(waker) = send.writer.take() {
                    waker.wake();
                }
                break None;
            }
        }
    };
    if let Some(fault) = fault {
        tracing::debug!(%fault, "tunnel failed");
        // Tell the peer why, then fail both halves here.
        let _ = outgoing.send(Outgoing::Close(fault.clone()));
        state.fail(fault);
    }
    // Dropping `data` ends the reader once it has taken what came before.
}

/// Send what the stream queued, in order, to the peer's inbox.
async fn publish(
    client: Client,
    peer_inbox: String,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    state: Arc<State>,
) {
    while let Some(outgoing) = queue.recv().await {
        let last = matches!(outgoing, Outgoing::Close(_));
        let payload = encode(outgoing);
        if let Err(err) = client.publish(peer_inbox.clone(), payload).await {
            state.fail(format!("cannot publish to the NATS server: {err}"));
            return;
        }
        if last {
            let _ = client.flush().await;
            return;
        }
    }
}

#[derive(Debug)]
enum Message {
    Data(u64, Bytes),
    Ack(u64),
    Close(String),
}

fn encode(outgoing: Outgoing) -> Bytes {
    let (kind, number, body) = match outgoing {
        Outgoing::Data(seq, bytes) => (DATA, seq, bytes),
        Outgoing::Ack(n) => (ACK, n, Bytes::new()),
        Outgoing::Close(reason) => (CLOSE, 0, Bytes::from(reason)),
    };
    let mut out = BytesMut::with_capacity(HEADER + body.len());
    out.put_u8(kind);
    out.put_u64(number);
    out.put_slice(&body);
    out.freeze()
}

fn parse(mut payload: Bytes) -> Result<Message, String> {
    if payload.len() < HEADER {
        return Err(format!("{} bytes, shorter than its header", payload.len()));
    }
    let kind = payload[0];
    let number = u64::from_be_bytes(payload[1..HEADER].try_into().unwrap());
    let body = payload.split_off(HEADER);
    match kind {
        DATA => Ok(Message::Data(number, body)),
        ACK if body.is_empty() => Ok(Message::Ack(number)),
        CLOSE => Ok(Message::Close(
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        )),
        other => Err(format!("unknown kind 0x{other:02x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_named() {
        let data = encode(Outgoing::Data(7, Bytes::from_static(b"hi")));
        assert!(matches!(parse(data), Ok(Message::Data(7, b)) if &b[..] == b"hi"));
        assert!(matches!(
            parse(encode(Outgoing::Ack(3))),
            Ok(Message::Ack(3))
        ));
        assert!(
            matches!(parse(encode(Outgoing::Close("bye".into()))), Ok(Message::Close(r)) if r == "bye")
        );
        assert!(parse(Bytes::from_static(b"D123"))
            .unwrap_err()
            .contains("shorter"));
        let unknown = Bytes::from_static(b"Z\0\0\0\0\0\0\0\x01");
        assert!(parse(unknown).unwrap_err().contains("unknown kind 0x5a"));
    }

    #[test]
    fn an_opening_must_name_a_plain_subject() {
        let mut opening = Opening {
            tunnel: 1,
            inbox: "_INBOX.abc".into(),
            window: 4,
            chunk: 10,
            instance: None,
        };
        assert!(opening.check().is_ok());
        for bad in ["", "a.*", "a.>", "a b", "a..b", ".a"] {
            opening.inbox = bad.into();
            assert!(opening.check().is_err(), "{bad:?}");
        }
        opening.inbox = "_INBOX.abc".into();
        opening.window = 0;
        assert!(opening.check().is_err());
    }
}

// The test environment's nats-server (tests/support), for `on_a_broker`.
#[cfg(test)]
#[path = "../../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;
#[cfg(test)]
#[path = "../../tests/support/python.rs"]
#[allow(dead_code)]
mod python;

/// The tunnel against a real broker (tests/support's `nats-server`), with
/// a hand-driven peer, where a test must hold the reader still.
#[cfg(test)]
mod on_a_broker {
    use std::pin::pin;

    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A stream with `flow` whose peer is the test: what the stream sends
    /// arrives on the returned subscription, what the test publishes to
    /// the returned subject reaches the stream.
    async fn stream_and_peer(client: &Client, flow: Flow) -> (TunnelStream, Subscriber, String) {
        let ours = client.new_inbox();
        let subscription = client.subscribe(ours.clone()).await.unwrap();
        let theirs = client.new_inbox();
        let peer = client.subscribe(theirs.clone()).await.unwrap();
        let stream = TunnelStream::new(client.clone(), subscription, theirs, flow);
        (stream, peer, ours)
    }

    async fn send(client: &Client, to: &str, outgoing: Outgoing) {
        client
            .publish(to.to_string(), encode(outgoing))
            .await
            .unwrap();
        client.flush().await.unwrap();
    }

    async fn next(peer: &mut Subscriber) -> Message {
        parse(peer.next().await.unwrap().payload).unwrap()
    }

    const FLOW: Flow = Flow {
        send_window: 2,
        send_chunk: 4,
        recv_window: 4,
        recv_chunk: 64,
    };

    #[tokio::test]
    async fn a_peer_past_its_window_is_cut_off_while_the_reader_stands_still() {
        let server = super::nats::NatsServer::start();
        let client = async_nats::connect(server.url()).await.unwrap();
        let (mut stream, mut peer, to) = stream_and_peer(&client, FLOW).await;
        for seq in 1..=5 {
            send(&client, &to, Outgoing::Data(seq, Bytes::from_static(b"x"))).await;
        }
        match next(&mut peer).await {
            Message::Close(reason) => assert!(reason.contains("past its window of 4"), "{reason}"),
            other => panic!("expected a close, got {other:?}"),
        }
        // The reader gets the four messages in the window, then the error.
        let mut read = Vec::new();
        let err = stream.read_to_end(&mut read).await.unwrap_err();
        assert_eq!(read, b"xxxx");
        assert!(err.to_string().contains("flow control ignored"), "{err}");
    }

    #[tokio::test]
    async fn a_writer_waits_for_credit_and_goes_on_when_it_comes() {
        let server = super::nats::NatsServer::start();
        let client = async_nats::connect(server.url()).await.unwrap();
        let (mut stream, mut peer, to) = stream_and_peer(&client, FLOW).await;
        // Two messages of at most 4 bytes fill the window of 2.
        stream.write_all(b"abcdefgh").await.unwrap();
        let mut third = pin!(stream.write(b"ijkl"));
        assert!((&mut third).now_or_never().is_none(), "no credit yet");
        for (seq, bytes) in [(1, "abcd"), (2, "efgh")] {
            match next(&mut peer).await {
                Message::Data(n, data) => assert_eq!((n, &data[..]), (seq, bytes.as_bytes())),
                other => panic!("expected data, got {other:?}"),
            }
        }
        send(&client, &to, Outgoing::Ack(1)).await;
        assert_eq!(third.await.unwrap(), 4);
        match next(&mut peer).await {
            Message::Data(3, data) => assert_eq!(&data[..], b"ijkl"),
            other => panic!("expected data #3, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_reader_returns_credit_as_it_takes_the_bytes_and_ends_on_close() {
        let server = super::nats::NatsServer::start();
        let client = async_nats::connect(server.url()).await.unwrap();
        let (mut stream, mut peer, to) = stream_and_peer(&client, FLOW).await;
        for (seq, bytes) in [(1, &b"he"[..]), (2, b"ll"), (3, b"o!")] {
            send(&client, &to, Outgoing::Data(seq, Bytes::from_static(bytes))).await;
        }
        send(&client, &to, Outgoing::Close("done".into())).await;
        let mut read = Vec::new();
        stream.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, b"hello!");
        // Credit every half window (2 of 4): after message 2.
        assert!(matches!(next(&mut peer).await, Message::Ack(2)));
        // Writing after the peer closed says so.
        let err = stream.write_all(b"late").await.unwrap_err();
        assert!(
            err.to_string().contains("the peer closed the tunnel: done"),
            "{err}"
        );
    }
}
