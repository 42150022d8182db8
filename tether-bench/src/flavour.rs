//! tokio's two runtime flavours, and a client runtime of either flavour on
//! a thread of its own that runs the workloads' rounds.
//!
//! tarpc with 256 calls in flight was measured almost 3x faster on the
//! current-thread runtime than on the multi-thread one (BENCHMARKING.md):
//! a user picks the faster flavour, so the speed workloads run tether and
//! tarpc on both, client and server alike, and the goals compare the best
//! to the best (issue 17). Figures are named `ct.<workload>` and
//! `mt.<workload>`.
//!
//! A [`Client`] keeps its runtime driven between jobs (its thread sits in
//! `block_on`, waiting for the next job), so the connections it made stay
//! served while the other flavour's rounds run; each job runs inline in that
//! `block_on`, as a `#[tokio::main]` program's code does. The rounds of both
//! flavours can so be interleaved, and a drift of the machine falls on both.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

/// A tokio runtime flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `Builder::new_current_thread()`: one thread runs every task.
    Ct,
    /// `Builder::new_multi_thread()`: a worker per vCPU (2 here).
    Mt,
}

impl Flavour {
    pub const BOTH: [Flavour; 2] = [Flavour::Ct, Flavour::Mt];

    /// `ct` or `mt`: the first part of a flavoured figure's name.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Ct => "ct",
            Flavour::Mt => "mt",
        }
    }

    /// `ct`, `mt` or `both` (the `--flavour` option).
    pub fn parse_list(s: &str) -> Option<Vec<Flavour>> {
        match s {
            "ct" => Some(vec![Flavour::Ct]),
            "mt" => Some(vec![Flavour::Mt]),
            "both" => Some(Flavour::BOTH.to_vec()),
            _ => None,
        }
    }

    /// A runtime of this flavour, I/O and time enabled.
    pub fn runtime(self) -> tokio::runtime::Runtime {
        let mut b = match self {
            Flavour::Ct => tokio::runtime::Builder::new_current_thread(),
            Flavour::Mt => tokio::runtime::Builder::new_multi_thread(),
        };
        b.enable_all().build().expect("runtime")
    }
}

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A client runtime of one flavour, on its own thread.
pub struct Client {
    pub flavour: Flavour,
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    pub fn start(flavour: Flavour) -> Client {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("client-{}", flavour.name()))
            .spawn(move || {
                let rt = flavour.runtime();
                rt.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        job().await;
                    }
                });
            })
            .expect("client thread");
        Client {
            flavour,
            jobs: Some(tx),
            thread: Some(thread),
        }
    }

    /// `ct.` or `mt.`.
    pub fn prefix(&self) -> String {
        format!("{}.", self.flavour.name())
    }

    /// Run `job` on this runtime (inline in its `block_on`) and return what
    /// it returns. What it needs goes in by value and comes back out in `R`,
    /// so connections made on this runtime are also dropped on it.
    pub async fn run<R, F, Fut>(&self, job: F) -> R
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let _ = tx.send(job().await);
            })
        });
        self.jobs
            .as_ref()
            .expect("client runtime")
            .send(job)
            .unwrap_or_else(|_| panic!("the {} client runtime has stopped", self.flavour.name()));
        rx.await.unwrap_or_else(|_| {
            panic!("a job on the {} client runtime failed", self.flavour.name())
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flavour_option() {
        assert_eq!(Flavour::parse_list("ct"), Some(vec![Flavour::Ct]));
        assert_eq!(Flavour::parse_list("mt"), Some(vec![Flavour::Mt]));
        assert_eq!(
            Flavour::parse_list("both"),
            Some(vec![Flavour::Ct, Flavour::Mt])
        );
        assert_eq!(Flavour::parse_list("fast"), None);
    }

    #[test]
    fn jobs_run_on_their_own_flavour() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for f in Flavour::BOTH {
            let client = Client::start(f);
            let (name, kind) = outer.block_on(client.run(move || async move {
                // A task spawned from the job runs on the client's runtime.
                let kind =
                    tokio::spawn(async { tokio::runtime::Handle::current().runtime_flavor() })
                        .await
                        .unwrap();
                (std::thread::current().name().map(str::to_string), kind)
            }));
            assert_eq!(
                name.as_deref(),
                Some(format!("client-{}", f.name()).as_str())
            );
            let want = match f {
                Flavour::Ct => tokio::runtime::RuntimeFlavor::CurrentThread,
                Flavour::Mt => tokio::runtime::RuntimeFlavor::MultiThread,
            };
            assert_eq!(kind, want);
        }
    }
}
