#!/usr/bin/env python3
"""batch_it.py - gbatch-processor --jobs --batch-api with the real processes: the processor
against the stand-in's Batch API (tests/stub_gemini/stub_batch.c), which logs every request.

2 000 jobs go into exactly one batch and come out answered once each, with the answers and
usage of the interactive run of the same file; a run killed while it polls is resumed on the
same batch (no second submission, no job twice); per-request errors are repaired
interactively, or left with --batch-no-repair; expired and failed batches leave their jobs to
--resume; a batch too large to send inline goes as a file; a creation whose answer was lost is
found again instead of being made twice; --batch-cancel; and the usage errors.

Run by ctest (integration.batch_api) with GBATCH_PROCESSOR and GBATCH_STUB_GEMINI in the
environment.
"""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from stub_case import PROCESSOR, StubCase

DEADLINE = 180
# What differs between a batch run and an interactive run of the same job, by design.
RUN_ONLY = ("mode", "batch_api", "processing_time", "metrics", "usage")


def ops(log, op):
    return [r for r in log if r.get("batch_op") == op]


def generate_calls(log):
    return [r for r in log if r["path"].endswith(":generateContent")]


class BatchCase(StubCase):
    KEY = "batch-test-key"
    PREFIX = "gbatch-batch-"

    def run_proc(self, base, args):
        r = subprocess.run([PROCESSOR, "--telemetry", "off", "--rpm", "1000000", "--tpm", "0"] +
                           list(args), env=self.env(base), timeout=DEADLINE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return r.returncode, r.stderr.decode(errors="replace")

    def jobs(self, n, content_size=0, name="jobs.jsonl"):
        lines = []
        for i in range(n):
            content = "Document %d is about the number %d and its neighbours." % (i, i)
            if content_size:
                content = (content + " ") * (content_size // (len(content) + 1) + 1)
            lines.append(json.dumps({"id": "job-%d" % i if i % 2 else i, "content": content,
                                     "questions": ["What is document %d about?" % i,
                                                   "Which number is it?"][:1 + i % 2]}))
        return self.path(name, "\n".join(lines) + "\n")

    def results(self, path):
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def by_id(self, rows):
        out = {}
        for r in rows:
            key = json.dumps(r["id"])
            self.assertNotIn(key, out, "job %s written twice" % key)
            out[key] = r
        return out

    def batch_args(self, jobs, out, *more):
        return ["--jobs", jobs, "--output", out, "--batch-api", "--batch-poll", "50ms",
                "--no-progress"] + list(more)

    def state_path(self, out):
        return out + ".batch.json"

    def polling(self, base, log, args, gets=1):
        """Starts the processor with args; returns it once it has polled the batch gets times."""
        p = subprocess.Popen([PROCESSOR, "--telemetry", "off"] + args, env=self.env(base),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(p)
        deadline = time.monotonic() + 30
        while not (os.path.exists(log) and len(ops(self.log(log), "get")) >= gets):
            self.assertLess(time.monotonic(), deadline, "the processor never polled")
            time.sleep(0.02)
        return p

    def kill_after_polling(self, base, log, args, gets=1):
        p = self.polling(base, log, args, gets)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=10)

    # ---- the whole run ----

    def test_2000_jobs_in_one_batch_answer_as_the_interactive_run(self):
        jobs = self.jobs(2000)
        base, log = self.stub("--batch-time", "300ms")
        out = self.path("batch.jsonl")
        rc, berr = self.run_proc(base, self.batch_args(jobs, out, "--parallel", "4"))
        self.assertEqual(rc, 0, berr)
        lg = self.log(log)
        self.assertEqual(len(ops(lg, "create")), 1, "exactly one batch is submitted")
        self.assertEqual(ops(lg, "create")[0]["requests"], 2000)
        self.assertEqual(ops(lg, "create")[0]["input"], "inline")
        self.assertEqual(generate_calls(lg), [], "nothing is asked interactively")
        self.assertGreaterEqual(len(ops(lg, "get")), 1)
        self.assertFalse(os.path.exists(self.state_path(out)), "the state file is removed")
        batch = self.by_id(self.results(out))
        self.assertEqual(len(batch), 2000)

        ibase, ilog = self.stub()
        iout = self.path("interactive.jsonl")
        rc, err = self.run_proc(ibase, ["--jobs", jobs, "--output", iout, "--parallel", "8",
                                        "--no-progress"])
        self.assertEqual(rc, 0, err)
        inter = self.by_id(self.results(iout))
        self.assertEqual(set(batch), set(inter))
        name = ops(lg, "create")[0]["batch"]
        for key, row in batch.items():
            self.assertEqual(row["mode"], "batch")
            self.assertEqual(row["batch_api"]["name"], name)
            self.assertEqual(row["batch_api"]["answers_from_batch"], row["question_count"])
            self.assertEqual(row["batch_api"]["answers_asked"], 0)
            self.assertEqual(row["usage"]["total_tokens"], inter[key]["usage"]["total_tokens"])
            self.assertEqual(row["usage"]["prompt_tokens"], inter[key]["usage"]["prompt_tokens"])
            self.assertEqual(row["usage"]["output_tokens"], inter[key]["usage"]["output_tokens"])
            billable = row["usage"]["prompt_tokens"] + row["usage"]["output_tokens"]
            self.assertEqual(row["batch_api"]["billable_tokens"], billable)
            self.assertAlmostEqual(row["batch_api"]["billable_tokens_at_batch_rate"], billable / 2)
            same = {k: v for k, v in row.items() if k not in RUN_ONLY}
            other = {k: v for k, v in inter[key].items() if k not in RUN_ONLY}
            self.assertEqual(same, other, "job %s differs from the interactive run" % key)
        # the summary gives both rates
        total = sum(r["batch_api"]["billable_tokens"] for r in batch.values())
        self.assertIn("3000 answers from the batch, 0 asked interactively; billable tokens %d"
                      % total, berr)
        self.assertIn("billed as %.0f interactive tokens" % (total / 2), berr)

    def test_a_run_killed_while_polling_resumes_the_same_batch(self):
        jobs = self.jobs(300)
        base, log = self.stub("--batch-time", "4s")
        out = self.path("out.jsonl")
        self.kill_after_polling(base, log, self.batch_args(jobs, out), gets=2)
        state = json.loads(self.text(self.state_path(out)))
        name = ops(self.log(log), "create")[0]["batch"]
        self.assertEqual(state["name"], name)
        self.assertEqual(len(state["jobs"]), 300)
        self.assertEqual(self.results(out), [], "nothing is written before the batch ends")

        rc, err = self.run_proc(base, self.batch_args(jobs, out, "--resume"))
        self.assertEqual(rc, 0, err)
        lg = self.log(log)
        self.assertEqual(len(ops(lg, "create")), 1, "no second submission")
        self.assertTrue(all(r["batch"] == name for r in ops(lg, "get")))
        self.assertEqual(generate_calls(lg), [])
        self.assertEqual(len(self.by_id(self.results(out))), 300)
        self.assertFalse(os.path.exists(self.state_path(out)))

    def test_a_stopped_run_keeps_the_batch_for_resume_and_without_resume_refuses(self):
        jobs = self.jobs(20)
        base, log = self.stub("--batch-time", "3s")
        out = self.path("out.jsonl")
        p = self.polling(base, log, self.batch_args(jobs, out))
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 3, err)
        self.assertIn("--resume", err.decode())
        rc, err = self.run_proc(base, self.batch_args(jobs, out))
        self.assertEqual(rc, 2, err)
        self.assertIn(self.state_path(out), err)
        self.assertEqual(len(ops(self.log(log), "create")), 1)

    def test_a_run_stopped_before_the_batch_was_named_finds_it_by_display_name(self):
        jobs = self.jobs(40)
        base, log = self.stub("--batch-time", "2s")
        out = self.path("out.jsonl")
        self.kill_after_polling(base, log, self.batch_args(jobs, out, "--batch-name",
                                                           "nightly run 7"))
        # as if killed between the creation and the answer naming the batch
        state = json.loads(self.text(self.state_path(out)))
        self.assertEqual(state["display_name"], "nightly run 7")
        state["name"] = ""
        with open(self.state_path(out), "w") as f:
            json.dump(state, f)
        rc, err = self.run_proc(base, self.batch_args(jobs, out, "--resume"))
        self.assertEqual(rc, 0, err)
        lg = self.log(log)
        self.assertEqual(len(ops(lg, "create")), 1, "found, not created again")
        self.assertGreaterEqual(len(ops(lg, "list")), 1)
        self.assertIn("found by its display name", err)
        self.assertEqual(len(self.by_id(self.results(out))), 40)

    def test_telemetry_and_progress_of_a_batch(self):
        jobs = self.jobs(50)
        base, log = self.stub("--batch-time", "600ms")
        out = self.path("out.jsonl")
        r = subprocess.run([PROCESSOR, "--telemetry", "console", "--jobs", jobs, "--output", out,
                            "--batch-api", "--batch-poll", "50ms", "--progress"],
                           env=self.env(base), timeout=DEADLINE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 0, err)
        # the live line has no newline: records may follow it on the same line
        states = re.findall(r"\[METRIC\] batch_job\.state: (\d+) \(([^)]*)\)", err)
        self.assertEqual([v for v, _ in states], ["1", "2", "3"], states)
        for (_, tags), name in zip(states, ("pending", "running", "succeeded")):
            self.assertIn("state=%s, mode=batch" % name, tags)
        self.assertEqual(err.count("[TIMING] batch_job.poll:"), len(ops(self.log(log), "get")))
        self.assertEqual(len(re.findall(r"\[METRIC\] batch_job\.requests: 50 ", err)), 1)
        tokens = re.findall(r"\[METRIC\] gen_ai\.client\.token\.usage: \d+ \(([^)]*)\)", err)
        self.assertEqual(len(tokens), 100, "input and output of each of the 50 answers")
        self.assertTrue(all("mode=batch" in t for t in tokens))
        self.assertNotIn("gen_ai.client.operation.duration", err)
        lines = err.replace("\r", "\n").split("\n")
        live = [l for l in lines if " running: " in l and "since submit" in l]
        self.assertTrue(live, "no live line while the batch ran")
        self.assertRegex(live[-1], r"running: \d+ pending, \d+ succeeded, 0 failed, 0m0\ds since "
                         r"submit, next poll in \d+s")

    def test_caches_outlive_a_stopped_run_and_go_with_the_batch(self):
        shared = "The shared report, paragraph after paragraph of findings. " * 200
        lines = [json.dumps({"id": i, "content": shared, "questions": ["Question %d?" % i]})
                 for i in range(30)]
        jobs = self.path("jobs.jsonl", "\n".join(lines) + "\n")
        base, log = self.stub("--batch-time", "2s")
        out = self.path("out.jsonl")
        args = self.batch_args(jobs, out, "--cache", "--cache-min-tokens", "100")
        self.kill_after_polling(base, log, args)
        lg = self.log(log)
        created = [r for r in lg if r["method"] == "POST" and r["path"].endswith("/cachedContents")]
        self.assertEqual(len(created), 1)
        self.assertEqual([r for r in lg if r["method"] == "DELETE"], [])
        self.assertEqual(len(json.loads(self.text(self.state_path(out)))["caches"]), 1)
        rc, err = self.run_proc(base, self.batch_args(jobs, out, "--resume", "--cache",
                                                      "--cache-min-tokens", "100"))
        self.assertEqual(rc, 0, err)
        lg = self.log(log)
        self.assertEqual(len([r for r in lg if r["method"] == "POST" and
                              r["path"].endswith("/cachedContents")]), 1, "no second cache")
        deletes = [r for r in lg if r["method"] == "DELETE"]
        self.assertEqual(len(deletes), 1)
        self.assertIn("cachedContents/", deletes[0]["path"])
        rows = self.by_id(self.results(out))
        self.assertEqual(len(rows), 30)
        self.assertTrue(all(r["usage"]["cached_tokens"] > 0 for r in rows.values()))
        self.assertTrue(all(r["batch_api"]["billable_tokens"] ==
                            r["usage"]["prompt_tokens"] - r["usage"]["cached_tokens"] +
                            r["usage"]["output_tokens"] for r in rows.values()))

    # ---- what the batch does not answer ----

    def test_per_request_errors_are_asked_again_interactively(self):
        jobs = self.jobs(200)
        base, log = self.stub("--batch-time", "200ms", "--batch-fault", "errors:5")
        out = self.path("out.jsonl")
        rc, err = self.run_proc(base, self.batch_args(jobs, out, "--parallel", "4"))
        self.assertEqual(rc, 0, err)
        lg = self.log(log)
        self.assertEqual(ops(lg, "create")[0]["errors"], 10)
        rows = self.by_id(self.results(out))
        self.assertEqual(len(rows), 200)
        asked = [r for r in rows.values() if r["batch_api"]["answers_asked"] > 0]
        self.assertEqual(len(asked), 10, "the 5% the batch could not answer")
        for r in asked:
            self.assertEqual(r["outcome"], "answered")
            self.assertEqual(r["batch_api"]["answers_from_batch"], 0)
            self.assertEqual(r["batch_api"]["answers_asked"], r["question_count"])
            self.assertTrue(all(d["source"] == "individual" for d in r["answer_details"]))
            self.assertGreater(r["batch_api"]["billable_tokens_at_batch_rate"], 0)
            self.assertEqual(r["batch_api"]["billable_tokens_at_batch_rate"],
                             r["batch_api"]["billable_tokens"], "asked at the full rate")
        # one interactive call per question of the 10 jobs, and no more
        self.assertEqual(len(generate_calls(lg)), sum(r["question_count"] for r in asked))

    def test_per_request_errors_are_left_with_no_repair(self):
        jobs = self.jobs(200)
        base, log = self.stub("--batch-time", "200ms", "--batch-fault", "errors:5")
        out = self.path("out.jsonl")
        rc, err = self.run_proc(base, self.batch_args(jobs, out, "--batch-no-repair"))
        self.assertEqual(rc, 1, err)
        self.assertEqual(generate_calls(self.log(log)), [])
        rows = self.by_id(self.results(out))
        failed = [r for r in rows.values() if r["outcome"] == "failed"]
        self.assertEqual(len(rows), 200)
        self.assertEqual(len(failed), 10)
        for r in failed:
            self.assertTrue(all("--batch-no-repair" in (d.get("error") or "")
                                for d in r["answer_details"]), r)
        self.assertFalse(os.path.exists(self.state_path(out)))

    def test_expired_and_failed_batches_leave_their_jobs_to_resume(self):
        for fault, state in (("expire", "BATCH_STATE_EXPIRED"), ("fail", "BATCH_STATE_FAILED")):
            with self.subTest(fault=fault):
                jobs = self.jobs(30, name="jobs-%s.jsonl" % fault)
                base, log = self.stub("--batch-time", "200ms", "--batch-fault", fault)
                out = self.path("out-%s.jsonl" % fault)
                rc, err = self.run_proc(base, self.batch_args(jobs, out))
                self.assertEqual(rc, 3, err)
                self.assertIn(state, err)
                self.assertEqual(self.results(out), [])
                self.assertEqual(generate_calls(self.log(log)), [])
                self.assertFalse(os.path.exists(self.state_path(out)),
                                 "a new --resume submits a new batch")
                rc, err = self.run_proc(base, self.batch_args(jobs, out, "--resume"))
                self.assertEqual(rc, 0, err)
                self.assertEqual(len(ops(self.log(log), "create")), 2)
                self.assertEqual(len(self.by_id(self.results(out))), 30)

    # ---- input and creation ----

    def test_a_batch_over_the_inline_limit_goes_as_a_file(self):
        jobs = self.jobs(60, content_size=400_000)  # 24 MB of requests
        base, log = self.stub("--batch-time", "200ms")
        out = self.path("out.jsonl")
        rc, err = self.run_proc(base, self.batch_args(jobs, out))
        self.assertEqual(rc, 0, err)
        lg = self.log(log)
        create = ops(lg, "create")
        self.assertEqual(len(create), 1)
        self.assertEqual(create[0]["input"], "file")
        self.assertEqual(create[0]["requests"], 60)
        self.assertEqual(len(ops(lg, "download")), 1)
        rows = self.by_id(self.results(out))
        self.assertEqual(len(rows), 60)
        self.assertTrue(all(r["outcome"] == "answered" and r["mode"] == "batch"
                            for r in rows.values()))
        # the input file is deleted once the batch is over
        deletes = [r for r in lg if r["method"] == "DELETE" and "/files/" in r["path"]]
        self.assertEqual(len(deletes), 1, lg[-5:])

    def test_a_creation_whose_answer_was_lost_is_found_not_made_twice(self):
        jobs = self.jobs(20)
        base, log = self.stub("--batch-time", "200ms", "--batch-fault", "create-lost")
        out = self.path("out.jsonl")
        rc, err = self.run_proc(base, self.batch_args(jobs, out))
        self.assertEqual(rc, 0, err)
        lg = self.log(log)
        creates = ops(lg, "create")
        self.assertEqual(len(creates), 1, "the lost creation is not tried again")
        self.assertEqual((creates[0]["status"], creates[0]["lost"]), (503, True))
        self.assertGreaterEqual(len(ops(lg, "list")), 1, "it is looked up by its display name")
        self.assertTrue(all(r["batch"] == creates[0]["batch"] for r in ops(lg, "get")))
        self.assertEqual(len(self.by_id(self.results(out))), 20)

    def test_a_creation_refused_by_a_503_is_tried_again(self):
        jobs = self.jobs(20)
        base, log = self.stub("--batch-time", "200ms", "--batch-fault", "create-503")
        out = self.path("out.jsonl")
        rc, err = self.run_proc(base, self.batch_args(jobs, out))
        self.assertEqual(rc, 0, err)
        lg = self.log(log)
        self.assertEqual([r["status"] for r in ops(lg, "create")], [503, 200])
        self.assertEqual(len(self.by_id(self.results(out))), 20)

    def test_cancel_stops_the_batch_and_leaves_the_jobs(self):
        jobs = self.jobs(20)
        base, log = self.stub("--batch-time", "30s")
        out = self.path("out.jsonl")
        p = self.polling(base, log, self.batch_args(jobs, out))
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=20)
        self.assertEqual(p.returncode, 3)
        rc, err = self.run_proc(base, ["--jobs", jobs, "--output", out, "--batch-cancel"])
        self.assertEqual(rc, 0, err)
        lg = self.log(log)
        self.assertEqual(len(ops(lg, "cancel")), 1)
        self.assertIn("BATCH_STATE_CANCELLED", err)
        self.assertFalse(os.path.exists(self.state_path(out)))
        self.assertEqual(self.results(out), [])
        rc, err = self.run_proc(base, ["--jobs", jobs, "--output", out, "--batch-cancel"])
        self.assertEqual(rc, 2, err)
        self.assertIn("no batch to cancel", err)

    # ---- the command line ----

    def test_usage_errors(self):
        jobs = self.jobs(2)
        out = self.path("out.jsonl")
        cases = [
            (["--jobs", jobs, "--batch-api"], "--batch-api needs --output"),
            (["--jobs", jobs, "--output", out, "--batch-poll", "1s"], "need --batch-api"),
            (["--jobs", jobs, "--output", out, "--batch-no-repair"], "need --batch-api"),
            (["--jobs", jobs, "--output", out, "--batch-api", "--compare"], "--compare"),
            (["--jobs", jobs, "--output", out, "--batch-api", "--batch-poll", "1ms"],
             "--batch-poll \"1ms\""),
            (["--jobs", jobs, "--output", out, "--batch-api", "--batch-name", ""],
             "--batch-name \"\""),
            (["--jobs", jobs, "--output", out, "--batch-api", "--batch-name", "a\tb"],
             "--batch-name"),
            (["--questions", jobs, "--batch-api", jobs], "need --jobs"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                rc, err = self.run_proc("http://127.0.0.1:9", args)
                self.assertEqual(rc, 2, err)
                self.assertIn(needle, err)
        with open(self.state_path(out), "w") as f:
            f.write("{\"version\": 1, \"cut")
        rc, err = self.run_proc("http://127.0.0.1:9", self.batch_args(jobs, out, "--resume"))
        self.assertEqual(rc, 2, err)
        self.assertIn("remove it", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
