/*
 * statsd_pack.c - DogStatsD protocol 1.1's packed values: the samples one timing context
 * (name and tags) gets over a flush interval are gathered as ":v1:v2:..." and leave as one
 * message, "name:v1:v2|d|#tags", instead of one line each. A context whose values reach the
 * room its message has in a datagram sends that message at once and starts another, so a
 * message is never split and never passes the datagram limit.
 */
#include "statsd_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pack_ctx {
	uint64_t hash;
	char *key;          /* the name, then the tags */
	size_t name_len, tags_len;
	char *vals;         /* ":v1:v2..." */
	size_t vals_len, vals_cap;
};

struct gb_statsd_pack {
	size_t max;         /* contexts per interval; 0: no cap */
	struct pack_ctx *ctx;
	size_t n, cap;
	uint32_t *slot;     /* index + 1 into ctx, 0 empty; nslots a power of two */
	size_t nslots;
	uint32_t generation; /* of the contexts: a new one at every flush, never 0 */
};

gb_statsd_pack *
gb__statsd_pack_new(size_t max_contexts)
{
	gb_statsd_pack *p = calloc(1, sizeof(*p));

	if (p != NULL) {
		p->max = max_contexts;
		p->generation = 1;
	}
	return p;
}

static void
clear(gb_statsd_pack *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->ctx[i].key);
		free(p->ctx[i].vals);
	}
	p->n = 0;
	if (++p->generation == 0)
		p->generation = 1;
	if (p->slot != NULL)
		memset(p->slot, 0, p->nslots * sizeof(*p->slot));
}

void
gb__statsd_pack_free(gb_statsd_pack *p)
{
	if (p == NULL)
		return;
	clear(p);
	free(p->ctx);
	free(p->slot);
	free(p);
}

/* Doubles the slot array (at least 64) and places every context again. */
static int
grow_slots(gb_statsd_pack *p)
{
	size_t ns = p->nslots ? p->nslots * 2 : 64;
	uint32_t *slot;

	if (ns > UINT32_MAX || (slot = calloc(ns, sizeof(*slot))) == NULL)
		return -1;
	for (size_t i = 0; i < p->n; i++) {
		size_t j = p->ctx[i].hash & (ns - 1);

		while (slot[j] != 0)
			j = (j + 1) & (ns - 1);
		slot[j] = (uint32_t)(i + 1);
	}
	free(p->slot);
	p->slot = slot;
	p->nslots = ns;
	return 0;
}

static struct pack_ctx *
find_or_add(gb_statsd_pack *p, const char *name, size_t nl, const char *tags, size_t tl)
{
	char key[GB_STATSD_NAME_MAX + GB_STATSD_UNIX_MAX];
	uint64_t h;
	size_t j;

	if (nl > GB_STATSD_NAME_MAX || tl > GB_STATSD_UNIX_MAX)
		return NULL;
	memcpy(key, name, nl);
	memcpy(key + nl, tags, tl);
	h = gb__hash_block(0, key, nl + tl);
	if (p->nslots != 0) {
		for (j = h & (p->nslots - 1); p->slot[j] != 0; j = (j + 1) & (p->nslots - 1)) {
			struct pack_ctx *c = &p->ctx[p->slot[j] - 1];

			if (c->hash == h && c->name_len == nl && c->tags_len == tl &&
			    memcmp(c->key, key, nl + tl) == 0)
				return c;
		}
	}
	if (p->max != 0 && p->n >= p->max)
		return NULL;
	if ((p->n + 1) * 2 > p->nslots && grow_slots(p) < 0)
		return NULL;
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 16;
		struct pack_ctx *c = realloc(p->ctx, nc * sizeof(*c));

		if (c == NULL)
			return NULL;
		p->ctx = c;
		p->cap = nc;
	}
	struct pack_ctx *c = &p->ctx[p->n];
	*c = (struct pack_ctx){ .hash = h, .name_len = nl, .tags_len = tl };
	if ((c->key = malloc(nl + tl + 1)) == NULL)
		return NULL;
	memcpy(c->key, key, nl + tl);
	for (j = h & (p->nslots - 1); p->slot[j] != 0; j = (j + 1) & (p->nslots - 1))
		;
	p->slot[j] = (uint32_t)(++p->n);
	return c;
}

static void
emit_ctx(struct pack_ctx *c, gb_statsd_pack_emit emit, void *ctx)
{
	if (c->vals_len == 0)
		return;
	emit(ctx, c->key, c->name_len, c->vals, c->vals_len, c->key + c->name_len, c->tags_len);
	c->vals_len = 0;
}

/* The context the hint names, when it is still that one. */
static struct pack_ctx *
hinted(gb_statsd_pack *p, const gb_statsd_pack_hint *hint, const char *name, size_t nl,
    const char *tags, size_t tl)
{
	struct pack_ctx *c;

	if (hint == NULL || hint->generation != p->generation || hint->index >= p->n)
		return NULL;
	c = &p->ctx[hint->index];
	if (c->name_len != nl || c->tags_len != tl || memcmp(c->key, name, nl) != 0 ||
	    memcmp(c->key + nl, tags, tl) != 0)
		return NULL;
	return c;
}

int
gb__statsd_pack_add(gb_statsd_pack *p, gb_statsd_pack_hint *hint, const char *name,
    size_t name_len, const char *tags, size_t tags_len, const char *val, size_t val_len,
    size_t room, gb_statsd_pack_emit emit, void *ctx)
{
	struct pack_ctx *c = hinted(p, hint, name, name_len, tags, tags_len);
	size_t need = val_len + 1;

	if (c == NULL && (c = find_or_add(p, name, name_len, tags, tags_len)) != NULL &&
	    hint != NULL)
		*hint = (gb_statsd_pack_hint){ (uint32_t)(c - p->ctx), p->generation };
	if (c == NULL || need > room)
		return -1;
	if (c->vals_len + need > room)
		emit_ctx(c, emit, ctx);
	if (c->vals_len + need > c->vals_cap) {
		size_t nc = c->vals_cap ? c->vals_cap * 2 : 64;
		char *v;

		while (nc < c->vals_len + need)
			nc *= 2;
		if ((v = realloc(c->vals, nc)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		c->vals = v;
		c->vals_cap = nc;
	}
	c->vals[c->vals_len] = ':';
	memcpy(c->vals + c->vals_len + 1, val, val_len);
	c->vals_len += need;
	return 0;
}

void
gb__statsd_pack_flush(gb_statsd_pack *p, gb_statsd_pack_emit emit, void *ctx)
{
	for (size_t i = 0; i < p->n; i++)
		emit_ctx(&p->ctx[i], emit, ctx);
	clear(p);
}

bool
gb__statsd_pack_empty(const gb_statsd_pack *p)
{
	return p->n == 0;
}
