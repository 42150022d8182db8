//! Serving a listener: HTTP/1.1 connections with hyper, at most
//! [`Config::max_connections`] at once, each held to
//! [`Config::header_timeout`] for every request head and between requests.
//!
//! A connection past the bound is closed as soon as it is accepted, with a
//! best-effort `503` written only if the socket takes it at once: a flood
//! of connections costs one accept and one close each, and nothing waits
//! on them. hyper's header read timeout starts when a connection is first
//! read and again whenever it goes idle after an answer, so the same
//! timeout closes connections that dribble their headers and keep-alive
//! connections nobody uses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::Listener;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Config;

/// What a connection past the bound is told, if its socket takes it at
/// once.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    content-type: text/plain\r\ncontent-length: 38\r\nconnection: close\r\n\r\n\
    the gateway has too many connections\r\n";

/// Serves `gateway` on `listener` until `shutdown` completes; then stops
/// accepting and waits for the connections to finish the requests they
/// are in.
pub(super) async fn serve(
    router: axum::Router,
    config: Config,
    mut listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    // Cancelled at shutdown: each connection then finishes the request it
    // is in and closes.
    let stopping = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // axum's `Listener` for tokio's `TcpListener` retries failed
        // accepts (with a pause when out of file descriptors), so this
        // yields only connections.
        let (stream, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream, peer);
            continue;
        };
        // Small answers go at once: a WebSocket session's messages (a call
        // and its pull) would otherwise wait on Nagle and delayed ACKs.
        let _ = stream.set_nodelay(true);
        // The permit and the stop signal go with every request too, so a
        // WebSocket the connection upgrades to (which outlives hyper's
        // connection future) still counts, and stops at shutdown.
        let hold = ConnectionHold(Arc::new(Held {
            _permit: permit,
            stopping: stopping.clone(),
        }));
        let service = TowerToHyperService::new(router.clone().layer(axum::Extension(hold.clone())));
        // With upgrades, so a Cap'n Web route can take WebSockets.
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = outcome {
                // A header timeout, a client that went away, bad HTTP:
                // the client's affair, never the server's.
                tracing::debug!(%peer, "gateway connection ended: {err}");
            }
            drop(hold);
        });
    }
    drop(listener);
    stopping.cancel();
    // Every connection has finished when every permit is back.
    let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// One accepted connection's place among [`Config::max_connections`],
/// and the server's stop signal, as every request on it carries them (an
/// axum extension): what outlives the connection (a WebSocket session)
/// holds the place until it ends, and ends when the server stops.
/// Without Cap'n Web nothing outlives its connection, and nothing reads
/// the hold: it only keeps the place while the connection's requests run.
#[derive(Clone)]
#[cfg_attr(not(feature = "capnweb"), allow(dead_code))]
pub(crate) struct ConnectionHold(Arc<Held>);

#[cfg_attr(not(feature = "capnweb"), allow(dead_code))]
struct Held {
    _permit: tokio::sync::OwnedSemaphorePermit,
    stopping: CancellationToken,
}

impl ConnectionHold {
    /// Completes when the server stops.
    #[cfg(feature = "capnweb")]
    pub(crate) async fn stopping(&self) {
        self.0.stopping.cancelled().await;
    }
}

/// Closes a connection past the bound, telling it why if its socket
/// takes the answer without waiting.
fn refuse(stream: TcpStream, peer: SocketAddr) {
    tracing::debug!(%peer, "gateway connection refused: too many connections");
    let _ = stream.try_write(REFUSED);
    drop(stream);
}
