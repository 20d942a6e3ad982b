#!/usr/bin/python3
"""API benchmark.

1. Latency of GET / and PUT /machine-config over one keep-alive Unix-socket
   connection, as the client sees it (includes Python's http.client), and as
   ember measures it itself (metrics ember.api latency p50/p99, request
   arrival to answer). Beside it, the same client against a baseline server
   that answers every request with a fixed 204 from a tight loop, so the
   client's and the kernel's share is visible.
2. Process start to API socket accepting: ember's own log (with the
   harness's --start-time-us) and the harness's connect() loop; beside it,
   the time to spawn and reap /bin/true.
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../tests/integration"))
from api_client import Api  # noqa: E402
from stats import pct  # noqa: E402


def row(name, v, unit="us"):
    print(f"  {name:<52} {min(v):9.1f} {statistics.median(v):9.1f} {pct(v, 99):9.1f} {unit}")


def baseline_server(path, stop):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    conn, _ = srv.accept()
    buf = b""
    while not stop.is_set():
        data = conn.recv(65536)
        if not data:
            break
        buf += data
        # Requests end with their body (if any); answer each header block.
        while b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"Content-Length: (\d+)", head, re.I)
            n = int(m.group(1)) if m else 0
            if len(rest) < n:
                break
            buf = rest[n:]
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    conn.close()
    srv.close()


def timed(api, n, method, path, body=None):
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        st, _ = api.call(method, path, body)
        out.append((time.perf_counter_ns() - t) / 1000)
        assert st in (200, 204), st
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", default="build/ember")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--starts", type=int, default=30)
    a = ap.parse_args()
    d = tempfile.mkdtemp()

    # 1. request latency
    sock = os.path.join(d, "api.sock")
    metrics = os.path.join(d, "metrics.json")
    p = subprocess.Popen([a.ember, "--api-sock", sock, "--level", "error"], stdin=subprocess.DEVNULL)
    while not os.path.exists(sock):
        time.sleep(0.001)
    api = Api(sock)
    api.call("PUT", "/metrics", {"metrics_path": metrics})
    timed(api, 200, "GET", "/")  # warm up
    get = timed(api, a.requests, "GET", "/")
    api.call("PUT", "/actions", {"action_type": "FlushMetrics"})
    own_get = json.loads(open(metrics).read().splitlines()[-1])["ember"]["api"]
    put = timed(api, a.requests, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    api.call("PUT", "/actions", {"action_type": "FlushMetrics"})
    own_put = json.loads(open(metrics).read().splitlines()[-1])["ember"]["api"]
    api.close()
    p.terminate()
    p.wait()

    bpath = os.path.join(d, "base.sock")
    stop = threading.Event()
    t = threading.Thread(target=baseline_server, args=(bpath, stop), daemon=True)
    t.start()
    while not os.path.exists(bpath):
        time.sleep(0.001)
    bapi = Api(bpath)
    base = timed(bapi, a.requests, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    stop.set()
    bapi.close()

    print(f"API benchmark: {a.requests} requests each over one keep-alive connection")
    print(f"  {'':<52} {'min':>9} {'median':>9} {'p99':>9}")
    row("client: GET / on ember", get)
    row("client: PUT /machine-config on ember", put)
    row("client: same PUT on a fixed-204 baseline server", base)
    print(f"  ember's own latency (metrics, last 1024): GET / p50 {own_get['latency_us_p50']} us, "
          f"p99 {own_get['latency_us_p99']} us; PUT /machine-config p50 {own_put['latency_us_p50']} us, "
          f"p99 {own_put['latency_us_p99']} us")
    print(f"  ratio ember/baseline, PUT median: {statistics.median(put) / statistics.median(base):.2f}x")

    # 2. start to socket ready
    own, seen, true = [], [], []
    for i in range(a.starts):
        s = os.path.join(d, f"s{i}.sock")
        t0 = time.monotonic_ns()
        p = subprocess.Popen([a.ember, "--api-sock", s, "--level", "info",
                              "--start-time-us", str(t0 // 1000)],
                             stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                c.connect(s)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.00005)
        seen.append((time.monotonic_ns() - t0) / 1000)
        c.close()
        p.terminate()
        err = p.communicate()[1].decode()
        own.append(int(re.search(r"listening on \S+ after (\d+) us", err).group(1)))
        t0 = time.monotonic_ns()
        subprocess.run(["/bin/true"])
        true.append((time.monotonic_ns() - t0) / 1000)
    print(f"\nstart to API socket ready, {a.starts} runs")
    print(f"  {'':<52} {'min':>9} {'median':>9} {'p99':>9}")
    row("ember's own log (from the harness's spawn)", own)
    row("harness: spawn to first successful connect()", seen)
    row("baseline: spawn and reap /bin/true", true)


if __name__ == "__main__":
    main()
