//! TLS over any byte stream, with rustls (its `ring` crypto provider).
//!
//! A server gets a [`TlsServer`] from its certificate chain and key
//! ([`ServerBuilder::tls`](crate::ServerBuilder::tls)); a client a
//! [`TlsClient`] from the certificate authority it trusts and the name the
//! server's certificate must carry ([`Builder::tls`](crate::Builder::tls)).
//! With [`TlsServer::mutual_from_pem`] the server also requires a client
//! certificate signed by the given authority, and the certificate's
//! subject becomes the client's [`PeerIdentity`] (its common name, or the
//! whole subject without one); [`TlsServer::optional_mutual_from_pem`]
//! asks for one but lets clients in without it.
//!
//! The TLS handshake runs before tether's own, each bounded by
//! [`Config::handshake_timeout`](crate::Config::handshake_timeout). A
//! certificate that does not verify (unknown authority, wrong name,
//! expired, missing when required) fails the connection with
//! [`ErrorKind::Denied`] on the side that rejected it, and, when the other
//! side learns it from a TLS alert, on that side too.
//!
//! For anything the PEM constructors do not cover (other cipher suites, a
//! custom verifier, certificate revocation lists), build a rustls config
//! yourself and use [`TlsServer::from_config`] / [`TlsClient::from_config`];
//! [`rustls`] is re-exported for that.
//!
//! ```no_run
//! # #[derive(Clone)] struct MyService;
//! # impl tether::Object for MyService { fn type_name(&self) -> &str { "MyService" } }
//! # async fn demo(cert: Vec<u8>, key: Vec<u8>, ca: Vec<u8>) -> tether::Result<()> {
//! use tether::transport::tls::{TlsClient, TlsServer};
//! // cert, key and ca: PEM files' contents
//! let tls = TlsServer::from_pem(&cert, &key)?;
//! let server = tether::Server::builder().tls(tls).bind("127.0.0.1:0").await?;
//! let addr = server.local_addr()?;
//! tokio::spawn(server.serve(MyService));
//!
//! let tls = TlsClient::from_pem(&ca, "localhost")?;
//! let conn = tether::Connection::builder().tls(tls).connect(addr).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
pub use tokio_rustls::rustls;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::auth::{AuthMethod, PeerIdentity};
use crate::error::raise;
use crate::{Error, ErrorKind, Result};

/// The server side of TLS: its certificate, and optionally the authority
/// client certificates must come from.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: TlsAcceptor,
}

/// The client side of TLS: the authorities it trusts, the name the server's
/// certificate must carry, and optionally its own certificate.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(what: &str, err: impl fmt::Display) -> Error {
    raise::bad_args(format!("{what}: {err}"))
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error(&format!("cannot read the {what}"), e))?;
    if certs.is_empty() {
        return Err(raise::bad_args(format!("no PEM certificate in the {what}")));
    }
    Ok(certs)
}

fn key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| config_error("cannot read the private key", e))
}

fn roots(pem: &[u8]) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in certs(pem, "certificate authority")? {
        roots
            .add(cert)
            .map_err(|e| config_error("bad certificate authority", e))?;
    }
    Ok(Arc::new(roots))
}

impl TlsServer {
    /// Serve with this certificate chain (PEM, the server's own certificate
    /// first) and private key (PEM: PKCS#8, PKCS#1 or SEC1). Clients are not
    /// asked for certificates. Bad PEM or a key that does not match is an
    /// [`ErrorKind::BadArguments`] error.
    pub fn from_pem(cert_chain: &[u8], key_pem: &[u8]) -> Result<TlsServer> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("TLS", e))?
            .with_no_client_auth()
            .with_single_cert(certs(cert_chain, "certificate chain")?, key(key_pem)?)
            .map_err(|e| config_error("bad server certificate or key", e))?;
        Ok(TlsServer::from_config(Arc::new(config)))
    }

    /// Like [`from_pem`](TlsServer::from_pem), and require every client to
    /// present a certificate signed by an authority in `client_ca` (PEM);
    /// its subject becomes the connection's
    /// [`PeerIdentity`].
    pub fn mutual_from_pem(
        cert_chain: &[u8],
        key_pem: &[u8],
        client_ca: &[u8],
    ) -> Result<TlsServer> {
        TlsServer::with_client_certs(cert_chain, key_pem, client_ca, true)
    }

    /// Like [`mutual_from_pem`](TlsServer::mutual_from_pem), but a client
    /// may also come without a certificate: it is then not identified by
    /// TLS (a token may still identify it, and
    /// [`Server::serve_per_identity`](crate::Server::serve_per_identity)
    /// decides what an unidentified client gets). A certificate it does
    /// present must still verify.
    pub fn optional_mutual_from_pem(
        cert_chain: &[u8],
        key_pem: &[u8],
        client_ca: &[u8],
    ) -> Result<TlsServer> {
        TlsServer::with_client_certs(cert_chain, key_pem, client_ca, false)
    }

    fn with_client_certs(
        cert_chain: &[u8],
        key_pem: &[u8],
        client_ca: &[u8],
        required: bool,
    ) -> Result<TlsServer> {
        let mut verifier =
            WebPkiClientVerifier::builder_with_provider(roots(client_ca)?, provider());
        if !required {
            verifier = verifier.allow_unauthenticated();
        }
        let verifier = verifier
            .build()
            .map_err(|e| config_error("bad client certificate authority", e))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("TLS", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs(cert_chain, "certificate chain")?, key(key_pem)?)
            .map_err(|e| config_error("bad server certificate or key", e))?;
        Ok(TlsServer::from_config(Arc::new(config)))
    }

    /// Use a rustls server configuration as it is.
    pub fn from_config(config: Arc<ServerConfig>) -> TlsServer {
        TlsServer {
            acceptor: TlsAcceptor::from(config),
        }
    }

    /// Run the server side of the TLS handshake over `io`, within
    /// `timeout`; returns the stream and the client certificate's identity.
    pub(crate) async fn accept<IO>(
        &self,
        io: IO,
        timeout: Duration,
    ) -> Result<(tokio_rustls::server::TlsStream<IO>, Option<PeerIdentity>)>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = tokio::time::timeout(timeout, self.acceptor.accept(io))
            .await
            .map_err(|_| timed_out(timeout))?
            .map_err(|e| io_error(e, "TLS handshake with the client failed"))?;
        let identity = stream.get_ref().1.peer_certificates().and_then(identity_of);
        Ok((stream, identity))
    }
}

impl TlsClient {
    /// Trust the authorities in `ca` (PEM) and expect the server's
    /// certificate to be issued for `server_name` (a DNS name or an IP
    /// address).
    pub fn from_pem(ca: &[u8], server_name: &str) -> Result<TlsClient> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("TLS", e))?
            .with_root_certificates(roots(ca)?)
            .with_no_client_auth();
        TlsClient::from_config(Arc::new(config), server_name)
    }

    /// Like [`from_pem`](TlsClient::from_pem), presenting this client
    /// certificate chain and key (PEM) to servers that ask for one.
    pub fn mutual_from_pem(
        ca: &[u8],
        server_name: &str,
        cert_chain: &[u8],
        key_pem: &[u8],
    ) -> Result<TlsClient> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("TLS", e))?
            .with_root_certificates(roots(ca)?)
            .with_client_auth_cert(certs(cert_chain, "certificate chain")?, key(key_pem)?)
            .map_err(|e| config_error("bad client certificate or key", e))?;
        TlsClient::from_config(Arc::new(config), server_name)
    }

    /// Use a rustls client configuration as it is.
    pub fn from_config(config: Arc<ClientConfig>, server_name: &str) -> Result<TlsClient> {
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| config_error(&format!("bad server name {server_name:?}"), e))?;
        Ok(TlsClient {
            connector: TlsConnector::from(config),
            server_name,
        })
    }

    /// Run the client side of the TLS handshake over `io`, within
    /// `timeout`; returns the stream and the server certificate's identity.
    pub(crate) async fn connect<IO>(
        &self,
        io: IO,
        timeout: Duration,
    ) -> Result<(tokio_rustls::client::TlsStream<IO>, Option<PeerIdentity>)>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let connecting = self.connector.connect(self.server_name.clone(), io);
        let stream = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| timed_out(timeout))?
            .map_err(|e| io_error(e, "TLS handshake with the server failed"))?;
        let identity = stream.get_ref().1.peer_certificates().and_then(identity_of);
        Ok((stream, identity))
    }
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer").finish_non_exhaustive()
    }
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn timed_out(timeout: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("no TLS handshake within {timeout:?}"),
    )
}

/// The identity a verified certificate chain names: its first (end-entity)
/// certificate's subject common name, or the whole subject without one.
fn identity_of(chain: &[CertificateDer<'_>]) -> Option<PeerIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(chain.first()?).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| subject.to_string());
    Some(PeerIdentity::new(name, AuthMethod::Certificate))
}

/// An I/O error of a (possibly TLS) stream as a tether error: a rejected
/// certificate, ours or the peer's, is [`ErrorKind::Denied`]; anything else
/// [`ErrorKind::Transport`].
pub(crate) fn io_error(err: io::Error, message: impl Into<String>) -> Error {
    let message = message.into();
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) if is_credential_error(tls) => {
            Error::with_source(ErrorKind::Denied, format!("{message}: {tls}"), err)
        }
        Some(tls) => Error::with_source(ErrorKind::Transport, format!("{message}: {tls}"), err),
        // A stream that knows why it failed (the broker tunnel's lost
        // message, say) says so.
        None if err.kind() == io::ErrorKind::InvalidData => {
            Error::with_source(ErrorKind::Transport, format!("{message}: {err}"), err)
        }
        None => Error::with_source(ErrorKind::Transport, message, err),
    }
}

fn is_credential_error(err: &rustls::Error) -> bool {
    matches!(
        err,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
                    | AlertDescription::UnknownCA
                    | AlertDescription::CertificateRequired
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::CertificateExpired
                    | AlertDescription::CertificateRevoked
                    | AlertDescription::AccessDenied
            )
    )
}
