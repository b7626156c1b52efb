#!/usr/bin/env bash
# prometheus_reporter.sh BIN - runs examples/prometheus_reporter against a real Prometheus
# Pushgateway started on a free loopback port, reads the pushed series back from its /metrics
# and checks the pushed exposition with promtool.
set -euo pipefail
bin=$1
for cmd in prometheus-pushgateway promtool curl python3; do
	command -v "$cmd" >/dev/null || { echo "missing $cmd: run deploy/install-deps.sh test" >&2; exit 1; }
done

tmp=$(mktemp -d)
gw_pid=
cleanup() {
	if [ -n "$gw_pid" ]; then
		kill "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the gateway; another process may take the port between free_port and the bind, so try
# a few ports. Ready when /-/ready answers, within a 20 s deadline per try.
for _ in 1 2 3; do
	port=$(free_port)
	prometheus-pushgateway --web.listen-address="127.0.0.1:$port" --persistence.file="" \
		>"$tmp/gw.log" 2>&1 &
	gw_pid=$!
	deadline=$((SECONDS + 20))
	until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; do
		if ! kill -0 "$gw_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			kill "$gw_pid" 2>/dev/null || true
			wait "$gw_pid" 2>/dev/null || true
			gw_pid=
			break
		fi
		sleep 0.05
	done
	[ -n "$gw_pid" ] && break
done
if [ -z "$gw_pid" ]; then
	echo "pushgateway did not become ready:" >&2
	cat "$tmp/gw.log" >&2
	exit 1
fi

job="gbatch_test_$$"
"$bin" --pushgateway "http://127.0.0.1:$port" --job "$job" --print >"$tmp/pushed.prom"
promtool check metrics <"$tmp/pushed.prom"

curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/gateway.prom"
fail=0
expect() {
	if ! grep -qxF "$1" "$tmp/gateway.prom"; then
		echo "pushgateway /metrics lacks: $1" >&2
		fail=1
	fi
}
expect "gemini_api_duration_seconds_count{instance=\"\",job=\"$job\"} 4"
expect "gemini_api_duration_seconds_bucket{instance=\"\",job=\"$job\",le=\"+Inf\"} 4"
expect "gemini_batch_operations_total{instance=\"\",job=\"$job\",status=\"success\"} 3"
expect "gemini_batch_operations_total{instance=\"\",job=\"$job\",status=\"failure\"} 1"
expect "gemini_tokens_total{instance=\"\",job=\"$job\"} 1203"
expect "# TYPE gemini_api_duration_seconds histogram"
if [ $fail -ne 0 ]; then
	grep gemini_ "$tmp/gateway.prom" >&2 || true
	exit 1
fi

# A push to a gateway that is gone fails with a message naming the URL, never hangs.
kill "$gw_pid"
wait "$gw_pid" 2>/dev/null || true
gw_pid=
if "$bin" --pushgateway "http://127.0.0.1:$port" --job "$job" 2>"$tmp/err"; then
	echo "push to a stopped gateway succeeded" >&2
	exit 1
fi
grep -q "push to http://127.0.0.1:$port/metrics/job/$job failed" "$tmp/err"
echo "prometheus_reporter: pushed, read back and checked"
