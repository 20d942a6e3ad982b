"""ember-jailer: ember in a chroot with its own mount (and pid) namespace,
in cgroups, as an unprivileged uid, under its seccomp filters."""
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from api_client import Api
from conftest import BUILD, EMBER

JAILER = BUILD / "ember-jailer"
NOBODY = 65534


def cg_v1(ctl, jid, parent="ember"):
    return f"/sys/fs/cgroup/{ctl}/{parent}/{jid}"


def cgroup2_root():
    for line in open("/proc/mounts"):
        dev, path, kind = line.split()[:3]
        if kind == "cgroup2":
            return path
    return None


class Jail:
    def __init__(self, ember, base, *jail_args, ember_args=("--api-sock", "/api.sock"), jid=None,
                 uid=NOBODY, exec_file=None):
        exec_file = exec_file or EMBER  # the binary itself, also when the suite runs jailed
        self.id = jid or "j" + uuid.uuid4().hex[:12]
        self.base = str(base)
        self.name = os.path.basename(exec_file)
        self.root = os.path.join(self.base, self.name, self.id, "root")
        self.started_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.p = subprocess.Popen([str(JAILER), "--id", self.id, "--exec-file", str(exec_file),
                                   "--uid", str(uid), "--gid", str(uid),
                                   "--chroot-base-dir", self.base, *jail_args, "--", *ember_args],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        # Without --api-sock: Firecracker's default, in the jail's /run.
        self.sock = os.path.join(self.root, "api.sock" if "--api-sock" in ember_args
                                 else "run/firecracker.socket")

    def wait_sock(self, timeout=10):
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.sock):
            # A daemonizing jailer exits at once; otherwise it lives as long as ember.
            assert self.p.poll() is None or self.p.returncode == 0, self.p.stderr.read().decode()
            assert time.monotonic() < deadline, "the jailed API socket never appeared"
            time.sleep(0.01)
        return Api(self.sock)

    def put_file(self, src, name):
        dst = os.path.join(self.root, name)
        shutil.copy(src, dst)
        os.chown(dst, NOBODY, NOBODY)

    def ember_pid(self):
        """Host pid of the jailed ember (the jailer's child)."""
        out = subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True, text=True)
        return int(out.stdout.split()[0])

    def pids(self):
        """Host pids of processes whose root is this jail's."""
        try:
            ino = os.stat(os.path.join(self.root, self.name)).st_ino
        except FileNotFoundError:
            return []
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.stat(f"/proc/{pid}/root/{self.name}").st_ino == ino:
                    found.append(int(pid))
            except OSError:
                pass
        return found

    def close(self):
        for pid in self.pids():
            os.kill(pid, 9)
        self.p.kill()
        self.p.wait()
        time.sleep(0.05)
        shutil.rmtree(os.path.join(self.base, self.name, self.id), ignore_errors=True)
        for ctl in ("memory", "cpu", "pids"):
            if os.path.isdir(cg_v1(ctl, self.id, self.name)):
                os.rmdir(cg_v1(ctl, self.id, self.name))


@pytest.fixture
def base(tmp_path):
    # The jailed uid must reach its chroot: a world-traversable base directory.
    d = tmp_path / "jails"
    d.mkdir()
    for p in (tmp_path, d):
        os.chmod(p, 0o755)
    return d


@pytest.fixture(scope="module")
def jailer(kvm):
    assert JAILER.exists(), "build/ember-jailer is missing: run make"
    return JAILER


def boot_hello(j, args="cad=1"):
    api = j.wait_sock()
    j.put_file(BUILD / "guest/hello.elf", "hello.elf")
    assert api.call("PUT", "/boot-source", {"kernel_image_path": "/hello.elf", "boot_args": args})[0] == 204
    assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    return api


def test_a_jailed_vm(jailer, ember, base):
    j = Jail(ember, base, "--cgroup", "memory.limit_in_bytes=268435456",
             "--cgroup", "cpu.cfs_quota_us=50000", "--new-pid-ns")
    try:
        api = j.wait_sock()
        # Host files are not there: only what was put in the jail.
        host_kernel = str(BUILD / "guest/hello.elf")
        code, resp = api.call("PUT", "/boot-source", {"kernel_image_path": host_kernel})
        assert code == 400 and "No such file" in resp["fault_message"], resp
        api = boot_hello(j)
        pid = j.ember_pid()
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
        assert status["Uid"].split()[:2] == [str(NOBODY)] * 2
        assert status["Gid"].split()[:2] == [str(NOBODY)] * 2
        assert status["NSpid"].split()[-1] == "1"  # pid 1 in its own pid namespace
        assert status["Seccomp"].strip() == "2"
        assert open(os.path.join(j.root, "ember.pid")).read().strip() == str(pid)
        cgroups = open(f"/proc/{pid}/cgroup").read()
        assert f"memory:/ember/{j.id}" in cgroups and f"cpu:/ember/{j.id}" in cgroups
        assert open(cg_v1("memory", j.id) + "/memory.limit_in_bytes").read().strip() == "268435456"
        assert open(cg_v1("cpu", j.id) + "/cpu.cfs_quota_us").read().strip() == "50000"
        # Its root is the chroot; its mount namespace is not ours.
        assert os.readlink(f"/proc/{pid}/root") == "/"
        assert os.stat(f"/proc/{pid}/root/ember").st_size == os.stat(EMBER).st_size
        assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        assert j.p.wait(timeout=20) == 0
        assert b"waiting for ctrl-alt-del" in j.p.stdout.read()
    finally:
        j.close()


def test_jail_holds_only_ember_and_device_nodes(jailer, ember, base):
    """ember is one static executable: its jail holds that file, the
    device nodes, the API socket and /run, and nothing else (no loader, no
    libraries)."""
    j = Jail(ember, base)
    try:
        assert j.wait_sock().call("GET", "/")[0] == 200
        found = set()
        for d, dirs, files in os.walk(j.root):
            for name in dirs + files:
                found.add(os.path.relpath(os.path.join(d, name), j.root))
        assert found == {j.name, "api.sock", "run", "dev", "dev/kvm", "dev/net", "dev/net/tun",
                         "dev/urandom", "dev/null", "dev/userfaultfd"}, found
    finally:
        j.close()


def test_network_namespace(jailer, ember, base):
    ns = f"ember-jail-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        j = Jail(ember, base, "--netns", f"/var/run/netns/{ns}")
        try:
            j.wait_sock()
            pid = j.ember_pid()
            assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/var/run/netns/{ns}").st_ino
        finally:
            j.close()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_cgroup_v2(jailer, ember, base):
    root = cgroup2_root()
    if not root:
        pytest.skip("no cgroup2 hierarchy is mounted on this machine")
    j = Jail(ember, base, "--cgroup-version", "2", "--parent-cgroup", "ember-test")
    try:
        j.wait_sock()
        pid = j.ember_pid()
        assert f"0::/ember-test/{j.id}" in open(f"/proc/{pid}/cgroup").read()
    finally:
        j.close()
        for d in (f"{root}/ember-test/{j.id}", f"{root}/ember-test"):
            if os.path.isdir(d):
                os.rmdir(d)
    controllers = open(f"{root}/cgroup.controllers").read().split()
    if "memory" not in controllers or "cpu" not in controllers:
        # Asking for memory.max where v2 has no memory controller is a clear error.
        j = Jail(ember, base, "--cgroup-version", "2", "--parent-cgroup", "ember-test",
                 "--cgroup", "memory.max=268435456")
        out, err = j.p.communicate(timeout=20)
        assert j.p.returncode == 2 and b"memory controller" in err, err
        assert not os.path.exists(os.path.join(base, "ember", j.id))
        assert not os.path.exists(f"{root}/ember-test/{j.id}")
        print(f"cgroup v2 here offers {controllers or 'no controllers'} (memory and cpu are "
              "bound to v1): memory.max/cpu.max cannot be applied, only refused clearly")


def test_ten_jails_at_once(jailer, ember, base):
    jails = [Jail(ember, base, "--cgroup", "memory.limit_in_bytes=268435456") for _ in range(10)]
    try:
        apis = [boot_hello(j) for j in jails]
        for api in apis:
            assert api.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        for j in jails:
            assert j.p.wait(timeout=30) == 0, j.p.stderr.read()
            assert b"waiting for ctrl-alt-del" in j.p.stdout.read()
    finally:
        for j in jails:
            j.close()


def test_daemonize(jailer, ember, base):
    j = Jail(ember, base, "--daemonize")
    try:
        assert j.p.wait(timeout=10) == 0  # the jailer returns; ember goes on
        api = j.wait_sock()
        assert api.call("GET", "/")[1]["state"] == "Not started"
        (pid,) = j.pids()
        assert os.getsid(pid) == pid  # its own session, no terminal
        assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
    finally:
        j.close()


@pytest.mark.parametrize("args,words", [
    (["--id", "a/b"], "--id must be 1 to 64 characters"),
    (["--id", ".."], "--id must be 1 to 64 characters"),
    (["--id", "x" * 65], "--id must be 1 to 64 characters"),
    (["--exec-file", "/nonexistent/ember"], "--exec-file '/nonexistent/ember'"),
    (["--netns", "/var/run/netns/no-such-ns"], "--netns '/var/run/netns/no-such-ns'"),
    (["--uid", "-1"], "--uid must be a number"),
    (["--gid", "zero"], "--gid must be a number"),
    (["--resource-limit", "no-file=lots"], "--resource-limit must be a number"),
    (["--resource-limit", "no-file=-1"], "--resource-limit must be a number"),
    (["--resource-limit", "nproc=10"], "unknown resource 'nproc'"),
    (["--uid", "4294967297"], "--uid must be at most 4294967294"),  # not uid 1
    (["--gid", "4294967295"], "--gid must be at most 4294967294"),
    (["--uid", "99999999999999999999999"], "--uid must be a number"),
    (["--cgroup", "memory.no_such_file=1"], "cgroup file 'memory.no_such_file' does not exist"),
    # The jail holds no loader or libraries: only static executables run there.
    (["--exec-file", "/usr/bin/python3"], "'/usr/bin/python3' is dynamically linked"),
    (["--exec-file", str(Path(__file__).parent / "jailed-ember")], "is not a 64-bit ELF executable"),
])
def test_bad_input_leaves_nothing(jailer, ember, base, args, words):
    jid = "bad" + uuid.uuid4().hex[:8]
    argv = {"--id": jid, "--exec-file": str(EMBER), "--uid": str(NOBODY), "--gid": str(NOBODY)}
    for k, v in zip(args[::2], args[1::2]):
        if k in argv:
            argv[k] = v
        else:
            argv.setdefault("extra", []).extend([k, v])
    cmd = [str(JAILER), "--chroot-base-dir", str(base)]
    for k, v in argv.items():
        cmd += v if k == "extra" else [k, v]
    r = subprocess.run(cmd + ["--", "--api-sock", "/api.sock"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr, r.stderr
    assert not (base / "ember").exists() or not os.listdir(base / "ember")
    if "/" not in argv["--id"] and ".." not in argv["--id"]:
        for ctl in ("memory", "cpu"):
            assert not os.path.exists(cg_v1(ctl, argv["--id"]))


def launch_args(pid):
    """What the jailer put before the user's arguments in ember's argv."""
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
    return [a.decode() for a in argv]


def limits(pid, name):
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith(name):
            return line[len(name):].split()[:2]
    raise KeyError(name)


def test_firecracker_launch_contract(jailer, ember, base):
    """As Firecracker's jailer (docs/jailer.md): ember is exec'd with --id,
    --start-time-us, --start-time-cpu-us and --parent-cpu-time-us before
    the user's arguments; it reports the id in GET / and its start-up times
    in metrics; the no-file limit defaults to 2048; without --api-sock the
    API is at <root>/run/firecracker.socket; uid and gid 0 are accepted
    (Kata Containers runs the jailer so)."""
    j = Jail(ember, base, uid=0, ember_args=("--metrics-path", "/metrics.json"))
    try:
        j.wait_sock()
        assert j.sock.endswith("/root/run/firecracker.socket")
        pid = j.ember_pid()
        # The same socket by a path short enough for AF_UNIX (108 bytes).
        api = Api(f"/proc/{pid}/root/run/firecracker.socket")
        argv = launch_args(pid)
        assert argv[0] == "ember" and argv[1:3] == ["--id", j.id], argv
        assert [argv[3], argv[5], argv[7]] == ["--start-time-us", "--start-time-cpu-us",
                                               "--parent-cpu-time-us"], argv
        assert argv[9:] == ["--metrics-path", "/metrics.json"], argv
        start, start_cpu, parent_cpu = int(argv[4]), int(argv[6]), int(argv[8])
        assert j.started_us <= start, "the start time is taken by the jailer, after we ran it"
        assert 0 <= start_cpu <= parent_cpu < 2_000_000, argv
        code, info = api.call("GET", "/")
        assert code == 200 and info["id"] == j.id, info
        assert api.call("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
        elapsed = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000 - start
        line = json.loads(open(os.path.join(j.root, "metrics.json")).read().splitlines()[-1])
        wall = line["api_server"]["process_startup_time_us"]
        cpu = line["api_server"]["process_startup_time_cpu_us"]
        assert 0 < wall <= elapsed, (wall, elapsed)
        assert parent_cpu < cpu < parent_cpu + 2_000_000, (cpu, parent_cpu)
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
        assert status["Uid"].split()[:2] == ["0", "0"] and status["Gid"].split()[:2] == ["0", "0"]
        assert limits(pid, "Max open files") == ["2048", "2048"]
        assert os.stat(os.path.join(j.root, "run")).st_mode & 0o777 == 0o700
    finally:
        j.close()


@pytest.mark.parametrize("limit,expect", [
    (["--resource-limit", "no-file=1024"], ["1024", "1024"]),
    (["--resource-limit", "fsize=1048576"], ["2048", "2048"]),  # no-file keeps its default
])
def test_no_file_limit(jailer, ember, base, limit, expect):
    j = Jail(ember, base, *limit)
    try:
        j.wait_sock()
        assert limits(j.ember_pid(), "Max open files") == expect
    finally:
        j.close()


def test_parent_cgroup_is_the_exec_file_name(jailer, ember, base, tmp_path):
    """Firecracker's default parent cgroup: the exec file's name, as its jail
    directory is."""
    exe = tmp_path / "firecracker"
    shutil.copy(EMBER, exe)
    j = Jail(ember, base, "--cgroup", "cpu.cfs_quota_us=50000", exec_file=exe)
    try:
        j.wait_sock()
        assert f"cpu:/firecracker/{j.id}" in open(f"/proc/{j.ember_pid()}/cgroup").read()
        assert open(cg_v1("cpu", j.id, "firecracker") + "/cpu.cfs_quota_us").read().strip() == "50000"
    finally:
        j.close()
        if os.path.isdir(cg_v1("cpu", "", "firecracker")):
            os.rmdir(cg_v1("cpu", "", "firecracker"))


def test_jailer_version_and_help(jailer):
    """Firecracker's jailer's first line, then ember-jailer's own version."""
    r = subprocess.run([str(JAILER), "--version"], capture_output=True, text=True, timeout=10)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 2, r.stdout
    assert re.fullmatch(r"Jailer v\d+\.\d+\.\d+\S*", lines[0]), r.stdout
    assert re.fullmatch(r"ember-jailer v\d+\.\d+\.\d+", lines[1]), r.stdout
    v = subprocess.run([str(EMBER), "--version"], capture_output=True, text=True, timeout=10)
    assert lines[0].split()[1] == v.stdout.split()[1], "jailer and ember name one API level"
    r = subprocess.run([str(JAILER), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--exec-file PATH" in r.stdout and lines[0] in r.stdout
