//! Waiting for a remote call on the interpreter's thread, while running
//! the callbacks the peer makes meanwhile and watching for Ctrl-C.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use rustpython_vm::{PyResult, VirtualMachine};
use tokio::sync::{mpsc, oneshot};

use super::callback;

/// What the runtime's threads ask of the interpreter's.
pub(crate) enum Request {
    /// Run callback `id` with `args`; its outcome goes to `reply`.
    Call {
        id: u64,
        args: tether::Args,
        reply: oneshot::Sender<tether::Result<tether::Value>>,
    },
    /// The peer released callback `id`: forget the function.
    Forget(u64),
}

/// The queue of requests, one per interpreter thread.
struct Queue {
    tx: mpsc::UnboundedSender<Request>,
    /// Taken by the `wait` that polls it, put back when it returns.
    rx: Rc<RefCell<Option<mpsc::UnboundedReceiver<Request>>>>,
}

thread_local! {
    static QUEUE: Queue = {
        let (tx, rx) = mpsc::unbounded_channel();
        Queue { tx, rx: Rc::new(RefCell::new(Some(rx))) }
    };
}

/// Where callbacks send their requests (to this thread's interpreter).
pub(crate) fn sender() -> mpsc::UnboundedSender<Request> {
    QUEUE.with(|q| q.tx.clone())
}

enum Step<T> {
    Done(tether::Result<T>),
    Request(Request),
    Interrupted,
}

/// Run `call` to its end on `rt`, running on this thread, meanwhile, the
/// callbacks the peer makes. Ctrl-C drops `call` (cancelling it on the
/// peer) and raises `KeyboardInterrupt`; a tether error is raised as the
/// prelude's `RemoteError`.
pub(crate) fn wait<T>(
    vm: &VirtualMachine,
    rt: &tokio::runtime::Handle,
    call: impl Future<Output = tether::Result<T>>,
) -> PyResult<T> {
    let rx = QUEUE.with(|q| q.rx.clone());
    let mut call = std::pin::pin!(call);
    loop {
        // Nested waits (in callbacks) run only after this block_on
        // returns, when the receiver is back.
        let mut requests = rx.borrow_mut().take().expect("the queue is back");
        let step = rt.block_on(async {
            tokio::select! {
                biased;
                _ = ctrl_c(vm) => Step::Interrupted,
                outcome = &mut call => Step::Done(outcome),
                Some(request) = requests.recv() => Step::Request(request),
            }
        });
        *rx.borrow_mut() = Some(requests);
        match step {
            Step::Done(outcome) => return outcome.map_err(|e| super::remote::raise(vm, e)),
            Step::Interrupted => return Err(cancelled(vm)),
            Step::Request(Request::Forget(id)) => callback::forget(id),
            Step::Request(Request::Call { id, args, reply }) => {
                let (outcome, interrupted) = callback::run(vm, id, args);
                let _ = reply.send(outcome);
                if interrupted {
                    return Err(cancelled(vm));
                }
            }
        }
    }
}

/// Done once a Ctrl-C is pending for the interpreter, which it takes.
///
/// The interpreter's SIGINT handler is the one record of a Ctrl-C: it is
/// what interrupts Python code that is not waiting, and it runs before
/// tokio's in the same signal (tokio chains to it). Tokio's listener only
/// wakes this wait to look. So a Ctrl-C that came before the wait began
/// (a pipelined chain is sent before its result is awaited) is seen, and
/// one the interpreter already raised in Python code is not seen twice.
async fn ctrl_c(vm: &VirtualMachine) {
    #[cfg(unix)]
    let mut wake = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    loop {
        // Looked at after the listener is in place, so none is missed.
        if vm.check_signals().is_err() {
            return;
        }
        #[cfg(unix)]
        match &mut wake {
            Some(wake) => {
                wake.recv().await;
            }
            None => std::future::pending().await,
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `KeyboardInterrupt("cancelled")`.
fn cancelled(vm: &VirtualMachine) -> rustpython_vm::builtins::PyBaseExceptionRef {
    vm.new_exception_msg(
        vm.ctx.exceptions.keyboard_interrupt.to_owned(),
        "cancelled".to_owned(),
    )
}
