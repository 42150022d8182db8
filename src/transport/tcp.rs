//! TCP.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::{Error, ErrorKind, Result};

/// Connect, with `TCP_NODELAY` set; returns the stream and the peer address.
pub(crate) async fn connect(addr: impl ToSocketAddrs) -> Result<(TcpStream, String)> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Error::with_source(ErrorKind::Transport, format!("cannot connect: {e}"), e))?;
    prepare(&stream);
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    Ok((stream, peer))
}

/// Settings every tether TCP stream gets.
pub(crate) fn prepare(stream: &TcpStream) {
    // Requests and replies are small frames written whole; Nagle would
    // hold them back waiting for an ACK.
    let _ = stream.set_nodelay(true);
}

/// Turn on TCP keepalive for `interval` (`None`: leave it off): once the
/// connection has been idle that long the kernel sends probes, which the
/// peer's kernel answers whatever its program is doing, and after about
/// two intervals without an answer the connection is reset, so reads and
/// writes on it fail. A dead host or a half-open connection is noticed
/// this way; a peer that is alive but quiet never is. RPyC connections
/// rely on it (see [`rpyc`](crate::rpyc)'s "Liveness"); tether's own
/// pings do the same for native ones.
pub(crate) fn keepalive(stream: &TcpStream, interval: Option<Duration>) {
    let Some(interval) = interval else {
        return;
    };
    let idle = interval.max(Duration::from_secs(1));
    let params = TcpKeepalive::new().with_time(idle);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "windows"
    ))]
    let params = params
        .with_interval((idle / KEEPALIVE_PROBES).max(Duration::from_secs(1)))
        .with_retries(KEEPALIVE_PROBES);
    if let Err(err) = SockRef::from(stream).set_tcp_keepalive(&params) {
        tracing::debug!(%err, "cannot turn on TCP keepalive");
    }
}

/// Probes sent, `interval / KEEPALIVE_PROBES` apart, before a silent peer
/// is given up.
const KEEPALIVE_PROBES: u32 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn keepalive_is_set_from_the_interval_or_left_off() {
        let (a, b) = pair().await;
        keepalive(&a, Some(Duration::from_secs(20)));
        keepalive(&b, None);
        let a = SockRef::from(&a);
        assert!(a.keepalive().unwrap());
        assert!(!SockRef::from(&b).keepalive().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(a.tcp_keepalive_time().unwrap(), Duration::from_secs(20));
            assert_eq!(a.tcp_keepalive_interval().unwrap(), Duration::from_secs(5));
            assert_eq!(a.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
        }
    }
}
