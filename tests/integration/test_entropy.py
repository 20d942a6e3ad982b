"""The virtio-rng entropy device end to end: the rng guest reads random
bytes (different in every VM), PUT /entropy and the config file's
`entropy` section are checked like the other devices, the rate limiter
holds the guest to its budget, the metrics count what the guest did, a
malformed chain is refused while the VM goes on, and a VM restored from a
snapshot keeps reading."""
import json
import re
import subprocess
import time

import pytest

import fcmetrics
from api_client import Api, start_ember
from conftest import read_until, run_ember

READ = re.compile(r"rng: read (\d+) bytes in (\d+) requests short=(\d+) nonzero=(\d+) "
                  r"digest=(0x[0-9a-f]+) head=([0-9a-f]*)\n")
PASS = re.compile(r"rng: pass (\d+) short=(\d+) nonzero=(\d+) head=([0-9a-f]*) (ok|failed)\n")


def vm_config(tmp_path, guest, args, entropy, metrics=None, name="vm.json"):
    cfg = {"boot-source": {"kernel_image_path": str(guest("rng.elf")), "boot_args": args}}
    if entropy is not None:
        cfg["entropy"] = entropy
    if metrics:
        cfg["metrics"] = {"metrics_path": str(metrics)}
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def entropy_totals(path):
    """The entropy counters over the whole run: each line holds the change
    since the line before it."""
    lines = fcmetrics.read(path)
    m = {k: fcmetrics.total(lines, "entropy", k) for k in lines[-1]["entropy"]}
    m["needs_reset"] = fcmetrics.total(lines, "ember", "entropy", "needs_reset")
    return m


def read_line(text):
    m = READ.search(text)
    assert m, text
    n, reqs, short, nonzero, digest, head = m.groups()
    return {"bytes": int(n), "requests": int(reqs), "short": int(short),
            "nonzero": int(nonzero), "digest": digest, "head": head}


def test_guest_reads_random_bytes_different_in_each_vm(ember, guest, tmp_path):
    seen = []
    for i in range(2):
        metrics = tmp_path / f"metrics{i}.json"
        cfg = vm_config(tmp_path, guest, "rng_bytes=65536 rng_chunk=4096", {}, metrics,
                        name=f"vm{i}.json")
        r = run_ember(ember, "--config-file", cfg, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "rng: device irq=5" in r.stdout
        got = read_line(r.stdout)
        assert got["bytes"] == 65536 and got["requests"] == 16 and got["short"] == 0
        # About one byte in 256 is 0; far more means the device wrote nothing.
        assert got["nonzero"] >= 65536 - 1024, got
        m = entropy_totals(metrics)
        assert m["entropy_bytes"] == 65536 and m["entropy_event_count"] == 16, m
        assert m["entropy_event_fails"] == 0 and m["host_rng_fails"] == 0, m
        assert m["entropy_rate_limiter_throttled"] == 0 and m["activate_fails"] == 0, m
        seen.append(got)
    assert seen[0]["digest"] != seen[1]["digest"]
    assert seen[0]["head"] != seen[1]["head"]


def test_without_the_device_the_guest_finds_none(ember, guest, tmp_path):
    r = run_ember(ember, "--config-file", vm_config(tmp_path, guest, "", None), timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "rng: no entropy device" in r.stdout


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "ember.sock")


BAD_BODIES = [
    ({"rate_limit": {}}, "unknown field `rate_limit`"),
    ({"rate_limiter": 5}, "invalid type for field `rate_limiter`"),
    ({"rate_limiter": {"burst": {}}}, "unknown field `burst`"),
    ({"rate_limiter": {"bandwidth": {"size": 1000}}}, "missing field `refill_time`"),
    ({"rate_limiter": {"bandwidth": {"refill_time": 100}}}, "missing field `size`"),
    ({"rate_limiter": {"bandwidth": {"size": -1, "refill_time": 100}}}, "invalid type for field `size`"),
    ({"rate_limiter": {"ops": {"size": "10", "refill_time": 100}}}, "invalid type for field `size`"),
    ({"rate_limiter": {"ops": {"size": 10, "refill_time": 100, "x": 1}}}, "unknown field `x`"),
    ({"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 0}}}, "refill_time must be more than 0"),
    ({"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 2**60}}}, "refill_time must be at most"),
    ({"rate_limiter": {"ops": {"size": 5, "refill_time": 10, "one_time_burst": 1.5}}},
     "invalid type for field `one_time_burst`"),
]


def test_put_entropy_validation_and_vm_config(ember, guest, sock):
    p = start_ember(ember, sock)
    try:
        api = Api(sock)
        assert api.call("GET", "/vm/config")[1]["entropy"] is None
        for body, words in BAD_BODIES:
            st, err = api.call("PUT", "/entropy", body)
            assert st == 400 and words in err["fault_message"], (body, err)
        assert api.call("PUT", "/entropy", raw="[]")[0] == 400
        assert api.call("PUT", "/entropy", raw="{")[0] == 400
        assert api.call("GET", "/vm/config")[1]["entropy"] is None  # nothing stuck
        assert api.call("PUT", "/entropy", {})[0] == 204
        assert api.call("GET", "/vm/config")[1]["entropy"] == {"rate_limiter": None}
        limiter = {"bandwidth": {"size": 1 << 20, "one_time_burst": 4096, "refill_time": 100},
                   "ops": {"size": 1000, "refill_time": 1000}}
        assert api.call("PUT", "/entropy", {"rate_limiter": limiter})[0] == 204
        want = {"bandwidth": limiter["bandwidth"],
                "ops": {"size": 1000, "one_time_burst": 0, "refill_time": 1000}}
        assert api.call("GET", "/vm/config")[1]["entropy"] == {"rate_limiter": want}
        assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("rng.elf")),
                                                "boot_args": "rng_loop=1 rng_spin=20"})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        m, text = read_until(p, r"rng: pass 1 .* ok\n", 30)
        assert m, text
        # Pre-boot only, like the other devices.
        st, err = api.call("PUT", "/entropy", {})
        assert st == 400 and "not supported after starting" in err["fault_message"], err
        assert api.call("GET", "/vm/config")[1]["entropy"] == {"rate_limiter": want}
        m, text = read_until(p, r"rng: pass 2 .* ok\n", 30)
        assert m, text
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("section,words", [
    ({"rate_limiter": {"bandwidth": {"size": 100}}}, "entropy: missing field `refill_time`"),
    ({"rate_limiter": {"ops": {"size": 1, "refill_time": 0}}}, "entropy: rate_limiter.ops"),
    ({"rng": 1}, "entropy: unknown field `rng`"),
    ([], "entropy must be a JSON object"),
])
def test_config_file_section_is_checked(ember, guest, tmp_path, section, words):
    r = run_ember(ember, "--config-file", vm_config(tmp_path, guest, "", section), timeout=30)
    assert r.returncode != 0
    assert words in r.stderr, r.stderr
    assert "rng:" not in r.stdout


def timed_read(ember, cfg, timeout=60):
    """Boot @cfg; seconds from the guest's "rng: start" to its "rng: read"
    line, on the host's clock, and the read line."""
    p = subprocess.Popen([str(ember), "--no-api", "--config-file", str(cfg)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        m, text = read_until(p, r"rng: start\n", 30)
        assert m, text
        t0 = time.monotonic()
        m, text = read_until(p, READ.pattern, timeout)
        elapsed = time.monotonic() - t0
        assert m, text
        assert p.wait(timeout=30) == 0, p.stderr.read()
        return elapsed, read_line(m.group(0))
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("kind", ["bandwidth", "ops"])
def test_rate_limiter_holds_the_guest_to_its_budget(ember, guest, tmp_path, kind):
    n = 16384
    if kind == "bandwidth":
        # 4 KiB/s, the bucket full at the start plus 512 bytes of burst:
        # (16384 - 4096 - 512) / 4096 = 2.875 s at the least.
        args, limiter = f"rng_bytes={n} rng_chunk=512", {
            "bandwidth": {"size": 4096, "one_time_burst": 512, "refill_time": 1000}}
        expected = (n - 4096 - 512) / 4096
    else:
        # 8 requests/s, the bucket full at the start: (32 - 8) / 8 = 3 s.
        args, limiter = f"rng_bytes={n} rng_chunk=512", {
            "ops": {"size": 8, "refill_time": 1000}}
        expected = (n // 512 - 8) / 8
    metrics = tmp_path / "metrics.json"
    cfg = vm_config(tmp_path, guest, args, {"rate_limiter": limiter}, metrics)
    elapsed, got = timed_read(ember, cfg)
    assert got["bytes"] == n and got["short"] == 0 and got["nonzero"] >= n - 512, got
    free_cfg = vm_config(tmp_path, guest, args, {}, name="free.json")
    free, _ = timed_read(ember, free_cfg)
    print(f"{kind}: {n} bytes in {elapsed:.3f} s limited (at least {expected:.3f} s expected), "
          f"{free:.3f} s unlimited")
    # The host's clock sees the guest's lines late, never early, except the
    # "start" line, which may be read late: a generous margin below.
    assert elapsed >= 0.8 * expected, f"limited read took {elapsed:.2f} s, expected {expected:.2f}"
    assert elapsed <= expected + 10, f"limited read took {elapsed:.2f} s, expected {expected:.2f}"
    assert free < expected / 4, f"unlimited read took {free:.2f} s"
    m = entropy_totals(metrics)
    assert m["entropy_bytes"] == n and m["entropy_event_count"] == n // 512, m
    assert m["entropy_rate_limiter_throttled"] > 0 and m["rate_limiter_event_count"] > 0, m
    assert m["entropy_event_fails"] == 0, m


def test_bad_chain_is_counted_and_the_vm_goes_on(ember, guest, tmp_path):
    metrics = tmp_path / "metrics.json"
    cfg = vm_config(tmp_path, guest, "rng_bad=1 rng_bytes=8192 rng_chunk=1024", {}, metrics)
    r = run_ember(ember, "--config-file", cfg, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rng: bad chain len=0\n" in r.stdout
    got = read_line(r.stdout)
    assert got["bytes"] == 8192 and got["short"] == 0
    assert "refusing descriptor chain: device-readable descriptor" in r.stderr
    m = entropy_totals(metrics)
    assert m["entropy_event_fails"] == 1 and m["entropy_event_count"] == 9, m
    assert m["entropy_bytes"] == 8192 and m["needs_reset"] == 0, m


def restore(ember, tmp_path, st, mem, name):
    sock = str(tmp_path / f"{name}.sock")
    metrics = tmp_path / f"{name}-metrics.json"
    p = start_ember(ember, sock)
    api = Api(sock)
    assert api.call("PUT", "/metrics", {"metrics_path": str(metrics)})[0] == 204
    r = api.call("PUT", "/snapshot/load", {
        "snapshot_path": str(st), "resume_vm": True,
        "mem_backend": {"backend_type": "File", "backend_path": str(mem)}})
    assert r[0] == 204, r
    return p, api, metrics


def test_snapshot_restore_keeps_reading(ember, guest, tmp_path):
    # Rate-limited (4 KiB per pass at 4 KiB/s): the snapshot is likely taken
    # with a chain held back on the ring, which the restored device must serve.
    limiter = {"bandwidth": {"size": 4096, "refill_time": 1000}}
    cfg = vm_config(tmp_path, guest, "rng_loop=1 rng_spin=1 rng_bytes=4096 rng_chunk=512",
                    {"rate_limiter": limiter})
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock, "--config-file", cfg)
    try:
        m, text = read_until(p, r"rng: pass 2 .* ok\n", 60)
        assert m, text
        time.sleep(0.3)  # into pass 3, throttled
        api = Api(sock)
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        st, mem = tmp_path / "rng.state", tmp_path / "rng.mem"
        r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st),
                                                 "mem_file_path": str(mem)})
        assert r[0] == 204, r
    finally:
        p.kill()
        p.wait()
    heads = []
    for name in ("clone1", "clone2"):
        q, api, metrics = restore(ember, tmp_path, st, mem, name)
        try:
            assert api.call("GET", "/vm/config")[1]["entropy"] == {
                "rate_limiter": {"bandwidth": {"size": 4096, "one_time_burst": 0,
                                               "refill_time": 1000}, "ops": None}}
            m, text = read_until(q, PASS.pattern, 30)
            assert m, text
            first = PASS.search(m.group(0))
            assert int(first.group(1)) == 3 and first.group(5) == "ok", m.group(0)
            m, text = read_until(q, PASS.pattern, 30)
            assert m and m.group(0).startswith("rng: pass 4 ") and m.group(0).endswith(" ok\n"), text
            # Pass 3 began before the snapshot; pass 4 is all the clone's own.
            heads.append(PASS.search(m.group(0)).group(4))
            assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
            got = entropy_totals(metrics)
            assert got["entropy_bytes"] >= 4096 and got["entropy_event_fails"] == 0, got
        finally:
            q.kill()
            q.wait()
    # Each clone draws its own entropy from the host.
    assert heads[0] != heads[1]
