#!/usr/bin/env bash
# valgrind_suite.sh - the integration suite once more with gbatch-collector and gbatch-processor
# under valgrind memcheck: any memory error or leak (definite, indirect or possible) fails it.
# Run by ctest under the label "valgrind" (tests/run.sh's valgrind stage), on the normal build.
#   valgrind_suite.sh COLLECTOR PROCESSOR EMIT STUB RING_WRITE DSD_RECV TEST_PROCESSOR_RING \
#       RING_OFFSETS
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
collector=$1 processor=$2 emit=$3 stub=$4 ring_write=$5 dsd_recv=$6 test_processor_ring=$7 ring_offsets=$8
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin" "$work/logs"

# wrap NAME REAL: a program of that name that runs REAL under memcheck; valgrind exits 99 on
# an error or a leak, and its report goes to logs/NAME.PID.log.
wrap() {
	cat >"$work/bin/$1" <<WRAP
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full \\
	--show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \\
	--log-file="$work/logs/$1.%p.log" "$2" "\$@"
WRAP
	chmod +x "$work/bin/$1"
}
wrap gbatch-collector "$collector"
wrap gbatch-processor "$processor"

export GBATCH_COLLECTOR=$work/bin/gbatch-collector GBATCH_PROCESSOR=$work/bin/gbatch-processor
export GBATCH_EMIT=$emit GBATCH_STUB_GEMINI=$stub GBATCH_RING_WRITE=$ring_write
export GBATCH_DSD_RECV=$dsd_recv GBATCH_RING_OFFSETS=$ring_offsets GBATCH_GUARANTEE_SCALE=0.1
fails=0
run() {
	echo "== valgrind: $*"
	"$@" || { echo "FAILED under valgrind: $*" >&2; fails=$((fails + 1)); }
}
run python3 "$here/collector_it.py"
run python3 "$here/dialect_it.py"
run python3 "$here/guarantees_it.py" Overload SigtermUnderLoad ProducerKills TargetFlapping \
	Segments ProcessorNeverBlocks
run bash "$here/processor_cli.sh" "$GBATCH_PROCESSOR" "$stub"
run "$test_processor_ring" "$GBATCH_PROCESSOR"

# a process that was killed leaves an empty report; anything else in one is a finding
for log in "$work"/logs/*.log; do
	[ -s "$log" ] || continue
	echo "== valgrind report $(basename "$log"):" >&2
	cat "$log" >&2
	fails=$((fails + 1))
done
n=$(find "$work/logs" -name '*.log' | wc -l)
echo "valgrind: $n processes checked, $fails failures"
[ "$n" -gt 0 ] && [ "$fails" -eq 0 ]
