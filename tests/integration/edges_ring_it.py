#!/usr/bin/env python3
"""edges_ring_it.py - the ring's guarantees at the edges, with the real processes: a full tmpfs,
a segment truncated, removed or replaced while mapped, SIGHUP, a record committed after the stop
signal, and --exit-when-producers-done on a ring left by an earlier run.

Run by ctest, one class per test (python3 edges_ring_it.py ClassName), with the guarantee tests'
environment (GBATCH_COLLECTOR, GBATCH_RING_WRITE, GBATCH_DSD_RECV, GBATCH_EMIT,
GBATCH_RING_OFFSETS, GBATCH_PROCESSOR, GBATCH_STUB_GEMINI). FullTmpfs mounts a 1 MiB tmpfs and
needs root; it is skipped with a message otherwise.
"""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collector_it import EMIT, RING_WRITE, COLLECTOR, wait_until  # noqa: E402
from guarantees_it import (PROCESSOR, STUB, GuaranteeCase, Receiver,  # noqa: E402
                           received_seqs, ring_counters)
from ring_layout import LAYOUT  # noqa: E402

SIGBUS_RC = -signal.SIGBUS


def seg_path(ring):
    return ring if "/" in ring else "/dev/shm/gbatch." + ring


def read_field(ring, field):
    with open(seg_path(ring), "rb") as f:
        f.seek(LAYOUT[field])
        return int.from_bytes(f.read(LAYOUT[field + "_size"]), "little")


class Emitter:
    """gbatch-emit --stdin, a producer of the library (the shm reporter) fed line by line:
    timings seq.pK tagged seq=N, as ring-write writes them. Its stderr goes to a file."""

    def __init__(self, tc, ring, scope="seq.p0"):
        self.tc, self.scope, self.fed = tc, scope, 0
        self.err = os.path.join(tc.tmp, "emit-%d.err" % tc.next_id())
        with open(self.err, "w") as e:
            self.proc = tc.spawn([EMIT, "--ring", ring, "--stdin"], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=e)

    def feed(self, first, n):
        self.proc.stdin.write("".join("timing %s 0.001 --meta seq=%d\n" % (self.scope, s)
                                      for s in range(first, first + n)).encode())
        self.proc.stdin.flush()
        self.fed += n

    def feed_paced(self, first, n, per_s, chunk=100):
        """Feeds n lines at about per_s a second from a thread; returns the thread."""
        def run():
            start = time.monotonic()
            for k in range(0, n, chunk):
                due = start + k / per_s
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                self.feed(first + k, min(chunk, n - k))
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def stderr(self):
        with open(self.err) as f:
            return f.read()

    def close(self, timeout=30):
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("gbatch-emit did not exit within %d s of EOF" % timeout)

    def never_read(self):
        """What the reporter counted as written into a removed segment and never read."""
        return sum(int(m) for m in re.findall(r"(\d+) record\(s\) written into the removed "
                                              r"segment were never read", self.stderr()))


class EdgeCase(GuaranteeCase):
    def ready(self, ring, p):
        """As CollectorCase.ready, for a ring named by a path too."""
        def attached():
            self.assertIsNone(p.poll(), "the collector exited at start: " + self.text(self.c_err))
            try:
                return read_field(ring, "consumer_pid") == p.pid
            except FileNotFoundError:
                return False
        wait_until(attached, 30, "the collector to attach to its ring")

    def in_log(self, path, pattern, what, timeout=10, alive=()):
        """Waits for pattern in the log at path; fails at once if a process of alive exits."""
        def found():
            for p in alive:
                self.assertIsNone(p.poll(), "%s: pid %d exited (rc %s) first" % (what, p.pid,
                                                                                 p.returncode))
            return re.search(pattern, self.text(path))
        return wait_until(found, timeout, what)

    def arrive(self, rv, seqs, what):
        def complete():
            got = received_seqs(rv)
            return all(got[s] for s in seqs)
        try:
            wait_until(complete, 20, what)
        except AssertionError:
            got = received_seqs(rv)
            missing = [s for s in seqs if not got[s]]
            raise AssertionError("%s: %d missing, first %s" % (what, len(missing), missing[:10]))

    def rm_ring(self, ring):
        os.unlink(seg_path(ring))


class SighupDrains(EdgeCase):
    """SIGHUP drains and exits like SIGTERM: folded counters and everything in the ring go out."""

    def test_sighup_under_load(self):
        rv = Receiver(self)
        ring = self.ring()
        # counters fold until the exit: only a drain at the signal sends them
        c = self.collector_on(ring, rv, "--flush-interval", "1h")
        self.write(ring, "--count", "5000", "--kind", "counter", "--scope", "hup.count",
                   "--value", "2")
        prods = self.producers(ring, 2, 50000, 50000)
        wait_until(lambda: ring_counters(ring)["tail"] > 20000 * 72, 30, "the load")
        before = ring_counters(ring)
        c.send_signal(signal.SIGHUP)
        self.assertEqual(c.wait(15), 0, "SIGHUP must drain and exit 0: " + self.text(self.c_err))
        self.assertGreaterEqual(ring_counters(ring)["head"], before["tail"])
        self.assertIn("signal %d: draining" % signal.SIGHUP, self.text(self.c_err))
        wait_until(lambda: rv.sum_of("gbatch.hup.count") == 10000, 10,
                   "the folded counter (5000 x 2) sent at the exit")
        self.finish_producers(prods)


class LateCommit(EdgeCase):
    """A record claimed before SIGTERM and committed after it is delivered before the exit."""

    def test_record_committed_after_the_signal_is_sent(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector_on(ring, rv)
        self.write(ring, "--count", "100", "--kind", "timing", "--scope", "seq.p0",
                   "--value", "0.001", "--seq", "0")
        self.arrive(rv, range(100), "the first 100 records")
        w = self.spawn([RING_WRITE, "--ring", ring, "--count", "0", "--kind", "timing",
                        "--scope", "seq.p0", "--value", "0.001", "--seq", "100",
                        "--late-commit", "700ms"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(w.stdout.readline().decode().strip(), "claimed")
        c.send_signal(signal.SIGTERM)
        self.assertEqual(c.wait(15), 0)
        self.assertEqual(w.wait(15), 0, w.stderr.read().decode())
        # the collector waited for the commit: head is past the record, and it was sent
        counters = ring_counters(ring)
        self.assertEqual(counters["head"], counters["tail"], "the late record is left in the ring")
        self.arrive(rv, [100], "the record committed after SIGTERM")
        self.assertEqual(received_seqs(rv)[100], 1)


class ExitWhenDone(EdgeCase):
    """--exit-when-producers-done waits for a producer of its own run."""

    def test_ring_left_by_an_earlier_run(self):
        rv = Receiver(self)
        ring = self.ring()
        # an earlier run: a producer attached, wrote and left; its collector read it all
        c = self.collector_on(ring, rv)
        self.write(ring, "--count", "10", "--kind", "timing", "--scope", "seq.p0",
                   "--value", "0.001", "--seq", "0")
        self.arrive(rv, range(10), "the earlier run's records")
        self.assertEqual(self.stop(c), 0)
        c = self.collector_on(ring, rv, "--exit-when-producers-done")
        # no producer of this run yet: it must not take the earlier one for it. Its check
        # runs on every idle pass (at most 100 ms apart); 1 s is ten of them.
        time.sleep(1.0)
        self.assertIsNone(c.poll(), "exited before any producer of its run: " +
                          self.text(self.c_err))
        self.write(ring, "--count", "100", "--kind", "timing", "--scope", "seq.p0",
                   "--value", "0.001", "--seq", "10", "--hold", "300ms")
        try:
            rc = c.wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError("did not exit once its producer had left")
        self.assertEqual(rc, 0)
        self.assertIn("every producer has detached", self.text(self.c_err))
        self.arrive(rv, range(10, 110), "this run's records")


class Shrunk(EdgeCase):
    """A segment truncated while mapped: neither side dies, the collector reports it damaged,
    goes on and drains the ring once it is recreated; the producer counts what it drops."""

    def test_truncated_under_both_sides(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector_on(ring, rv)
        p = Emitter(self, ring)
        p.feed(0, 100)
        self.arrive(rv, range(100), "the records before the truncation")
        os.truncate(seg_path(ring), 0)
        self.in_log(self.c_err, r'ring "%s": damaged' % ring, "the collector to report damage",
                    alive=(c, p.proc))
        self.in_log(p.err, r'ring "%s": the segment shrank' % ring, "the producer to notice",
                    alive=(c, p.proc))
        self.assertIsNone(c.poll(), "the collector died: rc %s" % c.returncode)
        p.feed(100, 100)
        self.assertEqual(p.close(), 0, p.stderr())
        self.assertIn("100 record(s) dropped", p.stderr())
        # recreated: the collector follows it and drains it
        self.rm_ring(ring)
        self.write(ring, "--count", "200", "--kind", "timing", "--scope", "seq.p0",
                   "--value", "0.001", "--seq", "1000")
        self.arrive(rv, range(1000, 1200), "the records in the recreated ring")
        self.assertIn("draining the new segment", self.text(self.c_err))
        self.assertEqual(self.stop(c), 0)
        got = received_seqs(rv)
        self.assertEqual([s for s in range(100, 200) if got[s]], [], "dropped yet received")


class Removed(EdgeCase):
    """A segment removed or replaced: both sides notice; nothing is lost uncounted."""

    def test_removed_and_replaced_under_a_running_collector(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector_on(ring, rv)
        p = Emitter(self, ring)
        feeder = p.feed_paced(0, 6000, 3000)
        wait_until(lambda: p.fed >= 1500, 10, "the producer to get going")
        self.rm_ring(ring)
        self.in_log(self.c_err, r'ring "%s": the segment was removed' % ring,
                    "the collector to notice the removal")
        # removed, or replaced already when the collector made the new segment first
        self.in_log(p.err, r'ring "%s" was (removed|replaced)' % ring, "the producer to notice")
        feeder.join(30)
        # a new producer after the removal is drained
        self.write(ring, "--count", "1000", "--kind", "timing", "--scope", "seq.p1",
                   "--value", "0.001", "--seq", "10000")
        self.arrive(rv, range(10000, 11000), "a new producer's records after the removal")
        # replaced: another segment renamed over the name
        other = self.ring()
        self.write(other, "--count", "0")
        seen = len(re.findall(r'ring "%s" was replaced' % ring, p.stderr()))
        os.rename(seg_path(other), seg_path(ring))
        self.in_log(self.c_err, r'ring "%s": the segment was replaced' % ring,
                    "the collector to notice the replacement")
        wait_until(lambda: len(re.findall(r'ring "%s" was replaced' % ring, p.stderr())) > seen,
                   10, "the producer to notice the replacement")
        p.feed(6000, 1000)
        self.write(ring, "--count", "1000", "--kind", "timing", "--scope", "seq.p1",
                   "--value", "0.001", "--seq", "20000")
        self.assertEqual(p.close(), 0, p.stderr())
        self.arrive(rv, list(range(7000)) + list(range(20000, 21000)),
                    "every record, before and after both")
        got = received_seqs(rv)
        self.assertEqual(max(got.values()), 1, "a record sent twice")
        self.assertEqual(p.never_read(), 0, p.stderr())
        self.assertEqual(self.stop(c), 0)

    def test_removed_with_no_collector_counts_the_orphan(self):
        rv = Receiver(self)
        ring = self.ring()
        total = 30000
        c = self.collector_on(ring, rv)
        p = Emitter(self, ring)
        feeder = p.feed_paced(0, total, 10000)
        wait_until(lambda: p.fed >= total // 3, 15, "a third of the records")
        self.assertEqual(self.stop(c), 0)
        self.rm_ring(ring)
        wait_until(lambda: p.fed >= total // 2, 15, "half of the records")
        c = self.collector_on(ring, rv)
        feeder.join(30)
        self.assertEqual(p.close(), 0, p.stderr())
        self.assertIn('ring "%s" was removed' % ring, p.stderr())
        lost = p.never_read()

        def complete():
            got = received_seqs(rv)
            return len(got) + lost >= total
        try:
            wait_until(complete, 20, "every record received or counted as never read")
        except AssertionError:
            pass  # the exact figures below say what is missing
        got = received_seqs(rv)
        self.assertEqual(set(got) - set(range(total)), set(), "sequence numbers never written")
        self.assertEqual(max(got.values()), 1, "a record sent twice")
        self.assertEqual(len(got) + lost, total,
                         "written %d, received %d, counted never read %d" % (total, len(got), lost))
        print("%d written: %d received, %d counted as never read in the removed segment"
              % (total, len(got), lost), file=sys.stderr)
        self.assertEqual(self.stop(c), 0)


class FullTmpfs(EdgeCase):
    """A ring on a full 1 MiB tmpfs: a clear error or a counted drop, never a SIGBUS."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        for name, path in (("GBATCH_PROCESSOR", PROCESSOR), ("GBATCH_STUB_GEMINI", STUB),
                           ("GBATCH_EMIT", EMIT)):
            self.assertTrue(os.access(path, os.X_OK), "%s=%r is not a program" % (name, path))
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
                            self.mnt], capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        self.mounted = True

    def tearDown(self):
        # the processes first (they hold the tmpfs), then the mount, then the rest
        if getattr(self, "mounted", False):
            for p in reversed(self.procs):
                self.kill(p)
            subprocess.run(["umount", self.mnt], capture_output=True)
        super().tearDown()

    def fill(self):
        """Fills the tmpfs to the last byte."""
        with open(os.path.join(self.mnt, "fill"), "ab", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as e:
                self.assertEqual(e.errno, errno.ENOSPC)

    def processor(self, telemetry):
        out = os.path.join(self.tmp, "stub-%d.out" % self.next_id())
        with open(out, "w") as f:
            self.spawn([STUB, "--port", "0", "--api-key", "k"], stdout=f)
        wait_until(lambda: "listening on" in self.text(out), 10, "the stand-in")
        content = os.path.join(self.tmp, "c.txt")
        with open(content, "w") as f:
            f.write("Some content.\n")
        questions = os.path.join(self.tmp, "q.txt")
        with open(questions, "w") as f:
            f.write("What is this?\nWhy?\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GBATCH_", "GEMINI_"))}
        env.update({"GEMINI_API_KEY": "k", "GEMINI_API_BASE": "http://" +
                    self.text(out).split()[-1]})
        res = os.path.join(self.tmp, "out-%d.json" % self.next_id())
        r = subprocess.run([PROCESSOR, "--telemetry", telemetry, "--questions", questions,
                            "--output", res, content], capture_output=True, timeout=60, env=env)
        with open(res) as f:
            return r.returncode, f.read(), r.stderr.decode()

    def test_full_tmpfs(self):
        self.fill()
        ring = os.path.join(self.mnt, "ring")
        # the collector: a clear error naming the ring, exit 1, nothing left behind
        r = subprocess.run([COLLECTOR, "--ring", ring, "--statsd", "off", "--console", "off"],
                           capture_output=True, timeout=30)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, "collector: rc %d: %s" % (r.returncode, err))
        self.assertIn('ring "%s"' % ring, err)
        self.assertIn("No space left on device", err)
        self.assertEqual(sorted(os.listdir(self.mnt)), ["fill"], "a half-made segment was left")
        # the processor: exactly as without telemetry, with a warning
        rc, out, perr = self.processor("shm:" + ring)
        rc_off, out_off, _ = self.processor("off")
        self.assertEqual((rc, rc_off), (0, 0), perr)
        answers = lambda text: json.loads(text)["answers"]  # noqa: E731 (timings differ)
        self.assertEqual(answers(out), answers(out_off))
        self.assertIn('ring "%s"' % ring, perr)
        self.assertEqual(sorted(os.listdir(self.mnt)), ["fill"], "a half-made segment was left")
        # a 64 KiB ring made while there was room, then the tmpfs filled up: its pages were
        # backed when it was made, so writing into it (it wraps 5 times) faults nowhere
        os.unlink(os.path.join(self.mnt, "fill"))
        self.write(ring, "--count", "0", "--capacity", "65536")
        self.fill()
        rv = Receiver(self)
        c = self.collector_on(ring, rv)
        p = Emitter(self, ring)
        p.feed(0, 4000)
        self.assertEqual(p.close(), 0, p.stderr())
        self.write(ring, "--count", "1000", "--kind", "timing", "--scope", "seq.p1",
                   "--value", "0.001", "--seq", "10000", "--rate", "20000", check=False)
        # what the full 64 KiB ring refused is counted in it: received + dropped == written
        wait_until(lambda: len(received_seqs(rv)) + ring_drops(ring) >= 5000, 20,
                   "every record received or counted dropped")
        got = received_seqs(rv)
        self.assertEqual(len(got) + ring_drops(ring), 5000)
        self.assertEqual(max(got.values()), 1)
        self.assertEqual(self.stop(c), 0)
        print("full 1 MiB tmpfs, 64 KiB ring: 5000 written, %d received, %d dropped (ring full)"
              % (len(got), ring_drops(ring)), file=sys.stderr)


def ring_drops(ring):
    return read_field(ring, "dropped_records")


if __name__ == "__main__":
    unittest.main(verbosity=2)
