#!/usr/bin/python3
"""Start-up benchmark: what a process start costs ember (issue 15).

In one run, for each ember binary given (--ember, repeatable: runs
alternate between them so drift hits all alike):
  - exec -> API answering: process start until GET / on --api-sock answers;
  - exec -> first KVM_RUN: ember's own log (--start-time-us), hello guest;
  - `ember --version`: CPU time (user + system, from wait4) and wall time;
  - idle restored clone: RSS and private memory outside guest memory;
  - seccomp filters: BPF instructions per thread class (build/gen);
  - the binary: size, shared libraries it maps (ldd).
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import pct  # noqa: E402
import restore  # noqa: E402


def row(name, v, unit="ms"):
    return f"  {name:<44} {min(v):9.3f} {statistics.median(v):9.3f} {pct(v, 95):9.3f} {unit}"


def api_answering(ember, work):
    sock = os.path.join(work, "start.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    t0 = time.monotonic()
    p = subprocess.Popen([ember, "--api-sock", sock], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = t0 + 10
    while time.monotonic() < deadline:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            if s.recv(4096).startswith(b"HTTP/1.1 200"):
                dt = time.monotonic() - t0
                s.close()
                restore.kill(p)
                return dt * 1000
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.00005)
        finally:
            s.close()
    restore.kill(p)
    sys.exit("the API never answered")


def first_kvm_run(ember, guest):
    t0 = time.monotonic_ns()
    r = subprocess.run([ember, "--kernel", guest, "--mem-mib", "128", "--level", "info",
                        "--start-time-us", str(t0 // 1000), "--cmdline", "exit=0"],
                       stdin=subprocess.DEVNULL, capture_output=True)
    m = re.search(rb"first KVM_RUN (\d+) us", r.stderr)
    if not m:
        sys.exit(f"no first KVM_RUN line: {r.stderr[-2000:]!r}")
    return int(m.group(1)) / 1000


def version_cpu(ember):
    t0 = time.monotonic()
    pid = os.posix_spawn(ember, [ember, "--version"], os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    if status:
        sys.exit("ember --version failed")
    return (ru.ru_utime + ru.ru_stime) * 1000, wall * 1000


def seccomp_sizes(gen):
    sizes, cur = {}, None
    with open(gen) as f:
        for line in f:
            m = re.match(r"static const struct sock_filter f_(\w+)\[\]", line)
            if m:
                cur = m.group(1)
                sizes[cur] = 0
            elif cur and line.strip().startswith("{ 0x"):
                sizes[cur] += 1
            elif line.startswith("};"):
                cur = None
    return sizes


def measure(ember, guest, work, runs):
    res = {"api": [], "run": [], "cpu": [], "wall": []}
    for _ in range(runs):
        res["api"].append(api_answering(ember, work))
        res["run"].append(first_kvm_run(ember, guest))
        cpu, wall = version_cpu(ember)
        res["cpu"].append(cpu)
        res["wall"].append(wall)
    return res


def report(name, ember, res, clone, gen):
    total, guest_kb, private_kb = clone
    ldd = subprocess.run(["ldd", ember], capture_output=True, text=True).stdout
    libs = [ln.split()[0] for ln in ldd.splitlines() if "=>" in ln or ln.strip().startswith("/")]
    print(f"start-up benchmark: {name}, {len(res['api'])} runs")
    print(f"  {'':<44} {'min':>9} {'median':>9} {'p95':>9}")
    print(row("exec -> API answering (GET /)", res["api"]))
    print(row("exec -> first KVM_RUN (own log)", res["run"]))
    print(row("ember --version, CPU (user+sys)", res["cpu"]))
    print(row("ember --version, wall", res["wall"]))
    print(f"  idle restored clone (128 MiB): RSS {total} KiB, outside guest memory "
          f"{total - guest_kb} KiB, private {private_kb} KiB")
    sizes = seccomp_sizes(gen)
    print("  seccomp BPF instructions: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) +
          f" (total {sum(sizes.values())})")
    print(f"  binary: {os.stat(ember).st_size} bytes; shared libraries mapped: {len(libs)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--ember", action="append", help="repeatable (default build/ember)")
    ap.add_argument("--guest", default="build/guest/hello.elf")
    a = ap.parse_args()
    embers = [os.path.abspath(e) for e in (a.ember or ["build/ember"])]
    guest = os.path.abspath(a.guest)
    res = {e: {"api": [], "run": [], "cpu": [], "wall": []} for e in embers}
    clones = {}
    with tempfile.TemporaryDirectory(prefix="ember-startup-") as work:
        for e in embers:  # warm the page cache
            measure(e, guest, work, 2)
        for _ in range(a.runs):
            for e in embers:
                for k, v in measure(e, guest, work, 1).items():
                    res[e][k] += v
        for e in embers:
            emb = restore.Ember(e, guest, work, 128)
            st, mem, _, _ = emb.snapshot()
            p, _ = emb.restore_cli(st, mem)
            time.sleep(0.5)
            clones[e] = restore.rss_split(p.pid, mem)
            restore.kill(p)
    for name, e in zip(a.ember or ["build/ember"], embers):
        report(name, e, res[e], clones[e], os.path.join(os.path.dirname(e), "gen/seccomp_filters.c"))


if __name__ == "__main__":
    main()
