#!/usr/bin/env python3
"""metrics_it.py - the metrics as a dashboard sees them, with the real processes: the Gemini
stand-in, gbatch-processor writing into a ring, gbatch-collector draining it into the real
Etsy statsd daemon, read back through its management port. One API call is one metric name
wherever it is made; a jobs run makes a handful of tag sets per metric, never one per job;
producers cannot set the agent's or the collector's tags; the GenAI metrics arrive under their
OpenTelemetry names.

Run by ctest with the collector test's environment plus GBATCH_PROCESSOR, GBATCH_STUB_GEMINI.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from collector_it import CollectorCase, wait_until  # noqa: E402
from statsd_server import Statsd  # noqa: E402

PROCESSOR = os.environ.get("GBATCH_PROCESSOR", "")
STUB = os.environ.get("GBATCH_STUB_GEMINI", "")


class Dashboard(CollectorCase):
    def setUp(self):
        super().setUp()
        for name, path in (("GBATCH_PROCESSOR", PROCESSOR), ("GBATCH_STUB_GEMINI", STUB)):
            self.assertTrue(os.access(path, os.X_OK), "%s=%r is not a program" % (name, path))
        out = os.path.join(self.tmp, "stub.out")
        with open(out, "w") as f:
            self.spawn([STUB, "--port", "0", "--api-key", "k"], stdout=f)
        wait_until(lambda: "listening on" in self.text(out), 10, "the stand-in")
        self.base = "http://" + self.text(out).split()[-1]
        self.sd = Statsd(self)
        self.ring_name = self.ring()
        self.c = self.collector(self.ring_name, "--statsd", "udp://127.0.0.1:%d" % self.sd.port,
                                "--flush-interval", "100ms")

    def process(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GBATCH_", "GEMINI_"))}
        env.update({"GEMINI_API_KEY": "k", "GEMINI_API_BASE": self.base})
        r = subprocess.run([PROCESSOR, "--telemetry", "shm:" + self.ring_name] + list(args),
                           capture_output=True, timeout=120, env=env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return r

    def keys(self, kind, name):
        """The statsd keys ("name;tag=value;...") of metric name among counters or timers."""
        table = self.sd.counters() if kind == "c" else self.sd.timers()
        return [k for k in table if k.split(";")[0] == name]

    def tags(self, key):
        return dict(t.split("=", 1) for t in key.split(";")[1:])

    def test_one_api_call_is_one_metric_from_the_batch_and_the_comparison(self):
        q, c = os.path.join(self.tmp, "q.txt"), os.path.join(self.tmp, "c.txt")
        with open(q, "w") as f:
            f.write("What is it?\nWho wrote it?\nWhen?\n")
        with open(c, "w") as f:
            f.write("A short document about the sky.\n")
        self.process("--compare", "--questions", q, c)
        # one batched call and three single ones (the comparison), all one metric
        name = "gbatch.client.api_call_with_retry"
        wait_until(lambda: self.sd.timer_samples(name) == 4, 15, "four API call timings")
        parents = {self.tags(k).get("parent_scope") for k in self.keys("ms", name)}
        self.assertEqual(parents, {
            "batch.total_processing.batch.attempt.batch.processing.batch.api_call."
            "client.generate_content.client.execute_generation",
            "batch.total_processing.batch.comparison_run.individual.processing."
            "individual.question.client.generate_content.client.execute_generation"})
        # no call path in any name, no id in any tag
        for k in list(self.sd.timers()) + list(self.sd.counters()):
            self.assertNotIn("total_processing.", k.split(";")[0], k)
            self.assertNotIn("question_index", k)
        # the OpenTelemetry GenAI metrics, without the prefix
        wait_until(lambda: self.sd.timer_samples("gen_ai.client.operation.duration") == 4, 15,
                   "gen_ai.client.operation.duration")
        usage = self.keys("ms", "gen_ai.client.token.usage")
        types = {self.tags(k)["gen_ai.token.type"] for k in usage}
        self.assertEqual(types, {"input", "output"})
        for k in usage:
            t = self.tags(k)
            self.assertEqual(t["gen_ai.operation.name"], "generate_content")
            self.assertEqual(t["gen_ai.provider.name"], "gcp.gemini")
            self.assertEqual(t["gen_ai.request.model"], "gemini-2.0-flash")
        self.assertEqual(self.sd.bad_lines(), 0)

    def test_three_hundred_jobs_make_a_handful_of_tag_sets(self):
        jobs = os.path.join(self.tmp, "jobs.jsonl")
        with open(jobs, "w") as f:
            for i in range(300):
                f.write(json.dumps({"id": "job-%d" % i, "content": "Document %d." % i,
                                    "questions": ["First?", "Second?"][: 1 + i % 2]}) + "\n")
        # 100 requests a second: the telemetry reaches statsd in a stream, not one burst that
        # could overflow its socket on a busy machine
        self.process("--jobs", jobs, "--parallel", "8", "--rpm", "100", "--rate-window", "1s",
                     "--tpm", "0", "--output", os.path.join(self.tmp, "out.jsonl"))
        wait_until(lambda: self.sd.timer_samples("gbatch.job.processing") == 300, 30,
                   "300 job timings")
        wait_until(lambda: self.sd.counter("gbatch.jobs_completed") == 300, 20,
                   "300 jobs completed")
        for name in ("gbatch.job.processing", "gbatch.job.queue_wait",
                     "gen_ai.client.operation.duration", "gen_ai.client.token.usage"):
            keys = self.keys("ms", name)
            self.assertGreater(len(keys), 0, name)
            self.assertLessEqual(len(keys), 4, "%s: %d tag sets: %s" % (name, len(keys), keys[:5]))
            for k in keys:
                for banned in ("job_id", "line=", "question_count", "question_index"):
                    self.assertNotIn(banned, k)
        self.assertEqual(self.sd.bad_lines(), 0)

    def test_a_producer_cannot_set_reserved_tags(self):
        self.write(self.ring_name, "--kind", "counter", "--scope", "spoof", "--count", "5",
                   "--meta", "dd.internal.entity_id=pod-of-someone-else",
                   "--meta", "env=prod-from-producer", "--meta", "host=spoofed",
                   "--meta", "DD.Internal.Card=high", "--meta", "model=flash")
        wait_until(lambda: self.sd.counter("gbatch.spoof") == 5, 15, "the counter")
        (key,) = self.keys("c", "gbatch.spoof")
        t = self.tags(key)
        for reserved in ("dd.internal.entity_id", "env", "host", "dd.internal.card"):
            self.assertNotIn(reserved, t, key)
            self.assertIn("user_" + reserved, t, key)
        self.assertEqual(t["model"], "flash")
        self.assertEqual(self.stop(self.c), 0)
        # the report at exit: four renamed tags on each of the five records
        wait_until(lambda: self.sd.counter("gbatch.collector.tags_renamed") == 20, 15,
                   "tags_renamed in the last self-report")


if __name__ == "__main__":
    unittest.main()
