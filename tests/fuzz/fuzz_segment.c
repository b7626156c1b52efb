/*
 * fuzz_segment.c - libFuzzer target for what a consumer does with a segment another process
 * wrote: the identity check on raw bytes, then a real open and read of a ring file whose
 * header page and first data bytes are the input. Nothing may crash or read out of bounds.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"
#include "ring_layout.h"

#define CAPACITY GB_RING_MIN_CAPACITY

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void
touch(void *ctx, uint16_t type, const uint8_t *p, size_t len)
{
	uint8_t sum = (uint8_t)type;
	size_t i;

	(void)ctx;
	if (len > GB_RL_MAX_RECORD_CAP)
		abort();
	for (i = 0; i < len; i++)
		sum ^= p[i];
	sink = sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t seg[GB_RL_HEADER_SIZE + CAPACITY];
	char why[256], path[64];
	gb_ring_opts o;
	gb_ring *r = NULL;
	int fd, i;

	gb__rl_check(data, size, why, sizeof(why));
	memset(seg, 0, sizeof(seg));
	memcpy(seg, data, size < sizeof(seg) ? size : sizeof(seg));
	if (gb__rl_check(seg, sizeof(seg), why, sizeof(why)) != 0)
		return 0;
	snprintf(path, sizeof(path), "/dev/shm/gbatch-fuzz-%d", (int)getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, seg, sizeof(seg)) != (ssize_t)sizeof(seg))
		abort();
	close(fd);
	gb__ring_opts_init(&o);
	o.no_create = true;
	o.unblock_timeout_ns = 1;
	if (gb__ring_open_consumer(&r, path, &o, why, sizeof(why)) == GB_RING_OK) {
		for (i = 0; i < 8; i++) {
			gb__ring_wait(r, 0);
			gb__ring_read(r, touch, NULL, 64);
		}
		gb__ring_close(r);
	}
	unlink(path);
	return 0;
}
