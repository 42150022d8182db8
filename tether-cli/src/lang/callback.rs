//! Python functions served to the peer as tether callbacks.
//!
//! The function stays in a table of the interpreter's thread; the tether
//! object sent to the peer holds only its number and the queue to that
//! thread, so a call from the peer becomes a [`Request`] that
//! [`wait`](super::wait::wait) runs. When the peer releases the object the
//! function is forgotten.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rustpython_vm::function::FuncArgs;
use rustpython_vm::{AsObject, PyObjectRef, VirtualMachine};
use tokio::sync::{mpsc, oneshot};

use super::convert;
use super::wait::{sender, Request};

thread_local! {
    static FUNCTIONS: RefCell<(u64, HashMap<u64, PyObjectRef>)> = RefCell::new((0, HashMap::new()));
}

/// Sends `Forget` when the tether object is dropped.
struct Forget {
    id: u64,
    tx: mpsc::UnboundedSender<Request>,
}

impl Drop for Forget {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Forget(self.id));
    }
}

/// `function` as an object the peer can call.
pub(crate) fn serve(function: PyObjectRef) -> tether::NetRef {
    let id = FUNCTIONS.with(|f| {
        let (next, table) = &mut *f.borrow_mut();
        *next += 1;
        table.insert(*next, function);
        *next
    });
    let tx = sender();
    let forget = Arc::new(Forget { id, tx: tx.clone() });
    tether::callback(move |args: tether::Args| {
        let tx = tx.clone();
        let forget = forget.clone();
        async move {
            let _alive = forget;
            let (reply, outcome) = oneshot::channel();
            tx.send(Request::Call { id, args, reply })
                .map_err(|_| gone())?;
            outcome.await.unwrap_or_else(|_| Err(gone()))
        }
    })
}

fn gone() -> tether::Error {
    tether::Error::app(
        "RuntimeError",
        "the interpreter that held this callback has ended",
    )
}

/// Forget function `id`.
pub(crate) fn forget(id: u64) {
    FUNCTIONS.with(|f| f.borrow_mut().1.remove(&id));
}

/// Run function `id` with `args`: its result for the peer, and whether it
/// ended by Ctrl-C (then the call that waits for it is cancelled too).
pub(crate) fn run(
    vm: &VirtualMachine,
    id: u64,
    args: tether::Args,
) -> (tether::Result<tether::Value>, bool) {
    let Some(function) = FUNCTIONS.with(|f| f.borrow().1.get(&id).cloned()) else {
        return (
            Err(tether::Error::app(
                "RuntimeError",
                "this callback was released",
            )),
            false,
        );
    };
    let call = || -> rustpython_vm::PyResult<tether::Value> {
        let mut py_args = FuncArgs::default();
        for value in args.positional {
            py_args.args.push(convert::to_py(vm, value)?);
        }
        for (name, value) in args.named {
            py_args.kwargs.insert(name, convert::to_py(vm, value)?);
        }
        let out = function.call(py_args, vm)?;
        convert::from_py(vm, &out)
    };
    match call() {
        Ok(value) => (Ok(value), false),
        Err(exc) => {
            let interrupted = exc
                .class()
                .fast_issubclass(vm.ctx.exceptions.keyboard_interrupt);
            let type_name = exc.class().name().to_string();
            let message = exc
                .as_object()
                .str(vm)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            (Err(tether::Error::app(type_name, message)), interrupted)
        }
    }
}
