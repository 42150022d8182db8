"""An unmodified rpyc 6.0.2 client against a tether server (tests/rpyc_server.rs).

    rpyc_client.py PORT

Asserts what it gets back; prints "READY <objects tether still holds>"
once everything is released, waits for a line on stdin, closes, prints
"DONE".
"""
import gc
import pickle
import sys

import rpyc
from rpyc.utils.helpers import buffiter

port = int(sys.argv[1])
conn = rpyc.connect("127.0.0.1", port)
root = conn.root


def check(name, got, want):
    assert got == want, f"{name}: got {got!r}, want {want!r}"
    print("ok", name, flush=True)


def raises(name, exc_type, fn, *args, contains=()):
    try:
        fn(*args)
    except exc_type as e:
        text = str(e)
        for part in contains:
            assert part in text, f"{name}: {part!r} not in {text!r}"
        print("ok", name, flush=True)
        return
    raise AssertionError(f"{name}: no {exc_type.__name__}")


# The root, its proxy class (built from INSPECT), repr, str, dir, hash, eq.
check("proxy class", type(root).__name__, "tether.Lab")
check("repr", repr(root), "<Lab object>")
check("str", str(root), "<Lab object>")
assert {"add", "echo", "nest"} <= set(dir(root)), dir(root)
print("ok dir", flush=True)
assert isinstance(hash(root), int)
# An object that declares itself unhashable (rpyc's test_magic.test_hash_obj).
raises("unhashable", TypeError, hash, root.bag(), contains=["unhashable type: 'Bag'"])
check("eq", root == root, True)
check("ne", root != root, False)
check("eq other", root == 5, False)

# Calls: positional, keyword, the exposed_ prefix.
check("add", root.add(1, 2), 3)
check("exposed prefix", root.exposed_add(20, 22), 42)
check("keywords", root.kw(1, c=3), (1, -1, 3))
check("all keywords", root.kw(a=5, b=6, c=7), (5, 6, 7))
for value in [None, True, 7, -(2**40), 2.5, "text", b"raw", (1, "two", (3.0,)), ()]:
    check(f"echo {value!r}", root.echo(value), value)
# brine has no date: a tether DateTime arrives as its RFC 3339 text.
check("a date as text", root.moment(), "2026-12-04T15:12:38.5Z")
root.record(None, True, 7, 2.5, "h\u00e9", b"\x00\xff", (1, ("two",)))

# Attributes the service does not expose, and the policy.
raises("missing attribute", AttributeError, getattr, root, "nope", contains=["nope"])
raises("private method", AttributeError, getattr, root, "helper")
raises("setattr", AttributeError, setattr, root, "x", 1)
raises("delattr", AttributeError, delattr, root, "add")
raises("ordering needs a declared member", AttributeError, lambda: root < 1)
raises("pickling is refused", ValueError, pickle.dumps, root, contains=["pickling is disabled"])
raises("bad arguments", TypeError, root.add, 1)

# Exceptions tether -> Python.
raises("tether error", ValueError, root.fail,
       contains=["bad value from tether", "Remote Traceback", "serving CALL"])

# Callbacks: a Python function, a Python object's method, tether's own callback.
check("apply", root.apply(lambda x: x * 2, 21), 42)
check("apply a method descriptor", root.apply(str.upper, "abc"), "ABC")
check("offer", root.offer(lambda cb: cb(4) + 1), 41)

obj = object()
assert root.roundtrip(obj) is obj
print("ok identity", flush=True)
lst = [1, 2, 3]
assert root.roundtrip(lst) is lst
print("ok identity of a list", flush=True)

# Nested callbacks, three levels deep each way.
levels = []


def deeper(n):
    levels.append(n)
    return root.nest(deeper, n - 1) + 1


check("nested", root.nest(deeper, 3), 3)
check("nesting levels", levels, [3, 2, 1])

# Exceptions Python -> tether, and back through tether to Python.


def bad():
    raise KeyError("missing-key")


check("caught by tether", root.catch(bad), ("KeyError", "missing-key", True))
raises("relayed", KeyError, root.relay, bad, contains=["missing-key", "raise KeyError", "Traceback from tether"])

# Iteration: plain (one __next__ per item) and batched (BUFFITER).
check("iterate 10000", sum(root.count(10000)), sum(range(10000)))
check("list 5", list(root.count(5)), [0, 1, 2, 3, 4])
check("buffiter 10000", sum(buffiter(root.count(10000))), sum(range(10000)))
raises("not iterable", TypeError, list, root.resource())

# Python iterables iterated by tether.
check("tether sums a list", root.total([1, 2, 3, 4]), 10)
check("tether sums a generator", root.total(x * x for x in range(100)), sum(x * x for x in range(100)))

# Context managers.
with root.resource() as r:
    check("inside with", r.value(), 99)
check("closed by with", root.closed_count(), 1)
try:
    with root.resource() as r:
        raise RuntimeError("inside")
except RuntimeError:
    print("ok with propagates", flush=True)
check("closed again", root.closed_count(), 2)
# An object's own enter and exit (rpyc's test_context_managers): the block
# gets what enter returns, and exit learns whether and what it raised.
with root.transaction("t1") as opened:
    check("enter's value", opened, "t1 open")
check("commit", root.last_transaction(), "t1 committed")
try:
    with root.transaction("t2"):
        raise ValueError("no funds")
except ValueError as e:
    check("the block's error goes on", str(e), "no funds")
# rpyc's `with` sends the exception's class only, so no message.
check("rollback", root.last_transaction(), "t2 rolled back: ValueError: ")
with root.transaction("quiet"):
    raise KeyError("swallowed")
check("exit may swallow", root.last_transaction(), "quiet rolled back: KeyError: ")

# Release: everything either side holds of the other's, but the root.
# rpyc keeps the traceback of the last exception its handlers raised (our
# `bad` above); its frames hold the proxy of the method that was waiting.
conn._last_traceback = None
del obj, lst, r, levels
gc.collect()
conn.ping()
print("READY", len(conn._local_objects._dict), flush=True)
sys.stdin.readline()
conn.close()
print("DONE", flush=True)
