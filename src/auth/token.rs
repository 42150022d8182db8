//! Shared-secret tokens and the HMAC challenge–response that proves them.
//!
//! ```text
//! client proof = HMAC-SHA256(secret, "tether-v2 client" || client_nonce || server_nonce)
//! server proof = HMAC-SHA256(secret, "tether-v2 server" || client_nonce || server_nonce)
//! ```
//!
//! Both nonces are 32 fresh random bytes per connection, so a recorded
//! proof is useless on another connection; the labels differ, so one side's
//! proof can never be reflected back as the other's. Proofs are checked
//! with `ring::hmac::verify`, in constant time, and the server checks every
//! token it knows (no early exit) so timing does not tell which one
//! matched.

use std::fmt;
use std::sync::Arc;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::raise;
use crate::Result;

/// Length of each side's nonce in the handshake.
pub(crate) const NONCE_LEN: usize = 32;
/// Length of an HMAC-SHA256 proof.
pub(crate) const PROOF_LEN: usize = 32;

const CLIENT_LABEL: &[u8] = b"tether-v2 client";
const SERVER_LABEL: &[u8] = b"tether-v2 server";

/// A handshake nonce.
pub(crate) type Nonce = [u8; NONCE_LEN];

/// A fresh random nonce.
pub(crate) fn nonce() -> Result<Nonce> {
    let mut n = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut n)
        .map_err(|_| raise::protocol("the system random number generator failed"))?;
    Ok(n)
}

/// Which side a proof comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Client,
    Server,
}

fn message(role: Role, client: &Nonce, server: &Nonce) -> Vec<u8> {
    let label = match role {
        Role::Client => CLIENT_LABEL,
        Role::Server => SERVER_LABEL,
    };
    [label, client.as_slice(), server.as_slice()].concat()
}

/// The secret a client proves it holds.
///
/// Use a long random secret (32 random bytes, hex-encoded, say): an
/// eavesdropper who records a handshake can try guesses against it offline.
/// `Debug` does not print the secret.
///
/// ```
/// let token = tether::Token::new("9f86d081884c7d659a2feaa0c55ad015").unwrap();
/// let conn = tether::Connection::builder().token(token);
/// ```
#[derive(Clone)]
pub struct Token {
    key: hmac::Key,
}

impl Token {
    /// A token from its secret; an empty secret is an
    /// [`ErrorKind::BadArguments`](crate::ErrorKind) error.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Token> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(raise::bad_args("a token's secret must not be empty"));
        }
        Ok(Token {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// This side's proof for the given nonces.
    pub(crate) fn prove(&self, role: Role, client: &Nonce, server: &Nonce) -> [u8; PROOF_LEN] {
        let tag = hmac::sign(&self.key, &message(role, client, server));
        let mut out = [0u8; PROOF_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `proof` is the peer's proof for these nonces (constant time).
    pub(crate) fn verify(&self, role: Role, client: &Nonce, server: &Nonce, proof: &[u8]) -> bool {
        hmac::verify(&self.key, &message(role, client, server), proof).is_ok()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<secret>)")
    }
}

/// The tokens a server accepts, each naming the identity it grants.
///
/// When a server has any, every client must answer the token challenge
/// with one of them; the name of the token it proved becomes the
/// connection's [`PeerIdentity`](crate::PeerIdentity).
///
/// ```
/// let tokens = tether::Tokens::new()
///     .with("alice", "a-long-random-secret-for-alice")?
///     .with("backup", "another-long-random-secret")?;
/// assert_eq!(tokens.names().collect::<Vec<_>>(), ["alice", "backup"]);
/// let server = tether::Server::builder().tokens(tokens);
/// # Ok::<(), tether::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Arc<Vec<(String, Token)>>,
}

impl Tokens {
    /// No tokens yet.
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// Accept `secret`, naming its holder `name`. An empty secret is an
    /// [`ErrorKind::BadArguments`](crate::ErrorKind) error.
    pub fn with(mut self, name: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Tokens> {
        let token = Token::new(secret)?;
        Arc::make_mut(&mut self.entries).push((name.into(), token));
        Ok(self)
    }

    /// The names, in the order added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(name, _)| name.as_str())
    }

    /// Whether there are none (then the server does not ask for a token).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of the token whose secret is `presented` (sent whole, as
    /// an HTTP bearer token is). Compared as HMACs of a fresh nonce, in
    /// constant time, checking every token.
    #[cfg(feature = "capnweb")]
    pub(crate) fn find_secret(&self, presented: &[u8]) -> Option<&str> {
        let presented = Token::new(presented).ok()?;
        let challenge = nonce().ok()?;
        let proof = presented.prove(Role::Client, &challenge, &challenge);
        let mut found = None;
        for (name, token) in self.entries.iter() {
            if token.verify(Role::Client, &challenge, &challenge, &proof) && found.is_none() {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// The token whose client proof this is, and its name. Checks every
    /// token, so the time taken does not depend on which one matches.
    pub(crate) fn find(
        &self,
        client: &Nonce,
        server: &Nonce,
        proof: &[u8],
    ) -> Option<(&str, &Token)> {
        let mut found = None;
        for (name, token) in self.entries.iter() {
            if token.verify(Role::Client, client, server, proof) && found.is_none() {
                found = Some((name.as_str(), token));
            }
        }
        found
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_only_with_its_secret_nonces_and_role() {
        let (c, s) = (nonce().unwrap(), nonce().unwrap());
        assert_ne!(c, s, "two fresh nonces differ");
        let token = Token::new("secret").unwrap();
        let proof = token.prove(Role::Client, &c, &s);
        assert!(token.verify(Role::Client, &c, &s, &proof));
        assert!(!token.verify(Role::Server, &c, &s, &proof));
        assert!(!token.verify(Role::Client, &s, &c, &proof));
        assert!(!Token::new("other")
            .unwrap()
            .verify(Role::Client, &c, &s, &proof));
        assert!(!token.verify(Role::Client, &c, &s, &proof[..31]));
    }

    #[test]
    fn tokens_find_the_matching_name() {
        let tokens = Tokens::new()
            .with("a", "sa")
            .unwrap()
            .with("b", "sb")
            .unwrap();
        let (c, s) = (nonce().unwrap(), nonce().unwrap());
        let proof = Token::new("sb").unwrap().prove(Role::Client, &c, &s);
        assert_eq!(tokens.find(&c, &s, &proof).map(|(n, _)| n), Some("b"));
        assert!(tokens.find(&c, &s, &[0u8; 32]).is_none());
        assert!(tokens.find(&c, &s, &[]).is_none());
    }

    #[test]
    fn secrets_are_not_printed_and_not_empty() {
        let tokens = Tokens::new().with("alice", "hunter2").unwrap();
        assert!(!format!("{tokens:?}").contains("hunter2"));
        assert!(!format!("{:?}", Token::new("hunter2").unwrap()).contains("hunter2"));
        assert!(Token::new("").is_err());
    }
}
