#!/usr/bin/python3
"""vsock benchmark: ember's virtio-vsock device (build/bench/vsock-harness:
fake guest memory on one side, a real Unix socket peer on the other) beside
a plain AF_UNIX socketpair carrying the same traffic between the same two
threads. Streams in both directions (MB/s) and 64-byte round trips (µs).
Each configuration runs --reps times per side, interleaved."""
import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import pct  # noqa: E402

CONFIGS = [("tx", "guest->host stream", "MB/s", "mbps"),
           ("rx", "host->guest stream", "MB/s", "mbps"),
           ("rtt", "64 B round trip", "us", "rtt_us")]


def run(harness, mode, who, secs, key):
    out = subprocess.run([harness, mode, who, str(secs)], capture_output=True, text=True, timeout=60)
    m = re.search(key + r"=([0-9.]+)", out.stdout)
    if out.returncode or not m:
        sys.exit(f"vsock-harness failed: {out.stdout}{out.stderr}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1)
    ap.add_argument("--harness", default="build/bench/vsock-harness")
    a = ap.parse_args()
    print(f"vsock benchmark: {a.reps} runs x {a.seconds:g} s each")
    print(f"  {'config':<20} {'unit':<5} {'contender':<11} {'min':>9} {'median':>9} {'p95':>9}")
    ratios = []
    for mode, label, unit, key in CONFIGS:
        res = {"base": [], "ember": []}
        for _ in range(a.reps):
            for who in res:
                res[who].append(run(a.harness, mode, who, a.seconds, key))
        for who, v in res.items():
            name = "socketpair" if who == "base" else "ember"
            print(f"  {label:<20} {unit:<5} {name:<11} {min(v):9.1f} {statistics.median(v):9.1f} {pct(v, 95):9.1f}")
        ratios.append((label, statistics.median(res["ember"]) / statistics.median(res["base"])))
    print("\n  ratio of medians (ember / socketpair; for round trips, higher is slower)")
    for label, r in ratios:
        print(f"  {label:<20} {r:6.2f}")


if __name__ == "__main__":
    main()
