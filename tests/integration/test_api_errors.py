"""Malformed API requests, table-driven: each gets the right status and a
fault_message naming the problem, and the server still answers GET /
afterwards. Then 8 concurrent keep-alive clients x 1000 mixed requests."""
import json
import threading
import time

import pytest

from api_client import Api, start_ember

MC = "/machine-config"
BS = "/boot-source"

# (method, path, body (dict, or str sent raw), status, words in fault_message)
CASES = [
    # unknown paths and wrong methods
    ("GET", "/nope", None, 400, "Invalid request method and/or path: GET /nope"),
    ("DELETE", "/", None, 400, "Invalid request method and/or path: DELETE /"),
    ("POST", BS, {}, 400, "Invalid request method and/or path: POST /boot-source"),
    ("GET", BS, None, 400, "Invalid request method and/or path"),
    ("PUT", "/drives", {}, 400, "Invalid request method and/or path"),
    ("PUT", "/drives/a/b", {}, 400, "Invalid request method and/or path"),
    ("GET", "/drives/x", None, 400, "Invalid request method and/or path"),
    ("PUT", "/snapshot/create", {}, 400, "not supported before starting"),
    ("PUT", "/snapshot/delete", {}, 400, "Invalid request method and/or path"),
    # Firecracker's body rules, checked before the path: a GET has no body,
    # a PUT or PATCH has one
    ("GET", "/", "{}", 400, "GET request cannot have a body."),
    ("GET", "/vm/config", "x", 400, "GET request cannot have a body."),
    ("GET", "/nope", "{}", 400, "GET request cannot have a body."),
    ("PUT", BS, "", 400, "Empty PUT request."),
    ("PUT", "/nope", "", 400, "Empty PUT request."),
    ("PATCH", MC, "", 400, "Empty PATCH request."),
    ("PATCH", "/vm", "", 400, "Empty PATCH request."),
    ("PUT", "/actions", "", 400, "Empty PUT request."),
    # bodies that are not JSON objects
    ("PUT", BS, "{", 400, "An error occurred when deserializing the json body of a request"),
    ("PUT", BS, "not json", 400, "An error occurred when deserializing"),
    ("PUT", BS, " ", 400, "An error occurred when deserializing"),
    ("PUT", BS, "null", 400, "An error occurred when deserializing"),
    ("PUT", BS, "[1, 2]", 400, "must be a JSON object"),
    ("PUT", BS, '"kernel"', 400, "An error occurred when deserializing"),
    ("PUT", MC, '{"vcpu_count": 1, "vcpu_count": 2, "mem_size_mib": 128}', 400, "duplicate"),
    ("PUT", MC, "[" * 25000 + "]" * 25000, 400, "An error occurred when deserializing"),
    ("PUT", MC, '{"a":' * 5000 + "1" + "}" * 5000, 400, "An error occurred when deserializing"),
    ("PUT", MC, '{"vcpu_count": 1, "mem_size_mib": 123456789012345678901234567890}', 400,
     "An error occurred when deserializing"),
    ("PUT", MC, '{"vcpu_count": 1e400, "mem_size_mib": 64}', 400, "An error occurred when deserializing"),
    ("PUT", MC, '{"vcpu_count": 1e3, "mem_size_mib": 64}', 400, "invalid type for field `vcpu_count`"),
    ("PUT", MC, '{"vcpu_count": 1, "mem_size_mib": 64}\x00', 400, "An error occurred when deserializing"),
    ("PUT", MC, '{"vcpu_count": 1, "mem_size_mib": 64} {}', 400, "An error occurred when deserializing"),
    # null: an optional field is absent, a required one is a wrong type
    ("PUT", MC, {"vcpu_count": None, "mem_size_mib": 128}, 400,
     "invalid type for field `vcpu_count` in machine-config: expected a non-negative integer, not null"),
    ("PUT", BS, {"kernel_image_path": None}, 400, "invalid type for field `kernel_image_path`"),
    ("PUT", "/drives/a", {"drive_id": None, "path_on_host": "@D", "is_root_device": False}, 400,
     "invalid type for field `drive_id`"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False,
                          "rate_limiter": {"ops": {"size": 1, "refill_time": None}}}, 400,
     "invalid type for field `refill_time` in `ops`"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False,
                          "rate_limiter": {"iops": None}}, 400, "unknown field `iops`"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": None}, 400,
     "invalid type for field `host_dev_name`"),
    ("PUT", "/vsock", {"guest_cid": None, "uds_path": "/tmp/v.sock"}, 400, "invalid type for field `guest_cid`"),
    ("PUT", "/metrics", {"metrics_path": None}, 400, "invalid type for field `metrics_path`"),
    ("PUT", "/actions", {"action_type": None}, 400, "invalid type for field `action_type`"),
    ("PUT", "/snapshot/load", {"snapshot_path": None, "mem_file_path": "/x"}, 400, "`snapshot_path`"),
    # boot-source
    ("PUT", BS, {"boot_args": "x"}, 400, "missing field `kernel_image_path`"),
    ("PUT", BS, {"kernel_image_path": 42}, 400, "invalid type for field `kernel_image_path`"),
    ("PUT", BS, {"kernel_image_path": "/nonexistent"}, 400, "kernel image '/nonexistent' cannot be opened"),
    ("PUT", BS, {"kernel_image_path": "/tmp"}, 400, "is not a regular file"),
    ("PUT", BS, {"kernel_image_path": "@K", "kernel": 1}, 400, "unknown field `kernel`"),
    ("PUT", BS, {"kernel_image_path": "@K", "initrd_path": "/nonexistent"}, 400, "initrd '/nonexistent'"),
    ("PUT", BS, {"kernel_image_path": "@K", "boot_args": "x" * 3000}, 400, "boot_args is 3000 bytes"),
    # machine-config
    ("PUT", MC, {"vcpu_count": 2}, 400, "missing field `mem_size_mib`"),
    ("PUT", MC, {"mem_size_mib": 128}, 400, "missing field `vcpu_count`"),
    ("PUT", MC, {"vcpu_count": 0, "mem_size_mib": 128}, 400, "Invalid vCPU count: 0"),
    ("PUT", MC, {"vcpu_count": 33, "mem_size_mib": 128}, 400, "Invalid vCPU count: 33"),
    ("PUT", MC, {"vcpu_count": -1, "mem_size_mib": 128}, 400, "invalid type for field `vcpu_count`"),
    ("PUT", MC, {"vcpu_count": "2", "mem_size_mib": 128}, 400, "invalid type for field `vcpu_count`"),
    ("PUT", MC, {"vcpu_count": 1.5, "mem_size_mib": 128}, 400, "invalid type for field `vcpu_count`"),
    ("PUT", MC, {"vcpu_count": 1, "mem_size_mib": 0}, 400, "Invalid memory size: 0"),
    ("PUT", MC, {"vcpu_count": 1, "mem_size_mib": 1 << 40}, 400, "exceeds the host"),
    ("PUT", MC, {"vcpu_count": 2, "mem_size_mib": 128, "smt": "yes"}, 400, "invalid type for field `smt`"),
    ("PUT", MC, {"vcpu_count": 3, "mem_size_mib": 128, "smt": True}, 400, "must be 1 or an even number if SMT is enabled"),
    ("PUT", MC, {"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "1G"}, 400, "unknown variant `1G` for field `huge_pages`"),
    ("PUT", MC, {"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "V1N1"}, 400, "cpu_template: V1N1 is an aarch64 template"),
    ("PUT", MC, {"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "t2"}, 400, "unknown variant `t2`"),
    ("PUT", MC, {"vcpu_count": 1, "mem_size_mib": 128, "ht_enabled": False}, 400, "unknown field `ht_enabled`"),
    ("PATCH", MC, {"vcpu_count": 64}, 400, "Invalid vCPU count: 64"),
    ("PATCH", MC, {"mem": 1}, 400, "unknown field `mem`"),
    # drives
    ("PUT", "/drives/a", {"drive_id": "b", "path_on_host": "@D", "is_root_device": False}, 400,
     "The id from the path [a] does not match the id from the body [b]!"),
    ("PUT", "/drives/a", {"drive_id": "a", "is_root_device": False}, 400, "missing field `path_on_host`"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D"}, 400, "missing field `is_root_device`"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "/nonexistent", "is_root_device": False}, 400,
     "drive file '/nonexistent' cannot be opened"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": "no"}, 400,
     "invalid type for field `is_root_device`"),
    # a partuuid reaches the guest's command line: bounded and checked
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": True,
                          "partuuid": "f" * 50000}, 400, "partuuid must be 1 to 36"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": True,
                          "partuuid": "1234 root=/dev/sda"}, 400, "partuuid must be"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": True,
                          "partuuid": ""}, 400, "partuuid must be"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False, "cache_type": "None"},
     400, "unknown variant `None` for field `cache_type`"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False, "io_engine": "aio"},
     400, "unknown variant `aio` for field `io_engine`"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False,
                          "rate_limiter": {"bandwidth": {"size": 100}}}, 400, "missing field `refill_time` in `bandwidth`"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False,
                          "rate_limiter": {"bandwidth": {"size": 100, "refill_time": 0}}}, 400, "refill_time must be more than 0"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False,
                          "rate_limiter": {"ops": {"size": 1, "refill_time": 2**58}}}, 400, "refill_time must be at most"),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False,
                          "rate_limiter": {"iops": {}}}, 400, "unknown field `iops` in `rate_limiter`"),
    ("PUT", "/drives/a%20b", {"drive_id": "a b", "path_on_host": "@D", "is_root_device": False}, 400, "Invalid id"),
    ("PATCH", "/drives/a", {"drive_id": "a"}, 400, "not supported before starting"),
    # network interfaces and vsock
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0"}, 400, "missing field `host_dev_name`"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth1", "host_dev_name": "tap0"}, 400, "does not match"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz:00"}, 400,
     "is not a MAC address"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "t" * 20}, 400, "host_dev_name"),
    ("PUT", "/vsock", {"guest_cid": 2, "uds_path": "/tmp/v.sock"}, 400, "guest_cid must be from 3"),
    ("PUT", "/vsock", {"guest_cid": 3}, 400, "missing field `uds_path`"),
    # logger, metrics, vm, actions
    ("PUT", "/logger", {"level": "Loud"}, 400, "unknown variant `Loud` for field `level`"),
    ("PUT", "/logger", {"log_path": "/nonexistent/dir/log"}, 400, "log_path '/nonexistent/dir/log' cannot be opened"),
    ("PUT", "/metrics", {}, 400, "missing field `metrics_path`"),
    ("PUT", "/metrics", {"metrics_path": "/nonexistent/dir/m"}, 400, "cannot be opened"),
    ("PATCH", "/vm", {"state": "Paused"}, 400, "not supported before starting"),
    ("PUT", "/actions", {"action_type": "Reboot"}, 400, "unknown variant `Reboot` for field `action_type`"),
    ("PUT", "/actions", {}, 400, "missing field `action_type`"),
    ("PUT", "/actions", {"action_type": "FlushMetrics"}, 400, "metrics are not configured"),
]


@pytest.fixture(scope="module")
def server(ember, tmp_path_factory, guest):
    d = tmp_path_factory.mktemp("api")
    disk = d / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    sock = str(d / "api.sock")
    p = start_ember(ember, sock)
    yield sock, {"@K": str(guest("hello.elf")), "@D": str(disk)}
    alive = p.poll() is None
    p.kill()
    p.wait()
    assert alive, p.stderr.read().decode()


def subst(body, paths):
    if isinstance(body, dict):
        return {k: subst(v, paths) for k, v in body.items()}
    return paths.get(body, body) if isinstance(body, str) else body


@pytest.mark.parametrize("method,path,body,status,words", CASES,
                         ids=[f"{c[0]} {c[1]} {c[4][:40]}" for c in CASES])
def test_malformed_request(server, method, path, body, status, words):
    sock, paths = server
    api = Api(sock)
    try:
        if isinstance(body, str):
            st, resp = api.call(method, path, raw=body)
        else:
            st, resp = api.call(method, path, subst(body, paths))
        assert st == status, resp
        assert words in resp["fault_message"], resp
        # The server is still there, on the same connection and a new one.
        assert api.call("GET", "/")[0] == 200
        assert Api(sock).call("GET", "/")[1]["state"] == "Not started"
    finally:
        api.close()


# Each body is accepted, nulls read as absent; GET /vm/config (or GET
# /machine-config) then shows what the call set.
NULL_OK = [
    ("PUT", MC, {"vcpu_count": 1, "mem_size_mib": 96, "smt": None, "track_dirty_pages": None,
                 "huge_pages": None, "cpu_template": None}),
    ("PATCH", MC, {"vcpu_count": None, "mem_size_mib": 100, "smt": None, "huge_pages": None}),
    ("PUT", BS, {"kernel_image_path": "@K", "boot_args": None, "initrd_path": None}),
    ("PUT", "/drives/a", {"drive_id": "a", "path_on_host": "@D", "is_root_device": False,
                          "is_read_only": None, "partuuid": None, "cache_type": None,
                          "io_engine": None, "socket": None, "rate_limiter": None}),
    ("PUT", "/drives/b", {"drive_id": "b", "path_on_host": "@D", "is_root_device": False,
                          "rate_limiter": {"bandwidth": None, "ops": {
                              "size": 10, "one_time_burst": None, "refill_time": 100}}}),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tapnull0",
                                         "guest_mac": None, "mtu": None,
                                         "rx_rate_limiter": None, "tx_rate_limiter": {
                                             "bandwidth": None, "ops": None}}),
    ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "@V", "vsock_id": None}),
    ("PUT", "/entropy", {"rate_limiter": {"bandwidth": None, "ops": None}}),
    ("PUT", "/logger", {"log_path": None, "level": None, "show_level": None,
                        "show_log_origin": None, "module": None}),
]


def test_null_means_absent_on_every_endpoint(ember, guest, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    sock = str(tmp_path / "api.sock")
    paths = {"@K": str(guest("hello.elf")), "@D": str(disk), "@V": str(tmp_path / "v.sock")}
    p = start_ember(ember, sock)
    api = Api(sock)
    try:
        for method, path, body in NULL_OK:
            st, resp = api.call(method, path, subst(body, paths))
            assert st == 204, (method, path, resp)
        st, cfg = api.call("GET", "/vm/config")
        assert st == 200
        assert cfg["machine-config"] == {"vcpu_count": 1, "mem_size_mib": 100, "smt": False,
                                         "track_dirty_pages": False, "huge_pages": "None"}
        assert cfg["boot-source"] == {"kernel_image_path": paths["@K"], "boot_args": None,
                                      "initrd_path": None}
        a, b = cfg["drives"]
        assert a["rate_limiter"] is None and a["is_read_only"] is False
        assert a["cache_type"] == "Unsafe" and a["partuuid"] is None
        assert b["rate_limiter"] == {"bandwidth": None, "ops": {
            "size": 10, "one_time_burst": 0, "refill_time": 100}}
        net = cfg["network-interfaces"][0]
        assert net["guest_mac"] is None and net["mtu"] is None
        assert net["rx_rate_limiter"] is None and net["tx_rate_limiter"] is None
        assert cfg["vsock"] == {"guest_cid": 3, "uds_path": paths["@V"]}
        assert cfg["entropy"] == {"rate_limiter": None}
    finally:
        api.close()
        p.kill()
        p.wait()


def raw_request(sock, data, timeout=10):
    """Send @data as is; return (status line, body) of the one answer, or
    (None, b"") if the server closed without one."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    if b"\r\n\r\n" not in got:
        return None, got
    head, body = got.split(b"\r\n\r\n", 1)
    return head.split(b"\r\n")[0].decode(), body


def test_payload_limit_default_and_flag(ember, tmp_path):
    """A body over --http-api-max-payload-size (default 51200 bytes) gets
    Firecracker's 400 and message. ember reads it to its end first (without
    keeping it), so a client that writes its whole body before reading gets
    the answer, and its connection goes on serving."""
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        pad = 51200 - len(json.dumps({"log_path": None, "module": ""}))
        at = json.dumps({"log_path": None, "module": "x" * pad})
        assert len(at) == 51200
        # At the limit: read and checked (module is not a path, so 204 or a
        # fault about the field, never about the size).
        st, body = api.call("PUT", "/logger", raw=at)
        assert st in (204, 400) and (st == 204 or "larger than" not in body["fault_message"]), body
        over = at + " "
        st, body = api.call("PUT", "/logger", raw=over)
        assert st == 400, body
        assert body["fault_message"] == ("Request payload with size 51201 is larger than the "
                                         "limit of 51200 allowed by server."), body
        assert api.call("GET", "/")[0] == 200  # the same connection
        st, body = api.call("PUT", "/machine-config", raw=" " * (1 << 20))
        assert st == 400 and "size 1048576 is larger" in body["fault_message"], body
        assert api.call("GET", "/")[0] == 200
        # Chunked, no Content-Length: counted as it comes.
        chunk = b"x" * 60000
        line, body = raw_request(sock, b"PUT /logger HTTP/1.1\r\nHost: x\r\n"
                                       b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                 b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n")
        assert line and " 400" in line and b"larger than the limit of 51200" in body, (line, body)
        assert Api(sock).call("GET", "/")[0] == 200
    finally:
        p.kill()
        p.wait()
    p = start_ember(ember, sock, "--http-api-max-payload-size", "100")
    try:
        api = Api(sock)
        st, body = api.call("PUT", "/machine-config", raw=json.dumps(
            {"vcpu_count": 1, "mem_size_mib": 64, "smt": False, "track_dirty_pages": False,
             "huge_pages": "None"}))
        assert st == 400 and "limit of 100 allowed" in body["fault_message"], body
        st, body = Api(sock).call("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
        assert st == 204, body
        assert Api(sock).call("GET", "/machine-config")[1]["mem_size_mib"] == 64
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("value", ["", "0", "-1", "abc", "12k", "1e3", " 5",
                                   "99999999999999999999999"])
def test_payload_limit_flag_garbage_is_refused_at_start(ember, tmp_path, value):
    from conftest import run_ember
    r = run_ember(ember, "--api-sock", tmp_path / "api.sock", "--http-api-max-payload-size",
                  value, timeout=30)
    assert r.returncode == 64, r.stderr
    assert "--http-api-max-payload-size must be a number of bytes" in r.stderr, r.stderr
    assert not (tmp_path / "api.sock").exists()


def test_enough_malformed_cases():
    assert len(CASES) >= 40


def test_concurrent_clients(server):
    sock, _ = server
    errors = []

    def client(n):
        api = Api(sock)
        try:
            for i in range(1000):
                kind = i % 4
                if kind == 0:
                    st, body = api.call("GET", "/")
                    ok = st == 200 and body["app_name"] == "ember"
                elif kind == 1:
                    st, body = api.call("GET", "/machine-config")
                    ok = st == 200 and "vcpu_count" in body
                elif kind == 2:
                    st, body = api.call("PATCH", "/machine-config", {"mem_size_mib": 64 + n})
                    ok = st == 204 and body is None
                else:
                    # A unique bad path: the error must echo exactly ours.
                    st, body = api.call("GET", f"/client-{n}-req-{i}")
                    ok = st == 400 and body["fault_message"].endswith(f"GET /client-{n}-req-{i}.")
                if not ok:
                    errors.append((n, i, st, body))
                    return
        except Exception as e:  # noqa: BLE001
            errors.append((n, "exception", repr(e)))
        finally:
            api.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:5]
    st, body = Api(sock).call("GET", "/machine-config")
    assert st == 200 and 64 <= body["mem_size_mib"] < 72


def test_fault_message_quoting_non_utf8_bytes_is_still_json(server):
    """A request path with bytes that are not UTF-8 gets its 400 with a JSON
    body (the fault message once came back empty)."""
    import socket
    sock, _ = server
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(b"GET /\xff\xfe\xc0\xaf HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([l.split(b":")[1] for l in head.split(b"\r\n")
                  if l.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += s.recv(4096)
    s.close()
    assert head.startswith(b"HTTP/1.1 400"), head
    msg = json.loads(body.decode("utf-8"))["fault_message"]
    assert "Invalid request method and/or path: GET /" in msg, msg
    assert Api(sock).call("GET", "/")[0] == 200


@pytest.mark.parametrize("data,status,words", [
    (b"FROB / HTTP/1.1\r\n\r\n", "400", b"invalid HTTP method"),
    (b"GET / HTTP/9.9\r\n\r\n", "505", b""),
    (b"GET /\x01 HTTP/1.1\r\n\r\n", "400", b"invalid URL"),
    (b"PUT /logger HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", "400",
     b"invalid character in content-length header"),
    (b"PUT /logger HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "400",
     b"unexpected content-length header"),
    (b"PUT /logger HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400",
     b"invalid character in chunk size header"),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * (100 << 10) + b"\r\n\r\n", "400",
     b"overflow detected"),
    (b"\x00\xff\xfe garbage\r\n\r\n", "400", b"invalid HTTP method"),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", "414", b""),
], ids=["method", "version", "url", "content-length", "two-lengths", "chunk-size",
        "header-overflow", "binary", "long-path"])
def test_malformed_http_is_refused_and_the_server_goes_on(server, data, status, words):
    """What http-parser cannot parse gets a 400 with its reason (a path over
    4 KiB a 414, an HTTP version other than 1.x a 505) and the connection
    closes; other clients are served."""
    sock, _ = server
    line, body = raw_request(sock, data)
    assert line and line.startswith(f"HTTP/1.1 {status}"), (line, body)
    if words:
        assert words in body and json.loads(body)["fault_message"], body
    assert Api(sock).call("GET", "/")[0] == 200


def test_path_is_percent_decoded_and_query_cut(server):
    """The path routes see: %XX decoded, the query string cut off; %00 is
    not decoded (it would cut the path short and reach another route)."""
    sock, _ = server
    line, body = raw_request(sock, b"GET /machine%2Dconfig?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert line == "HTTP/1.1 200 OK" and b"vcpu_count" in body, (line, body)
    line, body = raw_request(sock, b"GET /%00 HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert line.startswith("HTTP/1.1 400") and b"GET /%00." in body, (line, body)


def test_pipelined_requests_are_answered_in_order(server):
    """Requests written back to back on one connection, before any answer,
    are each answered, in order (the VMM thread sees one at a time)."""
    sock, _ = server
    one = b"GET /machine-config HTTP/1.1\r\nHost: x\r\n\r\n"
    bad = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
    line, rest = raw_request(sock, one + bad + one + last)
    assert line == "HTTP/1.1 200 OK", line
    assert rest.count(b"HTTP/1.1 200 OK") == 2 and rest.count(b"HTTP/1.1 400 Bad Request") == 1
    assert rest.index(b"400 Bad Request") < rest.index(b"200 OK")
    assert rest.endswith(b'"ember_version":"' + rest.split(b'"ember_version":"')[1]), rest


def test_client_gone_mid_request_goes_to_the_log_not_raw_stderr(ember, tmp_path):
    """The HTTP server's own messages go through ember's logger (at debug
    level): a client that leaves mid-request once printed a raw line on
    stderr that PUT /logger could not redirect."""
    import socket
    import time
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock, "--level", "debug", "--show-level")
    try:
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            s.sendall(b"PUT /logger HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(0.1)
            s.close()
        assert Api(sock).call("GET", "/")[0] == 200
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    lines = [l for l in err.decode().splitlines() if "closed" in l]
    assert lines, err
    assert all(":DEBUG] API server: " in l for l in lines), lines


def test_client_gone_while_its_request_is_with_the_vmm_thread(ember, tmp_path):
    """A client writes a whole request with `Expect: 100-continue` and leaves:
    the server's 100 Continue then fails to write while the VMM thread holds
    the call. The server once freed that call and its connection there, and
    the reply came back through freed memory (found by fuzz_http; ASan runs
    of this test catch it). The request still takes effect, as any request
    whose client left, and the server goes on."""
    import socket
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    try:
        for i in range(20):
            body = json.dumps({"vcpu_count": 1 + i % 2, "mem_size_mib": 128 + i}).encode()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            s.sendall(b"PUT /machine-config HTTP/1.1\r\nExpect: 100-continue\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            s.close()
        api = Api(sock)
        deadline = time.monotonic() + 10
        while api.call("GET", "/machine-config")[1]["mem_size_mib"] != 147:
            assert time.monotonic() < deadline, api.call("GET", "/machine-config")
            time.sleep(0.01)
        assert api.call("GET", "/")[0] == 200
    finally:
        alive = p.poll() is None
        p.kill()
        _, err = p.communicate(timeout=10)
    assert alive, err.decode()
