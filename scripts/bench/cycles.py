#!/usr/bin/python3
"""Restores per second and where each restore-run-teardown cycle goes.

A cycle: start `ember --no-api --restore ST --mem MEM --resume` of the
ticking hello guest (see restore.py), wait for its first '.' on the serial
port (the guest running again), SIGKILL it and reap it. Cycles run 1, 2, 4,
8 and 16 at a time for a fixed count; the rate is completed cycles over the
wall time. Each cycle is split, on the host's monotonic clock, into
  spawn:    fork+exec returning in the parent (Popen),
  restore:  exec to the first '.' (loader, VM build, state load, first
            KVM_RUN, the guest's first port write),
  teardown: SIGKILL to the process reaped (threads end, fds close: the
            host frees the VM, in-kernel PIC/IOAPIC/PIT included),
and the process's CPU time: 2 CPUs over it bounds the rate however many
run at a time, where the wall time above is largely sleeping.
Peers in the same run, interleaved round by round: QEMU -M microvm
restoring the same guest with -incoming (fewer cycles: it is ~10x slower),
and the floor: a plain host process (`sleep`) spawned, killed and reaped
by the same harness.
Then an idle restored clone's memory: RSS and private from smaps_rollup,
and the mappings that hold the private part.
"""
import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from restore import Ember, Qemu, kill  # noqa: E402
from stats import pct  # noqa: E402

LEVELS = (1, 2, 4, 8, 16)


def dot_at(p, timeout=20.0):
    """Monotonic time of @p's first '.' on stdout. Blocks in poll rather
    than spinning as restore.first_dot does: 16 spinning harness threads
    would take the CPUs the guests need."""
    deadline = time.monotonic() + timeout
    fd = p.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        if b"." in chunk:
            return time.monotonic()
    p.kill()
    sys.exit(f"no tick from {p.args[0]}")


def reap(p):
    """Wait for @p; its CPU time (user + system, ms), which includes the
    host's VM teardown done in the exiting task (closing the KVM fds) but
    not what the kernel defers to its own threads (RCU callbacks)."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = status
    return ru.ru_utime + ru.ru_stime


def cpu_so_far(pid):
    """CPU time (s) @pid's threads have run so far, from schedstat (ns)."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def cycle_ember(emb, st, mem):
    t0 = time.monotonic()
    p = emb.spawn("--no-api", "--restore", st, "--mem", mem, "--resume")
    t1 = time.monotonic()
    t2 = dot_at(p)
    before = cpu_so_far(p.pid)
    p.send_signal(signal.SIGKILL)
    cpu = reap(p)
    t3 = time.monotonic()
    p.stdout.close()
    return t1 - t0, t2 - t1, t3 - t2, cpu, before


def cycle_qemu(qemu):
    t0 = time.monotonic()
    p = subprocess.Popen(qemu.base + ["-incoming", f"exec:cat {qemu.file}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    t1 = time.monotonic()
    t2 = dot_at(p)
    before = cpu_so_far(p.pid)
    p.send_signal(signal.SIGKILL)
    cpu = reap(p)
    t3 = time.monotonic()
    p.stdout.close()
    return t1 - t0, t2 - t1, t3 - t2, cpu, before


def cycle_floor():
    t0 = time.monotonic()
    p = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = time.monotonic()
    p.send_signal(signal.SIGKILL)
    cpu = reap(p)
    t2 = time.monotonic()
    return t1 - t0, 0.0, t2 - t1, cpu


def sweep(fn, n, parallel):
    """(cycles per second, [(spawn, restore, teardown)]) for @n cycles of
    @fn, @parallel at a time."""
    parts = []
    left = [n]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            r = fn()
            with lock:
                parts.append(r)
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n / (time.monotonic() - t0), parts


def private_split(pid, mem_path):
    """KiB: smaps_rollup's Rss, Private (clean + dirty) and Private_Dirty,
    and the private part grouped by mapping (guest memory, heap, stacks,
    each library, anonymous maps by size) as (private, dirty, name),
    largest first."""
    roll = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                roll[parts[0][:-1]] = int(parts[1])
    groups, dirty = {}, {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and "-" in parts[0] and ":" in parts[3]:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                path = parts[5] if len(parts) > 5 else ""
                if path == mem_path:
                    name = "guest memory (MAP_PRIVATE of the memory file)"
                elif path:
                    name = os.path.basename(path)
                else:
                    name = f"anonymous {(hi - lo) // 1024} KiB maps"
            elif parts and parts[0] in ("Private_Clean:", "Private_Dirty:"):
                groups[name] = groups.get(name, 0) + int(parts[1])
                if parts[0] == "Private_Dirty:" and int(parts[1]):
                    dirty[name] = dirty.get(name, 0) + int(parts[1])
    top = sorted(((kb, dirty.get(n, 0), n) for n, kb in groups.items() if kb), reverse=True)
    return (roll.get("Rss", 0), roll.get("Private_Clean", 0) + roll.get("Private_Dirty", 0),
            roll.get("Private_Dirty", 0), top)


def ms_row(name, v):
    v = [x * 1000 for x in v]
    return f"  {name:<50} {min(v):9.2f} {statistics.median(v):9.2f} {pct(v, 95):9.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=100, help="ember cycles per level and round")
    ap.add_argument("--qemu-cycles", type=int, default=16)
    ap.add_argument("--mib", type=int, default=128)
    ap.add_argument("--ember", default="build/ember")
    ap.add_argument("--guest", default="build/guest/hello.elf")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ember-cycles-") as work:
        emb = Ember(os.path.abspath(a.ember), os.path.abspath(a.guest), work, a.mib)
        st, mem, _, _ = emb.snapshot()
        qemu = Qemu(a.qemu, os.path.abspath(a.guest), work, a.mib)
        qemu.snapshot()
        kill(emb.restore_cli(st, mem)[0])  # warm the page cache
        contenders = {"ember": (lambda: cycle_ember(emb, st, mem), a.cycles),
                      "qemu": (lambda: cycle_qemu(qemu), a.qemu_cycles),
                      "floor": (cycle_floor, a.cycles)}
        rates = {(c, lv): [] for c in contenders for lv in LEVELS}
        parts = {(c, lv): [] for c in contenders for lv in LEVELS}
        for _ in range(a.rounds):
            for lv in LEVELS:
                for c, (fn, n) in contenders.items():
                    r, ps = sweep(fn, n, lv)
                    rates[(c, lv)].append(r)
                    parts[(c, lv)].extend(ps)

        # Two clones: with one alone, pages of ember's binary and libraries
        # that no other process maps count as private.
        p, _ = emb.restore_cli(st, mem)
        q, _ = emb.restore_cli(st, mem)
        time.sleep(0.5)
        rss, private, dirty, top = private_split(q.pid, mem)
        kill(q)
        kill(p)

    med = statistics.median
    print(f"restore-run-teardown cycles: {a.mib} MiB guest, 1 vCPU, {os.cpu_count()} host CPUs, "
          f"{a.rounds} rounds of {a.cycles} cycles (QEMU {a.qemu_cycles}) per level")
    print(f"  {'cycles per second':<50} {'min':>9} {'median':>9} {'max':>9}")
    for lv in LEVELS:
        for c, label in (("ember", "ember --restore"), ("qemu", "qemu microvm -incoming"),
                         ("floor", "host process spawn+kill+reap")):
            v = rates[(c, lv)]
            print(f"  {label + f', {lv} at a time':<50} {min(v):9.0f} {med(v):9.0f} {max(v):9.0f}")
        print(f"    ember / qemu {med(rates[('ember', lv)]) / med(rates[('qemu', lv)]):.1f}x, "
              f"ember / floor {med(rates[('ember', lv)]) / med(rates[('floor', lv)]):.2f}")
    print(f"  {'per cycle (ms)':<50} {'min':>9} {'median':>9} {'p95':>9}")
    for lv in (1, 2, 16):
        for c, label in (("ember", "ember"), ("qemu", "qemu"), ("floor", "floor")):
            ps = parts[(c, lv)]
            print(ms_row(f"{label}, {lv} at a time: spawn (fork+exec)", [x[0] for x in ps]))
            if c != "floor":
                print(ms_row(f"{label}, {lv} at a time: exec -> guest running", [x[1] for x in ps]))
            print(ms_row(f"{label}, {lv} at a time: SIGKILL -> reaped", [x[2] for x in ps]))
            print(ms_row(f"{label}, {lv} at a time: process CPU time", [x[3] for x in ps]))
            if c == "ember":
                print(ms_row("  of which up to the guest running", [x[4] for x in ps]))
                print(ms_row("  of which exit (SIGKILL -> reaped)", [x[3] - x[4] for x in ps]))
    cpu = statistics.median([x[3] for lv in LEVELS for x in parts[("ember", lv)]])
    print(f"  ember: median CPU time per cycle {cpu * 1000:.2f} ms: at most "
          f"{os.cpu_count() / cpu:.0f} cycles per second on {os.cpu_count()} CPUs "
          f"(harness and host threads not counted)")
    print(f"  idle restored clone, a second one alive (smaps_rollup): RSS {rss} KiB, "
          f"private {private} KiB, of which dirty {dirty} KiB; by mapping (KiB private, dirty):")
    for kb, d, n in top[:10]:
        print(f"    {kb:6d} {d:6d}  {n}")


if __name__ == "__main__":
    main()
