//! Soak: many clients making random calls (deposits through at-most-once
//! sessions, objects, callbacks, plain retried reads) while their
//! connections are cut at random frames and reconnected. At the end no
//! deposit is lost or duplicated and no object is left alive on either
//! side; the counts are printed.
//!
//! Bounded by count (8 clients × 150 operations, well under a second);
//! set `TETHER_SOAK_ROUNDS` to run more rounds, each with other random
//! choices (`TETHER_SOAK_ROUNDS=400 cargo test --release --test soak --
//! --nocapture` runs for about a minute).

mod support;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::faults::{faulty_pair, tag, Control, Dir, Fault, Keep};
use support::wait_until;
use tether::session::{Session, SessionBuilder, SessionHost};
use tether::{Builder, Connection, ErrorKind, NetRef, Value};

const CLIENTS: usize = 8;
const OPS_PER_CLIENT: usize = 150;

/// Safety bound for the whole soak; never used for correctness.
const BOUND: Duration = Duration::from_secs(120);

/// The served object: deposits (the effects counted), objects, callbacks.
#[derive(Clone, Default)]
struct Ledger {
    totals: Arc<Mutex<Vec<i64>>>,
    objects_alive: Arc<AtomicI64>,
}

struct Token {
    alive: Arc<AtomicI64>,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tether::expose]
impl Token {
    /// Nothing much.
    #[method]
    fn poke(&self) -> i64 {
        1
    }
}

#[tether::expose]
impl Ledger {
    /// Add `amount` to `client`'s total; return the new total.
    #[method]
    fn deposit(&self, client: i64, amount: i64) -> i64 {
        let mut totals = self.totals.lock().unwrap();
        totals[client as usize] += amount;
        totals[client as usize]
    }

    /// A new object.
    #[method]
    fn make_token(&self) -> NetRef {
        self.objects_alive.fetch_add(1, Ordering::SeqCst);
        NetRef::new(Token {
            alive: self.objects_alive.clone(),
        })
    }

    /// Call `function(x)` and return its result plus one.
    #[method]
    async fn call_back(&self, function: NetRef, x: i64) -> tether::Result<i64> {
        let got: i64 = function.call((x,)).await?.try_into()?;
        Ok(got + 1)
    }

    /// `x`, unchanged.
    #[method]
    fn echo(&self, x: i64) -> i64 {
        x
    }
}

/// A small deterministic generator (xorshift), one per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default)]
struct Counts {
    calls: AtomicUsize,
    faults_armed: AtomicUsize,
    failed_outcomes: AtomicUsize,
}

/// Every connection a client made: (client end, server end, relay).
type Links = Arc<Mutex<Vec<(Connection, Connection, Control)>>>;

async fn client(
    round: usize,
    n: usize,
    host: NetRef,
    links: Links,
    counts: Arc<Counts>,
    callbacks_alive: Arc<AtomicI64>,
) -> i64 {
    let session: Session = SessionBuilder::new({
        let links = links.clone();
        move || {
            let (host, links) = (host.clone(), links.clone());
            Box::pin(async move {
                let (c, s, control) =
                    faulty_pair(Builder::default(), Builder::default().root_ref(host)).await;
                links.lock().unwrap().push((c.clone(), s, control));
                Ok(c)
            })
        }
    })
    .attempts(12)
    .backoff(Duration::ZERO)
    .build()
    .await
    .expect("open a session");

    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (n as u64 + 1) ^ ((round as u64) << 32));
    let mut deposited = 0;
    let mut kept: Vec<NetRef> = Vec::new();
    for op in 0..OPS_PER_CLIENT {
        if rng.below(6) == 0 {
            let control = links.lock().unwrap().last().unwrap().2.clone();
            control.arm(random_fault(&mut rng));
            counts.faults_armed.fetch_add(1, Ordering::Relaxed);
        }
        counts.calls.fetch_add(1, Ordering::Relaxed);
        match rng.below(4) {
            0 | 1 => {
                let amount = 1 + rng.below(100) as i64;
                session
                    .call("deposit", (n as i64, amount))
                    .await
                    .unwrap_or_else(|e| panic!("client {n} op {op}: deposit failed: {e:#}"));
                deposited += amount;
            }
            2 => match session.call("make_token", ()).await {
                Ok(Value::Ref(token)) => {
                    if rng.below(2) == 0 {
                        kept.push(token);
                    }
                }
                Ok(other) => panic!("expected a token, got {other:?}"),
                Err(e) => panic!("client {n} op {op}: make_token failed: {e:#}"),
            },
            _ => {
                callbacks_alive.fetch_add(1, Ordering::SeqCst);
                let guard = CallbackGuard(callbacks_alive.clone());
                let cb = tether::callback_sync(move |x: i64| {
                    let _ = &guard;
                    Ok(x * 2)
                });
                let x = rng.below(1000) as i64;
                match session.call("call_back", (cb, x)).await {
                    Ok(v) => assert_eq!(v, Value::from(x * 2 + 1)),
                    // The callback's own connection was cut while the host
                    // ran it: that run failed, and its failure is the
                    // remembered outcome. Never "unknown" with a live host.
                    Err(e) => {
                        assert_ne!(e.kind(), ErrorKind::OutcomeUnknown, "{e:#}");
                        counts.failed_outcomes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        if kept.len() > 8 {
            kept.drain(..4);
        }
        if rng.below(10) == 0 {
            let echoed = session
                .call_idempotent("echo", (op as i64,))
                .await
                .unwrap_or_else(|e| panic!("client {n} op {op}: echo failed: {e:#}"));
            assert_eq!(echoed, Value::from(op as i64));
        }
    }
    drop(kept);
    // The host forgets the session's remembered outcomes (and the objects
    // they hold); then every connection closes.
    session.end().await.expect("end the session");
    let all: Vec<_> = links.lock().unwrap().clone();
    for (c, _, _) in &all {
        c.close().await;
    }
    deposited
}

struct CallbackGuard(Arc<AtomicI64>);

impl Drop for CallbackGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn random_fault(rng: &mut Rng) -> Fault {
    let (dir, tag) = match rng.below(5) {
        0 => (Dir::ToServer, tag::REQUEST),
        1 => (Dir::ToClient, tag::REPLY_OK),
        2 => (Dir::ToClient, tag::REQUEST),
        3 => (Dir::ToServer, tag::RELEASE),
        _ => (Dir::ToClient, tag::RELEASE),
    };
    let keep = [Keep::Nothing, Keep::Half, Keep::All][rng.below(3) as usize];
    Fault::Cut {
        dir,
        tag,
        nth: rng.below(3) as usize,
        keep,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_with_random_cuts_lose_and_duplicate_nothing_and_leak_nothing() {
    let rounds: usize = std::env::var("TETHER_SOAK_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    for round in 0..rounds {
        tokio::time::timeout(BOUND, soak_round(round))
            .await
            .expect("the soak round finished within its bound");
    }
}

async fn soak_round(round: usize) {
    let ledger = Ledger::default();
    ledger.totals.lock().unwrap().resize(CLIENTS, 0);
    let host = NetRef::new(SessionHost::new(NetRef::new(ledger.clone())));
    let counts = Arc::new(Counts::default());
    let callbacks_alive = Arc::new(AtomicI64::new(0));
    let links: Vec<Links> = (0..CLIENTS).map(|_| Links::default()).collect();

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client(
                round,
                n,
                host.clone(),
                links[n].clone(),
                counts.clone(),
                callbacks_alive.clone(),
            ))
        })
        .collect();
    let mut expected = Vec::new();
    for task in tasks {
        expected.push(task.await.expect("a client panicked"));
    }

    // Every connection ended on both sides. A session call that was still
    // running when its connection went away holds its arguments (a
    // callback's proxy) until it finishes, so tables are checked once those
    // runs are done: they must then be empty.
    let all: Vec<(Connection, Connection, Control)> = links
        .iter()
        .flat_map(|l| l.lock().unwrap().clone())
        .collect();
    for (c, s, _) in &all {
        c.closed().await;
        s.closed().await;
    }
    let held = |conn: &Connection| conn.stats().exported + conn.stats().imported;
    let in_tables = || {
        (
            all.iter().map(|(_, s, _)| held(s)).sum::<usize>(),
            all.iter().map(|(c, _, _)| held(c)).sum::<usize>(),
        )
    };
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        while in_tables() != (0, 0) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    let leaked = in_tables();
    let connections = all.len();
    if settled.is_err() {
        for (i, (c, s, _)) in all.iter().enumerate() {
            if held(c) + held(s) > 0 {
                eprintln!(
                    "connection {i}: client {:?}, server {:?}",
                    c.stats(),
                    s.stats()
                );
            }
        }
    }
    drop(host);
    wait_until(|| ledger.objects_alive.load(Ordering::SeqCst) == 0).await;
    wait_until(|| callbacks_alive.load(Ordering::SeqCst) == 0).await;

    let totals = ledger.totals.lock().unwrap().clone();
    let (want, got): (i64, i64) = (expected.iter().sum(), totals.iter().sum());
    println!(
        "soak round {round}: {CLIENTS} clients, {} calls, {} faults armed, {} connections \
         ({} reconnects), {} calls whose remembered outcome was a failure; deposits expected \
         {want}, applied {got}; left in tables: server {}, client {}; objects alive {}, \
         callbacks alive {}",
        counts.calls.load(Ordering::Relaxed),
        counts.faults_armed.load(Ordering::Relaxed),
        connections,
        connections - CLIENTS,
        counts.failed_outcomes.load(Ordering::Relaxed),
        leaked.0,
        leaked.1,
        ledger.objects_alive.load(Ordering::SeqCst),
        callbacks_alive.load(Ordering::SeqCst),
    );
    assert_eq!(totals, expected, "per-client deposits: applied vs made");
    assert_eq!(leaked, (0, 0), "references left in connection tables");
    assert!(
        connections > CLIENTS,
        "no cut struck: the soak tested nothing"
    );
}
