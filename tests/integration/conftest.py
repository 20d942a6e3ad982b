"""Shared fixtures: paths to ember, the test guests and the guest kernel.

Tests boot real guests on /dev/kvm. Without it they skip, except under CI
(CI=true), where a missing /dev/kvm is a failure: CI must not go green by
skipping every boot.

With EMBER_SANITIZED=1 (`make test-asan`) every test runs the sanitizer build
build/asan/ember through tests/integration/sanitized-ember.

With EMBER_JAILED=1 (`make test-jailed`) every test runs ember through
ember-jailer as uid 65534 (tests/integration/jailed-ember): files the tests
make are created world-accessible so the jailed ember can use them, and
ember_pid() finds ember behind the jailer.
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
EMBER = BUILD / "ember"
GUESTS = BUILD / "guest"
JAILED = os.environ.get("EMBER_JAILED") == "1"
# make test-asan: ember built with ASan, UBSan and LeakSanitizer (build/asan).
SANITIZED = os.environ.get("EMBER_SANITIZED") == "1"
if JAILED:
    os.umask(0)  # disks, sockets and directories the tests make: usable by uid 65534


def ember_pid(p):
    """The pid of the ember that Popen @p started (behind the jailer when jailed)."""
    if not JAILED:
        return p.pid
    import time
    for _ in range(200):
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise RuntimeError("no ember behind the jailer")


if JAILED:
    # pytest makes its temporary directories 0700: open them (and their
    # parents under /tmp) to the jailed uid.
    from _pytest.tmpdir import TempPathFactory

    _mktemp = TempPathFactory.mktemp

    def _open_mktemp(self, *args, **kwargs):
        made = _mktemp(self, *args, **kwargs)
        p = made
        while str(p).startswith("/tmp/"):
            os.chmod(p, 0o777)
            p = p.parent
        return made

    TempPathFactory.mktemp = _open_mktemp


def _require_kvm():
    if os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return
    msg = "/dev/kvm is missing or not accessible: these tests boot real guests"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " (CI=true: failing instead of skipping)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session", autouse=True)
def _jail_dirs():
    """Jailed: each ember run leaves its jail directory; remove them at the end."""
    yield
    if JAILED:
        import shutil
        shutil.rmtree(os.environ.get("EMBER_JAIL_BASE", "/var/lib/ember-test-jails"),
                      ignore_errors=True)


@pytest.fixture(scope="session")
def kvm():
    _require_kvm()


@pytest.fixture(scope="session")
def ember(kvm):
    assert EMBER.exists(), "build/ember is missing: run make"
    if SANITIZED:
        assert (BUILD / "asan/ember").exists(), "build/asan/ember is missing: run make asan-build"
        return ROOT / "tests/integration/sanitized-ember"
    return ROOT / "tests/integration/jailed-ember" if JAILED else EMBER


@pytest.fixture(scope="session")
def guest():
    def path(name):
        p = GUESTS / name
        assert p.exists(), f"{p} is missing: run make"
        return p
    return path


@pytest.fixture(scope="session")
def vmlinux():
    """The stripped guest vmlinux, built (or found in the cache) by our script."""
    path = os.environ.get("EMBER_VMLINUX")
    if not path:
        out = subprocess.run([str(ROOT / "scripts/build-guest-kernel.sh")], check=True,
                             capture_output=True, text=True)
        path = out.stdout.strip().splitlines()[-1]
    assert os.path.exists(path), f"guest kernel {path} missing"
    return Path(path)


@pytest.fixture(scope="session")
def vmlinux_acpi():
    """The guest kernel built Firecracker's way (`build-guest-kernel.sh
    --acpi`: ACPI on, no MP table parser, no command-line virtio devices)."""
    path = os.environ.get("EMBER_VMLINUX_ACPI")
    if not path:
        out = subprocess.run([str(ROOT / "scripts/build-guest-kernel.sh"), "--acpi"], check=True,
                             capture_output=True, text=True)
        path = out.stdout.strip().splitlines()[-1]
    assert os.path.exists(path), f"guest kernel {path} missing"
    return Path(path)


def run_ember(ember, *args, timeout=60, input=None):
    """Run ember to completion; returns CompletedProcess with text output."""
    return subprocess.run([str(ember), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)


def read_until(proc, pattern, timeout):
    """Read proc.stdout until regex @pattern matches (on \\r\\n-normalised
    text) or @timeout seconds pass. Never blocks past the deadline. What was
    read past the match is kept for the next call on the same process.
    Returns (match or None, text searched)."""
    import re
    import select
    import time

    out = getattr(proc, "_ember_unread", b"")
    deadline = time.monotonic() + timeout
    while True:
        text = out.decode(errors="replace").replace("\r\n", "\n")
        m = re.search(pattern, text)
        left = deadline - time.monotonic()
        if m:
            proc._ember_unread = text[m.end():].encode()
            return m, text
        if left <= 0:
            proc._ember_unread = out
            return None, text
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                proc._ember_unread = out
                return None, text
            out += chunk
