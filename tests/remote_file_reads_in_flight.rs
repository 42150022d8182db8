//! `RemoteFile` keeps several reads in flight while streaming: their bytes
//! still come out in order, byte for byte, a read failing midway is
//! reported after the bytes before it, and a write or seek after pipelined
//! reads lands where the reader is.

use std::io::{ErrorKind as IoKind, SeekFrom};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::{LocalFile, NetRef, RemoteFile, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};

/// Byte `i` of a [`Pattern`].
fn byte_at(i: u64) -> u8 {
    (i * 31 % 251) as u8
}

/// A read-only "file" of `len` bytes (byte `i` is [`byte_at`]`(i)`) whose
/// reads, from the third on, wait for a permit of `gate`, and whose read
/// number `fail_at` (from 1) fails with an `OSError`. It records how many
/// reads arrived and the most that were outstanding at once.
#[derive(Clone)]
struct Pattern(Arc<State>);

struct State {
    len: u64,
    pos: Mutex<u64>,
    answered: AtomicUsize,
    /// Where the failing read started.
    fail_pos: AtomicU64,
    max_outstanding: AtomicUsize,
    arrived: watch::Sender<usize>,
    gate: Semaphore,
    fail_at: Option<usize>,
}

impl Pattern {
    fn new(len: u64, gated: bool, fail_at: Option<usize>) -> Pattern {
        Pattern(Arc::new(State {
            len,
            pos: Mutex::new(0),
            answered: AtomicUsize::new(0),
            fail_pos: AtomicU64::new(u64::MAX),
            max_outstanding: AtomicUsize::new(0),
            arrived: watch::channel(0).0,
            gate: Semaphore::new(if gated { 0 } else { Semaphore::MAX_PERMITS }),
            fail_at,
        }))
    }
}

#[tether::expose]
impl Pattern {
    /// Up to `n` bytes from the current position.
    #[method]
    async fn read(&self, n: i64) -> tether::Result<Value> {
        let s = &self.0;
        // The position is taken on arrival: calls arrive in the order sent.
        let (k, start, end) = {
            let mut pos = s.pos.lock().unwrap();
            let k = *s.arrived.borrow() + 1;
            // Counted before the arrival is announced: a test opens the
            // gate once it sees the arrival, and a read let through then
            // could be answered before this one was counted.
            let outstanding = k - s.answered.load(Ordering::SeqCst);
            s.max_outstanding.fetch_max(outstanding, Ordering::SeqCst);
            let start = *pos;
            let end = (start + n.max(0) as u64).min(s.len);
            if s.fail_at == Some(k) {
                s.fail_pos.store(start, Ordering::SeqCst);
            } else {
                *pos = end;
            }
            s.arrived.send_replace(k);
            (k, start, end)
        };
        if k > 2 {
            s.gate.acquire().await.unwrap().forget();
        }
        s.answered.fetch_add(1, Ordering::SeqCst);
        if s.fail_at == Some(k) {
            return Err(tether::Error::app(
                "OSError",
                "[Errno 5] Input/output error",
            ));
        }
        Ok(Value::Bytes((start..end).map(byte_at).collect()))
    }
}

/// A client over TCP (two worker threads) to a server whose root is `root`.
async fn connect(root: Pattern) -> (tether::Connection, NetRef) {
    let server = tether::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(root));
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    (conn, root)
}

/// `n` bytes read `piece` bytes at a time.
async fn read_in_pieces(file: &mut RemoteFile, n: usize, piece: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    for part in out.chunks_mut(piece) {
        file.read_exact(part).await.unwrap();
    }
    out
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("no hang")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_flight_come_back_in_order_byte_for_byte() {
    const CHUNK: usize = 4096;
    const LEN: u64 = 300 * CHUNK as u64 + 1234;
    let pattern = Pattern::new(LEN, true, None);
    let (_conn, root) = connect(pattern.clone()).await;
    bounded(async {
        let mut file = RemoteFile::new(root)
            .with_read_ahead(CHUNK)
            .with_reads_in_flight(4);
        // Two reads answered one by one, then the file is being streamed:
        // four more are sent before any of them is answered.
        let mut head = read_in_pieces(&mut file, 2 * CHUNK, CHUNK).await;
        let mut arrived = pattern.0.arrived.subscribe();
        arrived.wait_for(|&n| n == 6).await.unwrap();
        assert_eq!(pattern.0.answered.load(Ordering::SeqCst), 2);
        pattern.0.gate.add_permits(Semaphore::MAX_PERMITS / 2);

        // The rest in odd-sized pieces, every byte checked.
        let mut all = std::mem::take(&mut head);
        let mut piece = [0u8; 1000];
        loop {
            let n = file.read(&mut piece).await.unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&piece[..n]);
        }
        assert_eq!(all.len() as u64, LEN);
        let wrong = (0..LEN).position(|i| all[i as usize] != byte_at(i));
        assert_eq!(wrong, None, "first wrong byte");
        assert_eq!(pattern.0.max_outstanding.load(Ordering::SeqCst), 4);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_failing_midway_is_reported_after_the_bytes_before_it() {
    const CHUNK: usize = 4096;
    // Read number 6 fails, with reads 7-9 in flight behind it.
    let pattern = Pattern::new(100 * CHUNK as u64, false, Some(6));
    let (_conn, root) = connect(pattern.clone()).await;
    bounded(async {
        let mut file = RemoteFile::new(root)
            .with_read_ahead(CHUNK)
            .with_reads_in_flight(4);
        let mut got = Vec::new();
        let mut piece = [0u8; 1000];
        let err = loop {
            match file.read(&mut piece).await {
                Ok(0) => panic!("the end of the file, not the failure"),
                Ok(n) => got.extend_from_slice(&piece[..n]),
                Err(err) => break err,
            }
        };
        assert_eq!(got.len() as u64, pattern.0.fail_pos.load(Ordering::SeqCst));
        let wrong = (0..got.len()).position(|i| got[i] != byte_at(i as u64));
        assert_eq!(wrong, None, "first wrong byte");
        assert_eq!(err.kind(), IoKind::Other, "{err}");
        let inner = err.get_ref().unwrap().downcast_ref::<tether::Error>();
        assert_eq!(inner.unwrap().type_name(), Some("OSError"));
        // Reads 7-9 had been sent behind it (and are cancelled).
        let mut arrived = pattern.0.arrived.subscribe();
        arrived.wait_for(|&n| n >= 9).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_met_while_settling_reads_comes_after_their_bytes() {
    const CHUNK: usize = 4096;
    // Read 4 fails while reads 3-6 are in flight; a seek to an absolute
    // position then works again.
    let pattern = Pattern::new(100 * CHUNK as u64, false, Some(4));
    let (_conn, root) = connect(pattern.clone()).await;
    bounded(async {
        let mut file = RemoteFile::new(root)
            .with_read_ahead(CHUNK)
            .with_reads_in_flight(4);
        read_in_pieces(&mut file, 2 * CHUNK, CHUNK).await;
        // Flushing waits for the reads in flight; the failure waits for the
        // reader, after the bytes of read 3.
        file.flush().await.unwrap();
        // Read 3, the first sent while streaming, asked for twice as much.
        assert_eq!(file.buffered_read(), 2 * CHUNK);
        let mut rest = Vec::new();
        let err = file.read_to_end(&mut rest).await.unwrap_err();
        assert_eq!(rest.len(), 2 * CHUNK);
        assert!(rest
            .iter()
            .enumerate()
            .all(|(i, &b)| b == byte_at((2 * CHUNK + i) as u64)));
        assert_eq!(err.kind(), IoKind::Other, "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_seeks_after_reads_in_flight_land_where_the_reader_is() {
    #[derive(Clone)]
    struct Files;
    #[tether::expose]
    impl Files {
        #[method]
        async fn open(&self, path: String, mode: String) -> tether::Result<NetRef> {
            Ok(NetRef::new(LocalFile::open_with(path, &mode).await?))
        }
    }
    let server = tether::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(Files));
    let conn = tether::connect(addr).await.unwrap();
    let root = conn.root().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let data: Vec<u8> = (0..200_000u64).map(byte_at).collect();
    std::fs::write(&path, &data).unwrap();

    bounded(async {
        let open = |mode: &'static str| {
            let (root, path) = (root.clone(), path.to_string_lossy().into_owned());
            async move { NetRef::try_from(root.call_method("open", (path, mode)).await.unwrap()) }
        };
        let mut file = RemoteFile::new(open("r+b").await.unwrap())
            .with_read_ahead(1000)
            .with_reads_in_flight(4);
        // 1000 bytes per read, reads in flight from the third on.
        assert_eq!(read_in_pieces(&mut file, 3500, 500).await, data[..3500]);
        assert_eq!(file.stream_position().await.unwrap(), 3500);
        assert_eq!(read_in_pieces(&mut file, 3500, 500).await, data[3500..7000]);
        assert_eq!(file.seek(SeekFrom::Current(-100)).await.unwrap(), 6900);
        assert_eq!(
            read_in_pieces(&mut file, 3500, 500).await,
            data[6900..10_400]
        );
        file.write_all(b"HERE").await.unwrap();
        file.flush().await.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 10_404);
        file.shutdown().await.unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[10_400..10_404], b"HERE");
        assert_eq!(on_disk[..10_400], data[..10_400]);
        assert_eq!(on_disk[10_404..], data[10_404..]);
    })
    .await;
}
