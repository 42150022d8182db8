//! The server's log line for a denied client, in a test binary of its own.
//!
//! tracing caches whether a call site is enabled once for the whole
//! process, from the subscribers it knows when the site is first reached.
//! A capture installed for one thread only (`set_default`) loses whenever
//! a sibling test, on a thread without a subscriber, reaches
//! `warn!("client denied")` first: the site is then off for everyone
//! (tracing issue #3611). Here one global subscriber is installed before
//! anything logs, and no other test shares the process.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use tether::{Connection, ErrorKind, Server, Token, Tokens};
use tokio::net::TcpStream;
use tokio::sync::watch;

use support::TestService;

/// Generous bound on anything a test waits for; never reached when the
/// code works.
const BOUND: Duration = Duration::from_secs(10);

/// Every log line of the process (level and fields), in order.
struct LogCapture(watch::Sender<Vec<String>>);

impl tracing::Subscriber for LogCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0 += &format!(" {}={value:?}", field.name());
            }
        }
        let mut line = Fields(event.metadata().level().to_string());
        event.record(&mut line);
        self.0.send_modify(|lines| lines.push(line.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The process's log lines from now on; installs the global capture on
/// first use. Every test here calls it before anything can log.
fn log_lines() -> watch::Receiver<Vec<String>> {
    static LINES: OnceLock<watch::Sender<Vec<String>>> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = watch::channel(Vec::new()).0;
            tracing::subscriber::set_global_default(LogCapture(lines.clone()))
                .expect("no other subscriber in this test binary");
            lines
        })
        .subscribe()
}

#[tokio::test]
async fn the_server_logs_why_it_denied_a_client() {
    let mut seen = log_lines();
    let tokens = Tokens::new()
        .with("alice", "alice-secret-0123456789abcdef")
        .unwrap();
    let server = Server::builder()
        .tokens(tokens)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(TestService::default()));

    // Our own socket, so the line can be told by the client's address.
    let socket = TcpStream::connect(addr).await.unwrap();
    let client = socket.local_addr().unwrap();
    let err = Connection::builder()
        .token(Token::new("not-the-secret").unwrap())
        .connect_io(socket, Some(addr.to_string()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err}");

    let peer = format!("peer={client}");
    let ours = |l: &String| l.contains("client denied") && l.contains(&peer);
    let lines = tokio::time::timeout(BOUND, seen.wait_for(|lines| lines.iter().any(ours)))
        .await
        .expect("a log line")
        .unwrap();
    let line = lines.iter().find(|l| ours(l)).unwrap();
    assert!(line.starts_with("WARN"), "{line}");
    assert!(line.contains("matches no known token"), "{line}");
    assert!(!line.contains("not-the-secret"), "{line}");
}
