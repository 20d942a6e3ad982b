"""Linux built Firecracker's way (`build-guest-kernel.sh --acpi`: ACPI on,
no MP table parser, no `virtio_mmio.device=` parsing, VMGenID, virtio-rng)
on ember's ACPI tables.

Such a kernel finds its CPUs only in the MADT and its virtio-mmio devices
only in the DSDT, so everything it sees here came through ember's ACPI
tables. Two boots for the module (each costs a minute or more here):

- ember's default (ACPI tables plus the MP table and command-line entries,
  which this kernel must ignore) with 2 vCPUs, block, net, vsock and the
  entropy device: CPUs, devices, interrupts, ACPI's view, the hwrng;
- `--acpi-only` (no MP table, no command-line entries) with 1 vCPU, the
  same devices: the same checks, then a snapshot through the API and two
  clones restored from it, for VMGenID. One vCPU: a 2-vCPU guest runs
  without kvm-clock here (`nopv`, below), and its snapshots fare worse.

The legacy kernel under ember's defaults is covered by test_linux.py and
test_linux_e2e.py.
"""
import fcntl
import json
import os
import random
import re
import shutil
import time

import pytest

from linux_vm import (CMDLINE, HOST_IP, GUEST_IP, READY, BaseSnapshot, LinuxVM, base_config,
                      guest_rootfs, make_drives)
from vsock_host import echo_roundtrip, host_connect, read_line

BOOT_TIMEOUT = 300  # 2 vCPUs boot in about a minute here, when the host is quiet
RESTORE_TIMEOUT = 180


def vcpu_tsc_khz():
    """The TSC rate KVM gives a vCPU (KVM_GET_TSC_KHZ on a scratch VM)."""
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    try:
        vm = fcntl.ioctl(kvm, 0xAE01, 0)  # KVM_CREATE_VM
        try:
            vcpu = fcntl.ioctl(vm, 0xAE41, 0)  # KVM_CREATE_VCPU
            try:
                return fcntl.ioctl(vcpu, 0xAEA3, 0)  # KVM_GET_TSC_KHZ
            finally:
                os.close(vcpu)
        finally:
            os.close(vm)
    finally:
        os.close(kvm)


# The command line of linux_vm, adapted to a kernel on hardware-reduced ACPI
# (ember's FADT, as Firecracker's), which has no legacy IRQs: a device's IRQ
# is whatever GSI its _CRS names. So the i8042 must come from PNP (its
# PNP0303 device in the DSDT) rather than from the fixed IRQ 1 a legacy
# probe asks for, which such a kernel refuses (-EINVAL): no i8042.nopnp.
# And with more than one vCPU, `nopv` (README: KVM's paravirtual IPIs are
# hypercalls that never return on these machines) takes kvm-clock away,
# and hardware-reduced ACPI takes the PIT away: nothing is left to measure
# the TSC against, and the kernel would wait forever for its first tick, so
# it is told the vCPU's TSC rate. And RCU stall reports are off: after a
# pause, such a guest sees time jump, reports a stall and sends an NMI
# backtrace to the other vCPU, whose NMI entry runs an `lsl` this host's
# ring-0 emulator fails on (KVM internal error, ember exits 71). None of this
# is needed on a VMX/SVM host.
CMDLINE_ACPI = " ".join(w for w in CMDLINE.split() if w != "i8042.nopnp")


def acpi_cmdline(vcpus):
    if vcpus == 1:
        return CMDLINE_ACPI
    return (f"{CMDLINE_ACPI} nopv tsc_early_khz={vcpu_tsc_khz()} "
            "rcupdate.rcu_cpu_stall_suppress=1")


# virtio device IDs in sysfs, and how many of each base_config() and the
# entropy device give the guest.
DEVICES = {"0x0001": 1, "0x0002": 4, "0x0004": 1, "0x0013": 1}
# What ember's DSDT describes, by _HID, and how many of each.
ACPI_HIDS = {"LNRO0005": sum(DEVICES.values()), "ACPI0013": 1, "VMGENCTR": 1,
             "PNP0501": 1, "PNP0303": 1}
# Linux 6.1's add_vmfork_randomness(), called by the vmgenid driver when the
# generation ID changed (and the crng was ready).
RESEED = "crng reseeded due to virtual machine fork"
# How ACPICA reports trouble with the tables or the AML.
ACPI_TROUBLE = re.compile(r"ACPI (BIOS )?(Error|Warning|Exception)")


def acpi_boot(ember, vmlinux, d, vcpus, flags=()):
    """Boot @vmlinux with base_config()'s drives, NIC and vsock and the
    entropy device; returns the VM at its shell, with vm.boot_s set."""
    rootfs = guest_rootfs()
    make_drives(d)
    vsock = d / "boot.vsock"
    cfg = base_config(vmlinux, rootfs, d, vsock, vcpus=vcpus)
    cfg["boot-source"]["boot_args"] = f"{acpi_cmdline(vcpus)} ember.scenario=test"
    cfg["entropy"] = {}
    path = d / "vm.json"
    path.write_text(json.dumps(cfg))
    t0 = time.monotonic()
    vm = LinuxVM.start(ember, d, [*flags, "--config-file", path])
    try:
        vm.expect(READY, BOOT_TIMEOUT)
    except BaseException:
        vm.close()
        raise
    vm.boot_s = time.monotonic() - t0
    vm.vsock = str(vsock)
    return vm


def guest_lines(vm, cmd):
    return vm.sh(cmd)[1].splitlines()


def dmesg(vm):
    return vm.sh("dmesg")[1]


def check_cpus(vm, n):
    assert guest_lines(vm, "nproc") == [str(n)]
    assert guest_lines(vm, "cat /sys/devices/system/cpu/online") == ["0" if n == 1 else f"0-{n - 1}"]


def check_virtio_devices(vm):
    """Each device once, each on a virtio-mmio platform device that ACPI
    made (LNRO0005:NN), none from the command line."""
    lines = guest_lines(vm, "for d in /sys/bus/virtio/devices/*; do "
                            "echo $(cat $d/device) $(readlink -f $d); done")
    ids = [line.split()[0] for line in lines]
    assert {i: ids.count(i) for i in set(ids)} == DEVICES, lines
    for line in lines:
        assert "/LNRO0005:" in line.split()[1], lines


def check_acpi_devices(vm):
    lines = guest_lines(vm, "cat /sys/bus/acpi/devices/*/hid")
    for hid, n in ACPI_HIDS.items():
        assert lines.count(hid) == n, (hid, lines)
    # Bound to their drivers: virtio-mmio, the Generic Event Device, vmgenid.
    bound = guest_lines(vm, "ls -1 /sys/bus/platform/drivers/virtio-mmio "
                            "/sys/bus/platform/drivers/acpi-ged /sys/bus/acpi/drivers/vmgenid")
    assert sum(b.startswith("LNRO0005:") for b in bound) == ACPI_HIDS["LNRO0005"], bound
    assert "ACPI0013:00" in bound and "VMGENCTR:00" in bound, bound
    trouble = [line for line in dmesg(vm).splitlines() if ACPI_TROUBLE.search(line)]
    assert not trouble, "\n".join(trouble)


def check_root_and_data(vm):
    """Root (vda, read-only ext4) serves files; the data drive (vdb) takes
    a file system write that reads back after a sync."""
    _, out = vm.sh("grep ' / ' /proc/mounts; cat /sys/block/vda/size; "
                   "md5sum /bin/busybox | cut -c1-32")
    lines = out.splitlines()
    assert lines[0].split()[:3] in (["/dev/root", "/", "ext4"], ["/dev/vda", "/", "ext4"]), out
    assert int(lines[1]) > 0 and len(lines[2]) == 32, out
    vm.sh("mount -t ext4 /dev/vdb /mnt && echo acpi-data >/mnt/acpi && sync && "
          "echo 3 >/proc/sys/vm/drop_caches")
    assert guest_lines(vm, "cat /mnt/acpi") == ["acpi-data"]


# -- ember's default: ACPI, MP table and command line; 2 vCPUs ---------------

class TestEmberDefaults:
    """A class of its own, so that the 2-vCPU guest stops before the next
    boot (idle at its shell, it still kept most of a core busy here)."""

    @pytest.fixture(scope="class")
    def booted(self, ember, vmlinux_acpi, tmp_path_factory):
        vm = acpi_boot(ember, vmlinux_acpi, tmp_path_factory.mktemp("acpi"), 2)
        print(f"\nACPI kernel, ember's defaults, 2 vCPUs: ember start to shell in {vm.boot_s:.1f} s")
        yield vm
        vm.close()

    def test_the_kernel_takes_every_vcpu_from_the_madt(self, booted):
        check_cpus(booted, 2)

    def test_every_virtio_device_comes_once_from_the_dsdt(self, booted):
        """ember's default also lists the devices on the command line; this
        kernel ignores those entries, so each device exists once."""
        assert "virtio_mmio.device=" in booted.sh("cat /proc/cmdline")[1]
        check_virtio_devices(booted)

    def test_acpi_finds_every_described_device_without_errors(self, booted):
        check_acpi_devices(booted)

    def test_root_on_vda_and_the_data_drive_work(self, booted):
        check_root_and_data(booted)

    def test_network_and_vsock_interrupts_arrive(self, booted):
        """The NIC and the vsock device take their GSIs from the DSDT's
        interrupt resources: traffic both ways proves the routing."""
        booted.sh(f"ip addr add {GUEST_IP}/24 dev eth0 && ip link set eth0 up && "
                  f"ping -c 2 -W 10 {HOST_IP}", timeout=60)
        booted.send("ember-vsock echo 6000 1 &")
        booted.expect(r"echo: ready\n", 20)
        s = host_connect(booted.vsock, b"CONNECT 6000\n")
        assert read_line(s).startswith(b"OK ")
        data = random.Random(7).randbytes(64 << 10)
        assert echo_roundtrip(s, data, 60) == data
        s.close()

    def test_hwrng_is_virtio_and_readable(self, booted):
        assert guest_lines(booted, "cat /sys/class/misc/hw_random/rng_current") == ["virtio_rng.0"]
        assert guest_lines(booted, "head -c 4096 /dev/hwrng | wc -c") == ["4096"]


# -- --acpi-only, 1 vCPU; VMGenID across a snapshot ---------------------------

@pytest.fixture(scope="module")
def acpi_only(ember, vmlinux_acpi, tmp_path_factory):
    vm = acpi_boot(ember, vmlinux_acpi, tmp_path_factory.mktemp("acpi-only"), 1, ["--acpi-only"])
    print(f"\nACPI kernel, --acpi-only, 1 vCPU: ember start to shell in {vm.boot_s:.1f} s")
    yield vm
    vm.close()


def test_acpi_only_boots_and_finds_everything(acpi_only):
    """--acpi-only: no MP table and no command-line entries at all."""
    vm = acpi_only
    assert "virtio_mmio.device=" not in vm.sh("cat /proc/cmdline")[1]
    check_cpus(vm, 1)
    check_virtio_devices(vm)
    check_acpi_devices(vm)
    check_root_and_data(vm)
    assert guest_lines(vm, "head -c 64 /dev/hwrng | wc -c") == ["64"]


@pytest.fixture(scope="module")
def snapshot(acpi_only):
    """The --acpi-only guest, its crng initialised (a read of /dev/random
    waits for that) and its dmesg kept, snapshotted through the API; the
    original is then stopped and its drives kept as the golden copies each
    clone starts from."""
    vm = acpi_only
    if "acpi-data" not in vm.sh("cat /mnt/acpi", check=False)[1]:
        check_root_and_data(vm)  # run alone: mount the data drive as above
    vm.sh("head -c 16 /dev/random >/dev/null; sync", timeout=120)
    base = BaseSnapshot(vm.dir)
    base.before = dmesg(vm)
    st, r = vm.api.call("PATCH", "/vm", {"state": "Paused"})
    assert st == 204, r
    st, r = vm.api.call("PUT", "/snapshot/create",
                        {"snapshot_path": str(base.state), "mem_file_path": str(base.mem),
                         "snapshot_type": "Full"})
    assert st == 204, r
    base.taken = time.monotonic()
    vm.kill()
    (base.dir / "golden").mkdir()
    for name in BaseSnapshot.DRIVES:
        shutil.copyfile(base.dir / name, base.dir / "golden" / name)
    return base


def restore(ember, base, d, fresh_drives):
    """A clone of @base in a new ember, resumed at once, at its shell; with
    vm.answer_s, the time from the load to the shell's first answer. The
    drives go back to their snapshot-time state first if @fresh_drives."""
    d.mkdir()
    if fresh_drives:
        base.reset_drives()
    vm = LinuxVM.start(ember, d, [])
    vm.vsock = str(d / "v.sock")
    st, r = vm.api.call("PUT", "/snapshot/load",
                        {"snapshot_path": str(base.state),
                         "mem_backend": {"backend_type": "File", "backend_path": str(base.mem)},
                         "resume_vm": True, "vsock_override": {"uds_path": vm.vsock}})
    if st != 204:
        vm.close()
        raise AssertionError(f"snapshot load: {st} {r}")
    t0 = time.monotonic()
    try:
        vm.sh("true", timeout=RESTORE_TIMEOUT)
    except BaseException:
        vm.close()
        raise
    vm.answer_s = time.monotonic() - t0
    return vm


def wait_reseed(vm, timeout=20):
    """The restored guest's dmesg once the vmgenid notification is handled."""
    deadline = time.monotonic() + timeout
    while True:
        text = dmesg(vm)
        if RESEED in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_restored_clones_reseed_through_vmgenid(ember, snapshot, tmp_path):
    """On restore ember writes a new generation ID and raises the Generic
    Event Device's GSI; each clone's vmgenid driver sees the new ID and
    reseeds the crng, once. Two clones of one snapshot, running side by
    side on the same drives (they only read them), behave the same, draw
    different random bytes and their devices work; the last one ends ember
    cleanly on SendCtrlAltDel, through the i8042 that ACPI described (its
    PNP0303 device, keyboard IRQ and all: the VT keyboard handler reboots,
    reboot=k resets through the i8042).

    Both are restored at once after the snapshot: on these machines a clone
    of an older snapshot of this kernel stalls for a while (README)."""
    assert "crng init done" in snapshot.before
    assert RESEED not in snapshot.before
    clones = []
    try:
        for i in range(2):
            print(f"\nrestoring clone {i}, {time.monotonic() - snapshot.taken:.1f} s after the snapshot")
            clones.append(restore(ember, snapshot, tmp_path / f"c{i}", fresh_drives=i == 0))
        draws = []
        for i, vm in enumerate(clones):
            print(f"\nclone {i}: shell answered {vm.answer_s:.2f} s after the load")
            text = wait_reseed(vm)
            assert text.count(RESEED) == 1, text[-2000:]
            trouble = [line for line in text.splitlines() if ACPI_TROUBLE.search(line)]
            assert not trouble, "\n".join(trouble)
            check_cpus(vm, 1)
            assert guest_lines(vm, "head -c 64 /dev/hwrng | wc -c") == ["64"]
            assert guest_lines(vm, "cat /mnt/acpi") == ["acpi-data"]
            draws.append(vm.sh("head -c 16 /dev/urandom | od -An -tx1")[1])
        assert draws[0] != draws[1]
        vm = clones[-1]
        assert "i8042 KBD port at 0x60,0x64 irq" in dmesg(vm)
        st, r = vm.api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
        assert st == 204, r
        assert vm.wait_exit(60) == 0
    finally:
        for vm in clones:
            vm.close()
