#!/usr/bin/env python3
"""Soak: ember must not leak over many boots or many API requests.

Two phases, both on real KVM guests and real files, ember run directly
($EMBER_BIN, default build/ember):

1. Boot/teardown cycles through the API. Each cycle starts ember with
   --api-sock, configures boot source, machine config, a drive and a vsock,
   InstanceStart, waits for the guest's serial output, then tears down as a
   Firecracker user would, by turns: SendCtrlAltDel to the hello guest (it
   prints the scan codes and exits 0), SIGTERM to the hello guest, SIGTERM
   to the blk guest while it loops its I/O on the drive. ember must exit 0
   with no ERROR line, its API and vsock sockets gone, no process left
   (child of the soak, in the cgroup below, or anything naming the soak's
   directory), the work
   directory holding only what the soak made, and the soak's own fds equal
   to before. After every cycle the soak samples the memory left charged
   to a memory cgroup (v1, below the soak's own) that holds every ember it
   starts, and the host's MemAvailable; the first must stay flat within
   CGROUP_ALLOWANCE_KIB. MemAvailable, which moves with everything else on
   a shared machine, is judged (HOST_MEM_ALLOWANCE_KIB) only where no such
   cgroup can be made.

2. One long-lived ember (the blk guest looping its I/O over the drive,
   32 MiB, a vsock, a logger, metrics) answering a seeded random mix of requests: GETs, PATCH
   /drives (the backing file swapped between two files), PUT /logger (refused
   after boot, as in Firecracker), FlushMetrics, PATCH /vm Paused/Resumed, PUT
   /snapshot/create while paused (files overwritten each time), invalid
   requests (bad JSON, unknown paths and methods, bad and mismatched ids,
   unknown fields, wrong types, calls at the wrong time, an oversized body)
   that must get their 4xx and a fault_message, fresh connections now and
   then, and vsock peers that send a bad handshake or CONNECT to a port
   nobody listens on (ember must close them), and clients that go away
   mid-request. ember's RSS (VmRSS), open fds and the kernel memory charged
   to its cgroup are taken after a warm-up, at ten checkpoints and at the
   end: fds must be equal, RSS may grow by at most --rss-allowance-kib (not
   judged for a sanitizer build, whose quarantine holds freed memory),
   kernel memory by KMEM_ALLOWANCE_KIB.

Exit status 0 when every check held, 1 with a SOAK FAILED line otherwise.
Standard library only.
"""
import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from api_client import Api  # noqa: E402  (the integration tests' keep-alive client)

GUESTS = ROOT / "build" / "guest"
CI_CYCLES, CI_REQUESTS = 300, 4000
FULL_CYCLES, FULL_REQUESTS = 1000, 10000
MEM_MIB_CYCLE, MEM_MIB_LONG = 16, 32
KEYS = "keys: 0x14 0x11 0xe0 0x71"
# What a sanitizer build (ASan, UBSan, LSan) writes to stderr when it finds something.
SANITIZER_REPORT = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                    "WARNING: AddressSanitizer")
# Memory the cycles' embers leave charged to their cgroup after they exit
# (kernel objects, page cache of the files they wrote) may grow this much
# from the first tenth of the cycles (after a tenth as warm-up) to the last:
# it wanders by about a MiB (slabs freed lazily, per-cpu charge batches);
# one VM's kernel state left behind per cycle would pass it within tens of
# cycles.
CGROUP_ALLOWANCE_KIB = 4 << 10
# Without such a cgroup, the host's MemAvailable is judged instead: it moves
# with everything else on the machine, so only a steep fall is a finding.
HOST_MEM_ALLOWANCE_KIB = 128 << 10
# Kernel memory charged to the long-lived ember's cgroup (io_uring rings,
# epoll items, sockets, dentries and inodes of the files it opens) may grow
# this much from warm-up to end: it wanders by about 200 KiB, and each
# PUT /logger's file, deleted by the soak, leaves a negative dentry (about
# 200 bytes) that stays charged.
KMEM_ALLOWANCE_KIB = 2 << 10


class SoakError(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise SoakError(msg)


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise SoakError(f"/proc/meminfo has no {key}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SoakError(f"/proc/{pid}/status has no VmRSS")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def own_fds():
    """The soak's own open fds (with the one listdir holds while it reads,
    which takes the same number whenever the others are the same)."""
    return sorted(int(x) for x in os.listdir("/proc/self/fd"))


def children():
    me = os.getpid()
    with open(f"/proc/{me}/task/{me}/children") as f:
        return f.read().split()


def procs_naming(text):
    """Processes (other than the soak) whose command line contains @text."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(d))
        except OSError:
            pass
    return found


class MemCgroup:
    """A cgroup v1 memory group below the soak's own that holds every ember
    the cycles start. What stays charged to it once they have exited is
    theirs alone, unlike the host's MemAvailable, which moves with whatever
    else runs on the machine. Absent (.why says why) without the v1 memory
    controller or the right to make a group."""

    def __init__(self):
        self.path, self.why = None, ""
        try:
            with open("/proc/self/cgroup") as f:
                own = next(x.strip().split(":", 2)[2] for x in f if x.split(":")[1] == "memory")
        except (OSError, StopIteration, IndexError):
            self.why = "no cgroup v1 memory controller"
            return
        parent = Path("/sys/fs/cgroup/memory" + own)
        for stale in parent.glob("ember-soak-*"):  # of a soak killed before its clean-up
            pid = stale.name.rsplit("-", 1)[1]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                try:
                    stale.rmdir()
                except OSError:
                    pass
        path = parent / f"ember-soak-{os.getpid()}"
        try:
            path.mkdir()
        except OSError as e:
            self.why = f"cannot make {path}: {e.strerror}"
            return
        self.path = path

    def preexec(self):
        """In the child, before exec: join the group."""
        if self.path:
            with open(self.path / "cgroup.procs", "w") as f:
                f.write("0")

    def procs(self):
        """Processes in the group: whatever an ember started and left behind."""
        if not self.path:
            return []
        with open(self.path / "cgroup.procs") as f:
            return f.read().split()

    def usage_kib(self, what="memory.usage_in_bytes"):
        with open(self.path / what) as f:
            return int(f.read()) >> 10

    def remove(self):
        """Kill what is left in the group (the soak's own descendants), then
        remove it."""
        deadline = time.monotonic() + 5
        while self.path:
            for pid in self.procs():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.path.rmdir()
                self.path = None
            except OSError:
                if time.monotonic() > deadline:
                    print(f"soak: cannot remove {self.path}", file=sys.stderr)
                    return
                time.sleep(0.05)


def trend(samples):
    """After a tenth as warm-up: the medians of the first and last tenth of
    what is left, and the least-squares slope per sample."""
    rest = samples[len(samples) // 10:]
    k = max(1, len(rest) // 10)
    return statistics.median(rest[:k]), statistics.median(rest[-k:]), slope(rest)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def slope(ys):
    """Least-squares slope of @ys against their index."""
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((i - mx) * (y - my) for i, y in enumerate(ys)) / sum((i - mx) ** 2 for i in range(n))


class Ember:
    """One ember process with --api-sock; serial output and stderr to files."""

    def __init__(self, binary, work, sock, tag, preexec=None):
        self.sock = str(sock)
        self.out_path = work / f"{tag}.serial"
        self.err_path = work / f"{tag}.stderr"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            # --show-level: the checks look for ERROR lines.
            self.p = subprocess.Popen([binary, "--api-sock", self.sock, "--show-level"],
                                      stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=err, preexec_fn=preexec)
        self.api = None
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if self.p.poll() is not None:
                raise SoakError(f"ember exited with {self.p.returncode} before opening its "
                                f"socket: {self.stderr()}")
            check(time.monotonic() < deadline, "ember did not open its API socket in 10 s")
            time.sleep(0.001)
        self.api = Api(self.sock)

    def stderr(self):
        return self.err_path.read_text(errors="replace")[-2000:]

    def serial(self):
        return self.out_path.read_text(errors="replace").replace("\r\n", "\n")

    def expect(self, method, path, want, body=None, raw=None):
        try:
            status, resp = self.api.call(method, path, body=body, raw=raw)
        except (OSError, ValueError) as e:
            raise SoakError(f"{method} {path}: no answer ({e!r}); ember "
                            f"{'exited ' + str(self.p.poll()) if self.p.poll() is not None else 'alive'}: "
                            f"{self.stderr()}")
        if status != want:
            raise SoakError(f"{method} {path} {body if raw is None else raw[:80]!r}: "
                            f"status {status}, expected {want}: {resp}")
        if status >= 400:
            check(isinstance(resp, dict) and isinstance(resp.get("fault_message"), str)
                  and resp["fault_message"], f"{method} {path}: {status} without a fault_message: {resp}")
        return resp

    def wait_serial(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text not in self.serial():
            if self.p.poll() is not None:
                raise SoakError(f"ember exited with {self.p.returncode} before the guest printed "
                                f"{text!r}: {self.serial()[-500:]!r} {self.stderr()}")
            check(time.monotonic() < deadline, f"the guest did not print {text!r} in {timeout} s "
                  f"(serial: {self.serial()[-500:]!r})")
            time.sleep(0.001)

    def wait_exit(self, want, timeout=20):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SoakError(f"ember did not exit within {timeout} s (hang)")
        finally:
            if self.api:
                self.api.close()
        check(rc == want, f"ember exited with {rc}, expected {want}: {self.stderr()}")
        text = self.err_path.read_text(errors="replace")
        errors = [x for x in text.splitlines() if "ERROR" in x]
        check(not errors, f"ember logged errors: {errors[:5]}")
        check(not any(r in text for r in SANITIZER_REPORT), f"sanitizer report: {text[-3000:]}")

    def kill(self):
        if self.api:
            self.api.close()
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


# ---- phase 1: boot and teardown cycles ---------------------------------

CYCLE_KINDS = ("ctrl-alt-del", "sigterm", "sigterm-under-io")


def one_cycle(binary, work, i, disk, preexec=None):
    kind = CYCLE_KINDS[i % len(CYCLE_KINDS)]
    sock, vsock = work / "api.sock", work / "v.sock"
    t0 = time.monotonic()
    e = Ember(binary, work, sock, "cycle", preexec)
    try:
        if kind == "sigterm-under-io":
            e.expect("PUT", "/boot-source", 204, {"kernel_image_path": str(GUESTS / "blk.elf"),
                                                  "boot_args": "mode=2"})
        else:
            e.expect("PUT", "/boot-source", 204, {"kernel_image_path": str(GUESTS / "hello.elf"),
                                                  "boot_args": "cad=1"})
        e.expect("PUT", "/machine-config", 204, {"vcpu_count": 1 + i % 2,
                                                 "mem_size_mib": MEM_MIB_CYCLE})
        e.expect("PUT", "/drives/d0", 204, {"drive_id": "d0", "path_on_host": str(disk),
                                            "is_root_device": False, "is_read_only": False})
        e.expect("PUT", "/vsock", 204, {"guest_cid": 3, "uds_path": str(vsock)})
        e.expect("PUT", "/actions", 204, {"action_type": "InstanceStart"})
        if kind == "sigterm-under-io":
            e.wait_serial("blk: pass 1 ok\n")
            e.p.send_signal(signal.SIGTERM)
        else:
            e.wait_serial("waiting for ctrl-alt-del\n")
            if kind == "ctrl-alt-del":
                e.expect("PUT", "/actions", 204, {"action_type": "SendCtrlAltDel"})
            else:
                e.p.send_signal(signal.SIGTERM)
        e.wait_exit(0)
        if kind == "ctrl-alt-del":
            check(KEYS in e.serial(), f"the guest did not get Ctrl+Alt+Del: {e.serial()!r}")
        if kind == "sigterm-under-io":
            check("failed" not in e.serial(), f"the blk guest saw a bad pass: {e.serial()[-300:]!r}")
    finally:
        e.kill()
    return time.monotonic() - t0, kind


def phase_cycles(binary, work, n, cg, log):
    disk = work / "cycle-disk.img"
    with open(disk, "wb") as f:
        f.truncate(64 << 10)
    base_files = None
    base_fds = None
    times, mem, charged = [], [], []
    t_phase = time.monotonic()
    for i in range(n):
        try:
            dt, kind = one_cycle(binary, work, i, disk, cg.preexec)
        except SoakError as e:
            raise SoakError(f"cycle {i}: {e}")
        times.append(dt)
        check(not os.path.exists(work / "api.sock"), f"cycle {i} ({kind}): the API socket was left behind")
        check(not os.path.exists(work / "v.sock"), f"cycle {i} ({kind}): the vsock socket was left behind")
        kids = children()
        check(not kids, f"cycle {i} ({kind}): child processes left: {kids}")
        left = procs_naming(str(work)) + cg.procs()
        check(not left, f"cycle {i} ({kind}): processes left (naming {work} or in the cgroup): {left}")
        files = sorted(os.listdir(work))
        fds = own_fds()
        if base_files is None:
            base_files, base_fds = files, fds
        check(files == base_files, f"cycle {i} ({kind}): files in the work directory changed: "
              f"{base_files} -> {files}")
        check(fds == base_fds, f"cycle {i} ({kind}): the soak's open fds changed: {base_fds} -> {fds}")
        mem.append(meminfo("MemAvailable"))
        if cg.path:
            charged.append(cg.usage_kib())
        if (i + 1) % max(1, n // 10) == 0:
            log(f"  cycle {i + 1}/{n}: last {dt * 1e3:.1f} ms, MemAvailable {mem[-1] >> 10} MiB"
                + (f", left charged to the cgroup {charged[-1]} KiB" if charged else ""))
    return {"cycles": n, "wall_s": time.monotonic() - t_phase, "times": times,
            "own_fds": len(base_fds or []) - 1, "mem": trend(mem),
            "charged": trend(charged) if charged else None}


# ---- phase 2: one ember, many requests ---------------------------------

class LongRun:
    def __init__(self, binary, work, seed, cg, log):
        self.work, self.log, self.cg = work, log, cg
        self.rng = random.Random(seed)
        self.disks = [work / "long-a.img", work / "long-b.img"]
        for i, d in enumerate(self.disks):
            with open(d, "wb") as f:
                f.truncate(1 << 20)
        self.logs = work / "logs"
        self.logs.mkdir()
        self.snap_state, self.snap_mem = work / "snap.state", work / "snap.mem"
        self.metrics = work / "metrics.json"
        self.vsock = work / "long-v.sock"
        self.e = Ember(binary, work, work / "long.sock", "long", cg.preexec)
        self.pid = self.e.p.pid
        self.state = "Running"
        self.drive = 0
        self.log_n = 0
        self.requests = 0
        self.counts = {}
        self.snapshots = 0
        self.pending_vsock = []  # (socket, deadline)
        self.vsock_closed = 0
        self.abandoned = 0

    def call(self, name, method, path, want, body=None, raw=None):
        self.requests += 1
        self.counts[name] = self.counts.get(name, 0) + 1
        return self.e.expect(method, path, want, body=body, raw=raw)

    def log_path(self):
        return str(self.logs / f"{self.log_n:06d}.log")

    def boot(self):
        self.call("put-logger", "PUT", "/logger", 204, {"log_path": self.log_path(), "level": "Info"})
        self.call("put-metrics", "PUT", "/metrics", 204, {"metrics_path": str(self.metrics)})
        self.call("boot-source", "PUT", "/boot-source", 204, {
            "kernel_image_path": str(GUESTS / "blk.elf"), "boot_args": "mode=2"})
        self.call("machine-config", "PUT", "/machine-config", 204,
                  {"vcpu_count": 1, "mem_size_mib": MEM_MIB_LONG})
        self.call("put-drive", "PUT", "/drives/d0", 204, {
            "drive_id": "d0", "path_on_host": str(self.disks[0]), "is_root_device": False,
            "is_read_only": False})
        self.call("put-vsock", "PUT", "/vsock", 204, {"guest_cid": 3, "uds_path": str(self.vsock)})
        self.call("instance-start", "PUT", "/actions", 204, {"action_type": "InstanceStart"})
        self.e.wait_serial("blk: pass 1 ")
        self.t_boot = time.monotonic()

    def last_pass(self):
        """The number of the blk guest's last finished pass over its drive."""
        with open(self.e.out_path, "rb") as f:
            f.seek(max(0, os.stat(self.e.out_path).st_size - 4096))
            tail = f.read().decode(errors="replace")
        passes = re.findall(r"blk: pass (\d+) ", tail)
        return int(passes[-1]) if passes else 0

    # -- the operations, each one request (vsock ones: none) --

    def get_root(self):
        r = self.call("GET /", "GET", "/", 200)
        check(r.get("state") == self.state, f"GET / says {r.get('state')}, expected {self.state}")

    def get_machine(self):
        r = self.call("GET /machine-config", "GET", "/machine-config", 200)
        check(r.get("mem_size_mib") == MEM_MIB_LONG and r.get("vcpu_count") == 1, f"machine-config {r}")

    def get_version(self):
        self.call("GET /version", "GET", "/version", 200)

    def get_vm_config(self):
        r = self.call("GET /vm/config", "GET", "/vm/config", 200)
        check(r["drives"][0]["path_on_host"] == str(self.disks[self.drive]),
              f"vm/config drive {r['drives'][0]}, expected {self.disks[self.drive]}")
        check(r["logger"]["log_path"] == self.log_path(), f"vm/config logger {r['logger']}")

    def patch_drive(self):
        self.drive ^= 1
        self.call("PATCH /drives", "PATCH", "/drives/d0", 204,
                  {"drive_id": "d0", "path_on_host": str(self.disks[self.drive])})

    def patch_limiter(self):
        # Buckets far above what the guest does: this exercises the limiter's
        # replacement, not throttling.
        self.call("PATCH /drives limiter", "PATCH", "/drives/d0", 204, {
            "drive_id": "d0", "rate_limiter": {
                "bandwidth": {"size": 1 << 30, "refill_time": 100},
                "ops": {"size": 1 << 20, "one_time_burst": self.rng.randrange(1 << 20),
                        "refill_time": 100}}})

    def put_logger(self):
        """After boot the logger is fixed, as in Firecracker: 400, and
        nothing opened or changed."""
        refused = self.logs / "refused.log"
        self.call("PUT /logger after boot", "PUT", "/logger", 400, {
            "log_path": str(refused), "level": self.rng.choice(["Info", "Warning", "Debug"])})
        check(not refused.exists(), "a refused PUT /logger created its file")

    def flush_metrics(self):
        self.call("FlushMetrics", "PUT", "/actions", 204, {"action_type": "FlushMetrics"})

    def pause(self):
        self.call("PATCH /vm", "PATCH", "/vm", 204, {"state": "Paused"})
        self.state = "Paused"

    def resume(self):
        self.call("PATCH /vm", "PATCH", "/vm", 204, {"state": "Resumed"})
        self.state = "Running"

    def snapshot(self):
        self.call("PUT /snapshot/create", "PUT", "/snapshot/create", 204, {
            "snapshot_path": str(self.snap_state), "mem_file_path": str(self.snap_mem),
            "snapshot_type": "Full"})
        self.snapshots += 1
        with open(self.snap_state, "rb") as f:
            check(f.read(8) == b"EMBERSNP", "the snapshot state file does not start with EMBERSNP")
        size = os.stat(self.snap_mem).st_size
        check(size == MEM_MIB_LONG << 20, f"the memory file has {size} bytes")

    def invalid(self):
        running = self.state == "Running"
        cases = [
            ("bad JSON", "PATCH", "/drives/d0", 400, None, '{"drive_id": "d0", '),
            ("bad JSON", "PUT", "/logger", 400, None, "[not json"),
            ("unknown path", "GET", "/nope", 400, None, None),
            ("unknown path", "PUT", "/drives", 400, {"drive_id": "d0"}, None),
            ("unknown method", "DELETE", "/machine-config", 400, None, None),
            ("bad id", "PATCH", "/drives/nope", 400, {"drive_id": "nope",
                                                      "path_on_host": str(self.disks[0])}, None),
            ("id mismatch", "PATCH", "/drives/d0", 400, {"drive_id": "d1",
                                                         "path_on_host": str(self.disks[0])}, None),
            ("missing file", "PATCH", "/drives/d0", 400, {"drive_id": "d0",
                                                          "path_on_host": str(self.work / "none")}, None),
            ("unknown field", "PATCH", "/vm", 400, {"state": "Paused", "frob": 1}, None),
            ("bad value", "PATCH", "/vm", 400, {"state": "Sleeping"}, None),
            ("wrong type", "PUT", "/logger", 400, {"log_path": 5}, None),
            ("bad action", "PUT", "/actions", 400, {"action_type": "Nope"}, None),
            ("after boot", "PUT", "/machine-config", 400, {"vcpu_count": 1, "mem_size_mib": 32}, None),
            ("after boot", "PUT", "/actions", 400, {"action_type": "InstanceStart"}, None),
            ("metrics twice", "PUT", "/metrics", 400, {"metrics_path": str(self.metrics)}, None),
            ("too big", "PUT", "/boot-source", 400, None, json.dumps({"kernel_image_path": "x" * 60000})),
        ]
        if running:
            cases.append(("snapshot while running", "PUT", "/snapshot/create", 400, {
                "snapshot_path": str(self.work / "x.state"),
                "mem_file_path": str(self.work / "x.mem")}, None))
        what, method, path, want, body, raw = self.rng.choice(cases)
        self.call("invalid: " + what, method, path, want, body=body, raw=raw)

    def reconnect(self):
        self.e.api.close()
        self.e.api = Api(self.e.sock)

    def abandon(self):
        """A client that goes away: after a whole request without reading
        the answer, or in the middle of a request's body."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.e.sock)
        if self.rng.random() < 0.5:
            s.sendall(b"GET /vm/config HTTP/1.1\r\nHost: localhost\r\n\r\n")
        else:
            s.sendall(b"PUT /logger HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"log_path\": ")
        s.close()
        self.abandoned += 1

    def vsock_peer(self, line):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.vsock))
        s.sendall(line)
        # A bad handshake is dropped at once; a CONNECT nobody answers
        # after ember's 2 s connect timeout.
        self.pending_vsock.append((s, time.monotonic() + 10))

    def reap_vsock(self, wait=False):
        keep = []
        for s, deadline in self.pending_vsock:
            r, _, _ = select.select([s], [], [], max(0, deadline - time.monotonic()) if wait else 0)
            if not r:
                check(time.monotonic() < deadline, "ember kept a vsock peer open past its deadline")
                keep.append((s, deadline))
                continue
            try:
                data = s.recv(64)
            except ConnectionResetError:
                data = b""
            s.close()
            check(data == b"", f"ember answered a vsock peer nobody listens to: {data!r}")
            self.vsock_closed += 1
        self.pending_vsock = keep

    def step(self):
        if self.rng.random() < 0.03:
            self.reconnect()
        if self.rng.random() < 0.01:
            self.abandon()
        if self.rng.random() < 0.004:
            self.vsock_peer(b"BOGUS\n")
        if self.rng.random() < 0.002 and len(self.pending_vsock) < 8:
            self.vsock_peer(b"CONNECT 5000\n")
        self.reap_vsock()
        if self.state == "Running":
            ops = [(self.get_root, 12), (self.get_machine, 6), (self.get_vm_config, 6),
                   (self.get_version, 2), (self.patch_drive, 10), (self.patch_limiter, 2),
                   (self.put_logger, 6),
                   (self.flush_metrics, 2), (self.pause, 5), (self.invalid, 18)]
        else:
            ops = [(self.get_root, 8), (self.get_vm_config, 4), (self.snapshot, 8),
                   (self.resume, 6), (self.pause, 1), (self.patch_drive, 4),
                   (self.put_logger, 2), (self.invalid, 8)]
        fns, weights = zip(*ops)
        self.rng.choices(fns, weights)[0]()

    def expected_files(self):
        files = {"long-a.img", "long-b.img", "logs", "long.serial", "long.stderr", "metrics.json"}
        if self.snapshots:
            files |= {"snap.state", "snap.mem"}
        if self.e.p.poll() is None:
            files |= {"long.sock", "long-v.sock"}
        return sorted(files)

    def check_files(self):
        """Nothing but what the soak made: no snapshot of a running VM, no
        temporary files, one log file (the current one)."""
        files = sorted(os.listdir(self.work))
        check(files == self.expected_files(), f"files: {files}, expected {self.expected_files()}")
        logs = os.listdir(self.logs)
        check(logs == [os.path.basename(self.log_path())], f"log files: {logs}")

    def step_checked(self):
        try:
            self.step()
        except SoakError as e:
            raise SoakError(f"request {self.requests} ({self.state}): {e}")

    def sample(self):
        """ember's RSS and fds, and the kernel memory charged to its cgroup."""
        self.reap_vsock(wait=True)
        self.check_files()
        kmem = self.cg.usage_kib("memory.kmem.usage_in_bytes") if self.cg.path else None
        return rss_kib(self.pid), fd_count(self.pid), kmem

    def finish(self):
        if self.state == "Paused":
            self.resume()
        # The current log file takes lines: a bad request logs a warning.
        size = os.stat(self.log_path()).st_size
        self.call("invalid: unknown path", "GET", "/nope", 400)
        deadline = time.monotonic() + 5
        while os.stat(self.log_path()).st_size == size:
            check(time.monotonic() < deadline, "the last PUT /logger file gets no lines")
            time.sleep(0.01)
        # The guest's I/O still flows after all the swaps, pauses and snapshots.
        seen = self.last_pass()
        deadline = time.monotonic() + 20
        while self.last_pass() <= seen:
            check(self.e.p.poll() is None, f"ember exited with {self.e.p.returncode}: {self.e.stderr()}")
            check(time.monotonic() < deadline, f"the blk guest is stuck after pass {seen}")
            time.sleep(0.01)
        self.e.p.send_signal(signal.SIGTERM)
        self.e.wait_exit(0)
        check(not os.path.exists(self.e.sock), "the API socket was left behind")
        check(not os.path.exists(self.vsock), "the vsock socket was left behind")
        self.check_files()
        # A line at boot, one per FlushMetrics, one every 60 s, one at exit,
        # each a whole JSON object in Firecracker's schema.
        text = self.metrics.read_text()
        for line in text.splitlines():
            m = json.loads(line)
            check({"api_server", "block", "net", "vcpu", "put_api_requests", "ember"} <= set(m),
                  f"a metrics line lacks Firecracker's sections: {sorted(m)}")
        lines = len(text.splitlines())
        want = 2 + self.counts.get("FlushMetrics", 0)
        periodic = int((time.monotonic() - self.t_boot) / 60) + 1
        check(want <= lines <= want + periodic, f"metrics file has {lines} lines, expected {want} "
              f"(+ up to {periodic} periodic)")


def phase_requests(binary, work, n, seed, cg, log):
    """Returns the figures; requests/s counts only the time spent in requests
    (not the samples, which wait for ember's vsock connect timeout)."""
    run = LongRun(binary, work, seed, cg, log)
    t_phase = time.monotonic()
    try:
        run.boot()
        warmup = min(n, max(500, n // 10))
        while run.requests < warmup:
            run.step_checked()
        checkpoints = [(run.requests, *run.sample())]
        every = max(1, (n - warmup) // 10)
        busy = 0.0
        while run.requests < n:
            t = time.monotonic()
            run.step_checked()
            busy += time.monotonic() - t
            if (run.requests - warmup) % every == 0 or run.requests == n:
                checkpoints.append((run.requests, *run.sample()))
                _, rss, fds, kmem = checkpoints[-1]
                log(f"  request {run.requests}/{n}: RSS {rss} KiB, {fds} fds"
                    + (f", kernel memory charged {kmem} KiB" if kmem is not None else ""))
        measured = run.requests - warmup
        res = {
            "requests": run.requests, "measured": measured, "busy_s": busy,
            "rps": measured / busy if busy else 0.0, "warmup": warmup, "snapshots": run.snapshots,
            "rss_warm": checkpoints[0][1], "rss_end": checkpoints[-1][1],
            "fds_warm": checkpoints[0][2], "fds_end": checkpoints[-1][2],
            "kmem_warm": checkpoints[0][3], "kmem_end": checkpoints[-1][3],
            "checkpoints": checkpoints, "counts": run.counts, "vsock_closed": run.vsock_closed,
            "abandoned": run.abandoned,
        }
        run.finish()
        res["wall_s"] = time.monotonic() - t_phase
        return res
    finally:
        for s, _ in run.pending_vsock:
            s.close()
        run.e.kill()


# ---- main --------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true",
                    help=f"the large run: {FULL_CYCLES} cycles, {FULL_REQUESTS} requests")
    ap.add_argument("--cycles", type=int, help=f"boot/teardown cycles (default {CI_CYCLES})")
    ap.add_argument("--requests", type=int, help=f"API requests to one ember (default {CI_REQUESTS})")
    ap.add_argument("--rss-allowance-kib", type=int, default=256,
                    help="RSS growth allowed from warm-up to end (default 256 KiB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    cycles = args.cycles if args.cycles is not None else FULL_CYCLES if args.full else CI_CYCLES
    requests = args.requests if args.requests is not None else (
        FULL_REQUESTS if args.full else CI_REQUESTS)
    binary = os.environ.get("EMBER_BIN", str(ROOT / "build" / "ember"))
    # A sanitizer build keeps freed memory in quarantine (ASan's default is
    # 256 MiB), so its RSS grows without a leak: LeakSanitizer at each exit
    # checks leaks there instead, and RSS is shown, not judged.
    sanitized = os.environ.get("EMBER_SANITIZED") == "1" or any(
        w in binary for w in ("asan", "sanitized"))

    def log(msg):
        print(msg, flush=True)

    for f in [binary, GUESTS / "hello.elf", GUESTS / "blk.elf"]:
        if not os.path.exists(f):
            print(f"SOAK FAILED: {f} is missing (run make)", file=sys.stderr)
            return 1
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SOAK FAILED: /dev/kvm is missing or not accessible", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="ember-soak-"))
    cg = MemCgroup()
    t_start = time.monotonic()
    ok = False
    try:
        log(f"soak: {binary}, {cycles} cycles, {requests} requests, work dir {work}, "
            + (f"memory cgroup {cg.path}" if cg.path else f"no memory cgroup ({cg.why})"))
        c = phase_cycles(binary, work, cycles, cg, log) if cycles else None
        if requests:
            log("phase 2: one ember, mixed requests")
        (work / "phase2").mkdir()
        r = phase_requests(binary, work / "phase2", requests, args.seed, cg, log) if requests else None
        total = time.monotonic() - t_start

        failures = []
        print("\n== soak summary ==")
        print(f"ember: {binary}; total {total:.1f} s")
        if c:
            t = [x * 1e3 for x in c["times"]]
            print(f"cycles: {c['cycles']} in {c['wall_s']:.1f} s ({', '.join(CYCLE_KINDS)} by turns); "
                  f"cycle time min {min(t):.1f} / median {statistics.median(t):.1f} / "
                  f"p95 {pct(t, 95):.1f} / max {max(t):.1f} ms")
            print(f"  after every cycle: exit 0, no ERROR line, sockets gone, no process left, "
                  f"work dir unchanged, soak fds {c['own_fds']} unchanged")
            first, last, per = c["mem"]
            judged = ("context only: it moves with all else on the host" if c["charged"]
                      else f"allowance: a fall of {HOST_MEM_ALLOWANCE_KIB >> 10} MiB")
            print(f"  host MemAvailable (medians of the first and last tenth after a tenth as "
                  f"warm-up): {first / 1024:.0f} -> {last / 1024:.0f} MiB ({(last - first) / 1024:+.1f} "
                  f"MiB, {per:+.1f} KiB/cycle; {judged})")
            if not c["charged"] and first - last > HOST_MEM_ALLOWANCE_KIB:
                failures.append(f"host MemAvailable fell {(first - last) / 1024:.0f} MiB over the "
                                f"cycles (allowance {HOST_MEM_ALLOWANCE_KIB >> 10} MiB)")
            if c["charged"]:
                first, last, per = c["charged"]
                print(f"  left charged to the embers' memory cgroup after exit (same medians): "
                      f"{first:.0f} -> {last:.0f} KiB ({last - first:+.0f} KiB, {per:+.2f} KiB/cycle; "
                      f"allowance +{CGROUP_ALLOWANCE_KIB} KiB)")
                if last - first > CGROUP_ALLOWANCE_KIB:
                    failures.append(f"memory left charged after the embers exited grew "
                                    f"{last - first:.0f} KiB (allowance {CGROUP_ALLOWANCE_KIB} KiB)")
        if r:
            print(f"requests: {r['requests']} ({r['snapshots']} snapshots) to one ember, phase "
                  f"{r['wall_s']:.1f} s; after the {r['warmup']}-request warm-up {r['measured']} "
                  f"in {r['busy_s']:.1f} s of requests = {r['rps']:.0f} requests/s")
            mix = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items(), key=lambda kv: -kv[1]))
            print(f"  mix: {mix}")
            print(f"  besides: {r['abandoned']} clients gone mid-request, {r['vsock_closed']} vsock peers "
                  f"(bad handshake, or CONNECT to no listener) closed by ember")
            judged = ("not judged: a sanitizer build" if sanitized
                      else f"allowance +{args.rss_allowance_kib} KiB")
            print(f"  ember RSS: {r['rss_warm']} -> {r['rss_end']} KiB "
                  f"({r['rss_end'] - r['rss_warm']:+d} KiB; {judged})")
            print(f"  ember fds: {r['fds_warm']} -> {r['fds_end']} (allowance: equal)")
            if r["kmem_warm"] is not None:
                grew = r["kmem_end"] - r["kmem_warm"]
                print(f"  kernel memory charged to ember's cgroup: {r['kmem_warm']} -> {r['kmem_end']} KiB "
                      f"({grew:+d} KiB; allowance +{KMEM_ALLOWANCE_KIB} KiB)")
                if grew > KMEM_ALLOWANCE_KIB:
                    failures.append(f"kernel memory charged to ember's cgroup grew {grew} KiB "
                                    f"(allowance {KMEM_ALLOWANCE_KIB} KiB)")
            print("  checkpoints (request: RSS KiB/fds/kernel KiB): " +
                  " ".join(f"{n}:{rss}/{fds}/{kmem}" for n, rss, fds, kmem in r["checkpoints"]))
            if r["fds_end"] != r["fds_warm"]:
                failures.append(f"ember's open fds went from {r['fds_warm']} to {r['fds_end']}")
            if r["rss_end"] - r["rss_warm"] > args.rss_allowance_kib and not sanitized:
                failures.append(f"ember's RSS grew {r['rss_end'] - r['rss_warm']} KiB "
                                f"(allowance {args.rss_allowance_kib} KiB)")
        for f in failures:
            print(f"SOAK FAILED: {f}", file=sys.stderr)
        ok = not failures
        if ok:
            print("soak: PASS")
        return 0 if ok else 1
    except SoakError as e:
        print(f"SOAK FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("SOAK FAILED: interrupted", file=sys.stderr)
        return 1
    finally:
        cg.remove()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"soak: work directory kept: {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
