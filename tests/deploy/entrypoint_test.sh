#!/usr/bin/env bash
# entrypoint_test.sh - the image's entry point run as the image runs it (/bin/sh), with stand-in
# programs on PATH that print their arguments: each first argument picks its program, and
# "shard" turns JOB_COMPLETION_INDEX into the files of that shard, or refuses clearly.
#   tests/deploy/entrypoint_test.sh ENTRYPOINT
set -euo pipefail

ep=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/shards"
for p in gbatch-collector gbatch-processor gbatch-emit; do
	printf '#!/bin/sh\necho %s "$@"\n' "$p" >"$tmp/bin/$p"
	chmod +x "$tmp/bin/$p"
done
for i in 0 1 10; do
	echo "q$i" >"$tmp/shards/questions-$i.txt"
	echo "c$i" >"$tmp/shards/content-$i.txt"
done
echo "c1 image" >"$tmp/shards/content-1.png"

failures=0
# expect WANT_STATUS WANT_OUTPUT [ENV...] -- ARGS...: runs the entry point, compares.
expect() {
	local want_rc=$1 want=$2 rc=0 out
	shift 2
	local -a env=()
	while [ "$1" != -- ]; do env+=("$1"); shift; done
	shift
	out=$(env -i PATH="$tmp/bin:/usr/bin:/bin" GBATCH_SHARD_DIR="$tmp/shards" "${env[@]}" \
		/bin/sh "$ep" "$@" 2>&1) || rc=$?
	if [ "$rc" -ne "$want_rc" ] || [[ "$out" != *"$want"* ]]; then
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
expect 0 "gbatch-processor --telemetry shm:job --questions $tmp/shards/questions-0.txt $tmp/shards/content-0.txt" \
	JOB_COMPLETION_INDEX=0 -- shard --telemetry shm:job
# every content file of shard 1, in order, and never those of shard 10
expect 0 "--questions $tmp/shards/questions-1.txt $tmp/shards/content-1.png $tmp/shards/content-1.txt" \
	JOB_COMPLETION_INDEX=1 -- shard
expect 0 "--output /results/answers-10.json" JOB_COMPLETION_INDEX=10 GBATCH_OUTPUT_DIR=/results -- shard
expect 2 "JOB_COMPLETION_INDEX is not set" -- shard
expect 2 "is not a number" JOB_COMPLETION_INDEX=../1 -- shard
expect 2 "no $tmp/shards/questions-7.txt" JOB_COMPLETION_INDEX=7 -- shard

[ "$failures" -eq 0 ] || exit 1
echo "entrypoint_test: all cases pass"
