//! The `_tether_*` functions behind the prelude's `Remote`: a table of the
//! thread's tether references, numbered for Python, and the operations on
//! them.
//!
//! `root.add` is a method when the object declares one of that name
//! (asked once per object with `inspect`), so `root.add(1, 2)` is one
//! call; any other name is fetched with `getattr`. No table borrow is held
//! while a call waits, since the callbacks it runs use the table too.

use std::cell::RefCell;
use std::collections::HashMap;

use rustpython_vm::builtins::{PyBaseExceptionRef, PyDict, PyStr, PyTuple};
use rustpython_vm::function::FuncArgs;
use rustpython_vm::scope::Scope;
use rustpython_vm::{AsObject, PyObjectRef, PyResult, VirtualMachine};
use tether::{Member, MemberKind, NetRef, RemoteIter};

use super::convert::{from_py, to_py};
use super::help::{member_help, object_help};
use super::wait::{wait, wait_outcome};

/// The thread's references and what Python needs to build its objects.
struct Table {
    rt: tokio::runtime::Handle,
    next: u64,
    refs: HashMap<u64, Entry>,
    iters: HashMap<u64, Option<RemoteIter>>,
    classes: Option<Classes>,
}

struct Entry {
    netref: NetRef,
    /// The object's declared members, once asked.
    members: Option<Vec<Member>>,
}

/// The prelude's classes.
pub(crate) struct Classes {
    remote: PyObjectRef,
    method: PyObjectRef,
    error: PyObjectRef,
    /// `_Pending`: a result not fetched yet ([`chain`](super::chain)).
    pub(crate) pending: PyObjectRef,
    /// `_PendingMethod`: a method of a `_Pending`, about to be called.
    pub(crate) pending_method: PyObjectRef,
}

/// Where the engine learns what an object offers, when the default (ask
/// its owner with `inspect`) is not enough: a Python peer over RPyC lists
/// members with `dir` and says which are methods with INSPECT.
pub trait Describe {
    /// The object's members; `None` when they cannot be listed.
    fn members(&self, object: &NetRef) -> Option<Vec<Member>>;
    /// The object's own doc (a Python object's `__doc__`), if any.
    fn doc(&self, object: &NetRef) -> Option<String>;
}

thread_local! {
    static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
    static DESCRIBE: RefCell<Option<Box<dyn Describe>>> = RefCell::new(None);
    /// The tether error behind the last `RemoteError` raised, for its
    /// trace.
    static LAST_ERROR: RefCell<Option<(PyObjectRef, tether::Error)>> = const { RefCell::new(None) };
}

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    TABLE.with(|t| f(t.borrow_mut().as_mut().expect("the engine is installed")))
}

/// A function of the engine's, as Python calls it.
pub(crate) type Builtin = fn(FuncArgs, &VirtualMachine) -> PyResult;

/// Set up this thread's table and the `_tether_*` builtins.
pub(crate) fn install(vm: &VirtualMachine, rt: tokio::runtime::Handle) {
    TABLE.with(|t| {
        *t.borrow_mut() = Some(Table {
            rt,
            next: 0,
            refs: HashMap::new(),
            iters: HashMap::new(),
            classes: None,
        })
    });
    let functions: [(&'static str, Builtin); 17] = [
        ("_tether_release", release),
        ("_tether_getattr", getattr),
        ("_tether_setattr", setattr),
        ("_tether_call", call),
        ("_tether_repr", repr),
        ("_tether_str", str),
        ("_tether_eq", eq),
        ("_tether_hash", hash),
        ("_tether_dir", dir),
        ("_tether_enter", enter),
        ("_tether_exit", exit),
        ("_tether_iter", iter),
        ("_tether_next", next),
        ("_tether_release_iter", release_iter),
        ("print", print),
        ("trace", trace),
        ("help", help),
    ];
    add_builtins(vm, functions);
    super::chain::install(vm);
    vm.sys_module
        .set_attr("displayhook", vm.new_function("displayhook", display), vm)
        .expect("sys takes attributes");
}

/// Make `functions` Python builtins, by name.
pub(crate) fn add_builtins<const N: usize>(
    vm: &VirtualMachine,
    functions: [(&'static str, Builtin); N],
) {
    for (name, f) in functions {
        vm.builtins
            .set_attr(name, vm.new_function(name, f), vm)
            .expect("builtins take attributes");
    }
}

/// Take the prelude's classes from the scope it ran in.
pub(crate) fn adopt_prelude(vm: &VirtualMachine, scope: &Scope) {
    let get = |name: &str| {
        scope
            .globals
            .get_item(name, vm)
            .unwrap_or_else(|_| panic!("the prelude defines {name}"))
    };
    let classes = Classes {
        remote: get("Remote"),
        method: get("_RemoteMethod"),
        error: get("RemoteError"),
        pending: get("_Pending"),
        pending_method: get("_PendingMethod"),
    };
    with_table(|t| t.classes = Some(classes));
}

/// A new `Remote` for `netref`.
pub(crate) fn wrap(vm: &VirtualMachine, netref: NetRef) -> PyResult<PyObjectRef> {
    let (handle, class) = with_table(|t| {
        t.next += 1;
        t.refs.insert(
            t.next,
            Entry {
                netref,
                members: None,
            },
        );
        (t.next, t.classes.as_ref().map(|c| c.remote.clone()))
    });
    let class = class.expect("the prelude ran");
    class.call((vm.ctx.new_int(handle),), vm)
}

/// The reference behind `obj`, if it is a `Remote`.
pub(crate) fn unwrap(vm: &VirtualMachine, obj: &PyObjectRef) -> PyResult<Option<NetRef>> {
    let Some(class) = with_table(|t| t.classes.as_ref().map(|c| c.remote.clone())) else {
        return Ok(None);
    };
    if !obj.class().as_object().is(&class) {
        return Ok(None);
    }
    let handle = obj.get_attr("_tether_handle", vm)?;
    let handle: u64 = handle.try_into_value(vm)?;
    netref(vm, handle).map(Some)
}

/// Raise `err` as a `RemoteError` ("Type: message"), kept for `trace()`.
pub(crate) fn raise(vm: &VirtualMachine, err: tether::Error) -> PyBaseExceptionRef {
    let class = with_table(|t| t.classes.as_ref().map(|c| c.error.clone()));
    let exc = match class.and_then(|c| c.downcast::<rustpython_vm::builtins::PyType>().ok()) {
        Some(class) => vm.new_exception_msg(class, err.to_string()),
        None => vm.new_runtime_error(err.to_string()),
    };
    LAST_ERROR.with(|last| *last.borrow_mut() = Some((exc.clone().into(), err)));
    exc
}

/// The tether error behind `exc`, if it is the last one raised.
pub(crate) fn error_of(_vm: &VirtualMachine, exc: &PyBaseExceptionRef) -> Option<tether::Error> {
    LAST_ERROR.with(|last| {
        last.borrow()
            .as_ref()
            .filter(|(raised, _)| raised.is(exc.as_object()))
            .map(|(_, err)| err.clone())
    })
}

/// An error of the peer's with its remote trace, one line each.
pub(crate) fn describe_error(err: &tether::Error) -> String {
    let mut out = format!("RemoteError: {err}");
    if let Some(remote) = err.remote() {
        for line in remote.trace() {
            out.push_str("\n  ");
            out.push_str(line);
        }
    }
    out
}

fn netref(vm: &VirtualMachine, handle: u64) -> PyResult<NetRef> {
    with_table(|t| t.refs.get(&handle).map(|e| e.netref.clone()))
        .ok_or_else(|| vm.new_value_error(format!("no remote object numbered {handle}")))
}

/// The runtime remote calls run on.
pub(crate) fn rt() -> tokio::runtime::Handle {
    with_table(|t| t.rt.clone())
}

/// Something of the prelude's classes.
pub(crate) fn classes<R>(f: impl FnOnce(&Classes) -> R) -> R {
    with_table(|t| f(t.classes.as_ref().expect("the prelude ran")))
}

/// Argument `i` of a builtin's call.
pub(crate) fn arg(args: &FuncArgs, i: usize, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
    args.args
        .get(i)
        .cloned()
        .ok_or_else(|| vm.new_type_error(format!("missing argument {}", i + 1)))
}

/// Argument `i`, a handle.
pub(crate) fn handle_arg(args: &FuncArgs, i: usize, vm: &VirtualMachine) -> PyResult<u64> {
    arg(args, i, vm)?.try_into_value(vm)
}

/// Argument `i`, a `str`.
pub(crate) fn str_arg(args: &FuncArgs, i: usize, vm: &VirtualMachine) -> PyResult<String> {
    let obj = arg(args, i, vm)?;
    obj.payload::<PyStr>()
        .map(|s| s.as_str().to_owned())
        .ok_or_else(|| vm.new_type_error("expected a str".to_owned()))
}

fn release(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    // Dropped outside the borrow: a release may run code of ours.
    let entry = with_table(|t| t.refs.remove(&handle));
    drop(entry);
    Ok(vm.ctx.none())
}

/// The object's members, asked once.
fn members(vm: &VirtualMachine, handle: u64) -> PyResult<Vec<Member>> {
    if let Some(known) = with_table(|t| t.refs.get(&handle).and_then(|e| e.members.clone())) {
        return Ok(known);
    }
    let target = netref(vm, handle)?;
    let described = DESCRIBE.with(|d| d.borrow().as_ref().map(|d| d.members(&target)));
    let found = match described {
        Some(found) => found.unwrap_or_default(),
        // An object that cannot be asked has no known members; a Ctrl-C
        // meanwhile goes on (and nothing is kept).
        None => wait_outcome(vm, &rt(), target.inspect())?.unwrap_or_default(),
    };
    with_table(|t| {
        if let Some(entry) = t.refs.get_mut(&handle) {
            entry.members = Some(found.clone());
        }
    });
    Ok(found)
}

fn getattr(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    let name = str_arg(&args, 1, vm)?;
    let is_method = members(vm, handle)?
        .iter()
        .any(|m| m.name == name && m.kind == MemberKind::Method);
    if is_method {
        let class =
            with_table(|t| t.classes.as_ref().map(|c| c.method.clone())).expect("the prelude ran");
        let owner = arg(&args, 2, vm)?;
        let direct = vm.ctx.new_bool(super::chain::fetching_to_call(vm));
        return class.call((owner, vm.ctx.new_str(name), direct), vm);
    }
    let target = netref(vm, handle)?;
    let value = wait(vm, &rt(), target.getattr(&name))?;
    to_py(vm, value)
}

fn setattr(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    let name = str_arg(&args, 1, vm)?;
    let value = from_py(vm, &arg(&args, 2, vm)?)?;
    let target = netref(vm, handle)?;
    wait(vm, &rt(), target.setattr(&name, value))?;
    Ok(vm.ctx.none())
}

/// `_tether_call(handle, name or None, args tuple, kwargs dict[, direct])`.
/// A direct call (of a method the code fetched to call at once) whose
/// result goes straight to one of its members stays a promise, so the
/// next step is pipelined ([`chain`](super::chain)).
fn call(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    let name = arg(&args, 1, vm)?;
    let name = (!vm.is_none(&name))
        .then(|| str_arg(&args, 1, vm))
        .transpose()?;
    let call_args = args_from_py(vm, &arg(&args, 2, vm)?, &arg(&args, 3, vm)?)?;
    let direct = match args.args.get(4) {
        Some(direct) => direct.clone().try_to_bool(vm)?,
        None => false,
    };
    let target = netref(vm, handle)?;
    if let (Some(name), true) = (&name, direct && super::chain::result_chained(vm)) {
        let promise = {
            let _in_runtime = rt().enter();
            target.promise().call_method(name, call_args)
        };
        return super::chain::start(vm, promise);
    }
    let value = match name {
        Some(name) => wait(vm, &rt(), target.call_method(&name, call_args))?,
        None => wait(vm, &rt(), target.call(call_args))?,
    };
    to_py(vm, value)
}

/// A call's arguments from Python's: a tuple and a dict of them.
pub(crate) fn args_from_py(
    vm: &VirtualMachine,
    positional: &PyObjectRef,
    named: &PyObjectRef,
) -> PyResult<tether::Args> {
    let mut call_args = tether::Args::new();
    if let Some(positional) = positional.payload::<PyTuple>() {
        for v in positional.as_slice() {
            call_args.positional.push(from_py(vm, v)?);
        }
    }
    if let Some(named) = named.payload::<PyDict>() {
        for (k, v) in named {
            let key = k
                .payload::<PyStr>()
                .map(|s| s.as_str().to_owned())
                .ok_or_else(|| vm.new_type_error("keywords must be strings".to_owned()))?;
            call_args.named.push((key, from_py(vm, &v)?));
        }
    }
    Ok(call_args)
}

fn repr(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let target = netref(vm, handle_arg(&args, 0, vm)?)?;
    let text = wait(vm, &rt(), target.repr())?;
    Ok(vm.ctx.new_str(text).into())
}

fn str(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let target = netref(vm, handle_arg(&args, 0, vm)?)?;
    let text = wait(vm, &rt(), target.str())?;
    Ok(vm.ctx.new_str(text).into())
}

fn eq(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let target = netref(vm, handle_arg(&args, 0, vm)?)?;
    let other = from_py(vm, &arg(&args, 1, vm)?)?;
    let same = wait(vm, &rt(), target.remote_eq(other))?;
    Ok(vm.ctx.new_bool(same).into())
}

fn hash(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let target = netref(vm, handle_arg(&args, 0, vm)?)?;
    let hash = wait(vm, &rt(), target.remote_hash())?;
    Ok(vm.ctx.new_int(hash).into())
}

fn dir(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let target = netref(vm, handle_arg(&args, 0, vm)?)?;
    let names = wait(vm, &rt(), target.dir())?;
    let names = names
        .into_iter()
        .map(|n| vm.ctx.new_str(n).into())
        .collect();
    Ok(vm.ctx.new_list(names).into())
}

/// `with obj:` gives what the object's enter gives (by default the object
/// itself). A Python object over RPyC: the object itself.
fn enter(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    if DESCRIBE.with(|d| d.borrow().is_some()) {
        return arg(&args, 1, vm);
    }
    let target = netref(vm, handle_arg(&args, 0, vm)?)?;
    let value = wait(vm, &rt(), target.enter())?;
    to_py(vm, value)
}

/// `_tether_exit(handle, exception or None)`: leaving `with obj:` runs the
/// object's exit, told the block's exception, if any (by default it
/// closes the object); true means it swallowed the exception. A Python
/// object over RPyC is closed, if it has a `close` method.
fn exit(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    if DESCRIBE.with(|d| d.borrow().is_some()) {
        let closes = members(vm, handle)?.iter().any(|m| m.name == "close");
        if closes {
            let target = netref(vm, handle)?;
            wait(vm, &rt(), target.call_method("close", ()))?;
        }
        return Ok(vm.ctx.new_bool(false).into());
    }
    let raised = arg(&args, 1, vm)?;
    let error = if vm.is_none(&raised) {
        None
    } else {
        let type_name = raised.class().name().to_string();
        let message = raised.str(vm)?.as_str().to_owned();
        Some(tether::Error::app(type_name, message))
    };
    let target = netref(vm, handle)?;
    let swallowed = wait(vm, &rt(), target.exit(error.as_ref()))?;
    Ok(vm.ctx.new_bool(swallowed).into())
}

fn iter(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let target = netref(vm, handle_arg(&args, 0, vm)?)?;
    let handle = with_table(|t| {
        t.next += 1;
        t.iters.insert(t.next, Some(target.iter()));
        t.next
    });
    Ok(vm.ctx.new_int(handle).into())
}

/// `(True, item)`, or `(False, None)` at the end.
fn next(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    // Taken out while it waits, and put back after.
    let mut items = with_table(|t| t.iters.get_mut(&handle).and_then(Option::take))
        .ok_or_else(|| vm.new_runtime_error("this iteration is already in progress".to_owned()))?;
    let item = wait(vm, &rt(), async {
        match items.next().await {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    });
    with_table(|t| {
        if let Some(slot) = t.iters.get_mut(&handle) {
            *slot = Some(items);
        }
    });
    let out = match item? {
        Some(v) => (vm.ctx.new_bool(true).into(), to_py(vm, v)?),
        None => (vm.ctx.new_bool(false).into(), vm.ctx.none()),
    };
    Ok(vm.ctx.new_tuple(vec![out.0, out.1]).into())
}

fn release_iter(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let handle = handle_arg(&args, 0, vm)?;
    let items = with_table(|t| t.iters.remove(&handle));
    drop(items);
    Ok(vm.ctx.none())
}

/// Python's `print`: the `str` of each argument, `sep` between them
/// (default a space), `end` after (default a newline), to standard
/// output.
fn print(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    use std::io::Write;
    let text_of = |obj: &PyObjectRef| -> PyResult<String> { Ok(obj.str(vm)?.as_str().to_owned()) };
    let option = |name: &str, default: &str| -> PyResult<String> {
        match args.kwargs.get(name) {
            Some(v) if !vm.is_none(v) => text_of(v),
            _ => Ok(default.to_owned()),
        }
    };
    let sep = option("sep", " ")?;
    let end = option("end", "\n")?;
    let mut line = String::new();
    for (i, a) in args.args.iter().enumerate() {
        if i > 0 {
            line.push_str(&sep);
        }
        line.push_str(&text_of(a)?);
    }
    line.push_str(&end);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
    Ok(vm.ctx.none())
}

/// `trace()`: the last remote error's trace, as printed.
fn trace(_args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let text = LAST_ERROR.with(|last| {
        last.borrow()
            .as_ref()
            .map(|(_, err)| describe_error(err))
            .unwrap_or_else(|| "no remote error yet".to_owned())
    });
    Ok(vm.ctx.new_str(text).into())
}

/// `help(x)`: a remote method's signature and doc, a remote object's
/// members, or what a plain value is.
fn help(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let obj = arg(&args, 0, vm)?;
    let method_class = with_table(|t| t.classes.as_ref().map(|c| c.method.clone()));
    let text = if method_class.is_some_and(|c| obj.class().as_object().is(&c)) {
        let handle: u64 = obj.get_attr("_handle", vm)?.try_into_value(vm)?;
        let name: String = obj.get_attr("_name", vm)?.try_into_value(vm)?;
        members(vm, handle)?
            .iter()
            .find(|m| m.name == name)
            .map_or(name.clone(), member_help)
    } else if let Some(target) = unwrap(vm, &obj)? {
        let handle: u64 = obj.get_attr("_tether_handle", vm)?.try_into_value(vm)?;
        let repr = wait(vm, &rt(), target.repr())?;
        let doc = DESCRIBE.with(|d| d.borrow().as_ref().and_then(|d| d.doc(&target)));
        object_help(&repr, doc.as_deref(), &members(vm, handle)?)
    } else {
        format!(
            "{} is a plain {} value: data copied by value, with no remote members.",
            obj.repr(vm)?.as_str(),
            obj.class().name()
        )
    };
    print(FuncArgs::from(vec![vm.ctx.new_str(text).into()]), vm)
}

/// `sys.displayhook`: the prompt shows an expression's value (not `None`)
/// as its `repr` and keeps it as `_`.
fn display(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let value = arg(&args, 0, vm)?;
    if vm.is_none(&value) {
        return Ok(vm.ctx.none());
    }
    vm.builtins.set_attr("_", vm.ctx.none(), vm)?;
    let text = value.repr(vm)?;
    print(FuncArgs::from(vec![text.into()]), vm)?;
    vm.builtins.set_attr("_", value, vm)?;
    Ok(vm.ctx.none())
}

/// The members a remote object declares, if `obj` is one.
pub(crate) fn declared_members(
    vm: &VirtualMachine,
    obj: &PyObjectRef,
) -> PyResult<Option<Vec<Member>>> {
    if unwrap(vm, obj)?.is_none() {
        return Ok(None);
    }
    let handle: u64 = obj.get_attr("_tether_handle", vm)?.try_into_value(vm)?;
    members(vm, handle).map(Some)
}

/// The tether error behind the last `RemoteError` raised.
pub(crate) fn last_error() -> Option<tether::Error> {
    LAST_ERROR.with(|last| last.borrow().as_ref().map(|(_, err)| err.clone()))
}

/// Use `describe` for members and docs from now on.
pub(crate) fn describe_with(describe: Box<dyn Describe>) {
    DESCRIBE.with(|d| *d.borrow_mut() = Some(describe));
}
