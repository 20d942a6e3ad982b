"""The virtio-balloon device end to end, with the balloon guest (a polled
driver in Linux's style): the host sets a target, the guest inflates and
ember's anonymous RSS drops by about that much; the target goes back to 0,
the guest deflates and touches the pages again. The statistics queue is
served at the configured interval and GET /balloon/statistics shows what
the guest sent. PUT/GET/PATCH /balloon, GET/PATCH /balloon/statistics and
the config file's `balloon` section are checked with bad input (400, a
fault message, nothing changed); bad PFNs and malformed chains from the
guest are refused and counted while the VM goes on; a snapshot keeps the
balloon's state."""
import json
import re
import time

import pytest

import fcmetrics
from api_client import Api, start_ember
from conftest import ember_pid, read_until, run_ember

MEM_MIB = 128
# Each page the guest touches is a host page fault: slow under nested
# virtualisation, so the pool is small.
POOL_MIB = 16


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon")


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "ember.sock")


def boot(api, guest, args, balloon, mem=MEM_MIB):
    assert api.call("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mem})[0] == 204
    assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("balloon.elf")),
                                            "boot_args": args})[0] == 204
    st, err = api.call("PUT", "/balloon", balloon)
    assert st == 204, err
    assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204


def wait_round(api, n, timeout):
    """Poll GET /balloon/statistics until the guest's round counter
    (minor_faults) reaches @n; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        s = api.call("GET", "/balloon/statistics")[1]
        if s.get("minor_faults", -1) >= n:
            return s["minor_faults"]
        assert time.monotonic() < deadline, (n, s)
        time.sleep(0.02)


def stats_period(api, count):
    """Seconds between the guest's statistics updates, over @count of them,
    timed on the host from one update to the next."""
    n = wait_round(api, api.call("GET", "/balloon/statistics")[1]["minor_faults"] + 1, 15)
    t0 = time.monotonic()
    wait_round(api, n + count, 15 * count)
    return (time.monotonic() - t0) / count


def expect(p, pattern, timeout=60):
    m, text = read_until(p, pattern, timeout)
    assert m, text
    return m


def test_inflate_returns_memory_to_the_host_and_deflate_takes_it_back(ember, guest, sock,
                                                                        tmp_path):
    metrics = tmp_path / "metrics.json"
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        assert api.call("PUT", "/metrics", {"metrics_path": str(metrics)})[0] == 204
        boot(api, guest, f"balloon_pool={POOL_MIB}",
             {"amount_mib": 0, "deflate_on_oom": True})
        m = expect(p, r"balloon: device irq=\d+ features=(0x[0-9a-f]+)\n")
        features = int(m.group(1), 16)
        assert features & (1 << 32), "VERSION_1"
        assert not features & (1 << 1), "no statistics queue when the interval is 0"
        expect(p, r"balloon: touched (\d+) pages\n")
        pid = ember_pid(p)
        time.sleep(0.2)
        before = rss_anon_kib(pid)
        target = 12
        assert api.call("PATCH", "/balloon", {"amount_mib": target})[0] == 204
        m = expect(p, r"balloon: inflated (\d+) pages\n")
        assert int(m.group(1)) == target * 256
        inflated = rss_anon_kib(pid)
        dropped_mib = (before - inflated) / 1024
        print(f"RssAnon {before} KiB touched, {inflated} KiB inflated by {target} MiB")
        assert target - 2 <= dropped_mib <= target + 2, (before, inflated)
        # The statistics were not enabled; GET /balloon follows PATCH.
        st, err = api.call("GET", "/balloon/statistics")
        assert st == 400 and "not enabled" in err["fault_message"], err
        st, cfg = api.call("GET", "/balloon")
        assert st == 200 and cfg == {"amount_mib": target, "deflate_on_oom": True,
                                     "stats_polling_interval_s": 0,
                                     "free_page_hinting": False,
                                     "free_page_reporting": False}, cfg
        assert api.call("GET", "/vm/config")[1]["balloon"] == cfg
        assert api.call("PATCH", "/balloon", {"amount_mib": 0})[0] == 204
        m = expect(p, r"balloon: deflated (\d+) pages sum=(\d+)\n")
        # Every released page read back as zeros before the guest took it again.
        assert int(m.group(1)) == target * 256 and int(m.group(2)) == target * 256 // 8, m.group(0)
        expect(p, r"balloon: done\n")
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()
        p.wait()
    lines = fcmetrics.read(metrics)
    total = {k: fcmetrics.total(lines, "balloon", k) for k in lines[-1]["balloon"]}
    assert total["inflate_count"] == target * 256 // 256, total
    assert total["deflate_count"] == target * 256 // 256, total
    assert total["event_fails"] == 0 and total["activate_fails"] == 0, total
    assert fcmetrics.total(lines, "ember", "balloon", "inflated_pages") == target * 256
    assert fcmetrics.total(lines, "interrupts", "config_updates") >= 2


def test_statistics_arrive_at_the_configured_interval(ember, guest, sock):
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        boot(api, guest, "balloon_pool=4 balloon_rounds=1000",
             {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 1})
        m = expect(p, r"balloon: device irq=\d+ features=(0x[0-9a-f]+)\n")
        assert int(m.group(1), 16) & (1 << 1), "the statistics queue"
        # The guest's first buffer is read at once, before any request.
        deadline = time.monotonic() + 30
        while True:
            st, s = api.call("GET", "/balloon/statistics")
            assert st == 200, s
            if "total_memory" in s or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert s["total_memory"] == 4 * 1024 * 1024 and s["available_memory"] == 7777, s
        assert s["minor_faults"] <= 1 and s["target_pages"] == 0 and s["actual_mib"] == 0, s
        assert "swap_in" not in s and "oom_kill" not in s, s
        expect(p, r"balloon: stats request 1\n", 10)
        per = stats_period(api, 3)
        print(f"statistics every {per:.2f} s (configured 1 s)")
        assert 0.7 <= per <= 1.5, per
        s = api.call("GET", "/balloon/statistics")[1]
        assert s["minor_faults"] >= 3 and s["free_memory"] == 1000000 + s["minor_faults"], s
        # Firecracker's rule: only the interval changes after boot.
        st, err = api.call("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 0})
        assert st == 400 and "cannot be disabled after boot" in err["fault_message"], err
        n = api.call("GET", "/balloon/statistics")[1]["minor_faults"]
        assert api.call("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 3})[0] == 204
        # The first request comes at once, then one every 3 s.
        t0 = time.monotonic()
        wait_round(api, n + 1, 5)
        assert time.monotonic() - t0 < 2.5
        per = stats_period(api, 2)
        print(f"statistics every {per:.2f} s (configured 3 s)")
        assert 2.5 <= per <= 3.5, per
        assert api.call("GET", "/balloon")[1]["stats_polling_interval_s"] == 3
        # A target shows in the statistics at once (target_mib) and actual when set.
        assert api.call("PATCH", "/balloon", {"amount_mib": 2})[0] == 204
        expect(p, r"balloon: inflated 512 pages\n")
        s = api.call("GET", "/balloon/statistics")[1]
        assert s["target_pages"] == 512 and s["target_mib"] == 2, s
        assert s["actual_pages"] == 512 and s["actual_mib"] == 2, s
    finally:
        p.kill()
        p.wait()


def test_bad_pfns_and_chains_from_the_guest_are_refused(ember, guest, tmp_path):
    metrics = tmp_path / "metrics.json"
    cfg = {"boot-source": {"kernel_image_path": str(guest("balloon.elf")),
                           "boot_args": "balloon_bad=1 balloon_pool=8"},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
           "balloon": {"amount_mib": 4, "deflate_on_oom": False},
           "metrics": {"metrics_path": str(metrics)}}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    p = start_ember(ember, str(tmp_path / "ember.sock"), "--config-file", path)
    try:
        expect(p, r"balloon: bad chains returned\n")
        # A target from the configuration: the guest inflates at once.
        expect(p, r"balloon: inflated 1024 pages\n")
        api = Api(str(tmp_path / "ember.sock"))
        assert api.call("PATCH", "/balloon", {"amount_mib": 0})[0] == 204
        expect(p, r"balloon: deflated 1024 pages sum=128\n")
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()
        p.wait()
    lines = fcmetrics.read(metrics)
    total = {k: fcmetrics.total(lines, "balloon", k) for k in lines[-1]["balloon"]}
    # Three bad PFNs, then three refused chains (odd length, writable, too long).
    assert fcmetrics.total(lines, "ember", "balloon", "bad_pfns") == 3
    assert total["event_fails"] == 6, total
    assert total["inflate_count"] == 1 + 4, total  # the bad-PFN chain, then 4 x 256
    assert fcmetrics.total(lines, "ember", "balloon", "needs_reset") == 0


BAD_PUT = [
    ({}, "missing field `amount_mib`"),
    ({"amount_mib": 1}, "missing field `deflate_on_oom`"),
    ({"amount_mib": -1, "deflate_on_oom": False}, "invalid type for field `amount_mib`"),
    ({"amount_mib": "1", "deflate_on_oom": False}, "invalid type for field `amount_mib`"),
    ({"amount_mib": 1.5, "deflate_on_oom": False}, "invalid type for field `amount_mib`"),
    ({"amount_mib": 1, "deflate_on_oom": 1}, "invalid type for field `deflate_on_oom`"),
    ({"amount_mib": 1, "deflate_on_oom": False, "x": 1}, "unknown field `x`"),
    ({"amount_mib": 129, "deflate_on_oom": False}, "Amount of pages requested is too large."),
    ({"amount_mib": 2**32, "deflate_on_oom": False}, "does not fit in 32 bits"),
    ({"amount_mib": 1, "deflate_on_oom": False, "stats_polling_interval_s": 65536},
     "does not fit in 16 bits"),
    ({"amount_mib": 1, "deflate_on_oom": False, "stats_polling_interval_s": True},
     "invalid type for field `stats_polling_interval_s`"),
    ({"amount_mib": 1, "deflate_on_oom": False, "free_page_hinting": True},
     "does not implement free page hinting"),
    ({"amount_mib": 1, "deflate_on_oom": False, "free_page_reporting": "yes"},
     "invalid type for field `free_page_reporting`"),
]


def test_api_bad_input_changes_nothing(ember, guest, sock):
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        assert api.call("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[0] == 204
        st, err = api.call("GET", "/balloon")
        assert st == 400 and err["fault_message"] == "Balloon config error: No balloon device found."
        assert api.call("GET", "/vm/config")[1]["balloon"] is None
        for body, words in BAD_PUT:
            st, err = api.call("PUT", "/balloon", body)
            assert st == 400 and words in err["fault_message"], (body, err)
            assert api.call("GET", "/balloon")[0] == 400, body  # nothing stuck
        for raw in ("[]", "{", "null", '{"amount_mib": 1, "amount_mib": 2, "deflate_on_oom": false}'):
            assert api.call("PUT", "/balloon", raw=raw)[0] == 400, raw
        assert api.call("GET", "/vm/config")[1]["balloon"] is None
        # Post-boot endpoints before boot: Firecracker's message.
        for method, path, body in (("PATCH", "/balloon", {"amount_mib": 1}),
                                   ("GET", "/balloon/statistics", None),
                                   ("PATCH", "/balloon/statistics",
                                    {"stats_polling_interval_s": 1})):
            st, err = api.call(method, path, body)
            assert st == 400 and "not supported before starting" in err["fault_message"], err
        st, err = api.call("PATCH", "/balloon/hinting/start", {})
        assert st == 400 and "free page hinting" in err["fault_message"], err
        good = {"amount_mib": 8, "deflate_on_oom": False, "stats_polling_interval_s": 5,
                "free_page_reporting": True}
        assert api.call("PUT", "/balloon", good)[0] == 204
        want = dict(good, free_page_hinting=False)
        assert api.call("GET", "/balloon")[1] == want
        # null is absent, as everywhere.
        assert api.call("PUT", "/balloon", {"amount_mib": 8, "deflate_on_oom": False,
                                            "stats_polling_interval_s": None})[0] == 204
        assert api.call("GET", "/balloon")[1]["stats_polling_interval_s"] == 0
        assert api.call("PUT", "/balloon", good)[0] == 204
        boot(api, guest, "balloon_pool=4 balloon_hold=1", good, mem=128)
        m = expect(p, r"balloon: device irq=\d+ features=(0x[0-9a-f]+)\n")
        assert int(m.group(1), 16) & (1 << 1)  # the kit asks only for the statistics queue
        expect(p, r"balloon: inflated 1024 pages\n")
        st, err = api.call("PUT", "/balloon", good)
        assert st == 400 and "not supported after starting" in err["fault_message"], err
        for body, words in (({}, "missing field `amount_mib`"),
                            ({"amount_mib": 129}, "Amount of pages requested is too large."),
                            ({"amount_mib": 1, "deflate_on_oom": True}, "unknown field `deflate_on_oom`"),
                            ({"amount_mib": -5}, "invalid type"),
                            ({"amount_mib": 2**40}, "does not fit in 32 bits")):
            st, err = api.call("PATCH", "/balloon", body)
            assert st == 400 and words in err["fault_message"], (body, err)
        for body, words in (({}, "missing field `stats_polling_interval_s`"),
                            ({"stats_polling_interval_s": 70000}, "does not fit in 16 bits"),
                            ({"stats_polling_interval_s": 0}, "cannot be disabled after boot"),
                            ({"stats_polling_interval_s": "1"}, "invalid type")):
            st, err = api.call("PATCH", "/balloon/statistics", body)
            assert st == 400 and words in err["fault_message"], (body, err)
        assert api.call("GET", "/balloon")[1] == want  # nothing changed
        assert api.call("GET", "/balloon/statistics")[1]["target_mib"] == 8
    finally:
        p.kill()
        p.wait()


def test_statistics_cannot_be_enabled_after_boot(ember, guest, sock):
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        boot(api, guest, "balloon_pool=4 balloon_hold=1", {"amount_mib": 0, "deflate_on_oom": False})
        expect(p, r"balloon: touched")
        st, err = api.call("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 1})
        assert st == 400 and "cannot be enabled after boot" in err["fault_message"], err
        assert api.call("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 0})[0] == 204
        assert api.call("GET", "/balloon")[1]["stats_polling_interval_s"] == 0
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("section,words", [
    ({}, "balloon: missing field `amount_mib`"),
    ({"amount_mib": 0}, "balloon: missing field `deflate_on_oom`"),
    ({"amount_mib": 0, "deflate_on_oom": False, "free_page_hinting": True},
     "balloon: free_page_hinting"),
    ({"amount_mib": 4096, "deflate_on_oom": False}, "Amount of pages requested is too large"),
    ({"amount_mib": 0, "deflate_on_oom": False, "pages": 1}, "balloon: unknown field `pages`"),
    ([], "balloon must be a JSON object"),
    (0, "balloon must be a JSON object"),
])
def test_config_file_section_is_checked(ember, guest, tmp_path, section, words):
    cfg = {"boot-source": {"kernel_image_path": str(guest("balloon.elf"))}, "balloon": section}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    r = run_ember(ember, "--no-api", "--config-file", path, timeout=30)
    assert r.returncode != 0
    assert words in r.stderr, r.stderr
    assert "balloon:" not in r.stdout


def test_config_file_without_balloon_gives_the_guest_none(ember, guest, tmp_path):
    cfg = {"boot-source": {"kernel_image_path": str(guest("balloon.elf"))}, "balloon": None}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    r = run_ember(ember, "--no-api", "--config-file", path, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "balloon: no balloon device" in r.stdout


def test_snapshot_keeps_the_balloon(ember, guest, tmp_path):
    """A paused VM with an inflated balloon and statistics: the restored one
    has the same target, actual and statistics, and deflates on request."""
    sock = str(tmp_path / "a.sock")
    state, mem = tmp_path / "vm.state", tmp_path / "vm.mem"
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        boot(api, guest, "balloon_pool=8 balloon_rounds=1000",
             {"amount_mib": 4, "deflate_on_oom": False, "stats_polling_interval_s": 1}, mem=128)
        expect(p, r"balloon: inflated 1024 pages\n")
        expect(p, r"balloon: stats request 1\n", 10)
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        before = api.call("GET", "/balloon/statistics")[1]
        st, err = api.call("PUT", "/snapshot/create", {"snapshot_path": str(state),
                                                       "mem_file_path": str(mem)})
        assert st == 204, err
    finally:
        p.kill()
        p.wait()
    sock2 = str(tmp_path / "b.sock")
    q = start_ember(ember, sock2)
    try:
        api = Api(sock2)
        st, err = api.call("PUT", "/snapshot/load", {"snapshot_path": str(state),
                                                     "mem_backend": {"backend_type": "File",
                                                                     "backend_path": str(mem)},
                                                     "resume_vm": True})
        assert st == 204, err
        assert api.call("GET", "/balloon")[1]["amount_mib"] == 4
        after = api.call("GET", "/balloon/statistics")[1]
        assert after["actual_pages"] == 1024 and after["target_pages"] == 1024, after
        assert after["total_memory"] == before["total_memory"] == 8 << 20, (before, after)
        # The restored device keeps asking for statistics and follows a new target.
        n = after["minor_faults"]
        assert wait_round(api, n + 2, 15) >= n + 2
        assert api.call("PATCH", "/balloon", {"amount_mib": 0})[0] == 204
        expect(q, r"balloon: deflated 1024 pages sum=128\n")
    finally:
        q.kill()
        q.wait()


def test_linux_virtio_balloon_inflates_deflates_and_reports_statistics(ember, vmlinux, tmp_path):
    """Linux's own driver (CONFIG_VIRTIO_BALLOON): the guest first touches
    and frees 64 MiB (dd's buffer), so the pages it will give are resident
    on the host; a 40 MiB target then takes ember's RssAnon down by about
    that much once Linux reports `actual`; its statistics arrive with the
    names Firecracker uses; a target of 0 gives the memory back."""
    from linux_vm import CMDLINE, LinuxVM, READY, guest_rootfs

    rootfs = guest_rootfs()
    cfg = {"boot-source": {"kernel_image_path": str(vmlinux),
                           "boot_args": f"{CMDLINE} ember.scenario=test"},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
           "drives": [{"drive_id": "rootfs", "path_on_host": str(rootfs / "rootfs.ext4"),
                       "is_root_device": True, "is_read_only": True}],
           "balloon": {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1}}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    vm = LinuxVM.start(ember, tmp_path, ["--config-file", path])
    try:
        vm.expect(READY, 240)
        _, out = vm.sh("ls /sys/bus/virtio/drivers/virtio_balloon/")
        assert "virtio" in out, out
        vm.sh("dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null", timeout=120)
        pid = ember_pid(vm.proc)
        before = rss_anon_kib(pid)

        def wait_actual(mib, timeout):
            deadline = time.monotonic() + timeout
            while True:
                s = vm.api.call("GET", "/balloon/statistics")[1]
                if s["actual_mib"] == mib:
                    return s
                assert time.monotonic() < deadline, s
                time.sleep(0.2)

        assert vm.api.call("PATCH", "/balloon", {"amount_mib": 40})[0] == 204
        s = wait_actual(40, 180)
        inflated = rss_anon_kib(pid)
        dropped = (before - inflated) / 1024
        print(f"Linux: RssAnon {before} KiB, {inflated} KiB with 40 MiB in the balloon")
        assert dropped >= 30, (before, inflated)
        assert s["target_mib"] == 40 and s["target_pages"] == 40 * 256, s
        # Linux's statistics (the names are Firecracker's).
        deadline = time.monotonic() + 30
        while "total_memory" not in s and time.monotonic() < deadline:
            time.sleep(0.5)
            s = vm.api.call("GET", "/balloon/statistics")[1]
        assert 100 << 20 <= s["total_memory"] <= 128 << 20, s
        assert 0 < s["free_memory"] < s["total_memory"], s
        # (no swap or fault counts: the test kernel has no VM_EVENT_COUNTERS)
        assert "available_memory" in s and "disk_caches" in s, s
        assert vm.api.call("PATCH", "/balloon", {"amount_mib": 0})[0] == 204
        wait_actual(0, 180)
        vm.sh("dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null", timeout=120)
    finally:
        vm.close()
