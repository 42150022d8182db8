//! Credentials on the command line: TLS certificates and tokens.
//!
//! ```text
//! tether serve --tls-cert server.pem --tls-key server.key [--tls-ca clients-ca.pem]
//!              [--token NAME=SECRET]... [--token-file FILE]
//! tether call|shell|cp --tls-ca ca.pem [--tls-name NAME] [--tls-cert me.pem --tls-key me.key]
//!                      [--token SECRET | env TETHER_TOKEN]
//! tether shell --rpyc --tls-ca ca.pem ...    (TLS to a Python RPyC server; no token)
//! ```

use std::path::{Path, PathBuf};

use clap::Args;
use tether::transport::tls::{TlsClient, TlsServer};
use tether::{Builder, ServerBuilder, Token, Tokens};

use crate::addr::Endpoint;
use crate::Failure;

/// How `tether serve` authenticates clients.
#[derive(Debug, Args, Default)]
pub struct ServeAuth {
    /// Speak TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With TLS, require client certificates signed by this authority
    /// (PEM); a certificate's common name identifies its client.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// Require clients to prove a token: NAME=SECRET (repeatable).
    /// Visible to other local users in the process list: prefer --token-file.
    #[arg(long = "token", value_name = "NAME=SECRET")]
    tokens: Vec<String>,
    /// Read NAME=SECRET tokens from FILE, one a line (# starts a comment).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

impl ServeAuth {
    /// Whether tokens were asked for.
    pub fn has_tokens(&self) -> bool {
        !self.tokens.is_empty() || self.token_file.is_some()
    }
}

/// The environment variable a client's token is read from.
const TOKEN_ENV: &str = "TETHER_TOKEN";

/// How `tether call`, `shell` and `cp` prove themselves to a server.
#[derive(Debug, Args, Default, Clone)]
pub struct ClientAuth {
    /// Speak TLS, trusting server certificates from this authority (PEM).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry [default: the host of
    /// ADDR, or localhost for unix:PATH].
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    tls_name: Option<String>,
    /// Present this client certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Prove this token's secret when the server asks.
    #[arg(long, value_name = "SECRET", env = TOKEN_ENV, hide_env_values = true)]
    token: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

fn usage(err: tether::Error) -> Failure {
    Failure::usage(err.message().to_string())
}

impl ServeAuth {
    /// Add TLS and tokens to `builder`; the returned text says what is on.
    pub fn apply(&self, mut builder: ServerBuilder) -> Result<(ServerBuilder, String), Failure> {
        let mut on = Vec::new();
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let (cert, key) = (read(cert)?, read(key)?);
            let tls = match &self.tls_ca {
                Some(ca) => {
                    on.push("TLS with client certificates");
                    TlsServer::mutual_from_pem(&cert, &key, &read(ca)?)
                }
                None => {
                    on.push("TLS");
                    TlsServer::from_pem(&cert, &key)
                }
            };
            builder = builder.tls(tls.map_err(usage)?);
        }
        let mut lines = self.tokens.clone();
        if let Some(file) = &self.token_file {
            let text = String::from_utf8(read(file)?)
                .map_err(|_| Failure::usage(format!("{} is not UTF-8", file.display())))?;
            lines.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        if !lines.is_empty() {
            let mut tokens = Tokens::new();
            for line in &lines {
                let Some((name, secret)) = line.split_once('=').filter(|(n, _)| !n.is_empty())
                else {
                    return Err(Failure::usage(
                        "a token is NAME=SECRET (the NAME identifies its holder)",
                    ));
                };
                tokens = tokens.with(name, secret).map_err(usage)?;
            }
            on.push("tokens");
            builder = builder.tokens(tokens);
        }
        Ok((builder, on.join(" and ")))
    }
}

impl ClientAuth {
    /// Add TLS and a token to `builder` for connecting to `endpoint`.
    pub fn apply(&self, builder: Builder, endpoint: &Endpoint) -> Result<Builder, Failure> {
        let mut builder = self.apply_tls(builder, endpoint)?;
        if let Some(secret) = &self.token {
            builder = builder.token(Token::new(secret).map_err(usage)?);
        }
        Ok(builder)
    }

    /// Add TLS to `builder` for connecting to the Python RPyC server at
    /// `endpoint`, which cannot check a token: `--token` is refused, a
    /// token from `TETHER_TOKEN` (meant for tether servers) left out.
    pub fn apply_for_rpyc(
        &self,
        builder: Builder,
        endpoint: &Endpoint,
    ) -> Result<Builder, Failure> {
        let from_env = std::env::var(TOKEN_ENV).ok();
        if self.token.is_some() && self.token != from_env {
            return Err(Failure::usage(
                "--rpyc: an RPyC server cannot check a token; leave out --token",
            ));
        }
        self.apply_tls(builder, endpoint)
    }

    fn apply_tls(&self, mut builder: Builder, endpoint: &Endpoint) -> Result<Builder, Failure> {
        if let Some(ca) = &self.tls_ca {
            let name = match (&self.tls_name, endpoint) {
                (Some(name), _) => name.clone(),
                (None, Endpoint::Tcp(addr)) => host_of(addr).to_string(),
                (None, Endpoint::Unix(_)) => "localhost".to_string(),
                (None, Endpoint::Nats { .. }) => {
                    return Err(Failure::usage(
                        "--tls-ca with a nats:// address: give --tls-name, the name in the \
                         instances' certificates (which instance answers is not known before)",
                    ))
                }
            };
            let ca = read(ca)?;
            let tls = match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => {
                    TlsClient::mutual_from_pem(&ca, &name, &read(cert)?, &read(key)?)
                }
                _ => TlsClient::from_pem(&ca, &name),
            };
            builder = builder.tls(tls.map_err(usage)?);
        }
        Ok(builder)
    }
}

/// The host of `HOST:PORT` (brackets of `[V6]:PORT` removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_of("localhost:1"), "localhost");
        assert_eq!(host_of("[::1]:7"), "::1");
        assert_eq!(host_of("10.0.0.1:80"), "10.0.0.1");
    }

    #[test]
    fn a_serve_token_needs_a_name() {
        let auth = ServeAuth {
            tokens: vec!["=secret".into()],
            ..ServeAuth::default()
        };
        assert!(auth.apply(tether::Server::builder()).is_err());
        let auth = ServeAuth {
            tokens: vec!["ops=a=b".into()],
            ..ServeAuth::default()
        };
        let (_, on) = auth.apply(tether::Server::builder()).unwrap();
        assert_eq!(on, "tokens");
    }
}
