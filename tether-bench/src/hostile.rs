//! The `hostile` workload (issue 12): peers that send the largest frames
//! the server accepts, built to decode to as much as possible, while a
//! well-behaved client makes sequential null calls on the same server.
//!
//! - native: a request whose one argument is a list of ~60 M `None`s, one
//!   byte each on the wire (a 60 MiB frame that would decode to ~1.9 GB);
//! - RPyC: a zlib-compressed request whose arguments are a tuple of 60 M
//!   `None`s, 60 MiB once inflated, compressed at zlib's level 1 as rpyc
//!   does (about 260 KiB on the wire): a stronger level would pass the
//!   server's bound on the inflation ratio and be refused unread.
//!
//! Two hostile peers at a time send these back to back (reconnecting when
//! the server drops them) while the client measures; figures: the client's
//! p50/p99 alone and beside each pair, their ratio (goal: p99 within 10x of
//! the undisturbed p99), and the server process's peak resident memory
//! against the documented per-connection bound times the connections.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::report::{self, Latency};
use crate::work::Plan;

/// `None`s in each hostile frame: 60 M, as in the issue.
const NONES: usize = 60_000_000;

/// The per-connection bound documented on `tether::Config`, with the
/// defaults: frame + decoded values + queued bytes.
const BOUND_PER_CONNECTION: u64 = (64 + 128 + 64) << 20;

pub async fn run(server: SocketAddr, server_pid: u32, plan: Plan) {
    let conn = tether::connect(server).await.expect("connect");
    let root = conn.root().await.expect("root");
    let measure = |what: &'static str| {
        let root = root.clone();
        async move {
            let end = Instant::now() + plan.secs(6.0);
            let mut lat = Latency {
                samples: Vec::with_capacity(1 << 16),
                elapsed: Duration::ZERO,
            };
            let start = Instant::now();
            while Instant::now() < end {
                let t0 = Instant::now();
                root.call_method("null", ()).await.expect("null call");
                lat.samples.push(t0.elapsed().as_nanos() as u64);
            }
            lat.elapsed = start.elapsed();
            lat.report(&format!("hostile.{what}"));
        }
    };
    // Warm up, then alone.
    for _ in 0..1000 {
        root.call_method("null", ()).await.expect("null call");
    }
    measure("alone").await;

    for (what, frame) in [("native", native_frame()), ("rpyc", rpyc_frame())] {
        report::note(&format!(
            "hostile: two {what} peers sending {} KiB frames of {NONES} Nones",
            frame.len() >> 10
        ));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        // Threads of their own, outside the client's runtime, so that
        // their long writes never hold up the measured client's tasks.
        let peers: Vec<_> = (0..2)
            .map(|_| {
                let (frame, sent, stop) = (frame.clone(), sent.clone(), stop.clone());
                std::thread::spawn(move || hostile_peer(server, what, &frame, &sent, &stop))
            })
            .collect();
        // Let the first frames arrive before measuring.
        while sent.load(Ordering::Relaxed) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        measure(what).await;
        stop.store(true, Ordering::SeqCst);
        for peer in peers {
            let _ = peer.join();
        }
        report::fig(
            &format!("hostile.{what}.frames_sent"),
            sent.load(Ordering::Relaxed) as f64,
            "frames",
        );
        let alone = report::get("hostile.alone.p99").unwrap_or(f64::NAN);
        let beside = report::get(&format!("hostile.{what}.p99")).unwrap_or(f64::NAN);
        report::fig(&format!("hostile.{what}.p99_ratio"), beside / alone, "x");
    }
    report::fig(
        "hostile.server_peak_rss",
        peak_rss(server_pid) as f64 / (1 << 20) as f64,
        "MiB",
    );
    report::fig(
        "hostile.rss_bound",
        (3 * BOUND_PER_CONNECTION) as f64 / (1 << 20) as f64,
        "MiB",
    );
    conn.close().await;
}

/// One hostile peer: send `frame` over and over, reading and dropping
/// whatever comes back, reconnecting when the server closes on it, until
/// `stop`.
fn hostile_peer(server: SocketAddr, what: &str, frame: &[u8], sent: &AtomicU64, stop: &AtomicBool) {
    use std::io::Read;
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut sock) = std::net::TcpStream::connect(server) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = sock.set_nodelay(true);
        // Bounded waits, so `stop` is seen within a second.
        let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
        if what == "native" && sock.write_all(&hello()).is_err() {
            continue;
        }
        let Ok(mut rd) = sock.try_clone() else {
            continue;
        };
        let drain = std::thread::spawn(move || {
            let mut sink = vec![0u8; 64 * 1024];
            while matches!(rd.read(&mut sink), Ok(n) if n > 0) {}
        });
        let mut at = 0;
        while !stop.load(Ordering::SeqCst) {
            match sock.write(&frame[at..]) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    continue
                }
                Err(_) => break,
            }
            if at == frame.len() {
                at = 0;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = sock.shutdown(std::net::Shutdown::Both);
        let _ = drain.join();
    }
}

/// The connecting side's handshake: magic, version, a service name, the
/// largest frame it accepts, a nonce (no token).
fn hello() -> Vec<u8> {
    let mut body = tether::protocol::MAGIC.to_vec();
    body.extend_from_slice(&tether::protocol::PROTOCOL_VERSION.to_be_bytes());
    body.extend_from_slice(&7u16.to_be_bytes());
    body.extend_from_slice(b"Hostile");
    body.extend_from_slice(&(64u32 << 20).to_be_bytes());
    body.extend_from_slice(&[0; 32]);
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A native request calling `echo` on object 1 with a list of [`NONES`]
/// `None`s (tags: request 0, call method 5, list 7, none 0).
fn native_frame() -> Arc<Vec<u8>> {
    // Request, seq 1, target 1, timeout 30 000 ms, call method "echo".
    let mut payload = vec![0u8, 1, 1, 251, 0x30, 0x75, 5];
    payload.push(4);
    payload.extend_from_slice(b"echo");
    payload.push(1); // one positional argument
    payload.push(7);
    payload.push(252); // varint marker: u32 follows
    payload.extend_from_slice(&(NONES as u32).to_le_bytes());
    payload.resize(payload.len() + NONES, 0);
    payload.push(0); // no named arguments
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    Arc::new(frame)
}

/// An RPyC 6 request `(seq 0, (CALL, (None,) * NONES))`, zlib-compressed
/// at level 1.
fn rpyc_frame() -> Arc<Vec<u8>> {
    let mut payload = vec![0x01, 0x11, 0x50, 0x11, 0x57, 0x15];
    payload.extend_from_slice(&(NONES as u32).to_be_bytes());
    payload.resize(payload.len() + NONES, 0x00);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&payload).expect("compress");
    let packed = z.finish().expect("compress");
    let mut frame = (packed.len() as u32).to_be_bytes().to_vec();
    frame.push(1);
    frame.extend_from_slice(&packed);
    frame.push(b'\n');
    Arc::new(frame)
}

/// Peak resident set size of process `pid` (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
