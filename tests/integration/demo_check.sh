#!/usr/bin/env bash
# demo_check.sh BUILD_DIR - runs deploy/demo.sh on a built tree and checks what it shows: every
# answer from the batched call, the efficiency block, the collector's summary of the processor's
# scopes, valid DogStatsD lines, and no ring left behind.
set -euo pipefail

build=$1
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# demo_rings: how many demo rings /dev/shm holds.
demo_rings() {
	local rings=(/dev/shm/gbatch.demo-*)
	[ -e "${rings[0]}" ] || { echo 0; return; }
	echo "${#rings[@]}"
}

unset GEMINI_API_KEY GEMINI_API_BASE GEMINI_MODEL DD_DOGSTATSD_URL
before=$(demo_rings)
status=0
GBATCH_BUILD_DIR=$build "$src/deploy/demo.sh" >"$out" 2>&1 || status=$?

fail() { cat "$out"; echo "demo_check: $*" >&2; exit 1; }
[ "$status" -eq 0 ] || fail "deploy/demo.sh exited $status"
questions=$(grep -c . "$src/deploy/demo/questions.txt")
[ "$(grep -c '^[0-9]*\. \[batch\] Answer to question' "$out")" -eq "$questions" ] ||
	fail "expected $questions answers from the batched call"
grep -q '"meets_target": true' "$out" || fail "no efficiency block meeting the target"
grep -q '^  batch.total_processing: calls=1 ' "$out" || fail "no batch.total_processing in the collector summary"
grep -q 'batch.total_processing.batch_success: count=1 total=1$' "$out" || fail "no batch_success counter in the summary"
grep -Eq "^== what a DataDog agent would have received: [1-9][0-9]* DogStatsD lines" "$out" ||
	fail "the DogStatsD receiver got nothing"
grep -Eq '^gbatch\.client\.api_call_with_retry:[^|]*\|ms\|#depth:6,parent_scope:batch\.total_processing\.[^,]*\.client\.execute_generation(,|$)' "$out" ||
	fail "no gbatch.client.api_call_with_retry timing, its call path in parent_scope, among the DogStatsD lines shown"
grep -Eq '^gen_ai\.client\.operation\.duration:[^|]*\|ms\|' "$out" ||
	fail "no gen_ai.client.operation.duration among the DogStatsD lines shown"
after=$(demo_rings)
[ "$after" -le "$before" ] || fail "the demo left its ring in /dev/shm"
echo "demo_check: ok ($questions answers, summary and DogStatsD lines present)"
