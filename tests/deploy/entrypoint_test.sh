#!/usr/bin/env bash
# entrypoint_test.sh - the image's entry point run as the image runs it (/bin/sh), with stand-in
# programs on PATH that print their arguments: each first argument picks its program, and
# "shard" turns JOB_COMPLETION_INDEX, GBATCH_SHARD_COUNT, GBATCH_JOBS_FILE and GBATCH_OUTPUT_DIR
# (optional) into one shard of a jobs file, or refuses clearly without running the processor.
#   tests/deploy/entrypoint_test.sh ENTRYPOINT
set -euo pipefail

ep=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/out"
for p in gbatch-collector gbatch-processor gbatch-emit; do
	printf '#!/bin/sh\necho %s "$@"\n' "$p" >"$tmp/bin/$p"
	chmod +x "$tmp/bin/$p"
done
echo '{"id": 1, "content": "c", "questions": ["q"]}' >"$tmp/jobs.jsonl"
: >"$tmp/not-a-dir"

failures=0
# expect WANT_STATUS WANT_OUTPUT [ENV...] -- ARGS...: runs the entry point, compares.
expect() {
	local want_rc=$1 want=$2 rc=0 out
	shift 2
	local -a env=()
	while [ "$1" != -- ]; do env+=("$1"); shift; done
	shift
	out=$(env -i PATH="$tmp/bin:/usr/bin:/bin" GBATCH_JOBS_FILE="$tmp/jobs.jsonl" "${env[@]}" \
		/bin/sh "$ep" "$@" 2>&1) || rc=$?
	# a refusal never reaches the processor
	if [ "$rc" -ne "$want_rc" ] || [[ "$out" != *"$want"* ]] ||
		{ [ "$want_rc" -ne 0 ] && [[ "$out" == *"gbatch-processor --jobs"* ]]; }; then
		echo "FAIL: entrypoint $* (${env[*]}): exit $rc, output: $out"
		echo "      want exit $want_rc and output containing: $want"
		failures=$((failures + 1))
	else
		echo "ok: entrypoint $* (${env[*]})"
	fi
}

expect 0 "gbatch-collector --console off" -- collector --console off
expect 0 "gbatch-collector" --
expect 0 "gbatch-processor --model m" -- processor --model m
expect 0 "gbatch-emit count a 1" -- emit count a 1
expect 0 "hello" -- echo hello
# shard i of n: the jobs file, the shard, --resume, its own results file, then the flags
run=(JOB_COMPLETION_INDEX=1 GBATCH_SHARD_COUNT=3 GBATCH_OUTPUT_DIR="$tmp/out")
expect 0 "gbatch-processor --jobs $tmp/jobs.jsonl --shard 1/3 --resume \
--output $tmp/out/results-1.jsonl --telemetry shm:job" "${run[@]}" -- shard --telemetry shm:job
expect 0 "gbatch-processor --jobs $tmp/jobs.jsonl --shard 0/1 --resume \
--output $tmp/out/results-0.jsonl" JOB_COMPLETION_INDEX=0 GBATCH_SHARD_COUNT=1 \
	GBATCH_OUTPUT_DIR="$tmp/out" -- shard
expect 0 "--shard 9/10 --resume --output $tmp/out/results-9.jsonl" \
	JOB_COMPLETION_INDEX=9 GBATCH_SHARD_COUNT=10 GBATCH_OUTPUT_DIR="$tmp/out" -- shard
# every refusal: exit 2, a message naming what is wrong, the processor not run
expect 2 "JOB_COMPLETION_INDEX is not set (not an Indexed Job?)" \
	GBATCH_SHARD_COUNT=3 GBATCH_OUTPUT_DIR="$tmp/out" -- shard
expect 2 "JOB_COMPLETION_INDEX is not set" "${run[@]}" JOB_COMPLETION_INDEX= -- shard
expect 2 'JOB_COMPLETION_INDEX "../1" is not a whole number' \
	"${run[@]}" JOB_COMPLETION_INDEX=../1 -- shard
expect 2 'JOB_COMPLETION_INDEX "-1" is not a whole number' \
	"${run[@]}" JOB_COMPLETION_INDEX=-1 -- shard
expect 2 'JOB_COMPLETION_INDEX "12345678901" is too large' \
	"${run[@]}" JOB_COMPLETION_INDEX=12345678901 -- shard
expect 2 "GBATCH_SHARD_COUNT is not set (set it to the Job's completions)" \
	JOB_COMPLETION_INDEX=0 GBATCH_OUTPUT_DIR="$tmp/out" -- shard
expect 2 'GBATCH_SHARD_COUNT "3x" is not a whole number' "${run[@]}" GBATCH_SHARD_COUNT=3x -- shard
expect 2 'GBATCH_SHARD_COUNT " 3" is not a whole number' \
	"${run[@]}" "GBATCH_SHARD_COUNT= 3" -- shard
expect 2 "GBATCH_SHARD_COUNT must be at least 1" "${run[@]}" GBATCH_SHARD_COUNT=0 -- shard
expect 2 "JOB_COMPLETION_INDEX 3 is not below GBATCH_SHARD_COUNT 3" \
	"${run[@]}" JOB_COMPLETION_INDEX=3 -- shard
expect 2 "JOB_COMPLETION_INDEX 7 is not below GBATCH_SHARD_COUNT 3" \
	"${run[@]}" JOB_COMPLETION_INDEX=7 -- shard
# no output directory: the results on stdout, nothing to resume from
expect 0 "gbatch-processor --jobs $tmp/jobs.jsonl --shard 1/3 --telemetry shm:job" \
	JOB_COMPLETION_INDEX=1 GBATCH_SHARD_COUNT=3 -- shard --telemetry shm:job
expect 0 "gbatch-processor --jobs $tmp/jobs.jsonl --shard 1/3 --telemetry shm:job" \
	"${run[@]}" GBATCH_OUTPUT_DIR= -- shard --telemetry shm:job
expect 2 "GBATCH_OUTPUT_DIR \"$tmp/not-a-dir\" is not a directory" \
	"${run[@]}" GBATCH_OUTPUT_DIR="$tmp/not-a-dir" -- shard
expect 2 "no jobs file \"$tmp/none.jsonl\" (GBATCH_JOBS_FILE)" \
	"${run[@]}" GBATCH_JOBS_FILE="$tmp/none.jsonl" -- shard
# unset or empty: the default path (absent on a build machine)
expect 2 'no jobs file "/etc/gbatch/jobs/jobs.jsonl"' "${run[@]}" GBATCH_JOBS_FILE= -- shard

[ "$failures" -eq 0 ] || exit 1
echo "entrypoint_test: all cases pass"
