"""Firecracker's swagger walked field by field (resources/api/firecracker-api.tsv)
against ember: the list covers every path, field and enum value of the
swagger file; the README's API table is what scripts/api-table.py writes
from it; and a live ember accepts each supported field, refuses each
refused one with a 400 that names it, and answers garbage in a supported
field with a 400. Also `mtu` on a network interface, seen by a real guest."""
import copy
import importlib.util
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from api_client import Api, start_ember
from conftest import ROOT, ember_pid, read_until
from test_net import GUEST_ARGS
from test_net import netns  # noqa: F401 (a fixture: pytest finds it by name)

SWAGGER = os.environ.get("FIRECRACKER_SWAGGER",
                         "/work/fc/src/firecracker/swagger/firecracker.yaml")

_spec = importlib.util.spec_from_file_location("api_table", ROOT / "scripts/api-table.py")
api_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api_table)
ROWS = api_table.read_list()

# Endpoints that only answer after InstanceStart: walked on a running guest.
POST_BOOT = {("PATCH", "/drives/{drive_id}"), ("PATCH", "/network-interfaces/{iface_id}"),
             ("PATCH", "/vm"), ("PUT", "/snapshot/create"), ("PUT", "/actions"),
             ("PATCH", "/balloon"), ("PATCH", "/balloon/statistics")}
# GETs that answer 400 until a device is configured (or the VM runs).
NEEDS_DEVICE = {"/balloon", "/balloon/statistics"}
# The smallest valid body of each endpoint ember serves; a row's field goes on top.
BASE = {
    ("PUT", "/boot-source"): {"kernel_image_path": "$KERNEL"},
    ("PUT", "/machine-config"): {"vcpu_count": 1, "mem_size_mib": 64},
    ("PATCH", "/machine-config"): {"vcpu_count": 1},
    ("PUT", "/drives/{drive_id}"): {"drive_id": "$ID", "path_on_host": "$DISK",
                                    "is_root_device": False},
    ("PATCH", "/drives/{drive_id}"): {"drive_id": "$ID"},
    ("PUT", "/network-interfaces/{iface_id}"): {"iface_id": "$ID", "host_dev_name": "tapfields0"},
    ("PATCH", "/network-interfaces/{iface_id}"): {"iface_id": "$ID"},
    ("PUT", "/vsock"): {"guest_cid": 3, "uds_path": "$VSOCK"},
    ("PUT", "/entropy"): {},
    ("PUT", "/balloon"): {"amount_mib": 1, "deflate_on_oom": False},
    ("PATCH", "/balloon"): {"amount_mib": 1},
    ("PATCH", "/balloon/statistics"): {"stats_polling_interval_s": 1},
    ("PUT", "/logger"): {},
    ("PUT", "/metrics"): {"metrics_path": "$METRICS"},
    ("PATCH", "/vm"): {"state": "Resumed"},
    ("PUT", "/snapshot/create"): {"snapshot_path": "$STATEFILE", "mem_file_path": "$MEMFILE"},
    ("PUT", "/snapshot/load"): {"snapshot_path": "$STATEFILE", "mem_file_path": "$MEMFILE"},
    ("PUT", "/actions"): {"action_type": "FlushMetrics"},
}
LOAD = ("PUT", "/snapshot/load")  # walked on the snapshot the running guest leaves
IDS = {"/drives/{drive_id}": "d1", "/network-interfaces/{iface_id}": "eth0"}


# ---- the swagger file -------------------------------------------------------

def parse_yaml(text):
    """The subset of YAML the swagger file uses (block mappings and lists,
    flow lists, plain and quoted scalars; descriptions are skipped), for
    hosts without python3-yaml. Every scalar stays a string."""
    lines = []
    for raw in text.splitlines():
        s = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if s.strip():
            lines.append((len(s) - len(s.lstrip()), s.strip()))

    def scalar(v):
        v = v.strip()
        if v.startswith("[") and v.endswith("]"):
            return [scalar(x) for x in v[1:-1].split(",") if x.strip()]
        return v[1:-1] if len(v) > 1 and v[0] == v[-1] and v[0] in "'\"" else v

    def block(i, ind):
        """Parse the block starting at line i, indented @ind; (value, next i)."""
        if lines[i][1].startswith("- "):
            out = []
            while i < len(lines) and lines[i][0] == ind and lines[i][1].startswith("- "):
                rest = lines[i][1][2:]
                if re.match(r"^[^'\"\[]*?:( |$)", rest):  # "- key: value" opens a mapping
                    lines[i] = (ind + 2, rest)
                    v, i = block(i, ind + 2)
                else:
                    v, i = scalar(rest), i + 1
                out.append(v)
            return out, i
        out = {}
        while i < len(lines) and lines[i][0] == ind:
            m = re.match(r"^(\"[^\"]*\"|'[^']*'|[^:]+):(?: (.*))?$", lines[i][1])
            if not m:
                i += 1
                continue
            key, v = scalar(m.group(1)), (m.group(2) or "").strip()
            i += 1
            if v in ("", ">", ">-", "|", "|-"):
                nested = i < len(lines) and (lines[i][0] > ind or (
                    lines[i][0] == ind and lines[i][1].startswith("- ")))
                if nested and not v:
                    out[key], i = block(i, lines[i][0])
                else:
                    out[key] = ""
                    while i < len(lines) and lines[i][0] > ind:
                        i += 1
            else:
                out[key] = scalar(v)
                while i < len(lines) and lines[i][0] > ind:  # a plain scalar's next lines
                    i += 1
        return out, i

    return block(0, lines[0][0])[0]


def load_swagger(path):
    text = Path(path).read_text()
    try:
        import yaml
    except ImportError:
        return parse_yaml(text)
    return yaml.load(text, Loader=yaml.BaseLoader)


def swagger_rows(sw):
    """(method, path, field) for every endpoint, body field (nested: a.b,
    in arrays: a[].b), enum value (a=V) and top-level response field."""
    defs = sw["definitions"]

    def resolve(s):
        while s and "$ref" in s:
            s = defs[s["$ref"].split("/")[-1]]
        return s or {}

    def fields(schema, prefix, seen):
        out = []
        for name, v in (resolve(schema).get("properties") or {}).items():
            out.append(prefix + name)
            rv = resolve(v)
            out += [f"{prefix}{name}={e}" for e in rv.get("enum") or []]
            ref = v.get("$ref")
            if ref in seen:
                continue
            inner = seen | {ref}
            if rv.get("type") == "array":
                out += fields(rv.get("items", {}), prefix + name + "[].", inner)
            elif rv.get("properties"):
                out += fields(rv, prefix + name + ".", inner)
        return out

    rows = []
    for path, ops in sw["paths"].items():
        for method, op in ops.items():
            rows.append((method.upper(), path, "-"))
            if method == "get":
                schema = (op.get("responses", {}).get("200") or {}).get("schema")
                got = [f for f in fields(schema, "", set()) if not re.search(r"[.\[=]", f)]
            else:
                got = []
                for p in op.get("parameters") or []:
                    if p.get("in") == "body":
                        got = fields(p["schema"], "", set())
            rows += [(method.upper(), path, f) for f in got]
    return rows


def test_the_yaml_fallback_reads_the_swagger_as_python3_yaml_does():
    if not os.path.exists(SWAGGER):
        pytest.skip(f"Firecracker's swagger file is not at {SWAGGER} (set FIRECRACKER_SWAGGER)")
    pytest.importorskip("yaml", reason="python3-yaml is not installed: nothing to compare with")
    text = Path(SWAGGER).read_text()
    assert swagger_rows(parse_yaml(text)) == swagger_rows(load_swagger(SWAGGER))


def test_every_swagger_path_and_field_is_in_the_list():
    if not os.path.exists(SWAGGER):
        why = (f"Firecracker's swagger file is not at {SWAGGER} (set FIRECRACKER_SWAGGER): "
               "cannot check that the list covers it")
        print(why)
        pytest.skip(why)
    listed = {(r["method"], r["path"], r["field"]) for r in ROWS}
    missing = [r for r in swagger_rows(load_swagger(SWAGGER)) if r not in listed]
    assert not missing, f"not in resources/api/firecracker-api.tsv: {missing}"


def test_the_readme_table_is_the_generators_output():
    readme = (ROOT / "README.md").read_text()
    assert api_table.readme_table(readme) == api_table.table(ROWS)
    r = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts/api-table.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_list_is_well_formed():
    for r in ROWS:
        where = f"{r['method']} {r['path']} {r['field']}"
        if r["status"] in ("refused", "not yet"):
            assert r["note"], f"{where}: a {r['status']} row says why"
        if r["valid"].startswith("@"):
            test = ROOT / "tests/integration" / r["valid"][1:]
            key = api_table.top(r["field"])
            assert test.exists() and key in test.read_text(), f"{where}: {test} does not use {key}"
        served = (r["method"], r["path"]) in BASE
        if r["status"] == "supported" and served and r["field"] != "-" and "=" not in r["field"]:
            assert r["valid"], f"{where}: a supported field needs a valid value or @test"
            assert r["garbage"], f"{where}: a supported field needs a garbage value"


# ---- a live ember ---------------------------------------------------------------

@pytest.fixture
def files(guest, tmp_path):
    disk, disk2, initrd = tmp_path / "disk.img", tmp_path / "disk2.img", tmp_path / "initrd"
    for f in (disk, disk2, initrd):
        f.write_bytes(b"\0" * (64 << 10))
    return {"$KERNEL": str(guest("hello.elf")), "$DISK": str(disk), "$DISK2": str(disk2),
            "$FILE": str(initrd), "$LOG": str(tmp_path / "log"),
            "$METRICS": str(tmp_path / "metrics"), "$VSOCK": str(tmp_path / "v.sock"),
            "$STATEFILE": str(tmp_path / "state"), "$MEMFILE": str(tmp_path / "mem")}


def fill(value, files, ident):
    if isinstance(value, str):
        return ident if value == "$ID" else files.get(value, value)
    if isinstance(value, dict):
        return {k: fill(v, files, ident) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, files, ident) for v in value]
    return value


def request(row, value, files):
    """The row's endpoint with @value (JSON text) as the field's top-level key."""
    key = (row["method"], row["path"])
    ident = IDS.get(row["path"], "")
    body = copy.deepcopy(BASE[key])
    body[api_table.top(row["field"])] = json.loads(value)
    if "mem_backend" in body:
        del body["mem_file_path"]  # exactly one of the two
    return row["method"], row["path"].split("{")[0] + ident, fill(body, files, ident)


def valid_value(row):
    if row["valid"] and not row["valid"].startswith("@"):
        return row["valid"]
    if "=" in row["field"] and not row["valid"]:
        return json.dumps(row["field"].split("=", 1)[1])
    return None


def walk(api, rows, files, around=None):
    """Send each row's valid and garbage values; returns the failures."""
    bad = []
    for r in rows:
        where = f"{r['method']} {r['path']} {r['field']}"
        top = api_table.top(r["field"])
        value = valid_value(r)
        if value is not None:
            if around:
                around(r, True)
            code, resp = api.call(*request(r, value, files))
            if around:
                around(r, False)
            msg = (resp or {}).get("fault_message", "")
            if r["status"] == "supported" and code != 204:
                bad.append(f"{where} = {value}: {code} {msg}")
            if r["status"] != "supported" and (code != 400 or top not in msg):
                bad.append(f"{where} = {value}: {code} {msg!r} (wanted a 400 naming {top})")
        if r["garbage"] and r["status"] == "supported":
            code, resp = api.call(*request(r, r["garbage"], files))
            msg = (resp or {}).get("fault_message", "")
            if code != 400 or not msg:
                bad.append(f"{where} garbage {r['garbage']}: {code} {msg}")
    return bad


def test_pre_boot_fields_on_a_live_ember(ember, files, tmp_path):
    rows = [r for r in ROWS if (r["method"], r["path"]) in BASE and r["field"] != "-"
            and (r["method"], r["path"]) not in POST_BOOT | {LOAD}]
    assert len(rows) > 100
    bad = []
    sock = str(tmp_path / "api.sock")
    for r in rows:
        # A fresh ember per row: PUT /metrics is once only, and a refused
        # field must not depend on what an earlier row left behind.
        p = start_ember(ember, sock)
        try:
            api = Api(sock)
            bad += walk(api, [r], files)
            api.close()
        finally:
            p.kill()
            p.wait()
    assert not bad, "\n".join(bad)


def test_endpoints_ember_does_not_serve_get_a_400(ember, tmp_path):
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        for r in ROWS:
            if r["field"] != "-" or r["status"] != "not yet":
                continue
            path = re.sub(r"\{[^}]*\}", "x1", r["path"])
            code, resp = api.call(r["method"], path, None if r["method"] == "GET" else {})
            # Firecracker's words for a path it lacks, then why.
            assert code == 400 and resp["fault_message"].startswith(
                f"Invalid request method and/or path: {r['method']} {path}. "
                "ember does not implement "), (r, code, resp)
        assert api.call("GET", "/")[1]["state"] == "Not started"
    finally:
        p.kill()
        p.wait()


def test_get_responses_have_the_supported_fields(ember, tmp_path):
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        unserved = {(r["method"], r["path"]) for r in ROWS
                    if r["field"] == "-" and r["status"] == "not yet"}
        for r in ROWS:
            if r["method"] != "GET" or r["field"] == "-" or (r["method"], r["path"]) in unserved:
                continue
            code, resp = api.call("GET", r["path"])
            if r["path"] in NEEDS_DEVICE:
                assert code == 400 and resp["fault_message"], (r, resp)  # none configured
                continue
            assert code == 200, (r, resp)
            if r["status"] == "supported" and not r["note"].startswith("left out"):
                assert r["field"] in resp, (r, resp)
            else:
                assert resp.get(r["field"]) in (None, [], {}), (r, resp)  # nothing configured
    finally:
        p.kill()
        p.wait()


def test_post_boot_fields_on_a_running_guest(ember, guest, files, netns, tmp_path):
    """PATCH /drives, PATCH /network-interfaces, PATCH /vm, snapshots and
    actions on a guest that waits for Ctrl+Alt+Del; then PUT /snapshot/load
    of its last snapshot, one fresh ember per row."""
    sock = str(tmp_path / "api.sock")
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": files["$KERNEL"], "boot_args": "cad=1"},
        # Transparent: the loads below madvise a snapshot's file-backed memory too.
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 16, "track_dirty_pages": True,
                           "huge_pages": "Transparent"},
        "drives": [{"drive_id": "d1", "path_on_host": files["$DISK"], "is_root_device": False}],
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 1400}],
        "metrics": {"metrics_path": files["$METRICS"]},
        "balloon": {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 1},
    }))
    p = subprocess.Popen(["ip", "netns", "exec", netns, str(ember), "--api-sock", sock,
                          "--config-file", str(cfg)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(p, r"waiting for ctrl-alt-del\n", 30)[0]
        api = Api(sock)

        def around(row, before):
            # Snapshots are taken paused; PATCH /vm rows leave it running.
            if row["path"] == "/snapshot/create":
                state = "Paused" if before else "Resumed"
                assert api.call("PATCH", "/vm", {"state": state})[0] == 204
            elif row["path"] == "/vm" and not before:
                assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204

        rows = [r for r in ROWS if (r["method"], r["path"]) in POST_BOOT and r["field"] != "-"]
        bad = walk(api, rows, files, around)
        assert not bad, "\n".join(bad)
        assert api.call("GET", "/")[1]["state"] == "Running"
        # The walk's last snapshot was a Diff: take a Full one to load.
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        assert api.call("PUT", "/snapshot/create", fill(BASE[("PUT", "/snapshot/create")],
                                                        files, ""))[0] == 204
        assert api.call("PATCH", "/vm", {"state": "Resumed"})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()
        p.wait()
    bad = []
    load_sock = str(tmp_path / "load.sock")
    for r in [r for r in ROWS if (r["method"], r["path"]) == LOAD and r["field"] != "-"]:
        if os.path.exists(load_sock):
            os.unlink(load_sock)
        q = subprocess.Popen(["ip", "netns", "exec", netns, str(ember), "--api-sock",
                              load_sock], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(load_sock) and q.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.005)
            api = Api(load_sock)
            bad += walk(api, [r], files)
            if r["field"] == "snapshot_path" and not bad:
                # The interface's mtu came back with the snapshot.
                nets = api.call("GET", "/vm/config")[1]["network-interfaces"]
                if [n.get("mtu") for n in nets] != [1400]:
                    bad.append(f"restored network-interfaces: {nets}")
            api.close()
        finally:
            q.kill()
            q.wait()
    assert not bad, "\n".join(bad)


# ---- mtu seen by a guest -----------------------------------------------------------

@pytest.mark.parametrize("mtu", [1280, 2000])
def test_the_guest_sees_the_mtu_and_frames_up_to_it_pass(ember, guest, netns, tmp_path, mtu):
    """net.elf reads the MTU from the device's config space, echoes UDP
    datagrams filling a frame of exactly the MTU through the TAP, then sends
    one a byte larger, which ember must drop (no echo; tx_malformed)."""
    # The host side of the TAP takes the same MTU, so the echo comes back whole.
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "tap0", "mtu", str(mtu)],
                   check=True)
    metrics = tmp_path / "metrics.json"
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("net.elf")), "boot_args": GUEST_ARGS},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "guest_mac": "06:00:0a:00:02:02", "mtu": mtu}],
        "metrics": {"metrics_path": str(metrics)},
    }))
    r = subprocess.run(["ip", "netns", "exec", netns, str(ember), "--no-api", "--config-file",
                        str(cfg)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"net: mac 0x6:0x0:0xa:0x0:0x2:0x2 mtu {mtu}\n" in r.stdout
    assert f"net: udp {mtu - 28} echo ok" in r.stdout  # an IP packet of exactly the MTU
    assert "net: oversize frame dropped" in r.stdout
    # Firecracker's metrics: per-interface sections, counters reset at each flush.
    lines = [json.loads(l) for l in metrics.read_text().splitlines()]
    malformed = sum(l["net_eth0"]["tx_malformed_frames"] for l in lines)
    assert malformed == 1, lines  # the frame one byte over the MTU, and only it


# ---- boot_args left out ------------------------------------------------------------

@pytest.mark.parametrize("boot_args", [None, ""])
def test_boot_args_left_out_is_firecrackers_default_command_line(ember, guest, tmp_path,
                                                                 boot_args):
    """Without boot_args the guest gets Firecracker's default command line
    (GET /vm/config still shows null); an empty boot_args is an empty one."""
    sock = str(tmp_path / "api.sock")
    body = {"kernel_image_path": str(guest("hello.elf"))}
    if boot_args is not None:
        body["boot_args"] = boot_args
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        assert api.call("PUT", "/boot-source", body)[0] == 204
        assert api.call("GET", "/vm/config")[1]["boot-source"]["boot_args"] == boot_args
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, err
    want = ("reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux "
            "i8042.dumbkbd swiotlb=noforce" if boot_args is None else "")
    assert f"cmdline: {want}\n".encode() in out, out


# ---- huge_pages "Transparent" ----------------------------------------------------------

def mappings(pid):
    """(size in KiB, VmFlags) of each mapping in /proc/@pid/smaps."""
    out = []
    size = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("VmFlags:"):
                out.append((size, line.split()[1:]))
    return out


@pytest.mark.parametrize("huge_pages", ["Transparent", "None"])
def test_transparent_huge_pages_mark_guest_memory(ember, guest, tmp_path, huge_pages):
    """huge_pages "Transparent" is madvise(MADV_HUGEPAGE) on guest memory, as
    in Firecracker: the kernel marks the mapping `hg` (VM_HUGEPAGE), which is
    what the host's THP "madvise" mode looks for. "None" leaves it unmarked."""
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        assert api.call("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 96,
                                                   "huge_pages": huge_pages})[0] == 204
        assert api.call("GET", "/machine-config")[1]["huge_pages"] == huge_pages
        assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")),
                                                "boot_args": "cad=1"})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        assert read_until(p, r"waiting for ctrl-alt-del\n", 30)[0]
        marked = [size for size, flags in mappings(ember_pid(p)) if "hg" in flags]
        # Guest memory is the one mapping marked; unmarked, it may merge with
        # its neighbours, so "None" looks for no mark at all.
        assert marked == ([96 << 10] if huge_pages == "Transparent" else []), marked
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()
        p.wait()
