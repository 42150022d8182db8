//! At-most-once sessions belong to whoever opened them. The attacks of
//! issue 12 on a server requiring tokens for `alice` and `bob` (the
//! README's own set-up) and on one without authentication: reading
//! another's remembered results, pre-empting her calls, erasing or
//! evicting her session, taking objects her session returned, and making
//! the host keep any number of bytes.

mod support;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::wait_until;
use tether::session::{Session, SessionBuilder, SessionHost, SessionLimits};
use tether::{Builder, Connection, ErrorKind, NetRef, Server, Token, Tokens, Value};

/// An account that counts what really ran.
#[derive(Clone, Default)]
struct Account {
    balance: Arc<AtomicI64>,
    transfers: Arc<AtomicUsize>,
    secrets: Arc<AtomicUsize>,
    /// Objects handed out and not yet dropped.
    alive: Arc<AtomicUsize>,
}

/// A handle whose drop the test can see.
struct Handle(Arc<AtomicUsize>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tether::expose]
impl Handle {
    /// Something only the owner should read.
    #[method]
    fn contents(&self) -> String {
        "alice's diary".into()
    }
}

#[tether::expose]
impl Account {
    /// A value computed for the caller alone.
    #[method]
    fn my_secret(&self) -> String {
        self.secrets.fetch_add(1, Ordering::SeqCst);
        "the vault code is 1234".into()
    }

    /// Add `amount`; return the new balance.
    #[method]
    fn transfer(&self, amount: i64) -> i64 {
        self.transfers.fetch_add(1, Ordering::SeqCst);
        self.balance.fetch_add(amount, Ordering::SeqCst) + amount
    }

    /// A new object.
    #[method]
    fn open_handle(&self) -> NetRef {
        self.alive.fetch_add(1, Ordering::SeqCst);
        NetRef::new(Handle(self.alive.clone()))
    }

    /// `n` bytes.
    #[method]
    fn blob(&self, n: usize) -> Value {
        Value::Bytes(vec![1; n].into())
    }
}

fn tokens() -> Tokens {
    Tokens::new()
        .with("alice", "alice-secret-0123456789abcdef")
        .unwrap()
        .with("bob", "bob-secret-0123456789abcdef")
        .unwrap()
}

/// A server on loopback serving `host`, requiring tokens when `auth`.
async fn start(host: SessionHost, auth: bool) -> std::net::SocketAddr {
    let builder = Server::builder();
    let builder = if auth {
        builder.tokens(tokens())
    } else {
        builder
    };
    let server = builder.bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(host));
    addr
}

fn as_user(name: &str) -> Builder {
    let secret = match name {
        "alice" => "alice-secret-0123456789abcdef",
        "bob" => "bob-secret-0123456789abcdef",
        _ => return Connection::builder(),
    };
    Connection::builder().token(Token::new(secret).unwrap())
}

/// A session for `name` (anyone else: no token).
async fn session(addr: std::net::SocketAddr, name: &'static str) -> Session {
    SessionBuilder::new(move || Box::pin(as_user(name).connect(addr)))
        .backoff(Duration::ZERO)
        .build()
        .await
        .unwrap()
}

/// The host as a plain connection of `name` sees it.
async fn host_as(addr: std::net::SocketAddr, name: &str) -> (Connection, NetRef) {
    let conn = as_user(name).connect(addr).await.unwrap();
    let host = conn.root().await.unwrap();
    (conn, host)
}

/// The answer to a session call for a session that never existed.
async fn unknown_answer(host: &NetRef) -> tether::Error {
    host.call_method("call", ("0".repeat(64), 0, "my_secret"))
        .await
        .unwrap_err()
}

fn same_answer(got: &tether::Error, unknown: &tether::Error) {
    assert_eq!(got.kind(), ErrorKind::OutcomeUnknown, "{got:#}");
    assert_eq!(got.kind(), unknown.kind());
    assert_eq!(got.message(), unknown.message(), "an existence oracle");
}

#[tokio::test]
async fn another_identity_cannot_read_a_remembered_result() {
    let account = Account::default();
    let addr = start(SessionHost::new(NetRef::new(account.clone())), true).await;
    let alice = session(addr, "alice").await;
    let secret = alice.call("my_secret", ()).await.unwrap();
    assert_eq!(secret, Value::from("the vault code is 1234"));
    let token = alice.id().unwrap();

    let (_bob, host) = host_as(addr, "bob").await;
    let unknown = unknown_answer(&host).await;
    let stolen = host
        .call_method("call", (token.clone(), 0, "my_secret"))
        .await
        .unwrap_err();
    same_answer(&stolen, &unknown);
    assert!(!format!("{stolen:#}").contains("1234"));
    assert_eq!(account.secrets.load(Ordering::SeqCst), 1);

    // Alice herself, over another connection, still gets it back unrun.
    let (_again, host) = host_as(addr, "alice").await;
    let back = host
        .call_method("call", (token, 0, "my_secret"))
        .await
        .unwrap();
    assert_eq!(back, secret);
    assert_eq!(account.secrets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn another_identity_cannot_pre_empt_calls() {
    let account = Account::default();
    let addr = start(SessionHost::new(NetRef::new(account.clone())), true).await;
    let alice = session(addr, "alice").await;
    let token = alice.id().unwrap();

    let (_bob, host) = host_as(addr, "bob").await;
    let unknown = unknown_answer(&host).await;
    for call_id in 0..3 {
        let planted = host
            .call_method("call", (token.clone(), call_id, "transfer", 0))
            .await
            .unwrap_err();
        same_answer(&planted, &unknown);
    }
    assert_eq!(account.transfers.load(Ordering::SeqCst), 0);

    // Alice's calls run, and return her own outcomes.
    assert_eq!(
        alice.call("transfer", (100,)).await.unwrap(),
        Value::from(100)
    );
    assert_eq!(
        alice.call("transfer", (5,)).await.unwrap(),
        Value::from(105)
    );
    assert_eq!(account.transfers.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn another_identity_cannot_end_a_session_or_evict_it_by_opening_many() {
    let account = Account::default();
    let addr = start(SessionHost::new(NetRef::new(account.clone())), true).await;
    let alice = session(addr, "alice").await;
    alice.call("transfer", (10,)).await.unwrap();
    let token = alice.id().unwrap();

    let (_bob, host) = host_as(addr, "bob").await;
    // `forget` answers alike for her session and for none.
    let forgot = host.call_method("forget", (token.clone(),)).await.unwrap();
    let forgot_none = host.call_method("forget", ("0".repeat(64),)).await.unwrap();
    assert_eq!(forgot, forgot_none);
    // 1 100 sessions: past the old global LRU of 1 024.
    for _ in 0..1_100 {
        host.call_method("open", ()).await.unwrap();
    }

    // Alice's call 0 is still remembered: answered, not run again.
    let (_again, mine) = host_as(addr, "alice").await;
    let back = mine
        .call_method("call", (token, 0, "transfer", 10))
        .await
        .unwrap();
    assert_eq!(back, Value::from(10));
    assert_eq!(account.transfers.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_authentication_the_token_is_the_owner() {
    let account = Account::default();
    let host = SessionHost::with_limits(
        NetRef::new(account.clone()),
        SessionLimits::default().max_sessions(8),
    );
    let addr = start(host, false).await;
    let alice = session(addr, "anyone").await;
    alice.call("my_secret", ()).await.unwrap();
    let token = alice.id().unwrap();

    let (_stranger, host) = host_as(addr, "anyone").await;
    let unknown = unknown_answer(&host).await;
    // The id half alone, or the id with a guessed secret: unknown.
    let id_only = &token[..32];
    for forged in [
        id_only.to_string(),
        format!("{id_only}{}", "0".repeat(32)),
        format!(
            "{id_only}{}",
            &token[32..].chars().rev().collect::<String>()
        ),
    ] {
        let err = host
            .call_method("call", (forged, 0, "my_secret"))
            .await
            .unwrap_err();
        same_answer(&err, &unknown);
    }
    // A flood of anonymous sessions is refused at the bound; nobody's
    // session is evicted to make room.
    let mut refused = None;
    for _ in 0..8 {
        if let Err(err) = host.call_method("open", ()).await {
            refused = Some(err);
            break;
        }
    }
    let refused = refused.expect("the bound of 8 sessions held");
    assert_eq!(refused.kind(), ErrorKind::LimitExceeded, "{refused:#}");
    let back = host
        .call_method("call", (token, 0, "my_secret"))
        .await
        .unwrap();
    assert_eq!(back, Value::from("the vault code is 1234"));
    assert_eq!(account.secrets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn objects_a_session_returned_are_its_owners_alone_and_die_with_it() {
    let account = Account::default();
    let addr = start(SessionHost::new(NetRef::new(account.clone())), true).await;
    let alice = session(addr, "alice").await;
    let handle = alice.call("open_handle", ()).await.unwrap();
    let Value::Ref(handle) = handle else {
        panic!("not an object: {handle:?}")
    };
    assert_eq!(
        handle.call_method("contents", ()).await.unwrap(),
        "alice's diary".into()
    );
    let token = alice.id().unwrap();
    drop(handle);
    drop(alice);

    // Her connection is gone; the session still holds the object, but
    // only for her.
    let (_bob, host) = host_as(addr, "bob").await;
    let unknown = unknown_answer(&host).await;
    let stolen = host
        .call_method("call", (token.clone(), 0, "open_handle"))
        .await
        .unwrap_err();
    same_answer(&stolen, &unknown);
    assert_eq!(account.alive.load(Ordering::SeqCst), 1);

    // Ending the session frees it.
    let (_again, mine) = host_as(addr, "alice").await;
    mine.call_method("forget", (token,)).await.unwrap();
    wait_until(|| account.alive.load(Ordering::SeqCst) == 0).await;
}

#[tokio::test]
async fn idle_sessions_expire_with_their_objects() {
    let account = Account::default();
    let limits = SessionLimits::default().idle_timeout(Duration::from_millis(50));
    let host = SessionHost::with_limits(NetRef::new(account.clone()), limits);
    let count = host.clone();
    let addr = start(host, true).await;
    let alice = session(addr, "alice").await;
    let handle = alice.call("open_handle", ()).await.unwrap();
    drop(handle);
    let token = alice.id().unwrap();
    drop(alice);
    // Nobody touches the host: its own sweep forgets the session.
    wait_until(|| account.alive.load(Ordering::SeqCst) == 0).await;
    assert_eq!(count.session_count(), 0);
    let (_again, mine) = host_as(addr, "alice").await;
    let err = mine
        .call_method("call", (token, 0, "open_handle"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err:#}");
    assert_eq!(account.alive.load(Ordering::SeqCst), 0, "not run again");
}

#[tokio::test]
async fn remembered_bytes_are_bounded_per_owner_and_a_result_too_large_is_not_kept() {
    let account = Account::default();
    let limits = SessionLimits::default()
        .bytes_per_owner(3 << 20)
        .max_bytes(5 << 20);
    let host = SessionHost::with_limits(NetRef::new(account.clone()), limits);
    let count = host.clone();
    let addr = start(host, true).await;

    // Four sessions of alice's, each remembering 1 MiB results.
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let alice = session(addr, "alice").await;
        for _ in 0..4 {
            alice.call("blob", (1 << 20,)).await.unwrap();
        }
        sessions.push(alice);
    }
    assert!(
        count.remembered_bytes() <= 3 << 20,
        "alice's quota: {} bytes kept",
        count.remembered_bytes()
    );
    // Bob's own quota is untouched by alice's use.
    let bob = session(addr, "bob").await;
    bob.call("blob", (1 << 20,)).await.unwrap();
    assert!(count.remembered_bytes() <= 5 << 20);

    // A result larger than a quota reaches its caller but is not kept: a
    // retry of its call id is OutcomeUnknown, and says why.
    let alice = session(addr, "alice").await;
    let big = alice.call("blob", (4 << 20,)).await.unwrap();
    assert_eq!(big, Value::Bytes(vec![1; 4 << 20].into()));
    let (_raw, host) = host_as(addr, "alice").await;
    let err = host
        .call_method("call", (alice.id().unwrap(), 0, "blob", 4 << 20))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err:#}");
    assert!(err.message().contains("too large to remember"), "{err:#}");

    // Everything goes when the sessions end.
    for s in sessions {
        s.end().await.unwrap();
    }
    bob.end().await.unwrap();
    alice.end().await.unwrap();
    assert_eq!(count.remembered_bytes(), 0);
    assert_eq!(count.session_count(), 0);
}
