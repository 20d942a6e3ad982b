"""seccomp: every thread class runs under its own filter, and a call outside
it ends ember with status 148 and a log line naming the thread and call.
build/ember-test-hooks is a test-only build in which EMBER_TEST_VIOLATE=CLASS
makes that class's thread call mknodat (259) right after installing its
filter; the release build has no such hook."""
import glob
import json
import os
import subprocess
import time

import pytest

from api_client import Api, start_ember
from conftest import BUILD, ember_pid, read_until, run_ember

HOOKS = BUILD / "ember-test-hooks"
MKNODAT = 259
BAD_SYSCALL = 148


@pytest.fixture(scope="module")
def hooks(kvm):
    assert HOOKS.exists(), "build/ember-test-hooks is missing: run make test"
    return HOOKS


def violate(cls):
    return dict(os.environ, EMBER_TEST_VIOLATE=cls)


def expect_denied(r, thread):
    assert r.returncode == BAD_SYSCALL, (r.returncode, r.stdout, r.stderr)
    assert f"system call {MKNODAT} denied on the {thread} thread" in r.stderr, r.stderr


def test_vmm_thread(hooks, guest):
    r = subprocess.run([str(hooks), "--kernel", str(guest("hello.elf")), "--cmdline", "cad=1"],
                       env=violate("vmm"), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    expect_denied(r, "main")


def test_vcpu_thread(hooks, guest):
    r = subprocess.run([str(hooks), "--kernel", str(guest("hello.elf")), "--cmdline", "exit=0"],
                       env=violate("vcpu"), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    expect_denied(r, "vcpu0")
    assert "Hello from the ember guest" not in r.stdout  # before any guest code


def test_api_thread(hooks, tmp_path):
    sock = str(tmp_path / "api.sock")
    p = start_ember(hooks, sock, env=violate("api"))
    try:
        with pytest.raises(Exception):
            Api(sock).call("GET", "/")  # the filter goes on before the request is served
        assert p.wait(timeout=20) == BAD_SYSCALL
        err = p.stderr.read().decode()
        assert f"system call {MKNODAT} denied on the api thread" in err, err
    finally:
        p.kill()
        p.wait()


def test_uffd_thread(hooks, ember, guest, tmp_path):
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock, "--kernel", str(guest("hello.elf")), "--cmdline", "tick=3000000")
    try:
        assert read_until(p, r"ticking\n", 20)[0]
        api = Api(sock)
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        st, mem = tmp_path / "st", tmp_path / "mem"
        assert api.call("PUT", "/snapshot/create", {"snapshot_path": str(st),
                                                    "mem_file_path": str(mem)})[0] == 204
    finally:
        p.kill()
        p.wait()
    r = subprocess.run([str(hooks), "--no-api", "--restore", str(st), "--mem", str(mem), "--uffd"],
                       env=violate("uffd"), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    expect_denied(r, "uffd")


def test_every_thread_is_filtered(ember, guest, tmp_path):
    """/proc shows a seccomp filter (mode 2) on every thread of a running VM."""
    sock = str(tmp_path / "api.sock")
    p = start_ember(ember, sock, "--kernel", str(guest("hello.elf")), "--cmdline", "cad=1",
                    "--vcpus", "2")
    try:
        assert read_until(p, r"waiting for ctrl-alt-del\n", 20)[0]
        assert Api(sock).call("GET", "/")[0] == 200  # the HTTP thread has served
        modes = {}
        for status in glob.glob(f"/proc/{ember_pid(p)}/task/*/status"):
            fields = dict(line.split(":", 1) for line in open(status) if ":" in line)
            modes[fields["Name"].strip()] = (fields["Seccomp"].strip(),
                                             int(fields.get("Seccomp_filters", "0")))
        print(modes)
        assert {"vcpu0", "vcpu1"} <= set(modes)
        for name, (mode, count) in modes.items():
            assert mode == "2" and count >= 1, (name, mode, count)
    finally:
        p.kill()
        p.wait()


def test_no_seccomp(hooks, guest):
    """Without filters the violating call just fails (ENOENT) and the guest runs."""
    r = subprocess.run([str(hooks), "--no-seccomp", "--kernel", str(guest("hello.elf")),
                        "--cmdline", "exit=0"], env=violate("vcpu"), capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "Hello from the ember guest" in r.stdout


def test_custom_filter_file(ember, guest, tmp_path):
    policy = open(BUILD.parent / "resources/seccomp/x86_64.policy").read()
    # The vCPU section without KVM_RUN: the first KVM_RUN is denied.
    head, vcpu = policy.split("[vcpu]")
    vcpu = "\n".join(x for x in vcpu.splitlines() if not x.startswith("ioctl arg1==KVM_RUN"))
    custom = head + "[vcpu]" + vcpu
    assert custom.count("KVM_RUN") == policy.count("KVM_RUN") - 1
    f = tmp_path / "policy"
    f.write_text(custom)
    r = run_ember(ember, "--seccomp-filter", f, "--kernel", guest("hello.elf"), "--cmdline", "exit=0",
                  timeout=30)
    assert r.returncode == BAD_SYSCALL, r.stderr
    assert "system call 16 denied on the vcpu0 thread" in r.stderr  # 16: ioctl


@pytest.mark.parametrize("text,words", [
    ("[vmm]\nfrobnicate\n", "unknown system call 'frobnicate'"),
    ("[vmm]\nioctl arg1==NOT_A_CONSTANT\n", "bad condition 'arg1==NOT_A_CONSTANT'"),
    ("[vmm]\nioctl arg9==1\n", "bad condition 'arg9==1'"),
    ("[vmm]\nread\n", "no [api] section"),
    ("", "no [vmm] section"),
])
def test_bad_filter_file(ember, guest, tmp_path, text, words):
    f = tmp_path / "policy"
    f.write_text(text)
    r = run_ember(ember, "--seccomp-filter", f, "--kernel", guest("hello.elf"), timeout=30)
    assert r.returncode == 64, r.stderr
    assert words in r.stderr, r.stderr
    r = run_ember(ember, "--seccomp-filter", tmp_path / "missing", "--kernel", guest("hello.elf"),
                  timeout=30)
    assert r.returncode == 64 and "cannot read" in r.stderr


def test_pause_resume_2000_times_under_io_uring_block_io(ember, guest, tmp_path):
    """A guest doing io_uring block I/O, paused and resumed 2,000 times over
    the API with the filters on: the VMM thread's interrupted timed waits
    are restarted through restart_syscall, which every thread's filter must
    allow (ember once died with 148 after a few hundred cycles)."""
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    sock = str(tmp_path / "api.sock")
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("blk.elf")), "boot_args": "mode=2"},
        "drives": [{"drive_id": "d0", "path_on_host": str(disk), "is_root_device": False,
                    "is_read_only": False, "io_engine": "Async"}],
    }))
    p = start_ember(ember, sock, "--config-file", cfg)
    api = Api(sock)
    try:
        assert read_until(p, r"blk: pass 1 ok\n", 30)[0]
        for i in range(2000):
            st, r = api.call("PATCH", "/vm", {"state": "Paused"})
            assert st == 204, (i, r)
            st, r = api.call("PATCH", "/vm", {"state": "Resumed"})
            assert st == 204, (i, r)
        # Still alive, still doing correct I/O.
        m, text = read_until(p, r"blk: pass (\d+) (ok|failed)\n", 30)
        m2, text = read_until(p, r"blk: pass (\d+) (ok|failed)\n", 30)
        assert m2 and m2.group(2) == "ok", text
        assert p.poll() is None
    finally:
        api.close()
        p.kill()
        _, err = p.communicate()
        assert b"denied" not in err, err.decode()
