//! Who the peer is: shared-secret tokens, certificate identities, and what
//! a server grants each identity.
//!
//! Two ways to authenticate a peer, usable alone or together:
//!
//! - **Tokens** ([`Token`] on the client, [`Tokens`] on the server): a
//!   challenge–response in the handshake. The server sends a fresh random
//!   nonce; the client answers with an HMAC-SHA256 of both sides' nonces
//!   keyed by its secret, and the server answers with its own HMAC, so each
//!   side proves it holds the secret without it ever crossing the wire.
//!   Works over any transport: TCP, Unix sockets, TLS. It authenticates but
//!   does not encrypt: over an untrusted network, use TLS as well.
//! - **TLS client certificates** ([`TlsServer::mutual_from_pem`]): the
//!   subject of a verified client certificate names the peer.
//!
//! Either way the connection learns a [`PeerIdentity`], which served objects
//! read from their [`CallContext`](crate::CallContext)
//! ([`peer_identity`](crate::CallContext::peer_identity)) and which a
//! server can use to pick a different root object and [`Policy`] per peer
//! ([`Server::serve_per_identity`](crate::Server::serve_per_identity),
//! returning a [`Grant`]).
//!
//! A peer with wrong or missing credentials gets
//! [`ErrorKind::Denied`](crate::ErrorKind) from the handshake and nothing
//! else: no root object, no object ids, no service name. The server logs
//! the reason (with `tracing`) and goes on serving everyone else.
//!
//! [`TlsServer::mutual_from_pem`]: crate::transport::tls::TlsServer::mutual_from_pem
//! [`Policy`]: crate::Policy

mod grant;
pub(crate) mod token;

pub use self::grant::Grant;
pub(crate) use self::grant::GrantFn;
pub use self::token::{Token, Tokens};

/// How a peer proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// It answered the token challenge; the name is the one the server gave
    /// that token in its [`Tokens`].
    Token,
    /// It presented a certificate that the TLS handshake verified; the name
    /// is the certificate subject's common name (or, without one, the
    /// whole subject, as in `O=Example, OU=ops`).
    Certificate,
}

/// The authenticated identity of the peer of a connection.
///
/// On a server: the client's token name or certificate subject. On a
/// client connected over TLS: the server certificate's subject (a client
/// does not learn token names). When a client presents both a certificate
/// and a token, the token's name wins.
///
/// ```
/// # use tether::{AuthMethod, PeerIdentity};
/// let who = PeerIdentity::new("alice", AuthMethod::Token);
/// assert_eq!(who.name(), "alice");
/// assert_eq!(who.method(), AuthMethod::Token);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    name: String,
    method: AuthMethod,
}

impl PeerIdentity {
    /// An identity (for tests, and for servers that authenticate peers by
    /// other means).
    pub fn new(name: impl Into<String>, method: AuthMethod) -> PeerIdentity {
        PeerIdentity {
            name: name.into(),
            method,
        }
    }

    /// The token's name or the certificate's subject.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the peer proved it.
    pub fn method(&self) -> AuthMethod {
        self.method
    }
}

impl std::fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.method {
            AuthMethod::Token => "token",
            AuthMethod::Certificate => "certificate",
        };
        write!(f, "{} ({how})", self.name)
    }
}
