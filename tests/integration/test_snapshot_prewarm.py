"""The pre-warmed KVM VM of a waiting `ember --api-sock`: a snapshot load or
an InstanceStart takes it. By default it is an empty KVM VM; shaped
(--prewarm-shape V,M) it has memory slots, irqchip, PIT, vCPU fds and
threads, taken when the memory size is the snapshot's and it has no more
vCPUs; any other snapshot still loads, on a VM built anew. A failed load leaves it for the next one; --no-prewarm
turns it off.
The guest is hello with tick=N: it prints '.' every N TSC cycles once it
runs at ring 3, so a '.' after the load means the restored guest runs."""
import json
import os
import re
import time

import pytest

from api_client import Api, start_ember
from conftest import ember_pid, read_until, run_ember

TICK = 30000
PREPARED = "KVM VM prepared in"
SHAPED = "(pre-warmed VM with slots, irqchip and vCPUs, kvm"
EMPTY = "(pre-warmed VM, kvm"
UNFIT = "(pre-warmed /dev/kvm, new VM, kvm"


def snapshot(ember, guest, tmp_path, vcpus, mib):
    """A Full snapshot of a ticking hello guest: (state path, memory path)."""
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(guest("hello.elf")), "boot_args": f"tick={TICK}"},
        "machine-config": {"vcpu_count": vcpus, "mem_size_mib": mib}}))
    sock = str(tmp_path / "snap.sock")
    p = start_ember(ember, sock, "--config-file", cfg)
    try:
        m, text = read_until(p, r"\.", 30)
        assert m, text
        api = Api(sock)
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        st, mem = tmp_path / "snap.state", tmp_path / "snap.mem"
        r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(st), "mem_file_path": str(mem)})
        assert r[0] == 204, r
    finally:
        p.kill()
        p.wait()
    return st, mem


def load_body(st, mem):
    return {"snapshot_path": str(st), "resume_vm": True,
            "mem_backend": {"backend_type": "File", "backend_path": str(mem)}}


def ticks_after_load(ember, tmp_path, st, mem, *args):
    """Load the snapshot on a waiting ember; returns its stderr once the
    restored guest has ticked."""
    sock = str(tmp_path / "load.sock")
    p = start_ember(ember, sock, "--level", "Debug", *args)
    try:
        r = Api(sock).call("PUT", "/snapshot/load", load_body(st, mem))
        assert r[0] == 204, r
        m, text = read_until(p, r"\.", 30)
        assert m, text
        # Exactly one KVM VM once the guest runs: an unfit pre-warmed one
        # is closed by then.
        pid = ember_pid(p)
        vms = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:  # an fd may close between the listing and the look
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:kvm-vm":
                    vms.append(fd)
            except FileNotFoundError:
                pass
        assert len(vms) == 1, vms
    finally:
        p.kill()
        _, err = p.communicate(timeout=10)
    return err.decode(errors="replace")


@pytest.mark.parametrize("vcpus,mib,args,used", [
    (1, 128, ("--prewarm-shape", "1,128"), SHAPED),
    (2, 256, ("--prewarm-shape", "2,256"), SHAPED),
    (2, 128, ("--prewarm-shape", "1,128"), SHAPED),  # vCPU 1 is added to vCPU 0
    (1, 256, ("--prewarm-shape", "1,128"), UNFIT),  # memory size differs
    (1, 128, ("--prewarm-shape", "2,128"), UNFIT),  # a vCPU too many
    (2, 256, ("--prewarm-shape", "none"), EMPTY),
    (1, 128, (), EMPTY),  # the default
])
def test_load_takes_what_fits(ember, guest, tmp_path, vcpus, mib, args, used):
    st, mem = snapshot(ember, guest, tmp_path, vcpus, mib)
    err = ticks_after_load(ember, tmp_path, st, mem, *args)
    assert PREPARED in err, err
    assert "snapshot load breakdown" in err and used in err, err
    assert ("does not fit this one" in err) == (used == UNFIT), err
    if used == UNFIT:
        assert f"({vcpus} vCPUs, {mib} MiB): building a new one" in err, err
    # A pre-warmed vCPU's CPUID was made for the shape's vCPU count: with
    # another count its topology differs and the load sets the VM's own.
    reset = "vCPU 0: its pre-warmed CPUID is not this VM's" in err
    assert reset == (used == SHAPED and args == ("--prewarm-shape", "1,128") and vcpus == 2), err


def test_shaped_prewarm_with_dirty_tracking_and_a_diff_snapshot(ember, guest, tmp_path):
    """The pre-registered slot gains KVM's dirty log in place: a Diff
    snapshot of the loaded VM works."""
    st, mem = snapshot(ember, guest, tmp_path, 1, 128)
    sock = str(tmp_path / "load.sock")
    p = start_ember(ember, sock, "--level", "Debug", "--prewarm-shape", "1,128")
    try:
        api = Api(sock)
        body = load_body(st, mem)
        body["track_dirty_pages"] = True
        assert api.call("PUT", "/snapshot/load", body)[0] == 204
        m, text = read_until(p, r"\.", 30)
        assert m, text
        assert api.call("PATCH", "/vm", {"state": "Paused"})[0] == 204
        r = api.call("PUT", "/snapshot/create", {"snapshot_path": str(tmp_path / "d.state"),
                                                 "mem_file_path": str(tmp_path / "d.mem"),
                                                 "snapshot_type": "Diff"})
        assert r[0] == 204, r
    finally:
        p.kill()
        _, err = p.communicate(timeout=10)
    assert SHAPED in err.decode(errors="replace")


def test_shaped_prewarm_with_userfaultfd(ember, guest, tmp_path):
    """Memory by ember's userfaultfd handler sits on the reserved range."""
    st, mem = snapshot(ember, guest, tmp_path, 1, 128)
    sock = str(tmp_path / "load.sock")
    p = start_ember(ember, sock, "--level", "Debug", "--prewarm-shape", "1,128")
    try:
        body = load_body(st, mem)
        body["mem_backend"]["backend_type"] = "Uffd"
        r = Api(sock).call("PUT", "/snapshot/load", body)
        assert r[0] == 204, r
        m, text = read_until(p, r"\.", 30)
        assert m, text
    finally:
        p.kill()
        _, err = p.communicate(timeout=10)
    assert SHAPED in err.decode(errors="replace")


@pytest.mark.parametrize("bad", ["", "1", "0,128", "33,128", "1,1", "1,", ",128", "a,b",
                                 "1,128,3", "-1,128", "1,-5", "1, 128", "none,128", "NONE",
                                 "1,99999999999999999999", "1,9999999999999"])
def test_prewarm_shape_garbage(ember, bad):
    r = run_ember(ember, "--api-sock", "/tmp/unused.sock", "--prewarm-shape", bad)
    assert r.returncode == 64 and "--prewarm-shape" in r.stderr, (bad, r.stderr)


def test_prewarm_shape_and_no_prewarm_exclude_each_other(ember):
    r = run_ember(ember, "--api-sock", "/tmp/unused.sock", "--no-prewarm",
                  "--prewarm-shape", "1,128")
    assert r.returncode == 64 and "exclude each other" in r.stderr, r.stderr


def test_no_prewarm_loads_the_same(ember, guest, tmp_path):
    st, mem = snapshot(ember, guest, tmp_path, 1, 128)
    err = ticks_after_load(ember, tmp_path, st, mem, "--no-prewarm")
    assert PREPARED not in err, err
    assert "snapshot load breakdown" in err and "(new VM, kvm" in err, err


def test_load_after_a_failed_load(ember, guest, tmp_path):
    st, mem = snapshot(ember, guest, tmp_path, 1, 128)
    sock = str(tmp_path / "load.sock")
    p = start_ember(ember, sock, "--level", "Debug", "--prewarm-shape", "1,128")
    try:
        api = Api(sock)
        code, resp = api.call("PUT", "/snapshot/load", load_body(st, tmp_path / "missing.mem"))
        assert code == 400 and "missing.mem" in resp["fault_message"], resp
        code, resp = api.call("PUT", "/snapshot/load", load_body(tmp_path / "missing.state", mem))
        assert code == 400 and "missing.state" in resp["fault_message"], resp
        # The pre-warmed VM survived both and serves this one.
        assert api.call("PUT", "/snapshot/load", load_body(st, mem))[0] == 204
        m, text = read_until(p, r"\.", 30)
        assert m, text
    finally:
        p.kill()
        _, err = p.communicate(timeout=10)
    err = err.decode(errors="replace")
    assert err.count(PREPARED) == 1 and SHAPED in err, err


def fds_after_boot(ember, guest, tmp_path, name, *args):
    """Boot hello through the API on a waiting ember; its open fds once the
    guest runs, and its stderr."""
    sock = str(tmp_path / f"{name}.sock")
    p = start_ember(ember, sock, "--level", "Debug", *args)
    try:
        api = Api(sock)
        assert api.call("PUT", "/boot-source", {"kernel_image_path": str(guest("hello.elf")),
                                                 "boot_args": "cad=1"})[0] == 204
        assert api.call("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        m, text = read_until(p, r"waiting for ctrl-alt-del\n", 20)
        assert m, text
        assert api.call("GET", "/")[1]["state"] == "Running"
        fds = sorted(os.readlink(f"/proc/{ember_pid(p)}/fd/{fd}")
                     for fd in os.listdir(f"/proc/{ember_pid(p)}/fd"))
        api.close()
        assert Api(sock).call("PUT", "/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
        assert p.wait(timeout=20) == 0
    finally:
        p.kill()
        _, err = p.communicate(timeout=10)
    return fds, err.decode(errors="replace")


@pytest.mark.parametrize("args", [(), ("--prewarm-shape", "1,128")])
def test_instance_start_on_a_prewarmed_ember(ember, guest, tmp_path, args):
    warm, err = fds_after_boot(ember, guest, tmp_path, "warm", *args)
    assert PREPARED in err, err
    cold, err = fds_after_boot(ember, guest, tmp_path, "cold", "--no-prewarm")
    assert PREPARED not in err, err
    # The same objects, none kept twice or lost: only inode numbers and the
    # socket paths (named after each run) may differ.
    def kinds(fds):
        return sorted(re.sub(r"\d+", "", f.replace("warm", "cold")) for f in fds)
    assert kinds(warm) == kinds(cold), (warm, cold)


def test_no_prewarm_takes_no_value(ember):
    r = run_ember(ember, "--api-sock", "/tmp/unused.sock", "--no-prewarm=yes")
    assert r.returncode == 64 and "--no-prewarm" in r.stderr, r.stderr


def thread_names(p):
    pid = ember_pid(p)
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            names.append(f.read().strip())
    return sorted(names)


@pytest.mark.parametrize("args,want", [(("--prewarm-shape", "1,128"), ["vcpu0"]),
                                       (("--prewarm-shape", "2,128"), ["vcpu0", "vcpu1"]),
                                       (("--prewarm-shape", "none"), []), ((), []),
                                       (("--no-prewarm",), [])])
def test_vcpu_threads_wait_before_the_load(ember, tmp_path, args, want):
    """A shaped pre-warm starts its vCPU threads ahead; they wait for a
    vCPU (and a waiting ember with them still answers and exits cleanly)."""
    sock = str(tmp_path / "w.sock")
    p = start_ember(ember, sock, *args)
    try:
        assert Api(sock).call("GET", "/")[0] == 200
        for _ in range(200):  # each thread names itself once it runs
            got = [n for n in thread_names(p) if n.startswith("vcpu")]
            if got == want:
                break
            time.sleep(0.01)
        assert got == want
    finally:
        p.terminate()
        assert p.wait(timeout=10) == 0
