"""An unmodified rpyc client against a tether server that requires a token:
it must get no root (the connection is closed), never a service.

Usage: rpyc_refused.py PORT
"""
import sys

import rpyc

conn = rpyc.connect("127.0.0.1", int(sys.argv[1]))
try:
    root = conn.root
except EOFError:
    print("refused")
else:
    raise SystemExit(f"an RPyC client without a token got a root: {root!r}")
