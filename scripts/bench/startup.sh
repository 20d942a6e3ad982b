#!/usr/bin/env bash
# Start-up benchmark (make bench): exec -> API, exec -> first KVM_RUN,
# --version CPU time, idle clone RSS, seccomp filter size, binary size.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/startup.py "$@"
