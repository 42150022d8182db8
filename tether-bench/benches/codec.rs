//! The codec, measured through the public surface (it is crate-private).
//!
//! - decoding: `tether::__private::decode_frame` (the fuzzing hook) decodes
//!   one frame payload exactly as a connection's reader does, minus the
//!   reference table, then drops the message;
//! - encoding has no public hook: `roundtrip/*` is one call through an
//!   in-memory pair (`tether::transport::memory::pair`) on a current-thread
//!   runtime, so it is encode + decode of the request and of the reply, the
//!   two connections' tasks and the dispatch; `local/*` is the same call on
//!   a local `NetRef` (dispatch only, no codec), so the difference is what
//!   the wire costs.
//!
//! Run: `cargo bench -p tether-bench --bench codec`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use tether::{Builder, NetRef, Value};

struct Calc;

#[tether::expose]
impl Calc {
    /// No arguments, an int back.
    #[method]
    fn null(&self) -> i64 {
        42
    }
    /// Add two integers.
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    /// Echo a value.
    #[method]
    fn echo(&self, data: Value) -> Value {
        data
    }
}

/// bincode varint of an unsigned integer (standard configuration).
fn varint(out: &mut Vec<u8>, n: u64) {
    if n < 251 {
        out.push(n as u8);
    } else if n <= u16::MAX as u64 {
        out.push(251);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(252);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn int(out: &mut Vec<u8>, n: i64) {
    out.push(3); // VAL_INT
    varint(out, ((n << 1) ^ (n >> 63)) as u64); // zigzag
}

fn text(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Request: seq, target (a slotmap id: generation 1, slot 1), timeout, then
/// `CallMethod(name, positional args, no named args)`.
fn request(name: &str, args: impl FnOnce(&mut Vec<u8>) -> u64) -> Vec<u8> {
    let mut p = vec![0u8]; // MSG_REQUEST
    varint(&mut p, 1234);
    varint(&mut p, (1 << 32) | 1);
    varint(&mut p, 30_000);
    p.push(5); // OP_CALLMETHOD
    text(&mut p, name);
    let mut a = Vec::new();
    let n = args(&mut a);
    varint(&mut p, n);
    p.extend_from_slice(&a);
    varint(&mut p, 0);
    p
}

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let add = request("add", |a| {
        int(a, 1);
        int(a, 2);
        2
    });
    let echo_1k = request("echo", |a| {
        a.push(6); // VAL_BYTES
        varint(a, 1024);
        a.extend(std::iter::repeat_n(0x5a, 1024));
        1
    });
    let mut reply_int = vec![1u8]; // MSG_REPLY_OK
    varint(&mut reply_int, 1234);
    int(&mut reply_int, 3);
    let mut reply_lines = vec![1u8];
    varint(&mut reply_lines, 1234);
    reply_lines.push(7); // VAL_LIST
    varint(&mut reply_lines, 100);
    for i in 0..100 {
        reply_lines.push(5); // VAL_STR
        text(&mut reply_lines, &format!("line {i:07}\n"));
    }
    vec![
        ("request_add_2_ints", add),
        ("request_echo_1KiB", echo_1k),
        ("reply_int", reply_int),
        ("reply_100_lines", reply_lines),
    ]
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, payload) in frames() {
        tether::__private::decode_frame(&payload).expect("a well-formed frame");
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &payload, |b, p| {
            b.iter(|| tether::__private::decode_frame(black_box(p)).unwrap())
        });
    }
    g.finish();
}

fn roundtrip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, _server) = rt
        .block_on(tether::transport::memory::pair(
            Builder::default(),
            Builder::default().root(Calc),
        ))
        .unwrap();
    let remote = rt.block_on(client.root()).unwrap();
    let local = NetRef::new(Calc);
    let bytes_1k = Value::from(vec![0x5a; 1024]);
    let mut g = c.benchmark_group("call");
    for (place, root) in [("roundtrip", &remote), ("local", &local)] {
        g.bench_function(format!("{place}/null"), |b| {
            b.to_async(&rt)
                .iter(|| async { root.call_method("null", ()).await.unwrap() })
        });
        g.bench_function(format!("{place}/add_2_ints"), |b| {
            b.to_async(&rt)
                .iter(|| async { root.call_method("add", (1, 2)).await.unwrap() })
        });
        g.bench_function(format!("{place}/echo_1KiB"), |b| {
            b.to_async(&rt)
                .iter(|| async { root.call_method("echo", (bytes_1k.clone(),)).await.unwrap() })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = decode, roundtrip
}
criterion_main!(benches);
