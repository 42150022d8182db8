//! Decoding large frames away from the runtime's workers, a few at a time.
//!
//! Both drivers (native and RPyC) decode a large frame on tokio's blocking
//! pool, so that the worker threads every connection shares are never held
//! by it. The blocking pool alone would still let as many decodes run at
//! once as there are peers sending large frames, each a thread competing
//! with the workers for the cores: on a small machine the operating system
//! then shares a core between a worker and a decode in slices of
//! milliseconds, and every other connection's calls wait that long.
//!
//! So at most one decode fewer than the machine has cores runs at once,
//! process-wide (at least one): a core is always left to the workers.
//! Further large frames wait their turn, each in its own connection's
//! reader, which reads nothing more meanwhile (TCP pushes back on that
//! peer alone); small frames never wait here.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

/// Run `decode` on the blocking pool once one of the process's decoding
/// turns is free. `None` if it panicked.
pub(crate) async fn decode_aside<T, F>(decode: F) -> Option<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    static TURNS: OnceLock<Turns> = OnceLock::new();
    TURNS
        .get_or_init(|| Turns::new(max_turns()))
        .decode(decode)
        .await
}

/// Most large decodes running at once in this process: one fewer than
/// the cores, at least one.
pub(crate) fn max_turns() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |cores| cores.get().saturating_sub(1))
        .max(1)
}

/// Turns to decode on the blocking pool, a fixed number at a time.
struct Turns(Arc<Semaphore>);

impl Turns {
    fn new(turns: usize) -> Turns {
        Turns(Arc::new(Semaphore::new(turns)))
    }

    async fn decode<T, F>(&self, decode: F) -> Option<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let turn = self.0.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            // Held until the decoding ends, even if the reader stopped
            // waiting for it: the core is busy until then.
            let _turn = turn;
            decode()
        })
        .await
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_decode_holds_a_turn_while_it_runs_and_gives_it_back() {
        let turns = Turns::new(2);
        let free = turns.0.clone();
        let during = turns.decode(move || free.available_permits()).await;
        assert_eq!(during, Some(1));
        assert_eq!(turns.0.available_permits(), 2);
    }

    #[tokio::test]
    async fn a_decode_that_panics_is_none_and_gives_its_turn_back() {
        let turns = Turns::new(1);
        let outcome: Option<()> = turns.decode(|| panic!("a decoder bug")).await;
        assert!(outcome.is_none());
        assert_eq!(turns.0.available_permits(), 1);
    }
}
