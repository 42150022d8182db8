"""The source document's RPyC client, unchanged but for where it connects:
a Python file object and a Python function passed to a tether server.

Run the tether server, then this client (rpyc 6.x: pip install rpyc):

    cargo run --example line_counter_server
    python examples/python/line_counter_client.py            # localhost 18861, this file
    python examples/python/line_counter_client.py 18862 notes.txt
"""
import sys

import rpyc


def noisy(string):
    print('Noisy:', repr(string))


port = int(sys.argv[1]) if len(sys.argv) > 1 else 18861
path = sys.argv[2] if len(sys.argv) > 2 else __file__

proxy = rpyc.connect('localhost', port, config={'allow_public_attrs': True})
fileobj = open(path)
linecount = proxy.root.line_counter(fileobj, noisy)
print('The number of lines in the file was', linecount)
