//! At-most-once calls across reconnects (tether::session), with the
//! connection cut by the fault relay of tests/support/faults.rs at the
//! worst moments: after the server ran a call but before its reply
//! arrived, and while the call is still running.

mod support;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use support::faults::{faulty_pair, tag, Control, Dir, Fault, Keep};
use support::wait_until;
use tether::session::{Session, SessionBuilder, SessionHost, SessionLimits};
use tether::{Builder, Connection, ErrorKind, NetRef, Value};
use tokio::sync::Semaphore;

/// A bank account that counts how often each operation really ran.
#[derive(Clone)]
struct Bank {
    balance: Arc<AtomicI64>,
    withdrawals: Arc<AtomicUsize>,
    reads: Arc<AtomicUsize>,
    /// `slow_withdraw` waits for a permit here.
    gate: Arc<Semaphore>,
    started: Arc<AtomicUsize>,
}

impl Bank {
    fn new(balance: i64) -> Bank {
        Bank {
            balance: Arc::new(AtomicI64::new(balance)),
            withdrawals: Arc::default(),
            reads: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
            started: Arc::default(),
        }
    }
}

#[tether::expose]
impl Bank {
    /// Perform transaction `txn`: remove `amount`; return the new balance.
    #[method]
    fn withdraw(&self, txn: i64, amount: i64) -> tether::Result<i64> {
        let _ = txn;
        if amount <= 0 {
            return Err(tether::Error::app("ValueError", "amount must be positive"));
        }
        self.withdrawals.fetch_add(1, Ordering::SeqCst);
        Ok(self.balance.fetch_sub(amount, Ordering::SeqCst) - amount)
    }

    /// Like `withdraw`, once the test lets it through.
    #[method]
    async fn slow_withdraw(&self, txn: i64, amount: i64) -> tether::Result<i64> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.unwrap().forget();
        self.withdraw(txn, amount)
    }

    /// The balance (safe to ask twice).
    #[method]
    fn balance(&self) -> i64 {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.balance.load(Ordering::SeqCst)
    }
}

impl Bank {
    /// Not exposed: `call` must not reach it either.
    #[allow(dead_code)]
    fn close_account(&self) {
        self.balance.store(0, Ordering::SeqCst);
    }
}

/// Connections made so far, each through its own fault relay, to whichever
/// host `serving` holds (swap it to play a server restart).
#[derive(Clone)]
struct Network {
    serving: Arc<Mutex<NetRef>>,
    links: Arc<Mutex<Vec<(Connection, Connection, Control)>>>,
}

impl Network {
    fn new(host: SessionHost) -> Network {
        Network {
            serving: Arc::new(Mutex::new(NetRef::new(host))),
            links: Arc::default(),
        }
    }

    async fn session(&self) -> Session {
        let net = self.clone();
        SessionBuilder::new(move || {
            let net = net.clone();
            Box::pin(async move {
                let host = net.serving.lock().unwrap().clone();
                let (client, server, control) =
                    faulty_pair(Builder::default(), Builder::default().root_ref(host)).await;
                net.links
                    .lock()
                    .unwrap()
                    .push((client.clone(), server, control));
                Ok(client)
            })
        })
        .backoff(std::time::Duration::ZERO)
        .build()
        .await
        .expect("open a session")
    }

    fn control(&self, n: usize) -> Control {
        self.links.lock().unwrap()[n].2.clone()
    }

    fn server(&self, n: usize) -> Connection {
        self.links.lock().unwrap()[n].1.clone()
    }

    fn count(&self) -> usize {
        self.links.lock().unwrap().len()
    }
}

fn lose_the_next_reply(control: &Control) {
    control.arm(Fault::Cut {
        dir: Dir::ToClient,
        tag: tag::REPLY_OK,
        nth: 0,
        keep: Keep::Nothing,
    });
}

#[tokio::test]
async fn a_lost_reply_after_the_server_ran_the_transaction_does_not_run_it_twice() {
    // The source document's case: "perform transaction 312312 to remove 10".
    let bank = Bank::new(100);
    let net = Network::new(SessionHost::new(NetRef::new(bank.clone())));
    let session = net.session().await;
    lose_the_next_reply(&net.control(0));

    let balance = session.call("withdraw", (312312, 10)).await.unwrap();

    assert_eq!(balance, Value::from(90));
    assert_eq!(
        bank.balance.load(Ordering::SeqCst),
        90,
        "removed exactly once"
    );
    assert_eq!(bank.withdrawals.load(Ordering::SeqCst), 1);
    assert_eq!(session.reconnects(), 1);
    assert_eq!(net.count(), 2);
}

#[tokio::test]
async fn a_retry_joins_the_call_still_running_instead_of_starting_it_again() {
    let bank = Bank::new(100);
    let net = Network::new(SessionHost::new(NetRef::new(bank.clone())));
    let session = Arc::new(net.session().await);
    let call = tokio::spawn({
        let session = session.clone();
        async move { session.call("slow_withdraw", (7, 25)).await }
    });
    wait_until(|| bank.started.load(Ordering::SeqCst) == 1).await;
    net.control(0).cut_now();
    // The retry arrives over the second connection and waits on the run
    // that is still going.
    wait_until(|| net.count() == 2 && net.server(1).stats().serving == 1).await;
    bank.gate.add_permits(1);

    assert_eq!(call.await.unwrap().unwrap(), Value::from(75));
    assert_eq!(bank.started.load(Ordering::SeqCst), 1, "started once");
    assert_eq!(bank.withdrawals.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_error_is_an_outcome_too_and_is_not_rerun() {
    let bank = Bank::new(100);
    let net = Network::new(SessionHost::new(NetRef::new(bank.clone())));
    let session = net.session().await;
    // The error reply is the one lost this time.
    net.control(0).arm(Fault::Cut {
        dir: Dir::ToClient,
        tag: tag::REPLY_ERR,
        nth: 0,
        keep: Keep::Nothing,
    });
    let err = session.call("withdraw", (1, -5)).await.unwrap_err();
    assert_eq!(err.type_name(), Some("ValueError"), "{err:#}");
    assert_eq!(session.reconnects(), 1);
    assert_eq!(bank.withdrawals.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_restarted_server_makes_a_call_that_may_have_run_unknown() {
    let bank = Bank::new(100);
    let net = Network::new(SessionHost::new(NetRef::new(bank.clone())));
    let session = net.session().await;
    lose_the_next_reply(&net.control(0));
    // The server restarts: later connections reach a host that never heard
    // of the session.
    let fresh = Bank::new(100);
    *net.serving.lock().unwrap() = NetRef::new(SessionHost::new(NetRef::new(fresh.clone())));

    let err = session.call("withdraw", (312312, 10)).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err:#}");
    assert!(err.message().contains("unknown session"), "{err:#}");
    assert_eq!(
        bank.withdrawals.load(Ordering::SeqCst),
        1,
        "ran on the old server"
    );
    assert_eq!(fresh.withdrawals.load(Ordering::SeqCst), 0, "not run again");
}

#[tokio::test]
async fn a_call_that_never_reached_a_restarted_server_runs_in_a_new_session() {
    let bank = Bank::new(100);
    let net = Network::new(SessionHost::new(NetRef::new(bank.clone())));
    let session = net.session().await;
    let first_id = session.id().unwrap();
    // The connection dies while idle, and the server restarts.
    let fresh = Bank::new(50);
    *net.serving.lock().unwrap() = NetRef::new(SessionHost::new(NetRef::new(fresh.clone())));
    net.control(0).cut_now();
    let first = net.links.lock().unwrap()[0].0.clone();
    first.closed().await;

    let balance = session.call("withdraw", (9, 5)).await.unwrap();

    assert_eq!(balance, Value::from(45));
    assert_eq!(fresh.withdrawals.load(Ordering::SeqCst), 1);
    assert_eq!(bank.withdrawals.load(Ordering::SeqCst), 0);
    assert_ne!(session.id().unwrap(), first_id, "a new session was opened");
}

#[tokio::test]
async fn a_forgotten_call_is_reported_as_unknown_not_run_again() {
    let bank = Bank::new(100);
    let host = SessionHost::with_limits(
        NetRef::new(bank.clone()),
        SessionLimits::default()
            .max_sessions(4)
            .outcomes_per_session(2),
    );
    let (client, _server) =
        support::memory_pair_with(Builder::default(), Builder::default().root(host)).await;
    let host = client.root().await.unwrap();
    let id = host.call_method("open", ()).await.unwrap();
    for call_id in 0..3i64 {
        host.call_method("call", (id.clone(), call_id, "withdraw", call_id, 1))
            .await
            .unwrap();
    }
    // Call 2 is remembered, call 0 was forgotten to keep two outcomes.
    let again = host
        .call_method("call", (id.clone(), 2, "withdraw", 2, 1))
        .await
        .unwrap();
    assert_eq!(again, Value::from(97));
    let err = host
        .call_method("call", (id.clone(), 0, "withdraw", 0, 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err:#}");
    assert!(err.message().contains("may or may not have run"), "{err:#}");
    assert_eq!(bank.withdrawals.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn idempotent_calls_are_retried_plainly() {
    let bank = Bank::new(100);
    let net = Network::new(SessionHost::new(NetRef::new(bank.clone())));
    let session = net.session().await;
    // `root()` goes first on the connection; lose the reply after it.
    net.control(0).arm(Fault::Cut {
        dir: Dir::ToClient,
        tag: tag::REPLY_OK,
        nth: 1,
        keep: Keep::Nothing,
    });
    let balance = session.call_idempotent("balance", ()).await.unwrap();
    assert_eq!(balance, Value::from(100));
    assert_eq!(bank.reads.load(Ordering::SeqCst), 2, "ran again on retry");
    assert_eq!(session.reconnects(), 1);
}

#[tokio::test]
async fn the_policy_still_guards_the_wrapped_object() {
    let bank = Bank::new(100);
    let net = Network::new(SessionHost::new(NetRef::new(bank.clone())));
    let session = net.session().await;
    for method in ["close_account", "balance_", "__dict__"] {
        let err = session.call(method, ()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "{method}: {err:#}");
    }
    let err = session
        .call_idempotent("close_account", ())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err:#}");
}

#[tokio::test]
async fn a_session_over_tcp_withdraws_once_per_call() {
    let bank = Bank::new(1_000);
    let server = tether::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(SessionHost::new(NetRef::new(bank.clone()))));
    let session = Session::connect(addr).await.unwrap();
    for txn in 0..10i64 {
        session.call("withdraw", (txn, 10)).await.unwrap();
    }
    assert_eq!(
        session.call_idempotent("balance", ()).await.unwrap(),
        Value::from(900)
    );
    assert_eq!(bank.withdrawals.load(Ordering::SeqCst), 10);
}
