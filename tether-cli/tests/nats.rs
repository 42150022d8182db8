//! tether on NATS from the command line, and failover: `tether serve
//! --nats` instances (child processes, killed by PID), a real
//! `nats-server`, and clients finding the instances by name.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::nats::async_nats;
use tether::nats::Connector;
use tether::{ErrorKind, Value};

mod support;

use support::brokers::{NatsServer, ServeProcess};
use support::nats_client::{all_instances, wait_for, wait_gone};

const TETHER: &str = env!("CARGO_BIN_EXE_tether");

fn tether(args: &[&str]) -> Output {
    Command::new(TETHER).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn serve_registers_and_call_shell_and_run_find_it_by_name() {
    let nats = NatsServer::start();
    let _instance = ServeProcess::start(&nats, "calc", &[]);
    let address = format!("{}/calc", nats.url());

    assert_eq!(
        stdout(&tether(&["call", &address, "add", "1", "2", "3"])),
        "6"
    );
    assert_eq!(
        stdout(&tether(&[
            "call",
            "--via-broker",
            &address,
            "add",
            "4",
            "5"
        ])),
        "9"
    );
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        script.path(),
        "seen = []\nroot.count_to(3, lambda i: seen.append(i))\nprint(seen, root.add(2, 2))\n",
    )
    .unwrap();
    let path = script.path().to_str().unwrap();
    assert_eq!(stdout(&tether(&["run", path, &address])), "[1, 2, 3] 4");
    assert_eq!(
        stdout(&tether(&["run", "--via-broker", path, &address])),
        "[1, 2, 3] 4"
    );

    // Mistakes say what to write.
    let nobody = tether(&["call", &format!("{}/nobody", nats.url()), "add", "1"]);
    assert_eq!(nobody.status.code(), Some(1));
    let err = String::from_utf8_lossy(&nobody.stderr);
    assert!(err.contains("no instance of 'nobody'"), "{err}");
    let misuse = tether(&["call", "--via-broker", "127.0.0.1:1", "add", "1"]);
    assert_eq!(misuse.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&misuse.stderr).contains("nats://HOST:PORT/NAME"));
    let bad = tether(&["call", "nats://127.0.0.1/calc", "add"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn three_instances_one_killed_new_connections_and_stateless_requests_go_on() {
    let nats = NatsServer::start();
    let mut instances: Vec<ServeProcess> = (0..3)
        .map(|_| ServeProcess::start(&nats, "calc", &[]))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        wait_for(&client, "calc", 3, "add").await;
        let calc = Connector::new(nats.url(), "calc");
        let stateless = |a: i64, b: i64| {
            let client = client.clone();
            async move {
                let body = format!("[{a}, {b}]");
                let answer = client.request("calc.add", body.into()).await.unwrap();
                assert!(answer.headers.is_none(), "{answer:?}");
                serde_json::from_slice::<i64>(&answer.payload).unwrap()
            }
        };

        // Connections spread over every instance (least recently used
        // first), among the instances once all are found.
        let found = all_instances(&calc, 3).await;
        let mut reached = HashSet::new();
        for i in 0..6 {
            let conn = calc.connect_among(found.clone()).await.unwrap();
            let root = conn.root().await.unwrap();
            assert_eq!(
                root.call_method("add", (i, 1)).await.unwrap(),
                Value::from(i + 1)
            );
            reached.insert(conn.peer_addr().unwrap().to_string());
            assert_eq!(stateless(i, 2).await, i + 2);
        }
        assert_eq!(reached.len(), 3, "new connections go to every instance");

        let victim = instances.remove(1);
        let (victim_id, victim_addr) = (victim.id.clone(), victim.addr.clone());
        victim.kill();
        wait_gone(&client, "calc", &victim_id).await;

        // Every new connection (finding the instances anew) and every
        // stateless request succeeds, none on the lost instance.
        for i in 0..20 {
            let conn = calc.connect().await.unwrap();
            let root = conn.root().await.unwrap();
            assert_eq!(
                root.call_method("add", (i, 1)).await.unwrap(),
                Value::from(i + 1)
            );
            assert_ne!(conn.peer_addr().unwrap(), victim_addr);
            assert_eq!(stateless(i, 3).await, i + 3);
        }
        // And they spread over both survivors.
        let found = all_instances(&calc, 2).await;
        let mut reached = HashSet::new();
        for _ in 0..4 {
            let conn = calc.connect_among(found.clone()).await.unwrap();
            reached.insert(conn.peer_addr().unwrap().to_string());
        }
        let survivors: HashSet<String> = instances.iter().map(|i| i.addr.clone()).collect();
        assert_eq!(reached, survivors);
        // Through the broker too.
        let conn = Connector::new(nats.url(), "calc")
            .route(tether::nats::Route::Broker)
            .connect()
            .await
            .unwrap();
        let root = conn.root().await.unwrap();
        assert_eq!(
            root.call_method("add", (1, 1)).await.unwrap(),
            Value::from(2)
        );
    });
}

#[test]
fn a_session_outlives_its_instance_and_never_runs_a_call_twice() {
    let nats = NatsServer::start();
    let first = ServeProcess::start(&nats, "bank", &["--sessions"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        wait_for(&client, "bank", 1, "tether-tunnel").await;
        let session = Connector::new(nats.url(), "bank")
            .session()
            .attempts(6)
            .build()
            .await
            .unwrap();
        // Every run of call k calls back (k, i): a call run twice would
        // show twice here.
        let runs: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
        let call = |k: i64| {
            let runs = runs.clone();
            let callback = tether::callback(move |i: i64| {
                let runs = runs.clone();
                async move {
                    if i == 1 {
                        *runs.lock().unwrap().entry(k).or_default() += 1;
                    }
                    Ok(Value::None)
                }
            });
            session.call("count_to", (1, callback))
        };
        for k in 0..5 {
            assert_eq!(call(k).await.unwrap(), Value::from(1));
        }
        let info = session.call("info", ()).await.unwrap();
        assert_eq!(
            info.get("pid").and_then(Value::as_int),
            Some(i64::from(first.pid()))
        );

        // Two more instances; then the session's own dies in the middle of
        // a call.
        let _others: Vec<ServeProcess> = (0..2)
            .map(|_| ServeProcess::start(&nats, "bank", &["--sessions"]))
            .collect();
        wait_for(&client, "bank", 3, "tether-tunnel").await;
        let watcher = tether::Connection::builder()
            .connect(first.addr.as_str())
            .await
            .unwrap();
        let demo = watcher
            .root()
            .await
            .unwrap()
            .call_method("root", ())
            .await
            .unwrap();
        let demo = demo.as_ref().unwrap().clone();
        let in_doubt = session.call("sleep", (600,));
        tokio::pin!(in_doubt);
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                tokio::select! {
                    _ = &mut in_doubt => panic!("the sleep returned"),
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                }
                if demo.getattr("sleeping").await.unwrap() == Value::from(1) {
                    return;
                }
            }
        })
        .await
        .expect("the sleep started");
        let first_id = first.id.clone();
        first.kill();
        let err = in_doubt.await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
        wait_gone(&client, "bank", &first_id).await;

        // The next calls run on a survivor, each exactly once.
        for k in 5..15 {
            assert_eq!(call(k).await.unwrap(), Value::from(1));
        }
        assert!(session.reconnects() >= 1);
        let runs = runs.lock().unwrap();
        for k in 0..15 {
            assert_eq!(
                runs.get(&k),
                Some(&1),
                "call {k} ran {:?} times",
                runs.get(&k)
            );
        }
    });
}
