"""MMDS, the microVM metadata service: the data store API (PUT/PATCH/GET
/mmds), PUT /mmds/config, the config-file section, --metadata and
--mmds-size-limit, with Firecracker's status codes and messages."""
import json

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

