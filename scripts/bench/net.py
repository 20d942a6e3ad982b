#!/usr/bin/python3
"""Net benchmark: frames per second through ember's virtio-net device
(build/bench/net-harness, fake guest memory, real TAP) beside two plain
host peers on the same frames, in a network namespace made for the run:
TAP-to-TAP forwarding through AF_PACKET raw sockets (the reference), and a
bare TAP fd (the floor: the TAP alone). Each configuration runs --reps
times per contender, interleaved."""
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
    args = ["fwd", "tap1"] if who == "fwd" else [direction, who]
    out = subprocess.run(["ip", "netns", "exec", ns, harness, "tap0", *args, str(size), str(secs)],
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
        for tap in ("tap0", "tap1"):
            sh("ip", "netns", "exec", ns, "ip", "tuntap", "add", "dev", tap, "mode", "tap")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", tap, "up")
        print(f"net benchmark: {a.reps} runs x {a.seconds:g} s each, frames per second")
        print(f"  {'config':<22} {'contender':<10} {'min':>9} {'median':>9} {'p95':>9}")
        names = {"fwd": "TAP fwd", "base": "bare TAP", "ember": "ember"}
        ratios = []
        for direction in ("tx", "rx"):
            for size in (64, 1514):
                res = {"fwd": [], "base": [], "ember": []}
                for _ in range(a.reps):
                    for who in res:
                        res[who].append(run(ns, a.harness, direction, who, size, a.seconds))
                label = f"{direction.upper()} {size} B frames"
                for who, v in res.items():
                    print(f"  {label:<22} {names[who]:<10} {min(v):9.0f} {statistics.median(v):9.0f} {pct(v, 95):9.0f}")
                med = {k: statistics.median(v) for k, v in res.items()}
                ratios.append((label, med["ember"] / med["fwd"], med["ember"] / med["base"]))
        print("\n  ratio of medians      ember/TAP fwd  ember/bare TAP")
        for label, rf, rb in ratios:
            print(f"  {label:<22} {rf:13.2f} {rb:15.2f}")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
