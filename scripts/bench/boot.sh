#!/usr/bin/env bash
# Boot benchmark (make bench): ember vs QEMU -M microvm on the same guest.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/boot.py "$@"
