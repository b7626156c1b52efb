/*
 * ring_write.c - a test producer: attaches to a ring as a producer and writes telemetry
 * records (encoded with the record codec) or garbage payloads, then holds the attachment for
 * a while with heartbeats, and detaches. The collector's integration tests drive it.
 *
 *   ring-write --ring NAME [--count N] [--kind timing|counter|gauge|metric] [--scope S]
 *              [--parent-len N] [--depth N] [--value V] [--meta K=V]... [--garbage N]
 *              [--seq START] [--rate N] [--dropped-out FILE] [--torn] [--hold DUR]
 *              [--late-commit DUR] [--capacity BYTES]
 * --seq adds a metadata pair seq=START+i to record i, so a receiver can account for every
 * record; --rate writes at most N records a second (in 1 ms bursts); --dropped-out lists the
 * seq (or index) of every record the ring refused; --torn claims one more record after the
 * others and never commits it (as if killed between claim and commit), holding it until killed;
 * --late-commit claims one more record (the next seq) after the others, prints "claimed",
 * waits DUR (heartbeating), then commits it (a producer preempted between claim and commit);
 * --capacity sizes the ring if this process creates it.
 * Prints "written N dropped M" and exits 0 when every record went in, 1 otherwise.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "parse.h"
#include "record.h"
#include "ring.h"

static void __attribute__((noreturn))
usage(const char *why)
{
	fprintf(stderr, "ring-write: %s\n", why);
	exit(2);
}

static void
hold(gb_ring *r, uint64_t ns)
{
	uint64_t end = gb__clock_mono_ns() + ns;

	while (gb__clock_mono_ns() < end) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		gb__ring_heartbeat(r);
		nanosleep(&ts, NULL);
	}
}

/* Sleeps until record i is due at rate records a second from start, heartbeating. */
static void
pace(gb_ring *r, uint64_t start, uint64_t i, uint64_t rate)
{
	uint64_t due = start + i * GB_NS_PER_SEC / rate, now = gb__clock_mono_ns();

	gb__ring_heartbeat(r);
	if (due > now) {
		struct timespec ts = { (time_t)((due - now) / GB_NS_PER_SEC),
			(long)((due - now) % GB_NS_PER_SEC) };

		nanosleep(&ts, NULL);
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ring", required_argument, NULL, 'r' }, { "count", required_argument, NULL, 'n' },
		{ "kind", required_argument, NULL, 'k' }, { "scope", required_argument, NULL, 's' },
		{ "parent-len", required_argument, NULL, 'p' },
		{ "depth", required_argument, NULL, 'd' }, { "value", required_argument, NULL, 'v' },
		{ "meta", required_argument, NULL, 'm' }, { "garbage", required_argument, NULL, 'g' },
		{ "hold", required_argument, NULL, 'h' }, { "seq", required_argument, NULL, 'q' },
		{ "rate", required_argument, NULL, 'R' },
		{ "dropped-out", required_argument, NULL, 'D' }, { "torn", no_argument, NULL, 'T' },
		{ "late-commit", required_argument, NULL, 'L' },
		{ "capacity", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	gb_rec_kv meta[GB_REC_MAX_META];
	gb_record rec = { .kind = GB_REC_COUNTER, .value = 1, .scope = "test" };
	const char *ring = NULL;
	uint64_t count = 1, garbage = 0, hold_ns = 0, v, seq = 0, rate = 0, late_ns = 0;
	bool late = false;
	gb_ring_opts ro;
	size_t n_meta = 0, written = 0, dropped = 0;
	bool with_seq = false, torn = false;
	FILE *dropped_out = NULL;
	char err[256], seqbuf[24];
	int o;

	gb__ring_opts_init(&ro);
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'r': ring = optarg; break;
		case 'n':
			if (gb__parse_uint(optarg, 0, 100000000, &count, err, sizeof(err)) < 0)
				usage(err);
			break;
		case 'k':
			if (strcmp(optarg, "timing") == 0) rec.kind = GB_REC_TIMING;
			else if (strcmp(optarg, "counter") == 0) rec.kind = GB_REC_COUNTER;
			else if (strcmp(optarg, "gauge") == 0) rec.kind = GB_REC_GAUGE;
			else if (strcmp(optarg, "metric") == 0) rec.kind = GB_REC_METRIC;
			else usage("bad --kind");
			break;
		case 's': rec.scope = optarg; break;
		case 'p':
			if (gb__parse_uint(optarg, 0, 65535, &v, err, sizeof(err)) < 0)
				usage(err);
			rec.parent_len = (size_t)v;
			break;
		case 'd':
			if (gb__parse_uint(optarg, 0, 65535, &v, err, sizeof(err)) < 0)
				usage(err);
			rec.depth = (uint16_t)v;
			break;
		case 'v': rec.value = strtod(optarg, NULL); break;
		case 'm': {
			char *eq = strchr(optarg, '=');

			if (eq == NULL || n_meta == GB_REC_MAX_META)
				usage("bad --meta");
			meta[n_meta++] = (gb_rec_kv){ optarg, (size_t)(eq - optarg), eq + 1, strlen(eq + 1) };
			break;
		}
		case 'g':
			if (gb__parse_uint(optarg, 0, 100000000, &garbage, err, sizeof(err)) < 0)
				usage(err);
			break;
		case 'h':
			if (gb__parse_duration(optarg, &hold_ns, err, sizeof(err)) < 0)
				usage(err);
			break;
		case 'q':
			if (gb__parse_uint(optarg, 0, UINT64_MAX / 2, &seq, err, sizeof(err)) < 0)
				usage(err);
			with_seq = true;
			break;
		case 'R':
			if (gb__parse_uint(optarg, 1, 100000000, &rate, err, sizeof(err)) < 0)
				usage(err);
			break;
		case 'D':
			if ((dropped_out = fopen(optarg, "w")) == NULL)
				usage("cannot open --dropped-out");
			break;
		case 'T': torn = true; break;
		case 'L':
			if (gb__parse_duration(optarg, &late_ns, err, sizeof(err)) < 0)
				usage(err);
			late = true;
			break;
		case 'C':
			if (gb__parse_uint(optarg, 1, UINT32_MAX, &ro.capacity, err, sizeof(err)) < 0)
				usage(err);
			break;
		default: usage("unknown option");
		}
	}
	if (with_seq) {
		if (n_meta == GB_REC_MAX_META)
			usage("no room for the seq pair");
		n_meta++;
	}
	rec.scope_len = strlen(rec.scope);
	rec.meta = meta;
	rec.n_meta = n_meta;

	gb_ring *r;
	if (gb__ring_open_producer(&r, ring, &ro, err, sizeof(err)) != GB_RING_OK)
		usage(err);
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t len = gb__rec_encode(&rec, buf, sizeof(buf));
	uint64_t start = gb__clock_mono_ns();
	for (uint64_t i = 0; i < count; i++) {
		if (rate != 0 && i % (rate / 1000 + 1) == 0)
			pace(r, start, i, rate);
		if (with_seq) {
			int sl = snprintf(seqbuf, sizeof(seqbuf), "%" PRIu64, seq + i);

			meta[n_meta - 1] = (gb_rec_kv){ "seq", 3, seqbuf, (size_t)sl };
		}
		rec.ts_ns = gb__clock_real_ns();
		len = gb__rec_encode(&rec, buf, sizeof(buf));
		if (gb__ring_write(r, GB_RING_TYPE_TELEMETRY, buf, len) == GB_RING_OK) {
			written++;
		} else {
			dropped++;
			if (dropped_out != NULL)
				fprintf(dropped_out, "%" PRIu64 "\n", seq + i);
		}
	}
	if (dropped_out != NULL && fclose(dropped_out) != 0)
		usage("cannot write --dropped-out");
	memset(buf, 0xa5, 64);
	for (uint64_t i = 0; i < garbage; i++) {
		if (gb__ring_write(r, GB_RING_TYPE_TELEMETRY, buf, 64) == GB_RING_OK)
			written++;
		else
			dropped++;
	}
	if (late) {
		gb_ring_claim c;

		if (with_seq) {
			int sl = snprintf(seqbuf, sizeof(seqbuf), "%" PRIu64, seq + count);

			meta[n_meta - 1] = (gb_rec_kv){ "seq", 3, seqbuf, (size_t)sl };
		}
		rec.ts_ns = gb__clock_real_ns();
		len = gb__rec_encode(&rec, buf, sizeof(buf));
		if (gb__ring_claim(r, GB_RING_TYPE_TELEMETRY, len, &c) == GB_RING_OK) {
			memcpy(c.data, buf, len);
			printf("claimed\n");
			fflush(stdout);
			hold(r, late_ns);
			gb__ring_commit(r, &c);
			written++;
		} else {
			dropped++;
		}
	}
	if (torn) {
		gb_ring_claim c;

		if (gb__ring_claim(r, GB_RING_TYPE_TELEMETRY, len, &c) == GB_RING_OK) {
			printf("torn\n");
			fflush(stdout);
			for (;;)
				hold(r, GB_NS_PER_SEC);
		}
	}
	hold(r, hold_ns);
	gb__ring_close(r);
	printf("written %zu dropped %zu\n", written, dropped);
	return dropped == 0 ? 0 : 1;
}
