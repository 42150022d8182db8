//! A server that knows who is calling: TLS with client certificates, a
//! token challenge, and a different view of the service per identity.
//!
//! In one process: makes a throwaway certificate authority, a server
//! certificate and two client certificates (rcgen), starts a TLS server on
//! a loopback port that requires client certificates, and serves
//!
//! - `alice` (certificate): the notes with `add` and `clear`;
//! - `bob` (certificate): a read-only view, `list` and `whoami`;
//! - `ops` (token, over TLS with bob's certificate): full access;
//!
//! then connects as each and shows what they can do, and what a client
//! without a certificate, or with a wrong token, gets.
//!
//! `cargo run --example secure_server`

use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tether::transport::tls::{TlsClient, TlsServer};
use tether::{CallContext, Connection, Grant, NetRef, PeerIdentity, Server, Token, Tokens};

/// Shared notes.
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

    /// Add a note, signed with the caller's name.
    #[method]
    fn add(&self, text: String, cx: &CallContext) {
        let who = cx.peer_identity().map_or("anonymous", PeerIdentity::name);
        self.items.lock().unwrap().push(format!("{text} ({who})"));
    }

    /// Remove every note.
    #[method]
    fn clear(&self) {
        self.items.lock().unwrap().clear();
    }

    /// Who the server thinks you are.
    #[method]
    fn whoami(&self, cx: &CallContext) -> String {
        cx.peer_identity()
            .map_or("nobody".to_string(), |who| who.to_string())
    }
}

/// What each identity gets; anyone else is denied in the handshake.
fn grant(notes: &Notes, who: Option<&PeerIdentity>) -> Option<Grant> {
    match who?.name() {
        "alice" | "ops" => Some(Grant::new(notes.clone())),
        "bob" => {
            let view = tether::restrict(&NetRef::new(notes.clone()), &["list", "whoami"]);
            view.ok().map(Grant::from_ref)
        }
        _ => None,
    }
}

/// PEM certificate and key.
struct Pem {
    cert: String,
    key: String,
}

/// A throwaway authority, the server's certificate and the clients'.
struct Pki {
    ca: String,
    server: Pem,
    alice: Pem,
    bob: Pem,
}

fn make_pki() -> Result<Pki, rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "secure_server example CA");
    let ca_key = KeyPair::generate()?;
    let ca = ca.self_signed(&ca_key)?;
    let issue = |name: &str, sans: Vec<String>, usage| -> Result<Pem, rcgen::Error> {
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    };
    Ok(Pki {
        server: issue(
            "localhost",
            vec!["localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?,
        alice: issue("alice", vec![], ExtendedKeyUsagePurpose::ClientAuth)?,
        bob: issue("bob", vec![], ExtendedKeyUsagePurpose::ClientAuth)?,
        ca: ca.pem(),
    })
}

fn client_tls(pki: &Pki, pem: &Pem) -> tether::Result<TlsClient> {
    TlsClient::mutual_from_pem(
        pki.ca.as_bytes(),
        "localhost",
        pem.cert.as_bytes(),
        pem.key.as_bytes(),
    )
}

async fn show(label: &str, conn: &Connection) -> tether::Result<()> {
    let root = conn.root().await?;
    println!(
        "{label}: whoami -> {}",
        root.call_method("whoami", ()).await?
    );
    println!("{label}: dir -> {:?}", root.dir().await?);
    match root
        .call_method("add", (format!("hello from {label}"),))
        .await
    {
        Ok(_) => println!("{label}: add -> ok"),
        Err(err) => println!("{label}: add -> {:?}: {err}", err.kind()),
    }
    println!("{label}: list -> {}", root.call_method("list", ()).await?);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pki = make_pki()?;
    let tls = TlsServer::mutual_from_pem(
        pki.server.cert.as_bytes(),
        pki.server.key.as_bytes(),
        pki.ca.as_bytes(),
    )?;
    // In real use the secret comes from a file or the environment and is
    // long and random.
    let ops_secret = "ops-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let tokens = Tokens::new().with("ops", ops_secret)?;
    let server = Server::builder()
        .tls(tls)
        .tokens(tokens)
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr()?;
    println!("serving Notes over TLS with client certificates and tokens on {addr}");
    let notes = Notes::default();
    tokio::spawn(server.serve_per_identity(move |who| grant(&notes, who), std::future::pending()));

    // Certificates identify alice and bob; the server also asks everyone
    // for a token, so a client holding none is denied. Here alice and bob
    // share the ops token for brevity, and the token's name is what the
    // server sees; a server without tokens would see "alice" and "bob".
    let ops = Token::new(ops_secret)?;
    let alice = Connection::builder()
        .tls(client_tls(&pki, &pki.alice)?)
        .token(ops.clone())
        .connect(addr)
        .await?;
    show("ops (alice's certificate)", &alice).await?;

    // Without a token: denied, and nothing of the service is seen.
    let bob_builder = Connection::builder().tls(client_tls(&pki, &pki.bob)?);
    match bob_builder.connect(addr).await {
        Ok(_) => println!("bob without a token: connected (unexpected)"),
        Err(err) => println!("bob without a token: {:?}: {err}", err.kind()),
    }
    // A wrong token: denied too.
    let wrong = Connection::builder()
        .tls(client_tls(&pki, &pki.bob)?)
        .token(Token::new("a guess")?)
        .connect(addr)
        .await;
    if let Err(err) = wrong {
        println!("bob with a wrong token: {:?}: {err}", err.kind());
    }
    // No client certificate at all: the TLS handshake fails.
    let anonymous = Connection::builder()
        .tls(TlsClient::from_pem(pki.ca.as_bytes(), "localhost")?)
        .token(ops)
        .connect(addr)
        .await;
    if let Err(err) = anonymous {
        println!("no certificate: {:?}: {err}", err.kind());
    }

    // Certificates alone: a second server without tokens, same grants.
    let tls = TlsServer::mutual_from_pem(
        pki.server.cert.as_bytes(),
        pki.server.key.as_bytes(),
        pki.ca.as_bytes(),
    )?;
    let server = Server::builder().tls(tls).bind("127.0.0.1:0").await?;
    let addr = server.local_addr()?;
    println!("serving Notes over TLS with client certificates only on {addr}");
    let notes = Notes::default();
    tokio::spawn(server.serve_per_identity(move |who| grant(&notes, who), std::future::pending()));
    for (name, pem) in [("alice", &pki.alice), ("bob", &pki.bob)] {
        let conn = Connection::builder()
            .tls(client_tls(&pki, pem)?)
            .connect(addr)
            .await?;
        show(name, &conn).await?;
    }
    Ok(())
}
