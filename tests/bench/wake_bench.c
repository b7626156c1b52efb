/*
 * wake_bench.c - what a producer pays for a live collector: gb_tele_count into the ring
 * through the shm reporter, written in bursts, with no collector attached (the baseline) and
 * with a real gbatch-collector process draining the same ring to a local UDP receiver; how
 * often the producers had to wake it (FUTEX_WAKE calls, read from the segment's wake word);
 * and how long a record waits from its write to its datagram, with the collector asleep and
 * with it awake between records (with --datagram-wait 0: the wait of the wake-up and the drain,
 * not the one a part-filled datagram makes by design). A program, not a test.
 *
 *   wake_bench [--records N] [--pattern GAP:BURST]...
 * Each pattern writes N records (default 400 000) in bursts of BURST records GAP apart; the
 * default patterns are 1ms:1000 (the collector never gets to sleep) and 100ms:4000 (it sleeps
 * between bursts). The rings have the default size. The baseline writes into a ring of its own
 * that the bench itself empties after each burst, untimed: a consumer that costs the producer
 * nothing. Both rings are written through once first. The baseline and the live runs take
 * turns, five times a fifth of the records each, beside one collector running throughout, and
 * their medians are compared.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gbatch/telemetry.h>

#include "clock.h"
#include "median.h"
#include "parse.h"
#include "ring.h"
#include "ring_layout.h"

#define MAX_GAPS 4
#define REPS 5 /* turns of the baseline and the live runs */
#define LATENCY_SAMPLES 20
#define ASLEEP_GAP_NS (300ull * GB_NS_PER_MS) /* longer than the collector stays awake */
#define AWAKE_GAP_NS (5ull * GB_NS_PER_MS)
#define DEADLINE_NS (30ull * GB_NS_PER_SEC)

static char ring_name[64];  /* the live collector's ring */
static char alone_name[64]; /* the baseline's: nobody attached, the bench empties it */

static void
die(const char *what)
{
	fprintf(stderr, "wake_bench: %s\n", what);
	gb__ring_unlink(ring_name, NULL, 0);
	gb__ring_unlink(alone_name, NULL, 0);
	exit(1);
}

static void
nap_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / GB_NS_PER_SEC), (long)(ns % GB_NS_PER_SEC) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- a UDP receiver: counts datagrams, notes when a line with a marker arrives ---- */

struct receiver {
	int fd;
	pthread_t th;
	atomic_bool stop;
	atomic_ullong datagrams;
	char marker[32];          /* set by the main thread, then waited for */
	atomic_ullong marker_at;  /* CLOCK_MONOTONIC of its arrival, 0 until then */
	pthread_mutex_t mu;
};

static void *
receive_run(void *arg)
{
	struct receiver *rv = arg;
	static char buf[65536];
	struct pollfd p = { .fd = rv->fd, .events = POLLIN };
	ssize_t n;

	while (!atomic_load(&rv->stop)) {
		if (poll(&p, 1, 50) <= 0)
			continue;
		while ((n = recv(rv->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
			uint64_t now = gb__clock_mono_ns();

			buf[n] = '\0';
			atomic_fetch_add(&rv->datagrams, 1);
			pthread_mutex_lock(&rv->mu);
			if (rv->marker[0] != '\0' && strstr(buf, rv->marker) != NULL &&
			    atomic_load(&rv->marker_at) == 0)
				atomic_store(&rv->marker_at, now);
			pthread_mutex_unlock(&rv->mu);
		}
	}
	return NULL;
}

static uint16_t
receiver_start(struct receiver *rv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int sz = 32 << 20;

	memset(rv, 0, sizeof(*rv));
	pthread_mutex_init(&rv->mu, NULL);
	if ((rv->fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		die("socket");
	if (setsockopt(rv->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(rv->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (bind(rv->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(rv->fd, (struct sockaddr *)&sa, &sl) < 0)
		die("bind");
	pthread_create(&rv->th, NULL, receive_run, rv);
	return ntohs(sa.sin_port);
}

static void
receiver_expect(struct receiver *rv, const char *marker)
{
	pthread_mutex_lock(&rv->mu);
	snprintf(rv->marker, sizeof(rv->marker), "%s", marker);
	atomic_store(&rv->marker_at, 0);
	pthread_mutex_unlock(&rv->mu);
}

/* ---- the segment's header, mapped read-only: the wake word and the consumer's pid ---- */

static const gb_rl_header *
map_header(void)
{
	char path[128];
	int fd;
	void *m;

	snprintf(path, sizeof(path), "/dev/shm/gbatch.%s", ring_name);
	if ((fd = open(path, O_RDONLY)) < 0)
		die("open the segment");
	m = mmap(NULL, sizeof(gb_rl_header), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		die("map the segment");
	return m;
}

static pid_t
spawn_collector(uint16_t port)
{
	char statsd[64];
	pid_t pid;

	snprintf(statsd, sizeof(statsd), "udp://127.0.0.1:%u", (unsigned)port);
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0) {
		execl(GBATCH_COLLECTOR, "gbatch-collector", "--ring", ring_name, "--statsd", statsd,
		    "--console", "off", "--datagram-wait", "0", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* ---- the burst patterns ---- */

struct pattern {
	uint64_t gap_ns;
	unsigned burst;
	double ns_alone, ns_live; /* producer time per record */
	uint32_t wakes;           /* FUTEX_WAKE calls with the collector live */
};

static void discard_all(const char *ring);

/* Producer time per record over the pattern; with drain (a ring's name) the bench empties that
 * ring after each burst (untimed). */
static double
run_bursts(gb_tele *t, unsigned records, const struct pattern *p, const char *drain)
{
	static const char *const names[] = { "api_call", "batch_success", "tokens", "retries" };
	uint64_t busy = 0;
	unsigned done = 0;

	while (done < records) {
		unsigned n = records - done < p->burst ? records - done : p->burst;
		uint64_t t0 = gb__clock_mono_ns();

		for (unsigned i = 0; i < n; i++)
			gb_tele_count(t, names[i & 3], 1, NULL, 0);
		busy += gb__clock_mono_ns() - t0;
		done += n;
		if (drain != NULL)
			discard_all(drain);
		nap_ns(p->gap_ns);
	}
	return (double)busy / records;
}

static void
ignore(void *ctx, uint16_t type, const uint8_t *p, size_t len)
{
	(void)ctx;
	(void)type;
	(void)p;
	(void)len;
}

/* Empties the ring in-process (nobody else drains it). */
static void
discard_all(const char *ring)
{
	gb_ring_opts o;
	gb_ring *c;
	char err[512];

	gb__ring_opts_init(&o);
	if (gb__ring_open_consumer(&c, ring, &o, err, sizeof(err)) != GB_RING_OK)
		die(err);
	while (gb__ring_read(c, ignore, NULL, 65536) > 0)
		;
	gb__ring_close(c);
}

static void
wait_attached(const gb_rl_header *hd, pid_t pid)
{
	uint64_t end = gb__clock_mono_ns() + DEADLINE_NS;

	while (atomic_load(&hd->consumer_pid) == 0) {
		if (gb__clock_mono_ns() > end || waitpid(pid, NULL, WNOHANG) != 0)
			die("the collector did not attach");
		nap_ns(GB_NS_PER_MS);
	}
	nap_ns(100 * GB_NS_PER_MS); /* past its start: asleep, as a collector usually is */
}

/* From one record's write to its datagram, LATENCY_SAMPLES times, gap_ns apart. */
static void
latency(gb_tele *t, struct receiver *rv, uint64_t gap_ns, double *median_us, double *max_us)
{
	double v[LATENCY_SAMPLES];

	for (int i = 0; i < LATENCY_SAMPLES; i++) {
		char name[32];
		uint64_t t0, end;

		nap_ns(gap_ns);
		snprintf(name, sizeof(name), "wake_probe_%d", i);
		receiver_expect(rv, name);
		t0 = gb__clock_mono_ns();
		GB_SCOPE(t, name) {
			__asm__ volatile("" ::: "memory");
		}
		end = t0 + DEADLINE_NS;
		while (atomic_load(&rv->marker_at) == 0 && gb__clock_mono_ns() < end)
			nap_ns(20 * 1000);
		if (atomic_load(&rv->marker_at) == 0)
			die("a probe record never arrived");
		v[i] = (double)(atomic_load(&rv->marker_at) - t0) / 1000.0;
	}
	*median_us = bench_median(v, LATENCY_SAMPLES); /* sorts v */
	*max_us = v[LATENCY_SAMPLES - 1];
}

static void
usage_exit(const char *bad)
{
	fprintf(stderr, "wake_bench: bad value \"%s\"\n"
	    "usage: wake_bench [--records N] [--pattern GAP:BURST]...\n", bad);
	exit(2);
}

static void
parse_args(int argc, char **argv, unsigned *records, struct pattern *p, int *np)
{
	static const struct option opts[] = {
		{ "records", required_argument, NULL, 'n' },
		{ "pattern", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256], gap[32], *colon;
	uint64_t v, b;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'n') {
			if (gb__parse_uint(optarg, 1, 10000000, &v, err, sizeof(err)) != 0)
				usage_exit(optarg);
			*records = (unsigned)v;
		} else if (o == 'p') {
			colon = strchr(optarg, ':');
			if (*np == MAX_GAPS || colon == NULL || (size_t)(colon - optarg) >= sizeof(gap))
				usage_exit(optarg);
			memcpy(gap, optarg, (size_t)(colon - optarg));
			gap[colon - optarg] = '\0';
			if (gb__parse_duration(gap, &v, err, sizeof(err)) != 0 ||
			    gb__parse_uint(colon + 1, 1, 10000000, &b, err, sizeof(err)) != 0)
				usage_exit(optarg);
			p[*np].gap_ns = v;
			p[(*np)++].burst = (unsigned)b;
		} else {
			usage_exit(argv[optind - 1]);
		}
	}
	if (*np == 0) {
		p[(*np)++] = (struct pattern){ .gap_ns = GB_NS_PER_MS, .burst = 1000 };
		p[(*np)++] = (struct pattern){ .gap_ns = 100 * GB_NS_PER_MS, .burst = 4000 };
	}
}

/* Writes the ring through (records of the size the bench writes), emptying it as it goes. */
static void
warm(gb_tele *t, unsigned records, const char *ring)
{
	struct pattern once = { .gap_ns = 0, .burst = 1000 };

	run_bursts(t, records, &once, ring);
}

int
main(int argc, char **argv)
{
	struct pattern pat[MAX_GAPS] = { { 0 } };
	unsigned records = 400000;
	int np = 0;
	gb_ring_opts o;
	gb_ring *owner;
	gb_shm_reporter *shm;
	gb_reporter rep;
	gb_tele *t;
	const gb_rl_header *hd;
	struct receiver rv;
	pid_t pid;
	char err[512];
	double asleep_med, asleep_max, awake_med, awake_max, alone[MAX_GAPS][REPS], live[MAX_GAPS][REPS];
	gb_shm_reporter *shm_alone;
	gb_reporter rep_alone;
	gb_tele *t_alone;

	parse_args(argc, argv, &records, pat, &np);
	snprintf(ring_name, sizeof(ring_name), "wake-bench-%d", (int)getpid());
	gb__ring_opts_init(&o);
	if (gb__ring_open_producer(&owner, ring_name, &o, err, sizeof(err)) != GB_RING_OK)
		die(err);
	shm = gb_shm_reporter_open(ring_name);
	rep = gb_shm_reporter_as_reporter(shm);
	t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	snprintf(alone_name, sizeof(alone_name), "wake-bench-alone-%d", (int)getpid());
	shm_alone = gb_shm_reporter_open(alone_name);
	rep_alone = gb_shm_reporter_as_reporter(shm_alone);
	t_alone = gb_tele_new(&rep_alone, 1, GB_TELE_ENABLE);
	hd = map_header();

	warm(t, records, ring_name);
	warm(t_alone, records, alone_name);
	pid = spawn_collector(receiver_start(&rv));
	wait_attached(hd, pid);
	/* the baseline and the live runs in turn, REPS times, each a share of the records, so that
	 * both meet the machine alike (a neighbour's load comes and goes); one collector throughout,
	 * on its own ring, the baseline on another */
	for (int k = 0; k < REPS; k++) {
		for (int i = 0; i < np; i++) {
			uint32_t w0 = atomic_load(&hd->futex_word);

			alone[i][k] = run_bursts(t_alone, records / REPS, &pat[i], alone_name);
			live[i][k] = run_bursts(t, records / REPS, &pat[i], NULL);
			pat[i].wakes += atomic_load(&hd->futex_word) - w0;
			nap_ns(ASLEEP_GAP_NS);
		}
	}
	for (int i = 0; i < np; i++) {
		pat[i].ns_alone = bench_median(alone[i], REPS);
		pat[i].ns_live = bench_median(live[i], REPS);
	}
	latency(t, &rv, ASLEEP_GAP_NS, &asleep_med, &asleep_max);
	latency(t, &rv, AWAKE_GAP_NS, &awake_med, &awake_max);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	atomic_store(&rv.stop, true);
	pthread_join(rv.th, NULL);

	printf("gb_tele_count into the ring, %u records per pattern, nproc %ld\n", records,
	    sysconf(_SC_NPROCESSORS_ONLN));
	printf("%-16s %14s %16s %7s %12s\n", "gap:burst", "no collector", "live collector",
	    "ratio", "FUTEX_WAKEs");
	for (int i = 0; i < np; i++) {
		char label[32];

		snprintf(label, sizeof(label), "%gms:%u", (double)pat[i].gap_ns / 1e6, pat[i].burst);
		printf("%-16s %11.1f ns %13.1f ns %6.2fx %12u\n", label, pat[i].ns_alone,
		    pat[i].ns_live, pat[i].ns_live / pat[i].ns_alone, pat[i].wakes);
	}
	printf("record to datagram: collector asleep median %.0f us, max %.0f us; awake (records "
	    "%llu ms apart) median %.0f us, max %.0f us\n", asleep_med, asleep_max,
	    (unsigned long long)(AWAKE_GAP_NS / GB_NS_PER_MS), awake_med, awake_max);
	printf("{\"bench\":\"wake\",\"records_per_pattern\":%u", records);
	for (int i = 0; i < np; i++)
		printf(",\"%gms:%u\":{\"alone_ns\":%.1f,\"live_ns\":%.1f,\"wakes\":%u}",
		    (double)pat[i].gap_ns / 1e6, pat[i].burst, pat[i].ns_alone, pat[i].ns_live,
		    pat[i].wakes);
	printf(",\"asleep_us\":{\"median\":%.0f,\"max\":%.0f},\"awake_us\":{\"median\":%.0f,"
	    "\"max\":%.0f}}\n", asleep_med, asleep_max, awake_med, awake_max);
	gb_tele_free(t);
	gb_shm_reporter_close(shm);
	gb_tele_free(t_alone);
	gb_shm_reporter_close(shm_alone);
	gb__ring_unlink(alone_name, NULL, 0);
	munmap((void *)(uintptr_t)hd, sizeof(gb_rl_header));
	gb__ring_close(owner);
	gb__ring_unlink(ring_name, NULL, 0);
	return 0;
}
