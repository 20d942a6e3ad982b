#!/usr/bin/env bash
# API benchmark (make bench): request latency and start to socket ready.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/api.py "$@"
