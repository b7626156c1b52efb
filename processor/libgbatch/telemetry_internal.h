/*
 * telemetry_internal.h - what libgbatch's own modules need from the telemetry context beyond
 * the public API (not a public API): timings measured elsewhere, such as one job of many
 * interleaved in a single thread, where a begin/end scope cannot stay open, and what its call
 * counts take.
 */
#ifndef GBATCH_PROCESSOR_TELEMETRY_INTERNAL_H
#define GBATCH_PROCESSOR_TELEMETRY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gbatch/telemetry.h>

/* Distinct paths whose call counts a context keeps; later new paths report call_count 0. */
#define GB_TELE_MAX_PATHS 65536

/* Bytes a context holds for its call counts: the tables of paths and the paths themselves.
 * Bounded by GB_TELE_MAX_PATHS (with each thread's fixed cache of 64 slots beside it). */
size_t gb__tele_memory(const gb_tele *t);

/* Reports a timing of `seconds` under "<current scope path>.<name>" (or name at top level),
 * with n metadata pairs (borrowed during the call), as if a scope had lasted that long. */
void gb__tele_timing(gb_tele *t, const char *name, double seconds, const gb_kv *meta, size_t n);
/* Reports one sample of a distribution that is not a time (a token count) under "<current
 * scope path>.<name>": record_metric with metric_type "histogram". */
void gb__tele_histogram(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n);

/* ---- the call-count table of a context (telemetry_counts.c) ---- */

/* One scope path and how often it has been recorded. Allocated once, freed with the table:
 * the context's frames and the threads' caches point at it. */
struct gb__count_entry {
	uint64_t hash;
	_Atomic unsigned count;
	size_t len; /* path length */
	char path[];
};

/* Every distinct path of one context. Found without a lock; the lock is taken only to add a
 * path never seen before. */
typedef struct gb__counts {
	pthread_mutex_t lock;             /* taken to add an entry, never to find one */
	_Atomic(struct gb__count_table *) table; /* the newest table */
	size_t used;                      /* entries; under lock */
	bool full;                        /* GB_TELE_MAX_PATHS reached (warned once); under lock */
	_Atomic size_t bytes;             /* what the tables and entries take */
} gb__counts;

/* 0, or -1 when out of memory. */
int gb__counts_init(gb__counts *c);
/* Frees every table and entry: no thread may still be recording. */
void gb__counts_fini(gb__counts *c);
/* The entry of the path (len bytes, its gb__hash_more hash h), added when new; NULL when out of
 * memory or, for a new path, once the table holds GB_TELE_MAX_PATHS (so a program that makes
 * up names keeps bounded memory; the paths already counted stay exact). Thread-safe. */
struct gb__count_entry *gb__counts_find(gb__counts *c, const char *path, size_t len, uint64_t h);
/* What the tables and entries take, in bytes. */
size_t gb__counts_memory(const gb__counts *c);

#endif
