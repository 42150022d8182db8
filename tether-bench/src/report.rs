//! Figures as they are measured (`name<TAB>value<TAB>unit`), latency
//! summaries, and the closing table of ratios against the goals: issue
//! 17's for speed (each side's best runtime flavour against the other's
//! best, or against the floor), issue 5's for memory, issue 14's for NATS
//! and issue 15's for pipelining.

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

/// The flavours a figure may be measured on, in the order they are tried.
const FLAVOURS: [&str; 2] = ["ct.", "mt."];

/// Which way is better for a figure.
#[derive(Clone, Copy)]
enum Better {
    /// A rate.
    Higher,
    /// A latency.
    Lower,
}

/// The best flavour of figure `name` (`{placement}ct.{name}` or
/// `{placement}mt.{name}`) measured in this run: its full name and value.
fn best(placement: &str, name: &str, better: Better) -> Option<(String, f64)> {
    best_of(
        FLAVOURS.iter().filter_map(|f| {
            let full = format!("{placement}{f}{name}");
            get(&full).map(|v| (full, v))
        }),
        better,
    )
}

fn best_of(found: impl Iterator<Item = (String, f64)>, better: Better) -> Option<(String, f64)> {
    found.reduce(|a, b| {
        let b_wins = match better {
            Better::Higher => b.1 > a.1,
            Better::Lower => b.1 < a.1,
        };
        if b_wins {
            b
        } else {
            a
        }
    })
}

/// `a / b`, each found by [`best`] (or given); the figures' names say
/// which flavour won.
fn best_ratio(
    what: &'static str,
    a: Option<(String, f64)>,
    b: Option<(String, f64)>,
    want: Option<Want>,
    how_missing: String,
) -> Row {
    match (a, b) {
        (Some((an, av)), Some((bn, bv))) => Row {
            what,
            how: format!("{an} / {bn}"),
            value: Some(av / bv),
            want,
        },
        _ => Row {
            what,
            how: how_missing,
            value: None,
            want,
        },
    }
}

/// The table of ratios against the goals (issue 17's for speed, which
/// replaced issue 5's; issue 14's for NATS, issue 15's for pipelining).
pub fn ratio_table() {
    use Better::{Higher, Lower};
    let mut rows = Vec::new();
    for (prefix, placement) in [("", "as scheduled"), ("pinned.", "one vCPU")] {
        rows.push(best_ratio(
            "null call p50, best flavour / floor round trip p50",
            best(prefix, "null.p50", Lower),
            best(prefix, "floor.rtt.p50", Lower),
            Some(Want::AtMost(1.10)),
            format!("{placement}: best {prefix}{{ct,mt}}.null.p50 / best {prefix}{{ct,mt}}.floor.rtt.p50"),
        ));
    }
    rows.push(best_ratio(
        "pipelined 256 in flight, best / tarpc's best",
        best("", "pipelined.inflight256", Higher),
        best("", "tarpc.inflight256", Higher),
        Some(Want::AtLeast(1.5)),
        "best {ct,mt}.pipelined.inflight256 / best {ct,mt}.tarpc.inflight256".into(),
    ));
    rows.push(best_ratio(
        "callback round trip p50, best / floor p50, one vCPU",
        best("pinned.", "callback.p50", Lower),
        best("pinned.", "floor.rtt.p50", Lower),
        Some(Want::AtMost(2.0)),
        "best pinned.{ct,mt}.callback.p50 / best pinned.{ct,mt}.floor.rtt.p50".into(),
    ));
    rows.push(best_ratio(
        "(info) callback p50, best / floor p50, as scheduled",
        best("", "callback.p50", Lower),
        best("", "floor.rtt.p50", Lower),
        None,
        "best {ct,mt}.callback.p50 / best {ct,mt}.floor.rtt.p50".into(),
    ));
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
    rows.push(best_ratio(
        "remote file read, 64 KiB reads, best / raw TCP stream",
        best("", "file.read_64KiB", Higher),
        best("", "floor.stream", Higher),
        Some(Want::AtLeast(0.5)),
        "best {ct,mt}.file.read_64KiB / best {ct,mt}.floor.stream".into(),
    ));
    rows.push(best_ratio(
        "remote file read, RemoteFile 64 KiB reads, best / raw stream",
        best("", "file.remotefile_64KiB", Higher),
        best("", "floor.stream", Higher),
        Some(Want::AtLeast(0.8)),
        "best {ct,mt}.file.remotefile_64KiB / best {ct,mt}.floor.stream".into(),
    ));
    rows.push(best_ratio(
        "remote file line iteration, best, lines/s / 1 M",
        best("", "file.lines", Higher),
        Some(("1e6".to_string(), 1e6)),
        Some(Want::AtLeast(1.0)),
        "best {ct,mt}.file.lines / 1e6".into(),
    ));
    rows.push(best_ratio(
        "netref create + release 256 in flight / null call 256, bests",
        best("", "netrefs.inflight256", Higher),
        best("", "pipelined.inflight256", Higher),
        Some(Want::AtLeast(0.5)),
        "best {ct,mt}.netrefs.inflight256 / best {ct,mt}.pipelined.inflight256".into(),
    ));
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
    // Each flavour against the other, and against tarpc's same flavour.
    for (what, a, b) in [
        (
            "(info) floor round trip p50, ct / mt",
            "ct.floor.rtt.p50",
            "mt.floor.rtt.p50",
        ),
        (
            "(info) floor round trip p50, ct / mt, one vCPU",
            "pinned.ct.floor.rtt.p50",
            "pinned.mt.floor.rtt.p50",
        ),
        (
            "(info) floor 256 frames in flight, ct / mt",
            "ct.floor.inflight256",
            "mt.floor.inflight256",
        ),
        (
            "(info) floor stream, ct / mt",
            "ct.floor.stream",
            "mt.floor.stream",
        ),
        (
            "(info) tether 256 in flight, ct / mt",
            "ct.pipelined.inflight256",
            "mt.pipelined.inflight256",
        ),
        (
            "(info) tarpc 256 in flight, ct / mt",
            "ct.tarpc.inflight256",
            "mt.tarpc.inflight256",
        ),
        (
            "(info) tether / tarpc 256 in flight, both ct",
            "ct.pipelined.inflight256",
            "ct.tarpc.inflight256",
        ),
        (
            "(info) tether / tarpc 256 in flight, both mt",
            "mt.pipelined.inflight256",
            "mt.tarpc.inflight256",
        ),
        (
            "(info) netrefs / null call 256 in flight, both ct",
            "ct.netrefs.inflight256",
            "ct.pipelined.inflight256",
        ),
        (
            "(info) netrefs / null call 256 in flight, both mt",
            "mt.netrefs.inflight256",
            "mt.pipelined.inflight256",
        ),
    ] {
        rows.push(Row {
            what,
            how: format!("{a} / {b}"),
            value: ratio(a, b),
            want: None,
        });
    }
    // For reading the others; no goal. Each side's best flavour.
    for (prefix, placement) in [("", "as scheduled"), ("pinned.", "one vCPU")] {
        for (what, a, b) in [
            (
                "(info) tarpc null p50, best / floor p50",
                "tarpc.null.p50",
                None,
            ),
            (
                "(info) tether null p50 / tarpc null p50, bests",
                "null.p50",
                Some("tarpc.null.p50"),
            ),
            (
                "(info) tether null p50, ct / mt",
                "ct.null.p50",
                Some("mt.null.p50"),
            ),
            (
                "(info) tarpc null p50, ct / mt",
                "ct.tarpc.null.p50",
                Some("mt.tarpc.null.p50"),
            ),
        ] {
            let row = match b {
                None => best_ratio(
                    what,
                    best(prefix, a, Lower),
                    best(prefix, "floor.rtt.p50", Lower),
                    None,
                    format!("{placement}: best {prefix}{{ct,mt}}.{a} / best {prefix}{{ct,mt}}.floor.rtt.p50"),
                ),
                Some(b) if a.starts_with("ct.") => Row {
                    what,
                    how: format!("{placement}: {prefix}{a} / {prefix}{b}"),
                    value: ratio(&format!("{prefix}{a}"), &format!("{prefix}{b}")),
                    want: None,
                },
                Some(b) => best_ratio(
                    what,
                    best(prefix, a, Lower),
                    best(prefix, b, Lower),
                    None,
                    format!("{placement}: best {prefix}{{ct,mt}}.{a} / best {prefix}{{ct,mt}}.{b}"),
                ),
            };
            rows.push(row);
        }
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
    }
    // Best flavour of each against a floor or the other's best.
    for (what, a, b, better) in [
        (
            "(info) tether 256 in flight / floor 256 in flight",
            "pipelined.inflight256",
            "floor.inflight256",
            Higher,
        ),
        (
            "(info) tarpc 256 in flight / floor 256 in flight",
            "tarpc.inflight256",
            "floor.inflight256",
            Higher,
        ),
        (
            "(info) tether 64 in flight / tarpc 64 in flight",
            "pipelined.inflight64",
            "tarpc.inflight64",
            Higher,
        ),
        (
            "(info) tether 16 conns / tarpc 16 conns",
            "pipelined.conns16x16",
            "tarpc.conns16x16",
            Higher,
        ),
        (
            "(info) tether 256 tasks / tarpc 256 tasks",
            "pipelined.tasks256",
            "tarpc.tasks256",
            Higher,
        ),
        (
            "(info) CPU per call, 256 in flight: tether / tarpc",
            "pipelined.inflight256.cpu",
            "tarpc.inflight256.cpu",
            Lower,
        ),
        (
            "(info) CPU per call, 256 in flight: tether / floor",
            "pipelined.inflight256.cpu",
            "floor.inflight256.cpu",
            Lower,
        ),
        (
            "(info) file read, 4 reads in flight / raw TCP stream",
            "file.read_64KiB_ahead4",
            "floor.stream",
            Higher,
        ),
        (
            "(info) RemoteFile, 64 KiB, 1 read in flight / raw TCP stream",
            "file.remotefile_64KiB_x1",
            "floor.stream",
            Higher,
        ),
        (
            "(info) RemoteFile, 64 KiB, 8 reads in flight / raw TCP stream",
            "file.remotefile_64KiB_x8",
            "floor.stream",
            Higher,
        ),
        (
            "(info) RemoteFile, 1 MiB read-ahead / raw TCP stream",
            "file.remotefile_1MiB",
            "floor.stream",
            Higher,
        ),
        (
            "(info) file write, 64 KiB writes / raw TCP stream",
            "file.write_64KiB",
            "floor.stream",
            Higher,
        ),
        (
            "(info) tether echo 1 KiB / raw echo 1 KiB",
            "payload.echo_1KiB",
            "floor.echo_1KiB",
            Higher,
        ),
        (
            "(info) tether echo 64 KiB / raw echo 64 KiB",
            "payload.echo_64KiB",
            "floor.echo_64KiB",
            Higher,
        ),
        (
            "(info) tether echo 1 MiB / raw echo 1 MiB",
            "payload.echo_1MiB",
            "floor.echo_1MiB",
            Higher,
        ),
    ] {
        rows.push(best_ratio(
            what,
            best("", a, better),
            best("", b, better),
            None,
            format!("best {{ct,mt}}.{a} / best {{ct,mt}}.{b}"),
        ));
    }
    // No flavour: the allocation counts and NATS run on one runtime.
    for (name, a, b) in [
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
        "# ratios against the goals of issue 17 (memory: issue 5, NATS: issue 14, pipelining: issue 15); \
         for each side its best runtime flavour, named in the figures column"
    );
    let _ = writeln!(
        out,
        "{:<62} {:>8} {:>8}  {:<7} figures",
        "workload", "ratio", "goal", "verdict"
    );
    for row in rows {
        let (goal, verdict) = verdict(row.want.as_ref(), row.value);
        let value = row.value.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "{:<62} {:>8} {:>8}  {:<7} {}",
            row.what, value, goal, verdict, row.how
        );
    }
}

/// The goal as printed, and whether `value` meets it.
fn verdict(want: Option<&Want>, value: Option<f64>) -> (String, &'static str) {
    match (want, value) {
        (Some(Want::AtMost(g)), Some(v)) => {
            (format!("<= {g:.2}"), if v <= *g { "met" } else { "MISSED" })
        }
        (Some(Want::AtLeast(g)), Some(v)) => {
            (format!(">= {g:.2}"), if v >= *g { "met" } else { "MISSED" })
        }
        (Some(Want::AtMost(g)), None) => (format!("<= {g:.2}"), "n/a"),
        (Some(Want::AtLeast(g)), None) => (format!(">= {g:.2}"), "n/a"),
        (None, _) => ("-".to_string(), "-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_picks_the_faster_flavour_and_names_it() {
        // Names no workload uses: the figures are global to the process.
        record("ct.test_best.p50", 30.0, "us");
        record("mt.test_best.p50", 20.0, "us");
        record("ct.test_best.rate", 300.0, "calls/s");
        record("mt.test_best.rate", 200.0, "calls/s");
        assert_eq!(
            best("", "test_best.p50", Better::Lower),
            Some(("mt.test_best.p50".to_string(), 20.0))
        );
        assert_eq!(
            best("", "test_best.rate", Better::Higher),
            Some(("ct.test_best.rate".to_string(), 300.0))
        );
        // One flavour measured: that one; none: nothing.
        record("pinned.ct.test_one.p50", 5.0, "us");
        assert_eq!(
            best("pinned.", "test_one.p50", Better::Lower),
            Some(("pinned.ct.test_one.p50".to_string(), 5.0))
        );
        assert_eq!(best("", "test_none.p50", Better::Lower), None);
    }

    #[test]
    fn a_goal_row_compares_best_to_best() {
        record("ct.test_row.rate", 100.0, "calls/s");
        record("mt.test_row.rate", 150.0, "calls/s");
        record("ct.test_peer.rate", 120.0, "calls/s");
        record("mt.test_peer.rate", 60.0, "calls/s");
        let row = best_ratio(
            "test",
            best("", "test_row.rate", Better::Higher),
            best("", "test_peer.rate", Better::Higher),
            Some(Want::AtLeast(1.5)),
            "missing".into(),
        );
        assert_eq!(row.how, "mt.test_row.rate / ct.test_peer.rate");
        assert_eq!(row.value, Some(1.25));
        assert_eq!(verdict(row.want.as_ref(), row.value).1, "MISSED");
        let missing = best_ratio(
            "test",
            best("", "test_absent", Better::Higher),
            best("", "floor.test_absent", Better::Lower),
            Some(Want::AtMost(1.1)),
            "missing".into(),
        );
        assert_eq!(missing.how, "missing");
        assert_eq!(
            verdict(missing.want.as_ref(), missing.value),
            ("<= 1.10".to_string(), "n/a")
        );
        assert_eq!(verdict(Some(&Want::AtMost(1.1)), Some(1.1)).1, "met");
        assert_eq!(verdict(None, Some(3.0)).1, "-");
    }
}
