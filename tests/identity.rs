//! Identity: one id per object, our objects come back as themselves, and a
//! peer's object can be forwarded to a third peer.

mod support;

use support::{memory_pair, TestService};
use tether::{NetRef, Value};

#[tokio::test]
async fn an_object_sent_twice_has_one_id_on_the_owner() {
    let (client, server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let cb = tether::callback_sync(|x: Value| Ok(x));
    let same = root
        .call_method("same", (cb.clone(), cb.clone()))
        .await
        .unwrap();
    assert_eq!(same, Value::Bool(true));
    let other = tether::callback_sync(|x: Value| Ok(x));
    let same = root.call_method("same", (cb, other)).await.unwrap();
    assert_eq!(same, Value::Bool(false));
    client.ping().await.unwrap();
    assert_eq!(server.stats().imported, 0, "the server dropped its proxies");
    assert_eq!(client.stats().exported, 0);
}

#[tokio::test]
async fn a_netref_sent_back_to_its_owner_arrives_as_the_original_object() {
    let (client, _server) = memory_pair(TestService::default()).await;
    let root = client.root().await.unwrap();
    let cb = tether::callback_sync(|x: Value| Ok(x));
    let back = NetRef::try_from(root.call_method("echo", (cb.clone(),)).await.unwrap()).unwrap();
    assert!(back.is_local(), "our own object, not a proxy of a proxy");
    assert_eq!(back, cb);
}

#[tokio::test]
async fn a_netref_from_peer_a_works_when_passed_to_peer_b() {
    // A owns a counter; M holds a proxy of it and hands it to B, whose calls
    // M forwards to A.
    let (m_to_a, a) = memory_pair(TestService::default()).await;
    let from_a = NetRef::try_from(
        m_to_a
            .root()
            .await
            .unwrap()
            .call_method("make_counter", ())
            .await
            .unwrap(),
    )
    .unwrap();
    let (m_to_b, b) = memory_pair(TestService::default()).await;
    let b_root = m_to_b.root().await.unwrap();

    let reply = b_root
        .call_method("invoke", (from_a.clone(), "incr"))
        .await
        .unwrap();
    assert_eq!(reply, Value::from(1));
    assert_eq!(from_a.getattr("value").await.unwrap(), Value::from(1));

    // Coming back to M, it is M's own proxy of A's object again.
    let back =
        NetRef::try_from(b_root.call_method("echo", (from_a.clone(),)).await.unwrap()).unwrap();
    assert_eq!(back, from_a);
    drop(back);

    // B dropped its proxy: M's forwarder is released, A's object is not.
    m_to_b.ping().await.unwrap();
    b.ping().await.unwrap();
    assert_eq!(m_to_b.stats().exported, 0);
    assert_eq!(b.stats().imported, 0);
    assert_eq!(a.stats().exported, 1, "A still exports the counter to M");
}

#[tokio::test]
async fn a_forwarded_call_keeps_the_callers_deadline() {
    // M's own calls time out after 50 ms; a call B makes through M's
    // forwarder must get B's deadline instead.
    let (m_to_a, _a) = support::memory_pair_with(
        tether::Builder::default()
            .config(tether::Config::default().call_timeout(std::time::Duration::from_millis(50))),
        tether::Builder::default().root(TestService::default()),
    )
    .await;
    let slow =
        NetRef::try_from(m_to_a.root().await.unwrap().getattr("slow").await.unwrap()).unwrap();
    let (m_to_b, _b) = memory_pair(TestService::default()).await;
    let b_root = m_to_b
        .root()
        .await
        .unwrap()
        .with_timeout(std::time::Duration::from_secs(30));
    // B calls slow(200) on A through M: longer than M's default deadline.
    let reply = b_root.call_method("call_back", (slow, 200)).await.unwrap();
    assert_eq!(reply, Value::from(200));
}
