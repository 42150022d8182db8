//! The Cap'n Web endpoint against the real `capnweb` npm package in Node
//! (tests/js/node-client.mjs), and against raw messages a hostile client
//! could send.

mod support;

#[path = "../examples/capnweb/service.rs"]
mod hello;

use std::sync::{Arc, Mutex, OnceLock};

use tether::capnweb::CapnWeb;
use tether::{Callback, Error, NetRef, Result, Value};

/// What the JavaScript client calls.
#[derive(Clone, Default)]
struct Api {
    held: Arc<Mutex<Option<NetRef>>>,
    endpoint: Arc<OnceLock<CapnWeb>>,
    /// How the last `watched_count_to` ended.
    ended: Arc<tokio::sync::watch::Sender<Option<String>>>,
}

#[tether::expose]
impl Api {
    /// Add two integers.
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// The argument, unchanged.
    #[method]
    fn echo(&self, value: Value) -> Value {
        value
    }

    /// `at`, `days` days later.
    #[method]
    fn later(&self, at: tether::DateTime, days: i64) -> Result<tether::DateTime> {
        tether::DateTime::from_unix(at.unix_seconds() + days * 86_400, at.subsec_nanos())
    }

    /// a / b.
    #[method]
    fn divide(&self, a: f64, b: f64) -> Result<f64> {
        if b == 0.0 {
            return Err(Error::app("ValueError", "division by zero"));
        }
        Ok(a / b)
    }

    /// Call `callback(i)` for i in 1..=n, in order; the sum of what it
    /// returned.
    #[method]
    async fn count_to(&self, n: i64, callback: Callback<i64, Value>) -> Result<i64> {
        let mut sum = 0;
        for i in 1..=n {
            sum += callback.call(i).await?.as_int().unwrap_or(0);
        }
        Ok(sum)
    }

    /// Call `target.record(i)` for i in 1..=n; what the last call returned.
    #[method]
    async fn count_to_target(&self, n: i64, target: NetRef) -> Result<Value> {
        let mut last = Value::None;
        for i in 1..=n {
            last = target.call_method("record", (i,)).await?;
        }
        Ok(last)
    }

    /// Keep `callback` for [`fire`].
    #[method]
    fn hold(&self, callback: NetRef) {
        *self.held.lock().unwrap() = Some(callback);
    }

    /// Call the held callback with `word`.
    #[method]
    async fn fire(&self, word: String) -> Result<Value> {
        let held = self.held.lock().unwrap().clone();
        match held {
            Some(callback) => callback.call((word,)).await,
            None => Err(Error::app("LookupError", "nothing held")),
        }
    }

    /// Let go of the held callback.
    #[method]
    fn release_held(&self) {
        self.held.lock().unwrap().take();
    }

    /// A counter object starting at `start`.
    #[method]
    fn counter(&self, start: i64) -> NetRef {
        NetRef::new(Counter(Arc::new(Mutex::new(start))))
    }

    /// What the endpoint's sessions hold now.
    #[method]
    fn tables(&self) -> Value {
        let held = self.endpoint.get().expect("endpoint set").stats().held;
        Value::map([
            ("exports", held.exports as i64),
            ("imports", held.imports as i64),
        ])
    }

    /// Who the caller proved to be.
    #[method]
    fn whoami(&self, cx: &tether::CallContext) -> Option<String> {
        cx.peer_identity().map(|who| who.name().to_string())
    }

    /// Call `callback(i)` for i in 1..=n, reporting how it ended to
    /// [`Api::ended`] (for tests whose client never answers): finished,
    /// failed, or stopped (dropped) before either.
    #[method]
    async fn watched_count_to(&self, n: i64, callback: NetRef) -> Result<i64> {
        struct Stopped(Arc<tokio::sync::watch::Sender<Option<String>>>);
        impl Drop for Stopped {
            fn drop(&mut self) {
                self.0.send_if_modified(|report| {
                    report.get_or_insert_with(|| "stopped before finishing".into());
                    true
                });
            }
        }
        let _stopped = Stopped(self.ended.clone());
        let mut outcome = Ok(n);
        for i in 1..=n {
            if let Err(err) = callback.call((i,)).await {
                outcome = Err(err);
                break;
            }
        }
        let report = match &outcome {
            Ok(n) => format!("counted to {n}"),
            Err(err) => format!("failed: {err}"),
        };
        self.ended.send_replace(Some(report));
        outcome
    }

    /// The service's name.
    #[getter]
    fn label(&self) -> String {
        "tether".into()
    }

    /// Not exposed: never reachable.
    #[allow(dead_code)]
    fn secret(&self) -> &'static str {
        "hidden"
    }
}

#[derive(Clone)]
struct Counter(Arc<Mutex<i64>>);

#[tether::expose]
impl Counter {
    /// Add one; the new value.
    #[method]
    fn increment(&self) -> i64 {
        let mut n = self.0.lock().unwrap();
        *n += 1;
        *n
    }

    /// The current value.
    #[getter]
    fn value(&self) -> i64 {
        *self.0.lock().unwrap()
    }
}

/// An endpoint for `Api` on a loopback port; its URL.
async fn serve() -> (CapnWeb, String) {
    serve_with(Api::default(), |endpoint| endpoint).await
}

/// An endpoint for `api`, as `configure` makes it, on a loopback port;
/// its URL.
async fn serve_with(api: Api, configure: impl FnOnce(CapnWeb) -> CapnWeb) -> (CapnWeb, String) {
    let endpoint = configure(CapnWeb::new(api.clone()));
    api.endpoint.set(endpoint.clone()).ok().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/capnweb", listener.local_addr().unwrap());
    tokio::spawn(endpoint.clone().serve(listener));
    (endpoint, url)
}

#[tokio::test]
async fn the_real_capnweb_client_in_node() {
    let (_endpoint, url) = serve().await;
    let output = support::node::node("node-client.mjs")
        .arg(&url)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.ends_with("done\n"),
        "node-client.mjs failed:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[tokio::test]
async fn the_readme_client_against_the_example_service() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/capnweb", listener.local_addr().unwrap());
    tokio::spawn(CapnWeb::new(hello::Hello).serve(listener));
    let output = support::node::node("hello.mjs")
        .arg(&url)
        .output()
        .await
        .expect("run node");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "3\nHello, JavaScript!\ncallback 1\ncallback 2\ncallback 3\n42\n\
         ValueError: division by zero\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success());
}

mod raw {
    //! A client that speaks Cap'n Web messages by hand.

    use futures_util::{SinkExt, StreamExt};
    use serde_json::Value as Json;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    pub type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// A WebSocket session at `url` (http://...), with `headers`; the HTTP
    /// status when refused.
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Result<Socket, u16> {
        let mut request = url.replacen("http", "ws", 1).into_client_request().unwrap();
        for (name, value) in headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes());
            request
                .headers_mut()
                .insert(name.unwrap(), value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(other) => panic!("connecting: {other}"),
        }
    }

    pub async fn send(socket: &mut Socket, message: Json) {
        socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_text(socket: &mut Socket, text: String) {
        // The server may close first: what it said is read next.
        let _ = socket.send(Message::Text(text.into())).await;
    }

    /// The next message, or `None` once the session is closed. Bounded (a
    /// minute) so that a regression fails rather than hangs.
    pub async fn recv(socket: &mut Socket) -> Option<Json> {
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(60), socket.next());
            match next
                .await
                .expect("no message from the server within a minute")
            {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The reason of the abort that must come next; the session must close
    /// after it.
    pub async fn aborted(socket: &mut Socket) -> String {
        let message = recv(socket).await.expect("an abort message");
        assert_eq!(message[0], "abort", "{message}");
        let reason = message[1][2].as_str().unwrap().to_string();
        assert_eq!(recv(socket).await, None, "closed after the abort");
        reason
    }

    /// One call on `target` at `path` with `args`, pushed as `id` and
    /// pulled: its resolution message.
    pub async fn call(
        socket: &mut Socket,
        id: i64,
        target: i64,
        path: &[&str],
        args: Json,
    ) -> Json {
        send(
            socket,
            serde_json::json!(["push", ["pipeline", target, path, args]]),
        )
        .await;
        send(socket, serde_json::json!(["pull", id])).await;
        recv(socket).await.expect("an answer")
    }
}

use serde_json::{json, Value as Json};

#[tokio::test]
async fn garbage_ends_its_session_with_a_reason_and_leaves_others_alone() {
    let (endpoint, url) = serve().await;
    let mut bystander = raw::open(&url, &[]).await.unwrap();
    for garbage in [
        "not json",
        "{}",
        "[]",
        "[\"push\"]",
        "[\"launch\", 1]",
        "[\"push\", [\"pipeline\", \"zero\", [\"add\"], [1, 2]]]",
        "[\"push\", [\"nonsense\", 1]]",
        "[\"push\", [1, 2]]",
        "[\"pipe\", 1]",
    ] {
        let mut socket = raw::open(&url, &[]).await.unwrap();
        raw::send_text(&mut socket, garbage.to_string()).await;
        let reason = raw::aborted(&mut socket).await;
        assert!(!reason.is_empty(), "{garbage}: {reason}");
    }
    let answer = raw::call(&mut bystander, 1, 0, &["add"], json!([1, 2])).await;
    assert_eq!(answer, json!(["resolve", 1, 3]));
    drop(bystander);
    let _ = endpoint;
}

#[tokio::test]
async fn unknown_ids_other_sessions_ids_and_over_releases_end_the_session() {
    let (_endpoint, url) = serve().await;
    let mut socket = raw::open(&url, &[]).await.unwrap();
    raw::send(&mut socket, json!(["pull", 7])).await;
    assert!(raw::aborted(&mut socket)
        .await
        .contains("not on this session's export table"));

    // One session's objects are not another's.
    let mut owner = raw::open(&url, &[]).await.unwrap();
    let answer = raw::call(&mut owner, 1, 0, &["counter"], json!([1])).await;
    assert_eq!(answer, json!(["resolve", 1, ["export", -1]]));
    let mut stranger = raw::open(&url, &[]).await.unwrap();
    raw::send(
        &mut stranger,
        json!(["push", ["pipeline", -1, ["increment"], []]]),
    )
    .await;
    assert!(raw::aborted(&mut stranger).await.contains("-1"));
    let answer = raw::call(&mut owner, 2, -1, &["increment"], json!([])).await;
    assert_eq!(
        answer,
        json!(["resolve", 2, 2]),
        "the owner's object is untouched"
    );

    // Sent once, released twice.
    raw::send(&mut owner, json!(["release", -1, 2])).await;
    assert!(raw::aborted(&mut owner)
        .await
        .contains("released -1 2 times"));
}

#[tokio::test]
async fn limits_end_the_session_or_fail_the_call() {
    let config = tether::capnweb::Config {
        max_message: 4096,
        max_depth: 8,
        max_entries: 8,
        max_running: 1,
        ..Default::default()
    };
    let (_endpoint, url) = serve_with(Api::default(), |e| e.with_config(config)).await;

    let mut socket = raw::open(&url, &[]).await.unwrap();
    raw::send_text(&mut socket, format!("[\"push\", \"{}\"]", "x".repeat(5000))).await;
    assert_eq!(raw::recv(&mut socket).await, None, "over the size: closed");

    let mut socket = raw::open(&url, &[]).await.unwrap();
    let deep = format!("{}1{}", "[[".repeat(5), "]]".repeat(5));
    raw::send_text(&mut socket, format!("[\"push\", {deep}]")).await;
    assert!(raw::aborted(&mut socket)
        .await
        .contains("nested deeper than 8"));

    let mut socket = raw::open(&url, &[]).await.unwrap();
    for _ in 0..8 {
        raw::send(
            &mut socket,
            json!(["push", ["pipeline", 0, ["add"], [1, 2]]]),
        )
        .await;
    }
    assert!(raw::aborted(&mut socket).await.contains("tables are full"));

    // One call waits on a callback nobody answers; the next is refused.
    let mut socket = raw::open(&url, &[]).await.unwrap();
    raw::send(
        &mut socket,
        json!(["push", ["pipeline", 0, ["count_to"], [1, ["export", -1]]]]),
    )
    .await;
    let asked = raw::recv(&mut socket).await.unwrap();
    assert_eq!(asked, json!(["push", ["pipeline", -1, [], [1]]]));
    assert_eq!(raw::recv(&mut socket).await.unwrap(), json!(["pull", 1]));
    let refused = raw::call(&mut socket, 2, 0, &["add"], json!([1, 2])).await;
    assert_eq!(refused[0], "reject");
    assert_eq!(refused[2][1], "RangeError", "{refused}");
    assert!(refused[2][2]
        .as_str()
        .unwrap()
        .contains("too many calls running"));
}

#[tokio::test]
async fn a_client_that_vanishes_mid_callback_fails_the_call_waiting_on_it() {
    let api = Api::default();
    let mut ended = api.ended.subscribe();
    let (endpoint, url) = serve_with(api, |e| e).await;
    let mut socket = raw::open(&url, &[]).await.unwrap();
    raw::send(
        &mut socket,
        json!([
            "push",
            ["pipeline", 0, ["watched_count_to"], [3, ["export", -1]]]
        ]),
    )
    .await;
    assert_eq!(
        raw::recv(&mut socket).await.unwrap(),
        json!(["push", ["pipeline", -1, [], [1]]])
    );
    drop(socket);
    // The call stops with its session: its work is dropped, or, had it
    // run on, the callback's call would fail.
    let report = ended
        .wait_for(Option::is_some)
        .await
        .unwrap()
        .clone()
        .unwrap();
    assert!(
        report == "stopped before finishing" || report.contains("session ended"),
        "{report}"
    );
    let _ = endpoint;
}

#[tokio::test]
async fn members_outside_the_declared_ones_are_denied_without_revealing_them() {
    let (_endpoint, url) = serve().await;
    let mut socket = raw::open(&url, &[]).await.unwrap();
    for (id, path) in [(1, "secret"), (2, "__class__"), (3, "held")] {
        let answer = raw::call(&mut socket, id, 0, &[path], json!([])).await;
        assert_eq!(answer[0], "reject", "{answer}");
        assert_eq!(answer[2][4]["kind"], "denied", "{answer}");
        assert!(!answer.to_string().contains("hidden"), "{answer}");
    }
    raw::send(&mut socket, json!(["push", ["pipeline", 0, ["secret"]]])).await;
    raw::send(&mut socket, json!(["pull", 4])).await;
    let read = raw::recv(&mut socket).await.unwrap();
    assert_eq!(read[2][4]["kind"], "denied", "{read}");
    // What a console shows: the declared members only, with their docs.
    let inspected = raw::call(&mut socket, 5, 0, &["__inspect__"], json!([])).await;
    let members = inspected[2][0].as_array().expect("a list of members");
    let add = members.iter().find(|m| m["name"] == "add").expect("add");
    assert_eq!(add["doc"], "Add two integers.");
    assert_eq!(add["kind"], "method");
    assert!(
        !members.iter().any(|m| m["name"] == "secret"),
        "{inspected}"
    );
    let dir = raw::call(&mut socket, 6, 0, &["__dir__"], json!([])).await;
    assert!(
        dir[2][0].as_array().unwrap().contains(&json!("label")),
        "{dir}"
    );
}

#[tokio::test]
async fn pages_of_other_origins_are_refused() {
    let (_endpoint, url) = serve_with(Api::default(), |e| e.allow_origin("http://app.test")).await;
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches("/capnweb")
        .to_string();
    let own = format!("http://{host}");
    assert_eq!(
        raw::open(&url, &[("origin", "http://evil.test")])
            .await
            .err(),
        Some(403)
    );
    assert!(raw::open(&url, &[("origin", own.as_str())]).await.is_ok());
    assert!(raw::open(&url, &[("origin", "http://app.test")])
        .await
        .is_ok());

    let client = Batch::new(&url);
    assert_eq!(
        client.post("", &[("origin", "http://evil.test")]).await.0,
        403
    );
}

#[tokio::test]
async fn tokens_give_each_identity_its_own_root() {
    let tokens = tether::Tokens::new()
        .with("alice", "secret-of-alice")
        .unwrap()
        .with("bob", "secret-of-bob")
        .unwrap();
    let (_endpoint, url) = serve_with(Api::default(), |e| {
        e.tokens(tokens, |who| {
            let api = Api::default();
            if who.name() == "bob" {
                // Bob's root has `whoami` only.
                tether::Grant::from_ref(tether::restrict(&NetRef::new(api), &["whoami"]).unwrap())
            } else {
                tether::Grant::new(api)
            }
        })
    })
    .await;
    assert_eq!(raw::open(&url, &[]).await.err(), Some(401));
    assert_eq!(
        raw::open(&url, &[("authorization", "Bearer secret-of-eve")])
            .await
            .err(),
        Some(401)
    );
    let mut alice = raw::open(&url, &[("authorization", "Bearer secret-of-alice")])
        .await
        .unwrap();
    assert_eq!(
        raw::call(&mut alice, 1, 0, &["whoami"], json!([])).await,
        json!(["resolve", 1, "alice"])
    );
    let mut bob = raw::open(&url, &[("authorization", "Bearer secret-of-bob")])
        .await
        .unwrap();
    assert_eq!(
        raw::call(&mut bob, 1, 0, &["whoami"], json!([])).await,
        json!(["resolve", 1, "bob"])
    );
    let add = raw::call(&mut bob, 2, 0, &["add"], json!([1, 2])).await;
    assert_eq!(add[2][4]["kind"], "denied", "{add}");

    let batch = Batch::new(&url);
    assert_eq!(batch.post("", &[]).await.0, 401);
    let (status, body) = batch
        .post(
            "[\"push\",[\"pipeline\",0,[\"whoami\"],[]]]\n[\"pull\",1]",
            &[("authorization", "Bearer secret-of-alice")],
        )
        .await;
    assert_eq!((status, body.as_str()), (200, "[\"resolve\",1,\"alice\"]"));
}

#[tokio::test]
async fn batches_are_bounded() {
    let config = tether::capnweb::Config {
        max_message: 4096,
        max_batch: 3,
        ..Default::default()
    };
    let (_endpoint, url) = serve_with(Api::default(), |e| e.with_config(config)).await;
    let batch = Batch::new(&url);
    let four = ["[\"pull\",1]"; 4].join("\n");
    assert_eq!(batch.post(&four, &[]).await.0, 413);
    assert_eq!(batch.post(&"x".repeat(5000), &[]).await.0, 413);
    let (status, body) = batch.post("garbage", &[]).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("[\"abort\""), "{body}");
    assert_eq!(batch.post("", &[]).await, (200, String::new()));
}

/// HTTP batches over a plain socket.
struct Batch {
    addr: String,
}

impl Batch {
    fn new(url: &str) -> Batch {
        Batch {
            addr: url
                .trim_start_matches("http://")
                .trim_end_matches("/capnweb")
                .to_string(),
        }
    }

    /// POST `body` with `headers`: the status and body answered.
    async fn post(&self, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let mut request = format!(
            "POST /capnweb HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8(answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let (head, rest) = answer.split_once("\r\n\r\n").unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        (status, body)
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}

/// A Node capnweb server (tests/js/server.mjs): its child process and
/// its URL.
async fn node_server() -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = support::node::node("server.mjs")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start node server.mjs");
    let stdout = child.stdout.take().unwrap();
    let first = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap_or_default();
    let port = first
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("server.mjs said {first:?}"))
        .to_string();
    (child, format!("ws://127.0.0.1:{port}/api"))
}

#[tokio::test]
async fn tether_as_a_client_of_a_node_capnweb_server() {
    let (mut server, url) = node_server().await;
    let api = tether::capnweb::connect(&url).await.unwrap();
    assert!(!api.is_local());

    let sum: i64 = api
        .call_method("add", (1, 2))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(sum, 3);
    let greeting: String = api
        .call_method("greet", ("Rust",))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(greeting, "Hello, Rust!");
    let value = Value::map([(
        "k",
        Value::List(vec![Value::Int(1), Value::Bytes(vec![0, 255].into())]),
    )]);
    assert_eq!(
        api.call_method("echo", (value.clone(),)).await.unwrap(),
        value
    );

    // An object the server returns, held and called.
    let counter = api.call_method("counter", (5,)).await.unwrap();
    let counter = counter.as_ref().expect("a stub").clone();
    assert_eq!(
        counter.call_method("increment", ()).await.unwrap(),
        Value::Int(6)
    );
    assert_eq!(counter.getattr("value").await.unwrap(), Value::Int(6));
    drop(counter);

    // A Rust closure the server calls back, in order.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let callback = tether::callback_sync(move |i: i64| {
        record.lock().unwrap().push(i);
        Ok(i * 10)
    });
    let got = api.call_method("callMeBack", (callback, 3)).await.unwrap();
    assert_eq!(
        got,
        Value::from(vec![Value::Int(10), Value::Int(20), Value::Int(30)])
    );
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);

    // Errors thrown in JavaScript, and names it does not have.
    let err = api.call_method("fail", ()).await.unwrap_err();
    assert_eq!(err.type_name(), Some("TypeError"), "{err}");
    assert_eq!(err.message(), "no good");
    assert!(api.call_method("nonexistent", ()).await.is_err());

    // The server vanishes mid-call: the call fails, it does not hang.
    let waiting = tokio::spawn({
        let api = api.clone();
        async move { api.call_method("never", ()).await }
    });
    assert!(api.call_method("add", (0, 0)).await.is_ok());
    // Sent before or after the server dies, `never` fails as closed.
    server.kill().await.unwrap();
    let err = waiting.await.unwrap().unwrap_err();
    assert!(err.is_closed(), "{err}");
    assert!(api
        .call_method("add", (1, 2))
        .await
        .unwrap_err()
        .is_closed());
}

#[tokio::test]
async fn naming_an_answer_many_times_copies_it_within_a_bound() {
    let (_endpoint, url) = serve().await;
    let mut socket = raw::open(&url, &[]).await.unwrap();
    // A 3 KiB answer (kept: under 4 KiB), named 1000 times in one message.
    raw::send(&mut socket, json!(["push", "x".repeat(3000)])).await;
    let many: Vec<Json> = (0..1000).map(|_| json!(["pipeline", 1])).collect();
    raw::send(&mut socket, json!(["push", [many]])).await;
    raw::send(&mut socket, json!(["pull", 2])).await;
    let answer = raw::recv(&mut socket).await.unwrap();
    assert_eq!(answer[0], "reject", "{answer}");
    assert_eq!(answer[2][4]["kind"], "limit exceeded", "{answer}");
    // A large answer is not kept for what is made on it at all.
    raw::send(&mut socket, json!(["push", "y".repeat(5000)])).await;
    raw::send(&mut socket, json!(["push", ["pipeline", 3]])).await;
    raw::send(&mut socket, json!(["pull", 4])).await;
    let answer = raw::recv(&mut socket).await.unwrap();
    assert_eq!(answer[2][4]["kind"], "limit exceeded", "{answer}");
    // The session goes on, and the whole value still reaches its pull.
    raw::send(&mut socket, json!(["pull", 3])).await;
    assert_eq!(
        raw::recv(&mut socket).await.unwrap(),
        json!(["resolve", 3, "y".repeat(5000)])
    );
}

#[tokio::test]
async fn what_real_clients_send_about_promises_and_pipes_fails_only_the_call() {
    let (_endpoint, url) = serve().await;
    let mut socket = raw::open(&url, &[]).await.unwrap();
    // A promise passed as an argument: the call fails, the promise is let
    // go, and its later resolution is taken quietly.
    raw::send(
        &mut socket,
        json!(["push", ["pipeline", 0, ["echo"], [["promise", -1]]]]),
    )
    .await;
    raw::send(&mut socket, json!(["pull", 1])).await;
    let released = raw::recv(&mut socket).await.unwrap();
    assert_eq!(released, json!(["release", -1, 1]));
    let answer = raw::recv(&mut socket).await.unwrap();
    assert_eq!(answer[0], "reject", "{answer}");
    raw::send(&mut socket, json!(["resolve", -1, 5])).await;
    // A pipe: writing to it fails alone.
    raw::send(&mut socket, json!(["pipe"])).await;
    raw::send(
        &mut socket,
        json!(["push", ["pipeline", 2, ["write"], ["chunk"]]]),
    )
    .await;
    raw::send(&mut socket, json!(["pull", 3])).await;
    let answer = raw::recv(&mut socket).await.unwrap();
    assert_eq!(
        (answer[0].as_str(), answer[1].as_i64()),
        (Some("reject"), Some(3)),
        "{answer}"
    );
    let answer = raw::call(&mut socket, 4, 0, &["add"], json!([1, 2])).await;
    assert_eq!(answer, json!(["resolve", 4, 3]));
}

#[tokio::test]
async fn a_name_pointed_at_the_endpoint_is_not_its_own_origin() {
    let (_endpoint, url) = serve().await;
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/capnweb")
        .to_string();
    // DNS rebinding: the page and the Host header both say rebind.test.
    let host = format!("rebind.test:{port}");
    let origin = format!("http://{host}");
    let refused = raw::open(
        &url,
        &[("host", host.as_str()), ("origin", origin.as_str())],
    )
    .await;
    assert_eq!(refused.err(), Some(403));
    let host = format!("localhost:{port}");
    let origin = format!("http://{host}");
    assert!(raw::open(
        &url,
        &[("host", host.as_str()), ("origin", origin.as_str())]
    )
    .await
    .is_ok());
}

/// A peer that is gone without closing (its machine or network) is found
/// out by pings: after two pings with nothing back, not even a pong, its
/// session ends and its connection closes.
#[tokio::test]
async fn a_peer_that_answers_no_pings_is_let_go() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let config = tether::capnweb::Config {
        keepalive: Some(std::time::Duration::from_millis(20)),
        ..Default::default()
    };
    let (_endpoint, url) = serve_with(Api::default(), |e| e.with_config(config)).await;
    // A WebSocket opened by hand, on a socket that is never written to
    // again: no WebSocket library answers the pings.
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/capnweb");
    let mut socket = tokio::net::TcpStream::connect(authority).await.unwrap();
    let upgrade = format!(
        "GET /capnweb HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(upgrade.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        socket.read_to_end(&mut received),
    )
    .await
    .expect("the silent peer's connection was not closed within a minute")
    .unwrap();

    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer")
        + 4;
    let head = String::from_utf8_lossy(&received[..head_end]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Two empty pings, then a close frame (server frames are not masked).
    let frames = &received[head_end..];
    assert_eq!(frames[..4], [0x89, 0x00, 0x89, 0x00], "{frames:02x?}");
    assert_eq!(frames[4], 0x88, "{frames:02x?}");
}

#[tokio::test]
async fn sessions_are_bounded_and_stop_with_the_server() {
    let config = tether::capnweb::Config {
        max_sessions: 1,
        ..Default::default()
    };
    let endpoint = CapnWeb::new(Api::default()).with_config(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/capnweb", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(endpoint.serve_until(listener, async move {
        let _ = stopped.await;
    }));
    let mut first = raw::open(&url, &[]).await.unwrap();
    assert_eq!(raw::open(&url, &[]).await.err(), Some(503));
    assert_eq!(
        raw::call(&mut first, 1, 0, &["add"], json!([1, 2])).await,
        json!(["resolve", 1, 3])
    );
    // Stopping the server ends the session, and serving returns.
    stop.send(()).unwrap();
    assert_eq!(raw::recv(&mut first).await, None);
    serving.await.unwrap().unwrap();
}
