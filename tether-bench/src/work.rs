//! The workloads, as run by the client side of the benchmark.
//!
//! Figures that are compared with each other are measured interleaved: a
//! group (sequential latency; calls in flight; payloads; the remote file)
//! runs its members one after the other for a short round, several rounds
//! over, so a drift of the machine (other processes, the scheduler moving
//! threads between vCPUs) falls on the subject and its reference alike.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::LengthDelimitedCodec;
use tether::{Connection, NetRef, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::flavour::{Client, Flavour};
use crate::report::{fig, note, Latency};
use crate::server::Servers;
use crate::service::PeerClient;
use crate::sys;

/// How long things run.
#[derive(Clone, Copy)]
pub struct Plan {
    pub quick: bool,
}

impl Plan {
    /// `full` seconds normally, a quarter of it with `--quick`.
    pub fn secs(&self, full: f64) -> Duration {
        Duration::from_secs_f64(if self.quick { full * 0.25 } else { full })
    }
    /// Rounds an interleaved group is split into.
    pub fn rounds(&self) -> u32 {
        if self.quick {
            2
        } else {
            6
        }
    }
    fn warm(&self) -> Duration {
        self.secs(0.2)
    }
}

/// Where the servers listen, and the server process.
#[derive(Clone, Copy)]
pub struct Targets {
    pub raw: SocketAddr,
    pub tether: SocketAddr,
    pub tarpc: SocketAddr,
    pub server_pid: u32,
}

/// One runtime flavour: a client runtime and a server process of that
/// flavour (tether, tarpc and the raw echo server on one runtime).
pub struct Side {
    pub client: Client,
    pub t: Targets,
    // Dropped after the client, whose connections go first.
    _servers: Servers,
}

impl Side {
    pub fn start(flavour: Flavour) -> Side {
        let servers = Servers::spawn_flavour(flavour);
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Side {
            client: Client::start(flavour),
            t: Targets {
                raw: at(servers.raw),
                tether: at(servers.tether),
                tarpc: at(servers.tarpc),
                server_pid: servers.pid(),
            },
            _servers: servers,
        }
    }
}

const FLOOR_PAYLOAD: usize = 16;

/// Live objects in the `objects` workload (`--quick`: a tenth).
pub const OBJECTS: usize = 1_000_000;
pub const SIZES: [(&str, usize); 3] = [("1KiB", 1024), ("64KiB", 64 * 1024), ("1MiB", 1 << 20)];

// ------------------------------------------------------------- connecting

async fn raw_connect(addr: SocketAddr, mode: u8) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect raw");
    s.set_nodelay(true).unwrap();
    s.write_all(&[mode]).await.unwrap();
    s
}

pub async fn tether_root(addr: SocketAddr) -> (Connection, NetRef) {
    let conn = tether::connect(addr).await.expect("connect tether");
    let root = conn.root().await.expect("root");
    (conn, root)
}

async fn tarpc_client(addr: SocketAddr) -> PeerClient {
    let s = TcpStream::connect(addr).await.expect("connect tarpc");
    // tether sets TCP_NODELAY; give tarpc the same.
    s.set_nodelay(true).unwrap();
    let framed = LengthDelimitedCodec::builder().new_framed(s);
    let transport = tarpc::serde_transport::new(framed, Bincode::default());
    PeerClient::new(tarpc::client::Config::default(), transport).spawn()
}

async fn exported(root: &NetRef) -> i64 {
    i64::try_from(root.call_method("exported", ()).await.unwrap()).unwrap()
}

/// Wait until the server holds nothing of ours but the root.
async fn drained(root: &NetRef) {
    drained_to(root, 1).await
}

/// Wait until the server holds `keep` objects for us.
async fn drained_to(root: &NetRef, keep: i64) {
    while exported(root).await > keep {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

// ------------------------------------------------------ sequential latency

/// One sequential round trip of some kind.
enum Seq {
    /// 16 bytes and a 4-byte length out, the same back.
    Floor {
        s: TcpStream,
        frame: Vec<u8>,
        back: Vec<u8>,
    },
    /// `root.null()`.
    Null { _conn: Connection, root: NetRef },
    /// `root.call_back(cb)`: the server calls `cb(1)` once.
    Callback {
        _conn: Connection,
        root: NetRef,
        cb: NetRef,
    },
    /// tarpc's `null()`.
    Tarpc(PeerClient),
}

impl Seq {
    async fn floor(raw: SocketAddr) -> Seq {
        let s = raw_connect(raw, b'E').await;
        let mut frame = vec![0x5au8; 4 + FLOOR_PAYLOAD];
        frame[..4].copy_from_slice(&(FLOOR_PAYLOAD as u32).to_be_bytes());
        let back = vec![0u8; frame.len()];
        Seq::Floor { s, frame, back }
    }

    async fn null(addr: SocketAddr) -> Seq {
        let (c, root) = tether_root(addr).await;
        Seq::Null { _conn: c, root }
    }

    async fn callback(addr: SocketAddr) -> Seq {
        let (c, root) = tether_root(addr).await;
        // One callback, made once and passed by reference on every call.
        let cb = tether::callback_sync(|n: i64| Ok(n));
        Seq::Callback { _conn: c, root, cb }
    }

    async fn once(&mut self) {
        match self {
            Seq::Floor { s, frame, back } => {
                s.write_all(frame).await.unwrap();
                s.read_exact(back).await.unwrap();
            }
            Seq::Null { root, .. } => {
                let v = root.call_method("null", ()).await.unwrap();
                debug_assert_eq!(v, Value::Int(42));
            }
            Seq::Callback { root, cb, .. } => {
                let v = root.call_method("call_back", (cb.clone(),)).await.unwrap();
                debug_assert_eq!(v, Value::Int(1));
            }
            Seq::Tarpc(c) => {
                let v = c.null(tarpc::context::current()).await.unwrap();
                debug_assert_eq!(v, 42);
            }
        }
    }

    /// Round trips for `dur`, each one's time in ns added to `samples`.
    async fn round(mut self, mut samples: Vec<u64>, dur: Duration) -> (Seq, Vec<u64>, Duration) {
        let start = Instant::now();
        let end = start + dur;
        loop {
            let t0 = Instant::now();
            if t0 >= end {
                break;
            }
            self.once().await;
            samples.push(t0.elapsed().as_nanos() as u64);
        }
        (self, samples, start.elapsed())
    }
}

/// One member of an interleaved group: its figure's name, the client
/// runtime it runs on and its state between rounds (moved into each round's
/// job and back out).
struct Member<'a, S> {
    name: String,
    side: &'a Side,
    state: Option<S>,
}

impl<'a, S: Send + 'static> Member<'a, S> {
    /// Make the state on `side`'s runtime.
    async fn make<F, Fut>(name: String, side: &'a Side, make: F) -> Member<'a, S>
    where
        F: FnOnce(Targets) -> Fut + Send + 'static,
        Fut: Future<Output = S> + 'static,
    {
        let t = side.t;
        let state = side.client.run(move || make(t)).await;
        Member {
            name,
            side,
            state: Some(state),
        }
    }

    /// Drop the state on the runtime that made it.
    async fn finish(mut self) {
        let state = self.state.take();
        self.side
            .client
            .run(move || async move { drop(state) })
            .await;
    }
}

/// Sequential p50/p99 and rate of the floor, tether's null call and
/// callback and tarpc's null call, on each flavour of `sides`, all
/// interleaved in rounds.
pub async fn latency(
    sides: &[Side],
    plan: Plan,
    floor: bool,
    null: bool,
    callback: bool,
    tarpc: bool,
) {
    let mut kinds: Vec<Member<Seq>> = Vec::new();
    for side in sides {
        let p = side.client.prefix();
        if floor {
            kinds.push(Member::make(format!("{p}floor.rtt"), side, |t| Seq::floor(t.raw)).await);
        }
        if null {
            kinds.push(Member::make(format!("{p}null"), side, |t| Seq::null(t.tether)).await);
        }
        if callback {
            kinds.push(
                Member::make(format!("{p}callback"), side, |t| Seq::callback(t.tether)).await,
            );
        }
        if tarpc {
            kinds.push(
                Member::make(format!("{p}tarpc.null"), side, |t| async move {
                    Seq::Tarpc(tarpc_client(t.tarpc).await)
                })
                .await,
            );
        }
    }
    let warm = plan.warm();
    for k in kinds.iter_mut() {
        let seq = k.state.take().unwrap();
        let (seq, _, _) = k.side.client.run(move || seq.round(Vec::new(), warm)).await;
        k.state = Some(seq);
    }
    let round = plan.secs(4.0) / plan.rounds();
    let mut results: Vec<Latency> = kinds
        .iter()
        .map(|_| Latency {
            samples: Vec::with_capacity(1 << 18),
            elapsed: Duration::ZERO,
        })
        .collect();
    for _ in 0..plan.rounds() {
        for (k, r) in kinds.iter_mut().zip(results.iter_mut()) {
            let seq = k.state.take().unwrap();
            let samples = std::mem::take(&mut r.samples);
            let (seq, samples, elapsed) =
                k.side.client.run(move || seq.round(samples, round)).await;
            k.state = Some(seq);
            r.samples = samples;
            r.elapsed += elapsed;
        }
    }
    for (k, r) in kinds.into_iter().zip(results) {
        r.report(&k.name);
        k.finish().await;
    }
}

// -------------------------------------------------------- calls in flight

/// `window` calls kept in flight from one task (a `FuturesUnordered`
/// refilled as calls complete); completed calls.
pub(crate) async fn windowed<F, Fut>(window: usize, dur: Duration, call: F) -> u64
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut inflight = FuturesUnordered::new();
    let end = Instant::now() + dur;
    for i in 0..window {
        inflight.push(call(i));
    }
    let mut done = 0u64;
    let mut i = window;
    while inflight.next().await.is_some() {
        done += 1;
        if Instant::now() < end {
            inflight.push(call(i));
            i += 1;
        }
    }
    done
}

/// `tasks` spawned tasks, each looping one call at a time; completed calls.
async fn tasks<F, Fut>(tasks: usize, dur: Duration, call: F) -> u64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let call = Arc::new(call);
    let end = Instant::now() + dur;
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    call(i).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.expect("task");
    }
    total
}

/// Frames echoed with `window` frames in flight: the writer sends as many
/// frames as the window allows in one write, the reader counts echoed
/// frames and reopens the window.
async fn raw_pipelined(addr: SocketAddr, window: usize, dur: Duration) -> u64 {
    const FRAME: usize = 4 + FLOOR_PAYLOAD;
    let s = raw_connect(addr, b'E').await;
    let (mut rd, mut wr) = s.into_split();
    let mut one = [0x5au8; FRAME];
    one[..4].copy_from_slice(&(FLOOR_PAYLOAD as u32).to_be_bytes());
    let batch: Vec<u8> = one.iter().copied().cycle().take(FRAME * window).collect();
    let sem = Arc::new(Semaphore::new(window));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (sem, stop) = (sem.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                sem.acquire().await.unwrap().forget();
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let more = sem.available_permits();
                let more = match sem.try_acquire_many(more as u32) {
                    Ok(p) if more > 0 => {
                        p.forget();
                        more
                    }
                    _ => 0,
                };
                if wr.write_all(&batch[..(1 + more) * FRAME]).await.is_err() {
                    break;
                }
            }
            wr
        })
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0usize;
    let mut frames = 0usize;
    let end = Instant::now() + dur;
    while Instant::now() < end {
        let n = rd.read(&mut buf).await.unwrap();
        bytes += n;
        let now = bytes / FRAME;
        sem.add_permits(now - frames);
        frames = now;
    }
    stop.store(true, Ordering::Relaxed);
    sem.add_permits(window);
    let _ = writer.await;
    frames as u64
}

/// One member of the calls-in-flight group.
enum Thru {
    Floor,
    /// tether, one task keeping `window` calls in flight over `roots`
    /// (one root per connection, calls spread round-robin).
    Tether {
        window: usize,
        roots: Vec<NetRef>,
        _conns: Vec<Connection>,
    },
    /// tether, `window` spawned tasks on one connection.
    TetherTasks {
        window: usize,
        root: NetRef,
        _conn: Connection,
    },
    Tarpc {
        window: usize,
        clients: Vec<PeerClient>,
    },
    TarpcTasks {
        window: usize,
        client: PeerClient,
    },
}

impl Thru {
    async fn run(&self, t: Targets, dur: Duration) -> u64 {
        match self {
            Thru::Floor => raw_pipelined(t.raw, 256, dur).await,
            Thru::Tether { window, roots, .. } => {
                windowed(*window, dur, |i| {
                    let root = &roots[i % roots.len()];
                    async move {
                        root.call_method("null", ()).await.unwrap();
                    }
                })
                .await
            }
            Thru::TetherTasks { window, root, .. } => {
                let root = root.clone();
                tasks(*window, dur, move |_| {
                    let root = root.clone();
                    async move {
                        root.call_method("null", ()).await.unwrap();
                    }
                })
                .await
            }
            Thru::Tarpc { window, clients } => {
                windowed(*window, dur, |i| {
                    let c = &clients[i % clients.len()];
                    async move {
                        c.null(tarpc::context::current()).await.unwrap();
                    }
                })
                .await
            }
            Thru::TarpcTasks { window, client } => {
                let c = client.clone();
                tasks(*window, dur, move |_| {
                    let c = c.clone();
                    async move {
                        c.null(tarpc::context::current()).await.unwrap();
                    }
                })
                .await
            }
        }
    }

    /// Run for `dur` (moved in and back out of a job): calls done, time taken.
    async fn round(self, t: Targets, dur: Duration) -> (Thru, u64, Duration) {
        let start = Instant::now();
        let n = self.run(t, dur).await;
        (self, n, start.elapsed())
    }

    /// tether's members: 64 and 256 in flight on one connection, 16
    /// connections x 16, 256 tasks.
    async fn tether_kinds(t: Targets) -> Vec<(&'static str, Thru)> {
        let (c, root) = tether_root(t.tether).await;
        let mut roots16 = Vec::new();
        let mut conns16 = Vec::new();
        for _ in 0..16 {
            let (c, r) = tether_root(t.tether).await;
            conns16.push(c);
            roots16.push(r);
        }
        vec![
            (
                "pipelined.inflight64",
                Thru::Tether {
                    window: 64,
                    roots: vec![root.clone()],
                    _conns: vec![c.clone()],
                },
            ),
            (
                "pipelined.inflight256",
                Thru::Tether {
                    window: 256,
                    roots: vec![root.clone()],
                    _conns: vec![c.clone()],
                },
            ),
            (
                "pipelined.conns16x16",
                Thru::Tether {
                    window: 256,
                    roots: roots16,
                    _conns: conns16,
                },
            ),
            (
                "pipelined.tasks256",
                Thru::TetherTasks {
                    window: 256,
                    root,
                    _conn: c,
                },
            ),
        ]
    }

    /// tarpc's members, the same four.
    async fn tarpc_kinds(t: Targets) -> Vec<(&'static str, Thru)> {
        let client = tarpc_client(t.tarpc).await;
        let mut clients16 = Vec::new();
        for _ in 0..16 {
            clients16.push(tarpc_client(t.tarpc).await);
        }
        vec![
            (
                "tarpc.inflight64",
                Thru::Tarpc {
                    window: 64,
                    clients: vec![client.clone()],
                },
            ),
            (
                "tarpc.inflight256",
                Thru::Tarpc {
                    window: 256,
                    clients: vec![client.clone()],
                },
            ),
            (
                "tarpc.conns16x16",
                Thru::Tarpc {
                    window: 256,
                    clients: clients16,
                },
            ),
            (
                "tarpc.tasks256",
                Thru::TarpcTasks {
                    window: 256,
                    client,
                },
            ),
        ]
    }
}

/// Calls (frames) per second with many in flight: the floor, tether and
/// tarpc on each flavour of `sides`, interleaved in rounds; also CPU time
/// per call, client and server processes together, which other load on
/// the machine disturbs less.
pub async fn throughput(sides: &[Side], plan: Plan, floor: bool, tether: bool, tarpc: bool) {
    let mut kinds: Vec<Member<Thru>> = Vec::new();
    for side in sides {
        let p = side.client.prefix();
        let t = side.t;
        let mut made = Vec::new();
        if floor {
            made.push(("floor.inflight256", Thru::Floor));
        }
        if tether {
            made.extend(side.client.run(move || Thru::tether_kinds(t)).await);
        }
        if tarpc {
            made.extend(side.client.run(move || Thru::tarpc_kinds(t)).await);
        }
        for (name, k) in made {
            kinds.push(Member {
                name: format!("{p}{name}"),
                side,
                state: Some(k),
            });
        }
    }
    let warm = plan.secs(0.2);
    for k in kinds.iter_mut() {
        let (thru, t) = (k.state.take().unwrap(), k.side.t);
        let (thru, _, _) = k.side.client.run(move || thru.round(t, warm)).await;
        k.state = Some(thru);
    }
    let round = plan.secs(3.0) / plan.rounds();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut cpu = vec![(0.0f64, 0u64); kinds.len()];
    for _ in 0..plan.rounds() {
        for (i, k) in kinds.iter_mut().enumerate() {
            let (thru, t) = (k.state.take().unwrap(), k.side.t);
            let cpu0 = sys::cpu_self() + sys::cpu_of(t.server_pid);
            let (thru, n, elapsed) = k.side.client.run(move || thru.round(t, round)).await;
            let cpu1 = sys::cpu_self() + sys::cpu_of(t.server_pid);
            k.state = Some(thru);
            rates[i].push(n as f64 / elapsed.as_secs_f64());
            cpu[i].0 += cpu1 - cpu0;
            cpu[i].1 += n;
        }
    }
    for (i, k) in kinds.into_iter().enumerate() {
        let unit = if k.name.ends_with("floor.inflight256") {
            "frames/s"
        } else {
            "calls/s"
        };
        fig(&k.name, median(&mut rates[i]), unit);
        fig(
            &format!("{}.cpu", k.name),
            cpu[i].0 / cpu[i].1.max(1) as f64 * 1e6,
            "cpu-us/call",
        );
        k.finish().await;
    }
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------- payload

/// One member of the payload group.
enum Echo {
    Raw {
        s: TcpStream,
        frame: Vec<u8>,
        back: Vec<u8>,
    },
    /// The echoed value is sent again: no copy on the client side.
    Tether {
        _conn: Connection,
        root: NetRef,
        data: Value,
    },
}

impl Echo {
    async fn raw(addr: SocketAddr, size: usize) -> Echo {
        let s = raw_connect(addr, b'E').await;
        let mut frame = vec![0x5au8; 4 + size];
        frame[..4].copy_from_slice(&(size as u32).to_be_bytes());
        let back = vec![0u8; 4 + size];
        Echo::Raw { s, frame, back }
    }

    async fn tether(addr: SocketAddr, size: usize) -> Echo {
        let (_conn, root) = tether_root(addr).await;
        let data = Value::from(vec![0x5a; size]);
        Echo::Tether { _conn, root, data }
    }

    /// Echoes for `dur`: echoes done, time taken.
    async fn round(mut self, dur: Duration) -> (Echo, u64, Duration) {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < dur {
            match &mut self {
                Echo::Raw { s, frame, back } => {
                    s.write_all(frame).await.unwrap();
                    s.read_exact(back).await.unwrap();
                }
                Echo::Tether { root, data, .. } => {
                    let d = std::mem::replace(data, Value::None);
                    *data = root.call_method("echo", (d,)).await.unwrap();
                }
            }
            n += 1;
        }
        (self, n, start.elapsed())
    }
}

/// Byte strings echoed one at a time: raw frames and tether's
/// `echo(Value::Bytes)` on each flavour of `sides`, interleaved per size.
/// MB/s of payload (10^6 bytes per second, each way).
pub async fn payload(sides: &[Side], plan: Plan) {
    for (label, size) in SIZES {
        let mut kinds: Vec<Member<Echo>> = Vec::new();
        for side in sides {
            let p = side.client.prefix();
            let name = format!("{p}floor.echo_{label}");
            kinds.push(Member::make(name, side, move |t| Echo::raw(t.raw, size)).await);
            let name = format!("{p}payload.echo_{label}");
            kinds.push(Member::make(name, side, move |t| Echo::tether(t.tether, size)).await);
        }
        let warm = plan.secs(0.1);
        let round = plan.secs(2.0) / plan.rounds();
        let mut done = vec![(0u64, Duration::ZERO); kinds.len()];
        for r in 0..=plan.rounds() {
            for (k, d) in kinds.iter_mut().zip(done.iter_mut()) {
                let echo = k.state.take().unwrap();
                let dur = if r == 0 { warm } else { round };
                let (echo, n, elapsed) = k.side.client.run(move || echo.round(dur)).await;
                k.state = Some(echo);
                if r > 0 {
                    d.0 += n;
                    d.1 += elapsed;
                }
            }
        }
        for (k, (n, t)) in kinds.into_iter().zip(done) {
            if let Some(Echo::Tether { data, .. }) = &k.state {
                match data {
                    Value::Bytes(b) => assert_eq!(b.len(), size),
                    other => panic!("echo returned {}", other.type_name()),
                }
            }
            fig(
                &k.name,
                n as f64 * size as f64 / t.as_secs_f64() / 1e6,
                "MB/s",
            );
            k.finish().await;
        }
    }
}

// ------------------------------------------------------------ remote file

/// The files the file workload reads, made once per run.
pub struct Files {
    pub dir: PathBuf,
    pub binary: PathBuf,
    pub text: PathBuf,
    pub lines: usize,
}

impl Files {
    pub fn make() -> Files {
        let dir = std::env::temp_dir().join(format!("tether-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("64MiB.bin");
        let block: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 31 % 251) as u8).collect();
        let mut data = Vec::with_capacity(64 << 20);
        for _ in 0..64 {
            data.extend_from_slice(&block);
        }
        std::fs::write(&binary, &data).unwrap();
        let lines = 1_000_000;
        let text = dir.join("1M-lines.txt");
        let mut t = String::with_capacity(lines * 13);
        for i in 0..lines {
            t.push_str(&format!("line {i:07}\n"));
        }
        std::fs::write(&text, t).unwrap();
        Files {
            dir,
            binary,
            text,
            lines,
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn open_remote(root: &NetRef, path: &Path, mode: &str) -> NetRef {
    let v = root
        .call_method("open", (path.to_string_lossy().into_owned(), mode))
        .await
        .unwrap();
    NetRef::try_from(v).unwrap()
}

/// 64 MiB through a raw TCP stream, 64 KiB writes and reads; bytes moved.
async fn raw_stream_once(s: &mut TcpStream) -> u64 {
    const ROUND: u64 = 64 << 20;
    let mut buf = vec![0u8; 64 * 1024];
    s.write_u64(ROUND).await.unwrap();
    let mut left = ROUND as usize;
    while left > 0 {
        let n = s.read(&mut buf[..left.min(64 * 1024)]).await.unwrap();
        assert!(n > 0, "raw stream ended early");
        left -= n;
    }
    ROUND
}

/// The 64 MiB file read whole through a `LocalFile` netref in 64 KiB
/// `read`s (binary mode); bytes read.
async fn remote_read_once(root: &NetRef, files: &Files) -> u64 {
    let f = open_remote(root, &files.binary, "rb").await;
    let mut total = 0u64;
    loop {
        match f.call_method("read", (64 * 1024,)).await.unwrap() {
            Value::Bytes(b) if b.is_empty() => break,
            Value::Bytes(b) => total += b.len() as u64,
            other => panic!("read returned {}", other.type_name()),
        }
    }
    f.close().await.unwrap();
    total
}

/// The 64 MiB file read whole through `tether::RemoteFile` (tokio
/// `AsyncRead` over the netref) into a 64 KiB buffer, with read-ahead
/// `ahead` and up to `in_flight` reads in flight; bytes read.
async fn remotefile_once(root: &NetRef, files: &Files, ahead: usize, in_flight: usize) -> u64 {
    let f = open_remote(root, &files.binary, "rb").await;
    let mut rf = tether::RemoteFile::new(f)
        .with_read_ahead(ahead)
        .with_reads_in_flight(in_flight);
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = rf.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    rf.shutdown().await.unwrap();
    n
}

/// One member of the remote file's interleaved passes.
enum Pass {
    /// The raw TCP stream, 64 MiB per pass.
    Raw(TcpStream),
    /// The plain `read(65536)` loop.
    Read { _conn: Connection, root: NetRef },
    /// `RemoteFile` with its defaults: 64 KiB read-ahead; while
    /// streaming, 2 reads in flight, each twice the last up to 1 MiB.
    RemoteFile { _conn: Connection, root: NetRef },
}

impl Pass {
    /// One whole pass: the pass, bytes moved, time taken.
    async fn pass(mut self, files: Arc<Files>) -> (Pass, u64, Duration) {
        let start = Instant::now();
        let n = match &mut self {
            Pass::Raw(s) => raw_stream_once(s).await,
            Pass::Read { root, .. } => remote_read_once(root, &files).await,
            Pass::RemoteFile { root, .. } => remotefile_once(root, &files, 64 * 1024, 2).await,
        };
        (self, n, start.elapsed())
    }
}

/// The remote file. First whole 64 MiB passes, on each flavour the raw
/// stream, the plain read loop and `RemoteFile`, alternating until each
/// has had its time (at least one pass each); then the other variants,
/// one flavour after the other.
pub async fn file(sides: &[Side], plan: Plan, files: Arc<Files>, floor: bool) {
    let mut kinds: Vec<Member<Pass>> = Vec::new();
    for side in sides {
        let p = side.client.prefix();
        if floor {
            kinds.push(
                Member::make(format!("{p}floor.stream"), side, |t| async move {
                    Pass::Raw(raw_connect(t.raw, b'S').await)
                })
                .await,
            );
        }
        kinds.push(
            Member::make(format!("{p}file.read_64KiB"), side, |t| async move {
                let (_conn, root) = tether_root(t.tether).await;
                Pass::Read { _conn, root }
            })
            .await,
        );
        kinds.push(
            Member::make(format!("{p}file.remotefile_64KiB"), side, |t| async move {
                let (_conn, root) = tether_root(t.tether).await;
                Pass::RemoteFile { _conn, root }
            })
            .await,
        );
    }
    let budget = plan.secs(2.0);
    let mut done = vec![(0u64, Duration::ZERO); kinds.len()];
    while done.iter().any(|d| d.1 < budget) {
        for (k, d) in kinds.iter_mut().zip(done.iter_mut()) {
            if d.1 >= budget {
                continue;
            }
            let (pass, files) = (k.state.take().unwrap(), files.clone());
            let (pass, n, elapsed) = k.side.client.run(move || pass.pass(files)).await;
            k.state = Some(pass);
            d.0 += n;
            d.1 += elapsed;
        }
    }
    for (k, (n, t)) in kinds.into_iter().zip(done) {
        fig(&k.name, n as f64 / t.as_secs_f64() / 1e6, "MB/s");
        k.finish().await;
    }
    for side in sides {
        let (t, p, files) = (side.t, side.client.prefix(), files.clone());
        side.client
            .run(move || async move { file_rest(t, plan, &files, &p).await })
            .await;
    }
}

/// The rest of the remote file workload on one flavour (figure names
/// starting with `p`).
async fn file_rest(t: Targets, plan: Plan, files: &Files, p: &str) {
    let (_conn, root) = tether_root(t.tether).await;
    let budget = plan.secs(2.0);

    // The same reads with 4 in flight (FuturesOrdered): what a client-side
    // read-ahead would give. LocalFile runs operations one at a time in the
    // order they arrive; the content is checked, so a reordering would show.
    let (mut ahead_bytes, mut ahead_time, mut misplaced) = (0u64, Duration::ZERO, 0u64);
    while ahead_time < budget {
        let start = Instant::now();
        let f = open_remote(&root, &files.binary, "rb").await;
        let mut inflight = futures::stream::FuturesOrdered::new();
        let read = || {
            let f = f.clone();
            async move { f.call_method("read", (64 * 1024,)).await.unwrap() }
        };
        for _ in 0..4 {
            inflight.push_back(read());
        }
        let mut offset = 0u64;
        while let Some(v) = inflight.next().await {
            let Value::Bytes(b) = v else { panic!("read") };
            if b.is_empty() {
                continue;
            }
            if !b.iter().enumerate().step_by(4093).all(|(i, &x)| {
                let at = (offset + i as u64) % (1 << 20);
                x == (at as u32 * 31 % 251) as u8
            }) {
                misplaced += 1;
            }
            offset += b.len() as u64;
            inflight.push_back(read());
        }
        f.close().await.unwrap();
        ahead_bytes += offset;
        ahead_time += start.elapsed();
    }
    if misplaced > 0 {
        note(&format!(
            "{p}file.read_64KiB_ahead4: {misplaced} chunks arrived out of order \
             (LocalFile does not keep the order of pipelined calls)"
        ));
    }
    fig(
        &format!("{p}file.read_64KiB_ahead4"),
        ahead_bytes as f64 / ahead_time.as_secs_f64() / 1e6,
        "MB/s",
    );
    fig(
        &format!("{p}file.read_64KiB_ahead4.misordered"),
        misplaced as f64,
        "chunks",
    );

    // tether::RemoteFile (tokio AsyncRead over the netref), reading into a
    // 64 KiB buffer (its defaults are measured in the interleaved passes):
    // with 1, 4 and 8 reads in flight, and with a 1 MiB read-ahead from
    // the start.
    for (name, ahead, in_flight) in [
        ("file.remotefile_64KiB_x1", 64 * 1024, 1),
        ("file.remotefile_64KiB_x4", 64 * 1024, 4),
        ("file.remotefile_64KiB_x8", 64 * 1024, 8),
        ("file.remotefile_1MiB", 1 << 20, 2),
    ] {
        let (mut n, mut time) = (0u64, Duration::ZERO);
        while time < budget {
            let start = Instant::now();
            n += remotefile_once(&root, files, ahead, in_flight).await;
            time += start.elapsed();
        }
        fig(
            &format!("{p}{name}"),
            n as f64 / time.as_secs_f64() / 1e6,
            "MB/s",
        );
    }

    // Writing: 64 MiB in 64 KiB `write(bytes)` calls to a new file.
    let chunk = Value::from(vec![0x5a; 64 * 1024]);
    let target = files.dir.join("written.bin");
    let (mut n, mut time) = (0u64, Duration::ZERO);
    while time < budget {
        let start = Instant::now();
        let f = open_remote(&root, &target, "wb").await;
        for _ in 0..1024 {
            f.call_method("write", (chunk.clone(),)).await.unwrap();
            n += 64 * 1024;
        }
        f.close().await.unwrap();
        time += start.elapsed();
    }
    fig(
        &format!("{p}file.write_64KiB"),
        n as f64 / time.as_secs_f64() / 1e6,
        "MB/s",
    );

    // Lines through `netref.iter()` (batches of 16 doubling to 1024), then
    // with the largest batch an owner hands out; each bounded in time.
    for (name, batch) in [
        ("file.lines", None),
        ("file.lines_batch64k", Some(65_536u32)),
    ] {
        let f = open_remote(&root, &files.text, "r").await;
        let mut it = match batch {
            None => f.iter(),
            Some(n) => f.iter().batch_size(n),
        };
        let limit = plan.secs(5.0);
        let start = Instant::now();
        let mut n = 0usize;
        while let Some(line) = it.next().await {
            line.unwrap();
            n += 1;
            if n.is_multiple_of(1024) && start.elapsed() >= limit {
                break;
            }
        }
        let elapsed = start.elapsed();
        if n < files.lines {
            note(&format!(
                "{p}{name}: {n} of {} lines read within the {limit:?} bound",
                files.lines
            ));
        }
        fig(
            &format!("{p}{name}"),
            n as f64 / elapsed.as_secs_f64(),
            "lines/s",
        );
        drop(it);
        f.close().await.unwrap();
    }
}

// ---------------------------------------------------------------- netrefs

/// Netrefs made and released, on one flavour (figure names starting with `p`).
pub async fn netrefs(t: Targets, plan: Plan, p: &str) {
    let (_conn, root) = tether_root(t.tether).await;
    // Sequential: call, get a new object, drop it; its release rides along
    // with a later frame. The rate includes waiting for the last releases.
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < plan.secs(2.0) {
        drop(root.call_method("make", ()).await.unwrap());
        n += 1;
    }
    drained(&root).await;
    fig(
        &format!("{p}netrefs.seq"),
        n as f64 / start.elapsed().as_secs_f64(),
        "objects/s",
    );

    // 256 in flight from one task, as in the pipelined workload.
    let start = Instant::now();
    let n = windowed(256, plan.secs(2.0), |_| {
        let root = &root;
        async move {
            drop(root.call_method("make", ()).await.unwrap());
        }
    })
    .await;
    drained(&root).await;
    fig(
        &format!("{p}netrefs.inflight256"),
        n as f64 / start.elapsed().as_secs_f64(),
        "objects/s",
    );
}

// ----------------------------------------------------------------- memory

/// Memory per live exported object on the owner (the memory server, whose
/// allocator counts), with `count` objects alive.
pub async fn objects(addr: SocketAddr, server_pid: u32, count: usize) {
    let (_conn, root) = tether_root(addr).await;
    let heap = |root: NetRef| async move {
        i64::try_from(root.call_method("heap", ()).await.unwrap()).unwrap()
    };
    // Settle the connection's own allocations first.
    for _ in 0..100 {
        root.call_method("null", ()).await.unwrap();
    }
    let heap0 = heap(root.clone()).await;
    let rss0 = sys::rss_bytes(server_pid);
    let own0 = sys::rss_bytes(0);
    let mut keep: Vec<NetRef> = Vec::new();
    let start = Instant::now();
    while keep.len() < count {
        let n = (count - keep.len()).min(10_000);
        let v = root.call_method("make_many", (n as i64,)).await.unwrap();
        let Value::List(items) = v else {
            panic!("make_many returned {}", v.type_name())
        };
        keep.extend(items.into_iter().map(|v| NetRef::try_from(v).unwrap()));
    }
    let made = start.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heap1 = heap(root.clone()).await;
    let rss1 = sys::rss_bytes(server_pid);
    let own1 = sys::rss_bytes(0);
    let alive = exported(&root).await - 1;
    assert_eq!(alive as usize, count, "objects alive on the owner");
    let n = count as f64;
    let own = crate::service::SMALL_SIZE as f64;
    fig("objects.count", n, "objects");
    fig("objects.object_size", own, "B");
    fig(
        "objects.netref_size",
        std::mem::size_of::<NetRef>() as f64,
        "B",
    );
    fig(
        "objects.heap_per_object",
        (heap1 - heap0) as f64 / n - own,
        "B",
    );
    fig(
        "objects.rss_per_object",
        (rss1 as f64 - rss0 as f64) / n - own,
        "B",
    );
    fig(
        "objects.client_rss_per_proxy",
        (own1 as f64 - own0 as f64) / n,
        "B",
    );
    fig(
        "objects.batched_create_rate",
        n / made.as_secs_f64(),
        "objects/s",
    );
    let start = Instant::now();
    drop(keep);
    drained(&root).await;
    fig(
        "objects.release_rate",
        n / start.elapsed().as_secs_f64(),
        "objects/s",
    );
}

/// Memory per idle connection on the server (and on the client).
pub async fn connections(addr: SocketAddr, server_pid: u32, count: usize) {
    let (_ctl_conn, ctl) = tether_root(addr).await;
    let heap = || async { i64::try_from(ctl.call_method("heap", ()).await.unwrap()).unwrap() };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let heap0 = heap().await;
    let rss0 = sys::rss_bytes(server_pid);
    let own0 = sys::rss_bytes(0);
    let start = Instant::now();
    let conns: Vec<Connection> = futures::stream::iter(0..count)
        .map(|_| async move { tether::connect(addr).await.expect("connect") })
        .buffer_unordered(32)
        .collect()
        .await;
    let opened = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heap1 = heap().await;
    let rss1 = sys::rss_bytes(server_pid);
    let own1 = sys::rss_bytes(0);
    let n = conns.len() as f64;
    fig("connections.count", n, "connections");
    fig(
        "connections.server_rss_per_conn",
        (rss1 as f64 - rss0 as f64) / n / 1024.0,
        "KiB",
    );
    fig(
        "connections.server_heap_per_conn",
        (heap1 - heap0) as f64 / n / 1024.0,
        "KiB",
    );
    fig(
        "connections.client_rss_per_conn",
        (own1 as f64 - own0 as f64) / n / 1024.0,
        "KiB",
    );
    fig("connections.open_rate", n / opened.as_secs_f64(), "conns/s");
    drop(conns);
}

// ------------------------------------------------------------ allocations

/// Allocations per operation on each side: the memory server counts its
/// own, and this process counts from here on (this workload runs last).
/// Sequential, a fixed number of operations each, so the counts are exact
/// up to the connection's own housekeeping.
pub async fn allocs(t: Targets, files: &Files) {
    sys::enable_heap_counting();
    let (_conn, root) = tether_root(t.tether).await;
    let tarpc = tarpc_client(t.tarpc).await;
    let server = |root: NetRef| async move {
        let v = root.call_method("allocs", ()).await.unwrap();
        let Value::List(v) = v else { panic!("allocs") };
        (
            i64::try_from(v[0].clone()).unwrap(),
            i64::try_from(v[1].clone()).unwrap(),
        )
    };
    let cb = tether::callback_sync(|n: i64| Ok(n));
    let file = open_remote(&root, &files.binary, "rb").await;
    let keep = exported(&root).await;
    const N: i64 = 1000;
    for op in [
        "null",
        "callback",
        "make",
        "echo_1KiB",
        "echo_64KiB",
        "read_64KiB",
        "tarpc.null",
    ] {
        let data = Value::from(vec![0x5a; if op == "echo_64KiB" { 65536 } else { 1024 }]);
        let once = || async {
            match op {
                "null" => drop(root.call_method("null", ()).await.unwrap()),
                "callback" => drop(root.call_method("call_back", (cb.clone(),)).await.unwrap()),
                "make" => drop(root.call_method("make", ()).await.unwrap()),
                "echo_1KiB" | "echo_64KiB" => {
                    drop(root.call_method("echo", (data.clone(),)).await.unwrap())
                }
                "read_64KiB" => drop(file.call_method("read", (65536,)).await.unwrap()),
                _ => drop(tarpc.null(tarpc::context::current()).await.unwrap()),
            }
        };
        for _ in 0..100 {
            once().await;
        }
        drained_to(&root, keep).await;
        let (s0, sb0) = server(root.clone()).await;
        let (c0, cb0) = sys::allocations();
        for _ in 0..N {
            once().await;
        }
        drained_to(&root, keep).await;
        let (c1, cb1) = sys::allocations();
        let (s1, sb1) = server(root.clone()).await;
        // The two `allocs` calls and the `exported` polls are counted too;
        // over N operations they add well under one allocation each.
        let per = |a: u64, b: u64| (b - a) as f64 / N as f64;
        let per_i = |a: i64, b: i64| (b - a) as f64 / N as f64;
        // The client's own copy of the echoed data is the harness's.
        fig(&format!("allocs.{op}.server"), per_i(s0, s1), "allocs/op");
        fig(
            &format!("allocs.{op}.server_bytes"),
            per_i(sb0, sb1),
            "B/op",
        );
        fig(&format!("allocs.{op}.client"), per(c0, c1), "allocs/op");
        fig(&format!("allocs.{op}.client_bytes"), per(cb0, cb1), "B/op");
    }
}

// -------------------------------------------------------------- profiling

/// One kind of operation for `dur`, counted, for an outside profiler
/// (`perf stat -e ... tether-bench --only profile:KIND`): events divided
/// by the count printed give events per operation.
pub async fn profile(t: Targets, kind: &str, dur: Duration) {
    let ops = match kind {
        "floor-seq" | "null-seq" | "callback-seq" | "tarpc-seq" => {
            let mut k = match kind {
                "floor-seq" => Seq::floor(t.raw).await,
                "null-seq" => Seq::null(t.tether).await,
                "callback-seq" => Seq::callback(t.tether).await,
                _ => Seq::Tarpc(tarpc_client(t.tarpc).await),
            };
            let end = Instant::now() + dur;
            let mut n = 0u64;
            while Instant::now() < end {
                k.once().await;
                n += 1;
            }
            n
        }
        "floor256" => Thru::Floor.run(t, dur).await,
        "tether256" => {
            let (c, root) = tether_root(t.tether).await;
            Thru::Tether {
                window: 256,
                roots: vec![root],
                _conns: vec![c],
            }
            .run(t, dur)
            .await
        }
        "tarpc256" => {
            let client = tarpc_client(t.tarpc).await;
            Thru::Tarpc {
                window: 256,
                clients: vec![client],
            }
            .run(t, dur)
            .await
        }
        "netrefs256" => {
            let (_c, root) = tether_root(t.tether).await;
            let n = windowed(256, dur, |_| {
                let root = &root;
                async move {
                    drop(root.call_method("make", ()).await.unwrap());
                }
            })
            .await;
            drained(&root).await;
            n
        }
        "read64k" => {
            let (_c, root) = tether_root(t.tether).await;
            let files = Files::make();
            let mut reads = 0u64;
            let end = Instant::now() + dur;
            while Instant::now() < end {
                let f = open_remote(&root, &files.binary, "rb").await;
                loop {
                    match f.call_method("read", (64 * 1024,)).await.unwrap() {
                        Value::Bytes(b) if b.is_empty() => break,
                        _ => reads += 1,
                    }
                }
            }
            reads
        }
        "stream64k" => {
            // The raw stream, counted in 64 KiB chunks: the reference of
            // `read64k` and `remotefile64k`.
            let mut s = raw_connect(t.raw, b'S').await;
            let end = Instant::now() + dur;
            let mut bytes = 0u64;
            while Instant::now() < end {
                bytes += raw_stream_once(&mut s).await;
            }
            bytes / (64 << 10)
        }
        "remotefile64k" => {
            // `RemoteFile` with its defaults, counted in 64 KiB chunks.
            let (_c, root) = tether_root(t.tether).await;
            let files = Files::make();
            let end = Instant::now() + dur;
            let mut bytes = 0u64;
            while Instant::now() < end {
                bytes += remotefile_once(&root, &files, 64 * 1024, 2).await;
            }
            bytes / (64 << 10)
        }
        "echo1MiB" => {
            let (_c, root) = tether_root(t.tether).await;
            let mut data = Value::from(vec![0x5a; 1 << 20]);
            let end = Instant::now() + dur;
            let mut n = 0u64;
            while Instant::now() < end {
                data = root.call_method("echo", (data,)).await.unwrap();
                n += 1;
            }
            n
        }
        other => {
            eprintln!("unknown profile kind {other:?}");
            std::process::exit(2);
        }
    };
    fig(&format!("profile.{kind}.ops"), ops as f64, "ops");
}
