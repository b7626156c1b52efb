/*
 * tele_bench.c - what a telemetry scope costs the processor: a disabled scope, an enabled scope
 * and a counter into the shm reporter, one record written by the shm reporter alone (called
 * directly, without the context), and the same scope through a reporter that sends one
 * DogStatsD datagram per record over loopback UDP (what the ring saves us from); and what a
 * producer's memory grows by when it makes up 2 M distinct metric names (target <= 16 MiB),
 * beside the same records under one name. Then 8 threads writing counters into one ring three
 * ways: through one context they share, through a context each, and calling the shm reporter
 * directly (the CPU time per record, summed over the threads: on fewer cores than threads the
 * wall time says more about the scheduler than about the code).
 * The single-thread figures (and their UDP baseline) are taken on each CPU the process may run
 * on (the first MAX_CPUS), pinned to each in turn, since the CPUs of one machine differ. Prints
 * medians over several runs, then two JSON lines ("tele_threads", then "tele", whose
 * single-thread figures are arrays in the order of its "cpus"). A benchmark, not a test.
 * usage: tele_bench [RUNS]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gbatch/telemetry.h>

#include "clock.h"
#include "median.h"
#include "ring.h"

#define DISABLED_OPS 50000000
#define ENABLED_OPS 20000 /* fits the default 4 MiB ring between drains */
#define UDP_OPS 20000
#define DISTINCT_NAMES 2000000
#define THREADS 8
#define THREAD_OPS 40000 /* per thread and run: 8 x 40 000 records fit the 32 MiB ring */
#define THREADS_RING (32u << 20)
#define MAX_CPUS 4 /* the single-thread figures are taken on the first CPUs, this many at most */

static double
bench_disabled(void)
{
	gb_tele *off = gb_tele_new(NULL, 0, GB_TELE_DISABLE);
	uint64_t t0 = gb__clock_mono_ns();

	for (int i = 0; i < DISABLED_OPS; i++) {
		GB_SCOPE(off, "batch.api_call") {
			__asm__ volatile("" ::: "memory");
		}
	}
	return (double)(gb__clock_mono_ns() - t0) / DISABLED_OPS;
}

static void
discard(void *ctx, uint16_t type, const uint8_t *payload, size_t len)
{
	(void)ctx;
	(void)type;
	(void)payload;
	(void)len;
}

/* ns per enabled scope (counter = 0) or per counter record (counter = 1) into the ring. */
static double
bench_shm(gb_tele *t, gb_ring *consumer, int counter)
{
	uint64_t t0 = gb__clock_mono_ns(), dt;

	for (int i = 0; i < ENABLED_OPS; i++) {
		if (counter) {
			gb_tele_count(t, "batch_success", 1, NULL, 0);
		} else {
			GB_SCOPE(t, "batch.api_call") {
				__asm__ volatile("" ::: "memory");
			}
		}
	}
	dt = gb__clock_mono_ns() - t0;
	while (gb__ring_read(consumer, discard, NULL, 100000) > 0)
		;
	return (double)dt / ENABLED_OPS;
}

/* ns per record_metric call on the shm reporter itself: claim, encode, commit. */
static double
bench_shm_record(gb_reporter *rep, gb_ring *consumer)
{
	gb_tele_meta m = { .depth = 1, .parent_scope = "batch", .call_count = 1,
		.metric_type = "counter" };
	uint64_t t0 = gb__clock_mono_ns(), dt;

	for (int i = 0; i < ENABLED_OPS; i++)
		rep->record_metric(rep->self, "batch.batch_success", 1, &m);
	dt = gb__clock_mono_ns() - t0;
	while (gb__ring_read(consumer, discard, NULL, 100000) > 0)
		;
	return (double)dt / ENABLED_OPS;
}

/* The baseline reporter: one DogStatsD line per record, one sendto per line. */
struct statsd {
	int fd;
	struct sockaddr_in to;
	unsigned long errors;
};

static int
statsd_send(struct statsd *s, const char *scope, double v, const char *type, int depth)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "gbatch.%s:%g|%s|#depth:%d\n", scope, v, type, depth);

	if (sendto(s->fd, line, (size_t)n, 0, (const struct sockaddr *)&s->to, sizeof(s->to)) != n) {
		s->errors++;
		return -1;
	}
	return 0;
}

static int
statsd_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	return statsd_send(self, scope, seconds * 1000, "ms", m->depth);
}

static int
statsd_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	return statsd_send(self, scope, value, m->metric_type && strcmp(m->metric_type, "counter") == 0 ?
	    "c" : "g", m->depth);
}

static double
bench_udp(gb_tele *t)
{
	uint64_t t0 = gb__clock_mono_ns();

	for (int i = 0; i < UDP_OPS; i++) {
		GB_SCOPE(t, "batch.api_call") {
			__asm__ volatile("" ::: "memory");
		}
	}
	return (double)(gb__clock_mono_ns() - t0) / UDP_OPS;
}

/* The process's resident set in KiB (VmRSS), or 0. */
static long
rss_kib(void)
{
	char line[256];
	long kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kib;
}

/* RSS growth (KiB) of a context that counts DISTINCT_NAMES records, each under a name of its
 * own when distinct, else all under one name. Records go to a reporter that keeps nothing. */
static long
names_growth(int distinct)
{
	gb_reporter none = { 0 };
	gb_tele *t = gb_tele_new(&none, 1, GB_TELE_ENABLE);
	char name[32];
	long before = rss_kib();

	for (unsigned i = 0; i < DISTINCT_NAMES; i++) {
		snprintf(name, sizeof(name), "made.up.name.%u", distinct ? i : 0u);
		gb_tele_count(t, name, 1, NULL, 0);
	}
	long grown = rss_kib() - before;
	gb_tele_free(t);
	return grown;
}

/* ---- 8 threads into one ring ---- */

enum mt_mode { MT_SHARED, MT_OWN, MT_DIRECT };

struct mt {
	enum mt_mode mode;
	gb_tele *shared;
	gb_reporter *rep;
	pthread_barrier_t go;
	double cpu_ns[THREADS];
};

struct mt_arg {
	struct mt *mt;
	int i;
};

static uint64_t
thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * GB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void *
mt_body(void *p)
{
	struct mt_arg *a = p;
	struct mt *mt = a->mt;
	gb_tele *t = mt->mode == MT_OWN ? gb_tele_new(mt->rep, 1, GB_TELE_ENABLE) : mt->shared;
	gb_tele_meta m = { .call_count = 1, .metric_type = "counter" };
	uint64_t c0;

	pthread_barrier_wait(&mt->go);
	c0 = thread_cpu_ns();
	for (int i = 0; i < THREAD_OPS; i++) {
		if (mt->mode == MT_DIRECT)
			mt->rep->record_metric(mt->rep->self, "batch_success", 1, &m);
		else
			gb_tele_count(t, "batch_success", 1, NULL, 0);
	}
	mt->cpu_ns[a->i] = (double)(thread_cpu_ns() - c0);
	if (mt->mode == MT_OWN)
		gb_tele_free(t);
	return NULL;
}

/* CPU ns per record, summed over THREADS threads writing THREAD_OPS counters each. */
static double
bench_threads(struct mt *mt, enum mt_mode mode, gb_ring *consumer)
{
	pthread_t th[THREADS];
	struct mt_arg args[THREADS];
	double cpu = 0;

	mt->mode = mode;
	pthread_barrier_init(&mt->go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct mt_arg){ mt, i };
		if (pthread_create(&th[i], NULL, mt_body, &args[i]) != 0) {
			perror("tele_bench: pthread_create");
			exit(1);
		}
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		cpu += mt->cpu_ns[i];
	}
	pthread_barrier_destroy(&mt->go);
	while (gb__ring_read(consumer, discard, NULL, 100000) > 0)
		;
	return cpu / (THREADS * THREAD_OPS);
}

/* The three ways side by side, each the median of runs rounds taken in turn; prints the
 * "tele_threads" JSON line. Returns the records the reporter dropped (0 unless the ring
 * filled). */
static unsigned long long
threads_figures(int runs, double *v)
{
	char ring_name[64], err[256];
	double shared, own, direct;
	gb_ring_opts o;
	gb_ring *consumer;

	snprintf(ring_name, sizeof(ring_name), "tele-bench-mt-%d", (int)getpid());
	gb__ring_opts_init(&o);
	o.capacity = THREADS_RING;
	if (gb__ring_open_consumer(&consumer, ring_name, &o, err, sizeof(err)) != GB_RING_OK) {
		fprintf(stderr, "tele_bench: %s\n", err);
		exit(1);
	}
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb_reporter rep = gb_shm_reporter_as_reporter(sr);
	struct mt mt = { .rep = &rep, .shared = gb_tele_new(&rep, 1, GB_TELE_ENABLE) };
	double *w = v + runs, *x = v + 2 * runs;

	for (int r = 0; r < 4; r++) /* once round the ring: every page of it touched */
		bench_threads(&mt, MT_DIRECT, consumer);
	for (int r = 0; r < runs; r++) {
		v[r] = bench_threads(&mt, MT_SHARED, consumer);
		w[r] = bench_threads(&mt, MT_OWN, consumer);
		x[r] = bench_threads(&mt, MT_DIRECT, consumer);
	}
	shared = bench_median(v, runs);
	own = bench_median(w, runs);
	direct = bench_median(x, runs);
	printf("%d threads, one shared context: %8.2f ns CPU/record (median of %d x %d x %d)\n",
	    THREADS, shared, runs, THREADS, THREAD_OPS);
	printf("%d threads, a context each:     %8.2f ns CPU/record\n", THREADS, own);
	printf("%d threads, shm reporter alone: %8.2f ns CPU/record\n", THREADS, direct);
	unsigned long long dropped = gb_shm_reporter_dropped(sr);
	printf("{\"bench\":\"tele_threads\",\"threads\":%d,\"shared_context_ns\":%.2f,"
	       "\"context_each_ns\":%.2f,\"shm_direct_ns\":%.2f,\"shared_over_each\":%.3f,"
	       "\"shared_over_direct\":%.3f,\"dropped\":%llu,\"runs\":%d}\n",
	    THREADS, shared, own, direct, shared / own, shared / direct, dropped, runs);
	gb_tele_free(mt.shared);
	gb_shm_reporter_close(sr);
	gb__ring_close(consumer);
	gb__ring_unlink(ring_name, err, sizeof(err));
	return dropped;
}

/* The single-thread figures of one CPU, in ns. */
struct single {
	int cpu;
	double disabled, scope, counter, record, udp;
	double cold; /* counters: the first ENABLED_OPS records into the new ring */
	unsigned long long dropped;
};

/* The single-thread figures on one CPU (the caller pins the thread there): a disabled scope,
 * an enabled scope, a counter and the shm reporter alone, each the median of runs rounds into a
 * new ring, and the enabled scope through the UDP reporter (sd) as their baseline; and the
 * first counters into that ring (cold: its pages not yet in any cache). */
static void
single_figures(int runs, double *v, struct statsd *sd, struct single *out)
{
	char ring_name[64], err[256];
	gb_ring *consumer;

	for (int r = 0; r < runs; r++)
		v[r] = bench_disabled();
	out->disabled = bench_median(v, runs);
	snprintf(ring_name, sizeof(ring_name), "tele-bench-%d", (int)getpid());
	if (gb__ring_open_consumer(&consumer, ring_name, NULL, err, sizeof(err)) != GB_RING_OK) {
		fprintf(stderr, "tele_bench: %s\n", err);
		exit(1);
	}
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb_reporter shm = gb_shm_reporter_as_reporter(sr);
	gb_tele *t = gb_tele_new(&shm, 1, GB_TELE_ENABLE);
	out->cold = bench_shm(t, consumer, 1); /* the first records into the new ring */
	for (int r = 0; r < runs; r++)
		v[r] = bench_shm(t, consumer, 0);
	out->scope = bench_median(v, runs);
	for (int r = 0; r < runs; r++)
		v[r] = bench_shm(t, consumer, 1);
	out->counter = bench_median(v, runs);
	for (int r = 0; r < runs; r++)
		v[r] = bench_shm_record(&shm, consumer);
	out->record = bench_median(v, runs);
	out->dropped = gb_shm_reporter_dropped(sr);
	gb_tele_free(t);
	gb_shm_reporter_close(sr);
	gb__ring_close(consumer);
	gb__ring_unlink(ring_name, err, sizeof(err));

	gb_reporter udp = { .self = sd, .record_timing = statsd_timing, .record_metric = statsd_metric };
	t = gb_tele_new(&udp, 1, GB_TELE_ENABLE);
	for (int r = 0; r < runs; r++)
		v[r] = bench_udp(t);
	out->udp = bench_median(v, runs);
	gb_tele_free(t);
	printf("cpu %d: disabled scope %.2f ns, enabled scope %.2f ns, counter %.2f ns, shm reporter "
	    "alone %.2f ns, enabled scope with a UDP sendto %.0f ns (medians of %d runs); counter, "
	    "the first %d records into a new ring %.2f ns\n", out->cpu, out->disabled, out->scope,
	    out->counter, out->record, out->udp, runs, ENABLED_OPS, out->cold);
}

/* One per-CPU figure as a JSON array, in the order measured. */
static void
print_array(const char *key, const struct single *s, int n, size_t field)
{
	printf("\"%s\":[", key);
	for (int i = 0; i < n; i++) {
		double x;

		memcpy(&x, (const char *)&s[i] + field, sizeof(x));
		printf("%s%.3f", i ? "," : "", x);
	}
	printf("],");
}

/* The single-thread figures on each CPU this process may run on (the first MAX_CPUS), pinned to
 * each in turn: CPUs of one machine differ (a VM's vCPUs share their cores with other guests),
 * and a figure taken wherever the scheduler happens to put the process says little. Returns how
 * many CPUs were measured. */
static int
per_cpu_figures(int runs, double *v, struct statsd *sd, struct single *per_cpu)
{
	cpu_set_t all;
	int n = 0;

	if (sched_getaffinity(0, sizeof(all), &all) != 0) {
		perror("tele_bench: sched_getaffinity");
		exit(1);
	}
	for (int cpu = 0; cpu < CPU_SETSIZE && n < MAX_CPUS; cpu++) {
		cpu_set_t one;

		if (!CPU_ISSET(cpu, &all))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) != 0) {
			perror("tele_bench: sched_setaffinity");
			exit(1);
		}
		per_cpu[n].cpu = cpu;
		single_figures(runs, v, sd, &per_cpu[n++]);
	}
	sched_setaffinity(0, sizeof(all), &all);
	return n;
}

int
main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 9, n;
	struct single per_cpu[MAX_CPUS];
	unsigned long long dropped = 0;
	struct statsd sd = { .fd = -1 };
	socklen_t alen = sizeof(sd.to);
	double *v;

	if (runs < 1 || (v = calloc(3 * (size_t)runs, sizeof(*v))) == NULL) {
		fprintf(stderr, "usage: %s [RUNS >= 1]\n", argv[0]);
		return 2;
	}
	/* A bound receiver, so the datagrams have somewhere to go (its buffer simply overflows). */
	int rx = socket(AF_INET, SOCK_DGRAM, 0);
	sd.fd = socket(AF_INET, SOCK_DGRAM, 0);
	sd.to.sin_family = AF_INET;
	sd.to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rx < 0 || sd.fd < 0 || bind(rx, (struct sockaddr *)&sd.to, sizeof(sd.to)) != 0 ||
	    getsockname(rx, (struct sockaddr *)&sd.to, &alen) != 0) {
		perror("tele_bench: udp socket");
		return 1;
	}
	n = per_cpu_figures(runs, v, &sd, per_cpu);
	close(rx);
	close(sd.fd);
	for (int i = 0; i < n; i++)
		dropped += per_cpu[i].dropped;

	long one_name = names_growth(0), many_names = names_growth(1);
	threads_figures(runs, v);
	printf("producer memory, %d records: one name +%ld KiB, %d distinct names +%ld KiB "
	    "(target <= 16384 KiB)\n", DISTINCT_NAMES, one_name, DISTINCT_NAMES, many_names);

	printf("{\"bench\":\"tele\",\"cpus\":[");
	for (int i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", per_cpu[i].cpu);
	printf("],");
	print_array("disabled_scope_ns", per_cpu, n, offsetof(struct single, disabled));
	print_array("shm_scope_ns", per_cpu, n, offsetof(struct single, scope));
	print_array("shm_counter_ns", per_cpu, n, offsetof(struct single, counter));
	print_array("shm_record_ns", per_cpu, n, offsetof(struct single, record));
	print_array("udp_scope_ns", per_cpu, n, offsetof(struct single, udp));
	print_array("shm_counter_cold_ns", per_cpu, n, offsetof(struct single, cold));
	printf("\"shm_dropped\":%llu,\"udp_send_errors\":%lu,\"one_name_rss_kib\":%ld,"
	    "\"distinct_names_rss_kib\":%ld,\"runs\":%d}\n", dropped, sd.errors, one_name, many_names,
	    runs);
	free(v);
	return 0;
}
