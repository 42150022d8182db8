//! One WebSocket session's loop, whichever side opened the socket: the
//! peer's messages into the session, the session's messages out, until
//! either side closes, a message breaks the protocol, or the session ends
//! on its own (a client that let go of everything).

use std::future::Future;
use std::sync::Arc;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;

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

/// Run `session` over a socket's `frames` and `sink` until it ends (or
/// `stop` completes: the server stopping); then
/// end the session and close the socket, after what the session said
/// last (an abort's reason).
pub(crate) async fn run<In, Out, E>(
    session: &Arc<Session>,
    mut frames: In,
    mut sink: Out,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    stop: impl Future<Output = ()>,
) where
    In: Stream<Item = Result<Frame, E>> + Unpin,
    Out: Sink<String> + Unpin,
    E: std::fmt::Display,
{
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            incoming = frames.next() => match incoming {
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
                let mut sent = sink.feed(text).await.is_ok();
                while sent {
                    match outgoing.try_recv() {
                        Ok(text) => sent = sink.feed(text).await.is_ok(),
                        Err(_) => break,
                    }
                }
                if !sent || sink.flush().await.is_err() {
                    break;
                }
            }
            () = session.ended.cancelled() => break,
            () = &mut stop => break,
        }
    }
    session.end();
    while let Ok(text) = outgoing.try_recv() {
        if sink.feed(text).await.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}
