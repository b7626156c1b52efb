/*
 * aggregate.c - the per-interval context table and the tag cardinality cap. Both rest on one
 * small interned-string table: open addressing over a dense entry array whose bytes live in
 * one arena, so a flush empties everything by resetting three counters; only a table left far
 * larger than its interval needed (a burst) is shrunk, and then given back to the system.
 */
#include "aggregate.h"

#include "hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Longest context key: type, name length, a sanitised name, a unixgram datagram of tags. */
#define KEY_MAX (3 + 256 + 8192)

struct ent {
	uint64_t hash;
	uint32_t off, len;
};

struct strtab {
	uint32_t *slots; /* entry index + 1; 0 = empty */
	size_t nslots;   /* a power of two, at least twice the entries */
	struct ent *ents;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
};

static void
strtab_fini(struct strtab *t)
{
	free(t->slots);
	free(t->ents);
	free(t->arena);
	memset(t, 0, sizeof(*t));
}

static void
strtab_clear(struct strtab *t)
{
	if (t->n > 0)
		memset(t->slots, 0, t->nslots * sizeof(*t->slots));
	t->n = 0;
	t->alen = 0;
}

/* The smallest min * 2^k that is at least need. */
static size_t
fit(size_t need, size_t min)
{
	size_t n = min;

	while (n < need)
		n *= 2;
	return n;
}

/* At a flush, before the table is cleared (n entries and alen bytes were used in the interval
 * just ended; the entries are lost): each array more than four times what that needed is cut
 * to twice it. Returns true when something shrank. */
static bool
strtab_shrink(struct strtab *t, size_t n, size_t alen)
{
	size_t cap = 2 * fit(n, 64), nslots = 2 * fit(2 * n, 128), acap = 2 * fit(alen, 4096);
	bool shrunk = false;

	if (t->cap > 2 * cap) {
		struct ent *e = realloc(t->ents, cap * sizeof(*e));

		if (e != NULL) {
			t->ents = e;
			t->cap = cap;
			shrunk = true;
		}
	}
	if (t->nslots > 2 * nslots) {
		uint32_t *slots = calloc(nslots, sizeof(*slots));

		if (slots != NULL) {
			free(t->slots);
			t->slots = slots;
			t->nslots = nslots;
			shrunk = true;
		}
	}
	if (t->acap > 2 * acap) {
		char *a = realloc(t->arena, acap);

		if (a != NULL) {
			t->arena = a;
			t->acap = acap;
			shrunk = true;
		}
	}
	return shrunk;
}

static int
strtab_rehash(struct strtab *t, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		size_t j = t->ents[i].hash & (nslots - 1);

		while (slots[j] != 0)
			j = (j + 1) & (nslots - 1);
		slots[j] = (uint32_t)(i + 1);
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

/* Makes room for one more entry of len bytes. */
static int
strtab_reserve(struct strtab *t, size_t len)
{
	if (t->n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct ent *e = realloc(t->ents, cap * sizeof(*e));

		if (e == NULL)
			return -1;
		t->ents = e;
		t->cap = cap;
	}
	if ((t->n + 1) * 2 > t->nslots && strtab_rehash(t, t->nslots ? t->nslots * 2 : 128) < 0)
		return -1;
	if (t->alen + len > t->acap) {
		size_t acap = t->acap ? t->acap : 4096;
		char *a;

		while (acap < t->alen + len)
			acap *= 2;
		if ((a = realloc(t->arena, acap)) == NULL)
			return -1;
		t->arena = a;
		t->acap = acap;
	}
	return 0;
}

/* Finds key, inserting it when insert is true. Returns the entry index, or -1 when absent
 * (insert false) or out of memory (insert true; errno ENOMEM). *inserted tells which. */
static long
strtab_get(struct strtab *t, const void *key, size_t len, bool insert, bool *inserted)
{
	uint64_t h = gb__hash(key, len);
	size_t j;

	*inserted = false;
	if (t->nslots > 0) {
		for (j = h & (t->nslots - 1); t->slots[j] != 0; j = (j + 1) & (t->nslots - 1)) {
			const struct ent *e = &t->ents[t->slots[j] - 1];

			if (e->hash == h && e->len == len &&
			    (len == 0 || memcmp(t->arena + e->off, key, len) == 0))
				return (long)(t->slots[j] - 1);
		}
	}
	if (!insert)
		return -1;
	if (strtab_reserve(t, len) < 0) {
		errno = ENOMEM;
		return -1;
	}
	for (j = h & (t->nslots - 1); t->slots[j] != 0; j = (j + 1) & (t->nslots - 1))
		;
	t->ents[t->n] = (struct ent){ .hash = h, .off = (uint32_t)t->alen, .len = (uint32_t)len };
	if (len > 0) /* an empty key (the names cap's) may meet an arena not made yet */
		memcpy(t->arena + t->alen, key, len);
	t->alen += len;
	t->slots[j] = (uint32_t)(t->n + 1);
	*inserted = true;
	return (long)t->n++;
}

/* ---- contexts ---- */

struct ctxval {
	double v;
	uint32_t name_len;
};

struct gb_agg {
	struct strtab tab;
	struct ctxval *vals; /* parallel to tab.ents */
	size_t vcap;
	size_t max;          /* contexts per interval; SIZE_MAX = no cap */
	uint64_t dropped;
	char key[KEY_MAX];
};

gb_agg *
gb__agg_new(size_t max_contexts)
{
	gb_agg *a = calloc(1, sizeof(gb_agg));

	if (a != NULL)
		a->max = max_contexts > 0 ? max_contexts : SIZE_MAX;
	return a;
}

void
gb__agg_free(gb_agg *a)
{
	if (a == NULL)
		return;
	strtab_fini(&a->tab);
	free(a->vals);
	free(a);
}

int
gb__agg_add(gb_agg *a, const char *name, size_t name_len, const char *tags, size_t tags_len,
    enum gb_agg_type type, double v)
{
	size_t len = 3 + name_len + tags_len;
	uint16_t nl16 = (uint16_t)name_len;
	bool inserted;
	long i;

	if (len > sizeof(a->key) || name_len > UINT16_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (a->tab.n + 1 > a->vcap && a->tab.n < a->max) {
		size_t cap = a->vcap ? a->vcap * 2 : 64;
		struct ctxval *nv = realloc(a->vals, cap * sizeof(*nv));

		if (nv == NULL) {
			errno = ENOMEM;
			return -1;
		}
		a->vals = nv;
		a->vcap = cap;
	}
	/* type, name length, name, tags: the length keeps "ab"+"c" apart from "a"+"bc" */
	a->key[0] = (char)type;
	memcpy(a->key + 1, &nl16, 2);
	memcpy(a->key + 3, name, name_len);
	memcpy(a->key + 3 + name_len, tags, tags_len);
	if ((i = strtab_get(&a->tab, a->key, len, a->tab.n < a->max, &inserted)) < 0) {
		if (a->tab.n < a->max)
			return -1;
		a->dropped++;
		return 1;
	}
	if (inserted)
		a->vals[i] = (struct ctxval){ .v = 0, .name_len = (uint32_t)name_len };
	if (type == GB_AGG_COUNTER)
		a->vals[i].v += v;
	else
		a->vals[i].v = v;
	return 0;
}

/* At a flush, before the clear: a table left far larger than the interval needed is cut down. */
static void
agg_shrink(gb_agg *a, size_t n, size_t alen)
{
	bool shrunk = strtab_shrink(&a->tab, n, alen);
	size_t vcap = 2 * fit(n, 64);

	if (a->vcap > 2 * vcap) {
		struct ctxval *nv = realloc(a->vals, vcap * sizeof(*nv));

		if (nv != NULL) {
			a->vals = nv;
			a->vcap = vcap;
			shrunk = true;
		}
	}
#ifdef __GLIBC__
	/* freed blocks below glibc's (raised) mmap threshold stay in the heap otherwise */
	if (shrunk)
		malloc_trim(0);
#else
	(void)shrunk;
#endif
}

void
gb__agg_flush(gb_agg *a, gb_agg_emit emit, void *ctx)
{
	size_t n = a->tab.n, alen = a->tab.alen;

	for (size_t i = 0; i < n; i++) {
		const struct ent *e = &a->tab.ents[i];
		const char *k = a->tab.arena + e->off;
		size_t nl = a->vals[i].name_len;

		emit(ctx, k + 3, nl, k + 3 + nl, e->len - 3 - nl, (enum gb_agg_type)k[0], a->vals[i].v);
	}
	agg_shrink(a, n, alen);
	strtab_clear(&a->tab);
}

size_t
gb__agg_count(const gb_agg *a)
{
	return a->tab.n;
}

uint64_t
gb__agg_dropped(const gb_agg *a)
{
	return a->dropped;
}

size_t
gb__agg_bytes(const gb_agg *a)
{
	return a->tab.cap * sizeof(struct ent) + a->tab.nslots * sizeof(uint32_t) + a->tab.acap +
	    a->vcap * sizeof(struct ctxval);
}

/* ---- tag cardinality cap ---- */

struct gb_taglim {
	size_t max_values;
	struct strtab keys;   /* tag keys */
	uint32_t *counts;     /* distinct values per key, parallel to keys.ents */
	struct strtab pairs;  /* u32 key index + value bytes */
	uint64_t capped;
	char key[4 + 256];
};

gb_taglim *
gb__taglim_new(size_t max_values)
{
	gb_taglim *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->max_values = max_values;
	if (max_values > 0 &&
	    (l->counts = calloc(GB_TAGLIM_MAX_KEYS, sizeof(*l->counts))) == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void
gb__taglim_free(gb_taglim *l)
{
	if (l == NULL)
		return;
	strtab_fini(&l->keys);
	strtab_fini(&l->pairs);
	free(l->counts);
	free(l);
}

bool
gb__taglim_admit(gb_taglim *l, const char *key, size_t key_len, const char *value,
    size_t value_len)
{
	bool inserted;
	long k, p;
	uint32_t k32;

	if (l->max_values == 0)
		return true;
	if (value_len > sizeof(l->key) - 4)
		goto capped;
	k = strtab_get(&l->keys, key, key_len, l->keys.n < GB_TAGLIM_MAX_KEYS, &inserted);
	if (k < 0)
		goto capped;
	k32 = (uint32_t)k;
	memcpy(l->key, &k32, 4);
	memcpy(l->key + 4, value, value_len);
	p = strtab_get(&l->pairs, l->key, 4 + value_len, l->counts[k] < l->max_values, &inserted);
	if (p < 0)
		goto capped;
	if (inserted)
		l->counts[k]++;
	return true;
capped:
	l->capped++;
	return false;
}

uint64_t
gb__taglim_capped(const gb_taglim *l)
{
	return l->capped;
}
