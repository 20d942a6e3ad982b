"""Metrics as Firecracker's docs/metrics.md describes them: a FIFO named by
PUT /metrics or --metrics-path before any reader exists (the Go SDK's
MetricsFifo), Firecracker's sections and names, per-device block_<id> and
net_<id> next to the aggregates, counters that restart at every line while
store metrics stay, emit_id and properties; a reader that stops reading
never stalls ember (a line that does not fit is dropped whole and counted);
garbage metrics_path values are refused."""
import json
import os
import signal
import subprocess
import time

import fcmetrics
from api_client import Api, start_ember
from conftest import ember_pid, read_until


def drain(fifo):
    """Everything in @fifo now (ember holds a writer: no EOF, EAGAIN when empty)."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    data = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data.decode()


def blk_vm(api, guest, tmp_path, drives=("alpha", "beta")):
    for d in drives:
        disk = tmp_path / f"{d}.img"
        disk.write_bytes(b"\0" * (256 << 10))
        assert api.call("PUT", f"/drives/{d}", {"drive_id": d, "path_on_host": str(disk),
                                                 "is_root_device": False})[0] == 204
    assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("blk.elf")),
                                            "boot_args": "mode=3"})[0] == 204


def test_fifo_before_reader_schema_devices_and_reset(ember, guest, tmp_path):
    fifo = tmp_path / "metrics.fifo"
    os.mkfifo(fifo)
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        # No reader: Firecracker's open (read-write, non-blocking) works.
        assert api.call("PUT", "/metrics", {"metrics_path": str(fifo)})[0] == 204
        blk_vm(api, guest, tmp_path)
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        m, out = read_until(p, r"blk: done failed=(\d+)\n", 60)
        assert m and m.group(1) == "0", out
        for _ in range(2):
            assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        lines = fcmetrics.parse(drain(fifo))
    finally:
        api.close()
        p.kill()
        p.wait()
    # A line at InstanceStart (none at PUT /metrics), one per FlushMetrics.
    assert len(lines) == 3, lines
    for line in lines:
        fcmetrics.validate(line)
        assert abs(line["utc_timestamp_ms"] - time.time() * 1000) < 120_000
        assert "id" not in line and "properties" not in line
        assert {"block_alpha", "block_beta"} <= set(line)
        # The aggregate is the sum of the drives.
        for k in ("read_count", "write_count", "read_bytes", "write_bytes", "flush_count",
                  "queue_event_count"):
            assert line["block"][k] == line["block_alpha"][k] + line["block_beta"][k], (k, line)
    boot, first, second = lines
    # The drives were configured before the boot line; nothing since.
    assert boot["put_api_requests"]["drive_count"] == 2
    assert first["put_api_requests"]["drive_count"] == 0
    assert first["put_api_requests"]["actions_count"] == 1  # InstanceStart
    assert second["put_api_requests"]["actions_count"] == 1  # the first FlushMetrics
    # The guest wrote and read both drives between the boot line and the first flush.
    for d in ("block_alpha", "block_beta"):
        assert first[d]["write_count"] > 0 and first[d]["read_count"] > 0, first[d]
        assert first[d]["write_bytes"] == 256 << 10, first[d]
        assert first[d]["flush_count"] >= 1
        assert first[d]["execute_fails"] == 0
        # Request times: sums are counters, min and max values.
        assert first[d]["write_agg"]["sum_us"] + first[d]["read_agg"]["sum_us"] > 0
        assert first[d]["write_agg"]["max_us"] >= first[d]["write_agg"]["min_us"]
        assert second[d]["write_agg"]["sum_us"] == 0
        assert second[d]["write_agg"]["max_us"] == first[d]["write_agg"]["max_us"]
    assert first["vcpu"]["exit_mmio_write"] > 0 and first["vcpu"]["exit_io_out"] > 0
    assert first["uart"]["write_count"] > 0
    # The guest is idle now: the second line's I/O counters are 0 ...
    for d in ("block", "block_alpha", "block_beta"):
        for k in ("read_count", "write_count", "read_bytes", "write_bytes", "flush_count",
                  "queue_event_count"):
            assert second[d][k] == 0, (d, k, second[d])
    assert second["vcpu"]["exit_mmio_write"] == 0
    assert second["uart"]["write_count"] == 0
    # ... while store metrics keep their values.
    agg = first["vcpu"]["exit_mmio_write_agg"]
    assert agg["max_us"] >= agg["min_us"] and second["vcpu"]["exit_mmio_write_agg"]["max_us"] == agg["max_us"]
    assert first["ember"]["boot"]["instance_start_us"] > 0
    assert second["ember"]["boot"] == first["ember"]["boot"]
    assert second["ember"]["state"] == "Running"
    assert set(second["ember"]["block"]) == {"alpha", "beta"}


def test_stalled_reader_never_stalls_ember_and_drops_are_counted(ember, tmp_path):
    fifo = tmp_path / "metrics.fifo"
    os.mkfifo(fifo)
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock, "--metrics-path", fifo)
    api = Api(sock)
    try:
        # Nobody reads: the FIFO fills, then lines are dropped, fast.
        dropped, t0 = 0, time.monotonic()
        for _ in range(40):
            st, body = api.call("PUT", "/actions", {"action_type": "FlushMetrics"})
            if st == 400:
                assert "dropped" in body["fault_message"], body
                dropped += 1
            else:
                assert st == 204 and dropped == 0  # once full, it stays full
        assert time.monotonic() - t0 < 20
        assert dropped >= 20
        assert api.call("GET", "/")[0] == 200
        # Every line that went in is whole; the next one says how many were lost.
        lines = fcmetrics.parse(drain(fifo))
        assert len(lines) == 40 - dropped
        assert fcmetrics.total(lines, "logger", "missed_metrics_count") == 0
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        [line] = fcmetrics.parse(drain(fifo))
        fcmetrics.validate(line)
        assert line["logger"]["missed_metrics_count"] == dropped
        assert line["logger"]["metrics_fails"] == 0
        # The dropped lines' counts were not lost: every FlushMetrics so far.
        assert fcmetrics.total(lines + [line], "put_api_requests", "actions_count") == 40
        assert fcmetrics.total(lines + [line], "put_api_requests", "actions_fails") == dropped
        # A reader that goes away stalls nothing either.
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        # The exit line too (a pipe keeps its data only while one end is open).
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.kill(ember_pid(p), signal.SIGTERM)
        assert p.wait(timeout=20) == 0
        tail = fcmetrics.parse(os.read(fd, 1 << 20).decode())
        os.close(fd)
        assert len(tail) == 2 and tail[1]["logger"]["missed_metrics_count"] == 0
    finally:
        api.close()
        p.kill()
        p.wait()


def test_emit_id_and_properties(ember, tmp_path):
    path = tmp_path / "metrics.json"
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        props = {"customer_id": "1234", "bundle_id": "fn-abc"}
        assert api.call("PUT", "/metrics", {"metrics_path": str(path), "emit_id": True,
                                            "properties": props})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        instance = api.call("GET", "/")[1]["id"]
        [line] = fcmetrics.read(path)
        fcmetrics.validate(line)
        assert line["id"] == instance and line["properties"] == props
        assert line["ember"]["id"] == instance and line["ember"]["state"] == "Not started"
        assert line["get_api_requests"]["instance_info_count"] == 0
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        line = fcmetrics.read(path)[-1]
        assert line["get_api_requests"]["instance_info_count"] == 1
        assert line["put_api_requests"]["metrics_count"] == 0  # counted in the first line
        # GET /vm/config shows them, in the form PUT /metrics takes back.
        assert api.call("GET", "/vm/config")[1]["metrics"] == {
            "metrics_path": str(path), "emit_id": True, "properties": props}
    finally:
        api.close()
        p.kill()
        p.wait()


GARBAGE = [
    ({}, "metrics_path"),
    ({"metrics_path": None}, "metrics_path"),
    ({"metrics_path": 7}, "metrics_path"),
    ({"metrics_path": ""}, "empty"),
    ({"metrics_path": "/nonexistent/dir/m"}, "cannot be opened"),
    ({"metrics_path": "/tmp"}, "cannot be opened"),
    ({"metrics_path": "/tmp/" + "x" * 5000}, "metrics_path"),  # ENAMETOOLONG
    ({"metrics_path": "/tmp/m", "emit_id": "yes"}, "emit_id"),
    ({"metrics_path": "/tmp/m", "properties": {"a": 1}}, "properties"),
    ({"metrics_path": "/tmp/m", "properties": ["a"]}, "properties"),
    ({"metrics_path": "/tmp/m", "bogus": 1}, "bogus"),
]


def test_garbage_metrics_path_is_refused(ember, tmp_path):
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        for body, word in GARBAGE:
            st, resp = api.call("PUT", "/metrics", body)
            assert st == 400 and word in resp["fault_message"], (body, st, resp)
        assert not os.path.exists("/tmp/m")
        st, resp = api.call("PUT", "/metrics", raw=b'{"metrics_path": "/tmp/a\\u0000b"}')
        assert st == 400, resp
        # None of them used up the one configuration.
        path = tmp_path / "metrics.json"
        assert api.call("PUT", "/metrics", {"metrics_path": str(path)})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        line = fcmetrics.read(path)[-1]
        assert line["put_api_requests"]["metrics_fails"] == len(GARBAGE) + 1
        assert line["put_api_requests"]["metrics_count"] == len(GARBAGE) + 2
    finally:
        api.close()
        p.kill()
        p.wait()


def test_cli_metrics_path_garbage(ember, tmp_path):
    for bad in ("/nonexistent/dir/m", str(tmp_path)):
        r = subprocess.run([str(ember), "--api-sock", str(tmp_path / "api.sock"),
                            "--metrics-path", bad],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "metrics" in r.stderr, (bad, r.returncode, r.stderr)


def test_config_file_metrics_fifo_emit_id_and_i8042(ember, guest, tmp_path):
    """The config file's metrics section (a FIFO with no reader, emit_id,
    properties), as Firecracker's docs show it; the i8042 counts the guest's
    reads of the Ctrl+Alt+Del scan codes and its reset pulse (0xfe)."""
    fifo = tmp_path / "metrics.fifo"
    os.mkfifo(fifo)
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("hello.elf")),
                        "boot_args": "cad=1 reset=1"},
        "metrics": {"metrics_path": str(fifo), "emit_id": True,
                    "properties": {"bundle_id": "fn-abc"}},
    }))
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock, "--config-file", cfg)
    api = Api(sock)
    try:
        assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
        instance = api.call("GET", "/")[1]["id"]
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        assert p.wait(timeout=20) == 0
        lines = fcmetrics.parse(os.read(fd, 1 << 20).decode())
        os.close(fd)
    finally:
        api.close()
        p.kill()
        p.wait()
    assert len(lines) == 2  # at boot, at exit
    for line in lines:
        fcmetrics.validate(line)
        assert line["id"] == instance and line["properties"] == {"bundle_id": "fn-abc"}
    assert lines[1]["i8042"]["reset_count"] == 1
    assert fcmetrics.total(lines, "i8042", "read_count") >= 4  # the four scan codes
    assert fcmetrics.total(lines, "i8042", "missed_write_count") == 0


def test_snapshot_latencies_and_the_line_at_load(ember, guest, tmp_path):
    """latencies_us holds the last pause, resume, snapshot create and load
    (API and handler times, values that stay); a restored VM writes its
    first line when the load starts it, as a boot does."""
    sock = str(tmp_path / "a.sock")
    metrics = tmp_path / "a.json"
    p = start_ember(ember, sock)
    api = Api(sock)
    st, mem = tmp_path / "vm.state", tmp_path / "vm.mem"
    try:
        assert api.call("PUT", "/metrics", {"metrics_path": str(metrics)})[0] == 204
        assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")),
                                                "boot_args": "cad=1"})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        assert api.call("PUT", "/snapshot/create", {"snapshot_path": str(st),
                                                    "mem_file_path": str(mem)})[0] == 204
        assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        lat = fcmetrics.read(metrics)[-1]["latencies_us"]
        for k in ("pause_vm", "resume_vm", "full_create_snapshot"):
            assert lat[k] > 0 and lat[k] >= lat["vmm_" + k], lat
        assert lat["diff_create_snapshot"] == lat["load_snapshot"] == 0, lat
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        assert fcmetrics.read(metrics)[-1]["latencies_us"] == lat  # values, not counters
    finally:
        api.close()
        p.kill()
        p.wait()

    fifo = tmp_path / "b.fifo"
    os.mkfifo(fifo)
    sock = str(tmp_path / "b.sock")
    q = start_ember(ember, sock)
    api = Api(sock)
    try:
        assert api.call("PUT", "/metrics", {"metrics_path": str(fifo)})[0] == 204
        assert drain(fifo) == ""
        assert api.call("PUT", "/snapshot/load", {
            "snapshot_path": str(st), "resume_vm": True,
            "mem_backend": {"backend_type": "File", "backend_path": str(mem)}})[0] == 204
        [line] = fcmetrics.parse(drain(fifo))  # written by the load
        fcmetrics.validate(line)
        assert line["ember"]["state"] == "Running"
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        [line] = fcmetrics.parse(drain(fifo))
        assert line["latencies_us"]["load_snapshot"] > 0
        assert line["latencies_us"]["vmm_load_snapshot"] > 0
    finally:
        api.close()
        q.kill()
        q.wait()
