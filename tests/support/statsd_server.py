"""statsd_server.py - what the Python integration tests share: polling with a deadline, free
loopback ports, and the real Etsy statsd daemon (the npm `statsd` that tests/run.sh installs
with npm ci under GBATCH_STATSD_DIR), read back through its management port.
"""
import os
import re
import socket
import subprocess
import time

STATSD_DIR = os.environ.get("GBATCH_STATSD_DIR", "")


def wait_until(cond, timeout=10.0, what="condition"):
    """Polls cond until it returns a true value or the deadline passes (then fails)."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(0.02)


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_port_pair():
    """A UDP port and a TCP port, both free now."""
    return free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)


class Statsd:
    """The Etsy statsd daemon on loopback; flushes never happen during a test, so counters
    and timers accumulate and can be read back through the management port. tc is the test
    case: it has tmp (a directory), spawn(argv, **kw) and kill(proc)."""

    def __init__(self, tc, port=None, mgmt=None):
        if not os.path.isfile(os.path.join(STATSD_DIR, "node_modules/statsd/stats.js")):
            raise AssertionError("statsd is not installed under GBATCH_STATSD_DIR=%r: run "
                                 "tests/run.sh, which installs it with npm ci" % STATSD_DIR)
        self.tc = tc
        if port is None:
            port, mgmt = free_port_pair()
        self.port, self.mgmt = port, mgmt
        self.conf = os.path.join(tc.tmp, "statsd-%d.js" % port)
        with open(self.conf, "w") as f:
            f.write('{ port: %d, mgmt_port: %d, address: "127.0.0.1", '
                    'mgmt_address: "127.0.0.1", flushInterval: 3600000, backends: [], '
                    'deleteIdleStats: false }\n' % (port, mgmt))
        self.start()

    def start(self):
        with open(os.path.join(self.tc.tmp, "statsd-%d.log" % self.port), "a") as log:
            self.proc = self.tc.spawn(["node", os.path.join(STATSD_DIR,
                                                            "node_modules/statsd/stats.js"),
                                       self.conf], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._try("health") is not None, 15, "statsd to listen")

    def stop(self):
        self.tc.kill(self.proc)

    def _try(self, cmd):
        try:
            with socket.create_connection(("127.0.0.1", self.mgmt), timeout=2) as s:
                s.sendall((cmd + "\n").encode())
                data = b""
                while not data.endswith(b"END\n\n") and not (cmd == "health" and data):
                    d = s.recv(1 << 20)
                    if not d:
                        break
                    data += d
                return data.decode()
        except OSError:
            return None

    def cmd(self, cmd):
        out = self._try(cmd)
        if out is None:
            raise AssertionError("statsd management port does not answer %r" % cmd)
        return out

    def counters(self):
        return {k: float(v) for k, v in re.findall(r"'([^']+)': ([-+0-9.e]+)", self.cmd("counters"))}

    def timers(self):
        """key -> (sample count, the samples shown)."""
        out = {}
        for k, body in re.findall(r"'([^']+)': \[([^\]]*)\]", self.cmd("timers")):
            items = [x.strip() for x in body.split(",") if x.strip()]
            shown = [float(x) for x in items if re.fullmatch(r"-?[0-9.]+(e[-+]?[0-9]+)?", x)]
            more = sum(int(m) for m in re.findall(r"\.\.\. (\d+) more item", body))
            out[k] = (len(shown) + more, shown)
        return out

    def bad_lines(self):
        m = re.search(r"messages\.bad_lines_seen: (\d+)", self.cmd("stats"))
        return int(m.group(1))

    def counter(self, name):
        """The sum of the counters named name, whatever their tags (statsd keys them
        "name;tag=value;...")."""
        return sum(v for k, v in self.counters().items() if k.split(";")[0] == name)

    def timer_samples(self, name):
        """How many samples the timers named name (with any tags) hold."""
        return sum(n for k, (n, _) in self.timers().items() if k.split(";")[0] == name)
