"""virtio-vsock end to end: the vsock test guest (ring 3, its own driver)
talks to Unix sockets on the host, in Firecracker's scheme. Guest-initiated
connections reach <uds_path>_<port>; host-initiated ones connect to uds_path
and say "CONNECT <port>\\n"."""
import json
import os
import socket
import subprocess
import sys
import time

import fcmetrics
from api_client import Api
from conftest import ember_pid, read_until, run_ember
from vsock_host import EchoServer, echo_roundtrip, host_connect, read_line

ECHO_PORT = 52


def vm_config(tmp_path, guest, args):
    uds = str(tmp_path / "v.sock")
    metrics = tmp_path / "metrics.json"
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("vsock.elf")), "boot_args": args},
        "vsock": {"guest_cid": 3, "uds_path": uds},
        "metrics": {"metrics_path": str(metrics)},
    }))
    return cfg, uds, metrics


def last_metrics(path):
    """The vsock counters over the whole run (each line holds the change
    since the line before; conns_open is a value, from the last line)."""
    lines = fcmetrics.read(path)
    m = {k: fcmetrics.total(lines, "ember", "vsock", k) for k in lines[-1]["ember"]["vsock"]}
    m["conns_open"] = lines[-1]["ember"]["vsock"]["conns_open"]
    m["tx_bytes"] = fcmetrics.total(lines, "vsock", "tx_bytes_count")
    m["rx_bytes"] = fcmetrics.total(lines, "vsock", "rx_bytes_count")
    assert fcmetrics.total(lines, "vsock", "conns_added") == m["conns_opened"]
    # Each connection the guest opened sent a request packet at least.
    assert fcmetrics.total(lines, "vsock", "tx_packets_count") >= m["conns_opened"]
    return m


def test_guest_connects_and_echoes_many_sizes(ember, guest, tmp_path):
    cfg, uds, metrics = vm_config(tmp_path, guest, f"mode=1 port={ECHO_PORT}")
    echo = EchoServer(f"{uds}_{ECHO_PORT}")
    try:
        r = run_ember(ember, "--no-api", "--config-file", cfg, timeout=60)
    finally:
        echo.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "vsock: guest cid 3" in r.stdout
    for size in (1, 100, 4000, 60000, 204800):
        assert f"vsock: echo {size} ok" in r.stdout
    assert "vsock: closed" in r.stdout
    m = last_metrics(metrics)
    assert m["conns_opened"] == 1 and m["conns_closed"] == 1 and m["conns_open"] == 0, m
    assert m["tx_bytes"] == m["rx_bytes"] == 1 + 100 + 4000 + 60000 + 204800, m
    assert m["bad_packets"] == 0 and m["bad_chains"] == 0, m
    # The listening socket is gone with ember.
    assert not os.path.exists(uds)


def test_nobody_listening_is_a_reset(ember, guest, tmp_path):
    cfg, uds, metrics = vm_config(tmp_path, guest, "mode=1 port=53")
    r = run_ember(ember, "--no-api", "--config-file", cfg, timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "vsock: connection refused (RST)" in r.stdout
    m = last_metrics(metrics)
    assert m["conns_refused"] == 1 and m["resets_to_guest"] == 1 and m["conns_open"] == 0, m


def test_hundred_concurrent_connections(ember, guest, tmp_path):
    cfg, uds, metrics = vm_config(tmp_path, guest, f"mode=3 port={ECHO_PORT}")
    echo = EchoServer(f"{uds}_{ECHO_PORT}")
    try:
        r = run_ember(ember, "--no-api", "--config-file", cfg, timeout=90)
    finally:
        echo.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "vsock: 100 connections, 100 echoed" in r.stdout
    assert echo.accepted == 100
    m = last_metrics(metrics)
    assert m["conns_opened"] == m["conns_closed"] == 100 and m["conns_open"] == 0, m


def dropped(s):
    """True when the peer closed @s without a word (EOF, or a reset when it
    left our bytes unread)."""
    try:
        return s.recv(64) == b""
    except ConnectionResetError:
        return True


def test_host_connects_to_the_guest(ember, guest, tmp_path):
    cfg, uds, metrics = vm_config(tmp_path, guest, f"mode=2 port={ECHO_PORT}")
    p = subprocess.Popen([str(ember), "--no-api", "--config-file", str(cfg)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(p, r"vsock: guest cid 3\n", 20)[0]
        # Garbage instead of a handshake: the host peer is dropped.
        for bad in (b"HELLO\n", b"CONNECT\n", b"CONNECT 99999999999\n", b"CONNECT 5x\n",
                    b"CONNECT " + b"9" * 40):
            s = host_connect(uds, bad)
            assert dropped(s), bad
            s.close()
        # A port nobody listens on in the guest: the guest resets, the host sees EOF.
        s = host_connect(uds, b"CONNECT 99\n")
        assert dropped(s)
        s.close()
        assert read_until(p, r"vsock: refused a connection\n", 20)[0]
        # The real one: OK <host port>, then bytes both ways.
        s = host_connect(uds, f"CONNECT {ECHO_PORT}\n".encode())
        ok = read_line(s)
        assert ok.startswith(b"OK ") and int(ok[3:]) >= 1 << 30, ok
        data = os.urandom(300_000)
        assert echo_roundtrip(s, data, 30) == data
        s.close()
        assert p.wait(timeout=30) == 0, p.stderr.read()
        assert b"vsock: echoed 300000 bytes" in p.stdout.read()
    finally:
        p.kill()
        p.wait()
    m = last_metrics(metrics)
    assert m["conns_open"] == 0 and m["conns_opened"] == m["conns_closed"], m
    assert m["bad_packets"] == 5, m  # the five bad handshakes


CRASHER = """
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
got = 0
while got < 100_000:
    got += len(c.recv(65536))
print("mid-transfer", flush=True)
sys.stdin.readline()  # the test has looked at ember: now die
os.kill(os.getpid(), signal.SIGKILL)
"""


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_host_peer_crash_mid_transfer(ember, guest, tmp_path):
    cfg, uds, metrics = vm_config(tmp_path, guest, "mode=4 port=60")
    crasher = subprocess.Popen([sys.executable, "-c", CRASHER, f"{uds}_60"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert crasher.stdout.readline() == "listening\n"
    echo = EchoServer(f"{uds}_61")
    p = subprocess.Popen([str(ember), "--no-api", "--config-file", str(cfg)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(p, r"vsock: streaming\n", 20)[0]
        assert crasher.stdout.readline() == "mid-transfer\n"
        fds_streaming = open_fds(ember_pid(p))  # the connection to the crasher is open
        crasher.stdin.write("die\n")
        crasher.stdin.flush()
        m, text = read_until(p, r"vsock: recovered\n", 30)
        assert m, text
        assert "vsock: peer reset after" in text
        # The dead connection's socket is closed: one fewer than while streaming.
        assert open_fds(ember_pid(p)) == fds_streaming - 1
        assert p.wait(timeout=30) == 0, p.stderr.read()
    finally:
        p.kill()
        p.wait()
        echo.close()
        crasher.kill()
    assert crasher.wait() == -9
    m = last_metrics(metrics)
    assert m["resets_to_guest"] >= 1 and m["conns_open"] == 0, m
    assert m["conns_opened"] == m["conns_closed"] == 2, m


def test_uds_path_errors(ember, guest, tmp_path):
    kernel = str(guest("vsock.elf"))
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": kernel},
                               "vsock": {"guest_cid": 3, "uds_path": "/tmp/" + "x" * 100}}))
    r = run_ember(ember, "--no-api", "--config-file", cfg, timeout=30)
    assert r.returncode != 0 and "uds_path must be 1 to 96 characters" in r.stderr, r.stderr
    # A path that already exists is not clobbered.
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": kernel},
                               "vsock": {"guest_cid": 3, "uds_path": str(taken)}}))
    r = run_ember(ember, "--no-api", "--config-file", cfg, timeout=30)
    assert r.returncode != 0 and f"cannot listen on '{taken}'" in r.stderr, r.stderr
    assert taken.read_text() == "keep me"


def test_stale_socket_paths_are_reused_live_ones_are_not(ember, guest, tmp_path):
    """A killed ember leaves its API and vsock sockets behind: the next ember
    (a restore, typically) takes those paths over; a path another process
    still listens on is refused with a clear error and left alone."""
    kernel = str(guest("vsock.elf"))
    uds, api = tmp_path / "v.sock", tmp_path / "api.sock"
    for path in (uds, api):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))  # bound, never listening: what a SIGKILLed ember leaves
        s.close()
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": kernel, "boot_args": "mode=2 port=5"},
                               "vsock": {"guest_cid": 3, "uds_path": str(uds)}}))
    p = subprocess.Popen([str(ember), "--api-sock", str(api), "--config-file", str(cfg)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(p, r"vsock: guest cid 3\n", 20)[0]
        assert Api(str(api)).call("GET", "/")[0] == 200
        # Both paths are live now: a second ember must not take them.
        r = run_ember(ember, "--api-sock", api, timeout=30)
        assert r.returncode != 0 and "another process listens on it" in r.stderr, r.stderr
        assert Api(str(api)).call("GET", "/")[0] == 200
    finally:
        p.kill()
        p.wait()
