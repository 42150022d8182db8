//! Waiting for a remote call on the interpreter's thread, while running
//! the callbacks the peer makes meanwhile and watching for Ctrl-C.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use rustpython_vm::{AsObject, PyResult, VirtualMachine};
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
    /// A SIGINT arrived: the interpreter's record says whether it is one
    /// still to act on.
    Signal,
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
    wait_outcome(vm, rt, call)?.map_err(|e| super::remote::raise(vm, e))
}

/// [`wait`], but a tether error is returned as it is, not raised: the
/// outer `Err` is only for what interrupted the wait.
///
/// Ctrl-C: the interpreter's SIGINT handler is the one record of one (it
/// is what interrupts Python code that is not waiting, and it runs before
/// tokio's in the same signal). A listener of tokio's, subscribed before
/// the record is looked at, only wakes the wait to look again, outside
/// the runtime (where a Python signal handler may itself call the peer).
/// So a Ctrl-C that came before the wait began (a pipelined chain is sent
/// before its result is awaited) is seen, and one the interpreter already
/// raised in Python code is not seen twice.
pub(crate) fn wait_outcome<T>(
    vm: &VirtualMachine,
    rt: &tokio::runtime::Handle,
    call: impl Future<Output = tether::Result<T>>,
) -> PyResult<tether::Result<T>> {
    let rx = QUEUE.with(|q| q.rx.clone());
    let mut call = std::pin::pin!(call);
    loop {
        let mut sigint = interrupts(rt);
        if let Err(exc) = vm.check_signals() {
            return Err(interrupted(vm, exc));
        }
        // Nested waits (in callbacks) run only after this block_on
        // returns, when the receiver is back.
        let mut requests = rx.borrow_mut().take().expect("the queue is back");
        let step = rt.block_on(async {
            tokio::select! {
                biased;
                _ = next_interrupt(&mut sigint) => Step::Signal,
                outcome = &mut call => Step::Done(outcome),
                Some(request) = requests.recv() => Step::Request(request),
            }
        });
        *rx.borrow_mut() = Some(requests);
        match step {
            Step::Done(outcome) => return Ok(outcome),
            Step::Signal => continue,
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

/// A listener of SIGINTs from now on (none where there are no Unix
/// signals: then only the interpreter's record, looked at between waits,
/// and tokio's `ctrl_c` wake a wait).
#[cfg(unix)]
type Interrupts = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Interrupts = ();

fn interrupts(rt: &tokio::runtime::Handle) -> Interrupts {
    #[cfg(unix)]
    {
        let _in_runtime = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
    }
    #[cfg(not(unix))]
    let _ = rt;
}

async fn next_interrupt(sigint: &mut Interrupts) {
    #[cfg(unix)]
    match sigint {
        Some(sigint) => {
            sigint.recv().await;
        }
        None => std::future::pending().await,
    }
    #[cfg(not(unix))]
    {
        let () = sigint;
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What a pending signal's handler raised: a `KeyboardInterrupt` (the
/// default handler's) is the wait's "cancelled"; anything else a Python
/// handler raised goes on as it is.
fn interrupted(
    vm: &VirtualMachine,
    exc: rustpython_vm::builtins::PyBaseExceptionRef,
) -> rustpython_vm::builtins::PyBaseExceptionRef {
    if exc
        .class()
        .fast_issubclass(vm.ctx.exceptions.keyboard_interrupt)
    {
        cancelled(vm)
    } else {
        exc
    }
}

/// `KeyboardInterrupt("cancelled")`.
fn cancelled(vm: &VirtualMachine) -> rustpython_vm::builtins::PyBaseExceptionRef {
    vm.new_exception_msg(
        vm.ctx.exceptions.keyboard_interrupt.to_owned(),
        "cancelled".to_owned(),
    )
}
