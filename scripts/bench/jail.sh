#!/usr/bin/env bash
# Isolation benchmark (make bench): jailer start-up cost and seccomp's cost on block I/O.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all build/bench/blk-harness
exec /usr/bin/python3 scripts/bench/jail.py "$@"
