#!/usr/bin/env bash
# demo.sh - THE demo command: installs what is missing, builds, and runs the sidecar pair side by
# side: gbatch-collector drains a fresh ring while gbatch-processor asks the questions of
# deploy/demo/ about its sample content, then both stop and the ring is removed.
#
# Without GEMINI_API_KEY it talks to the bundled Gemini stand-in (gbatch-stub-gemini) on loopback;
# with it, to the real API (GEMINI_API_BASE, GEMINI_MODEL as usual).
# GBATCH_BUILD_DIR names an existing, built tree to use as it is (default: build into build/demo).
# The collector sends DogStatsD to DD_DOGSTATSD_URL when it is set (a DataDog agent or any StatsD
# server); otherwise to a strict DogStatsD receiver on loopback, whose lines the demo shows.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${GBATCH_BUILD_DIR:-$src/build/demo}
demo=$src/deploy/demo
ring=demo-$$
work=$(mktemp -d "${TMPDIR:-/tmp}/gbatch-demo.XXXXXX")
stub_pid='' collector_pid='' recv_pid=''

say() { printf '\n== %s\n' "$*"; }

# stop PID: ends a background process of ours, whatever its exit status.
# (shellcheck 0.9 cannot see that the EXIT trap calls these: SC2317 there is a false positive.)
# shellcheck disable=SC2317
stop() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# shellcheck disable=SC2317
cleanup() {
	stop "$collector_pid"
	stop "$stub_pid"
	stop "$recv_pid"
	rm -f "/dev/shm/gbatch.$ring"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "demo: timed out waiting for $what" >&2
			return 1
		fi
		sleep 0.05
	done
}

"$src/deploy/install-deps.sh" build

if [ -n "${GBATCH_BUILD_DIR:-}" ] && [ -f "$build/CMakeCache.txt" ]; then
	say "using the build in $build"
else
	say "building into $build"
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/configure.log" ||
		{ cat "$work/configure.log"; exit 1; }
	cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
		--target gbatch-processor gbatch-collector gbatch-stub-gemini dogstatsd-recv \
		>"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
fi
processor=$build/processor/gbatch-processor/gbatch-processor
collector=$build/collector/gbatch-collector
stub=$build/tests/stub_gemini/gbatch-stub-gemini
recv=$build/tests/dogstatsd-recv

if [ -n "${GEMINI_API_KEY:-}" ]; then
	say "GEMINI_API_KEY is set: asking the real Gemini API"
	api_base=${GEMINI_API_BASE:-https://generativelanguage.googleapis.com}
else
	say "starting the Gemini stand-in (set GEMINI_API_KEY to use the real API)"
	export GEMINI_API_KEY=demo-key
	"$stub" --port 0 --api-key "$GEMINI_API_KEY" --latency 150ms >"$work/stub.out" 2>"$work/stub.err" &
	stub_pid=$!
	wait_for 10 "the stand-in to listen" grep -q '^listening on ' "$work/stub.out"
	api_base=http://$(sed -n 's/^listening on //p' "$work/stub.out")
	echo "stand-in at $api_base"
fi

if [ -n "${DD_DOGSTATSD_URL:-}" ]; then
	statsd=$DD_DOGSTATSD_URL
else
	"$recv" --udp 0 --out "$work/statsd.txt" >"$work/recv.out" &
	recv_pid=$!
	wait_for 10 "the DogStatsD receiver to bind" grep -q '^port ' "$work/recv.out"
	statsd=udp://127.0.0.1:$(sed -n 's/^port //p' "$work/recv.out")
fi

say "starting gbatch-collector on ring $ring, DogStatsD to $statsd"
"$collector" --ring "$ring" --statsd "$statsd" --console summary --flush-interval 500ms \
	>"$work/summary.txt" &
collector_pid=$!
wait_for 10 "the collector to create ring $ring" test -e "/dev/shm/gbatch.$ring"

say "gbatch-processor: $(grep -c . "$demo/questions.txt") questions about $(basename "$demo/content.txt")"
status=0
"$processor" --api-base "$api_base" --telemetry "shm:$ring" --compare \
	--questions "$demo/questions.txt" --output "$build/demo-result.json" "$demo/content.txt" || status=$?

say "efficiency: one batched call against one call per question (full result: $build/demo-result.json)"
sed -n '/^  "efficiency": {/,/^  }/p' "$build/demo-result.json"

say "stopping the collector: it drains the ring and prints its telemetry summary"
kill -TERM "$collector_pid"
wait "$collector_pid" || { echo "demo: the collector exited with status $?" >&2; status=1; }
collector_pid=
cat "$work/summary.txt"

if [ -n "$recv_pid" ]; then
	say "what a DataDog agent would have received: $(grep -vc '^#' "$work/statsd.txt") DogStatsD lines, e.g."
	awk '!/^#/ && n++ < 8' "$work/statsd.txt"
	if grep -q '^!INVALID' "$work/statsd.txt"; then
		echo "demo: the receiver saw invalid DogStatsD lines" >&2
		status=1
	fi
fi

exit "$status"
