/*
 * aggregate.h - what the collector folds before it sends: counters summed and gauges kept at
 * their last value per context (metric name + tags) over one flush interval, as DogStatsD
 * clients do, with a cap on the contexts one interval may hold and tables that shrink back
 * after a burst; and a cap on the distinct values each tag key may take (excess become "other").
 */
#ifndef GBATCH_COLLECTOR_AGGREGATE_H
#define GBATCH_COLLECTOR_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gb_agg gb_agg;

/* What a context is folded as: the DogStatsD type letter it is sent with. */
enum gb_agg_type {
	GB_AGG_COUNTER = 'c', /* values are summed */
	GB_AGG_GAUGE = 'g',   /* the last value wins */
};

/* An empty table that folds at most max_contexts distinct contexts per interval (0: no cap),
 * or NULL when out of memory. Free with gb__agg_free. */
gb_agg *gb__agg_new(size_t max_contexts);
void gb__agg_free(gb_agg *a);

/* Folds v into the context (name, tags, type): the bytes are copied, so they may be transient.
 * Allocates only when a context is seen for the first time in this interval and the table
 * must grow. Returns 0; 1 when the context is new and the interval already holds max_contexts
 * (v is not counted, but counted in gb__agg_dropped); or -1 (errno ENOMEM, or EMSGSIZE for a
 * key over the limit) when it could not be folded. */
int gb__agg_add(gb_agg *a, const char *name, size_t name_len, const char *tags, size_t tags_len,
    enum gb_agg_type type, double v);

/* Receives one folded context at flush. The strings are valid only during the call. */
typedef void (*gb_agg_emit)(void *ctx, const char *name, size_t name_len, const char *tags,
    size_t tags_len, enum gb_agg_type type, double v);

/* Hands every context folded since the last flush to emit, in first-seen order, then empties
 * the table. Its memory is kept for the next interval, unless a table is more than four times
 * what this interval needed (a burst): it then shrinks to twice that, and the memory goes back
 * to the system. */
void gb__agg_flush(gb_agg *a, gb_agg_emit emit, void *ctx);

/* Contexts folded since the last flush. */
size_t gb__agg_count(const gb_agg *a);

/* Values refused so far because their context was new and the interval was full. */
uint64_t gb__agg_dropped(const gb_agg *a);

/* Bytes the table holds allocated (its arrays' capacities), for tests and benchmarks. */
size_t gb__agg_bytes(const gb_agg *a);

/* ---- the tag cardinality cap ---- */

typedef struct gb_taglim gb_taglim;

/* A cap of max_values distinct values per tag key (0: no cap; gb__taglim_admit then always
 * says yes and remembers nothing). NULL when out of memory. At most GB_TAGLIM_MAX_KEYS keys
 * are tracked: values of keys past that are all capped. */
#define GB_TAGLIM_MAX_KEYS 1024
gb_taglim *gb__taglim_new(size_t max_values);
void gb__taglim_free(gb_taglim *l);

/* True when the (already sanitised) value may be sent for key: it was seen before, or the
 * key still has room. False when it must be replaced by "other" (counted). */
bool gb__taglim_admit(gb_taglim *l, const char *key, size_t key_len, const char *value,
    size_t value_len);

/* How many values were refused so far. */
uint64_t gb__taglim_capped(const gb_taglim *l);

#endif
