/*
 * memory_bench.c - what a real gbatch-collector process holds in memory under a burst of
 * distinct names, measured from /proc/PID/status (VmHWM, VmRSS) beside its idle baseline:
 *   (a) N distinct counter names, each with two fixed metadata tags, written through the ring
 *       at --flush-interval 10s with --statsd to a local UDP receiver: the peak, and the RSS
 *       once a later interval has flushed (the tables shrink then); by default, and again
 *       with --max-contexts 0 (no cap: what the shrink gives back);
 *   (b) --console summary with S distinct timing scopes: the peak, the summary printed.
 * The writes are paced to the drain (the ring is never more than half full), so nothing is
 * dropped; drops are counted and printed all the same. A program, not a test.
 *
 *   memory_bench [--names N] [--scopes S] [--ring-size BYTES]  (defaults 1000000, 120000, 8MiB)
 * The collector's RSS includes the pages of the ring it has read (at most the ring's size).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "parse.h"
#include "record.h"
#include "ring.h"

#define TARGET_KIB (64 * 1024)
#define DEADLINE_NS (120ull * GB_NS_PER_SEC)

/* ---- a UDP receiver counting lines by prefix ---- */

struct receiver {
	int fd;
	pthread_t th;
	atomic_bool stop;
	pthread_mutex_t mu;
	unsigned long long burst_lines; /* lines of the burst's counters */
	double contexts_dropped;        /* sum of gbatch.collector.contexts_dropped */
	char marker[64];                /* a line prefix waited for */
	bool marker_seen;
};

static double
value_after(const char *line, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);
	char num[32];
	size_t n = 0;

	if (len <= pl || memcmp(line, prefix, pl) != 0)
		return 0;
	for (size_t i = pl; i < len && line[i] != '|' && n + 1 < sizeof(num); i++)
		num[n++] = line[i];
	num[n] = '\0';
	return strtod(num, NULL);
}

static void
take_line(struct receiver *rv, const char *l, size_t len)
{
	static const char burst[] = "gbatch.bench.counter_";

	if (len >= sizeof(burst) - 1 && memcmp(l, burst, sizeof(burst) - 1) == 0)
		rv->burst_lines++;
	rv->contexts_dropped += value_after(l, len, "gbatch.collector.contexts_dropped:");
	if (rv->marker[0] != '\0' && len >= strlen(rv->marker) &&
	    memcmp(l, rv->marker, strlen(rv->marker)) == 0)
		rv->marker_seen = true;
}

/* Reads what is there; waits up to wait_ms for the first datagram. Returns false when none. */
static bool
receive_some(struct receiver *rv, int wait_ms)
{
	static char buf[65536];
	struct pollfd p = { .fd = rv->fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, wait_ms) <= 0)
		return false;
	while ((n = recv(rv->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		const char *s = buf, *end = buf + n;

		pthread_mutex_lock(&rv->mu);
		while (s < end) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);

			take_line(rv, s, len);
			s += len + 1;
		}
		pthread_mutex_unlock(&rv->mu);
	}
	return true;
}

static void *
receive_run(void *arg)
{
	struct receiver *rv = arg;

	while (!atomic_load(&rv->stop))
		receive_some(rv, 50);
	while (receive_some(rv, 0)) /* what the collector sent before it exited */
		;
	return NULL;
}

static uint16_t
receiver_start(struct receiver *rv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int sz = 64 << 20;

	memset(rv, 0, sizeof(*rv));
	pthread_mutex_init(&rv->mu, NULL);
	rv->fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (setsockopt(rv->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(rv->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (bind(rv->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(rv->fd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("memory_bench: bind");
		exit(1);
	}
	pthread_create(&rv->th, NULL, receive_run, rv);
	return ntohs(sa.sin_port);
}

static void
receiver_stop(struct receiver *rv)
{
	atomic_store(&rv->stop, true);
	pthread_join(rv->th, NULL);
	close(rv->fd);
}

static void
set_marker(struct receiver *rv, const char *prefix)
{
	pthread_mutex_lock(&rv->mu);
	snprintf(rv->marker, sizeof(rv->marker), "%s", prefix);
	rv->marker_seen = false;
	pthread_mutex_unlock(&rv->mu);
}

static bool
marker_seen(struct receiver *rv)
{
	bool seen;

	pthread_mutex_lock(&rv->mu);
	seen = rv->marker_seen;
	pthread_mutex_unlock(&rv->mu);
	return seen;
}

/* ---- the collector process ---- */

/* A field of /proc/PID/status in KiB, or -1. */
static long
status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, fl) == 0 && line[fl] == ':')
			v = strtol(line + fl + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Starts gbatch-collector with argv (NULL-terminated); its stdout goes to out_fd. */
static pid_t
spawn(char *const *argv, int out_fd)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("memory_bench: fork");
		exit(1);
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(out_fd >= 0 ? out_fd : devnull, STDOUT_FILENO);
		execv(argv[0], argv);
		perror("memory_bench: exec gbatch-collector");
		_exit(127);
	}
	return pid;
}

static int
stop(pid_t pid)
{
	int st = 0;

	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void
wait_or_die(bool (*done)(void *), void *ctx, const char *what)
{
	uint64_t end = gb__clock_mono_ns() + DEADLINE_NS;
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	while (!done(ctx)) {
		if (gb__clock_mono_ns() > end) {
			fprintf(stderr, "memory_bench: no %s within %llu s\n", what,
			    (unsigned long long)(DEADLINE_NS / GB_NS_PER_SEC));
			exit(1);
		}
		nanosleep(&ts, NULL);
	}
}

/* ---- the producer ---- */

static bool
ring_empty(void *ctx)
{
	gb_ring_stats st;

	gb__ring_stats(ctx, &st);
	return st.tail == st.head;
}

/* Writes one record, first waiting while the ring is more than half full. */
static void
put(gb_ring *p, const gb_record *r, uint64_t capacity)
{
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t len = gb__rec_encode(r, buf, sizeof(buf));
	struct timespec ts = { 0, 100 * 1000 };
	gb_ring_stats st;

	for (gb__ring_stats(p, &st); st.tail - st.head > capacity / 2; gb__ring_stats(p, &st)) {
		gb__ring_heartbeat(p);
		nanosleep(&ts, NULL);
	}
	(void)gb__ring_write(p, GB_RING_TYPE_TELEMETRY, buf, len);
}

static void
put_named(gb_ring *p, enum gb_rec_kind kind, const char *scope, size_t parent_len,
    uint64_t capacity)
{
	static const gb_rec_kv meta[] = { { "model", 5, "gemini-2.0-flash", 16 },
		{ "outcome", 7, "ok", 2 } };
	gb_record r = { .kind = (uint8_t)kind, .value = kind == GB_REC_TIMING ? 0.25 : 1,
		.depth = parent_len > 0, .scope = scope, .scope_len = strlen(scope),
		.parent_len = parent_len, .meta = meta, .n_meta = 2 };

	put(p, &r, capacity);
}

/* ---- the runs ---- */

struct figures {
	long idle_kib, peak_kib, after_kib, after_anon_kib;
	unsigned long long lines;
	double contexts_dropped;
	uint64_t ring_dropped;
	double write_s;
	int rc;
};

static gb_ring *
make_ring(const char *name, uint64_t size)
{
	gb_ring_opts ro;
	gb_ring *p;
	char err[256];

	gb__ring_opts_init(&ro);
	ro.capacity = size;
	gb__ring_unlink(name, err, sizeof(err));
	if (gb__ring_open_producer(&p, name, &ro, err, sizeof(err)) != GB_RING_OK) {
		fprintf(stderr, "memory_bench: %s\n", err);
		exit(1);
	}
	return p;
}

/* A warm-up record drained: the collector is attached and running. */
static void
await_attached(gb_ring *p, uint64_t size)
{
	put_named(p, GB_REC_COUNTER, "bench.warmup", 0, size);
	wait_or_die(ring_empty, p, "drain of the warm-up record");
}

/* Writes the counter bench.marker_<m> every second until a flush brings it back (one written
 * while the interval is full is refused by the context cap). */
static void
await_marker(struct receiver *rv, gb_ring *p, uint64_t size, int m)
{
	uint64_t end = gb__clock_mono_ns() + DEADLINE_NS;
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	char scope[32], line[40];

	snprintf(scope, sizeof(scope), "bench.marker_%d", m);
	snprintf(line, sizeof(line), "gbatch.%s:", scope);
	set_marker(rv, line);
	while (!marker_seen(rv)) {
		uint64_t next = gb__clock_mono_ns() + GB_NS_PER_SEC;

		if (gb__clock_mono_ns() > end) {
			fprintf(stderr, "memory_bench: no flush of %s\n", scope);
			exit(1);
		}
		put_named(p, GB_REC_COUNTER, scope, 0, size);
		while (!marker_seen(rv) && gb__clock_mono_ns() < next)
			nanosleep(&ts, NULL);
	}
}

/* The collector's memory now and at its peak, what its ring dropped, then its exit status. */
static void
finish_run(struct figures *f, pid_t pid, gb_ring *p)
{
	gb_ring_stats st;

	f->after_kib = status_kib(pid, "VmRSS");
	f->after_anon_kib = status_kib(pid, "RssAnon");
	f->peak_kib = status_kib(pid, "VmHWM");
	gb__ring_stats(p, &st);
	f->ring_dropped = st.dropped_records;
	f->rc = stop(pid);
}

static void
run_names(char *max_contexts, uint64_t names, uint64_t size, struct figures *f)
{
	char name[64], url[64], scope[64];
	struct receiver rv;
	gb_ring *p;
	pid_t pid;

	snprintf(name, sizeof(name), "membench%da%s", (int)getpid(), max_contexts);
	p = make_ring(name, size);
	snprintf(url, sizeof(url), "udp://127.0.0.1:%u", receiver_start(&rv));
	/* --max-names 0: the names cap alone would fold the burst into <prefix>other; this
	 * measures the context cap */
	char *argv[] = { GBATCH_COLLECTOR, "--ring", name, "--statsd", url, "--flush-interval",
		"10s", "--console", "off", "--max-contexts", max_contexts, "--max-names", "0", NULL };
	pid = spawn(argv, -1);
	await_attached(p, size);
	f->idle_kib = status_kib(pid, "VmRSS");
	uint64_t t0 = gb__clock_mono_ns();
	for (uint64_t i = 0; i < names; i++) {
		snprintf(scope, sizeof(scope), "bench.counter_%07llu", (unsigned long long)i);
		put_named(p, GB_REC_COUNTER, scope, 0, size);
	}
	f->write_s = (double)(gb__clock_mono_ns() - t0) / 1e9;
	wait_or_die(ring_empty, p, "drain of the burst");
	/* the first marker's flush sends the burst (or follows it); the second's comes one
	 * interval later, which needed nothing: the tables have shrunk when it arrives */
	await_marker(&rv, p, size, 1);
	await_marker(&rv, p, size, 2);
	finish_run(f, pid, p);
	receiver_stop(&rv);
	f->lines = rv.burst_lines;
	f->contexts_dropped = rv.contexts_dropped;
	gb__ring_close(p);
	gb__ring_unlink(name, (char[256]){ 0 }, 256);
}

struct summary_reader {
	int fd;
	atomic_ullong lines;
	atomic_bool done; /* a report's only metric line (the warm-up counter) was read */
};

static void *
summary_read(void *arg)
{
	struct summary_reader *sr = arg;
	static char buf[65536];
	static const char last[] = "  bench.warmup: count=";
	char tail[sizeof(last)] = { 0 };
	ssize_t n;

	while ((n = read(sr->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			memmove(tail, tail + 1, sizeof(tail) - 2);
			tail[sizeof(tail) - 2] = buf[i];
			if (buf[i] == '\n')
				atomic_fetch_add(&sr->lines, 1);
			if (memcmp(tail, last, sizeof(last) - 1) == 0)
				atomic_store(&sr->done, true);
		}
	}
	return NULL;
}

static bool
summary_done(void *ctx)
{
	return atomic_load(&((struct summary_reader *)ctx)->done);
}

static void
run_scopes(uint64_t scopes, uint64_t size, struct figures *f)
{
	char name[64], url[64], scope[64];
	struct receiver rv;
	struct summary_reader sr = { 0 };
	int pfd[2];
	pthread_t th;
	gb_ring *p;
	pid_t pid;

	snprintf(name, sizeof(name), "membench%db", (int)getpid());
	p = make_ring(name, size);
	snprintf(url, sizeof(url), "udp://127.0.0.1:%u", receiver_start(&rv));
	if (pipe(pfd) < 0) {
		perror("memory_bench: pipe");
		exit(1);
	}
	char *argv[] = { GBATCH_COLLECTOR, "--ring", name, "--statsd", url, "--console", "summary",
		NULL };
	pid = spawn(argv, pfd[1]);
	close(pfd[1]);
	sr.fd = pfd[0];
	pthread_create(&th, NULL, summary_read, &sr);
	await_attached(p, size);
	f->idle_kib = status_kib(pid, "VmRSS");
	uint64_t t0 = gb__clock_mono_ns();
	put_named(p, GB_REC_TIMING, "bench", 0, size);
	for (uint64_t i = 0; i < scopes; i++) {
		snprintf(scope, sizeof(scope), "bench.scope_%06llu", (unsigned long long)i);
		put_named(p, GB_REC_TIMING, scope, 5, size);
	}
	f->write_s = (double)(gb__clock_mono_ns() - t0) / 1e9;
	wait_or_die(ring_empty, p, "drain of the scopes");
	kill(pid, SIGUSR1); /* a report: its tree is part of the peak */
	wait_or_die(summary_done, &sr, "summary on SIGUSR1");
	finish_run(f, pid, p);
	pthread_join(th, NULL);
	close(pfd[0]);
	receiver_stop(&rv);
	f->lines = atomic_load(&sr.lines);
	gb__ring_close(p);
	gb__ring_unlink(name, (char[256]){ 0 }, 256);
}

static const char *
verdict(long kib)
{
	return kib >= 0 && kib <= TARGET_KIB ? "ok" : "OVER";
}

static void
print_names(const char *what, uint64_t names, const struct figures *f, bool target)
{
	char t[40] = "";

	if (target)
		snprintf(t, sizeof(t), " (target <= 64 MiB: %s)", verdict(f->peak_kib));
	printf("(a) %-22s %7llu names in %5.2f s: idle %6.1f MiB, peak (VmHWM) %6.1f MiB%s, "
	    "after the burst %6.1f MiB (%.1f MiB private); counters sent %llu, contexts_dropped "
	    "%.0f, ring drops %llu, exit %d\n", what, (unsigned long long)names, f->write_s,
	    f->idle_kib / 1024.0, f->peak_kib / 1024.0, t, f->after_kib / 1024.0,
	    f->after_anon_kib / 1024.0, f->lines, f->contexts_dropped,
	    (unsigned long long)f->ring_dropped, f->rc);
}

static void
print_all(uint64_t size, uint64_t names, uint64_t scopes, const struct figures *cp,
    const struct figures *nc, const struct figures *sm)
{
	const struct figures capped = *cp, nocap = *nc, summary = *sm;

	printf("memory_bench: gbatch-collector RSS from /proc/PID/status, ring of %llu bytes, "
	    "writes paced to the drain\n", (unsigned long long)size);
	print_names("--max-contexts 20000", names, &capped, true);
	print_names("--max-contexts 0", names, &nocap, false);
	printf("(b) --console summary      %7llu scopes in %5.2f s: idle %6.1f MiB, peak (VmHWM) "
	    "%6.1f MiB (target <= 64 MiB: %s), after the report %6.1f MiB (%.1f MiB private); "
	    "%llu summary lines printed (SIGUSR1, exit), ring drops %llu, exit %d\n",
	    (unsigned long long)scopes, summary.write_s, summary.idle_kib / 1024.0,
	    summary.peak_kib / 1024.0, verdict(summary.peak_kib), summary.after_kib / 1024.0, summary.after_anon_kib / 1024.0,
	    summary.lines, (unsigned long long)summary.ring_dropped, summary.rc);
	printf("{\"bench\":\"memory\",\"ring_bytes\":%llu,\"target_kib\":%d,"
	    "\"names\":%llu,\"capped\":{\"idle_kib\":%ld,\"peak_kib\":%ld,\"after_kib\":%ld,"
	    "\"sent\":%llu,\"contexts_dropped\":%.0f,\"ring_dropped\":%llu},"
	    "\"nocap\":{\"idle_kib\":%ld,\"peak_kib\":%ld,\"after_kib\":%ld,\"sent\":%llu,"
	    "\"ring_dropped\":%llu},\"scopes\":%llu,\"summary\":{\"idle_kib\":%ld,\"peak_kib\":%ld,"
	    "\"ring_dropped\":%llu},\"ok\":%s}\n", (unsigned long long)size, TARGET_KIB,
	    (unsigned long long)names, capped.idle_kib, capped.peak_kib, capped.after_kib,
	    capped.lines, capped.contexts_dropped, (unsigned long long)capped.ring_dropped,
	    nocap.idle_kib, nocap.peak_kib, nocap.after_kib, nocap.lines,
	    (unsigned long long)nocap.ring_dropped, (unsigned long long)scopes, summary.idle_kib,
	    summary.peak_kib, (unsigned long long)summary.ring_dropped,
	    capped.peak_kib <= TARGET_KIB && summary.peak_kib <= TARGET_KIB ? "true" : "false");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "names", required_argument, NULL, 'n' },
		{ "scopes", required_argument, NULL, 's' },
		{ "ring-size", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t names = 1000000, scopes = 120000, size = 8u << 20;
	struct figures capped = { 0 }, nocap = { 0 }, summary = { 0 };
	char err[256];
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		uint64_t *v = o == 'n' ? &names : o == 's' ? &scopes : &size;

		if (o != '?' && gb__parse_uint(optarg, o == 'r' ? 65536 : 1, o == 'r' ? 1ull << 30 :
		    100000000, v, err, sizeof(err)) == 0)
			continue;
		fprintf(stderr, "usage: memory_bench [--names N] [--scopes S] [--ring-size BYTES]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0); /* the collectors' log lines (stderr) come first */
	run_names("20000", names, size, &capped);
	run_names("0", names, size, &nocap);
	run_scopes(scopes, size, &summary);
	print_all(size, names, scopes, &capped, &nocap, &summary);
	return capped.rc != 0 || nocap.rc != 0 || summary.rc != 0;
}
