/*
 * prom_sink.c - the series behind /metrics. A record is named and labelled as Prometheus wants
 * (prefix_name_total, _seconds histograms, GenAI names from the OpenTelemetry convention,
 * sorted labels), capped like DogStatsD (names, tag values, contexts) and folded into its
 * series for the whole run. The sanitised series of a call site is cached, so a repeated
 * record costs a hash and an add. Everything here runs on the drain thread; the HTTP thread
 * only ever sees the snapshots gb__prom_fill makes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "hash.h"
#include "prom_internal.h"
#include "statsd_sink.h"

/* ---- the two chained tables ---- */

static void **
chain(struct table *t, uint64_t h)
{
	return &t->b[h & (t->nb - 1)];
}

/* Doubles the table when it holds more entries than chains; next_of gives an entry's link. */
static void
table_grow(struct table *t, void **(*next_of)(void *), uint64_t (*hash_of)(void *))
{
	size_t nb = t->nb ? t->nb * 2 : 256;
	void **b;

	if (t->n < t->nb || (b = calloc(nb, sizeof(*b))) == NULL)
		return; /* a full table still works, with longer chains */
	for (size_t i = 0; i < t->nb; i++) {
		void *e = t->b[i];

		while (e != NULL) {
			void *next = *next_of(e);

			*next_of(e) = b[hash_of(e) & (nb - 1)];
			b[hash_of(e) & (nb - 1)] = e;
			e = next;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

/* The link and the hash of an entry of either table, for table_grow and unlink_entry. */
static void **
claim_next(void *e)
{
	return (void **)&((struct claim *)e)->next;
}

static uint64_t
claim_hash(void *e)
{
	return ((struct claim *)e)->hash;
}

static void **
series_next(void *e)
{
	return (void **)&((struct series *)e)->hnext;
}

static uint64_t
series_hash(void *e)
{
	return ((struct series *)e)->hash;
}

struct claim *
gb__prom_claim_find(gb_prom_sink *s, const char *name, size_t len, uint64_t h)
{
	for (struct claim *c = *chain(&s->names, h); c != NULL; c = c->next)
		if (c->hash == h && c->len == len && memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

static void
unlink_entry(struct table *t, void *e, uint64_t h, void **(*next_of)(void *))
{
	for (void **p = chain(t, h); *p != NULL; p = next_of(*p)) {
		if (*p == e) {
			*p = *next_of(e);
			t->n--;
			return;
		}
	}
}

/* ---- families ---- */

/* A new family named name (with its type's suffix) claiming its sample names, or NULL when
 * one of them is taken or memory ran out. */
struct family *
gb__prom_family_new(gb_prom_sink *s, const char *name, size_t len, enum gb_prom_type type,
    const char *help, bool own)
{
	static const char *const hist[] = { "", "_bucket", "_sum", "_count" };
	size_t nc = type == GB_PROM_HISTOGRAM ? 4 : 1, hl = strlen(help);
	struct family *f;
	char *p;

	if (s->names.nb == 0)
		table_grow(&s->names, claim_next, claim_hash);
	if (s->names.nb == 0 || (f = calloc(1, sizeof(*f) + nc * (len + 8) + hl)) == NULL)
		return NULL;
	p = (char *)(f + 1);
	for (size_t i = 0; i < nc; i++) {
		struct claim *c = &f->claims[i];
		size_t sl = strlen(hist[i]);

		memcpy(p, name, len);
		memcpy(p + len, hist[i], sl);
		*c = (struct claim){ .f = f, .name = p, .len = len + sl };
		c->hash = gb__hash(c->name, c->len);
		p += len + sl;
		if (gb__prom_claim_find(s, c->name, c->len, c->hash) != NULL) {
			free(f);
			return NULL;
		}
	}
	f->help = p;
	memcpy(p, help, hl);
	f->help_len = hl;
	f->n_claims = nc;
	f->type = type;
	f->own = own;
	if (type == GB_PROM_HISTOGRAM) {
		bool times = len > 8 && memcmp(name + len - 8, "_seconds", 8) == 0;

		f->bounds = times ? s->buckets : gb__prom_token_buckets;
		f->n_bounds = times ? s->n_buckets : GB_PROM_N_TOKEN_BUCKETS;
	}
	for (size_t i = 0; i < nc; i++) {
		void **head = chain(&s->names, f->claims[i].hash);

		f->claims[i].next = *head;
		*head = &f->claims[i];
		s->names.n++;
	}
	table_grow(&s->names, claim_next, claim_hash);
	f->prev = s->last;
	if (s->last != NULL)
		s->last->next = f;
	else
		s->first = f;
	s->last = f;
	return f;
}

static void
family_free(gb_prom_sink *s, struct family *f)
{
	for (size_t i = 0; i < f->n_claims; i++)
		unlink_entry(&s->names, &f->claims[i], f->claims[i].hash, claim_next);
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		s->first = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	else
		s->last = f->prev;
	free(f);
}

/* ---- series ---- */

static uint64_t
series_key(const struct family *f, const char *labels, size_t len)
{
	return gb__hash_mix(gb__hash_more(gb__hash_more(GB_HASH_SEED, &f, sizeof(f)), labels,
	    len));
}

/* The series of f with these labels, made when new (NULL past the contexts cap: counted, or
 * out of memory). */
struct series *
gb__prom_series_get(gb_prom_sink *s, struct family *f, const char *labels, size_t len)
{
	uint64_t h = series_key(f, labels, len);
	size_t nv = f->type == GB_PROM_HISTOGRAM ? 2 + f->n_bounds : 1;
	struct series *se;

	if (s->series.nb == 0)
		table_grow(&s->series, series_next, series_hash);
	if (s->series.nb == 0)
		return NULL;
	for (se = *chain(&s->series, h); se != NULL; se = se->hnext)
		if (se->hash == h && se->f == f && se->labels_len == len &&
		    memcmp(se->labels, labels, len) == 0)
			return se;
	if (!f->own && s->max_contexts != 0 && s->st.series >= s->max_contexts) {
		s->st.contexts_dropped++;
		return NULL;
	}
	if ((se = calloc(1, sizeof(*se) + nv * sizeof(double) + len)) == NULL)
		return NULL;
	se->f = f;
	se->hash = h;
	se->n_val = nv;
	se->labels = (char *)(se->v + nv);
	memcpy(se->labels, labels, len);
	se->labels_len = len;
	se->hnext = *chain(&s->series, h);
	*chain(&s->series, h) = se;
	s->series.n++;
	table_grow(&s->series, series_next, series_hash);
	se->prev = f->last;
	if (f->last != NULL)
		f->last->next = se;
	else
		f->first = se;
	f->last = se;
	f->n_series++;
	if (!f->own)
		s->st.series++;
	return se;
}

static void
series_free(gb_prom_sink *s, struct series *se)
{
	struct family *f = se->f;

	unlink_entry(&s->series, se, se->hash, series_next);
	if (se->prev != NULL)
		se->prev->next = se->next;
	else
		f->first = se->next;
	if (se->next != NULL)
		se->next->prev = se->prev;
	else
		f->last = se->prev;
	f->n_series--;
	if (!f->own)
		s->st.series--;
	free(se);
}

static void
observe(struct series *se, double v, uint64_t now_ns)
{
	const struct family *f = se->f;

	se->updated_ns = now_ns;
	switch (f->type) {
	case GB_PROM_COUNTER:
		se->v[0] += v;
		break;
	case GB_PROM_GAUGE:
		se->v[0] = v;
		break;
	case GB_PROM_HISTOGRAM: {
		size_t lo = 0, hi = f->n_bounds;

		se->v[0] += 1;
		se->v[1] += v;
		while (lo < hi) { /* the first bound >= v */
			size_t mid = (lo + hi) / 2;

			if (f->bounds[mid] < v)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < f->n_bounds)
			se->v[2 + lo] += 1;
		break;
	}
	}
}

/* ---- the sink ---- */

gb_prom_sink *
gb__prom_new(const gb_prom_config *cfg, char *err, size_t errlen)
{
	gb_prom_sink *s = calloc(1, sizeof(*s));
	const char *prefix = cfg->prefix ? cfg->prefix : GB_STATSD_DEFAULT_PREFIX;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (gb__statsd_prefix_check(prefix, err, errlen) < 0 || gb__prom_set_globals(s, cfg, err,
	    errlen) < 0)
		goto fail;
	s->prefix_len = strlen(prefix);
	memcpy(s->prefix, prefix, s->prefix_len);
	s->path_names = cfg->names == GB_PROM_NAMES_PATH;
	s->max_contexts = cfg->max_contexts;
	s->expire_ns = cfg->expire_ns;
	s->n_buckets = cfg->buckets ? cfg->n_buckets : gb__prom_n_default_buckets;
	if (s->n_buckets == 0 || s->n_buckets > GB_PROM_MAX_BUCKETS) {
		snprintf(err, errlen, "%zu buckets: give 1 to %d", s->n_buckets, GB_PROM_MAX_BUCKETS);
		goto fail;
	}
	memcpy(s->buckets, cfg->buckets ? cfg->buckets : gb__prom_default_buckets,
	    s->n_buckets * sizeof(double));
	s->lim = gb__taglim_new(cfg->max_tag_values);
	s->names_lim = gb__taglim_new(cfg->max_names);
	s->cache = calloc(CACHE_SLOTS, sizeof(*s->cache));
	if (s->lim == NULL || s->names_lim == NULL || s->cache == NULL)
		goto oom;
	/* first, so that no producer's metric can take their names */
	if (gb__prom_own_init(s) < 0)
		goto oom;
	return s;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	gb__prom_free(s);
	return NULL;
}

void
gb__prom_free(gb_prom_sink *s)
{
	if (s == NULL)
		return;
	while (s->first != NULL) {
		struct family *f = s->first;

		while (f->first != NULL)
			series_free(s, f->first);
		family_free(s, f);
	}
	free(s->names.b);
	free(s->series.b);
	gb__taglim_free(s->lim);
	gb__taglim_free(s->names_lim);
	free(s->cache);
	free(s);
}

void
gb__prom_record(gb_prom_sink *s, const gb_record *r, uint64_t now_ns)
{
	uint8_t buf[CACHE_KEY_MAX];
	const uint8_t *ident;
	uint64_t head;
	size_t kl;
	struct series *se = NULL;
	double v = r->value;

	if (!isfinite(v) || (r->kind != GB_REC_GAUGE && r->kind != GB_REC_METRIC && v < 0)) {
		s->st.values_rejected++;
		return;
	}
	s->st.tags_dropped += r->meta_dropped > 0 ? r->meta_dropped :
	    (r->flags & GB_REC_F_META_DROPPED) != 0;
	/* keyed on the record's own bytes where they lie (a decoded record's are not copied) */
	if ((ident = gb__rec_ident(r, buf, sizeof(buf), &head, &kl)) != NULL) {
		uint64_t h = gb__hash_block(head, ident, kl);
		struct cache_ent *e = &s->cache[h & (CACHE_SLOTS - 1)];

		if (e->se != NULL && e->hash == h && e->head == head && e->key_len == kl &&
		    memcmp(e->key, ident, kl) == 0) {
			s->capped_on_hits += e->capped;
			s->st.tags_renamed += e->renamed;
			s->st.tags_dropped += e->dropped;
			s->names_capped_on_hits += e->name_capped;
			se = e->se;
		} else {
			uint64_t capped = gb__taglim_capped(s->lim), renamed = s->st.tags_renamed;
			uint64_t dropped = s->st.tags_dropped, nc = gb__taglim_capped(s->names_lim);

			if ((se = gb__prom_make_series(s, r)) != NULL) {
				*e = (struct cache_ent){ .hash = h, .head = head, .key_len = kl, .se = se,
					.capped = (uint16_t)(gb__taglim_capped(s->lim) - capped),
					.renamed = (uint16_t)(s->st.tags_renamed - renamed),
					.dropped = (uint16_t)(s->st.tags_dropped - dropped),
					.name_capped = (uint16_t)(gb__taglim_capped(s->names_lim) - nc) };
				memcpy(e->key, ident, kl);
			}
		}
	} else {
		se = gb__prom_make_series(s, r);
	}
	if (se != NULL)
		observe(se, v, now_ns);
}

void
gb__prom_expire(gb_prom_sink *s, uint64_t now_ns)
{
	bool any = false;

	if (s->expire_ns == 0)
		return;
	for (struct family *f = s->first, *fn; f != NULL; f = fn) {
		fn = f->next;
		if (f->own)
			continue;
		for (struct series *se = f->first, *sn; se != NULL; se = sn) {
			sn = se->next;
			if (now_ns - se->updated_ns >= s->expire_ns) {
				series_free(s, se);
				s->st.series_expired++;
				any = true;
			}
		}
		if (f->first == NULL)
			family_free(s, f);
	}
	if (any) /* the cache points at series */
		for (size_t i = 0; i < CACHE_SLOTS; i++)
			s->cache[i].se = NULL;
}

void
gb__prom_get_stats(const gb_prom_sink *s, gb_prom_stats *out)
{
	*out = s->st;
	out->tag_values_capped = gb__taglim_capped(s->lim) + s->capped_on_hits;
	out->names_capped = gb__taglim_capped(s->names_lim) + s->names_capped_on_hits;
}

int
gb__prom_fill(gb_prom_sink *s, gb_prom_snap *snap)
{
	snap->text_len = snap->n_fam = snap->n_ser = snap->n_val = 0;
	for (struct family *f = s->first; f != NULL; f = f->next) {
		struct gb_prom_snap_fam *sf;

		if (f->n_series == 0)
			continue;
		if (snap->n_fam == snap->fam_cap) {
			size_t c = snap->fam_cap ? snap->fam_cap * 2 : 64;
			void *p = realloc(snap->fam, c * sizeof(*snap->fam));

			if (p == NULL)
				goto oom;
			snap->fam = p;
			snap->fam_cap = c;
		}
		sf = &snap->fam[snap->n_fam++];
		*sf = (struct gb_prom_snap_fam){ .type = f->type, .bounds = f->bounds,
			.n_bounds = f->n_bounds, .first = snap->n_ser, .name_len = f->claims[0].len,
			.help_len = f->help_len };
		if (gb__prom_snap_text(snap, f->claims[0].name, sf->name_len, &sf->name_off) < 0 ||
		    gb__prom_snap_text(snap, f->help, f->help_len, &sf->help_off) < 0)
			goto oom;
		for (struct series *se = f->first; se != NULL; se = se->next) {
			struct gb_prom_snap_ser *ss;

			if (snap->n_ser == snap->ser_cap) {
				size_t c = snap->ser_cap ? snap->ser_cap * 2 : 256;
				void *p = realloc(snap->ser, c * sizeof(*snap->ser));

				if (p == NULL)
					goto oom;
				snap->ser = p;
				snap->ser_cap = c;
			}
			ss = &snap->ser[snap->n_ser++];
			ss->labels_len = se->labels_len;
			if (gb__prom_snap_text(snap, se->labels, se->labels_len, &ss->labels_off) < 0 ||
			    gb__prom_snap_vals(snap, se->n_val, &ss->val_off) < 0)
				goto oom;
			memcpy(snap->val + ss->val_off, se->v, se->n_val * sizeof(double));
			sf->n++;
		}
	}
	return 0;
oom:
	snap->text_len = snap->n_fam = snap->n_ser = snap->n_val = 0;
	return -1;
}
