#!/usr/bin/env python3
"""dialect_it.py - gbatch-collector speaking every agent's dialect, against real receivers in
other processes: each target form datadog-go takes (udp:// with and without a port, IPv6
loopback, unix://, unixgram://, unixstream:// read frame by frame by dogstatsd-recv, the
admission controller's URL, DD_DOGSTATSD_SOCKET), a UDP host name whose address changes during
the run, --timing-type d --pack-values through the strict checker with every sample accounted
for, --timestamps on a backlog written while no collector ran, and the refusals of bad values.

The host name that moves: the collector runs in a mount namespace of its own (unshare -m) where
a file of the test is bind-mounted over /etc/hosts, so the system's resolver (getaddrinfo, the
"files" source) reads the test's file on every lookup and nothing outside the namespace sees it.
Rewriting that file in place moves the name from 127.0.0.1 to 127.0.0.2. Needs root (the suite's
machines run as root); skipped with the reason otherwise.

Run by ctest with GBATCH_COLLECTOR, GBATCH_RING_WRITE, GBATCH_DSD_RECV, GBATCH_EMIT and
GBATCH_RING_OFFSETS in the environment.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from collector_it import (COLLECTOR, EMIT, CollectorCase, Receiver, packets_sent,  # noqa: E402
                          sent_errors)
from statsd_server import wait_until  # noqa: E402
from ring_layout import LAYOUT  # noqa: E402

ADMISSION_URL = "unix:///var/run/datadog/dsd.socket"



def ring_field(ring, field):
    with open("/dev/shm/gbatch." + ring, "rb") as f:
        f.seek(LAYOUT[field])
        return int.from_bytes(f.read(LAYOUT[field + "_size"]), "little")


def drained(ring):
    """True once the collector released every record: what they became has been sent (or
    counted as not sent)."""
    return ring_field(ring, "head") == ring_field(ring, "tail")


class Targets(CollectorCase):
    """Each URL form against a real receiver; a counter of 1 x 200 must arrive as 200."""

    def deliver(self, url, recv, env=None, name="dialect.url"):
        ring = self.ring()
        args = ["--flush-interval", "50ms"] + (["--statsd", url] if url else [])
        c = self.collector(ring, *args, env=env)
        self.write(ring, "--count", "200", "--kind", "counter", "--scope", name)
        wait_until(lambda: recv.sum_of("gbatch." + name) == 200, 15,
                   "200 counted at the receiver for %s" % (url or env))
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(recv.invalid(), [])
        return c

    def test_udp_with_a_port(self):
        r = Receiver(self)
        self.deliver("udp://127.0.0.1:%d" % r.port, r)

    def test_udp_host_name_with_a_port(self):
        r = Receiver(self)
        self.deliver("udp://localhost:%d" % r.port, r)

    def test_udp_without_a_port_goes_to_8125(self):
        # 127.0.0.3 rather than 127.0.0.1, where a StatsD server of the machine may hold 8125
        try:
            r = Receiver(self, udp_bind="127.0.0.3", port=8125)
        except AssertionError as e:
            self.skipTest("127.0.0.3:8125 cannot be bound here (%s)" % e)
        self.deliver("udp://127.0.0.3", r)

    def ipv6_or_skip(self):
        if not socket.has_ipv6:
            self.skipTest("this Python has no IPv6")
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("::1", 0))
            s.close()
        except OSError as e:
            self.skipTest("no IPv6 loopback on this machine (%s)" % e)

    def test_ipv6_loopback_in_brackets(self):
        self.ipv6_or_skip()
        r = Receiver(self, udp_bind="::1")
        self.deliver("udp://[::1]:%d" % r.port, r)

    def test_ipv6_loopback_without_a_port(self):
        self.ipv6_or_skip()
        try:
            r = Receiver(self, udp_bind="::1", port=8125)
        except AssertionError as e:
            self.skipTest("[::1]:8125 cannot be bound here (%s)" % e)
        self.deliver("udp://[::1]", r)

    def test_unixgram(self):
        path = os.path.join(self.tmp, "dsd.socket")
        r = Receiver(self, unix_path=path)
        self.deliver("unixgram://" + path, r)

    def test_unix_is_a_datagram_socket(self):
        path = os.path.join(self.tmp, "dsd.socket")
        r = Receiver(self, unix_path=path)
        self.deliver("unix://" + path, r)

    def test_unix_finds_a_stream_socket(self):
        path = os.path.join(self.tmp, "dsd.socket")
        r = Receiver(self, stream=path)
        self.deliver("unix://" + path, r)
        self.assertIn("#connection", r.text())

    def test_unixstream_frames_every_message(self):
        path = os.path.join(self.tmp, "dsd.socket")
        r = Receiver(self, stream=path)
        self.deliver("unixstream://" + path, r)
        frames = r.datagrams()
        self.assertGreater(len(frames), 0)
        self.assertTrue(all(0 < size <= 8192 for size, _ in frames), frames)

    def test_dd_dogstatsd_url_unix_socket(self):
        path = os.path.join(self.tmp, "dsd.socket")
        r = Receiver(self, unix_path=path)
        self.deliver(None, r, env={"DD_DOGSTATSD_URL": "unix://" + path})

    def test_dd_dogstatsd_socket(self):
        path = os.path.join(self.tmp, "dsd.socket")
        r = Receiver(self, unix_path=path)
        self.deliver(None, r, env={"DD_DOGSTATSD_SOCKET": path, "DD_AGENT_HOST": "192.0.2.1"})

    def test_dd_dogstatsd_url_goes_before_the_socket(self):
        path = os.path.join(self.tmp, "dsd.socket")
        r = Receiver(self, unix_path=path)
        self.deliver(None, r, env={"DD_DOGSTATSD_URL": "unixgram://" + path,
                                   "DD_DOGSTATSD_SOCKET": os.path.join(self.tmp, "none")})

    def test_the_admission_controllers_url_starts(self):
        """The URL the DataDog admission controller injects, as it is: the collector starts and
        keeps draining while no agent is at that path (what it could not send is counted)."""
        if os.path.exists("/var/run/datadog/dsd.socket"):
            self.skipTest("an agent's socket is at /var/run/datadog/dsd.socket here")
        ring = self.ring()
        c = self.collector(ring, "--flush-interval", "50ms",
                           env={"DD_DOGSTATSD_URL": ADMISSION_URL})
        self.write(ring, "--count", "50", "--kind", "counter", "--scope", "dialect.ac")
        self.assertIsNone(c.poll())
        self.assertEqual(self.stop(c), 0)
        self.assertGreater(sent_errors(self.text(self.c_err)), 0)

    def test_unixstream_agent_restarts(self):
        """The agent's stream socket closed under the collector: the next message finds EPIPE,
        goes on a new connection; with no agent at all it is counted, then delivery resumes."""
        path = os.path.join(self.tmp, "dsd.socket")
        r1 = Receiver(self, stream=path)
        ring = self.ring()
        c = self.collector(ring, "--statsd", "unixstream://" + path, "--flush-interval", "50ms")
        self.write(ring, "--count", "100", "--kind", "counter", "--scope", "dialect.s1")
        wait_until(lambda: r1.sum_of("gbatch.dialect.s1") == 100, 15, "burst 1")
        r1.stop()
        r2 = Receiver(self, stream=path)
        self.write(ring, "--count", "100", "--kind", "counter", "--scope", "dialect.s2")
        wait_until(lambda: r2.sum_of("gbatch.dialect.s2") == 100, 15, "burst 2 after a restart")
        r2.stop()
        if os.path.exists(path):
            os.unlink(path)
        # timings leave as soon as the drain goes idle, and the ring keeps them until then
        self.write(ring, "--count", "100", "--kind", "timing", "--scope", "dialect.s3")
        wait_until(lambda: drained(ring), 15, "the collector to try burst 3")
        r3 = Receiver(self, stream=path)

        def reconnected():  # reconnects are tried every 500 ms at most
            self.write(ring, "--count", "1", "--kind", "counter", "--scope", "dialect.probe")
            return r3.sum_of("gbatch.dialect.probe") > 0
        wait_until(reconnected, 15, "the collector to connect to the agent that came back")
        self.write(ring, "--count", "100", "--kind", "counter", "--scope", "dialect.s4")
        wait_until(lambda: r3.sum_of("gbatch.dialect.s4") == 100, 15, "burst 4 after the gap")
        self.assertEqual(self.stop(c), 0)
        log = self.text(self.c_err)
        self.assertGreater(sent_errors(log), 0)
        self.assertFalse(any(l.startswith("gbatch.dialect.s3:") for l in r3.lines()))
        for r in (r1, r2, r3):
            self.assertEqual(r.invalid(), [])
        self.assertEqual(r2.text().count("#connection"), 1)


class HostMoves(CollectorCase):
    """A host name whose address changes during the run, through getaddrinfo and a hosts
    file of the test's own mount namespace."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root for a mount namespace (unshare -m, mount --bind)")
        self.hosts = os.path.join(self.tmp, "hosts")
        self.set_host("127.0.0.1")
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                'mount --bind "$0" /etc/hosts && exec getent hosts dsd-agent.test',
                                self.hosts], capture_output=True, timeout=10)
        if probe.returncode != 0 or b"127.0.0.1" not in probe.stdout:
            self.skipTest("no private mount namespace here: %r" % probe.stderr)

    def set_host(self, addr):
        # in place: the bind mount holds this file's inode
        with open(self.hosts, "a+") as f:
            f.seek(0)
            f.truncate()
            f.write("127.0.0.1 localhost\n%s dsd-agent.test\n" % addr)

    def moved_collector(self, ring, *args):
        e = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        n = self.next_id()
        self.c_err = os.path.join(self.tmp, "collector-%d.err" % n)
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount --bind "$0" /etc/hosts && exec "$@"', self.hosts,
               COLLECTOR, "--ring", ring, "--console", "off"] + list(args)
        with open(self.c_err, "w") as err:
            p = self.spawn(cmd, stdout=subprocess.DEVNULL, stderr=err, env=e)
        self.ready(ring, p)
        return p

    def two_receivers(self):
        a = Receiver(self, udp_bind="127.0.0.1")
        try:
            b = Receiver(self, udp_bind="127.0.0.2", port=a.port)
        except AssertionError as e:
            self.skipTest("127.0.0.2:%d cannot be bound (%s)" % (a.port, e))
        return a, b

    def follow(self, ring, b, name):
        """Writes a counter of 1 until b has one: the collector found the new address."""
        def arrived():
            self.write(ring, "--count", "1", "--kind", "counter", "--scope", name)
            return b.sum_of("gbatch." + name) > 0
        wait_until(arrived, 20, "datagrams at the host's new address")

    def test_name_is_resolved_again_every_interval(self):
        a, b = self.two_receivers()
        ring = self.ring()
        c = self.moved_collector(ring, "--statsd", "udp://dsd-agent.test:%d" % a.port,
                                 "--flush-interval", "50ms", "--resolve-interval", "200ms")
        self.write(ring, "--count", "100", "--kind", "counter", "--scope", "dialect.h1")
        wait_until(lambda: a.sum_of("gbatch.dialect.h1") == 100, 15, "the first address")
        self.set_host("127.0.0.2")  # the old receiver stays up: only the lookup can move it
        self.follow(ring, b, "dialect.h2")
        before = a.sum_of("gbatch.dialect.h3")
        self.write(ring, "--count", "100", "--kind", "counter", "--scope", "dialect.h3")
        wait_until(lambda: b.sum_of("gbatch.dialect.h3") == 100, 15, "all at the new address")
        self.assertEqual(a.sum_of("gbatch.dialect.h3"), before)
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(a.invalid() + b.invalid(), [])

    def test_name_is_resolved_again_when_sends_fail(self):
        """The default interval (60 s) is far away: the refusals from the old address make the
        collector look the name up again."""
        a, b = self.two_receivers()
        ring = self.ring()
        c = self.moved_collector(ring, "--statsd", "udp://dsd-agent.test:%d" % a.port,
                                 "--flush-interval", "50ms")
        self.write(ring, "--count", "100", "--kind", "counter", "--scope", "dialect.f1")
        wait_until(lambda: a.sum_of("gbatch.dialect.f1") == 100, 15, "the first address")
        a.stop()
        self.set_host("127.0.0.2")
        self.follow(ring, b, "dialect.f2")
        self.write(ring, "--count", "100", "--kind", "counter", "--scope", "dialect.f3")
        wait_until(lambda: b.sum_of("gbatch.dialect.f3") == 100, 15, "all at the new address")
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(b.invalid(), [])


class Packing(CollectorCase):
    """--timing-type d --pack-values: distinct timings through gbatch-emit, every value
    exactly once, every message whole in a datagram within its limit, far fewer lines."""

    N = 6000

    def run_packed(self, recv, url, limit):
        self.assertTrue(os.access(EMIT, os.X_OK), "GBATCH_EMIT=%r is not a program" % EMIT)
        ring = self.ring()
        c = self.collector(ring, "--statsd", url, "--flush-interval", "100ms",
                           "--timing-type", "d", "--pack-values")
        wait_until(lambda: os.path.exists("/dev/shm/gbatch." + ring), 10, "the ring segment")
        # sample i is (i + 1) / 100 ms; two contexts (a model tag), one of them long-tagged
        lines = []
        for i in range(self.N):
            model = "gemini-2.0-flash" if i % 3 else "m-" + "x" * 150
            lines.append("timing dialect.pk %.5f --meta model=%s" % ((i + 1) / 100000.0, model))
        r = subprocess.run([EMIT, "--ring", ring, "--strict", "--stdin"],
                           input="\n".join(lines).encode(), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())

        def values():
            got = []
            for l in recv.lines():
                if l.startswith("gbatch.dialect.pk:"):
                    got += [v for v in l.split("|", 1)[0].split(":")[1:] if v]
            return got
        wait_until(lambda: len(values()) >= self.N, 30, "%d samples" % self.N)
        self.assertEqual(self.stop(c), 0)
        got = sorted(round(float(v) * 100) for v in values())
        self.assertEqual(got, list(range(1, self.N + 1)), "each sample exactly once")
        self.assertEqual(recv.invalid(), [])
        msgs = [l for l in recv.lines() if l.startswith("gbatch.dialect.pk:")]
        self.assertTrue(all(re.search(r"\|d\|#", l) for l in msgs), msgs[:3])
        self.assertLess(len(msgs), self.N // 20, "samples packed many to a message")
        self.assertTrue(all(size <= limit for size, _ in recv.datagrams()), recv.datagrams())
        self.assertEqual(sent_errors(self.text(self.c_err)), 0)

    def test_udp(self):
        recv = Receiver(self)
        self.run_packed(recv, "udp://127.0.0.1:%d" % recv.port, 1432)

    def test_samples_gathered_for_the_interval_survive_a_sigkill(self):
        """Packed samples wait for the flush interval; their records stay in the ring until
        then, so a collector killed before it gives its successor every sample to send."""
        recv = Receiver(self)
        ring = self.ring()
        args = ("--statsd", "udp://127.0.0.1:%d" % recv.port, "--flush-interval", "30s",
                "--timing-type", "d", "--pack-values")
        c = self.collector(ring, *args, console="summary")
        self.write(ring, "--count", "100", "--kind", "timing", "--scope", "dialect.kill",
                   "--value", "0.25")

        def all_read():  # the summary counts what the collector has read
            c.send_signal(signal.SIGUSR1)
            time.sleep(0.05)
            return "dialect.kill: calls=100" in self.text(self.c_out)
        wait_until(all_read, 10, "the 100 records read")
        c.kill()
        c.wait()
        self.assertEqual([l for l in recv.lines() if "dialect.kill" in l], [],
                         "nothing sent before the flush interval")
        c = self.collector(ring, *args)
        self.assertEqual(self.stop(c), 0)
        # the receiver is another process: wait until it has every datagram the collector sent
        sent = packets_sent(self.text(self.c_err))
        wait_until(lambda: len(recv.datagrams()) >= sent, 10, "%d datagrams received" % sent)
        values = [v for l in recv.lines() if l.startswith("gbatch.dialect.kill:")
                  for v in l.split("|", 1)[0].split(":")[1:] if v]
        self.assertEqual(values, ["250"] * 100)
        self.assertEqual(recv.invalid(), [])

    def test_unixgram(self):
        path = os.path.join(self.tmp, "dsd.socket")
        recv = Receiver(self, unix_path=path)
        self.run_packed(recv, "unixgram://" + path, 8192)

    def test_unixstream(self):
        path = os.path.join(self.tmp, "dsd.socket")
        recv = Receiver(self, stream=path)
        self.run_packed(recv, "unixstream://" + path, 8192)


class Timestamps(CollectorCase):
    def test_a_backlog_written_while_no_collector_ran_lands_at_its_seconds(self):
        ring = self.ring()
        t0 = time.time()
        self.write(ring, "--count", "10", "--kind", "counter", "--scope", "dialect.bk")
        self.write(ring, "--count", "1", "--kind", "gauge", "--scope", "dialect.bg",
                   "--value", "7")
        t1 = time.time()
        wait_until(lambda: int(time.time()) > int(t1), 5, "the next second")
        t2 = time.time()
        self.write(ring, "--count", "5", "--kind", "counter", "--scope", "dialect.bk")
        t3 = time.time()
        # the backlog must be older than two flush intervals (200 ms) when read
        wait_until(lambda: time.time() > t3 + 0.5, 5, "the backlog to age")
        recv = Receiver(self)
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % recv.port,
                           "--flush-interval", "100ms", "--timestamps")

        def stamped(name):
            out = {}
            for l in recv.lines():
                m = re.match(r"gbatch\.%s:([0-9.]+)\|(c|g)\|#depth:0\|T(\d+)$" % name, l)
                if m:
                    out[int(m.group(3))] = out.get(int(m.group(3)), 0) + float(m.group(1))
            return out
        wait_until(lambda: sum(stamped("dialect.bk").values()) == 15, 15, "the backlog")
        bk = stamped("dialect.bk")
        first = sum(v for s, v in bk.items() if int(t0) <= s <= int(t1))
        second = sum(v for s, v in bk.items() if int(t2) <= s <= int(t3))
        self.assertEqual((first, second), (10, 5), bk)
        self.assertEqual(list(stamped("dialect.bg").values()), [7], recv.lines())
        self.assertTrue(all(int(t0) <= s <= int(t1) for s in stamped("dialect.bg")))
        # what is written now goes out as before, without a timestamp
        self.write(ring, "--count", "3", "--kind", "counter", "--scope", "dialect.live")
        wait_until(lambda: "gbatch.dialect.live:3|c|#depth:0" in recv.lines(), 15,
                   "the live counter without |T")
        self.assertEqual(self.stop(c), 0)
        self.assertEqual(recv.invalid(), [])

    def test_off_by_default(self):
        ring = self.ring()
        self.write(ring, "--count", "4", "--kind", "counter", "--scope", "dialect.nt")
        t = time.time()
        wait_until(lambda: time.time() > t + 0.5, 5, "a backlog, were timestamps on")
        recv = Receiver(self)
        c = self.collector(ring, "--statsd", "udp://127.0.0.1:%d" % recv.port,
                           "--flush-interval", "100ms")
        wait_until(lambda: "gbatch.dialect.nt:4|c|#depth:0" in recv.lines(), 15,
                   "the counter without |T")
        self.assertEqual(self.stop(c), 0)
        self.assertFalse(any("|T" in l for l in recv.lines()))


BAD = [
    (["--timing-type", "x"], '"x"'),
    (["--timing-type", "MS"], '"MS"'),
    (["--timing-type", ""], '""'),
    (["--resolve-interval", "1ms"], '"1ms"'),
    (["--resolve-interval", "soon"], "soon"),
    (["--statsd", "udp://h:0"], "udp://h:0"),
    (["--statsd", "udp://[::1"], "closing ']'"),
    (["--statsd", "udp://::1:8125"], "brackets"),
    (["--statsd", "unixstream://rel.sock"], "absolute path"),
    (["--statsd", "unix://"], "unix://"),
    (["--statsd", "tcp://h:1"], "tcp://h:1"),
]

BAD_ENV = [
    ({"DD_DOGSTATSD_URL": "unixgram://relative"}, "DD_DOGSTATSD_URL"),
    ({"DD_DOGSTATSD_URL": "udp://h:99999"}, "udp://h:99999"),
    ({"DD_DOGSTATSD_SOCKET": "relative.sock"}, "DD_DOGSTATSD_SOCKET"),
]


class BadValues(unittest.TestCase):
    def run_collector(self, args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("DD_") and k != "GBATCH_RING"}
        e.update(env or {})
        return subprocess.run([COLLECTOR, "--ring", "dialect-never"] + args, capture_output=True,
                              timeout=10, env=e)

    def test_bad_values_exit_2_naming_them(self):
        for args, named in BAD + [(["--statsd", "udp://h st:1"], "h st")]:
            with self.subTest(args=args):
                r = self.run_collector(args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(named, r.stderr.decode())

    def test_bad_environment_exits_2_naming_it(self):
        for env, named in BAD_ENV:
            with self.subTest(env=env):
                r = self.run_collector([], env)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(named, r.stderr.decode())
                self.assertIn(list(env.values())[0], r.stderr.decode())

    def test_help_names_the_dialect(self):
        r = self.run_collector(["--help"])
        self.assertEqual(r.returncode, 0)
        out = r.stdout.decode()
        for word in ("--timing-type", "--pack-values", "--timestamps", "--resolve-interval",
                     "unixstream://", "DD_DOGSTATSD_SOCKET", "Etsy statsd"):
            self.assertIn(word, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
