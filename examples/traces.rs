//! Traces across calls: one OpenTelemetry trace from the client, through
//! the server, into the callback the server makes back to the client.
//!
//! Installs `tracing-opentelemetry`'s layer with the OpenTelemetry SDK's
//! in-memory exporter (in an application: OTLP, Jaeger, stdout...),
//! serves a `Relay` on loopback, and calls its `call_back(function)`
//! with a client callback, inside a span of the client's own. Then
//! prints every span of that trace, each under its parent:
//!
//! ```text
//! call_back(double, 21) = 42
//! trace 33ad4e80e21c7d0f2bdd2eb6e4a475b6
//!   client work                        internal
//!     call_back()                      client    connection 2
//!       call_back()                    server    connection 1
//!         call                         client    connection 1
//!           call                       server    connection 2
//! 5 spans, one trace
//! ```
//!
//! ```sh
//! cargo run --example traces --features otel
//! ```

use std::collections::HashMap;

use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tether::{NetRef, Result, Value};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// The service: calls a function it is given back.
#[derive(Clone)]
struct Relay;

#[tether::expose]
impl Relay {
    /// Call `function` with `n`; what it returns.
    #[method]
    async fn call_back(&self, function: NetRef, n: i64) -> Result<Value> {
        function.call((n,)).await
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    // The application's part: a tracer, and the layer that turns tracing
    // spans (tether's among them) into OpenTelemetry spans.
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("traces-example"));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("no other subscriber");

    let server = tether::Server::bind("127.0.0.1:0").await?;
    let addr = server.local_addr()?;
    tokio::spawn(server.serve(Relay));

    let conn = tether::connect(addr).await?;
    let root = conn.root().await?;
    let double = tether::callback(|n: i64| async move { Ok(2 * n) });
    let answer = root
        .call_method("call_back", (double, 21))
        .instrument(tracing::info_span!("client work"))
        .await?;
    println!("call_back(double, 21) = {answer}");
    conn.close().await;

    provider.force_flush().expect("in memory");
    let spans = exporter.get_finished_spans().expect("in memory");
    let Some(work) = spans.iter().find(|s| s.name == "client work") else {
        panic!("the client's span was not recorded");
    };
    let trace = work.span_context.trace_id();
    let in_trace: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    println!("trace {trace}");
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    for span in &in_trace {
        children.entry(span.parent_span_id).or_default().push(span);
    }
    print_tree(&children, work, 1);
    println!("{} spans, one trace", in_trace.len());
    Ok(())
}

/// `span` and, below it, its children in the order they started.
fn print_tree(children: &HashMap<SpanId, Vec<&SpanData>>, span: &SpanData, depth: usize) {
    let connection = span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "connection")
        .map(|kv| format!("connection {}", kv.value))
        .unwrap_or_default();
    let indent = "  ".repeat(depth);
    let name = format!("{indent}{}", span.name);
    let kind = format!("{:?}", span.span_kind).to_lowercase();
    println!("{name:<36} {kind:<9} {connection}");
    let mut below = children
        .get(&span.span_context.span_id())
        .cloned()
        .unwrap_or_default();
    below.sort_by_key(|s| s.start_time);
    for child in below {
        print_tree(children, child, depth + 1);
    }
}
