/*
 * ring_bench.c - what one telemetry record costs a producer in the ring, against Aeron's
 * many-to-one ring algorithm on the same records (the floor), against what an in-process
 * StatsD client pays for the same event (one sendto of a DogStatsD line on loopback), and
 * how fast a consumer in another process drains the ring.
 * A program, not a test: prints a table of medians over several rounds, then one JSON line.
 *   ring_bench [rounds]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "median.h"
#include "ring.h"

#define RING_CAPACITY (16u << 20)
#define PAYLOAD 64               /* about a counter record: fixed fields and a short scope */
#define ROUND_RECORDS 100000u
#define ROUND_SENDS 20000u
#define STATSD_LINE "gbatch.batch.api_call:1|c|#depth:1\n"

static char ring_name[64];

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "ring_bench: %s: %s\n", what, detail);
	gb__ring_unlink(ring_name, NULL, 0);
	exit(1);
}

static gb_ring *
open_ring(bool consumer)
{
	gb_ring_opts o;
	gb_ring *r = NULL;
	char err[512];

	gb__ring_opts_init(&o);
	o.capacity = RING_CAPACITY;
	if ((consumer ? gb__ring_open_consumer(&r, ring_name, &o, err, sizeof(err)) :
	    gb__ring_open_producer(&r, ring_name, &o, err, sizeof(err))) != GB_RING_OK)
		die("open", err);
	return r;
}

static void
discard(void *ctx, uint16_t type, const uint8_t *p, size_t len)
{
	(void)type;
	(void)len;
	*(uint64_t *)ctx += p[0];
}

static void
drain(gb_ring *c)
{
	uint64_t sum = 0;

	while (gb__ring_read(c, discard, &sum, 65536) > 0)
		;
}

/* ---- producers ---- */

/* One producer thread's share of a round, into the ring (a gb_ring, or the baseline's). */
struct writer {
	void *ring;
	unsigned n;
	unsigned failed;
};

static void *
write_records(void *arg)
{
	struct writer *w = arg;
	uint8_t payload[PAYLOAD];
	unsigned i;

	memset(payload, 'x', sizeof(payload));
	for (i = 0; i < w->n; i++) {
		payload[0] = (uint8_t)i;
		if (gb__ring_write(w->ring, GB_RING_TYPE_TELEMETRY, payload, sizeof(payload)) !=
		    GB_RING_OK)
			w->failed++;
	}
	return NULL;
}

/* One round: ns per record with `threads` threads running body, sharing ROUND_RECORDS records
 * into ring (drained by the caller); per thread: the wall time over the records each one
 * wrote. */
static double
timed_round(void *(*body)(void *), void *ring, int threads, const char *who)
{
	struct writer w[2];
	pthread_t t[2];
	uint64_t t0;
	double ns;
	int i;

	t0 = gb__clock_mono_ns();
	for (i = 0; i < threads; i++) {
		w[i] = (struct writer){ ring, ROUND_RECORDS / (unsigned)threads, 0 };
		if (threads == 1)
			body(&w[i]);
		else
			pthread_create(&t[i], NULL, body, &w[i]);
	}
	for (i = 0; threads > 1 && i < threads; i++)
		pthread_join(t[i], NULL);
	ns = (double)(gb__clock_mono_ns() - t0) / (ROUND_RECORDS / (unsigned)threads);
	for (i = 0; i < threads; i++)
		if (w[i].failed)
			die(who, "the ring filled up during a round");
	return ns;
}

/* One round into the drained ring. */
static double
ring_round(gb_ring *p, gb_ring *c, int threads)
{
	double ns;

	drain(c);
	ns = timed_round(write_records, p, threads, "producer");
	drain(c);
	return ns;
}

/* ---- the baseline: Aeron's many-to-one ring (aeron_mpsc_rb), its published algorithm ----
 * Written for this benchmark from the algorithm's description: a claim moves tail with one
 * compare-and-swap after checking the space against a cached head (re-read when short),
 * pads to the end on a wrap, writes the header's length negative, copies, then commits with
 * a plain release store of the length. No segment header, no producer table, no drop
 * counters, no unblock: the floor a shared-memory MPSC ring can reach on this machine. */

struct aeron_rb {
	uint8_t *buf;
	uint64_t capacity;
	_Alignas(128) _Atomic uint64_t tail;
	_Alignas(128) _Atomic uint64_t head_cache;
	_Alignas(128) _Atomic uint64_t head;
};

static int64_t
aeron_claim(struct aeron_rb *rb, uint64_t required)
{
	uint64_t mask = rb->capacity - 1, head, tail, padding, index;

	head = atomic_load_explicit(&rb->head_cache, memory_order_acquire);
	do {
		tail = atomic_load_explicit(&rb->tail, memory_order_acquire);
		if (required > rb->capacity - (tail - head)) {
			head = atomic_load_explicit(&rb->head, memory_order_acquire);
			if (required > rb->capacity - (tail - head))
				return -1;
			atomic_store_explicit(&rb->head_cache, head, memory_order_release);
		}
		padding = 0;
		index = tail & mask;
		if (required > rb->capacity - index) {
			if (required > (head & mask)) {
				head = atomic_load_explicit(&rb->head, memory_order_acquire);
				if (required > (head & mask))
					return -1;
				atomic_store_explicit(&rb->head_cache, head, memory_order_release);
			}
			padding = rb->capacity - index;
		}
	} while (!atomic_compare_exchange_weak_explicit(&rb->tail, &tail,
	    tail + required + padding, memory_order_acq_rel, memory_order_acquire));
	if (padding != 0) {
		atomic_store_explicit((_Atomic int64_t *)(void *)(rb->buf + index),
		    (int64_t)padding | (int64_t)0 << 32, memory_order_release); /* type 0 */
		index = 0;
	}
	return (int64_t)index;
}

static int
aeron_write(struct aeron_rb *rb, int32_t type, const void *payload, size_t len)
{
	int32_t record = (int32_t)(8 + len);
	uint64_t required = ((uint64_t)record + 7) & ~7ull;
	int64_t index = aeron_claim(rb, required);
	_Atomic int32_t *length;

	if (index < 0)
		return -1;
	length = (_Atomic int32_t *)(void *)(rb->buf + index);
	atomic_store_explicit(length, -record, memory_order_release);
	memcpy(rb->buf + index + 4, &type, sizeof(type));
	memcpy(rb->buf + index + 8, payload, len);
	atomic_store_explicit(length, record, memory_order_release);
	return 0;
}

/* Reads and zeroes every committed record, as Aeron's reader does, then moves head. */
static void
aeron_drain(struct aeron_rb *rb)
{
	uint64_t head = atomic_load_explicit(&rb->head, memory_order_relaxed), start = head;
	uint64_t mask = rb->capacity - 1, sum = 0;

	for (;;) {
		_Atomic int32_t *length = (_Atomic int32_t *)(void *)(rb->buf + (head & mask));
		int32_t n = atomic_load_explicit(length, memory_order_acquire);

		if (n <= 0)
			break;
		sum += rb->buf[(head & mask) + 8];
		head += ((uint64_t)n + 7) & ~7ull;
	}
	for (uint64_t p = start; p < head;) {
		uint64_t off = p & mask, n = head - p;

		if (n > rb->capacity - off)
			n = rb->capacity - off;
		memset(rb->buf + off, 0, n);
		p += n;
	}
	atomic_store_explicit(&rb->head, head, memory_order_release);
	__asm__ volatile("" : : "r"(sum));
}

/* The writers call the baseline as Aeron's aeron_mpsc_rb_write is called, and as they call
 * gb__ring_write: a function of its own, its length not known at compile time. Through a
 * volatile pointer, so that no compiler inlines it into the loop or specialises it for the
 * constant length (which turns its memcpy into four stores). */
static int (*volatile aeron_write_fn)(struct aeron_rb *, int32_t, const void *, size_t) =
    aeron_write;

static void *
aeron_write_records(void *arg)
{
	struct writer *w = arg;
	uint8_t payload[PAYLOAD];

	memset(payload, 'x', sizeof(payload));
	for (unsigned i = 0; i < w->n; i++) {
		payload[0] = (uint8_t)i;
		if (aeron_write_fn(w->ring, 1, payload, sizeof(payload)) != 0)
			w->failed++;
	}
	return NULL;
}

/* The baseline ring in shared memory, as the ring's (no transparent huge pages, unlike a large
 * malloc), zeroed. */
static void
aeron_open(struct aeron_rb *rb)
{
	int fd = memfd_create("aeron-baseline", 0);

	*rb = (struct aeron_rb){ .capacity = RING_CAPACITY };
	if (fd < 0 || ftruncate(fd, RING_CAPACITY) != 0 ||
	    (rb->buf = mmap(NULL, RING_CAPACITY, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
	    MAP_FAILED)
		die("aeron baseline", strerror(errno));
	close(fd);
	memset(rb->buf, 0, RING_CAPACITY);
}

/* One round as ring_round's, through the baseline ring. */
static double
aeron_round(struct aeron_rb *rb, int threads)
{
	aeron_drain(rb);
	return timed_round(aeron_write_records, rb, threads, "aeron baseline");
}

/* The ring and its baseline round by round, taken in turn so that both meet the same machine
 * (a neighbour's load comes and goes): the medians, one thread and two. */
static void
side_by_side(gb_ring *p, gb_ring *c, int rounds, double *one, double *two, double *aeron_one,
    double *aeron_two)
{
	double *v = calloc(4 * (size_t)rounds, sizeof(double));
	struct aeron_rb rb;

	if (v == NULL)
		die("calloc", strerror(errno));
	aeron_open(&rb);
	for (int k = 0; k < rounds; k++) {
		v[k] = ring_round(p, c, 1);
		v[rounds + k] = aeron_round(&rb, 1);
		v[2 * rounds + k] = ring_round(p, c, 2);
		v[3 * rounds + k] = aeron_round(&rb, 2);
	}
	*one = bench_median(v, rounds);
	*aeron_one = bench_median(v + rounds, rounds);
	*two = bench_median(v + 2 * rounds, rounds);
	*aeron_two = bench_median(v + 3 * rounds, rounds);
	munmap(rb.buf, RING_CAPACITY);
	free(v);
}

/* ---- the baseline: one DogStatsD datagram per record ---- */

static double
bench_sendto(int rounds)
{
	double *ns = calloc((size_t)rounds, sizeof(double));
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	char buf[2048];
	int rx, tx, k;
	unsigned i;
	uint64_t t0;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (rx == -1 || tx == -1 || bind(rx, (struct sockaddr *)&addr, sizeof(addr)) == -1 ||
	    getsockname(rx, (struct sockaddr *)&addr, &alen) == -1)
		die("udp socket", strerror(errno));
	for (k = 0; k < rounds; k++) {
		while (recv(rx, buf, sizeof(buf), 0) > 0)
			;
		t0 = gb__clock_mono_ns();
		for (i = 0; i < ROUND_SENDS; i++)
			if (sendto(tx, STATSD_LINE, sizeof(STATSD_LINE) - 1, 0,
			    (struct sockaddr *)&addr, sizeof(addr)) == -1 && errno != ENOBUFS &&
			    errno != EAGAIN)
				die("sendto", strerror(errno));
		ns[k] = (double)(gb__clock_mono_ns() - t0) / ROUND_SENDS;
	}
	close(rx);
	close(tx);
	double m = bench_median(ns, rounds);
	free(ns);
	return m;
}

/* ---- the consumer in its own process ---- */

/* The child fills the ring whenever asked and answers with how many records it wrote. */
static void
filler(int cmd, int reply)
{
	gb_ring *p = open_ring(false);
	uint8_t payload[PAYLOAD];
	uint64_t n;
	char c;

	memset(payload, 'y', sizeof(payload));
	while (read(cmd, &c, 1) == 1) {
		for (n = 0; gb__ring_write(p, GB_RING_TYPE_TELEMETRY, payload, sizeof(payload)) ==
		    GB_RING_OK; n++)
			;
		if (write(reply, &n, sizeof(n)) != sizeof(n))
			break;
	}
	gb__ring_close(p);
	_exit(0);
}

static double
bench_drain(gb_ring *c, int rounds)
{
	double *rate = calloc((size_t)rounds, sizeof(double));
	int cmd[2], reply[2], k, status;
	uint64_t n, got, sum = 0, t0;
	pid_t pid;

	if (pipe(cmd) == -1 || pipe(reply) == -1)
		die("pipe", strerror(errno));
	if ((pid = fork()) == 0) {
		close(cmd[1]);
		close(reply[0]);
		filler(cmd[0], reply[1]);
	}
	close(cmd[0]);
	close(reply[1]);
	drain(c);
	for (k = 0; k < rounds; k++) {
		if (write(cmd[1], "f", 1) != 1 || read(reply[0], &n, sizeof(n)) != sizeof(n))
			die("filler", "no answer");
		t0 = gb__clock_mono_ns();
		for (got = 0; got < n;)
			got += gb__ring_read(c, discard, &sum, 4096);
		rate[k] = (double)n / ((double)(gb__clock_mono_ns() - t0) / 1e9);
	}
	close(cmd[1]);
	waitpid(pid, &status, 0);
	close(reply[0]);
	double m = bench_median(rate, rounds);
	free(rate);
	return m;
}

int
main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 15;
	double one, two, aeron_one, aeron_two, udp, rate;
	gb_ring *p, *c;

	if (rounds < 1)
		rounds = 15;
	snprintf(ring_name, sizeof(ring_name), "bench-%d", (int)getpid());
	c = open_ring(true);
	p = open_ring(false);
	side_by_side(p, c, rounds, &one, &two, &aeron_one, &aeron_two);
	udp = bench_sendto(rounds);
	rate = bench_drain(c, rounds);
	gb__ring_close(p);
	gb__ring_close(c);
	gb__ring_unlink(ring_name, NULL, 0);

	printf("ring_bench: %d-byte payloads, %u MiB ring, median of %d rounds\n", PAYLOAD,
	    RING_CAPACITY >> 20, rounds);
	printf("  %-44s %10.1f ns/record\n", "ring, one producer thread", one);
	printf("  %-44s %10.1f ns/record per thread\n", "ring, two producer threads", two);
	printf("  %-44s %10.1f ns/record\n", "ring, two producer threads, all records", two / 2);
	printf("  %-44s %10.1f ns/record\n", "baseline: Aeron's algorithm, one thread", aeron_one);
	printf("  %-44s %10.1f ns/record per thread\n", "baseline: Aeron's algorithm, two threads",
	    aeron_two);
	printf("  %-44s %10.2f x\n", "ring / Aeron (one thread)", one / aeron_one);
	printf("  %-44s %10.2f x\n", "ring / Aeron (two threads)", two / aeron_two);
	printf("  %-44s %10.1f ns/record\n", "baseline: DogStatsD line, sendto on loopback", udp);
	printf("  %-44s %10.1f x\n", "baseline / ring (one thread)", udp / one);
	printf("  %-44s %10.2f M records/s\n", "consumer in another process, drain", rate / 1e6);
	printf("{\"bench\":\"ring\",\"payload_bytes\":%d,\"rounds\":%d,\"ring_1thread_ns\":%.1f,"
	    "\"ring_2threads_ns_per_thread\":%.1f,\"ring_2threads_ns_all\":%.1f,\"sendto_ns\":%.1f,"
	    "\"sendto_over_ring\":%.1f,\"drain_records_per_s\":%.0f,\"aeron_1thread_ns\":%.1f,"
	    "\"aeron_2threads_ns_per_thread\":%.1f}\n", PAYLOAD, rounds, one, two, two / 2, udp,
	    udp / one, rate, aeron_one, aeron_two);
	return 0;
}
