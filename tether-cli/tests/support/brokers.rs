//! `tether serve` instances registered on a real `nats-server` (the main
//! crate's tests/support/nats.rs), each a child process killed by its PID
//! when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use super::nats::NatsServer;

/// Safety bound on an instance announcing itself.
const STARTUP: Duration = Duration::from_secs(60);

/// `tether serve --tcp 127.0.0.1:0 --nats URL --service NAME ...`.
pub struct ServeProcess {
    child: Child,
    /// Its own TCP address.
    pub addr: String,
    /// Its instance id on NATS.
    pub id: String,
}

impl ServeProcess {
    /// Start an instance of the demo service registered as `service`, with
    /// `extra` options, once it says it is registered.
    pub fn start(nats: &NatsServer, service: &str, extra: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(["serve", "--tcp", "127.0.0.1:0", "--nats"])
            .arg(nats.url())
            .args(["--service", service])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tether serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut addr = None;
        let id = loop {
            let line = match rx.recv_timeout(STARTUP) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("tether serve did not register on NATS");
                }
            };
            if let Some((_, a)) = line
                .split_once(" on ")
                .filter(|_| line.starts_with("serving"))
            {
                addr = Some(a.trim().to_string());
            }
            if let Some((_, rest)) = line.split_once("(instance ") {
                break rest.trim_end_matches(')').to_string();
            }
        };
        ServeProcess {
            child,
            addr: addr.expect("the serving line comes first"),
            id,
        }
    }

    /// Kill it (SIGKILL, by its PID) and reap it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
