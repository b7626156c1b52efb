/*
 * prom_names.c - how a record becomes a Prometheus series name: the family (prefix, the
 * record's name with '.' made '_', the type's suffix, the OpenTelemetry GenAI names without
 * the prefix), its labels (Prometheus' name rules, reserved names renamed user_<name>, values
 * escaped and capped, sorted so that one label set is one series), the global tags as labels,
 * and the collector's own families. Runs on the drain thread, on a cache miss only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "prom_internal.h"

const double gb__prom_token_buckets[GB_PROM_N_TOKEN_BUCKETS] = { 1, 4, 16, 64, 256, 1024,
	4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864 };

/* ---- names and labels (the slow path of a record) ---- */

static bool
ends_with(const char *s, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);

	return len >= sl && memcmp(s + len - sl, suffix, sl) == 0;
}

/* The base name of r (no type suffix) into out, as the statsd sink names it with '.' made
 * '_' (into dotted as it was, NUL-terminated); *otel says it is an OpenTelemetry GenAI name
 * (no prefix). The name cap applies. */
static size_t
base_name(gb_prom_sink *s, const gb_record *r, char *out, char *dotted, bool *otel)
{
	static const char semconv[] = "gen_ai.";
	const char *src = r->scope;
	size_t len = r->scope_len, n;

	if (!s->path_names && r->parent_len > 0 && r->parent_len < r->scope_len) {
		size_t skip = r->parent_len + (r->scope[r->parent_len] == '.');

		src += skip;
		len -= skip;
	}
	*otel = len > sizeof(semconv) - 1 && memcmp(src, semconv, sizeof(semconv) - 1) == 0;
	n = gb__statsd_name(out, *otel ? "" : s->prefix, *otel ? 0 : s->prefix_len, src, len);
	if (!gb__taglim_admit(s->names_lim, "", 0, out, n)) {
		n = gb__statsd_name(out, s->prefix, s->prefix_len, "other", 5);
		*otel = false;
	}
	memcpy(dotted, out, n);
	dotted[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (out[i] == '.')
			out[i] = '_';
	return n;
}

/* The family r belongs to, made when new; NULL when its names are another family's. */
static struct family *
record_family(gb_prom_sink *s, const gb_record *r)
{
	char name[GB_PROM_NAME_MAX + 1], dotted[GB_PROM_NAME_MAX + 1], help[GB_PROM_NAME_MAX + 64];
	bool otel;
	size_t n = base_name(s, r, name, dotted, &otel);
	enum gb_prom_type type = GB_PROM_GAUGE;
	const char *what = "gauge";
	struct claim *c;

	if (r->kind == GB_REC_TIMING) {
		type = GB_PROM_HISTOGRAM;
		what = "timing, seconds";
		if (!ends_with(name, n, "_seconds")) {
			memcpy(name + n, "_seconds", 8);
			n += 8;
		}
	} else if (r->kind == GB_REC_HISTOGRAM) {
		type = GB_PROM_HISTOGRAM;
		what = "distribution";
	} else if (r->kind == GB_REC_COUNTER) {
		type = GB_PROM_COUNTER;
		what = "counter";
		if (!ends_with(name, n, "_total")) {
			memcpy(name + n, "_total", 6);
			n += 6;
		}
	}
	if ((c = gb__prom_claim_find(s, name, n, gb__hash(name, n))) != NULL)
		return c == &c->f->claims[0] && c->f->type == type && !c->f->own ? c->f : NULL;
	if (otel && strncmp(name, "gen_ai_client_operation_duration", 32) == 0)
		snprintf(help, sizeof(help), "GenAI operation duration.");
	else if (otel && strncmp(name, "gen_ai_client_token_usage", 25) == 0)
		snprintf(help, sizeof(help), "Number of input and output tokens used.");
	else
		snprintf(help, sizeof(help), "%s (%s)", dotted, what);
	return gb__prom_family_new(s, name, n, type, help, false);
}

static bool
dropped_label(const gb_prom_sink *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n_drop; i++)
		if (s->drop_len[i] == len && memcmp(s->drop[i], name, len) == 0)
			return true;
	return false;
}

static bool
global_label(const gb_prom_sink *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n_globals; i++)
		if (s->globals[i].nl == len && memcmp(s->globals[i].name, name, len) == 0)
			return true;
	return false;
}

/* l's name as user_<name> (cut to fit), counted in tags_renamed. */
static void
rename_user(gb_prom_sink *s, struct label *l)
{
	size_t keep = l->nl + 5 > GB_PROM_LABEL_MAX ? GB_PROM_LABEL_MAX - 5 : l->nl;

	memmove(l->name + 5, l->name, keep);
	memcpy(l->name, "user_", 5);
	l->nl = keep + 5;
	s->st.tags_renamed++;
}

/* Adds label (name, raw value) to s->lab[*n], as a producer's: renamed when reserved, value
 * escaped and capped; nothing for an empty name or value. */
static void
add_label(gb_prom_sink *s, size_t *n, const char *key, size_t kl, const char *value, size_t vl,
    bool producer)
{
	struct label *l = &s->lab[*n];

	if ((l->nl = gb__prom_label_name(l->name, key, kl)) == 0 || vl == 0 ||
	    dropped_label(s, l->name, l->nl))
		return;
	if (producer && (gb__prom_label_reserved(l->name, l->nl) ||
	    global_label(s, l->name, l->nl)))
		rename_user(s, l);
	l->vl = gb__prom_label_value(l->value, value, vl);
	if (!gb__taglim_admit(s->lim, l->name, l->nl, l->value, l->vl)) {
		memcpy(l->value, "other", 5);
		l->vl = 5;
	}
	(*n)++;
}

static int
name_cmp(const struct label *a, const struct label *b)
{
	int c = memcmp(a->name, b->name, a->nl < b->nl ? a->nl : b->nl);

	return c != 0 ? c : (a->nl > b->nl) - (a->nl < b->nl);
}

/* Sorts s->lab[0, n) by name (stable: the first of two equal names is kept), drops repeated
 * names (counted) and joins them as `k="v",...` into s->text. Returns the length. */
static size_t
join_labels(gb_prom_sink *s, size_t n)
{
	struct label *p[MAX_LABELS];
	size_t len = 0, kept = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		p[i] = &s->lab[i];
		while (j > 0 && name_cmp(p[j - 1], p[j]) > 0) {
			struct label *t = p[j - 1];

			p[j - 1] = p[j];
			p[j] = t;
			j--;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (kept > 0 && p[i]->nl == p[kept - 1]->nl &&
		    memcmp(p[i]->name, p[kept - 1]->name, p[i]->nl) == 0) {
			s->st.tags_dropped++;
			continue;
		}
		p[kept++] = p[i];
	}
	for (size_t i = 0; i < kept; i++) {
		if (i > 0)
			s->text[len++] = ',';
		memcpy(s->text + len, p[i]->name, p[i]->nl);
		len += p[i]->nl;
		memcpy(s->text + len, "=\"", 2);
		len += 2;
		memcpy(s->text + len, p[i]->value, p[i]->vl);
		len += p[i]->vl;
		s->text[len++] = '"';
	}
	return len;
}

/* The slow path: r's family and labels, and the series they name. */
struct series *
gb__prom_make_series(gb_prom_sink *s, const gb_record *r)
{
	struct family *f = record_family(s, r);
	char depth[8];
	size_t n = 0;

	if (f == NULL) {
		s->st.values_rejected++;
		return NULL;
	}
	add_label(s, &n, "depth", 5, depth, (size_t)snprintf(depth, sizeof(depth), "%u",
	    (unsigned)r->depth), false);
	if (r->parent_len > 0)
		add_label(s, &n, "parent_scope", 12, r->scope, r->parent_len, false);
	for (size_t i = 0; i < r->n_meta; i++)
		add_label(s, &n, r->meta[i].key, r->meta[i].key_len, r->meta[i].value,
		    r->meta[i].value_len, true);
	for (size_t i = 0; i < s->n_globals; i++)
		s->lab[n++] = s->globals[i];
	return gb__prom_series_get(s, f, s->text, join_labels(s, n));
}

/* The collector's own families, in the order enum gb_prom_own lists them. */
static const struct own_def {
	const char *name;
	enum gb_prom_type type;
	const char *help;
} own_defs[GB_PROM_OWN_COUNT] = {
	{ "records_read_total", GB_PROM_COUNTER, "Telemetry records read from the rings." },
	{ "records_invalid_total", GB_PROM_COUNTER,
	  "Payloads that did not decode and corrupt ring headers skipped." },
	{ "packets_sent_total", GB_PROM_COUNTER, "StatsD datagrams sent." },
	{ "bytes_sent_total", GB_PROM_COUNTER, "StatsD bytes sent." },
	{ "send_errors_total", GB_PROM_COUNTER, "StatsD datagrams that could not be sent." },
	{ "values_rejected_total", GB_PROM_COUNTER,
	  "Values not exposed: NaN, infinities, negative timings or counter increments, or a "
	  "name another metric type holds." },
	{ "tags_dropped_total", GB_PROM_COUNTER,
	  "Labels left out: a name given twice, or pairs a producer could not fit." },
	{ "tag_values_capped_total", GB_PROM_COUNTER,
	  "Label values replaced by \"other\" by --max-tag-values." },
	{ "tags_renamed_total", GB_PROM_COUNTER, "Reserved label names exposed as user_<name>." },
	{ "names_capped_total", GB_PROM_COUNTER, "Records counted under <prefix>other by --max-names." },
	{ "contexts_dropped_total", GB_PROM_COUNTER,
	  "Values of new series not kept because --max-contexts series were held." },
	{ "console_lines_dropped_total", GB_PROM_COUNTER, "Console lines dropped, the queue full." },
	{ "console_summary_capped_total", GB_PROM_COUNTER,
	  "Records the console summary left out, their scope past its cap." },
	{ "series", GB_PROM_GAUGE, "Series held for /metrics (the collector's own not counted)." },
	{ "series_expired_total", GB_PROM_COUNTER,
	  "Series dropped after --prometheus-expire without an update." },
	{ "records_dropped_total", GB_PROM_COUNTER, "Records the producers dropped, the ring full." },
	{ "records_unblocked_total", GB_PROM_COUNTER,
	  "Records a dead producer left half-written, padded over." },
	{ "ring_lag_bytes", GB_PROM_GAUGE, "Bytes written to the ring and not yet read." },
};

/* The global tags as labels (a dd.internal.* tag is the agent's business and left out). */
int
gb__prom_set_globals(gb_prom_sink *s, const gb_prom_config *cfg, char *err, size_t errlen)
{
	if (cfg->n_tags > MAX_GLOBALS || cfg->n_drop_tags > MAX_DROP) {
		snprintf(err, errlen, "more than %d global tags or %d dropped tags", MAX_GLOBALS,
		    MAX_DROP);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_drop_tags; i++) {
		const char *k = cfg->drop_tags[i];

		s->drop_len[s->n_drop] = gb__prom_label_name(s->drop[s->n_drop], k, strlen(k));
		if (s->drop_len[s->n_drop] > 0)
			s->n_drop++;
	}
	for (size_t i = 0; i < cfg->n_tags; i++) {
		const char *t = cfg->tags[i], *colon = strchr(t, ':');
		size_t kl = colon ? (size_t)(colon - t) : strlen(t);
		struct label *l = &s->globals[s->n_globals];

		if (strncmp(t, "dd.internal.", 12) == 0 || colon == NULL || colon[1] == '\0')
			continue;
		if ((l->nl = gb__prom_label_name(l->name, t, kl)) == 0 ||
		    dropped_label(s, l->name, l->nl))
			continue;
		/* a --tag le:x (or depth, __x, ...) would clash with the labels every series has */
		if (gb__prom_label_reserved(l->name, l->nl))
			rename_user(s, l);
		if (global_label(s, l->name, l->nl))
			continue;
		l->vl = gb__prom_label_value(l->value, colon + 1, strlen(colon + 1));
		s->n_globals++;
	}
	return 0;
}

void
gb__prom_own(gb_prom_sink *s, enum gb_prom_own which, const char *ring, double v)
{
	struct series *se;
	size_t n = 0;

	if ((unsigned)which >= GB_PROM_OWN_COUNT || !isfinite(v))
		return;
	if (ring != NULL) {
		struct label *l = &s->lab[n++];

		memcpy(l->name, "ring", 4);
		l->nl = 4;
		l->vl = gb__prom_label_value(l->value, ring, strlen(ring));
	}
	for (size_t i = 0; i < s->n_globals; i++)
		s->lab[n++] = s->globals[i];
	if ((se = gb__prom_series_get(s, s->own[which], s->text, join_labels(s, n))) != NULL)
		se->v[0] = v;
}

int
gb__prom_own_init(gb_prom_sink *s)
{
	for (size_t i = 0; i < GB_PROM_OWN_COUNT; i++) {
		char name[GB_PROM_NAME_MAX];
		int n = snprintf(name, sizeof(name), "gbatch_collector_%s", own_defs[i].name);

		if ((s->own[i] = gb__prom_family_new(s, name, (size_t)n, own_defs[i].type,
		    own_defs[i].help, true)) == NULL)
			return -1;
	}
	return 0;
}
