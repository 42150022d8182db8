//! Traces across calls (feature `otel`): the spans of a call on the
//! client, on the server and in the callback the server makes share one
//! trace, with the right parents; batches, pipelined chains, the gateway,
//! the Cap'n Web endpoint and stateless NATS requests join the trace they
//! are given; a malformed `traceparent` is ignored; a peer of protocol 4
//! is sent no trace context, one of protocol 5 is (raw frames).
//!
//! Each test records into its own in-memory exporter through a subscriber
//! set for its thread only, on a current-thread runtime, so every task of
//! the test (both peers, the HTTP server) runs where it is seen.

mod support;

use axum::body::Body;
use axum::http::Request;
use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::wire::{self, RawPeer};
use tether::{Builder, NetRef, Result, Value};
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// The service: calls back, adds, hands out another of itself.
#[derive(Clone)]
struct Relay;

#[tether::expose]
impl Relay {
    /// Call `function` with no arguments; what it returns.
    #[method]
    async fn call_back(&self, function: NetRef) -> Result<Value> {
        function.call(()).await
    }

    /// Add two integers.
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Another relay, by reference.
    #[method]
    fn another(&self) -> NetRef {
        NetRef::new(Relay)
    }
}

/// Spans recorded on this thread while it lives.
struct Recorder {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

fn record() -> Recorder {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("traces-test"));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    Recorder {
        exporter,
        _provider: provider,
        _guard: guard,
    }
}

impl Recorder {
    /// The finished spans, once `done` holds of them. Spans finish when
    /// the tasks holding them let go, which may take the runtime a few
    /// more turns after the call returns (on another worker, descheduled
    /// for a while on a busy machine): looks again after each turn, then
    /// every millisecond, for at most a minute, so that a regression fails
    /// rather than hangs.
    async fn spans_once(&self, done: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        for turn in 0u32.. {
            let spans = self.exporter.get_finished_spans().unwrap();
            if done(&spans) {
                return spans;
            }
            if tokio::time::Instant::now() > give_up {
                break;
            }
            if turn < 100 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        panic!(
            "the spans never got there: {:#?}",
            self.exporter.get_finished_spans().unwrap()
        );
    }
}

/// The Cap'n Web endpoint's span for `.add()` is a child of the span the
/// `traceparent` header named.
async fn served_add_in_the_given_trace(recorder: &Recorder) {
    let spans = recorder
        .spans_once(|s| has(s, ".add()", SpanKind::Server))
        .await;
    let call = span(&spans, ".add()", SpanKind::Server);
    assert_eq!(trace_of(call), given_trace());
    assert_eq!(call.parent_span_id, given_parent());
}

/// The one span named `name` of `kind` in `spans`.
fn span<'a>(spans: &'a [SpanData], name: &str, kind: SpanKind) -> &'a SpanData {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.name == name && s.span_kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "{name} ({kind:?}) in {spans:#?}");
    found[0]
}

fn has(spans: &[SpanData], name: &str, kind: SpanKind) -> bool {
    spans.iter().any(|s| s.name == name && s.span_kind == kind)
}

fn trace_of(s: &SpanData) -> TraceId {
    s.span_context.trace_id()
}

fn id_of(s: &SpanData) -> SpanId {
    s.span_context.span_id()
}

/// `child` is a child of `parent`, in its trace.
fn assert_child(child: &SpanData, parent: &SpanData) {
    assert_eq!(trace_of(child), trace_of(parent), "{child:#?}");
    assert_eq!(child.parent_span_id, id_of(parent), "{child:#?}");
}

#[tokio::test]
async fn client_server_and_callback_spans_share_one_trace() {
    let recorder = record();
    let (client, _server) =
        tether::transport::memory::pair(Builder::default(), Builder::default().root(Relay))
            .await
            .unwrap();
    let root = client.root().await.unwrap();
    let answer = tether::callback(|(): ()| async { Ok(42i64) });
    let got = root.call_method("call_back", (answer,)).await.unwrap();
    assert_eq!(got, Value::from(42));

    let spans = recorder
        .spans_once(|s| has(s, "call_back()", SpanKind::Client) && has(s, "call", SpanKind::Server))
        .await;
    let client_call = span(&spans, "call_back()", SpanKind::Client);
    let served = span(&spans, "call_back()", SpanKind::Server);
    let callback_call = span(&spans, "call", SpanKind::Client);
    let callback_served = span(&spans, "call", SpanKind::Server);
    // The client's call starts the trace; each hop is a child of the last.
    assert_eq!(client_call.parent_span_id, SpanId::INVALID);
    assert_child(served, client_call);
    assert_child(callback_call, served);
    assert_child(callback_served, callback_call);
    assert!(served.parent_span_is_remote && callback_served.parent_span_is_remote);
    // Getting the root was a trace of its own.
    let get_root = span(&spans, "get root", SpanKind::Client);
    assert_ne!(trace_of(get_root), trace_of(client_call));
    assert_child(span(&spans, "get root", SpanKind::Server), get_root);
}

#[tokio::test]
async fn a_call_made_in_a_span_joins_its_trace_and_so_do_batches_and_pipelined_chains() {
    let recorder = record();
    let (client, _server) =
        tether::transport::memory::pair(Builder::default(), Builder::default().root(Relay))
            .await
            .unwrap();
    let outer = tracing::info_span!("work");
    let trace = async {
        let root = client.root().await.unwrap();
        let mut batch = client.batch();
        batch.call_method(&root, "add", (1, 2)).unwrap();
        let results = batch.send().await.unwrap();
        assert_eq!(results[0].as_ref().unwrap(), &Value::from(3));
        // Two pipelined requests: the second on the first's answer.
        let sum = root
            .promise()
            .call_method("another", ())
            .call_method("add", (2, 3));
        assert_eq!(sum.await.unwrap(), Value::from(5));
        tracing::Span::current()
            .context()
            .span()
            .span_context()
            .trace_id()
    }
    .instrument(outer)
    .await;

    let spans = recorder
        .spans_once(|s| {
            has(s, "work", SpanKind::Internal) && has(s, "add()", SpanKind::Server) && s.len() >= 9
        })
        .await;
    let tether_spans: Vec<_> = spans.iter().filter(|s| s.name != "work").collect();
    assert_eq!(tether_spans.len(), 8, "{spans:#?}");
    for s in &tether_spans {
        assert_eq!(trace_of(s), trace, "{s:#?}");
    }
    assert_child(
        span(&spans, "batch of 1", SpanKind::Server),
        span(&spans, "batch of 1", SpanKind::Client),
    );
    assert_child(
        span(&spans, "another()", SpanKind::Server),
        span(&spans, "another()", SpanKind::Client),
    );
    assert_child(
        span(&spans, "add()", SpanKind::Server),
        span(&spans, "add()", SpanKind::Client),
    );
    // The promise's steps ran in tasks of their own, under the span the
    // promise was made in.
    let work = span(&spans, "work", SpanKind::Internal);
    assert_child(span(&spans, "add()", SpanKind::Client), work);
}

// ---- HTTP: the gateway and the Cap'n Web endpoint ----

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

fn given_trace() -> TraceId {
    TraceId::from_hex(TRACE_ID).unwrap()
}

fn given_parent() -> SpanId {
    SpanId::from_hex(PARENT_ID).unwrap()
}

/// POST `body` to `path` of `router` with `headers`; the answer's body.
async fn post(router: axum::Router, path: &str, body: &str, headers: &[(&str, &str)]) -> String {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

const JSON_BATCH: &str = r#"[{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1},
    {"jsonrpc": "2.0", "method": "add", "params": [3, 4], "id": 2}]"#;

#[tokio::test]
async fn a_gateway_request_with_a_traceparent_is_served_in_that_trace() {
    let recorder = record();
    let router = tether::gateway::Gateway::new(Relay).router();
    let json = [("content-type", "application/json")];
    let header = traceparent();
    let answer = post(
        router,
        "/RPC2",
        JSON_BATCH,
        &[json[0], ("traceparent", header.as_str())],
    )
    .await;
    assert!(answer.contains(r#""result":3"#) && answer.contains(r#""result":7"#));

    let spans = recorder
        .spans_once(|s| has(s, "POST /RPC2", SpanKind::Server))
        .await;
    let http = span(&spans, "POST /RPC2", SpanKind::Server);
    assert_eq!(trace_of(http), given_trace());
    assert_eq!(http.parent_span_id, given_parent());
    assert!(http.parent_span_is_remote);
    let calls: Vec<_> = spans.iter().filter(|s| s.name == "add()").collect();
    assert_eq!(calls.len(), 2, "{spans:#?}");
    for call in calls {
        assert_child(call, http);
    }
}

#[tokio::test]
async fn a_malformed_or_repeated_traceparent_is_ignored() {
    let recorder = record();
    let router = tether::gateway::Gateway::new(Relay).router();
    let call = r#"{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}"#;
    let json = ("content-type", "application/json");
    let good = traceparent();
    let malformed = [
        vec![("traceparent", "garbage")],
        vec![(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        )],
        vec![(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
        vec![(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        )],
        // Two of them: which one would be meant?
        vec![
            ("traceparent", good.as_str()),
            ("traceparent", good.as_str()),
        ],
    ];
    for headers in &malformed {
        let mut all = vec![json];
        all.extend(headers.iter().copied());
        let answer = post(router.clone(), "/", call, &all).await;
        assert_eq!(answer, r#"{"id":1,"jsonrpc":"2.0","result":3}"#);
    }
    let spans = recorder
        .spans_once(|s| s.iter().filter(|s| s.name == "POST /").count() == malformed.len())
        .await;
    for http in spans.iter().filter(|s| s.name == "POST /") {
        // A trace of its own.
        assert_eq!(http.parent_span_id, SpanId::INVALID, "{http:#?}");
        assert_ne!(trace_of(http), given_trace());
    }
    assert_eq!(
        spans.iter().filter(|s| s.name == "add()").count(),
        malformed.len()
    );
}

/// A stateless NATS request is served in the trace its `traceparent`
/// header names; a repeated or malformed one is ignored, as over HTTP.
#[cfg(feature = "nats")]
#[tokio::test]
async fn a_nats_request_with_a_traceparent_is_served_in_that_trace() {
    use tether::nats::async_nats::{self, HeaderMap};

    let recorder = record();
    let nats = support::nats::NatsServer::start();
    let server = tether::Server::builder()
        .nats(tether::nats::Registration::new(nats.url(), "relay"))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_until(Relay, async {
        let _ = stopped.await;
    }));
    let client = async_nats::connect(nats.url()).await.unwrap();
    support::nats_client::wait_for(&client, "relay", 1, "add").await;

    let good = traceparent();
    let mut given = HeaderMap::new();
    given.insert("traceparent", good.as_str());
    let mut repeated = HeaderMap::new();
    repeated.append("traceparent", good.as_str());
    repeated.append("traceparent", good.as_str());
    let mut malformed = HeaderMap::new();
    malformed.insert("traceparent", "00-garbage");
    for headers in [given, repeated, malformed] {
        let answer = client
            .request_with_headers("relay.add", headers, "[1, 2]".into())
            .await
            .unwrap();
        assert_eq!(&answer.payload[..], b"3");
    }

    let spans = recorder
        .spans_once(|s| s.iter().filter(|s| s.name == "relay.add").count() == 3)
        .await;
    let requests: Vec<_> = spans.iter().filter(|s| s.name == "relay.add").collect();
    let in_given: Vec<_> = requests
        .iter()
        .filter(|s| trace_of(s) == given_trace())
        .collect();
    assert_eq!(in_given.len(), 1, "{spans:#?}");
    let request = in_given[0];
    assert_eq!(request.span_kind, SpanKind::Server);
    assert_eq!(request.parent_span_id, given_parent());
    assert!(request.parent_span_is_remote);
    for ignored in requests.iter().filter(|s| trace_of(s) != given_trace()) {
        // A trace of its own.
        assert_eq!(ignored.parent_span_id, SpanId::INVALID, "{ignored:#?}");
    }
    let calls: Vec<_> = spans.iter().filter(|s| s.name == "add()").collect();
    assert_eq!(calls.len(), 3, "{spans:#?}");
    assert!(calls
        .iter()
        .any(|call| call.parent_span_id == id_of(request)));

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_capnweb_batch_with_a_traceparent_is_served_in_that_trace() {
    let recorder = record();
    let router = tether::capnweb::CapnWeb::new(Relay).router();
    let header = traceparent();
    let batch = "[\"push\",[\"pipeline\",0,[\"add\"],[1,2]]]\n[\"pull\",1]";
    let answer = post(router, "/capnweb", batch, &[("traceparent", &header)]).await;
    assert_eq!(answer, "[\"resolve\",1,3]");

    served_add_in_the_given_trace(&recorder).await;
}

#[tokio::test]
async fn a_capnweb_websocket_with_a_traceparent_is_served_in_that_trace() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let recorder = record();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tether::capnweb::CapnWeb::new(Relay).serve(listener));
    let mut request = format!("ws://{addr}/capnweb")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("traceparent", traceparent().parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    for message in [r#"["push",["pipeline",0,["add"],[1,2]]]"#, r#"["pull",1]"#] {
        socket.send(Message::Text(message.into())).await.unwrap();
    }
    let answer = loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Text(text) => break text.to_string(),
            _ => continue,
        }
    };
    assert_eq!(answer, "[\"resolve\",1,3]");

    served_add_in_the_given_trace(&recorder).await;
}

// ---- the version gate, in raw frames ----

/// A raw peer of protocol `version` asks the server to call its object
/// back; what follows the callback request's operation on the wire, and
/// the server span's trace id.
async fn callback_request_tail(version: u16) -> (Vec<u8>, TraceId) {
    let recorder = record();
    let (peer_end, server_end) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(Builder::default().root(Relay).accept_io(server_end, None));
    let mut peer = RawPeer::handshake_as(peer_end, version).await;
    let _server = server.await.unwrap().unwrap();
    let root = peer.root(1).await;
    // call_back(<our object 1>): VAL_MINE, id 1.
    let call = wire::call_method("call_back", &[vec![10, 1]]);
    peer.send(&wire::request(2, root, 5_000, &call)).await;

    let request = wire::read_frame(&mut peer.io).await;
    let mut at = 0;
    let mut varint = || {
        let (n, len) = match request[at + 1] {
            n @ 0..=250 => (n as u64, 1),
            251 => (
                u16::from_le_bytes([request[at + 2], request[at + 3]]) as u64,
                3,
            ),
            other => panic!("an unexpected varint marker {other}"),
        };
        at += len;
        n
    };
    assert_eq!(request[0], 0, "a request: {request:02x?}");
    let seq = varint();
    let target = varint();
    let _timeout = varint();
    assert_eq!(target, 1, "on our object: {request:02x?}");
    let tail = request[at + 1..].to_vec();

    // Answer it (Reply OK, None), then read the answer to our call.
    let mut reply = vec![1];
    wire::varint(&mut reply, seq);
    reply.push(0);
    peer.io.write_all(&wire::frame(&reply)).await.unwrap();
    match peer.reply().await {
        wire::Reply::Ok {
            seq: 2,
            value: wire::Val::None,
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    let spans = recorder
        .spans_once(|s| has(s, "call_back()", SpanKind::Server))
        .await;
    (
        tail,
        trace_of(span(&spans, "call_back()", SpanKind::Server)),
    )
}

/// `Op::Call` with no arguments, then the nesting depth 1.
const CALL_AT_DEPTH_1: [u8; 4] = [4, 0, 0, 1];

#[tokio::test]
async fn a_protocol_4_peer_is_sent_no_trace_context() {
    let (tail, _) = callback_request_tail(4).await;
    assert_eq!(tail, CALL_AT_DEPTH_1);
}

#[tokio::test]
async fn a_protocol_5_peer_is_sent_the_serving_spans_context() {
    let (tail, trace) = callback_request_tail(5).await;
    assert_eq!(tail[..4], CALL_AT_DEPTH_1);
    let context = &tail[4..];
    assert_eq!(context.len(), 16 + 8 + 1, "{tail:02x?}");
    assert_eq!(
        TraceId::from_bytes(context[..16].try_into().unwrap()),
        trace
    );
    assert_ne!(context[16..24], [0; 8]);
    assert_eq!(context[24], 1, "sampled");
}
