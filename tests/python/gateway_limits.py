"""Python's clients against the gateway's limits on bodies.

Usage: gateway_limits.py URL   (a gateway serving the calculator with the
default Config: 1 MiB bodies, 8 MiB read to the end when refused)

- Bodies over the limit: xmlrpc.client and jsonrpclib see HTTP 413, every
  time and at every size up to the discard bound (they send the whole body
  before reading the answer), and the same proxy works afterwards.
- xmlrpc.client's gzip requests (Transport.encode_threshold) are inflated;
  one that inflates past the limit is HTTP 413 too.

Prints "ok" at the end.
"""
import sys
import xmlrpc.client

import jsonrpclib
import jsonrpclib.jsonrpc

URL = sys.argv[1]
MIB = 1 << 20
# Just over the limit, and up to nearly the discard bound: the larger ones
# are more than the socket buffers hold, so the client's send finishes only
# if the gateway reads the body.
OVERSIZED = [MIB + 1024, 2 * MIB, 4 * MIB, 7 * MIB]
ROUNDS = 3


class GzipTransport(xmlrpc.client.Transport):
    """Gzips every request body (xmlrpc.client's own encode_threshold),
    and counts the requests it sent with `Content-Encoding: gzip`."""

    encode_threshold = 0
    gzipped = 0

    def send_content(self, connection, request_body):
        putheader = connection.putheader

        def counting_putheader(name, *values):
            if name.lower() == "content-encoding" and values == ("gzip",):
                GzipTransport.gzipped += 1
            putheader(name, *values)

        connection.putheader = counting_putheader
        try:
            return super().send_content(connection, request_body)
        finally:
            del connection.putheader


def xmlrpc_oversized():
    proxy = xmlrpc.client.ServerProxy(URL)
    for _ in range(ROUNDS):
        for size in OVERSIZED:
            try:
                proxy.addtogether("x" * size)
                raise AssertionError("a %d-byte body was taken" % size)
            except xmlrpc.client.ProtocolError as err:
                assert err.errcode == 413, (size, err)
        # The same proxy (and connection) still works.
        assert proxy.quadratic(1, 2, 1) == [-1.0]


def jsonrpc_oversized():
    proxy = jsonrpclib.ServerProxy(URL)
    for _ in range(ROUNDS):
        for size in OVERSIZED:
            try:
                proxy.addtogether("x" * size)
                raise AssertionError("a %d-byte body was taken" % size)
            except jsonrpclib.jsonrpc.TransportError as err:
                assert err.errcode == 413, (size, err)
        assert proxy.quadratic(1, 2, 1) == [-1.0]


def xmlrpc_gzip():
    transport = GzipTransport()
    proxy = xmlrpc.client.ServerProxy(URL, transport=transport)
    assert proxy.quadratic(2, -4, 0) == [2.0, 0.0]
    assert proxy.lengths("hi", 27, "itsgoodday") == [
        ["hi", 2], [27, None], ["itsgoodday", 10]]
    # Half a mebibyte of text in a few hundred bytes of gzip.
    big = "x" * (MIB // 2)
    assert proxy.addtogether(big, "y") == big + "y"
    assert GzipTransport.gzipped == 3, GzipTransport.gzipped
    # A few kibibytes of gzip that inflate past the limit: 413, and the
    # proxy goes on.
    for _ in range(ROUNDS):
        try:
            proxy.addtogether("x" * (8 * MIB))
            raise AssertionError("an 8 MiB body was taken")
        except xmlrpc.client.ProtocolError as err:
            assert err.errcode == 413, err
        assert proxy.quadratic(1, 2, 1) == [-1.0]


def main():
    xmlrpc_oversized()
    jsonrpc_oversized()
    xmlrpc_gzip()
    print("ok")


main()
