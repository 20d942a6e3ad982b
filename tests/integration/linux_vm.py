"""Linux guests for the integration tests: boot once, restore many.

The guest kernel's ring-0 code is emulated on ember's test machines, so a
Linux boot costs tens of seconds. `base_snapshot()` boots our Linux once
(root: the read-only ext4 image build-guest-rootfs.sh makes, with busybox,
ember-vsock and our /init; three more drives, a NIC on a TAP and a vsock
device), brings the guest to a known state (data drive mounted at /mnt,
eth0 up at 10.0.2.2), pauses it and snapshots it. The snapshot is cached under /var/cache/ember/linux-snapshot,
keyed by the kernel, the guest userspace, the ember binary and this file.
Each test then restores its own VM from it with `LinuxVM.restore()`.

A restored VM runs in a network namespace of its own with a TAP named tap0
(owned by uid 65534, for the jailed run) whose host side is 10.0.2.1/24.
The guest's console runs a shell without echo or prompt (init's `test`
scenario); `vm.sh(cmd)` writes a command line to it and returns the exit
status and the output.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from api_client import Api
from conftest import JAILED, ROOT, read_until

# noxsave, clearcpuid, rodata=off: this machine's ring-0 emulator lacks
# xsave, popcnt and smap, and read-only marking of kernel memory costs
# seconds (ENVIRONMENT.md). The i8042 options are the ones Firecracker
# documents for its guests; reboot=k resets through the i8042.
CMDLINE = ("console=ttyS0 reboot=k panic=-1 noxsave clearcpuid=popcnt,smap,erms,fsrm rodata=off "
           "tsc=reliable no_timer_check quiet i8042.noaux i8042.nomux i8042.nopnp "
           "i8042.dumbkbd")
MEM_MIB = 128
GUEST_IP, HOST_IP = "10.0.2.2", "10.0.2.1"
GUEST_MAC = "06:00:0a:00:02:02"
GUEST_CID = 3
DATA_MIB, SCRATCH_MIB, RO_MIB = 64, 16, 1
# Byte i of the read-only drive, so the guest's reads can be checked.
RO_PATTERN = bytes((i * 7 + 3) & 0xff for i in range(256))
BOOT_TIMEOUT = 180
READY = "EMBER-READY\n"


def sh_host(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def guest_rootfs():
    """The directory build-guest-rootfs.sh made (cached)."""
    out = subprocess.run([str(ROOT / "scripts/build-guest-rootfs.sh")], check=True,
                         capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


class Netns:
    """A network namespace with tap0 (uid 65534) at 10.0.2.1/24."""

    count = 0

    def __init__(self, tap="tap0"):
        Netns.count += 1
        self.name = f"ember-lx-{os.getpid()}-{Netns.count}"
        self.tap = tap
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        sh_host("ip", "netns", "add", self.name)
        self.run("ip", "tuntap", "add", "dev", tap, "mode", "tap", "user", "65534")
        self.run("ip", "addr", "add", f"{HOST_IP}/24", "dev", tap)
        self.run("ip", "link", "set", tap, "up")
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *args, **kw):
        return sh_host("ip", "netns", "exec", self.name, *args, **kw)

    def popen(self, args, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.name, *map(str, args)], **kw)

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class LinuxVM:
    """One ember running our Linux guest, driven through its console and API."""

    def __init__(self, proc, api, netns, workdir):
        self.proc = proc
        self.api = api
        self.netns = netns
        self.dir = workdir
        self.vsock = None
        self._seq = 0

    # -- console ------------------------------------------------------------
    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=30):
        m, text = read_until(self.proc, pattern, timeout)
        if not m:
            self.fail(f"console never showed {pattern!r}", text)
        return m, text

    def sh(self, cmd, timeout=60, check=True):
        """Run @cmd in the guest's console shell (stdin from /dev/null).
        Returns (status, output)."""
        self._seq += 1
        tag = f"@@{self._seq}"
        # The marker is split in the command so that it cannot match in
        # anything but the output (the console does not echo, but be sure).
        self.send(f"{{ {cmd}\n}} </dev/null; echo \"{tag}\"'=RC'$?")
        m, text = self.expect(re.escape(tag) + r"=RC(\d+)\n", timeout)
        out = text[:m.start()]
        rc = int(m.group(1))
        if check and rc != 0:
            self.fail(f"guest command failed ({rc}): {cmd}", out)
        return rc, out

    def fail(self, what, text=""):
        import pytest
        err = ""
        if self.proc.poll() is not None:
            err = f"\n[ember exited {self.proc.returncode}: {self.proc.stderr.read().decode()!r}]"
        pytest.fail(f"{what}\n--- console ---\n{text[-3000:]}{err}", pytrace=False)

    # -- life cycle ---------------------------------------------------------
    def wait_exit(self, timeout=60):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"ember still running after {timeout} s")
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        self.api.close()
        if self.netns:
            self.netns.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- starting -------------------------------------------------------------
    @staticmethod
    def start(ember, workdir, args, netns=None):
        """Start ember with an API socket in @netns (made when None)."""
        netns = netns or Netns()
        sock = workdir / f"api-{time.monotonic_ns()}.sock"
        proc = netns.popen([ember, "--api-sock", sock, *args], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                netns.close()
                raise RuntimeError(f"ember never opened its API socket: "
                                   f"{proc.stderr.read().decode()!r}")
            time.sleep(0.005)
        return LinuxVM(proc, Api(str(sock)), netns, workdir)

    @staticmethod
    def restore(ember, base, workdir, backend="File", resume=True, fresh_drives=True,
                extra=None, netns=None):
        """A VM restored from the base snapshot in a new ember. The drives
        the snapshot names are put back to their state at snapshot time
        first (tests run one at a time), unless @fresh_drives is False."""
        if fresh_drives:
            base.reset_drives()
        vm = LinuxVM.start(ember, workdir, [], netns)
        vm.vsock = str(workdir / f"v{LinuxVM._n()}.sock")
        body = {"snapshot_path": str(base.state),
                "mem_backend": {"backend_type": backend, "backend_path": str(base.mem)},
                "resume_vm": resume, "vsock_override": {"uds_path": vm.vsock}}
        body.update(extra or {})
        st, r = vm.api.call("PUT", "/snapshot/load", body)
        if st != 204:
            vm.close()
            raise AssertionError(f"snapshot load: {st} {r}")
        if resume:
            vm.sh("true", timeout=20)  # the shell answers
        return vm

    _counter = 0

    @staticmethod
    def _n():
        LinuxVM._counter += 1
        return LinuxVM._counter


class BaseSnapshot:
    """The booted, prepared Linux VM's snapshot and the drives it names."""

    DRIVES = ("data.ext4", "scratch.img", "ro.img")

    def __init__(self, path):
        self.dir = Path(path)
        self.state = self.dir / "vm.state"
        self.mem = self.dir / "vm.mem"

    def drive(self, name):
        return self.dir / name

    def reset_drives(self):
        for d in self.DRIVES:
            live = self.dir / d
            shutil.copyfile(self.dir / "golden" / d, live)
            os.chmod(live, 0o666)

    def complete(self):
        return (self.dir / "ok").exists()


def base_config(vmlinux, rootfs, d, vsock, vcpus=1, cmdline_extra="ember.scenario=test"):
    """Drives: vda root (read-only ext4, shared), vdb data (ext4, Async),
    vdc scratch (raw, Sync), vdd read-only (RO_PATTERN)."""
    return {
        "boot-source": {"kernel_image_path": str(vmlinux),
                        "boot_args": f"{CMDLINE} {cmdline_extra}"},
        "machine-config": {"vcpu_count": vcpus, "mem_size_mib": MEM_MIB,
                           "track_dirty_pages": True},
        "drives": [
            {"drive_id": "rootfs", "path_on_host": str(rootfs / "rootfs.ext4"),
             "is_root_device": True, "is_read_only": True},
            {"drive_id": "data", "path_on_host": str(d / "data.ext4"), "is_root_device": False,
             "is_read_only": False, "io_engine": "Async"},
            {"drive_id": "scratch", "path_on_host": str(d / "scratch.img"),
             "is_root_device": False, "is_read_only": False, "io_engine": "Sync"},
            {"drive_id": "ro", "path_on_host": str(d / "ro.img"), "is_root_device": False,
             "is_read_only": True},
        ],
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "guest_mac": GUEST_MAC}],
        "vsock": {"guest_cid": GUEST_CID, "uds_path": str(vsock)},
    }


def make_drives(d):
    """data.ext4 (an empty ext4), scratch.img (zeros), ro.img (RO_PATTERN)."""
    data = d / "data.ext4"
    with open(data, "wb") as f:
        f.truncate(DATA_MIB << 20)
    sh_host("mkfs.ext4", "-q", "-F", "-L", "emberdata", str(data))
    with open(d / "scratch.img", "wb") as f:
        f.truncate(SCRATCH_MIB << 20)
    (d / "ro.img").write_bytes(RO_PATTERN * (RO_MIB << 12))
    for name in BaseSnapshot.DRIVES:
        os.chmod(d / name, 0o666)


def _key(vmlinux, rootfs, ember_bin):
    h = hashlib.sha256()
    for f in (vmlinux, ember_bin, Path(__file__)):
        st = os.stat(f)
        h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    h.update(str(rootfs).encode())
    return h.hexdigest()[:16]


def base_snapshot(ember, vmlinux):
    """Boot Linux once, prepare it, snapshot it; cached across runs."""
    rootfs = guest_rootfs()
    cache = Path(os.environ.get("EMBER_CACHE", "/var/cache/ember")) / "linux-snapshot"
    base = BaseSnapshot(cache / _key(vmlinux, rootfs, ROOT / "build/ember"))
    if base.complete():
        return base
    shutil.rmtree(base.dir, ignore_errors=True)
    (base.dir / "golden").mkdir(parents=True)
    for p in (cache, base.dir, base.dir / "golden"):
        os.chmod(p, 0o777)  # the jailed run (uid 65534) writes here too
    make_drives(base.dir)
    cfg = base.dir / "vm.json"
    cfg.write_text(json.dumps(base_config(vmlinux, rootfs, base.dir, base.dir / "boot.vsock")))
    os.chmod(cfg, 0o644)
    vm = LinuxVM.start(ember, base.dir, ["--config-file", cfg])
    try:
        vm.expect(READY, BOOT_TIMEOUT)
        vm.sh(f"mount -t ext4 /dev/vdb /mnt && ip addr add {GUEST_IP}/24 dev eth0 && "
              "ip link set eth0 up && ip link set lo up", timeout=60)
        st, r = vm.api.call("PATCH", "/vm", {"state": "Paused"})
        assert st == 204, r
        st, r = vm.api.call("PUT", "/snapshot/create",
                            {"snapshot_path": str(base.state), "mem_file_path": str(base.mem),
                             "snapshot_type": "Full"})
        assert st == 204, r
    finally:
        vm.close()
    for name in BaseSnapshot.DRIVES:
        shutil.copyfile(base.dir / name, base.dir / "golden" / name)
    for f in (base.state, base.mem):
        os.chmod(f, 0o644)
    (base.dir / "ok").touch()
    return base


def jailed():
    return JAILED
