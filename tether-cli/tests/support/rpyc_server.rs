//! Python RPyC servers for the CLI's tests, from the main crate's Python
//! test environment (the venv lands in the workspace's target/tmp, shared
//! with the main crate's tests).

use super::python;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Safety bound on a server printing its port.
const STARTUP: Duration = Duration::from_secs(60);

/// A Python RPyC server for one connection; killed when dropped.
pub struct PythonServer {
    pub child: Child,
    port: u16,
}

impl PythonServer {
    /// Run `args` with the test environment's Python and read the port
    /// from the first stdout line for which `port_of` finds one.
    fn start(args: &[&str], port_of: fn(&str) -> Option<u16>) -> PythonServer {
        let mut child = Command::new(python::python())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(port) = port_of(&line) {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx.recv_timeout(STARTUP);
        let mut server = PythonServer { child, port: 0 };
        server.port = port.expect("the Python server prints its port");
        server
    }

    /// The stock `rpyc_classic` server, serving one client.
    pub fn classic() -> PythonServer {
        PythonServer::classic_with(&[])
    }

    /// `rpyc_classic` with more options (`--ssl-keyfile K --ssl-certfile
    /// C`), serving one client.
    pub fn classic_with(options: &[&str]) -> PythonServer {
        let args = python::rpyc_classic(options);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        PythonServer::start(&args, python::rpyc_classic_port)
    }

    /// A plain `rpyc.Service` (the main crate's
    /// tests/python/rpyc_service_server.py), serving one client.
    pub fn service() -> PythonServer {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/rpyc_service_server.py");
        PythonServer::start(&[script.to_str().unwrap()], |l| l.trim().parse().ok())
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
