//! Pipelining at the prompt: `root.counter(5).increment()` is one chain
//! sent at once, not two round trips.
//!
//! A remote call's result is left unfetched (a promise, seen by Python as
//! a `_Pending`) only when the code that made it goes straight on to a
//! member of it: the instruction after the call is an attribute load
//! (`LoadAttr`), or the load of a method (`LoadMethod`) whose call's
//! arguments are only constants and variables already bound. That step
//! joins the promise's chain (`promise.call_method`, `promise.getattr`),
//! and the first result used any other way (printed, stored, computed
//! with) is fetched there. So nothing runs between a step and the next
//! that Python would have run after the first had returned: no argument
//! with side effects, none that can fail. Python code never holds a
//! `_Pending`: the load consumes it, and the call right after consumes
//! what the load gives.
//!
//! Which instructions come next is read from the calling frame's bytecode
//! (RustPython compiles `a.b(x)` to `LoadMethod b`, the arguments, then
//! `CallMethod*`, and `a.b` to `LoadAttr b`). A method fetched by
//! `LoadMethod` is "direct": the frame calls it at once. Calls made any
//! other way (a method passed to `sorted` as its key) are never chained.
//!
//! A step the owner refuses where Python would not is run again as Python
//! runs it, on the value its target resolved to: a method of a plain value
//! (`root.name().upper()`: only objects have remote members), any step
//! after one run so, and a call of a member that is not a method (an
//! attribute holding a function; the owner refuses it as `Unsupported`
//! before running anything). The value of a chain is what it would have
//! been without pipelining; an error a step raised on the owner names
//! that step (`step .next(…): …`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::IntoFuture;

use rustpython_vm::builtins::{PyDict, PyTuple};
use rustpython_vm::bytecode::{CodeObject, Instruction, OpArgState};
use rustpython_vm::frame::Frame;
use rustpython_vm::function::{FuncArgs, KwArgs};
use rustpython_vm::{PyObjectRef, PyResult, VirtualMachine};
use tether::{ErrorKind, Promise};

use super::convert::to_py;
use super::remote::{self, arg, handle_arg, str_arg};
use super::wait::wait_outcome;

/// Where `_Pending` and its helpers are defined.
const PRELUDE_PATH: &str = "<tether prelude>";

/// One unfetched result.
struct Slot {
    promise: Promise,
    /// The `_Pending` this step was made on, if any (the first step of a
    /// chain is made on an object).
    target: Option<PyObjectRef>,
    /// The step, to run as Python would if the owner refuses it.
    step: Step,
    /// The value, once fetched.
    resolved: Option<PyObjectRef>,
    /// The value came from running the step here, not from the owner: the
    /// steps made on it were sent to a failed answer, and run here too.
    ran_here: bool,
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

/// What the nearest frame of the user's code is doing.
struct Caller {
    /// The instruction it is running.
    running: Instruction,
    /// Whether what that instruction gives goes straight to a member the
    /// peer may have, with nothing in between that Python would run only
    /// after it: see the module's docs.
    then_member: bool,
}

impl Caller {
    /// Where the user's code is, if it is Python code (not the prelude's).
    fn now(vm: &VirtualMachine) -> Option<Caller> {
        let frames = vm.frames.borrow();
        let frame = frames
            .iter()
            .rev()
            .find(|f| f.code.source_path.as_str() != PRELUDE_PATH)?;
        // While an instruction runs, `lasti` is the index of the next one.
        let lasti = frame.lasti() as usize;
        let code: &CodeObject<_> = &frame.code.code;
        let running = code.instructions.get(lasti.checked_sub(1)?)?.op;
        let mut next = decoded(code, lasti);
        let then_member = match next.next() {
            Some((Instruction::LoadAttr { idx }, arg)) => {
                remote_member(code.names.get(idx.get(arg) as usize)?.as_str())
            }
            Some((Instruction::LoadMethod { idx }, arg)) => {
                remote_member(code.names.get(idx.get(arg) as usize)?.as_str())
                    && arguments_inert(vm, frame, next)
            }
            _ => false,
        };
        Some(Caller {
            running,
            then_member,
        })
    }
}

/// The instructions of `code` from `start`, their arguments decoded
/// (`ExtendedArg` prefixes folded in).
fn decoded<C: rustpython_vm::bytecode::Constant>(
    code: &CodeObject<C>,
    start: usize,
) -> impl Iterator<Item = (Instruction, rustpython_vm::bytecode::OpArg)> + '_ {
    let mut state = OpArgState::default();
    code.instructions
        .get(start..)
        .unwrap_or_default()
        .iter()
        .map(move |unit| state.get(*unit))
        .filter(|(op, _)| *op != Instruction::ExtendedArg)
}

/// Whether the instructions up to the method call that follows only load
/// constants and variables already bound: nothing that can fail or do
/// anything.
fn arguments_inert(
    vm: &VirtualMachine,
    frame: &Frame,
    instructions: impl Iterator<Item = (Instruction, rustpython_vm::bytecode::OpArg)>,
) -> bool {
    let code = &frame.code.code;
    let name = |idx: u32| code.names.get(idx as usize).map(|n| n.as_str());
    let bound_in = |dict: &PyDict, name: &str| dict.contains_key(name, vm);
    for (op, arg) in instructions {
        let loaded = match op {
            Instruction::CallMethodPositional { .. } | Instruction::CallMethodKeyword { .. } => {
                return true
            }
            Instruction::LoadConst { .. } => true,
            Instruction::LoadFast(idx) => frame
                .fastlocals
                .lock()
                .get(idx.get(arg) as usize)
                .is_some_and(Option::is_some),
            Instruction::LoadGlobal(idx) => name(idx.get(arg))
                .is_some_and(|n| bound_in(&frame.globals, n) || bound_in(&frame.builtins, n)),
            Instruction::LoadNameAny(idx) => name(idx.get(arg)).is_some_and(|n| {
                frame
                    .locals
                    .payload::<PyDict>()
                    .is_some_and(|locals| bound_in(locals, n))
                    || bound_in(&frame.globals, n)
                    || bound_in(&frame.builtins, n)
            }),
            _ => false,
        };
        if !loaded {
            return false;
        }
    }
    false
}

/// Whether a member of this name goes to the peer: not one of Python's
/// own (`__class__`: the prelude refuses those too) nor the prelude's
/// (`_tether_value`).
fn remote_member(name: &str) -> bool {
    let pythons = name.starts_with("__") && name.ends_with("__");
    !(pythons || name.starts_with("_tether"))
}

/// Whether the user's code is fetching a method to call it at once
/// (`LoadMethod`).
pub(crate) fn fetching_to_call(vm: &VirtualMachine) -> bool {
    Caller::now(vm).is_some_and(|c| matches!(c.running, Instruction::LoadMethod { .. }))
}

/// Whether the result of what the user's code is doing now goes straight
/// to a member of it: then it can stay a promise.
pub(crate) fn result_chained(vm: &VirtualMachine) -> bool {
    Caller::now(vm).is_some_and(|c| c.then_member)
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
            ran_here: false,
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
    let caller = Caller::now(vm);
    let running = caller.as_ref().map(|c| c.running);
    if matches!(running, Some(Instruction::LoadMethod { .. })) {
        let class = remote::classes(|c| c.pending_method.clone());
        return class.call((owner, vm.ctx.new_str(name)), vm);
    }
    if matches!(running, Some(Instruction::LoadAttr { .. }))
        && caller.is_some_and(|c| c.then_member)
    {
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
    let (value, ran_here) = match wait_outcome(vm, &remote::rt(), promise.into_future())? {
        Ok(value) => (to_py(vm, value)?, false),
        Err(err) => match target {
            Some(target) if as_python_would(vm, &target, &err)? => {
                (run_here(vm, &target, step)?, true)
            }
            _ => return Err(remote::raise(vm, err)),
        },
    };
    SLOTS.with(|s| {
        if let Some(slot) = s.borrow_mut().slots.get_mut(&handle) {
            slot.resolved = Some(value.clone());
            slot.ran_here = ran_here;
        }
    });
    Ok(value)
}

/// Whether a step the owner failed with `err` is to run here, as Python
/// runs it (see the module's docs): its target's value is plain, or was
/// itself made here, or `err` is the owner's refusal of an operation the
/// member does not support (before any of the object's code ran).
fn as_python_would(
    vm: &VirtualMachine,
    target: &PyObjectRef,
    err: &tether::Error,
) -> PyResult<bool> {
    let value = vm.call_method(target, "_tether_value", ())?;
    if remote::unwrap(vm, &value)?.is_none() {
        return Ok(true);
    }
    let handle: u64 = target.get_attr("_tether_pending", vm)?.try_into_value(vm)?;
    let target_ran_here = SLOTS.with(|s| s.borrow().slots.get(&handle).is_some_and(|s| s.ran_here));
    Ok(target_ran_here || (err.kind() == ErrorKind::Unsupported && err.remote().is_some()))
}

/// Run `step` here on the value its target resolved to, as Python would
/// have run it: a member of a plain value, or the ordinary path of a
/// remote object's (which asks its members first).
fn run_here(vm: &VirtualMachine, target: &PyObjectRef, step: Step) -> PyResult {
    let value = vm.call_method(target, "_tether_value", ())?;
    match step {
        Step::Start => Err(vm.new_runtime_error("the first step has no target".to_owned())),
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
        /// `gated` calls through the gate.
        passed: Arc<AtomicI64>,
    }

    impl Default for Gate {
        fn default() -> Gate {
            Gate {
                open: Arc::new(Semaphore::new(0)),
                waiting: Arc::default(),
                passed: Arc::default(),
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
            self.passed.fetch_add(1, Ordering::SeqCst);
            NetRef::new(Step(value))
        }

        /// `value` back.
        #[method]
        fn echo(&self, value: tether::Value) -> tether::Value {
            value
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

        /// A function adding this step's value, as an attribute.
        #[getter]
        fn adder(&self) -> NetRef {
            let value = self.0;
            tether::callback(move |n: i64| async move { Ok(n + value) })
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
            // A step run here on a plain value gives an object: the steps
            // after it run on that object.
            "back = root.echo([root]).pop().step_at(3).next().value()",
            // An attribute holding a function is called as Python would.
            "added = root.step_at(1).adder(2)",
            "prefix = 'p'",
            "named = root.step_at(7).name(prefix)",
        ];
        let check = "\
assert type(c).__name__ == 'Remote', type(c)
assert trace() == 'no remote error yet', trace()
assert c.value() == 6
assert v == 30, v
assert n == 'step 3', n
assert up == 'STEP 3', up
assert parts == ['a', 'b', '4'], parts
assert keys == 2, keys
assert back == 4, back
assert added == 3, added
assert named == 'p 7', named
";
        let (ran, pending) = run_lines(&rt, root, lines, check).join().unwrap();
        ran.unwrap();
        assert_eq!(pending, 0);
    }

    /// The message of the error `outcome` raised; a panic if it did not.
    fn raised<T: std::fmt::Debug>(outcome: Result<T, Failure>) -> String {
        match outcome {
            Err(Failure::Raised(m)) => m,
            other => panic!("{other:?}"),
        }
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
        let m = raised(denied);
        assert!(m.starts_with("tether::DeniedError: step .next(…): "), "{m}");
        let m = raised(missing);
        assert!(m.starts_with("AttributeError"), "{m}");
        after.unwrap();
        ok.unwrap();
        assert_eq!(pending, 0);
        rt.block_on(until(|| server.stats().answers == 0));
    }

    #[test]
    fn a_step_waits_for_its_target_before_arguments_that_could_fail_or_act() {
        let rt = runtime();
        let gate = Gate::default();
        let (_client, _server, root) = connect(&rt, &gate);
        let engine = std::thread::spawn(move || {
            let engine = Engine::new(rt.handle().clone(), root);
            let failed = engine.run_line("root.gated(5).name(undefined_name)");
            (failed, super::pending_count(), rt)
        });
        // The argument is evaluated only once `gated` has returned, as
        // without pipelining: `gated` is not cancelled by its NameError.
        let rt = runtime();
        rt.block_on(until(|| gate.waiting.load(Ordering::SeqCst) == 1));
        gate.open.add_permits(10);
        let (failed, pending, _rt) = engine.join().unwrap();
        let m = raised(failed);
        assert!(m.starts_with("NameError"), "{m}");
        assert_eq!(
            gate.passed.load(Ordering::SeqCst),
            1,
            "gated ran to its end"
        );
        assert_eq!(pending, 0);
    }

    #[test]
    fn an_uncaught_error_at_the_prompt_leaves_no_pending_result_behind() {
        let rt = runtime();
        let gate = Gate::default();
        let (_client, server, root) = connect(&rt, &gate);
        let engine = std::thread::spawn(move || {
            let engine = Engine::new(rt.handle().clone(), root);
            let failed = engine.run_line("root.step_at(1).sealed().next().value()");
            (failed, super::pending_count(), rt)
        });
        let (failed, pending, rt) = engine.join().unwrap();
        assert!(matches!(failed, Err(Failure::Raised(_))), "{failed:?}");
        assert_eq!(pending, 0, "the error kept for trace() holds no frame");
        rt.block_on(until(|| server.stats().answers == 0));
    }
}
