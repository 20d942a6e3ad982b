#!/usr/bin/env bash
# Net benchmark (make bench): ember's virtio-net device vs a bare TAP fd.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build/bench/net-harness
exec /usr/bin/python3 scripts/bench/net.py "$@"
