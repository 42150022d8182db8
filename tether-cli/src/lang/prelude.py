# What every session starts with: remote objects as Python values.
# The _tether_* functions are the engine's (tether-cli/src/lang/remote.rs);
# a handle is a number the engine maps to a tether reference.

class RemoteError(Exception):
    """An error raised by the peer, or by tether on the way."""


class Remote:
    """An object on the peer: attributes, calls, items and iteration go there."""

    def __init__(self, handle):
        object.__setattr__(self, "_tether_handle", handle)

    def __del__(self):
        _tether_release(self._tether_handle)

    def __getattr__(self, name):
        # Python's own names, and ours (absent only if __init__ was cut
        # short), are never the peer's.
        if name.startswith("__") and name.endswith("__") or name.startswith("_tether"):
            raise AttributeError(name)
        return _tether_getattr(self._tether_handle, name, self)

    def __setattr__(self, name, value):
        _tether_setattr(self._tether_handle, name, value)

    def __call__(self, *args, **kwargs):
        return _tether_call(self._tether_handle, None, args, kwargs)

    def __getitem__(self, key):
        return _tether_call(self._tether_handle, "__getitem__", (key,), {})

    def __setitem__(self, key, value):
        _tether_call(self._tether_handle, "__setitem__", (key, value), {})

    def __len__(self):
        return _tether_call(self._tether_handle, "__len__", (), {})

    def __contains__(self, item):
        return _tether_call(self._tether_handle, "__contains__", (item,), {})

    def __iter__(self):
        return _RemoteIter(self._tether_handle)

    def __repr__(self):
        return _tether_repr(self._tether_handle)

    def __str__(self):
        return _tether_str(self._tether_handle)

    def __eq__(self, other):
        return _tether_eq(self._tether_handle, other)

    def __hash__(self):
        return _tether_hash(self._tether_handle)

    def __dir__(self):
        return _tether_dir(self._tether_handle)

    def __enter__(self):
        return _tether_enter(self._tether_handle, self)

    def __exit__(self, kind, value, trace):
        return _tether_exit(self._tether_handle, value)


class _RemoteMethod:
    """A method of a remote object, called by name; it keeps the object
    alive (`root.notes.add(1)` holds `root.notes` until the call). A direct
    one was fetched to be called at once (`root.counter(5)`), so its
    result may stay pending (see _Pending)."""

    def __init__(self, owner, name, direct=False):
        self._owner = owner
        self._handle = owner._tether_handle
        self._name = name
        self._direct = direct

    def __call__(self, *args, **kwargs):
        return _tether_call(self._handle, self._name, args, kwargs, self._direct)

    def __repr__(self):
        return "<remote method " + self._name + ">"


class _Pending:
    """A remote result not fetched yet, because the code goes straight on
    to one of its members (`root.counter(5).increment()`): that step joins
    the chain sent to the peer (tether-cli/src/lang/chain.rs). Code never
    keeps one: the next instruction loads a member of it, and a method so
    loaded is called at once, with arguments already at hand."""

    def __init__(self, handle):
        object.__setattr__(self, "_tether_pending", handle)

    def __del__(self):
        _tether_release_pending(self._tether_pending)

    def _tether_value(self):
        return _tether_resolve(self._tether_pending)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__") or name.startswith("_tether"):
            raise AttributeError(name)
        return _tether_pending_getattr(self._tether_pending, name, self)


class _PendingMethod:
    """A method of a _Pending, about to be called."""

    def __init__(self, owner, name):
        self._owner = owner
        self._name = name

    def __call__(self, *args, **kwargs):
        return _tether_pending_call(
            self._owner._tether_pending, self._name, args, kwargs, self._owner
        )


class _RemoteIter:
    """Iteration over a remote iterable; items come a batch per round trip."""

    def __init__(self, handle):
        self._iter = _tether_iter(handle)

    def __del__(self):
        _tether_release_iter(self._iter)

    def __iter__(self):
        return self

    def __next__(self):
        more, item = _tether_next(self._iter)
        if not more:
            raise StopIteration
        return item
