#!/usr/bin/env python3
"""collector_it.py - gbatch-collector against real processes: producers writing into a real
ring (ring-write), a real StatsD daemon (the npm `statsd`, read back through its management
port), our strict DogStatsD receiver (dogstatsd-recv) for UDP and unixgram, signals, console
output line by line, and the command line's refusals.

Run by ctest with GBATCH_COLLECTOR, GBATCH_RING_WRITE, GBATCH_DSD_RECV, GBATCH_EMIT,
GBATCH_RING_OFFSETS (binaries) and GBATCH_STATSD_DIR (the npm install made by tests/run.sh) in the environment.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from statsd_server import Statsd, wait_until  # noqa: E402
from ring_layout import LAYOUT  # noqa: E402

COLLECTOR = os.environ.get("GBATCH_COLLECTOR", "")
RING_WRITE = os.environ.get("GBATCH_RING_WRITE", "")
DSD_RECV = os.environ.get("GBATCH_DSD_RECV", "")
EMIT = os.environ.get("GBATCH_EMIT", "")

_seq = [0]

# ring_layout.h (through the ring-offsets tool): the consumer's pid in the header page
CONSUMER_PID_OFFSET = LAYOUT["consumer_pid"]
CONSUMER_PID_SIZE = LAYOUT["consumer_pid_size"]


class Receiver:
    """dogstatsd-recv on udp (any loopback address, IPv6 too), unixgram (unix_path) or
    unixstream (stream): every line the collector sends, checked by our strict checker, written
    to a file."""

    def __init__(self, tc, unix_path=None, udp_bind=None, port=0, stream=None, max_bytes=None):
        self.tc = tc
        self.out = os.path.join(tc.tmp, "recv-%d.txt" % tc.next_id())
        open(self.out, "w").close()
        if stream:
            args = ["--unixstream", stream]
        elif unix_path:
            args = ["--unix", unix_path]
        else:
            args = ["--udp", str(port), "--bind", udp_bind or "127.0.0.1"]
        limit = max_bytes or (1432 if udp_bind or not (unix_path or stream) else 8192)
        self.proc = tc.spawn([DSD_RECV] + args + ["--out", self.out, "--max", str(limit)],
                             stdout=subprocess.PIPE)
        first = self.proc.stdout.readline().decode()
        if not (unix_path or stream):
            if not first.startswith("port "):
                raise AssertionError("dogstatsd-recv did not bind: %r" % first)
            self.port = int(first.split()[1])

    def stop(self):
        self.tc.kill(self.proc)

    def text(self):
        with open(self.out) as f:
            return f.read()

    def lines(self):
        return [l for l in self.text().splitlines() if not l.startswith("#")]

    def datagrams(self):
        return [tuple(map(int, l.split()[1:])) for l in self.text().splitlines()
                if l.startswith("#dgram")]

    def invalid(self):
        return [l for l in self.text().splitlines() if l.startswith("!INVALID")]

    def sum_of(self, name):
        return sum(sum(float(v) for v in l.split("|", 1)[0].split(":")[1:] if v)
                   for l in self.lines() if l.startswith(name + ":"))


def sent_errors(stderr_text):
    """send_errors from the summary a collector logs at exit."""
    m = re.search(r"send_errors (\d+)", stderr_text)
    if m is None:
        raise AssertionError("no send_errors in the collector's log: %r" % stderr_text)
    return int(m.group(1))


def packets_sent(stderr_text):
    """The packets a collector says at exit it sent to statsd."""
    m = re.search(r"statsd: (\d+) packets sent", stderr_text)
    if m is None:
        raise AssertionError("no packets sent in the collector's log: %r" % stderr_text)
    return int(m.group(1))


# poll(2) and ppoll(2), the calls a process waiting for a socket to become writable sits in
POLL_SYSCALLS = {"x86_64": {7, 271}, "aarch64": {73}}


def waiting_in_poll(pid):
    """True while pid is blocked in poll (read from /proc/PID/syscall)."""
    with open("/proc/%d/syscall" % pid) as f:
        first = f.read().split()[0]
    return first.isdigit() and int(first) in POLL_SYSCALLS.get(os.uname().machine, ())


class CollectorCase(unittest.TestCase):
    def setUp(self):
        for name, path in (("GBATCH_COLLECTOR", COLLECTOR), ("GBATCH_RING_WRITE", RING_WRITE),
                           ("GBATCH_DSD_RECV", DSD_RECV)):
            self.assertTrue(os.access(path, os.X_OK), "%s=%r is not a program" % (name, path))
        self.tmp = tempfile.mkdtemp(prefix="gbatch-it-")
        self.procs = []
        self.rings = []

    def tearDown(self):
        for p in reversed(self.procs):
            self.kill(p)
        for r in self.rings:
            try:
                os.unlink("/dev/shm/gbatch." + r)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def next_id(self):
        _seq[0] += 1
        return _seq[0]

    def ring(self):
        name = "it%dx%d" % (os.getpid(), self.next_id())
        self.rings.append(name)
        return name

    def spawn(self, args, **kw):
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def kill(self, p):
        if p.poll() is None:
            p.kill()
        p.wait()
        for f in (p.stdout, p.stderr):
            if f:
                f.close()

    def collector(self, ring, *args, env=None, console=None, stdout=None):
        """Starts gbatch-collector on ring; its stdout (unless given) and stderr go to
        files."""
        n = self.next_id()
        self.c_out = os.path.join(self.tmp, "collector-%d.out" % n)
        self.c_err = os.path.join(self.tmp, "collector-%d.err" % n)
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("DD_") or k == "GBATCH_RING":
                del e[k]
        e.update(env or {})
        cmd = [COLLECTOR, "--ring", ring, "--console", console or "off"] + list(args)
        with open(self.c_out, "w") as out, open(self.c_err, "w") as err:
            p = self.spawn(cmd, stdout=stdout or out, stderr=err, env=e)
        self.ready(ring, p)
        return p

    def ready(self, ring, p):
        """Waits until collector p is attached to ring as its consumer (its signal handlers are
        in place from then on: a slow start, under valgrind say, must not race a signal)."""
        def attached():
            self.assertIsNone(p.poll(), "the collector exited at start")
            try:
                with open("/dev/shm/gbatch." + ring, "rb") as f:
                    f.seek(CONSUMER_PID_OFFSET)
                    return int.from_bytes(f.read(CONSUMER_PID_SIZE), "little") == p.pid
            except FileNotFoundError:
                return False
        wait_until(attached, 30, "the collector to attach to its ring")

    def stop(self, p, sig=signal.SIGTERM, timeout=15):
        p.send_signal(sig)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("collector did not exit within %ds of signal %d" % (timeout, sig))
        return rc

    def write(self, ring, *args, check=True):
        r = subprocess.run([RING_WRITE, "--ring", ring] + list(args), capture_output=True,
                           timeout=60)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr.decode() + r.stdout.decode())
        return r

    def text(self, path):
        with open(path) as f:
            return f.read()


class StatsdEndToEnd(CollectorCase):
    def test_counters_timers_and_tags_arrive_at_statsd(self):
        sd = Statsd(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % sd.port,
                           "--flush-interval", "100ms")
        self.write(ring, "--count", "1000", "--kind", "counter", "--scope", "api.calls",
                   "--value", "2", "--meta", "model=flash")
        self.write(ring, "--count", "50", "--kind", "timing",
                   "--scope", "batch.total_processing.batch.attempt",
                   "--parent-len", str(len("batch.total_processing")), "--depth", "1",
                   "--value", "0.125", "--meta", "question_count=5")
        self.write(ring, "--count", "3", "--kind", "gauge", "--scope", "inflight", "--value", "7")
        key = "gbatch.api.calls;depth=0;model=flash"
        wait_until(lambda: sd.counters().get(key) == 2000, 15, "the counter sum at statsd")
        # named after its own name; its call path is in parent_scope
        tkey = ("gbatch.batch.attempt;depth=1;"
                "parent_scope=batch.total_processing;question_count=5")
        wait_until(lambda: sd.timers().get(tkey, (0,))[0] == 50, 15, "50 timer samples")
        n, shown = sd.timers()[tkey]
        self.assertEqual(set(shown), {125.0})
        # the gauge is folded and leaves at the next flush (100 ms), maybe after the timers
        wait_until(lambda: "'gbatch.inflight;depth=0': 7" in sd.cmd("gauges"), 15,
                   "the gauge at statsd")
        self.assertEqual(self.stop(c), 0)
        # the last report at exit carries the collector's own figures
        wait_until(lambda: sd.counters().get("gbatch.collector.records_read") == 1053 and
                   "gbatch.collector.send_errors" in sd.counters(), 10,
                   "self-metrics records_read and send_errors")
        self.assertEqual(sd.counters().get("gbatch.collector.send_errors"), 0)
        self.assertEqual(sd.bad_lines(), 0)

    def test_records_from_gbatch_emit_arrive_at_statsd(self):
        """gbatch-emit writes through the telemetry API and the shm reporter."""
        self.assertTrue(os.access(EMIT, os.X_OK), "GBATCH_EMIT=%r is not a program" % EMIT)
        sd = Statsd(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % sd.port,
                           "--flush-interval", "100ms")
        # gbatch-emit attaches only: the collector creates the ring
        wait_until(lambda: os.path.exists("/dev/shm/gbatch." + ring), 10, "the ring segment")
        lines = ["count pipeline.files 1 --meta stage=download"] * 40
        lines += ["timing pipeline.download 0.5 --meta stage=download"] * 7
        lines += ["gauge pipeline.queue 12"]
        r = subprocess.run([EMIT, "--ring", ring, "--strict", "--stdin"],
                           input="\n".join(lines).encode(), capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        wait_until(lambda: sd.counters().get("gbatch.pipeline.files;depth=0;stage=download") == 40,
                   15, "the emitted counter")
        wait_until(lambda: sd.timers().get("gbatch.pipeline.download;depth=0;stage=download",
                                           (0,))[0] == 7, 15, "the emitted timings")
        self.assertEqual(set(sd.timers()["gbatch.pipeline.download;depth=0;stage=download"][1]),
                         {500.0})
        wait_until(lambda: "'gbatch.pipeline.queue;depth=0': 12" in sd.cmd("gauges"), 15,
                   "the emitted gauge")
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(sd.bad_lines(), 0)

    def test_everything_written_before_sigterm_arrives_before_exit(self):
        sd = Statsd(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % sd.port)
        for i in range(4):
            self.write(ring, "--count", "5000", "--kind", "counter", "--scope", "burst",
                       "--meta", "part=%d" % i)
        self.write(ring, "--count", "2000", "--kind", "timing", "--scope", "burst.t",
                   "--value", "0.001")
        self.assertEqual(self.stop(c), 0)
        for i in range(4):
            wait_until(lambda: sd.counters().get("gbatch.burst;depth=0;part=%d" % i) == 5000, 5,
                       "part %d" % i)
        wait_until(lambda: sd.timers().get("gbatch.burst.t;depth=0", (0,))[0] == 2000, 5,
                   "2000 timings")
        self.assertEqual(sd.bad_lines(), 0)

    def test_statsd_restart_mid_run(self):
        sd = Statsd(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % sd.port,
                           "--flush-interval", "50ms")
        self.write(ring, "--count", "10", "--kind", "counter", "--scope", "before")
        wait_until(lambda: sd.counters().get("gbatch.before;depth=0") == 10, 10, "before")
        sd.stop()
        # the target is gone: sends fail with ECONNREFUSED, counted, never fatal
        for _ in range(20):
            self.write(ring, "--count", "5", "--kind", "counter", "--scope", "during")
            time.sleep(0.06)
        self.assertIsNone(c.poll(), "collector died while statsd was down")
        sd.start()
        wait_until(lambda: (self.write(ring, "--count", "1", "--kind", "counter",
                                       "--scope", "after") and
                            sd.counters().get("gbatch.after;depth=0", 0) > 0), 15,
                   "delivery to resume")
        self.assertEqual(self.stop(c), 0)
        self.assertGreater(sent_errors(self.text(self.c_err)), 0)
        self.assertEqual(sd.bad_lines(), 0)


class ReceiverChecks(CollectorCase):
    def test_aggregation_over_the_flush_interval(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port,
                           "--flush-interval", "2s")
        self.write(ring, "--count", "500", "--kind", "counter", "--scope", "agg", "--value", "3")
        self.write(ring, "--count", "500", "--kind", "gauge", "--scope", "lvl", "--value", "9")
        self.write(ring, "--count", "1", "--kind", "gauge", "--scope", "lvl", "--value", "4")
        wait_until(lambda: rv.sum_of("gbatch.agg") == 1500 and rv.sum_of("gbatch.lvl") > 0, 10,
                   "the folded counter and gauge")
        lines = [l for l in rv.lines() if l.startswith("gbatch.agg:")]
        self.assertEqual(lines, ["gbatch.agg:1500|c|#depth:0"])
        self.assertEqual([l for l in rv.lines() if l.startswith("gbatch.lvl:")],
                         ["gbatch.lvl:4|g|#depth:0"])
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(rv.invalid(), [])

    def test_contexts_past_the_cap_are_counted_not_sent(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port,
                           "--flush-interval", "1h", "--max-contexts", "3")
        for i in range(5):
            self.write(ring, "--count", "2", "--kind", "counter", "--scope", "ctx%d" % i)
        self.assertEqual(self.stop(c), 0)  # one interval: the last flush and report
        wait_until(lambda: rv.sum_of("gbatch.collector.contexts_dropped") >= 4, 5,
                   "contexts_dropped in the last self-report")
        self.assertEqual(rv.sum_of("gbatch.collector.contexts_dropped"), 4)
        self.assertEqual(sorted(l for l in rv.lines() if l.startswith("gbatch.ctx")),
                         ["gbatch.ctx0:2|c|#depth:0", "gbatch.ctx1:2|c|#depth:0",
                          "gbatch.ctx2:2|c|#depth:0"])
        self.assertEqual(rv.invalid(), [])

    def test_global_tags_and_dd_environment(self):
        rv = Receiver(self)
        ring = self.ring()
        env = {"DD_ENV": "Prod", "DD_SERVICE": "batch-svc", "DD_VERSION": "1.2.3",
               "DD_TAGS": "team:ml,region:eu-west-1 tier:free", "DD_ENTITY_ID": "abc-123",
               "DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(rv.port)}
        c = self.collector(ring, "--tag", "extra:yes", "--prefix", "app.", env=env)
        self.write(ring, "--kind", "timing", "--scope", "t", "--value", "0.5")
        wait_until(lambda: rv.lines(), 10, "a line")
        self.assertEqual(rv.lines()[0],
                         "app.t:500|ms|#depth:0,env:prod,service:batch-svc,version:1.2.3,"
                         "dd.internal.entity_id:abc-123,team:ml,region:eu-west-1,tier:free,"
                         "extra:yes")
        self.assertEqual(self.stop(c), 0)

    def test_hostile_names_through_the_ring_give_valid_lines(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port)
        hostile = ["", "....", "a|b:c#d,e\nf", "\u00e9t\u00e9.\U0001F600", "x" * 5000,
                   ":1|c\nevil:2|g"]
        for s in hostile:
            self.write(ring, "--kind", "timing", "--scope", s, "--value", "0.25",
                       "--meta", "k|,#:\n=v|,#:\n", "--meta", "host=spoofed")
        wait_until(lambda: len(rv.lines()) == len(hostile), 10, "every hostile record")
        self.assertEqual(rv.invalid(), [])
        for l in rv.lines():
            self.assertIn("user_host:spoofed", l)
            self.assertNotIn(",host:", l)
        self.assertEqual(self.stop(c), 0)

    def test_unixgram_target_packs_up_to_8192(self):
        path = os.path.join(self.tmp, "dsd.sock")
        rv = Receiver(self, unix_path=path)
        ring = self.ring()
        c = self.collector(ring, env={"DD_DOGSTATSD_URL": "unixgram://" + path,
                                      "DD_AGENT_HOST": "192.0.2.1"})
        # about 17 datagrams at once, more than the receiver's queue holds
        # (net.unix.max_dgram_qlen, 10 by default): the collector waits for room
        self.write(ring, "--count", "5000", "--kind", "timing", "--scope", "uds.t",
                   "--value", "0.002")
        wait_until(lambda: len(rv.lines()) == 5000, 15, "5000 lines over unixgram")
        sizes = [d[0] for d in rv.datagrams()]
        self.assertLessEqual(max(sizes), 8192)
        self.assertGreater(max(sizes), 1432)
        self.assertEqual(rv.invalid(), [])
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(sent_errors(self.text(self.c_err)), 0)

    def test_unixgram_agent_that_stalls_loses_nothing(self):
        path = os.path.join(self.tmp, "dsd.sock")
        rv = Receiver(self, unix_path=path)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "unixgram://" + path, "--send-timeout", "60s")
        rv.proc.send_signal(signal.SIGSTOP)
        self.write(ring, "--count", "20000", "--kind", "timing", "--scope", "uds.stall",
                   "--value", "0.002")
        wait_until(lambda: waiting_in_poll(c.pid), 15,
                   "the collector to wait for room in the stopped receiver's queue")
        rv.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: len(rv.lines()) == 20000, 30, "20000 lines over unixgram")
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(sent_errors(self.text(self.c_err)), 0)
        self.assertEqual(rv.invalid(), [])

    def test_udp_datagrams_stay_within_1432(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port)
        self.write(ring, "--count", "3000", "--kind", "timing", "--scope", "udp.t",
                   "--value", "0.002", "--meta", "k=" + "v" * 150)
        wait_until(lambda: len(rv.lines()) == 3000, 15, "3000 lines over UDP")
        sizes = [d[0] for d in rv.datagrams()]
        self.assertLessEqual(max(sizes), 1432)
        self.assertGreater(sum(sizes) / len(sizes), 1000)  # packed, not one line each
        self.assertEqual(rv.invalid(), [])
        self.assertEqual(self.stop(c), 0)

    def test_a_part_filled_datagram_waits_for_more_lines(self):
        """A datagram goes out when it is full, or once its first line has waited
        --datagram-wait: never because the ring happened to be empty for a moment."""
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(0.2)
        got, stop = [], threading.Event()

        def receive():
            while not stop.is_set():
                try:
                    data = rx.recv(65536)
                except socket.timeout:
                    continue
                got.append((time.monotonic(), data.decode()))
        th = threading.Thread(target=receive)
        th.start()
        self.addCleanup(lambda: (stop.set(), th.join(), rx.close()))
        ring = self.ring()
        # the flush interval and the 10 s self-report also send what is pending: the first
        # is put out of the way, a datagram the second sent is left out below
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rx.getsockname()[1],
                           "--datagram-wait", "50ms", "--flush-interval", "60s")
        wait_until(lambda: os.path.exists("/dev/shm/gbatch." + ring), 10, "the ring segment")
        emit = self.spawn([EMIT, "--ring", ring, "--strict", "--stdin"], stdin=subprocess.PIPE)
        base = time.monotonic()
        pad = b"p" * 300  # about four lines to a datagram: some fill up within the wait
        for _ in range(120):  # a trickle: one record every 2 ms or so
            # each value is the time just before the record was handed to gbatch-emit
            emit.stdin.write(b"timing trickle %.6f --meta pad=%s\n" % (time.monotonic() - base,
                                                                      pad))
            emit.stdin.flush()
            time.sleep(0.002)
        emit.stdin.close()
        self.assertEqual(emit.wait(30), 0)
        def lines():
            return [l for _, d in list(got) for l in d.splitlines()
                    if l.startswith("gbatch.trickle:")]
        wait_until(lambda: len(lines()) == 120, 15, "120 lines")
        longest = max(len(l) + 1 for l in lines())
        for arrived, data in got:
            if "gbatch.collector." in data:
                continue
            if len(data) + longest <= 1432:  # room for another line: not full
                first = min(float(l.split(":", 1)[1].split("|", 1)[0]) for l in data.splitlines())
                waited = arrived - (base + first / 1000)
                self.assertGreaterEqual(waited, 0.048, "a part-filled datagram of %d lines went "
                                        "out after %.1f ms" % (len(data.splitlines()), waited * 1000))
        self.assertLess(len(got), 60)  # 2 ms apart, four to a datagram
        self.assertEqual(self.stop(c), 0)


class Console(CollectorCase):
    def test_lines_checked_line_by_line(self):
        ring = self.ring()
        c = self.collector(ring, "--statsd", "off", console="lines")
        self.write(ring, "--kind", "timing", "--scope", "batch.total_processing",
                   "--value", "1.5")
        self.write(ring, "--kind", "timing", "--scope", "batch.total_processing.attempt",
                   "--parent-len", "22", "--depth", "1", "--value", "0.12344",
                   "--meta", "question_count=5")
        self.write(ring, "--kind", "counter", "--scope", "tokens", "--value", "42")
        wait_until(lambda: self.text(self.c_out).count("\n") == 3, 10, "three console lines")
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(self.text(self.c_out).splitlines(), [
            "[TIMING] batch.total_processing: duration=1.5000s (depth=0, call_count=0)",
            "[TIMING]   batch.total_processing.attempt: duration=0.1234s (depth=1, "
            "parent_scope=batch.total_processing, call_count=0, question_count=5)",
            "[METRIC] tokens: 42 (metric_type=counter, depth=0, call_count=0)",
        ])

    def test_summary_on_sigusr1_and_at_exit(self):
        ring = self.ring()
        c = self.collector(ring, "--statsd", "off", console="summary")
        self.write(ring, "--count", "4", "--kind", "timing", "--scope", "step", "--value", "0.5")
        self.write(ring, "--count", "2", "--kind", "counter", "--scope", "hits", "--value", "3")
        # records are in the ring; ask for a summary once they have been read
        def summary_seen():
            c.send_signal(signal.SIGUSR1)
            time.sleep(0.05)
            return "step: calls=4" in self.text(self.c_out)
        wait_until(summary_seen, 10, "a summary on SIGUSR1")
        self.assertEqual(self.stop(c), 0)
        out = self.text(self.c_out)
        last = out[out.rindex("=== gbatch telemetry summary ==="):]
        self.assertEqual(last.splitlines(), [
            "=== gbatch telemetry summary ===",
            "timings (1 scopes):",
            "  step: calls=4 avg=0.5000s p50=0.5000s p95=0.5000s max=0.5000s total=2.0000s",
            "metrics (1):",
            "  hits: count=2 total=6",
        ])

    def test_a_stalled_console_reader_never_stalls_statsd(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port, console="lines",
                           stdout=subprocess.PIPE)
        # nobody reads the console pipe: about 5 MB of lines against its 64 KiB
        self.write(ring, "--count", "50000", "--kind", "timing", "--scope", "console.stall",
                   "--value", "0.002", "--rate", "100000")
        wait_until(lambda: len(rv.lines()) == 50000, 30, "every record at the StatsD receiver")
        self.assertEqual(self.stop(c, timeout=30), 0)
        log = self.text(self.c_err)
        m = re.search(r"console_lines_dropped (\d+)", log)
        self.assertIsNotNone(m, log)
        dropped = int(m.group(1))
        self.assertGreater(dropped, 0)
        out = c.stdout.read().decode()
        lines = out.splitlines()
        self.assertTrue(out.endswith("\n"), "the console output ends in half a line")
        self.assertEqual(len(lines) + dropped, 50000)
        bad = [l for l in lines if not l.startswith("[TIMING] console.stall: duration=0.0020s")]
        self.assertEqual(bad, [])


class Lifecycle(CollectorCase):
    def test_exits_when_producers_are_done(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port,
                           "--exit-when-producers-done")
        self.ready(ring, c)
        time.sleep(0.3)  # an observation window: with no producer yet it must stay up
        self.assertIsNone(c.poll(), "exited before any producer attached")
        self.write(ring, "--count", "100", "--kind", "counter", "--scope", "job",
                   "--hold", "500ms")
        self.assertEqual(c.wait(15), 0)
        wait_until(lambda: rv.sum_of("gbatch.job") == 100, 5, "the job's counter")

    def test_second_collector_on_a_ring_is_refused(self):
        ring = self.ring()
        c = self.collector(ring, "--statsd", "off")
        self.ready(ring, c)
        r = subprocess.run([COLLECTOR, "--ring", ring, "--statsd", "off", "--console", "off"],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn(ring, r.stderr.decode())
        self.assertEqual(self.stop(c), 0)

    def test_idle_collector_sleeps(self):
        ring = self.ring()
        c = self.collector(ring, "--statsd", "off")
        wait_until(lambda: os.path.exists("/dev/shm/gbatch." + ring), 10, "the ring segment")

        def cpu_ticks():
            with open("/proc/%d/stat" % c.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime
        before = cpu_ticks()
        time.sleep(2.0)  # a measurement window, not a wait for a condition
        used = (cpu_ticks() - before) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used, 0.04, "idle collector used %.3f s of CPU in 2 s" % used)
        self.assertEqual(self.stop(c), 0)

    def test_drops_in_the_ring_are_reported(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port)
        self.ready(ring, c)
        c.send_signal(signal.SIGSTOP)  # the collector stops reading: the ring fills up
        try:
            r = self.write(ring, "--count", "200000", "--kind", "counter", "--scope", "flood",
                           check=False)
        finally:
            c.send_signal(signal.SIGCONT)
        m = re.match(r"written (\d+) dropped (\d+)", r.stdout.decode())
        written, dropped = int(m.group(1)), int(m.group(2))
        self.assertGreater(dropped, 0)
        self.assertEqual(self.stop(c), 0)
        wait_until(lambda: rv.sum_of("gbatch.flood") == written, 5, "every record that fit")
        # the last self-report left just before the exit; the receiver may still be writing it
        wait_until(lambda: rv.sum_of("gbatch.collector.records_read") >= written, 5,
                   "the last self-report")
        self.assertEqual(rv.sum_of("gbatch.collector.records_dropped"), dropped)
        self.assertEqual(rv.sum_of("gbatch.collector.records_read"), written)
        self.assertIn("gbatch.collector.records_dropped:%d|c|#ring:%s" % (dropped, ring.lower()),
                      rv.lines())

    def test_drops_made_with_no_collector_are_reported_once(self):
        ring = self.ring()
        # no collector: a 64 KiB ring overflows, and the producer counts what it drops
        r = self.write(ring, "--count", "5000", "--capacity", "65536", check=False)
        dropped = int(re.search(r"dropped (\d+)", r.stdout.decode()).group(1))
        self.assertGreater(dropped, 0)
        for start, want in (("first", dropped), ("restarted", 0)):
            rv = Receiver(self)
            c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port)
            self.assertEqual(self.stop(c), 0)
            wait_until(lambda: any(l.startswith("gbatch.collector.ring_lag_bytes:")
                                   for l in rv.lines()), 10, "the report at exit")
            self.assertEqual(rv.sum_of("gbatch.collector.records_dropped"), want,
                             "records_dropped reported by the %s collector" % start)
            self.assertIn("%d dropped by producers" % want, self.text(self.c_err))

    def test_self_metrics_every_10s(self):
        rv = Receiver(self)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % rv.port)
        self.write(ring, "--count", "3", "--kind", "counter", "--scope", "x")
        wait_until(lambda: rv.sum_of("gbatch.collector.records_read") == 3, 20,
                   "the periodic self-report")
        # one report can span datagrams: wait for its last metric before comparing
        wait_until(lambda: any(l.startswith("gbatch.collector.ring_lag_bytes:")
                               for l in rv.lines()), 5, "the whole self-report")
        names = {l.split(":", 1)[0] for l in rv.lines() if l.startswith("gbatch.collector.")}
        self.assertEqual(names, {"gbatch.collector." + n for n in (
            "records_read", "records_invalid", "packets_sent", "bytes_sent", "send_errors",
            "values_rejected", "tags_dropped", "tag_values_capped", "tags_renamed",
            "names_capped", "contexts_dropped", "records_dropped", "records_unblocked",
            "ring_lag_bytes")})
        self.assertIsNone(c.poll())
        self.assertEqual(self.stop(c), 0)

    def test_summary_is_the_default_on_a_terminal(self):
        import pty
        ring = self.ring()
        master, slave = pty.openpty()
        e = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        c = self.spawn([COLLECTOR, "--ring", ring, "--statsd", "off"], stdout=slave,
                       stderr=subprocess.DEVNULL, env=e)
        os.close(slave)
        self.ready(ring, c)
        self.write(ring, "--kind", "timing", "--scope", "tty.step", "--value", "0.25")
        self.assertEqual(self.stop(c), 0)  # SIGTERM drains the ring first
        out = b""
        while True:
            try:
                d = os.read(master, 65536)
            except OSError:
                break
            if not d:
                break
            out += d
        os.close(master)
        self.assertIn(b"=== gbatch telemetry summary ===", out)
        self.assertIn(b"tty.step: calls=1", out)

    def test_invalid_payloads_are_counted(self):
        ring = self.ring()
        c = self.collector(ring, "--statsd", "off")
        self.ready(ring, c)
        self.write(ring, "--count", "5", "--garbage", "7")
        self.assertEqual(self.stop(c, signal.SIGINT), 0)  # SIGINT drains the ring first
        self.assertRegex(self.text(self.c_err), r"5 records read, 7 invalid")


BAD = [
    (["--bogus"], "--bogus"),
    (["--ring"], "--ring"),
    (["--ring", "bad name!"], "bad name!"),
    (["--statsd", "tcp://x:1"], "tcp://x:1"),
    (["--statsd", "udp://h:99999"], "udp://h:99999"),
    (["--console", "loud"], "loud"),
    (["--flush-interval", "fast"], "fast"),
    (["--flush-interval", "0"], "--flush-interval"),
    (["--prefix", "9x."], "9x."),
    (["--tag", "Bad Tag"], "Bad Tag"),
    (["--tag", "host:foo"], "host:foo"),
    (["--drop-tag", "a:b"], "a:b"),
    (["--max-tag-values", "-1"], "-1"),
    (["--max-tag-values", "lots"], "lots"),
    (["--max-contexts", "-5"], "-5"),
    (["--max-contexts", "many"], "many"),
    (["--max-contexts", "10000001"], "10000001"),
    (["--unblock-timeout", "2 s"], "2 s"),
    (["--send-timeout", "61s"], "61s"),
    (["--send-timeout", "-1s"], "-1s"),
    (["--datagram-wait", "2s"], "2s"),
    (["--datagram-wait", "soon"], "soon"),
    (["--trust-uid", "root"], "root"),
    (["stray"], "stray"),
]
BAD_ENV = [
    ({"DD_DOGSTATSD_URL": "bogus://x"}, "bogus://x"),
    ({"DD_DOGSTATSD_PORT": "abc"}, "abc"),
    ({"DD_AGENT_HOST": "h", "DD_DOGSTATSD_PORT": "70000"}, "70000"),
    ({"GBATCH_RING": "bad name"}, "bad name"),
    ({"DD_TAGS": "ok:1,123:x"}, "123:x"),
]


class CommandLine(unittest.TestCase):
    def run_collector(self, args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("DD_") and k != "GBATCH_RING"}
        e.update(env or {})
        return subprocess.run([COLLECTOR] + args, capture_output=True, timeout=10, env=e)

    def test_bad_flags_exit_2_naming_the_value(self):
        for args, named in BAD:
            with self.subTest(args=args):
                r = self.run_collector(args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(named, r.stderr.decode())

    def test_bad_environment_exits_2_naming_it(self):
        for env, named in BAD_ENV:
            with self.subTest(env=env):
                r = self.run_collector(["--statsd", "off"] if "DD_" not in "".join(env) else [],
                                       env)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(named, r.stderr.decode())

    def test_help_and_version(self):
        r = self.run_collector(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--exit-when-producers-done", r.stdout.decode())
        r = self.run_collector(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.decode(), r"^gbatch-collector \d+\.\d+\.\d+\n$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
