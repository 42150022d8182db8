"""A plain rpyc.Service on an ephemeral port for one connection
(tests/rpyc_client.rs). Prints the port, serves one client, exits.
"""
import gc

import rpyc
from rpyc.utils.server import OneShotServer


class LabService(rpyc.Service):
    exposed_version = "1.0"

    def on_connect(self, conn):
        self._conn = conn

    def exposed_add(self, a, b):
        return a + b

    def exposed_greet(self, name, punctuation="!"):
        return f"hello {name}{punctuation}"

    def exposed_apply(self, f, *args, **kwargs):
        return f(*args, **kwargs)

    def exposed_nest(self, f, depth):
        # f is tether's callback; it calls nest again, one level down.
        return 0 if depth == 0 else f(depth, f)

    def exposed_fail(self):
        raise ValueError("python says no")

    def exposed_relay(self, f):
        return f()

    def exposed_numbers(self, n):
        return (i for i in range(n))

    def exposed_items(self):
        return [1, 2, 3]

    def exposed_heavy(self, n):
        """An object (by reference) and n Nones: a reply too large for a
        small decoding budget, carrying a reference to release."""
        return (object(),) + (None,) * n

    def exposed_held(self):
        """How many objects this side has handed out and not had back,
        once the proxies it held in reference cycles (a failed call's
        traceback holds its frames) are collected: their DELs go out
        before this reply."""
        gc.collect()
        return len(self._conn._local_objects._dict)


server = OneShotServer(LabService, hostname="127.0.0.1", port=0)
server._listen()
print(server.port, flush=True)
server.start()
