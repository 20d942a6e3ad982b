#!/usr/bin/python3
"""Linux benchmark: boot and snapshot restore of our Linux guest, ember vs
QEMU -M microvm in the same run.

Guest: the vmlinux build-guest-kernel.sh makes (PVH ELF), root on the
read-only rootfs.ext4 of build-guest-rootfs.sh over virtio-blk (mmio),
128 MiB, 1 vCPU, the test suite's kernel command line plus
ember.scenario=test: /init prints EMBER-READY and then runs a shell without
echo or prompt on the serial console, whose input is the monitor's stdin.

Timed on the host's monotonic clock, from just before the monitor process
is spawned:
  - boot: to Linux's first console line, to EMBER-READY, and to the shell
    answering `echo hi-$((1+1))` (sent when EMBER-READY shows) with hi-2;
  - restore: ember `--restore STATE --mem MEM --resume` of a Full snapshot
    (taken through the API of a booted, paused guest), and QEMU started with
    `-incoming "exec:cat FILE"` of a file its own `migrate` wrote from a
    stopped guest: the command line is written to the new process's stdin
    at once (QEMU: once QMP reports the VM running, see Qemu.restore), and
    the clock stops when hi-2 comes back. Also: process start to the vCPU's
    first KVM_RUN (ember's own log, --start-time-us) and to QMP reporting
    the VM running (QEMU, as this script sees it).
Runs alternate between the two monitors so drift hits both alike. Boots take
--runs (default 3), restores --restore-runs (default 10: they are cheap).

The guest kernel's ring-0 code is emulated on ember's machines (kvm-pvm, see
ENVIRONMENT.md): boot times here are dominated by that emulator, not by
either monitor. So is most of "restore -> shell answers" (the emulated
kernel takes the console line, wakes the shell, echoes): the "first
KVM_RUN" and "QMP reports it running" rows are the monitors' own restore.
"""
import argparse
import json
import os
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests/integration"))
from api_client import Api  # noqa: E402
from stats import pct  # noqa: E402

# The kernel command line of tests/integration/linux_vm.py (CMDLINE), kept
# in step with it: that module imports the test suite's conftest (pytest),
# so it is read here rather than imported.
CMDLINE_FALLBACK = ("console=ttyS0 reboot=k panic=-1 noxsave clearcpuid=popcnt,smap,erms,fsrm rodata=off "
                    "tsc=reliable no_timer_check quiet i8042.noaux i8042.nomux i8042.nopnp "
                    "i8042.dumbkbd")
MEM_MIB = 128
READY = b"EMBER-READY"
PROBE = b"echo hi-$((1+1))\n"
ANSWER = b"hi-2"


def test_cmdline():
    try:
        with open(os.path.join(ROOT, "tests/integration/linux_vm.py")) as f:
            src = f.read()
        m = re.search(r"^CMDLINE = \((.*?)\)\n", src, re.S | re.M)
        if m:
            return "".join(re.findall(r'"([^"]*)"', m.group(1)))
    except OSError:
        pass
    return CMDLINE_FALLBACK


def last_line(script):
    out = subprocess.run([os.path.join(ROOT, script)], check=True, capture_output=True,
                         text=True)
    return out.stdout.strip().splitlines()[-1]


class BenchError(Exception):
    pass


class Proc:
    """A monitor process whose stdout is the guest's serial console and whose
    stdin is the console's input. stderr goes to a file in the work dir."""

    live = []  # every Proc not yet killed, for the cleanup on any exit

    def __init__(self, name, argv, errfile, t0=None):
        self.name = name
        self.errfile = errfile
        self.out = b""
        self.t0 = time.monotonic() if t0 is None else t0
        self.t_first_line = None
        argv = [x.replace("@T0@", str(int(self.t0 * 1e6))) for x in argv]
        with open(errfile, "wb") as err:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=err, start_new_session=True)
        Proc.live.append(self)
        os.set_blocking(self.p.stdout.fileno(), False)

    def send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except BrokenPipeError:
            self.fail("its stdin closed")

    def _read(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            return True
        try:
            chunk = os.read(self.p.stdout.fileno(), 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        now = time.monotonic()
        if self.t_first_line is None and b"\n" in chunk:
            self.t_first_line = now
        self.out += chunk
        self.t_last = now
        return True

    def expect(self, needle, timeout, start=0):
        """Seconds from t0 until @needle shows in the console output after
        offset @start; returns (seconds, offset just past it)."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.out.find(needle, start)
            if i >= 0:
                return self.t_last - self.t0, i + len(needle)
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"no {needle.decode()!r} within {timeout:.0f} s")
            if not self._read(min(left, 1.0)):
                self.p.wait()
                self.fail(f"console closed before {needle.decode()!r} showed "
                          f"(exit status {self.p.returncode})")

    def first_line(self):
        """Seconds from t0 to the first console line, and that line."""
        if self.t_first_line is None:
            return None, ""
        return self.t_first_line - self.t0, self.out.split(b"\n", 1)[0].decode(
            errors="replace").strip()

    def fail(self, what):
        tail = self.out[-3000:].decode(errors="replace").replace("\r\n", "\n")
        self.kill()
        try:
            with open(self.errfile, "rb") as f:
                err = f.read()[-3000:].decode(errors="replace")
        except OSError:
            err = ""
        raise BenchError(f"{self.name}: {what}\n--- console tail ---\n{tail}\n"
                         f"--- stderr tail ---\n{err}")

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except OSError:
                pass
        if self in Proc.live:
            Proc.live.remove(self)


def wait_path(path, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.p.poll() is not None:
            proc.fail(f"exited ({proc.p.returncode}) before it made {path}")
        if time.monotonic() > deadline:
            proc.fail(f"{path} never appeared")
        time.sleep(0.001)


def boot_and_probe(proc, timeout):
    """(first console line s, EMBER-READY s, shell answer s) from t0."""
    t_ready, off = proc.expect(READY, timeout)
    proc.send(PROBE)
    t_answer, _ = proc.expect(ANSWER, timeout, off)
    return proc.first_line()[0], t_ready, t_answer


class Ember:
    def __init__(self, binary, kernel, rootfs, cmdline, work, timeouts):
        self.bin, self.work, self.timeouts = binary, work, timeouts
        self.cfg = os.path.join(work, "ember-vm.json")
        with open(self.cfg, "w") as f:
            # ember appends "root=/dev/vda ro" for a read-only root drive.
            json.dump({"boot-source": {"kernel_image_path": kernel, "boot_args": cmdline},
                       "machine-config": {"vcpu_count": 1, "mem_size_mib": MEM_MIB},
                       "drives": [{"drive_id": "rootfs", "path_on_host": rootfs,
                                   "is_root_device": True, "is_read_only": True}]}, f)
        self.state = os.path.join(work, "ember.state")
        self.mem = os.path.join(work, "ember.mem")
        self.err = os.path.join(work, "ember.err")

    def boot(self):
        p = Proc("ember boot", [self.bin, "--no-api", "--config-file", self.cfg], self.err)
        try:
            return boot_and_probe(p, self.timeouts.boot), p.first_line()[1]
        finally:
            p.kill()

    def snapshot(self):
        """Boot once, pause, Full snapshot (not timed)."""
        sock = os.path.join(self.work, "ember.sock")
        p = Proc("ember snapshot boot", [self.bin, "--api-sock", sock, "--config-file", self.cfg],
                 self.err)
        try:
            boot_and_probe(p, self.timeouts.boot)
            wait_path(sock, p)
            api = Api(sock)
            st, r = api.call("PATCH", "/vm", {"state": "Paused"})
            if st != 204:
                p.fail(f"pause: {st} {r}")
            st, r = api.call("PUT", "/snapshot/create",
                             {"snapshot_path": self.state, "mem_file_path": self.mem,
                              "snapshot_type": "Full"})
            if st != 204:
                p.fail(f"snapshot create: {st} {r}")
            api.close()
        finally:
            p.kill()

    def restore(self):
        """Seconds from process start to the shell's answer, and to the
        vCPU's first KVM_RUN (ember's own log; its clock starts at our t0)."""
        p = Proc("ember restore", [self.bin, "--no-api", "--level", "info", "--start-time-us",
                                   "@T0@", "--restore", self.state, "--mem", self.mem,
                                   "--resume"], self.err)
        try:
            # ember reads stdin only once the restored guest runs: the line
            # waits in the pipe till then.
            p.send(PROBE)
            t = p.expect(ANSWER, self.timeouts.restore)[0]
        finally:
            p.kill()
        with open(self.err, errors="replace") as f:
            m = re.search(r"first KVM_RUN (\d+) us", f.read())
        if not m:
            p.fail("its log (--level info) lacks 'first KVM_RUN'")
        return t, int(m.group(1)) / 1e6


class Qmp:
    """A minimal QMP client on a Unix socket."""

    def __init__(self, path, timeout=30):
        # The socket file appears at bind(); listen() follows a moment later.
        deadline = time.monotonic() + timeout
        while True:
            self.s = socket.socket(socket.AF_UNIX)
            self.s.settimeout(timeout)
            try:
                self.s.connect(path)
                break
            except ConnectionRefusedError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise BenchError(f"QMP socket {path} refuses connections")
                time.sleep(0.0002)
        self.buf = b""
        self.events = []
        self._msg()  # greeting
        self.cmd("qmp_capabilities")

    def _msg(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise BenchError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            m = self._msg()
            if "event" in m:
                self.events.append(m)
                continue
            if "error" in m:
                raise BenchError(f"QMP {name}: {m['error']}")
            return m.get("return")

    def wait_event(self, name, timeout):
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e["event"] == name:
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"no QMP event {name} within {timeout:.0f} s")
            self.s.settimeout(left)
            m = self._msg()
            if "event" in m:
                self.events.append(m)

    def close(self):
        self.s.close()


class Qemu:
    def __init__(self, binary, kernel, rootfs, cmdline, work, timeouts):
        self.work, self.timeouts = work, timeouts
        # acpi=off: with ACPI on, microvm describes its virtio-mmio devices
        # only in ACPI tables (our kernel has no ACPI) and does not add the
        # virtio_mmio.device= entries to the command line.
        self.base = [binary, "-M", "microvm,acpi=off", "-accel", "kvm", "-cpu", "host",
                     "-m", str(MEM_MIB), "-smp", "1", "-nodefaults", "-no-user-config",
                     "-nographic", "-serial", "stdio", "-kernel", kernel,
                     "-append", f"{cmdline} root=/dev/vda ro",
                     "-drive", f"id=root,file={rootfs},format=raw,if=none,readonly=on",
                     "-device", "virtio-blk-device,drive=root", "-no-reboot"]
        self.file = os.path.join(work, "qemu.migrate")
        self.qmp = os.path.join(work, "qemu.qmp")
        self.err = os.path.join(work, "qemu.err")

    def boot(self):
        p = Proc("qemu boot", self.base, self.err)
        try:
            return boot_and_probe(p, self.timeouts.boot), p.first_line()[1]
        finally:
            p.kill()

    def snapshot(self):
        """Boot once, stop, migrate to a file (not timed). The source does
        not store its run state in the stream (migration.store-global-state
        =off), so the incoming side starts the guest by itself, as ember's
        --resume does, though it was migrated stopped."""
        p = Proc("qemu snapshot boot",
                 self.base + ["-qmp", f"unix:{self.qmp},server=on,wait=off",
                              "-global", "migration.store-global-state=off"], self.err)
        try:
            boot_and_probe(p, self.timeouts.boot)
            wait_path(self.qmp, p)
            q = Qmp(self.qmp)
            q.cmd("stop")
            q.cmd("migrate", uri=f"exec:cat > {self.file}")
            deadline = time.monotonic() + 120
            while True:
                st = q.cmd("query-migrate").get("status")
                if st == "completed":
                    break
                if st in ("failed", "cancelled") or time.monotonic() > deadline:
                    p.fail(f"migration to {self.file}: {st}")
                time.sleep(0.05)
            q.close()
        finally:
            p.kill()
            if os.path.exists(self.qmp):
                os.unlink(self.qmp)

    def restore(self):
        """Seconds from process start to the shell's answer, and seconds to
        QMP's RESUME event.

        The console line is written once QMP reports the guest running:
        QEMU's serial port takes input while the incoming migration is still
        loading, and the load of the port's state then overwrites it (sent at
        once, `echo ...` reaches the guest's shell as `cho ...`)."""
        if os.path.exists(self.qmp):
            os.unlink(self.qmp)
        p = Proc("qemu restore", self.base + ["-qmp", f"unix:{self.qmp},server=on,wait=off",
                                              "-incoming", f"exec:cat {self.file}"], self.err)
        try:
            wait_path(self.qmp, p)
            q = Qmp(self.qmp, self.timeouts.restore)
            if q.cmd("query-status")["status"] != "running":
                q.wait_event("RESUME", self.timeouts.restore)
            t_run = time.monotonic() - p.t0
            p.send(PROBE)
            t = p.expect(ANSWER, self.timeouts.restore)[0]
            q.close()
            return t, t_run
        finally:
            p.kill()
            if os.path.exists(self.qmp):
                os.unlink(self.qmp)


def row(name, v, unit):
    scale = 1000.0 if unit == "ms" else 1.0
    v = [x * scale for x in v]
    return f"  {name:<54} {min(v):9.2f} {statistics.median(v):9.2f} {pct(v, 95):9.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--restore-runs", type=int, default=10,
                    help="restores per monitor (cheap, and noisier than boots: default 10)")
    ap.add_argument("--ember", default="build/ember")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--kernel", help="default: the last line of scripts/build-guest-kernel.sh")
    ap.add_argument("--rootfs-dir",
                    help="default: the last line of scripts/build-guest-rootfs.sh")
    ap.add_argument("--boot-timeout", type=float, default=240)
    ap.add_argument("--restore-timeout", type=float, default=60)
    ap.add_argument("--no-qemu", action="store_true", help="ember rows only")
    a = ap.parse_args()
    a.boot, a.restore = a.boot_timeout, a.restore_timeout
    restore_runs = a.restore_runs

    kernel = os.path.abspath(a.kernel or last_line("scripts/build-guest-kernel.sh"))
    rootfs = os.path.join(os.path.abspath(a.rootfs_dir or last_line("scripts/build-guest-rootfs.sh")),
                          "rootfs.ext4")
    ember_bin = os.path.abspath(a.ember)
    cmdline = f"{test_cmdline()} ember.scenario=test"
    qemu_bin = None if a.no_qemu else shutil.which(a.qemu)
    qemu_missing = "--no-qemu given" if a.no_qemu else (
        None if qemu_bin else f"{a.qemu} not found on PATH")

    def on_term(sig, frame):
        raise SystemExit(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    work = tempfile.mkdtemp(prefix="ember-bench-linux-")
    res = {k: [] for k in ("e_line", "e_ready", "e_ans", "q_line", "q_ready", "q_ans",
                           "e_rest", "e_run", "q_rest", "q_run")}
    first = {}
    try:
        emb = Ember(ember_bin, kernel, rootfs, cmdline, work, a)
        qemu = Qemu(qemu_bin, kernel, rootfs, cmdline, work, a) if qemu_bin else None

        # Untimed: one boot of each to a snapshot (also warms the page cache).
        emb.snapshot()
        if qemu:
            try:
                qemu.snapshot()
            except BenchError as e:
                qemu_missing = f"its snapshot boot failed: {str(e).splitlines()[0]}"
                print(f"QEMU peer dropped:\n{e}", file=sys.stderr)
                qemu = None

        for i in range(a.runs):
            (line, ready, ans), first["ember"] = emb.boot()
            res["e_line"].append(line)
            res["e_ready"].append(ready)
            res["e_ans"].append(ans)
            print(f"  [boot {i + 1}/{a.runs}] ember: READY {ready:.2f} s, answer {ans:.2f} s",
                  file=sys.stderr, flush=True)
            if qemu:
                (line, ready, ans), first["qemu"] = qemu.boot()
                res["q_line"].append(line)
                res["q_ready"].append(ready)
                res["q_ans"].append(ans)
                print(f"  [boot {i + 1}/{a.runs}] qemu:  READY {ready:.2f} s, answer {ans:.2f} s",
                      file=sys.stderr, flush=True)

        emb.restore()  # warm the page cache
        if qemu:
            qemu.restore()
        for _ in range(restore_runs):
            t, t_run = emb.restore()
            res["e_rest"].append(t)
            res["e_run"].append(t_run)
            if qemu:
                t, t_run = qemu.restore()
                res["q_rest"].append(t)
                res["q_run"].append(t_run)
    except BenchError as e:
        sys.exit(f"linux benchmark failed: {e}")
    finally:
        for p in list(Proc.live):
            p.kill()
        shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    print("Linux boot and restore benchmark: ember vs QEMU -M microvm, same vmlinux, "
          f"root on read-only virtio-blk ext4, {MEM_MIB} MiB, 1 vCPU")
    print("  NOTE: on this machine the guest kernel's ring-0 code is emulated (kvm-pvm), so "
          "these\n  boot times are dominated by the emulator, not by either monitor.")
    print(f"  kernel {kernel}\n  rootfs {rootfs}")
    print(f"  boot: {a.runs} runs each (seconds from process start)")
    print(f"  {'':<54} {'min':>9} {'median':>9} {'p95':>9}")
    # With `quiet` Linux may print nothing before /init's EMBER-READY: then
    # the first console line is that one, and its row would repeat the next.
    for key, name in (("e_line", "ember"), ("q_line", "qemu microvm")):
        who = "ember" if key == "e_line" else "qemu"
        if (res[key] and all(x is not None for x in res[key])
                and not first.get(who, "").startswith(READY.decode())):
            print(row(f"{name}: start -> Linux's first console line", res[key], "s"))
    print(row("ember: start -> EMBER-READY", res["e_ready"], "s"))
    if qemu:
        print(row("qemu microvm: start -> EMBER-READY", res["q_ready"], "s"))
    print(row("ember: start -> shell answers `echo hi-$((1+1))`", res["e_ans"], "s"))
    if qemu:
        print(row("qemu microvm: start -> shell answers", res["q_ans"], "s"))
    print(f"  restore of the booted guest: {restore_runs} runs each (ms from process start)")
    print(f"  {'':<54} {'min':>9} {'median':>9} {'p95':>9}")
    print(row("ember --restore: start -> first KVM_RUN (own log)", res["e_run"], "ms"))
    print(row("ember --restore: start -> shell answers", res["e_rest"], "ms"))
    if qemu:
        print(row("qemu -incoming: start -> QMP reports it running", res["q_run"], "ms"))
        print(row("qemu -incoming: start -> shell answers", res["q_rest"], "ms"))
    for k, v in first.items():
        print(f"  ({k}'s first console line: {v[:70]!r})")
    if first and all(v.startswith(READY.decode()) for v in first.values()):
        print("  (with `quiet` Linux prints nothing before /init's EMBER-READY: no separate "
              "first-line row)")
    if qemu:
        for what, q, e in (("boot -> EMBER-READY", "q_ready", "e_ready"),
                           ("boot -> shell answers", "q_ans", "e_ans"),
                           ("restore -> guest running (QMP / own log)", "q_run", "e_run"),
                           ("restore -> shell answers", "q_rest", "e_rest")):
            label = f"ratio qemu/ember, {what} (median):"
            print(f"  {label:<68} {med(res[q]) / med(res[e]):6.2f}x")
        print("  (QEMU: microvm,acpi=off so that it puts the virtio-mmio devices on the "
              "kernel command line;\n   its restore gets the console line once QMP reports "
              "it running: input sent earlier\n   loses its first byte to the load of the serial port's state)")
    else:
        print(f"  QEMU microvm peer missing: {qemu_missing}")


if __name__ == "__main__":
    main()
