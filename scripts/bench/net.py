#!/usr/bin/python3
"""Net benchmark: frames per second through ember's virtio-net device
(build/bench/net-harness, fake guest memory, real TAP) beside the same
frames through a bare TAP fd, in a network namespace made for the run.
Each configuration runs --reps times per side, interleaved."""
import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import pct  # noqa: E402


def sh(*a):
    subprocess.run(a, check=True, capture_output=True)


def run(ns, harness, direction, who, size, secs):
    out = subprocess.run(["ip", "netns", "exec", ns, harness, "tap0", direction, who, str(size), str(secs)],
                         capture_output=True, text=True)
    m = re.search(r"pps=(\d+)", out.stdout)
    if out.returncode or not m:
        sys.exit(f"net-harness failed: {out.stdout}{out.stderr}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1)
    ap.add_argument("--harness", default="build/bench/net-harness")
    a = ap.parse_args()
    ns = f"ember-bench-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "netns", "exec", ns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "tap0", "up")
        print(f"net benchmark: {a.reps} runs x {a.seconds:g} s each, frames per second")
        print(f"  {'config':<22} {'contender':<10} {'min':>9} {'median':>9} {'p95':>9}")
        ratios = []
        for direction in ("tx", "rx"):
            for size in (64, 1514):
                res = {"base": [], "ember": []}
                for _ in range(a.reps):
                    for who in res:
                        res[who].append(run(ns, a.harness, direction, who, size, a.seconds))
                label = f"{direction.upper()} {size} B frames"
                for who, v in res.items():
                    name = "bare TAP" if who == "base" else "ember"
                    print(f"  {label:<22} {name:<10} {min(v):9.0f} {statistics.median(v):9.0f} {pct(v, 95):9.0f}")
                ratios.append((label, statistics.median(res["ember"]) / statistics.median(res["base"])))
        print("\n  ratio of medians (ember / bare TAP)")
        for label, r in ratios:
            print(f"  {label:<22} {r:6.2f}")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
