"""Python rpyc client -> tether server, against Python rpyc client ->
Python rpyc server, on the same calls. Prints per-operation medians and the
ratio tether / Python (below 1: tether is faster).

    cargo run --release --example rpyc_bench_server      # 127.0.0.1:18871
    python examples/python/rpyc_bench.py 18871 [ROUNDS]

The Python reference server (the same service, written for rpyc) is started
by this script in a process of its own. For stable figures on a small
machine, pin everything to one CPU: taskset -c 0 for the server and this
script (see BENCHMARKING.md).
"""
import statistics
import subprocess
import sys
import time

import rpyc
from rpyc.utils.helpers import buffiter


class BenchService(rpyc.Service):
    def exposed_add(self, a, b):
        return a + b

    def exposed_apply(self, f, x):
        return f(x)

    def exposed_count(self, n):
        return iter(range(n))


def serve():
    from rpyc.utils.server import ThreadedServer

    server = ThreadedServer(BenchService, hostname="127.0.0.1", port=0)
    server._listen()
    print(server.port, flush=True)
    server.start()


def per_call(fn, n, rounds):
    """Median over rounds of the mean microseconds per call of n calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def measure(port, rounds):
    conn = rpyc.connect("127.0.0.1", port)
    root = conn.root
    add = root.add
    identity = lambda x: x  # noqa: E731
    figures = {
        "getattr + call (root.add(1, 2)), us": per_call(lambda: root.add(1, 2), 500, rounds),
        "call a held method (add(1, 2)), us": per_call(lambda: add(1, 2), 500, rounds),
        "call with one callback, us": per_call(lambda: root.apply(identity, 1), 300, rounds),
        "iterate 2000 items by __next__, us/item": per_call(lambda: sum(root.count(2000)), 1, rounds) / 2000,
        "iterate 20000 items by buffiter, us/item": per_call(lambda: sum(buffiter(root.count(20000))), 1, rounds) / 20000,
    }
    conn.close()
    return figures


def main():
    if sys.argv[1:] == ["--serve"]:
        return serve()
    tether_port = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    reference = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        python_port = int(reference.stdout.readline())
        ours = measure(tether_port, rounds)
        theirs = measure(python_port, rounds)
    finally:
        reference.terminate()
        reference.wait()
    print(f"{'operation':45} {'tether':>10} {'python':>10} {'ratio':>7}")
    for name, value in ours.items():
        print(f"{name:45} {value:10.1f} {theirs[name]:10.1f} {value / theirs[name]:7.2f}")


main()
