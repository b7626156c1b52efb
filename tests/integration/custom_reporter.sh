#!/usr/bin/env bash
# custom_reporter.sh BIN - runs examples/custom_reporter and checks its output line by line
# (durations vary, so they are masked): two reporters, one of them timing-only.
set -euo pipefail
bin=$1
got=$("$bin" | sed -E 's/[0-9]+\.[0-9]{4}s/D.DDDDs/g')
want='[METRIC] GAUGE: scope=batch.total_processing.batch.attempt.api_calls, value=1, type=counter
[METRIC] TIMING: scope=batch.total_processing.batch.attempt, duration=D.DDDDs, depth=1
  batch.total_processing.batch.attempt took D.DDDDs (parent: batch.total_processing, call 1)
[METRIC] GAUGE: scope=batch.total_processing.batch.attempt.api_calls, value=1, type=counter
[METRIC] TIMING: scope=batch.total_processing.batch.attempt, duration=D.DDDDs, depth=1
  batch.total_processing.batch.attempt took D.DDDDs (parent: batch.total_processing, call 2)
[METRIC] GAUGE: scope=batch.total_processing.batch_success, value=1, type=counter
[METRIC] GAUGE: scope=batch.total_processing.token_efficiency, value=2.5, type=gauge
[METRIC] TIMING: scope=batch.total_processing, duration=D.DDDDs, depth=0
batch.total_processing took D.DDDDs (parent: none, call 1)'
if [ "$got" != "$want" ]; then
	echo "custom_reporter output differs:" >&2
	diff <(echo "$want") <(echo "$got") >&2 || true
	exit 1
fi
echo "custom_reporter: output as expected"
