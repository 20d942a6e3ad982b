#!/usr/bin/env bash
# Linux benchmark: boot and snapshot restore of our Linux guest, ember vs
# QEMU -M microvm in the same run (several minutes: the guest kernel's
# ring-0 code is emulated on ember's machines).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/linux.py "$@"
