#!/usr/bin/env python3
"""pod_test.py - the Kubernetes pod of deploy/k8s simulated without a container engine.

The collector and a producer (gbatch-processor asking the Gemini stand-in, gbatch-emit, or
pod-producer, which can die holding a half-written record) each run in their own mount, IPC
and PID namespaces (unshare --mount --ipc --pid --fork --mount-proc), as the same non-root uid
with no capabilities (setpriv), and share nothing but one tmpfs bind-mounted at /dev/shm in
each, as an emptyDir with medium: Memory is. The network namespace is shared, as in a pod, so
the collector reaches a real StatsD daemon (the npm statsd, read back through its management
port) and the processor reaches the stand-in, both on loopback.

  pod_test.py --collector BIN --producer BIN --processor BIN --emit BIN --stub-gemini BIN
              [--uid UID]
GBATCH_STATSD_DIR names the npm install of statsd made by tests/run.sh. Needs root for the
namespaces and mounts: exits 77 (skipped) with a message when not root, when unshare cannot
make namespaces here, or when gbatch-collector is not built in this tree.
"""
import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from statsd_server import Statsd, wait_until  # noqa: E402

SKIP = 77
ARGS = None
# A producer that stops heartbeating is dead after 5 s (GB_RL_PRODUCER_STALE_NS).
DEAD_PRODUCER_DEADLINE = 20.0


def die_with_parent():
    """preexec_fn: the child is killed when the test dies, however it dies (a ctest timeout),
    and unshare --kill-child then takes the container down with it."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def skip(why):
    print("pod_test: SKIPPED: " + why, flush=True)
    sys.exit(SKIP)


class Pod(unittest.TestCase):
    seq = 0

    def setUp(self):
        Pod.seq += 1
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="gbatch-pod-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        os.chmod(self.tmp, 0o755)
        # The "image": both binaries where the pod's uid can run them.
        bindir = os.path.join(self.tmp, "bin")
        os.mkdir(bindir, 0o755)
        self.bin = {name: shutil.copy(getattr(ARGS, attr), os.path.join(bindir, name))
                    for name, attr in (("gbatch-collector", "collector"), ("pod-producer", "producer"),
                                       ("gbatch-processor", "processor"), ("gbatch-emit", "emit"))}
        # The emptyDir: a tmpfs of the pod, bind-mounted at /dev/shm in each container.
        self.shm = os.path.join(self.tmp, "pod-shm")
        os.mkdir(self.shm)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=1777", "pod-shm",
                        self.shm], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.shm])
        self.addCleanup(self.kill_all)
        self.ring = "pod-%d-%d" % (os.getpid(), Pod.seq)
        self.segment = os.path.join(self.shm, "gbatch." + self.ring)
        self.statsd = Statsd(self)

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, preexec_fn=die_with_parent, **kw)
        self.procs.append(p)
        return p

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdin, p.stdout):
                if f is not None:
                    f.close()

    def container(self, name, argv, want_pid=True, env=None, stdout=subprocess.PIPE,
                  read_only_dir=None):
        """Starts argv as the main process of a container: new mount, IPC and PID namespaces
        with their own /proc, the pod tmpfs bind-mounted at /dev/shm (and read_only_dir
        bind-mounted read-only onto itself, as a hostPath volume with readOnly: true), the
        pod's uid and gid, no supplementary groups, no new privileges. Returns the unshare
        process and, with want_pid, the host pid of the container's process (pid 1 inside),
        once it runs."""
        ro = ""
        if read_only_dir:
            ro = ('mount --bind "%s" "%s" && mount -o remount,bind,ro "%s" && '
                  % (read_only_dir, read_only_dir, read_only_dir))
        # --pdeathsig: changing uid clears the parent-death signal unshare --kill-child set;
        # set again, the container dies with its unshare process, hence with the test
        setup = ('mount --bind "$1" /dev/shm && shift && ' + ro +
                 'exec setpriv --reuid="$1" --regid="$1" --clear-groups --no-new-privs '
                 '--inh-caps=-all --bounding-set=-all --pdeathsig=SIGKILL -- "${@:2}"')
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        self.addCleanup(log.close)
        p = self.spawn(["unshare", "--mount", "--ipc", "--pid", "--fork", "--mount-proc",
                        "--kill-child=SIGKILL", "--", "bash", "-c", setup, "container",
                        self.shm, str(ARGS.uid)] + argv,
                       stdout=stdout, stderr=log, stdin=subprocess.PIPE,
                       env=dict(env or {}, PATH="/usr/sbin:/usr/bin:/sbin:/bin"))
        binary = os.path.basename(argv[0])[:15]

        def main_pid():
            try:
                with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                    kids = f.read().split()
                if len(kids) != 1:
                    return None
                with open("/proc/%s/comm" % kids[0]) as f:
                    return int(kids[0]) if f.read().strip() == binary else None
            except OSError:
                return None

        def started():
            if p.poll() is not None:
                raise AssertionError("container %s exited with %d before it started: %s"
                                     % (name, p.returncode, self.log(name)))
            return main_pid()

        if not want_pid:
            return p, None
        return p, wait_until(started, 10, "container %s to start %s" % (name, binary))

    def log(self, name):
        with open(os.path.join(self.tmp, name + ".log")) as f:
            return f.read()

    def start_collector(self, *flags, target=None, read_only_dir=None):
        proc, pid = self.container("collector", [
            self.bin["gbatch-collector"], "--ring", self.ring,
            "--statsd", target or "udp://127.0.0.1:%d" % self.statsd.port, "--console", "off",
            "--flush-interval", "60s", "--unblock-timeout", "500ms"] + list(flags),
            read_only_dir=read_only_dir)
        # as a native sidecar, the collector is up (its ring created) before the processor starts
        wait_until(lambda: os.path.exists(self.segment), 10, "the collector to create its ring")
        st = os.stat(self.segment)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (ARGS.uid, ARGS.uid, 0o600),
                         "the ring in the shared tmpfs belongs to the pod's uid, mode 0600")
        self.assertFalse(os.path.exists("/dev/shm/gbatch." + self.ring),
                         "the ring lives in the pod tmpfs only, never in the host's /dev/shm")
        return proc, pid

    def run_producer(self, count, *flags):
        proc, pid = self.container("producer", [self.bin["pod-producer"], "--ring", self.ring,
                                                "--count", str(count)] + list(flags),
                                   want_pid="--hold-claim" in flags)
        first = proc.stdout.readline().decode()
        self.assertEqual(first.strip(), "pid 1 written %d dropped 0" % count,
                         "the producer is pid 1 of its own PID namespace and lost nothing "
                         "(log: %s)" % self.log("producer"))
        return proc, pid

    def wait_exit(self, proc, timeout, what):
        wait_until(lambda: proc.poll() is not None, timeout, what)
        return proc.returncode

    def start_stub(self, *flags):
        """The Gemini stand-in: outside the pod, reached over the shared loopback."""
        stub = self.spawn([ARGS.stub_gemini, "--port", "0", "--api-key", "pod-key"] + list(flags),
                          stdout=subprocess.PIPE)
        line = stub.stdout.readline().decode()
        m = re.match(r"listening on (127\.0\.0\.1):([0-9]+)", line)
        self.assertIsNotNone(m, "the stand-in did not start: %r" % line)
        self.stub_port = int(m.group(2))
        return "http://127.0.0.1:%d" % self.stub_port

    def processor(self, base, want_pid=False):
        """gbatch-processor in its container, three questions, telemetry into the pod's ring."""
        qpath, cpath = os.path.join(self.tmp, "questions.txt"), os.path.join(self.tmp, "content.txt")
        with open(qpath, "w") as f:
            f.write("Who built it?\nWhen did it open?\nWhere is it?\n")
        with open(cpath, "w") as f:
            f.write("A bridge over a firth, built by a company in a hurry.\n")
        out = open(os.path.join(self.tmp, "answers.json"), "w")
        self.addCleanup(out.close)
        return self.container("processor", [
            self.bin["gbatch-processor"], "--telemetry", "shm:" + self.ring, "--questions", qpath,
            cpath], want_pid=want_pid, env={"GEMINI_API_KEY": "pod-key", "GEMINI_API_BASE": base},
            stdout=out)

    def stub_connected(self):
        """True while a TCP connection to the stand-in is established (/proc/net/tcp state 01)."""
        want = ":%04X" % self.stub_port
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if local.endswith(want) and state == "01":
                    return True
        return False

    def records(self):
        return self.statsd.counter("gbatch.pod.records")

    def test_sigterm_after_the_processor_finished(self):
        base = self.start_stub()
        coll, coll_pid = self.start_collector()
        proc, _ = self.processor(base)
        self.assertEqual(self.wait_exit(proc, 20, "the processor to finish"), 0,
                         self.log("processor"))
        with open(os.path.join(self.tmp, "answers.json")) as f:
            self.assertIn("Answer to question 3", f.read())
        # the collector drains as records come, but folds counters for 60 s: nothing is sent
        # before the SIGTERM, everything after it
        self.assertIsNone(coll.poll(), "the collector waits for SIGTERM")
        self.assertEqual(self.statsd.counter("gbatch.batch_success"), 0)
        os.kill(coll_pid, signal.SIGTERM)
        self.assertEqual(self.wait_exit(coll, 10, "the collector to exit after SIGTERM"), 0,
                         self.log("collector"))
        self.assertEqual(self.statsd.counter("gbatch.batch_success"), 1)
        self.assertEqual(self.statsd.timer_samples("gbatch.batch.total_processing"), 1)
        self.assertIn("draining and exiting", self.log("collector"))

    def test_exits_on_its_own_when_producers_are_done(self):
        coll, _ = self.start_collector("--exit-when-producers-done")
        emit, _ = self.container("emit", [self.bin["gbatch-emit"], "--ring", self.ring, "--strict",
                                          "--stdin"], want_pid=False)
        emit.stdin.write(b"count pod.records 1 --meta step=emit\n" * 3000)
        emit.stdin.close()
        self.assertEqual(self.wait_exit(emit, 10, "gbatch-emit to finish"), 0, self.log("emit"))
        self.assertEqual(self.wait_exit(coll, 10, "the collector to exit by itself"), 0,
                         self.log("collector"))
        self.assertEqual(self.records(), 3000)
        self.assertIn("every producer has detached", self.log("collector"))

    def test_unixgram_socket_on_a_read_only_mount(self):
        # pod-unixgram.yaml: the agent's socket directory is a hostPath mounted read-only
        sockdir = os.path.join(self.tmp, "datadog")
        os.mkdir(sockdir, 0o755)
        path = os.path.join(sockdir, "dsd.socket")
        agent = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(agent.close)
        agent.bind(path)
        os.chmod(path, 0o722)  # as the DataDog agent leaves it: anyone may send
        coll, _ = self.start_collector("--exit-when-producers-done", target="unixgram://" + path,
                                       read_only_dir=sockdir)
        emit, _ = self.container("emit", [self.bin["gbatch-emit"], "--ring", self.ring, "--strict",
                                          "--stdin"], want_pid=False)
        emit.stdin.write(b"count pod.records 1\n" * 500)
        emit.stdin.close()
        self.assertEqual(self.wait_exit(emit, 10, "gbatch-emit to finish"), 0, self.log("emit"))
        self.assertEqual(self.wait_exit(coll, 10, "the collector to exit by itself"), 0,
                         self.log("collector"))
        agent.settimeout(0)
        lines = []
        while True:
            try:
                lines += agent.recv(65536).decode().splitlines()
            except BlockingIOError:
                break
        total = sum(float(m.group(1)) for m in
                    (re.match(r"gbatch\.pod\.records:([0-9.]+)\|c(\||$)", l) for l in lines) if m)
        self.assertEqual(total, 500, "sent over the socket: %r" % lines[:20])

    def test_producer_killed_mid_record(self):
        coll, _ = self.start_collector("--exit-when-producers-done")
        prod, prod_pid = self.run_producer(2000, "--hold-claim")
        self.assertEqual(prod.stdout.readline().decode().strip(), "holding a claim")
        # alive and heartbeating: the collector must not give up on it
        self.assertIsNone(coll.poll(), "the collector waits for a live producer")
        os.kill(prod_pid, signal.SIGKILL)
        self.wait_exit(prod, 10, "the producer to die")
        # the collector cannot see the producer's pid (both are pid 1 of their namespaces):
        # only the stale heartbeat tells it the producer is gone
        self.assertEqual(self.wait_exit(coll, DEAD_PRODUCER_DEADLINE,
                                        "the collector to notice the dead producer"), 0,
                         self.log("collector"))
        self.assertEqual(self.records(), 2000)
        self.assertEqual(self.statsd.counter("gbatch.collector.records_unblocked"), 1,
                         "the claim the producer died holding was padded over and counted")

    def test_processor_killed_while_waiting_on_gemini(self):
        base = self.start_stub("--latency", "60s")
        coll, _ = self.start_collector("--exit-when-producers-done")
        proc, proc_pid = self.processor(base, want_pid=True)
        wait_until(self.stub_connected, 10, "the processor to call the stand-in")
        self.assertIsNone(coll.poll(), "the collector waits for the running processor")
        os.kill(proc_pid, signal.SIGKILL)
        self.wait_exit(proc, 10, "the processor to die")
        self.assertEqual(self.wait_exit(coll, DEAD_PRODUCER_DEADLINE,
                                        "the collector to notice the dead processor"), 0,
                         self.log("collector"))
        self.assertIn("every producer has detached", self.log("collector"))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--collector", required=True)
    ap.add_argument("--producer", required=True)
    ap.add_argument("--processor", required=True)
    ap.add_argument("--emit", required=True)
    ap.add_argument("--stub-gemini", required=True)
    ap.add_argument("--uid", type=int, default=10001)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ARGS, rest = ap.parse_known_args()
    if not os.path.isfile(ARGS.collector):
        skip("gbatch-collector is not built in this tree (%s)" % ARGS.collector)
    if os.geteuid() != 0:
        skip("the pod simulation needs root for unshare and mount (CI runs as root)")
    if not ARGS.inside:
        probe = subprocess.run(["unshare", "--mount", "--ipc", "--pid", "--fork", "--mount-proc",
                                "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            skip("unshare cannot make namespaces here: " + probe.stderr.strip())
        # Everything runs in a private mount namespace: the test's mounts vanish with it,
        # whatever way it ends.
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                              sys.executable] + sys.argv + ["--inside"])
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
