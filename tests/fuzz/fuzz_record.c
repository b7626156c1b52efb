/*
 * fuzz_record.c - libFuzzer target for the telemetry record decoder: untrusted bytes from
 * the ring. A record that decodes must re-encode to the same bytes, within the size limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[GB_REC_MAX_SIZE];
	gb_rec_kv meta[GB_REC_MAX_META];
	uint8_t *copy = malloc(size ? size : 1);
	gb_record r;
	size_t n;

	/* an exact-size heap copy: ASan sees any read past the end */
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	if (gb__rec_decode(copy, size, &r, meta) == 0) {
		n = gb__rec_encode(&r, out, sizeof(out));
		if (n != size || n > GB_REC_MAX_SIZE || memcmp(out, copy, size) != 0)
			abort();
	}
	free(copy);
	return 0;
}
