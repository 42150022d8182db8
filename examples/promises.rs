//! Promise pipelining: a chain of dependent calls in one round trip.
//!
//! Starts a server on loopback and a relay in front of it that delays
//! every chunk 25 ms each way (a slow network, in process), then runs
//! `root.counter(5).next().next().value()` awaited step by step and as
//! one pipelined chain of promises, and shows that the server kept no
//! answer once the promises were gone.
//!
//! ```sh
//! cargo run --example promises
//! ```
//!
//! With `--serve` it only serves, through the relay, until Ctrl-C: point
//! the shell at the address it prints and a chain typed at the prompt
//! (`root.counter(5).next().next().value()`) is one round trip there too.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tether::{NetRef, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DELAY: Duration = Duration::from_millis(25);

/// The root: hands out counters.
#[derive(Clone)]
struct Counters;

#[tether::expose]
impl Counters {
    /// A counter starting at `start`.
    #[method]
    fn counter(&self, start: i64) -> NetRef {
        NetRef::new(Counter(start))
    }
}

/// One step of the chain.
struct Counter(i64);

#[tether::expose]
impl Counter {
    /// A new counter one higher.
    #[method]
    fn next(&self) -> NetRef {
        NetRef::new(Counter(self.0 + 1))
    }

    /// Its number.
    #[method]
    fn value(&self) -> i64 {
        self.0
    }
}

#[tokio::main]
async fn main() -> tether::Result<()> {
    let server = tether::Server::bind("127.0.0.1:0").await?;
    let server_addr = server.local_addr()?;
    tokio::spawn(server.serve(Counters));
    let relay = relay(server_addr).await;
    println!("server on {server_addr}, reached through a relay adding {DELAY:?} each way");
    if std::env::args().any(|a| a == "--serve") {
        println!("serving through the relay at {relay}; Ctrl-C ends");
        let _ = tokio::signal::ctrl_c().await;
        return Ok(());
    }

    let conn = tether::connect(relay).await?;
    let root = conn.root().await?;

    let started = Instant::now();
    let counter = NetRef::try_from(root.call_method("counter", (5,)).await?)?;
    let six = NetRef::try_from(counter.call_method("next", ()).await?)?;
    let seven = NetRef::try_from(six.call_method("next", ()).await?)?;
    let value = seven.call_method("value", ()).await?;
    println!(
        "step by step: {value:?} in {:?} (four round trips)",
        started.elapsed()
    );
    drop((counter, six, seven));

    let started = Instant::now();
    let value = root
        .promise()
        .call_method("counter", (5,))
        .call_method("next", ())
        .call_method("next", ())
        .call_method("value", ())
        .await?;
    println!(
        "pipelined:    {value:?} in {:?} (one round trip)",
        started.elapsed()
    );
    assert_eq!(value, Value::from(7));

    // A step the server refuses names itself, and what depends on it
    // fails with it.
    let err = root
        .promise()
        .call_method("counter", (1,))
        .call_method("reset", ())
        .call_method("value", ())
        .await
        .unwrap_err();
    println!("a refused step: {err}");

    // Nothing of the chains is left: the proxies and the answers the
    // server kept went with the promises (the release goes out with the
    // next frame, here the ping).
    conn.ping().await?;
    println!("client stats after the chains: {:?}", conn.stats());
    Ok(())
}

/// A relay on loopback to `to`, holding every chunk `DELAY` each way.
async fn relay(to: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(to).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(delayed(cr, sw));
            tokio::spawn(delayed(sr, cw));
        }
    });
    addr
}

/// Copy `from` to `to`, each chunk `DELAY` after it was read, in order.
async fn delayed(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin + Send + 'static,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if tx
            .send((tokio::time::Instant::now() + DELAY, buf[..n].to_vec()))
            .is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}
