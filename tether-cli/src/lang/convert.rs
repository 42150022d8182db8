//! tether values to Python objects and back.
//!
//! Scalars, text, bytes, lists and dicts map to Python's own types
//! (tuples go as lists; a date is its RFC 3339 text); a reference becomes a `Remote`; a Python function
//! sent to the peer becomes a callback. An integer beyond 64 bits cannot
//! be sent and says so.

use rustpython_vm::builtins::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyStr, PyTuple};
use rustpython_vm::{AsObject, PyObjectRef, PyResult, VirtualMachine};
use tether::Value;

use super::{callback, remote};

/// `value` as a Python object.
pub(crate) fn to_py(vm: &VirtualMachine, value: Value) -> PyResult<PyObjectRef> {
    Ok(match value {
        Value::None => vm.ctx.none(),
        Value::Bool(b) => vm.ctx.new_bool(b).into(),
        Value::Int(n) => vm.ctx.new_int(n).into(),
        Value::Float(f) => vm.ctx.new_float(f).into(),
        Value::Str(s) => vm.ctx.new_str(s).into(),
        Value::Bytes(b) => vm.ctx.new_bytes(b.into()).into(),
        // The shell's Python has no `datetime` module: a date is its text.
        Value::DateTime(t) => vm.ctx.new_str(t.to_rfc3339()).into(),
        Value::List(items) => {
            let items = items
                .into_iter()
                .map(|v| to_py(vm, v))
                .collect::<PyResult<Vec<_>>>()?;
            vm.ctx.new_list(items).into()
        }
        Value::Map(pairs) => {
            let dict = vm.ctx.new_dict();
            for (k, v) in pairs {
                dict.set_item(&*to_py(vm, k)?, to_py(vm, v)?, vm)?;
            }
            dict.into()
        }
        Value::Ref(netref) => remote::wrap(vm, netref)?,
    })
}

/// `obj` as a value to send.
pub(crate) fn from_py(vm: &VirtualMachine, obj: &PyObjectRef) -> PyResult<Value> {
    if vm.is_none(obj) {
        return Ok(Value::None);
    }
    if obj.class().is(vm.ctx.types.bool_type) {
        return Ok(Value::Bool(obj.is(&vm.ctx.true_value)));
    }
    if let Some(n) = obj.payload::<PyInt>() {
        return i64::try_from(n.as_bigint()).map(Value::Int).map_err(|_| {
            vm.new_overflow_error(format!(
                "the integer {} is too large to send: tether's integers are 64-bit",
                n.as_bigint()
            ))
        });
    }
    if let Some(f) = obj.payload::<PyFloat>() {
        return Ok(Value::Float(f.to_f64()));
    }
    if let Some(s) = obj.payload::<PyStr>() {
        return Ok(Value::Str(s.as_str().to_owned()));
    }
    if let Some(b) = obj.payload::<PyBytes>() {
        return Ok(Value::from(b.as_bytes()));
    }
    if let Some(list) = obj.payload::<PyList>() {
        let items = list.borrow_vec().to_vec();
        return items
            .iter()
            .map(|v| from_py(vm, v))
            .collect::<PyResult<_>>()
            .map(Value::List);
    }
    if let Some(tuple) = obj.payload::<PyTuple>() {
        return tuple
            .as_slice()
            .iter()
            .map(|v| from_py(vm, v))
            .collect::<PyResult<_>>()
            .map(Value::List);
    }
    if let Some(dict) = obj.payload::<PyDict>() {
        let mut pairs = Vec::new();
        for (k, v) in dict {
            pairs.push((from_py(vm, &k)?, from_py(vm, &v)?));
        }
        return Ok(Value::Map(pairs));
    }
    if let Some(netref) = remote::unwrap(vm, obj)? {
        return Ok(Value::Ref(netref));
    }
    if obj.is_callable() {
        return Ok(Value::Ref(callback::serve(obj.clone())));
    }
    Err(vm.new_type_error(format!("cannot send a {} to the peer", obj.class().name())))
}
