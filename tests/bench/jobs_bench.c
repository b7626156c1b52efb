/*
 * jobs_bench.c - throughput of gbatch-processor --jobs against gbatch-stub-gemini: jobs/s,
 * requests/s and the processor's CPU time per request, with no latency and with 200 ms, at
 * --parallel 1, 8 and 64. Prints a table and one JSON line; a benchmark, not a test.
 *   jobs_bench [GBATCH_PROCESSOR]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "stub_proc.h"

struct row {
	const char *latency;
	unsigned parallel;
	unsigned jobs;
	size_t requests;
	double seconds;
	double cpu;
};

/* Writes n jobs of three questions each, content distinct per job. */
static int
write_jobs(const char *path, unsigned n)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "{\"id\": %u, \"content\": \"Bench document %u: the Tay Bridge opened in "
		    "1878 and fell in 1879.\", \"questions\": [\"When did it open?\", \"When did it "
		    "fall?\", \"Which document is this?\"]}\n", i, i);
	return fclose(f);
}

/* Runs the processor over the jobs file; fills wall and CPU seconds. 0 or -1. */
static int
run_processor(const char *proc, const struct stub_proc *stub, const char *jobs, const char *out,
    unsigned parallel, double *seconds, double *cpu)
{
	char par[16];
	uint64_t t0 = gb__clock_mono_ns();
	struct rusage ru;
	int status;
	pid_t pid;

	snprintf(par, sizeof(par), "%u", parallel);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDERR_FILENO);
		setenv("GEMINI_API_KEY", STUB_KEY, 1);
		setenv("GEMINI_API_BASE", stub->base, 1);
		execl(proc, proc, "--jobs", jobs, "--output", out, "--parallel", par, "--rpm", "1000000",
		    "--tpm", "0", "--telemetry", "off", "--no-progress", (char *)NULL);
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return -1;
	*seconds = (double)(gb__clock_mono_ns() - t0) / 1e9;
	*cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *proc = argc > 1 ? argv[1] : GBATCH_PROCESSOR;
	static const unsigned pars[] = { 1, 8, 64 };
	/* Jobs per run: enough for a few seconds each. */
	static const unsigned jobs_fast[] = { 2000, 4000, 4000 };
	static const unsigned jobs_slow[] = { 15, 100, 600 };
	struct row rows[6];
	const char *tmp = getenv("TMPDIR");
	char jobs[256], out[300];
	size_t nrows = 0;
	json_t *all = json_array();

	for (int l = 0; l < 2; l++) {
		const char *args[] = { "--latency", l == 0 ? "0" : "200ms", NULL };
		struct stub_proc stub;
		if (stub_start(&stub, args) != 0)
			return 1;
		for (size_t i = 0; i < 3; i++) {
			struct row *r = &rows[nrows];
			json_t *before = stub_requests(&stub), *after;
			r->latency = l == 0 ? "0" : "200ms";
			r->parallel = pars[i];
			r->jobs = l == 0 ? jobs_fast[i] : jobs_slow[i];
			snprintf(jobs, sizeof(jobs), "%s/gbatch-jobs-bench-%d.jsonl",
			    tmp != NULL && *tmp != '\0' ? tmp : "/tmp", (int)getpid());
			snprintf(out, sizeof(out), "%s.out", jobs);
			if (write_jobs(jobs, r->jobs) != 0 || run_processor(proc, &stub, jobs, out,
			    r->parallel, &r->seconds, &r->cpu) != 0) {
				fprintf(stderr, "jobs_bench: the run at --parallel %u failed\n", r->parallel);
				stub_stop(&stub);
				return 1;
			}
			after = stub_requests(&stub);
			r->requests = json_array_size(after) - json_array_size(before);
			json_decref(before);
			json_decref(after);
			unlink(jobs);
			unlink(out);
			json_array_append_new(all, json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f}",
			    "latency", r->latency, "parallel", (int)r->parallel, "jobs", (int)r->jobs,
			    "requests", (int)r->requests, "seconds", r->seconds,
			    "jobs_per_s", r->jobs / r->seconds, "requests_per_s", r->requests / r->seconds,
			    "cpu_us_per_request", r->cpu / (double)r->requests * 1e6));
			nrows++;
		}
		stub_stop(&stub);
	}
	printf("%-8s %8s %6s %8s %8s %10s %12s %14s\n", "latency", "parallel", "jobs", "requests",
	    "seconds", "jobs/s", "requests/s", "cpu us/request");
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		printf("%-8s %8u %6u %8zu %8.2f %10.1f %12.1f %14.1f\n", r->latency, r->parallel, r->jobs,
		    r->requests, r->seconds, r->jobs / r->seconds, r->requests / r->seconds,
		    r->cpu / (double)r->requests * 1e6);
	}
	json_t *root = json_pack("{s:s, s:o}", "bench", "jobs", "runs", all);
	char *line = json_dumps(root, JSON_COMPACT);
	printf("%s\n", line != NULL ? line : "{}");
	free(line);
	json_decref(root);
	return 0;
}
