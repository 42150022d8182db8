//! A tour of tether in one process: a server on an ephemeral port, a client
//! connected to it, and one short section per capability — calls,
//! attributes, introspection, repr/str/hash/eq, batched iteration, batched
//! calls, data by reference, callbacks (nested and typed), a typed proxy,
//! remote errors with their trace, restricted views, deadlines and
//! cancellation, object identity, lifetime counts, a three-peer forward and
//! graceful shutdown.
//!
//! The service is an ordinary Rust type with `#[tether::expose]`, much as
//! an RPyC service is a Python class with `exposed_` methods; the typed
//! proxy comes from a `#[tether::service]` trait. Run it from anywhere in
//! the repository; it exits by itself in well under a second:
//!
//! ```text
//! cargo run --example tour
//! ```

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether::{
    BoxFuture, CallContext, Callback, Config, Connection, Error, IntoArgs, MemberKind, NetRef,
    Object, Policy, Result, Server, Value,
};

#[tokio::main]
async fn main() -> Result<()> {
    let probe = Arc::new(Probe::default());
    let accepted = Arc::new(Mutex::new(Vec::<Connection>::new()));
    let log = accepted.clone();
    let server = Server::builder()
        .config(Config::default().policy(Policy::default().allow_setattr(true)))
        .on_connect(move |conn| log.lock().unwrap().push(conn.clone()))
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = TourService::new(probe.clone());
    let server_task = tokio::spawn(server.serve_until(service, async {
        let _ = stopped.await;
    }));
    println!("server A listening on {addr}");

    let conn = tether::connect(addr).await?;
    let root = conn.root().await?;
    println!("connected; the server's root is {root:?}");
    let server_side = accepted.lock().unwrap()[0].clone();

    calls_and_attributes(&conn, &root).await?;
    introspection(&root).await?;
    iteration(&root, &probe).await?;
    by_reference(&root).await?;
    callbacks(&root).await?;
    typed(&root).await?;
    errors(&root).await?;
    restricted(&root).await?;
    deadlines(&root, &probe).await?;
    identity_and_lifetimes(&conn, &server_side, &root, &probe).await?;
    three_peers(addr).await?;

    section("graceful shutdown");
    let started = probe.started.load(SeqCst);
    let pending = tokio::spawn({
        let root = root.clone();
        async move { root.call_method("slow", (10_000,)).await }
    });
    wait_for(|| probe.started.load(SeqCst) > started).await;
    println!("slow(10000) is running on the server; shutting the server down");
    let _ = stop.send(());
    server_task.await.expect("server task")?;
    show("the pending slow(10000)", pending.await.expect("call task"));
    show("a new add(1, 2)", root.call_method("add", (1, 2)).await);
    println!("client connection closed: {}", conn.is_closed());
    Ok(())
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

/// Print `what -> value`, or `what -> Kind error: message`.
fn show(what: &str, result: Result<Value>) {
    match result {
        Ok(value) => println!("{what} -> {value}"),
        Err(err) => println!("{what} -> {:?} error: {err}", err.kind()),
    }
}

/// Call a method that returns an object.
async fn object(on: &NetRef, method: &str, args: impl IntoArgs) -> Result<NetRef> {
    NetRef::try_from(on.call_method(method, args).await?)
}

async fn calls_and_attributes(conn: &Connection, root: &NetRef) -> Result<()> {
    section("calls");
    show("add(2, 3)", root.call_method("add", (2, 3)).await);
    show(
        "add(1, 2, 3, 4)",
        root.call_method("add", (1, 2, 3, 4)).await,
    );
    show("greet('tour')", root.call_method("greet", ("tour",)).await);
    let add = NetRef::try_from(root.getattr("add").await?)?;
    println!("getattr('add') -> {}", add.repr().await?);
    show("  called with (40, 2)", add.call((40, 2)).await);

    section("getattr / setattr");
    show("label", root.getattr("label").await);
    root.setattr("label", "renamed by the client").await?;
    show("after setattr, label", root.getattr("label").await);
    show("version", root.getattr("version").await);
    let denied = root.setattr("version", 99).await.map(Value::from);
    show("setattr('version', 99)", denied);

    section("batch: three calls, one frame each way");
    let mut batch = conn.batch();
    batch.call_method(root, "add", (1, 2))?;
    batch.call_method(root, "add", (1, "two"))?;
    batch.getattr(root, "label")?;
    let asked = ["add(1, 2)", "add(1, 'two')", "label"];
    for (what, outcome) in asked.into_iter().zip(batch.send().await?) {
        show(what, outcome);
    }
    Ok(())
}

async fn introspection(root: &NetRef) -> Result<()> {
    section("dir / inspect (help text from doc comments)");
    println!("dir: {:?}", root.dir().await?);
    for m in root.inspect().await? {
        match m.kind {
            MemberKind::Method => println!("  {}{}", m.name, m.signature),
            MemberKind::Attribute { writable } => {
                let rw = if writable { ", writable" } else { "" };
                println!("  {}: {} (attribute{rw})", m.name, m.signature);
            }
        }
        println!("      {}", m.doc);
    }

    section("repr / str / hash / eq");
    // `#[expose]` gives the default repr and str; Numbers writes its own.
    println!("repr: {}", root.repr().await?);
    println!("str:  {}", root.str().await?);
    let (h1, h2) = (root.remote_hash().await?, root.remote_hash().await?);
    println!("hash: {h1} (stable: {})", h1 == h2);
    println!("root == root: {}", root.remote_eq(root).await?);
    let other = object(root, "numbers", (1,)).await?;
    println!("root == another object: {}", root.remote_eq(&other).await?);
    println!("a hand-written repr: {}", other.repr().await?);
    Ok(())
}

async fn iteration(root: &NetRef, probe: &Probe) -> Result<()> {
    section("iteration (batched)");
    probe.batches.lock().unwrap().clear();
    let numbers = object(root, "numbers", (40,)).await?;
    let items = numbers.iter().collect_all().await?;
    let text: Vec<String> = items.iter().map(Value::to_string).collect();
    println!(
        "numbers(40): {} ... {}",
        text[..3].join(", "),
        text[37..].join(", ")
    );
    let batches = probe.batches.lock().unwrap().clone();
    println!(
        "{} round trips; (asked, got) per batch: {batches:?}",
        batches.len()
    );
    Ok(())
}

async fn by_reference(root: &NetRef) -> Result<()> {
    section("by value / by reference");
    let big: Vec<i64> = (0..100_000).map(|i| i * i).collect();
    let (copy, shared) = (tether::to_value(&big)?, tether::by_ref(&big)?);
    let reply = root.call_method("pick", (copy, 300)).await;
    show("pick(big, 300), all 100000 items sent", reply);
    let reply = root.call_method("pick_by_ref", (shared, 300)).await;
    show("pick_by_ref(by_ref(big), 300), none sent", reply);
    println!("(by reference the server called back len() and get(300) instead)");
    Ok(())
}

async fn callbacks(root: &NetRef) -> Result<()> {
    section("callbacks");
    let shout = tether::callback(|word: String| async move {
        println!(
            "  (client) shout({}) runs during call_back",
            Value::from(&word)
        );
        Ok(word.to_uppercase())
    });
    let reply = root.call_method("call_back", (shout, "hey")).await;
    show("call_back(shout, 'hey')", reply);

    let server = root.clone();
    let relay = tether::callback(move |n: i64| {
        let server = server.clone();
        async move {
            println!("  (client) relay({n}) calls the server's add({n}, 100)");
            server.call_method("add", (n, 100)).await
        }
    });
    let reply = root.call_method("call_back", (relay, 1)).await;
    show(
        "client -> server -> client -> server: call_back(relay, 1)",
        reply,
    );
    Ok(())
}

async fn typed(root: &NetRef) -> Result<()> {
    section("typed callback");
    let tick = Callback::new(|s: String| async move {
        println!("  (client) tick({s:?})");
        Ok(())
    });
    let reply = root.call_method("countdown", (3, tick)).await;
    show("countdown(3, tick)", reply);

    section("typed proxy");
    let greeter = GreeterProxy::try_from(root.call_method("greeter", ()).await?)?;
    let text: String = greeter.greet("typed client".to_string()).await?;
    println!("greeter.greet(\"typed client\") -> {text:?}");
    // `greeter.greet(42)` would not compile; untyped, the server refuses it.
    let untyped = greeter.netref().call_method("greet", (42,)).await;
    show("untyped greet(42)", untyped);
    Ok(())
}

async fn errors(root: &NetRef) -> Result<()> {
    section("an error raised by the server");
    let err = root.call_method("divide", (1.0, 0.0)).await.unwrap_err();
    let (kind, type_name) = (err.kind(), err.type_name().unwrap());
    println!("divide(1, 0) -> kind {kind:?}, type name {type_name}");
    println!("{err:#}");

    section("an error raised in a client callback, through the server");
    let picky = tether::callback(|word: String| async move {
        Err::<(), _>(Error::app("KeyError", format!("no entry for {word:?}")))
    });
    let err = root
        .call_method("call_back", (picky, "z"))
        .await
        .unwrap_err();
    println!("call_back(picky, 'z') -> kind {:?}", err.kind());
    println!("{err:#}");
    let cause = err.remote().unwrap().cause();
    println!("cause: {:?}", cause.map(|c| c.to_string()));
    Ok(())
}

async fn restricted(root: &NetRef) -> Result<()> {
    section("restricted view");
    let guest = object(root, "guest_view", ()).await?;
    println!("guest: {}", guest.repr().await?);
    println!("guest dir: {:?}", guest.dir().await?);
    show("guest.add(1, 1)", guest.call_method("add", (1, 1)).await);
    let hidden = guest.call_method("divide", (1.0, 2.0)).await;
    show("guest.divide(1, 2)", hidden);
    Ok(())
}

async fn deadlines(root: &NetRef, probe: &Probe) -> Result<()> {
    section("deadlines and cancellation");
    let t = Instant::now();
    let short = root.with_timeout(Duration::from_millis(100));
    let result = short.call_method("slow", (2_000,)).await;
    let ms = t.elapsed().as_millis();
    show(
        &format!("slow(2000), 100 ms deadline, after {ms} ms"),
        result,
    );
    wait_for(|| probe.aborted.load(SeqCst) >= 1).await;

    let call = root.call_method("slow", (5_000,));
    let _ = tokio::time::timeout(Duration::from_millis(50), call).await;
    println!("dropped the future of slow(5000) after 50 ms");
    wait_for(|| probe.aborted.load(SeqCst) >= 2).await;
    let (s, a) = (probe.started.load(SeqCst), probe.aborted.load(SeqCst));
    println!("server saw: slow calls started {s}, aborted {a}");
    Ok(())
}

async fn identity_and_lifetimes(
    conn: &Connection,
    server: &Connection,
    root: &NetRef,
    probe: &Probe,
) -> Result<()> {
    section("object identity");
    let a = object(root, "numbers", (1,)).await?;
    let b = object(root, "numbers", (1,)).await?;
    show("same(a, a)", root.call_method("same", (&a, &a)).await);
    show("same(a, b)", root.call_method("same", (&a, &b)).await);
    let mine = tether::callback_sync(|()| Ok(()));
    let back = object(root, "echo", (&mine,)).await?;
    let (local, same) = (back.is_local(), back == mine);
    println!("our callback, echoed back: is_local {local}, same object {same}");
    drop((a, b));

    section("lifetimes");
    let report = |when: &str| {
        let (c, s, alive) = (conn.stats(), server.stats(), probe.alive.load(SeqCst));
        println!(
            "{when:<22} client imported {}, server exported {}, objects alive {alive}",
            c.imported, s.exported
        );
    };
    conn.ping().await?;
    report("before:");
    let mut held = Vec::new();
    for n in 0..3 {
        held.push(object(root, "numbers", (n,)).await?);
    }
    report("holding 3 objects:");
    drop(held);
    conn.ping().await?; // the batched release goes out before the ping
    report("after dropping them:");
    Ok(())
}

async fn three_peers(a_addr: std::net::SocketAddr) -> Result<()> {
    section("three peers: B -> M -> A");
    let upstream = tether::connect(a_addr).await?.root().await?;
    let middle = Server::bind("127.0.0.1:0").await?;
    let m_addr = middle.local_addr()?;
    // M serves its proxy of A's root as its own root.
    let never = std::future::pending();
    tokio::spawn(middle.serve_fn(move || upstream.clone(), never));
    let b = tether::connect(m_addr).await?;
    let a_root = b.root().await?;
    println!("B's root from M: {a_root:?}, repr {}", a_root.repr().await?);
    show(
        "B calls greet('B')",
        a_root.call_method("greet", ("B",)).await,
    );
    let numbers = object(&a_root, "numbers", (5,)).await?;
    let items = numbers.iter().collect_all().await?;
    println!("B iterates numbers(5) made on A: {}", Value::from(items));
    Ok(())
}

/// Wait (at most 2 s) until `cond` holds.
async fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !cond() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---- the tour's objects ----------------------------------------------------

/// What the tour observes of the server from outside.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    aborted: AtomicUsize,
    alive: AtomicI64,
    batches: Mutex<Vec<(usize, usize)>>,
}

#[derive(Clone)]
struct TourService {
    probe: Arc<Probe>,
    label: Arc<Mutex<String>>,
}

impl TourService {
    fn new(probe: Arc<Probe>) -> TourService {
        let label = Arc::new(Mutex::new("tour".to_string()));
        TourService { probe, label }
    }
}

#[tether::expose]
impl TourService {
    /// Add any number of integers.
    #[method]
    fn add(&self, #[rest] numbers: Vec<i64>) -> i64 {
        numbers.iter().sum()
    }

    /// Say hello.
    #[method]
    fn greet(&self, name: &str) -> String {
        format!("hello, {name}!")
    }

    /// Divide a by b.
    #[method]
    fn divide(&self, a: f64, b: f64) -> Result<f64> {
        match b {
            0.0 => Err(Error::app("ZeroDivisionError", "float division by zero")),
            b => Ok(a / b),
        }
    }

    /// An iterable of 0..n.
    #[method]
    fn numbers(&self, n: i64) -> NetRef {
        self.probe.alive.fetch_add(1, SeqCst);
        let (next, probe) = (AtomicI64::new(0), self.probe.clone());
        NetRef::new(Numbers {
            next,
            end: n,
            probe,
        })
    }

    /// function(arg), called back wherever function lives.
    #[method]
    async fn call_back(&self, function: NetRef, arg: Value) -> Result<Value> {
        function.call((arg,)).await
    }

    /// Call tick with "n..." for n = from down to 1, then return "liftoff".
    #[method]
    async fn countdown(&self, from: i64, tick: Callback<String>) -> Result<String> {
        for n in (1..=from).rev() {
            tick.call(format!("{n}...")).await?;
        }
        Ok("liftoff".to_string())
    }

    /// The item at i of a list sent by value (all of it came along).
    #[method]
    fn pick(&self, items: Vec<i64>, i: usize) -> String {
        format!("{} items, [{i}] = {}", items.len(), items[i])
    }

    /// The item at i of a list sent by reference (read piecewise).
    #[method]
    async fn pick_by_ref(&self, items: NetRef, i: i64) -> Result<String> {
        let len = items.call_method("len", ()).await?;
        let item = items.call_method("get", (i,)).await?;
        Ok(format!("{len} items, [{i}] = {item}"))
    }

    /// A Greeter, for typed clients.
    #[method]
    fn greeter(&self) -> NetRef {
        NetRef::new(GreeterObject(Polite))
    }

    /// Sleep ms milliseconds, return ms.
    #[method]
    async fn slow(&self, ms: u64) -> u64 {
        self.probe.started.fetch_add(1, SeqCst);
        let unless_finished = AbortGuard(&self.probe.aborted);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        std::mem::forget(unless_finished);
        ms
    }

    /// Are a and b one object?
    #[method]
    fn same(&self, a: NetRef, b: NetRef) -> bool {
        a == b
    }

    /// Return the argument.
    #[method]
    fn echo(&self, value: Value) -> Value {
        value
    }

    /// A view with add and greet only.
    #[method]
    fn guest_view(&self) -> Result<NetRef> {
        tether::restrict(&NetRef::new(self.clone()), &["add", "greet"])
    }

    /// A label the client may change.
    #[getter]
    fn label(&self) -> String {
        self.label.lock().unwrap().clone()
    }

    #[setter]
    fn set_label(&self, label: String) {
        *self.label.lock().unwrap() = label;
    }

    /// Read-only.
    #[getter]
    fn version(&self) -> i64 {
        1
    }
}

/// Counts a call as aborted when dropped; forgotten once the call finished.
struct AbortGuard<'a>(&'a AtomicUsize);

impl Drop for AbortGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A service defined as a trait: `GreeterProxy` calls it with checked
/// types, `GreeterObject` serves any implementation.
#[tether::service]
trait Greeter {
    /// Greet someone by name.
    async fn greet(&self, name: String) -> tether::Result<String>;
}

struct Polite;

impl Greeter for Polite {
    async fn greet(&self, name: String) -> Result<String> {
        Ok(format!("good day, {name}."))
    }
}

/// 0..end, served a batch at a time; counted while alive.
struct Numbers {
    next: AtomicI64,
    end: i64,
    probe: Arc<Probe>,
}

impl Drop for Numbers {
    fn drop(&mut self) {
        self.probe.alive.fetch_sub(1, SeqCst);
    }
}

// Written by hand: `#[expose]` generates only members, methods and
// attributes, and an iterator needs `next_batch` (and here a custom repr).
impl Object for Numbers {
    fn type_name(&self) -> &str {
        "Numbers"
    }

    fn next_batch<'a>(
        &'a self,
        max: usize,
        _cx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<Value>>> {
        let start = self.next.fetch_add(max as i64, SeqCst).min(self.end);
        let items: Vec<Value> = (start..(start + max as i64).min(self.end))
            .map(Value::from)
            .collect();
        self.probe.batches.lock().unwrap().push((max, items.len()));
        Box::pin(async move { Ok(items) })
    }

    fn repr(&self) -> String {
        format!("<Numbers 0..{}>", self.end)
    }
}
