"""MMDS, the microVM metadata service: the data store API (PUT/PATCH/GET
/mmds), PUT /mmds/config, the config-file section, --metadata and
--mmds-size-limit, with Firecracker's status codes and messages."""
import json
import os
import subprocess
import time

import pytest

from api_client import Api, start_ember
from conftest import read_until, run_ember

USAGE = 64
NOT_INIT = "MMDS error: The MMDS data store is not initialized."
TOO_BIG = "MMDS limit exceeded error: The MMDS patch request doesn't fit."


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "ember.sock")


@pytest.fixture
def api(ember, sock):
    p = start_ember(ember, sock)
    a = Api(sock)
    yield a
    a.close()
    p.kill()
    p.wait()


def add_nets(api, *ids):
    for i, iface in enumerate(ids):
        st, body = api.call("PUT", f"/network-interfaces/{iface}",
                            {"iface_id": iface, "host_dev_name": f"tap{i}"})
        assert st == 204, body


def test_store_put_patch_get(api):
    # Before any PUT: GET shows {} and a PATCH has nothing to patch.
    assert api.call("GET", "/mmds") == (200, {})
    assert api.call("PATCH", "/mmds", {"a": 1}) == (400, {"fault_message": NOT_INIT})
    doc = {"latest": {"meta-data": {"ami-id": "ami-12345678", "reservation-id": "r-1",
                                    "tags": ["a", "b"], "n": 3}}}
    assert api.call("PUT", "/mmds", doc) == (204, None)
    assert api.call("GET", "/mmds") == (200, doc)
    # RFC 7396: null removes, objects merge, anything else replaces.
    patch = {"latest": {"meta-data": {"ami-id": "ami-87654321", "n": None, "tags": {"x": 1}},
                        "user-data": "hello"}}
    assert api.call("PATCH", "/mmds", patch) == (204, None)
    assert api.call("GET", "/mmds") == (200, {"latest": {
        "meta-data": {"ami-id": "ami-87654321", "reservation-id": "r-1", "tags": {"x": 1}},
        "user-data": "hello"}})
    # PUT replaces everything.
    assert api.call("PUT", "/mmds", {"only": "this"}) == (204, None)
    assert api.call("GET", "/mmds") == (200, {"only": "this"})


def test_get_shows_keys_sorted_as_firecracker(api):
    assert api.call("PUT", "/mmds", raw='{"b": 1, "a": {"d": 2, "c": 3}}')[0] == 204
    api.conn.request("GET", "/mmds")
    text = api.conn.getresponse().read().decode()
    assert text == '{"a":{"c":3,"d":2},"b":1}', text


@pytest.mark.parametrize("value", ["text", 5, [1, 2], True])
def test_store_takes_any_json_value(api, value):
    assert api.call("PUT", "/mmds", value) == (204, None)
    assert api.call("GET", "/mmds") == (200, value)


def test_store_null_reads_as_empty_object(api):
    assert api.call("PUT", "/mmds", raw="null") == (204, None)
    assert api.call("GET", "/mmds") == (200, {})
    # It was PUT, so it can be patched now.
    assert api.call("PATCH", "/mmds", {"k": "v"}) == (204, None)
    assert api.call("GET", "/mmds") == (200, {"k": "v"})


GARBAGE = ["{", "not json", '{"a": 1} trailing', '{"a": 1, "a": 2}', "\x00\x01", "[1,]",
           '"unterminated', "{\"a\": \"\xff\"}", "1e99999"]


@pytest.mark.parametrize("raw", GARBAGE)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_garbage_bodies_are_refused_and_change_nothing(api, method, raw):
    assert api.call("PUT", "/mmds", {"keep": 1}) == (204, None)
    st, body = api.call(method, "/mmds", raw=raw)
    assert st == 400 and "deserializing" in body["fault_message"], body
    assert api.call("GET", "/mmds") == (200, {"keep": 1})


def test_empty_and_misrouted_requests(api):
    assert api.call("PUT", "/mmds", raw="") == (400, {"fault_message": "Empty PUT request."})
    assert api.call("PATCH", "/mmds", raw="")[0] == 400
    st, body = api.call("GET", "/mmds", raw='{"a": 1}')
    assert st == 400 and "GET request cannot have a body" in body["fault_message"]
    for method, path in [("PUT", "/mmds/other"), ("DELETE", "/mmds"), ("GET", "/mmds/config"),
                         ("PATCH", "/mmds/config")]:
        st, body = api.call(method, path, {"a": 1} if method != "GET" else None)
        assert st == 400 and "Invalid request method and/or path" in body["fault_message"], \
            (method, path, body)


def test_size_limit_flag(ember, sock):
    p = start_ember(ember, sock, "--mmds-size-limit", "100")
    api = Api(sock)
    try:
        # Compact JSON of exactly 100 bytes fits; 101 does not.
        fits = {"k": "x" * (100 - len('{"k":""}'))}
        assert len(json.dumps(fits, separators=(",", ":"))) == 100
        assert api.call("PUT", "/mmds", fits) == (204, None)
        over = {"k": "x" * (101 - len('{"k":""}'))}
        assert api.call("PUT", "/mmds", over) == (413, {"fault_message": TOO_BIG})
        assert api.call("GET", "/mmds") == (200, fits)
        assert api.call("PATCH", "/mmds", {"k2": "y"}) == (413, {"fault_message": TOO_BIG})
        assert api.call("GET", "/mmds") == (200, fits)
        # A patch that makes it smaller is fine.
        assert api.call("PATCH", "/mmds", {"k": "short"}) == (204, None)
        assert api.call("GET", "/mmds") == (200, {"k": "short"})
    finally:
        api.close()
        p.kill()
        p.wait()


def test_size_limit_defaults_to_the_api_payload_limit(ember, sock):
    p = start_ember(ember, sock, "--http-api-max-payload-size", "200")
    api = Api(sock)
    try:
        assert api.call("PUT", "/mmds", {"k": "x" * 150}) == (204, None)
        assert api.call("PATCH", "/mmds", {"j": "x" * 150}) == (413, {"fault_message": TOO_BIG})
    finally:
        api.close()
        p.kill()
        p.wait()


@pytest.mark.parametrize("value", ["", "0", "-1", "abc", "12abc", "99999999999999999999999"])
def test_size_limit_flag_garbage(ember, guest, value):
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--mmds-size-limit", value)
    assert r.returncode == USAGE and "--mmds-size-limit" in r.stderr, r.stderr


def test_config_defaults_and_round_trip(api):
    add_nets(api, "eth0", "eth1")
    assert api.call("GET", "/vm/config")[1]["mmds-config"] is None
    assert api.call("PUT", "/mmds/config", {"network_interfaces": ["eth1"]}) == (204, None)
    assert api.call("GET", "/vm/config")[1]["mmds-config"] == {
        "version": "V1", "network_interfaces": ["eth1"], "ipv4_address": "169.254.169.254",
        "imds_compat": False}
    cfg = {"version": "V2", "network_interfaces": ["eth0", "eth1"],
           "ipv4_address": "169.254.170.2", "imds_compat": True}
    assert api.call("PUT", "/mmds/config", cfg) == (204, None)
    assert api.call("GET", "/vm/config")[1]["mmds-config"] == cfg
    # null means absent: the defaults again.
    assert api.call("PUT", "/mmds/config", {"network_interfaces": ["eth0"], "version": None,
                                            "ipv4_address": None, "imds_compat": None}) == (204, None)
    assert api.call("GET", "/vm/config")[1]["mmds-config"] == {
        "version": "V1", "network_interfaces": ["eth0"], "ipv4_address": "169.254.169.254",
        "imds_compat": False}


EMPTY = ("MMDS config error: The list of network interface IDs that allow forwarding MMDS "
         "requests is empty.")
NO_IFACE = ("MMDS config error: The list of network interface IDs provided contains at least "
            "one ID that does not correspond to any existing network interface.")
NOT_LL = "MMDS config error: The MMDS IPv4 address is not link local."

BAD_CONFIGS = [
    ({}, "missing field `network_interfaces`"),
    ({"network_interfaces": None}, "invalid type for field `network_interfaces`"),
    ({"network_interfaces": "eth0"}, "invalid type for field `network_interfaces`"),
    ({"network_interfaces": [1]}, "invalid type for field `network_interfaces`"),
    ({"network_interfaces": [None]}, "invalid type for field `network_interfaces`"),
    ({"network_interfaces": [["eth0"]]}, "invalid type for field `network_interfaces`"),
    ({"network_interfaces": []}, EMPTY),
    ({"network_interfaces": ["eth0", "nope"]}, NO_IFACE),
    ({"network_interfaces": ["ETH0"]}, NO_IFACE),
    ({"network_interfaces": ["eth0"], "version": "V3"}, "unknown variant `V3`"),
    ({"network_interfaces": ["eth0"], "version": "v2"}, "unknown variant `v2`"),
    ({"network_interfaces": ["eth0"], "version": 2}, "invalid type for field `version`"),
    ({"network_interfaces": ["eth0"], "imds_compat": "yes"}, "invalid type for field `imds_compat`"),
    ({"network_interfaces": ["eth0"], "ipv4_address": 1}, "invalid type for field `ipv4_address`"),
    ({"network_interfaces": ["eth0"], "bogus": 1}, "unknown field `bogus`"),
    *[({"network_interfaces": ["eth0"], "ipv4_address": a}, "invalid IPv4 address syntax")
      for a in ["", "169.254.1", "169.254.169.254.1", "169.254.169.0254", " 169.254.1.1",
                "169.254.1.1 ", "169.254.1.256", "::1", "localhost", "169.254.1.1/16"]],
    *[({"network_interfaces": ["eth0"], "ipv4_address": a}, NOT_LL)
      for a in ["10.0.0.1", "169.254.0.1", "169.254.255.1", "169.253.1.1", "0.0.0.0",
                "255.255.255.255", "127.0.0.1"]],
    # The address is checked before the list, as in Firecracker.
    ({"network_interfaces": [], "ipv4_address": "10.0.0.1"}, NOT_LL),
]


@pytest.mark.parametrize("body,words", BAD_CONFIGS)
def test_bad_config_is_refused_and_changes_nothing(api, body, words):
    add_nets(api, "eth0")
    good = {"version": "V2", "network_interfaces": ["eth0"], "ipv4_address": "169.254.1.1",
            "imds_compat": False}
    assert api.call("PUT", "/mmds/config", good) == (204, None)
    st, resp = api.call("PUT", "/mmds/config", body)
    assert st == 400 and words in resp["fault_message"], resp
    assert api.call("GET", "/vm/config")[1]["mmds-config"] == good


@pytest.mark.parametrize("raw", GARBAGE + ["[]", '"V2"', "5"])
def test_config_garbage_bodies(api, raw):
    add_nets(api, "eth0")
    st, resp = api.call("PUT", "/mmds/config", raw=raw)
    assert st == 400, resp
    assert api.call("GET", "/vm/config")[1]["mmds-config"] is None


def test_edge_link_local_addresses_are_taken(api):
    add_nets(api, "eth0")
    for a in ["169.254.1.0", "169.254.254.255", "169.254.169.254"]:
        assert api.call("PUT", "/mmds/config", {"network_interfaces": ["eth0"],
                                                "ipv4_address": a}) == (204, None)
        assert api.call("GET", "/vm/config")[1]["mmds-config"]["ipv4_address"] == a


def test_after_boot(ember, guest, sock):
    """/mmds/config is pre-boot only; the store is served after boot when
    it existed before, and refused (Firecracker's words) when it did not."""
    for touched in (False, True):
        p = start_ember(ember, sock)
        api = Api(sock)
        try:
            if touched:
                assert api.call("GET", "/mmds") == (200, {})
            assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")),
                                                    "boot_args": "cad=1"})[0] == 204
            assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
            m, _ = read_until(p, r"waiting for ctrl-alt-del\n", 20)
            assert m
            st, body = api.call("PUT", "/mmds/config", {"network_interfaces": ["eth0"]})
            assert st == 400 and "after starting" in body["fault_message"], body
            if not touched:
                for method, b in [("GET", None), ("PUT", {"a": 1}), ("PATCH", {"a": 1})]:
                    assert api.call(method, "/mmds", b) == (400, {"fault_message": NOT_INIT})
                continue
            assert api.call("PUT", "/mmds", {"a": {"b": 1}}) == (204, None)
            assert api.call("PATCH", "/mmds", {"a": {"c": 2}}) == (204, None)
            assert api.call("GET", "/mmds") == (200, {"a": {"b": 1, "c": 2}})
        finally:
            api.close()
            p.kill()
            p.wait()


def test_metadata_flag(ember, sock, tmp_path):
    doc = {"latest": {"meta-data": {"ami-id": "ami-1"}}}
    f = tmp_path / "meta.json"
    f.write_text(json.dumps(doc))
    f.chmod(0o644)
    p = start_ember(ember, sock, "--metadata", f)
    api = Api(sock)
    try:
        assert api.call("GET", "/mmds") == (200, doc)
        # It counts as PUT: PATCH works at once.
        assert api.call("PATCH", "/mmds", {"latest": {"x": "y"}}) == (204, None)
        assert api.call("GET", "/mmds")[1]["latest"]["x"] == "y"
    finally:
        api.close()
        p.kill()
        p.wait()


@pytest.mark.parametrize("content,extra,words", [
    ("{", [], "cannot parse"),
    ("", [], "cannot parse"),
    ('{"a": 1} {"b": 2}', [], "cannot parse"),
    ('{"a": 1, "a": 2}', [], "cannot parse"),
    ("\xff\xfe", [], "cannot parse"),
    ('{"k": "' + "x" * 200 + '"}', ["--mmds-size-limit", "100"], "larger than the MMDS data store limit"),
    (None, [], "cannot parse"),  # no such file
])
def test_metadata_flag_garbage(ember, guest, tmp_path, content, extra, words):
    f = tmp_path / "meta.json"
    if content is not None:
        f.write_bytes(content.encode("latin-1"))
        f.chmod(0o644)
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--metadata", f, *extra)
    assert r.returncode == USAGE and words in r.stderr, r.stderr


def test_metadata_flag_needs_a_value(ember, guest):
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--metadata", "")
    assert r.returncode == USAGE and "--metadata" in r.stderr, r.stderr


def config_file(tmp_path, guest, mmds):
    cfg = {"boot-source": {"kernel_image_path": str(guest("hello.elf")), "boot_args": "cad=1"},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
           "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tapx0"}],
           "mmds-config": mmds}
    f = tmp_path / "vm.json"
    f.write_text(json.dumps(cfg))
    f.chmod(0o644)
    return f


def test_config_file_section(ember, guest, tmp_path):
    mmds = {"version": "V2", "network_interfaces": ["eth0"], "ipv4_address": "169.254.170.2",
            "imds_compat": False}
    f = config_file(tmp_path, guest, mmds)
    # Loaded with --config-file, the boot waits for the API: ask before it runs.
    cfg = json.loads(f.read_text())
    del cfg["boot-source"]
    f.write_text(json.dumps(cfg))
    sock = str(tmp_path / "e.sock")
    p = start_ember(ember, sock, "--config-file", f)
    api = Api(sock)
    try:
        assert api.call("GET", "/vm/config")[1]["mmds-config"] == mmds
        # And the store exists (the config made it): PATCH needs a PUT first.
        assert api.call("GET", "/mmds") == (200, {})
    finally:
        api.close()
        p.kill()
        p.wait()


@pytest.mark.parametrize("mmds,words", [
    ({}, "mmds-config: missing field `network_interfaces`"),
    ({"network_interfaces": ["eth9"]}, "mmds-config: " + NO_IFACE),
    ({"network_interfaces": ["eth0"], "ipv4_address": "1.2.3.4"}, "mmds-config: " + NOT_LL),
    ([], "mmds-config must be a JSON object"),
    ("V2", "mmds-config must be a JSON object"),
])
def test_config_file_bad_section(ember, guest, tmp_path, mmds, words):
    r = run_ember(ember, "--no-api", "--config-file", config_file(tmp_path, guest, mmds))
    assert r.returncode == USAGE and words in r.stderr, r.stderr


# ---- the guest-facing service, from a Linux guest ------------------------------

SNIFF = r"""
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("tap0", 0))
s.settimeout(0.2)
mmds = socket.inet_aton(sys.argv[1])
seen = 0
print("sniffing", flush=True)
while True:
    try:
        f = s.recv(65535)
    except socket.timeout:
        continue
    t = f[12:14]
    if (t == b"\x08\x06" and f[38:42] == mmds) or (t == b"\x08\x00" and f[30:34] == mmds):
        seen += 1
        print("leak", seen, flush=True)
"""


def http(vm, method, path, headers=(), addr="169.254.169.254", timeout=20):
    """One request from the guest with busybox nc; returns (status, headers, body)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {addr}", *headers, "Connection: close"]
    req = "\\r\\n".join(lines) + "\\r\\n\\r\\n"
    # From a file: busybox's nc fed by a pipe (or given -w) can close before
    # it sends anything.
    _, out = vm.sh(f"printf '{req}' >/tmp/req && nc {addr} 80 </tmp/req; echo", timeout=timeout)
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split("\n")[0].split()[1])
    return status, head, body.rstrip("\n")


def test_linux_guest_reads_metadata_v2(ember, vmlinux, tmp_path):
    """A Linux guest on an MMDS V2 interface: tokens, JSON and IMDS answers,
    Firecracker's errors; nothing for the MMDS address reaches the TAP; the
    configuration survives a snapshot restore and the store does not."""
    from test_linux_e2e import boot
    from linux_vm import READY, GUEST_IP, LinuxVM

    def with_mmds(cfg, rootfs):
        cfg["mmds-config"] = {"version": "V2", "network_interfaces": ["eth0"]}

    vm = boot(ember, vmlinux, tmp_path, with_mmds)
    sniff = None
    try:
        sniff = vm.netns.popen(["/usr/bin/python3", "-c", SNIFF, "169.254.169.254"],
                               stdout=subprocess.PIPE, text=True)
        assert sniff.stdout.readline().strip() == "sniffing"
        doc = {"latest": {"meta-data": {"ami-id": "ami-42", "tags": {"a": "b"}, "n": 7}}}
        assert vm.api.call("PUT", "/mmds", doc) == (204, None)
        vm.expect(READY, 900)  # a loaded machine boots Linux slowly
        vm.sh(f"ip addr add {GUEST_IP}/24 dev eth0 && ip link set eth0 up && "
              "ip route add 169.254.169.254 dev eth0")
        # V2: no token, a bad one, then the session.
        st, _, body = http(vm, "GET", "/latest/meta-data/ami-id")
        assert st == 401 and "No MMDS token provided" in body, body
        st, _, body = http(vm, "GET", "/latest", ["X-metadata-token: nope"])
        assert (st, body) == (401, "MMDS token not valid."), body
        st, head, token = http(vm, "PUT", "/latest/api/token",
                               ["X-metadata-token-ttl-seconds: 60"])
        assert st == 200 and len(token) == 64, (head, token)
        auth = [f"X-metadata-token: {token}"]
        assert http(vm, "GET", "/latest/meta-data/ami-id", auth)[::2] == (200, "ami-42")
        assert http(vm, "GET", "/latest/meta-data/", auth)[::2] == (200, "ami-id\nn\ntags/")
        st, head, body = http(vm, "GET", "/latest/meta-data", auth + ["Accept: application/json"])
        assert st == 200 and json.loads(body) == doc["latest"]["meta-data"], body
        assert "application/json" in head
        st, _, body = http(vm, "GET", "/latest/meta-data/n", auth)
        assert (st, body) == (501, "Cannot retrieve value. The value has an unsupported type.")
        st, _, body = http(vm, "GET", "/nope", auth)
        assert (st, body) == (404, "Resource not found: /nope."), body
        # The aws header names work too.
        assert http(vm, "GET", "/latest/meta-data/ami-id",
                    [f"X-aws-ec2-metadata-token: {token}"])[0] == 200
        # Token requests Firecracker refuses.
        for hdrs, want in [([], "Token time to live value not found"),
                           (["X-metadata-token-ttl-seconds: 0"], "Invalid time to live value"),
                           (["X-metadata-token-ttl-seconds: 21601"], "Invalid time to live"),
                           (["X-metadata-token-ttl-seconds: abc"], "Invalid header"),
                           (["X-metadata-token-ttl-seconds: 5", "X-Forwarded-For: 1.2.3.4"],
                            "X-Forwarded-For")]:
            st, _, body = http(vm, "PUT", "/latest/api/token", hdrs)
            assert st == 400 and want in body, (hdrs, body)
        st, head, _ = http(vm, "POST", "/latest", auth)
        assert st == 405 and "Allow: GET, PUT" in head, head
        # A token expires.
        # A token expires: a 5 s token used at once, then after 6 s, all in
        # the guest (a loaded machine's serial round trip can take seconds).
        rq = "HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n"
        _, out = vm.sh(
            f"printf 'PUT /latest/api/token {rq}X-metadata-token-ttl-seconds: 5\\r\\n\\r\\n'"
            " >/tmp/put && T=$(nc 169.254.169.254 80 </tmp/put | tail -n 1) && "
            f"printf \"GET /latest {rq}X-metadata-token: $T\\r\\n\\r\\n\" >/tmp/get && "
            "echo \"[$T]\"; nc 169.254.169.254 80 </tmp/get | head -n 1; sleep 6; "
            "nc 169.254.169.254 80 </tmp/get | head -n 1")
        assert [line.split()[1] for line in out.splitlines()[1:]] == ["200", "401"], out
        # The host changes the store; the guest sees it at once.
        assert vm.api.call("PATCH", "/mmds", {"latest": {"meta-data": {"ami-id": "ami-43"}}})[0] == 204
        assert http(vm, "GET", "/latest/meta-data/ami-id", auth)[::2] == (200, "ami-43")
        # Garbage over TCP gets a 400 and the service goes on.
        _, out = vm.sh("printf 'garbage\\r\\n\\r\\n' >/tmp/req && nc 169.254.169.254 80 </tmp/req; echo")
        assert "400" in out.split("\n")[0], out
        assert http(vm, "GET", "/latest/meta-data/ami-id", auth)[::2] == (200, "ami-43")
        # Other traffic still reaches the TAP (the host answers ping).
        vm.sh("ping -c 1 -W 5 10.0.2.1 >/dev/null")
        # Snapshot: the configuration is kept, the store is not (as Firecracker).
        assert vm.api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        state, mem = tmp_path / "mmds.state", tmp_path / "mmds.mem"
        st, r = vm.api.call("PUT", "/snapshot/create",
                            {"snapshot_path": str(state), "mem_file_path": str(mem)})
        assert st == 204, r
        os.chmod(state, 0o644)
        os.chmod(mem, 0o644)
    finally:
        if sniff:
            sniff.kill()
            leaks = sniff.stdout.read()
        vm.close()
    assert "leak" not in leaks, leaks
    vm2 = LinuxVM.start(ember, tmp_path, [])
    try:
        st, r = vm2.api.call("PUT", "/snapshot/load",
                             {"snapshot_path": str(state), "mem_file_path": str(mem),
                              "resume_vm": True})
        assert st == 204, r
        assert vm2.api.call("GET", "/vm/config")[1]["mmds-config"] == {
            "version": "V2", "network_interfaces": ["eth0"], "ipv4_address": "169.254.169.254",
            "imds_compat": False}
        assert vm2.api.call("GET", "/mmds") == (200, {})
        vm2.sh("true", timeout=30)
        st, _, token = http(vm2, "PUT", "/latest/api/token", ["X-metadata-token-ttl-seconds: 60"])
        assert st == 200, token
        auth = [f"X-metadata-token: {token}"]
        assert http(vm2, "GET", "/latest", auth)[0] == 404
        assert vm2.api.call("PUT", "/mmds", {"latest": {"k": "v"}})[0] == 204
        assert http(vm2, "GET", "/latest/k", auth)[::2] == (200, "v")
    finally:
        vm2.close()


def test_linux_guest_reads_metadata_v1_on_its_own_address(ember, vmlinux, tmp_path):
    """V1 on a configured address, as Firecracker's guide has it (curl of the
    path, here busybox wget): no token needed, a bad one still answered and
    counted; sixteen connections at once all answered, and every connection
    ember opened is closed again."""
    from test_linux_e2e import boot
    from linux_vm import READY, GUEST_IP

    addr = "169.254.170.2"
    metrics = tmp_path / "metrics.json"
    metrics.touch()
    os.chmod(metrics, 0o666)
    os.chmod(tmp_path, 0o777)

    def with_mmds(cfg, rootfs):
        cfg["mmds-config"] = {"version": "V1", "network_interfaces": ["eth0"],
                              "ipv4_address": addr}
        cfg["metrics"] = {"metrics_path": str(metrics)}

    vm = boot(ember, vmlinux, tmp_path, with_mmds)
    try:
        doc = {"latest": {"meta-data": {"ami-id": "ami-1", "hostname": "fn-7"}}}
        assert vm.api.call("PUT", "/mmds", doc) == (204, None)
        vm.expect(READY, 900)
        vm.sh(f"ip addr add {GUEST_IP}/24 dev eth0 && ip link set eth0 up && "
              f"ip route add {addr} dev eth0")
        url = f"http://{addr}/latest/meta-data"
        assert vm.sh(f"wget -q -O - {url}/hostname")[1].strip() == "fn-7"
        _, out = vm.sh(f"wget -q -O - --header 'Accept: application/json' {url}")
        assert json.loads(out) == doc["latest"]["meta-data"], out
        # V1 answers a GET with a bad token (Firecracker's "not to break
        # existing workloads") and counts it.
        assert http(vm, "GET", "/latest/meta-data/ami-id", ["X-metadata-token: bad"],
                    addr=addr)[::2] == (200, "ami-1")
        st, head, _ = http(vm, "DELETE", "/latest", addr=addr)
        assert st == 405 and "Allow: GET" in head, head
        # Nothing answers on the default address.
        _, out = vm.sh("wget -q -T 3 -O - http://169.254.169.254/latest; echo rc=$?",
                       timeout=30)
        assert "rc=1" in out, out
        _, out = vm.sh(f"for i in $(seq 16); do wget -q -O /tmp/o$i {url}/ami-id & done; "
                       "wait; for i in $(seq 16); do cat /tmp/o$i; echo; done", timeout=120)
        assert out.split() == ["ami-1"] * 16, out
        assert vm.api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        # Counters are per flush (as Firecracker's): add up every line.
        m = {}
        for line in metrics.read_text().splitlines():
            for k, v in json.loads(line)["mmds"].items():
                m[k] = m.get(k, 0) + v
        assert m["rx_invalid_token"] == 1 and m["rx_no_token"] >= 18, m
        assert m["connections_created"] == m["connections_destroyed"] == 20, m
    finally:
        vm.close()
