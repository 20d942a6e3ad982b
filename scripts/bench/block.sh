#!/usr/bin/env bash
# Block benchmark (make bench): ember's virtio-blk engines vs fio.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build/bench/blk-harness
exec /usr/bin/python3 scripts/bench/block.py "$@"
