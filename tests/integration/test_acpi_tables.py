"""ember's ACPI tables checked by an independent implementation: ACPICA's
iasl disassembles them and acpiexec loads them and runs their AML.

build/tests/acpi-dump writes the tables ember builds for a VM of a given
shape (vCPUs, virtio-mmio devices), with the same code the VMM runs."""
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DUMP = ROOT / "build/tests/acpi-dump"
MMIO_BASE = 0xD0001000
IRQ_BASE = 5
GED_IRQ = 23
VMGENID_ADDR = 0xF0000

SHAPES = [(1, 0), (1, 16), (4, 0), (4, 16), (32, 0), (32, 16)]


def _need_tools():
    missing = [t for t in ("iasl", "acpiexec") if not shutil.which(t)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: scripts/setup.sh installs acpica-tools")
    if not DUMP.exists():
        pytest.fail(f"{DUMP} missing: `make build/tests/acpi-dump`")


def dump(tmp_path, vcpus, devices):
    _need_tools()
    d = tmp_path / f"t{vcpus}-{devices}"
    d.mkdir()
    subprocess.run([str(DUMP), str(vcpus), str(devices), str(d)], check=True,
                   capture_output=True)
    return d


def iasl(d, name):
    """Disassemble one table; returns the .dsl text and iasl's output."""
    r = subprocess.run(["iasl", "-d", f"{name}.dat"], cwd=d, capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    return (d / f"{name}.dsl").read_text(), out


def clean(out):
    """iasl/acpiexec output must carry no error, warning or remark."""
    bad = [l for l in out.splitlines()
           if re.search(r"\b(Error|Warning|Remark)\b", l) and "0 Errors" not in l]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("vcpus,devices", SHAPES)
def test_iasl_disassembles_every_table(tmp_path, vcpus, devices):
    d = dump(tmp_path, vcpus, devices)

    dsl, out = iasl(d, "dsdt")
    clean(out)
    devs = re.findall(r"Device \((\w+)\)", dsl)
    assert devs == ["COM1", "PS2", *[f"VR{i:02d}" for i in range(devices)], "VGEN", "GED"]
    for i in range(devices):
        body = dsl.split(f"Device (VR{i:02d})")[1].split("Device (")[0]
        assert 'Name (_HID, "LNRO0005")' in body
        assert f"0x{MMIO_BASE + 0x1000 * i:08X},         // Address Base" in body
        assert "0x00001000,         // Address Length" in body
        assert "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive" in body
        assert f"0x{IRQ_BASE + i:08X}," in body
    com1 = dsl.split("Device (COM1)")[1].split("Device (")[0]
    assert 'EisaId ("PNP0501")' in com1 and "0x03F8" in com1 and "{4}" in com1
    ps2 = dsl.split("Device (PS2)")[1].split("Device (")[0]
    assert 'EisaId ("PNP0303")' in ps2 and "0x0060" in ps2 and "0x0064" in ps2
    vgen = dsl.split("Device (VGEN)")[1].split("Device (")[0]
    assert '"VMGENCTR"' in vgen and '_CID, "VM_Gen_Counter"' in vgen
    assert re.search(r"Name \(ADDR, Package \(0x02\)\s*\{\s*0x000F0000,\s*Zero", vgen)
    ged = dsl.split("Device (GED)")[1]
    assert '"ACPI0013"' in ged and f"0x{GED_IRQ:08X}," in ged
    assert f"If ((Arg0 == 0x{GED_IRQ:02X}))" in ged and "Notify (\\_SB.VGEN, 0x80)" in ged

    facp, out = iasl(d, "facp")
    clean(out)
    assert re.search(r"Revision : 06", facp)
    assert re.search(r"Hardware Reduced \(V5\) : 1", facp)
    assert re.search(r"8042 Present on ports 60/64 \(V2\) : 1", facp)
    assert re.search(r"Table Length : 00000114", facp)

    apic, out = iasl(d, "apic")
    clean(out)
    ids = [int(x, 16) for x in re.findall(r"Local Apic ID : ([0-9A-F]+)", apic)]
    assert ids == list(range(vcpus))
    assert apic.count("Processor Enabled : 1") == vcpus
    assert "I/O APIC" in apic and "Address : FEC00000" in apic

    xsdt, out = iasl(d, "xsdt")
    clean(out)
    assert len(re.findall(r"ACPI Table Address\s+\d : ", xsdt)) == 2

    # iasl does not disassemble an RSDP: check it here.
    rsdp = (d / "rsdp.dat").read_bytes()
    assert rsdp[:8] == b"RSD PTR " and len(rsdp) == 36
    assert sum(rsdp[:20]) % 256 == 0 and sum(rsdp) % 256 == 0
    assert rsdp[15] == 2 and struct.unpack_from("<I", rsdp, 20)[0] == 36


def test_iasl_reports_a_bad_checksum(tmp_path):
    """The check above can fail: iasl complains about a corrupted table."""
    d = dump(tmp_path, 1, 1)
    fadt = bytearray((d / "facp.dat").read_bytes())
    fadt[9] ^= 0xFF
    (d / "facp.dat").write_bytes(bytes(fadt))
    _, out = iasl(d, "facp")
    assert "Incorrect checksum" in out


def acpiexec(d, commands):
    tables = [str(d / f"{t}.dat") for t in ("dsdt", "facp", "apic")]
    # Commands on stdin: -b takes at most 1023 characters.
    r = subprocess.run(["acpiexec", *tables], input="\n".join(commands + ["quit"]) + "\n",
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    return out


def evaluations(out):
    """Split acpiexec's output per "Evaluating" command."""
    parts = re.split(r"^Evaluating (\S+)$", out, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def buffer_bytes(text):
    """The bytes of the [Buffer] acpiexec printed."""
    data = []
    for line in text.splitlines():
        # Short buffers share the line with their "[Buffer] Length" header.
        m = re.search(r"\s[0-9A-F]{4}: ((?:[0-9A-F]{2} )+)", line)
        if m:
            data += [int(b, 16) for b in m.group(1).split()]
    return bytes(data)


@pytest.mark.parametrize("vcpus,devices", [(1, 0), (4, 16), (32, 16)])
def test_acpiexec_evaluates_every_device(tmp_path, vcpus, devices):
    d = dump(tmp_path, vcpus, devices)
    names = ["COM1", "PS2_", *[f"VR{i:02d}" for i in range(devices)], "VGEN", "GED_"]
    cmds = []
    for n in names:
        cmds += [f"evaluate \\_SB_.{n}._HID", f"evaluate \\_SB_.{n}._STA"]
        if n != "VGEN":
            cmds.append(f"evaluate \\_SB_.{n}._CRS")
    cmds += ["evaluate \\_SB_.VGEN.ADDR", "evaluate \\_SB_.GED_._EVT 5",
             f"evaluate \\_SB_.GED_._EVT {GED_IRQ}"]
    out = acpiexec(d, cmds)
    assert "ACPI Error" not in out and "AE_" not in out.replace("AE_OK", ""), out
    assert f"{len(names)} Devices" in out
    ev = evaluations(out)
    for n in names:
        assert "[Integer] = 000000000000000F" in ev[f"\\_SB_.{n}._STA"], n
    assert "[Integer] = 000000000105D041" in ev["\\_SB_.COM1._HID"]
    assert "[Integer] = 000000000303D041" in ev["\\_SB_.PS2_._HID"]
    assert '[String] Length 08 = "VMGENCTR"' in ev["\\_SB_.VGEN._HID"]
    assert '[String] Length 08 = "ACPI0013"' in ev["\\_SB_.GED_._HID"]
    for i in range(devices):
        assert '[String] Length 08 = "LNRO0005"' in ev[f"\\_SB_.VR{i:02d}._HID"]
        crs = buffer_bytes(ev[f"\\_SB_.VR{i:02d}._CRS"])
        want = (struct.pack("<BHBII", 0x86, 9, 1, MMIO_BASE + 0x1000 * i, 0x1000)
                + struct.pack("<BHBBI", 0x89, 6, 3, 1, IRQ_BASE + i) + b"\x79\x00")
        assert crs == want, crs.hex()
    com1 = buffer_bytes(ev["\\_SB_.COM1._CRS"])
    assert com1 == bytes([0x47, 1, 0xF8, 3, 0xF8, 3, 0, 8, 0x22, 0x10, 0, 0x79, 0])
    addr = ev["\\_SB_.VGEN.ADDR"]
    assert "[Package] Contains 2 Elements" in addr
    assert f"[Integer] = {VMGENID_ADDR:016X}" in addr and "[Integer] = 0000000000000000" in addr
    # The GED's _EVT notifies VGEN for its own GSI, and only for it.
    _, other, own = out.split("Evaluating \\_SB_.GED_._EVT")
    assert "Device Notify" not in other
    assert "Device Notify on [VGEN]" in own and "Value 0x80" in own
