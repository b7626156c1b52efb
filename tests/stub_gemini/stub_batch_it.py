#!/usr/bin/env python3
"""stub_batch_it.py - the stand-in's Batch API over real HTTP: inline and file input, the state
moving PENDING, RUNNING, SUCCEEDED, answers equal to what generateContent answers for the same
requests, exact per-request error percentages, shaped answers, cancel, expire, fail, list and
its pages, delete, the responses-file download, the refusals, the request log, and replies
whose keys are those of the real API's recorded replies (tests/fixtures/gemini/batch-*).

Run by ctest (integration.stub_batch, tests/stub_gemini/CMakeLists.txt) with GBATCH_STUB_GEMINI
in the environment.
"""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

STUB = os.environ.get("GBATCH_STUB_GEMINI", "")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gemini")
KEY = "batch-test-key"
DEADLINE = 60
MODEL = "gemini-2.5-flash"
TERMINAL = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED",
            "BATCH_STATE_EXPIRED"}
ORDER = ["BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"]


def ask(i, questions=2, content=""):
    """A generateContent request as the processor sends one: content, then numbered questions."""
    parts = [{"text": content}] if content else []
    parts.append({"text": "Answer as a JSON array.\n" + "".join(
        "Question %d: question %d of request %d?\n" % (q + 1, q + 1, i) for q in range(questions))})
    return {"contents": [{"role": "user", "parts": parts}],
            "generationConfig": {"responseMimeType": "application/json"}}


def inline_body(requests, name="a batch"):
    return {"batch": {"displayName": name, "inputConfig": {"requests": {"requests": [
        {"request": r, "metadata": {"key": k}} for k, r in requests]}}}}


def keys_of(obj):
    return set(obj) if isinstance(obj, dict) else set()


class Stub:
    """One gbatch-stub-gemini on a free port, with its request log."""

    def __init__(self, tmp, name, *args):
        self.out = os.path.join(tmp, name + ".out")
        self.log_path = os.path.join(tmp, name + ".jsonl")
        with open(self.out, "w") as f:
            self.proc = subprocess.Popen([STUB, "--port", "0", "--api-key", KEY, "--log",
                                          self.log_path] + list(args), stdout=f)
        deadline = time.monotonic() + 10
        while "listening on" not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError("the stand-in did not start")
            time.sleep(0.02)
        self.host, self.port = self.text().split()[-1].split(":")

    def text(self):
        with open(self.out) as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def call(self, method, path, body=None, headers=None, key=KEY, raw=False):
        """Returns (status, the reply parsed as JSON or its bytes when raw, the headers)."""
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=DEADLINE)
        h = {"Content-Type": "application/json"}
        if key is not None:
            h["x-goog-api-key"] = key
        h.update(headers or {})
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read()
        conn.close()
        return r.status, (text if raw else json.loads(text)), dict(r.getheaders())

    def log(self):
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def create(self, body, model=MODEL):
        status, op, _ = self.call("POST", "/v1beta/models/%s:batchGenerateContent" % model, body)
        if status != 200:
            raise AssertionError("create answered %d: %r" % (status, op))
        return op

    def get(self, name):
        status, op, _ = self.call("GET", "/v1beta/" + name)
        if status != 200:
            raise AssertionError("get answered %d: %r" % (status, op))
        return op

    def wait_done(self, name):
        """Polls until the batch is done; returns every Operation seen."""
        seen = []
        deadline = time.monotonic() + DEADLINE
        while not seen or not seen[-1].get("done"):
            if time.monotonic() > deadline:
                raise AssertionError("batch %s not done: %r" % (name, seen[-1:]))
            seen.append(self.get(name))
            time.sleep(0.05)
        return seen

    def generate(self, request, model=MODEL):
        return self.call("POST", "/v1beta/models/%s:generateContent" % model, request)

    def upload(self, data, mime="application/jsonl"):
        """Uploads data through the Files API; returns the file's name."""
        status, _, h = self.call("POST", "/upload/v1beta/files", {"file": {"display_name": "in"}},
                                 {"X-Goog-Upload-Protocol": "resumable",
                                  "X-Goog-Upload-Command": "start",
                                  "X-Goog-Upload-Header-Content-Length": str(len(data)),
                                  "X-Goog-Upload-Header-Content-Type": mime})
        url = {k.lower(): v for k, v in h.items()}["x-goog-upload-url"]
        path = url.split(self.port, 1)[1]
        status, reply, _ = self.call("POST", path, data, {"X-Goog-Upload-Command":
                                                          "upload, finalize",
                                                          "X-Goog-Upload-Offset": "0"})
        if status != 200:
            raise AssertionError("upload answered %d: %r" % (status, reply))
        return reply["file"]["name"]


class BatchCase(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(STUB, os.X_OK), "GBATCH_STUB_GEMINI=%r is not a program" % STUB)
        self.tmp = tempfile.mkdtemp(prefix="gbatch-stub-batch-")
        self.stubs = []

    def tearDown(self):
        for s in self.stubs:
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def stub(self, *args):
        s = Stub(self.tmp, "stub-%d" % len(self.stubs), *args)
        self.stubs.append(s)
        return s

    def fixture(self, name):
        with open(os.path.join(FIXTURES, name)) as f:
            return json.load(f)

    def interactive(self, requests, model=MODEL):
        """What a fresh stand-in's generateContent answers, request by request, in order."""
        fresh = self.stub()
        out = []
        for r in requests:
            status, reply, _ = fresh.generate(r, model)
            self.assertEqual(status, 200, reply)
            out.append(reply)
        return out

    def assert_stats(self, op, total, succeeded, failed, pending):
        stats = op["metadata"]["batchStats"]
        want = {"requestCount": total, "successfulRequestCount": succeeded,
                "failedRequestCount": failed, "pendingRequestCount": pending}
        self.assertEqual(stats, {k: str(v) for k, v in want.items() if v != 0})

    def test_inline_batch_runs_pending_running_succeeded_and_answers_as_generate_content(self):
        stub = self.stub("--batch-time", "8s")
        big = "A long document about bicycles. " * 200  # over 1024 tokens: implicitly cached
        reqs = [("job-%d" % i, ask(i, 3, big if i < 3 else "")) for i in range(6)]
        op = stub.create(inline_body(reqs, "progress"))
        self.assertEqual(op["metadata"]["state"], "BATCH_STATE_PENDING")
        self.assertNotIn("done", op)
        self.assert_stats(op, 6, 0, 0, 6)
        seen = [op] + stub.wait_done(op["name"])
        states = [o["metadata"]["state"] for o in seen]
        self.assertEqual([s for s in ORDER if s in states], ORDER, states)
        self.assertEqual(sorted(states, key=ORDER.index), states, "states went back")
        for o in seen:
            stats = {k: int(v) for k, v in o["metadata"]["batchStats"].items()}
            self.assertEqual(stats["requestCount"], 6)
            self.assertEqual(stats.get("successfulRequestCount", 0) +
                             stats.get("pendingRequestCount", 0), 6, o["metadata"])
            self.assertEqual("done" in o, o["metadata"]["state"] in TERMINAL)
        done = seen[-1]
        self.assert_stats(done, 6, 6, 0, 0)
        items = done["response"]["inlinedResponses"]["inlinedResponses"]
        self.assertEqual(done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"], items)
        self.assertEqual([i["metadata"] for i in items], [{"key": k} for k, _ in reqs])
        want = self.interactive([r for _, r in reqs])
        self.assertEqual([i["response"] for i in items], want)
        self.assertNotIn("cachedContentTokenCount", want[0]["usageMetadata"])
        self.assertGreater(want[1]["usageMetadata"]["cachedContentTokenCount"], 1000)
        self.assertEqual(json.loads(items[4]["response"]["candidates"][0]["content"]["parts"][0]
                                    ["text"]), ["Answer to question %d: question %d of request "
                                                "4?" % (q, q) for q in (1, 2, 3)])

    def test_an_explicit_cache_is_honoured_as_generate_content_honours_it(self):
        stub = self.stub("--batch-time", "0")
        status, cache, _ = stub.call("POST", "/v1beta/cachedContents", {
            "model": "models/" + MODEL, "contents": [{"role": "user", "parts": [
                {"text": "A cached document. " * 400}]}]})
        self.assertEqual(status, 200, cache)
        request = dict(ask(1), cachedContent=cache["name"])
        items = stub.wait_done(stub.create(inline_body([("c", request)]))["name"])[-1][
            "response"]["inlinedResponses"]["inlinedResponses"]
        status, reply, _ = stub.generate(request)
        self.assertEqual(status, 200)
        self.assertEqual(items[0]["response"], reply)
        self.assertEqual(reply["usageMetadata"]["cachedContentTokenCount"],
                         cache["usageMetadata"]["totalTokenCount"])
        status, _, _ = stub.call("DELETE", "/v1beta/" + cache["name"])
        self.assertEqual(status, 200)
        items = stub.wait_done(stub.create(inline_body([("c", request)]))["name"])[-1][
            "response"]["inlinedResponses"]["inlinedResponses"]
        self.assertEqual(items[0], {"error": {"code": 5, "message": "CachedContent not found "
                                              "(or permission denied)."}, "metadata": {"key": "c"}})

    def test_file_input_is_read_from_the_files_api_and_answered_in_a_responses_file(self):
        stub = self.stub("--batch-time", "0")
        reqs = [("line-%d" % i, ask(i, 2)) for i in range(5)]
        jsonl = "".join(json.dumps({"key": k, "request": r}) + "\n" for k, r in reqs)
        name = stub.upload(("\n" + jsonl + "\n").encode())
        op = stub.create({"batch": {"display_name": "from a file",
                                    "input_config": {"file_name": name}}})
        self.assertEqual(op["metadata"]["inputConfig"], {"fileName": name})
        done = stub.wait_done(op["name"])[-1]
        out = "files/batch-" + op["name"].split("/")[1]
        self.assertEqual(done["response"]["responsesFile"], out)
        self.assertEqual(done["metadata"]["output"], {"responsesFile": out})
        self.assert_stats(done, 5, 5, 0, 0)
        status, text, h = stub.call("GET", "/download/v1beta/%s:download?alt=media" % out,
                                    raw=True)
        self.assertEqual(status, 200)
        lines = [json.loads(line) for line in text.decode().splitlines()]
        self.assertEqual([line["key"] for line in lines], [k for k, _ in reqs])
        self.assertEqual([line["response"] for line in lines],
                         self.interactive([r for _, r in reqs]))
        status, err, _ = stub.call("GET", "/download/v1beta/%s:download" % out, raw=True)
        self.assertEqual(status, 400)
        status, err, _ = stub.call("POST", "/v1beta/models/%s:batchGenerateContent" % MODEL,
                                   {"batch": {"displayName": "x", "inputConfig": {
                                       "fileName": "files/nothing"}}})
        self.assertEqual((status, err["error"]["status"]), (404, "NOT_FOUND"))
        bad = stub.upload(b'{"key": "k", "request": {"contents": []}}\n{"key": 7}\n')
        status, err, _ = stub.call("POST", "/v1beta/models/%s:batchGenerateContent" % MODEL,
                                   {"batch": {"displayName": "x", "inputConfig": {
                                       "fileName": bad}}})
        self.assertEqual((status, err["error"]["status"]), (400, "INVALID_ARGUMENT"))
        self.assertIn("Line 2 of " + bad, err["error"]["message"])

    def test_per_request_errors_are_exactly_the_percentage_and_chosen_by_key(self):
        chosen = []
        for _ in range(2):
            stub = self.stub("--batch-time", "0", "--batch-fault", "errors:5")
            reqs = [("k%03d" % i, ask(i, 1)) for i in range(200)]
            if chosen:
                reqs.reverse()
            done = stub.wait_done(stub.create(inline_body(reqs))["name"])[-1]
            items = done["response"]["inlinedResponses"]["inlinedResponses"]
            self.assert_stats(done, 200, 190, 10, 0)
            errs = [i for i in items if "error" in i]
            self.assertEqual(len(errs), 10)
            self.assertEqual({tuple(sorted(e)) for e in errs}, {("error", "metadata")})
            self.assertEqual({e["error"]["code"] for e in errs}, {13})
            chosen.append(sorted(e["metadata"]["key"] for e in errs))
            self.assertEqual([r["errors"] for r in stub.log() if r["batch_op"] == "create"], [10])
        self.assertEqual(chosen[0], chosen[1], "the same keys fail whatever their order")

    def test_a_partial_fault_shapes_that_share_of_the_answers_with_a_fault_kind(self):
        stub = self.stub("--batch-time", "0", "--batch-fault", "partial:25:few")
        reqs = [("p%d" % i, ask(i, 3)) for i in range(8)]
        done = stub.wait_done(stub.create(inline_body(reqs))["name"])[-1]
        items = done["response"]["inlinedResponses"]["inlinedResponses"]
        counts = [len(json.loads(i["response"]["candidates"][0]["content"]["parts"][0]["text"]))
                  for i in items]
        self.assertEqual(sorted(counts), [2, 2, 3, 3, 3, 3, 3, 3])
        self.assert_stats(done, 8, 8, 0, 0)

    def test_cancel_ends_a_batch_at_once_and_a_done_batch_cannot_be_cancelled(self):
        stub = self.stub("--batch-time", "60s")
        op = stub.create(inline_body([("a", ask(1)), ("b", ask(2))]))
        status, reply, _ = stub.call("POST", "/v1beta/%s:cancel" % op["name"], b"")
        self.assertEqual((status, reply), (200, {}))
        got = stub.get(op["name"])
        self.assertEqual(got["metadata"]["state"], "BATCH_STATE_CANCELLED")
        self.assertEqual((got["done"], got["error"]["code"]), (True, 1))
        self.assertNotIn("response", got)
        self.assertIn("endTime", got["metadata"])
        self.assertEqual(stub.call("POST", "/v1beta/%s:cancel" % op["name"], b"")[:2], (200, {}))
        fast = self.stub("--batch-time", "0")
        op = fast.create(inline_body([("a", ask(1))]))
        fast.wait_done(op["name"])
        status, err, _ = fast.call("POST", "/v1beta/%s:cancel" % op["name"], b"")
        self.assertEqual((status, err["error"]["status"]), (400, "FAILED_PRECONDITION"))
        self.assertEqual([r["batch_op"] for r in stub.log()], ["create", "cancel", "get", "cancel"])

    def test_expire_and_fail_faults_end_the_next_batches_with_their_state_and_an_error(self):
        stub = self.stub("--batch-time", "0", "--batch-fault", "expire", "--batch-fault", "fail")
        ends = []
        for i in range(3):
            done = stub.wait_done(stub.create(inline_body([("a", ask(i))]))["name"])[-1]
            ends.append((done["metadata"]["state"], done.get("error", {}).get("code"),
                         "response" in done, "output" in done["metadata"]))
            if "error" in done:
                self.assert_stats(done, 1, 0, 0, 1)
        self.assertEqual(ends, [("BATCH_STATE_EXPIRED", 4, False, False),
                                ("BATCH_STATE_FAILED", 13, False, False),
                                ("BATCH_STATE_SUCCEEDED", None, True, True)])

    def test_list_pages_newest_first_and_finds_a_batch_by_display_name(self):
        stub = self.stub("--batch-time", "60s")
        names = [stub.create(inline_body([("a", ask(i))], "run-%d" % i))["name"] for i in range(3)]
        status, page, _ = stub.call("GET", "/v1beta/batches?pageSize=2")
        self.assertEqual(status, 200)
        self.assertEqual(set(page), {"operations", "nextPageToken"})
        self.assertEqual([o["name"] for o in page["operations"]], [names[2], names[1]])
        status, rest, _ = stub.call("GET", "/v1beta/batches?pageSize=2&pageToken=" +
                                    page["nextPageToken"])
        self.assertEqual((status, set(rest)), (200, {"operations"}))
        self.assertEqual([o["name"] for o in rest["operations"]], [names[0]])
        found = [o for o in page["operations"] + rest["operations"]
                 if o["metadata"]["displayName"] == "run-1"]
        self.assertEqual([o["name"] for o in found], [names[1]])
        status, err, _ = stub.call("GET", "/v1beta/batches?pageToken=forged")
        self.assertEqual((status, err["error"]["status"]), (400, "INVALID_ARGUMENT"))
        status, everything, _ = stub.call("GET", "/v1beta/batches")
        self.assertEqual(len(everything["operations"]), 3)

    def test_delete_forgets_a_batch_and_its_responses_file(self):
        stub = self.stub("--batch-time", "0")
        name = stub.upload((json.dumps({"key": "a", "request": ask(1)}) + "\n").encode())
        op = stub.create({"batch": {"displayName": "d", "inputConfig": {"fileName": name}}})
        stub.wait_done(op["name"])
        out = "/download/v1beta/files/batch-%s:download?alt=media" % op["name"].split("/")[1]
        self.assertEqual(stub.call("GET", out, raw=True)[0], 200)
        self.assertEqual(stub.call("DELETE", "/v1beta/" + op["name"])[:2], (200, {}))
        status, err, _ = stub.call("GET", "/v1beta/" + op["name"])
        self.assertEqual((status, err["error"]["status"]), (404, "NOT_FOUND"))
        self.assertEqual(stub.call("GET", out, raw=True)[0], 404)
        self.assertEqual(stub.call("DELETE", "/v1beta/" + op["name"])[0], 404)
        self.assertEqual(stub.call("GET", "/v1beta/batches")[1], {"operations": []})

    def test_bad_keys_bad_bodies_and_bodies_over_the_inline_limit_are_refused(self):
        stub = self.stub("--batch-time", "0")
        path = "/v1beta/models/%s:batchGenerateContent" % MODEL
        good = inline_body([("a", ask(1))])
        status, err, _ = stub.call("POST", path, good, key="wrong")
        self.assertEqual(status, 400)
        self.assertEqual(err, self.fixture("api-key-invalid.json"))
        self.assertEqual(stub.call("GET", "/v1beta/batches", key=None)[0], 401)
        for body in (b"{not json", {"displayName": "no batch object"},
                     {"batch": {"inputConfig": {"requests": {"requests": [{"request": {}}]}}}},
                     {"batch": {"displayName": "x", "inputConfig": {}}},
                     {"batch": {"displayName": "x", "inputConfig": {"requests": {"requests": []}}}},
                     {"batch": {"displayName": "x", "inputConfig": {"requests": {"requests": [
                         {"request": "text"}]}}}},
                     {"batch": {"displayName": "x" * 513, "inputConfig": {"requests": {
                         "requests": [{"request": {}}]}}}},
                     {"batch": {"displayName": "x", "priority": "high", "inputConfig": {
                         "requests": {"requests": [{"request": {}}]}}}}):
            status, err, _ = stub.call("POST", path, body)
            self.assertEqual((status, err["error"]["status"]), (400, "INVALID_ARGUMENT"), body)
        limit = 20 << 20
        text = "x" * (limit - 4096)
        under = json.dumps(inline_body([("big", {"contents": [{"parts": [{"text": text}]}]})]))
        self.assertLessEqual(len(under), limit)
        self.assertEqual(stub.call("POST", path, under.encode())[0], 200)
        over = json.dumps(inline_body([("big", {"contents": [{"parts": [{"text": text +
                                                                          "x" * 8192}]}]})]))
        status, err, _ = stub.call("POST", path, over.encode())
        self.assertEqual(status, 400)
        self.assertEqual(err["error"]["message"],
                         "Request payload size exceeds the limit: 20971520 bytes.")
        self.assertEqual(stub.call("GET", "/v1beta/batches/NOT-an-id")[0], 404)
        self.assertEqual(stub.call("GET", "/v1beta/batches/nosuchbatch")[0], 404)
        self.assertEqual(len(stub.call("GET", "/v1beta/batches")[1]["operations"]), 1)

    def test_a_hundred_batches_are_kept_the_oldest_done_one_goes_first(self):
        slow, fast = self.stub("--batch-time", "60s"), self.stub("--batch-time", "0")
        for stub in (slow, fast):
            names = [stub.create(inline_body([("a", ask(1))], "b%d" % i))["name"]
                     for i in range(100)]
        status, err, _ = slow.call("POST", "/v1beta/models/%s:batchGenerateContent" % MODEL,
                                   inline_body([("a", ask(1))]))
        self.assertEqual((status, err["error"]["status"]), (429, "RESOURCE_EXHAUSTED"))
        newest = fast.create(inline_body([("a", ask(1))], "b100"))["name"]
        self.assertEqual(fast.call("GET", "/v1beta/" + names[0])[0], 404)
        listed = fast.call("GET", "/v1beta/batches?pageSize=1000")[1]["operations"]
        self.assertEqual([o["name"] for o in listed], [newest] + names[:0:-1])

    def test_503_faults_refuse_a_create_without_making_a_batch_and_fail_one_get(self):
        stub = self.stub("--batch-time", "0", "--batch-fault", "create-503",
                         "--batch-fault", "get-503")
        path = "/v1beta/models/%s:batchGenerateContent" % MODEL
        status, err, _ = stub.call("POST", path, inline_body([("a", ask(1))]))
        self.assertEqual((status, err["error"]["status"]), (503, "UNAVAILABLE"))
        self.assertEqual(stub.call("GET", "/v1beta/batches")[1], {"operations": []})
        op = stub.create(inline_body([("a", ask(1))]))
        self.assertEqual(stub.call("GET", "/v1beta/" + op["name"])[0], 503)
        self.assertEqual(stub.get(op["name"])["metadata"]["state"], "BATCH_STATE_SUCCEEDED")

    def test_a_lost_create_makes_the_batch_but_answers_503(self):
        stub = self.stub("--batch-time", "0", "--batch-fault", "create-lost")
        path = "/v1beta/models/%s:batchGenerateContent" % MODEL
        body = inline_body([("a", ask(1))])
        body["batch"]["displayName"] = "lost one"
        status, err, _ = stub.call("POST", path, body)
        self.assertEqual((status, err["error"]["status"]), (503, "UNAVAILABLE"))
        listed = stub.call("GET", "/v1beta/batches")[1]["operations"]
        self.assertEqual([o["metadata"]["displayName"] for o in listed], ["lost one"])
        line = [r for r in stub.log() if r.get("batch_op") == "create"][0]
        self.assertEqual((line["status"], line["lost"], line["batch"]),
                         (503, True, listed[0]["name"]))
        # the next create is answered
        self.assertEqual(stub.call("POST", path, inline_body([("b", ask(1))]))[0], 200)

    def test_every_call_is_logged_so_submissions_polls_and_downloads_can_be_counted(self):
        stub = self.stub("--batch-time", "0")
        name = stub.upload((json.dumps({"key": "a", "request": ask(1, 2)}) + "\n").encode())
        op = stub.create({"batch": {"displayName": "logged", "inputConfig": {"fileName": name}}})
        polls = len(stub.wait_done(op["name"]))
        out = "/download/v1beta/files/batch-%s:download?alt=media" % op["name"].split("/")[1]
        status, body, _ = stub.call("GET", out, raw=True)
        stub.call("GET", "/v1beta/batches")
        lines = [r for r in stub.log() if "batch_op" in r]
        creates = [r for r in lines if r["method"] == "POST" and
                   r["path"].endswith(":batchGenerateContent")]
        self.assertEqual(len(creates), 1)
        c = creates[0]
        self.assertEqual((c["batch"], c["display_name"], c["model"], c["input"], c["requests"],
                          c["errors"], c["status"], c["key_ok"], c["state"]),
                         (op["name"], "logged", MODEL, "file", 1, 0, 200, True,
                          "BATCH_STATE_PENDING"))
        answer = json.loads(body)["response"]["usageMetadata"]
        self.assertEqual(c["usage"], answer)
        self.assertEqual([r["batch_op"] for r in lines], ["create"] + ["get"] * polls +
                         ["download", "list"])
        self.assertEqual([r["batch"] for r in lines if r["batch_op"] == "get"],
                         [op["name"]] * polls)
        self.assertEqual(lines[-2]["bytes"], len(body))
        self.assertEqual([r["n"] for r in stub.log()], list(range(1, len(stub.log()) + 1)))

    def test_bad_batch_options_exit_2_naming_the_bad_value(self):
        for args, named in ((["--batch-time", "5x"], "5x"), (["--batch-time", "49h"], "49h"),
                            (["--batch-fault", "bogus"], "bogus"),
                            (["--batch-fault", "errors"], "errors"),
                            (["--batch-fault", "errors:101"], "errors:101"),
                            (["--batch-fault", "partial:5:parts"], "partial:5:parts"),
                            (["--batch-fault", "expire:0"], "0"),
                            (["--batch-fault", "errors:60", "--batch-fault", "partial:50"],
                             "partial:50")):
            r = subprocess.run([STUB] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=DEADLINE)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(named, r.stderr.decode(), args)

    def test_replies_have_the_keys_of_the_recorded_replies(self):
        stub = self.stub("--batch-time", "0")
        op = stub.create(inline_body([("a", ask(1))]))
        rec = self.fixture("batch-create-inline.json")
        self.assertEqual(keys_of(op), keys_of(rec))
        self.assertEqual(keys_of(op["metadata"]), keys_of(rec["metadata"]))
        self.assertEqual(keys_of(op["metadata"]["batchStats"]),
                         keys_of(rec["metadata"]["batchStats"]))
        self.assertEqual(op["metadata"]["@type"], rec["metadata"]["@type"])
        done = stub.wait_done(op["name"])[-1]
        rec = self.fixture("batch-get-succeeded-inline.json")
        self.assertEqual(keys_of(done), keys_of(rec))
        self.assertEqual(keys_of(done["metadata"]) - {"output"}, keys_of(rec["metadata"]))
        self.assertEqual(keys_of(done["metadata"]["batchStats"]),
                         keys_of(rec["metadata"]["batchStats"]))
        self.assertEqual(keys_of(done["response"]), keys_of(rec["response"]))
        self.assertEqual(done["response"]["@type"], rec["response"]["@type"])
        item = done["response"]["inlinedResponses"]["inlinedResponses"][0]
        self.assertEqual(keys_of(item), {"response", "metadata"})
        self.assertEqual(keys_of(item["response"]),
                         keys_of(rec["response"]["inlinedResponses"]["inlinedResponses"][0]
                                 ["response"]) | {"responseId"})
        name = stub.upload((json.dumps({"key": "a", "request": ask(1)}) + "\n").encode())
        op = stub.create({"batch": {"displayName": "f", "inputConfig": {"fileName": name}}})
        rec = self.fixture("batch-create-file.json")
        self.assertEqual(keys_of(op["metadata"]), keys_of(rec["metadata"]))
        done = stub.wait_done(op["name"])[-1]
        rec = self.fixture("batch-get-succeeded-file.json")
        self.assertEqual(keys_of(done), keys_of(rec))
        self.assertEqual(keys_of(done["metadata"]), keys_of(rec["metadata"]))
        self.assertEqual(keys_of(done["metadata"]["output"]), keys_of(rec["metadata"]["output"]))
        self.assertEqual(keys_of(done["response"]), keys_of(rec["response"]))
        self.assertTrue(rec["response"]["responsesFile"].endswith(rec["name"].split("/")[1]))
        self.assertTrue(done["response"]["responsesFile"].endswith(done["name"].split("/")[1]))
        listed = stub.call("GET", "/v1beta/batches")[1]
        rec = self.fixture("batch-list.json")
        self.assertEqual(keys_of(listed), keys_of(rec))
        self.assertEqual(keys_of(listed["operations"][0]["metadata"]) - {"output", "endTime"},
                         keys_of(rec["operations"][0]["metadata"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
