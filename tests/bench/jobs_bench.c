/*
 * jobs_bench.c - throughput of gbatch-processor --jobs against gbatch-stub-gemini: jobs/s,
 * requests/s and the processor's CPU time per request, with no latency and with 200 ms, at
 * --parallel 1, 8 and 64. Its baseline, in the same run: the same request bodies (captured
 * from the processor by a listener of this program) sent by the curl command line tool with
 * --parallel --parallel-max 8 over kept-alive connections to the same stand-in, and its CPU
 * time per request. Each CPU figure is the one process's user + system time (wait4): the
 * stand-in is this program's child, never the processor's or curl's. Prints a table and one
 * JSON line; a benchmark, not a test.
 *   jobs_bench [--baseline-only] [--keep DIR] [GBATCH_PROCESSOR]
 * --baseline-only: only the comparison with curl (the processor's side of it included).
 * --keep DIR: the comparison's jobs file and curl config are left in DIR (jobs.jsonl and
 * curl.rc, its URLs naming the stand-in of this run), to profile either side on its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "median.h"
#include "fdio.h"
#include "stub_proc.h"

/* The baseline's runs: each side this many times, alternately; the medians are compared. */
#define BASELINE_ROUNDS 3
#define BASELINE_JOBS 4000
#define BASELINE_PARALLEL 8
#define CAPTURE_DEADLINE_NS (120 * GB_NS_PER_SEC)

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

static double
cpu_seconds(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
	    (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

/* Starts the processor over the jobs file against the API at base, stderr to /dev/null.
 * Returns its pid, or -1. */
static pid_t
spawn_processor(const char *proc, const char *base, const char *jobs, const char *out,
    unsigned parallel)
{
	char par[16];
	pid_t pid;

	snprintf(par, sizeof(par), "%u", parallel);
	if ((pid = fork()) != 0)
		return pid;
	int null = open("/dev/null", O_WRONLY);
	if (null >= 0)
		dup2(null, STDERR_FILENO);
	setenv("GEMINI_API_KEY", STUB_KEY, 1);
	setenv("GEMINI_API_BASE", base, 1);
	execl(proc, proc, "--jobs", jobs, "--output", out, "--parallel", par, "--rpm", "1000000",
	    "--tpm", "0", "--telemetry", "off", "--no-progress", (char *)NULL);
	_exit(127);
}

/* Waits for pid; fills wall seconds since t0 and its CPU seconds: user + system as wait4
 * reports them, the child's own and those of children it waited for (the processor and curl
 * start none). 0 when it exited 0, else -1. */
static int
wait_child(pid_t pid, uint64_t t0, double *seconds, double *cpu)
{
	struct rusage ru;
	int status;

	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return -1;
	*seconds = (double)(gb__clock_mono_ns() - t0) / 1e9;
	*cpu = cpu_seconds(&ru);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Runs the processor over the jobs file; fills wall and CPU seconds. 0 or -1. */
static int
run_processor(const char *proc, const struct stub_proc *stub, const char *jobs, const char *out,
    unsigned parallel, double *seconds, double *cpu)
{
	uint64_t t0 = gb__clock_mono_ns();
	pid_t pid = spawn_processor(proc, stub->base, jobs, out, parallel);

	return pid < 0 ? -1 : wait_child(pid, t0, seconds, cpu);
}

/* ---- the baseline: the processor's requests, sent by curl --parallel ---- */

/* What the processor sent, request by request, as this program's listener received it. */
struct capture {
	char path[256]; /* of the first request: "/v1beta/models/M:generateContent" */
	char **bodies;
	size_t n, cap;
	char *buf; /* the connection's bytes not yet taken (NUL-terminated) */
	size_t len;
	int continued; /* "100 Continue" sent for the request at the start of buf */
};

/* The answer to every captured request: three answers, so the processor asks nothing more
 * (every job of write_jobs has three questions). */
static const char capture_reply[] =
    "{\"candidates\": [{\"content\": {\"role\": \"model\", \"parts\": [{\"text\": "
    "\"[\\\"1\\\", \\\"2\\\", \\\"3\\\"]\"}]}, \"finishReason\": \"STOP\"}], "
    "\"usageMetadata\": {\"promptTokenCount\": 40, \"candidatesTokenCount\": 6, "
    "\"totalTokenCount\": 46}}";

/* Keeps the body of one request (len bytes) and answers it on fd, in one write (two would
 * meet Nagle's algorithm and the delayed ACK: 40 ms a request). 0 or -1. */
static int
capture_keep(struct capture *cp, int fd, const char *body, size_t len)
{
	char reply[512];
	int rl = snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nContent-Type: application/json"
	    "\r\nContent-Length: %zu\r\n\r\n%s", sizeof(capture_reply) - 1, capture_reply);

	if (rl < 0 || (size_t)rl >= sizeof(reply))
		return -1;
	if (cp->n == cp->cap) {
		size_t nc = cp->cap > 0 ? cp->cap * 2 : 1024;
		char **nb = realloc(cp->bodies, nc * sizeof(*nb));
		if (nb == NULL)
			return -1;
		cp->bodies = nb;
		cp->cap = nc;
	}
	if ((cp->bodies[cp->n] = strndup(body, len)) == NULL)
		return -1;
	cp->n++;
	return gb__write_all(fd, reply, (size_t)rl);
}

/* Takes the complete requests at the start of cp->buf: keeps their bodies and answers them
 * on fd. 0, or -1 on a request it cannot read. */
static int
capture_take(struct capture *cp, int fd)
{
	for (;;) {
		char *end = strstr(cp->buf, "\r\n\r\n"), *cl, *sp;
		size_t hl, bl;

		if (end == NULL)
			return 0;
		*end = '\0'; /* the head, for the searches below; put back after */
		cl = strcasestr(cp->buf, "\r\nContent-Length:");
		if (strncmp(cp->buf, "POST /", 6) != 0 || cl == NULL)
			return -1;
		bl = strtoul(cl + 17, NULL, 10);
		if (cp->path[0] == '\0' && (sp = strchr(cp->buf + 5, ' ')) != NULL &&
		    (size_t)(sp - cp->buf - 5) < sizeof(cp->path))
			memcpy(cp->path, cp->buf + 5, (size_t)(sp - cp->buf - 5));
		int expect = strcasestr(cp->buf, "\r\nExpect: 100-continue") != NULL;
		*end = '\r';
		hl = (size_t)(end - cp->buf) + 4;
		if (cp->len - hl < bl) {
			if (expect && !cp->continued) {
				cp->continued = 1;
				return gb__write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
			}
			return 0;
		}
		if (capture_keep(cp, fd, cp->buf + hl, bl) != 0)
			return -1;
		cp->continued = 0;
		cp->len -= hl + bl;
		memmove(cp->buf, cp->buf + hl + bl, cp->len + 1);
	}
}

/* Reads what came on fd into cp->buf. 1 while the connection is open, 0 at its end, -1. */
static int
capture_read(struct capture *cp, int fd)
{
	char *nb = realloc(cp->buf, cp->len + 65536 + 1);
	ssize_t r;

	if (nb == NULL)
		return -1;
	cp->buf = nb;
	if ((r = read(fd, cp->buf + cp->len, 65536)) < 0)
		return errno == EINTR ? 1 : -1;
	if (r == 0)
		return 0;
	cp->len += (size_t)r;
	cp->buf[cp->len] = '\0';
	if (memchr(cp->buf, '\0', cp->len) != NULL)
		return -1; /* a NUL would hide what follows from the searches */
	return capture_take(cp, fd) == 0 ? 1 : -1;
}

static int
listen_local(unsigned *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Runs the processor (--parallel 1) over the jobs file against a listener of this program
 * and keeps every request body it sends, in order. 0, or -1 with a message. */
static int
capture_requests(const char *proc, const char *jobs, const char *out, struct capture *cp)
{
	uint64_t deadline = gb__clock_mono_ns() + CAPTURE_DEADLINE_NS;
	int lfd, cfd = -1, status = 0, rc = -1;
	unsigned port;
	char base[64];
	pid_t pid;

	memset(cp, 0, sizeof(*cp));
	if ((lfd = listen_local(&port)) < 0) {
		perror("jobs_bench: listen");
		return -1;
	}
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
	if ((pid = spawn_processor(proc, base, jobs, out, 1)) < 0) {
		close(lfd);
		return -1;
	}
	while (gb__clock_mono_ns() < deadline) {
		struct pollfd p[2] = { { lfd, POLLIN, 0 }, { cfd, POLLIN, 0 } };
		if (waitpid(pid, &status, WNOHANG) == pid) {
			pid = 0;
			rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
			break;
		}
		if (poll(p, cfd >= 0 ? 2 : 1, 100) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			/* one connection at a time: a new one means the old one is done */
			if (cfd >= 0)
				close(cfd);
			cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			cp->len = 0;
			cp->continued = 0;
		} else if (cfd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    capture_read(cp, cfd) <= 0) {
			close(cfd);
			cfd = -1;
		}
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	if (cfd >= 0)
		close(cfd);
	close(lfd);
	if (rc != 0 || cp->n == 0 || cp->path[0] == '\0')
		fprintf(stderr, "jobs_bench: capturing the processor's requests failed (%zu kept)\n",
		    cp->n);
	return rc == 0 && cp->n > 0 && cp->path[0] != '\0' ? 0 : -1;
}

static void
capture_free(struct capture *cp)
{
	for (size_t i = 0; i < cp->n; i++)
		free(cp->bodies[i]);
	free(cp->bodies);
	free(cp->buf);
	memset(cp, 0, sizeof(*cp));
}

/* A config-file string: backslash and quote escaped, as curl reads them back. */
static void
put_quoted(FILE *f, const char *s)
{
	putc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			putc('\\', f);
		if (*s == '\n' || *s == '\r' || *s == '\t')
			fputs(*s == '\n' ? "\\n" : *s == '\r' ? "\\r" : "\\t", f);
		else
			putc(*s, f);
	}
	putc('"', f);
	putc('\n', f);
}

/* curl's config: every captured request as its own transfer, with the headers the
 * processor sends, each transfer's status and new connections written to stderr (the
 * answers go to stdout, /dev/null). */
static int
write_curl_config(const char *path, const struct stub_proc *stub, const struct capture *cp)
{
	FILE *f = fopen(path, "w");
	char url[512];

	if (f == NULL)
		return -1;
	snprintf(url, sizeof(url), "%s%s", stub->base, cp->path);
	fprintf(f, "parallel\nparallel-max = %d\n", BASELINE_PARALLEL);
	for (size_t i = 0; i < cp->n; i++) {
		fputs("url = ", f);
		put_quoted(f, url);
		fprintf(f, "header = \"x-goog-api-key: %s\"\n"
		    "header = \"Content-Type: application/json\"\n"
		    "user-agent = \"gbatch/0.1\"\ncompressed\n"
		    "write-out = \"%%{stderr}%%{http_code} %%{num_connects}\\n\"\n", STUB_KEY);
		fputs("data-binary = ", f);
		put_quoted(f, cp->bodies[i]);
		if (i + 1 < cp->n)
			fputs("next\n", f);
	}
	return fclose(f);
}

/* Runs curl over the config; fills wall and CPU seconds, the transfers that got a 200 and
 * the connections curl opened. 0 or -1. */
static int
run_curl(const char *config, const char *wout, double *seconds, double *cpu, size_t *ok,
    size_t *connections)
{
	uint64_t t0 = gb__clock_mono_ns();
	unsigned code, nconn;
	char line[512];
	FILE *f;
	pid_t pid;

	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int fd = open(wout, O_WRONLY | O_CREAT | O_TRUNC, 0600), null = open("/dev/null", O_WRONLY);
		if (fd < 0 || null < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		execlp("curl", "curl", "--no-progress-meter", "--config", config, (char *)NULL);
		perror("jobs_bench: curl");
		_exit(127);
	}
	if (wait_child(pid, t0, seconds, cpu) != 0 || (f = fopen(wout, "r")) == NULL)
		return -1;
	*ok = *connections = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%u %u", &code, &nconn) != 2) {
			fprintf(stderr, "curl: %s", line);
			continue;
		}
		*ok += code == 200;
		*connections += nconn;
	}
	fclose(f);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted content_hash of the stand-in's log entries [from, to), each a request that got
 * a 200 (an entry that did not is left out); *n gets their count. NULL out of memory. */
static const char **
hashes(const json_t *log, size_t from, size_t to, size_t *n)
{
	const char **h = calloc(to > from ? to - from : 1, sizeof(*h));

	*n = 0;
	for (size_t i = from; h != NULL && i < to; i++) {
		const json_t *e = json_array_get(log, i);
		if (json_integer_value(json_object_get(e, "status")) == 200 &&
		    json_is_string(json_object_get(e, "content_hash")))
			h[(*n)++] = json_string_value(json_object_get(e, "content_hash"));
	}
	if (h != NULL)
		qsort(h, *n, sizeof(*h), cmp_str);
	return h;
}

/* Whether the stand-in saw the same requests, answered 200, from both sides: log entries
 * [a, a + n) and [b, b + n) with the same content hashes. */
static int
same_requests(const json_t *log, size_t a, size_t b, size_t n)
{
	size_t na, nb;
	const char **ha = hashes(log, a, a + n, &na), **hb = hashes(log, b, b + n, &nb);
	int same = ha != NULL && hb != NULL && na == n && nb == n;

	for (size_t i = 0; same && i < n; i++)
		same = strcmp(ha[i], hb[i]) == 0;
	free(ha);
	free(hb);
	return same;
}

struct baseline {
	size_t requests, connections;
	double proc_cpu[BASELINE_ROUNDS], proc_s[BASELINE_ROUNDS];
	double curl_cpu[BASELINE_ROUNDS], curl_s[BASELINE_ROUNDS];
};

/* The median of one baseline figure's rounds (v is left as it is). */
static double
median(const double *v)
{
	double s[BASELINE_ROUNDS];

	memcpy(s, v, sizeof(s));
	return bench_median(s, BASELINE_ROUNDS);
}

/* One round: the processor over the jobs, then curl over the captured requests, on the same
 * stand-in; checks that the stand-in saw the same requests from both. 0 or -1. */
static int
baseline_round(const char *proc, const struct stub_proc *stub, const char *jobs,
    const char *out, const char *config, const char *wout, struct baseline *bl, int i)
{
	json_t *log = stub_requests(stub);
	size_t at = json_array_size(log), ok = 0, conns = 0;
	int rc;

	json_decref(log);
	if (run_processor(proc, stub, jobs, out, BASELINE_PARALLEL, &bl->proc_s[i],
	    &bl->proc_cpu[i]) != 0 || run_curl(config, wout, &bl->curl_s[i], &bl->curl_cpu[i], &ok,
	    &conns) != 0) {
		fprintf(stderr, "jobs_bench: baseline round %d failed\n", i + 1);
		return -1;
	}
	log = stub_requests(stub);
	rc = ok == bl->requests && json_array_size(log) == at + 2 * bl->requests &&
	    same_requests(log, at, at + bl->requests, bl->requests) ? 0 : -1;
	json_decref(log);
	if (rc != 0)
		fprintf(stderr, "jobs_bench: baseline round %d: curl's %zu answered requests are not "
		    "the processor's %zu\n", i + 1, ok, bl->requests);
	bl->connections = conns;
	return rc;
}

/* The baseline against the stand-in stub: BASELINE_JOBS jobs at --parallel 8, and curl
 * sending what the processor sent, BASELINE_ROUNDS times each. Returns the JSON object of
 * the figures (new reference), or NULL. */
static json_t *
baseline(const char *proc, const struct stub_proc *stub, const char *dir, const char *keep)
{
	char jobs[256], out[300], config[300], wout[300];
	struct baseline bl = { 0 };
	struct capture cp = { 0 };
	json_t *fig = NULL;
	double pc, cc;
	int rc = -1;

	snprintf(jobs, sizeof(jobs), "%s/gbatch-jobs-bench-%d-curl.jsonl", dir, (int)getpid());
	snprintf(out, sizeof(out), "%s.out", jobs);
	snprintf(config, sizeof(config), "%s.curlrc", jobs);
	if (keep != NULL) {
		snprintf(jobs, sizeof(jobs), "%s/jobs.jsonl", keep);
		snprintf(config, sizeof(config), "%s/curl.rc", keep);
	}
	snprintf(wout, sizeof(wout), "%s.w", jobs);
	if (write_jobs(jobs, BASELINE_JOBS) != 0 || capture_requests(proc, jobs, out, &cp) != 0)
		goto out;
	bl.requests = cp.n;
	if (write_curl_config(config, stub, &cp) != 0)
		goto out;
	for (int i = 0; i < BASELINE_ROUNDS; i++)
		if (baseline_round(proc, stub, jobs, out, config, wout, &bl, i) != 0)
			goto out;
	pc = median(bl.proc_cpu) / (double)bl.requests * 1e6;
	cc = median(bl.curl_cpu) / (double)bl.requests * 1e6;
	fig = json_pack("{s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:i, s:f}", "parallel",
	    BASELINE_PARALLEL, "requests", (int)bl.requests, "rounds", BASELINE_ROUNDS,
	    "processor_cpu_us_per_request", pc, "processor_requests_per_s",
	    (double)bl.requests / median(bl.proc_s), "curl_cpu_us_per_request", cc,
	    "curl_requests_per_s", (double)bl.requests / median(bl.curl_s), "curl_connections",
	    (int)bl.connections, "processor_over_curl_cpu", pc / cc);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "jobs_bench: the curl baseline failed\n");
	capture_free(&cp);
	if (keep == NULL) {
		unlink(jobs);
		unlink(config);
	}
	unlink(out);
	unlink(wout);
	return fig;
}

int
main(int argc, char **argv)
{
	const char *proc = GBATCH_PROCESSOR, *keep = NULL;
	int only = 0;
	static const unsigned pars[] = { 1, 8, 64 };
	/* Jobs per run: enough for a few seconds each. */
	static const unsigned jobs_fast[] = { 2000, 4000, 4000 };
	static const unsigned jobs_slow[] = { 15, 100, 600 };
	struct row rows[6];
	const char *tmp = getenv("TMPDIR");
	char jobs[256], out[300];
	const char *dir = tmp != NULL && *tmp != '\0' ? tmp : "/tmp";
	size_t nrows = 0;
	json_t *all = json_array(), *base = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--baseline-only") == 0)
			only = 1;
		else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
			keep = argv[++i];
		else if (argv[i][0] != '-')
			proc = argv[i];
		else {
			fprintf(stderr, "usage: jobs_bench [--baseline-only] [--keep DIR] "
			    "[GBATCH_PROCESSOR]\n");
			return 2;
		}
	}
	for (int l = 0; l < (only ? 1 : 2); l++) {
		const char *args[] = { "--latency", l == 0 ? "0" : "200ms", NULL };
		struct stub_proc stub;
		if (stub_start(&stub, args) != 0)
			return 1;
		for (size_t i = 0; !only && i < 3; i++) {
			struct row *r = &rows[nrows];
			json_t *before = stub_requests(&stub), *after;
			r->latency = l == 0 ? "0" : "200ms";
			r->parallel = pars[i];
			r->jobs = l == 0 ? jobs_fast[i] : jobs_slow[i];
			snprintf(jobs, sizeof(jobs), "%s/gbatch-jobs-bench-%d.jsonl", dir, (int)getpid());
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
		if (l == 0 && (base = baseline(proc, &stub, dir, keep)) == NULL) {
			stub_stop(&stub);
			return 1;
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
	printf("\nthe same %d requests at --parallel %d, median of %d runs each: processor %.1f us "
	    "CPU/request (%.0f requests/s), curl --parallel %.1f us CPU/request (%.0f requests/s, "
	    "%d connections): %.2fx\n",
	    (int)json_integer_value(json_object_get(base, "requests")), BASELINE_PARALLEL,
	    BASELINE_ROUNDS,
	    json_real_value(json_object_get(base, "processor_cpu_us_per_request")),
	    json_real_value(json_object_get(base, "processor_requests_per_s")),
	    json_real_value(json_object_get(base, "curl_cpu_us_per_request")),
	    json_real_value(json_object_get(base, "curl_requests_per_s")),
	    (int)json_integer_value(json_object_get(base, "curl_connections")),
	    json_real_value(json_object_get(base, "processor_over_curl_cpu")));
	json_t *root = json_pack("{s:s, s:o, s:o}", "bench", "jobs", "runs", all, "curl_baseline",
	    base);
	char *line = json_dumps(root, JSON_COMPACT);
	printf("%s\n", line != NULL ? line : "{}");
	free(line);
	json_decref(root);
	return 0;
}
