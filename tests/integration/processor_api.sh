#!/usr/bin/env bash
# processor_api.sh - gbatch-processor against the real Gemini API's recorded replies
# (tests/fixtures/gemini/, served verbatim by gbatch-stub-gemini): a refused key or project
# stops at the first request, an answer that did not finish with STOP is partial, and the
# generation settings reach the request exactly as the REST reference names them. Every case
# is checked on the stand-in's request log, the exit status and the result JSON.
#   processor_api.sh GBATCH_PROCESSOR GBATCH_STUB_GEMINI
set -euo pipefail

proc=$1
stub=$2
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fx=$src/tests/fixtures/gemini
work=$(mktemp -d)
key="sk-secret-$$-Ap9Qx"
stub_pid=

cleanup() {
	stub_stop
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/integration/stub_lib.sh disable=SC1091
. "$src/tests/integration/stub_lib.sh"

# run NAME ARGS...: runs the processor (key $run_key, default $key); stdout, stderr, status kept.
run() {
	local name=$1
	shift
	set +e
	GEMINI_API_KEY=${run_key:-$key} GEMINI_API_BASE=$base "$proc" --telemetry off "$@" \
		>"$work/$name.out" 2>"$work/$name.err"
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

# jsonl FILE PYTHON-EXPR: the same over the list of the file's lines (as rs).
jsonl() {
	python3 -c "import json,sys; rs=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]; sys.exit(0 if ($2) else 1)" "$1" ||
		fail "$1: not true: $2"
}

# requests N WHAT: the stand-in saw exactly N requests since the log was emptied.
requests() {
	local got
	got=$(wc -l <"$work/stub.log")
	[ "$got" = "$1" ] || fail "$2: the stand-in saw $got requests, expected $1"
}

printf 'What is the first fact?\nWhat is the second fact?\n' >"$work/q2.txt"
printf 'Facts: the sky is blue; water is wet.\n' >"$work/c.txt"
for i in 1 2 3; do
	printf '{"id": "j%d", "content": "Facts number %d.", "questions": ["First?", "Second?"]}\n' "$i" "$i"
done >"$work/jobs3.jsonl"

# ---- a refused key: the real API's 400 INVALID_ARGUMENT, ErrorInfo reason API_KEY_INVALID ----

# The stand-in's own answer to a wrong key is the recorded one, byte for byte.
stub_start
curl -s -o "$work/badkey.body" -w '%{http_code}' -H 'x-goog-api-key: not-the-key' \
	-d '{"contents": []}' "$base/v1beta/models/gemini-2.0-flash:generateContent" >"$work/badkey.code"
[ "$(cat "$work/badkey.code")" = 400 ] || fail "wrong key: HTTP $(cat "$work/badkey.code"), not 400"
cmp -s "$work/badkey.body" "$fx/api-key-invalid.json" || fail "wrong key: not the recorded reply"

# Two questions, a wrong key: one request, nothing retried, the reason and its fix named, the
# key never shown.
: >"$work/stub.log"
run_key="AIzaWrongWrongWrongWrongWrongWrong12345" run badkey --questions "$work/q2.txt" "$work/c.txt"
requests 1 badkey
expect_rc badkey 1
expect_in badkey err "API_KEY_INVALID"
expect_in badkey err "set GEMINI_API_KEY to a valid key"
json "$work/badkey.out" "'API_KEY_INVALID' in r['error'] and r['answers'] == [None, None]"
if grep -qF "AIzaWrongWrong" "$work/badkey.out" "$work/badkey.err"; then
	fail "badkey: the key was shown"
fi

# The same with --jobs: 3 jobs cost 1 request, the run stops with exit 3, every job left for
# --resume.
: >"$work/stub.log"
run_key="wrong-key-for-jobs" run badkey_jobs --jobs "$work/jobs3.jsonl" --output "$work/badkey.jsonl" \
	--rpm 1000
requests 1 badkey_jobs
expect_rc badkey_jobs 3
expect_in badkey_jobs err "API_KEY_INVALID"
expect_in badkey_jobs err "--resume"
[ ! -s "$work/badkey.jsonl" ] || fail "badkey_jobs: a job was written: $(head -c 300 "$work/badkey.jsonl")"

# An expired key (reported with the same reason) and a disabled API, as recorded: one request.
for f in api-key-expired service-disabled; do
	stub_start --fault "fixture:0:file=$fx/$f.json"
	: >"$work/stub.log"
	run "$f" --jobs "$work/jobs3.jsonl" --output "$work/$f.jsonl" --rpm 1000
	requests 1 "$f"
	expect_rc "$f" 3
done
expect_in api-key-expired err "API key expired"
expect_in service-disabled err "SERVICE_DISABLED"
expect_in service-disabled err "enable it"

# ---- an answer that did not finish with STOP is partial ----

# The recorded SAFETY reply (text, finishReason SAFETY) for every request: the batch is not
# taken (which answer did the filter cut?), each question is asked alone, and each answer is
# kept but partial: exit 4, finish_reason and partial in the result.
stub_start --fault "fixture:0:file=$fx/finish-reason-safety.json"
: >"$work/stub.log"
run safety --output "$work/safety.json" --questions "$work/q2.txt" "$work/c.txt"
expect_rc safety 4
requests 3 safety
json "$work/safety.json" "r['partial_count'] == 2 and r['batch']['outcome'] == 'failed'"
json "$work/safety.json" "all(d['finish_reason'] == 'SAFETY' and 'finishReason SAFETY' in d['partial'] for d in r['answer_details'])"
json "$work/safety.json" "r['answers'] == ['Safety error incoming in 5, 4, 3, 2...'] * 2"
expect_in safety out "2. [individual, partial] Safety error incoming"
expect_in safety err "2 of 2 answers are partial"
# --accept-partial: as before, the answers are plain ones, exit 0 (the batched reply is not
# an array of answers, so they still come one by one).
: >"$work/stub.log"
run safety_ok --accept-partial --output "$work/safety_ok.json" --questions "$work/q2.txt" "$work/c.txt"
expect_rc safety_ok 0
requests 3 safety_ok
json "$work/safety_ok.json" "r['partial_count'] == 0 and all('partial' not in d and d['finish_reason'] == 'SAFETY' for d in r['answer_details'])"
# The same in a jobs run: outcome partial, exit 4; with --accept-partial answered, exit 0.
run safety_jobs --jobs "$work/jobs3.jsonl" --output "$work/safety.jsonl" --rpm 1000
expect_rc safety_jobs 4
jsonl "$work/safety.jsonl" "len(rs) == 3 and all(x['outcome'] == 'partial' and x['partial_count'] == 2 for x in rs)"
run safety_jobs_ok --accept-partial --jobs "$work/jobs3.jsonl" --output "$work/safety_ok.jsonl" --rpm 1000
expect_rc safety_jobs_ok 0
jsonl "$work/safety_ok.jsonl" "len(rs) == 3 and all(x['outcome'] == 'answered' for x in rs)"

# MAX_TOKENS after thinking spent the output (the recorded 2.5 reply: no parts, 2999 thought
# tokens): the error says so, and names the budget when one was given.
stub_start --fault "fixture:0:file=$fx/max-tokens-thinking.json"
run maxtok --thinking-budget 2048 --output "$work/maxtok.json" --questions "$work/q2.txt" "$work/c.txt"
expect_rc maxtok 1
json "$work/maxtok.json" "all('thinking used 2999 tokens, the whole thinking budget of 2048' in d['error'] for d in r['answer_details'])"
json "$work/maxtok.json" "'MAX_TOKENS' in r['batch']['error'] and r['answers'] == [None, None]"
run maxtok2 --max-output-tokens 3000 --output "$work/maxtok2.json" --questions "$work/q2.txt" "$work/c.txt"
json "$work/maxtok2.json" "all('thinking used 2999 of the 3000 output tokens' in d['error'] for d in r['answer_details'])"

# A thought summary (includeThoughts, the recorded reply) is never taken as the answer.
stub_start --fault "fixture:0:file=$fx/thinking-thought-summary.json"
run thoughts --include-thoughts --output "$work/thoughts.json" --questions "$work/q2.txt" "$work/c.txt"
expect_rc thoughts 0
json "$work/thoughts.json" "r['answers'] == ['Mountain View', 'Mountain View']"

# ---- generation settings ----

stub_start
: >"$work/stub.log"
run settings --temperature 0.25 --top-p 0.9 --top-k 40 --max-output-tokens 512 --stop END \
	--stop "##" --seed 7 --thinking-budget 0 --include-thoughts \
	--safety HARM_CATEGORY_HARASSMENT=BLOCK_ONLY_HIGH --safety HARM_CATEGORY_HATE_SPEECH=OFF \
	--output "$work/settings.json" --questions "$work/q2.txt" "$work/c.txt"
expect_rc settings 0
requests 1 settings
gen='{"temperature": 0.25, "topP": 0.9, "topK": 40, "maxOutputTokens": 512, "stopSequences": ["END", "##"], "seed": 7, "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": True}}'
jsonl "$work/stub.log" "(lambda g: {k: v for k, v in g.items() if k not in ('responseMimeType', 'responseSchema')} == $gen and g['responseMimeType'] == 'application/json')(rs[0]['generation_config'])"
jsonl "$work/stub.log" "rs[0]['safety_settings'] == [{'category': 'HARM_CATEGORY_HARASSMENT', 'threshold': 'BLOCK_ONLY_HIGH'}, {'category': 'HARM_CATEGORY_HATE_SPEECH', 'threshold': 'OFF'}]"
# Without settings nothing is added: the batched call's generationConfig is the JSON answer only.
: >"$work/stub.log"
run nosettings --output "$work/nosettings.json" --questions "$work/q2.txt" "$work/c.txt"
jsonl "$work/stub.log" "rs[0]['generation_config'] == {'responseMimeType': 'application/json'} and 'safety_settings' not in rs[0]"

# Every bad value: exit 2 naming it, not one request.
: >"$work/stub.log"
while IFS='|' read -r name flag value shown; do
	run "bad_$name" "$flag" "$value" --questions "$work/q2.txt" "$work/c.txt"
	expect_rc "bad_$name" 2
	expect_in "bad_$name" err "$shown"
done <<'TABLE'
temp_high|--temperature|2.5|"2.5"
temp_neg|--temperature|-0.1|"-0.1"
temp_text|--temperature|warm|"warm"
topp|--top-p|1.5|"1.5"
topk|--top-k|0|"0"
maxtok|--max-output-tokens|-5|"-5"
seed|--seed|9999999999|"9999999999"
budget|--thinking-budget|-2|"-2"
category|--safety|HARM_CATEGORY_FOO=BLOCK_NONE|HARM_CATEGORY_FOO
threshold|--safety|HARM_CATEGORY_HARASSMENT=BLOCK_ALL|BLOCK_ALL
safety_form|--safety|HARM_CATEGORY_HARASSMENT|"HARM_CATEGORY_HARASSMENT"
TABLE
run bad_stops --stop a --stop b --stop c --stop d --stop e --stop f --questions "$work/q2.txt" "$work/c.txt"
expect_rc bad_stops 2
expect_in bad_stops err '--stop "f"'
requests 0 "bad values"

# A jobs line's generation_config and safety_settings go over the command line's, key by key;
# a line with a bad one is reported with its number and skipped, and costs no request.
cat >"$work/jobs_gen.jsonl" <<'JOBS'
{"id": "a", "content": "Facts.", "questions": ["One?"], "generation_config": {"temperature": 1.5, "thinkingConfig": {"includeThoughts": true}}, "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}
{"id": "b", "content": "Facts.", "questions": ["One?"]}
{"id": "c", "content": "Facts.", "questions": ["One?"], "generation_config": {"topK": 0}}
{"id": "d", "content": "Facts.", "questions": ["One?"], "generation_config": {"temprature": 1}}
JOBS
: >"$work/stub.log"
run jobs_gen --temperature 0.5 --thinking-budget 128 --safety HARM_CATEGORY_HARASSMENT=BLOCK_ONLY_HIGH \
	--jobs "$work/jobs_gen.jsonl" --output "$work/jobs_gen.out.jsonl" --rpm 1000
expect_rc jobs_gen 1
requests 2 jobs_gen
expect_in jobs_gen err "jobs_gen.jsonl:3: topK 0: use a whole number, at least 1"
expect_in jobs_gen err 'jobs_gen.jsonl:4: unknown generation_config field "temprature"'
jsonl "$work/stub.log" "rs[0]['generation_config'].pop('responseMimeType') and rs[0]['generation_config'] == {'temperature': 1.5, 'thinkingConfig': {'thinkingBudget': 128, 'includeThoughts': True}} and rs[0]['safety_settings'] == [{'category': 'HARM_CATEGORY_HARASSMENT', 'threshold': 'BLOCK_NONE'}]"
jsonl "$work/stub.log" "rs[1]['generation_config'].pop('responseMimeType') and rs[1]['generation_config'] == {'temperature': 0.5, 'thinkingConfig': {'thinkingBudget': 128}} and rs[1]['safety_settings'] == [{'category': 'HARM_CATEGORY_HARASSMENT', 'threshold': 'BLOCK_ONLY_HIGH'}]"

checks_done
echo "processor_api: all checks passed"
