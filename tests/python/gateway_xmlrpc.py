"""The source document's XML-RPC clients against tether's gateway.

Usage: gateway_xmlrpc.py URL   (a gateway serving the calculator)

Uses nothing but the standard library's xmlrpc.client, and asserts every
value that comes back. Prints "ok" at the end.
"""
import datetime
import sys
import xmlrpc.client

URL = sys.argv[1]

METHODS = ["addtogether", "quadratic", "remote_repr", "lengths"]
SYSTEM = ["system.listMethods", "system.methodSignature",
          "system.methodHelp", "system.multicall"]


class CountingTransport(xmlrpc.client.Transport):
    """Counts the HTTP requests it sends."""

    requests = 0

    def request(self, *args, **kwargs):
        CountingTransport.requests += 1
        return super().request(*args, **kwargs)


def introspection(proxy):
    assert proxy.system.listMethods() == METHODS + SYSTEM, proxy.system.listMethods()
    assert proxy.system.methodSignature("quadratic") == [
        ["array", "double", "double", "double"]]
    assert proxy.system.methodSignature("addtogether") == [["any", "*any"]]
    # The doc text alone, as CPython's SimpleXMLRPCServer answers
    # (its test_introspection2/3); the signature is methodSignature's.
    help_text = proxy.system.methodHelp("quadratic")
    assert help_text.startswith("Determine `x` values satisfying"), help_text
    assert "(a: float" not in help_text, help_text
    assert proxy.system.methodHelp("system.listMethods") == (
        "The names of the methods this server offers.")
    try:
        proxy.system.methodHelp("nope")
        raise AssertionError("methodHelp('nope') did not fail")
    except xmlrpc.client.Fault as fault:
        assert fault.faultCode == -32601, fault


ARTHUR = {"name": "Arthur", "data": {"age": 42, "sex": "M"}}

# (call, expected result) in the document's order; None marks the Fault.
CALLS = [
    (("addtogether", ("x", "y", "z")), "xyz"),
    (("addtogether", (20, 30, 4, 1)), 55),
    (("quadratic", (2, -4, 0)), [2.0, 0.0]),
    (("quadratic", (1, 0, 1)), None),
    (("quadratic", (1, 2, 1)), [-1.0]),
    (("remote_repr", ((1, 2.0, "three"),)), [1, 2.0, "three"]),
    (("remote_repr", ([1, 2.0, "three"],)), [1, 2.0, "three"]),
    (("remote_repr", (ARTHUR,)), ARTHUR),
]


def check_fault(fault):
    assert fault.faultCode == -32500, fault
    assert fault.faultString == "ValueError: math domain error", fault


def one_by_one(proxy):
    for (method, args), expected in CALLS:
        if expected is None:
            try:
                getattr(proxy, method)(*args)
                raise AssertionError("%s%r did not fail" % (method, args))
            except xmlrpc.client.Fault as fault:
                check_fault(fault)
        else:
            got = getattr(proxy, method)(*args)
            assert got == expected, (method, args, got)
            assert type(got) is type(expected), (method, args, got)


def multicall(proxy):
    before = CountingTransport.requests
    batch = xmlrpc.client.MultiCall(proxy)
    for (method, args), _ in CALLS:
        getattr(batch, method)(*args)
    results = batch()
    assert CountingTransport.requests == before + 1, "more than one HTTP request"
    for i, ((method, args), expected) in enumerate(CALLS):
        if expected is None:
            try:
                results[i]
                raise AssertionError("%s%r did not fail" % (method, args))
            except xmlrpc.client.Fault as fault:
                check_fault(fault)
        else:
            assert results[i] == expected, (method, args, results[i])


def value_types(url):
    """Every XML-RPC type goes to the server and back unchanged, a
    dateTime included (whole seconds, as XML-RPC writes them)."""
    proxy = xmlrpc.client.ServerProxy(url, allow_none=True, use_builtin_types=True)
    sent = [None, True, False, -(2 ** 31), 2 ** 31 - 1, 0.1, "naïve ☃ <&>",
            b"\x00\xff\x10", [], {}, {"nested": [[1], {"x": None}]}]
    assert proxy.remote_repr(sent) == sent
    when = datetime.datetime(2026, 11, 23, 22, 30, 5)
    assert proxy.remote_repr(when) == when, proxy.remote_repr(when)
    assert proxy.remote_repr([when, {"at": when}]) == [when, {"at": when}]
    # Without builtin types the client's own DateTime, as CPython's tests use.
    plain = xmlrpc.client.ServerProxy(url)
    got = plain.remote_repr(xmlrpc.client.DateTime(when))
    assert isinstance(got, xmlrpc.client.DateTime), type(got)
    assert got == xmlrpc.client.DateTime("20261123T22:30:05"), got
    assert plain.lengths(when) == [[xmlrpc.client.DateTime(when), None]]
    # Beyond 32 bits the gateway answers with <i8>, which Python reads.
    assert proxy.addtogether(2 ** 31 - 1, 2 ** 31 - 1) == 2 ** 32 - 2
    assert proxy.lengths(b"abc", "h\u00e9", [1, 2], {"k": 1}, None, 1.5) == [
        [b"abc", 3], ["h\u00e9", 2], [[1, 2], 2], [{"k": 1}, 1], [None, None],
        [1.5, None]]


def encodings(url):
    """Requests in the encodings Python's client offers: each declares
    its encoding and writes what it cannot encode as character
    references; the answer is UTF-8 whatever was sent."""
    for encoding in ["ascii", "us-ascii", "iso-8859-1", "latin-1",
                     "iso-8859-15", "cp1252", "windows-1252", "utf-8"]:
        proxy = xmlrpc.client.ServerProxy(url, encoding=encoding)
        got = proxy.addtogether("na\u00efve ", "\u20ac", " \u2603")
        assert got == "na\u00efve \u20ac \u2603", (encoding, got)
    try:
        xmlrpc.client.ServerProxy(url, encoding="utf-16").addtogether("a", "b")
        raise AssertionError("a UTF-16 request did not fail")
    except xmlrpc.client.Fault as fault:
        assert fault.faultCode == -32700, fault
        assert "unsupported encoding 'utf-16'" in fault.faultString, fault


def errors(proxy):
    for call, code in [
        (lambda: proxy.nope(), -32601),
        (lambda: proxy.quadratic(1), -32602),
        (lambda: proxy.quadratic("a", "b", "c"), -32602),
        (lambda: proxy.addtogether(1, "x"), -32500),
    ]:
        try:
            call()
            raise AssertionError("no fault, expected %d" % code)
        except xmlrpc.client.Fault as fault:
            assert fault.faultCode == code, (fault, code)


def main():
    transport = CountingTransport()
    proxy = xmlrpc.client.ServerProxy(URL, transport=transport)
    introspection(proxy)
    one_by_one(proxy)
    multicall(proxy)
    value_types(URL)
    encodings(URL)
    errors(proxy)
    # The other path the specification names.
    assert xmlrpc.client.ServerProxy(URL.rstrip("/") + "/RPC2").quadratic(1, 2, 1) == [-1.0]
    print("ok")


main()
