#!/usr/bin/env python3
"""edges_proc_it.py - the guarantees at the edges, with the real processes: programs started
with fds 0, 1 and 2 closed, results written to /dev/full and to a full tmpfs, content files
that are FIFOs, under /proc or outside --content-root, a server that echoes the request's
headers (the key among them) in its error message, C1 controls on the way to a terminal, a
reply of a million tiny parts, and collector settings too long or malformed.

Run by ctest (integration.edges.proc) with GBATCH_COLLECTOR, GBATCH_EMIT, GBATCH_DSD_RECV,
GBATCH_RING_WRITE, GBATCH_RING_OFFSETS, GBATCH_PROCESSOR and GBATCH_STUB_GEMINI in the
environment; GBATCH_GUARANTEE_SCALE below 1 marks a sanitizer build (a looser memory bound).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collector_it import COLLECTOR, EMIT, CollectorCase, Receiver, wait_until  # noqa: E402
from ring_layout import LAYOUT  # noqa: E402

PROCESSOR = os.environ.get("GBATCH_PROCESSOR", "")
STUB = os.environ.get("GBATCH_STUB_GEMINI", "")
SCALE = float(os.environ.get("GBATCH_GUARANTEE_SCALE", "1"))

# A key shaped like a Google API key ("AIza" and 35 of [0-9A-Za-z_-]): the stand-in expects it.
KEY = "AIzaSyD3adB33fC0ffee-0123456789_abcdefg"
DEADLINE = 60  # for a run that should take a second: generous on a shared machine
CLOSED = ["sh", "-c", 'exec "$@" <&- >&- 2>&-', "sh"]  # runs "$@" with fds 0, 1, 2 closed


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EdgeCase(CollectorCase):
    def setUp(self):
        super().setUp()
        for name, path in (("GBATCH_PROCESSOR", PROCESSOR), ("GBATCH_STUB_GEMINI", STUB),
                           ("GBATCH_EMIT", EMIT)):
            self.assertTrue(os.access(path, os.X_OK), "%s=%r is not a program" % (name, path))

    def path(self, name, text=None):
        p = os.path.join(self.tmp, name)
        if text is not None:
            with open(p, "wb" if isinstance(text, bytes) else "w") as f:
                f.write(text)
        return p

    def stub(self, *args, key="k"):
        """Starts the stand-in; returns its base URL."""
        out = self.path("stub-%d.out" % self.next_id())
        with open(out, "w") as f:
            self.spawn([STUB, "--port", "0", "--api-key", key] + list(args), stdout=f)
        wait_until(lambda: "listening on" in self.text(out), 10, "the stand-in")
        return "http://" + self.text(out).split()[-1]

    def env(self, base, key="k", **more):
        e = {k: v for k, v in os.environ.items() if not k.startswith(("GBATCH_", "GEMINI_"))}
        e.update({"GEMINI_API_KEY": key, "GEMINI_API_BASE": base})
        e.update(more)
        return e

    def run_proc(self, args, env, stdout=None, prefix=(), timeout=DEADLINE):
        """Runs gbatch-processor; returns (exit status, stdout bytes, stderr text)."""
        try:
            r = subprocess.run(list(prefix) + [PROCESSOR] + list(args), env=env, timeout=timeout,
                               stdout=stdout if stdout is not None else subprocess.PIPE,
                               stderr=subprocess.PIPE)
        except subprocess.TimeoutExpired:
            raise AssertionError("gbatch-processor %s still running after %d s" % (args, timeout))
        return r.returncode, r.stdout or b"", r.stderr.decode(errors="replace")

    def questions(self, *qs):
        return self.path("q-%d.txt" % self.next_id(), "".join(q + "\n" for q in qs))

    def jobs(self, *lines):
        return self.path("jobs-%d.jsonl" % self.next_id(),
                         "".join((l if isinstance(l, str) else json.dumps(l)) + "\n"
                                 for l in lines))

    def consumed(self, ring):
        """True when the collector has read everything written into ring."""
        with open("/dev/shm/gbatch." + ring, "rb") as f:
            page = f.read(LAYOUT["header_page_size"])

        def get(field):
            off, size = LAYOUT[field], LAYOUT[field + "_size"]
            return int.from_bytes(page[off:off + size], "little")
        return get("head") == get("tail")


class ClosedStdio(EdgeCase):
    """Point 5: a program started with 0, 1 or 2 closed opens /dev/null there first."""

    def test_collector_with_stderr_closed_sends_no_log_line_as_a_datagram(self):
        rv = Receiver(self)
        ring = self.ring()
        p = self.spawn(["sh", "-c", 'exec "$@" 2>&-', "sh", COLLECTOR, "--ring", ring,
                        "--console", "off", "--flush-interval", "100ms",
                        "--statsd", "udp://127.0.0.1:%d" % rv.port])
        self.ready(ring, p)
        r = subprocess.run([EMIT, "--strict", "--ring", ring, "count", "edge.stderr", "1"],
                           capture_output=True, timeout=DEADLINE)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: "gbatch.edge.stderr:1|c" in rv.text(), 10, "the counter")
        self.assertEqual(self.stop(p), 0)  # logs "signal 15: draining" and a summary
        self.assertNotIn("gbatch-collector", rv.text())
        self.assertEqual(rv.invalid(), [])

    def test_collector_with_stdout_closed_writes_no_console_over_the_ring(self):
        ring = self.ring()
        err = self.path("collector.err")
        with open(err, "w") as f:
            p = self.spawn(["sh", "-c", 'exec "$@" >&-', "sh", COLLECTOR, "--ring", ring,
                            "--console", "lines", "--statsd", "off"], stderr=f)
        self.ready(ring, p)
        for i in range(2):
            r = subprocess.run([EMIT, "--strict", "--ring", ring, "count", "edge.stdout", "1"],
                               capture_output=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 0, "record %d: %s" % (i + 1, r.stderr.decode()))
            wait_until(lambda: self.consumed(ring), 10, "the collector to read record %d" % (i + 1))
        self.assertEqual(self.stop(p), 0)
        self.assertIn("drained: 2 records read, 0 invalid", self.text(err))

    def test_processor_stand_in_and_emit_with_all_stdio_closed(self):
        port, log = free_port(), self.path("stub.log")
        self.spawn(CLOSED + [STUB, "--port", str(port), "--api-key", "k", "--log", log])
        base = "http://127.0.0.1:%d" % port

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return True
            except OSError:
                return False
        wait_until(up, 10, "the stand-in")
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port,
                           "--flush-interval", "100ms")
        jobs = self.jobs({"id": 1, "content": "x", "questions": ["a?"]}, "not json",
                         {"id": 2, "content_file": "/nonexistent", "questions": ["b?"]})
        out = self.path("out.jsonl")
        rc, _, _ = self.run_proc(["--jobs", jobs, "--output", out, "--telemetry", "shm:" + ring],
                                 self.env(base), prefix=CLOSED)
        self.assertEqual(rc, 1)  # the line that is not JSON
        lines = [json.loads(l) for l in self.text(out).splitlines()]
        self.assertEqual(sorted(l["id"] for l in lines), [1, 2])
        for l in self.text(log).splitlines():
            json.loads(l)  # nothing but the request log in it
        r = subprocess.run(CLOSED + [EMIT, "--strict", "--ring", ring, "count", "edge.closed", "3"],
                           timeout=DEADLINE)
        self.assertEqual(r.returncode, 0)
        wait_until(lambda: "gbatch.edge.closed:3|c" in rv.text(), 10, "gbatch-emit's counter")
        wait_until(lambda: "gbatch.jobs_completed" in rv.text(), 10, "the processor's records")
        self.assertEqual(self.stop(c), 0)


class FailedWrites(EdgeCase):
    """Point 6: a result that cannot be written is exit 1 (one question set) or 3 (--jobs), and
    the job is not counted done."""

    def setUp(self):
        super().setUp()
        self.base = self.stub()
        self.q = self.questions("What is it?")
        self.c = self.path("c.txt", "Some content.\n")

    def test_dev_full(self):
        with open("/dev/full", "wb") as full:
            rc, _, err = self.run_proc(["--telemetry", "off", "--questions", self.q, self.c],
                                       self.env(self.base), stdout=full)
            self.assertEqual(rc, 1, err)
            self.assertIn("cannot write the result to stdout: No space left on device", err)
            rc, _, err = self.run_proc(["--telemetry", "off", "--output", "/dev/full",
                                        "--questions", self.q, self.c], self.env(self.base))
            self.assertEqual(rc, 1, err)
            jobs = self.jobs({"id": 1, "content": "x", "questions": ["a?"]})
            rc, _, err = self.run_proc(["--telemetry", "off", "--jobs", jobs],
                                       self.env(self.base), stdout=full)
        self.assertEqual(rc, 3, err)
        self.assertIn("0/1 jobs done", err)
        self.assertIn("job 1 (line 1) is not written", err)

    def test_full_tmpfs_then_resume(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        mnt = self.path("full")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                           capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: %s" % r.stderr.decode().strip())
        try:
            self.fill_and_resume(mnt)
        finally:
            subprocess.run(["umount", "-l", mnt])

    def fill_and_resume(self, mnt):
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        jobs = self.jobs({"id": "a", "content": "x", "questions": ["a?"]})
        out = os.path.join(mnt, "out.jsonl")
        rc, _, err = self.run_proc(["--telemetry", "off", "--jobs", jobs, "--output", out],
                                   self.env(self.base))
        self.assertEqual(rc, 3, err)
        self.assertIn("0/1 jobs done", err)
        self.assertEqual(os.path.getsize(out), 0)
        os.unlink(filler)
        rc, _, err = self.run_proc(["--telemetry", "off", "--jobs", jobs, "--output", out,
                                    "--resume"], self.env(self.base))
        self.assertEqual(rc, 0, err)
        self.assertEqual([json.loads(l)["id"] for l in self.text(out).splitlines()], ["a"])


class ContentFiles(EdgeCase):
    """Point 7: content files are regular files, never under /proc, /sys or /dev, and inside
    --content-root; a refused one fails its job (or is exit 2), never a hang."""

    def setUp(self):
        super().setUp()
        self.base = self.stub()
        self.fifo = self.path("fifo")
        os.mkfifo(self.fifo)

    def outcomes(self, out):
        return {json.loads(l)["id"]: json.loads(l) for l in out.decode().splitlines()}

    def test_fifo_and_special_files_fail_their_job_at_once(self):
        good = self.path("good.txt", "fine\n")
        jobs = self.jobs(*[{"id": i, "content_file": f, "questions": ["q?"]} for i, f in
                           enumerate([self.fifo, "/proc/self/environ", "/dev/zero",
                                      "/sys/kernel/uevent_seqnum", good])])
        rc, out, err = self.run_proc(["--telemetry", "off", "--jobs", jobs],
                                     self.env(self.base, SECRET_MARK="never-sent"))
        self.assertEqual(rc, 1, err)
        res = self.outcomes(out)
        self.assertEqual(res[4]["outcome"], "answered")
        self.assertIn("not a regular file", res[0]["error"])
        for i, where in ((1, "/proc"), (2, "/dev"), (3, "/sys")):
            self.assertEqual(res[i]["outcome"], "failed")
            self.assertIn("refused: it is under " + where, res[i]["error"])
        self.assertNotIn(b"never-sent", out)
        q = self.questions("What?")
        rc, _, err = self.run_proc(["--telemetry", "off", "--questions", q, self.fifo],
                                   self.env(self.base))
        self.assertEqual(rc, 2, err)
        self.assertIn("not a regular file", err)

    def test_content_root(self):
        root = self.path("root")
        os.mkdir(root)
        inside = os.path.join(root, "in.txt")
        with open(inside, "w") as f:
            f.write("inside\n")
        outside = self.path("out.txt", "outside\n")
        os.symlink(outside, os.path.join(root, "link.txt"))
        jobs = self.jobs({"id": 1, "content_file": inside, "questions": ["q?"]},
                         {"id": 2, "content_file": os.path.join(root, "link.txt"),
                          "questions": ["q?"]},
                         {"id": 3, "content_file": os.path.join(root, "..", "out.txt"),
                          "questions": ["q?"]})
        rc, out, err = self.run_proc(["--telemetry", "off", "--content-root", root,
                                      "--jobs", jobs], self.env(self.base))
        self.assertEqual(rc, 1, err)
        res = self.outcomes(out)
        self.assertEqual(res[1]["outcome"], "answered")
        for i in (2, 3):
            self.assertIn("is outside --content-root", res[i]["error"])
        q = self.questions("What?")
        rc, _, err = self.run_proc(["--telemetry", "off", "--content-root", root,
                                    "--questions", q, outside], self.env(self.base))
        self.assertEqual(rc, 2, err)
        self.assertIn("outside --content-root", err)
        rc, out, _ = self.run_proc(["--help"], self.env(self.base))
        self.assertIn("--content-root DIR", out.decode())


class ApiKey(EdgeCase):
    """Point 8: the key never comes back out, whatever the server says; empty settings are
    usage errors."""

    def test_key_echoed_by_the_server_appears_nowhere(self):
        base = self.stub("--fault", "echo-headers:0", key=KEY)
        env = self.env(base, key=KEY)
        q, c = self.questions("What?"), self.path("c.txt", "content\n")
        out1, out2 = self.path("one.json"), self.path("jobs.jsonl")
        jobs = self.jobs({"id": 1, "content": "x", "questions": ["a?", "b?"]})
        seen = []
        for args in (["--questions", q, c], ["--output", out1, "--questions", q, c],
                     ["--jobs", jobs, "--output", out2], ["--jobs", jobs]):
            rc, out, err = self.run_proc(["--telemetry", "console", "--max-attempts", "1"] +
                                         args, env)
            self.assertIn(rc, (1, 3), err)
            seen += [out.decode(errors="replace"), err]
        seen += [self.text(out1), self.text(out2)]
        everything = "\n".join(seen)
        self.assertNotIn(KEY, everything)
        self.assertNotIn(KEY[4:20], everything)
        self.assertIn("x-goog-api-key: " + "*" * len(KEY), everything)  # the echo came back

    def test_key_escaped_and_cut_by_the_message_limit_appears_nowhere(self):
        # the server escapes what it echoes (the key is not in the raw bytes) and messages are
        # cut at 300 bytes: some filler length puts the cut inside the key
        q, c = self.questions("What?"), self.path("c.txt", "content\n")
        seen = []
        for pad in range(0, 200, 4):
            base = self.stub("--fault", "echo-escaped:0:n=%d" % pad, key=KEY)
            rc, out, err = self.run_proc(["--telemetry", "off", "--max-attempts", "1",
                                          "--questions", q, c], self.env(base, key=KEY))
            self.assertEqual(rc, 1, err[-300:])
            seen += [out.decode(errors="replace"), err]
        everything = "\n".join(seen)
        self.assertIn("x-goog-api-key: *", everything)  # some echo held the key, masked
        for n in range(8, len(KEY) + 1):
            at = everything.find(KEY[:n])
            if at >= 0:
                self.fail("the first %d bytes of the key appear: ...%s..." %
                          (n, everything[max(0, at - 40):at + n + 5]))

    def test_empty_settings_exit_2(self):
        q, c = self.questions("What?"), self.path("c.txt", "content\n")
        base = "http://127.0.0.1:1"
        for args, env, name in ((["--api-base="], {}, "--api-base"), (["--model="], {}, "--model"),
                                ([], {"GEMINI_API_KEY": ""}, "GEMINI_API_KEY"),
                                ([], {"GEMINI_API_BASE": ""}, "GEMINI_API_BASE")):
            e = self.env(base)
            e.update(env)
            rc, _, err = self.run_proc(args + ["--telemetry", "off", "--max-attempts", "1",
                                               "--timeout", "5s", "--questions", q, c], e)
            self.assertEqual(rc, 2, "%s: %s" % (name, err))
            self.assertIn(name, err)


class Smaller(EdgeCase):
    """Point 9: C1 controls, a reply of a million tiny parts, collector settings."""

    C1 = b"\xc2\x9b"

    def test_c1_controls_never_reach_a_terminal_raw(self):
        ring = self.ring()
        c = self.collector(ring, "--statsd", "off", console="lines")
        r = subprocess.run([EMIT, "--strict", "--ring", ring, "count", b"edge" + self.C1 + b"31m",
                            "1", "--meta", b"k=v" + self.C1 + b"2J"], capture_output=True,
                           timeout=DEADLINE)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: "edge" in self.text(self.c_out), 10, "the console line")
        self.assertEqual(self.stop(c), 0)
        with open(self.c_out, "rb") as f:
            console = f.read()
        self.assertNotIn(self.C1, console)
        self.assertIn(b"edge\\xc2\\x9b31m", console)
        self.assertIn(b"k=v\\xc2\\x9b2J", console)

        base = self.stub()
        q = self.path("q.txt", b"What is " + self.C1 + b"2J?\n")
        cf = self.path("c.txt", "content\n")
        outf = self.path("o.json")
        jobs = self.jobs('{"id": "j\\u009b", "content": "x", "questions": ["a\\u009b?"]}',
                         '{"id": 2, "content_file": "none\\u009b", "questions": ["b?"]}')
        for args in (["--questions", q, cf], ["--output", outf, "--questions", q, cf],
                     ["--jobs", jobs]):
            rc, out, err = self.run_proc(["--telemetry", "console"] + args, self.env(base))
            self.assertIn(rc, (0, 1), err)
            self.assertNotIn(self.C1, out, args)
            self.assertNotIn(self.C1.decode(), err, args)
            if args[0] == "--questions":
                self.assertEqual(json.loads(out)["answers"][0],
                                 "Answer to question 1: What is \u009b2J?")
        with open(outf, "rb") as f:
            self.assertNotIn(self.C1, f.read())

    def test_a_reply_of_a_million_tiny_parts_stays_within_a_few_bodies(self):
        n = int(1000000 * min(1.0, SCALE))  # a quarter under the sanitizers, which are slow
        base = self.stub("--fault", "parts:0:n=%d" % n)
        q, c = self.questions("What?"), self.path("c.txt", "content\n")
        outp, errp = self.path("parts.out"), self.path("parts.err")
        with open(outp, "wb") as o, open(errp, "wb") as e:
            p = subprocess.Popen([PROCESSOR, "--telemetry", "off", "--max-attempts", "1",
                                  "--questions", q, c], env=self.env(base), stdout=o, stderr=e)
        deadline = time.monotonic() + DEADLINE * 2
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid != 0:
                break
            if time.monotonic() > deadline:
                p.kill()
                p.wait()
                raise AssertionError("gbatch-processor still parsing after %d s" % (DEADLINE * 2))
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        self.assertEqual(p.returncode, 0, self.text(errp))
        self.assertEqual(json.loads(self.text(outp))["answers"], ["Answer to question 1: What?"])
        body = n * len('{"text":""},')
        peak = ru.ru_maxrss * 1024
        # the sanitizers keep up to 256 MB of freed memory in quarantine, and their shadow
        bound = 6 * body + (64 << 20) + (0 if SCALE >= 1 else 512 << 20)
        print("reply of %d parts (%.1f MB): peak RSS %.1f MB (bound %.0f MB)" %
              (n, body / 1e6, peak / 1e6, bound / 1e6), file=sys.stderr)
        self.assertLess(peak, bound)

    def run_collector(self, args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        e.update(env or {})
        try:
            r = subprocess.run([COLLECTOR, "--ring", self.ring(), "--console", "off"] + args,
                               env=e, capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("gbatch-collector %s %s ran instead of refusing" % (args, env))
        return r.returncode, r.stderr.decode()

    def test_collector_settings_too_long_or_malformed_exit_2(self):
        tags = []
        for i in range(6):
            tags += ["--tag", "k%d:%s" % (i, "v" * 190)]
        long_tag = "k:" + "v" * 300
        many = ",".join("k%d:%s" % (i, "v" * 150) for i in range(8))
        for args, env, named in ((tags, None, "k5:vvv"),
                                 ([], {"DD_TAGS": long_tag}, "DD_TAGS"),
                                 ([], {"DD_TAGS": many}, "global tags are longer"),
                                 ([], {"DD_AGENT_HOST": "a b"}, 'DD_AGENT_HOST "a b"'),
                                 (["--statsd", "udp://a b:8125"], None, "a b")):
            rc, err = self.run_collector(args, env)
            self.assertEqual(rc, 2, "%s %s: %s" % (args[-2:], env, err))
            self.assertIn(named, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
