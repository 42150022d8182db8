//! The server process: a child of the benchmark, running the raw echo
//! server (the floor), the tether server and the tarpc server on one
//! tokio runtime, each on its own 127.0.0.1:0 port. The runtime is
//! multi-threaded unless `--flavour ct` asks for a current-thread one (the
//! speed workloads start one server process per flavour).
//!
//! Given `--nats URL` (the nats workload), the tether server is also
//! registered on that NATS server as service [`SERVICE`](crate::nats::SERVICE)
//! (tunnel and stateless endpoints included), and a raw NATS responder
//! echoes every request on [`RAW_SUBJECT`](crate::nats::RAW_SUBJECT).
//!
//! It prints `READY <raw> <tether> <tarpc>` (the ports) on stdout and runs
//! until its stdin closes, which happens when the benchmark exits however
//! it exits, so no server outlives a run.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::LengthDelimitedCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::flavour::Flavour;
use crate::service::{Bench, Peer, PeerImpl};

/// Ports of one server process.
pub struct Servers {
    pub child: Child,
    pub raw: u16,
    pub tether: u16,
    pub tarpc: u16,
}

impl Servers {
    /// Start a server process (`count_heap`: with the counting allocator on).
    pub fn spawn(count_heap: bool) -> Servers {
        Servers::start(count_heap, None, Flavour::Mt)
    }

    /// Start a server process whose runtime is of flavour `flavour`.
    pub fn spawn_flavour(flavour: Flavour) -> Servers {
        Servers::start(false, None, flavour)
    }

    /// Start a server process whose tether server is registered on the
    /// NATS server at `url`, beside a raw NATS echo responder.
    pub fn spawn_nats(url: &str) -> Servers {
        Servers::start(false, Some(url), Flavour::Mt)
    }

    fn start(count_heap: bool, nats: Option<&str>, flavour: Flavour) -> Servers {
        let exe = std::env::current_exe().expect("own path");
        let mut cmd = Command::new(exe);
        cmd.arg("--serve").arg("--flavour").arg(flavour.name());
        if count_heap {
            cmd.arg("--count-heap");
        }
        if let Some(url) = nats {
            cmd.arg("--nats").arg(url);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server process");
        let mut out = child.stdout.take().expect("child stdout");
        let mut line = Vec::new();
        let mut byte = [0u8];
        while out.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let ports: Vec<u16> = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("server process said {line:?}"))
            .split(' ')
            .map(|p| p.parse().expect("port"))
            .collect();
        Servers {
            child,
            raw: ports[0],
            tether: ports[1],
            tarpc: ports[2],
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        // Closing its stdin ends the server process.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// `tether-bench --serve [--count-heap] [--nats URL] [--flavour ct|mt]`.
pub fn main(count_heap: bool, nats: Option<String>, flavour: Flavour) -> ! {
    if count_heap {
        crate::sys::enable_heap_counting();
    }
    crate::sys::raise_nofile();
    let rt = flavour.runtime();
    rt.block_on(async {
        let raw = TcpListener::bind("127.0.0.1:0").await.expect("bind raw");
        let raw_port = raw.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = raw.accept().await {
                tokio::spawn(raw_conn(s));
            }
        });

        // The objects workload keeps `OBJECTS` objects alive on one
        // connection, and the peer also holds the root: one more than the
        // default `max_exported` (exactly 1 M) allows. Room for both, and a
        // margin for the calls' own references.
        let config = tether::Config::default().max_exported(crate::work::OBJECTS + 1024);
        let mut builder = tether::Server::builder()
            .config(config)
            .max_connections(100_000);
        if let Some(url) = &nats {
            builder = builder.nats(tether::nats::Registration::new(
                url.as_str(),
                crate::nats::SERVICE,
            ));
            tokio::spawn(crate::nats::raw_responder(url.clone()).await);
        }
        let server = builder.bind("127.0.0.1:0").await.expect("bind tether");
        let tether_port = server.local_addr().unwrap().port();
        tokio::spawn(server.serve(Bench));

        let tl = TcpListener::bind("127.0.0.1:0").await.expect("bind tarpc");
        let tarpc_port = tl.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = tl.accept().await {
                // tether sets TCP_NODELAY; give tarpc the same.
                let _ = s.set_nodelay(true);
                let framed = LengthDelimitedCodec::builder().new_framed(s);
                let transport = tarpc::serde_transport::new(framed, Bincode::default());
                let channel = BaseChannel::with_defaults(transport);
                tokio::spawn(channel.execute(PeerImpl.serve()).for_each(|f| async {
                    tokio::spawn(f);
                }));
            }
        });

        let mut stdout = std::io::stdout();
        writeln!(stdout, "READY {raw_port} {tether_port} {tarpc_port}").unwrap();
        stdout.flush().unwrap();
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await;
    });
    std::process::exit(0)
}

/// One raw connection. Its first byte picks the mode:
/// - `E`: echo length-prefixed frames (4-byte big-endian length, payload),
///   every complete frame received so far in one write;
/// - `S`: stream: read a u64 `n`, write `n` bytes in 64 KiB writes; repeat
///   until `n` is 0.
async fn raw_conn(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut mode = [0u8];
    if s.read_exact(&mut mode).await.is_err() {
        return;
    }
    match mode[0] {
        b'E' => {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            loop {
                buf.reserve(64 * 1024);
                match s.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let mut end = 0;
                while buf.len() - end >= 4 {
                    let len = u32::from_be_bytes(buf[end..end + 4].try_into().unwrap()) as usize;
                    if buf.len() - end < 4 + len {
                        break;
                    }
                    end += 4 + len;
                }
                if end > 0 {
                    if s.write_all(&buf[..end]).await.is_err() {
                        return;
                    }
                    buf.advance(end);
                }
            }
        }
        b'S' => {
            let chunk = vec![0x5au8; 64 * 1024];
            while let Ok(n) = s.read_u64().await {
                if n == 0 {
                    return;
                }
                let mut left = n as usize;
                while left > 0 {
                    let k = left.min(chunk.len());
                    if s.write_all(&chunk[..k]).await.is_err() {
                        return;
                    }
                    left -= k;
                }
            }
        }
        _ => {}
    }
}
