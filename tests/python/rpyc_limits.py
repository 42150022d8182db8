"""An unmodified rpyc 6.0.2 client against a tether server with a small
decoding budget (tests/rpyc_server.rs): a large request within it is
served, one over it fails alone with a RuntimeError, the connection goes
on, and the object the refused request carried is released.

    rpyc_limits.py PORT
"""
import gc
import sys

import rpyc

conn = rpyc.connect("127.0.0.1", int(sys.argv[1]))
root = conn.root

# Over 3000 bytes: rpyc compresses it (zlib level 1), and tether inflates
# and decodes it off its runtime's threads.
data = b"x" * 1_000_000
assert root.echo(data) == data
print("ok compressed round trip", flush=True)


def noisy(string):
    print("Noisy:", string)


try:
    root.record(noisy, (None,) * 1_000_000)
except RuntimeError as e:
    assert "max_decoded_bytes" in str(e), str(e)
    print("ok over the budget", flush=True)
else:
    raise AssertionError("a request over the budget was served")

assert root.add(1, 2) == 3
print("ok still served", flush=True)

# tether released its receipt of `noisy` without building the request
# (the DEL arrived before the exception).
gc.collect()
held = len(conn._local_objects._dict)
assert held == 0, f"this side still counts {held} objects as held by tether"
print("ok released", flush=True)
conn.close()
