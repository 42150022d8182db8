//! tether as a client of Cap'n Web servers: [`connect`].

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::config::Config;
use super::session::{Kind, Session};
use super::socket::{self, Frame, Outgoing};
use crate::error::raise;
use crate::service::table::lock;
use crate::{Error, ErrorKind, NetRef, Object, Policy, Result};

/// Connect to the Cap'n Web server at `url` (`ws://host:port/path`) and
/// get its main object as an ordinary [`NetRef`]: `call_method`,
/// `getattr` and `call` reach it, objects it returns are `NetRef`s too,
/// and tether objects passed to it (a [`callback`](crate::callback)) are
/// called back over the same WebSocket, under the default [`Policy`].
/// The session closes when the last of the server's objects is dropped.
///
/// ```no_run
/// # async fn demo() -> tether::Result<()> {
/// let api = tether::capnweb::connect("ws://127.0.0.1:8787/api").await?;
/// let sum: i64 = api.call_method("add", (1, 2)).await?.try_into()?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<NetRef> {
    connect_with(url, Config::default()).await
}

/// [`connect`] with other limits: the server's messages are bounded as a
/// server's clients' are, and [`Config::call_timeout`] bounds both
/// connecting and each call.
pub async fn connect_with(url: &str, config: Config) -> Result<NetRef> {
    let request = url
        .into_client_request()
        .map_err(|e| raise::bad_args(format!("not a WebSocket URL: {url}: {e}")))?;
    let websocket = WebSocketConfig::default()
        .max_message_size(Some(config.max_message))
        .max_frame_size(Some(config.max_message));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(websocket), true);
    let socket = match tokio::time::timeout(config.call_timeout, connecting).await {
        Ok(Ok((socket, _response))) => socket,
        Ok(Err(err)) => {
            return Err(Error::new(
                ErrorKind::Transport,
                format!("cannot open a Cap'n Web session at {url}: {err}"),
            ))
        }
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "no Cap'n Web session at {url} within {:?}",
                    config.call_timeout
                ),
            ))
        }
    };
    let keepalive = config.keepalive;
    let (out, outgoing) = mpsc::unbounded_channel();
    let session = Session::new(
        NetRef::new(NoMain),
        Policy::default(),
        config,
        None,
        out,
        Kind::Client,
    );
    let main = {
        let mut tables = lock(&session.tables);
        session.import(0, &mut tables)?
    };
    let (sink, stream) = socket.split();
    let frames = stream.map(|message| {
        message.map(|message| match message {
            Message::Text(text) => Frame::Text(text.as_str().to_owned()),
            Message::Binary(_) => Frame::Binary,
            Message::Close(_) => Frame::Close,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Frame::Control,
        })
    });
    let sink = sink.with(|out: Outgoing| async move {
        Ok::<_, tokio_tungstenite::tungstenite::Error>(match out {
            Outgoing::Text(text) => Message::Text(text.into()),
            Outgoing::Ping => Message::Ping(Default::default()),
        })
    });
    tokio::spawn(async move {
        socket::run(
            &session,
            frames,
            Box::pin(sink),
            outgoing,
            keepalive,
            std::future::pending(),
        )
        .await;
    });
    Ok(main)
}

/// What a client session offers the server as its own main object:
/// nothing.
struct NoMain;

impl Object for NoMain {
    fn type_name(&self) -> &str {
        "tether Cap'n Web client (no main object)"
    }
}
