/*
 * statsd_cache.c - the sink's line cache: the sanitised name and tags a record became, found
 * again for the next record of the same identity without sanitising, capping or budgeting its
 * tags again. A record is keyed on its own fields where they lie (its header fields packed in
 * one word, its scope and metadata bytes hashed and compared in place), so a hit copies
 * nothing. The table is 8-way set-associative: buckets of eight (hash, line) pairs in two
 * 64-byte cache lines, doubled whenever a new line finds its bucket full, up to a ceiling of
 * lines; at the ceiling a full bucket lets its oldest line go. So the lines of real tag
 * variety (1 000 values of a call site, a dozen call sites) all stay, and memory is bounded.
 */
#include "statsd_internal.h"

#include <stdlib.h>
#include <string.h>

#define WAYS 8
#define FIRST_BUCKETS 32 /* 256 lines before the first doubling */

/* A line with its key and text, in one allocation. */
struct line {
	gb_statsd_line pub; /* first: the sink holds a pointer to it */
	uint64_t head;
	uint16_t key_len;
	uint16_t size;      /* of the whole allocation */
	uint8_t bytes[];    /* the key (key_len bytes), then the name, then the tags */
};

/* Ways are filled from the front and never emptied one by one, so the first NULL ends a
 * bucket; way 0 holds the newest line. A way's hash and line share a cache line, so a hit in
 * one of the first four ways reads one. */
struct way {
	uint64_t hash;
	struct line *line;
};
struct bucket {
	struct way way[WAYS];
};

struct gb_statsd_cache {
	struct bucket *b;
	size_t mask;       /* buckets - 1 */
	size_t max_buckets;
	size_t n;          /* lines */
	size_t bytes;      /* of the lines and the bucket array */
};

gb_statsd_cache *
gb__statsd_cache_new(size_t max_lines)
{
	gb_statsd_cache *c = calloc(1, sizeof(*c));
	size_t mb = 1, first;

	if (max_lines == 0 || max_lines > GB_STATSD_CACHE_LINES)
		max_lines = GB_STATSD_CACHE_LINES;
	while (mb * 2 * WAYS <= max_lines)
		mb *= 2; /* the most buckets whose ways hold no more than max_lines */
	first = mb < FIRST_BUCKETS ? mb : FIRST_BUCKETS;
	if (c == NULL || (c->b = calloc(first, sizeof(*c->b))) == NULL) {
		free(c);
		return NULL;
	}
	c->max_buckets = mb;
	c->mask = first - 1;
	c->bytes = first * sizeof(*c->b);
	return c;
}

void
gb__statsd_cache_free(gb_statsd_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i <= c->mask; i++)
		for (size_t w = 0; w < WAYS && c->b[i].way[w].line != NULL; w++)
			free(c->b[i].way[w].line);
	free(c->b);
	free(c);
}

bool
gb__statsd_cache_key(const gb_record *r, gb_statsd_key *k)
{
	k->ident = gb__rec_ident(r, k->buf, sizeof(k->buf), &k->head, &k->len);
	if (k->ident == NULL)
		return false;
	k->hash = gb__hash_block(k->head, k->ident, k->len);
	return true;
}

gb_statsd_line *
gb__statsd_cache_find(gb_statsd_cache *c, const gb_statsd_key *k)
{
	const struct bucket *b = &c->b[k->hash & c->mask];

	for (size_t w = 0; w < WAYS && b->way[w].line != NULL; w++) {
		struct line *l = b->way[w].line;

		if (b->way[w].hash == k->hash && l->head == k->head && l->key_len == k->len &&
		    memcmp(l->bytes, k->ident, k->len) == 0)
			return &l->pub;
	}
	return NULL;
}

/* Puts l at the front of b, the others one way back; the line pushed off the end (if b was
 * full) is returned. */
static struct line *
push(struct bucket *b, uint64_t hash, struct line *l)
{
	struct line *out = b->way[WAYS - 1].line;

	memmove(&b->way[1], &b->way[0], (WAYS - 1) * sizeof(b->way[0]));
	b->way[0] = (struct way){ .hash = hash, .line = l };
	return out;
}

/* Doubles the buckets. Bucket i's lines all go to bucket i or i + old count, so none falls
 * off; oldest first, so each keeps its order. Returns 0, or -1 (the table stays). */
static int
grow(gb_statsd_cache *c)
{
	size_t nb = (c->mask + 1) * 2;
	struct bucket *b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return -1;
	for (size_t i = 0; i <= c->mask; i++) {
		for (size_t w = WAYS; w-- > 0;) {
			uint64_t h = c->b[i].way[w].hash;

			if (c->b[i].way[w].line != NULL)
				(void)push(&b[h & (nb - 1)], h, c->b[i].way[w].line);
		}
	}
	free(c->b);
	c->bytes += (nb - (c->mask + 1)) * sizeof(*b);
	c->b = b;
	c->mask = nb - 1;
	return 0;
}

gb_statsd_line *
gb__statsd_cache_put(gb_statsd_cache *c, const gb_statsd_key *k, const char *name,
    size_t name_len, const char *tags, size_t tags_len)
{
	struct bucket *b = &c->b[k->hash & c->mask];
	struct line *l, *old;
	size_t size = sizeof(*l) + k->len + name_len + tags_len;

	if (k->len > GB_STATSD_CACHE_KEY_MAX || name_len + tags_len > GB_STATSD_CACHE_TEXT_MAX)
		return NULL;
	while (b->way[WAYS - 1].line != NULL && c->mask + 1 < c->max_buckets && grow(c) == 0)
		b = &c->b[k->hash & c->mask];
	if ((l = malloc(size)) == NULL)
		return NULL;
	*l = (struct line){ .head = k->head, .key_len = (uint16_t)k->len, .size = (uint16_t)size,
		.pub = { .name_len = (uint16_t)name_len, .tags_len = (uint16_t)tags_len } };
	memcpy(l->bytes, k->ident, k->len);
	memcpy(l->bytes + k->len, name, name_len);
	memcpy(l->bytes + k->len + name_len, tags, tags_len);
	l->pub.text = (const char *)l->bytes + k->len;
	if ((old = push(b, k->hash, l)) != NULL) {
		c->bytes -= old->size;
		c->n--;
		free(old);
	}
	c->bytes += size;
	c->n++;
	return &l->pub;
}

size_t
gb__statsd_cache_lines(const gb_statsd_cache *c)
{
	return c->n;
}

size_t
gb__statsd_cache_bytes(const gb_statsd_cache *c)
{
	return c->bytes + sizeof(*c);
}
