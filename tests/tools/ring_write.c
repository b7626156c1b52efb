/*
 * ring_write.c - a test producer: attaches to a ring as a producer and writes telemetry
 * records (encoded with the record codec) or garbage payloads, then holds the attachment for
 * a while with heartbeats, and detaches. The collector's integration tests drive it.
 *
 *   ring-write --ring NAME [--count N] [--kind timing|counter|gauge|metric] [--scope S]
 *              [--parent-len N] [--depth N] [--value V] [--meta K=V]... [--garbage N]
 *              [--hold DUR]
 * Prints "written N dropped M" and exits 0 when every record went in, 1 otherwise.
 */
#include <getopt.h>
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

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ring", required_argument, NULL, 'r' }, { "count", required_argument, NULL, 'n' },
		{ "kind", required_argument, NULL, 'k' }, { "scope", required_argument, NULL, 's' },
		{ "parent-len", required_argument, NULL, 'p' },
		{ "depth", required_argument, NULL, 'd' }, { "value", required_argument, NULL, 'v' },
		{ "meta", required_argument, NULL, 'm' }, { "garbage", required_argument, NULL, 'g' },
		{ "hold", required_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	gb_rec_kv meta[GB_REC_MAX_META];
	gb_record rec = { .kind = GB_REC_COUNTER, .value = 1, .scope = "test" };
	const char *ring = NULL;
	uint64_t count = 1, garbage = 0, hold_ns = 0, v;
	size_t n_meta = 0, written = 0, dropped = 0;
	char err[256];
	int o;

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
		default: usage("unknown option");
		}
	}
	rec.scope_len = strlen(rec.scope);
	rec.meta = meta;
	rec.n_meta = n_meta;

	gb_ring *r;
	if (gb__ring_open_producer(&r, ring, NULL, err, sizeof(err)) != GB_RING_OK)
		usage(err);
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t len = gb__rec_encode(&rec, buf, sizeof(buf));
	for (uint64_t i = 0; i < count; i++) {
		rec.ts_ns = gb__clock_real_ns();
		len = gb__rec_encode(&rec, buf, sizeof(buf));
		if (gb__ring_write(r, GB_RING_TYPE_TELEMETRY, buf, len) == GB_RING_OK)
			written++;
		else
			dropped++;
	}
	memset(buf, 0xa5, 64);
	for (uint64_t i = 0; i < garbage; i++) {
		if (gb__ring_write(r, GB_RING_TYPE_TELEMETRY, buf, 64) == GB_RING_OK)
			written++;
		else
			dropped++;
	}
	hold(r, hold_ns);
	gb__ring_close(r);
	printf("written %zu dropped %zu\n", written, dropped);
	return dropped == 0 ? 0 : 1;
}
