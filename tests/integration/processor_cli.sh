#!/usr/bin/env bash
# processor_cli.sh - gbatch-processor as a user runs it, against a real gbatch-stub-gemini:
# answers and exit codes, telemetry on stderr, usage errors naming the bad value, and the API
# key absent from every output.
#   processor_cli.sh GBATCH_PROCESSOR GBATCH_STUB_GEMINI
set -euo pipefail

proc=$1
stub=$2
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
demo=$src/deploy/demo
work=$(mktemp -d)
key="sk-secret-$$-Zq7Vw"
stub_pid=

cleanup() {
	stub_stop
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/integration/stub_lib.sh disable=SC1091
. "$src/tests/integration/stub_lib.sh"

# run NAME ARGS...: runs the processor with the key set; stdout, stderr and status kept.
run() {
	local name=$1
	shift
	set +e
	GEMINI_API_KEY=$key GEMINI_API_BASE=$base "$proc" "$@" >"$work/$name.out" 2>"$work/$name.err"
	echo $? >"$work/$name.rc"
	set -e
}

expect_rc() {
	local got
	got=$(cat "$work/$1.rc")
	[ "$got" = "$2" ] || fail "$1: exit $got, expected $2 (stderr: $(head -c 400 "$work/$1.err"))"
}

expect_in() {
	grep -qF -- "$3" "$work/$1.$2" || fail "$1: $2 lacks \"$3\": $(head -c 400 "$work/$1.$2")"
}

# json FILE PYTHON-EXPR: asserts the expression over the parsed file (as r) is true.
json() {
	python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1" ||
		fail "$1: not true: $2"
}

stub_start
q=$demo/questions.txt
c=$demo/content.txt
nq=$(grep -c . "$q")

# Help and version.
run help --help
expect_rc help 0
expect_in help out "--questions FILE"
expect_in help out "--telemetry KIND"
expect_in help out "--thinking-budget N"
expect_in help out "--safety CATEGORY=THRESHOLD"
expect_in help out "--accept-partial"
expect_in help out "4 every question has an answer but some are partial"
run version --version
expect_rc version 0
expect_in version out "gbatch-processor "

# Usage errors: exit 2, the message names the bad value.
run bad_tele --telemetry bogus --questions "$q" "$c"
expect_rc bad_tele 2
expect_in bad_tele err '"bogus"'
run bad_timeout --timeout 5x --questions "$q" "$c"
expect_rc bad_timeout 2
expect_in bad_timeout err '"5x"'
run bad_attempts --max-attempts 0 --questions "$q" "$c"
expect_rc bad_attempts 2
expect_in bad_attempts err '"0"'
run no_questions "$c"
expect_rc no_questions 2
expect_in no_questions err "--questions FILE is required"
run no_content --questions "$q"
expect_rc no_content 2
expect_in no_content err "no CONTENT_FILE"
run missing_file --questions "$work/nope.txt" "$c"
expect_rc missing_file 2
expect_in missing_file err "$work/nope.txt"
: >"$work/empty.txt"
run empty_questions --questions "$work/empty.txt" "$c"
expect_rc empty_questions 2
expect_in empty_questions err "no questions in"
run bad_model --model "../etc" --telemetry off --questions "$q" "$c"
expect_rc bad_model 2
expect_in bad_model err '"../etc"'
echo '{"type": ' >"$work/bad_schema.json"
run bad_schema --schema "$work/bad_schema.json" --telemetry off --questions "$q" "$c"
expect_rc bad_schema 2
expect_in bad_schema err "response schema is not a JSON object"
run bad_temperature --temperature 2.5 --telemetry off --questions "$q" "$c"
expect_rc bad_temperature 2
expect_in bad_temperature err '--temperature "2.5"'
run bad_top_k --top-k 0 --telemetry off --questions "$q" "$c"
expect_rc bad_top_k 2
expect_in bad_top_k err '--top-k "0"'
run bad_safety --safety HARM_CATEGORY_MEAN=OFF --telemetry off --questions "$q" "$c"
expect_rc bad_safety 2
expect_in bad_safety err '"HARM_CATEGORY_MEAN"'
run unknown_flag --frobnicate --questions "$q" "$c"
expect_rc unknown_flag 2
set +e
env -u GEMINI_API_KEY "$proc" --questions "$q" "$c" >/dev/null 2>"$work/nokey.err"
[ $? = 2 ] || fail "no key: exit status not 2"
set -e
grep -qF GEMINI_API_KEY "$work/nokey.err" || fail "no key: message does not name GEMINI_API_KEY"

# A normal run: every answer from the one batched call, in order; the simple report on stderr.
run plain --telemetry simple --output "$work/plain.json" --questions "$q" "$c"
expect_rc plain 0
json "$work/plain.json" "r['question_count'] == $nq and r['batch']['outcome'] == 'complete'"
json "$work/plain.json" "all(r['answers'][i].startswith('Answer to question %d: ' % (i + 1)) for i in range($nq))"
json "$work/plain.json" "[d['source'] for d in r['answer_details']] == ['batch'] * $nq"
json "$work/plain.json" "r['metrics']['batch']['calls'] == 1 and r['metrics']['batch']['total_tokens'] > 0"
expect_in plain out "1. [batch] Answer to question 1: "
expect_in plain err "Telemetry Report"
expect_in plain err "client.api_call_with_retry"

# Content that is not text goes inline with its MIME type (the stand-in bills 258 tokens each).
printf '\x89PNG\r\n\x1a\n-not-really-an-image' >"$work/figure.png"
run inline --telemetry off --output "$work/inline.json" --questions "$q" "$c" "$work/figure.png"
expect_rc inline 0
json "$work/inline.json" "r['metrics']['batch']['prompt_tokens'] > 258 + $(wc -c <"$c") // 4"
json "$work/inline.json" "r['batch']['outcome'] == 'complete'"

# JSON on stdout without --output; console telemetry on stderr; compare mode.
run compare --telemetry console --telemetry-ids --compare --questions "$q" "$c"
expect_rc compare 0
json "$work/compare.out" "r['efficiency']['comparison_available'] and r['metrics']['individual']['calls'] == $nq"
json "$work/compare.out" "abs(r['efficiency']['token_efficiency_ratio'] - r['metrics']['individual']['total_tokens'] / r['metrics']['batch']['total_tokens']) < 1e-6"
expect_in compare err "[TIMING] batch.total_processing: duration="
expect_in compare err "question_index=0"
# Without --telemetry-ids no id reaches telemetry: every tag has few values.
run noids --telemetry console --compare --questions "$q" "$c"
expect_rc noids 0
if grep -q 'question_index' "$work/noids.err"; then
	fail "noids: question_index in telemetry without --telemetry-ids"
fi
expect_in noids err "[TIMING]       batch.total_processing.batch.comparison_run.individual.processing.individual.question: duration="
# The OpenTelemetry GenAI metrics beside the seed's, one of each kind per call.
expect_in noids err ".gen_ai.client.operation.duration: duration="
expect_in noids err "gen_ai.operation.name=generate_content, gen_ai.provider.name=gcp.gemini, gen_ai.request.model="
expect_in noids err "gen_ai.client.token.usage: "
expect_in noids err "metric_type=histogram"
expect_in noids err "gen_ai.token.type=input)"
expect_in noids err "gen_ai.token.type=output)"
# The one-content run counts what --jobs counts: the same driver runs both.
expect_in compare err ".batch.api_call.prompt_tokens: "
expect_in compare err ".individual.question.output_tokens: "

# Some answers fail: exit 1.
stub_start --fault 500:0:only=single --fault text:1:only=batch
run partial --telemetry off --max-attempts 1 --questions "$q" "$c"
expect_rc partial 1
expect_in partial err "of $nq questions have no answer"
json "$work/partial.out" "r['answers'] == [None] * $nq and r['batch']['outcome'] == 'failed'"

# A daily quota stops the run: exit 1, one request only.
stub_start --fault quota:0
: >"$work/stub.log"
run quota --telemetry off --questions "$q" "$c"
expect_rc quota 1
expect_in quota err "daily quota exhausted"
[ "$(wc -l <"$work/stub.log")" = 1 ] || fail "quota: the stand-in saw $(wc -l <"$work/stub.log") requests"

# The key appears nowhere: not on stdout, stderr, the output file or the stand-in's log, even
# with debug logging, console telemetry and retried errors.
stub_start --fault 429:1:delay=0.2s --fault 503:1
GBATCH_LOG_LEVEL=debug run secret --telemetry console --compare --output "$work/secret.json" \
	--questions "$q" "$c"
expect_rc secret 0
for f in "$work"/*.out "$work"/*.err "$work"/*.json "$work/stub.log"; do
	if grep -qF -- "$key" "$f"; then fail "the API key leaked into $(basename "$f")"; fi
done
grep -q '"key_ok":true' "$work/stub.log" || fail "the stand-in never saw the right key"

checks_done
echo "processor_cli: all checks passed"
