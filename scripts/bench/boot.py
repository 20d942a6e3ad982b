#!/usr/bin/python3
"""Boot benchmark: ember vs QEMU -M microvm on the same PVH hello guest.

Each run starts the monitor, timestamps (on the host's monotonic clock) the
moment the guest's first serial line arrives and the moment the process
exits. Runs alternate between the two monitors so drift hits both alike.
ember also reports, from its own log, process start to first KVM_RUN and to
the guest's boot-timer write (its clock starts at the harness's timestamp,
passed with --start-time-us).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import pct  # noqa: E402

MARKER = b"Hello from the ember guest"


def run_once(argv):
    """Returns (ms to first serial line, ms to exit, stderr)."""
    t0 = time.monotonic_ns()
    argv = [a.replace("@T0@", str(t0 // 1000)) for a in argv]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = b""
    t_line = None
    while True:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        out += chunk
        if t_line is None and MARKER in out:
            t_line = time.monotonic_ns()
    err = p.stderr.read()
    p.wait()
    t_exit = time.monotonic_ns()
    if t_line is None:
        sys.exit(f"no guest output from {argv[0]}: {out!r} {err!r}")
    return (t_line - t0) / 1e6, (t_exit - t0) / 1e6, err.decode(errors="replace")


def row(name, values):
    return (f"  {name:<52} {min(values):8.2f} {statistics.median(values):8.2f} "
            f"{pct(values, 95):8.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--ember", default="build/ember")
    ap.add_argument("--guest", default="build/guest/hello.elf")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    a = ap.parse_args()

    ember = [a.ember, "--kernel", a.guest, "--mem-mib", "128", "--boot-timer", "--level", "info",
             "--start-time-us", "@T0@", "--cmdline", "exit=0"]
    qemu = [a.qemu, "-M", "microvm", "-accel", "kvm", "-m", "128", "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio", "-kernel", a.guest,
            "-append", "exit=0", "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]

    res = {k: [] for k in ("e_line", "e_exit", "e_run", "e_timer", "e_stop", "q_line", "q_exit")}
    for _ in range(2):  # warm the page cache for both
        run_once(ember)
        run_once(qemu)
    for _ in range(a.runs):
        line, exit_, err = run_once(ember)
        res["e_line"].append(line)
        res["e_exit"].append(exit_)
        m = re.search(r"first KVM_RUN (\d+) us", err)
        t = re.search(r"Guest-boot-time = (\d+) us", err)
        st = re.search(r"VM stopping .* (\d+) us after start", err)
        if not (m and t and st):
            sys.exit(f"ember log lacks timings:\n{err}")
        res["e_run"].append(int(m.group(1)) / 1000)
        res["e_timer"].append(int(t.group(1)) / 1000)
        res["e_stop"].append(int(st.group(1)) / 1000)
        line, exit_, _ = run_once(qemu)
        res["q_line"].append(line)
        res["q_exit"].append(exit_)

    print(f"boot benchmark: {a.runs} runs each, guest {a.guest}, 128 MiB, 1 vCPU "
          f"(times in ms from process start)")
    print(f"  {'':<52} {'min':>8} {'median':>8} {'p95':>8}")
    print(row("ember: start -> first KVM_RUN (own log)", res["e_run"]))
    print(row("ember: start -> guest boot-timer write (own log)", res["e_timer"]))
    print(row("ember: start -> guest's first serial line", res["e_line"]))
    print(row("qemu microvm: start -> guest's first serial line", res["q_line"]))
    print(row("ember: start -> guest's debug-exit write (own log)", res["e_stop"]))
    print(row("ember: start -> exit", res["e_exit"]))
    print(row("qemu microvm: start -> exit", res["q_exit"]))
    med = statistics.median
    print(f"  ratio qemu/ember, first serial line (median): {med(res['q_line']) / med(res['e_line']):.1f}x")
    print(f"  ratio qemu/ember, end to end (median):        {med(res['q_exit']) / med(res['e_exit']):.1f}x")
    print("  (ember's exit includes the host kernel tearing down the in-kernel PIC, IOAPIC and PIT;\n"
          "   QEMU microvm runs those in user space with a split irqchip, see README)")


if __name__ == "__main__":
    main()
