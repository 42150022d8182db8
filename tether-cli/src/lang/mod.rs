//! The language of `tether run` (and, next, of `tether shell`): Python,
//! from RustPython, with the peer's objects as values.
//!
//! Why RustPython and not starlark-rust (measured in issue 13's note):
//! Starlark has no `while`, `with`, `try`, `**`, bytes or classes, and its
//! `repr` is not Python's; RustPython parses and runs Python 3 as written,
//! at a similar cost (cold release build of a hello-world embedding: 365
//! CPU-s against 293, 12.7 MB stripped against 7.8).
//!
//! How the pieces fit:
//!
//! - One interpreter, on the thread that calls [`Engine::run`]. Python
//!   code sees remote objects as instances of `Remote` (`prelude.py`),
//!   whose special methods call the `_tether_*` functions of [`remote`];
//!   those keep the tether references in a table of the thread's and hand
//!   Python only numbers.
//! - A remote call blocks the interpreter's thread in [`wait`], which runs
//!   the call's future on the tokio runtime while listening for two other
//!   things: callbacks and Ctrl-C.
//! - A Python function passed to the peer becomes a tether callback
//!   ([`callback`]). When the peer calls it, the request is queued for the
//!   interpreter's thread, which is (nearly always) blocked in `wait` on
//!   the very call that passed it: `wait` runs the function there and
//!   sends back its result, then goes on waiting. So callbacks run on the
//!   prompt's thread, to any depth (a callback that calls the peer waits in
//!   a nested `wait`). A callback the peer makes when no call is waiting
//!   runs at the start of the next one.
//! - A call whose result the code goes straight on to use a member of
//!   (`root.counter(5).increment()`) is not waited for: it stays a promise
//!   and the next step is pipelined onto it, so a chain costs one round
//!   trip ([`chain`]).
//! - Ctrl-C during a call drops the call's future, which cancels it on
//!   the peer (tether's cancel-on-drop), and raises `KeyboardInterrupt`
//!   ("cancelled") in the Python code that made it; variables stay. A
//!   callback interrupted so cancels the call that waits for it too.
//!   Python code that is not waiting is interrupted by RustPython's own
//!   SIGINT handler, as in Python.

mod callback;
mod chain;
mod convert;
pub mod help;
mod remote;
mod repl;
mod wait;

pub use remote::Describe;

use rustpython_vm::builtins::PyBaseExceptionRef;
use rustpython_vm::compiler::Mode;
use rustpython_vm::scope::Scope;
use rustpython_vm::{AsObject, Interpreter, VirtualMachine};

/// The Python prelude: the `Remote` class and its helpers.
const PRELUDE: &str = include_str!("prelude.py");

impl Engine {
    /// Learn objects' members and docs from `describe` instead of asking
    /// their owners with `inspect`.
    pub fn describe_with(&self, describe: Box<dyn Describe>) {
        remote::describe_with(describe);
    }
}

/// Why running code failed.
#[derive(Debug)]
pub enum Failure {
    /// The code does not parse; the message says where.
    Syntax(String),
    /// The code raised an exception that nothing caught: Python's
    /// traceback, or the peer's error with its trace.
    Raised(String),
}

/// A Python interpreter whose `root` is a peer's root object.
pub struct Engine {
    interpreter: Interpreter,
    scope: Scope,
}

impl Engine {
    /// An interpreter on this thread, `root` bound to `root`, remote calls
    /// run on `rt`.
    pub fn new(rt: tokio::runtime::Handle, root: tether::NetRef) -> Engine {
        let interpreter = Interpreter::without_stdlib(Default::default());
        let scope = interpreter.enter(|vm| {
            remote::install(vm, rt);
            let scope = vm.new_scope_with_builtins();
            let prelude = vm
                .compile(PRELUDE, Mode::Exec, "<tether prelude>".to_owned())
                .expect("the prelude compiles");
            if let Err(exc) = vm.run_code_obj(prelude, scope.clone()) {
                panic!("the prelude runs: {}", describe(vm, &exc));
            }
            remote::adopt_prelude(vm, &scope);
            let root = convert::to_py(vm, tether::Value::Ref(root))
                .unwrap_or_else(|exc| panic!("root wraps: {}", describe(vm, &exc)));
            scope
                .globals
                .set_item("root", root, vm)
                .expect("a dict takes a str key");
            scope
        });
        Engine { interpreter, scope }
    }

    /// Run `source` (a file's text; `name` names it in tracebacks).
    pub fn run(&self, source: &str, name: &str) -> Result<(), Failure> {
        self.interpreter.enter(|vm| {
            let code = vm
                .compile(source, Mode::Exec, name.to_owned())
                .map_err(|e| Failure::Syntax(format!("SyntaxError in {name}: {e}")))?;
            vm.run_code_obj(code, self.scope.clone())
                .map(drop)
                .map_err(|exc| Failure::Raised(describe(vm, &exc)))
        })
    }
}

/// What an uncaught exception prints: for an error of the peer's, its
/// type, message and remote trace; otherwise Python's traceback.
fn describe(vm: &VirtualMachine, exc: &PyBaseExceptionRef) -> String {
    if let Some(err) = remote::error_of(vm, exc) {
        return remote::describe_error(&err);
    }
    let mut out = String::new();
    if vm.write_exception(&mut out, exc).is_err() {
        out = repr(vm, exc.as_object());
    }
    out.trim_end().to_string()
}

/// What the prompt prints for an exception: `Type: message` (for an
/// error of the peer's, its own type; `trace` shows the rest), or
/// `cancelled` for a Ctrl-C.
fn describe_short(vm: &VirtualMachine, exc: &PyBaseExceptionRef) -> String {
    if let Some(err) = remote::error_of(vm, exc) {
        return err.to_string();
    }
    let message = exc
        .as_object()
        .str(vm)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    if exc
        .class()
        .fast_issubclass(vm.ctx.exceptions.keyboard_interrupt)
    {
        return if message.is_empty() {
            "KeyboardInterrupt".to_owned()
        } else {
            message
        };
    }
    match message.as_str() {
        "" => exc.class().name().to_string(),
        message => format!("{}: {message}", exc.class().name()),
    }
}

/// The trace of the last remote error, one line per frame (outermost
/// first); `None` before any.
pub fn last_trace() -> Option<Vec<String>> {
    remote::last_error().map(|err| err.remote().map(|r| r.trace().to_vec()).unwrap_or_default())
}

/// `repr(obj)`, or a placeholder if that raises.
fn repr(vm: &VirtualMachine, obj: &rustpython_vm::PyObject) -> String {
    obj.repr(vm)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| "<unprintable>".to_owned())
}
