//! Keepalive: a silent peer is declared dead; a quiet live one is not.

mod support;

use std::time::Duration;

use support::wire;
use tether::{Builder, Config, ErrorKind};
use tokio::io::AsyncWriteExt;

fn keepalive(secs: u64) -> Config {
    Config::default().keepalive(Some(Duration::from_secs(secs)))
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_answering_is_declared_dead() {
    let (mut raw, server_end) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(
        Builder::default()
            .root(support::TestService::default())
            .config(keepalive(1))
            .accept_io(server_end, None),
    );
    // A handshake, then silence (the stream stays open: half-open).
    raw.write_all(&wire::hello(tether::protocol::PROTOCOL_VERSION, "Silent"))
        .await
        .unwrap();
    let _answer = wire::read_frame(&mut raw).await;
    let conn = server.await.unwrap().unwrap();
    let started = tokio::time::Instant::now();
    let reason = conn.closed().await;
    assert_eq!(reason.kind(), ErrorKind::Timeout, "{reason}");
    assert!(reason.message().contains("stopped answering"), "{reason}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(conn.stats().exported, 0);
}

#[tokio::test(start_paused = true)]
async fn a_quiet_peer_that_answers_pings_stays_connected() {
    let (client, server) = support::memory_pair_with(
        Builder::default().config(keepalive(1)),
        Builder::default()
            .root(support::TestService::default())
            .config(keepalive(1)),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!client.is_closed() && !server.is_closed());
    client.ping().await.unwrap();
}
