//! How the client subcommands (`call`, `cp`, `shell`, `run`) reach a server: the
//! options they share ([`ClientArgs`]: `--timeout` and the credentials of
//! [`ClientAuth`]), connecting in either dialect, and what a failure to
//! connect says.
//!
//! A subcommand flattens [`ClientArgs`] into its own arguments and calls
//! one of its `connect` methods with the [`Endpoint`] it was given.

use std::time::Duration;

use clap::Args;
use tether::{blocking, rpyc, Builder, Config, Connection};

use crate::addr::Endpoint;
use crate::auth::ClientAuth;
use crate::Failure;

/// The options of every subcommand that connects to a server.
#[derive(Debug, Args, Clone, Default)]
pub struct ClientArgs {
    /// Give up connecting (TCP, TLS and handshake), and each remote call,
    /// after SECONDS [default: 10 to connect, 30 per call].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
    /// With a nats:// address: connect through the broker (the whole
    /// connection over NATS subjects) rather than directly to an instance.
    #[arg(long)]
    pub via_broker: bool,
    /// TLS and token.
    #[command(flatten)]
    pub auth: ClientAuth,
}

/// Which hint a failure to reach an RPyC server gets: the subcommand's
/// own `--rpyc`, or the shell's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpycHint {
    /// The subcommand has `--rpyc`.
    Flag,
    /// It has not: `tether shell --rpyc` has.
    Shell,
}

impl ClientArgs {
    /// The connection's settings: `--timeout` as the deadline of
    /// connecting and of each call.
    pub fn config(&self) -> Config {
        match self.timeout {
            Some(timeout) => Config::default()
                .call_timeout(timeout)
                .handshake_timeout(timeout),
            None => Config::default(),
        }
    }

    /// A builder with the settings and credentials for `endpoint`.
    fn builder(&self, endpoint: &Endpoint) -> Result<Builder, Failure> {
        if self.via_broker && !matches!(endpoint, Endpoint::Nats { .. }) {
            return Err(Failure::usage(
                "--via-broker needs a service on NATS: nats://HOST:PORT/NAME",
            ));
        }
        self.auth
            .apply(Builder::default().config(self.config()), endpoint)
    }

    /// Finding the service of a nats:// address, with `builder`'s settings.
    fn nats(&self, url: &str, service: &str, builder: Builder) -> tether::nats::Connector {
        let route = match self.via_broker {
            true => tether::nats::Route::Broker,
            false => tether::nats::Route::Auto,
        };
        tether::nats::Connector::new(url, service)
            .builder(builder)
            .route(route)
    }

    /// Connect to the tether server at `endpoint`.
    pub async fn connect(
        &self,
        endpoint: &Endpoint,
        hint: RpycHint,
    ) -> Result<Connection, Failure> {
        let builder = self.builder(endpoint)?;
        let connected = match endpoint {
            Endpoint::Tcp(addr) => builder.connect(addr.as_str()).await,
            Endpoint::Unix(path) => builder.connect_unix(path).await,
            Endpoint::Nats { url, service } => self.nats(url, service, builder).connect().await,
        };
        connected.map_err(|e| cannot_connect(endpoint, e, hint))
    }

    /// [`connect`](ClientArgs::connect) for blocking use (the shell).
    pub fn connect_blocking(
        &self,
        endpoint: &Endpoint,
        hint: RpycHint,
    ) -> Result<blocking::Connection, Failure> {
        let builder = self.builder(endpoint)?;
        let connected = match endpoint {
            Endpoint::Tcp(addr) => blocking::connect_with(builder, addr.as_str()),
            Endpoint::Unix(path) => blocking::connect_unix_with(builder, path),
            Endpoint::Nats { url, service } => {
                blocking::connect_nats(self.nats(url, service, builder))
            }
        };
        connected.map_err(|e| cannot_connect(endpoint, e, hint))
    }

    /// Connect to the Python RPyC server at `endpoint` (TCP, with TLS when
    /// asked).
    pub async fn connect_rpyc(&self, endpoint: &Endpoint) -> Result<rpyc::Session, Failure> {
        let (addr, builder) = self.rpyc_builder(endpoint)?;
        rpyc::connect_with(builder, addr)
            .await
            .map_err(|e| cannot_connect(endpoint, e, RpycHint::Flag))
    }

    /// [`connect_rpyc`](ClientArgs::connect_rpyc) for blocking use (the
    /// shell).
    pub fn connect_rpyc_blocking(
        &self,
        endpoint: &Endpoint,
    ) -> Result<blocking::RpycSession, Failure> {
        let (addr, builder) = self.rpyc_builder(endpoint)?;
        blocking::connect_rpyc_with(builder, addr)
            .map_err(|e| cannot_connect(endpoint, e, RpycHint::Flag))
    }

    /// The TCP address of an RPyC server, and the settings and TLS to
    /// connect to it with.
    fn rpyc_builder<'e>(&self, endpoint: &'e Endpoint) -> Result<(&'e str, Builder), Failure> {
        let Endpoint::Tcp(addr) = endpoint else {
            return Err(Failure::usage(
                "--rpyc connects over TCP: give the RPyC server's HOST:PORT",
            ));
        };
        if self.via_broker {
            return Err(Failure::usage(
                "--via-broker is for tether services on NATS, not --rpyc",
            ));
        }
        let builder = self
            .auth
            .apply_for_rpyc(Builder::default().config(self.config()), endpoint)?;
        Ok((addr, builder))
    }
}

/// A failure to connect to `endpoint`: the OS's reason when there is one
/// (`Connection refused`), else tether's; for an RPyC server reached
/// without `--rpyc`, where to go instead.
pub fn cannot_connect(endpoint: &Endpoint, err: tether::Error, hint: RpycHint) -> Failure {
    use std::error::Error as _;
    if err.peer_dialect() == Some(tether::rpyc::Dialect::Rpyc) {
        let next = match hint {
            RpycHint::Flag => "try --rpyc".to_string(),
            RpycHint::Shell => format!("try tether shell --rpyc {endpoint}"),
        };
        return Failure::failed(format!(
            "cannot connect to {endpoint}: this looks like an RPyC server: {next}"
        ));
    }
    let reason = match (err.kind(), err.source()) {
        (tether::ErrorKind::Transport, Some(source)) => source.to_string(),
        _ => err.to_string(),
    };
    Failure::failed(format!("cannot connect to {endpoint}: {reason}"))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("not a number: {text}"))?;
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("a deadline of 0 s leaves no time: give more".to_string()),
        Err(e) => Err(format!("{text}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_seconds("60"), Ok(Duration::from_secs(60)));
        for bad in ["", "x", "-1", "0", "inf", "NaN"] {
            assert!(parse_seconds(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_timeout_bounds_connecting_and_calls() {
        let args = ClientArgs {
            timeout: Some(Duration::from_secs(3)),
            ..ClientArgs::default()
        };
        let config = args.config();
        assert_eq!(config.call_timeout, Duration::from_secs(3));
        assert_eq!(config.handshake_timeout, Duration::from_secs(3));
        let defaults = ClientArgs::default().config();
        assert_eq!(defaults.call_timeout, Config::default().call_timeout);
    }
}
