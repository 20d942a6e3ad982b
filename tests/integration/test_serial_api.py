"""PUT /serial (Firecracker's SerialDevice: serial_out_path, rate_limiter):
where COM1's output goes and a token bucket on it, before boot only; bad
bodies are refused with a fault message and change nothing."""
import os
import time

import pytest

import fcmetrics
from api_client import Api, start_ember
from conftest import JAILED


def configure(api, guest, args="", vcpus=1):
    assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("cpuid.elf")),
                                            "boot_args": args})[0] == 204
    assert api.call("PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": 32})[0] == 204


def wait_exit(p, timeout=30):
    p.wait(timeout=timeout)
    return p.stdout.read().decode(errors="replace")


def out_file(tmp_path, name="serial.out"):
    path = tmp_path / name
    if JAILED:
        path.touch()
        os.chmod(path, 0o666)
    return path


def test_output_goes_to_the_file_not_stdout(ember, guest, tmp_path):
    sock, path = str(tmp_path / "api.sock"), out_file(tmp_path)
    p = start_ember(ember, sock)
    api = Api(sock)
    configure(api, guest)
    assert api.call("PUT", "/serial", {"serial_out_path": str(path)})[0] == 204
    assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    stdout = wait_exit(p)
    assert p.returncode == 0
    assert "cpuid done" in path.read_text()
    assert "cpuid done" not in stdout


def test_later_put_replaces_and_empty_body_means_stdout(ember, guest, tmp_path):
    sock, path = str(tmp_path / "api.sock"), out_file(tmp_path)
    p = start_ember(ember, sock)
    api = Api(sock)
    configure(api, guest)
    assert api.call("PUT", "/serial", {"serial_out_path": str(path)})[0] == 204
    assert api.call("PUT", "/serial", {})[0] == 204  # Firecracker's default: stdout
    assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    stdout = wait_exit(p)
    assert "cpuid done" in stdout
    assert not path.exists() or path.read_text() == ""


def test_rate_limiter_drops_output_over_the_budget(ember, guest, tmp_path):
    """A 64-byte bucket refilled every 100 s: the guest's first 64 bytes get
    through, the rest is dropped and counted in uart.rate_limiter_dropped_bytes."""
    sock, path = str(tmp_path / "api.sock"), out_file(tmp_path)
    metrics = out_file(tmp_path, "metrics.json")
    p = start_ember(ember, sock)
    api = Api(sock)
    configure(api, guest)
    assert api.call("PUT", "/metrics", {"metrics_path": str(metrics)})[0] == 204
    assert api.call("PUT", "/serial", {"serial_out_path": str(path), "rate_limiter": {
        "size": 64, "refill_time": 100000}})[0] == 204
    assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    wait_exit(p)
    assert p.returncode == 0
    text = path.read_text()
    assert len(text) == 64, repr(text)
    lines = fcmetrics.read(metrics)
    dropped = fcmetrics.total(lines, "uart", "rate_limiter_dropped_bytes")
    written = fcmetrics.total(lines, "uart", "write_count")
    assert dropped > 0 and dropped == written - 64, (dropped, written)
    assert fcmetrics.total(lines, "put_api_requests", "serial_count") == 1


def test_one_time_burst_adds_to_the_budget(ember, guest, tmp_path):
    sock, path = str(tmp_path / "api.sock"), out_file(tmp_path)
    p = start_ember(ember, sock)
    api = Api(sock)
    configure(api, guest)
    assert api.call("PUT", "/serial", {"serial_out_path": str(path), "rate_limiter": {
        "size": 16, "one_time_burst": 32, "refill_time": 100000}})[0] == 204
    assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    wait_exit(p)
    assert len(path.read_text()) == 48


BAD = [
    ({"serial_out_path": 7}, "invalid type"),
    ({"serial_out_path": ""}, "must not be empty"),
    ({"serial_out_path": "/nonexistent-dir/x"}, "cannot be created"),
    ({"serial_out_path": "/dev"}, "is not a file or FIFO"),
    ({"rate_limiter": {"size": 10}}, "refill_time"),
    ({"rate_limiter": {"size": 10, "refill_time": 0}}, "refill_time must be more than 0"),
    ({"rate_limiter": {"size": -1, "refill_time": 10}}, "size"),
    ({"rate_limiter": {"size": 10, "refill_time": 10, "extra": 1}}, "unknown field `extra`"),
    ({"rate_limiter": "fast"}, "rate_limiter"),
    ({"serial_out_path": "/tmp/x", "baud": 9600}, "unknown field `baud`"),
]


@pytest.mark.parametrize("body,words", BAD)
def test_bad_bodies_change_nothing(ember, guest, tmp_path, body, words):
    sock, path = str(tmp_path / "api.sock"), out_file(tmp_path)
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        configure(api, guest)
        assert api.call("PUT", "/serial", {"serial_out_path": str(path)})[0] == 204
        code, resp = api.call("PUT", "/serial", body)
        assert code == 400 and words in resp["fault_message"], resp
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        wait_exit(p)
        assert "cpuid done" in path.read_text()  # the earlier, good configuration holds
    finally:
        p.kill()
        p.wait()


def test_after_boot_is_refused(ember, guest, tmp_path):
    sock, path = str(tmp_path / "api.sock"), out_file(tmp_path)
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        configure(api, guest, args="tick=100000000")
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        time.sleep(0.2)
        code, resp = api.call("PUT", "/serial", {"serial_out_path": str(path)})
        assert code == 400 and "not supported after starting the microVM" in \
            resp["fault_message"], resp
    finally:
        p.kill()
        p.wait()
