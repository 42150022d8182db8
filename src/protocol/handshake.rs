//! The first exchange on a connection: who speaks what, and who the peer is.
//!
//! The connecting side speaks first, so a server can tell from the first
//! bytes what it is talking to. Every handshake message is
//! `len:u32be "TETHER" version:u16be body`:
//!
//! ```text
//! hello     = name_len:u16be name max_frame:u32be client_nonce:[32]
//! answer    = status:u8 text_len:u16be text max_frame:u32be [server_proof:[32]]
//! challenge = status=2:u8 server_nonce:[32]
//! proof     = proof_len:u8 proof          (client, after a challenge)
//! ```
//!
//! The client sends its hello; the server answers. `status` 0 accepts
//! (`text` is the server's root service name); 1 refuses (another version,
//! too many connections) and 3 denies (wrong or missing credentials), with
//! `text` saying why; 2 is a token challenge. After a challenge the client
//! sends its proof (empty when it has no token) and the server answers
//! again, accepting with its own proof or denying. The proofs are
//! HMAC-SHA256s of both nonces (see [`Token`](crate::Token)), so the secret
//! never crosses the wire and each side knows the other holds it.
//! `max_frame` is the largest frame payload the sender accepts; neither
//! side sends the other a larger one. Both sides then close or go on to
//! framed [messages]. Raw bytes rather than bincode, so a peer of any
//! version, or no tether at all, is recognised before anything is trusted.
//!
//! The client follows its hello at once with the first two bytes of the
//! next frame it will send: its proof, or once accepted an empty release
//! batch, which it then completes. Both are far under 64 KiB, so those
//! two bytes of their length are zeros, and a server reads them as part
//! of that frame. They are there for a server that is not tether's: a
//! Python RPyC server reads two bytes more than a frame's length says (a
//! flag byte, then a trailing newline), so without them it would wait for
//! the rest of the hello as long as the client waits for an answer. With
//! them it has a whole frame, fails to read it and closes, first sending
//! RPyC's CLOSE request, whose framing the client recognises
//! ([`Error::peer_dialect`](crate::Error::peer_dialect)). The client
//! learns it at once, without guessing from a silence.
//!
//! What each version added:
//!
//! | version | added |
//! |---|---|
//! | 1 | the handshake, requests, replies, releases, batches |
//! | 2 | nonces and the token challenge |
//! | 3 | the nesting depth of a request |
//! | 4 | pipelined requests and `Finish` (promises) |
//! | 5 | dates among values; the caller's trace context in requests |
//!
//! A server accepts clients of [`OLDEST_ACCEPTED`] and later, answering
//! in the client's version, and sends an older client nothing it would
//! not understand: a version-3 client no pipelined requests (its promises
//! resolve step by step), a version-3 or 4 client no date (it gets the
//! date's RFC 3339 text) and no trace context (the callbacks made to it
//! start no trace of theirs). Other versions are
//! refused with a message naming both.
//!
//! [messages]: super::frame::Message

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::auth::token::{self, Nonce, Role, NONCE_LEN, PROOF_LEN};
use crate::auth::{AuthMethod, PeerIdentity, Token, Tokens};
use crate::error::raise;
use crate::protocol::codec::{self, NoRefs};
use crate::protocol::frame::Message;
use crate::rpyc::{Dialect, OtherDialect};
use crate::transport::tls::io_error;
use crate::{Error, ErrorKind, Result};

/// The magic bytes that open every tether connection.
pub const MAGIC: &[u8; 6] = b"TETHER";

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 5;

/// The oldest client version a server of this build still accepts.
pub(crate) const OLDEST_ACCEPTED: u16 = 3;

/// The first version with pipelined requests.
pub(crate) const PIPELINING_SINCE: u16 = 4;

/// The first version with dates among values.
pub(crate) const DATES_SINCE: u16 = 5;

/// The first version whose requests may carry the caller's trace context
/// (read, and ignored, even by a build without the `otel` feature).
pub(crate) const TRACE_VERSION: u16 = 5;

// Each feature arrived in a version this build speaks.
const _: () = assert!(
    OLDEST_ACCEPTED < PIPELINING_SINCE
        && DATES_SINCE <= PROTOCOL_VERSION
        && TRACE_VERSION <= PROTOCOL_VERSION
);

/// Longest handshake frame accepted (service names are short).
const MAX_HANDSHAKE: usize = 1024;

const STATUS_ACCEPT: u8 = 0;
const STATUS_REFUSE: u8 = 1;
const STATUS_CHALLENGE: u8 = 2;
const STATUS_DENIED: u8 = 3;

/// What the server tells a client whose credentials failed; the precise
/// reason goes only to the server's log.
const DENIED_TEXT: &str = "authentication failed";

/// What the handshake learned about the peer.
#[derive(Debug, Clone)]
pub(crate) struct PeerHello {
    pub(crate) service: String,
    /// The largest frame the peer accepts.
    pub(crate) max_frame: usize,
    /// Who the peer proved to be, if it did.
    pub(crate) identity: Option<PeerIdentity>,
    /// The protocol version the two sides speak on this connection.
    pub(crate) version: u16,
}

/// A refusal the server decided on before accepting.
pub(crate) struct Refusal(pub(crate) String);

/// What the connecting side brings to the handshake.
pub(crate) struct Hello<'a> {
    /// Our root service name.
    pub(crate) service: &'a str,
    pub(crate) max_frame: usize,
    /// The secret to prove when the server asks.
    pub(crate) token: Option<&'a Token>,
    pub(crate) timeout: Duration,
}

/// What the accepting side checks.
pub(crate) struct Rules<'a> {
    pub(crate) max_frame: usize,
    /// Refuse every client, with this reason (connection limit).
    pub(crate) refusal: Option<Refusal>,
    /// When not empty, every client must prove one of these.
    pub(crate) tokens: Option<&'a Tokens>,
    /// Who the transport (TLS) says the client is.
    pub(crate) identity: Option<PeerIdentity>,
    pub(crate) timeout: Duration,
}

/// What the client sends right after its hello: the start of its next
/// frame (see the module docs).
const NEXT_FRAME_START: [u8; 2] = [0, 0];

fn hello_frame(body: &[u8]) -> Vec<u8> {
    frame_in(PROTOCOL_VERSION, body)
}

/// A handshake frame saying it speaks `version`.
fn frame_in(version: u16, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + MAGIC.len() + 2 + body.len());
    frame.extend_from_slice(&((MAGIC.len() + 2 + body.len()) as u32).to_be_bytes());
    frame.extend_from_slice(MAGIC);
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

fn short_text(s: &str) -> Vec<u8> {
    let mut end = s.len().min(MAX_HANDSHAKE - 128);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = &s.as_bytes()[..end];
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Send a handshake frame in `version`.
async fn send<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    version: u16,
    body: &[u8],
    what: &str,
) -> Result<()> {
    write(io, &frame_in(version, body), what).await
}

async fn write<IO: AsyncWrite + Unpin>(io: &mut IO, bytes: &[u8], what: &str) -> Result<()> {
    io.write_all(bytes)
        .await
        .map_err(|e| io_error(e, format!("cannot send the {what}")))?;
    io.flush()
        .await
        .map_err(|e| io_error(e, format!("cannot send the {what}")))
}

/// `frame` without its first bytes, which went out after the hello.
fn after_start(frame: &[u8]) -> &[u8] {
    debug_assert!(frame.starts_with(&NEXT_FRAME_START), "a frame over 64 KiB");
    &frame[NEXT_FRAME_START.len()..]
}

/// Read one handshake frame; returns (version, rest of body).
async fn read_hello<R: AsyncRead + Unpin>(io: &mut R, who: &str) -> Result<(u16, Vec<u8>)> {
    let mut head = [0u8; 4 + 6];
    let mut got = 0;
    while got < head.len() {
        match io.read(&mut head[got..]).await {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(io_error(e, format!("handshake with {who} failed"))),
        }
    }
    let head = &head[..got];
    if crate::rpyc::looks_like_rpyc(head) {
        return Err(Error::with_source(
            ErrorKind::Protocol,
            format!(
                "{who} answered with an RPyC frame, not the tether protocol: it looks like \
                 an RPyC server (its first bytes were {})",
                show_bytes(head)
            ),
            OtherDialect(Dialect::Rpyc),
        ));
    }
    let magic = head.get(4..).unwrap_or_default();
    if magic != MAGIC {
        // Bytes that could still be tether's, then the end of the stream.
        if got < 4 + MAGIC.len() && MAGIC.starts_with(magic) {
            return Err(raise::closed(format!(
                "{who} closed the connection during the handshake"
            )));
        }
        return Err(raise::protocol(format!(
            "{who} does not speak the tether protocol (its first bytes were {})",
            show_bytes(head)
        )));
    }
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if !(MAGIC.len() + 2..=MAX_HANDSHAKE).contains(&len) {
        return Err(raise::protocol(format!(
            "{who} sent a handshake of {len} bytes (expected at most {MAX_HANDSHAKE})"
        )));
    }
    let mut rest = vec![0u8; len - MAGIC.len()];
    io.read_exact(&mut rest)
        .await
        .map_err(|e| io_error(e, format!("handshake with {who} failed")))?;
    let version = u16::from_be_bytes([rest[0], rest[1]]);
    Ok((version, rest.split_off(2)))
}

/// Bytes a stranger sent, for a message: as text when they are printable
/// ASCII (`"HTTP/1.1 4"`), else in hex (`0x15030300...`).
fn show_bytes(bytes: &[u8]) -> String {
    let printable = |b: &u8| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n' | b'\t');
    if !bytes.is_empty() && bytes.iter().all(printable) {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{hex}")
    }
}

/// A length-prefixed text at `at`, and the offset after it.
fn take_text(body: &[u8], at: usize) -> Option<(String, usize)> {
    let len = u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?) as usize;
    let bytes = body.get(at + 2..at + 2 + len)?;
    Some((String::from_utf8_lossy(bytes).into_owned(), at + 2 + len))
}

/// A text followed by the sender's frame limit, and the offset after them.
fn take_text_and_limit(body: &[u8], at: usize) -> Option<(String, usize, usize)> {
    let (text, end) = take_text(body, at)?;
    let limit = u32::from_be_bytes(body.get(end..end + 4)?.try_into().ok()?);
    Some((text, limit as usize, end + 4))
}

fn take_nonce(body: &[u8], at: usize) -> Option<Nonce> {
    body.get(at..at + NONCE_LEN)?.try_into().ok()
}

fn with_limit(mut body: Vec<u8>, max_frame: usize) -> Vec<u8> {
    body.extend_from_slice(&(max_frame.min(u32::MAX as usize) as u32).to_be_bytes());
    body
}

fn timed_out(timeout: Duration, what: &str) -> Error {
    Error::new(ErrorKind::Timeout, format!("no {what} within {timeout:?}"))
}

/// The connecting side: send our hello, answer a challenge if asked, read
/// the server's verdict.
pub(crate) async fn client<IO>(io: &mut IO, hello: Hello<'_>) -> Result<PeerHello>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        let client_nonce = token::nonce()?;
        let mut body = with_limit(short_text(hello.service), hello.max_frame);
        body.extend_from_slice(&client_nonce);
        let mut first = hello_frame(&body);
        first.extend_from_slice(&NEXT_FRAME_START);
        write(io, &first, "handshake").await?;
        let (version, mut body) = read_hello(io, "the server").await?;
        let mut challenged = None;
        if version == PROTOCOL_VERSION && body.first() == Some(&STATUS_CHALLENGE) {
            let server_nonce = take_nonce(&body, 1)
                .ok_or_else(|| raise::protocol("the server sent a truncated token challenge"))?;
            let proof = match hello.token {
                Some(token) => token
                    .prove(Role::Client, &client_nonce, &server_nonce)
                    .to_vec(),
                None => Vec::new(),
            };
            let mut answer = vec![proof.len() as u8];
            answer.extend_from_slice(&proof);
            write(io, after_start(&hello_frame(&answer)), "token proof").await?;
            challenged = Some(server_nonce);
            (_, body) = read_hello(io, "the server").await?;
        }
        let status = *body
            .first()
            .ok_or_else(|| raise::protocol("the server sent an empty handshake answer"))?;
        let (text, _) = take_text(&body, 1)
            .ok_or_else(|| raise::protocol("the server sent a truncated handshake answer"))?;
        match status {
            STATUS_ACCEPT => {}
            STATUS_DENIED if challenged.is_some() && hello.token.is_none() => {
                return Err(raise::denied(format!(
                    "the server requires a token and none was given ({text})"
                )))
            }
            STATUS_DENIED => {
                return Err(raise::denied(format!("the server denied access: {text}")))
            }
            _ => {
                return Err(raise::closed(format!(
                    "the server refused the connection: {text}"
                )))
            }
        }
        if version != PROTOCOL_VERSION {
            return Err(raise::protocol(format!(
                "the server speaks tether protocol version {version}, this client speaks {PROTOCOL_VERSION}"
            )));
        }
        let (service, max_frame, end) = take_text_and_limit(&body, 1)
            .ok_or_else(|| raise::protocol("the server sent a truncated handshake answer"))?;
        if let Some(token) = hello.token {
            // The server must prove it holds the token too; otherwise
            // anyone who got to the address first could pose as it.
            let Some(server_nonce) = challenged else {
                return Err(raise::denied(
                    "the server did not ask for the token, so it could not prove it holds it",
                ));
            };
            let proof = body.get(end..).unwrap_or_default();
            if !token.verify(Role::Server, &client_nonce, &server_nonce, proof) {
                return Err(raise::denied(
                    "the server could not prove it holds the token",
                ));
            }
        }
        if challenged.is_none() {
            // The frame begun after the hello: an empty release batch.
            let release = codec::encode(&Message::Release(Vec::new()), &NoRefs, max_frame)?;
            write(io, after_start(&release), "handshake").await?;
        }
        Ok(PeerHello {
            service,
            max_frame,
            identity: None,
            version,
        })
    };
    tokio::time::timeout(hello.timeout, exchange)
        .await
        .map_err(|_| timed_out(hello.timeout, "handshake answer"))?
}

/// The accepting side: read the client's hello, challenge it for a token
/// when `rules` has any, let `decide` (given the client's identity) name the
/// service to accept it with or deny it with a reason, and answer.
///
/// A denied client learns only that it was denied; the returned error
/// ([`ErrorKind::Denied`]) has the precise reason, for the server's log.
pub(crate) async fn server<IO, D>(io: &mut IO, rules: Rules<'_>, decide: D) -> Result<PeerHello>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    D: FnOnce(Option<&PeerIdentity>) -> std::result::Result<String, String>,
{
    let timeout = rules.timeout;
    let max_frame = rules.max_frame;
    let answer = |status: u8, text: &str, proof: Option<[u8; PROOF_LEN]>| {
        let mut body = vec![status];
        body.extend(with_limit(short_text(text), max_frame));
        body.extend_from_slice(proof.as_ref().map_or(&[][..], |p| &p[..]));
        body
    };
    let exchange = async {
        let (version, body) = read_hello(io, "the client").await?;
        let peer = take_text_and_limit(&body, 0);
        let client_nonce = peer
            .as_ref()
            .and_then(|(_, _, end)| take_nonce(&body, *end));
        let refusal = match (rules.refusal, &client_nonce) {
            (Some(r), _) => Some(r.0),
            (None, _) if !(OLDEST_ACCEPTED..=PROTOCOL_VERSION).contains(&version) => Some(format!(
                "protocol version mismatch: the server speaks {PROTOCOL_VERSION} \
                     (and accepts clients from {OLDEST_ACCEPTED}), the client {version}"
            )),
            (None, None) => Some("truncated handshake".to_string()),
            (None, Some(_)) => None,
        };
        // Answers are in the client's version when it is one we accept.
        let spoken = if (OLDEST_ACCEPTED..=PROTOCOL_VERSION).contains(&version) {
            version
        } else {
            PROTOCOL_VERSION
        };
        if let Some(reason) = refusal {
            send(
                io,
                spoken,
                &answer(STATUS_REFUSE, &reason, None),
                "handshake answer",
            )
            .await?;
            return Err(raise::protocol(format!("refused the client: {reason}")));
        }
        let (service, peer_max_frame, _) = peer.expect("refused above when missing");
        let client_nonce = client_nonce.expect("refused above when missing");

        let mut identity = rules.identity;
        let mut server_proof = None;
        if let Some(tokens) = rules.tokens.filter(|t| !t.is_empty()) {
            let server_nonce = token::nonce()?;
            let mut challenge = vec![STATUS_CHALLENGE];
            challenge.extend_from_slice(&server_nonce);
            send(io, spoken, &challenge, "token challenge").await?;
            let (_, proof) = read_hello(io, "the client").await?;
            let proof = proof.get(1..).unwrap_or_default();
            let deny = |why: &str| raise::denied(format!("denied the client: {why}"));
            let why = match tokens.find(&client_nonce, &server_nonce, proof) {
                Some((name, token)) => {
                    identity = Some(PeerIdentity::new(name, AuthMethod::Token));
                    server_proof = Some(token.prove(Role::Server, &client_nonce, &server_nonce));
                    None
                }
                None if proof.is_empty() => Some(deny("it sent no token")),
                None => Some(deny("its token proof matches no known token")),
            };
            if let Some(err) = why {
                send(
                    io,
                    spoken,
                    &answer(STATUS_DENIED, DENIED_TEXT, None),
                    "handshake answer",
                )
                .await?;
                return Err(err);
            }
        }
        match decide(identity.as_ref()) {
            Ok(local_service) => {
                let accept = answer(STATUS_ACCEPT, &local_service, server_proof);
                send(io, spoken, &accept, "handshake answer").await?;
                Ok(PeerHello {
                    service,
                    max_frame: peer_max_frame,
                    identity,
                    version: spoken,
                })
            }
            Err(reason) => {
                send(
                    io,
                    spoken,
                    &answer(STATUS_DENIED, &reason, None),
                    "handshake answer",
                )
                .await?;
                Err(raise::denied(format!("denied the client: {reason}")))
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| timed_out(timeout, "handshake from the client"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn hello<'a>(service: &'a str, max_frame: usize, token: Option<&'a Token>) -> Hello<'a> {
        Hello {
            service,
            max_frame,
            token,
            timeout: T,
        }
    }

    fn rules(max_frame: usize, tokens: Option<&Tokens>) -> Rules<'_> {
        Rules {
            max_frame,
            refusal: None,
            tokens,
            identity: None,
            timeout: T,
        }
    }

    fn accept(
        service: &str,
    ) -> impl FnOnce(Option<&PeerIdentity>) -> std::result::Result<String, String> + '_ {
        move |_| Ok(service.to_string())
    }

    #[tokio::test]
    async fn both_sides_learn_each_others_service() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let (c, s) = tokio::join!(
            client(&mut a, hello("Client", 5000, None)),
            server(&mut b, rules(7000, None), accept("Calc"))
        );
        let (c, s) = (c.unwrap(), s.unwrap());
        assert_eq!((c.service.as_str(), c.max_frame), ("Calc", 7000));
        assert_eq!((s.service.as_str(), s.max_frame), ("Client", 5000));
        assert!(s.identity.is_none());
    }

    #[tokio::test]
    async fn a_token_names_the_client_and_both_sides_prove_it() {
        let tokens = Tokens::new()
            .with("alice", "sa")
            .unwrap()
            .with("bob", "sb")
            .unwrap();
        let token = Token::new("sb").unwrap();
        let (mut a, mut b) = tokio::io::duplex(1024);
        let (c, s) = tokio::join!(
            client(&mut a, hello("Client", 5000, Some(&token))),
            server(&mut b, rules(7000, Some(&tokens)), |who| {
                Ok(format!("Calc for {}", who.unwrap().name()))
            })
        );
        assert_eq!(c.unwrap().service, "Calc for bob");
        let who = s.unwrap().identity.unwrap();
        assert_eq!((who.name(), who.method()), ("bob", AuthMethod::Token));
    }

    #[tokio::test]
    async fn a_wrong_or_missing_token_is_denied_on_both_sides() {
        let tokens = Tokens::new().with("alice", "sa").unwrap();
        let wrong = Token::new("guess").unwrap();
        for token in [Some(&wrong), None] {
            let (mut a, mut b) = tokio::io::duplex(1024);
            let (c, s) = tokio::join!(
                client(&mut a, hello("Client", 5000, token)),
                server(&mut b, rules(7000, Some(&tokens)), accept("Calc"))
            );
            let (c, s) = (c.unwrap_err(), s.unwrap_err());
            assert_eq!((c.kind(), s.kind()), (ErrorKind::Denied, ErrorKind::Denied));
            assert!(!c.message().contains("Calc"), "{c}");
        }
    }

    #[tokio::test]
    async fn a_client_with_a_token_wants_the_server_to_prove_it_too() {
        let token = Token::new("sa").unwrap();
        let (mut a, mut b) = tokio::io::duplex(1024);
        let (c, _) = tokio::join!(
            client(&mut a, hello("Client", 5000, Some(&token))),
            server(&mut b, rules(7000, None), accept("Impostor"))
        );
        assert_eq!(c.unwrap_err().kind(), ErrorKind::Denied);
    }

    #[tokio::test]
    async fn another_version_is_refused_with_a_reason() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let mut hello = hello_frame(&with_limit(short_text("x"), 1024));
        hello[10..12].copy_from_slice(&1u16.to_be_bytes());
        a.write_all(&hello).await.unwrap();
        let err = server(&mut b, rules(1024, None), accept("Calc"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        let (_, body) = read_hello(&mut a, "the server").await.unwrap();
        assert_eq!(body[0], STATUS_REFUSE);
        assert!(take_text(&body, 1).unwrap().0.contains("version mismatch"));
    }

    #[tokio::test]
    async fn older_clients_are_accepted_and_answered_in_their_version() {
        for old in OLDEST_ACCEPTED..PROTOCOL_VERSION {
            let (mut a, mut b) = tokio::io::duplex(1024);
            let mut body = with_limit(short_text("Old"), 1024);
            body.extend_from_slice(&[7; NONCE_LEN]);
            a.write_all(&frame_in(old, &body)).await.unwrap();
            let peer = server(&mut b, rules(1024, None), accept("Calc"))
                .await
                .unwrap();
            assert_eq!((peer.service.as_str(), peer.version), ("Old", old));
            let (version, answer) = read_hello(&mut a, "the server").await.unwrap();
            assert_eq!((version, answer[0]), (old, STATUS_ACCEPT));
        }
    }

    #[tokio::test]
    async fn a_current_client_and_server_speak_the_current_version() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let (c, s) = tokio::join!(
            client(&mut a, hello("Client", 5000, None)),
            server(&mut b, rules(7000, None), accept("Calc"))
        );
        assert_eq!(c.unwrap().version, PROTOCOL_VERSION);
        assert_eq!(s.unwrap().version, PROTOCOL_VERSION);
    }

    #[tokio::test]
    async fn a_stranger_is_recognised_from_its_first_bytes() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let err = server(&mut b, rules(1024, None), accept("Calc"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(
            err.message().contains("does not speak the tether protocol"),
            "{err}"
        );
        assert!(err
            .message()
            .ends_with(r#"(its first bytes were "GET / HTTP")"#));
    }

    #[test]
    fn strangers_bytes_show_as_text_or_hex() {
        assert_eq!(show_bytes(b"HTTP/1.1 4"), r#""HTTP/1.1 4""#);
        assert_eq!(show_bytes(b"ok\r\n"), r#""ok\r\n""#);
        assert_eq!(show_bytes(&[0x15, 0x03, 0x03, 0x00, 0x02]), "0x1503030002");
        assert_eq!(show_bytes(b"\x00\x00\x00\x08\x00\x01"), "0x000000080001");
    }

    #[tokio::test]
    async fn the_frame_begun_after_the_hello_is_an_empty_release_batch() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let (c, s) = tokio::join!(
            client(&mut a, hello("Client", 5000, None)),
            server(&mut b, rules(7000, None), accept("Calc"))
        );
        c.unwrap();
        s.unwrap();
        drop(a);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(rest.len(), 4 + len, "one frame: {rest:?}");
        let decoded = codec::decode(&rest[4..], &NoRefs).unwrap();
        assert!(
            matches!(&decoded.message, Message::Release(pairs) if pairs.is_empty()),
            "{:?}",
            decoded.message
        );
    }

    /// A peer framing as RPyC does: it reads a flag byte and a newline
    /// besides a frame's length, so it needs the two bytes sent after the
    /// hello to have a whole frame; it then answers with an RPyC frame.
    #[tokio::test]
    async fn a_server_answering_with_rpyc_framing_is_named_at_once() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let rpyc_server = async move {
            let len = b.read_u32().await.unwrap() as usize;
            let mut frame = vec![0; 1 + len + 1];
            b.read_exact(&mut frame).await.unwrap();
            // RPyC's CLOSE request, as rpyc 6 sends it when it gives up.
            b.write_all(b"\x00\x00\x00\x08\x00\x01\x11P\x11R\x11Q\x02\n")
                .await
                .unwrap();
            b
        };
        let (c, _b) = tokio::join!(client(&mut a, hello("Client", 5000, None)), rpyc_server);
        let err = c.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert_eq!(err.peer_dialect(), Some(Dialect::Rpyc), "{err}");
        assert!(err.message().contains("looks like an RPyC server"), "{err}");
        assert!(err.message().contains("0x0000000800"), "{err}");
    }

    #[tokio::test]
    async fn a_server_closing_mid_answer_is_a_close_not_a_stranger() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let closing = async move {
            let mut hello = [0; 8];
            b.read_exact(&mut hello).await.unwrap();
            b.write_all(b"\x00\x00\x00\x20TET").await.unwrap();
        };
        let (c, ()) = tokio::join!(client(&mut a, hello("Client", 5000, None)), closing);
        let err = c.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
        assert_eq!(err.peer_dialect(), None);
    }
}
