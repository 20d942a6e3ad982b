"""Host faults the monitor must survive with a clear error and nothing lost:
a drive whose host I/O fails part-way through (FUSE here, device-mapper's
`error` target where the kernel has it), a full file system under a drive
and under a snapshot, and kill -9 in the middle of writing a snapshot.

Every drive test boots the blk guest in mode=3: it writes, flushes and reads
back every drive once, prints each request that failed with the status the
device gave it, says "blk: done" and spins, so the test can check that
ember still answers, read its metrics and stop it with SIGTERM."""
import fcntl
import filecmp
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from contextlib import contextmanager

import pytest

import fcmetrics
from api_client import Api, start_ember
from conftest import BUILD, ember_pid, read_until

FAULTFS = BUILD / "tests/faultfs"
MIB = 1 << 20
CHUNK = 128  # sectors per blk guest request
# The bad range of the faulty drives: 4 KiB at sector 904, inside the
# guest's 64 KiB request at sector 896 (its 8th of 16 on a 1 MiB drive).
BAD_SECTOR, BAD_SECTORS = 904, 8
BAD_CHUNK = BAD_SECTOR // CHUNK * CHUNK


def pattern(drive, first, sectors):
    """The words the blk guest writes: (d << 28) ^ (s * 0x9e3779b1) ^ (o / 4)."""
    out = bytearray()
    for s in range(first, first + sectors):
        base = (drive << 28) ^ ((s * 0x9E3779B1) & 0xFFFFFFFF)
        out += struct.pack("<128I", *[(base ^ w) & 0xFFFFFFFF for w in range(128)])
    return bytes(out)


def make_file(path, size, sparse=False):
    with open(path, "wb") as f:
        if sparse:
            f.truncate(size)
        else:
            f.write(b"\0" * size)
    return path


def sh(*args, check=True):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check,
                          timeout=60)


@contextmanager
def mounted_tmpfs(path, size):
    """A tmpfs of @size at @path, open to the jailed uid, unmounted at the end."""
    os.makedirs(path, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", path)
    try:
        yield path
    finally:
        if sh("umount", path, check=False).returncode:
            sh("umount", "-l", path, check=False)


def fill_up(path):
    """Fill the file system holding @path until it has no byte left."""
    with open(path, "wb", buffering=0) as f:
        block = b"\xee" * 65536
        while True:
            try:
                while f.write(block):
                    pass
            except OSError:
                pass
            try:  # what is left is smaller than a block: one byte at a time
                f.write(b"\xee")
            except OSError:
                return


def vm_config(tmp_path, drives, boot_args="mode=3", kernel=None):
    cfg = tmp_path / "vm.json"
    metrics = tmp_path / "metrics.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(kernel), "boot_args": boot_args},
        "drives": [{"drive_id": i, "path_on_host": str(p), "is_root_device": False,
                    "is_read_only": ro, "io_engine": eng} for i, p, ro, eng in drives],
        "metrics": {"metrics_path": str(metrics)},
    }))
    return cfg, metrics


def drive_totals(lines):
    """Per drive id, its counters over all @lines (each holds the change since
    the one before): Firecracker's block_<id> and ember's own."""
    out = {}
    for drive in lines[-1]["ember"]["block"]:
        c = {k: fcmetrics.total(lines, f"block_{drive}", k)
             for k, v in lines[-1][f"block_{drive}"].items() if isinstance(v, int)}
        c.update({k: fcmetrics.total(lines, "ember", "block", drive, k)
                  for k in lines[-1]["ember"]["block"][drive]})
        out[drive] = c
    return out


def run_blk_guest(ember, guest, tmp_path, drives):
    """Boot the blk guest (mode=3) on @drives [(id, path, read_only, engine)],
    wait for its last request, check that ember still serves its API with
    the VM running, flush metrics, stop ember with SIGTERM (it must exit 0).
    Returns (guest output, ember's stderr, drive_totals() of the metrics)."""
    cfg, metrics = vm_config(tmp_path, drives, kernel=guest("blk.elf"))
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock, "--config-file", cfg)
    try:
        m, out = read_until(p, r"blk: done failed=\d+\n", 60)
        assert m, out
        api = Api(sock)
        code, info = api.call("GET", "/")
        assert code == 200 and info["state"] == "Running", info
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        block = drive_totals(fcmetrics.read(metrics))
        api.close()
        os.kill(ember_pid(p), signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, err.decode()
    finally:
        p.kill()
        p.wait()
    return out, err.decode(), block


def failed_requests(out, drive):
    """The guest's "blk D: OUT|IN|FLUSH sector S status X" lines for @drive."""
    return [(op, int(s), int(st)) for op, s, st in
            re.findall(rf"^blk {drive}: (OUT|IN|FLUSH) sector (\d+) status (\d+)$", out, re.M)]


def check_good_drive(out, block, index, sectors):
    """The other drive of the VM: untouched by the faults."""
    assert (f"blk {index}: id=good capacity={sectors} ro=0 irq={5 + index} wrote={sectors} "
            f"read={sectors} verified={sectors} errors=0") in out, out
    assert block["good"]["io_errors"] == 0
    assert block["good"]["errors"] == 1  # the guest's read past the end, refused on purpose


def check_faulty_drive(out, err, block, drive_path, fill):
    """Drive 0 'faulty' of 2048 sectors with the bad range (BAD_SECTOR, BAD_SECTORS):
    the guest's write and read of the chunk touching it got IOERR, every
    other chunk went through, before and after it."""
    good = 2048 - CHUNK
    assert failed_requests(out, 0) == [("OUT", BAD_CHUNK, 1), ("IN", BAD_CHUNK, 1)], out
    assert (f"blk 0: id=faulty capacity=2048 ro=0 irq=5 wrote={good} read={good} "
            f"verified={good} errors=2") in out, out
    assert "blk: done failed=1" in out
    f = block["faulty"]
    assert f["io_errors"] == 2 and f["errors"] == 3, f  # + the read past the end
    assert f["write_bytes"] == good * 512 and f["read_bytes"] == good * 512, f
    assert f"faulty: write of 65536 bytes at sector {BAD_CHUNK} failed: Input/output error" in err, err
    data = open(drive_path, "rb").read()
    for s in range(0, 2048, CHUNK):
        if s != BAD_CHUNK:
            assert data[s * 512:(s + CHUNK) * 512] == pattern(0, s, CHUNK), f"chunk at {s}"
    bad = data[BAD_SECTOR * 512:(BAD_SECTOR + BAD_SECTORS) * 512]
    assert bad == fill * len(bad), "the bad range was written"


# ---- 1a. EIO from device-mapper's error target ------------------------------------


def fiemap_physical(path, offset):
    """The byte on the file system's device that holds byte @offset of @path."""
    FS_IOC_FIEMAP = 0xC020660B
    n = 32
    buf = bytearray(struct.pack("=QQIIII", 0, 1 << 62, 1, 0, n, 0) + b"\0" * (56 * n))
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)  # flags 1: FIEMAP_FLAG_SYNC
    finally:
        os.close(fd)
    mapped = struct.unpack_from("=I", buf, 20)[0]
    for i in range(mapped):
        logical, physical, length = struct.unpack_from("=QQQ", buf, 32 + 56 * i)
        if logical <= offset < logical + length:
            return physical + offset - logical
    raise AssertionError(f"byte {offset} of {path} is not mapped")


def dm_missing():
    """Why device-mapper cannot be used here, or None."""
    if not shutil.which("dmsetup"):
        return "dmsetup is not installed"
    name = f"ember-probe-{os.getpid()}"
    r = sh("dmsetup", "create", name, "--table", "0 8 zero", check=False)
    if r.returncode:
        why = " ".join(r.stderr.split("\n")[:2]).strip()
        return f"device-mapper unusable on this host (`dmsetup create` failed: {why})"
    sh("dmsetup", "remove", name, check=False)
    return None


@pytest.mark.parametrize("engine", ["Async", "Sync"])
def test_eio_from_dm_error_target(ember, guest, tmp_path, engine):
    """An ext4 file on a device-mapper device whose table is linear, error,
    linear: the error part lies under 4 KiB of the drive file. The drive is
    read-only (reads reach the device; writes would only fail at
    write-back), so the guest's read of the chunk holding it gets IOERR."""
    why = dm_missing()
    if why:
        pytest.skip(why)
    backing = make_file(tmp_path / "dm-backing.img", 32 * MIB, sparse=True)
    loop = sh("losetup", "-f", "--show", backing).stdout.strip()
    name = f"ember-faults-{os.getpid()}-{engine}"
    dev = f"/dev/mapper/{name}"
    mnt = tmp_path / "dm-mnt"
    sectors = 32 * MIB // 512
    try:
        sh("dmsetup", "create", name, "--table", f"0 {sectors} linear {loop} 0")
        sh("mkfs.ext4", "-q", "-F", "-b", "4096", dev)
        mnt.mkdir()
        sh("mount", dev, mnt)
        os.chmod(mnt, 0o777)
        disk = mnt / "disk.img"
        with open(disk, "wb") as f:
            f.write(pattern(0, 0, 2048))
            os.fsync(f.fileno())
        os.chmod(disk, 0o666)
        bad = fiemap_physical(disk, BAD_SECTOR * 512) // 512
        table = (f"0 {bad} linear {loop} 0\n{bad} {BAD_SECTORS} error\n"
                 f"{bad + BAD_SECTORS} {sectors - bad - BAD_SECTORS} linear {loop} {bad + BAD_SECTORS}\n")
        sh("dmsetup", "suspend", name)
        subprocess.run(["dmsetup", "reload", name], input=table, text=True, check=True,
                       capture_output=True)
        sh("dmsetup", "resume", name)
        fd = os.open(disk, os.O_RDONLY)  # nothing of the file stays cached
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        good_disk = make_file(tmp_path / "good.img", 256 << 10)
        out, err, block = run_blk_guest(ember, guest, tmp_path, [
            ("faulty", disk, True, engine), ("good", good_disk, False, engine)])
        assert failed_requests(out, 0) == [("IN", BAD_CHUNK, 1)], out
        assert ("blk 0: id=faulty capacity=2048 ro=1 irq=5 wrote=0 read=1920 verified=0 "
                "errors=1") in out, out
        check_good_drive(out, block, 1, 512)
        assert block["faulty"]["io_errors"] == 1, block
        assert "faulty: read of 65536 bytes" in err and "Input/output error" in err, err
    finally:
        sh("umount", mnt, check=False)
        for _ in range(50):
            if sh("dmsetup", "remove", name, check=False).returncode == 0 or \
               not os.path.exists(dev):
                break
            time.sleep(0.1)
        sh("losetup", "-d", loop, check=False)


# ---- 1b. EIO from a FUSE file system -------------------------------------------


@pytest.fixture
def faultfs(tmp_path):
    """/disk of faultfs (1 MiB, zeros) failing I/O on the bad range; yields
    (path of /disk, backing file, faultfs' log so far as a callable)."""
    assert FAULTFS.exists(), f"{FAULTFS} is missing: run make {FAULTFS.relative_to(BUILD.parent)}"
    backing = make_file(tmp_path / "backing.img", MIB)
    mnt = tmp_path / "fuse"
    mnt.mkdir()
    log = open(tmp_path / "faultfs.log", "w+")
    # allow_other: the jailed ember runs as another uid than the mount's.
    p = subprocess.Popen([str(FAULTFS), str(mnt), "-f", "-s", "-o", "allow_other", "-o",
                          f"backing={backing},bad_offset={BAD_SECTOR * 512},"
                          f"bad_length={BAD_SECTORS * 512}"],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(mnt):
            assert p.poll() is None, open(tmp_path / "faultfs.log").read()
            assert time.monotonic() < deadline, "faultfs did not mount"
            time.sleep(0.01)
        yield mnt / "disk", backing, lambda: open(tmp_path / "faultfs.log").read()
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if os.path.ismount(mnt):
            sh("umount", "-l", mnt, check=False)
        log.close()


@pytest.mark.parametrize("engine", ["Async", "Sync"])
def test_eio_from_fuse(ember, guest, tmp_path, faultfs, engine):
    disk, backing, fslog = faultfs
    good = make_file(tmp_path / "good.img", 256 << 10)
    out, err, block = run_blk_guest(ember, guest, tmp_path, [
        ("faulty", disk, False, engine), ("good", good, False, engine)])
    check_faulty_drive(out, err, block, backing, b"\0")
    check_good_drive(out, block, 1, 512)
    # Those two requests, and only they, touched the bad range.
    refused = set(re.findall(r"faultfs: (read|write) \d+ at (\d+): EIO", fslog()))
    assert refused == {("write", str(BAD_CHUNK * 512)), ("read", str(BAD_CHUNK * 512))}, fslog()


# ---- 2a. ENOSPC under a drive ----------------------------------------------------


@pytest.mark.parametrize("engine", ["Async", "Sync"])
def test_enospc_under_a_drive(ember, guest, tmp_path, engine):
    """A sparse 1 MiB drive on a 480 KiB tmpfs: the guest's writes go
    through until the file system is full (the one at the edge half done),
    then each fails with IOERR; reads of the whole drive keep working, as
    does the other drive, and ember says the disk is full."""
    with mounted_tmpfs(tmp_path / "small", "480k") as small:
        disk = make_file(small / "full.img", MIB, sparse=True)
        good = make_file(tmp_path / "good.img", 256 << 10)
        out, err, block = run_blk_guest(ember, guest, tmp_path, [
            ("faulty", disk, False, engine), ("good", good, False, engine)])
        failed = failed_requests(out, 0)
        # Writes fail from some chunk on, every one after it too; nothing else.
        assert failed, out
        first = failed[0][1]
        assert 3 * CHUNK <= first < 2048, failed
        assert failed == [("OUT", s, 1) for s in range(first, 2048, CHUNK)], out
        m = re.search(rf"^blk 0: id=faulty capacity=2048 ro=0 irq=5 wrote={first} read=2048 "
                      rf"verified=(\d+) errors={len(failed)}$", out, re.M)
        assert m, out
        # The write at the edge may have landed in part before the space ran out.
        assert first <= int(m.group(1)) < first + CHUNK, out
        check_good_drive(out, block, 1, 512)
        assert block["faulty"]["io_errors"] == len(failed), block
        # The first failure is the one at the edge, a short write for the
        # kernel: its log line names the real cause all the same.
        assert (f"faulty: write of 65536 bytes at sector {first} failed: "
                "No space left on device") in err, err
        data = open(disk, "rb").read(first * 512)
        assert data == pattern(0, 0, first)


# ---- 2b. ENOSPC under a snapshot -----------------------------------------------


def count_config(tmp_path, guest, mem_mib=128, initrd=None, track_dirty=False,
                 n=3_000_000_000, every=20_000_000):
    disk = make_file(tmp_path / "count-disk.img", MIB, sparse=True)
    cfg = tmp_path / "count.json"
    boot = {"kernel_image_path": str(guest("count.elf")), "boot_args": f"n={n} every={every}"}
    if initrd:
        boot["initrd_path"] = str(initrd)
    cfg.write_text(json.dumps({
        "boot-source": boot,
        "machine-config": {"vcpu_count": 1, "mem_size_mib": mem_mib,
                           "track_dirty_pages": track_dirty},
        "drives": [{"drive_id": "d0", "path_on_host": str(disk), "is_root_device": False,
                    "is_read_only": False}],
    }))
    return cfg


def snapshot(api, st, mem, kind="Full"):
    return api.call("PUT", "/snapshot/create", {"snapshot_path": str(st), "mem_file_path": str(mem),
                                                "snapshot_type": kind})


def restore_runs(ember, tmp_path, st, mem, name):
    """Load the pair in a fresh ember and see the count guest go on."""
    sock = str(tmp_path / f"{name}.sock")
    q = start_ember(ember, sock)
    try:
        r = Api(sock).call("PUT", "/snapshot/load", {
            "snapshot_path": str(st), "resume_vm": True,
            "mem_backend": {"backend_type": "File", "backend_path": str(mem)}})
        assert r[0] == 204, r
        m, out = read_until(q, r"count: at \d+\n", 30)
        assert m, out
    finally:
        q.kill()
        q.wait()


def test_enospc_during_snapshot_create(ember, guest, tmp_path):
    """Snapshot files on a full tmpfs: 400 saying there is no space, nothing
    left behind, an older snapshot at the same paths untouched and still
    loadable; the VM resumes and runs on, and a later snapshot works. A
    Diff that failed half-way consumed the dirty log: the next Diff holds
    every page, and restores on its own."""
    cfg = count_config(tmp_path, guest, track_dirty=True)
    sock = str(tmp_path / "api.sock")
    with mounted_tmpfs(tmp_path / "small", "1m") as small:
        p = start_ember(ember, sock, "--config-file", cfg)
        try:
            assert read_until(p, r"count: at \d+\n", 30)[0]
            api = Api(sock)
            assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
            # An older snapshot whose memory file lives on the small tmpfs.
            old_st, old_mem = tmp_path / "old.state", small / "old.mem"
            assert snapshot(api, old_st, old_mem)[0] == 204
            old = (open(old_st, "rb").read(), open(old_mem, "rb").read())
            fill_up(small / "filler")
            before = sorted(os.listdir(small)), sorted(os.listdir(tmp_path))

            cases = [(tmp_path / "a.state", small / "a.mem", "Full"),  # memory file: no space
                     (small / "b.state", tmp_path / "b.mem", "Full"),  # state file: no space
                     (old_st, old_mem, "Full"),  # over the older snapshot
                     (tmp_path / "d.state", small / "d.mem", "Diff")]
            for st, mem, kind in cases:
                if kind == "Diff":  # let the guest dirty some pages for it
                    assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
                    assert read_until(p, r"count: at \d+\n", 30)[0]
                    assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
                code, resp = snapshot(api, st, mem, kind)
                assert code == 400, (st, mem, resp)
                print(f"{kind} to {st.name}, {mem.name}: {resp['fault_message']}")
                assert "No space left on device" in resp["fault_message"], resp
                if kind == "Diff":
                    assert "the next snapshot holds every page" in resp["fault_message"], resp
                assert "mem_file_path" in resp["fault_message"] or \
                       "snapshot_path" in resp["fault_message"], resp
                # Nothing new on either file system, not even a temporary file.
                assert (sorted(os.listdir(small)), sorted(os.listdir(tmp_path))) == before, st
            assert (open(old_st, "rb").read(), open(old_mem, "rb").read()) == old

            # The failed Diff read (and cleared) part of the dirty log: the
            # next Diff cannot build on the older snapshot, so it holds every
            # page (as large as a Full one) and restores on its own below.
            diff_st, diff_mem = tmp_path / "e.state", tmp_path / "e.mem"
            assert snapshot(api, diff_st, diff_mem, "Diff")[0] == 204
            assert os.path.getsize(diff_mem) == os.path.getsize(old_mem)

            # The VM is whole: it resumes and counts on; a snapshot works again.
            assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
            assert api.call("GET", "/")[1]["state"] == "Running"
            assert read_until(p, r"count: at \d+\n", 30)[0]
            assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
            new_st, new_mem = tmp_path / "new.state", tmp_path / "new.mem"
            assert snapshot(api, new_st, new_mem)[0] == 204
        finally:
            p.kill()
            p.wait()
        restore_runs(ember, tmp_path, old_st, old_mem, "old")
        restore_runs(ember, tmp_path, new_st, new_mem, "new")
        restore_runs(ember, tmp_path, diff_st, diff_mem, "diff")


# ---- 3. kill -9 while a snapshot is being written --------------------------------


def send_create(sock, st, mem):
    """Send PUT /snapshot/create and do not wait for the answer."""
    body = json.dumps({"snapshot_path": str(st), "mem_file_path": str(mem),
                       "snapshot_type": "Full"})
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall((f"PUT /snapshot/create HTTP/1.1\r\nHost: localhost\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
    return s


CLEAR_REFUSALS = ("cannot open snapshot_path", "CRC mismatch", "bad magic or truncated",
                  "the snapshot's VM has")


def load_outcome(ember, st, mem, initrd_at, initrd):
    """Load (@st, @mem) in a fresh ember: ('refused', reason) with exit 75 and
    no guest run, or ('loaded', None) with the guest counting on. A load
    must only be accepted when the memory file is whole."""
    p = subprocess.Popen([str(ember), "--no-api", "--restore", str(st), "--mem", str(mem), "--resume"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        m, out = read_until(p, r"count: at \d+\n", 20)
        if m:
            # It runs: then it must run from a whole snapshot. The initrd's
            # bytes fill most of guest RAM and never change.
            with open(mem, "rb") as f:
                f.seek(initrd_at)
                assert f.read(len(initrd)) == initrd, "a VM was restored from a torn memory file"
            return "loaded", None
        p.wait(20)
        err = p.stderr.read().decode()
        assert p.returncode == 75, (p.returncode, err)
        assert "count:" not in out
        reason = [x for x in err.splitlines() if "ERROR" in x or "error" in x.lower()]
        assert any(c in err for c in CLEAR_REFUSALS), err
        return "refused", reason[-1] if reason else err
    finally:
        p.kill()
        p.wait()


def kill_during_create(ember, tmp_path, name, base, st, mem, delay):
    """Restore @base, let the guest run, pause, ask for a snapshot to (@st,
    @mem) and kill -9 ember @delay seconds later (None: once it answered).
    Returns how long the create took when it was let finish."""
    sock = str(tmp_path / f"{name}.sock")
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        assert api.call("PUT", "/snapshot/load", {
            "snapshot_path": str(base[0]), "resume_vm": True,
            "mem_backend": {"backend_type": "File", "backend_path": str(base[1])}})[0] == 204
        assert read_until(p, r"count: at \d+\n", 30)[0]
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        t0 = time.monotonic()
        conn = send_create(sock, st, mem)
        if delay is None:
            assert conn.recv(4096).startswith(b"HTTP/1.1 204"), "create failed"
        else:
            time.sleep(delay)
        took = time.monotonic() - t0
        os.kill(ember_pid(p), signal.SIGKILL)
        p.wait()
        conn.close()
        return took
    finally:
        p.kill()
        p.wait()


def test_kill_9_during_snapshot_create(ember, guest, tmp_path):
    """A 256 MiB guest whose RAM holds a 160 MiB random initrd: writing its
    memory file takes a while. ember is killed at several points of a
    snapshot create, to fresh paths and over an older snapshot; every time,
    the paths then hold a snapshot that loads and runs whole, or one the
    load refuses with a clear error, never a VM built from torn files."""
    with mounted_tmpfs(tmp_path / "snaps", "2g") as d:
        initrd = os.urandom(160 * MIB)
        (d / "initrd").write_bytes(initrd)
        cfg = count_config(tmp_path, guest, mem_mib=256, initrd=d / "initrd")
        sock = str(tmp_path / "boot.sock")
        p = start_ember(ember, sock, "--config-file", cfg)
        try:
            assert read_until(p, r"count: at \d+\n", 30)[0]
            api = Api(sock)
            assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
            base = d / "base.state", d / "base.mem"
            assert snapshot(api, *base)[0] == 204
        finally:
            p.kill()
            p.wait()
        base_mem = open(base[1], "rb").read()
        initrd_at = base_mem.find(initrd[:4096])
        assert initrd_at >= 0 and base_mem[initrd_at:initrd_at + len(initrd)] == initrd
        del base_mem

        # How long a create takes from a restored VM, as in the runs below;
        # killed after its answer, the snapshot must load.
        took = kill_during_create(ember, tmp_path, "whole", base, d / "w.state", d / "w.mem", None)
        print(f"a full snapshot of the 256 MiB guest took {took * 1000:.0f} ms")
        assert load_outcome(ember, d / "w.state", d / "w.mem", initrd_at, initrd)[0] == "loaded"

        outcomes = []
        # (delay as a share of a whole create, over an older snapshot?)
        plan = [(0.0, False), (0.3, False), (0.6, False), (0.2, True), (0.5, True), (0.8, True)]
        for i, (share, overwrite) in enumerate(plan):
            st, mem = d / f"k{i}.state", d / f"k{i}.mem"
            if overwrite:  # an older, complete snapshot at the same paths
                for src, dst in zip(base, (st, mem)):
                    shutil.copyfile(src, dst)
                    os.chmod(dst, 0o666)
            before = set(os.listdir(d))
            kill_during_create(ember, tmp_path, f"k{i}", base, st, mem, share * took)
            # A temporary file left behind: the kill came while writing.
            torn = sorted(set(os.listdir(d)) - before - {st.name, mem.name})
            outcome = load_outcome(ember, st, mem, initrd_at, initrd)
            if outcome[0] == "loaded" and overwrite and \
               open(st, "rb").read() == open(base[0], "rb").read():
                # The older state file is still there: then its memory file too, whole.
                assert filecmp.cmp(mem, base[1], shallow=False), "older state, newer memory"
            outcomes.append((share, overwrite, torn, outcome))
            for f in [st, mem] + [d / t for t in torn]:
                if os.path.exists(f):
                    os.unlink(f)
        print("\n".join(f"kill at {s:.1f} x create time, over an older snapshot {o}, "
                        f"left {t}: {r}" for s, o, t, r in outcomes))
        # Killed right away, nothing written yet: nothing to load.
        assert outcomes[0][3][0] == "refused"
        assert any(t for _, _, t, _ in outcomes), "no kill landed while the files were written"
