/*
 * prom_internal.h - what the prom_*.c files share: the snapshot the drain fills and the HTTP
 * thread renders. A snapshot owns copies of everything it shows (names, help, labels,
 * values), so the drain may drop a series while a scrape renders an older snapshot; only the
 * bucket bounds are borrowed, from the sink, which outlives every snapshot.
 */
#ifndef GBATCH_COLLECTOR_PROM_INTERNAL_H
#define GBATCH_COLLECTOR_PROM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"
#include "prom_sink.h"
#include "statsd_sink.h"

enum gb_prom_type { GB_PROM_COUNTER = 1, GB_PROM_GAUGE = 2, GB_PROM_HISTOGRAM = 3 };

/* A family in a snapshot: its series are ser[first, first + n). */
struct gb_prom_snap_fam {
	size_t name_off, name_len, help_off, help_len;
	enum gb_prom_type type;
	const double *bounds;  /* histograms: the bucket bounds (borrowed from the sink) */
	size_t n_bounds;
	size_t first, n;
};

/* A series: labels text[labels_off, +labels_len) (`k="v",...`, escaped), values
 * val[val_off...]: one value, or count, sum and then one count per bucket (not cumulative). */
struct gb_prom_snap_ser {
	size_t labels_off, labels_len;
	size_t val_off;
};

struct gb_prom_snap {
	char *text;
	size_t text_len, text_cap;
	struct gb_prom_snap_fam *fam;
	size_t n_fam, fam_cap;
	struct gb_prom_snap_ser *ser;
	size_t n_ser, ser_cap;
	double *val;
	size_t n_val, val_cap;
};

/* ---- the sink's state, shared by prom_sink.c and prom_names.c ---- */

#define CACHE_SLOTS 1024
#define CACHE_KEY_MAX 256
#define MAX_GLOBALS 64
#define MAX_DROP 32
#define MAX_LABELS (2 + GB_REC_MAX_META + MAX_GLOBALS)
#define VALUE_ESC_MAX (2 * GB_PROM_LABEL_MAX)
#define LABELS_MAX (MAX_LABELS * (GB_PROM_LABEL_MAX + VALUE_ESC_MAX + 4))

/* The OpenTelemetry GenAI token usage buckets (the convention's advice), for histograms of
 * values that are not times. */
extern const double gb__prom_token_buckets[];
#define GB_PROM_N_TOKEN_BUCKETS 14

struct family;

/* A name a family's samples use, in the name table: two families never share one. */
struct claim {
	struct claim *next;
	uint64_t hash;
	struct family *f;
	char *name;
	size_t len;
};

struct series {
	struct series *hnext;       /* chain in the series table */
	struct series *prev, *next; /* the family's series, first seen first */
	struct family *f;
	uint64_t hash, updated_ns;
	size_t labels_len, n_val;
	char *labels;
	double v[];                 /* one value, or count, sum, one count per bucket */
};

struct family {
	struct family *prev, *next;
	struct claim claims[4];
	size_t n_claims;
	enum gb_prom_type type;
	bool own;                   /* the collector's own: no cap, no expiry */
	const double *bounds;
	size_t n_bounds;
	struct series *first, *last;
	size_t n_series;
	char *help;
	size_t help_len;
};

struct table {
	void **b;                   /* chains: struct claim * or struct series * */
	size_t nb, n;
};

/* A record's series, keyed on its identity (gb__rec_ident: head, then key_len bytes). */
struct cache_ent {
	uint64_t hash, head;
	size_t key_len;
	struct series *se;
	uint16_t capped, renamed, dropped, name_capped;
	uint8_t key[CACHE_KEY_MAX];
};

struct label {
	char name[GB_PROM_LABEL_MAX + 6];
	size_t nl;
	char value[VALUE_ESC_MAX + 1];
	size_t vl;
};

struct gb_prom_sink {
	char prefix[GB_STATSD_PREFIX_MAX + 1];
	size_t prefix_len;
	bool path_names;
	struct label globals[MAX_GLOBALS];
	size_t n_globals;
	char drop[MAX_DROP][GB_PROM_LABEL_MAX + 1];
	size_t drop_len[MAX_DROP], n_drop;
	double buckets[GB_PROM_MAX_BUCKETS];
	size_t n_buckets;
	size_t max_contexts;
	uint64_t expire_ns;

	gb_taglim *lim, *names_lim;
	struct table names, series;
	struct family *first, *last;
	struct family *own[GB_PROM_OWN_COUNT];
	struct cache_ent *cache;
	gb_prom_stats st;
	uint64_t capped_on_hits, names_capped_on_hits;

	struct label lab[MAX_LABELS]; /* scratch of the slow path */
	char text[LABELS_MAX];
};


/* ---- the store (prom_sink.c) ---- */

/* The claim of this sample name, or NULL. */
struct claim *gb__prom_claim_find(gb_prom_sink *s, const char *name, size_t len, uint64_t h);
/* A new family named name (with its type's suffix) claiming its sample names, or NULL when
 * one of them is taken or memory ran out. help is copied. */
struct family *gb__prom_family_new(gb_prom_sink *s, const char *name, size_t len,
    enum gb_prom_type type, const char *help, bool own);
/* The series of f with these labels, made when new; NULL past the contexts cap (counted) or
 * out of memory. */
struct series *gb__prom_series_get(gb_prom_sink *s, struct family *f, const char *labels,
    size_t len);

/* ---- names and labels (prom_names.c) ---- */

/* The slow path of a record: its family and labels, and the series they name (NULL when the
 * name is another type's, counted, or past a cap). */
struct series *gb__prom_make_series(gb_prom_sink *s, const gb_record *r);
/* The global and dropped tags of cfg into s. Returns 0, or -1 with err. */
int gb__prom_set_globals(gb_prom_sink *s, const gb_prom_config *cfg, char *err, size_t errlen);
/* Makes the collector's own families. Returns 0, or -1 out of memory. */
int gb__prom_own_init(gb_prom_sink *s);

/* Appends to a snapshot's arrays, growing them. Each returns 0, or -1 out of memory. */
int gb__prom_snap_text(gb_prom_snap *s, const char *p, size_t len, size_t *off);
int gb__prom_snap_vals(gb_prom_snap *s, size_t n, size_t *off);

#endif
