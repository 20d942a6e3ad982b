#!/usr/bin/python3
"""Function benchmark: requests through a fresh VM each, beside two peers.

For the echo and sha256 examples (guest/examples/), at 1, 2, 4 and 8
requests at a time, in one run, levels interleaved:
  - ember: `ember-fn serve` with a pool of embers started ahead; each
    request restores the function's snapshot (File), runs the handler,
    answers over vsock; the VM is torn down in the background.
    build/bench/fn-load sends the frames (one connection per client).
  - host process: the same handler source built for the host
    (scripts/bench/fn-host/fn.h), fork+exec per request with the request on
    stdin (the floor for a fresh process), by the same fn-load.
  - QEMU -M microvm restoring the hello guest with -incoming from a file,
    process start to its first serial write, then killed (restore.py's
    peer): QEMU's floor per request, before any request could be handled.
Latency is per request on the client, from sending the request to the
whole response; the rate is requests over the wall time of the level.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from restore import Qemu  # noqa: E402
from stats import pct  # noqa: E402

LEVELS = (1, 2, 4, 8)


def load(mode, target, conc, count, reqfile):
    r = subprocess.run(["build/bench/fn-load", mode, target, str(conc), str(count), reqfile],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"fn-load {mode} {target} {conc}: {r.stderr.strip()}")
    out = r.stdout.split("\n")
    lat = [int(x) / 1000 for x in out if x and not x.startswith("rate")]
    rate = float([x for x in out if x.startswith("rate")][0].split()[1])
    return lat, rate


def qemu_level(qemu, conc, count):
    lat = []
    lock = threading.Lock()
    left = [count]

    def worker():
        while True:
            with lock:
                if not left[0]:
                    return
                left[0] -= 1
            dt = qemu.restore() * 1000
            with lock:
                lat.append(dt)
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, count / (time.monotonic() - t0)


def row(name, lat, rate):
    return (f"  {name:<34} {min(lat):8.2f} {statistics.median(lat):8.2f} "
            f"{pct(lat, 99):8.2f} {rate:9.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=400, help="requests per level")
    ap.add_argument("--qemu-count", type=int, default=16)
    ap.add_argument("--request", type=int, default=1024, help="request bytes")
    ap.add_argument("--pool", type=int, default=8)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fnb", dir="/tmp") as work:
        reqfile = os.path.join(work, "request")
        with open(reqfile, "wb") as f:
            f.write(os.urandom(a.request))
        servers = {}
        try:
            res = run(a, work, reqfile, servers)
        finally:
            for p, _ in servers.values():
                p.terminate()
                p.wait()
    report(a, res)


def run(a, work, reqfile, servers):
    env = dict(os.environ, TMPDIR=work)
    for fn in ("echo", "sha256"):
        d = os.path.join(work, fn)
        subprocess.run(["build/ember-fn", "prepare", "--image",
                        f"build/guest/examples/{fn}.elf", "--dir", d], check=True)
        sock = os.path.join(work, fn + ".sock")
        log = open(os.path.join(work, fn + ".log"), "w")
        p = subprocess.Popen(["build/ember-fn", "serve", "--dir", d, "--sock", sock,
                              "--pool", str(a.pool)], env=env, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log)
        while not os.path.exists(sock):
            time.sleep(0.01)
        servers[fn] = (p, sock)
        load("serve", sock, 1, 20, reqfile)  # warm the page cache and the pool
    qemu = Qemu(a.qemu, "build/guest/hello.elf", work, 64)
    qemu.snapshot()
    res = {}
    for conc in LEVELS:
        for fn in ("echo", "sha256"):
            res[(fn, "ember", conc)] = load("serve", servers[fn][1], conc, a.count, reqfile)
            res[(fn, "host", conc)] = load("exec", f"build/bench/fn-{fn}-host", conc,
                                           a.count, reqfile)
        res[("qemu", conc)] = qemu_level(qemu, conc, a.qemu_count)
    return res


def report(a, res):
    print(f"requests of {a.request} bytes; {a.count} per level ({a.qemu_count} for QEMU); "
          f"pool of {a.pool}; {os.cpu_count()} CPUs")
    print(f"  {'':<34} {'min ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9}")
    for conc in LEVELS:
        print(f" {conc} at a time")
        for fn in ("echo", "sha256"):
            print(row(f"{fn}: ember VM per request", *res[(fn, "ember", conc)]))
            print(row(f"{fn}: host process per request", *res[(fn, "host", conc)]))
        print(row("QEMU microvm -incoming (no handler)", *res[("qemu", conc)]))
    print(" ratios (ember / host process: p50 latency, rate; QEMU p50 / ember echo p50)")
    for conc in LEVELS:
        for fn in ("echo", "sha256"):
            el, er = res[(fn, "ember", conc)]
            hl, hr = res[(fn, "host", conc)]
            print(f"  {conc} at a time, {fn}: p50 {statistics.median(el) / statistics.median(hl):.2f}x,"
                  f" rate {er / hr:.2f}x")
        ql, _ = res[("qemu", conc)]
        el, _ = res[("echo", "ember", conc)]
        print(f"  {conc} at a time, QEMU restore alone / ember echo request: "
              f"{statistics.median(ql) / statistics.median(el):.1f}x")


if __name__ == "__main__":
    main()
