//! Deny by default: only declared members are reachable, setattr/delattr
//! are off unless enabled, restricted views narrow further, hidden names
//! never leak, and each side's policy protects its own objects.

mod support;

use support::{memory_pair, memory_pair_with, TestService};
use tether::{Builder, Config, ErrorKind, NetRef, Policy, Value};

#[tokio::test]
async fn undeclared_members_are_denied_for_every_operation() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    for name in ["secret", "__class__", "drop", ""] {
        let err = root.getattr(name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "getattr {name}");
        let err = root.call_method(name, ()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "call_method {name}");
        let err = root.setattr(name, 1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "setattr {name}");
        let err = root.delattr(name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "delattr {name}");
    }
}

#[tokio::test]
async fn a_hidden_member_and_a_missing_one_look_the_same() {
    let service = NetRef::new(TestService::default());
    let view = tether::restrict(&service, &["add"]).unwrap();
    let (client, _server) =
        memory_pair_with(Builder::default(), Builder::default().root_ref(view)).await;
    let root = client.root().await.unwrap();
    let hidden = root.call_method("echo", (1,)).await.unwrap_err();
    let missing = root.call_method("nonesuch", (1,)).await.unwrap_err();
    assert_eq!(hidden.kind(), missing.kind());
    assert_eq!(
        hidden.message().replace("echo", "X"),
        missing.message().replace("nonesuch", "X")
    );
}

#[tokio::test]
async fn a_near_miss_suggests_the_exposed_name() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    for (typed, meant) in [
        ("ad", "add"),
        ("ehco", "echo"),
        ("make_countr", "make_counter"),
    ] {
        let err = root.call_method(typed, (1, 2)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
        assert_eq!(
            err.message(),
            format!(
                "'TestService' object has no exposed member '{typed}'; did you mean '{meant}'?"
            )
        );
    }
    let err = root.getattr("lable").await.unwrap_err();
    assert!(err.message().ends_with("did you mean 'label'?"), "{err}");
    let err = root.setattr("versoin", 2).await.unwrap_err();
    assert!(err.message().ends_with("did you mean 'version'?"), "{err}");
    // Nothing close: no guess.
    let err = root.call_method("zzz", ()).await.unwrap_err();
    assert!(!err.message().contains("did you mean"), "{err}");
}

#[tokio::test]
async fn a_near_miss_never_suggests_a_hidden_name() {
    let service = NetRef::new(TestService::default());
    let view = tether::restrict(&service, &["add"]).unwrap();
    let (client, _server) =
        memory_pair_with(Builder::default(), Builder::default().root_ref(view)).await;
    let root = client.root().await.unwrap();
    // `echo` exists but is hidden by the view: "ecko" gets no suggestion,
    // exactly as for a name near nothing.
    let near_hidden = root.call_method("ecko", (1,)).await.unwrap_err();
    let near_nothing = root.call_method("zzzz", (1,)).await.unwrap_err();
    assert_eq!(
        near_hidden.message().replace("ecko", "X"),
        near_nothing.message().replace("zzzz", "X")
    );
    let err = root.call_method("ad", (1, 2)).await.unwrap_err();
    assert!(err.message().ends_with("did you mean 'add'?"), "{err}");
}

#[tokio::test]
async fn setattr_and_delattr_are_off_by_default() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let err = root.setattr("label", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(err.message().contains("setattr is not allowed"), "{err}");
    let err = root.delattr("label").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
}

#[tokio::test]
async fn an_enabled_setattr_reaches_writable_attributes_only() {
    let policy = Policy::default().allow_setattr(true).allow_delattr(true);
    let (client, _server) = memory_pair_with(
        Builder::default(),
        Builder::default()
            .root(TestService::default())
            .config(Config::default().policy(policy)),
    )
    .await;
    let root = client.root().await.unwrap();
    root.setattr("label", "hello").await.unwrap();
    assert_eq!(root.getattr("label").await.unwrap(), Value::from("hello"));
    root.delattr("label").await.unwrap();
    assert_eq!(root.getattr("label").await.unwrap(), Value::from(""));
    let err = root.setattr("version", 4).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(err.message().contains("read-only"), "{err}");
    let err = root.setattr("add", 4).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "a method is not writable");
}

#[tokio::test]
async fn a_restricted_view_exposes_only_the_named_members() {
    let service = NetRef::new(TestService::default());
    let view = tether::restrict(&service, &["add", "version", "nonexistent"]).unwrap();
    let (client, _server) =
        memory_pair_with(Builder::default(), Builder::default().root_ref(view)).await;
    let root = client.root().await.unwrap();
    assert_eq!(
        root.call_method("add", (1, 2)).await.unwrap(),
        Value::from(3)
    );
    assert_eq!(root.getattr("version").await.unwrap(), Value::from(3));
    assert_eq!(root.dir().await.unwrap(), vec!["add", "version"]);
    let names: Vec<_> = root
        .inspect()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, vec!["add", "version"]);
    let err = root.call_method("echo", (1,)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    // The hidden name does not leak through any listing or message.
    assert!(!format!("{err}").contains("make_counter"));
}

#[tokio::test]
async fn a_remote_object_cannot_be_restricted_by_a_non_owner() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let err = tether::restrict(&root, &["add"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn a_clients_callback_is_protected_by_the_clients_policy() {
    // The server's `invoke(obj, name)` calls `obj.name()` on what it was
    // given: on a client callback, the client denies it.
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let cb = tether::callback_sync(|x: Value| Ok(x));
    let err = root
        .call_method("invoke", (cb.clone(), "secret"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    let cause = err.remote().unwrap().cause().expect("denied by the client");
    assert_eq!(cause.kind(), ErrorKind::Denied);
    // Calling it is what it is for.
    assert_eq!(
        root.call_method("call_back", (cb, 7)).await.unwrap(),
        Value::from(7)
    );
}

/// An object that declares no members but would hand out its secret to any
/// operation that reached its code: every path must stop at the gate.
struct Vault;

impl tether::Object for Vault {
    fn type_name(&self) -> &str {
        "Vault"
    }

    fn call_method<'a>(
        &'a self,
        _name: &'a str,
        _args: tether::Args,
        _cx: &'a tether::CallContext,
    ) -> tether::BoxFuture<'a, tether::Result<Value>> {
        Box::pin(async { Ok(Value::from("the-secret-combination")) })
    }

    fn get_attr<'a>(
        &'a self,
        _name: &'a str,
        _cx: &'a tether::CallContext,
    ) -> tether::BoxFuture<'a, tether::Result<Value>> {
        Box::pin(async { Ok(Value::from("the-secret-combination")) })
    }
}

#[tokio::test]
async fn no_operation_reaches_code_behind_undeclared_members_or_leaks_their_names() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    // Handed to the server as an argument: the server's `invoke(obj, name)`
    // reaches the client's vault only through the client's gate.
    let vault = NetRef::new(Vault);
    for name in ["combination", "open", "__dict__"] {
        let err = root
            .call_method("invoke", (vault.clone(), name))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "invoke {name}: {err}");
        assert!(!format!("{err:#}").contains("secret"), "{err:#}");
    }

    // Operation by operation, with the vault as a server's root.
    let (client, _server) = memory_pair_with(
        Builder::default(),
        Builder::default().root_ref(NetRef::new(Vault)),
    )
    .await;
    let vault = client.root().await.unwrap();
    for name in ["combination", "open", "__dict__", ""] {
        for (what, result) in [
            ("getattr", vault.getattr(name).await.map(|_| ())),
            ("call_method", vault.call_method(name, ()).await.map(|_| ())),
            ("setattr", vault.setattr(name, 1).await),
            ("delattr", vault.delattr(name).await),
        ] {
            let err = result.expect_err(what);
            assert_eq!(err.kind(), ErrorKind::Denied, "{what} {name}: {err}");
            assert!(!format!("{err:#}").contains("secret"), "{err:#}");
        }
    }
    for (what, result) in [
        ("call", vault.call(()).await.map(|_| ())),
        ("next", vault.next().await.map(|_| ())),
    ] {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{what}: {err}");
    }
    assert!(vault.dir().await.unwrap().is_empty());
    assert!(vault.inspect().await.unwrap().is_empty());
    for text in [vault.repr().await.unwrap(), vault.str().await.unwrap()] {
        assert!(!text.contains("secret"), "{text}");
    }
    // Comparison and hashing name no member and run no object code: identity.
    assert!(vault.remote_eq(vault.clone()).await.unwrap());
    assert!(!vault.remote_eq("the-secret-combination").await.unwrap());
    assert_eq!(
        vault.remote_hash().await.unwrap(),
        vault.remote_hash().await.unwrap()
    );
}
