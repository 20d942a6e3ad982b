#!/bin/bash
# Soak: many boot/teardown cycles and many API requests against real KVM
# guests; fails if ember leaks fds or memory, leaves a socket or a process
# behind, hangs, crashes or answers wrongly. Small by default (CI);
# --full for 1,000 cycles and 10,000 requests; --help for the rest.
# EMBER_BIN picks the binary (default build/ember; build/asan/ember or
# tests/integration/sanitized-ember for the sanitizer build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec /usr/bin/python3 "$root/tests/soak/soak.py" "$@"
