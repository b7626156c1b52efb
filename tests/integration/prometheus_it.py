#!/usr/bin/env python3
"""prometheus_it.py - gbatch-collector's /metrics scraped by a real Prometheus server
(/usr/bin/prometheus, started here with a generated configuration, scraping every second),
while real producers (ring-write, gbatch-processor against the Gemini stand-in) write known
records into a real ring. Read back through Prometheus' HTTP API: histogram counts and sums,
counter sums, labels, GenAI names, expiry; `promtool check metrics` on the body; the HTTP
surface (methods, paths, /healthz); bad values and bind failures.

Run by ctest with the collector test's environment plus GBATCH_PROCESSOR and
GBATCH_STUB_GEMINI.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from collector_it import COLLECTOR, CollectorCase, wait_until  # noqa: E402
from statsd_server import Statsd, free_port  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROCESSOR = os.environ.get("GBATCH_PROCESSOR", "")
STUB = os.environ.get("GBATCH_STUB_GEMINI", "")


def http(url, method="GET", timeout=10):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class PrometheusCase(CollectorCase):
    def setUp(self):
        super().setUp()
        for path in (PROMETHEUS, PROMTOOL):
            self.assertTrue(os.access(path, os.X_OK), "%s is not installed" % path)

    def prom_collector(self, ring, *args, env=None):
        """A collector serving /metrics on a free port of 127.0.0.1; returns (proc, port)."""
        c = self.collector(ring, "--prometheus", "127.0.0.1:0", *args, env=env)
        m = wait_until(lambda: re.search(r"serving /metrics on 127\.0\.0\.1:(\d+)",
                                         self.text(self.c_err)), 10, "the metrics port")
        return c, int(m.group(1))

    def metrics(self, port):
        status, headers, body = http("http://127.0.0.1:%d/metrics" % port)
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        return body.decode()

    def prometheus(self, target_port):
        """Starts Prometheus scraping 127.0.0.1:target_port every second; returns its URL."""
        d = os.path.join(self.tmp, "prom-%d" % self.next_id())
        os.makedirs(d)
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: gbatch\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % target_port)
        for _ in range(5):  # a port taken between free_port and Prometheus' bind: another one
            port = free_port(socket.SOCK_STREAM)
            log = open(os.path.join(d, "prometheus.log"), "w")
            p = self.spawn([PROMETHEUS, "--config.file=" + cfg,
                            "--storage.tsdb.path=" + os.path.join(d, "data"),
                            "--web.listen-address=127.0.0.1:%d" % port],
                           stdout=log, stderr=subprocess.STDOUT)
            log.close()
            url = "http://127.0.0.1:%d" % port

            def ready():
                if p.poll() is not None:
                    return "exited"
                try:
                    return http(url + "/-/ready", timeout=2)[0] == 200
                except OSError:
                    return False
            if wait_until(ready, 60, "Prometheus to be ready") is True:
                # its first scrape comes once target discovery settles (a few seconds)
                wait_until(lambda: self.value(url, 'up{job="gbatch"}') == 1, 60,
                           "Prometheus' first scrape of the collector")
                return url
        self.fail("Prometheus did not start: " + self.text(os.path.join(d, "prometheus.log")))

    def query(self, url, q):
        """The instant vector of q as {frozenset(labels): value}."""
        status, _, body = http(url + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
        self.assertEqual(status, 200, body)
        res = json.loads(body)["data"]["result"]
        return {frozenset((k, v) for k, v in r["metric"].items() if k != "__name__"):
                float(r["value"][1]) for r in res}

    def value(self, url, q):
        """The one value of q, or None while there is none."""
        r = self.query(url, q)
        return next(iter(r.values())) if len(r) == 1 else None

    def promtool_clean(self, body):
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        self.assertEqual(r.stdout.decode() + r.stderr.decode(), "")


class Scraped(PrometheusCase):
    def test_prometheus_reads_histograms_counters_gauges_and_labels(self):
        ring = self.ring()
        c, port = self.prom_collector(ring, "--statsd", "off", "--flush-interval", "200ms",
                                      "--tag", "env:test")
        url = self.prometheus(port)
        self.write(ring, "--count", "50", "--kind", "timing",
                   "--scope", "batch.total_processing.batch.attempt",
                   "--parent-len", str(len("batch.total_processing")), "--depth", "1",
                   "--value", "0.125", "--meta", "question_count=5")
        self.write(ring, "--count", "20", "--kind", "timing", "--scope", "batch.attempt",
                   "--value", "3", "--meta", "question_count=5")
        self.write(ring, "--count", "1000", "--kind", "counter", "--scope", "api.calls",
                   "--value", "2", "--meta", "model=flash", "--meta", 'odd"key=a"b\\c')
        self.write(ring, "--count", "3", "--kind", "gauge", "--scope", "inflight", "--value", "7")
        name = 'gbatch_batch_attempt_seconds_count{parent_scope="batch.total_processing"}'
        wait_until(lambda: self.value(url, name) == 50, 30, "50 timings in Prometheus")
        h = 'gbatch_batch_attempt_seconds_%s{parent_scope="batch.total_processing"%s}'
        self.assertEqual(self.value(url, h % ("sum", "")), 6.25)
        self.assertEqual(self.value(url, h % ("bucket", ',le="0.1"')), 0)
        self.assertEqual(self.value(url, h % ("bucket", ',le="0.25"')), 50)
        self.assertEqual(self.value(url, h % ("bucket", ',le="+Inf"')), 50)
        # the top-level series of the same name: 20 samples of 3 s, above the 2.5 s bound
        top = 'gbatch_batch_attempt_seconds_%s{depth="0"%s}'
        wait_until(lambda: self.value(url, top % ("count", "")) == 20, 15, "20 timings")
        self.assertEqual(self.value(url, top % ("sum", "")), 60)
        self.assertEqual(self.value(url, top % ("bucket", ',le="2.5"')), 0)
        self.assertEqual(self.value(url, top % ("bucket", ',le="5"')), 20)
        wait_until(lambda: self.value(url, "gbatch_api_calls_total") == 2000, 15,
                   "the counter sum")
        (labels,) = self.query(url, "gbatch_api_calls_total")
        self.assertEqual(dict(labels), {"job": "gbatch", "instance": "127.0.0.1:%d" % port,
                                        "depth": "0", "model": "flash", "odd_key": 'a"b\\c',
                                        "env": "test"})
        (labels,) = self.query(url, "gbatch_batch_attempt_seconds_count{depth='1'}")
        self.assertEqual(dict(labels)["question_count"], "5")
        wait_until(lambda: self.value(url, "gbatch_inflight") == 7, 15, "the gauge")
        wait_until(lambda: self.value(url, "gbatch_collector_records_read_total") == 1073, 15,
                   "records_read")
        self.assertEqual(self.value(url, 'up{job="gbatch"}'), 1)
        body = self.metrics(port)
        self.promtool_clean(body)
        self.assertIn('gbatch_collector_records_dropped_total{env="test",ring="%s"} 0\n' % ring,
                      body)
        # counters keep their value from scrape to scrape: more records add to them
        self.write(ring, "--count", "10", "--kind", "counter", "--scope", "api.calls",
                   "--value", "2", "--meta", "model=flash", "--meta", 'odd"key=a"b\\c')
        wait_until(lambda: self.value(url, "gbatch_api_calls_total") == 2020, 15,
                   "the counter sum after more records")
        self.assertEqual(self.value(url, "resets(gbatch_api_calls_total[1m])"), 0)
        self.assertEqual(self.stop(c), 0)

    def test_a_series_not_updated_for_the_expiry_leaves(self):
        ring = self.ring()
        c, port = self.prom_collector(ring, "--statsd", "off", "--flush-interval", "100ms",
                                      "--prometheus-expire", "2s")
        url = self.prometheus(port)
        self.write(ring, "--kind", "counter", "--scope", "short.lived", "--value", "4")
        wait_until(lambda: self.value(url, "gbatch_short_lived_total") == 4, 30,
                   "the series in Prometheus")
        wait_until(lambda: "gbatch_short_lived" not in self.metrics(port), 15,
                   "the series to leave /metrics")
        # the next scrape lacks it: Prometheus marks it stale and the query comes back empty
        wait_until(lambda: self.query(url, "gbatch_short_lived_total") == {}, 15,
                   "the series to go stale in Prometheus")
        wait_until(lambda: self.value(url, "gbatch_collector_series_expired_total") == 1, 15,
                   "series_expired")
        self.assertEqual(self.stop(c), 0)

    def test_a_restarted_collector_is_a_counter_reset(self):
        ring = self.ring()
        port = free_port(socket.SOCK_STREAM)
        addr = "127.0.0.1:%d" % port
        c = self.collector(ring, "--statsd", "off", "--flush-interval", "100ms",
                           "--prometheus", addr)
        url = self.prometheus(port)
        self.write(ring, "--count", "30", "--kind", "counter", "--scope", "steps", "--value", "1")
        wait_until(lambda: self.value(url, "gbatch_steps_total") == 30, 30, "30 steps")
        self.assertEqual(self.stop(c), 0)
        c = self.collector(ring, "--statsd", "off", "--flush-interval", "100ms",
                           "--prometheus", addr)
        self.write(ring, "--count", "5", "--kind", "counter", "--scope", "steps", "--value", "1")
        # the new collector counts from 0: Prometheus reads the drop as a reset and rate()
        # and increase() go on across it
        wait_until(lambda: self.value(url, "gbatch_steps_total") == 5, 30, "5 steps after")
        self.assertEqual(self.value(url, "resets(gbatch_steps_total[5m])"), 1)
        self.assertEqual(self.stop(c), 0)

    def test_statsd_and_prometheus_side_by_side(self):
        sd = Statsd(self)
        ring = self.ring()
        c, port = self.prom_collector(ring, "--statsd", "udp://127.0.0.1:%d" % sd.port,
                                      "--flush-interval", "100ms")
        self.write(ring, "--count", "300", "--kind", "counter", "--scope", "both", "--value", "1")
        wait_until(lambda: sd.counter("gbatch.both") == 300, 15, "the counter at statsd")
        wait_until(lambda: 'gbatch_both_total{depth="0"} 300\n' in self.metrics(port), 15,
                   "the counter in /metrics")
        # the StatsD sink's own figures are in /metrics too
        wait_until(lambda: re.search(r"^gbatch_collector_packets_sent_total [1-9]",
                                     self.metrics(port), re.M), 15, "packets_sent")
        self.assertEqual(self.stop(c), 0)

    def test_ten_thousand_series_pass_promtool(self):
        ring = self.ring()
        c, port = self.prom_collector(ring, "--statsd", "off", "--flush-interval", "100ms",
                                      "--max-tag-values", "0")
        self.write(ring, "--count", "10000", "--kind", "counter", "--scope", "many",
                   "--value", "1", "--seq", "0")
        body = wait_until(lambda: (lambda b: b if b.count("gbatch_many_total{") == 10000
                                   else None)(self.metrics(port)), 30, "10 000 series")
        self.promtool_clean(body)
        t = time.monotonic()
        self.metrics(port)
        # a figure for the log, not an assertion
        sys.stderr.write("/metrics with 10 000 series: %.1f ms, %d bytes\n"
                         % ((time.monotonic() - t) * 1000, len(body)))
        self.assertEqual(self.stop(c), 0)


class Genai(PrometheusCase):
    def setUp(self):
        super().setUp()
        for name, path in (("GBATCH_PROCESSOR", PROCESSOR), ("GBATCH_STUB_GEMINI", STUB)):
            self.assertTrue(os.access(path, os.X_OK), "%s=%r is not a program" % (name, path))

    def test_the_processor_s_genai_metrics_under_their_prometheus_names(self):
        out = os.path.join(self.tmp, "stub.out")
        with open(out, "w") as f:
            self.spawn([STUB, "--port", "0", "--api-key", "k"], stdout=f)
        wait_until(lambda: "listening on" in self.text(out), 10, "the stand-in")
        ring = self.ring()
        c, port = self.prom_collector(ring, "--statsd", "off", "--flush-interval", "100ms")
        url = self.prometheus(port)
        q, content = os.path.join(self.tmp, "q.txt"), os.path.join(self.tmp, "c.txt")
        with open(q, "w") as f:
            f.write("What is it?\nWho wrote it?\nWhen?\n")
        with open(content, "w") as f:
            f.write("A short document about the sky.\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GBATCH_", "GEMINI_"))}
        env.update({"GEMINI_API_KEY": "k", "GEMINI_API_BASE": "http://" + self.text(out).split()[-1]})
        r = subprocess.run([PROCESSOR, "--telemetry", "shm:" + ring, "--compare",
                            "--questions", q, content], capture_output=True, timeout=120, env=env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        # one batched call and three single ones
        d = "gen_ai_client_operation_duration_seconds_count"
        wait_until(lambda: sum(self.query(url, d).values()) == 4, 30, "4 GenAI durations")
        for labels in self.query(url, d):
            t = dict(labels)
            self.assertEqual(t["gen_ai_operation_name"], "generate_content")
            self.assertEqual(t["gen_ai_provider_name"], "gcp.gemini")
            self.assertEqual(t["gen_ai_request_model"], "gemini-2.0-flash")
        usage = self.query(url, "gen_ai_client_token_usage_count")
        self.assertEqual({dict(k)["gen_ai_token_type"] for k in usage}, {"input", "output"})
        self.assertEqual(sum(v for k, v in usage.items()
                             if dict(k)["gen_ai_token_type"] == "input"), 4)
        wait_until(lambda: self.value(url, "gbatch_client_api_call_with_retry_seconds_count"
                                      "{parent_scope=~'.*batch.api_call.client.generate_content"
                                      ".client.execute_generation'}") == 1, 15,
                   "the batch's API call")
        wait_until(lambda: sum(self.query(url, "gbatch_api_calls_successful_total").values())
                   == 4, 15, "4 successful calls")
        self.promtool_clean(self.metrics(port))
        self.assertEqual(self.stop(c), 0)


class Surface(PrometheusCase):
    def test_methods_paths_and_health(self):
        ring = self.ring()
        c, port = self.prom_collector(ring, "--statsd", "off")
        base = "http://127.0.0.1:%d" % port
        self.assertEqual(http(base + "/healthz")[0::2], (200, b"ok\n"))
        status, headers, body = http(base + "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        status, headers, _ = http(base + "/metrics", method="POST")
        self.assertEqual((status, headers["Allow"]), (405, "GET, HEAD"))
        self.assertEqual(http(base + "/metrics", method="DELETE")[0], 405)
        self.assertEqual(http(base + "/")[0], 404)
        self.assertEqual(http(base + "/metricsx")[0], 404)
        # the collector's own figures are there from the start, before any record
        self.assertIn("# TYPE gbatch_collector_records_read_total counter\n"
                      "gbatch_collector_records_read_total 0\n", self.metrics(port))
        self.assertEqual(self.stop(c), 0)

    def run_collector(self, *args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        e.update(env or {})
        return subprocess.run([COLLECTOR, "--ring", self.ring(), "--console", "off"] + list(args),
                              capture_output=True, timeout=30, env=e)

    def test_bad_values_exit_2_naming_them(self):
        for args, named in ((["--prometheus", ":99999"], ":99999"),
                            (["--prometheus", "127.0.0.1"], "127.0.0.1"),
                            (["--prometheus", "[::1:9090"], "[::1:9090"),
                            (["--prometheus", "no.such.host.invalid:9090"],
                             "no.such.host.invalid:9090"),
                            (["--prometheus-buckets", "3,1"], "3,1"),
                            (["--prometheus-buckets", "1s,,2s"], "1s,,2s"),
                            (["--prometheus-buckets", "0"], "\"0\""),
                            (["--prometheus-expire", "x"], "\"x\"")):
            r = self.run_collector("--statsd", "off", *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(named, r.stderr.decode(), args)

    def test_a_port_taken_exits_1_naming_the_address(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        addr = "127.0.0.1:%d" % s.getsockname()[1]
        r = self.run_collector("--statsd", "off", "--prometheus", addr)
        s.close()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--prometheus %s: cannot listen: Address already in use" % addr,
                      r.stderr.decode())

    def test_statsd_off_needs_no_statsd_target(self):
        bad = {"DD_DOGSTATSD_URL": "bogus://nowhere"}
        r = self.run_collector("--prometheus-expire", "1s", env=bad)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("bogus://nowhere", r.stderr.decode())
        # with --statsd off the environment's target is not looked at: the collector runs
        ring = self.ring()
        c, port = self.prom_collector(ring, "--statsd", "off", env=bad)
        self.write(ring, "--kind", "counter", "--scope", "alone", "--value", "1")
        wait_until(lambda: 'gbatch_alone_total{depth="0"} 1\n' in self.metrics(port), 15,
                   "the counter in /metrics")
        self.assertEqual(self.stop(c), 0)


if __name__ == "__main__":
    unittest.main()
