//! The pipelining workload: a chain of four dependent operations
//! (`root.counter(5)`, `.next()`, `.next()`, `.value()`) awaited step by
//! step and sent as one pipelined chain of [`tether::Promise`]s, beside a
//! single call, through a relay that delays every chunk by
//! [`DELAY`] each way (a network of 20 ms round trips, in process: no
//! kernel netem here). Then the same on plain loopback, where what is
//! left is the CPU cost of a step.
//!
//! The server runs in this process on its own runtime thread, the relay
//! on another; the client is the caller's runtime.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tether::{NetRef, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::report::{fig, note};
use crate::service::Bench;
use crate::work::{median, Plan};

/// How long the relay holds every chunk, each way.
pub const DELAY: Duration = Duration::from_millis(10);

/// Run the workload; figures `pipelining.*`.
pub async fn run(plan: Plan) {
    let server = start_server();
    let relay = start_relay(server, DELAY);
    let rounds = if plan.quick { 10 } else { 40 };
    note(&format!(
        "pipelining: chains of 4 through a relay delaying {DELAY:?} each way, {rounds} rounds"
    ));
    let (_conn, root) = connect(relay).await;
    let mut single = Vec::new();
    let mut stepwise = Vec::new();
    let mut pipelined = Vec::new();
    for _ in 0..rounds {
        single.push(time(|| single_call(&root)).await);
        stepwise.push(time(|| step_by_step(&root)).await);
        pipelined.push(time(|| pipelined_chain(&root)).await);
    }
    let ms = |v: &mut Vec<f64>| median(v) * 1e3;
    let (single, stepwise, pipelined) = (ms(&mut single), ms(&mut stepwise), ms(&mut pipelined));
    fig("pipelining.delayed.single", single, "ms");
    fig("pipelining.delayed.stepwise4", stepwise, "ms");
    fig("pipelining.delayed.pipelined4", pipelined, "ms");

    let n = if plan.quick { 2_000 } else { 10_000 };
    note(&format!("pipelining: the same on plain loopback, {n} each"));
    let (_conn, root) = connect(server).await;
    let mut figures = [(0.0, "single"), (0.0, "stepwise4"), (0.0, "pipelined4")];
    for _ in 0..plan.rounds() {
        figures[0].0 += time_n(n, || single_call(&root)).await;
        figures[1].0 += time_n(n, || step_by_step(&root)).await;
        figures[2].0 += time_n(n, || pipelined_chain(&root)).await;
    }
    for (total, name) in figures {
        fig(
            &format!("pipelining.loopback.{name}"),
            total / plan.rounds() as f64 * 1e6,
            "us",
        );
    }
}

/// `root.counter(5)`, awaited: one round trip.
async fn single_call(root: &NetRef) {
    let counter = root.call_method("counter", (5,)).await.unwrap();
    assert!(matches!(counter, Value::Ref(_)));
}

/// The chain, each step awaited before the next is sent (also counted
/// by `count::run`, kind `chain4_stepwise`).
pub async fn step_by_step(root: &NetRef) {
    let counter = NetRef::try_from(root.call_method("counter", (5,)).await.unwrap()).unwrap();
    let six = NetRef::try_from(counter.call_method("next", ()).await.unwrap()).unwrap();
    let seven = NetRef::try_from(six.call_method("next", ()).await.unwrap()).unwrap();
    assert_eq!(
        seven.call_method("value", ()).await.unwrap(),
        Value::from(7)
    );
}

/// The chain as promises: sent at once, awaited at the end (also
/// counted by `count::run`, kind `chain4`).
pub async fn pipelined_chain(root: &NetRef) {
    let value = root
        .promise()
        .call_method("counter", (5,))
        .call_method("next", ())
        .call_method("next", ())
        .call_method("value", ());
    assert_eq!(value.await.unwrap(), Value::from(7));
}

async fn time<F, Fut>(f: F) -> f64
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    f().await;
    started.elapsed().as_secs_f64()
}

/// Mean seconds of `n` runs of `f`, one after the other.
async fn time_n<F, Fut>(n: u32, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    for _ in 0..n {
        f().await;
    }
    started.elapsed().as_secs_f64() / f64::from(n)
}

async fn connect(addr: SocketAddr) -> (tether::Connection, NetRef) {
    let conn = tether::connect(addr).await.expect("connect");
    let root = conn.root().await.expect("root");
    (conn, root)
}

/// A tether server serving [`Bench`] on loopback, on a runtime thread of
/// its own that lives as long as the process.
fn start_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let server = tether::Server::bind("127.0.0.1:0").await.expect("bind");
            tx.send(server.local_addr().unwrap()).unwrap();
            let _ = server.serve(Bench).await;
        });
    });
    rx.recv().expect("server address")
}

/// A relay on loopback to `to` that holds every chunk `delay` before
/// passing it on, each way, keeping their order; on a runtime thread of
/// its own.
fn start_relay(to: SocketAddr, delay: Duration) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("relay runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
            tx.send(listener.local_addr().unwrap()).unwrap();
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(to).await.expect("relay to server");
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(delayed(cr, sw, delay));
                tokio::spawn(delayed(sr, cw, delay));
            }
        });
    });
    rx.recv().expect("relay address")
}

/// Copy `from` to `to`, each chunk `delay` after it was read.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let due = tokio::time::Instant::now() + delay;
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
