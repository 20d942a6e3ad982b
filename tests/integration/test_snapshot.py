"""Snapshots end to end: the count guest computes at ring 3 and records its
progress on a drive; snapshotted anywhere and restored, it must finish with
the result of an uninterrupted run."""
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

from api_client import Api
from conftest import read_until, run_ember

N = 1_000_000_000
EVERY = 100_000_000
DONE_TAG = 0x454E4F44


def make_vm(tmp_path, guest, vcpus=1, track_dirty=False):
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("count.elf")),
                        "boot_args": f"n={N} every={EVERY}"},
        "machine-config": {"vcpu_count": vcpus, "mem_size_mib": 128,
                           "track_dirty_pages": track_dirty},
        "drives": [{"drive_id": "d0", "path_on_host": str(disk), "is_root_device": False,
                    "is_read_only": False}],
    }))
    return cfg, disk


def wait_sock(path, timeout=10):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def start(ember, *args):
    return subprocess.Popen([str(ember), *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def done_line(text):
    lines = [x for x in text.splitlines() if x.startswith("count: done")]
    assert len(lines) == 1, text
    return lines[0]


def has_line(text, line):
    return line in text.splitlines()


def disk_result(disk):
    with open(disk, "rb") as f:
        f.seek(512)
        tag, step, acc = struct.unpack("<QQQ", f.read(24))
    return tag, step, acc


@pytest.fixture(scope="module")
def reference(ember, guest, tmp_path_factory):
    """The uninterrupted run's result line."""
    cfg, _ = make_vm(tmp_path_factory.mktemp("ref"), guest)
    r = run_ember(ember, "--no-api", "--config-file", cfg, timeout=120)
    assert r.returncode == 0, r.stderr
    return done_line(r.stdout)


def snapshot_at(ember, tmp_path, cfg, step, name="snap", kind="Full", proc=None):
    """Run (or keep running) the VM until it reports @step, then pause and snapshot."""
    sock = str(tmp_path / "api.sock")
    p = proc or start(ember, "--api-sock", sock, "--config-file", cfg)
    m, text = read_until(p, rf"count: at {step}\n", 60)
    assert m, text
    api = Api(sock)
    assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
    st, mem = tmp_path / f"{name}.state", tmp_path / f"{name}.mem"
    r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st), "mem_file_path": str(mem),
                                             "snapshot_type": kind})
    assert r[0] == 204, r
    return p, api, st, mem


def load_api(ember, tmp_path, body, name="load.sock"):
    sock = str(tmp_path / name)
    p = start(ember, "--api-sock", sock)
    wait_sock(sock)
    return p, Api(sock).call("PUT", "/snapshot/load", body)


@pytest.mark.parametrize("vcpus", [1, 2])
def test_restore_mid_run_finishes_like_an_uninterrupted_run(ember, guest, tmp_path, reference, vcpus):
    cfg, disk = make_vm(tmp_path, guest, vcpus)
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, 3 * EVERY)
    p.kill()
    p.wait()
    q, r = load_api(ember, tmp_path, {"snapshot_path": str(st), "resume_vm": True,
                                      "mem_backend": {"backend_type": "File", "backend_path": str(mem)}})
    assert r[0] == 204, r
    out, err = q.communicate(timeout=60)
    assert q.returncode == 0, err
    text = out.decode()
    assert not has_line(text, "count: at 100000000")  # it went on from where it was
    assert has_line(text, "count: at 400000000")
    assert done_line(text) == reference
    tag, step, acc = disk_result(disk)
    assert tag == DONE_TAG and step == N and f"acc={acc:#x}" in reference


def test_cli_restore_paused_then_resumed(ember, guest, tmp_path, reference):
    cfg, _ = make_vm(tmp_path, guest)
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, 5 * EVERY)
    p.kill()
    p.wait()
    sock = str(tmp_path / "restored.sock")
    q = start(ember, "--api-sock", sock, "--restore", st, "--mem", mem)
    try:
        wait_sock(sock)
        api = Api(sock)
        assert api.call("GET", "/")[1]["state"] == "Paused"
        time.sleep(0.3)
        assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
        out, _ = q.communicate(timeout=60)
        assert done_line(out.decode()) == reference
    finally:
        q.kill()


def test_uffd_with_and_without_prefetch_matches_file(ember, guest, tmp_path, reference):
    cfg, disk = make_vm(tmp_path, guest)
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, 4 * EVERY)
    p.kill()
    p.wait()
    ws = tmp_path / "working-set"
    # First restore through userfaultfd records the pages it touches ...
    q, r = load_api(ember, tmp_path, {"snapshot_path": str(st), "resume_vm": True, "mem_backend": {
        "backend_type": "Uffd", "backend_path": str(mem), "working_set_path": str(ws),
        "working_set_mode": "Record"}})
    assert r[0] == 204, r
    out, err = q.communicate(timeout=60)
    assert q.returncode == 0, err
    assert done_line(out.decode()) == reference
    pages = os.path.getsize(ws) // 8
    print(f"working set: {pages} pages")
    assert pages > 0
    # ... the next copies them in before the guest runs, and faults in the rest.
    r = run_ember(ember, "--no-api", "--level", "info", "--restore", st, "--mem", mem, "--resume",
                  "--uffd", "--ws-prefetch", ws, timeout=60)
    assert r.returncode == 0, r.stderr
    assert done_line(r.stdout) == reference
    assert f"{pages} pages prefetched" in r.stderr or "pages prefetched" in r.stderr
    # And a plain Uffd restore, neither recording nor prefetching.
    r = run_ember(ember, "--no-api", "--restore", st, "--mem", mem, "--resume", "--uffd", timeout=60)
    assert r.returncode == 0, r.stderr
    assert done_line(r.stdout) == reference
    tag, step, acc = disk_result(disk)
    assert tag == DONE_TAG and step == N


HANDLER = r"""
import array, ctypes, errno, fcntl, json, mmap, os, socket, struct, sys
sock_path, mem_path = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX)
srv.bind(sock_path)
srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_LEN(4))
fds = array.array("i")
for level, kind, data in anc:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[:4])
uffd, maps = fds[0], json.loads(msg)
print("mappings", len(maps), flush=True)
f = open(mem_path, "rb")
mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
src = ctypes.addressof(ctypes.c_char.from_buffer(mm))
UFFDIO_COPY, PAGEFAULT = 0xC028AA03, 0x12
served = 0
while True:
    ev = os.read(uffd, 32)
    if len(ev) < 32:
        break
    if ev[0] != PAGEFAULT:
        continue
    addr = struct.unpack_from("<Q", ev, 16)[0] & ~4095
    m = next(m for m in maps if m["base_host_virt_addr"] <= addr < m["base_host_virt_addr"] + m["size"])
    off = m["offset"] + addr - m["base_host_virt_addr"]
    try:
        fcntl.ioctl(uffd, UFFDIO_COPY, bytearray(struct.pack("<QQQQq", addr, src + off, 4096, 0, 0)))
    except OSError as e:
        if e.errno != errno.EEXIST:
            raise
    served += 1
    if served == 1:
        print("served", flush=True)
"""


def test_external_uffd_handler(ember, guest, tmp_path, reference):
    """Firecracker's scheme: backend_path names a handler's socket; ember sends
    it the memory layout and the userfaultfd, the handler serves the faults."""
    cfg, _ = make_vm(tmp_path, guest)
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, 3 * EVERY)
    p.kill()
    p.wait()
    hsock = str(tmp_path / "handler.sock")
    h = subprocess.Popen(["/usr/bin/python3", "-c", HANDLER, hsock, str(mem)], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert h.stdout.readline() == "ready\n"
        q, r = load_api(ember, tmp_path, {"snapshot_path": str(st), "resume_vm": True, "mem_backend": {
            "backend_type": "Uffd", "backend_path": hsock}})
        assert r[0] == 204, r
        out, err = q.communicate(timeout=60)
        assert q.returncode == 0, err
        assert done_line(out.decode()) == reference
        assert h.stdout.readline() == "mappings 1\n"
        assert h.stdout.readline() == "served\n"
    finally:
        h.kill()
        h.wait()


def test_bad_working_set_is_refused(ember, snap, tmp_path):
    st, mem, _ = snap
    ws = tmp_path / "ws"
    ws.write_bytes(struct.pack("<QQ", 0, 1 << 40))  # a page far outside the memory file
    r = run_ember(ember, "--no-api", "--restore", st, "--mem", mem, "--resume", "--uffd",
                  "--ws-prefetch", ws, timeout=30)
    assert r.returncode == 75 and "outside the memory file" in r.stderr, r.stderr
    ws.write_bytes(b"odd")
    r = run_ember(ember, "--no-api", "--restore", st, "--mem", mem, "--resume", "--uffd",
                  "--ws-prefetch", ws, timeout=30)
    assert r.returncode == 75 and "malformed" in r.stderr, r.stderr


def test_twenty_restores_at_once(ember, guest, tmp_path, reference):
    cfg, _ = make_vm(tmp_path, guest)
    p, _, st, mem = snapshot_at(ember, tmp_path, cfg, 9 * EVERY)
    p.kill()
    p.wait()
    clones = [start(ember, "--no-api", "--restore", st, "--mem", mem, "--resume") for _ in range(20)]
    results = [c.communicate(timeout=120) for c in clones]
    for c, (out, err) in zip(clones, results):
        assert c.returncode == 0, err
        assert done_line(out.decode()) == reference


def test_full_then_diff_chain(ember, guest, tmp_path, reference):
    cfg, _ = make_vm(tmp_path, guest, track_dirty=True)
    p, api, st1, mem1 = snapshot_at(ember, tmp_path, cfg, 2 * EVERY, "full")
    # Diffs without a base or without tracking: test_snapshot_semantics.py.
    assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
    p, api, st2, mem2 = snapshot_at(ember, tmp_path, cfg, 6 * EVERY, "diff", "Diff", proc=p)
    p.kill()
    p.wait()
    full_blocks = os.stat(mem1).st_blocks
    diff_blocks = os.stat(mem2).st_blocks
    print(f"full memory file: {full_blocks * 512} bytes on disk, diff: {diff_blocks * 512}")
    assert 0 < diff_blocks < full_blocks
    merged = tmp_path / "merged.mem"
    shutil.copy(mem1, merged)
    os.chmod(merged, 0o666)  # copied as root; ember may run as another uid (make test-jailed)
    subprocess.run(["/usr/bin/python3", "scripts/snapshot-merge.py", str(merged), str(mem2)],
                   check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    r = run_ember(ember, "--no-api", "--restore", st2, "--mem", merged, "--resume", timeout=60)
    assert r.returncode == 0, r.stderr
    assert not has_line(r.stdout, "count: at 600000000")
    assert has_line(r.stdout, "count: at 700000000")
    assert done_line(r.stdout) == reference


# ---- bad input: each gets a clear error, no VM runs, nothing is written ----

@pytest.fixture(scope="module")
def snap(ember, guest, tmp_path_factory):
    d = tmp_path_factory.mktemp("snap")
    cfg, disk = make_vm(d, guest)
    p, _, st, mem = snapshot_at(ember, d, cfg, EVERY)
    p.kill()
    p.wait()
    return st, mem, disk


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def restore_fails(ember, st, mem, want):
    before = (digest(st), digest(mem)) if os.path.exists(st) else None
    r = run_ember(ember, "--no-api", "--restore", st, "--mem", mem, "--resume", timeout=30)
    assert r.returncode == 75, r.stdout + r.stderr
    assert want in r.stderr, r.stderr
    assert "count:" not in r.stdout  # no guest ran
    if before:
        assert (digest(st), digest(mem)) == before
    return r


def patched(tmp_path, st, off, data):
    b = bytearray(open(st, "rb").read())
    b[off:off + len(data)] = data
    out = tmp_path / "patched.state"
    out.write_bytes(bytes(b))
    return out


def test_truncated_state_file(ember, snap, tmp_path):
    st, mem, _ = snap
    cut = tmp_path / "cut.state"
    cut.write_bytes(open(st, "rb").read()[:1000])
    restore_fails(ember, cut, mem, "CRC mismatch")
    cut.write_bytes(b"EMBER")
    restore_fails(ember, cut, mem, "bad magic or truncated")


def test_corrupted_state_file(ember, snap, tmp_path):
    st, mem, _ = snap
    size = os.path.getsize(st)
    restore_fails(ember, patched(tmp_path, st, size // 2, b"\xff\x00\xff"), mem, "CRC mismatch")


def test_wrong_version(ember, snap, tmp_path):
    st, mem, _ = snap
    restore_fails(ember, patched(tmp_path, st, 12, struct.pack("<I", 99)), mem, "format version")


def test_wrong_architecture(ember, snap, tmp_path):
    st, mem, _ = snap
    restore_fails(ember, patched(tmp_path, st, 8, struct.pack("<I", 0xAA64)), mem,
                  "another architecture")


def test_oversized_state_file(ember, snap, tmp_path):
    st, mem, _ = snap
    big = tmp_path / "big.state"
    with open(big, "wb") as f:
        f.write(open(st, "rb").read())
        f.truncate(17 << 20)
    restore_fails(ember, big, mem, "too large")


def test_memory_file_of_the_wrong_size(ember, snap, tmp_path):
    st, mem, _ = snap
    small = tmp_path / "small.mem"
    with open(small, "wb") as f:
        f.truncate(64 << 20)
    restore_fails(ember, st, small, "the snapshot's VM has 134217728")


def test_missing_drive(ember, snap, tmp_path):
    st, mem, disk = snap
    moved = str(disk) + ".away"
    os.rename(disk, moved)
    try:
        restore_fails(ember, st, mem, f"drive file '{disk}' cannot be opened")
    finally:
        os.rename(moved, disk)


def test_load_api_errors(ember, snap, tmp_path, guest):
    st, mem, _ = snap
    file_backend = {"backend_type": "File", "backend_path": str(mem)}
    handler = tmp_path / "handler.sock"
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(str(handler))
    p, r = load_api(ember, tmp_path, {"snapshot_path": str(st), "mem_backend": {
        "backend_type": "Uffd", "backend_path": str(handler), "working_set_path": "/tmp/ws",
        "working_set_mode": "Record"}})
    lsock.close()
    try:
        assert r[0] == 400 and "ember's own userfaultfd handler" in r[1]["fault_message"]
        api = Api(str(tmp_path / "load.sock"))
        code, resp = api.call("PUT", "/snapshot/load", {"snapshot_path": str(st), "mem_backend": {
            **file_backend, "working_set_path": "/tmp/ws", "working_set_mode": "Record"}})
        assert code == 400 and "backend_type Uffd" in resp["fault_message"]
        code, resp = api.call("PUT", "/snapshot/load", {"snapshot_path": str(st)})
        assert code == 400 and "mem_backend" in resp["fault_message"]
        code, resp = api.call("PUT", "/snapshot/load", {
            "snapshot_path": str(st), "mem_backend": file_backend,
            "network_overrides": [{"iface_id": "eth9", "host_dev_name": "tap9"}]})
        assert code == 400 and "no interface 'eth9'" in resp["fault_message"]
        # Configuration first, then a load: refused.
        assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("count.elf"))})[0] == 204
        code, resp = api.call("PUT", "/snapshot/load", {"snapshot_path": str(st),
                                                        "mem_backend": file_backend})
        assert code == 400 and "must be the first configuration" in resp["fault_message"]
    finally:
        p.kill()
        p.wait()


def test_network_and_vsock_overrides(ember, guest, tmp_path, reference):
    """A snapshot of a VM with a TAP and a vsock loads with both moved:
    the TAP named in network_overrides and the vsock socket at the new path.
    A TAP name the kernel refuses is a clear error."""
    ns = f"ember-snap-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for tap in ("tap0", "tap1"):  # usable by the jailed uid of `make test-jailed` too
            subprocess.run(["ip", "netns", "exec", ns, "ip", "tuntap", "add", "dev", tap, "mode",
                            "tap", "user", "65534"], check=True)
        cfg, _ = make_vm(tmp_path, guest)
        c = json.loads(cfg.read_text())
        c["network-interfaces"] = [{"iface_id": "eth0", "host_dev_name": "tap0"}]
        c["vsock"] = {"guest_cid": 3, "uds_path": str(tmp_path / "v1.sock")}
        cfg.write_text(json.dumps(c))
        sock = str(tmp_path / "api.sock")
        p = subprocess.Popen(["ip", "netns", "exec", ns, str(ember), "--api-sock", sock,
                              "--config-file", str(cfg)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p, _, st, mem = snapshot_at(ember, tmp_path, cfg, 3 * EVERY, proc=p)
        p.kill()
        p.wait()
        os.unlink(tmp_path / "v1.sock")  # left by the kill
        backend = {"backend_type": "File", "backend_path": str(mem)}
        # A TAP the kernel will not create: refused, nothing runs.
        lsock = str(tmp_path / "l1.sock")
        q = subprocess.Popen(["ip", "netns", "exec", ns, str(ember), "--api-sock", lsock],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_sock(lsock)
        r = Api(lsock).call("PUT", "/snapshot/load", {
            "snapshot_path": str(st), "mem_backend": backend, "resume_vm": True,
            "network_overrides": [{"iface_id": "eth0", "host_dev_name": "bad/name"}]})
        assert r[0] == 400, r
        q.kill()
        q.wait()
        # Moved to tap1 and v2.sock: it runs to the end there.
        lsock = str(tmp_path / "l2.sock")
        q = subprocess.Popen(["ip", "netns", "exec", ns, str(ember), "--api-sock", lsock],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_sock(lsock)
        r = Api(lsock).call("PUT", "/snapshot/load", {
            "snapshot_path": str(st), "mem_backend": backend, "resume_vm": True,
            "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap1"}],
            "vsock_override": {"uds_path": str(tmp_path / "v2.sock")}})
        assert r[0] == 204, r
        assert os.path.exists(tmp_path / "v2.sock") and not os.path.exists(tmp_path / "v1.sock")
        links = subprocess.run(["ip", "netns", "exec", ns, "ip", "-o", "link"], capture_output=True,
                               text=True).stdout
        assert "tap1" in links
        cfg_now = Api(lsock).call("GET", "/vm/config")[1]
        assert cfg_now["network-interfaces"][0]["host_dev_name"] == "tap1"
        assert cfg_now["vsock"]["uds_path"] == str(tmp_path / "v2.sock")
        out, err = q.communicate(timeout=60)
        assert q.returncode == 0, err
        assert done_line(out.decode()) == reference
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
