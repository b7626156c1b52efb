#!/usr/bin/env python3
"""guarantees_it.py - the README's "Guarantees", each proven with the real processes running:
collector restarts (SIGKILL and SIGTERM) under load with every record accounted for by sequence
number, producers killed at random, overload with the collector stopped, a flapping StatsD target,
hostile segments through the real binaries, and bad input to every command line.

Run by ctest, one class per test (python3 guarantees_it.py ClassName), with the collector test's
environment plus GBATCH_PROCESSOR, GBATCH_STUB_GEMINI. GBATCH_GUARANTEE_SCALE (default 1) scales
the record counts and fault rounds down for the sanitizer builds; the assertions stay the same.
"""
import collections
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collector_it import (COLLECTOR, DSD_RECV, EMIT, RING_WRITE, CollectorCase,  # noqa: E402
                          Receiver, wait_until)

PROCESSOR = os.environ.get("GBATCH_PROCESSOR", "")
STUB = os.environ.get("GBATCH_STUB_GEMINI", "")
SCALE = float(os.environ.get("GBATCH_GUARANTEE_SCALE", "1"))

# The collector reads at most this many records per ring per pass (collector/collector.c BATCH):
# the most a SIGKILL can make it send twice.
IN_FLIGHT_BOUND = 4096

# Bytes of records waiting in the ring when a collector is signalled (a quarter of the ring).
BACKLOG = 1 << 20

# ring_layout.h: one counter per 128-byte line of the header page.
OFF_TAIL, OFF_HEAD, OFF_DROPPED, OFF_UNBLOCKED, OFF_INVALID = 128, 384, 512, 768, 896


def scaled(n, least=1):
    return max(least, int(n * SCALE))


def ring_counters(ring):
    """The segment's own counters, read from /dev/shm."""
    with open("/dev/shm/gbatch." + ring, "rb") as f:
        page = f.read(4096)
    get = lambda off: struct.unpack_from("<Q", page, off)[0]  # noqa: E731
    return {"tail": get(OFF_TAIL), "head": get(OFF_HEAD), "dropped": get(OFF_DROPPED),
            "unblocked": get(OFF_UNBLOCKED), "invalid": get(OFF_INVALID)}


SEQ_RE = re.compile(r"^gbatch\.seq\.p\d+:[^|]+\|ms\|#depth:0,seq:(\d+)$")


def received_seqs(rv):
    """How often each sequence number reached the receiver."""
    with open(rv.out) as f:
        text = f.read()
    assert "#overflow" not in text, "the test receiver fell behind and the kernel dropped " \
        "datagrams: the run proves nothing"
    assert "!INVALID" not in text, [l for l in text.splitlines() if l.startswith("!INVALID")][:5]
    return collections.Counter(int(m.group(1)) for m in map(SEQ_RE.match, text.splitlines()) if m)


class GuaranteeCase(CollectorCase):
    def collector_on(self, ring, rv, *extra):
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port,
                           "--max-tag-values", "0", *extra)
        wait_until(lambda: os.path.exists("/dev/shm/gbatch." + ring), 10, "the ring segment")
        return c

    def producers(self, ring, n_procs, per_proc, rate, *extra):
        """Starts n_procs ring-write processes writing per_proc timings each, tagged with
        sequence numbers k*per_proc .. (k+1)*per_proc-1; returns [(proc, dropped file)]."""
        out = []
        for k in range(n_procs):
            dropped = os.path.join(self.tmp, "dropped-%d-%d.txt" % (self.next_id(), k))
            p = self.spawn([RING_WRITE, "--ring", ring, "--count", str(per_proc), "--kind",
                            "timing", "--scope", "seq.p%d" % k, "--value", "0.001",
                            "--seq", str(k * per_proc), "--rate", str(rate),
                            "--dropped-out", dropped] + list(extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out.append((p, dropped))
        return out

    def finish_producers(self, prods):
        """Waits for the producers; returns the set of sequence numbers the ring refused."""
        dropped = set()
        for p, path in prods:
            try:
                p.wait(120)
            except subprocess.TimeoutExpired:
                raise AssertionError("a producer did not finish within 120 s")
            out = p.stdout.read().decode()
            self.assertRegex(out, r"written \d+ dropped \d+", p.stderr.read().decode())
            with open(path) as f:
                dropped |= {int(l) for l in f if l.strip()}
        return dropped

    def account(self, rv, total, dropped):
        """Waits until every sequence number not dropped arrived; returns the counts."""
        def complete():
            got = received_seqs(rv)
            return got if all(got[s] or s in dropped for s in range(total)) else None
        try:
            got = wait_until(complete, 30, "every record not dropped to arrive")
        except AssertionError:
            got = received_seqs(rv)
            missing = [s for s in range(total) if not got[s] and s not in dropped]
            raise AssertionError("%d records neither received nor counted dropped, first %s"
                                 % (len(missing), missing[:10]))
        self.assertEqual([s for s in dropped if got[s]], [], "dropped and still received")
        self.assertEqual(set(got) - set(range(total)), set(), "sequence numbers never written")
        return got


class Restarts(GuaranteeCase):
    """Promise 3: a restarted collector resumes where the last one stopped."""

    def restart_run(self, sig):
        rv = Receiver(self)
        ring = self.ring()
        total = scaled(200000, 3000) // 3 * 3
        rate = scaled(12000, 1000)  # per producer: the run takes about 5.5 s at scale 1
        c = self.collector_on(ring, rv)
        prods = self.producers(ring, 3, total // 3, rate)
        kills = 0
        for i in range(5):
            # a backlog first, so that the signal lands while the collector is busy
            c.send_signal(signal.SIGSTOP)
            try:
                wait_until(lambda: ring_counters(ring)["tail"] - ring_counters(ring)["head"]
                           >= BACKLOG or all(p.poll() is not None for p, _ in prods), 60,
                           "a backlog in the ring")
            finally:
                c.send_signal(signal.SIGCONT)
            time.sleep(random.uniform(0, 0.01))  # where in the drain the signal lands
            c.send_signal(sig)
            rc = c.wait(15)
            self.assertEqual(rc, -signal.SIGKILL if sig == signal.SIGKILL else 0)
            kills += 1
            c = self.collector_on(ring, rv)
        dropped = self.finish_producers(prods)
        self.assertEqual(self.stop(c), 0)
        got = self.account(rv, total, dropped)
        self.assertEqual(ring_counters(ring)["dropped"], len(dropped))
        dups = sum(n - 1 for n in got.values())
        print("%s x%d: %d records, %d dropped, %d duplicates (max per seq %d)" % (
            signal.Signals(sig).name, kills, total, len(dropped), dups,
            max(got.values())), file=sys.stderr)
        return dups, kills

    def test_sigkill_loses_nothing_and_repeats_at_most_the_batch_in_flight(self):
        dups, kills = self.restart_run(signal.SIGKILL)
        self.assertLessEqual(dups, kills * IN_FLIGHT_BOUND)

    def test_sigterm_restarts_deliver_exactly_once(self):
        dups, _ = self.restart_run(signal.SIGTERM)
        self.assertEqual(dups, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
