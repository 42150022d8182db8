//! Token authentication in the handshake: right, wrong and missing tokens
//! over TCP and Unix sockets, per-identity roots and policies, and
//! handshakes that stall. The server's log line for a denied client is in
//! `auth_log.rs`, a test binary of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::{
    Builder, CallContext, Config, Connection, ErrorKind, Grant, NetRef, Policy, Server, Token,
    Tokens,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

/// Generous bound on anything a test waits for; never reached when the
/// code works.
const BOUND: Duration = Duration::from_secs(10);

/// Notes anyone may list, and only some may add to.
#[derive(Clone, Default)]
struct Notes {
    items: Arc<Mutex<Vec<String>>>,
}

#[tether::expose]
impl Notes {
    /// All notes.
    #[method]
    fn list(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    /// Add a note.
    #[method]
    fn add(&self, text: String) {
        self.items.lock().unwrap().push(text);
    }

    /// The caller's identity, as the server sees it.
    #[method]
    fn whoami(&self, cx: &CallContext) -> Option<String> {
        cx.peer_identity().map(|who| who.name().to_string())
    }
}

fn tokens() -> Tokens {
    Tokens::new()
        .with("alice", "alice-secret-0123456789abcdef")
        .unwrap()
        .with("bob", "bob-secret-0123456789abcdef")
        .unwrap()
        .with("guest", "guest-secret-0123456789abcdef")
        .unwrap()
}

fn token(secret: &str) -> Builder {
    Connection::builder().token(Token::new(secret).unwrap())
}

/// A server on loopback requiring `tokens()`, serving `notes` to everyone.
async fn start(notes: Notes, config: Config) -> std::net::SocketAddr {
    let server = Server::builder()
        .tokens(tokens())
        .config(config)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(notes));
    addr
}

async fn whoami(conn: &Connection) -> Option<String> {
    let root = conn.root().await.unwrap();
    tether::from_value(root.call_method("whoami", ()).await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_right_token_gets_in_and_names_the_client() {
    let addr = start(Notes::default(), Config::default()).await;
    let conn = token("bob-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap();
    assert_eq!(whoami(&conn).await.as_deref(), Some("bob"));
    assert_eq!(conn.peer_service(), "Notes");
    // The client does not learn token names; it has no TLS identity.
    assert!(conn.peer_identity().is_none());
}

#[tokio::test]
async fn a_wrong_token_is_denied_and_the_server_goes_on() {
    let notes = Notes::default();
    let addr = start(notes.clone(), Config::default()).await;
    let alice = token("alice-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap();
    let alice_root = alice.root().await.unwrap();

    let err = token("alice-secret-0123456789abcdeX")
        .connect(addr)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(!err.message().contains("Notes"), "{err}");

    // The connection that was already there, and new ones, still work.
    alice_root
        .call_method("add", ("still here",))
        .await
        .unwrap();
    let again = token("alice-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap();
    let list: Vec<String> = tether::from_value(
        again
            .root()
            .await
            .unwrap()
            .call_method("list", ())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(list, ["still here"]);
}

#[tokio::test]
async fn no_token_when_one_is_required_is_denied_with_a_clear_error() {
    let addr = start(Notes::default(), Config::default()).await;
    let err = tether::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().contains("requires a token"), "{err}");
}

#[tokio::test]
async fn a_client_with_a_token_refuses_a_server_that_cannot_prove_it() {
    // An open server (no tokens) could be anyone: the client's token is
    // never sent, and the client stops.
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(Notes::default()));
    let err = token("alice-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn tokens_work_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.sock");
    let server = Server::builder()
        .tokens(tokens())
        .bind_unix(&path)
        .await
        .unwrap();
    tokio::spawn(server.serve(Notes::default()));
    let conn = token("alice-secret-0123456789abcdef")
        .connect_unix(&path)
        .await
        .unwrap();
    assert_eq!(whoami(&conn).await.as_deref(), Some("alice"));
    let err = token("wrong").connect_unix(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    let err = Builder::default().connect_unix(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
}

/// alice gets everything and may set attributes; bob a read-only view;
/// guest (a valid token) and unauthenticated clients nothing.
async fn start_per_identity(notes: Notes) -> std::net::SocketAddr {
    let server = Server::builder()
        .tokens(tokens())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let grant = move |who: Option<&tether::PeerIdentity>| match who?.name() {
        "alice" => Some(Grant::new(notes.clone()).policy(Policy::default().allow_setattr(true))),
        "bob" => {
            let view = tether::restrict(&NetRef::new(notes.clone()), &["list", "whoami"]);
            Some(Grant::from_ref(view.unwrap()))
        }
        _ => None,
    };
    tokio::spawn(server.serve_per_identity(grant, std::future::pending()));
    addr
}

#[tokio::test]
async fn each_identity_gets_its_own_root_and_policy() {
    let notes = Notes::default();
    let addr = start_per_identity(notes.clone()).await;

    let alice = token("alice-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap();
    let alice_root = alice.root().await.unwrap();
    alice_root
        .call_method("add", ("from alice",))
        .await
        .unwrap();
    assert!(alice_root.dir().await.unwrap().contains(&"add".to_string()));

    let bob = token("bob-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap();
    let bob_root = bob.root().await.unwrap();
    let err = bob_root
        .call_method("add", ("from bob",))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    // bob cannot even see that `add` exists.
    assert_eq!(bob_root.dir().await.unwrap(), ["list", "whoami"]);
    let names: Vec<String> = bob_root
        .inspect()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name.to_string())
        .collect();
    assert!(!names.contains(&"add".to_string()), "{names:?}");
    assert_eq!(whoami(&bob).await.as_deref(), Some("bob"));
    let list: Vec<String> =
        tether::from_value(bob_root.call_method("list", ()).await.unwrap()).unwrap();
    assert_eq!(list, ["from alice"]);
    assert_eq!(*notes.items.lock().unwrap(), ["from alice"]);

    // A valid token the grant does not know, and no token at all: denied.
    let err = token("guest-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    assert!(err.message().contains("may not connect"), "{err}");
    let err = tether::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
}

/// A hand-written version-2 hello (zero nonce).
fn raw_hello() -> Vec<u8> {
    let mut body = tether::protocol::MAGIC.to_vec();
    body.extend_from_slice(&tether::protocol::PROTOCOL_VERSION.to_be_bytes());
    body.extend_from_slice(&3u16.to_be_bytes());
    body.extend_from_slice(b"Raw");
    body.extend_from_slice(&(64u32 << 20).to_be_bytes());
    body.extend_from_slice(&[0; 32]);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// One handshake message's body (after magic and version).
async fn read_message(raw: &mut TcpStream) -> Vec<u8> {
    let len = raw.read_u32().await.unwrap() as usize;
    let mut body = vec![0; len];
    raw.read_exact(&mut body).await.unwrap();
    assert_eq!(&body[..6], tether::protocol::MAGIC);
    body.split_off(8)
}

/// Everything the peer still sends until it closes, within `bound`.
async fn rest_within(raw: &mut TcpStream, bound: Duration) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(bound, raw.read_to_end(&mut rest))
        .await
        .expect("the server closed the connection")
        .unwrap();
    rest
}

/// Everything the peer still sends until it closes.
async fn rest(raw: &mut TcpStream) -> Vec<u8> {
    rest_within(raw, BOUND).await
}

#[tokio::test]
async fn a_denied_client_is_told_so_and_gets_nothing_else() {
    let addr = start(Notes::default(), Config::default()).await;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&raw_hello()).await.unwrap();
    let challenge = read_message(&mut raw).await;
    assert_eq!(
        (challenge[0], challenge.len()),
        (2, 33),
        "a challenge with a nonce"
    );
    // A proof of the right length that matches nothing.
    let mut proof = tether::protocol::MAGIC.to_vec();
    proof.extend_from_slice(&tether::protocol::PROTOCOL_VERSION.to_be_bytes());
    proof.push(32);
    proof.extend_from_slice(&[7; 32]);
    raw.write_all(&(proof.len() as u32).to_be_bytes())
        .await
        .unwrap();
    raw.write_all(&proof).await.unwrap();
    let answer = read_message(&mut raw).await;
    assert_eq!(answer[0], 3, "denied");
    let text_len = u16::from_be_bytes([answer[1], answer[2]]) as usize;
    assert_eq!(&answer[3..3 + text_len], b"authentication failed");
    assert!(!answer.windows(5).any(|w| w == b"Notes"), "{answer:?}");
    assert_eq!(rest(&mut raw).await, b"", "nothing after the denial");
}

#[tokio::test]
async fn a_client_stalling_in_the_handshake_is_cut_off() {
    // Cut off after 1 s; waited for at most 5 s, half the default of 10 s,
    // so a server that ignored the setting fails here.
    let config = Config::default().handshake_timeout(Duration::from_secs(1));
    let cut_off = Duration::from_secs(5);
    assert!(cut_off < Config::default().handshake_timeout);
    let addr = start(Notes::default(), config).await;
    // One says nothing at all; one stops after its hello, before its proof.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut halfway = TcpStream::connect(addr).await.unwrap();
    halfway.write_all(&raw_hello()).await.unwrap();
    assert_eq!(read_message(&mut halfway).await[0], 2, "challenged");
    assert_eq!(rest_within(&mut silent, cut_off).await, b"");
    assert_eq!(rest_within(&mut halfway, cut_off).await, b"");
    // Meanwhile the server serves others.
    let conn = token("bob-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap();
    assert_eq!(whoami(&conn).await.as_deref(), Some("bob"));
}

/// In virtual time, over a pipe (no real I/O for the clock to skip past):
/// the client gives up exactly when its setting says, not at the 10 s
/// default.
#[tokio::test(start_paused = true)]
async fn a_client_stalling_server_is_cut_off_by_the_clients_timeout() {
    // A "server" that takes the hello and never answers.
    let (client_end, _server_end) = tokio::io::duplex(64 * 1024);
    let config = Config::default().handshake_timeout(Duration::from_millis(200));
    let started = tokio::time::Instant::now();
    let err = tokio::time::timeout(
        BOUND,
        token("alice-secret-0123456789abcdef")
            .config(config)
            .connect_io(client_end, None),
    )
    .await
    .expect("bounded by the handshake timeout")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(200));
}

#[tokio::test]
async fn a_python_rpyc_client_cannot_skip_the_token_and_the_server_goes_on() {
    let addr = start(Notes::default(), Config::default()).await;
    let port = addr.port().to_string();
    let output = tokio::task::spawn_blocking(move || {
        support::python::run_script("rpyc_refused.py", &[&port])
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "refused");
    // Tether clients with a token are still served.
    let conn = token("alice-secret-0123456789abcdef")
        .connect(addr)
        .await
        .unwrap();
    assert_eq!(whoami(&conn).await.as_deref(), Some("alice"));
}
