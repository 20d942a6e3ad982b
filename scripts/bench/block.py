#!/usr/bin/python3
"""Block benchmark: ember's virtio-blk device (io_uring and sync engines)
driven from the host by build/bench/blk-harness, beside fio (io_uring
engine) on the same file, block size and queue depth, in one run.

Each configuration runs --reps times per contender, interleaved, for
--seconds each; the table shows min/median/p95 IOPS and the ratios of the
medians. "cache" runs use the page cache (file read in first, fio told not
to invalidate it); "direct" runs use O_DIRECT on both sides.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import pct  # noqa: E402


CONFIGS = [
    ("4k randread", "randread", 4096),
    ("128k read", "read", 131072),
    ("128k write", "write", 131072),
]


def fio(path, rw, bs, qd, seconds, direct):
    out = subprocess.run(
        ["fio", "--name=b", f"--filename={path}", "--ioengine=io_uring", f"--rw={rw}",
         f"--bs={bs}", f"--iodepth={qd}", f"--direct={direct}", "--invalidate=0",
         "--time_based", f"--runtime={seconds}", "--randrepeat=0", "--output-format=json"],
        capture_output=True, text=True, check=True).stdout
    job = json.loads(out)["jobs"][0]
    return job["write" if rw == "write" else "read"]["iops"]


def ember(harness, path, engine, rw, bs, qd, seconds, direct):
    out = subprocess.run([harness, path, engine, rw, str(bs), str(qd), str(seconds), str(direct)],
                         capture_output=True, text=True)
    m = re.search(r"iops=(\d+)", out.stdout)
    if out.returncode != 0 or not m:
        sys.exit(f"blk-harness failed: {out.stdout}{out.stderr}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", default="/var/tmp/ember-bench/disk.img")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1)
    ap.add_argument("--harness", default="build/bench/blk-harness")
    a = ap.parse_args()

    os.makedirs(os.path.dirname(a.file), exist_ok=True)
    if not os.path.exists(a.file) or os.path.getsize(a.file) != a.size_mib << 20:
        print(f"creating {a.file} ({a.size_mib} MiB of random data)")
        subprocess.run(["dd", "if=/dev/urandom", f"of={a.file}", "bs=1M",
                        f"count={a.size_mib}", "status=none"], check=True)

    print(f"block benchmark: {a.file}, {a.size_mib} MiB, {a.reps} runs x {a.seconds:g} s each, IOPS")
    print(f"  {'config':<26} {'contender':<10} {'min':>9} {'median':>9} {'p95':>9}")
    summary = []
    for direct in (0, 1):
        for name, rw, bs in CONFIGS:
            for qd in (1, 32):
                res = {"fio": [], "io_uring": [], "sync": []}
                for _ in range(a.reps):
                    if not direct:  # keep the file in the page cache
                        subprocess.run(["cat", a.file], stdout=subprocess.DEVNULL, check=True)
                    res["fio"].append(fio(a.file, rw, bs, qd, a.seconds, direct))
                    res["io_uring"].append(ember(a.harness, a.file, "uring", rw, bs, qd, a.seconds, direct))
                    res["sync"].append(ember(a.harness, a.file, "sync", rw, bs, qd, a.seconds, direct))
                label = f"{name} QD{qd} {'direct' if direct else 'cache'}"
                for who, v in res.items():
                    print(f"  {label:<26} {who:<10} {min(v):9.0f} {statistics.median(v):9.0f} {pct(v, 95):9.0f}")
                med = {k: statistics.median(v) for k, v in res.items()}
                summary.append((label, med["io_uring"] / med["fio"], med["io_uring"] / med["sync"]))
    print("\n  ratios of medians        io_uring/fio  io_uring/sync")
    for label, rf, rs in summary:
        print(f"  {label:<26} {rf:10.2f} {rs:13.2f}")


if __name__ == "__main__":
    main()
