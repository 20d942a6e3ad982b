"""Firecracker's config files (--config-file) and GET /vm/config.

Written from Firecracker's docs and its own example config
(tests/framework/vm_config.json): every section of its config file is
known; `null` for an optional field or a whole section means "absent", at
any depth; the sections ember does not implement yet are accepted null or
empty and refused with a message naming them when they ask for anything;
GET /vm/config answers with every section, rate limiters included, and
loads back as --config-file into the same configuration."""
import json
import os
import subprocess

import pytest

from api_client import Api
from conftest import read_until, run_ember

USAGE = 64  # EXIT_USAGE: a config file ember refuses


def write(tmp_path, cfg, name="vm.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture
def disk(tmp_path):
    d = tmp_path / "disk.img"
    d.write_bytes(b"\0" * (256 << 10))
    return d


def firecracker_example(guest, disk):
    """Firecracker's tests/framework/vm_config.json, with our guest and disk."""
    return {
        "boot-source": {"kernel_image_path": str(guest("blk.elf")),
                        "boot_args": "console=ttyS0 reboot=k panic=1", "initrd_path": None},
        "drives": [{"drive_id": "rootfs", "partuuid": None, "is_root_device": True,
                    "cache_type": "Unsafe", "is_read_only": False,
                    "path_on_host": str(disk), "io_engine": "Sync", "rate_limiter": None,
                    "socket": None}],
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 64, "smt": False,
                           "track_dirty_pages": False, "huge_pages": "None"},
        "cpu-config": None,
        "balloon": None,
        "network-interfaces": [],
        "vsock": None,
        "logger": None,
        "metrics": None,
        "mmds-config": None,
        "entropy": None,
        "pmem": [],
        "memory-hotplug": None,
    }


def test_firecrackers_example_config_boots(ember, guest, disk, tmp_path):
    r = run_ember(ember, "--no-api", "--config-file",
                  write(tmp_path, firecracker_example(guest, disk)))
    assert r.returncode == 0, r.stderr
    assert "blk 0: id=rootfs capacity=512" in r.stdout, r.stdout


def test_nulls_and_empty_sections_at_every_depth_boot(ember, guest, disk, tmp_path):
    cfg = firecracker_example(guest, disk)
    cfg["drives"][0].update({"is_read_only": None, "cache_type": None, "io_engine": None,
                             "rate_limiter": {"bandwidth": None, "ops": {
                                 "size": 1000, "one_time_burst": None, "refill_time": 100}}})
    cfg["machine-config"].update({"smt": None, "track_dirty_pages": None, "huge_pages": None,
                                  "cpu_template": None})
    cfg["boot-source"]["boot_args"] = None
    cfg.update({"balloon": {"amount_mib": 0, "deflate_on_oom": False,
                            "stats_polling_interval_s": None, "free_page_reporting": None},
                "cpu-config": {}, "mmds-config": None, "memory-hotplug": {},
                "logger": {"log_path": None, "level": None, "show_level": None,
                           "show_log_origin": None, "module": None},
                "entropy": {"rate_limiter": None}})
    r = run_ember(ember, "--no-api", "--config-file", write(tmp_path, cfg))
    assert r.returncode == 0, r.stderr
    assert "blk 0: id=rootfs capacity=512" in r.stdout, r.stdout


@pytest.mark.parametrize("section,value,words", [
    ("pmem", [{"id": "p0", "path_on_host": "/x"}], "pmem: ember does not implement virtio-pmem"),
    ("memory-hotplug", {"total_size_mib": 1024}, "memory-hotplug: ember does not implement memory hot-plugging"),
    ("pmem", [None], "pmem: ember does not implement"),
])
def test_unimplemented_sections_that_ask_for_something_are_refused(ember, guest, disk, tmp_path,
                                                                    section, value, words):
    cfg = firecracker_example(guest, disk)
    cfg[section] = value
    r = run_ember(ember, "--no-api", "--config-file", write(tmp_path, cfg), timeout=30)
    assert r.returncode == USAGE, r.stdout + r.stderr
    assert words in r.stderr, r.stderr
    assert "blk 0" not in r.stdout  # refused before anything booted


@pytest.mark.parametrize("edit,words", [
    # a null for a required field is a wrong type, named as serde names it
    (lambda c: c["boot-source"].update(kernel_image_path=None),
     "invalid type for field `kernel_image_path` in boot-source: expected a string, not null"),
    (lambda c: c["drives"][0].update(drive_id=None), "invalid type for field `drive_id`"),
    (lambda c: c["drives"][0].update(is_root_device=None), "invalid type for field `is_root_device`"),
    (lambda c: c["machine-config"].update(vcpu_count=None), "invalid type for field `vcpu_count`"),
    (lambda c: c["drives"][0].update(rate_limiter={"ops": {"size": None, "refill_time": 1}}),
     "invalid type for field `size` in `ops`"),
    (lambda c: c.update(vsock={"guest_cid": 3, "uds_path": None}), "invalid type for field `uds_path`"),
    (lambda c: c.update(metrics={"metrics_path": None}), "invalid type for field `metrics_path`"),
    (lambda c: c.update({"network-interfaces": [{"iface_id": "eth0", "host_dev_name": None}]}),
     "invalid type for field `host_dev_name`"),
    # null does not excuse an unknown field
    (lambda c: c["drives"][0].update(bogus=None), "unknown field `bogus`"),
    (lambda c: c.update(serial=None), "unknown section `serial`"),
    # lists are lists, entries are objects
    (lambda c: c.update(drives={}), "`drives` must be an array"),
    (lambda c: c.update(drives=[None]), "drives: drive must be a JSON object"),
    (lambda c: c.update(drives=[[]]), "drives: drive must be a JSON object"),
    (lambda c: c.update(vsock=[]), "vsock must be a JSON object"),
    (lambda c: c.update({"machine-config": {}}), "missing field `vcpu_count`"),
])
def test_bad_sections_are_refused_with_the_field_named(ember, guest, disk, tmp_path, edit, words):
    cfg = firecracker_example(guest, disk)
    edit(cfg)
    r = run_ember(ember, "--no-api", "--config-file", write(tmp_path, cfg), timeout=30)
    assert r.returncode == USAGE, r.stdout + r.stderr
    assert words in r.stderr, r.stderr


@pytest.mark.parametrize("text,words", [
    ("[]", "must hold a JSON object"),
    ("null", "cannot parse"),
    ('"boot-source"', "cannot parse"),
    ("{" * 100000, "cannot parse"),
    ('{"drives": [], "drives": []}', "duplicate"),
    ('{"machine-config": {"vcpu_count": 1, "mem_size_mib": 99999999999999999999999}}', "cannot parse"),
    ('{"machine-config": {"vcpu_count": 1e3, "mem_size_mib": 64}}', "invalid type for field `vcpu_count`"),
    ("\xff\xfe", "cannot parse"),
])
def test_garbage_files_are_refused(ember, tmp_path, text, words):
    path = tmp_path / "vm.json"
    path.write_bytes(text.encode("latin-1"))
    r = run_ember(ember, "--no-api", "--config-file", path, timeout=30)
    assert r.returncode == USAGE, r.stdout + r.stderr
    assert words in r.stderr, r.stderr


@pytest.fixture
def netns(kvm):
    name = f"ember-cfg-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # Owned by 65534 too: the jailed ember runs as that uid.
        subprocess.run(["ip", "netns", "exec", name, "ip", "tuntap", "add", "dev", "tap0",
                        "mode", "tap", "user", "65534"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def boot_and_get_config(ember, netns, cfg_path, sock, patches=()):
    """Boot from @cfg_path (hello.elf waits for Ctrl+Alt+Del), make the
    PATCH calls in @patches, take GET /vm/config, then shut the guest down
    cleanly (the TAP and the vsock socket are free for the next ember)."""
    p = subprocess.Popen(["ip", "netns", "exec", netns, str(ember), "--api-sock", sock,
                          "--config-file", str(cfg_path)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        m, text = read_until(p, r"waiting for ctrl-alt-del\n", 30)
        assert m, text + p.stderr.read().decode() if p.poll() is not None else text
        api = Api(sock)
        for path, body in patches:
            st, resp = api.call("PATCH", path, body)
            assert st == 204, (path, resp)
        st, got = api.call("GET", "/vm/config")
        assert st == 200, got
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        api.close()
        p.wait(timeout=30)
        assert p.returncode == 0, p.stderr.read().decode()
        return got
    finally:
        p.kill()
        p.wait()


def test_vm_config_round_trips_through_a_config_file(ember, guest, disk, netns, tmp_path):
    limiter = {"bandwidth": {"size": 1 << 20, "one_time_burst": 4096, "refill_time": 100},
               "ops": {"size": 500, "one_time_burst": 0, "refill_time": 1000}}
    ops_only = {"bandwidth": None, "ops": {"size": 100, "one_time_burst": 0, "refill_time": 10}}
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(b"\0" * 4096)
    cfg = {
        "boot-source": {"kernel_image_path": str(guest("hello.elf")), "boot_args": "cad=1",
                        "initrd_path": str(initrd)},
        "drives": [{"drive_id": "rootfs", "path_on_host": str(disk), "is_root_device": True,
                    "partuuid": "0eaa91a0-01", "cache_type": "Writeback", "io_engine": "Sync",
                    "is_read_only": False, "rate_limiter": limiter},
                   {"drive_id": "data", "path_on_host": str(disk), "is_root_device": False,
                    "is_read_only": True, "rate_limiter": None}],
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 64, "track_dirty_pages": True},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "guest_mac": "06:00:0a:00:02:02", "mtu": 9000,
                                "rx_rate_limiter": limiter, "tx_rate_limiter": ops_only}],
        "vsock": {"guest_cid": 3, "uds_path": str(tmp_path / "v.sock")},
        "entropy": {"rate_limiter": ops_only},
        "balloon": {"amount_mib": 4, "deflate_on_oom": True, "stats_polling_interval_s": 2,
                    "free_page_hinting": False, "free_page_reporting": True},
        "mmds-config": None, "cpu-config": None, "pmem": [],
    }
    # The limits changed after boot are the ones shown (and carried over).
    patched = {"bandwidth": None, "ops": {"size": 77, "one_time_burst": 0, "refill_time": 7}}
    first = boot_and_get_config(ember, netns, write(tmp_path, cfg), str(tmp_path / "a.sock"), [
        ("/drives/data", {"drive_id": "data", "rate_limiter": patched}),
        ("/network-interfaces/eth0", {"iface_id": "eth0", "tx_rate_limiter": patched,
                                      "rx_rate_limiter": None}),
    ])
    # Every section of Firecracker's config file is there.
    assert set(first) == {"balloon", "drives", "boot-source", "cpu-config", "logger",
                          "machine-config", "metrics", "mmds-config", "network-interfaces",
                          "vsock", "entropy", "pmem", "memory-hotplug"}, first
    assert first["drives"][0]["rate_limiter"] == limiter, first["drives"]
    assert first["drives"][1]["rate_limiter"] == patched, first["drives"]
    assert first["network-interfaces"][0]["rx_rate_limiter"] == limiter  # null: unchanged
    assert first["network-interfaces"][0]["tx_rate_limiter"] == patched
    assert first["network-interfaces"][0]["mtu"] == 9000
    assert first["entropy"] == {"rate_limiter": ops_only}
    assert first["balloon"] == cfg["balloon"]
    assert first["boot-source"] == cfg["boot-source"]
    assert first["machine-config"]["track_dirty_pages"] is True
    # That answer, unchanged, is the next ember's config file.
    second = boot_and_get_config(ember, netns, write(tmp_path, first, "again.json"),
                                 str(tmp_path / "b.sock"))
    assert second == first


def test_vm_config_of_an_unconfigured_ember_loads_back(ember, guest, tmp_path):
    """The sections with nothing in them come out null or empty, and such a
    file is refused only for what it lacks (a kernel), not for its nulls."""
    from api_client import start_ember
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock)
    try:
        st, got = Api(sock).call("GET", "/vm/config")
    finally:
        p.kill()
        p.wait()
    assert st == 200 and got["boot-source"] is None and got["drives"] == [], got
    got["boot-source"] = {"kernel_image_path": str(guest("hello.elf"))}
    r = run_ember(ember, "--no-api", "--config-file", write(tmp_path, got), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "hello" in r.stdout.lower(), r.stdout
