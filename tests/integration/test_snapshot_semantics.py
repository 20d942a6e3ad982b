"""Snapshot semantics as Firecracker documents them
(docs/snapshotting/snapshot-support.md, swagger SnapshotLoadParams):
rate limiters survive a snapshot and still throttle, kvmclock on load with
and without clock_realtime, when a Diff snapshot is allowed, and a state
file of the previous format version still loads."""
import json
import os
import shutil
import struct
import subprocess
import time
import zlib

from api_client import Api
from conftest import ROOT, read_until, run_ember
from test_snapshot import (EVERY, done_line, has_line, load_api, make_vm, reference,  # noqa: F401
                           snapshot_at, start, wait_sock)

SNAP_VM, SNAP_RATE_LIMITER, SNAP_CLOCK = 4, 8, 9
KVM_CLOCK_REALTIME = 1 << 2


def sections(path):
    """The state file's sections: [(tag, instance, data)]."""
    b = open(path, "rb").read()
    count = struct.unpack_from("<I", b, 16)[0]
    off, out = 24, []
    for _ in range(count):
        tag, inst, n, _ = struct.unpack_from("<IIII", b, off)
        out.append((tag, inst, b[off + 16:off + 16 + n]))
        off += 16 + ((n + 7) & ~7)
    return out


def kvmclock(path):
    """(kvmclock ns, flags) of a state file: struct kvm_clock_data ends the VM section."""
    vm = [d for t, _, d in sections(path) if t == SNAP_VM][0]
    clock, flags = struct.unpack_from("<QI", vm, len(vm) - 48)
    return clock, flags


def as_version_1(src, dst):
    """@src rewritten as ember's format version 1 wrote it: no section 8 or 9."""
    keep = [s for s in sections(src) if s[0] < SNAP_RATE_LIMITER]
    b = bytearray(open(src, "rb").read()[:24])
    b[12:16] = struct.pack("<I", 1)
    b[16:20] = struct.pack("<I", len(keep))
    for tag, inst, data in keep:
        b += struct.pack("<IIII", tag, inst, len(data), 0) + data + b"\0" * (-len(data) % 8)
    b += struct.pack("<II", zlib.crc32(bytes(b)), 0)
    open(dst, "wb").write(bytes(b))
    os.chmod(dst, 0o644)


# ---- rate limiters ------------------------------------------------------------------

LIMITER = {"bandwidth": {"size": 1 << 20, "one_time_burst": 0, "refill_time": 1000},
           "ops": {"size": 100000, "one_time_burst": 7, "refill_time": 1000}}


def pass_times(proc, n, timeout=60):
    """Host times at which the busy blk guest reports its next @n passes."""
    times = []
    for _ in range(n):
        m, text = read_until(proc, r"blk: pass \d+ (ok|failed)\n", timeout)
        assert m and m.group(1) == "ok", text
        times.append(time.monotonic())
    return times


def test_rate_limiters_survive_a_snapshot_and_still_throttle(ember, guest, tmp_path):
    """A drive at 1 MiB/s under a guest that moves 2 MiB per pass (write
    1 MiB, read it back): about 2 s per pass before the snapshot and after
    the restore (unlimited, a pass takes a fraction of a second here), and
    GET /vm/config of the restored VM shows the limiter as configured."""
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(disk, 0o666)
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("blk.elf")), "boot_args": "mode=2"},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
        "drives": [{"drive_id": "slow", "path_on_host": str(disk), "is_root_device": False,
                    "is_read_only": False, "rate_limiter": LIMITER}],
    }))
    sock = str(tmp_path / "api.sock")
    p = start(ember, "--api-sock", sock, "--config-file", cfg)
    try:
        t = pass_times(p, 3)
        before = (t[2] - t[0]) / 2
        api = Api(sock)
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        st, mem = tmp_path / "s.state", tmp_path / "s.mem"
        r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st),
                                                 "mem_file_path": str(mem)})
        assert r[0] == 204, r
    finally:
        p.kill()
        p.wait()
    # The state file holds the bucket: as configured, drained by the guest.
    lims = [(i, d) for t_, i, d in sections(st) if t_ == SNAP_RATE_LIMITER]
    assert len(lims) == 1 and lims[0][0] == 0
    count, _ = struct.unpack_from("<II", lims[0][1])
    size, burst, refill, budget, _ = struct.unpack_from("<5Q", lims[0][1], 8)
    assert (count, size, refill) == (1, 1 << 20, 1000)
    assert budget < size // 2, f"a busy guest's bucket holds {budget} of {size} bytes"
    ops = struct.unpack_from("<5Q", lims[0][1], 48)
    assert ops[0] == 100000 and ops[1] == 0, ops  # the one-time burst was spent
    q, r = load_api(ember, tmp_path, {"snapshot_path": str(st), "resume_vm": True,
                                      "mem_backend": {"backend_type": "File",
                                                      "backend_path": str(mem)}})
    try:
        assert r[0] == 204, r
        cfg_back = Api(str(tmp_path / "load.sock")).call("GET", "/vm/config")[1]
        assert cfg_back["drives"][0]["rate_limiter"] == LIMITER, cfg_back["drives"]
        t = pass_times(q, 3)
        after = (t[2] - t[0]) / 2
    finally:
        q.kill()
        q.wait()
    print(f"seconds per 2 MiB pass at 1 MiB/s: {before:.2f} before the snapshot, "
          f"{after:.2f} after the restore")
    assert before > 1.5 and after > 1.5


def test_entropy_limiter_is_restored(ember, guest, tmp_path):
    """The entropy device's limiter travels too: in the state file, and in
    GET /vm/config of the restored VM."""
    limiter = {"bandwidth": {"size": 1000, "one_time_burst": 0, "refill_time": 100}}
    cfg, _ = make_vm(tmp_path, guest)
    data = json.loads(cfg.read_text())
    data["entropy"] = {"rate_limiter": limiter}
    cfg.write_text(json.dumps(data))
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, EVERY)
    p.kill()
    p.wait()
    # One section per device: the unlimited drive's (all zeros), the entropy device's.
    lims = {i: d for t, i, d in sections(st) if t == SNAP_RATE_LIMITER}
    assert sorted(lims) == [0, 1]
    assert struct.unpack_from("<II10Q", lims[0]) == (1, 0) + (0,) * 10
    assert struct.unpack_from("<II5Q", lims[1])[:5] == (1, 0, 1000, 0, 100)
    q, r = load_api(ember, tmp_path, {"snapshot_path": str(st),
                                      "mem_backend": {"backend_type": "File",
                                                      "backend_path": str(mem)}})
    try:
        assert r[0] == 204, r
        back = Api(str(tmp_path / "load.sock")).call("GET", "/vm/config")[1]
        assert back["entropy"]["rate_limiter"]["bandwidth"] == limiter["bandwidth"], back
    finally:
        q.kill()
        q.wait()


def test_interface_limiters_are_restored(ember, guest, tmp_path):
    """A network interface's RX and TX limiters: both buckets in the state
    file (RX first), both in GET /vm/config of the restored VM."""
    rx = {"bandwidth": {"size": 65536, "one_time_burst": 1000, "refill_time": 100}}
    tx = {"ops": {"size": 500, "one_time_burst": 0, "refill_time": 1000}}
    ns = f"ember-snaprl-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "tuntap", "add", "dev", "tap0", "mode",
                        "tap", "user", "65534"], check=True)
        cfg, _ = make_vm(tmp_path, guest)
        c = json.loads(cfg.read_text())
        c["network-interfaces"] = [{"iface_id": "eth0", "host_dev_name": "tap0",
                                    "rx_rate_limiter": rx, "tx_rate_limiter": tx}]
        cfg.write_text(json.dumps(c))
        sock = str(tmp_path / "api.sock")
        p = subprocess.Popen(["ip", "netns", "exec", ns, str(ember), "--api-sock", sock,
                              "--config-file", str(cfg)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p, _, st, mem = snapshot_at(ember, tmp_path, cfg, EVERY, proc=p)
        p.kill()
        p.wait()
        lims = {i: d for t, i, d in sections(st) if t == SNAP_RATE_LIMITER}
        assert sorted(lims) == [0, 1]  # the drive (unlimited), the interface
        count, _ = struct.unpack_from("<II", lims[1])
        rx_bytes, rx_ops, tx_bytes, tx_ops = (struct.unpack_from("<5Q", lims[1], 8 + 40 * k)
                                              for k in range(4))
        assert count == 2
        assert rx_bytes[:3] == (65536, 1000, 100) and rx_ops == (0,) * 5
        assert tx_bytes == (0,) * 5 and tx_ops[:3] == (500, 0, 1000)
        lsock = str(tmp_path / "l.sock")
        q = subprocess.Popen(["ip", "netns", "exec", ns, str(ember), "--api-sock", lsock],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            wait_sock(lsock)
            r = Api(lsock).call("PUT", "/snapshot/load", {
                "snapshot_path": str(st),
                "mem_backend": {"backend_type": "File", "backend_path": str(mem)}})
            assert r[0] == 204, r
            nic = Api(lsock).call("GET", "/vm/config")[1]["network-interfaces"][0]
            assert nic["rx_rate_limiter"]["bandwidth"] == rx["bandwidth"], nic
            assert nic["tx_rate_limiter"]["ops"] == tx["ops"], nic
        finally:
            q.kill()
            q.wait()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_garbage_limiter_section_is_refused(ember, guest, tmp_path):
    """A limiter section with a budget over its size (CRC recomputed): a
    clear error, exit status 75, no guest runs."""
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(disk, 0o666)
    cfg, _ = make_vm(tmp_path, guest)
    data = json.loads(cfg.read_text())
    data["drives"][0]["rate_limiter"] = LIMITER
    cfg.write_text(json.dumps(data))
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, EVERY)
    p.kill()
    p.wait()
    b = bytearray(open(st, "rb").read())
    off, count = 24, struct.unpack_from("<I", b, 16)[0]
    for _ in range(count):
        tag, _, n, _ = struct.unpack_from("<IIII", b, off)
        if tag == SNAP_RATE_LIMITER:
            struct.pack_into("<Q", b, off + 16 + 8 + 24, (1 << 20) + 1)  # bytes.budget
        off += 16 + ((n + 7) & ~7)
    struct.pack_into("<I", b, len(b) - 8, zlib.crc32(bytes(b[:-8])))
    bad = tmp_path / "bad.state"
    bad.write_bytes(bytes(b))
    os.chmod(bad, 0o644)
    r = run_ember(ember, "--no-api", "--restore", bad, "--mem", mem, "--resume", timeout=30)
    assert r.returncode == 75, r.stderr
    assert "rate limiter state of device 0 is invalid: a bucket's budget is larger" in r.stderr
    assert "count:" not in r.stdout


def test_version_1_state_file_loads(ember, guest, tmp_path, reference):
    """A state file as the previous format (version 1, before rate limiter
    and clock sections) loads and the guest finishes as it would have."""
    cfg, _ = make_vm(tmp_path, guest)
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, 2 * EVERY)
    p.kill()
    p.wait()
    old = tmp_path / "v1.state"
    as_version_1(st, old)
    r = run_ember(ember, "--no-api", "--restore", old, "--mem", mem, "--resume", timeout=60)
    assert r.returncode == 0, r.stderr
    assert done_line(r.stdout) == reference


# ---- kvmclock on load ---------------------------------------------------------------

GAP = 3.0
GAP_LINUX = 5.0


def clock_after_load(ember, tmp_path, st, mem, name, taken_at, **extra):
    """Load @st paused at least GAP s after it was taken, snapshot the
    restored VM at once; (kvmclock in that second state file, host seconds
    since the first, ember's log)."""
    d = tmp_path / name
    d.mkdir()
    os.chmod(d, 0o777)
    sock = str(d / "api.sock")
    q = start(ember, "--api-sock", sock, "--level", "Info")
    try:
        wait_sock(sock)
        time.sleep(max(0.0, taken_at + GAP - time.time()))
        api = Api(sock)
        r = api.call("PUT", "/snapshot/load", {
            "snapshot_path": str(st), "resume_vm": False,
            "mem_backend": {"backend_type": "File", "backend_path": str(mem)}, **extra})
        assert r[0] == 204, r
        st2 = d / "again.state"
        r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st2),
                                                 "mem_file_path": str(d / "again.mem")})
        host_gap = time.time() - taken_at
        assert r[0] == 204, r
    finally:
        q.kill()
        _, err = q.communicate()
    return kvmclock(st2)[0], host_gap, err.decode()


def test_kvmclock_on_load_with_and_without_clock_realtime(ember, guest, tmp_path):
    """Firecracker's default: the guest's kvmclock resumes where it stopped
    (the seconds the snapshot sat on disk never happened for the guest).
    clock_realtime: it advances by the wall-clock time since the snapshot.
    Read from the kvmclock of a second snapshot taken right after the load
    (the restored VM never runs in between)."""
    cfg, _ = make_vm(tmp_path, guest)
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, EVERY)
    taken_at = time.time()
    p.kill()
    p.wait()
    c0, flags = kvmclock(st)
    print("this host's KVM_GET_CLOCK " + ("pairs kvmclock with real time (KVM_CLOCK_REALTIME)"
                                          if flags & KVM_CLOCK_REALTIME else
                                          "gives no KVM_CLOCK_REALTIME: clock_realtime uses "
                                          "ember's own wall-clock reading"))
    c1, gap1, log1 = clock_after_load(ember, tmp_path, st, mem, "default", taken_at)
    c2, gap2, log2 = clock_after_load(ember, tmp_path, st, mem, "realtime", taken_at,
                                      clock_realtime=True)
    adv1, adv2 = (c1 - c0) / 1e9, (c2 - c0) / 1e9
    print(f"kvmclock advance: {adv1:.3f} s by default ({gap1:.1f} s on the host), "
          f"{adv2:.3f} s with clock_realtime ({gap2:.1f} s on the host)")
    for line in (log1 + log2).splitlines():
        if "kvmclock restored" in line:
            print(line)
    assert 0 <= adv1 < 1.0
    assert gap2 - 1.0 < adv2 < gap2 + 0.5
    assert "kvmclock restored from where it stopped" in log1
    assert "kvmclock restored advanced by the wall-clock time" in log2


def test_clock_realtime_garbage_is_refused(ember, guest, tmp_path):
    sock = str(tmp_path / "api.sock")
    q = start(ember, "--api-sock", sock)
    try:
        wait_sock(sock)
        code, resp = Api(sock).call("PUT", "/snapshot/load", {
            "snapshot_path": "/nonexistent", "mem_file_path": "/nonexistent",
            "clock_realtime": "yes"})
        assert code == 400 and "clock_realtime" in resp["fault_message"], resp
    finally:
        q.kill()
        q.wait()


# ---- when a Diff is allowed ---------------------------------------------------------

def merge(base, diff, out):
    shutil.copy(base, out)
    os.chmod(out, 0o666)
    subprocess.run(["/usr/bin/python3", "scripts/snapshot-merge.py", str(out), str(diff)],
                   check=True, cwd=ROOT)


def test_diff_rules_without_dirty_page_tracking(ember, guest, tmp_path, reference):
    """Firecracker allows a Diff whenever the VM is paused: without
    track_dirty_pages (pages found resident with mincore) and as the first
    snapshot of a booted VM, which then restores on its own. A later Diff
    merged onto it restores too. Running: refused."""
    cfg, _ = make_vm(tmp_path, guest, track_dirty=False)
    sock = str(tmp_path / "api.sock")
    p = start(ember, "--api-sock", sock, "--config-file", cfg)
    try:
        assert read_until(p, r"count: at 100000000\n", 60)[0]
        api = Api(sock)
        body = {"snapshot_path": str(tmp_path / "x.state"),
                "mem_file_path": str(tmp_path / "x.mem"), "snapshot_type": "Diff"}
        code, resp = api.call("PUT", "/snapshot/create", body)
        assert code == 400 and "must be paused" in resp["fault_message"]
        assert not os.path.exists(tmp_path / "x.state")
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        st1, mem1 = diff_now(api, tmp_path, "d1")
        assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
        p, api, st2, mem2 = snapshot_at(ember, tmp_path, cfg, 5 * EVERY, "d2", "Diff", proc=p)
    finally:
        p.kill()
        p.wait()
    r = run_ember(ember, "--no-api", "--restore", st1, "--mem", mem1, "--resume", timeout=60)
    assert r.returncode == 0, r.stderr
    assert done_line(r.stdout) == reference
    merged = tmp_path / "merged.mem"
    merge(mem1, mem2, merged)
    r = run_ember(ember, "--no-api", "--restore", st2, "--mem", merged, "--resume", timeout=60)
    assert r.returncode == 0, r.stderr
    assert not has_line(r.stdout, "count: at 500000000")
    assert done_line(r.stdout) == reference


def diff_now(api, tmp_path, name):
    st, mem = tmp_path / f"{name}.state", tmp_path / f"{name}.mem"
    r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st), "mem_file_path": str(mem),
                                             "snapshot_type": "Diff"})
    assert r[0] == 204, r
    return st, mem


def test_first_diff_with_dirty_page_tracking_restores_alone(ember, guest, tmp_path, reference):
    """With track_dirty_pages, the first snapshot of a booted VM may be a
    Diff too: it holds every page written since boot (ember's own writes,
    the kernel image among them, included), and restores on its own."""
    cfg, _ = make_vm(tmp_path, guest, track_dirty=True)
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, 2 * EVERY, "d", "Diff")
    p.kill()
    p.wait()
    r = run_ember(ember, "--no-api", "--restore", st, "--mem", mem, "--resume", timeout=60)
    assert r.returncode == 0, r.stderr
    assert has_line(r.stdout, "count: at 300000000")
    assert done_line(r.stdout) == reference


def test_diff_onto_an_existing_memory_file_merges_into_it(ember, guest, tmp_path, reference):
    """As Firecracker does, a Diff whose mem_file_path is a memory file of
    the VM's size lands on top of it: Full to m, then Diff to m, and m with
    the Diff's state file restores on its own (still written atomically: a
    new file renamed over the old one). The first memory file stays intact
    for a process that has it open."""
    cfg, _ = make_vm(tmp_path, guest, track_dirty=True)
    p, api, st1, mem = snapshot_at(ember, tmp_path, cfg, 2 * EVERY, "m")
    full_blocks = os.stat(mem).st_blocks
    assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
    assert read_until(p, r"count: at 500000000\n", 60)[0]
    assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
    st2 = tmp_path / "m-diff.state"
    r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st2), "mem_file_path": str(mem),
                                             "snapshot_type": "Diff"})
    p.kill()
    p.wait()
    assert r[0] == 204, r
    # Holes stay holes: the merged file is about the Full one's size on disk.
    assert os.stat(mem).st_blocks < 2 * full_blocks + 1024
    r = run_ember(ember, "--no-api", "--restore", st2, "--mem", mem, "--resume", timeout=60)
    assert r.returncode == 0, r.stderr
    assert not has_line(r.stdout, "count: at 500000000")
    assert has_line(r.stdout, "count: at 600000000")
    assert done_line(r.stdout) == reference


# ---- the guest's own clock (Linux, kvm-clock as its clocksource) ------------------------

class Snap:
    """A snapshot of the Linux base VM, for LinuxVM.restore(fresh_drives=False)."""

    def __init__(self, d):
        self.state, self.mem = d / "s.state", d / "s.mem"


def guest_uptime(vm):
    """The guest's CLOCK_BOOTTIME in seconds (kvm-clock ticks it), and the host's time."""
    _, out = vm.sh("cat /proc/uptime")
    return float(out.split()[0]), time.time()


def test_linux_guest_clock_after_a_restore(ember, vmlinux, tmp_path):
    """The guest's clock (kvm-clock as clocksource) over a snapshot that sat
    GAP_LINUX seconds on disk: by default it goes on from where it stopped
    (it lags the host by that long), with clock_realtime it jumps by it."""
    from linux_vm import LinuxVM, base_snapshot
    base = base_snapshot(ember, vmlinux)
    vm = LinuxVM.restore(ember, base, tmp_path)
    try:
        vm.sh("echo kvm-clock > /sys/devices/system/clocksource/clocksource0/current_clocksource")
        _, cs = vm.sh("cat /sys/devices/system/clocksource/clocksource0/current_clocksource")
        assert cs.strip() == "kvm-clock", cs
        g0, h0 = guest_uptime(vm)
        assert vm.api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        snap = Snap(tmp_path)
        r = vm.api.call("PUT", "/snapshot/create", {"snapshot_path": str(snap.state),
                                                    "mem_file_path": str(snap.mem)})
        assert r[0] == 204, r
        taken = time.time()
    finally:
        vm.close()
    for f in (snap.state, snap.mem):
        os.chmod(f, 0o644)
    lag = {}
    for realtime in (False, True):
        time.sleep(max(0.0, taken + GAP_LINUX - time.time()))
        d = tmp_path / f"rt{int(realtime)}"
        d.mkdir()
        os.chmod(d, 0o777)
        vm = LinuxVM.restore(ember, snap, d, fresh_drives=False,
                             extra={"clock_realtime": realtime})
        try:
            g1, h1 = guest_uptime(vm)
        finally:
            vm.close()
        lag[realtime] = (h1 - h0) - (g1 - g0)
        taken = time.time()  # the second restore waits as long again
    print(f"guest clock behind the host after a {GAP_LINUX:.0f} s gap: {lag[False]:.2f} s by "
          f"default, {lag[True]:.2f} s with clock_realtime")
    assert GAP_LINUX - 1.5 < lag[False] < GAP_LINUX + 10
    assert -1.0 < lag[True] < 1.5
