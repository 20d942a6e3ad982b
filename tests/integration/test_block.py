"""virtio-blk with real files, booted with the blk test guest (which runs
its driver at ring 3): patterns over every sector, read-only drives, and
durability of acknowledged writes across kill -9 in writeback mode."""
import hashlib
import re
import signal
import struct
import subprocess

import pytest

import fcmetrics
from conftest import read_until, run_ember

BAD_DRIVE = 67
USAGE = 64


def pattern(drive, sectors):
    """The words the guest writes: (d << 28) ^ (s * 0x9e3779b1) ^ (o / 4)."""
    out = bytearray()
    for s in range(sectors):
        base = (drive << 28) ^ ((s * 0x9E3779B1) & 0xFFFFFFFF)
        out += struct.pack("<128I", *[(base ^ w) & 0xFFFFFFFF for w in range(128)])
    return bytes(out)


def make_disk(path, size, fill=b"\0"):
    with open(path, "wb") as f:
        f.write(fill * size)
    return path


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_one_drive_every_sector(ember, guest, tmp_path, engine):
    disk = make_disk(tmp_path / "disk.img", 1 << 20)
    r = run_ember(ember, "--kernel", guest("blk.elf"),
                  "--drive", f"path={disk},id=rootfs,io_engine={engine}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "blk 0: id=rootfs capacity=2048 ro=0 irq=5 wrote=2048 read=2048 verified=2048 errors=0" in r.stdout
    assert open(disk, "rb").read() == pattern(0, 2048)


def test_three_drives_and_a_read_only_one(ember, guest, tmp_path):
    a = make_disk(tmp_path / "a.img", 512 << 10)
    b = make_disk(tmp_path / "b.img", 256 << 10)
    ro = make_disk(tmp_path / "ro.img", 128 << 10, fill=b"\xa5")
    before = digest(ro)
    r = run_ember(ember, "--kernel", guest("blk.elf"), "--level", "info",
                  "--drive", f"path={a},id=data-a",
                  "--drive", f"path={b},id=data-b,cache=writeback,io_engine=sync",
                  "--drive", f"path={ro},id=ro-disk,ro=on")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "blk: 3 virtio-mmio device(s) in the device tree" in out
    assert "blk 0: id=data-a capacity=1024 ro=0 irq=5 wrote=1024 read=1024 verified=1024 errors=0" in out
    assert "blk 1: id=data-b capacity=512 ro=0 irq=6 wrote=512 read=512 verified=512 errors=0" in out
    # The guest's write to the read-only drive failed with IOERR (errors=0
    # means it saw exactly that), and the file did not change.
    assert "blk 2: id=ro-disk capacity=256 ro=1 irq=7 wrote=0 read=256 verified=0 errors=0" in out
    assert digest(ro) == before
    assert open(a, "rb").read() == pattern(0, 1024)
    assert open(b, "rb").read() == pattern(1, 512)
    # The command line carries the same devices as the device tree.
    assert re.search(r"virtio_mmio\.device=4K@0xd0001000:5 virtio_mmio\.device=4K@0xd0002000:6 "
                     r"virtio_mmio\.device=4K@0xd0003000:7", out) is None  # not echoed by blk
    r2 = run_ember(ember, "--kernel", guest("hello.elf"), "--drive", f"path={a}",
                   "--drive", f"path={ro},ro=on")
    assert ("cmdline: virtio_mmio.device=4K@0xd0001000:5 virtio_mmio.device=4K@0xd0002000:6\n"
            in r2.stdout)


def test_acknowledged_writes_survive_kill_9(ember, guest, tmp_path):
    disk = make_disk(tmp_path / "durable.img", 256 << 10, fill=b"\xff")
    p = subprocess.Popen([str(ember), "--kernel", str(guest("blk.elf")), "--cmdline", "mode=1",
                          "--drive", f"path={disk},id=durable,cache=writeback"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        m, out = read_until(p, r"blk: durable acked (\d+)\n", 60)
        assert m and m.group(1) == "512", out
        # The guest has its flush acknowledged; the monitor dies without
        # any chance to clean up.
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        p.kill()
    assert p.returncode == -signal.SIGKILL
    assert open(disk, "rb").read() == pattern(0, 512)


CASES = [
    (["--drive", "path=/nonexistent/disk.img"], BAD_DRIVE, "cannot open"),
    (["--drive", "path={dir}"], BAD_DRIVE, "Is a directory"),
    (["--drive", "path=/dev/null"], BAD_DRIVE, "not a regular file"),
    (["--drive", "id=x"], USAGE, "path= is required"),
    (["--drive", "path={disk},ro=maybe"], USAGE, "bad drive option"),
    (["--drive", "path={disk},cache=none"], USAGE, "bad drive option"),
    (["--drive", "path={disk},io_engine=aio"], USAGE, "bad drive option"),
    (["--drive", "path={disk},frob=1"], USAGE, "bad drive option"),
    (["--drive", "path={disk},id=a/b"], USAGE, "drive id"),
    (["--drive", "path={disk},id=" + "x" * 65], USAGE, "drive id"),
    (["--drive", "path={disk},id=d", "--drive", "path={disk},id=d"], USAGE, "used twice"),
    (["--drive", "path={disk},oops"], USAGE, "key=value"),
]


@pytest.mark.parametrize("args,code,words", CASES, ids=[" ".join(c[0])[:50] for c in CASES])
def test_bad_drive_input(ember, guest, tmp_path, args, code, words):
    disk = make_disk(tmp_path / "d.img", 4096)
    argv = [a.format(dir=tmp_path, disk=disk) for a in args]
    r = run_ember(ember, "--kernel", guest("blk.elf"), "--show-level", *argv)
    assert r.returncode == code, r.stderr
    errors = [line for line in r.stderr.splitlines() if ":ERROR]" in line or line.startswith("ember:")]
    assert len(errors) == 1 and words in errors[0], r.stderr
    assert r.stdout == ""


def test_rate_limiter_holds_the_guest_to_its_budget(ember, guest, tmp_path):
    import json
    import time
    disk = make_disk(tmp_path / "slow.img", 1 << 20)
    metrics = tmp_path / "metrics.json"
    cfg = tmp_path / "vm.json"
    # 512 KiB per 250 ms (2 MiB/s), bucket starting full: the guest moves
    # 2 MiB (1 MiB written, 1 MiB read back), so at least 0.75 s of waiting.
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("blk.elf"))},
        "drives": [{"drive_id": "slow", "path_on_host": str(disk), "is_root_device": False,
                    "rate_limiter": {"bandwidth": {"size": 512 << 10, "refill_time": 250}}}],
        "metrics": {"metrics_path": str(metrics)},
    }))
    t0 = time.monotonic()
    r = run_ember(ember, "--config-file", cfg, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "blk 0: id=slow capacity=2048 ro=0 irq=5 wrote=2048 read=2048 verified=2048 errors=0" in r.stdout
    lines = fcmetrics.read(metrics)
    assert fcmetrics.total(lines, "block_slow", "rate_limiter_throttled_events") > 0
    assert fcmetrics.total(lines, "block_slow", "rate_limiter_event_count") > 0
    assert elapsed >= 0.75, f"2 MiB at 2 MiB/s with a 512 KiB bucket took only {elapsed:.2f} s"
    print(f"rate-limited run took {elapsed:.2f} s")
