//! Pipelining at the prompt: `root.counter(5).increment()` is one chain
//! sent at once, not two round trips.
//!
//! A remote call's result is left unfetched (a promise, seen by Python as
//! a `_Pending`) only when the code that made it goes straight on to read
//! or call something of it: the instruction after the call is an
//! attribute load. That load then adds its step to the promise's chain
//! (`promise.call_method`, `promise.getattr`), and the first result used
//! any other way (printed, stored, computed with) is fetched there.
//! Python code therefore never holds a `_Pending`: each one is consumed by
//! the instruction right after the one that made it.
//!
//! Which instruction comes next is read from the calling frame's bytecode
//! (RustPython compiles `a.b(x)` to `LoadMethod b` … `CallMethod`, and
//! `a.b` to `LoadAttr b`). A method fetched by `LoadMethod` is "direct":
//! the frame calls it at once, so its result's next instruction is the
//! frame's. Calls made any other way (a method passed to `sorted` as its
//! key) are never chained, and return values as before.
//!
//! The owner runs a step on a plain value (`root.name().upper()`) as an
//! error: only objects have remote members. When a step fails and its
//! target turned out to be a plain value, the step is run locally on that
//! value instead, as it would have been without pipelining.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::IntoFuture;

use rustpython_vm::builtins::{PyBaseExceptionRef, PyDict, PyTuple};
use rustpython_vm::bytecode::{CodeObject, Instruction, OpArgState};
use rustpython_vm::function::{FuncArgs, KwArgs};
use rustpython_vm::{PyObjectRef, PyResult, VirtualMachine};
use tether::Promise;

use super::convert::to_py;
use super::remote::{self, arg, handle_arg, str_arg};
use super::wait::wait;

/// Where `_Pending` and its helpers are defined.
const PRELUDE_PATH: &str = "<tether prelude>";

/// One unfetched result.
struct Slot {
    promise: Promise,
    /// The `_Pending` this step was made on, if any (the first step of a
    /// chain is made on an object).
    target: Option<PyObjectRef>,
    /// The step, to run locally if its target is a plain value.
    step: Step,
    /// The value, once fetched.
    resolved: Option<PyObjectRef>,
}

/// A step of a chain, as Python would run it.
#[derive(Clone)]
enum Step {
    /// The first step, on an object.
    Start,
    /// `.name`
    GetAttr(String),
    /// `.name(*args, **kwargs)`
    CallMethod(String, PyObjectRef, PyObjectRef),
}

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::new(Slots::default());
}

#[derive(Default)]
struct Slots {
    next: u64,
    slots: HashMap<u64, Slot>,
}

/// Set up the `_tether_pending_*` builtins.
pub(crate) fn install(vm: &VirtualMachine) {
    remote::add_builtins(
        vm,
        [
            (
                "_tether_pending_getattr",
                pending_getattr as remote::Builtin,
            ),
            ("_tether_pending_call", pending_call),
            ("_tether_resolve", resolve),
            ("_tether_release_pending", release),
        ],
    );
}

/// Where the nearest frame of the user's code is.
struct Caller {
    /// The instruction it is running.
    running: Instruction,
    /// Whether the next instruction loads a member the peer may have
    /// (`LoadAttr`/`LoadMethod` of a name not Python's nor the prelude's).
    then_loads_member: bool,
}

fn caller(vm: &VirtualMachine) -> Option<Caller> {
    let frames = vm.frames.borrow();
    let frame = frames
        .iter()
        .rev()
        .find(|f| f.code.source_path.as_str() != PRELUDE_PATH)?;
    // While an instruction runs, `lasti` is the index of the next one.
    let lasti = frame.lasti() as usize;
    let code: &CodeObject<_> = &frame.code.code;
    let running = code.instructions.get(lasti.checked_sub(1)?)?.op;
    let mut state = OpArgState::default();
    let next = code
        .instructions
        .get(lasti..)?
        .iter()
        .map(|unit| state.get(*unit))
        .find(|(op, _)| *op != Instruction::ExtendedArg);
    let then_loads_member = match next {
        Some((Instruction::LoadAttr { idx } | Instruction::LoadMethod { idx }, arg)) => code
            .names
            .get(idx.get(arg) as usize)
            .is_some_and(|name| remote_member(name.as_str())),
        _ => false,
    };
    Some(Caller {
        running,
        then_loads_member,
    })
}

/// Whether a member of this name goes to the peer: not Python's own
/// (`__class__`) nor the prelude's (`_tether_value`).
fn remote_member(name: &str) -> bool {
    !name.starts_with("__") && !name.starts_with("_tether")
}

/// Whether the user's code is fetching a method to call it at once
/// (`LoadMethod`).
pub(crate) fn fetching_to_call(vm: &VirtualMachine) -> bool {
    caller(vm).is_some_and(|c| matches!(c.running, Instruction::LoadMethod { .. }))
}

/// Whether the result of what the user's code is doing now goes straight
/// to an attribute load of a remote member: then it can stay a promise.
pub(crate) fn result_chained(vm: &VirtualMachine) -> bool {
    caller(vm).is_some_and(|c| c.then_loads_member)
}

/// Whether the user's code is reading an attribute (`LoadAttr`) whose
/// value goes straight to another member's load.
fn reading_chained(vm: &VirtualMachine) -> bool {
    caller(vm)
        .is_some_and(|c| matches!(c.running, Instruction::LoadAttr { .. }) && c.then_loads_member)
}

/// The first step of a chain, `promise` made on an object: a `_Pending`.
pub(crate) fn start(vm: &VirtualMachine, promise: Promise) -> PyResult {
    pending(vm, promise, None, Step::Start)
}

fn pending(
    vm: &VirtualMachine,
    promise: Promise,
    target: Option<PyObjectRef>,
    step: Step,
) -> PyResult {
    let handle = keep(promise, target, step);
    remote::classes(|c| c.pending.clone()).call((vm.ctx.new_int(handle),), vm)
}

/// A slot for a step's result; its handle.
fn keep(promise: Promise, target: Option<PyObjectRef>, step: Step) -> u64 {
    SLOTS.with(|s| {
        let mut s = s.borrow_mut();
        s.next += 1;
        let handle = s.next;
        let slot = Slot {
            promise,
            target,
            step,
            resolved: None,
        };
        s.slots.insert(handle, slot);
        handle
    })
}

fn promise_of(vm: &VirtualMachine, handle: u64) -> PyResult<Promise> {
    SLOTS
        .with(|s| s.borrow().slots.get(&handle).map(|s| s.promise.clone()))
        .ok_or_else(|| vm.new_value_error(format!("no pending result numbered {handle}")))
}

/// `_tether_pending_getattr(handle, name, pending)`: a method to call at
/// once (`p.name(…)`), a further step (`p.name.other`), or the member of
/// the fetched value.
fn pending_getattr(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    let name = str_arg(&args, 1, vm)?;
    let owner = arg(&args, 2, vm)?;
    if fetching_to_call(vm) {
        let class = remote::classes(|c| c.pending_method.clone());
        return class.call((owner, vm.ctx.new_str(name)), vm);
    }
    if reading_chained(vm) {
        let promise = {
            let _in_runtime = remote::rt().enter();
            promise_of(vm, handle)?.getattr(&name)
        };
        return pending(vm, promise, Some(owner), Step::GetAttr(name));
    }
    let value = resolve_handle(vm, handle)?;
    let name = vm.ctx.new_str(name);
    value.get_attr(&name, vm)
}

/// `_tether_pending_call(handle, name, args tuple, kwargs dict, pending)`:
/// method `name` of the promised object, kept pending if the code goes on
/// to one of its members, else fetched.
fn pending_call(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    let name = str_arg(&args, 1, vm)?;
    let (positional, named) = (arg(&args, 2, vm)?, arg(&args, 3, vm)?);
    let owner = arg(&args, 4, vm)?;
    let call_args = remote::args_from_py(vm, &positional, &named)?;
    let promise = {
        let _in_runtime = remote::rt().enter();
        promise_of(vm, handle)?.call_method(&name, call_args)
    };
    let step = Step::CallMethod(name, positional, named);
    if result_chained(vm) {
        return pending(vm, promise, Some(owner), step);
    }
    // Fetched here, with no Python code run between sending the step and
    // waiting for it: a Ctrl-C meanwhile cancels the chain.
    let handle = keep(promise, Some(owner), step);
    let value = resolve_handle(vm, handle);
    forget(handle);
    value
}

/// `_tether_resolve(handle)`: the pending result's value, fetched once.
fn resolve(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    resolve_handle(vm, handle_arg(&args, 0, vm)?)
}

fn resolve_handle(vm: &VirtualMachine, handle: u64) -> PyResult {
    let (promise, target, step, resolved) = SLOTS
        .with(|s| {
            s.borrow().slots.get(&handle).map(|s| {
                (
                    s.promise.clone(),
                    s.target.clone(),
                    s.step.clone(),
                    s.resolved.clone(),
                )
            })
        })
        .ok_or_else(|| vm.new_value_error(format!("no pending result numbered {handle}")))?;
    if let Some(value) = resolved {
        return Ok(value);
    }
    let value = match wait(vm, &remote::rt(), promise.into_future()) {
        Ok(value) => to_py(vm, value)?,
        Err(exc) => match target {
            Some(target) => run_locally(vm, &target, step, exc)?,
            None => return Err(exc),
        },
    };
    SLOTS.with(|s| {
        if let Some(slot) = s.borrow_mut().slots.get_mut(&handle) {
            slot.resolved = Some(value.clone());
        }
    });
    Ok(value)
}

/// A step the peer failed: if its target is a plain value, the step runs
/// here on that value, as Python would have run it; otherwise the peer's
/// error stands (`failed`).
fn run_locally(
    vm: &VirtualMachine,
    target: &PyObjectRef,
    step: Step,
    failed: PyBaseExceptionRef,
) -> PyResult {
    if remote::error_of(vm, &failed).is_none() {
        return Err(failed);
    }
    let value = vm.call_method(target, "_tether_value", ())?;
    if remote::unwrap(vm, &value)?.is_some() {
        return Err(failed);
    }
    match step {
        Step::Start => Err(failed),
        Step::GetAttr(name) => {
            let name = vm.ctx.new_str(name);
            value.get_attr(&name, vm)
        }
        Step::CallMethod(name, positional, named) => {
            let name = vm.ctx.new_str(name);
            let method = value.get_attr(&name, vm)?;
            method.call(call_args(vm, &positional, &named)?, vm)
        }
    }
}

/// Python's arguments from a tuple and a dict of them.
fn call_args(
    vm: &VirtualMachine,
    positional: &PyObjectRef,
    named: &PyObjectRef,
) -> PyResult<FuncArgs> {
    let positional = positional
        .payload::<PyTuple>()
        .map(|t| t.as_slice().to_vec())
        .unwrap_or_default();
    let mut keywords = Vec::new();
    if let Some(named) = named.payload::<PyDict>() {
        for (k, v) in named {
            keywords.push((k.str(vm)?.as_str().to_owned(), v));
        }
    }
    Ok(FuncArgs::new(
        positional,
        keywords.into_iter().collect::<KwArgs>(),
    ))
}

/// `_tether_release_pending(handle)`: the `_Pending` is gone.
fn release(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    forget(handle_arg(&args, 0, vm)?);
    Ok(vm.ctx.none())
}

/// Let a slot go, and with it its promise (cancelled if nothing else
/// needs it).
fn forget(handle: u64) {
    // Dropped outside the borrow: the target's `__del__` may run.
    let slot = SLOTS.with(|s| s.borrow_mut().slots.remove(&handle));
    drop(slot);
}

/// How many results are pending (for tests: all go with their `_Pending`).
#[cfg(test)]
pub(crate) fn pending_count() -> usize {
    SLOTS.with(|s| s.borrow().slots.len())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use tether::{Builder, Connection, NetRef};
    use tokio::sync::Semaphore;

    use super::super::{Engine, Failure};

    /// A root whose `gated` steps wait until the test opens the gate, so a
    /// test sees what reached the owner while a step is unresolved.
    #[derive(Clone)]
    struct Gate {
        open: Arc<Semaphore>,
        /// `gated` calls waiting at the gate.
        waiting: Arc<AtomicI64>,
    }

    impl Default for Gate {
        fn default() -> Gate {
            Gate {
                open: Arc::new(Semaphore::new(0)),
                waiting: Arc::default(),
            }
        }
    }

    #[tether::expose]
    impl Gate {
        /// A step holding `value`, once the gate opens.
        #[method]
        async fn gated(&self, value: i64) -> NetRef {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _permit = self.open.acquire().await.expect("the gate stays");
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            NetRef::new(Step(value))
        }

        /// A step holding `value`, at once.
        #[method]
        fn step_at(&self, value: i64) -> NetRef {
            NetRef::new(Step(value))
        }

        /// `-n`.
        #[method]
        fn negate(&self, n: i64) -> i64 {
            -n
        }
    }

    struct Step(i64);

    #[tether::expose]
    impl Step {
        /// The step after this one.
        #[method]
        fn next(&self) -> NetRef {
            NetRef::new(Step(self.0 + 1))
        }

        /// The value it holds.
        #[method]
        fn value(&self) -> i64 {
            self.0
        }

        /// Its name, a plain string.
        #[method]
        fn name(&self, prefix: String) -> String {
            format!("{prefix} {}", self.0)
        }

        /// The step after this one, as an attribute.
        #[getter]
        fn following(&self) -> NetRef {
            NetRef::new(Step(self.0 + 1))
        }

        /// This step, through a view that allows only `value`.
        #[method]
        fn sealed(&self) -> tether::Result<NetRef> {
            tether::restrict(&NetRef::new(Step(self.0)), &["value"])
        }
    }

    /// A connection to a `Gate` on `rt`.
    fn connect(rt: &tokio::runtime::Runtime, gate: &Gate) -> (Connection, Connection, NetRef) {
        rt.block_on(async {
            let (client, server) = tether::transport::memory::pair(
                Builder::default(),
                Builder::default().root(gate.clone()),
            )
            .await
            .unwrap();
            let root = client.root().await.unwrap();
            (client, server, root)
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Run `lines` at an engine of its own thread (as the prompt does) and
    /// then `check`; what failed, and the results pending after.
    fn run_lines(
        rt: &tokio::runtime::Runtime,
        root: NetRef,
        lines: &'static [&'static str],
        check: &'static str,
    ) -> std::thread::JoinHandle<(Result<(), Failure>, usize)> {
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            let engine = Engine::new(handle, root);
            let ran = lines
                .iter()
                .try_for_each(|line| engine.run_line(line))
                .and_then(|()| engine.run(check, "<check>"));
            (ran, super::pending_count())
        })
    }

    async fn until(mut ready: impl FnMut() -> bool) {
        while !ready() {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    #[test]
    fn a_chain_at_the_prompt_reaches_the_owner_whole_before_its_first_step_resolves() {
        let rt = runtime();
        let gate = Gate::default();
        let (_client, server, root) = connect(&rt, &gate);
        // `root`'s members are asked once, before the chain.
        rt.block_on(root.inspect()).unwrap();
        let engine = run_lines(
            &rt,
            root,
            &["x = root.gated(5).next().next().value()"],
            "assert x == 7, x",
        );
        // All four steps are at the owner while the first waits at the
        // gate: sent step by step, only the first could be.
        rt.block_on(until(|| {
            let stats = server.stats();
            (stats.answers, stats.serving) == (4, 4)
        }));
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 1);
        gate.open.add_permits(10);
        let (ran, pending) = engine.join().unwrap();
        ran.unwrap();
        assert_eq!(pending, 0, "every pending result went");
        rt.block_on(until(|| server.stats().answers == 0));
    }

    #[test]
    fn values_are_fetched_where_the_code_uses_them() {
        let rt = runtime();
        let gate = Gate::default();
        let (_client, _server, root) = connect(&rt, &gate);
        let lines = &[
            // Stored, printed, computed with: fetched, as without chains.
            "c = root.step_at(5).next()",
            "v = root.step_at(1).following.following.value() * 10",
            "n = root.step_at(2).next().name('step')",
            // A plain value in a chain: its members run here.
            "up = root.step_at(3).name('step').upper()",
            "parts = root.step_at(4).name(prefix='a b').split()",
            "keys = sorted([3, 1, 2], key=root.negate).index(1)",
        ];
        let check = "\
assert type(c).__name__ == 'Remote', type(c)
assert c.value() == 6
assert v == 30, v
assert n == 'step 3', n
assert up == 'STEP 3', up
assert parts == ['a', 'b', '4'], parts
assert keys == 2, keys
";
        let (ran, pending) = run_lines(&rt, root, lines, check).join().unwrap();
        ran.unwrap();
        assert_eq!(pending, 0);
    }

    #[test]
    fn a_step_that_fails_says_which_and_a_plain_values_missing_member_is_pythons_error() {
        let rt = runtime();
        let gate = Gate::default();
        let (_client, server, root) = connect(&rt, &gate);
        let engine = std::thread::spawn(move || {
            let engine = Engine::new(rt.handle().clone(), root);
            let denied = engine.run_line("root.step_at(1).sealed().next().value()");
            let missing = engine.run_line("root.step_at(1).name('x').nothing()");
            let after = engine.run_line("ok = root.step_at(1).sealed().value()");
            let ok = engine.run("assert ok == 1, ok", "<check>");
            (denied, missing, after, ok, super::pending_count(), rt)
        });
        let (denied, missing, after, ok, pending, rt) = engine.join().unwrap();
        match denied {
            Err(Failure::Raised(m)) => {
                assert!(m.starts_with("tether::DeniedError: step .next(…): "), "{m}");
            }
            other => panic!("{other:?}"),
        }
        match missing {
            Err(Failure::Raised(m)) => assert!(m.starts_with("AttributeError"), "{m}"),
            other => panic!("{other:?}"),
        }
        after.unwrap();
        ok.unwrap();
        assert_eq!(pending, 0);
        rt.block_on(until(|| server.stats().answers == 0));
    }
}
