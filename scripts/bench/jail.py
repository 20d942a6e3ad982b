#!/usr/bin/python3
"""Isolation cost, in one run:
  - process start to API socket answering (GET /), ember alone vs ember
    started by ember-jailer (chroot with its libraries, device nodes, v1
    memory cgroup, mount and pid namespaces, uid drop; seccomp on in both);
  - block throughput with and without ember's VMM-thread seccomp filter on
    the thread doing the I/O (build/bench/blk-harness, io_uring, 4 KiB
    random reads, QD32, O_DIRECT), interleaved.
Goals: jailing adds under 5 ms; seccomp costs under 2% throughput."""
import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import pct  # noqa: E402


def answered(sock):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sock)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return b"200 OK" in s.recv(4096)
    except OSError:
        return False
    finally:
        s.close()


def time_to_api(argv, sock, timeout=10):
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    while not (os.path.exists(sock) and answered(sock)):
        if time.monotonic() - t0 > timeout:
            p.kill()
            sys.exit(f"no API socket from {argv[0]}")
        time.sleep(0.0001)
    dt = (time.monotonic() - t0) * 1000
    return p, dt


def row(name, v, unit):
    return f"  {name:<44} {min(v):10.2f} {statistics.median(v):10.2f} {pct(v, 95):10.2f} {unit}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--ember", default="build/ember")
    ap.add_argument("--jailer", default="build/ember-jailer")
    ap.add_argument("--harness", default="build/bench/blk-harness")
    ap.add_argument("--file", default="/var/tmp/ember-jail-bench.img")
    a = ap.parse_args()
    ember, jailer = os.path.abspath(a.ember), os.path.abspath(a.jailer)
    plain, jailed, jailed_nocg = [], [], []
    with tempfile.TemporaryDirectory(prefix="ember-jail-") as work:
        os.chmod(work, 0o755)
        for i in range(a.runs):
            sock = os.path.join(work, "api.sock")
            p, dt = time_to_api([ember, "--api-sock", sock], sock)
            p.kill()
            p.wait()
            os.unlink(sock)
            plain.append(dt)
            for cg, out in ((["--cgroup", "memory.limit_in_bytes=268435456"], jailed), ([], jailed_nocg)):
                jid = f"bench{i}{'c' if cg else 'n'}"
                root = os.path.join(work, "ember", jid, "root")
                p, dt = time_to_api([jailer, "--id", jid, "--exec-file", ember, "--uid", "65534",
                                     "--gid", "65534", "--chroot-base-dir", work, "--new-pid-ns",
                                     *cg, "--", "--api-sock", "/api.sock"],
                                    os.path.join(root, "api.sock"))
                p.kill()  # the jailer: its child, pid 1 of the namespace, goes with it
                p.wait()
                subprocess.run(["pkill", "-9", "-f", "^ember --api-sock /api.sock"],
                               capture_output=True)
                time.sleep(0.02)
                shutil.rmtree(os.path.join(work, "ember", jid), ignore_errors=True)
                try:
                    os.rmdir(f"/sys/fs/cgroup/memory/ember/{jid}")
                except OSError:
                    pass
                out.append(dt)
    with open(a.file, "wb") as f:
        f.truncate(256 << 20)
    off, on = [], []
    for _ in range(5):
        for env, out in (("0", off), ("1", on)):
            r = subprocess.run([a.harness, a.file, "uring", "randread", "4096", "32", "1", "1"],
                               capture_output=True, text=True, env=dict(os.environ, EMBER_BENCH_SECCOMP=env))
            m = re.search(r"iops=(\d+)", r.stdout)
            if r.returncode or not m:
                sys.exit(f"blk-harness failed: {r.stdout}{r.stderr}")
            out.append(float(m.group(1)))
    os.unlink(a.file)
    print(f"isolation benchmark: {a.runs} runs (API), 5 x 1 s (block)")
    print(f"  {'':<44} {'min':>10} {'median':>10} {'p95':>10}")
    print(row("process start -> API answers, ember", plain, "ms"))
    print(row("process start -> API answers, jailed ember", jailed, "ms"))
    print(row("  same, without the memory cgroup", jailed_nocg, "ms"))
    print(row("block 4K randread QD32, no seccomp", off, "IOPS"))
    print(row("block 4K randread QD32, VMM seccomp filter", on, "IOPS"))
    med = statistics.median
    print(f"  jailing adds (median): {med(jailed) - med(plain):.2f} ms "
          f"({med(jailed_nocg) - med(plain):.2f} ms without the cgroup)")
    print(f"  seccomp throughput ratio (median, on/off): {med(on) / med(off):.3f}")


if __name__ == "__main__":
    main()
