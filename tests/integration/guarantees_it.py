#!/usr/bin/env python3
"""guarantees_it.py - the README's "Guarantees", each proven with the real processes running:
collector restarts (SIGKILL and SIGTERM) under load with every record accounted for by sequence
number, producers killed at random, overload with the collector stopped, a flapping StatsD target,
hostile segments through the real binaries, and bad input to every command line.

Run by ctest, one class per test (python3 guarantees_it.py ClassName), with the collector test's
environment (GBATCH_RING_OFFSETS among it) plus GBATCH_PROCESSOR, GBATCH_STUB_GEMINI. GBATCH_GUARANTEE_SCALE (default 1) scales
the record counts and fault rounds down for the sanitizer builds; the assertions stay the same.
"""
import collections
import os
import random
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collector_it import (BAD, BAD_ENV, COLLECTOR, DSD_RECV, EMIT, RING_WRITE,  # noqa: E402
                          CollectorCase, Receiver, sent_errors, wait_until)
from ring_layout import LAYOUT  # noqa: E402  (on the path collector_it set)

PROCESSOR = os.environ.get("GBATCH_PROCESSOR", "")
STUB = os.environ.get("GBATCH_STUB_GEMINI", "")
SCALE = float(os.environ.get("GBATCH_GUARANTEE_SCALE", "1"))

# The collector reads at most this many records per ring per pass (collector/collector.c BATCH):
# the most a SIGKILL can make it send twice.
IN_FLIGHT_BOUND = 4096

# Bytes of records waiting in the ring when a collector is signalled (a quarter of the ring).
BACKLOG = 1 << 20

# ring_layout.h, through the ring-offsets tool: the header page, then the data area.
HEADER_SIZE = LAYOUT["header_page_size"]
# the identity line: everything before the first position (tail)
IDENTITY_END = LAYOUT["tail"]
# the positions and counters: from tail up to the consumer's line
COUNTERS_END = LAYOUT["futex_word"]


def scaled(n, least=1):
    return max(least, int(n * SCALE))


def ring_counters(ring):
    """The segment's own counters, read from /dev/shm."""
    with open("/dev/shm/gbatch." + ring, "rb") as f:
        page = f.read(HEADER_SIZE)

    def get(field):
        off, size = LAYOUT[field], LAYOUT[field + "_size"]
        return int.from_bytes(page[off:off + size], "little")
    return {"tail": get("tail"), "head": get("head"), "dropped": get("dropped_records"),
            "unblocked": get("unblocked_records"), "invalid": get("invalid_records"),
            "consumer_pid": get("consumer_pid")}


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
        return self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port,
                              "--max-tag-values", "0", *extra)

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


def self_metric(text, name):
    """The sum of a collector self-metric over every report a receiver got."""
    return sum(float(l.split(":", 1)[1].split("|", 1)[0]) for l in text.splitlines()
               if l.startswith("gbatch.collector.%s:" % name))


def assert_self_metric(rv, name, want):
    """The collector has exited and sent its last report, which the receiver, another process,
    may not have written out yet: waits for the sum to reach want, then checks it is want."""
    end = time.monotonic() + 15
    got = self_metric(rv.text(), name)
    while got < want and time.monotonic() < end:
        time.sleep(0.02)
        got = self_metric(rv.text(), name)
    if got != want:
        raise AssertionError("self-metric %s: %g, want %d" % (name, got, want))


class ProducerKills(GuaranteeCase):
    """Promise 4: a producer killed mid-record costs at most that record."""

    def test_twenty_producers_killed_at_random(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector_on(ring, rv, "--unblock-timeout", "200ms")
        per = scaled(30000, 2000)
        rate = 6000
        survivors = self.producers(ring, 2, per, rate)
        rng = random.Random(os.getpid())
        victims = scaled(20, 5)
        torn = 0
        for v in range(victims):
            out = os.path.join(self.tmp, "victim-%d.out" % v)
            tear = v % 2 == 0  # every other victim dies between claim and commit
            with open(out, "w") as f:
                p = self.spawn([RING_WRITE, "--ring", ring, "--count", "100000", "--kind",
                                "timing", "--scope", "victim.v%d" % v, "--value", "0.001",
                                "--seq", str(10 ** 9 + v * 10 ** 6), "--rate", "20000"] +
                               (["--count", str(rng.randrange(1, 2000)), "--torn"] if tear else []),
                               stdout=f, stderr=subprocess.DEVNULL)
            if tear:
                wait_until(lambda: "torn" in self.text(out), 20, "victim %d to tear a record" % v)
                torn += 1
            else:
                time.sleep(rng.uniform(0.01, 0.3))  # a random point in its run
            p.kill()
            p.wait()
            self.assertIsNone(c.poll(), "the collector died with victim %d" % v)
        dropped = self.finish_producers(survivors)
        got = self.account(rv, 2 * per, dropped)
        self.assertEqual(sum(n - 1 for n in got.values()), 0)
        # every torn record is padded over once the unblock timeout passes
        wait_until(lambda: ring_counters(ring)["unblocked"] >= torn, 10, "the torn records "
                   "to be unblocked")
        counters = ring_counters(ring)
        self.assertLessEqual(counters["unblocked"], victims)
        self.assertEqual(counters["invalid"], 0)
        self.assertEqual(self.stop(c), 0)
        assert_self_metric(rv, "records_unblocked", counters["unblocked"])
        self.assertNotIn("!INVALID", self.text(rv.out))
        print("%d victims (%d torn): %d records unblocked" % (victims, torn,
              counters["unblocked"]), file=sys.stderr)


class Overload(GuaranteeCase):
    """Promise 2: every record is delivered or counted as dropped, exactly."""

    def test_ten_rings_worth_with_the_collector_stopped(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector_on(ring, rv)
        cap = 4 << 20
        record = 72  # bytes a seq-tagged timing takes in the ring
        total = int(10 * cap / record * min(1.0, SCALE * 4)) // 3 * 3
        c.send_signal(signal.SIGSTOP)
        try:
            prods = self.producers(ring, 3, total // 3, 100000000)
            dropped = self.finish_producers(prods)
        finally:
            c.send_signal(signal.SIGCONT)
        self.assertGreater(len(dropped), total // 2)
        got = self.account(rv, total, dropped)
        self.assertEqual(sum(got.values()), total - len(dropped))  # nothing twice
        self.assertEqual(len(got) + len(dropped), total)
        self.assertEqual(ring_counters(ring)["dropped"], len(dropped))
        self.assertEqual(self.stop(c), 0)
        assert_self_metric(rv, "records_dropped", len(dropped))
        assert_self_metric(rv, "records_read", len(got))
        print("%d written: %d received, %d dropped" % (total, len(got), len(dropped)),
              file=sys.stderr)


class SigtermUnderLoad(GuaranteeCase):
    """Promise 5: SIGTERM delivers everything already in the ring before the collector exits."""

    def test_everything_committed_before_sigterm_is_sent_before_exit(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector_on(ring, rv)
        total = scaled(300000, 30000) // 3 * 3
        prods = self.producers(ring, 3, total // 3, scaled(100000, 10000))  # for about 1 s
        wait_until(lambda: ring_counters(ring)["tail"] > total * 72 // 5, 30,
                   "the producers to get going")
        before = ring_counters(ring)
        self.assertTrue(any(p.poll() is None for p, _ in prods), "the load ended too early")
        c.send_signal(signal.SIGTERM)
        self.assertEqual(c.wait(15), 0)
        after = ring_counters(ring)
        # every byte claimed before the signal was read, sent and released before the exit
        self.assertGreaterEqual(after["head"], before["tail"])
        dropped = self.finish_producers(prods)
        # what came after the exit is left in the ring for the next collector: none is lost
        c = self.collector_on(ring, rv)
        got = self.account(rv, total, dropped)
        self.assertEqual(sum(n - 1 for n in got.values()), 0)
        self.assertEqual(self.stop(c), 0)


class TargetFlapping(GuaranteeCase):
    """Promise 6: a StatsD target that is down costs only what was sent while it was down."""

    def fd_count(self, pid):
        return len(os.listdir("/proc/%d/fd" % pid))

    def flap(self, unix):
        path = os.path.join(self.tmp, "dsd.sock") if unix else None
        rv = Receiver(self, unix_path=path)
        ring = self.ring()
        target = "unixgram://" + path if unix else "udp://127.0.0.1:%d" % rv.port
        c = self.collector(ring, "--statsd", target, "--max-tag-values", "0")
        # paced: a UDP receiver that falls behind loses datagrams in its socket buffer, which
        # no sender can see (a unixgram target makes the collector wait for room instead)
        per, rate = scaled(4000, 500), "10000"
        seq, up_seqs = 0, []
        fds = None
        for rnd in range(scaled(6, 3)):
            # up: written now, received for sure
            self.write(ring, "--count", str(per), "--kind", "timing", "--scope", "seq.p0",
                       "--value", "0.001", "--seq", str(seq), "--rate", rate)
            up_seqs += range(seq, seq + per)
            seq += per
            wait_until(lambda: received_seqs(rv).keys() >= set(up_seqs), 15,
                       "round %d's records while the target is up" % rnd)
            if fds is None:
                fds = self.fd_count(c.pid)
            self.kill(rv.proc)
            # down: sent into the void, counted
            self.write(ring, "--count", str(per), "--kind", "timing", "--scope", "seq.p1",
                       "--value", "0.001", "--seq", str(seq))
            seq += per
            wait_until(lambda: (lambda r: r["head"] == r["tail"])(ring_counters(ring)), 10,
                       "the collector to read round %d's records" % rnd)
            self.assertIsNone(c.poll(), "the collector died while its target was down")
            rv = self.restart_receiver(rv, path)
            if unix:
                # a unixgram target is reconnected at most every 500 ms: wait for that
                probe = "probe.r%d" % rnd
                wait_until(lambda: self.write(ring, "--kind", "timing", "--scope", probe)
                           and "gbatch.%s:" % probe in self.text(rv.out), 10, "the reconnection")
        self.write(ring, "--count", str(per), "--kind", "timing", "--scope", "seq.p0",
                   "--value", "0.001", "--seq", str(seq), "--rate", rate)
        up_seqs += range(seq, seq + per)
        wait_until(lambda: received_seqs(rv).keys() >= set(up_seqs[-per:]), 15, "the last round")
        self.assertEqual(self.fd_count(c.pid), fds, "file descriptors leaked")
        self.assertEqual(self.stop(c), 0)
        errors = sent_errors(self.text(self.c_err))
        self.assertGreater(errors, 0)
        return errors

    def restart_receiver(self, old, path):
        """A new receiver on the same port or path, appending to the same file."""
        if path:
            args = [DSD_RECV, "--unix", path, "--out", old.out, "--max", "8192"]
        else:
            args = [DSD_RECV, "--udp", str(old.port), "--out", old.out, "--max", "1432"]
        old.proc = self.spawn(args, stdout=subprocess.PIPE)
        old.proc.stdout.readline()
        return old

    def test_udp_target_flapping(self):
        errors = self.flap(unix=False)
        print("udp: %d send errors counted" % errors, file=sys.stderr)

    def test_unixgram_target_flapping(self):
        errors = self.flap(unix=True)
        print("unixgram: %d send errors counted" % errors, file=sys.stderr)


LONG = "x" * 300
# Every binary's flags and environment variables: (binary, args, env, stdin, what the message
# must name). The collector's own table (collector_it.py) is included.
CLI = [("collector", a, {}, None, n) for a, n in BAD] + [
    ("collector", ["--statsd", "off"] if "DD_" not in "".join(e) else [], e, None, n)
    for e, n in BAD_ENV] + [
    ("collector", ["--ring", ".."], {}, None, '".."'),
    ("collector", ["--ring", "a/"], {}, None, '"a/"'),
    ("collector", ["--statsd", "udp://:1"], {}, None, "udp://:1"),
    ("collector", ["--statsd", "unixgram://relative"], {}, None, "unixgram://relative"),
    ("collector", ["--console", ""], {}, None, '""'),
    ("collector", ["--prefix", "p" * 101], {}, None, "--prefix"),
    ("collector", ["--drop-tag", "Bad Key"], {}, None, "Bad Key"),
    ("collector", ["--max-tag-values", "1000001"], {}, None, "1000001"),
    ("collector", ["--unblock-timeout", "0"], {}, None, "--unblock-timeout"),
    ("collector", ["--trust-uid", "4294967295"], {}, None, "4294967295"),
    ("collector", ["--exit-when-producers-done=yes"], {}, None, "--exit-when-producers-done"),
    ("collector", ["--statsd", "off"], {"DD_ENV": LONG}, None, "DD_ENV"),
    ("collector", ["--statsd", "off"], {"DD_SERVICE": LONG}, None, "DD_SERVICE"),
    ("collector", ["--statsd", "off"], {"DD_VERSION": LONG}, None, "DD_VERSION"),
    ("collector", ["--statsd", "off"], {"DD_ENTITY_ID": LONG}, None, "DD_ENTITY_ID"),
    # an empty port (udp://x alone is host x on port 8125, as datadog-go reads it)
    ("collector", [], {"DD_DOGSTATSD_URL": "udp://x:"}, None, "udp://x:"),
    ("collector", ["--statsd", "off"], {"GBATCH_LOG_LEVEL": "loud"}, None, "loud"),
    ("processor", ["--bogus"], {}, None, "--bogus"),
    ("processor", ["--questions"], {}, None, "--questions"),
    ("processor", ["--questions", "/nonexistent/q", "{content}"], {}, None, "/nonexistent/q"),
    ("processor", ["--questions", "{questions}", "/nonexistent/c"], {}, None, "/nonexistent/c"),
    ("processor", ["--questions", "{questions}"], {}, None, "CONTENT_FILE"),
    ("processor", ["--questions", "{empty}", "{content}"], {}, None, "{empty}"),
    ("processor", ["--model", "bad model/x", "--questions", "{questions}", "{content}"], {}, None,
     "bad model/x"),
    ("processor", ["--api-base", "ftp://x", "--questions", "{questions}", "{content}"], {}, None,
     "ftp://x"),
    ("processor", ["--telemetry", "loud", "--questions", "{questions}", "{content}"], {}, None,
     "loud"),
    ("processor", ["--telemetry", "shm:bad.name", "--questions", "{questions}", "{content}"], {},
     None, "shm:bad.name"),
    ("processor", ["--timeout", "0", "--questions", "{questions}", "{content}"], {}, None, '"0"'),
    ("processor", ["--timeout", "5x", "--questions", "{questions}", "{content}"], {}, None, "5x"),
    ("processor", ["--max-attempts", "0", "--questions", "{questions}", "{content}"], {}, None,
     '"0"'),
    ("processor", ["--max-attempts", "101", "--questions", "{questions}", "{content}"], {}, None,
     "101"),
    ("processor", ["--schema", "/nonexistent/s", "--questions", "{questions}", "{content}"], {},
     None, "/nonexistent/s"),
    ("processor", ["--schema", "{content}", "--questions", "{questions}", "{content}"], {}, None,
     "schema"),
    ("processor", ["--compare=yes", "--questions", "{questions}", "{content}"], {}, None,
     "--compare"),
    ("processor", ["--questions", "{questions}", "{content}"], {"GEMINI_API_KEY": ""}, None,
     "GEMINI_API_KEY"),
    ("processor", ["--questions", "{questions}", "{content}"], {"GEMINI_MODEL": "bad model"}, None,
     "bad model"),
    ("processor", ["--questions", "{questions}", "{content}"], {"GEMINI_API_BASE": "nope"}, None,
     "nope"),
    ("processor", ["--questions", "{questions}", "{content}"], {"GBATCH_RING": "bad name"}, None,
     "bad name"),
    ("processor", ["--questions", "{questions}", "{content}"], {"GBATCH_LOG_LEVEL": "loud"}, None,
     "loud"),
    ("processor", ["--jobs", "/nonexistent/j.jsonl"], {}, None, "/nonexistent/j.jsonl"),
    ("processor", ["--jobs", "{jobs}", "--parallel", "0"], {}, None, '"0"'),
    ("processor", ["--jobs", "{jobs}", "--parallel", "1025"], {}, None, "1025"),
    ("processor", ["--jobs", "{jobs}", "--tier", "gold"], {}, None, "gold"),
    ("processor", ["--jobs", "{jobs}"], {"GEMINI_TIER": "gold"}, None, "gold"),
    ("processor", ["--questions", "{questions}", "{content}"], {"GEMINI_TIER": "gold"}, None,
     "gold"),
    ("processor", ["--jobs", "{jobs}", "--rpm", "0"], {}, None, '"0"'),
    ("processor", ["--jobs", "{jobs}", "--tpm", "-1"], {}, None, '"-1"'),
    ("processor", ["--jobs", "{jobs}", "--rate-window", "0"], {}, None, '"0"'),
    ("processor", ["--jobs", "{jobs}", "--drain-timeout", "soon"], {}, None, "soon"),
    ("processor", ["--jobs", "{jobs}", "--cache-min-tokens", "many"], {}, None, "many"),
    ("processor", ["--jobs", "{jobs}", "--cache-ttl", "0"], {}, None, '"0"'),
    ("processor", ["--jobs", "{jobs}", "--resume"], {}, None, "--resume"),
    ("processor", ["--jobs", "{jobs}", "--keep-cache=1"], {}, None, "--keep-cache"),
    ("processor", ["--jobs", "{jobs}", "--questions", "{questions}"], {}, None, "--questions"),
    ("processor", ["--parallel", "2", "--questions", "{questions}", "{content}"], {}, None,
     "--parallel"),
    ("processor", ["--jobs", "{jobs}"], {"GBATCH_RING": "bad name"}, None, "bad name"),
    ("processor", ["--shard", "0/2", "--questions", "{questions}", "{content}"], {}, None,
     "--shard"),
] + [("processor", ["--jobs", "{jobs}", "--shard", v], {}, None, '"%s"' % v) for v in (
    "3/3", "a/2", "1/0", "-1/2", "1/2/3", "1/", "99999999999999999999/2", "0/100001")] + [
    ("emit", ["--bogus"], {}, None, "--bogus"),
    ("emit", ["--ring"], {}, None, "--ring"),
    ("emit", ["--ring", "bad name", "count", "x", "1"], {}, None, "bad name"),
    ("emit", ["count", "x"], {}, None, "KIND NAME VALUE"),
    ("emit", ["cnt", "x", "1"], {}, None, '"cnt"'),
    ("emit", ["count", "x", "abc"], {}, None, '"abc"'),
    ("emit", ["count", "x", "nan"], {}, None, '"nan"'),
    ("emit", ["count", "x", "1e999"], {}, None, '"1e999"'),
    ("emit", ["count", "", "1"], {}, None, "NAME"),
    ("emit", ["timing", "x", "-1"], {}, None, '"-1"'),
    ("emit", ["count", "x", "1", "--meta", "novalue"], {}, None, '"novalue"'),
    ("emit", ["count", "x", "1", "--meta", "=v"], {}, None, '"=v"'),
    ("emit", ["count", "x", "1", "--meta"], {}, None, "--meta"),
    ("emit", ["count", "x", "1", "extra"], {}, None, '"extra"'),
    ("emit", ["--stdin", "extra"], {}, None, '"extra"'),
    ("emit", ["--stdin"], {}, "count x 1 --bogus\n", "line 1"),
    ("emit", ["--stdin"], {}, "count x 1\ncount y zz\n", '"zz"'),
    ("emit", ["--stdin"], {}, " ".join(["w"] * 200) + "\n", "too many words"),
    ("emit", ["count", "x", "1"], {"GBATCH_RING": "bad name"}, None, "bad name"),
    ("emit", ["count", "x", "1"], {"GBATCH_LOG_LEVEL": "loud"}, None, "loud"),
    ("stub", ["--bogus"], {}, None, "--bogus"),
    ("stub", ["--port"], {}, None, "--port"),
    ("stub", ["--port", "70000"], {}, None, "70000"),
    ("stub", ["--port", "abc"], {}, None, '"abc"'),
    ("stub", ["--latency", "5x"], {}, None, "5x"),
    ("stub", ["--log", "/nonexistent/dir/log"], {}, None, "/nonexistent/dir/log"),
    ("stub", ["--fault", "nonsense"], {}, None, "nonsense"),
    ("stub", ["--fault", "429:x"], {}, None, '"x"'),
    ("stub", ["--fault", "slow:1:delay=zz"], {}, None, '"zz"'),
    ("stub", ["--fault", "429"] * 100, {}, None, "faults"),
    ("stub", ["stray"], {}, None, '"stray"'),
    ("stub", ["--port", "0"], {"GBATCH_LOG_LEVEL": "loud"}, None, "loud"),
]


class CommandLines(unittest.TestCase):
    """Promise 9: every bad flag, value or variable exits 2 with a message naming it."""

    def test_every_binary_rejects_bad_input_with_2(self):
        import tempfile
        binaries = {"collector": COLLECTOR, "processor": PROCESSOR, "emit": EMIT, "stub": STUB}
        for name, path in binaries.items():
            self.assertTrue(os.access(path, os.X_OK), "%s: %r is not a program" % (name, path))
        with tempfile.TemporaryDirectory(prefix="gbatch-cli-") as tmp:
            files = {"questions": os.path.join(tmp, "q.txt"), "content": os.path.join(tmp, "c.txt"),
                     "empty": os.path.join(tmp, "empty.txt"), "jobs": os.path.join(tmp, "j.jsonl")}
            for k, text in (("questions", "What?\n"), ("content", "Some text.\n"), ("empty", "\n"),
                            ("jobs", '{"id": 1, "content": "x", "questions": ["What?"]}\n')):
                with open(files[k], "w") as f:
                    f.write(text)
            base = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DD_", "GBATCH_", "GEMINI_", "STUB_GEMINI_"))}
            # an unroutable endpoint: a case that got past its checks would fail, not hang
            base.update({"GEMINI_API_KEY": "k", "GEMINI_API_BASE": "http://127.0.0.1:9"})
            # a usage error must leave no trace: the default ring of these runs must not appear
            ring = "cli-%d" % os.getpid()
            base["GBATCH_RING"] = ring
            seg = "/dev/shm/gbatch." + ring
            for binary, args, env, stdin, named in CLI:
                args = [a.format(**files) for a in args]
                named = named.format(**files)
                with self.subTest(binary=binary, args=args, env=env):
                    e = dict(base)
                    e.update(env)
                    r = subprocess.run([binaries[binary]] + args, capture_output=True, env=e,
                                       input=(stdin or "").encode(), timeout=20)
                    err = r.stderr.decode(errors="replace")
                    created = os.path.exists(seg)
                    if created:
                        os.unlink(seg)
                    self.assertEqual(r.returncode, 2, "exit %d: %s" % (r.returncode, err))
                    self.assertIn(named, err)
                    self.assertFalse(created, "a usage error created the ring")


class Segments(GuaranteeCase):
    """Promises 7 and 8: no segment content crashes the collector or is read out of bounds;
    segments of another user, with a wrong mode, linked, truncated or of the wrong size are
    refused with a message naming the ring, through the real binaries."""

    def seg(self, ring):
        return "/dev/shm/gbatch." + ring

    def make_ring(self):
        ring = self.ring()
        self.write(ring, "--count", "0")
        return ring

    def deliver(self, ring, rv, label):
        """Writes a probe until one arrives: the pair works (again)."""
        statuses = []

        def probe():
            statuses.append(self.write(ring, "--kind", "timing", "--scope", label,
                                       check=False).returncode)
            return "gbatch.%s:" % label in self.text(rv.out)
        try:
            wait_until(probe, 15, "delivery of %s" % label)
        except AssertionError as e:
            raise AssertionError("%s: %d probes written (exit statuses %s); the segment's "
                                 "counters now %s" % (e, len(statuses), sorted(set(statuses)),
                                                      ring_counters(ring))) from None

    def test_random_bytes_over_a_live_segment(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector_on(ring, rv, "--unblock-timeout", "50ms")
        rng = random.Random(os.getpid())
        path = self.seg(ring)
        for rnd in range(scaled(12, 4)):
            # a little traffic in the ring when the bytes hit it
            self.write(ring, "--count", "2000", "--kind", "timing", "--scope", "live",
                       "--meta", "round=%d" % rnd, check=False)
            with open(path, "r+b") as f:
                if rnd % 3 == 0:  # the positions and counters (header lines 1 to 7)
                    f.seek(IDENTITY_END)
                    f.write(os.urandom(COUNTERS_END - IDENTITY_END))
                elif rnd % 3 == 1:  # record headers and payloads
                    for _ in range(64):
                        # within the data area: a write past its end would grow the file,
                        # and a segment of the wrong size is refused to new producers
                        n = rng.randrange(1, 512)
                        f.seek(HEADER_SIZE + rng.randrange(0, (4 << 20) - n))
                        f.write(os.urandom(n))
                else:  # everything after the identity line
                    f.seek(IDENTITY_END)
                    f.write(os.urandom(HEADER_SIZE - IDENTITY_END + (64 << 10)))
            self.assertIsNone(c.poll(), "the collector died in round %d" % rnd)
            self.assertEqual(os.stat(path).st_size, HEADER_SIZE + (4 << 20))
            self.deliver(ring, rv, "after.r%d" % rnd)
        self.assertNotIn("!INVALID", self.text(rv.out))
        counters = ring_counters(ring)
        self.assertGreater(counters["invalid"], 0)  # the collector saw and counted the damage
        # the identity itself: new attachments are refused, the running collector goes on
        with open(path, "r+b") as f:
            f.write(os.urandom(IDENTITY_END))
        r = self.write(ring, "--count", "1", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad magic", r.stderr.decode())
        self.assertIsNone(c.poll())
        self.assertEqual(self.stop(c), 0)
        r = subprocess.run([COLLECTOR, "--ring", ring, "--statsd", "off", "--console", "off"],
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn(ring, r.stderr.decode())
        self.assertIn("bad magic", r.stderr.decode())

    def refused(self, ring, why, *collector_args):
        """The collector and gbatch-emit both refuse the ring, naming it and why."""
        before = None
        if os.path.isfile(self.seg(ring)):
            with open(self.seg(ring), "rb") as f:
                before = f.read()
        r = subprocess.run([COLLECTOR, "--ring", ring, "--statsd", "off", "--console", "off"] +
                           list(collector_args), capture_output=True, timeout=20)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn(ring, err)
        self.assertIn(why, err)
        r = subprocess.run([EMIT, "--ring", ring, "--strict", "count", "x", "1"],
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertIn(why, r.stderr.decode())
        r = subprocess.run([EMIT, "--ring", ring, "count", "x", "1"], capture_output=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr.decode())  # telemetry never fails a step
        if before is not None:
            with open(self.seg(ring), "rb") as f:
                self.assertEqual(f.read(), before, "a refused segment was written to")

    @unittest.skipUnless(os.geteuid() == 0, "giving a segment to another uid needs root")
    def test_segment_of_another_uid_is_refused_unless_trusted(self):
        ring = self.make_ring()
        os.chown(self.seg(ring), 12345, 12345)
        self.refused(ring, "owned by uid 12345")
        c = self.collector(ring, "--statsd", "off", "--trust-uid", "12345")
        self.assertEqual(ring_counters(ring)["consumer_pid"], c.pid)
        self.assertEqual(self.stop(c), 0)

    def test_hostile_segments_are_refused(self):
        ring = self.make_ring()
        os.chmod(self.seg(ring), 0o666)
        self.refused(ring, "writable by others")
        ring = self.make_ring()
        os.chmod(self.seg(ring), 0o620)
        self.refused(ring, "writable by its group")

        target = self.make_ring()
        ring = self.ring()
        os.symlink(self.seg(target), self.seg(ring))
        self.refused(ring, "symbolic link")

        ring = self.ring()
        os.link(self.seg(target), self.seg(ring))
        self.refused(ring, "2 hard links")
        self.refused(target, "2 hard links")

        ring = self.make_ring()
        os.truncate(self.seg(ring), 100)
        self.refused(ring, "waiting 1 s")
        ring = self.make_ring()
        os.truncate(self.seg(ring), os.path.getsize(self.seg(ring)) + 4096)
        self.refused(ring, "but its header says")
        ring = self.make_ring()
        with open(self.seg(ring), "r+b") as f:
            f.seek(LAYOUT["capacity"])
            f.write((12345).to_bytes(LAYOUT["capacity_size"], "little"))
        self.refused(ring, "capacity 12345")

        ring = self.ring()
        with open(self.seg(ring), "wb") as f:
            f.write(os.urandom((4 << 20) + HEADER_SIZE))
        os.chmod(self.seg(ring), 0o600)
        self.refused(ring, "bad magic")

        ring = self.ring()
        os.mkfifo(self.seg(ring), 0o600)
        self.refused(ring, "not a regular file")
        ring = self.ring()
        os.mkdir(self.seg(ring), 0o700)
        try:
            self.refused(ring, "cannot open")
        finally:
            os.rmdir(self.seg(ring))


class ProcessorNeverBlocks(GuaranteeCase):
    """Promise 1: the processor never blocks on telemetry and never fails because of it."""

    DEADLINE = 60  # generous: a normal run takes well under a second

    def setUp(self):
        super().setUp()
        for name, path in (("GBATCH_PROCESSOR", PROCESSOR), ("GBATCH_STUB_GEMINI", STUB)):
            self.assertTrue(os.access(path, os.X_OK), "%s=%r is not a program" % (name, path))
        out = os.path.join(self.tmp, "stub.out")
        with open(out, "w") as f:
            self.spawn([STUB, "--port", "0", "--api-key", "k", "--latency", "20ms"], stdout=f)
        wait_until(lambda: "listening on" in self.text(out), 10, "the stand-in")
        self.base = "http://" + self.text(out).split()[-1]
        self.questions = os.path.join(self.tmp, "q.txt")
        self.content = os.path.join(self.tmp, "c.txt")
        with open(self.questions, "w") as f:
            f.write("".join("Question number %d?\n" % i for i in range(8)))
        with open(self.content, "w") as f:
            f.write("Some content to ask about.\n" * 50)

    def process(self, ring, what):
        """Runs gbatch-processor --compare into ring; returns (seconds, stderr)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GBATCH_", "GEMINI_"))}
        env.update({"GEMINI_API_KEY": "k", "GEMINI_API_BASE": self.base})
        start = time.monotonic()
        p = self.spawn([PROCESSOR, "--questions", self.questions, "--telemetry", "shm:" + ring,
                        "--compare", "--output", os.path.join(self.tmp, "out.json"), self.content],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        return p, start, what

    def finish(self, run):
        p, start, what = run
        try:
            _, err = p.communicate(timeout=self.DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError("processor (%s) still running after %d s" % (what, self.DEADLINE))
        took = time.monotonic() - start
        self.assertEqual(p.returncode, 0, "%s: %s" % (what, err.decode()))
        self.timings[what] = took
        return err.decode()

    def fill(self, ring):
        """Writes into ring until it is full."""
        self.write(ring, "--count", "100000", check=False)
        self.assertGreater(ring_counters(ring)["dropped"], 0)

    def test_processor_runs_whatever_the_collector_does(self):
        self.timings = {}
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector_on(ring, rv)
        self.finish(self.process(ring, "collector running"))
        wait_until(lambda: "gbatch.batch" in self.text(rv.out), 10, "the processor's telemetry")

        # stopped with a full ring: every record is dropped, nothing waits
        c.send_signal(signal.SIGSTOP)
        try:
            self.fill(ring)
            before = ring_counters(ring)["dropped"]
            self.finish(self.process(ring, "collector stopped, ring full"))
            self.assertGreater(ring_counters(ring)["dropped"], before)
        finally:
            c.send_signal(signal.SIGCONT)

        # killed while the processor runs
        tail = ring_counters(ring)["tail"]
        run = self.process(ring, "collector killed mid-run")
        wait_until(lambda: ring_counters(ring)["tail"] > tail, 10, "the processor's first record")
        c.kill()
        c.wait()
        self.finish(run)

        # absent: no collector, a full ring nobody reads, then no ring at all
        self.fill(ring)
        self.finish(self.process(ring, "collector absent, ring full"))
        self.finish(self.process(self.ring(), "collector absent, no ring"))

        # a ring it must refuse: warned about, never fatal
        bad = self.ring()
        with open("/dev/shm/gbatch." + bad, "wb") as f:
            f.write(os.urandom(8192))
        os.chmod("/dev/shm/gbatch." + bad, 0o600)
        err = self.finish(self.process(bad, "hostile segment"))
        self.assertIn("bad magic", err)
        print(", ".join("%s %.2f s" % kv for kv in self.timings.items()), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
