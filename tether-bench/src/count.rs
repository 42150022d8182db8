//! Hidden mode `--only count:KIND:N`: N operations of one kind between two
//! tether peers in this process, over `tether::transport::memory::pair`, on
//! a current-thread runtime. Run under `valgrind --tool=callgrind` twice
//! with different N (`scripts/instr-count.sh`), the difference of the
//! instruction counts divided by the difference of N is the user-space
//! cost of one operation on both sides, repeatable to a fraction of a per
//! cent whatever else the machine runs (no sockets, no second thread).

use std::io::Write;

use futures::stream::{FuturesUnordered, StreamExt};
use tether::{Builder, NetRef, Value};

use crate::service::Bench;

/// Run `n` operations of `kind`; kinds: `null`, `callback` (a call whose
/// method calls the caller back once), `null64` (64 in flight),
/// `make` (a new object per call, dropped), `make64`, `echo64k`,
/// `chain4` (a pipelined chain of four promises, one op per chain),
/// `chain4_stepwise` (the same chain, each step awaited),
/// `read64k` (64 KiB reads of a remote `LocalFile`), `read64k_ahead4`,
/// `remotefile64k` (`RemoteFile` read into a 64 KiB buffer; one op per
/// 64 KiB).
pub fn run(kind: &str, n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, _server) =
            tether::transport::memory::pair(Builder::default(), Builder::default().root(Bench))
                .await
                .expect("memory pair");
        let root = client.root().await.expect("root");
        match kind {
            "null" => {
                for _ in 0..n {
                    root.call_method("null", ()).await.unwrap();
                }
            }
            "callback" => {
                let cb = tether::callback_sync(|n: i64| Ok(n));
                for _ in 0..n {
                    root.call_method("call_back", (cb.clone(),)).await.unwrap();
                }
            }
            "null64" => windowed(n, 64, || root.call_method("null", ())).await,
            "chain4" => {
                for _ in 0..n {
                    crate::pipelining::pipelined_chain(&root).await;
                }
            }
            "chain4_stepwise" => {
                for _ in 0..n {
                    crate::pipelining::step_by_step(&root).await;
                }
            }
            "make" => {
                for _ in 0..n {
                    drop(root.call_method("make", ()).await.unwrap());
                }
            }
            "make64" => windowed(n, 64, || root.call_method("make", ())).await,
            "echo64k" => {
                let data = Value::from(vec![7u8; 64 << 10]);
                for _ in 0..n {
                    root.call_method("echo", (data.clone(),)).await.unwrap();
                }
            }
            "read64k" | "read64k_ahead4" | "remotefile64k" => {
                let path =
                    std::env::temp_dir().join(format!("tether-count-{}", std::process::id()));
                {
                    let mut f = std::fs::File::create(&path).unwrap();
                    let chunk = vec![0x5au8; 64 << 10];
                    for _ in 0..n {
                        f.write_all(&chunk).unwrap();
                    }
                }
                let file = NetRef::try_from(
                    root.call_method("open", (path.to_str().unwrap(), "rb"))
                        .await
                        .unwrap(),
                )
                .unwrap();
                if kind == "remotefile64k" {
                    // `RemoteFile` (4 reads in flight by default) read
                    // into a 64 KiB buffer: what a tokio user writes.
                    use tokio::io::AsyncReadExt;
                    let mut remote = tether::RemoteFile::new(file.clone());
                    let mut buf = vec![0u8; 64 << 10];
                    let mut left = n * (64 << 10);
                    while left > 0 {
                        let k = remote.read(&mut buf).await.unwrap();
                        assert!(k > 0, "file ended early");
                        left -= k as u64;
                    }
                } else {
                    let window = if kind == "read64k" { 1 } else { 4 };
                    windowed(n, window, || file.call_method("read", (65536,))).await;
                }
                drop(file);
                let _ = std::fs::remove_file(&path);
            }
            other => {
                eprintln!("unknown count kind {other:?}");
                std::process::exit(2);
            }
        }
        // Let the releases of the last objects reach the owner.
        for _ in 0..4 {
            let _ = root.call_method("null", ()).await;
        }
    });
    println!("count.{kind}\t{n}\tops");
}

/// `n` operations made by `op`, `window` of them in flight at a time.
async fn windowed<F, Fut>(n: u64, window: u64, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = tether::Result<Value>>,
{
    let mut pending = FuturesUnordered::new();
    let mut started = 0;
    while started < n.min(window) {
        pending.push(op());
        started += 1;
    }
    while let Some(result) = pending.next().await {
        drop(result.unwrap());
        if started < n {
            pending.push(op());
            started += 1;
        }
    }
}
