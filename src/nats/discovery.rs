//! Finding a service's live instances through the services protocol, and
//! choosing among them.
//!
//! [`instances`] sends `$SRV.INFO.NAME` and gathers every instance's
//! answer (the `io.nats.micro.v1.info_response` of ADR-32): its id,
//! version, and in its metadata the direct endpoints it listens on and
//! the tether protocol it speaks. When no instance listens, the broker
//! says so at once ("no responders"). Otherwise answers are gathered
//! until none has come for a quiet spell after the last one (or 2 s
//! passed with none at all): 50 ms, or four times the first answer's
//! latency when that is longer (at most 1 s). The broker delivers them
//! within microseconds of each other on one machine; an instance slower
//! than that is simply not among the candidates this time.
//!
//! [`Picker`] remembers when this client last used each instance and
//! picks the least recently used, breaking ties at random: one client
//! spreads its connections round-robin over the instances it knows, and
//! many clients starting at once spread at random.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::Client;
use futures_util::StreamExt;

use crate::error::raise;
use crate::{Error, ErrorKind, Result};

/// Metadata key: the instance's direct endpoints, comma-separated
/// (`tcp://127.0.0.1:18812`, `tls://…`).
pub const META_ENDPOINTS: &str = "tether.endpoints";
/// Metadata key: the tether protocol version the instance speaks.
pub const META_PROTOCOL: &str = "tether.protocol";

/// How long to wait for a first answer.
pub(crate) const GATHER_FIRST: Duration = Duration::from_secs(2);
/// How long to wait after an answer for more, at least.
pub(crate) const GATHER_QUIET: Duration = Duration::from_millis(50);
/// ... and at most.
pub(crate) const GATHER_QUIET_MAX: Duration = Duration::from_secs(1);

/// One live instance of a service, as its info answer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The per-instance id the services protocol gave it.
    pub id: String,
    /// The service's name.
    pub name: String,
    /// The service's semver version.
    pub version: String,
    /// Where it can be reached directly (`tcp://HOST:PORT`,
    /// `tls://HOST:PORT`); empty when it advertises none.
    pub endpoints: Vec<String>,
    /// The tether protocol version it speaks.
    pub protocol: Option<u16>,
}

impl Instance {
    fn from_info(info: async_nats::service::Info) -> Instance {
        let endpoints = info
            .metadata
            .get(META_ENDPOINTS)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Instance {
            protocol: info
                .metadata
                .get(META_PROTOCOL)
                .and_then(|v| v.parse().ok()),
            id: info.id,
            name: info.name,
            version: info.version,
            endpoints,
        }
    }
}

/// The live instances of `service` that answer `$SRV.INFO.service`,
/// sorted by id. Empty when none does.
pub async fn instances(client: &Client, service: &str) -> Result<Vec<Instance>> {
    check_name(service)?;
    let inbox = client.new_inbox();
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| transport(format!("cannot subscribe on the NATS server: {e}")))?;
    client
        .publish_with_reply(format!("$SRV.INFO.{service}"), inbox, "".into())
        .await
        .map_err(|e| transport(format!("cannot ask the NATS server for '{service}': {e}")))?;
    client
        .flush()
        .await
        .map_err(|e| transport(format!("cannot reach the NATS server: {e}")))?;
    let mut found: HashMap<String, Instance> = HashMap::new();
    let asked = Instant::now();
    let mut wait = GATHER_FIRST;
    while let Ok(Some(message)) = tokio::time::timeout(wait, answers.next()).await {
        // Later answers are waited for longer when the first was slow (a
        // loaded machine or network): four times its latency, at least
        // 50 ms, at most a second.
        wait = (asked.elapsed() * 4).clamp(GATHER_QUIET, GATHER_QUIET_MAX);
        // The broker says at once when nobody listens: no instance.
        if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            break;
        }
        match serde_json::from_slice::<async_nats::service::Info>(&message.payload) {
            Ok(info) if info.name == service => {
                let instance = Instance::from_info(info);
                found.insert(instance.id.clone(), instance);
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(%err, "an info answer that is not ADR-32's"),
        }
    }
    let mut list: Vec<Instance> = found.into_values().collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(list)
}

/// A service name as the services protocol allows it.
pub(crate) fn check_name(service: &str) -> Result<()> {
    if is_name(service) {
        Ok(())
    } else {
        Err(raise::bad_args(format!(
            "'{service}' is not a service name (only A-Z, a-z, 0-9, - and _)"
        )))
    }
}

/// Whether `name` is within the services protocol's alphabet for names
/// (A-Z, a-z, 0-9, - and _), which also makes it one subject token.
pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn transport(message: String) -> Error {
    Error::new(ErrorKind::Transport, message)
}

/// Chooses among instances: least recently used by this client first,
/// ties broken at random.
#[derive(Debug, Default)]
pub(crate) struct Picker {
    last_used: Mutex<HashMap<String, Instant>>,
}

impl Picker {
    /// `found` in the order to try them.
    pub(crate) fn order(&self, mut found: Vec<Instance>) -> Vec<Instance> {
        let used = self.last_used.lock().unwrap();
        // Shuffle first so the stable sort leaves ties in random order.
        shuffle(&mut found);
        found.sort_by_key(|i| used.get(&i.id).copied());
        found
    }

    /// Note that `id` was just used.
    pub(crate) fn used(&self, id: &str) {
        self.last_used
            .lock()
            .unwrap()
            .insert(id.to_string(), Instant::now());
    }
}

/// Fisher–Yates with the OS's randomness (through ring, already built).
fn shuffle<T>(items: &mut [T]) {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    for i in (1..items.len()).rev() {
        let mut bytes = [0u8; 8];
        if rng.fill(&mut bytes).is_err() {
            return;
        }
        let j = (u64::from_le_bytes(bytes) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str) -> Instance {
        Instance {
            id: id.into(),
            name: "calc".into(),
            version: "1.0.0".into(),
            endpoints: vec![],
            protocol: Some(3),
        }
    }

    #[test]
    fn the_least_recently_used_instance_comes_first() {
        let picker = Picker::default();
        let all = vec![instance("a"), instance("b"), instance("c")];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let first = picker.order(all.clone()).remove(0);
            picker.used(&first.id);
            seen.push(first.id);
        }
        seen.sort();
        assert_eq!(seen, ["a", "b", "c"], "each used once before any twice");
        let next = picker.order(all).remove(0);
        assert_eq!(next.id, {
            let used = picker.last_used.lock().unwrap();
            used.iter().min_by_key(|(_, t)| **t).unwrap().0.clone()
        });
    }

    #[test]
    fn names_outside_the_protocols_alphabet_are_refused() {
        assert!(check_name("calc-2_x").is_ok());
        for bad in ["", "a.b", "a b", "*", ">"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
