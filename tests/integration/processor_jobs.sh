#!/usr/bin/env bash
# processor_jobs.sh - gbatch-processor --jobs against a real gbatch-stub-gemini: every job
# answered exactly once at --parallel 8, the rate limit held in every window of the stand-in's
# request log, the shared pause after a 429 and a 429 storm survived, kill -9 then --resume,
# SIGTERM draining what is in flight, malformed lines, three shards of one file (--shard),
# context caching, usage errors.
#   processor_jobs.sh GBATCH_PROCESSOR GBATCH_STUB_GEMINI
set -euo pipefail

proc=$1
stub=$2
work=$(mktemp -d)
key="sk-secret-$$-Jb9Qx"
stub_pid=
proc_pid=

cleanup() {
	[ -n "$proc_pid" ] && kill -9 "$proc_pid" 2>/dev/null
	stub_stop
	rm -rf "$work"
}
trap cleanup EXIT

# section NAME: a progress line with the time since the start.
t_start=$(date +%s%N)
section() {
	echo "-- $1 ($((($(date +%s%N) - t_start) / 1000000)) ms)"
}

# shellcheck source=tests/integration/stub_lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/stub_lib.sh"

# start_stub ARGS...: the stand-in on a free port with a fresh log; sets $base.
start_stub() {
	rm -f "$work/stub.log"
	stub_start "$@"
}

# run NAME ARGS...: the processor in the foreground; stdout, stderr, status and milliseconds
# taken kept.
run() {
	local name=$1 t0
	shift
	t0=$(date +%s%N)
	set +e
	GEMINI_API_KEY=$key GEMINI_API_BASE=$base "$proc" --telemetry off "$@" \
		>"$work/$name.out" 2>"$work/$name.err"
	echo $? >"$work/$name.rc"
	set -e
	echo $((($(date +%s%N) - t0) / 1000000)) >"$work/$name.ms"
}

# start NAME ARGS...: the processor in the background ($proc_pid).
start() {
	local name=$1
	shift
	GEMINI_API_KEY=$key GEMINI_API_BASE=$base "$proc" --telemetry off "$@" \
		>"$work/$name.out" 2>"$work/$name.err" &
	proc_pid=$!
}

# finish NAME: waits for the background processor and keeps its status.
finish() {
	set +e
	wait "$proc_pid" 2>/dev/null
	echo $? >"$work/$1.rc"
	set -e
	proc_pid=
}

expect_rc() {
	local got
	got=$(cat "$work/$1.rc")
	[ "$got" = "$2" ] || fail "$1: exit $got, expected $2 (stderr: $(head -c 600 "$work/$1.err"))"
}

expect_in() {
	grep -qF -- "$3" "$work/$1.$2" || fail "$1: $2 lacks \"$3\": $(head -c 600 "$work/$1.$2")"
}

# check NAME PYTHON: runs a check with W (the work dir) and helpers in scope; fails on a false
# assertion with its message.
check() {
	local name=$1
	shift
	python3 - "$work" <<EOF || fail "$name"
import json, sys
W = sys.argv[1]
# how much closer two requests may arrive at the stand-in than they were sent (see the rate limit)
JITTER_MS = 100
def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]
def requests(kind='generateContent'):
    return [r for r in lines(W + '/stub.log') if r['path'].endswith(kind)]
def fnv(text):
    h = 1469598103934665603
    for b in text.encode():
        h = ((h ^ b) * 1099511628211) & 0xffffffffffffffff
    return '%016x' % h
$*
EOF
}

# wait_lines FILE N: waits up to 20 s for FILE to hold at least N lines.
wait_lines() {
	for _ in $(seq 2000); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.01
	done
	fail "$1 never reached $2 lines"
	return 1
}

# jobs N FILE [PREFIX]: N jobs with distinct content, three questions each.
jobs() {
	python3 -c "
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({'id': i, 'content': '%s document %d: the sky is blue.' % (sys.argv[2], i),
                      'questions': ['What colour is the sky?', 'Which document is this?', 'Is it true?']}))
" "$1" "${3:-Plain}" >"$2"
}

section "500 jobs"
# ---- 500 jobs, 8 in flight: each answered exactly once, one request each ----
start_stub --latency 2ms
jobs 500 "$work/j500.jsonl"
run many --jobs "$work/j500.jsonl" --parallel 8 --rpm 100000 --tpm 0 --output "$work/many.jsonl"
expect_rc many 0
expect_in many err "500/500 jobs done (500 answered in full"
check many "
out = lines(W + '/many.jsonl')
ids = [r['id'] for r in out]
assert sorted(ids) == list(range(500)), 'ids: %d lines, %d distinct' % (len(ids), len(set(ids)))
assert all(r['outcome'] == 'answered' and r['answers'][1] == 'Answer to question 2: Which document is this?' for r in out)
reqs = requests()
assert len(reqs) == 500, '%d requests' % len(reqs)
hashes = sorted(r['content_hash'] for r in reqs)
assert hashes == sorted(fnv('Plain document %d: the sky is blue.' % i) for i in range(500)), 'a job asked twice or never'
"

section "usage errors"
# ---- usage errors ----
run no_output --jobs "$work/j500.jsonl" --resume
expect_rc no_output 2
expect_in no_output err "--resume needs --output"
run bad_parallel --jobs "$work/j500.jsonl" --parallel 0
expect_rc bad_parallel 2
expect_in bad_parallel err '"0"'
run bad_tier --jobs "$work/j500.jsonl" --tier gold
expect_rc bad_tier 2
expect_in bad_tier err '"gold"'
run bad_window --jobs "$work/j500.jsonl" --rate-window 5x
expect_rc bad_window 2
run jobs_and_questions --jobs "$work/j500.jsonl" --questions "$work/j500.jsonl"
expect_rc jobs_and_questions 2
run parallel_alone --parallel 4 --questions "$work/j500.jsonl" "$work/j500.jsonl"
expect_rc parallel_alone 2
expect_in parallel_alone err "need --jobs"
run no_jobs_file --jobs "$work/nope.jsonl"
expect_rc no_jobs_file 2
expect_in no_jobs_file err "nope.jsonl"

section "malformed lines"
# ---- malformed lines: reported with their number, skipped, the run goes on ----
start_stub
cat >"$work/mixed.jsonl" <<'EOF'
{"id": "a", "content": "Alpha text.", "questions": ["First?"]}
{"id": "b", "content": "Beta text.", "questions": [
["not", "an", "object"]
{"id": "c", "content": "Gamma text."}
{"id": "a", "content": "Alpha again.", "questions": ["Dup?"]}
{"id": "d", "content": "Delta.", "content_file": "x.txt", "questions": ["Both?"]}
{"id": "e", "content": "Epsilon.", "questions": ["Fine?", 7]}
{"id": {"x": 1}, "content": "Zeta.", "questions": ["Id?"]}

{"id": "f", "content_file": "/nonexistent/gbatch-f.txt", "questions": ["Missing file?"]}
{"id": 7, "content": "Eta text.", "questions": ["Last?", "Really last?"]}
EOF
run mixed --jobs "$work/mixed.jsonl" --output "$work/mixed.out.jsonl"
expect_rc mixed 1
for n in 2 3 4 5 6 7 8; do expect_in mixed err "mixed.jsonl:$n: "; done
expect_in mixed err "appears on an earlier line"
expect_in mixed err "/nonexistent/gbatch-f.txt"
check mixed "
out = {json.dumps(r['id']): r for r in lines(W + '/mixed.out.jsonl')}
assert sorted(out) == sorted(['\"a\"', '\"f\"', '7']), sorted(out)
assert out['\"a\"']['outcome'] == 'answered' and out['\"a\"']['line'] == 1
assert out['7']['outcome'] == 'answered' and out['7']['line'] == 11 and len(out['7']['answers']) == 2
assert out['\"f\"']['outcome'] == 'failed' and 'gbatch-f.txt' in out['\"f\"']['error']
assert len(requests()) == 2
"

section "shards"
# ---- --shard I/N: three processes share one file, each job answered by exactly one ----
# Lines (1-based) and their shard, (L - 1) % 3: a blank line 3 (shard 2), a malformed line 5
# (shard 1), line 9 repeating the id of line 2 (shard 2 refuses it, though line 2 is shard 1's).
start_stub
python3 -c "
import json
def job(i):
    return json.dumps({'id': i, 'content': 'Shard document %d: the sky is blue.' % i,
                       'questions': ['What colour is the sky?', 'Which document is this?']})
rows = [job(0), job(1), '', job(2), '{\"id\": \"bad\", \"content\": \"No questions.\"}', job(3),
        job(4), job(5), job(1).replace('Shard document 1', 'Another document 1'), job(6), job(7),
        job(8), job(9)]
print('\n'.join(rows))
" >"$work/sharded.jsonl"
for i in 0 1 2; do
	run "shard$i" --jobs "$work/sharded.jsonl" --shard "$i/3" --parallel 2 --rpm 1000 \
		--output "$work/shard$i.jsonl"
done
expect_rc shard0 0
expect_rc shard1 1
expect_rc shard2 1
expect_in shard0 err "shard 0/3: 5 of the 10 jobs of"
expect_in shard0 err "shard 0/3: 5/5 jobs done (5 answered in full, 0 with errors, 0 skipped as already done, 0 invalid lines)"
expect_in shard1 err "shard 1/3: 3/3 jobs done (3 answered in full, 0 with errors, 0 skipped as already done, 1 invalid lines)"
expect_in shard1 err "sharded.jsonl:5: \"questions\" must be an array"
expect_in shard2 err "shard 2/3: 2/2 jobs done (2 answered in full, 0 with errors, 0 skipped as already done, 1 invalid lines)"
expect_in shard2 err "sharded.jsonl:9: id 1 appears on an earlier line"
check shards "
import re
per = {i: lines(W + '/shard%d.jsonl' % i) for i in range(3)}
assert sorted(r['id'] for r in per[0]) == [0, 2, 4, 6, 9], per[0]
assert sorted(r['id'] for r in per[1]) == [1, 5, 7], per[1]
assert sorted(r['id'] for r in per[2]) == [3, 8], per[2]
ids = [r['id'] for i in range(3) for r in per[i]]
assert sorted(ids) == list(range(10)), 'union: %s' % sorted(ids)
for i in range(3):
    assert all((r['line'] - 1) % 3 == i and r['outcome'] == 'answered' for r in per[i]), per[i]
# each shard reports its own malformed lines and no other's
for i, want in ((0, []), (1, ['5']), (2, ['9'])):
    got = re.findall(r'sharded\.jsonl:(\d+): ', open(W + '/shard%d.err' % i).read())
    assert got == want, 'shard %d reported lines %s' % (i, got)
hashes = sorted(r['content_hash'] for r in requests())
assert hashes == sorted(fnv('Shard document %d: the sky is blue.' % i) for i in range(10)), 'a job asked twice or never'
"
# --resume on a shard: what its results file holds is skipped, the rest asked.
head -n 2 "$work/shard0.jsonl" >"$work/shard0.part" && mv "$work/shard0.part" "$work/shard0.jsonl"
: >"$work/stub.log"
run shard0_resumed --jobs "$work/sharded.jsonl" --shard 0/3 --resume --rpm 1000 \
	--output "$work/shard0.jsonl"
expect_rc shard0_resumed 0
expect_in shard0_resumed err "shard 0/3: 3/3 jobs done (3 answered in full, 0 with errors, 2 skipped as already done"
check shard0_resumed "
out = [r['id'] for r in lines(W + '/shard0.jsonl')]
assert sorted(out) == [0, 2, 4, 6, 9], out
kept = set(out[:2])
asked = sorted(r['content_hash'] for r in requests())
assert asked == sorted(fnv('Shard document %d: the sky is blue.' % i) for i in {0, 2, 4, 6, 9} - kept), asked
"
: >"$work/stub.log"
run shard0_done --jobs "$work/sharded.jsonl" --shard 0/3 --resume --rpm 1000 \
	--output "$work/shard0.jsonl"
expect_rc shard0_done 0
expect_in shard0_done err "shard 0/3: 0/0 jobs done (0 answered in full, 0 with errors, 5 skipped as already done"
check shard0_done "
assert requests() == [], requests()
assert len(lines(W + '/shard0.jsonl')) == 5
"
run shard_alone --shard 0/3 --questions "$work/j500.jsonl" "$work/j500.jsonl"
expect_rc shard_alone 2
expect_in shard_alone err "--shard need --jobs"
run shard_bad --jobs "$work/sharded.jsonl" --shard 3/3
expect_rc shard_bad 2
expect_in shard_bad err '--shard "3/3"'

section "the rate limit"
# ---- the rate limit: never more than --rpm requests in any window ----
start_stub
jobs 36 "$work/j36.jsonl"
run rpm --jobs "$work/j36.jsonl" --parallel 8 --rpm 9 --tpm 0 --rate-window 1s \
	--output "$work/rpm.jsonl" --progress
expect_rc rpm 0
expect_in rpm err "36/36 jobs done"
# The live line says why nothing moves while the limit holds every request.
expect_in rpm err "  waiting for rate limit 1s"
check rpm "
t = sorted(r['mono_ms'] for r in requests())
assert len(t) == 36, len(t)
# Arrival times: a request reaches the stand-in a little after it is sent, so two sent exactly
# one window apart may arrive closer: under the sanitizers on a busy 2-core machine by up to
# tens of milliseconds (28 ms seen). JITTER allows for that; without the limiter ten requests
# arrive within a few milliseconds.
worst = min(t[i + 9] - t[i] for i in range(len(t) - 9))
assert worst >= 1000 - JITTER_MS, 'ten requests within %d ms' % worst
"
[ "$(cat "$work/rpm.ms")" -ge 2900 ] || fail "rpm: 36 requests at 9 a second took $(cat "$work/rpm.ms") ms"

# Tokens per window: each request is about 80 input tokens; 250 a window lets three through.
start_stub
jobs 9 "$work/j9.jsonl"
run tpm --jobs "$work/j9.jsonl" --parallel 8 --rpm 1000 --tpm 250 --rate-window 1s \
	--output "$work/tpm.jsonl" --telemetry console --telemetry-ids
expect_rc tpm 0
# The run's telemetry: waits, in-flight level, tokens by kind, per-job timings with the id in
# metadata and never in a name.
expect_in tpm err "[TIMING] rate_limit.wait: duration="
expect_in tpm err "[METRIC] rate_limit_waits: 1 (metric_type=counter"
expect_in tpm err "[METRIC] requests_in_flight: 3 (metric_type=gauge"
expect_in tpm err "[METRIC] prompt_tokens: "
expect_in tpm err "[METRIC] output_tokens: "
expect_in tpm err "[TIMING] job.queue_wait: duration="
expect_in tpm err ", job_id=8, line=9, question_count=3, outcome=answered)"
expect_in tpm err "[METRIC] jobs_completed: 1 (metric_type=counter"
expect_in tpm err "[METRIC] batch_success: 1 (metric_type=counter"
if grep -E '^\[(TIMING|METRIC)\] [^:]*[0-9]:' "$work/tpm.err" | grep -v 'gemini-'; then
	fail "tpm: an index or id in a metric name"
fi
check tpm "
reqs = sorted(requests(), key=lambda r: r['mono_ms'])
assert len(reqs) == 9
per = reqs[0]['usage']['promptTokenCount']
assert 70 <= per <= 90, per
for i, r in enumerate(reqs):
    window = [q for q in reqs if r['mono_ms'] <= q['mono_ms'] < r['mono_ms'] + 1000 - JITTER_MS]
    assert sum(q['usage']['promptTokenCount'] for q in window) <= 250, 'window at %d' % i
"

section "a 429 holds"
# ---- a 429 holds every request, not just its own ----
start_stub --fault 429:1:delay=600ms
jobs 24 "$work/j24.jsonl"
run pause --jobs "$work/j24.jsonl" --parallel 4 --rpm 1000 --output "$work/pause.jsonl" --progress
expect_rc pause 0
expect_in pause err "jobs 24/24  answers 72  errors 0  tokens "
expect_in pause err "  paused by 429 for 1s"
check pause "
reqs = sorted(requests(), key=lambda r: r['mono_ms'])
a = [r['mono_ms'] for r in reqs if r['status'] == 429]
assert len(a) == 1 and len(reqs) == 25, (a, len(reqs))
early = [r['mono_ms'] - a[0] for r in reqs if 50 < r['mono_ms'] - a[0] < 600 - 10]
assert not early, 'sent during the pause: %s ms after the 429' % early
assert len(lines(W + '/pause.jsonl')) == 24
# Every frame of the live line fits 80 columns; none shows a rate before it can be told.
err = open(W + '/pause.err', newline='').read()
frames = [f.replace(chr(27) + '[K', '') for f in err.split(chr(13))]
frames = [f.split(chr(10))[0] for f in frames if f.startswith('jobs ')]
assert frames and all(len(f) < 80 for f in frames), max(frames, key=len)
assert '-- req/s' in frames[0] or 'paused by 429' in frames[0], frames[0]
"

section "a 429 storm"
# ---- a 429 storm slows the run down; it still finishes ----
start_stub --fault 429:16:delay=150ms
run storm --jobs "$work/j24.jsonl" --parallel 4 --rpm 1000 --max-attempts 10 \
	--output "$work/storm.jsonl"
expect_rc storm 0
expect_in storm err "24/24 jobs done (24 answered in full"
expect_in storm err "16 429s"
check storm "
reqs = requests()
assert sum(r['status'] == 429 for r in reqs) == 16
assert sum(r['status'] == 200 for r in reqs) == 24
assert sorted(r['id'] for r in lines(W + '/storm.jsonl')) == list(range(24))
"
[ "$(cat "$work/storm.ms")" -ge 600 ] || fail "storm: finished in $(cat "$work/storm.ms") ms"

section "fatal"
# ---- a per-day quota stops the run at once; the job that met it is left for --resume ----
start_stub --fault quota:0
run quota --jobs "$work/j24.jsonl" --parallel 4 --rpm 1000 --output "$work/quota.jsonl"
expect_rc quota 3
expect_in quota err "daily quota exhausted"
check quota "
assert len(requests()) <= 4, len(requests())
assert lines(W + '/quota.jsonl') == []
"
start_stub
run quota_resumed --jobs "$work/j24.jsonl" --parallel 4 --rpm 1000 --output "$work/quota.jsonl" --resume
expect_rc quota_resumed 0
check quota_resumed "
assert sorted(r['id'] for r in lines(W + '/quota.jsonl')) == list(range(24))
"

section "kill -9"
# ---- kill -9 mid-run, a torn last line, then --resume ----
start_stub --latency 10ms
jobs 300 "$work/j300.jsonl" Resumed
start killed --jobs "$work/j300.jsonl" --parallel 4 --rpm 100000 --output "$work/resume.jsonl"
wait_lines "$work/resume.jsonl" 40
kill -9 "$proc_pid"
finish killed
# A write cut short by the kill looks like this: the start of a line, no newline.
printf '{"id": 299, "line": 300, "question_cou' >>"$work/resume.jsonl"
python3 -c "
import json, sys
done = [json.loads(l)['id'] for l in open(sys.argv[1]) if l.endswith('\n')]
open(sys.argv[2], 'w').write(json.dumps(done))
" "$work/resume.jsonl" "$work/first_ids.json"
: >"$work/stub.log"
run resumed --jobs "$work/j300.jsonl" --parallel 4 --rpm 100000 --output "$work/resume.jsonl" --resume
expect_rc resumed 0
expect_in resumed err "last line is incomplete"
check resumed "
first = json.load(open(W + '/first_ids.json'))
assert 40 <= len(first) < 300, len(first)
raw = open(W + '/resume.jsonl').read()
assert raw.endswith('\n')
ids = [json.loads(l)['id'] for l in raw.splitlines()]
assert sorted(ids) == list(range(300)), 'ids: %d lines, %d distinct' % (len(ids), len(set(ids)))
asked = [r['content_hash'] for r in requests()]
again = set(asked) & {fnv('Resumed document %d: the sky is blue.' % i) for i in first}
assert not again, '%d answered jobs asked again' % len(again)
assert len(asked) == 300 - len(first), (len(asked), len(first))
"

section "SIGTERM"
# ---- SIGTERM: no new jobs, in-flight requests finish and are written, exit 3 ----
start_stub --latency 700ms
jobs 20 "$work/j20.jsonl"
start drained --jobs "$work/j20.jsonl" --parallel 4 --rpm 1000 --output "$work/drain.jsonl"
wait_lines "$work/drain.jsonl" 4
kill -TERM "$proc_pid"
finish drained
expect_rc drained 3
expect_in drained err "incomplete"
check drained "
out = lines(W + '/drain.jsonl')
reqs = requests()
assert 4 <= len(out) < 20, len(out)
assert len(reqs) == len(out), 'requests %d, results %d: an in-flight request was dropped' % (len(reqs), len(out))
"
run drain_resumed --jobs "$work/j20.jsonl" --parallel 4 --rpm 1000 --output "$work/drain.jsonl" --resume
expect_rc drain_resumed 0
check drain_resumed "
assert sorted(r['id'] for r in lines(W + '/drain.jsonl')) == list(range(20))
assert len(requests()) == 20
"

# The drain is bounded: requests slower than --drain-timeout are abandoned.
start_stub --latency 5s
start cut --jobs "$work/j20.jsonl" --parallel 4 --rpm 1000 --drain-timeout 300ms \
	--output "$work/cut.jsonl"
# Waits for the four requests to be in flight where ss(8) can tell; the checks hold either way.
for _ in $(seq 500); do
	command -v ss >/dev/null || break
	[ "$(ss -tn state established "( dport = :${base##*:} )" | tail -n +2 | wc -l)" -ge 4 ] && break
	sleep 0.01
done
t0=$(date +%s%N)
kill -TERM "$proc_pid"
finish cut
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rc cut 3
[ "$ms" -lt 2500 ] || fail "cut: the drain took $ms ms despite --drain-timeout 300ms"
[ ! -s "$work/cut.jsonl" ] || fail "cut: results written for abandoned requests"

section "context caching"
# ---- context caching: one cache per content, reused by every call, deleted at the end ----
start_stub
python3 -c "
import json
big = 'The Tay Bridge crossed the Firth of Tay and fell in a storm in 1879. ' * 40
for i in range(4):
    print(json.dumps({'id': 'big%d' % i, 'content': big, 'questions': ['When did it fall?', 'What did it cross?']}))
for i in range(2):
    print(json.dumps({'id': 'small%d' % i, 'content': 'Short note %d.' % i, 'questions': ['What is it?']}))
" >"$work/cache.jsonl"
run cache --jobs "$work/cache.jsonl" --parallel 2 --rpm 1000 --cache --cache-min-tokens 200 --compare \
	--system "Answer briefly." --output "$work/cache.out.jsonl" --telemetry console
expect_rc cache 0
expect_in cache err "[METRIC] cache_hits: 1 (metric_type=counter"
expect_in cache err "[METRIC] caches_created: 1 (metric_type=counter"
expect_in cache err "[METRIC] cached_tokens: "
expect_in cache err "1 caches, 3 cache hits"
check cache "
log = lines(W + '/stub.log')
created = [r for r in log if r['path'] == '/v1beta/cachedContents']
assert len(created) == 1 and created[0]['status'] == 200, created
name = created[0]['cache_name']
gen = [r for r in log if r['path'].endswith(':generateContent')]
named = [r for r in gen if r.get('cached_content') == name]
# Four big jobs, each a batch call and two compare calls, all against the one cache.
assert len(named) == 12, len(named)
assert all(r['usage']['cachedContentTokenCount'] > 250 for r in named)
assert len([r for r in gen if 'cached_content' not in r]) == 4
assert log[-1]['method'] == 'DELETE' and log[-1]['cache_name'] == name and log[-1]['status'] == 200
out = {r['id']: r for r in lines(W + '/cache.out.jsonl')}
for i in range(4):
    r = out['big%d' % i]
    assert r['cache']['name'] == name and r['outcome'] == 'answered'
    assert r['metrics']['batch']['cached_tokens'] > 250 and r['metrics']['individual']['cached_tokens'] > 500
    assert r['usage']['cached_tokens'] == r['metrics']['batch']['cached_tokens'] + r['metrics']['individual']['cached_tokens']
assert sum(out['big%d' % i]['cache']['reused'] for i in range(4)) == 3
assert 'cache' not in out['small0']
"
section "keep"
start_stub
run keep --jobs "$work/cache.jsonl" --parallel 2 --rpm 1000 --cache --cache-min-tokens 200 --keep-cache \
	--output "$work/keep.jsonl"
expect_rc keep 0
check keep "
log = lines(W + '/stub.log')
assert sum(r['path'] == '/v1beta/cachedContents' for r in log) == 1
assert not [r for r in log if r['method'] == 'DELETE']
"

# A cache near the end of its TTL is replaced, not used past it; every one is deleted.
start_stub --latency 400ms
run ttl --jobs "$work/cache.jsonl" --parallel 1 --rpm 1000 --cache --cache-min-tokens 200 \
	--cache-ttl 1s --output "$work/ttl.jsonl"
expect_rc ttl 0
check ttl "
log = lines(W + '/stub.log')
created = [r['cache_name'] for r in log if r['path'] == '/v1beta/cachedContents']
deleted = [r['cache_name'] for r in log if r['method'] == 'DELETE' and r['status'] == 200]
assert len(created) >= 2 and sorted(created) == sorted(deleted), (created, deleted)
assert all(r['outcome'] == 'answered' for r in lines(W + '/ttl.jsonl'))
"

section "key"
# The key appears nowhere.
for f in "$work"/*.out "$work"/*.err "$work"/*.jsonl "$work/stub.log"; do
	if grep -qF -- "$key" "$f"; then fail "the API key leaked into $(basename "$f")"; fi
done

checks_done
echo "processor_jobs: all checks passed"
