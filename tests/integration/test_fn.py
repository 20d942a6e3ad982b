"""ember-fn: function images, one VM restored from a snapshot per request.

ember-fn prepares each example in guest/examples/ (boot, ready, pause, Full
snapshot) and runs requests in fresh VMs, from the command line (invoke)
and through its pool server (serve). The tests check the answers, the
errors (crash, deadline, sizes, garbage), isolation between requests and
that nothing is left behind: processes, serve's fds, files.
"""
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, GUESTS, JAILED

FN = BUILD / "ember-fn"
MIB = 1 << 20
OK, CRASHED, RESP_TOO_LARGE, REQ_TOO_LARGE, REFUSED, DEADLINE, VM_FAILED = range(7)


@pytest.fixture(scope="module")
def work():
    # Short paths: a VM's vsock socket path must fit ember's 96 characters.
    d = Path(tempfile.mkdtemp(prefix="fn-", dir="/tmp"))
    (d / "vms").mkdir()
    if JAILED:
        os.chmod(d, 0o777)
        os.chmod(d / "vms", 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_fn(ember, work, *args, input=b"", timeout=120):
    """ember-fn with its VM directories under work/vms."""
    env = dict(os.environ, TMPDIR=str(work / "vms"))
    return subprocess.run([str(FN), *map(str, args), "--ember", str(ember)], input=input,
                          capture_output=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def prepared(ember, work):
    """prepared(name): the directory holding that example's snapshot."""
    done = {}

    def get(name):
        if name not in done:
            image = GUESTS / "examples" / f"{name}.elf"
            assert image.exists(), f"{image} is missing: run make"
            d = work / name
            r = run_fn(ember, work, "prepare", "--image", image, "--dir", d)
            assert r.returncode == 0, r.stderr.decode()
            assert (d / "state").is_file() and (d / "mem").is_file()
            done[name] = d
        return done[name]
    return get


def invoke(ember, work, d, data, *extra):
    return run_fn(ember, work, "invoke", "--dir", d, *extra, input=data)


def vm_dirs(work):
    return sorted(os.listdir(work / "vms"))


def vm_processes(work):
    """Processes whose command line names a VM directory of ours."""
    mark = str(work / "vms").encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def describe(pids):
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read().split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode()
            out.append(f"{pid} (state {stat[2]}, parent {stat[3]}): {cmd}")
        except OSError:
            pass
    return out


# A jailed VM is two processes: ember-jailer and ember behind it.
PER_VM = 2 if JAILED else 1


def settle(check, timeout=10):
    """Wait until check() is true (teardown runs in the background)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def closed(s):
    """Whether the peer closed @s (a reset: it left our bytes unread)."""
    try:
        return s.recv(10) == b""
    except ConnectionResetError:
        return True


class Server:
    """ember-fn serve on a function directory, with a client."""

    def __init__(self, ember, work, d, pool=2, *extra):
        self.work = work
        self.pool = pool
        self.sock = str(work / f"serve-{d.name}.sock")
        env = dict(os.environ, TMPDIR=str(work / "vms"))
        self.p = subprocess.Popen([str(FN), "serve", "--dir", str(d), "--sock", self.sock,
                                   "--pool", str(pool), "--ember", str(ember), *extra],
                                  stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            assert settle(lambda: os.path.exists(self.sock)), "serve did not listen"
            self.conn = self.connect()
        except BaseException:
            self.p.kill()
            self.p.wait()
            raise

    def connect(self):
        # The socket file appears at bind(); listen() follows a moment later.
        deadline = time.monotonic() + 5
        while True:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(30)
            try:
                s.connect(self.sock)
                return s
            except ConnectionRefusedError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.001)

    @staticmethod
    def recv_exact(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def call(self, data, s=None):
        s = s or self.conn
        s.sendall(struct.pack("<I", len(data)) + data)
        status, n = struct.unpack("<II", self.recv_exact(s, 8))
        return status, self.recv_exact(s, n)

    def fds(self):
        return sorted(os.listdir(f"/proc/{self.p.pid}/fd"))

    def idle(self):
        """Only the pool is left: its VMs' processes and directories."""
        return (len(vm_processes(self.work)) == self.pool * PER_VM
                and len(vm_dirs(self.work)) == self.pool)

    def stop(self):
        self.conn.close()
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=30)
        err = self.p.stderr.read().decode()
        return rc, err


@pytest.fixture
def clean(work):
    """Every test leaves no VM process and no VM directory behind."""
    yield
    assert settle(lambda: not vm_processes(work)), f"left running: {describe(vm_processes(work))}"
    assert vm_dirs(work) == []


def test_prepare_and_invoke_echo(ember, work, prepared, clean):
    d = prepared("echo")
    for data in [b"hello", b"", bytes(range(256)) * 40]:
        r = invoke(ember, work, d, data)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == data


def test_prepare_and_invoke_sha256(ember, work, prepared, clean):
    d = prepared("sha256")
    for data in [b"", b"abc", os.urandom(100000)]:
        r = invoke(ember, work, d, data)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == hashlib.sha256(data).digest()


def scribble_fields(text):
    return dict(kv.split("=", 1) for kv in text.decode().split())


def test_prepare_and_invoke_scribble(ember, work, prepared, clean):
    r = invoke(ember, work, prepared("scribble"), b"first")
    assert r.returncode == 0, r.stderr.decode()
    f = scribble_fields(r.stdout)
    assert f["previous"] == "-" and f["clean"] == "1"


def test_invoke_uffd_records_then_prefetches(ember, work, prepared, clean):
    d = prepared("echo")
    ws = d / "ws"
    if ws.exists():
        ws.unlink()
    r = invoke(ember, work, d, b"recorded", "--uffd")
    assert r.returncode == 0 and r.stdout == b"recorded", r.stderr.decode()
    assert ws.stat().st_size > 0, "the first --uffd run records the working set"
    r = invoke(ember, work, d, b"prefetched", "--uffd")
    assert r.returncode == 0 and r.stdout == b"prefetched", r.stderr.decode()
    assert not [p for p in os.listdir(d) if p.startswith("ws.rec")]


def test_big_response_limits(ember, work, prepared, clean):
    d = prepared("big")
    r = invoke(ember, work, d, str(MIB).encode())
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == bytes((i * 7 + 3) & 0xff for i in range(MIB))
    r = invoke(ember, work, d, str(MIB + 1).encode())
    assert r.returncode == RESP_TOO_LARGE and r.stdout == b""
    assert b"over 1 MiB" in r.stderr
    r = invoke(ember, work, d, b"not a number")
    assert r.returncode == REFUSED and b"refused" in r.stderr


def test_request_limits(ember, work, prepared, clean):
    d = prepared("echo")
    data = os.urandom(MIB)
    r = invoke(ember, work, d, data)
    assert r.returncode == 0 and r.stdout == data, r.stderr.decode()
    r = invoke(ember, work, d, data + b"x")
    assert r.returncode == REQ_TOO_LARGE and b"request is over 1 MiB" in r.stderr


@pytest.mark.parametrize("how", [b"u", b"d", b"g", b"p"])
def test_crash_is_a_clear_error_and_the_next_request_works(ember, work, prepared, clean, how):
    r = invoke(ember, work, prepared("crash"), how)
    assert r.returncode == CRASHED, r.stderr.decode()
    assert b"the handler crashed" in r.stderr
    r = invoke(ember, work, prepared("echo"), b"after")
    assert r.returncode == 0 and r.stdout == b"after"


def test_loop_hits_the_deadline_and_the_next_request_works(ember, work, prepared, clean):
    t0 = time.monotonic()
    r = invoke(ember, work, prepared("loop"), b"spin", "--deadline-ms", "300")
    took = time.monotonic() - t0
    assert r.returncode == DEADLINE, r.stderr.decode()
    assert b"deadline exceeded" in r.stderr
    assert 0.3 <= took < 10
    r = invoke(ember, work, prepared("echo"), b"after")
    assert r.returncode == 0 and r.stdout == b"after"


def test_cli_garbage(ember, work, prepared, clean):
    def rc(*args, input=b""):
        return run_fn(ember, work, *args, input=input)
    assert rc().returncode == 64
    assert rc("frobnicate", "--dir", work).returncode == 64
    assert rc("invoke").returncode == 64
    for bad in ["0", "-5", "abc", "1e3", ""]:
        r = rc("invoke", "--dir", work, "--deadline-ms", bad)
        assert r.returncode == 64 and b"--deadline-ms" in r.stderr
    assert rc("serve", "--dir", work, "--sock", work / "x", "--pool", "0").returncode == 64
    assert rc("serve", "--dir", work).returncode == 64
    assert rc("prepare", "--dir", work / "noimage").returncode == 64
    assert rc("invoke", "--dir", work, "extra").returncode == 64
    # No snapshot there: a clear error, no hang.
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    r = rc("invoke", "--dir", empty, input=b"x")
    assert r.returncode == VM_FAILED and b"restore failed" in r.stderr
    r = rc("invoke", "--dir", work / "missing", input=b"x")
    assert r.returncode == VM_FAILED and b"No such file" in r.stderr
    # Not a kernel: prepare says so.
    junk = work / "junk.elf"
    junk.write_bytes(b"\x7fELF" + os.urandom(4000))
    r = rc("prepare", "--image", junk, "--dir", work / "junkfn")
    assert r.returncode == VM_FAILED and b"prepare failed" in r.stderr
    # A garbage snapshot: refused at load.
    bad = work / "badsnap"
    bad.mkdir(exist_ok=True)
    (bad / "state").write_bytes(os.urandom(5000))
    (bad / "mem").write_bytes(os.urandom(4096))
    r = rc("invoke", "--dir", bad, input=b"x")
    assert r.returncode == VM_FAILED and b"restore failed" in r.stderr
    # ember missing: a clear error.
    r = subprocess.run([str(FN), "invoke", "--dir", str(prepared("echo")), "--ember",
                        "/nonexistent/ember"], input=b"x", capture_output=True, timeout=30,
                       env=dict(os.environ, TMPDIR=str(work / "vms")))
    assert r.returncode == VM_FAILED and b"ember exited" in r.stderr


def test_isolation_between_requests(ember, work, prepared, clean):
    srv = Server(ember, work, prepared("scribble"))
    try:
        seen = []
        for tag in [b"alpha", b"beta", b"gamma", b"delta"]:
            status, body = srv.call(tag)
            assert status == OK, body
            f = scribble_fields(body)
            # What the previous request wrote is not there: a fresh clone.
            assert f["previous"] == "-" and f["clean"] == "1", body
            assert int(f["sources"]) & 1, "the seed includes the VMGenID"
            seen.append(f["seed"])
        assert len(set(seen)) == len(seen), f"clones share a seed: {seen}"
        # And from the command line: another clone, another seed.
        r = invoke(ember, work, prepared("scribble"), b"cli")
        assert r.returncode == 0
        assert scribble_fields(r.stdout)["seed"] not in seen
    finally:
        rc, err = srv.stop()
    assert rc == 0, err


def test_thousand_requests_in_a_row(ember, work, prepared, clean):
    srv = Server(ember, work, prepared("echo"), 2)
    try:
        assert srv.call(b"warm-up") == (OK, b"warm-up")
        assert settle(srv.idle), "pool did not settle"
        fds = srv.fds()
        rnd = random.Random(16)
        for i in range(1000):
            n = rnd.choice([0, 1, 17, 4096, 65536]) if i % 10 == 0 else rnd.randrange(1, 2048)
            data = rnd.randbytes(n)
            status, body = srv.call(data)
            assert (status, body) == (OK, data), f"request {i}: status {status}"
        assert settle(srv.idle), (vm_processes(work), vm_dirs(work))
        assert srv.fds() == fds
    finally:
        rc, err = srv.stop()
    assert rc == 0, err
    assert not os.path.exists(srv.sock)


def test_serve_errors_and_garbage(ember, work, prepared, clean):
    echo = Server(ember, work, prepared("echo"))
    crash = Server(ember, work, prepared("crash"))
    loop = Server(ember, work, prepared("loop"), 1, "--deadline-ms", "300")
    try:
        assert echo.call(b"x") == (OK, b"x")
        assert settle(lambda: len(vm_dirs(work)) == 5)
        fds = echo.fds()
        # Crash and deadline: a clear status, and the next request is served.
        for _ in range(2):
            status, msg = crash.call(b"u")
            assert status == CRASHED
            status, msg = loop.call(b"spin")
            assert status == DEADLINE and b"deadline exceeded" in msg
        # Garbage on the socket.
        s = echo.connect()
        s.close()
        s = echo.connect()
        s.sendall(b"\x05\x00")
        s.close()
        s = echo.connect()
        s.sendall(struct.pack("<I", 100) + b"only ten b")
        s.close()
        s = echo.connect()
        s.sendall(struct.pack("<I", 0xffffffff) + os.urandom(64))
        status, n = struct.unpack("<II", Server.recv_exact(s, 8))
        assert status == REQ_TOO_LARGE
        assert b"over 1 MiB" in Server.recv_exact(s, n)
        assert closed(s), "closed after an oversized length"
        s.close()
        s = echo.connect()
        s.sendall(struct.pack("<I", MIB + 1) + b"y" * 1000)
        status, n = struct.unpack("<II", Server.recv_exact(s, 8))
        assert status == REQ_TOO_LARGE
        s.close()
        idle = [echo.connect() for _ in range(20)]
        for _ in range(3):
            s = echo.connect()
            s.sendall(os.urandom(4096))
            s.close()
        for s in idle:
            s.close()
        # Still serving, on old and new connections.
        data = os.urandom(3000)
        assert echo.call(data) == (OK, data)
        s = echo.connect()
        assert echo.call(b"new", s) == (OK, b"new")
        s.close()
        assert settle(lambda: echo.fds() == fds), (echo.fds(), fds)
    finally:
        results = [srv.stop() for srv in (echo, crash, loop)]
    for rc, err in results:
        assert rc == 0, err


def test_serve_retries_a_pooled_vm_that_died_before_the_request(ember, work, prepared, clean):
    """A pooled ember killed while it waits: the request, which never reached
    a guest, goes to the next VM, and the client sees only its answer."""
    srv = Server(ember, work, prepared("echo"), 1)
    try:
        assert settle(srv.idle, 30)
        for pid in vm_processes(work):
            os.kill(pid, signal.SIGKILL)
        assert srv.call(b"still here") == (OK, b"still here")
        assert srv.call(b"and again") == (OK, b"and again")
    finally:
        rc, err = srv.stop()
    assert rc == 0, err
    assert "trying another VM" in err, err


def test_serve_in_parallel(ember, work, prepared, clean):
    srv = Server(ember, work, prepared("sha256"), 4)
    try:
        conns = [srv.connect() for _ in range(4)]
        import threading
        errors = []

        def worker(s, k):
            for i in range(25):
                data = f"{k}-{i}".encode() * (i + 1)
                status, body = srv.call(data, s)
                if (status, body) != (OK, hashlib.sha256(data).digest()):
                    errors.append((k, i, status))
        ts = [threading.Thread(target=worker, args=(s, k)) for k, s in enumerate(conns)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []
        for s in conns:
            s.close()
    finally:
        rc, err = srv.stop()
    assert rc == 0, err


def test_serve_socket_path(ember, work, prepared, clean):
    # A file that is not a socket is never replaced.
    f = work / "not-a-socket"
    f.write_text("keep")
    r = run_fn(ember, work, "serve", "--dir", prepared("echo"), "--sock", f, timeout=30)
    assert r.returncode == VM_FAILED and b"cannot listen on" in r.stderr
    assert f.read_text() == "keep"
    # A socket file nobody listens on (a serve that died) is replaced.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(work / "serve-echo.sock"))
    stale.close()
    srv = Server(ember, work, prepared("echo"), 1)
    try:
        # One that is in use is not.
        r = run_fn(ember, work, "serve", "--dir", prepared("echo"), "--sock", srv.sock,
                   timeout=30)
        assert r.returncode == VM_FAILED and re.search(rb"cannot listen on .*in use", r.stderr)
        assert srv.call(b"still mine") == (OK, b"still mine")
    finally:
        rc, err = srv.stop()
    assert rc == 0, err
    assert not [p for p in os.listdir(work) if ".sock.tmp" in p]
