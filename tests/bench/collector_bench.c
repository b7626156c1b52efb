/*
 * collector_bench.c - how fast the collector turns a full ring into DogStatsD datagrams on
 * loopback: the same drain (ring read, record decode, sanitise, format) once packed into
 * datagrams of up to 1432 B, once with one datagram per record, and once packed beside a
 * console sink in lines mode whose stdout pipe nobody reads (what a stalled console costs the
 * drain), and then samples of distinct values as DogStatsD distributions, once one line per
 * sample and once with --pack-values (every sample of the context in messages "n:v1:v2|d"),
 * in one run; with, between the first two, real tag variety (one call site with 100 values
 * of a tag, ten call sites with 100 each, written in a fixed random order) and a plain
 * sendmmsg loop sending the drain's own datagrams on the same kind of socket, the baseline of
 * its datagram rate. A receiver thread counts what arrives so loss is reported, not guessed;
 * in the two distribution runs it also reads every value back and checks each sample arrived
 * exactly once. A program, not a test; run it on an otherwise idle machine with at least two cores
 * (the receiver polls on one).
 *
 *   collector_bench [--records N] [--ring-size BYTES] [--only RUN]   (2000000, 4MiB)
 * --only runs one of packed, values100, sites10x100, sendmmsg (for a profiler) and prints its
 * line alone.
 * The peak RSS it prints is the whole process: the collector side plus the producer's own
 * mapping of the ring.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dispatch.h"
#include "parse.h"
#include "record.h"
#include "ring.h"

struct receiver {
	int fd;
	atomic_bool stop;
	atomic_ullong lines, bytes, datagrams;
	uint8_t *seen;  /* the distribution runs: how often sample i (i / 1000 ms) arrived */
	size_t n_seen;
	unsigned long long samples, bad; /* values read; values that are no sample of the run */
};

/* Reads every value of the lines in b (packed or not) into rv->seen. */
static void
note_values(struct receiver *rv, const char *b, size_t len)
{
	const char *end = b + len;

	for (const char *p = b; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *bar = memchr(p, '|', (size_t)((nl ? nl : end) - p));
		const char *v = memchr(p, ':', (size_t)((nl ? nl : end) - p));

		while (v != NULL && bar != NULL && v < bar) {
			char *after;
			double x = strtod(v + 1, &after);
			long long i = llround(x * 1000);

			if (i >= 0 && (size_t)i < rv->n_seen && rv->seen[i] < 255)
				rv->seen[i]++;
			else
				rv->bad++;
			rv->samples++;
			v = *after == ':' ? after : NULL;
		}
		p = nl ? nl + 1 : end;
	}
}

/* Polls without sleeping: a receiver that sleeps makes every datagram pay for a wake-up,
 * which measures the scheduler, not the collector. */
static void *
receive(void *arg)
{
	enum { VLEN = 64 };
	struct receiver *rv = arg;
	static char bufs[VLEN][2048];
	struct mmsghdr m[VLEN];
	struct iovec iov[VLEN];

	for (int i = 0; i < VLEN; i++) {
		iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = sizeof(bufs[i]) };
		m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	while (!atomic_load_explicit(&rv->stop, memory_order_relaxed)) {
		int n = recvmmsg(rv->fd, m, VLEN, MSG_DONTWAIT, NULL);
		unsigned long long lines = 0, bytes = 0;

		if (n <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			const char *b = bufs[i];

			for (unsigned j = 0; j < m[i].msg_len; j++)
				lines += b[j] == '\n';
			bytes += m[i].msg_len;
			if (rv->seen != NULL)
				note_values(rv, b, m[i].msg_len);
		}
		atomic_fetch_add(&rv->lines, lines);
		atomic_fetch_add(&rv->bytes, bytes);
		atomic_fetch_add(&rv->datagrams, (unsigned long long)n);
	}
	return NULL;
}

/* Keeps the drain and the receiver on their own CPUs when there are two: left to the
 * scheduler they share one now and then, and the figure measures that instead. */
static void
pin(pthread_t th, int cpu)
{
	cpu_set_t cs;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&cs);
	CPU_SET(cpu, &cs);
	pthread_setaffinity_np(th, sizeof(cs), &cs);
}

static uint16_t
receiver_start(struct receiver *rv, pthread_t *th)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int sz = 64 << 20;

	rv->fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (setsockopt(rv->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(rv->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (bind(rv->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(rv->fd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("collector_bench: bind");
		exit(1);
	}
	pthread_create(th, NULL, receive, rv);
	pin(*th, 1);
	pin(pthread_self(), 0);
	return ntohs(sa.sin_port);
}

/* The records of the variety runs: sites call sites (scopes under one parent) times values
 * values of one tag, each encoded once, written in a fixed pseudo-random order. One site with
 * one value is the packed run's record. */
#define MAX_VARIETY 1000
struct variety {
	size_t n;
	uint8_t rec[MAX_VARIETY][192];
	size_t len[MAX_VARIETY];
	uint64_t seq; /* xorshift64 state */
};

static void
variety_init(struct variety *v, size_t sites, size_t values)
{
	static const char *const site[] = { "attempt", "request", "upload", "parse", "retry",
		"poll", "fetch", "check", "render", "write" };

	v->n = 0;
	v->seq = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < sites && i < sizeof(site) / sizeof(site[0]); i++) {
		for (size_t j = 0; j < values && v->n < MAX_VARIETY; j++) {
			char scope[64], count[24];
			int sl = snprintf(scope, sizeof(scope), "batch.total_processing.batch.%s", site[i]);
			int cl = values == 1 ? snprintf(count, sizeof(count), "5") :
			    snprintf(count, sizeof(count), "%zu", j);
			gb_rec_kv meta[] = { { "question_count", 14, count, (size_t)cl },
				{ "model", 5, "gemini-2.0-flash", 16 } };
			gb_record r = { .kind = GB_REC_TIMING, .value = 0.1234, .depth = 1,
				.scope = scope, .scope_len = (size_t)sl, .parent_len = 22, .meta = meta,
				.n_meta = 2 };

			v->len[v->n] = gb__rec_encode(&r, v->rec[v->n], sizeof(v->rec[0]));
			v->n++;
		}
	}
}

static const uint8_t *
variety_next(struct variety *v, size_t *len)
{
	size_t i;

	v->seq ^= v->seq << 13;
	v->seq ^= v->seq >> 7;
	v->seq ^= v->seq << 17;
	i = (size_t)(v->seq % v->n);
	*len = v->len[i];
	return v->rec[i];
}

/* Fills the ring with copies of one encoded timing until it is full; returns how many. With
 * distinct set, record i of the run instead holds (first + i) / 10^6 s, (first + i) / 1000 ms
 * once sent, so the receiver can tell every sample apart. */
static size_t
fill(gb_ring *p, const uint8_t *rec, size_t len, size_t max, gb_record *distinct, size_t first,
    struct variety *v)
{
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t n = 0;

	while (n < max) {
		if (v != NULL) {
			rec = variety_next(v, &len);
		} else if (distinct != NULL) {
			distinct->value = (double)(first + n) / 1e6;
			len = gb__rec_encode(distinct, buf, sizeof(buf));
			rec = buf;
		}
		if (gb__ring_write(p, GB_RING_TYPE_TELEMETRY, rec, len) != GB_RING_OK)
			break;
		n++;
	}
	return n;
}

/* How one run drains: datagrams packed with lines (or one per record), a stalled console
 * beside it, or distinct samples as distributions, packed many to a message or not. */
struct mode {
	bool batched;     /* lines packed into datagrams of up to 1432 B */
	int console_fd;   /* where a console sink in lines mode writes, or -1 for none */
	bool distinct;    /* distinct values, sent as "d", each checked at the receiver */
	bool pack_values; /* --pack-values */
	struct variety *variety; /* records from this set instead of one */
};

struct one_each {
	gb_dispatch *d;
};

/* The unpacked variant: the same dispatch, then the datagram leaves at once. */
static void
dispatch_and_send(void *ctx, uint16_t type, const uint8_t *payload, size_t len)
{
	struct one_each *o = ctx;

	gb__dispatch_payload(o->d, type, payload, len);
	gb__statsd_flush(o->d->statsd);
}

static double
thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct result {
	size_t records;
	double wall_s, cpu_s;
	gb_statsd_stats st;
	unsigned long long received;
	uint64_t console_dropped;
	bool checked;                     /* the distribution runs: */
	unsigned long long samples;       /* values received */
	size_t once, missing, repeated;   /* samples seen once, never, more than once */
	unsigned long long bad;           /* values that are no sample of the run */
};

/* Counts what the receiver saw of each sample. */
static void
tally(const struct receiver *rv, struct result *res)
{
	res->checked = true;
	res->samples = rv->samples;
	res->bad = rv->bad;
	for (size_t i = 0; i < rv->n_seen; i++) {
		if (rv->seen[i] == 0)
			res->missing++;
		else if (rv->seen[i] == 1)
			res->once++;
		else
			res->repeated++;
	}
}

static void
run(gb_ring *prod, gb_ring *cons, const struct mode *mode, size_t total, struct result *res)
{
	const gb_rec_kv meta[] = { { "question_count", 14, "5", 1 }, { "model", 5, "gemini-2.0-flash", 16 } };
	const char scope[] = "batch.total_processing.batch.attempt";
	gb_record r = { .kind = GB_REC_TIMING, .value = 0.1234, .depth = 1, .scope = scope,
		.scope_len = sizeof(scope) - 1, .parent_len = 22, .meta = meta, .n_meta = 2 };
	uint8_t rec[GB_REC_MAX_SIZE];
	size_t len = gb__rec_encode(&r, rec, sizeof(rec));
	struct receiver rv = { 0 };
	pthread_t th;
	char url[64], err[256];
	gb_statsd_target t;

	if (mode->distinct && (rv.seen = calloc(total, 1)) == NULL) {
		fprintf(stderr, "collector_bench: out of memory\n");
		exit(1);
	}
	rv.n_seen = mode->distinct ? total : 0;
	snprintf(url, sizeof(url), "udp://127.0.0.1:%u", receiver_start(&rv, &th));
	gb__statsd_parse_url(url, &t, err, sizeof(err));
	gb_statsd_config cfg = { .target = &t,
		.timing = mode->distinct ? GB_STATSD_TIMING_D : GB_STATSD_TIMING_MS,
		.pack_values = mode->pack_values };
	gb_statsd_sink *s = gb__statsd_new(&cfg, err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "collector_bench: %s\n", err);
		exit(1);
	}
	gb_dispatch d = { .statsd = s };
	struct one_each o = { &d };

	if (mode->console_fd >= 0 &&
	    (d.console = gb__console_new(GB_CONSOLE_LINES, mode->console_fd, 0)) == NULL) {
		fprintf(stderr, "collector_bench: out of memory\n");
		exit(1);
	}

	memset(res, 0, sizeof(*res));
	while (res->records < total) {
		size_t n = fill(prod, rec, len, total - res->records, mode->distinct ? &r : NULL,
		    res->records, mode->variety);
		uint64_t t0 = gb__clock_mono_ns();
		double c0 = thread_cpu_s();
		size_t got = 0;

		while (got < n)
			got += mode->batched ? gb__ring_read(cons, gb__dispatch_payload, &d, 4096) :
			    gb__ring_read(cons, dispatch_and_send, &o, 4096);
		/* one flush interval per ring: what --pack-values gathered leaves here */
		gb__statsd_flush_aggregates(s);
		res->wall_s += (double)(gb__clock_mono_ns() - t0) / 1e9;
		res->cpu_s += thread_cpu_s() - c0;
		res->records += n;
	}
	gb__statsd_get_stats(s, &res->st);
	if (d.console != NULL)
		res->console_dropped = gb__console_lines_dropped(d.console);
	gb__console_free(d.console);
	/* let the receiver catch up, then stop it */
	for (int i = 0; i < 50 && atomic_load(&rv.lines) < res->st.lines; i++)
		usleep(20000);
	atomic_store(&rv.stop, true);
	pthread_join(th, NULL);
	close(rv.fd);
	res->received = atomic_load(&rv.lines);
	if (mode->distinct)
		tally(&rv, res);
	free(rv.seen);
	gb__statsd_free(s);
}

/* ---- the baseline: a plain sendmmsg loop sending the drain's own datagrams ---- */

#define NCAP 2048     /* datagrams captured, sent round and round */
#define BASE_DEPTH 64 /* datagrams per sendmmsg call */

struct capture {
	char (*d)[GB_STATSD_UDP_MAX];
	size_t len[NCAP];
	size_t n;
};

static int
capture_send(void *ctx, const char *dgram, size_t len)
{
	struct capture *c = ctx;

	if (c->n < NCAP && len <= GB_STATSD_UDP_MAX) {
		memcpy(c->d[c->n], dgram, len);
		c->len[c->n++] = len;
	}
	return 0;
}

/* The first NCAP datagrams a packed drain makes of v's records (decoded as from the ring). */
static void
capture_datagrams(struct variety *v, struct capture *c)
{
	char err[256];
	gb_statsd_config cfg = { .send = capture_send, .send_ctx = c,
		.max_datagram = GB_STATSD_UDP_MAX };
	gb_statsd_sink *s = gb__statsd_new(&cfg, err, sizeof(err));

	if (s == NULL || (c->d = malloc(NCAP * sizeof(*c->d))) == NULL) {
		fprintf(stderr, "collector_bench: %s\n", s == NULL ? err : "out of memory");
		exit(1);
	}
	c->n = 0;
	while (c->n < NCAP) {
		gb_rec_kv meta[GB_REC_MAX_META];
		gb_record r;
		size_t len;
		const uint8_t *rec = variety_next(v, &len);

		if (gb__rec_decode(rec, len, &r, meta) == 0)
			gb__statsd_record(s, &r);
	}
	gb__statsd_free(s);
}

struct baseline {
	size_t datagrams;
	double wall_s, cpu_s;
	unsigned long long received;
};

/* Sends total datagrams, the captured ones in turn, BASE_DEPTH per sendmmsg, to a receiver
 * like the drain's, on a connected UDP socket like the sink's. */
static void
sendmmsg_loop(const struct capture *c, size_t total, struct baseline *res)
{
	struct receiver rv = { 0 };
	pthread_t th;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct mmsghdr m[BASE_DEPTH];
	struct iovec iov[BASE_DEPTH];
	int fd;

	sa.sin_port = htons(receiver_start(&rv, &th));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("collector_bench: baseline socket");
		exit(1);
	}
	memset(res, 0, sizeof(*res));
	uint64_t t0 = gb__clock_mono_ns();
	double c0 = thread_cpu_s();
	while (res->datagrams < total) {
		size_t k = total - res->datagrams < BASE_DEPTH ? total - res->datagrams : BASE_DEPTH;
		int n;

		for (size_t j = 0; j < k; j++) {
			size_t i = (res->datagrams + j) % c->n;

			iov[j] = (struct iovec){ .iov_base = c->d[i], .iov_len = c->len[i] };
			m[j] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[j], .msg_iovlen = 1 } };
		}
		n = sendmmsg(fd, m, (unsigned)k, MSG_NOSIGNAL);
		if (n > 0)
			res->datagrams += (size_t)n;
	}
	res->wall_s = (double)(gb__clock_mono_ns() - t0) / 1e9;
	res->cpu_s = thread_cpu_s() - c0;
	for (int i = 0; i < 50 && atomic_load(&rv.datagrams) < res->datagrams; i++)
		usleep(20000);
	atomic_store(&rv.stop, true);
	pthread_join(th, NULL);
	close(rv.fd);
	close(fd);
	res->received = atomic_load(&rv.datagrams);
}

static void
print_baseline(const char *what, const struct baseline *b)
{
	printf("%-22s %10zu datagrams %7.3f s %12.0f datagrams/s  cpu %.3f s (%.3f us/datagram)  "
	    "received %llu (loss %lld)\n", what, b->datagrams, b->wall_s,
	    (double)b->datagrams / b->wall_s, b->cpu_s, b->cpu_s / (double)b->datagrams * 1e6,
	    b->received, (long long)b->datagrams - (long long)b->received);
}

static void
print(const char *what, const struct result *r)
{
	printf("%-22s %10zu records %8.3f s %12.0f records/s  %9llu datagrams %6.1f B/dgram  "
	    "cpu %.3f s  received %llu (loss %lld)  send_errors %llu\n",
	    what, r->records, r->wall_s, (double)r->records / r->wall_s,
	    (unsigned long long)r->st.packets_sent,
	    r->st.packets_sent ? (double)r->st.bytes_sent / (double)r->st.packets_sent : 0.0,
	    r->cpu_s, r->received, (long long)r->st.lines - (long long)r->received,
	    (unsigned long long)r->st.send_errors);
	if (r->checked)
		printf("%-22s samples received %llu: %zu exactly once, %zu missing, %zu more than "
		    "once, %llu not of the run\n", "", r->samples, r->once, r->missing, r->repeated,
		    r->bad);
}

/* One run in the JSON line tests/bench/run.sh reads. */
static void
json_run(const char *key, const char *label, const struct result *r, bool last)
{
	printf("\"%s\":{\"label\":\"%s\",\"records\":%zu,\"records_per_s\":%.0f,\"lost\":%lld,"
	    "\"cpu_us_per_record\":%.3f,\"datagrams\":%llu}%s", key, label, r->records,
	    (double)r->records / r->wall_s, (long long)r->st.lines - (long long)r->received,
	    r->cpu_s / (double)r->records * 1e6, (unsigned long long)r->st.packets_sent,
	    last ? "" : ",");
}

/* --only: one run, its line printed; the ring unlinked. */
static int
run_only(gb_ring *prod, gb_ring *cons, const char *name, const char *only, size_t total,
    struct variety *one, struct variety *values, struct variety *sites)
{
	struct result res;
	char err[256];

	if (strcmp(only, "sendmmsg") == 0) {
		struct capture c = { 0 };
		struct baseline b;

		capture_datagrams(one, &c);
		sendmmsg_loop(&c, total / 10, &b);
		print_baseline("sendmmsg, 1-value dgrams", &b);
		free(c.d);
	} else {
		struct variety *v = strcmp(only, "values100") == 0 ? values :
		    strcmp(only, "sites10x100") == 0 ? sites : one;

		run(prod, cons, &(struct mode){ .batched = true, .console_fd = -1, .variety = v },
		    total, &res);
		print(only, &res);
	}
	gb__ring_close(prod);
	gb__ring_close(cons);
	gb__ring_unlink(name, err, sizeof(err));
	return 0;
}

/* The variety runs and the sendmmsg baselines, in the JSON line's "variety" and "sendmmsg". */
static void
json_drain(const char *key, const char *label, const struct result *r, bool last)
{
	printf("\"%s\":{\"label\":\"%s\",\"records\":%zu,\"records_per_s\":%.0f,\"lost\":%lld,"
	    "\"cpu_us_per_record\":%.4f,\"datagrams\":%llu,\"datagrams_per_s\":%.0f,"
	    "\"cpu_us_per_datagram\":%.4f}%s", key, label, r->records,
	    (double)r->records / r->wall_s, (long long)r->st.lines - (long long)r->received,
	    r->cpu_s / (double)r->records * 1e6, (unsigned long long)r->st.packets_sent,
	    (double)r->st.packets_sent / r->wall_s,
	    r->cpu_s / (double)r->st.packets_sent * 1e6, last ? "" : ",");
}

static void
json_base(const char *key, const char *label, const struct baseline *b, bool last)
{
	printf("\"%s\":{\"label\":\"%s\",\"datagrams\":%zu,\"datagrams_per_s\":%.0f,"
	    "\"cpu_us_per_datagram\":%.4f,\"lost\":%lld}%s", key, label, b->datagrams,
	    (double)b->datagrams / b->wall_s, b->cpu_s / (double)b->datagrams * 1e6,
	    (long long)b->datagrams - (long long)b->received, last ? "" : ",");
}

static void
json_variety(const struct result *one, const struct result *values100,
    const struct result *sites, const struct baseline *base, const struct baseline *base_sites)
{
	printf("\"variety\":{");
	json_drain("one", "one call site, one value", one, false);
	json_drain("values100", "one call site, 100 values of a tag", values100, false);
	json_drain("sites10x100", "10 call sites x 100 values", sites, true);
	printf("},\"sendmmsg\":{");
	json_base("one", "plain sendmmsg loop, " "64 a call, the one-value datagrams", base, false);
	json_base("sites10x100", "plain sendmmsg loop, 64 a call, the 10 x 100 datagrams",
	    base_sites, true);
	printf("}}\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "records", required_argument, NULL, 'n' },
		{ "ring-size", required_argument, NULL, 's' },
		{ "only", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *only = NULL;
	static struct variety one_v, values_v, sites_v;
	struct result values100, sites;
	struct baseline base, base_sites;
	struct capture cap = { 0 }, cap_sites = { 0 };
	uint64_t total = 2000000, size = 4u << 20;
	char name[64], err[256];
	gb_ring *prod, *cons;
	struct result packed, single, stalled, lines_d, packed_d;
	int pipefd[2];
	struct rusage ru;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'n' && gb__parse_uint(optarg, 1, 1000000000, &total, err, sizeof(err)) == 0)
			continue;
		if (o == 's' && gb__parse_uint(optarg, 65536, 1ull << 30, &size, err, sizeof(err)) == 0)
			continue;
		if (o == 'o' && (strcmp(optarg, "packed") == 0 || strcmp(optarg, "values100") == 0 ||
		    strcmp(optarg, "sites10x100") == 0 || strcmp(optarg, "sendmmsg") == 0)) {
			only = optarg;
			continue;
		}
		fprintf(stderr, "usage: collector_bench [--records N] [--ring-size BYTES] "
		    "[--only packed|values100|sites10x100|sendmmsg]\n");
		return 2;
	}
	snprintf(name, sizeof(name), "bench%d", (int)getpid());
	gb_ring_opts ro;
	gb__ring_opts_init(&ro);
	ro.capacity = size;
	if (gb__ring_open_consumer(&cons, name, &ro, err, sizeof(err)) != GB_RING_OK ||
	    gb__ring_open_producer(&prod, name, &ro, err, sizeof(err)) != GB_RING_OK) {
		fprintf(stderr, "collector_bench: %s\n", err);
		return 1;
	}
	if (pipe(pipefd) < 0) {
		perror("collector_bench: pipe");
		return 1;
	}
	variety_init(&one_v, 1, 1);
	variety_init(&values_v, 1, 100);
	variety_init(&sites_v, 10, 100);
	if (only != NULL)
		return run_only(prod, cons, name, only, total, &one_v, &values_v, &sites_v);
	run(prod, cons, &(struct mode){ .batched = true, .console_fd = -1 }, total, &packed);
	run(prod, cons, &(struct mode){ .batched = true, .console_fd = -1, .variety = &values_v },
	    total, &values100);
	run(prod, cons, &(struct mode){ .batched = true, .console_fd = -1, .variety = &sites_v },
	    total, &sites);
	capture_datagrams(&one_v, &cap);
	sendmmsg_loop(&cap, packed.st.packets_sent, &base);
	capture_datagrams(&sites_v, &cap_sites);
	sendmmsg_loop(&cap_sites, sites.st.packets_sent, &base_sites);
	run(prod, cons, &(struct mode){ .console_fd = -1 }, total / 4, &single);
	run(prod, cons, &(struct mode){ .batched = true, .console_fd = pipefd[1] }, total, &stalled);
	run(prod, cons, &(struct mode){ .batched = true, .console_fd = -1, .distinct = true },
	    total, &lines_d);
	run(prod, cons, &(struct mode){ .batched = true, .console_fd = -1, .distinct = true,
	    .pack_values = true }, total, &packed_d);
	getrusage(RUSAGE_SELF, &ru);
	printf("collector_bench: ring %s of %llu bytes, timings with depth, parent_scope and 2 "
	    "metadata tags, UDP loopback\n", name, (unsigned long long)size);
	print("packed (1432 B)", &packed);
	print("one datagram/record", &single);
	print("packed, console stalled", &stalled);
	printf("console stalled: %llu of %zu console lines dropped (counted), StatsD rate %.0f%% of "
	    "packed\n", (unsigned long long)stalled.console_dropped, stalled.records,
	    100.0 * ((double)stalled.records / stalled.wall_s) / ((double)packed.records / packed.wall_s));
	print("d, one line/sample", &lines_d);
	print("d, --pack-values", &packed_d);
	printf("--pack-values vs one line per sample: %.1fx the samples per second (%zu of %zu "
	    "and %zu of %zu samples exactly once)\n",
	    ((double)packed_d.records / packed_d.wall_s) / ((double)lines_d.records / lines_d.wall_s),
	    packed_d.once, packed_d.records, lines_d.once, lines_d.records);
	print("100 values of a tag", &values100);
	print("10 sites x 100 values", &sites);
	print_baseline("sendmmsg, 1-value dgrams", &base);
	print_baseline("sendmmsg, 10x100 dgrams", &base_sites);
	printf("drain CPU per record, 100 values / 1 value: %.2fx; 10 sites x 100 values / 1 value: "
	    "%.2fx\n", values100.cpu_s / (double)values100.records / (packed.cpu_s / (double)packed.records),
	    sites.cpu_s / (double)sites.records / (packed.cpu_s / (double)packed.records));
	printf("drain / plain sendmmsg loop, datagrams per second: %.2f (one value), %.2f (10 x 100)\n",
	    ((double)packed.st.packets_sent / packed.wall_s) / ((double)base.datagrams / base.wall_s),
	    ((double)sites.st.packets_sent / sites.wall_s) / ((double)base_sites.datagrams / base_sites.wall_s));
	printf("packed vs one-per-record: %.1fx; process peak RSS %ld KiB, total CPU %.3f s\n",
	    ((double)packed.records / packed.wall_s) / ((double)single.records / single.wall_s),
	    ru.ru_maxrss, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	printf("{\"bench\":\"collector\",\"runs\":{");
	json_run("packed", "packed into 1432-byte datagrams", &packed, false);
	json_run("single", "one datagram per record", &single, false);
	json_run("stalled", "packed, console stdout never read", &stalled, false);
	json_run("lines_d", "distributions, one line per sample", &lines_d, false);
	json_run("packed_d", "distributions, --pack-values", &packed_d, true);
	printf("},\"ratios\":[[\"packed\",\"single\",\"packed / one datagram per record\"],"
	    "[\"packed_d\",\"lines_d\",\"--pack-values / one line per sample\"],"
	    "[\"stalled\",\"packed\",\"console stalled / not\"]],");
	json_variety(&packed, &values100, &sites, &base, &base_sites);
	close(pipefd[0]);
	close(pipefd[1]);
	free(cap.d);
	free(cap_sites.d);
	gb__ring_close(prod);
	gb__ring_close(cons);
	gb__ring_unlink(name, err, sizeof(err));
	return 0;
}
