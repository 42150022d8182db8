//! The blocking facade: scripts without async.

mod support;

use std::sync::{Arc, Mutex};

use support::TestService;
use tether::{ErrorKind, Value};

fn start_server() -> (std::net::SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(tether::Server::bind("127.0.0.1:0")).unwrap();
    let addr = server.local_addr().unwrap();
    rt.spawn(server.serve(TestService::default()));
    (addr, rt)
}

#[test]
fn calls_attributes_and_introspection_block_until_done() {
    let (addr, _rt) = start_server();
    let conn = tether::blocking::connect(addr).unwrap();
    let root = conn.root().unwrap();
    assert_eq!(root.call_method("add", (2, 3)).unwrap(), Value::from(5));
    assert_eq!(root.getattr("version").unwrap(), Value::from(3));
    assert!(root.dir().unwrap().contains(&"echo".to_string()));
    assert_eq!(root.repr().unwrap(), "<TestService object>");
    let err = root.call_method("fail", ("ValueError", "no")).unwrap_err();
    assert_eq!(err.type_name(), Some("ValueError"));
    assert_eq!(err.kind(), ErrorKind::Remote);
}

#[test]
fn returned_objects_and_callbacks_work_blockingly() {
    let (addr, _rt) = start_server();
    let conn = tether::blocking::connect(addr).unwrap();
    let root = conn.root().unwrap();
    let counter = conn
        .wrap_value(root.call_method("make_counter", ()).unwrap())
        .unwrap();
    assert_eq!(counter.call_method("incr", ()).unwrap(), Value::from(1));
    assert_eq!(counter.call_method("incr", ()).unwrap(), Value::from(2));

    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let cb = tether::callback_sync(move |word: String| {
        log.lock().unwrap().push(word.clone());
        Ok(word.len() as i64)
    });
    assert_eq!(
        root.call_method("call_back", (cb, "four")).unwrap(),
        Value::from(4)
    );
    assert_eq!(*seen.lock().unwrap(), vec!["four"]);
    drop(counter);
    conn.ping().unwrap();
    assert_eq!(conn.stats().imported, 1, "only the root is left");
}

#[test]
fn a_returned_object_converts_with_try_into() {
    let (addr, _rt) = start_server();
    let conn = tether::blocking::connect(addr).unwrap();
    let root = conn.root().unwrap();
    let counter: tether::blocking::NetRef = root
        .call_method("make_counter", ())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(counter.call_method("incr", ()).unwrap(), Value::from(1));
    assert_eq!(counter.call_method("incr", ()).unwrap(), Value::from(2));
    let err = tether::blocking::NetRef::try_from(Value::from(5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Type, "{err}");
    // The object goes when the reference does, as any other.
    let imported = conn.stats().imported;
    drop(counter);
    conn.ping().unwrap();
    assert_eq!(conn.stats().imported, imported - 1);
}

#[test]
fn iteration_is_an_ordinary_iterator() {
    let (addr, _rt) = start_server();
    let conn = tether::blocking::connect(addr).unwrap();
    let root = conn.root().unwrap();
    let list = tether::by_ref(&vec![1, 2, 3]).unwrap();
    let back = conn
        .wrap_value(root.call_method("echo", (list,)).unwrap())
        .unwrap();
    // Our own object came back: iterate it through the same facade.
    let items: Vec<Value> = back.iter().map(Result::unwrap).collect();
    assert_eq!(items, vec![Value::from(1), Value::from(2), Value::from(3)]);
}
