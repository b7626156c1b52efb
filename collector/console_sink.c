/*
 * console_sink.c - console lines and the summary report. The lines match the in-process console
 * reporter's (processor/reporter_console.c) field for field. Scopes are folded into a small hash
 * table of per-scope figures (calls, total, max, the last N values for p50/p95); the tree is
 * only built when a report is printed. Producer bytes are escaped: a scope name must not be
 * able to drive the terminal.
 */
#include "console_sink.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SAMPLES 1000

struct scope_stats {
	char *name;
	size_t len, parent_len;
	bool timing;       /* timings and metrics of one name are kept apart */
	uint64_t calls;
	double total, max;
	double *samples;   /* ring of the last max_samples values */
	size_t n_samples, next;
	size_t *children;  /* built for a report only */
	size_t n_children;
};

struct gb_console_sink {
	enum gb_console_mode mode;
	FILE *out;
	size_t max_samples;
	struct scope_stats *scopes;
	size_t n, cap;
	uint32_t *slots; /* index + 1 */
	size_t nslots;
};

int
gb__console_parse_mode(const char *text, enum gb_console_mode *out)
{
	if (strcmp(text, "lines") == 0)
		*out = GB_CONSOLE_LINES;
	else if (strcmp(text, "summary") == 0)
		*out = GB_CONSOLE_SUMMARY;
	else if (strcmp(text, "off") == 0)
		*out = GB_CONSOLE_OFF;
	else
		return -1;
	return 0;
}

gb_console_sink *
gb__console_new(enum gb_console_mode mode, FILE *out, size_t max_samples)
{
	gb_console_sink *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->mode = mode;
	c->out = out;
	c->max_samples = max_samples ? max_samples : DEFAULT_SAMPLES;
	return c;
}

void
gb__console_free(gb_console_sink *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->scopes[i].name);
		free(c->scopes[i].samples);
		free(c->scopes[i].children);
	}
	free(c->scopes);
	free(c->slots);
	free(c);
}

/* Writes len untrusted bytes, escaping what a terminal would act on. */
static void
put_escaped(FILE *f, const char *s, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch != 0x7f && ch != '\\')
			continue;
		fwrite(s + start, 1, i - start, f);
		fprintf(f, "\\x%02x", ch);
		start = i + 1;
	}
	fwrite(s + start, 1, len - start, f);
}

static void
put_meta(FILE *f, const gb_record *r, const char *metric_type)
{
	bool first = true;

	fputs(" (", f);
	if (metric_type != NULL) {
		fprintf(f, "metric_type=%s", metric_type);
		first = false;
	}
	fprintf(f, "%sdepth=%u", first ? "" : ", ", (unsigned)r->depth);
	if (r->parent_len > 0) {
		fputs(", parent_scope=", f);
		put_escaped(f, r->scope, r->parent_len);
	}
	fprintf(f, ", call_count=%u", (unsigned)r->call_count);
	for (size_t i = 0; i < r->n_meta; i++) {
		fputs(", ", f);
		put_escaped(f, r->meta[i].key, r->meta[i].key_len);
		fputc('=', f);
		put_escaped(f, r->meta[i].value, r->meta[i].value_len);
	}
	fputs(")\n", f);
}

static void
print_line(gb_console_sink *c, const gb_record *r)
{
	FILE *f = c->out;

	if (r->kind == GB_REC_TIMING) {
		fputs("[TIMING] ", f);
		for (unsigned i = 0; i < r->depth && i < 64; i++)
			fputs("  ", f);
		put_escaped(f, r->scope, r->scope_len);
		fprintf(f, ": duration=%.4fs", r->value);
		put_meta(f, r, NULL);
		return;
	}
	fputs("[METRIC] ", f);
	put_escaped(f, r->scope, r->scope_len);
	fprintf(f, ": %.15g", r->value);
	put_meta(f, r, r->kind == GB_REC_COUNTER ? "counter" : r->kind == GB_REC_GAUGE ? "gauge" :
	    NULL);
}

static uint64_t
hash_scope(const char *s, size_t len, bool timing)
{
	uint64_t h = timing ? 0xcbf29ce484222325ull : 0x84222325cbf29ce4ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

static long
find(const gb_console_sink *c, const char *s, size_t len, bool timing, size_t *slot)
{
	size_t j;

	if (c->nslots == 0)
		return -1;
	for (j = hash_scope(s, len, timing) & (c->nslots - 1); c->slots[j] != 0;
	    j = (j + 1) & (c->nslots - 1)) {
		const struct scope_stats *st = &c->scopes[c->slots[j] - 1];

		if (st->timing == timing && st->len == len && memcmp(st->name, s, len) == 0)
			return (long)(c->slots[j] - 1);
	}
	if (slot != NULL)
		*slot = j;
	return -1;
}

static int
grow(gb_console_sink *c)
{
	if (c->n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		struct scope_stats *s = realloc(c->scopes, cap * sizeof(*s));

		if (s == NULL)
			return -1;
		c->scopes = s;
		c->cap = cap;
	}
	if ((c->n + 1) * 2 > c->nslots) {
		size_t ns = c->nslots ? c->nslots * 2 : 64;
		uint32_t *slots = calloc(ns, sizeof(*slots));

		if (slots == NULL)
			return -1;
		for (size_t i = 0; i < c->n; i++) {
			const struct scope_stats *st = &c->scopes[i];
			size_t j = hash_scope(st->name, st->len, st->timing) & (ns - 1);

			while (slots[j] != 0)
				j = (j + 1) & (ns - 1);
			slots[j] = (uint32_t)(i + 1);
		}
		free(c->slots);
		c->slots = slots;
		c->nslots = ns;
	}
	return 0;
}

static struct scope_stats *
scope_for(gb_console_sink *c, const gb_record *r)
{
	bool timing = r->kind == GB_REC_TIMING;
	size_t slot;
	long i = find(c, r->scope, r->scope_len, timing, &slot);
	struct scope_stats *st;

	if (i >= 0)
		return &c->scopes[i];
	if (grow(c) < 0)
		return NULL;
	(void)find(c, r->scope, r->scope_len, timing, &slot);
	st = &c->scopes[c->n];
	memset(st, 0, sizeof(*st));
	st->name = malloc(r->scope_len + 1);
	st->samples = malloc(c->max_samples * sizeof(double));
	if (st->name == NULL || st->samples == NULL) {
		free(st->name);
		free(st->samples);
		return NULL;
	}
	memcpy(st->name, r->scope, r->scope_len);
	st->name[r->scope_len] = '\0';
	st->len = r->scope_len;
	st->parent_len = r->parent_len;
	st->timing = timing;
	c->slots[slot] = (uint32_t)(c->n + 1);
	return &c->scopes[c->n++];
}

void
gb__console_record(gb_console_sink *c, const gb_record *r)
{
	struct scope_stats *st;

	if (c->mode == GB_CONSOLE_LINES) {
		print_line(c, r);
		return;
	}
	if (c->mode != GB_CONSOLE_SUMMARY || (st = scope_for(c, r)) == NULL)
		return;
	if (st->calls == 0 || r->value > st->max)
		st->max = r->value;
	st->calls++;
	st->total += r->value;
	st->samples[st->next] = r->value;
	st->next = (st->next + 1) % c->max_samples;
	if (st->n_samples < c->max_samples)
		st->n_samples++;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static const gb_console_sink *sort_sink;

static int
cmp_scope(const void *a, const void *b)
{
	const struct scope_stats *x = &sort_sink->scopes[*(const size_t *)a];
	const struct scope_stats *y = &sort_sink->scopes[*(const size_t *)b];
	size_t n = x->len < y->len ? x->len : y->len;
	int d = memcmp(x->name, y->name, n);

	return d != 0 ? d : (x->len > y->len) - (x->len < y->len);
}

/* Nearest-rank percentile of n sorted values. */
static double
percentile(const double *v, size_t n, unsigned pct)
{
	size_t rank = (n * pct + 99) / 100;

	return v[rank > 0 ? rank - 1 : 0];
}

static void
print_timing(gb_console_sink *c, size_t i, unsigned level, double *tmp)
{
	struct scope_stats *st = &c->scopes[i];

	memcpy(tmp, st->samples, st->n_samples * sizeof(double));
	qsort(tmp, st->n_samples, sizeof(double), cmp_double);
	for (unsigned k = 0; k < level && k < 64; k++)
		fputs("  ", c->out);
	put_escaped(c->out, st->name, st->len);
	fprintf(c->out, ": calls=%llu avg=%.4fs p50=%.4fs p95=%.4fs max=%.4fs total=%.4fs\n",
	    (unsigned long long)st->calls, st->total / (double)st->calls,
	    percentile(tmp, st->n_samples, 50), percentile(tmp, st->n_samples, 95), st->max,
	    st->total);
	for (size_t k = 0; k < st->n_children; k++)
		print_timing(c, st->children[k], level + 1, tmp);
}

void
gb__console_summary(gb_console_sink *c)
{
	size_t *order = NULL, *parent = NULL;
	double *tmp = NULL;
	size_t nt = 0, nm = 0;

	if (c->mode != GB_CONSOLE_SUMMARY)
		goto out;
	order = malloc((c->n + 1) * sizeof(*order));
	parent = malloc((c->n + 1) * sizeof(*parent));
	tmp = malloc(c->max_samples * sizeof(*tmp));
	if (order == NULL || parent == NULL || tmp == NULL)
		goto out;
	for (size_t i = 0; i < c->n; i++) {
		order[i] = i;
		free(c->scopes[i].children);
		c->scopes[i].children = NULL;
		c->scopes[i].n_children = 0;
		if (c->scopes[i].timing)
			nt++;
		else
			nm++;
	}
	sort_sink = c;
	qsort(order, c->n, sizeof(*order), cmp_scope);
	/* children lists in name order; a timing whose parent never reported is a root */
	for (size_t k = 0; k < c->n; k++) {
		struct scope_stats *st = &c->scopes[order[k]];
		long p = -1;

		if (st->timing && st->parent_len > 0 && st->parent_len < st->len)
			p = find(c, st->name, st->parent_len, true, NULL);
		parent[order[k]] = p >= 0 ? (size_t)p : SIZE_MAX;
		if (p >= 0) {
			struct scope_stats *ps = &c->scopes[p];
			size_t *ch = realloc(ps->children, (ps->n_children + 1) * sizeof(*ch));

			if (ch == NULL) {
				parent[order[k]] = SIZE_MAX;
				continue;
			}
			ps->children = ch;
			ps->children[ps->n_children++] = order[k];
		}
	}
	fputs("=== gbatch telemetry summary ===\n", c->out);
	fprintf(c->out, "timings (%zu scopes):\n", nt);
	for (size_t k = 0; k < c->n; k++)
		if (c->scopes[order[k]].timing && parent[order[k]] == SIZE_MAX)
			print_timing(c, order[k], 1, tmp);
	fprintf(c->out, "metrics (%zu):\n", nm);
	for (size_t k = 0; k < c->n; k++) {
		const struct scope_stats *st = &c->scopes[order[k]];

		if (st->timing)
			continue;
		fputs("  ", c->out);
		put_escaped(c->out, st->name, st->len);
		fprintf(c->out, ": count=%llu total=%.15g\n", (unsigned long long)st->calls, st->total);
	}
out:
	free(order);
	free(parent);
	free(tmp);
	fflush(c->out);
}

void
gb__console_flush(gb_console_sink *c)
{
	fflush(c->out);
}
