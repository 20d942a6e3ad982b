#!/usr/bin/python3
"""Restores per second and where each restore-run-teardown cycle goes.

A cycle: start `ember --no-api --restore ST --mem MEM --resume` of the
ticking hello guest (see restore.py), wait for its first '.' on the serial
port (the guest running again), signal it and reap it. Cycles run 1, 2, 4,
8 and 16 at a time for a fixed count; the rate is completed cycles over the
wall time. build/bench/cycles-driver (C, one poll loop, SCHED_FIFO with
its children reset to normal) drives them: the Python harness this script
used to be cost more CPU per cycle than ember. Each cycle is split, on the
host's monotonic clock, into
  spawn:    posix_spawn returning in the driver,
  running:  spawn to the first '.' (exec, VM build, state load, first
            KVM_RUN, the guest's first port write),
  exit:     SIGKILL (or SIGTERM: ember's own orderly exit) to the process
            reaped (threads end, fds close: the host frees the VM, in-kernel
            PIC/IOAPIC/PIT included, before the parent can reap),
and CPU: the child's user+system time (wait4; guest time included), the
part before the VM ran (ember's own "us of CPU" log line), and the
driver's own CPU per cycle. 2 CPUs over the CPU per cycle bounds the rate
however many run at a time; the wall times above are largely sleeping.
Peers in the same run, interleaved round by round: QEMU -M microvm
restoring the same guest with -incoming (fewer cycles: it is ~5x slower),
and the floor: a plain host process (sh printing '.', then sleep) spawned,
killed and reaped by the same driver.
Then an idle restored clone's memory beside an idle QEMU clone's: RSS and
private (Private_Clean + Private_Dirty) from smaps_rollup, and the
mappings that hold ember's private part.
"""
import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from restore import Ember, Qemu, kill  # noqa: E402
from stats import pct  # noqa: E402

LEVELS = (1, 2, 4, 8, 16)


DRIVER = "build/bench/cycles-driver"


def drive(cmd, n, parallel, sig="KILL"):
    """(cycles per second, driver CPU per cycle (s), [(spawn, running, exit,
    cpu, start_cpu or None)] in seconds) for @n cycles of @cmd, @parallel at
    a time."""
    out = subprocess.run([os.path.abspath(DRIVER), str(n), str(parallel), sig, *cmd],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode:
        sys.exit(f"cycles-driver failed: {out.stderr[-2000:]}")
    parts, rate, drv = [], 0.0, 0.0
    for line in out.stdout.splitlines():
        f = line.split()
        if f[0] == "cycle":
            us = [int(x) for x in f[1:]]
            parts.append((us[0] / 1e6, us[1] / 1e6, us[2] / 1e6, (us[3] + us[4]) / 1e6,
                          us[5] / 1e6 if us[5] >= 0 else None))
        elif f[0] == "total":
            rate = int(f[1]) / (int(f[2]) / 1e6)
            drv = (int(f[3]) + int(f[4])) / 1e6 / int(f[1])
    return rate, drv, parts


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


def rollup(pid):
    """KiB: RSS and private (Private_Clean + Private_Dirty) of @pid."""
    roll = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                roll[parts[0][:-1]] = int(parts[1])
    return roll.get("Rss", 0), roll.get("Private_Clean", 0) + roll.get("Private_Dirty", 0)


def qemu_clone(qemu):
    p = subprocess.Popen(qemu.base + ["-incoming", f"exec:cat {qemu.file}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if select.select([p.stdout], [], [], 1)[0] and b"." in os.read(p.stdout.fileno(), 65536):
            return p
    kill(p)
    sys.exit("no tick from the QEMU clone")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=100, help="ember cycles per level and round")
    ap.add_argument("--qemu-cycles", type=int, default=16)
    ap.add_argument("--mib", type=int, default=128)
    ap.add_argument("--ember", action="append",
                    help="ember binary; give it twice to compare two builds in one run")
    ap.add_argument("--guest", default="build/guest/hello.elf")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    a = ap.parse_args()
    embers = [os.path.abspath(e) for e in (a.ember or ["build/ember"])]
    with tempfile.TemporaryDirectory(prefix="ember-cycles-") as work:
        emb = Ember(embers[0], os.path.abspath(a.guest), work, a.mib)
        st, mem, _, _ = emb.snapshot()
        qemu = Qemu(a.qemu, os.path.abspath(a.guest), work, a.mib)
        qemu.snapshot()
        kill(emb.restore_cli(st, mem)[0])  # warm the page cache
        ember_args = ["--no-api", "--restore", st, "--mem", mem, "--resume"]
        contenders = {}
        for i, e in enumerate(embers):
            tag = "ember" if len(embers) == 1 else f"ember#{i + 1}"
            contenders[tag] = ([e, *ember_args], a.cycles, "KILL")
            contenders[tag + " TERM"] = ([e, *ember_args], a.cycles, "TERM")
        contenders["qemu"] = (qemu.base + ["-incoming", f"exec:cat {qemu.file}"], a.qemu_cycles, "KILL")
        contenders["floor"] = (["/bin/sh", "-c", "echo .; exec sleep 1000"], a.cycles, "KILL")
        rates = {(c, lv): [] for c in contenders for lv in LEVELS}
        parts = {(c, lv): [] for c in contenders for lv in LEVELS}
        drv = {c: [] for c in contenders}
        for _ in range(a.rounds):
            for lv in LEVELS:
                for c, (cmd, n, sig) in contenders.items():
                    if sig == "TERM" and lv not in (1, 16):
                        continue
                    r, d, ps = drive(cmd, n, lv, sig)
                    rates[(c, lv)].append(r)
                    parts[(c, lv)].extend(ps)
                    drv[c].append(d)

        # Two clones of each: with one alone, pages of the binary that no
        # other process maps count as private.
        mems = []
        for e in embers:
            emb.ember = e
            p, _ = emb.restore_cli(st, mem)
            q, _ = emb.restore_cli(st, mem)
            time.sleep(0.5)
            mems.append((e, rollup(q.pid), private_split(q.pid, mem)))
            kill(q)
            kill(p)
        p, q = qemu_clone(qemu), qemu_clone(qemu)
        time.sleep(0.5)
        qmem = rollup(q.pid)
        kill(q)
        kill(p)

    med = statistics.median
    print(f"restore-run-teardown cycles: {a.mib} MiB guest, 1 vCPU, {os.cpu_count()} host CPUs, "
          f"{a.rounds} rounds of {a.cycles} cycles (QEMU {a.qemu_cycles}) per level, "
          f"driven by {DRIVER}")
    for i, e in enumerate(embers):
        if len(embers) > 1:
            print(f"  ember#{i + 1}: {e}")
    print(f"  {'cycles per second':<56} {'min':>9} {'median':>9} {'max':>9}")
    for lv in LEVELS:
        for c in contenders:
            v = rates[(c, lv)]
            if v:
                label = {"qemu": "qemu microvm -incoming", "floor": "host process (sh)"}.get(
                    c, c + " --restore")
                print(f"  {label + f', {lv} at a time':<56} {min(v):9.0f} {med(v):9.0f} {max(v):9.0f}")
        e0 = "ember" if len(embers) == 1 else "ember#1"
        print(f"    {e0} / qemu {med(rates[(e0, lv)]) / med(rates[('qemu', lv)]):.1f}x, "
              f"{e0} / floor {med(rates[(e0, lv)]) / med(rates[('floor', lv)]):.2f}")
    print(f"  {'per cycle (ms)':<56} {'min':>9} {'median':>9} {'p95':>9}")
    for lv in (1, 2, 16):
        for c in contenders:
            ps = parts[(c, lv)]
            if not ps:
                continue
            sig = contenders[c][2]
            print(ms_row(f"{c}, {lv} at a time: spawn (posix_spawn)", [x[0] for x in ps]))
            print(ms_row(f"{c}, {lv} at a time: spawn -> guest running", [x[1] for x in ps]))
            print(ms_row(f"{c}, {lv} at a time: SIG{sig} -> reaped", [x[2] for x in ps]))
            print(ms_row(f"{c}, {lv} at a time: process CPU (user+sys)", [x[3] for x in ps]))
            start = [x[4] for x in ps if x[4] is not None]
            if start:
                print(ms_row("  of which start, up to the VM running (own log)", start))
                print(ms_row("  of which first KVM_RUN, guest and exit",
                             [x[3] - x[4] for x in ps if x[4] is not None]))
    print(f"  {'driver CPU per cycle (ms)':<56} {'':>9} {'median':>9}")
    for c in contenders:
        print(f"  {c:<56} {'':>9} {med(drv[c]) * 1000:9.2f}")
    for c in contenders:
        if not c.startswith("ember") or c.endswith("TERM"):
            continue
        cpu = med([x[3] for lv in LEVELS for x in parts[(c, lv)]])
        d = med(drv[c])
        print(f"  {c}: median CPU per cycle {cpu * 1000:.2f} ms + driver {d * 1000:.2f} ms: "
              f"at most {os.cpu_count() / (cpu + d):.0f} cycles per second on {os.cpu_count()} "
              f"CPUs (work the kernel defers to its own threads not counted)")
    print("  idle restored clone, a second one alive (smaps_rollup, KiB):")
    print(f"    {'':<40} {'RSS':>8} {'private':>8}")
    for e, (rss, private), _ in mems:
        print(f"    {'ember ' + os.path.relpath(e):<40} {rss:8d} {private:8d}")
    print(f"    {'qemu microvm -incoming':<40} {qmem[0]:8d} {qmem[1]:8d}")
    for e, _, (rss, private, dirty, top) in mems:
        print(f"  {os.path.relpath(e)}: private by mapping (KiB private, dirty):")
        for kb, d, n in top[:8]:
            print(f"    {kb:6d} {d:6d}  {n}")


if __name__ == "__main__":
    main()
