#!/usr/bin/python3
"""Restore benchmark: how fast a snapshotted guest runs again.

The guest is the hello test guest with tick=N: at ring 3 it prints '.' on
the serial port every N TSC cycles (about 10 us). It is snapshotted while
ticking; "restored" means the first '.' the restored guest writes (a port
write after resume), timestamped on the host's monotonic clock.

For 128 MiB and 1 GiB guests, in one run:
  - ember restore: from process start (--restore --resume; memory File,
    Uffd, Uffd with the working set a first Uffd restore recorded
    prefetched) and from the PUT /snapshot/load request (process already
    up and waiting, File; pre-warmed to the snapshot's shape, pre-warmed
    empty, not pre-warmed) to the first '.';
  - where each load's time goes (ember's Debug breakdown, from the
    request's arrival or the process start to the first KVM_RUN);
  - ember cold boot of the same guest to its first '.';
  - QEMU -M microvm restore (-incoming from a file its own migrate wrote)
    of the same guest, from process start to the first '.';
  - snapshot create time, Full and Diff (API request latency);
  - restores per second sustained (start, first '.', kill; 2 at a time);
  - RSS of an idle restored clone, split into guest pages and the rest.
Runs alternate between contenders so drift hits all alike.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/integration"))
from api_client import Api  # noqa: E402
from stats import pct  # noqa: E402

TICK = 30000


def first_dot(p, t0, timeout=20.0):
    """Seconds from t0 until @p writes its first '.' to stdout."""
    deadline = time.monotonic() + timeout
    fd = p.stdout.fileno()
    os.set_blocking(fd, False)
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.00002)
            continue
        if not chunk:
            break
        if b"." in chunk:
            return time.monotonic() - t0
    p.kill()
    sys.exit(f"no tick from {p.args[0]}: {p.stderr.read()[-2000:] if p.stderr else ''}")


def kill(p):
    p.kill()
    p.wait()


def wait_path(path, timeout=10):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"{path} never appeared")
        time.sleep(0.0005)


class Ember:
    def __init__(self, ember, guest, work, mib):
        self.ember, self.guest, self.work, self.mib = ember, guest, work, mib

    def spawn(self, *args):
        return subprocess.Popen([self.ember, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def boot_with_api(self, sock, track):
        cfg = os.path.join(self.work, "vm.json")
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": self.guest, "boot_args": f"tick={TICK}"},
                       "machine-config": {"vcpu_count": 1, "mem_size_mib": self.mib,
                                          "track_dirty_pages": track}}, f)
        p = self.spawn("--api-sock", sock, "--config-file", cfg)
        first_dot(p, time.monotonic())
        return p, Api(sock)

    def snapshot(self):
        """A Full snapshot of a ticking guest; create times for Full and Diff."""
        sock = os.path.join(self.work, "snap.sock")
        p, api = self.boot_with_api(sock, track=True)
        st, mem = os.path.join(self.work, "st"), os.path.join(self.work, "mem")
        full, diff = [], []
        drain = threading.Thread(target=lambda: p.stdout.read(), daemon=True)
        drain.start()
        for i in range(10):
            assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
            kind = "Full" if i % 2 == 0 else "Diff"
            t0 = time.monotonic()
            r = api.call("PUT", "/snapshot/create", {
                "snapshot_path": st + ("" if kind == "Full" else ".diff"),
                "mem_file_path": mem + ("" if kind == "Full" else ".diff"), "snapshot_type": kind})
            (full if kind == "Full" else diff).append((time.monotonic() - t0) * 1000)
            if r[0] != 204:
                sys.exit(f"snapshot create failed: {r}")
            assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
            time.sleep(0.05)
        # The last Full snapshot is the one restored: take it from a fresh boot.
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        assert api.call("PUT", "/snapshot/create", {"snapshot_path": st, "mem_file_path": mem})[0] == 204
        kill(p)
        return st, mem, full, diff

    def restore_cli(self, st, mem, *extra, breakdown=None):
        """Process start (--restore) -> first '.'; with @breakdown, also
        ember's Debug breakdown of the load (from the process start)."""
        log = os.path.join(self.work, "cli.log")
        if breakdown is not None:
            open(log, "w").close()
            extra = (*extra, "--level", "Debug", "--log-path", log)
        t0 = time.monotonic()
        p = self.spawn("--no-api", "--restore", st, "--mem", mem, "--resume", *extra)
        dt = first_dot(p, t0)
        if breakdown is not None:
            kill(p)
            parse_breakdown(log, breakdown)
        return p, dt

    def restore_api(self, st, mem, breakdown=None, prewarm="shaped"):
        """Load request -> first '.'; with @breakdown (a dict of lists), also
        ember's own Debug breakdown of the load, in milliseconds per step.
        prewarm: "shaped", the waiting ember prepares a VM of the snapshot's
        shape (memory slots, irqchip, vCPU); "empty", an empty KVM VM (the
        last step's pre-warm); None, nothing (--no-prewarm); "default", no
        flag at all (an ember that has none)."""
        sock = os.path.join(self.work, "load.sock")
        if os.path.exists(sock):  # left by the last run's SIGKILL
            os.unlink(sock)
        log = os.path.join(self.work, "load.log")
        extra = ["--level", "Debug", "--log-path", log] if breakdown is not None else []
        if breakdown is not None:
            open(log, "w").close()
        if prewarm == "shaped":
            extra += ["--prewarm-shape", f"1,{self.mib}"]
        elif prewarm == "empty":
            extra += ["--prewarm-shape", "none"]
        elif prewarm is None:
            extra.append("--no-prewarm")
        p = self.spawn("--api-sock", sock, *extra)
        wait_path(sock)
        api = Api(sock)
        # A pooled ember has long been waiting when a load comes: GET /
        # passes through the VMM thread, so once it is answered the
        # pre-warm (done before that thread's loop) is over; the pause
        # lets the pre-started vCPU threads reach their wait.
        if api.call("GET", "/")[0] != 200:
            sys.exit("GET / failed on the waiting ember")
        time.sleep(0.01)
        t0 = time.monotonic()
        r = api.call("PUT", "/snapshot/load", {"snapshot_path": st, "resume_vm": True,
                                               "mem_backend": {"backend_type": "File",
                                                               "backend_path": mem}})
        if r[0] != 204:
            sys.exit(f"snapshot load failed: {r}")
        dt = first_dot(p, t0)
        kill(p)
        if breakdown is not None:
            parse_breakdown(log, breakdown)
        return dt

    def cold_boot(self):
        t0 = time.monotonic()
        p = self.spawn("--kernel", self.guest, "--mem-mib", str(self.mib), "--cmdline", f"tick={TICK}")
        dt = first_dot(p, t0)
        kill(p)
        return dt


class Qemu:
    def __init__(self, qemu, guest, work, mib):
        self.base = [qemu, "-M", "microvm", "-accel", "kvm", "-m", str(mib), "-nodefaults",
                     "-no-user-config", "-nographic", "-serial", "stdio", "-kernel", guest,
                     "-append", f"tick={TICK}"]
        self.work = work
        self.file = os.path.join(work, "qemu.migrate")

    def snapshot(self):
        mon = os.path.join(self.work, "qemu.mon")
        p = subprocess.Popen(self.base + ["-monitor", f"unix:{mon},server,nowait"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first_dot(p, time.monotonic())
        wait_path(mon)
        s = socket.socket(socket.AF_UNIX)
        s.connect(mon)

        def cmd(c):
            s.sendall(c.encode() + b"\n")
            time.sleep(0.2)
            return s.recv(65536).decode(errors="replace")
        # Migrated running (the guest dirties almost nothing): the incoming
        # side then starts it by itself, as ember's --resume does.
        cmd(f'migrate "exec:cat > {self.file}"')
        for _ in range(200):
            if "completed" in cmd("info migrate"):
                break
        else:
            sys.exit("qemu migration to a file did not complete")
        s.close()
        kill(p)

    def restore(self):
        t0 = time.monotonic()
        p = subprocess.Popen(self.base + ["-incoming", f"exec:cat {self.file}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        dt = first_dot(p, t0)
        kill(p)
        return dt


def parse_breakdown(log, into):
    """Add the steps of ember's 'snapshot load breakdown' and 'first KVM_RUN
    ... after the snapshot load was asked for' Debug lines in @log to @into."""
    with open(log) as f:
        text = f.read()
    m = re.search(r"snapshot load breakdown \(us\): (.*)", text)
    if not m:
        sys.exit(f"no load breakdown in ember's log: {text[-2000:]}")
    steps = re.sub(r"\((pre-warmed|new) VM, ", "(", m.group(1))
    for name, us in re.findall(r"([a-z+ ]+?) (\d+)", steps.replace("(", ",").replace(")", "")):
        into.setdefault(name.strip(" ,"), []).append(int(us) / 1000)
    m = re.search(r"first KVM_RUN (\d+) us after the snapshot load was asked for", text)
    if m:
        into.setdefault("first KVM_RUN, from request / process start", []).append(
            int(m.group(1)) / 1000)


def rss_split(pid, mem_path):
    """KiB: (RSS, guest memory mapping's RSS, private (unshared) memory
    outside the guest mapping)."""
    total = guest = private = 0
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and "-" in parts[0] and ":" in parts[3]:
                current = parts[5] if len(parts) > 5 else ""
            elif parts and parts[0] == "Rss:":
                total += int(parts[1])
                if current == mem_path:
                    guest += int(parts[1])
            elif parts and parts[0] in ("Private_Clean:", "Private_Dirty:") and current != mem_path:
                private += int(parts[1])
    return total, guest, private


def rate(emb, st, mem, n, parallel):
    """Restores per second: start, first '.', kill; @parallel at a time."""
    t0 = time.monotonic()
    done = 0
    lock = threading.Lock()

    def worker():
        nonlocal done
        while True:
            with lock:
                if done >= n:
                    return
                done += 1
            p, _ = emb.restore_cli(st, mem)
            p.send_signal(signal.SIGKILL)
            p.wait()
    ts = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n / (time.monotonic() - t0)


def row(name, v):
    return f"  {name:<50} {min(v):9.2f} {statistics.median(v):9.2f} {pct(v, 95):9.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--sizes", default="128,1024")
    ap.add_argument("--ember", default="build/ember")
    ap.add_argument("--guest", default="build/guest/hello.elf")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    a = ap.parse_args()
    for mib in map(int, a.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="ember-restore-") as work:
            emb = Ember(os.path.abspath(a.ember), os.path.abspath(a.guest), work, mib)
            st, mem, full, diff = emb.snapshot()
            qemu = Qemu(a.qemu, os.path.abspath(a.guest), work, mib)
            qemu.snapshot()
            res = {"cli": [], "uffd": [], "prefetch": [], "api": [], "api_empty": [],
                   "api_cold": [], "cold": [], "qemu": []}
            steps, steps_empty, steps_cold, steps_cli = {}, {}, {}, {}
            ws = os.path.join(work, "ws")
            kill(emb.restore_cli(st, mem, "--uffd", "--ws-record", ws)[0])
            for _ in range(2):  # warm the page cache
                kill(emb.restore_cli(st, mem)[0])
                qemu.restore()
            for _ in range(a.runs):
                p, dt = emb.restore_cli(st, mem)
                kill(p)
                res["cli"].append(dt * 1000)
                p, dt = emb.restore_cli(st, mem, "--uffd")
                kill(p)
                res["uffd"].append(dt * 1000)
                p, dt = emb.restore_cli(st, mem, "--uffd", "--ws-prefetch", ws)
                kill(p)
                res["prefetch"].append(dt * 1000)
                res["api"].append(emb.restore_api(st, mem) * 1000)
                res["api_empty"].append(emb.restore_api(st, mem, prewarm="empty") * 1000)
                res["api_cold"].append(emb.restore_api(st, mem, prewarm=None) * 1000)
                emb.restore_api(st, mem, steps)
                emb.restore_api(st, mem, steps_empty, prewarm="empty")
                emb.restore_api(st, mem, steps_cold, prewarm=None)
                emb.restore_cli(st, mem, breakdown=steps_cli)
                res["cold"].append(emb.cold_boot() * 1000)
                res["qemu"].append(qemu.restore() * 1000)
            p, _ = emb.restore_cli(st, mem)
            time.sleep(0.5)
            total, guest_kb, private_kb = rss_split(p.pid, mem)
            kill(p)
            per_s = rate(emb, st, mem, 100, 2)
            print(f"restore benchmark: {mib} MiB guest, 1 vCPU, {a.runs} runs (ms)")
            print(f"  {'':<50} {'min':>9} {'median':>9} {'p95':>9}")
            print(row("ember: load request -> first guest port write", res["api"]))
            print(row("  same, empty VM pre-warmed (--prewarm-shape none)", res["api_empty"]))
            print(row("  same, no pre-warm (--no-prewarm)", res["api_cold"]))
            for title, st_ in (("shaped pre-warm", steps), ("empty pre-warm", steps_empty),
                               ("no pre-warm", steps_cold), ("--restore", steps_cli)):
                print(f"  where a load's time goes, {title} (ember's Debug log, separate runs):")
                for name, v in st_.items():
                    print(row("    " + name, v))
            print(row("ember: process start (--restore) -> first write", res["cli"]))
            print(row("  same, memory by userfaultfd", res["uffd"]))
            print(row("  same, userfaultfd + working-set prefetch", res["prefetch"]))
            print(row("ember: cold boot, process start -> first write", res["cold"]))
            print(row("qemu microvm: -incoming start -> first write", res["qemu"]))
            print(row("ember: snapshot create, Full", full))
            print(row("ember: snapshot create, Diff", diff))
            med = statistics.median
            print(f"  qemu restore / ember restore (process start, median): "
                  f"{med(res['qemu']) / med(res['cli']):.1f}x")
            print(f"  cold boot / ember restore (process start, median):    "
                  f"{med(res['cold']) / med(res['cli']):.1f}x")
            print(f"  restores per second, 2 at a time (start, first write, kill): {per_s:.0f}")
            print(f"  idle restored clone: RSS {total} KiB, of which guest pages {guest_kb} KiB; "
                  f"outside guest memory {total - guest_kb} KiB RSS, {private_kb} KiB private "
                  f"(not shared with other clones or processes)")
            print(f"  memory file on disk: {os.stat(mem).st_blocks * 512 // 1024} KiB of {mib * 1024} KiB")


if __name__ == "__main__":
    main()
