#!/usr/bin/env bash
# Restore benchmark (make bench): ember snapshot restore vs cold boot vs QEMU -incoming,
# then restore-run-teardown cycles per second (1-16 at a time) with their breakdown and
# an idle clone's memory, and the host's KVM VM create/close cost per irqchip set-up.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all build/bench/kvm-teardown build/bench/cycles-driver
/usr/bin/python3 scripts/bench/restore.py "$@"
/usr/bin/python3 scripts/bench/cycles.py
build/bench/kvm-teardown 100
