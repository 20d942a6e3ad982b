"""Firecracker's launch contract, from its docs (docs/jailer.md, main.rs's
options): the arguments its jailer passes before the user's (--id,
--start-time-us, --start-time-cpu-us, --parent-cpu-time-us), the start-up
times it reports in metrics (api_server.process_startup_time_us and
_cpu_us), the default API socket /run/firecracker.socket, and version
reporting that a version-checking client (Kata Containers' fc driver) can
parse."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from api_client import Api, start_ember
from conftest import JAILED

DEFAULT_SOCK = "/run/firecracker.socket"
# Kata's fc driver: the second word of --version's first line, less the "v",
# is a semantic version, at least 0.21.1.
SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")


def kata_version(text):
    fields = text.split("\n")[0].split(" ")
    assert len(fields) > 1, text
    v = fields[1].strip().removeprefix("v")
    m = SEMVER.fullmatch(v)
    assert m, f"{v!r} is not a semantic version"
    assert tuple(map(int, m.groups()[:3])) >= (0, 21, 1)
    return v


def monotonic_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def startup_metrics(path):
    """The last metrics line's Firecracker start-up times."""
    line = json.loads(path.read_text().splitlines()[-1])
    return (line["api_server"]["process_startup_time_us"],
            line["api_server"]["process_startup_time_cpu_us"])


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_firecracker_jailer_arguments(ember, tmp_path, form):
    """ember started as Firecracker's jailer starts Firecracker: the id in
    GET /, start-up times in metrics from the jailer's readings."""
    sock, metrics = str(tmp_path / "api.sock"), tmp_path / "metrics.json"
    start = monotonic_us()
    launch = {"--id": "fc-launch-" + form, "--start-time-us": str(start),
              "--start-time-cpu-us": "0", "--parent-cpu-time-us": "1500"}
    args = [a for k, v in launch.items() for a in ([k, v] if form == "separate" else [f"{k}={v}"])]
    p = start_ember(ember, sock, *args, "--metrics-path", metrics, "--level", "info")
    try:
        api = Api(sock)
        code, info = api.call("GET", "/")
        assert code == 200 and info["id"] == "fc-launch-" + form, info
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        elapsed = monotonic_us() - start
        wall, cpu = startup_metrics(metrics)
        # From our timestamp to the socket accepting: after the start, before now.
        assert 0 < wall <= elapsed, (wall, elapsed)
        # The launcher's 1500 us plus ember's own start-up CPU (well under 2 s).
        assert 1500 < cpu < 1500 + 2_000_000, cpu
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, err
    m = re.search(rb"API server listening on \S+ after (\d+) us, (\d+) us of CPU", err)
    assert m and int(m.group(1)) == wall and int(m.group(2)) == cpu, err


def test_startup_times_without_a_launcher(ember, tmp_path):
    """No --start-time-us: measured from ember's own start."""
    sock, metrics = str(tmp_path / "api.sock"), tmp_path / "metrics.json"
    before = monotonic_us()
    p = start_ember(ember, sock, "--metrics-path", metrics)
    try:
        api = Api(sock)
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        wall, cpu = startup_metrics(metrics)
        assert 0 < wall <= monotonic_us() - before and 0 < cpu < 2_000_000, (wall, cpu)
    finally:
        p.kill()
        p.wait()


def test_cpu_start_later_than_our_clock_is_ignored(ember, tmp_path):
    """A --start-time-cpu-us this process cannot have reached (a reading of
    another process's clock): a warning, and ember's own CPU time counts."""
    sock, metrics = str(tmp_path / "api.sock"), tmp_path / "metrics.json"
    p = start_ember(ember, sock, "--metrics-path", metrics, "--start-time-cpu-us",
                    str(10 ** 15), "--parent-cpu-time-us", "7")
    try:
        assert Api(sock).call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        _, cpu = startup_metrics(metrics)
        assert 7 < cpu < 2_000_000, cpu
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
    finally:
        p.kill()
        p.wait()
    assert b"--start-time-cpu-us 1000000000000000 is more than" in err, err


def default_sock(p, timeout=10):
    """Wait for the default socket of the ember @p started; its path as that
    ember sees it (in its jail, when jailed: by then the jailer's child is
    ember, not one of the wrapper script's short-lived children)."""
    deadline = time.monotonic() + timeout
    while True:
        assert p.poll() is None, p.stderr.read().decode()
        pids = [p.pid]
        if JAILED:
            kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True)
            pids = kids.stdout.split()
        for pid in pids:
            path = f"/proc/{pid}/root{DEFAULT_SOCK}"
            if os.path.exists(path):
                return path
        assert time.monotonic() < deadline, "the default socket never appeared"
        time.sleep(0.005)


def test_default_socket(ember):
    """Neither --api-sock nor --no-api: Firecracker's /run/firecracker.socket."""
    p = subprocess.Popen([str(ember)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        sock = default_sock(p)
        code, info = Api(sock).call("GET", "/")
        assert code == 200 and info["state"] == "Not started", info
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        assert not os.path.exists(sock), "the socket must be removed at exit"
    finally:
        p.kill()
        p.wait()


def test_config_file_and_default_socket(ember, guest, tmp_path):
    """Kata's jailed launch: only --config-file; the VM boots and the API
    answers on the default socket, where Kata waits for state Running."""
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": str(guest("hello.elf")),
                                               "boot_args": "cad=1"}}))
    p = subprocess.Popen([str(ember), "--config-file", str(cfg)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        sock = default_sock(p)
        api = Api(sock)
        assert api.call("GET", "/")[1]["state"] == "Running"
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        out, err = p.communicate(timeout=20)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, err
    assert b"waiting for ctrl-alt-del" in out


def test_version_formats(ember, tmp_path):
    """--version's first line and GET /version's firecracker_version: the
    same Firecracker API level, parseable as Kata parses it; ember's own
    version beside it."""
    r = subprocess.run([str(ember), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Firecracker v"), r.stdout
    fc = kata_version(r.stdout)
    m = re.fullmatch(r"ember v(\S+)", lines[1])
    assert m and SEMVER.fullmatch(m.group(1)), r.stdout
    own = m.group(1)
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        assert api.call("GET", "/version") == (200, {"firecracker_version": fc,
                                                     "ember_version": own})
        info = api.call("GET", "/")[1]
        assert info["vmm_version"] == fc and info["ember_version"] == own, info
    finally:
        p.kill()
        p.wait()


def test_snapshot_version_flags(ember, tmp_path):
    """--snapshot-version prints the state file format version as Firecracker
    prints its own; --describe-snapshot reads a file's header (a version
    this ember cannot load is still shown)."""
    r = subprocess.run([str(ember), "--snapshot-version"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0 and re.fullmatch(r"v\d+\.0\.0\n", r.stdout), r.stdout
    st = tmp_path / "future.state"
    st.write_bytes(b"EMBERSNP" + (0x8664).to_bytes(4, "little") + (7).to_bytes(4, "little")
                   + bytes(8))
    r = subprocess.run([str(ember), "--describe-snapshot", str(st)], capture_output=True,
                       text=True, timeout=10)
    assert (r.returncode, r.stdout) == (0, "v7.0.0\n"), r.stderr
