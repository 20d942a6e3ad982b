#!/usr/bin/env bash
# vsock benchmark (make bench): ember's virtio-vsock device vs a UDS socketpair.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build/bench/vsock-harness
exec /usr/bin/python3 scripts/bench/vsock.py "$@"
