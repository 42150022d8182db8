//! Errors from the owner reach the caller with type name, message and
//! trace; errors raised in callbacks keep their chain across hops.

mod support;

use support::{memory_pair, TestService};
use tether::{ErrorKind, Value};

#[tokio::test]
async fn an_application_error_arrives_with_type_message_and_trace() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let err = root
        .call_method("fail", ("ValueError", "math domain error"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote);
    assert_eq!(err.type_name(), Some("ValueError"));
    assert_eq!(err.message(), "math domain error");
    let remote = err.remote().unwrap();
    assert_eq!(remote.type_name(), "ValueError");
    assert_eq!(remote.kind(), ErrorKind::Application);
    assert!(remote.trace()[0].contains("fail()"), "{:?}", remote.trace());
    assert!(
        remote.trace()[0].contains("TestService"),
        "{:?}",
        remote.trace()
    );
    assert_eq!(err.to_string(), "ValueError: math domain error");
    assert!(format!("{err:#}").contains("Remote trace"));
}

#[tokio::test]
async fn a_callback_error_propagates_through_the_server_with_its_chain() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let cb = tether::callback(|line: String| async move {
        Err::<Value, _>(tether::Error::app(
            "LineError",
            format!("cannot take {line:?}"),
        ))
    });
    let err = root.call_method("call_back", (cb, "x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote);
    assert_eq!(err.type_name(), Some("LineError"));
    assert_eq!(err.message(), "cannot take \"x\"");
    let outer = err.remote().unwrap();
    assert!(
        outer.trace()[0].contains("call_back()"),
        "{:?}",
        outer.trace()
    );
    let inner = outer.cause().expect("the callback's error is the cause");
    assert_eq!(inner.type_name(), "LineError");
    assert!(inner.trace()[0].contains("callback"), "{:?}", inner.trace());
    let rendered = outer.render_trace();
    assert!(rendered.find("call_back()").unwrap() < rendered.find("callback").unwrap());
}

#[tokio::test]
async fn errors_from_std_keep_their_rust_type_name() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let cb = tether::callback_sync(|_: Value| -> tether::Result<Value> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file").into())
    });
    let err = root.call_method("call_back", (cb, ())).await.unwrap_err();
    assert_eq!(err.type_name(), Some("std::io::error::Error"));
    assert_eq!(err.message(), "no such file");
}
