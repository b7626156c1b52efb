# shellcheck shell=bash
# stub_lib.sh - sourced by the processor's shell tests to run gbatch-stub-gemini as a real
# process and to count failed checks. The caller sets $stub (the program), $key (the API key)
# and $work (a scratch directory); stub_start sets $stub_pid and $base; its cleanup calls
# stub_stop, and it ends with checks_done.
# shellcheck disable=SC2154,SC2034  # the variables above belong to the sourcing script

# stub_start ARGS...: (re)starts the stand-in on a free port with ARGS, logging requests to
# $work/stub.log (appended); sets $base. Fails if it is not listening within 5 s.
stub_start() {
	if [ -n "$stub_pid" ]; then
		kill "$stub_pid"
		wait "$stub_pid" 2>/dev/null || true
	fi
	rm -f "$work/stub.out"
	"$stub" --port 0 --api-key "$key" --log "$work/stub.log" "$@" >"$work/stub.out" &
	stub_pid=$!
	for _ in $(seq 500); do
		grep -q '^listening on ' "$work/stub.out" 2>/dev/null && break
		sleep 0.01
	done
	base=http://$(sed -n 's/^listening on //p' "$work/stub.out")
	[ "$base" != http:// ] || { echo "stand-in did not start" >&2; exit 1; }
}

# stub_stop: stops the stand-in, if one runs (for the caller's EXIT trap).
stub_stop() {
	if [ -n "$stub_pid" ]; then
		kill "$stub_pid" 2>/dev/null && wait "$stub_pid" 2>/dev/null
	fi
	return 0
}

fails=0

# fail MESSAGE...: one failed check, reported; the script goes on to the next.
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# checks_done: exits 1 when any check failed.
checks_done() {
	[ "$fails" = 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
}
