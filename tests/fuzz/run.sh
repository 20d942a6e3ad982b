#!/usr/bin/env bash
# Run each libFuzzer target for SECONDS; print executions and coverage per
# target; fail on any crash, leak, timeout or sanitizer report.
#   usage: tests/fuzz/run.sh BINDIR SECONDS TARGET...
# Seeds and regression inputs come from tests/fuzz/corpus/<target>/ (read
# only); what a run finds goes to build/fuzz/corpus/<target>/, and a failing
# input to build/fuzz/artifacts/ (add it to the seed corpus once fixed).
set -uo pipefail
cd "$(dirname "$0")/../.."
bindir=$1 seconds=$2
shift 2
work=build/fuzz
mkdir -p "$work/artifacts" "$work/logs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
printf '%-22s %10s %8s %8s %8s  %s\n' target runs exec/s cov ft result
for t in "$@"; do
	seeds=tests/fuzz/corpus/$t
	mkdir -p "$work/corpus/$t" "$seeds"
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	log=$work/logs/$t.log
	"$bindir/$t" "$work/corpus/$t" "$seeds" "${dict[@]}" -max_total_time="$seconds" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/$t-" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
	ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
	if [ "$rc" -eq 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
		result=ok
	else
		result="FAILED (exit $rc; log $log)"
		failed+=("$t")
	fi
	printf '%-22s %10s %8s %8s %8s  %s\n' "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
if [ ${#failed[@]} -gt 0 ]; then
	for t in "${failed[@]}"; do
		echo "== $t"
		grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==[0-9]+== ' \
			"$work/logs/$t.log" | head -60
	done
	echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: ${#@} target(s), ${seconds}s each: no findings"
