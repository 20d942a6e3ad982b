"""The guest kit's function runtime (guest/kit/fn.h) end to end, from the
host's side of its wire protocol: each example image boots in ember with a
vsock device, says "EMBERRDY" on <uds>_1025, and answers request frames on
guest port 1024 (u32 LE length + bytes in; u32 LE status, u32 LE length +
bytes out). One-shot images power off after one request (ember exits 0);
fn_warm=1 on the command line keeps serving."""
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import time

import pytest

from api_client import Api
from conftest import ember_pid, read_until
from vsock_host import host_connect, read_line

MAX = 1 << 20
OK, CRASHED, TOO_LARGE, REQ_LARGE, BAD_REQ = range(5)
HASH_OF_ZEROS = hashlib.sha256(bytes(256 * 1024)).hexdigest()  # scribble's untouched area


class FnVM:
    """One ember running a function image, with the ready listener bound
    before it starts."""

    def __init__(self, ember, tmp_path, image, args="", entropy=False, listen=True, api=False):
        self.uds = str(tmp_path / "v.sock")
        cfg = {"boot-source": {"kernel_image_path": str(image), "boot_args": args},
               "vsock": {"guest_cid": 3, "uds_path": self.uds}}
        if entropy:
            cfg["entropy"] = {}
        path = tmp_path / "vm.json"
        path.write_text(json.dumps(cfg))
        self.ready_sock = None
        if listen:
            self.ready_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.ready_sock.bind(self.uds + "_1025")
            os.chmod(self.uds + "_1025", 0o777)  # a jailed ember (uid 65534) connects
            self.ready_sock.listen(4)
        self.api_sock = str(tmp_path / "api.sock")
        extra = ["--api-sock", self.api_sock] if api else ["--no-api"]
        self.p = subprocess.Popen([str(ember), *extra, "--config-file", str(path)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)

    def wait_ready(self, timeout=60):
        """The bytes of the ready connection, up to the guest's EOF."""
        self.ready_sock.settimeout(timeout)
        c, _ = self.ready_sock.accept()
        c.settimeout(timeout)
        got = b""
        while d := c.recv(64):
            got += d
        c.close()
        return got

    def stop(self):
        self.p.kill()
        self.p.wait()
        if self.ready_sock:
            self.ready_sock.close()
            os.unlink(self.uds + "_1025")


def connect(uds, timeout=30):
    # A restored ember's socket file exists a moment before it listens.
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = host_connect(uds, b"CONNECT 1024\n", timeout)
            break
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)
    ok = read_line(s)
    assert ok.startswith(b"OK "), ok
    return s


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        d = s.recv(min(n - len(out), 1 << 20))
        if not d:
            break
        out += d
    return bytes(out)


def invoke(uds, payload, timeout=30, length=None):
    """One request frame (its length field @length if given); (status, body)."""
    s = connect(uds, timeout)
    try:
        s.sendall(struct.pack("<I", len(payload) if length is None else length) + payload)
        head = recv_exact(s, 8)
        assert len(head) == 8, head
        status, n = struct.unpack("<II", head)
        assert n <= MAX, n
        body = recv_exact(s, n)
        assert len(body) == n
        return status, body
    finally:
        s.close()


def one_shot(ember, guest, tmp_path, image, payload, args="", length=None, **kw):
    """Boot @image, send one request, check that the VM then powers off:
    (status, body, serial output)."""
    vm = FnVM(ember, tmp_path, guest(f"examples/{image}.elf"), args, **kw)
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        status, body = invoke(vm.uds, payload, length=length)
        assert vm.p.wait(timeout=30) == 0, vm.p.stderr.read()
        return status, body, vm.p.stdout.read().decode()
    finally:
        vm.stop()


def test_echo_is_one_shot(ember, guest, tmp_path):
    # Above ember's 256 KiB of credit: the guest waits for credit updates.
    data = os.urandom(300_000)
    status, body, out = one_shot(ember, guest, tmp_path, "echo", data, "fn_log=1")
    assert (status, body) == (OK, data)
    assert "fn: listening on port 1024 cid 3 vmgenid no-rng halt one-shot" in out
    assert "fn: request 1 len 300000 status 0 response 300000" in out
    assert not os.path.exists(tmp_path / "v.sock")


def test_echo_empty_and_largest_request(ember, guest, tmp_path):
    vm = FnVM(ember, tmp_path, guest("examples/echo.elf"), "fn_warm=1")
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        assert invoke(vm.uds, b"") == (OK, b"")
        data = os.urandom(MAX)
        assert invoke(vm.uds, data) == (OK, data)
        assert vm.p.poll() is None  # warm: still serving
    finally:
        vm.stop()


def test_sha256_of_empty_and_one_mib(ember, guest, tmp_path):
    for data in (b"", os.urandom(MAX)):
        status, body, _ = one_shot(ember, guest, tmp_path, "sha256", data)
        assert (status, body) == (OK, hashlib.sha256(data).digest())


def test_sha256_block_edges_in_warm_mode(ember, guest, tmp_path):
    vm = FnVM(ember, tmp_path, guest("examples/sha256.elf"), "fn_warm=1 fn_log=1")
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        for n in (1, 3, 55, 56, 63, 64, 65, 119, 120, 1000, 65536 + 3):
            data = os.urandom(n)
            assert invoke(vm.uds, data) == (OK, hashlib.sha256(data).digest()), n
        m, text = read_until(vm.p, r"fn: request 11 len 65539 status 0 response 32 tsc read \d+ seed \d+ handler \d+ reply \d+\n", 30)
        assert m, text
    finally:
        vm.stop()


def test_oversize_request_is_status_3(ember, guest, tmp_path):
    # The length alone decides: the guest answers before reading the body,
    # and in warm mode serves the next connection as usual.
    vm = FnVM(ember, tmp_path, guest("examples/echo.elf"), "fn_warm=1")
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        for length in (MAX + 1, 0xFFFFFFFF):
            assert invoke(vm.uds, b"x" * 16, length=length) == (REQ_LARGE, b"")
        assert invoke(vm.uds, b"after") == (OK, b"after")
    finally:
        vm.stop()
    # One-shot: the VM powers off after the error as after any response.
    status, body, _ = one_shot(ember, guest, tmp_path, "echo", b"", length=MAX + 1)
    assert (status, body) == (REQ_LARGE, b"")


def test_response_too_large_and_refused_request(ember, guest, tmp_path):
    vm = FnVM(ember, tmp_path, guest("examples/big.elf"), "fn_warm=1")
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        assert invoke(vm.uds, str(MAX + 1).encode()) == (TOO_LARGE, b"")
        assert invoke(vm.uds, b"12x") == (BAD_REQ, b"not a decimal byte count")
        pattern = bytes((i * 7 + 3) & 0xFF for i in range(MAX))
        assert invoke(vm.uds, str(MAX).encode()) == (OK, pattern)
        assert invoke(vm.uds, b"0") == (OK, b"")
    finally:
        vm.stop()


@pytest.mark.parametrize("how,vector", [(b"p", 14), (b"u", 6), (b"d", 0), (b"g", 13)])
def test_handler_fault_is_status_1(ember, guest, tmp_path, how, vector):
    # Warm mode asked for, but after a fault the VM powers off anyway.
    status, body, out = one_shot(ember, guest, tmp_path, "crash", how, "fn_warm=1")
    assert (status, body) == (CRASHED, b"")
    assert re.search(rf"fn: handler fault vector {vector} error 0x[0-9a-f]+ at rip 0x1[0-9a-f]+ ",
                     out), out


def test_looping_handler_never_answers(ember, guest, tmp_path):
    vm = FnVM(ember, tmp_path, guest("examples/loop.elf"))
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        s = connect(vm.uds)
        s.sendall(struct.pack("<I", 3) + b"abc")
        s.settimeout(3)
        with pytest.raises(socket.timeout):
            s.recv(8)
        assert vm.p.poll() is None  # the host's to stop
        s.close()
    finally:
        vm.stop()


def test_broken_and_concurrent_connections(ember, guest, tmp_path):
    vm = FnVM(ember, tmp_path, guest("examples/echo.elf"), listen=False)
    try:
        m, text = read_until(vm.p, r"fn: nobody took the ready signal\n", 60)
        assert m, text
        # Half a length field, then half a body, then gone: no handler runs.
        for partial in (b"\x05\x00", struct.pack("<I", 10) + b"abc"):
            s = connect(vm.uds)
            s.sendall(partial)
            s.close()
        # Another port: nobody listens there.
        other = host_connect(vm.uds, b"CONNECT 1025\n")
        assert read_line(other) == b""
        other.close()
        # A second connection while one is open is refused (no OK line).
        first = connect(vm.uds)
        second = host_connect(vm.uds, b"CONNECT 1024\n")
        assert read_line(second) == b""
        second.close()
        first.sendall(struct.pack("<I", 2) + b"hi")
        assert recv_exact(first, 10) == struct.pack("<II", OK, 2) + b"hi"
        first.close()
        assert vm.p.wait(timeout=30) == 0
    finally:
        vm.stop()


def scribble_fields(body):
    m = re.fullmatch(rb"previous=(\S+) clean=([01]) hash=([0-9a-f]{64}) seed=([0-9a-f]{64}) "
                     rb"sources=(\d+) serial=(\d+)\n", body)
    assert m, body
    return {"previous": m.group(1).decode(), "clean": m.group(2) == b"1",
            "hash": m.group(3).decode(), "seed": m.group(4).decode(),
            "sources": int(m.group(5)), "serial": int(m.group(6))}


def test_scribble_sees_its_own_writes_in_warm_mode(ember, guest, tmp_path):
    """What the isolation test relies on: the scribble example does notice a
    previous request's writes when they are there (warm mode keeps them)."""
    vm = FnVM(ember, tmp_path, guest("examples/scribble.elf"), "fn_warm=1", entropy=True)
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        status, body = invoke(vm.uds, b"first")
        a = scribble_fields(body)
        assert status == OK
        assert a["previous"] == "-" and a["clean"] and a["hash"] == HASH_OF_ZEROS
        assert a["sources"] == 3 and a["seed"] != "0" * 64 and a["serial"] == 1
        status, body = invoke(vm.uds, b"second")
        b = scribble_fields(body)
        assert b["previous"] == "first" and not b["clean"] and b["hash"] != HASH_OF_ZEROS
        assert b["serial"] == 2
        # Same VM, same VMGenID, but fresh virtio-rng bytes: a new seed.
        assert b["seed"] != a["seed"]
    finally:
        vm.stop()


def test_seed_sources(ember, guest, tmp_path):
    # VMGenID only (no entropy device).
    status, body, out = one_shot(ember, guest, tmp_path, "scribble", b"t")
    f = scribble_fields(body)
    assert f["sources"] == 1 and f["seed"] != "0" * 64, f
    assert "vmgenid no-rng" in out


def test_restored_clones_start_clean_with_their_own_seed(ember, guest, tmp_path):
    """Prepare once (boot, ready, pause, snapshot), then restore clones one
    after another: each answers its request, none sees the others' writes,
    each has a seed of its own."""
    vm = FnVM(ember, tmp_path, guest("examples/scribble.elf"), api=True)
    st, mem = tmp_path / "fn.state", tmp_path / "fn.mem"
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        api = Api(vm.api_sock)
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st),
                                                 "mem_file_path": str(mem),
                                                 "snapshot_type": "Full"})
        assert r[0] == 204, r
    finally:
        vm.stop()
    seeds = set()
    if os.path.exists(vm.uds):
        os.unlink(vm.uds)  # left by the killed ember
    for i in range(3):
        p = subprocess.Popen([str(ember), "--no-api", "--restore", str(st), "--mem", str(mem),
                              "--resume"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            status, body = invoke(vm.uds, f"clone{i}".encode())
            assert status == OK
            f = scribble_fields(body)
            assert f["previous"] == "-" and f["clean"] and f["serial"] == 1, f
            assert f["sources"] == 1
            seeds.add(f["seed"])
            assert p.wait(timeout=30) == 0, p.stderr.read()
            # Nothing printed after "ready" reaches a clone's console.
            assert p.stdout.read() == b""
        finally:
            p.kill()
            p.wait()
    assert len(seeds) == 3, seeds


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(ember, guest, tmp_path, args):
    """CPU seconds a ready VM uses over 3 s without requests; it still answers after."""
    vm = FnVM(ember, tmp_path, guest("examples/echo.elf"), args)
    try:
        assert vm.wait_ready() == b"EMBERRDY"
        time.sleep(0.3)
        pid = ember_pid(vm.p)
        before = cpu_seconds(pid)
        time.sleep(3)
        used = cpu_seconds(pid) - before
        assert invoke(vm.uds, b"awake") == (OK, b"awake")
        return used
    finally:
        vm.stop()


def test_a_waiting_vm_halts_instead_of_spinning(ember, guest, tmp_path):
    # fn_poll=1 keeps the runtime spinning: the same measurement shows it
    # (a whole core's worth on an idle host; less, but still some, when the
    # host's cores are shared by many busy processes).
    halting = idle_cpu(ember, guest, tmp_path, "")
    spinning = idle_cpu(ember, guest, tmp_path, "fn_poll=1")
    assert halting < 0.1 and spinning > 0.15, (halting, spinning)
