#!/usr/bin/env bash
# Function benchmark: a fresh ember VM per request (ember-fn serve) beside the
# same handler as a plain host process per request and QEMU -incoming.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s all
mkdir -p build/bench
cc -O2 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -o build/bench/fn-load scripts/bench/fn_load.c -lpthread
# The examples' own handler source, built for the host (scripts/bench/fn-host/fn.h).
for f in echo sha256; do
	extra=; [ $f = sha256 ] && extra=guest/kit/sha256.c
	cc -O2 -static -std=gnu11 -Wall -Wextra -Werror -Iscripts/bench/fn-host -Iguest/kit \
		-o build/bench/fn-$f-host guest/examples/$f.c $extra
done
exec /usr/bin/python3 scripts/bench/fn.py "$@"
