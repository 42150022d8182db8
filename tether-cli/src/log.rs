//! What `tether serve` logs: tether's `tracing` events as lines on stderr
//! (stdout keeps the `serving ... on ADDR` line that scripts read).
//!
//! By default (info): connections opened (number, peer, identity) and
//! closed (with the reason), clients denied in the handshake (warn, with
//! the peer and the reason), failed handshakes, and errors raised by
//! served objects. `-v` adds debug events: calls tether refused (denied,
//! bad arguments...), calls the peer cancelled, connections ending inside
//! the library. `-vv` adds everything. `RUST_LOG`, when set, chooses
//! instead (`RUST_LOG=tether::server=info,warn`).

use std::io::IsTerminal;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Send log lines to stderr at the level `verbose` (the count of `-v`)
/// picks, or as `RUST_LOG` says when it is set and not empty. Colours only
/// on a terminal.
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    // Only fails when a subscriber is already installed: keep that one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
