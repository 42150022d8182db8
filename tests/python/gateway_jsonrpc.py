"""The source document's JSON-RPC client against tether's gateway.

Usage: gateway_jsonrpc.py URL   (a gateway serving the calculator)

Uses jsonrpclib (jsonrpclib-pelix) only, and asserts every value that comes
back. Prints "ok" at the end.
"""
import sys

import jsonrpclib
from jsonrpclib.jsonrpc import ProtocolError

URL = sys.argv[1]


def error_code(call):
    """The JSON-RPC error code `call()` fails with."""
    try:
        call()
    except ProtocolError as err:
        code, message = err.args[0]
        assert isinstance(message, str) and message, err
        return code
    raise AssertionError("no error")


def main():
    proxy = jsonrpclib.ServerProxy(URL)

    # The document's call.
    assert proxy.lengths("hi", 27, "itsgoodday") == [
        ["hi", 2], [27, None], ["itsgoodday", 10]]

    # Positional and named parameters.
    assert proxy.quadratic(2, -4, 0) == [2.0, 0.0]
    assert proxy.quadratic(a=1, b=2, c=1) == [-1.0]
    assert proxy.remote_repr({"name": "Arthur", "data": {"age": 42, "sex": "M"}}) == {
        "name": "Arthur", "data": {"age": 42, "sex": "M"}}
    assert proxy.addtogether("x", "y", "z") == "xyz"
    assert proxy.system.listMethods()[:4] == [
        "addtogether", "quadratic", "remote_repr", "lengths"]

    # A batch: one HTTP request, answers in order, one failure in the middle.
    batch = jsonrpclib.MultiCall(proxy)
    batch.lengths("hi", 27, "itsgoodday")
    batch.quadratic(1, 0, 1)
    batch.addtogether(20, 30, 4, 1)
    results = batch()
    assert results[0] == [["hi", 2], [27, None], ["itsgoodday", 10]]
    assert error_code(lambda: results[1]) == -32000
    assert results[2] == 55

    # A notification gets no answer.
    assert proxy._notify.lengths("x") is None

    # The specification's error codes.
    assert error_code(lambda: proxy.nope()) == -32601
    assert error_code(lambda: proxy.quadratic(1)) == -32602
    assert error_code(lambda: proxy.quadratic(a=1, b=2, c=3, d=4)) == -32602
    assert error_code(lambda: proxy.quadratic(1, 0, 1)) == -32000
    print("ok")


main()
