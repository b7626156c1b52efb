/*
 * pod_producer.c - the producer container of the simulated pod (tests/deploy/pod_test.py):
 * attaches to a ring as a producer, writes N counter records, and either detaches and exits,
 * or (--hold-claim) claims one more record it never commits and keeps heartbeating until it
 * is killed, as a processor killed with SIGKILL in the middle of a record would leave it.
 *
 *   pod-producer --ring NAME|PATH --count N [--scope S] [--timing] [--hold-claim]
 * --timing writes timings of 25 ms instead of counters of 1.
 * Prints "pid P written N dropped M" (P is its pid in its own PID namespace), then, with
 * --hold-claim, "holding a claim". Exits 0 when every record went in, 1 otherwise, 2 on bad
 * arguments, 3 when a held claim was not killed within 60 s.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "parse.h"
#include "record.h"
#include "ring.h"

#define HOLD_LIMIT_NS (60ull * 1000000000ull)

static void __attribute__((noreturn))
usage(const char *why)
{
	fprintf(stderr, "pod-producer: %s\n", why);
	exit(2);
}

/* Heartbeats as a live processor's shm reporter thread does, until the test kills us. */
static void __attribute__((noreturn))
hold_claim(gb_ring *r)
{
	uint64_t end = gb__clock_mono_ns() + HOLD_LIMIT_NS;
	gb_ring_claim c;

	if (gb__ring_claim(r, GB_RING_TYPE_TELEMETRY, 64, &c) != GB_RING_OK)
		usage("the ring has no room for the held claim");
	memset(c.data, 0, c.len);
	printf("holding a claim\n");
	fflush(stdout);
	while (gb__clock_mono_ns() < end) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		gb__ring_heartbeat(r);
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "pod-producer: nobody killed me within 60 s\n");
	exit(3);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ring", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'n' },
		{ "scope", required_argument, NULL, 's' },
		{ "timing", no_argument, NULL, 't' },
		{ "hold-claim", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const gb_rec_kv meta[] = { { "container", 9, "producer", 8 } };
	gb_record rec = { .kind = GB_REC_COUNTER, .value = 1, .scope = "pod.records",
		.meta = meta, .n_meta = 1 };
	const char *ring = NULL;
	uint64_t count = 0;
	size_t written = 0, dropped = 0;
	int hold = 0, o;
	char err[256];
	uint8_t buf[GB_REC_MAX_SIZE];
	gb_ring *r;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'r': ring = optarg; break;
		case 'n':
			if (gb__parse_uint(optarg, 1, 100000000, &count, err, sizeof(err)) < 0)
				usage(err);
			break;
		case 's': rec.scope = optarg; break;
		case 't':
			rec.kind = GB_REC_TIMING;
			rec.value = 0.025;
			break;
		case 'h': hold = 1; break;
		default: usage("unknown option");
		}
	}
	if (ring == NULL || count == 0)
		usage("--ring and --count are required");
	rec.scope_len = strlen(rec.scope);
	if (gb__ring_open_producer(&r, ring, NULL, err, sizeof(err)) != GB_RING_OK)
		usage(err);
	for (uint64_t i = 0; i < count; i++) {
		size_t len;

		rec.ts_ns = gb__clock_real_ns();
		len = gb__rec_encode(&rec, buf, sizeof(buf));
		if (gb__ring_write(r, GB_RING_TYPE_TELEMETRY, buf, len) == GB_RING_OK)
			written++;
		else
			dropped++;
	}
	printf("pid %ld written %zu dropped %zu\n", (long)getpid(), written, dropped);
	fflush(stdout);
	if (hold)
		hold_claim(r);
	gb__ring_close(r);
	return dropped == 0 ? 0 : 1;
}
