//! "Perform transaction 312312 to remove 10" when the network fails at the
//! worst moment: after the server ran the transaction, before its reply
//! arrived.
//!
//! One process plays all parts on loopback: a bank server, a proxy that
//! cuts the connection right after the bank runs a withdrawal, and two
//! clients. A plain retry runs the withdrawal twice; a
//! `tether::session::Session` reconnects and gets the outcome of the first
//! run, so the money leaves the account once.
//!
//! ```text
//! cargo run --example at_most_once
//! ```

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use tether::session::{Session, SessionHost};
use tether::{NetRef, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A bank account. When `fail_next` is set, the next withdrawal asks the
/// proxy (through `cut`) to break the connection before its reply goes out.
#[derive(Clone)]
struct Bank {
    balance: Arc<AtomicI64>,
    runs: Arc<AtomicUsize>,
    fail_next: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
}

#[tether::expose]
impl Bank {
    /// Perform transaction `txn`: remove `amount`; return the new balance.
    #[method]
    fn withdraw(&self, txn: i64, amount: i64) -> i64 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let left = self.balance.fetch_sub(amount, Ordering::SeqCst) - amount;
        println!("  bank: ran transaction {txn}: -{amount}, balance now {left}");
        if self.fail_next.swap(false, Ordering::SeqCst) {
            self.cut.store(true, Ordering::SeqCst);
        }
        left
    }

    /// The balance.
    #[method]
    fn balance(&self) -> i64 {
        self.balance.load(Ordering::SeqCst)
    }
}

#[tokio::main]
async fn main() -> tether::Result<()> {
    let bank = Bank {
        balance: Arc::new(AtomicI64::new(100)),
        runs: Arc::default(),
        fail_next: Arc::default(),
        cut: Arc::default(),
    };
    let server = tether::Server::bind("127.0.0.1:0").await?;
    let server_addr = server.local_addr()?;
    tokio::spawn(server.serve(SessionHost::new(NetRef::new(bank.clone()))));
    let proxy = TcpListener::bind("127.0.0.1:0").await?;
    let proxy_addr = proxy.local_addr()?;
    tokio::spawn(run_proxy(proxy, server_addr.to_string(), bank.cut.clone()));

    println!("balance: {}", bank.balance());

    println!("\nA plain call, retried by hand when the connection breaks:");
    bank.fail_next.store(true, Ordering::SeqCst);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let conn = tether::connect(proxy_addr).await?;
        let host = conn.root().await?;
        let root = host.call_method("root", ()).await?;
        let Value::Ref(root) = root else {
            unreachable!("root() returns the bank")
        };
        match root.call_method("withdraw", (312312, 10)).await {
            Ok(left) => {
                println!("  client: attempt {attempts} returned balance {left:?}");
                break;
            }
            Err(err) => println!("  client: attempt {attempts} failed: {err}"),
        }
    }
    println!(
        "balance: {} (the bank ran it {} times)",
        bank.balance(),
        bank.runs.swap(0, Ordering::SeqCst)
    );

    println!("\nThe same through a session:");
    bank.fail_next.store(true, Ordering::SeqCst);
    let session = Session::connect(proxy_addr).await?;
    let left = session.call("withdraw", (312313, 10)).await?;
    println!(
        "  client: returned balance {left:?} after {} reconnect(s)",
        session.reconnects()
    );
    let runs = bank.runs.load(Ordering::SeqCst);
    println!("balance: {} (the bank ran it {runs} time)", bank.balance());
    assert_eq!(runs, 1, "a session call ran more than once");
    Ok(())
}

/// Forward each client to the server; when `cut` is set, break the next
/// connection that has a reply to deliver, instead of delivering it.
async fn run_proxy(listener: TcpListener, server: String, cut: Arc<AtomicBool>) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(upstream) = TcpStream::connect(&server).await else {
            continue;
        };
        let cut = cut.clone();
        tokio::spawn(async move {
            let (mut client_rx, mut client_tx) = client.into_split();
            let (mut server_rx, mut server_tx) = upstream.into_split();
            let to_server = async {
                let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
            };
            let to_client = async {
                let mut buf = vec![0; 64 * 1024];
                while let Ok(n @ 1..) = server_rx.read(&mut buf).await {
                    if cut.swap(false, Ordering::SeqCst) {
                        println!("  proxy: connection cut before the reply got through");
                        return;
                    }
                    if client_tx.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            };
            // Whichever way ends first ends both.
            tokio::select! {
                _ = to_server => {}
                _ = to_client => {}
            }
        });
    }
}
