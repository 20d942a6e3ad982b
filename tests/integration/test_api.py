"""Firecracker-compatible API over a Unix socket: the getting-started
sequence with curl, lifecycle rules, pause/resume, Ctrl+Alt+Del, metrics,
config file, malformed requests and concurrent clients."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

import fcmetrics
from api_client import Api, start_ember
from conftest import JAILED, read_until


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "ember.sock")


def curl(sock, method, path, body=None):
    cmd = ["curl", "-s", "-w", "\n%{http_code}", "--unix-socket", sock, "-X", method,
           f"http://localhost{path}", "-H", "Accept: application/json"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    text, code = out.rsplit("\n", 1)
    return int(code), (json.loads(text) if text else None)


def test_getting_started_with_curl(ember, guest, sock, tmp_path):
    disk = tmp_path / "rootfs.img"
    disk.write_bytes(b"\0" * (512 << 10))
    p = start_ember(ember, sock)
    try:
        code, info = curl(sock, "GET", "/")
        # Jailed, the id is the one ember-jailer passes (--id, as Firecracker's jailer).
        assert info.pop("id") == "anonymous-instance" or JAILED
        # vmm_version: the Firecracker API level (test_fc_launch.py checks its format).
        assert (code, info) == (200, {"app_name": "ember", "state": "Not started",
                                      "vmm_version": info["vmm_version"], "ember_version": "0.1.0"})
        assert curl(sock, "PUT", "/boot-source", {
            "kernel_image_path": str(guest("blk.elf")), "boot_args": "console=ttyS0 reboot=k panic=1"})[0] == 204
        assert curl(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128})[0] == 204
        assert curl(sock, "PUT", "/drives/rootfs", {
            "drive_id": "rootfs", "path_on_host": str(disk), "is_root_device": True,
            "is_read_only": False})[0] == 204
        code, cfg = curl(sock, "GET", "/vm/config")
        assert code == 200 and cfg["machine-config"]["vcpu_count"] == 2
        assert cfg["drives"][0]["path_on_host"] == str(disk)
        assert curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert b"blk 0: id=rootfs capacity=1024 ro=0 irq=5 wrote=1024 read=1024 verified=1024 errors=0" in out
    assert not os.path.exists(sock), "the socket must be removed at exit"


def test_lifecycle_rules(ember, guest, sock):
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        # Post-boot-only calls before boot.
        st, body = api.call("PATCH", "/vm", {"state": "Paused"})
        assert st == 400 and "before starting" in body["fault_message"]
        st, body = api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
        assert st == 400 and "before starting" in body["fault_message"]
        st, body = api.call("PUT", "/actions", {"action_type": "InstanceStart"})
        assert st == 400 and "kernel" in body["fault_message"]
        assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")),
                                                 "boot_args": "cad=1"})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        m, _ = read_until(p, r"waiting for ctrl-alt-del\n", 20)
        assert m
        assert api.call("GET", "/")[1]["state"] == "Running"
        # Pre-boot-only calls after boot, and a second InstanceStart.
        st, body = api.call("PUT", "/actions", {"action_type": "InstanceStart"})
        assert st == 400 and "after starting" in body["fault_message"]
        st, body = api.call("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
        assert st == 400 and "after starting" in body["fault_message"]
        st, body = api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf"))})
        assert st == 400 and "after starting" in body["fault_message"]
        # GET works at any time.
        assert api.call("GET", "/machine-config")[0] == 200
        # Ctrl+Alt+Del reaches the guest's keyboard controller.
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        m, text = read_until(p, r"keys: (.*)\n", 20)
        assert m and m.group(1) == "0x14 0x11 0xe0 0x71", text
        assert p.wait(timeout=20) == 0
    finally:
        api.close()
        p.kill()


def test_pause_and_resume_keep_the_guest_correct(ember, guest, sock):
    iters = 1_500_000_000
    host = subprocess.run([str(guest("ring3-checksum-host")), str(iters)],
                          capture_output=True, text=True, check=True).stdout
    want = re.search(r"checksum=(0x[0-9a-f]+)", host).group(1)
    p = start_ember(ember, sock, "--level", "info")
    api = Api(sock)
    try:
        api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("ring3.elf")),
                                         "boot_args": f"iters={iters}"})
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        m, _ = read_until(p, r"entering user mode\n", 20)
        assert m
        t0 = time.monotonic()
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        assert api.call("GET", "/")[1]["state"] == "Paused"
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204  # idempotent
        time.sleep(1.0)
        assert p.poll() is None
        assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
        assert api.call("GET", "/")[1]["state"] == "Running"
        m, text = read_until(p, r"checksum=(0x[0-9a-f]+) ", 120)
        assert m and m.group(1) == want, text
        assert time.monotonic() - t0 >= 1.0
        assert p.wait(timeout=20) == 0
    finally:
        api.close()
        p.kill()


def test_metrics_logger_and_sigterm(ember, guest, sock, tmp_path):
    metrics = tmp_path / "metrics.json"
    log = tmp_path / "ember.log"
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        assert api.call("PUT", "/logger", {"log_path": str(log), "level": "Info"})[0] == 204
        assert api.call("PUT", "/metrics", {"metrics_path": str(metrics)})[0] == 204
        st, body = api.call("PUT", "/metrics", {"metrics_path": str(metrics)})
        assert st == 400 and "Reinitialization" in body["fault_message"]
        api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")), "boot_args": "cad=1"})
        api.call("PUT", "/actions", {"action_type": "InstanceStart"})
        # The guest has run (and done port I/O) before the counters are read.
        assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
    finally:
        api.close()
        p.kill()
    lines = fcmetrics.read(metrics)
    assert len(lines) == 3  # at InstanceStart, FlushMetrics, exit
    # Counters restart at each line: the five requests before FlushMetrics.
    assert fcmetrics.total(lines[:2], "ember", "api", "requests") == 5
    assert fcmetrics.total(lines[:2], "put_api_requests", "metrics_fails") == 1
    assert lines[1]["ember"]["state"] == "Running"
    assert fcmetrics.total(lines, "vcpu", "exit_io_out") > 0
    assert "VM started" in log.read_text()
    assert not os.path.exists(sock)


def test_config_file_boots(ember, guest, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * (256 << 10))
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("blk.elf"))},
        "drives": [{"drive_id": "data", "path_on_host": str(disk), "is_root_device": False}],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
    }))
    r = subprocess.run([str(ember), "--no-api", "--config-file", str(cfg)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "blk 0: id=data capacity=512" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"boot-source": {"kernel_image_path": str(guest("blk.elf"))},
                               "drivez": []}))
    r = subprocess.run([str(ember), "--config-file", str(bad)], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 64 and "unknown section `drivez`" in r.stderr


def test_body_over_the_limit_gets_400(ember, sock):
    """Firecracker's status for a body over the payload limit (more in
    test_api_errors.py)."""
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        big = json.dumps({"kernel_image_path": "x" * 60000})
        st, body = api.call("PUT", "/boot-source", raw=big)
        assert st == 400 and "limit of 51200" in body["fault_message"]
        assert Api(sock).call("GET", "/")[0] == 200
    finally:
        api.close()
        p.kill()


def test_emberctl(ember, guest, sock):
    from conftest import BUILD
    ctl = [str(BUILD / "emberctl"), "--sock", sock]
    p = start_ember(ember, sock)
    try:
        r = subprocess.run(ctl + ["info"], capture_output=True, text=True)
        assert r.returncode == 0 and json.loads(r.stdout)["state"] == "Not started"
        r = subprocess.run(ctl + ["machine", "0", "64"], capture_output=True, text=True)
        assert r.returncode == 1 and "Invalid vCPU count" in r.stderr
        assert subprocess.run(ctl + ["kernel", str(guest("hello.elf")), "cad=1"]).returncode == 0
        assert subprocess.run(ctl + ["machine", "1", "64"]).returncode == 0
        assert subprocess.run(ctl + ["boot"]).returncode == 0
        assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
        assert subprocess.run(ctl + ["pause"]).returncode == 0
        r = subprocess.run(ctl + ["info"], capture_output=True, text=True)
        assert json.loads(r.stdout)["state"] == "Paused"
        assert subprocess.run(ctl + ["resume"]).returncode == 0
        assert subprocess.run(ctl + ["ctrl-alt-del"]).returncode == 0
        assert p.wait(timeout=20) == 0
        r = subprocess.run(ctl + ["info"], capture_output=True, text=True)
        assert r.returncode == 2 and "cannot reach" in r.stderr
    finally:
        p.kill()


def test_patch_drive_after_boot(ember, guest, sock, tmp_path):
    a = tmp_path / "a.img"
    b = tmp_path / "b.img"
    a.write_bytes(b"\0" * 4096)
    b.write_bytes(b"\0" * 8192)
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")), "boot_args": "cad=1"})
        assert api.call("PUT", "/drives/data", {"drive_id": "data", "path_on_host": str(a),
                                                "is_root_device": False})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
        assert api.call("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(b)})[0] == 204
        assert api.call("GET", "/vm/config")[1]["drives"][0]["path_on_host"] == str(b)
        assert api.call("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "ops": {"size": 100, "refill_time": 1000}}})[0] == 204
        # A bucket the PATCH leaves out keeps its limits (Firecracker's
        # BucketUpdate::None); a size of 0 turns a bucket off.
        assert api.call("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "bandwidth": {"size": 4096, "refill_time": 100}}})[0] == 204
        rl = api.call("GET", "/vm/config")[1]["drives"][0]["rate_limiter"]
        assert rl["ops"]["size"] == 100 and rl["ops"]["refill_time"] == 1000, rl
        assert rl["bandwidth"]["size"] == 4096 and rl["bandwidth"]["refill_time"] == 100, rl
        assert api.call("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "ops": {"size": 0, "refill_time": 0}}})[0] == 204
        rl = api.call("GET", "/vm/config")[1]["drives"][0]["rate_limiter"]
        assert rl is not None and rl["bandwidth"]["size"] == 4096, rl
        assert not (rl.get("ops") or {}).get("size"), rl
        st, body = api.call("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": "/nonexistent"})
        assert st == 400 and "cannot be opened" in body["fault_message"]
        st, body = api.call("PATCH", "/drives/nope", {"drive_id": "nope"})
        assert st == 400 and "No drive with id [nope]" in body["fault_message"]
        st, body = api.call("PATCH", "/drives/data", {"drive_id": "data", "is_read_only": True})
        assert st == 400 and "unknown field `is_read_only`" in body["fault_message"]
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        assert p.wait(timeout=20) == 0
    finally:
        api.close()
        p.kill()


def test_put_logger_again_and_again_keeps_one_log_fd(ember, sock, tmp_path):
    """Each PUT /logger replaces the log file; none is left open behind
    (200 requests once leaked 200 fds)."""
    from conftest import ember_pid
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        pid = ember_pid(p)
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        assert api.call("PUT", "/logger", {"log_path": str(logs[0]), "level": "Info"})[0] == 204
        before = len(os.listdir(f"/proc/{pid}/fd"))
        for i in range(200):
            assert api.call("PUT", "/logger", {"log_path": str(logs[i % 2])})[0] == 204
        assert len(os.listdir(f"/proc/{pid}/fd")) == before
        # The last one is where lines go now: a bad request logs a warning.
        size = logs[1].stat().st_size
        api.call("PUT", "/nope", {})
        api.call("PUT", "/actions", {"action_type": "FlushMetrics"})
        deadline = time.monotonic() + 5
        while logs[1].stat().st_size == size and time.monotonic() < deadline:
            time.sleep(0.01)
        assert logs[1].stat().st_size > size
    finally:
        api.close()
        p.kill()
        p.wait()
