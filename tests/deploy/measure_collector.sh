#!/usr/bin/env bash
# measure_collector.sh - the figures deploy/k8s sizes the collector's requests and limits
# from: its peak RSS and CPU time while draining a 4 MiB ring into a StatsD server on
# loopback, and its CPU time when idle. A program that prints figures, not a test.
#
#   tests/deploy/measure_collector.sh COLLECTOR POD_PRODUCER STATSD_DIR [BATCHES] [PER_BATCH]
# Writes BATCHES (default 50) producer runs of PER_BATCH (default 20000) timing records each:
# timings are the collector's heaviest path (one StatsD line per record; counters are folded).
set -euo pipefail

collector=$1 producer=$2 statsd_dir=$3
batches=${4:-50} per_batch=${5:-20000}
ring=measure-$$
tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -f "/dev/shm/gbatch.$ring"
	rm -rf "$tmp"
}
trap cleanup EXIT

# CPU seconds (user + system) of a process, from /proc/PID/stat fields 14 and 15.
cpu_seconds() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
		"/proc/$1/stat"
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

port=18125 mgmt=18126
echo "{ port: $port, mgmt_port: $mgmt, address: \"127.0.0.1\", mgmt_address: \"127.0.0.1\"," \
	"flushInterval: 3600000, backends: [] }" >"$tmp/statsd.js"
node "$statsd_dir/node_modules/statsd/stats.js" "$tmp/statsd.js" >"$tmp/statsd.log" 2>&1 &
pids+=($!)
"$collector" --ring "$ring" --statsd "udp://127.0.0.1:$port" --console off 2>"$tmp/collector.log" &
coll=$!
pids+=("$coll")
for _ in $(seq 100); do [ -e "/dev/shm/gbatch.$ring" ] && break; sleep 0.05; done

idle0=$(cpu_seconds "$coll")
sleep 5
idle1=$(cpu_seconds "$coll")
echo "idle: cpu $(echo "$idle1 - $idle0" | bc) s over 5 s, rss $(status_kib "$coll" VmRSS) KiB"

start=$(date +%s.%N)
c0=$(cpu_seconds "$coll")
for _ in $(seq "$batches"); do
	"$producer" --ring "$ring" --count "$per_batch" --timing >/dev/null || true
done
c1=$(cpu_seconds "$coll")
end=$(date +%s.%N)
total=$((batches * per_batch))
echo "draining: $total records written in $(echo "$end - $start" | bc) s;" \
	"collector cpu $(echo "$c1 - $c0" | bc) s; peak rss $(status_kib "$coll" VmHWM) KiB"
kill -TERM "$coll"
wait "$coll"
grep -E 'drained' "$tmp/collector.log"
