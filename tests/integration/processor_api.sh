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
fails=0

cleanup() {
	[ -n "$stub_pid" ] && kill "$stub_pid" 2>/dev/null && wait "$stub_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

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

[ "$fails" = 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "processor_api: all checks passed"
