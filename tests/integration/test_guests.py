"""Boot the bundled test guests and check what they report."""
import re
import subprocess
import time

import pytest

from conftest import BUILD, run_ember

EXIT_OK = 0
EXIT_TRIPLE_FAULT = 70
EXIT_EMULATION = 71


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_hello_exit_status_comes_from_the_guest(ember, guest, code):
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--cmdline", f"exit={code}")
    assert r.returncode == code, r.stderr
    assert "Hello from the ember guest" in r.stdout
    assert f"cmdline: exit={code}\n" in r.stdout


def test_boot_timer_logs_boot_time(ember, guest):
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--boot-timer", "--level", "info")
    assert r.returncode == 0, r.stderr
    m = re.search(r"Guest-boot-time = (\d+) us .* (\d+) us since VM set-up", r.stderr)
    assert m, r.stderr
    assert int(m.group(2)) <= int(m.group(1))
    assert "first KVM_RUN" in r.stderr


def test_no_boot_timer_without_the_flag(ember, guest):
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--level", "info")
    assert r.returncode == 0
    assert "Guest-boot-time" not in r.stderr


def test_serial_to_file_and_none(ember, guest, tmp_path):
    out = tmp_path / "console.log"
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--serial", out)
    assert r.returncode == 0 and r.stdout == ""
    assert "Hello from the ember guest" in out.read_text()
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--serial", "none")
    assert r.returncode == 0 and r.stdout == ""


def test_serial_input_reaches_the_guest(ember, guest):
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--cmdline", "echo=11 exit=5",
                  input="hello ember")
    assert r.returncode == 5, r.stderr
    assert "echo: hello ember\n" in r.stdout


def test_serial_input_larger_than_the_fifo(ember, guest):
    # 200 bytes through a 64-byte FIFO: stdin reading pauses and resumes.
    data = "".join(chr(ord("a") + i % 26) for i in range(200))
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--cmdline", "echo=200", input=data)
    assert r.returncode == 0, r.stderr
    assert f"echo: {data}\n" in r.stdout


def test_i8042_reset_stops_cleanly(ember, guest):
    r = run_ember(ember, "--kernel", guest("hello.elf"), "--cmdline", "reset=1 exit=9",
                  "--level", "info")
    assert r.returncode == EXIT_OK, r.stderr
    assert "reset did not happen" not in r.stdout
    assert "i8042" in r.stderr


@pytest.mark.parametrize("vcpus", [1, 2, 4, 8, 32])
def test_smp_every_vcpu_checks_in(ember, guest, vcpus):
    r = run_ember(ember, "--kernel", guest("smp.elf"), "--vcpus", vcpus)
    assert r.returncode == 0, r.stdout + r.stderr
    want = (1 << vcpus) - 1
    assert f"smp: {vcpus} of {vcpus} vCPUs checked in, APIC id bitmap {want:#x}" in r.stdout


def test_triple_fault_exits_with_code_and_register_dump(ember, guest):
    r = run_ember(ember, "--kernel", guest("crash.elf"), timeout=30)
    assert r.returncode == EXIT_TRIPLE_FAULT, r.stderr
    assert "triple fault" in r.stderr
    assert re.search(r"rip=[0-9a-f]{16}", r.stderr)
    assert "cr3=" in r.stderr


def test_unbacked_instruction_fetch_exits_with_emulation_code(ember, guest):
    r = run_ember(ember, "--kernel", guest("crash.elf"), "--cmdline", "mode=1", timeout=30)
    assert r.returncode == EXIT_EMULATION, r.stderr
    assert "internal error" in r.stderr
    assert re.search(r"rip=[0-9a-f]{16}", r.stderr)


def test_ring3_loop_runs_at_native_speed(ember, guest):
    iters = 300_000_000
    host = subprocess.run([str(BUILD / "guest/ring3-checksum-host"), str(iters)],
                          capture_output=True, text=True, check=True).stdout
    want = re.search(r"checksum=(0x[0-9a-f]+)", host).group(1)
    host_s = float(re.search(r"seconds=([\d.]+)", host).group(1))
    t0 = time.monotonic()
    # Emulated at ~3 us per instruction this loop would take hours; the
    # timeout only catches that, the speed figure itself is printed.
    r = run_ember(ember, "--kernel", guest("ring3.elf"), "--cmdline", f"iters={iters}", timeout=120)
    guest_s = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ring3: cpl=3 iterations={iters} checksum={want}" in r.stdout
    print(f"ring-3 loop: guest {guest_s:.2f} s (whole VM) vs host {host_s:.2f} s")


def test_bzimage_guest_gets_a_correct_zero_page(ember, guest, tmp_path):
    initrd = tmp_path / "initrd.img"
    data = bytes((i * 37 + 11) & 0xFF for i in range(5000))
    initrd.write_bytes(data)
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xFFFFFFFFFFFFFFFF
    cmdline = "console=ttyS0 ember.test=bzimage"
    r = run_ember(ember, "--kernel", guest("bzimage-check.bzImage"), "--initrd", initrd,
                  "--cmdline", cmdline, "--mem-mib", "256", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "bzimage: header=0x53726448 loader=0xff" in out
    assert f"cmdline: {cmdline}\n" in out
    assert re.findall(r"e820: (0x[0-9a-f]+) (0x[0-9a-f]+) (\d)", out) == [
        ("0x0", "0x9fc00", "1"), ("0x9fc00", "0x400", "2"),
        ("0xe0000", "0x10000", "3"), ("0xf0000", "0x10000", "2"),  # ACPI tables, VMGenID
        ("0x100000", "0xff00000", "1")]
    m = re.search(r"initrd: addr=(0x[0-9a-f]+) size=(\d+) sum=(0x[0-9a-f]+)", out)
    assert m, out
    addr, size, got = int(m.group(1), 16), int(m.group(2)), int(m.group(3), 16)
    assert size == len(data) and got == s
    assert addr % 4096 == 0 and addr + size <= 256 << 20
