"""ACPI tables read back from inside a guest: guest/tests/acpi.c finds the
RSDP, checks every table's checksum, reads the FADT and MADT and parses the
DSDT's AML with the guest kit's reader (guest/kit/acpi.c), and prints what it
found. These tests compare that report with what ember was given: vCPUs,
each virtio-mmio device in attach order, COM1, the i8042, VMGenID and the
Generic Event Device; both boot protocols; --no-acpi and --acpi-only; and a
fresh generation ID in every clone restored from one snapshot."""
import json
import os
import re
import subprocess
import time

import pytest

from api_client import Api
from conftest import read_until, run_ember

RSDP_ADDR = ACPI_START = 0xE0000  # the RSDP comes first in the tables' 64 KiB
VMGENID_ADDR = 0xF0000
LAPIC_ADDR = 0xFEE00000
IOAPIC_ADDR = 0xFEC00000
VIRTIO_MMIO_BASE = 0xD0001000
VIRTIO_IRQ_BASE = 5
VIRTIO_MAX_DEVICES = 18
GED_IRQ = 23
# Extended Interrupt flags: consumer, edge, active high, exclusive.
EXT_FLAGS = "0x3"
VIRTIO_NET, VIRTIO_BLK, VIRTIO_VSOCK = 1, 2, 19
EXIT_OK, EXIT_ERROR, EXIT_NO_RSDP = 0, 1, 2

KV = re.compile(r'(\w+)=("[^"]*"|\S+)')


def parse(out):
    """The guest's "acpi: KIND key=value ..." lines: one dict per line kind;
    table, dev and e820 lines as lists (dev values as lists: keys repeat)."""
    rep = {"table": [], "dev": [], "e820": []}
    for line in out.splitlines():
        m = re.match(r"acpi: (\w+) ?(.*)$", line)
        if not m:
            continue
        kind, rest = m.groups()
        if kind in ("result", "cmdline"):
            rep[kind] = rest
            continue
        fields = {}
        for k, v in KV.findall(rest):
            fields.setdefault(k, []).append(v[1:-1] if v.startswith('"') else v)
        if kind == "dev":
            rep["dev"].append(fields)
            continue
        flat = {k: v[0] for k, v in fields.items()}
        if kind in ("table", "e820"):
            rep[kind].append(flat)
        else:
            rep[kind] = flat
    return rep


def num(s):
    return int(s, 0)


def boot(ember, kernel, *args, rc=EXIT_OK, netns=None, timeout=120):
    cmd = [str(ember), "--kernel", str(kernel), *map(str, args)]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == rc, r.stdout + r.stderr
    return parse(r.stdout)


def device(rep, name):
    devs = [d for d in rep["dev"] if d["path"] == [f"\\_SB_.{name}"]]
    assert len(devs) == 1, rep["dev"]
    return devs[0]


def check_tables(rep, vcpus):
    """Everything but the virtio devices: RSDP, XSDT, FADT, MADT, fixed devices."""
    assert rep["result"] == "ok", rep
    rsdp = rep["rsdp"]
    assert num(rsdp["addr"]) == RSDP_ADDR
    assert (rsdp["rev"], rsdp["len"], rsdp["checksum"], rsdp["xchecksum"]) == ("2", "36", "ok", "ok")
    assert rsdp["oem"] == "EMBER " and num(rsdp["rsdt"]) == 0 and num(rsdp["xsdt"]) != 0
    tables = {t["sig"]: t for t in rep["table"]}
    assert sorted(tables) == ["APIC", "DSDT", "FACP", "XSDT"], rep["table"]
    for t in rep["table"]:
        assert t["checksum"] == "ok" and t["oem"] == "EMBER ", t
        assert ACPI_START <= num(t["addr"]) and num(t["addr"]) + num(t["len"]) <= VMGENID_ADDR, t
    assert num(tables["XSDT"]["addr"]) == num(rsdp["xsdt"])
    assert num(tables["XSDT"]["len"]) == 36 + 8 * 2  # FADT and MADT
    assert tables["FACP"]["rev"] == "6" and num(tables["FACP"]["len"]) == 276

    fadt = rep["fadt"]
    assert fadt["hw_reduced"] == "1"
    assert num(fadt["x_dsdt"]) == num(tables["DSDT"]["addr"])
    assert num(fadt["dsdt"]) in (0, num(fadt["x_dsdt"]))

    madt = rep["madt"]
    assert num(madt["lapic_addr"]) == LAPIC_ADDR and num(madt["flags"]) & 1  # PCAT_COMPAT
    assert madt["lapics"] == madt["enabled"] == str(vcpus)
    assert num(madt["apic_ids"]) == num(madt["uids"]) == (1 << vcpus) - 1
    assert madt["ioapics"] == "1" and num(madt["ioapic_addr"]) == IOAPIC_ADDR
    assert madt["gsi_base"] == "0"

    com1 = device(rep, "COM1")
    assert com1["hid"] == ["PNP0501"] and com1["uid"] == ["0"]
    assert com1["io"] == ["0x3f8-0x3f8/8"] and com1["irq"] == ["4/0x3/legacy"]
    ps2 = device(rep, "PS2_")
    assert ps2["hid"] == ["PNP0303"]
    assert ps2["io"] == ["0x60-0x60/1", "0x64-0x64/1"] and ps2["irq"] == ["1/0x3/legacy"]
    vgen = device(rep, "VGEN")
    assert vgen["hid"] == ["VMGENCTR"] and vgen["cid"] == ["VM_Gen_Counter"]
    assert vgen["ddn"] == ["VM_Gen_Counter"]
    assert vgen["addr"] == [f"{VMGENID_ADDR:#x},0x0"]
    ged = device(rep, "GED_")
    assert ged["hid"] == ["ACPI0013"] and ged["irq"] == [f"{GED_IRQ}/{EXT_FLAGS}/ext"]
    assert ged["method"] == [f"_EVT/1/if(arg0=={GED_IRQ}):notify(\\_SB_.VGEN,0x80)"]
    assert num(rep["vmgenid"]["addr"]) == VMGENID_ADDR
    assert re.fullmatch(r"[0-9a-f]{32}", rep["vmgenid"]["id"])
    assert rep["vmgenid"]["id"] != "0" * 32

    e820 = [(num(e["addr"]), num(e["size"]), int(e["type"])) for e in rep["e820"]]
    assert (ACPI_START, VMGENID_ADDR - ACPI_START, 3) in e820, e820
    assert (VMGENID_ADDR, 0x100000 - VMGENID_ADDR, 2) in e820, e820



def check_virtio(rep, expected, legacy=True):
    """@expected: (virtio device id, first config bytes or None) per device, in attach order."""
    virtio = [d for d in rep["dev"] if d.get("hid") == ["LNRO0005"]]
    assert len(rep["dev"]) == 4 + len(expected), rep["dev"]
    assert len(virtio) == len(expected), virtio
    for i, (d, (kind, config)) in enumerate(zip(virtio, expected)):
        base = VIRTIO_MMIO_BASE + 0x1000 * i
        assert d["path"] == [f"\\_SB_.VR{i:02d}"], d
        assert d["uid"] == [str(i)], d
        assert d["mem"] == [f"{base:#x}/0x1000/rw"], d
        assert d["irq"] == [f"{VIRTIO_IRQ_BASE + i}/{EXT_FLAGS}/ext"], d
        assert d["virtio_id"] == [str(kind)], d
        if config is not None:
            got = num(d["config"][0])
            if kind == VIRTIO_NET:  # the MAC; the link status follows it
                got &= (1 << 48) - 1
            assert got == config, (i, d)
    entries = re.findall(r"virtio_mmio\.device=4K@(0x[0-9a-f]+):(\d+)", rep["cmdline"])
    if legacy:
        want = [(f"{VIRTIO_MMIO_BASE + 0x1000 * i:#x}", str(VIRTIO_IRQ_BASE + i))
                for i in range(len(expected))]
        assert entries == want, rep["cmdline"]
    else:
        assert entries == [], rep["cmdline"]


def check_mptable(rep, vcpus):
    if vcpus:
        assert num(rep["mptable"]["addr"]) != 0 and rep["mptable"]["cpus"] == str(vcpus)
    else:
        assert num(rep["mptable"]["addr"]) == 0


def make_drive(path, mib):
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    return path


@pytest.mark.parametrize("vcpus", [1, 4, 32])
def test_pvh_guest_reads_the_tables_of_a_vm_without_devices(ember, guest, vcpus):
    rep = boot(ember, guest("acpi.elf"), "--vcpus", vcpus)
    check_tables(rep, vcpus)
    check_virtio(rep, [])
    check_mptable(rep, vcpus)
    src = rep["sources"]
    assert rep["rsdp"]["via"] == "pvh"
    assert (num(src["pvh"]), num(src["zeropage"]), num(src["scan"])) == (RSDP_ADDR, 0, RSDP_ADDR)


def test_linux_boot_protocol_finds_the_rsdp_in_the_zero_page(ember, guest, tmp_path):
    a, b = make_drive(tmp_path / "a.img", 1), make_drive(tmp_path / "b.img", 2)
    rep = boot(ember, guest("acpi.bzImage"), "--vcpus", 2, "--drive", f"path={a}",
               "--drive", f"path={b}")
    check_tables(rep, 2)
    check_virtio(rep, [(VIRTIO_BLK, 2048), (VIRTIO_BLK, 4096)])
    src = rep["sources"]
    assert rep["rsdp"]["via"] == "zeropage"
    assert (num(src["pvh"]), num(src["zeropage"]), num(src["scan"])) == (0, RSDP_ADDR, RSDP_ADDR)


@pytest.fixture
def netns(kvm):
    """A network namespace with two TAPs for ember to open."""
    name = f"ember-acpi-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        for tap in ("tap0", "tap1"):
            # Owned by 65534 too: `make test-jailed` runs ember as that uid.
            subprocess.run(["ip", "netns", "exec", name, "ip", "tuntap", "add", "dev", tap,
                            "mode", "tap", "user", "65534"], check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def many_devices(tmp_path, kernel, vcpus, extra=None):
    """As many virtio devices as ember takes: 15 drives (the root drive
    listed fifth: it attaches first), 2 network interfaces, vsock. Returns
    the config file and (device id, config bytes) in ember's attach order."""
    drives, blk = [], []
    for i in range(15):
        path = make_drive(tmp_path / f"d{i}.img", i + 1)
        root = i == 4
        drives.append({"drive_id": f"d{i}", "path_on_host": str(path), "is_root_device": root,
                       "is_read_only": i % 2 == 1})
        blk.insert(0 if root else len(blk), (VIRTIO_BLK, (i + 1) * 2048))
    macs = ["06:00:0a:00:02:02", "06:00:0a:00:03:07"]
    nets = [{"iface_id": f"eth{i}", "host_dev_name": f"tap{i}", "guest_mac": mac}
            for i, mac in enumerate(macs)]
    net = [(VIRTIO_NET, int.from_bytes(bytes.fromhex(mac.replace(":", "")), "little"))
           for mac in macs]
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(kernel), **(extra or {})},
        "machine-config": {"vcpu_count": vcpus, "mem_size_mib": 128},
        "drives": drives,
        "network-interfaces": nets,
        "vsock": {"guest_cid": 7, "uds_path": str(tmp_path / "v.sock")},
    }))
    expected = blk + net + [(VIRTIO_VSOCK, 7)]
    assert len(expected) == VIRTIO_MAX_DEVICES
    return cfg, expected


def boot_config(ember, netns, cfg, *args, rc=EXIT_OK):
    r = subprocess.run(["ip", "netns", "exec", netns, str(ember), "--config-file", str(cfg),
                        *args], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == rc, r.stdout + r.stderr
    return parse(r.stdout)


@pytest.mark.parametrize("vcpus", [1, 4, 32])
def test_every_virtio_device_in_attach_order(ember, guest, netns, tmp_path, vcpus):
    cfg, expected = many_devices(tmp_path, guest("acpi.elf"), vcpus)
    rep = boot_config(ember, netns, cfg)
    check_tables(rep, vcpus)
    check_virtio(rep, expected)
    check_mptable(rep, vcpus)
    assert "root=/dev/vda rw" in rep["cmdline"]


def test_linux_boot_protocol_with_every_virtio_device(ember, guest, netns, tmp_path):
    cfg, expected = many_devices(tmp_path, guest("acpi.bzImage"), 4)
    rep = boot_config(ember, netns, cfg)
    check_tables(rep, 4)
    check_virtio(rep, expected)
    assert rep["rsdp"]["via"] == "zeropage"


@pytest.mark.parametrize("kernel", ["acpi.elf", "acpi.bzImage"])
def test_no_acpi_leaves_no_rsdp(ember, guest, tmp_path, kernel):
    a = make_drive(tmp_path / "a.img", 1)
    rep = boot(ember, guest(kernel), "--no-acpi", "--vcpus", 3, "--drive", f"path={a}",
               rc=EXIT_NO_RSDP)
    assert rep["result"] == "none"
    assert rep["sources"] == {"pvh": "0x0", "zeropage": "0x0", "scan": "0x0"}
    assert "rsdp" not in rep and rep["table"] == [] and rep["dev"] == []
    # The guest still finds its CPUs and its device the legacy way.
    check_mptable(rep, 3)
    assert re.findall(r"virtio_mmio\.device=\S+", rep["cmdline"]) == [
        f"virtio_mmio.device=4K@{VIRTIO_MMIO_BASE:#x}:{VIRTIO_IRQ_BASE}"]


@pytest.mark.parametrize("kernel", ["acpi.elf", "acpi.bzImage"])
def test_acpi_only_drops_the_mp_table_and_the_command_line_devices(ember, guest, tmp_path, kernel):
    a, b = make_drive(tmp_path / "a.img", 3), make_drive(tmp_path / "b.img", 1)
    rep = boot(ember, guest(kernel), "--acpi-only", "--vcpus", 2, "--drive", f"path={a}",
               "--drive", f"path={b}")
    check_tables(rep, 2)
    check_virtio(rep, [(VIRTIO_BLK, 3 * 2048), (VIRTIO_BLK, 2048)], legacy=False)
    check_mptable(rep, 0)


# --- VMGenID ---------------------------------------------------------------

def start(ember, *args):
    return subprocess.Popen([str(ember), *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def ask_id(p, n, timeout=30):
    """Send a byte to the waiting guest; its answer: (generation ID, GED interrupt pending)."""
    p.stdin.write(b"?")
    p.stdin.flush()
    m, text = read_until(p, rf"vmgenid: n={n} id=([0-9a-f]{{32}}) ged=([01])\n", timeout)
    assert m, text
    return m.group(1), m.group(2) == "1"


def stop(p):
    p.kill()
    p.wait()


def test_each_restored_clone_gets_a_new_generation_id(ember, guest, tmp_path):
    sock = str(tmp_path / "api.sock")
    p = start(ember, "--api-sock", sock, "--kernel", guest("acpi.elf"), "--cmdline", "wait=1")
    clones = []
    try:
        m, text = read_until(p, r"acpi: waiting\n", 60)
        assert m, text
        rep = parse(text)
        check_tables(rep, 1)
        boot_id = rep["vmgenid"]["id"]
        assert ask_id(p, 1) == (boot_id, False)  # no GED interrupt without a restore
        api = Api(sock)
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        st, mem = tmp_path / "snap.state", tmp_path / "snap.mem"
        r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st),
                                                 "mem_file_path": str(mem),
                                                 "snapshot_type": "Full"})
        assert r[0] == 204, r
        stop(p)

        # Two clones of the one snapshot, running side by side.
        clones = [start(ember, "--restore", st, "--mem", mem, "--resume") for _ in range(2)]
        ids = []
        for c in clones:
            gen, ged = ask_id(c, 2)
            assert ged, "the GED's interrupt was not raised on restore"
            assert ask_id(c, 3) == (gen, True)  # stable until the next restore
            ids.append(gen)
        assert len({boot_id, *ids}) == 3, (boot_id, ids)
        for c in clones:
            c.stdin.write(b"q")
            c.stdin.flush()
            assert c.wait(timeout=30) == 0
    finally:
        for q in [p, *clones]:
            if q.poll() is None:
                stop(q)
