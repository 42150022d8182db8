//! Figures as they are measured (`name<TAB>value<TAB>unit`), latency
//! summaries, and the closing table of ratios against the goals of issue 5
//! (and issue 14's for NATS).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

static FIGURES: Mutex<BTreeMap<String, (f64, String)>> = Mutex::new(BTreeMap::new());
static PREFIX: Mutex<String> = Mutex::new(String::new());

/// Names of this process's figures start with `prefix` (`pinned.`).
pub fn set_prefix(prefix: &str) {
    *PREFIX.lock().unwrap() = prefix.to_string();
}

fn format_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Record a figure and print it at once.
pub fn fig(name: &str, value: f64, unit: &str) {
    let name = format!("{}{name}", PREFIX.lock().unwrap());
    record(&name, value, unit);
}

/// Record a figure under its full name (one from the pinned pass) and print it.
pub fn record(name: &str, value: f64, unit: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{name}\t{}\t{unit}", format_value(value));
    let _ = out.flush();
    FIGURES
        .lock()
        .unwrap()
        .insert(name.to_string(), (value, unit.to_string()));
}

/// A figure measured earlier in this run.
pub fn get(name: &str) -> Option<f64> {
    FIGURES.lock().unwrap().get(name).map(|(v, _)| *v)
}

/// A note on stderr (progress, counts used), never mixed with figures.
pub fn note(text: &str) {
    eprintln!("# {text}");
}

/// p50/p99 of sequential round trips, and their rate.
pub struct Latency {
    pub samples: Vec<u64>,
    pub elapsed: Duration,
}

impl Latency {
    /// The mean round trip, in microseconds.
    pub fn mean_us(&self) -> f64 {
        let n = self.samples.len().max(1) as f64;
        self.samples.iter().sum::<u64>() as f64 / n / 1000.0
    }

    pub fn report(mut self, name: &str) {
        self.samples.sort_unstable();
        let n = self.samples.len().max(1);
        let at = |q: f64| self.samples[((n as f64 * q) as usize).min(n - 1)] as f64 / 1000.0;
        fig(&format!("{name}.p50"), at(0.50), "us");
        fig(&format!("{name}.p99"), at(0.99), "us");
        fig(
            &format!("{name}.rate"),
            self.samples.len() as f64 / self.elapsed.as_secs_f64(),
            "calls/s",
        );
    }
}

enum Want {
    AtMost(f64),
    AtLeast(f64),
}

struct Row {
    what: &'static str,
    how: String,
    value: Option<f64>,
    want: Option<Want>,
}

fn ratio(a: &str, b: &str) -> Option<f64> {
    Some(get(a)? / get(b)?)
}

/// The table of ratios against the goals of issue 5.
pub fn ratio_table() {
    let mut rows = Vec::new();
    for (prefix, placement) in [("", "as scheduled"), ("pinned.", "one vCPU")] {
        rows.push(Row {
            what: "null call p50 / floor round trip p50",
            how: format!("{placement}: {prefix}null.p50 / {prefix}floor.rtt.p50"),
            value: ratio(
                &format!("{prefix}null.p50"),
                &format!("{prefix}floor.rtt.p50"),
            ),
            want: Some(Want::AtMost(1.10)),
        });
    }
    rows.push(Row {
        what: "pipelined 256 in flight / tarpc 256 in flight",
        how: "pipelined.inflight256 / tarpc.inflight256".into(),
        value: ratio("pipelined.inflight256", "tarpc.inflight256"),
        want: Some(Want::AtLeast(1.5)),
    });
    for (prefix, placement) in [("", "as scheduled"), ("pinned.", "one vCPU")] {
        rows.push(Row {
            what: "callback round trip p50 / floor round trip p50",
            how: format!("{placement}: {prefix}callback.p50 / {prefix}floor.rtt.p50"),
            value: ratio(
                &format!("{prefix}callback.p50"),
                &format!("{prefix}floor.rtt.p50"),
            ),
            want: Some(Want::AtMost(2.2)),
        });
    }
    for (prefix, placement) in [("", "as scheduled"), ("pinned.", "one vCPU")] {
        rows.push(Row {
            what: "NATS tunnel null p50 / raw NATS request-reply p50",
            how: format!("{placement}: {prefix}nats.tunnel.p50 / {prefix}nats.raw.p50"),
            value: ratio(
                &format!("{prefix}nats.tunnel.p50"),
                &format!("{prefix}nats.raw.p50"),
            ),
            want: Some(Want::AtMost(1.30)),
        });
    }
    rows.push(Row {
        what: "remote file read, 64 KiB reads / raw TCP stream",
        how: "file.read_64KiB / floor.stream".into(),
        value: ratio("file.read_64KiB", "floor.stream"),
        want: Some(Want::AtLeast(0.60)),
    });
    rows.push(Row {
        what: "remote file read, RemoteFile 64 KiB reads / raw TCP stream",
        how: "file.remotefile_64KiB / floor.stream".into(),
        value: ratio("file.remotefile_64KiB", "floor.stream"),
        want: Some(Want::AtLeast(0.60)),
    });
    rows.push(Row {
        what: "remote file line iteration, lines/s / 1 M",
        how: "file.lines / 1e6".into(),
        value: get("file.lines").map(|v| v / 1e6),
        want: Some(Want::AtLeast(1.0)),
    });
    rows.push(Row {
        what: "netref create + release pipelined, objects/s / 300 k",
        how: "netrefs.inflight256 / 3e5".into(),
        value: get("netrefs.inflight256").map(|v| v / 3e5),
        want: Some(Want::AtLeast(1.0)),
    });
    rows.push(Row {
        what: "owner RSS per live exported object above the object / 128 B",
        how: "objects.rss_per_object / 128".into(),
        value: get("objects.rss_per_object").map(|v| v / 128.0),
        want: Some(Want::AtMost(1.0)),
    });
    rows.push(Row {
        what: "owner heap per live exported object above the object / 128 B",
        how: "objects.heap_per_object / 128".into(),
        value: get("objects.heap_per_object").map(|v| v / 128.0),
        want: Some(Want::AtMost(1.0)),
    });
    rows.push(Row {
        what: "server RSS per idle connection / 64 KiB",
        how: "connections.server_rss_per_conn / 64".into(),
        value: get("connections.server_rss_per_conn").map(|v| v / 64.0),
        want: Some(Want::AtMost(1.0)),
    });
    // For reading the others; no goal.
    for (prefix, placement) in [("", "as scheduled"), ("pinned.", "one vCPU")] {
        rows.push(Row {
            what: "(info) tarpc null p50 / floor round trip p50",
            how: format!("{placement}: {prefix}tarpc.null.p50 / {prefix}floor.rtt.p50"),
            value: ratio(
                &format!("{prefix}tarpc.null.p50"),
                &format!("{prefix}floor.rtt.p50"),
            ),
            want: None,
        });
        for (what, a, b) in [
            (
                "(info) NATS tunnel null mean / raw NATS mean",
                "nats.tunnel.mean",
                "nats.raw.mean",
            ),
            (
                "(info) NATS stateless null p50 / raw NATS p50",
                "nats.stateless.p50",
                "nats.raw.p50",
            ),
            (
                "(info) direct TCP null p50 / raw NATS p50",
                "nats.direct.p50",
                "nats.raw.p50",
            ),
        ] {
            rows.push(Row {
                what,
                how: format!("{placement}: {prefix}{a} / {prefix}{b}"),
                value: ratio(&format!("{prefix}{a}"), &format!("{prefix}{b}")),
                want: None,
            });
        }
        rows.push(Row {
            what: "(info) tether null p50 / tarpc null p50",
            how: format!("{placement}: {prefix}null.p50 / {prefix}tarpc.null.p50"),
            value: ratio(
                &format!("{prefix}null.p50"),
                &format!("{prefix}tarpc.null.p50"),
            ),
            want: None,
        });
    }
    for (name, a, b) in [
        (
            "(info) tether 256 in flight / floor 256 in flight",
            "pipelined.inflight256",
            "floor.inflight256",
        ),
        (
            "(info) tarpc 256 in flight / floor 256 in flight",
            "tarpc.inflight256",
            "floor.inflight256",
        ),
        (
            "(info) tether 64 in flight / tarpc 64 in flight",
            "pipelined.inflight64",
            "tarpc.inflight64",
        ),
        (
            "(info) tether 16 conns / tarpc 16 conns",
            "pipelined.conns16x16",
            "tarpc.conns16x16",
        ),
        (
            "(info) tether 256 tasks / tarpc 256 tasks",
            "pipelined.tasks256",
            "tarpc.tasks256",
        ),
        (
            "(info) CPU per call, 256 in flight: tether / tarpc",
            "pipelined.inflight256.cpu",
            "tarpc.inflight256.cpu",
        ),
        (
            "(info) CPU per call, 256 in flight: tether / floor",
            "pipelined.inflight256.cpu",
            "floor.inflight256.cpu",
        ),
        (
            "(info) file read, 4 reads in flight / raw TCP stream",
            "file.read_64KiB_ahead4",
            "floor.stream",
        ),
        (
            "(info) RemoteFile, 64 KiB, 1 read in flight / raw TCP stream",
            "file.remotefile_64KiB_x1",
            "floor.stream",
        ),
        (
            "(info) RemoteFile, 64 KiB, 8 reads in flight / raw TCP stream",
            "file.remotefile_64KiB_x8",
            "floor.stream",
        ),
        (
            "(info) RemoteFile, 1 MiB read-ahead / raw TCP stream",
            "file.remotefile_1MiB",
            "floor.stream",
        ),
        (
            "(info) file write, 64 KiB writes / raw TCP stream",
            "file.write_64KiB",
            "floor.stream",
        ),
        (
            "(info) allocations per null call, server: tether / tarpc",
            "allocs.null.server",
            "allocs.tarpc.null.server",
        ),
        (
            "(info) allocations per null call, client: tether / tarpc",
            "allocs.null.client",
            "allocs.tarpc.null.client",
        ),
        (
            "(info) NATS tunnel 256 in flight / raw NATS 256 in flight",
            "nats.tunnel.inflight256",
            "nats.raw.inflight256",
        ),
        (
            "(info) NATS stateless 256 in flight / raw NATS 256 in flight",
            "nats.stateless.inflight256",
            "nats.raw.inflight256",
        ),
        (
            "(info) CPU per call, 256 in flight: NATS tunnel / raw NATS",
            "nats.tunnel.inflight256.cpu",
            "nats.raw.inflight256.cpu",
        ),
        (
            "(info) tether echo 1 KiB / raw echo 1 KiB",
            "payload.echo_1KiB",
            "floor.echo_1KiB",
        ),
        (
            "(info) tether echo 64 KiB / raw echo 64 KiB",
            "payload.echo_64KiB",
            "floor.echo_64KiB",
        ),
        (
            "(info) tether echo 1 MiB / raw echo 1 MiB",
            "payload.echo_1MiB",
            "floor.echo_1MiB",
        ),
    ] {
        rows.push(Row {
            what: name,
            how: format!("{a} / {b}"),
            value: ratio(a, b),
            want: None,
        });
    }

    rows.push(Row {
        what: "pipelined chain of 4 / single call, 10 ms each way",
        how: "pipelining.delayed.pipelined4 / pipelining.delayed.single".into(),
        value: ratio("pipelining.delayed.pipelined4", "pipelining.delayed.single"),
        want: Some(Want::AtMost(1.2)),
    });
    for (name, a, b) in [
        (
            "(info) step-by-step chain of 4 / single call, 10 ms each way",
            "pipelining.delayed.stepwise4",
            "pipelining.delayed.single",
        ),
        (
            "(info) pipelined chain of 4 / single call, loopback",
            "pipelining.loopback.pipelined4",
            "pipelining.loopback.single",
        ),
        (
            "(info) step-by-step chain of 4 / single call, loopback",
            "pipelining.loopback.stepwise4",
            "pipelining.loopback.single",
        ),
    ] {
        rows.push(Row {
            what: name,
            how: format!("{a} / {b}"),
            value: ratio(a, b),
            want: None,
        });
    }

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# ratios against the goals of issue 5 (NATS: issue 14, pipelining: issue 15)"
    );
    let _ = writeln!(
        out,
        "{:<62} {:>8} {:>8}  {:<7} figures",
        "workload", "ratio", "goal", "verdict"
    );
    for row in rows {
        let (goal, verdict) = match (&row.want, row.value) {
            (Some(Want::AtMost(g)), Some(v)) => {
                (format!("<= {g:.2}"), if v <= *g { "met" } else { "MISSED" })
            }
            (Some(Want::AtLeast(g)), Some(v)) => {
                (format!(">= {g:.2}"), if v >= *g { "met" } else { "MISSED" })
            }
            (Some(Want::AtMost(g)), None) => (format!("<= {g:.2}"), "n/a"),
            (Some(Want::AtLeast(g)), None) => (format!(">= {g:.2}"), "n/a"),
            (None, _) => ("-".to_string(), "-"),
        };
        let value = row.value.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "{:<62} {:>8} {:>8}  {:<7} {}",
            row.what, value, goal, verdict, row.how
        );
    }
}
