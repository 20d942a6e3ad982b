"""The stripped Linux 6.1 vmlinux through both entries (PVH and 64-bit): each
test stops once the kernel has shown that it took our boot data (banner,
exact command line, e820 map, MP table, device entries), which takes seconds
here, where its ring-0 code is emulated. Linux booted to its userspace and
driving every device is tested in test_linux_e2e.py.
"""
import re
import subprocess

import pytest

from conftest import read_until

# noxsave/clearcpuid: this machine's instruction emulator lacks xsave, popcnt
# and smap (ENVIRONMENT.md); the monitor itself does not depend on them.
CMDLINE = ("console=ttyS0 earlyprintk=serial,ttyS0 noxsave clearcpuid=popcnt,smap "
           "reboot=k panic=-1 ember.test=linux")
MEM_MIB = 256


def boot_until(ember, vmlinux, protocol, needles, timeout=90, vcpus=1, extra=()):
    p = subprocess.Popen([str(ember), "--kernel", str(vmlinux), "--boot-protocol", protocol,
                          "--mem-mib", str(MEM_MIB), "--vcpus", str(vcpus), "--cmdline", CMDLINE,
                          *extra],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        # All needles, in any order: a lookahead per needle.
        pattern = "(?s)" + "".join(f"(?=.*{n})" for n in needles)
        m, text = read_until(p, pattern, timeout)
        if not m:
            pytest.fail(f"kernel output never showed {needles}:\n{text}")
        return text
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("protocol", ["pvh", "linux"])
def test_linux_takes_our_boot_data(ember, vmlinux, protocol):
    needles = [r"Linux version 6\.1", r"Kernel command line: .*ember\.test=linux",
               r"IOAPIC\[0\]"]
    text = boot_until(ember, vmlinux, protocol, needles)
    assert f"Command line: {CMDLINE}\n" in text
    e820 = re.findall(r"BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\w+)", text)
    usable = [(int(a, 16), int(b, 16)) for a, b, kind in e820 if kind == "usable"]
    assert usable == [(0, 0x9FBFF), (0x100000, (MEM_MIB << 20) - 1)], e820
    reserved = [(int(a, 16), int(b, 16)) for a, b, kind in e820 if kind == "reserved"]
    assert any(a == 0x9FC00 for a, _ in reserved), e820
    assert "found SMP MP-table at [mem 0x0009fc00-0x0009fc0f]" in text
    assert "MPTABLE: OEM ID: EMBER" in text


def test_linux_sees_every_vcpu_in_the_mp_table(ember, vmlinux):
    text = boot_until(ember, vmlinux, "pvh", [r"Processors: 4", r"smpboot: Allowing 4 CPUs"],
                      vcpus=4)
    for cpu in range(4):
        assert f"Processor #{cpu}" in text


@pytest.mark.parametrize("protocol", ["pvh", "linux"])
def test_linux_gets_virtio_mmio_devices(ember, vmlinux, protocol, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * (1 << 20))
    devs = "virtio_mmio.device=4K@0xd0001000:5 virtio_mmio.device=4K@0xd0002000:6"
    text = boot_until(ember, vmlinux, protocol, [r"Kernel command line: .*0xd0002000:6"],
                      extra=["--drive", f"path={disk},id=a", "--drive", f"path={disk},id=b,ro=on"])
    assert f"Command line: {CMDLINE} {devs}\n" in text
