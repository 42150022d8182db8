//! TLS: server authentication, client certificates as identities, wrong
//! authorities rejected, stalled TLS handshakes bounded. Certificates are
//! made fresh by each test (rcgen), so nothing committed can expire.

use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tether::transport::tls::{TlsClient, TlsServer};
use tether::{AuthMethod, CallContext, Config, Connection, ErrorKind, Server, Token, Tokens};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const BOUND: Duration = Duration::from_secs(10);

/// A certificate authority that signs certificates for the tests.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate chain and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    fn issue(&self, common_name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Pem {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self) -> Pem {
        self.issue(
            "localhost",
            &["localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self, name: &str) -> Pem {
        self.issue(name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// Says who the caller is.
#[derive(Clone)]
struct Who;

#[tether::expose]
impl Who {
    /// The caller's identity and how it was proved, as the server sees it.
    #[method]
    fn whoami(&self, cx: &CallContext) -> Option<(String, String)> {
        cx.peer_identity()
            .map(|who| (who.name().to_string(), format!("{:?}", who.method())))
    }
}

async fn start(builder: tether::ServerBuilder) -> std::net::SocketAddr {
    let server = builder.bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(Who));
    addr
}

async fn whoami(conn: &Connection) -> Option<(String, String)> {
    let root = conn.root().await.unwrap();
    tether::from_value(root.call_method("whoami", ()).await.unwrap()).unwrap()
}

async fn dial(tls: TlsClient, addr: std::net::SocketAddr) -> tether::Result<Connection> {
    Connection::builder().tls(tls).connect(addr).await
}

fn tls_server(ca: &Ca) -> TlsServer {
    let pem = ca.server();
    TlsServer::from_pem(pem.cert.as_bytes(), pem.key.as_bytes()).unwrap()
}

fn mutual_server(ca: &Ca) -> TlsServer {
    let pem = ca.server();
    TlsServer::mutual_from_pem(pem.cert.as_bytes(), pem.key.as_bytes(), ca.pem().as_bytes())
        .unwrap()
}

fn client(ca: &Ca) -> TlsClient {
    TlsClient::from_pem(ca.pem().as_bytes(), "localhost").unwrap()
}

fn client_with_cert(trusted: &Ca, issuer: &Ca, name: &str) -> TlsClient {
    let pem = issuer.client(name);
    TlsClient::mutual_from_pem(
        trusted.pem().as_bytes(),
        "localhost",
        pem.cert.as_bytes(),
        pem.key.as_bytes(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_client_checks_the_servers_certificate() {
    let ca = Ca::new("Test CA");
    let addr = start(Server::builder().tls(tls_server(&ca))).await;
    let conn = dial(client(&ca), addr).await.unwrap();
    // The server is identified by its certificate; the client by nothing.
    let server = conn.peer_identity().unwrap();
    assert_eq!(
        (server.name(), server.method()),
        ("localhost", AuthMethod::Certificate)
    );
    assert_eq!(whoami(&conn).await, None);
}

#[tokio::test]
async fn a_server_from_another_authority_is_rejected_and_serves_on() {
    let ca = Ca::new("Test CA");
    let addr = start(Server::builder().tls(tls_server(&ca))).await;
    let err = dial(client(&Ca::new("Other CA")), addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    // A certificate for another name is rejected too.
    let wrong_name = TlsClient::from_pem(ca.pem().as_bytes(), "example.com").unwrap();
    let err = dial(wrong_name, addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    let conn = dial(client(&ca), addr).await.unwrap();
    conn.ping().await.unwrap();
}

#[tokio::test]
async fn a_client_certificate_names_the_client() {
    let ca = Ca::new("Test CA");
    let addr = start(Server::builder().tls(mutual_server(&ca))).await;
    let conn = dial(client_with_cert(&ca, &ca, "alice"), addr)
        .await
        .unwrap();
    assert_eq!(
        whoami(&conn).await,
        Some(("alice".to_string(), "Certificate".to_string()))
    );
}

#[tokio::test]
async fn a_missing_or_foreign_client_certificate_is_denied() {
    let ca = Ca::new("Test CA");
    let addr = start(Server::builder().tls(mutual_server(&ca))).await;
    let attempts = [
        client(&ca),
        client_with_cert(&ca, &Ca::new("Rogue CA"), "mallory"),
    ];
    for tls in attempts {
        let err = dial(tls, addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
    }
    let conn = dial(client_with_cert(&ca, &ca, "bob"), addr).await.unwrap();
    assert_eq!(whoami(&conn).await.unwrap().0, "bob");
}

#[tokio::test]
async fn optional_client_certificates_identify_only_those_who_present_one() {
    let ca = Ca::new("Test CA");
    let pem = ca.server();
    let tls = TlsServer::optional_mutual_from_pem(
        pem.cert.as_bytes(),
        pem.key.as_bytes(),
        ca.pem().as_bytes(),
    )
    .unwrap();
    let addr = start(Server::builder().tls(tls)).await;
    let anonymous = dial(client(&ca), addr).await.unwrap();
    assert_eq!(whoami(&anonymous).await, None);
    let dave = dial(client_with_cert(&ca, &ca, "dave"), addr)
        .await
        .unwrap();
    assert_eq!(whoami(&dave).await.unwrap().0, "dave");
    // A certificate that is presented must still verify.
    let rogue = client_with_cert(&ca, &Ca::new("Rogue CA"), "mallory");
    let err = dial(rogue, addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");
}

#[tokio::test]
async fn a_token_over_tls_names_the_client_instead_of_its_certificate() {
    let ca = Ca::new("Test CA");
    let tokens = Tokens::new().with("ops", "ops-secret-0123456789").unwrap();
    let addr = start(Server::builder().tls(mutual_server(&ca)).tokens(tokens)).await;
    let conn = Connection::builder()
        .tls(client_with_cert(&ca, &ca, "alice"))
        .token(Token::new("ops-secret-0123456789").unwrap())
        .connect(addr)
        .await
        .unwrap();
    assert_eq!(
        whoami(&conn).await,
        Some(("ops".to_string(), "Token".to_string()))
    );
}

#[tokio::test]
async fn plain_tcp_to_a_tls_server_fails_and_a_stalled_tls_handshake_is_cut_off() {
    let ca = Ca::new("Test CA");
    let config = Config::default().handshake_timeout(Duration::from_millis(200));
    let addr = start(Server::builder().tls(tls_server(&ca)).config(config)).await;
    let err = tokio::time::timeout(BOUND, tether::connect(addr))
        .await
        .expect("bounded")
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Protocol | ErrorKind::Closed | ErrorKind::Transport
        ),
        "{err}"
    );
    // Says nothing: the server gives up after its handshake timeout.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(BOUND, silent.read_to_end(&mut rest))
        .await
        .expect("the server closed the connection")
        .unwrap();
    assert_eq!(rest, b"");
    let conn = dial(client(&ca), addr).await.unwrap();
    conn.ping().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn tls_works_over_a_unix_socket() {
    let ca = Ca::new("Test CA");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tls.sock");
    let server = Server::builder()
        .tls(mutual_server(&ca))
        .bind_unix(&path)
        .await
        .unwrap();
    tokio::spawn(server.serve(Who));
    let conn = Connection::builder()
        .tls(client_with_cert(&ca, &ca, "carol"))
        .connect_unix(&path)
        .await
        .unwrap();
    assert_eq!(whoami(&conn).await.unwrap().0, "carol");
}

#[test]
fn bad_pem_is_a_clear_error() {
    let err = TlsServer::from_pem(b"not a certificate", b"not a key").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
    let err = TlsClient::from_pem(b"", "localhost").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
    let ca = Ca::new("Test CA");
    let other = ca.server();
    let mismatched = ca.server();
    let err = TlsServer::from_pem(other.cert.as_bytes(), mismatched.key.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
}
