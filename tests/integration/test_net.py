"""virtio-net over a real TAP in a network namespace the test creates, with
a UDP echo peer there: ARP and UDP both ways, MTU edge, a TAP deleted under
a running VM."""
import json
import os
import subprocess
import time

import pytest

import fcmetrics
from api_client import Api
from conftest import read_until, run_ember

PEER = "10.0.2.1"
GUEST_ARGS = "ip=0x0a000202 peer=0x0a000201 port=7777"
ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.0.2.1", 7777))
while True:
    d, a = s.recvfrom(65536)
    s.sendto(d, a)
"""


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def netns(kvm):
    name = f"ember-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    sh("ip", "netns", "add", name)
    try:
        # Owned by 65534 too: `make test-jailed` runs ember as that uid.
        sh("ip", "netns", "exec", name, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap",
           "user", "65534")
        sh("ip", "netns", "exec", name, "ip", "addr", "add", f"{PEER}/24", "dev", "tap0")
        sh("ip", "netns", "exec", name, "ip", "link", "set", "tap0", "up")
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        echo = subprocess.Popen(["ip", "netns", "exec", name, "/usr/bin/python3", "-c", ECHO])
        time.sleep(0.2)
        yield name
        echo.kill()
        echo.wait()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def net_totals(path, iface="eth0"):
    """@iface's counters over the whole run (each metrics line holds the
    change since the line before): Firecracker's net_<id> and ember's own."""
    lines = fcmetrics.read(path)
    c = {k: fcmetrics.total(lines, f"net_{iface}", k)
         for k, v in lines[-1][f"net_{iface}"].items() if isinstance(v, int)}
    c.update({k: fcmetrics.total(lines, "ember", "net", iface, k)
              for k in lines[-1]["ember"]["net"][iface]})
    return c


def vm_config(tmp_path, guest, kernel_args, metrics):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("net.elf")), "boot_args": kernel_args},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "guest_mac": "06:00:0a:00:02:02"}],
        "metrics": {"metrics_path": str(metrics)},
    }))
    return cfg


def test_arp_and_udp_both_ways_and_the_mtu_edge(ember, guest, netns, tmp_path):
    metrics = tmp_path / "metrics.json"
    cfg = vm_config(tmp_path, guest, GUEST_ARGS, metrics)
    r = subprocess.run(["ip", "netns", "exec", netns, str(ember), "--config-file", str(cfg)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "net: mac 0x6:0x0:0xa:0x0:0x2:0x2 mtu 1500" in out
    assert "net: arp reply ok" in out
    for size in (1, 64, 1000, 1472):  # 1472: a full 1500-byte IP packet
        assert f"net: udp {size} echo ok" in out
    assert "net: oversize frame dropped" in out
    net = net_totals(metrics)
    assert net["tx_malformed_frames"] == 1, net  # the frame one byte over the MTU
    assert net["tx_packets_count"] == 5 and net["rx_packets_count"] >= 5, net
    # The TAP writes' times: sums are counters, min and max values.
    lines = fcmetrics.read(metrics)
    assert fcmetrics.total(lines, "net_eth0", "tap_write_agg", "sum_us") > 0, lines
    agg = lines[-1]["net_eth0"]["tap_write_agg"]
    assert agg["max_us"] >= agg["min_us"], agg
    assert net["tx_rate_limiter_event_count"] == 0 and net["tx_remaining_reqs_count"] == 0, net


def test_tap_deleted_under_a_running_vm(ember, guest, netns, tmp_path):
    sock = str(tmp_path / "api.sock")
    metrics = tmp_path / "metrics.json"
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("hello.elf")), "boot_args": "cad=1"},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0"}],
        "metrics": {"metrics_path": str(metrics)},
    }))
    p = subprocess.Popen(["ip", "netns", "exec", netns, str(ember), "--api-sock", sock,
                          "--config-file", str(cfg)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
        sh("ip", "netns", "exec", netns, "ip", "link", "del", "tap0")
        time.sleep(0.3)
        api = Api(sock)
        assert api.call("GET", "/")[1]["state"] == "Running"
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        net = net_totals(metrics)
        assert net["tap_errors"] >= 1 and net["tap_read_fails"] + net["tap_write_fails"] >= 1, net
        # Rate limits can still be changed on the interface.
        assert api.call("PATCH", "/network-interfaces/eth0", {
            "iface_id": "eth0", "tx_rate_limiter": {"ops": {"size": 10, "refill_time": 100}}})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        assert p.wait(timeout=20) == 0
        assert b"TAP 'tap0' failed" in p.stderr.read()
    finally:
        p.kill()


def test_missing_tap_is_a_clear_error(ember, guest, tmp_path):
    # TUNSETIFF creates a TAP that does not exist yet (we are root), so the
    # error case is a name the kernel refuses.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("net.elf"))},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "bad/name"}],
    }))
    r = run_ember(ember, "--config-file", bad, timeout=30)
    assert r.returncode == 67, r.stderr
    assert "network interface 'eth0'" in r.stderr and "TAP 'bad/name'" in r.stderr


SINK = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.0.2.1", 7778))
s.settimeout(30)
n = int(sys.argv[1])
stamps = []
for _ in range(n):
    d, a = s.recvfrom(65536)
    stamps.append((time.monotonic(), len(d)))
print(" ".join(f"{t:.6f}:{b}" for t, b in stamps))
"""


def test_tx_rate_limiter_holds_its_rate(ember, guest, netns, tmp_path):
    count, size = 800, 1000
    frame = 14 + 20 + 8 + size
    rate = 100_000  # bytes per 100 ms = 1 MB/s, bucket 100 kB
    sink = subprocess.Popen(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c", SINK, str(count)],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("net.elf")),
                        "boot_args": f"{GUEST_ARGS} flood={count} size={size}"},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "tx_rate_limiter": {"bandwidth": {"size": rate, "refill_time": 100}}}],
        "metrics": {"metrics_path": str(tmp_path / "metrics.json")},
    }))
    r = subprocess.run(["ip", "netns", "exec", netns, str(ember), "--config-file", str(cfg)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "net: flood done" in r.stdout
    out, _ = sink.communicate(timeout=40)
    stamps = [(float(t), int(b)) for t, b in (x.split(":") for x in out.split())]
    assert len(stamps) == count
    # Past the first bucket (sent at once), frames arrive at the refill rate.
    first = rate // frame + 1
    t0, t1 = stamps[first][0], stamps[-1][0]
    measured = (count - 1 - first) * frame / (t1 - t0)
    configured = rate * 10  # bytes per second
    print(f"tx rate limiter: configured {configured} B/s, measured {measured:.0f} B/s")
    assert abs(measured - configured) / configured < 0.10
    # Each refill wakes the queue; the flood left frames on the ring each stop.
    net = net_totals(tmp_path / "metrics.json")
    assert net["tx_rate_limiter_throttled"] > 0, net
    assert net["tx_rate_limiter_event_count"] > 0 and net["tx_remaining_reqs_count"] > 0, net


BLAST = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n, size = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    s.sendto(bytes(size), ("10.0.2.2", 7779))
"""


def test_rx_rate_limiter_holds_its_rate(ember, guest, netns, tmp_path):
    count, size = 600, 1000
    frame = 14 + 20 + 8 + size
    rate = 100_000  # bytes per 100 ms = 1 MB/s, bucket 100 kB
    # The guest answers no ARP: tell the host its MAC.
    sh("ip", "netns", "exec", netns, "ip", "neigh", "replace", "10.0.2.2", "lladdr",
       "06:00:0a:00:02:02", "dev", "tap0")
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("net.elf")),
                        "boot_args": f"{GUEST_ARGS} sink={count}"},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "guest_mac": "06:00:0a:00:02:02",
                                "rx_rate_limiter": {"bandwidth": {"size": rate, "refill_time": 100}}}],
        "metrics": {"metrics_path": str(tmp_path / "metrics.json")},
    }))
    p = subprocess.Popen(["ip", "netns", "exec", netns, str(ember), "--config-file", str(cfg)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(p, r"net: sink ready\n", 30)[0]
        # All at once: the TAP queues them (600 < txqueuelen 1000), the limiter meters them in.
        subprocess.run(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c", BLAST, str(count),
                        str(size)], check=True)
        m, text = read_until(p, r"net: sink first\n", 10)
        assert m, text
        t_first = time.monotonic()
        m, text = read_until(p, r"net: sink done\n", 30)
        assert m, text
        t_done = time.monotonic()
        assert p.wait(timeout=20) == 0
    finally:
        p.kill()
        p.wait()
    net = net_totals(tmp_path / "metrics.json")
    assert net["rx_rate_limiter_throttled"] > 0 and net["rx_dropped"] == 0, net
    assert net["rx_event_rate_limiter_count"] > 0, net
    first = rate // frame + 1  # the first bucket goes at once
    measured = (count - first) * frame / (t_done - t_first)
    configured = rate * 10
    print(f"rx rate limiter: configured {configured} B/s, measured {measured:.0f} B/s")
    assert abs(measured - configured) / configured < 0.10


def test_rx_buffers_smaller_than_a_frame_do_not_hang_the_monitor(ember, guest, netns, tmp_path):
    """MRG_RXBUF negotiated and one 100-byte receive buffer posted: frames
    arrive for the guest, and the monitor waits for more buffers without
    spinning; the API and SIGTERM keep working (the VMM thread once looped
    forever here, holding the transport lock)."""
    sock = str(tmp_path / "api.sock")
    metrics = tmp_path / "metrics.json"
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("net.elf")),
                        "boot_args": GUEST_ARGS + " tiny_rx=1"},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "guest_mac": "06:00:0a:00:02:02"}],
        "metrics": {"metrics_path": str(metrics)},
    }))
    p = subprocess.Popen(["ip", "netns", "exec", netns, str(ember), "--api-sock", sock,
                          "--config-file", str(cfg)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_until(p, r"net: tiny rx posted\n", 20)[0]
        # Frames for the guest: the ARP requests a datagram to it sets off.
        sh("ip", "netns", "exec", netns, "/usr/bin/python3", "-c",
           "import socket, time\n"
           "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
           "for _ in range(3):\n"
           "    s.sendto(b'x', ('10.0.2.2', 9)); time.sleep(0.3)")
        api = Api(sock)
        t = time.monotonic()
        for _ in range(20):
            assert api.call("GET", "/")[1]["state"] == "Running"
        assert time.monotonic() - t < 5
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        net = net_totals(metrics)
        assert net["rx_short_buffers"] >= 1 and net["rx_packets_count"] == 0, net
        p.send_signal(15)
        assert p.wait(timeout=10) == 0
        err = p.stderr.read().decode()
        assert err.count("less than a frame") == 1, err
    finally:
        p.kill()
        p.wait()
