#!/usr/bin/env python3
"""batch_bench.py STUB PROCESSOR [--jobs N] - what a job costs through the Batch API beside
the interactive run of the same jobs file, both against the stand-in in the same run: HTTP
requests per job (every request the stand-in logs: generateContent, batch creation, polls,
downloads) and billable tokens per job (the prompt less its cached part, the output and the
thoughts), billed at the interactive rate or, for what the batch answered, at half. Run
twice: every request answered by the batch, and 5% of them failed in the batch and asked
again interactively. Prints the figures and, last, one JSON line for tests/bench/table.py.
Not a test: nothing is asserted."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

KEY = "bench-key"


def start_stub(stub, tmp, tag, *args):
    out, log = os.path.join(tmp, tag + ".out"), os.path.join(tmp, tag + ".log")
    with open(out, "w") as f:
        p = subprocess.Popen([stub, "--port", "0", "--api-key", KEY, "--log", log] + list(args),
                             stdout=f)
    deadline = time.monotonic() + 10
    while True:
        with open(out) as f:
            text = f.read()
        if "listening on" in text:
            return p, "http://" + text.split()[-1], log
        if time.monotonic() > deadline:
            sys.exit("batch_bench: the stand-in did not start")
        time.sleep(0.02)


def run(processor, base, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GBATCH_", "GEMINI_"))}
    env.update({"GEMINI_API_KEY": KEY, "GEMINI_API_BASE": base})
    r = subprocess.run([processor, "--telemetry", "off", "--no-progress", "--rpm", "1000000",
                        "--tpm", "0"] + args, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=600)
    if r.returncode != 0:
        sys.exit("batch_bench: gbatch-processor exited %d: %s" % (r.returncode,
                                                                  r.stderr.decode()[-2000:]))


def measure(stub, processor, tmp, jobs, n, tag, batch, faults):
    p, base, log = start_stub(stub, tmp, tag, "--batch-time", "300ms", *faults)
    out = os.path.join(tmp, tag + ".jsonl")
    args = ["--jobs", jobs, "--output", out, "--parallel", "8"]
    if batch:
        args += ["--batch-api", "--batch-poll", "100ms"]
    run(processor, base, args)
    p.terminate()
    p.wait(timeout=10)
    with open(log) as f:
        requests = sum(1 for line in f if line.strip())
    billable = billed = 0.0
    with open(out) as f:
        for line in f:
            row = json.loads(line)
            u = row["usage"]
            full = u["prompt_tokens"] - u["cached_tokens"] + u["output_tokens"] + \
                u["thoughts_tokens"]
            billable += full
            billed += row["batch_api"]["billable_tokens_at_batch_rate"] if batch else full
    return {"requests_per_job": requests / n, "billable_tokens_per_job": billable / n,
            "billed_tokens_per_job": billed / n}


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: batch_bench.py STUB PROCESSOR [--jobs N]")
    stub, processor = sys.argv[1], sys.argv[2]
    n = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--jobs" else 1000
    tmp = tempfile.mkdtemp(prefix="gbatch-batch-bench-")
    try:
        jobs = os.path.join(tmp, "jobs.jsonl")
        with open(jobs, "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": i, "content": "Report %d: " % i + "the quarter's "
                                    "figures, region by region, with notes. " * 20,
                                    "questions": ["What is report %d about?" % i,
                                                  "Which region grew most?",
                                                  "What does the last note say?"]}) + "\n")
        res = {"bench": "batch", "jobs": n}
        for tag, faults in (("clean", []), ("errors5", ["--batch-fault", "errors:5"])):
            res[tag] = {"interactive": measure(stub, processor, tmp, jobs, n, tag + "-i", False,
                                               faults if tag == "clean" else []),
                        "batch": measure(stub, processor, tmp, jobs, n, tag + "-b", True,
                                         faults)}
            for mode in ("interactive", "batch"):
                r = res[tag][mode]
                print("%-8s %-11s %6.3f requests/job  %8.1f billable tokens/job  %8.1f billed"
                      % (tag, mode, r["requests_per_job"], r["billable_tokens_per_job"],
                         r["billed_tokens_per_job"]))
        print(json.dumps(res))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
