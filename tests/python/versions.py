"""Prints the versions of the packages the Python-driven tests use."""
from importlib.metadata import version

import jsonrpclib  # noqa: F401  (imported to show it is importable)
import rpyc

print("rpyc", rpyc.__version__)
print("jsonrpclib", version("jsonrpclib-pelix"))
