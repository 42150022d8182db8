//! Every operation on an exposed object, locally and across a connection.

mod support;

use std::time::Duration;

use support::faults::{faulty_pair, tag, Dir, Fault};
use support::{memory_pair, TestService};
use tether::{Args, Builder, ErrorKind, MemberKind, NetRef, Value};

/// The same assertions on a local object and on a proxy of it, as capnp's
/// `rpc_and_local_top_level` does: a local call and a remote one must agree.
async fn both_ways(check: impl AsyncFn(NetRef)) {
    check(NetRef::new(TestService::default())).await;
    let (client, _server) = memory_pair(TestService::default()).await;
    check(client.root().await.unwrap()).await;
}

#[tokio::test]
async fn call_method_with_positional_and_named_arguments() {
    both_ways(async |root| {
        let sum: i64 = root
            .call_method("add", (2, 40))
            .await
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(sum, 42);
        let named = root
            .call_method(
                "kwargs",
                Args::new().named("scale", 2.5).named("unit", "cm"),
            )
            .await
            .unwrap();
        assert_eq!(named.get("scale"), Some(&Value::Float(2.5)));
        assert_eq!(named.get("unit"), Some(&Value::from("cm")));
    })
    .await;
}

#[tokio::test]
async fn getattr_reads_attributes_and_binds_methods() {
    both_ways(async |root| {
        assert_eq!(root.getattr("version").await.unwrap(), Value::from(3));
        let add = NetRef::try_from(root.getattr("add").await.unwrap()).unwrap();
        assert_eq!(add.call((1, 2)).await.unwrap(), Value::from(3));
        assert!(add.repr().await.unwrap().contains("TestService.add"));
    })
    .await;
}

#[tokio::test]
async fn dir_and_inspect_list_members_with_signatures_and_docs() {
    both_ways(async |root| {
        let names = root.dir().await.unwrap();
        assert!(names.contains(&"add".to_string()));
        assert!(names.contains(&"label".to_string()));
        let members = root.inspect().await.unwrap();
        let add = members.iter().find(|m| m.name == "add").unwrap();
        assert_eq!(add.kind, MemberKind::Method);
        assert_eq!(add.signature, "(a: int, b: int) -> int");
        assert_eq!(add.doc, "Add two integers.");
        let label = members.iter().find(|m| m.name == "label").unwrap();
        assert_eq!(label.kind, MemberKind::Attribute { writable: true });
    })
    .await;
}

#[tokio::test]
async fn repr_str_hash_and_eq() {
    both_ways(async |root| {
        assert_eq!(root.repr().await.unwrap(), "<TestService object>");
        assert_eq!(root.str().await.unwrap(), "<TestService object>");
        let h1 = root.remote_hash().await.unwrap();
        assert_eq!(root.remote_hash().await.unwrap(), h1, "hash is stable");
        assert!(root.remote_eq(root.clone()).await.unwrap());
        assert!(!root.remote_eq(5).await.unwrap());
        let other = NetRef::new(TestService::default());
        assert!(!root.remote_eq(other).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn values_of_every_kind_travel_by_value() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let value = Value::List(vec![
        Value::None,
        Value::Bool(true),
        Value::Int(i64::MIN),
        Value::Float(-0.5),
        Value::from("héllo"),
        Value::Bytes(vec![0, 1, 255].into()),
        Value::map([("nested", Value::from((1, "two")))]),
    ]);
    assert_eq!(
        root.call_method("echo", (value.clone(),)).await.unwrap(),
        value
    );
}

#[tokio::test]
async fn serde_structs_travel_by_value() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i64,
        label: Option<String>,
        tags: Vec<String>,
    }
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let p = Point {
        x: 3,
        label: Some("a".into()),
        tags: vec!["t".into()],
    };
    let back = root
        .call_method("echo", (tether::to_value(&p).unwrap(),))
        .await
        .unwrap();
    assert_eq!(back.get("x"), Some(&Value::from(3)));
    assert_eq!(tether::from_value::<Point>(back).unwrap(), p);
}

#[tokio::test]
async fn wrong_arguments_name_the_method_and_the_argument() {
    both_ways(async |root| {
        let err = root.call_method("add", (1, "two")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadArguments);
        assert!(err.message().contains("TestService.add()"), "{err}");
        assert!(
            err.message().contains("argument 2: expected int, got str"),
            "{err}"
        );
        let err = root.call_method("add", (1,)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadArguments);
        assert!(
            err.message().contains("takes 2 arguments but 1 was given"),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn operations_an_object_does_not_support_are_refused() {
    both_ways(async |root| {
        assert_eq!(
            root.call(()).await.unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            root.next().await.unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        let err = root.call_method("version", ()).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Unsupported,
            "an attribute is not a method"
        );
        assert_eq!(
            err.message(),
            "'TestService.version' is an attribute, not a method: read it instead of calling it"
        );
    })
    .await;
}

#[tokio::test]
async fn objects_returned_by_methods_are_remote_references() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let counter = NetRef::try_from(root.call_method("make_counter", ()).await.unwrap()).unwrap();
    assert!(!counter.is_local());
    assert_eq!(
        counter.call_method("incr", ()).await.unwrap(),
        Value::from(1)
    );
    assert_eq!(
        counter.call_method("incr", ()).await.unwrap(),
        Value::from(2)
    );
    assert_eq!(counter.getattr("value").await.unwrap(), Value::from(2));
}

#[tokio::test]
async fn a_remote_object_is_one_key_however_often_it_arrives() {
    use std::collections::{HashMap, HashSet};
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let counter = NetRef::try_from(root.call_method("make_counter", ()).await.unwrap()).unwrap();
    // Sent to its owner and back: the same object, so the same key.
    let again =
        NetRef::try_from(root.call_method("echo", (counter.clone(),)).await.unwrap()).unwrap();
    let other = NetRef::try_from(root.call_method("make_counter", ()).await.unwrap()).unwrap();
    let mut seen = HashMap::new();
    seen.insert(counter.clone(), "first");
    assert_eq!(seen.get(&again), Some(&"first"));
    assert_eq!(seen.get(&other), None);
    let keys: HashSet<NetRef> = [counter, again, other, root.clone(), root].into();
    assert_eq!(keys.len(), 3, "two counters and the root");
}

#[tokio::test]
async fn many_calls_in_flight_on_one_connection_each_get_their_own_reply() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let calls = (0..200).map(|i| {
        let root = root.clone();
        async move { (i, root.call_method("add", (i, 1000)).await.unwrap()) }
    });
    for (i, reply) in futures_util::future::join_all(calls).await {
        assert_eq!(reply, Value::from(i + 1000));
    }
}

/// In virtual time through a relay: a round trip with nothing held up
/// takes no time, and one whose pong is held back takes exactly as long as
/// it was held, from either side.
#[tokio::test(start_paused = true)]
async fn ping_measures_a_round_trip() {
    let (client, server, relay) = faulty_pair(
        Builder::default(),
        Builder::default().root(TestService::default()),
    )
    .await;
    assert_eq!(client.ping().await.unwrap(), Duration::ZERO);
    relay.arm(Fault::Delay {
        dir: Dir::ToClient,
        tag: tag::PONG,
        nth: 0,
        by: Duration::from_millis(1500),
    });
    assert_eq!(client.ping().await.unwrap(), Duration::from_millis(1500));
    relay.arm(Fault::Delay {
        dir: Dir::ToServer,
        tag: tag::PONG,
        nth: 0,
        by: Duration::from_millis(700),
    });
    assert_eq!(server.ping().await.unwrap(), Duration::from_millis(700));
    assert_eq!(client.peer_service(), "TestService");
    assert_eq!(server.peer_service(), "Empty");
}
