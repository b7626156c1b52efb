#!/usr/bin/env bash
# run.sh - runs every benchmark of tests/bench, each with its baseline in the same run, and
# prints one table: the ratios first (each figure against its baseline), then the absolute
# figures, with the machine's nproc, kernel and compiler. The README's benchmark table is this
# output, pasted whole. Not a test: nothing here is asserted, and it is not part of
# tests/run.sh. Builds build/normal (RelWithDebInfo, as tests/run.sh does) when needed.
#   tests/bench/run.sh [--quick]     --quick: smaller runs, for trying the script
# GBATCH_BUILD_ROOT moves the build tree (default build/ in the source tree). Each
# benchmark's whole output is kept in BUILD_ROOT/bench/<name>.out.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build_root=${GBATCH_BUILD_ROOT:-$src/build}
dir=$build_root/normal
out=$build_root/bench
quick=0
case "${1:-}" in
'') ;;
--quick) quick=1 ;;
*)
	echo "usage: tests/bench/run.sh [--quick]" >&2
	exit 2
	;;
esac

"$src/deploy/install-deps.sh" test
mkdir -p "$out"
cmake -S "$src" -B "$dir" -DGBATCH_WERROR=ON >"$out/configure.log" ||
	{ cat "$out/configure.log"; exit 1; }
cmake --build "$dir" -j "$(nproc)" --target ring_bench tele_bench wake_bench collector_bench \
	jobs_bench memory_bench >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }

if [ $quick = 1 ]; then
	args_ring=(5) args_wake=(--records 100000) args_collector=(--records 400000)
	args_memory=(--names 200000 --scopes 20000)
else
	args_ring=() args_wake=() args_collector=() args_memory=()
fi
run() { # NAME COMMAND...: one benchmark, its JSON line appended to the results
	local name=$1
	shift
	echo "tests/bench/run.sh: $name ..." >&2
	if ! "$@" >"$out/$name.out" 2>"$out/$name.err"; then
		echo "tests/bench/run.sh: $name failed:" >&2
		tail -20 "$out/$name.err" >&2
		exit 1
	fi
	grep '^{"bench"' "$out/$name.out" | tail -1 >>"$out/results.jsonl"
}
: >"$out/results.jsonl"
run ring "$dir/tests/ring_bench" "${args_ring[@]}"
run tele "$dir/tests/tele_bench"
run wake "$dir/tests/wake_bench" "${args_wake[@]}"
run collector "$dir/tests/collector_bench" "${args_collector[@]}"
run jobs "$dir/tests/jobs_bench"
run memory "$dir/tests/memory_bench" "${args_memory[@]}"
# The Batch API: requests and tokens billed per job, interactive and --batch-api.
cmake --build "$dir" -j "$(nproc)" --target gbatch-processor gbatch-stub-gemini \
	>>"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
run batch python3 "$src/tests/bench/batch_bench.py" "$dir/tests/stub_gemini/gbatch-stub-gemini" \
	"$dir/processor/gbatch-processor/gbatch-processor" --jobs "$([ $quick = 1 ] && echo 200 || echo 1000)"

# ---- the collector's drain in instructions per record (callgrind) ----
# Instruction counts do not depend on the machine's load the way seconds do: the drain's user
# space (ring read, decode, line cache, format, the sendmmsg calls' own code; not the kernel)
# for one call site with one value, 100 values of a tag, and 10 call sites x 100 values.
collector_instr() {
	local what n=200000 json
	json="{\"bench\":\"collector_instr\",\"records\":$n"
	for what in packed values100 sites10x100; do
		valgrind --tool=callgrind --callgrind-out-file=/dev/null \
			--toggle-collect=gb__ring_read --toggle-collect=gb__statsd_flush_aggregates \
			"$dir/tests/collector_bench" --records $n --only $what \
			>"$out/collector_instr.$what.out" 2>"$out/collector_instr.$what.err" || return 1
		json+=",\"$what\":$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' \
			"$out/collector_instr.$what.err")"
	done
	echo "$json}"
}
if command -v valgrind >/dev/null; then
	echo "tests/bench/run.sh: collector_instr ..." >&2
	collector_instr >>"$out/results.jsonl" || echo "tests/bench/run.sh: collector_instr failed" >&2
fi
# ---- end of the collector's instructions per record ----

# --- the context under 8 threads (tele_bench's "tele_threads" line, printed before its "tele"
# line, which run() keeps) ---
grep '^{"bench":"tele_threads"' "$out/tele.out" | tail -1 >>"$out/results.jsonl"
# --- end of the 8-thread block ---

cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
python3 "$src/tests/bench/table.py" "$out/results.jsonl" "$(nproc)" "$(uname -sr)" \
	"$("$cc" --version | head -1)"
