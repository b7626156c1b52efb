#!/usr/bin/env python3
"""files_it.py - the Files API with the real processes: gbatch-processor against the stand-in,
which speaks the resumable upload protocol and logs every request with the bytes it received
and their Adler-32. Content over the inline limit, --upload, one upload per distinct content
of a jobs run, --keep-files, a FAILED file, a 503 in the middle of the bytes, a file over the
API's 2 GiB, and the processor's peak memory while it uploads a large file.

Run by ctest (integration.files) with GBATCH_PROCESSOR and GBATCH_STUB_GEMINI in the
environment.
"""
import json
import os
import re
import subprocess
import sys
import unittest
import zlib

from stub_case import PROCESSOR, StubCase

KEY = "files-test-key"
DEADLINE = 120
INLINE_LIMIT = 15 << 20


def adler32_of(path):
    value = 1
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            value = zlib.adler32(block, value)
    return "%08x" % value


def commands(log):
    """The requests as (method, what): the upload command, or the path's last part."""
    out = []
    for r in log:
        if r["path"].startswith("/upload/"):
            out.append((r["method"], r["command"]))
        elif r["path"].endswith(":generateContent"):
            out.append((r["method"], "generateContent"))
        else:
            out.append((r["method"], r["path"].rsplit("/", 2)[-2]))
    return out


class FilesCase(StubCase):
    KEY = KEY
    PREFIX = "gbatch-files-"

    def run_proc(self, base, args, prefix=()):
        r = subprocess.run(list(prefix) + [PROCESSOR, "--telemetry", "off"] + list(args),
                           env=self.env(base), timeout=DEADLINE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def questions(self):
        return self.path("q.txt", "What is it about?\nHow long is it?\n")

    def big_text(self, name, size):
        """A text file of size bytes, not one byte repeated (the checksum must see order)."""
        p = self.path(name)
        line = "".join("line %d of the content, about nothing in particular.\n" % i
                       for i in range(1000))
        with open(p, "w") as f:
            while size > 0:
                f.write(line[:size])
                size -= min(size, len(line))
        return p

    def assert_received(self, rec, path):
        self.assertEqual(rec["size_received"], os.path.getsize(path))
        self.assertEqual(rec["declared"], os.path.getsize(path))
        self.assertEqual(rec["adler32"], adler32_of(path))

    def test_content_over_the_inline_limit_is_uploaded_waited_on_and_deleted(self):
        base, log = self.stub("--files-processing", "2")
        content = self.big_text("big.txt", INLINE_LIMIT + 4096)
        rc, out, err = self.run_proc(base, ["--questions", self.questions(), content])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["answers"][0], "Answer to question 1: What is it about?")
        reqs = self.log(log)
        self.assertEqual(commands(reqs), [
            ("POST", "start"), ("POST", "upload, finalize"), ("GET", "files"), ("GET", "files"),
            ("GET", "files"), ("POST", "generateContent"), ("DELETE", "files")])
        self.assert_received(reqs[1], content)
        self.assertEqual(reqs[1]["mime_type"], "text/plain")
        self.assertEqual(reqs[5]["file_parts"], 1)
        self.assertEqual(reqs[5]["status"], 200)
        self.assertEqual({r["file"] for r in reqs if "file" in r}, {"files/stub-1"})
        self.assertNotIn(KEY, err)

    def test_upload_flag_sends_a_small_content_as_a_file(self):
        base, log = self.stub("--files-processing", "0")
        content = self.path("small.txt", "A short note about a red bicycle.\n")
        rc, out, err = self.run_proc(base, ["--upload", "--telemetry", "console", "--questions",
                                            self.questions(), content])
        self.assertEqual(rc, 0, err)
        reqs = self.log(log)
        self.assertEqual(commands(reqs), [("POST", "start"), ("POST", "upload, finalize"),
                                          ("POST", "generateContent"), ("DELETE", "files")])
        self.assert_received(reqs[1], content)
        # the upload's telemetry: its scopes at the top level, the bytes and the file counted
        size = os.path.getsize(content)
        self.assertIn("[METRIC] files.upload.file_bytes_uploaded: %d (metric_type=counter, "
                      "depth=1, parent_scope=files.upload" % size, err)
        self.assertIn("[METRIC] files.upload.files_uploaded: 1 (metric_type=counter", err)
        self.assertRegex(err, r"\[TIMING\] files\.upload: duration=[0-9.]+s \(depth=0")
        self.assertRegex(err, r"\[TIMING\] files\.wait_active: duration=[0-9.]+s \(depth=0")

    def jobs_file(self):
        a = self.path("a.txt", "The first content, about apples.\n")
        lines = [{"id": 1, "content_file": a, "questions": ["What fruit?"]},
                 {"id": 2, "content": "The second content, about pears.", "questions": ["Q?"]},
                 {"id": 3, "content_file": a, "questions": ["Which colour?"]},
                 {"id": 4, "content": "The second content, about pears.", "questions": ["R?"]},
                 {"id": 5, "content_file": a, "questions": ["How many?"]}]
        return self.path("jobs.jsonl", "".join(json.dumps(j) + "\n" for j in lines))

    def test_jobs_upload_each_distinct_content_once_and_delete_it(self):
        base, log = self.stub("--files-processing", "1")
        out = self.path("out.jsonl")
        rc, _, err = self.run_proc(base, ["--upload", "--jobs", self.jobs_file(), "--output", out,
                                          "--parallel", "2"])
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            done = [json.loads(line) for line in f]
        self.assertEqual(sorted(d["id"] for d in done), [1, 2, 3, 4, 5])
        self.assertEqual({d["outcome"] for d in done}, {"answered"})
        cmds = commands(self.log(log))
        self.assertEqual(cmds.count(("POST", "start")), 2)
        self.assertEqual(cmds.count(("POST", "upload, finalize")), 2)
        self.assertEqual(cmds.count(("DELETE", "files")), 2)
        gens = [r for r in self.log(log) if r["path"].endswith(":generateContent")]
        self.assertEqual([r["file_parts"] for r in gens], [1] * 5)
        self.assertEqual(cmds[-2:], [("DELETE", "files")] * 2)

    def test_jobs_upload_a_large_content_file_and_fail_one_over_2_gib(self):
        base, log = self.stub("--files-processing", "0")
        big = self.big_text("big.txt", INLINE_LIMIT + 1)
        huge = self.path("huge.txt")
        subprocess.run(["truncate", "-s", str((2 << 30) + 1), huge], check=True)
        lines = [{"id": "big", "content_file": big, "questions": ["What?"]},
                 {"id": "small", "content": "Small and inline.", "questions": ["What?"]},
                 {"id": "huge", "content_file": huge, "questions": ["What?"]}]
        jobs = self.path("jobs.jsonl", "".join(json.dumps(j) + "\n" for j in lines))
        out = self.path("out.jsonl")
        rc, _, err = self.run_proc(base, ["--jobs", jobs, "--output", out])
        self.assertEqual(rc, 1, err)
        with open(out) as f:
            done = {d["id"]: d for d in map(json.loads, f)}
        self.assertEqual(done["big"]["outcome"], "answered")
        self.assertEqual(done["small"]["outcome"], "answered")
        self.assertEqual(done["huge"]["outcome"], "failed")
        self.assertIn("more than the Files API takes (2 GiB", done["huge"]["error"])
        reqs = self.log(log)
        self.assertEqual(commands(reqs).count(("POST", "start")), 1)
        self.assert_received([r for r in reqs if r.get("command") == "upload, finalize"][0], big)
        gens = [r for r in reqs if r["path"].endswith(":generateContent")]
        self.assertEqual(sorted(r.get("file_parts", 0) for r in gens), [0, 1])

    def test_keep_files_deletes_nothing(self):
        base, log = self.stub("--files-processing", "0")
        out = self.path("out.jsonl")
        rc, _, err = self.run_proc(base, ["--upload", "--keep-files", "--jobs", self.jobs_file(),
                                          "--output", out])
        self.assertEqual(rc, 0, err)
        cmds = commands(self.log(log))
        self.assertEqual(cmds.count(("POST", "start")), 2)
        self.assertEqual(cmds.count(("DELETE", "files")), 0)
        self.assertIn("kept files/stub-1", err)

    def test_a_failed_file_stops_the_run_naming_the_file(self):
        base, log = self.stub("--files-processing", "1", "--files-fault", "failed")
        content = self.path("doc.txt", "Some content.\n")
        rc, out, err = self.run_proc(base, ["--upload", "--questions", self.questions(), content])
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "")
        self.assertRegex(err, r"files/stub-1 is FAILED: The file could not be processed")
        self.assertIn("doc.txt", err)
        cmds = commands(self.log(log))
        self.assertNotIn(("POST", "generateContent"), cmds)
        self.assertEqual(cmds[-1], ("DELETE", "files"))

    def test_a_503_in_the_middle_of_the_bytes_is_resumed_where_the_server_stopped(self):
        base, log = self.stub("--files-processing", "0", "--files-fault", "upload-503")
        content = self.big_text("mid.txt", 3 << 20)
        rc, _, err = self.run_proc(base, ["--upload", "--questions", self.questions(), content])
        self.assertEqual(rc, 0, err)
        reqs = self.log(log)
        self.assertEqual(commands(reqs), [
            ("POST", "start"), ("POST", "upload, finalize"), ("POST", "query"),
            ("POST", "upload, finalize"), ("POST", "generateContent"), ("DELETE", "files")])
        size = os.path.getsize(content)
        self.assertEqual(reqs[1]["status"], 503)
        self.assertEqual(reqs[1]["size_received"], size // 2)
        self.assertEqual(reqs[3]["bytes"], size - size // 2)
        self.assert_received(reqs[3], content)

    def test_a_503_on_every_attempt_gives_up_after_max_attempts(self):
        base, log = self.stub("--files-processing", "0", "--files-fault", "upload-503:10")
        content = self.big_text("mid.txt", 1 << 20)
        rc, _, err = self.run_proc(base, ["--upload", "--max-attempts", "2", "--questions",
                                          self.questions(), content])
        self.assertEqual(rc, 1, err)
        self.assertIn("gave up after 2 attempts", err)
        cmds = commands(self.log(log))
        self.assertEqual(cmds.count(("POST", "upload, finalize")), 2)
        self.assertNotIn(("POST", "generateContent"), cmds)

    def test_content_over_2_gib_is_refused_before_any_request(self):
        base, log = self.stub()
        huge = self.path("huge.bin")
        subprocess.run(["truncate", "-s", str((2 << 30) + 1), huge], check=True)
        rc, _, err = self.run_proc(base, ["--questions", self.questions(), huge])
        self.assertEqual(rc, 2, err)
        self.assertIn("huge.bin", err)
        self.assertIn("more than the Files API takes (2 GiB", err)
        self.assertEqual(self.log(log), [])

    def test_a_large_upload_is_streamed_not_held_in_memory(self):
        base, log = self.stub("--files-processing", "0")
        size = 256 << 20
        content = self.path("large.pdf")
        with open(content, "wb") as f:  # sparse, with data at a few places
            for i in range(8):
                f.seek(i * (size // 8))
                f.write(os.urandom(4096))
            f.truncate(size)
        rc, _, err = self.run_proc(base, ["--questions", self.questions(), content],
                                   prefix=["/usr/bin/time", "-v"])
        self.assertEqual(rc, 0, err)
        rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
        print("peak RSS uploading %d MiB: %d KiB" % (size >> 20, rss_kib), file=sys.stderr)
        self.assertLess(rss_kib * 1024, size // 2)
        reqs = self.log(log)
        self.assert_received(reqs[1], content)
        self.assertEqual(reqs[1]["mime_type"], "application/pdf")


if __name__ == "__main__":
    unittest.main(verbosity=2)
