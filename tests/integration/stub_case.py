"""stub_case.py - what the tests of gbatch-processor against the stand-in share: a temporary
directory, the stand-in started as a real process on a free port with its request log, and
the processor run with the key and the stand-in's address in a clean environment.

GBATCH_PROCESSOR and GBATCH_STUB_GEMINI name the programs (ctest sets them)."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

PROCESSOR = os.environ.get("GBATCH_PROCESSOR", "")
STUB = os.environ.get("GBATCH_STUB_GEMINI", "")


class StubCase(unittest.TestCase):
    KEY = "stub-case-key"
    PREFIX = "gbatch-stub-"

    def setUp(self):
        for name, path in (("GBATCH_PROCESSOR", PROCESSOR), ("GBATCH_STUB_GEMINI", STUB)):
            self.assertTrue(os.access(path, os.X_OK), "%s=%r is not a program" % (name, path))
        self.tmp = tempfile.mkdtemp(prefix=self.PREFIX)
        self.procs = []
        self.n = 0

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name, text=None):
        p = os.path.join(self.tmp, name)
        if text is not None:
            with open(p, "w") as f:
                f.write(text)
        return p

    def text(self, path):
        with open(path) as f:
            return f.read()

    def stub(self, *args):
        """Starts the stand-in; returns its base URL and its log's path."""
        self.n += 1
        out, log = self.path("stub-%d.out" % self.n), self.path("stub-%d.jsonl" % self.n)
        with open(out, "w") as f:
            self.procs.append(subprocess.Popen([STUB, "--port", "0", "--api-key", self.KEY,
                                                "--log", log] + list(args), stdout=f))
        deadline = time.monotonic() + 10
        while "listening on" not in self.text(out):
            self.assertLess(time.monotonic(), deadline, "the stand-in did not start")
            time.sleep(0.02)
        return "http://" + self.text(out).split()[-1], log

    def log(self, path):
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def env(self, base):
        """The environment of a processor run: none of the caller's GBATCH_ and GEMINI_."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GBATCH_", "GEMINI_"))}
        env.update({"GEMINI_API_KEY": self.KEY, "GEMINI_API_BASE": base})
        return env
