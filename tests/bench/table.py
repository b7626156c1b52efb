#!/usr/bin/env python3
"""table.py RESULTS.jsonl NPROC KERNEL COMPILER - prints tests/bench/run.sh's table from the
benchmarks' JSON lines (one per benchmark, {"bench": NAME, ...}): the ratios first, each figure
against the baseline measured in the same run, then the absolute figures. A benchmark missing
from RESULTS is left out of the table, not guessed."""
import json
import sys


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                out[rec["bench"]] = rec
    return out


def ratios(b):
    rows = []
    r = b.get("ring")
    if r:
        rows.append(("ring write / Aeron's algorithm, one thread (ring_bench)",
                     r["ring_1thread_ns"] / r["aeron_1thread_ns"]))
        rows.append(("ring write / Aeron's algorithm, two threads (ring_bench)",
                     r["ring_2threads_ns_per_thread"] / r["aeron_2threads_ns_per_thread"]))
        rows.append(("one DogStatsD sendto / one ring write (ring_bench)", r["sendto_over_ring"]))
    t = b.get("tele")
    if t:
        for i, cpu in enumerate(t["cpus"]):
            rows.append(("counter through the context / shm reporter alone, cpu %d (tele_bench)"
                         % cpu, t["shm_counter_ns"][i] / t["shm_record_ns"][i]))
        for i, cpu in enumerate(t["cpus"]):
            rows.append(("enabled scope with a sendto per record / into the ring, cpu %d" % cpu,
                         t["udp_scope_ns"][i] / t["shm_scope_ns"][i]))
    w = b.get("wake")
    if w:
        for key, v in patterns(w):
            rows.append(("gb_tele_count, live collector / none, bursts %s (wake_bench)" % key,
                         v["live_ns"] / v["alone_ns"]))
    c = b.get("collector")
    if c:
        for name, base, label in c.get("ratios", []):
            rows.append(("collector: %s (collector_bench)" % label,
                         c["runs"][name]["records_per_s"] / c["runs"][base]["records_per_s"]))
    rows += jobs_curl_ratios(b)
    m = b.get("memory")
    if m:
        rows.append(("collector peak RSS, caps on / off, %d names (memory_bench)" % m["names"],
                     m["capped"]["peak_kib"] / m["nocap"]["peak_kib"]))
    rows += threads_ratios(b)
    rows += batch_ratios(b.get("batch"))
    return rows


# ---- the Batch API (batch_bench.py) ----

BATCH_RUNS = (("clean", "all answered"), ("errors5", "5% failed, asked again"))


def batch_ratios(a):
    rows = []
    for tag, label in BATCH_RUNS if a else ():
        r = a[tag]
        rows.append(("--batch-api / interactive, billed tokens a job, %s (batch_bench)" % label,
                     r["batch"]["billed_tokens_per_job"] / r["interactive"]["billed_tokens_per_job"]))
    return rows


def batch_absolutes(a):
    rows = []
    for tag, label in BATCH_RUNS if a else ():
        for mode in ("interactive", "batch"):
            r = a[tag][mode]
            rows.append(("%s, %s: requests / billed tokens a job (%d jobs)"
                         % ("--batch-api" if mode == "batch" else "--jobs", label, a["jobs"]),
                         "%.3f / %.1f" %
                         (r["requests_per_job"], r["billed_tokens_per_job"])))
    return rows


# --- the context under 8 threads (tele_bench's "tele_threads" line) ---
def threads_ratios(b):
    t = b.get("tele_threads")
    if not t:
        return []
    n = t["threads"]
    return [("%d threads: one shared context / a context each (tele_bench)" % n,
             t["shared_over_each"]),
            ("%d threads: one shared context / shm reporter alone (tele_bench)" % n,
             t["shared_over_direct"])]


def threads_absolutes(b):
    t = b.get("tele_threads")
    if not t:
        return []
    n = t["threads"]
    return [("%d threads, counters into one ring, one shared context" % n,
             "%.1f ns CPU/record" % t["shared_context_ns"]),
            ("%d threads, a context each" % n, "%.1f ns CPU/record" % t["context_each_ns"]),
            ("%d threads, shm reporter alone" % n, "%.1f ns CPU/record" % t["shm_direct_ns"])]
# --- end of the 8-thread block ---


def patterns(w):
    return [(k, v) for k, v in w.items() if isinstance(v, dict) and "live_ns" in v]


def absolutes(b):
    rows = []
    r = b.get("ring")
    if r:
        rows += [("ring write, 64-byte record, one thread", "%.1f ns" % r["ring_1thread_ns"]),
                 ("the same, two threads on one ring, per thread",
                  "%.1f ns" % r["ring_2threads_ns_per_thread"]),
                 ("baseline: Aeron's algorithm, one thread", "%.1f ns" % r["aeron_1thread_ns"]),
                 ("baseline: Aeron's algorithm, two threads, per thread",
                  "%.1f ns" % r["aeron_2threads_ns_per_thread"]),
                 ("baseline: DogStatsD line, sendto on loopback", "%.0f ns" % r["sendto_ns"]),
                 ("ring drained by a consumer in another process",
                  "%.0f M records/s" % (r["drain_records_per_s"] / 1e6))]
    t = b.get("tele")
    if t:
        cpus = " / ".join("cpu %d" % c for c in t["cpus"])

        def each(key, fmt):
            return " / ".join(fmt % x for x in t[key]) + " ns"
        rows += [("disabled GB_SCOPE, " + cpus, each("disabled_scope_ns", "%.2f")),
                 ("shm reporter alone, one counter record, " + cpus, each("shm_record_ns", "%.1f")),
                 ("gb_tele_count into the ring, " + cpus, each("shm_counter_ns", "%.1f")),
                 ("gb_tele_count, the first 20000 into a new ring (cold), " + cpus,
                  each("shm_counter_cold_ns", "%.1f")),
                 ("enabled scope into the ring, " + cpus, each("shm_scope_ns", "%.1f")),
                 ("baseline: enabled scope, one sendto per record, " + cpus,
                  each("udp_scope_ns", "%.0f")),
                 ("producer memory, 2 M distinct names / one name",
                  "+%d KiB / +%d KiB" % (t["distinct_names_rss_kib"], t["one_name_rss_kib"]))]
    w = b.get("wake")
    if w:
        for key, v in patterns(w):
            rows.append(("gb_tele_count, bursts %s: none / live collector, FUTEX_WAKEs" % key,
                         "%.1f / %.1f ns, %d" % (v["alone_ns"], v["live_ns"], v["wakes"])))
        rows.append(("record to datagram, collector asleep: median / max",
                     "%d / %d us" % (w["asleep_us"]["median"], w["asleep_us"]["max"])))
        rows.append(("record to datagram, collector awake: median / max",
                     "%d / %d us" % (w["awake_us"]["median"], w["awake_us"]["max"])))
    c = b.get("collector")
    if c:
        for name, run in c["runs"].items():
            rows.append(("collector: %s" % run["label"], "%.2f M records/s, %d lost" %
                         (run["records_per_s"] / 1e6, run["lost"])))
    j = b.get("jobs")
    if j:
        for run in j["runs"]:
            rows.append(("--jobs, stand-in latency %s, --parallel %d" % (run["latency"], run["parallel"]),
                         "%.0f requests/s, %.0f us CPU/request" %
                         (run["requests_per_s"], run["cpu_us_per_request"])))
    rows += jobs_curl_absolutes(b)
    m = b.get("memory")
    if m:
        rows += [("collector peak RSS, %d names, caps on / off" % m["names"],
                  "%.1f / %.1f MiB" % (m["capped"]["peak_kib"] / 1024, m["nocap"]["peak_kib"] / 1024)),
                 ("collector peak RSS, console summary of %d scopes" % m["scopes"],
                  "%.1f MiB" % (m["summary"]["peak_kib"] / 1024))]
    rows += threads_absolutes(b)
    rows += batch_absolutes(b.get("batch"))
    return rows


# ---- jobs_bench's baseline: the processor's requests sent by curl --parallel ----

def jobs_curl_ratios(b):
    c = b.get("jobs", {}).get("curl_baseline")
    if not c:
        return []
    return [("--jobs / curl --parallel, CPU per request, same requests, --parallel %d (jobs_bench)"
             % c["parallel"], c["processor_over_curl_cpu"])]


def jobs_curl_absolutes(b):
    c = b.get("jobs", {}).get("curl_baseline")
    if not c:
        return []
    return [("--jobs, stand-in latency 0, --parallel %d, median of %d runs" % (c["parallel"], c["rounds"]),
             "%.0f requests/s, %.0f us CPU/request" %
             (c["processor_requests_per_s"], c["processor_cpu_us_per_request"])),
            ("baseline: curl --parallel-max %d, the same %d requests, %d connections" %
             (c["parallel"], c["requests"], c["curl_connections"]),
             "%.0f requests/s, %.0f us CPU/request" %
             (c["curl_requests_per_s"], c["curl_cpu_us_per_request"]))]

# ---- end of jobs_bench's baseline ----


def table(rows, head):
    width = max([len(head[0])] + [len(r[0]) for r in rows])
    vwidth = max([len(head[1])] + [len(r[1]) for r in rows])
    print("| %s | %s |" % (head[0].ljust(width), head[1].rjust(vwidth)))
    print("|%s|%s:|" % ("-" * (width + 2), "-" * (vwidth + 1)))
    for label, value in rows:
        print("| %s | %s |" % (label.ljust(width), value.rjust(vwidth)))


# ---- the collector: tag variety, the sendmmsg baseline, instructions per record ----
# collector_bench's "variety" and "sendmmsg" runs and run.sh's callgrind counts
# (collector_instr); each row is left out when its figures are missing. The whole of it is
# here, joined to ratios() and absolutes() at its end.

def collector_ratios(b):
    rows = []
    c = b.get("collector", {})
    v, s = c.get("variety"), c.get("sendmmsg")
    if v:
        one = v["one"]["cpu_us_per_record"]
        rows.append(("collector: drain CPU per record, 100 values of a tag / 1 value (collector_bench)",
                     v["values100"]["cpu_us_per_record"] / one))
        rows.append(("collector: drain CPU per record, 10 call sites x 100 values / 1 value (collector_bench)",
                     v["sites10x100"]["cpu_us_per_record"] / one))
    if v and s:
        for key, label in (("one", "one value"), ("sites10x100", "10 x 100 values")):
            rows.append(("collector: drain / plain sendmmsg loop, datagrams/s, %s (collector_bench)" % label,
                         v[key]["datagrams_per_s"] / s[key]["datagrams_per_s"]))
            rows.append(("collector: drain / plain sendmmsg loop, datagrams per CPU second, %s" % label,
                         s[key]["cpu_us_per_datagram"] / v[key]["cpu_us_per_datagram"]))
    i = b.get("collector_instr")
    if i:
        rows.append(("collector: drain instructions per record, 100 values / 1 value (callgrind)",
                     i["values100"] / i["packed"]))
        rows.append(("collector: drain instructions per record, 10 x 100 values / 1 value (callgrind)",
                     i["sites10x100"] / i["packed"]))
    return rows


def collector_absolutes(b):
    rows = []
    c = b.get("collector", {})
    for run in c.get("variety", {}).values():
        rows.append(("collector: %s" % run["label"], "%.2f M records/s, %.3f us CPU/record, %d lost" %
                     (run["records_per_s"] / 1e6, run["cpu_us_per_record"], run["lost"])))
    for run in c.get("sendmmsg", {}).values():
        rows.append(("baseline: %s" % run["label"], "%.0f datagrams/s, %.3f us CPU/datagram, %d lost" %
                     (run["datagrams_per_s"], run["cpu_us_per_datagram"], run["lost"])))
    i = b.get("collector_instr")
    if i:
        rows.append(("collector drain, instructions per record: 1 value / 100 values / 10 x 100",
                     "%.0f / %.0f / %.0f" % tuple(i[k] / i["records"]
                                                  for k in ("packed", "values100", "sites10x100"))))
    return rows


# The block's rows follow the others' in both tables.
def _with_collector_rows(rows_of, more_of):
    return lambda b: rows_of(b) + more_of(b)


ratios = _with_collector_rows(ratios, collector_ratios)
absolutes = _with_collector_rows(absolutes, collector_absolutes)
# ---- end of the collector's variety block ----


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: table.py RESULTS.jsonl NPROC KERNEL COMPILER")
    b = load(sys.argv[1])
    print("tests/bench/run.sh: nproc %s, %s, %s, RelWithDebInfo" % tuple(sys.argv[2:5]))
    print()
    table([(l, "%.2fx" % v) for l, v in ratios(b)], ("ratio (figure / its baseline, same run)", "ratio"))
    print()
    table(absolutes(b), ("figure", "value"))


if __name__ == "__main__":
    main()
