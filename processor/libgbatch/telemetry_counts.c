/*
 * telemetry_counts.c - a context's call counts: one entry per distinct scope path, in an
 * open-addressing table that recording threads read without a lock. Only adding a path never
 * seen before takes the lock: it fills a slot with a release store, or copies every entry into
 * a table twice the size and publishes that. A replaced table stays until the context is freed,
 * since a reader may still probe it; all of them together are smaller than the newest, so the
 * tables of GB_TELE_MAX_PATHS paths stay under 2 MiB.
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "telemetry_internal.h"

struct gb__count_table {
	struct gb__count_table *older;
	size_t cap; /* a power of two */
	_Atomic(struct gb__count_entry *) slot[];
};

static struct gb__count_table *
table_new(gb__counts *c, size_t cap)
{
	struct gb__count_table *tb = calloc(1, sizeof(*tb) + cap * sizeof(tb->slot[0]));

	if (tb == NULL)
		return NULL;
	tb->cap = cap; /* calloc's zeroes are NULL slots */
	atomic_fetch_add_explicit(&c->bytes, sizeof(*tb) + cap * sizeof(tb->slot[0]),
	    memory_order_relaxed);
	return tb;
}

int
gb__counts_init(gb__counts *c)
{
	struct gb__count_table *tb;

	memset(c, 0, sizeof(*c));
	atomic_init(&c->bytes, 0);
	if ((tb = table_new(c, 64)) == NULL)
		return -1;
	atomic_init(&c->table, tb);
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

void
gb__counts_fini(gb__counts *c)
{
	struct gb__count_table *tb = atomic_load_explicit(&c->table, memory_order_relaxed), *older;

	for (size_t i = 0; i < tb->cap; i++)
		free(atomic_load_explicit(&tb->slot[i], memory_order_relaxed));
	for (; tb != NULL; tb = older) {
		older = tb->older;
		free(tb);
	}
	pthread_mutex_destroy(&c->lock);
}

size_t
gb__counts_memory(const gb__counts *c)
{
	return atomic_load_explicit(&c->bytes, memory_order_relaxed);
}

/* The entry of the path (len bytes, hash h) in tb, or NULL; *at is where the probe ended. */
static struct gb__count_entry *
table_probe(const struct gb__count_table *tb, const char *path, size_t len, uint64_t h,
    size_t *at)
{
	size_t j = gb__hash_mix(h) & (tb->cap - 1);
	struct gb__count_entry *e;

	while ((e = atomic_load_explicit(&tb->slot[j], memory_order_acquire)) != NULL &&
	    (e->hash != h || e->len != len || memcmp(e->path, path, len) != 0))
		j = (j + 1) & (tb->cap - 1);
	*at = j;
	return e;
}

/* Under the lock: publishes a table twice the size of tb holding its entries. */
static struct gb__count_table *
table_grow(gb__counts *c, struct gb__count_table *tb)
{
	struct gb__count_table *nt = table_new(c, tb->cap * 2);

	if (nt == NULL)
		return NULL;
	for (size_t i = 0; i < tb->cap; i++) {
		struct gb__count_entry *e = atomic_load_explicit(&tb->slot[i], memory_order_relaxed);
		size_t j;

		if (e == NULL)
			continue;
		j = gb__hash_mix(e->hash) & (nt->cap - 1);
		while (atomic_load_explicit(&nt->slot[j], memory_order_relaxed) != NULL)
			j = (j + 1) & (nt->cap - 1);
		atomic_store_explicit(&nt->slot[j], e, memory_order_relaxed);
	}
	nt->older = tb;
	atomic_store_explicit(&c->table, nt, memory_order_release);
	return nt;
}

/* Adds the path, under the lock, looking for it again first: another thread may have added it
 * since this one looked. */
static struct gb__count_entry *
entry_add(gb__counts *c, const char *path, size_t len, uint64_t h)
{
	struct gb__count_table *tb;
	struct gb__count_entry *e = NULL;
	size_t j;

	pthread_mutex_lock(&c->lock);
	tb = atomic_load_explicit(&c->table, memory_order_relaxed);
	if (c->used < GB_TELE_MAX_PATHS && 2 * (c->used + 1) > tb->cap &&
	    (tb = table_grow(c, tb)) == NULL)
		goto out;
	if ((e = table_probe(tb, path, len, h, &j)) != NULL)
		goto out;
	if (c->used >= GB_TELE_MAX_PATHS) {
		if (!c->full)
			gb__log_warnx("telemetry: %d distinct scope and metric names; the "
			    "call counts of new ones are 0 from now on", GB_TELE_MAX_PATHS);
		c->full = true;
		goto out;
	}
	if ((e = malloc(sizeof(*e) + len + 1)) == NULL)
		goto out;
	e->hash = h;
	atomic_init(&e->count, 0);
	e->len = len;
	memcpy(e->path, path, len);
	e->path[len] = '\0';
	atomic_store_explicit(&tb->slot[j], e, memory_order_release);
	c->used++;
	atomic_fetch_add_explicit(&c->bytes, sizeof(*e) + len + 1, memory_order_relaxed);
out:
	pthread_mutex_unlock(&c->lock);
	return e;
}

struct gb__count_entry *
gb__counts_find(gb__counts *c, const char *path, size_t len, uint64_t h)
{
	size_t j;
	struct gb__count_entry *e = table_probe(atomic_load_explicit(&c->table,
	    memory_order_acquire), path, len, h, &j);

	return e != NULL ? e : entry_add(c, path, len, h);
}
