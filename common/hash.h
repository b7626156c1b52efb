/*
 * hash.h - the hashes of the tree: FNV-1a over bytes, which can be continued (a path's hash
 * extends its parent's); a block hash eight bytes a step for the keys the collector hashes per
 * record; and a 64-bit finalizer (MurmurHash3's fmix64) that spreads every input bit into the
 * low bits a table masks. Not a public API.
 */
#ifndef GBATCH_COMMON_HASH_H
#define GBATCH_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#define GB_HASH_SEED 0xcbf29ce484222325ull

/* Continues FNV-1a hash h over n bytes at p. Start from GB_HASH_SEED. */
static inline uint64_t
gb__hash_more(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Mixes every bit of h into every other: apply before masking a hash into a table. */
static inline uint64_t
gb__hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* The finished hash of n bytes at p. */
static inline uint64_t
gb__hash(const void *p, size_t n)
{
	return gb__hash_mix(gb__hash_more(GB_HASH_SEED, p, n));
}

/* The finished hash of n bytes at p under seed (which tells keys of different kinds apart):
 * sixteen bytes a step in two independent lanes, each word multiplied in and folded down, the
 * lanes and the length joined by the finalizer. Every record pays it, so it must be cheap; a
 * caller compares keys in full on a match, so a collision costs a miss, never a wrong answer. */
static inline uint64_t
gb__hash_block(uint64_t seed, const void *p, size_t n)
{
	const uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xc2b2ae3d27d4eb4full;
	const unsigned char *b = p;
	uint64_t a = GB_HASH_SEED ^ seed, c = k2 ^ (seed >> 32 | seed << 32), w0, w1;
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		memcpy(&w0, b + i, 8);
		memcpy(&w1, b + i + 8, 8);
		a = (a ^ w0) * k1;
		c = (c ^ w1) * k2;
		a ^= a >> 29;
		c ^= c >> 31;
	}
	if (i + 8 <= n) {
		memcpy(&w0, b + i, 8);
		a = (a ^ w0) * k1;
		a ^= a >> 29;
		i += 8;
	}
	if (i < n) { /* the last 1 to 7 bytes, read without a loop (overlapping is fine) */
		uint32_t lo, hi;

		if (n >= 8) {
			memcpy(&w1, b + n - 8, 8);
		} else if (n >= 4) {
			memcpy(&lo, b, 4);
			memcpy(&hi, b + n - 4, 4);
			w1 = (uint64_t)hi << 32 | lo;
		} else {
			w1 = (uint64_t)b[0] | (uint64_t)b[n / 2] << 8 | (uint64_t)b[n - 1] << 16;
		}
		c = (c ^ w1) * k2;
	}
	return gb__hash_mix(a ^ gb__hash_mix(c ^ n));
}

#endif
