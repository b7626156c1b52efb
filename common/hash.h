/*
 * hash.h - the one hash function of the tree: FNV-1a over bytes, which can be continued (a
 * path's hash extends its parent's), and a 64-bit finalizer (MurmurHash3's fmix64) that
 * spreads FNV's weak low bits before a table masks them. Not a public API.
 */
#ifndef GBATCH_COMMON_HASH_H
#define GBATCH_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

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

#endif
