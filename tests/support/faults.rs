//! A fault-injecting transport for tests: two tether peers connected through
//! a relay that can deliver frames a few bytes at a time, cut the connection
//! at a chosen frame (before it, in the middle of it, or after it), or stop
//! delivering anything while keeping both ends open (a black hole).
//!
//! ```text
//! client ⇄ pipe ⇄ [relay: to_server, to_client] ⇄ pipe ⇄ server
//! ```
//!
//! The relay can also hold one frame back for a while, delaying it and
//! everything behind it in that direction (in virtual time, a test sees
//! exactly that delay).
//!
//! The relay reads whole frames (`len:u32be payload`, the handshake's frames
//! included) and knows each message's tag (the payload's first byte), so a
//! [`Fault`] names the point it strikes as "the `nth` frame with this tag
//! going this way, counted from when it was armed". Arm faults after the
//! pair is connected, so the handshake is never what is counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tether::{Builder, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::watch;

/// Message tags as they travel (the first byte of a frame's payload).
pub mod tag {
    pub const REQUEST: u8 = 0;
    pub const REPLY_OK: u8 = 1;
    pub const REPLY_ERR: u8 = 2;
    pub const RELEASE: u8 = 3;
    pub const PING: u8 = 5;
    pub const PONG: u8 = 6;
}

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// How much of the striking frame is delivered before a cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// None of it: cut just before the frame.
    Nothing,
    /// Its header and half of its payload: cut mid-frame.
    Half,
    /// All of it: cut just after the frame.
    All,
}

/// What happens, and where.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Close both directions when the frame is reached.
    Cut {
        dir: Dir,
        tag: u8,
        nth: usize,
        keep: Keep,
    },
    /// From the frame on, deliver nothing either way, keeping both ends
    /// open (a half-open connection, a dead router).
    Blackhole { dir: Dir, tag: u8, nth: usize },
    /// Deliver the frame `by` later than it came (and the frames behind it
    /// in that direction with it); it has struck once delivered.
    Delay {
        dir: Dir,
        tag: u8,
        nth: usize,
        by: std::time::Duration,
    },
}

impl Fault {
    fn point(&self) -> (Dir, u8, usize) {
        match *self {
            Fault::Cut { dir, tag, nth, .. }
            | Fault::Blackhole { dir, tag, nth }
            | Fault::Delay { dir, tag, nth, .. } => (dir, tag, nth),
        }
    }
}

/// The test's handle on the relay.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    /// The armed fault and how many matching frames have passed since.
    armed: Mutex<Option<(Fault, usize)>>,
    /// Largest chunk a frame is delivered in (0: whole frames).
    max_chunk: Mutex<usize>,
    /// Set when the armed fault struck.
    struck: watch::Sender<bool>,
    /// Set on a cut: both relay directions stop and drop their pipes.
    cut: watch::Sender<bool>,
    blackholed: AtomicBool,
}

impl Control {
    /// Arm `fault`; it strikes at the next matching frame(s).
    pub fn arm(&self, fault: Fault) {
        *self.inner.armed.lock().unwrap() = Some((fault, 0));
    }

    /// Deliver every frame from now on in chunks of 1..=`max` bytes (chosen
    /// by a fixed-seed generator), yielding to the scheduler between chunks.
    pub fn split_into_chunks(&self, max: usize) {
        *self.inner.max_chunk.lock().unwrap() = max;
    }

    /// Resolves once the armed fault has struck.
    pub async fn struck(&self) {
        let mut rx = self.inner.struck.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Cut both directions now.
    pub fn cut_now(&self) {
        self.inner.cut.send_replace(true);
    }

    /// What to do with a frame of `tag` going `dir`: whether it matches the
    /// armed fault (which then strikes).
    fn check(&self, dir: Dir, tag: u8) -> Option<Fault> {
        let mut armed = self.inner.armed.lock().unwrap();
        let (fault, seen) = armed.as_mut()?;
        let (want_dir, want_tag, nth) = fault.point();
        if want_dir != dir || want_tag != tag {
            return None;
        }
        *seen += 1;
        if *seen <= nth {
            return None;
        }
        let fault = *fault;
        *armed = None;
        Some(fault)
    }
}

/// A client and a server (serving what `server` says) connected through a
/// fault-injecting relay; returns the client, the server and the relay's
/// control.
pub async fn faulty_pair(client: Builder, server: Builder) -> (Connection, Connection, Control) {
    let (client_end, relay_client) = tokio::io::duplex(64 * 1024);
    let (relay_server, server_end) = tokio::io::duplex(64 * 1024);
    let control = Control {
        inner: Arc::new(Inner {
            armed: Mutex::new(None),
            max_chunk: Mutex::new(0),
            struck: watch::channel(false).0,
            cut: watch::channel(false).0,
            blackholed: AtomicBool::new(false),
        }),
    };
    let (from_client, to_client) = tokio::io::split(relay_client);
    let (from_server, to_server) = tokio::io::split(relay_server);
    tokio::spawn(relay(
        Dir::ToServer,
        from_client,
        to_server,
        control.clone(),
    ));
    tokio::spawn(relay(
        Dir::ToClient,
        from_server,
        to_client,
        control.clone(),
    ));
    let (c, s) = tokio::join!(
        client.connect_io(client_end, Some("faulty".into())),
        server.accept_io(server_end, Some("faulty".into()))
    );
    (
        c.expect("client handshake through the relay"),
        s.expect("server handshake through the relay"),
        control,
    )
}

/// Carry frames one way until the source closes or the relay is cut.
async fn relay(
    dir: Dir,
    mut from: ReadHalf<DuplexStream>,
    mut to: WriteHalf<DuplexStream>,
    control: Control,
) {
    let mut cut = control.inner.cut.subscribe();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ dir as u64;
    tokio::select! {
        _ = cut.wait_for(|c| *c) => {}
        _ = async {
            while let Some(frame) = read_frame(&mut from).await {
                if control.inner.blackholed.load(Ordering::SeqCst) {
                    continue;
                }
                let tag = frame.get(4).copied().unwrap_or(u8::MAX);
                let mut send = frame.len();
                match control.check(dir, tag) {
                    None => {}
                    Some(Fault::Blackhole { .. }) => {
                        control.inner.blackholed.store(true, Ordering::SeqCst);
                        control.inner.struck.send_replace(true);
                        continue;
                    }
                    Some(Fault::Delay { by, .. }) => {
                        tokio::time::sleep(by).await;
                        if deliver(&mut to, &frame, &control, &mut rng).await.is_err() {
                            return;
                        }
                        control.inner.struck.send_replace(true);
                        continue;
                    }
                    Some(Fault::Cut { keep, .. }) => {
                        send = match keep {
                            Keep::Nothing => 0,
                            Keep::Half => 4 + (frame.len() - 4) / 2,
                            Keep::All => frame.len(),
                        };
                        let _ = deliver(&mut to, &frame[..send], &control, &mut rng).await;
                        control.inner.struck.send_replace(true);
                        control.cut_now();
                        return;
                    }
                }
                if deliver(&mut to, &frame[..send], &control, &mut rng).await.is_err() {
                    return;
                }
            }
        } => {}
    }
    // Dropping `from` and `to` here closes this relay's ends of both pipes
    // once the other direction has stopped too.
    control.cut_now();
}

/// Write `bytes`, whole or in chunks, flushing each.
async fn deliver(
    to: &mut WriteHalf<DuplexStream>,
    bytes: &[u8],
    control: &Control,
    rng: &mut u64,
) -> std::io::Result<()> {
    let max = *control.inner.max_chunk.lock().unwrap();
    if max == 0 {
        return to.write_all(bytes).await;
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let n = (1 + (*rng as usize) % max).min(rest.len());
        to.write_all(&rest[..n]).await?;
        to.flush().await?;
        rest = &rest[n..];
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// The next whole frame, header included; `None` at end of stream.
async fn read_frame(from: &mut ReadHalf<DuplexStream>) -> Option<Vec<u8>> {
    let len = from.read_u32().await.ok()? as usize;
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    frame.resize(4 + len, 0);
    from.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}
