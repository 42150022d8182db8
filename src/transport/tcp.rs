//! TCP.

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
