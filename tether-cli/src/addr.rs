//! Where a server is, as the command line spells it.
//!
//! - `HOST:PORT` (`127.0.0.1:18812`, `localhost:18812`, `[::1]:18812`): TCP;
//! - `PORT` alone: TCP on 127.0.0.1;
//! - `unix:PATH`: a Unix socket;
//! - `nats://HOST:PORT/NAME`: an instance of service NAME found on the NATS
//!   server at HOST:PORT (see `tether::nats`).
//!
//! `tether cp` adds a path on the server after one more colon:
//! `HOST:PORT:PATH`, `unix:SOCKET:PATH`, and `PORT:/PATH` (on 127.0.0.1, as
//! `PORT` alone is), whose path must be absolute: `2024:notes.txt` stays a
//! local name.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The TCP port `tether serve` listens on unless told otherwise: RPyC
/// classic's.
pub const DEFAULT_PORT: u16 = 18812;

/// A server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `HOST:PORT`.
    Tcp(String),
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `nats://HOST:PORT/NAME`: the broker's URL and the service's name.
    Nats {
        /// `nats://HOST:PORT`.
        url: String,
        /// The service name.
        service: String,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => f.write_str(addr),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Nats { url, service } => write!(f, "{url}/{service}"),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Endpoint, String> {
        if let Some(rest) = s.strip_prefix("nats://") {
            return match rest.split_once('/') {
                Some((server, service))
                    if split_host_port(server)
                        .is_some_and(|(h, _, r)| !h.is_empty() && r.is_empty())
                        && !service.is_empty()
                        && !service.contains('/') =>
                {
                    Ok(Endpoint::Nats {
                        url: format!("nats://{server}"),
                        service: service.to_string(),
                    })
                }
                _ => Err(format!(
                    "bad address {s:?}: a service on NATS is nats://HOST:PORT/NAME"
                )),
            };
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, as in unix:/tmp/tether.sock".into());
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let port: u16 = s.parse().map_err(|_| format!("bad port {s:?}"))?;
            return Ok(Endpoint::Tcp(format!("127.0.0.1:{port}")));
        }
        match split_host_port(s) {
            Some((host, port, "")) if !host.is_empty() => {
                Ok(Endpoint::Tcp(format!("{host}:{port}")))
            }
            _ => Err(format!(
                "bad address {s:?}: expected HOST:PORT, PORT or unix:PATH"
            )),
        }
    }
}

/// `HOST:PORT` at the start of `s` (`[V6]:PORT` too): the host as written
/// (brackets kept), the port, and what follows the port (empty, or starting
/// with ':').
fn split_host_port(s: &str) -> Option<(&str, u16, &str)> {
    let (host, rest) = if s.starts_with('[') {
        let end = s.find("]:")?;
        (&s[..=end], &s[end + 2..])
    } else {
        let (host, rest) = s.split_once(':')?;
        if host.contains('/') {
            return None;
        }
        (host, rest)
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let port = rest[..digits].parse().ok()?;
    Some((host, port, &rest[digits..]))
}

/// One side of `tether cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file on this machine.
    Local(PathBuf),
    /// A file on the server at an address.
    Remote(Endpoint, String),
}

impl Location {
    /// `HOST:PORT:PATH`, `unix:SOCKET:PATH` or `PORT:/PATH` is remote;
    /// anything else (`./a:b` to force it) is a local path.
    pub fn parse(s: &str) -> Location {
        if let Some((port, path)) = s.split_once(':') {
            let is_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
            if is_port && path.starts_with('/') {
                if let Ok(endpoint) = port.parse::<Endpoint>() {
                    return Location::Remote(endpoint, path.to_string());
                }
            }
        }
        if let Some(rest) = s.strip_prefix("unix:") {
            if let Some((socket, path)) = rest.split_once(':') {
                if !socket.is_empty() && !path.is_empty() {
                    return Location::Remote(Endpoint::Unix(socket.into()), path.to_string());
                }
            }
        }
        if let Some((host, port, rest)) = split_host_port(s) {
            if let Some(path) = rest.strip_prefix(':') {
                if !host.is_empty() && !path.is_empty() {
                    let endpoint = Endpoint::Tcp(format!("{host}:{port}"));
                    return Location::Remote(endpoint, path.to_string());
                }
            }
        }
        Location::Local(PathBuf::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> Endpoint {
        Endpoint::Tcp(s.to_string())
    }

    #[test]
    fn endpoints() {
        assert_eq!("127.0.0.1:18812".parse(), Ok(tcp("127.0.0.1:18812")));
        assert_eq!("localhost:1".parse(), Ok(tcp("localhost:1")));
        assert_eq!("[::1]:7".parse(), Ok(tcp("[::1]:7")));
        assert_eq!("18812".parse(), Ok(tcp("127.0.0.1:18812")));
        assert_eq!("unix:/tmp/s".parse(), Ok(Endpoint::Unix("/tmp/s".into())));
        for bad in [
            "",
            "host",
            "host:",
            "host:x",
            "1.2.3.4:5:6",
            "unix:",
            "99999",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad:?}");
        }
        assert_eq!(tcp("a:1").to_string(), "a:1");
        assert_eq!(Endpoint::Unix("/s".into()).to_string(), "unix:/s");
        let nats = Endpoint::Nats {
            url: "nats://127.0.0.1:4222".into(),
            service: "calc".into(),
        };
        assert_eq!("nats://127.0.0.1:4222/calc".parse(), Ok(nats.clone()));
        assert_eq!(nats.to_string(), "nats://127.0.0.1:4222/calc");
        for bad in [
            "nats://",
            "nats://h:1",
            "nats://h:1/",
            "nats://h/calc",
            "nats://h:1/a/b",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn locations() {
        let remote = |e: Endpoint, p: &str| Location::Remote(e, p.to_string());
        assert_eq!(
            Location::parse("127.0.0.1:18812:/tmp/x"),
            remote(tcp("127.0.0.1:18812"), "/tmp/x")
        );
        assert_eq!(
            Location::parse("[::1]:9:rel/x"),
            remote(tcp("[::1]:9"), "rel/x")
        );
        assert_eq!(
            Location::parse("unix:/run/t.sock:/etc/hosts"),
            remote(Endpoint::Unix("/run/t.sock".into()), "/etc/hosts")
        );
        assert_eq!(
            Location::parse("18812:/tmp/x"),
            remote(tcp("127.0.0.1:18812"), "/tmp/x")
        );
        for local in [
            "/tmp/x",
            "x",
            "./h:1:x",
            "h:1:",
            "h:x:y",
            "C:/x",
            "a/b:1:c",
            "2024:notes.txt",
            "99999:/x",
            ":/x",
        ] {
            assert_eq!(
                Location::parse(local),
                Location::Local(local.into()),
                "{local}"
            );
        }
    }
}
