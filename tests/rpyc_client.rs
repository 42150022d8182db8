//! tether as the client of Python RPyC servers (rpyc 6.0.2, unmodified): a
//! plain `rpyc.Service`, and the stock `rpyc_classic` server, driven from
//! Rust through ordinary `NetRef`s.

mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::{Args, Error, ErrorKind, NetRef, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Start a Python server (`args` after the interpreter) and read the port
/// it prints on the line for which `port_of` returns one.
async fn python_server(args: &[&str], port_of: fn(&str) -> Option<u16>) -> (Child, u16) {
    let python = tokio::task::spawn_blocking(support::python::python)
        .await
        .unwrap();
    let mut child = Command::new(python)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(port) = port_of(&line) {
                return port;
            }
        }
        panic!("the Python server printed no port")
    })
    .await
    .unwrap();
    (child, port)
}

async fn wait_exit(mut child: Child) {
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the one-shot server exits once tether closes")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tether_uses_a_python_service() {
    let script = support::python::script("rpyc_service_server.py");
    let (child, port) = python_server(&[script.to_str().unwrap()], |l| l.trim().parse().ok()).await;
    let conn = tether::rpyc::connect(("127.0.0.1", port)).await.unwrap();
    let root = conn.root().await.unwrap();

    // Calls, an attribute, keyword arguments.
    assert_eq!(
        root.call_method("add", (1, 2)).await.unwrap(),
        Value::from(3)
    );
    assert_eq!(root.getattr("version").await.unwrap(), Value::from("1.0"));
    let args = Args::new().arg("tether").named("punctuation", "?");
    assert_eq!(
        root.call_method("greet", args).await.unwrap(),
        Value::from("hello tether?")
    );
    assert!(root.repr().await.unwrap().contains("LabService"));

    // A getattr chain on a Python list held by reference, under the
    // Python side's policy: safe dunders yes, public attributes no.
    let items = NetRef::try_from(root.call_method("items", ()).await.unwrap()).unwrap();
    // It lives in Python: not local, and shown as a remote object.
    assert!(!root.is_local() && !items.is_local());
    let shown = format!("{items:?}");
    assert!(shown.starts_with("<remote builtins.list 0x"), "{shown}");
    assert!(shown.contains(" on RPyC connection "), "{shown}");
    assert_eq!(Value::Ref(items.clone()).to_string(), shown);
    assert_eq!(
        items.call_method("__len__", ()).await.unwrap(),
        Value::from(3)
    );
    let denied = items.call_method("index", (2,)).await.unwrap_err();
    assert_eq!(denied.type_name(), Some("AttributeError"), "{denied:#}");
    drop(items);

    // Callbacks: Python calls a tether closure.
    let plus_one = tether::callback(|x: i64| async move { Ok(x + 1) });
    assert_eq!(
        root.call_method("apply", (plus_one, 41)).await.unwrap(),
        Value::from(42)
    );

    // Nested three levels each way: Python's nest calls tether's f, which
    // calls nest again.
    let levels = Arc::new(Mutex::new(Vec::new()));
    let (r, seen) = (root.clone(), levels.clone());
    let f = tether::callback(move |(depth, me): (i64, NetRef)| {
        let (root, seen) = (r.clone(), seen.clone());
        async move {
            seen.lock().unwrap().push(depth);
            let below: i64 = root
                .call_method("nest", (me, depth - 1))
                .await?
                .try_into()?;
            Ok(below + 1)
        }
    });
    assert_eq!(
        root.call_method("nest", (f, 3)).await.unwrap(),
        Value::from(3)
    );
    assert_eq!(*levels.lock().unwrap(), [3, 2, 1]);

    // Iterating a Python generator, batched.
    let numbers = NetRef::try_from(root.call_method("numbers", (10_000,)).await.unwrap()).unwrap();
    let mut sum = 0i64;
    let mut count = 0;
    let mut it = numbers.iter();
    while let Some(item) = it.next().await {
        sum += i64::try_from(item.unwrap()).unwrap();
        count += 1;
    }
    assert_eq!((count, sum), (10_000, (0..10_000).sum()));
    drop((it, numbers));

    // Exceptions: tether's error through Python and back keeps its class.
    let refuse =
        tether::callback(
            |(): ()| async move { Err::<(), _>(Error::app("KeyError", "no such key")) },
        );
    let err = root.call_method("relay", (refuse,)).await.unwrap_err();
    assert_eq!(err.type_name(), Some("KeyError"), "{err:#}");
    // Python's own exception, with its traceback. (Raised last: rpyc keeps
    // the traceback of the last failure, and the relay's would hold our
    // callback's proxy.)
    let err = root.call_method("fail", ()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote);
    assert_eq!(
        (err.type_name(), err.message()),
        (Some("ValueError"), "python says no")
    );
    let trace = err.remote().unwrap().trace().join("\n");
    assert!(trace.contains("raise ValueError"), "{trace}");

    // Everything released both ways: Python holds only the root it gave
    // us, tether holds only that root and nothing of its own is held.
    let held = root.call_method("held", ()).await.unwrap();
    assert_eq!(held, Value::from(1));
    let stats = conn.stats();
    assert_eq!((stats.exported, stats.imported), (0, 1), "{stats:?}");

    // Dropping the last handles closes the connection; the one-shot
    // server then exits.
    drop((root, conn));
    wait_exit(child).await;
}

/// The stock `rpyc_classic` server, for one connection.
async fn rpyc_classic() -> (Child, u16) {
    let args = tokio::task::spawn_blocking(|| support::python::rpyc_classic(&[]))
        .await
        .unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python_server(&args, support::python::rpyc_classic_port).await
}

/// A native connection to a Python RPyC server fails at once, saying what
/// the server is, instead of waiting out the handshake: its deadline here
/// is an hour, and the outer bound only stops a broken build from hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_connection_to_a_python_server_says_it_speaks_rpyc() {
    let (_child, port) = rpyc_classic().await;
    let config = tether::Config::default().handshake_timeout(Duration::from_secs(3600));
    let connecting = tether::Builder::default()
        .config(config)
        .connect(("127.0.0.1", port));
    let err = tokio::time::timeout(Duration::from_secs(60), connecting)
        .await
        .expect("the RPyC server was not recognised")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert_eq!(
        err.peer_dialect(),
        Some(tether::rpyc::Dialect::Rpyc),
        "{err}"
    );
    assert!(err.message().contains("looks like an RPyC server"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_reply_over_the_decoding_budget_fails_its_call_alone() {
    let script = support::python::script("rpyc_service_server.py");
    let (child, port) = python_server(&[script.to_str().unwrap()], |l| l.trim().parse().ok()).await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let nothing = tether::callback(|(): ()| async move { Ok(()) });
    let config = tether::Config::default().max_decoded_bytes(1 << 20);
    let conn = tether::rpyc::connect_io(stream, nothing, config, None);
    let root = conn.root().await.unwrap();
    // 200 000 boxed `None`s and one object: compressed by Python, over the
    // 1 MiB budget once decoded.
    let err = root.call_method("heavy", (200_000,)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err:#}");
    assert!(err.message().contains("max_decoded_bytes"), "{err:#}");
    // The connection goes on, and the object in the refused reply was
    // released: Python holds only the root it gave us.
    assert_eq!(
        root.call_method("add", (1, 2)).await.unwrap(),
        Value::from(3)
    );
    assert_eq!(root.call_method("held", ()).await.unwrap(), Value::from(1));
    assert_eq!(conn.stats().imported, 1);
    drop((root, conn));
    wait_exit(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tether_drives_the_stock_rpyc_classic_server() {
    let (child, port) = rpyc_classic().await;
    let conn = tether::rpyc::connect(("127.0.0.1", port)).await.unwrap();
    let root = conn.root().await.unwrap();

    // Evaluating and executing, as an interactive session would.
    assert_eq!(
        root.call_method("eval", ("6 * 7",)).await.unwrap(),
        Value::from(42)
    );
    root.call_method("execute", ("x = 5",)).await.unwrap();
    assert_eq!(
        root.call_method("eval", ("x + 1",)).await.unwrap(),
        Value::from(6)
    );

    // Module access and a getattr chain.
    let os = NetRef::try_from(root.call_method("getmodule", ("os",)).await.unwrap()).unwrap();
    let path = NetRef::try_from(os.getattr("path").await.unwrap()).unwrap();
    assert_eq!(
        path.call_method("join", ("a", "b")).await.unwrap(),
        Value::from("a/b")
    );
    let pid = os.call_method("getpid", ()).await.unwrap();
    assert_eq!(pid, Value::from(child.id().unwrap() as i64));

    // Promises work against RPyC too, step by step (no pipelining there).
    let joined = root
        .promise()
        .call_method("getmodule", ("os",))
        .getattr("path")
        .call_method("join", ("c", "d"));
    assert_eq!(joined.await.unwrap(), Value::from("c/d"));
    let missing = root
        .promise()
        .call_method("getmodule", ("os",))
        .getattr("no_such_thing")
        .call_method("anything", ());
    let err = missing.await.unwrap_err();
    assert!(err.message().starts_with("step .no_such_thing"), "{err:#}");

    // A Python lambda calling a tether closure.
    let twice = NetRef::try_from(
        root.call_method("eval", ("lambda f: f(20) + 2",))
            .await
            .unwrap(),
    )
    .unwrap();
    let double = tether::callback(|x: i64| async move { Ok(x * 2) });
    assert_eq!(twice.call((double,)).await.unwrap(), Value::from(42));

    // A Python exception, with its class and trace.
    let err = root.call_method("eval", ("1 / 0",)).await.unwrap_err();
    assert_eq!(err.type_name(), Some("ZeroDivisionError"), "{err:#}");
    assert!(err
        .remote()
        .unwrap()
        .trace()
        .iter()
        .any(|l| l.contains("ZeroDivisionError")));

    drop((twice, path, os, root));
    conn.close().await;
    wait_exit(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_api_drives_rpyc_classic() {
    let (child, port) = rpyc_classic().await;
    // The blocking API owns its runtime: used from a plain thread.
    tokio::task::spawn_blocking(move || {
        let session = tether::blocking::connect_rpyc(("127.0.0.1", port)).unwrap();
        let root = session.root().unwrap();
        assert_eq!(
            root.call_method("eval", ("6 * 7",)).unwrap(),
            Value::from(42)
        );
        let os = root
            .wrap_value(root.call_method("getmodule", ("os",)).unwrap())
            .unwrap();
        let path = os.wrap_value(os.getattr("path").unwrap()).unwrap();
        assert_eq!(
            path.call_method("join", ("a", "b")).unwrap(),
            Value::from("a/b")
        );
        let err = root.call_method("eval", ("1 / 0",)).unwrap_err();
        assert_eq!(err.type_name(), Some("ZeroDivisionError"), "{err:#}");
        assert_eq!(session.stats().imported, 3);
        drop((path, os));
        assert_eq!(session.stats().imported, 1);
        // Dropping the last handles closes the connection.
        drop((root, session));
    })
    .await
    .unwrap();
    wait_exit(child).await;
}
