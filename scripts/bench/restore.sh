#!/usr/bin/env bash
# Restore benchmark (make bench): ember snapshot restore vs cold boot vs QEMU -incoming.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all
exec /usr/bin/python3 scripts/bench/restore.py "$@"
