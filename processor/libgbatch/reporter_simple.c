/*
 * reporter_simple.c - the seed's in-memory SimpleReporter: keeps the most recent values of each
 * scope path (a bounded window per path) and renders them as a tree, for debugging a run:
 *
 *   === Telemetry Report ===
 *   Timings:
 *     <two spaces per depth>SCOPE: calls=N, avg=S.SSSSs, total=S.SSSSs
 *   Metrics:
 *     <two spaces per depth>SCOPE: count=N, total=V
 *
 * Calls, average, count and total cover the values still in the window (at most
 * max_entries_per_scope per path). Paths are sorted so every scope comes right before the
 * scopes nested in it. One mutex guards everything: this reporter is for debugging, not speed.
 *
 * The seed's own report (GB_REPORT_SEED) is its telemetry.py _SimpleReporter.get_report():
 * the timing paths split at every dot into a tree, each level sorted by name, a branch as
 * "<indent>NAME:" and a leaf as "<indent>NAME<pad to 30> | Calls: N<pad to 4> | Avg: S.SSSSs |
 * Total: S.SSSSs"; then every metric path sorted, "PATH<pad to 40> | Count: N<pad to 4> |
 * Total: 1,234". A name that is both a leaf and a branch (a scope with a timing of its own and
 * scopes nested in it) is its leaf row followed by its branch's rows, where the seed's dict
 * would keep only one of the two.
 */
#include <gbatch/telemetry.h>

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct series {
	char *path;
	bool metric;
	int depth;
	double *vals; /* a ring of up to max values */
	size_t n, next;
};

struct gb_simple_reporter {
	pthread_mutex_t lock;
	size_t max;
	struct series *series;
	size_t n, cap;
};

gb_simple_reporter *
gb_simple_reporter_new(size_t max_entries_per_scope)
{
	gb_simple_reporter *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->max = max_entries_per_scope ? max_entries_per_scope : 1000;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

void
gb_simple_reporter_free(gb_simple_reporter *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->series[i].path);
		free(r->series[i].vals);
	}
	free(r->series);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* The series for (metric, path), added when new; NULL when out of memory. Lock held. */
static struct series *
series_get(gb_simple_reporter *r, bool metric, const char *path, int depth)
{
	struct series *s;

	for (size_t i = 0; i < r->n; i++) {
		if (r->series[i].metric == metric && strcmp(r->series[i].path, path) == 0)
			return &r->series[i];
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		if ((s = realloc(r->series, cap * sizeof(*s))) == NULL)
			return NULL;
		r->series = s;
		r->cap = cap;
	}
	s = &r->series[r->n];
	*s = (struct series){ .metric = metric, .depth = depth };
	if ((s->path = strdup(path)) == NULL || (s->vals = malloc(r->max * sizeof(double))) == NULL) {
		free(s->path);
		return NULL;
	}
	r->n++;
	return s;
}

static int
add(gb_simple_reporter *r, bool metric, const char *scope, double v, const gb_tele_meta *m)
{
	struct series *s;

	pthread_mutex_lock(&r->lock);
	if ((s = series_get(r, metric, scope, m->depth)) != NULL) {
		s->vals[s->next] = v;
		s->next = (s->next + 1) % r->max;
		if (s->n < r->max)
			s->n++;
	}
	pthread_mutex_unlock(&r->lock);
	return s == NULL ? -1 : 0;
}

static int
simple_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	return add(self, false, scope, seconds, m);
}

static int
simple_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	return add(self, true, scope, value, m);
}

gb_reporter
gb_simple_reporter_as_reporter(gb_simple_reporter *r)
{
	return (gb_reporter){
		.self = r,
		.record_timing = simple_timing,
		.record_metric = simple_metric,
	};
}

/* Orders paths as a tree: '.' sorts before every other byte, so "a.b" < "a.b.c" < "a.b-c". */
static int
tree_cmp(const void *a, const void *b)
{
	const unsigned char *x = (const unsigned char *)(*(const struct series *const *)a)->path;
	const unsigned char *y = (const unsigned char *)(*(const struct series *const *)b)->path;

	for (; *x != '\0' && *x == *y; x++, y++)
		;
	if (*x == *y)
		return 0;
	if (*x == '\0' || *y == '\0')
		return *x == '\0' ? -1 : 1;
	if (*x == '.' || *y == '.')
		return *x == '.' ? -1 : 1;
	return *x < *y ? -1 : 1;
}

static void
print_section(FILE *f, struct series **v, size_t n, bool metric)
{
	fputs(metric ? "Metrics:\n" : "Timings:\n", f);
	for (size_t i = 0; i < n; i++) {
		const struct series *s = v[i];
		double total = 0;
		if (s->metric != metric)
			continue;
		for (size_t k = 0; k < s->n; k++)
			total += s->vals[k];
		fprintf(f, "  %*s%s: ", 2 * s->depth, "", s->path);
		if (metric)
			fprintf(f, "count=%zu, total=%.15g\n", s->n, total);
		else
			fprintf(f, "calls=%zu, avg=%.4fs, total=%.4fs\n", s->n,
			    s->n ? total / (double)s->n : 0.0, total);
	}
}

/* ---- the seed's report ---- */

/* One name of the timing tree: a leaf when s is set, a branch when it has children. */
struct node {
	const char *name;
	size_t name_len;
	const struct series *s;
	struct node *kids;
	size_t n_kids, cap;
};

static void
node_free(struct node *n)
{
	for (size_t i = 0; i < n->n_kids; i++)
		node_free(&n->kids[i]);
	free(n->kids);
}

/* The child of n named name[0..len), added when new; NULL when out of memory. */
static struct node *
node_child(struct node *n, const char *name, size_t len)
{
	for (size_t i = 0; i < n->n_kids; i++)
		if (n->kids[i].name_len == len && memcmp(n->kids[i].name, name, len) == 0)
			return &n->kids[i];
	if (n->n_kids == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 4;
		struct node *k = realloc(n->kids, cap * sizeof(*k));
		if (k == NULL)
			return NULL;
		n->kids = k;
		n->cap = cap;
	}
	n->kids[n->n_kids] = (struct node){ .name = name, .name_len = len };
	return &n->kids[n->n_kids++];
}

static bool
tree_add(struct node *root, const struct series *s)
{
	struct node *n = root;
	const char *p = s->path;

	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if ((n = node_child(n, p, len)) == NULL)
			return false;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	n->s = s;
	return true;
}

static int
node_cmp(const void *a, const void *b)
{
	const struct node *x = a, *y = b;
	size_t l = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, l);

	return c != 0 ? c : x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* Writes s[0..len) left-aligned in width characters, as Python's {:<width} does (it counts
 * code points, not bytes). */
static void
put_padded(FILE *f, const char *s, size_t len, size_t width)
{
	size_t chars = 0;

	for (size_t i = 0; i < len; i++)
		chars += ((unsigned char)s[i] & 0xc0) != 0x80;
	fwrite(s, 1, len, f);
	for (; chars < width; chars++)
		fputc(' ', f);
}

static void
put_tree(FILE *f, struct node *n, int depth)
{
	if (n->n_kids == 0)
		return;
	qsort(n->kids, n->n_kids, sizeof(*n->kids), node_cmp);
	for (size_t i = 0; i < n->n_kids; i++) {
		struct node *k = &n->kids[i];
		for (int d = 0; d < depth; d++)
			fputs("  ", f);
		if (k->s == NULL) {
			fwrite(k->name, 1, k->name_len, f);
			fputs(":\n", f);
		} else {
			double total = 0;
			for (size_t j = 0; j < k->s->n; j++)
				total += k->s->vals[j];
			char calls[24];
			snprintf(calls, sizeof(calls), "%zu", k->s->n);
			put_padded(f, k->name, k->name_len, 30);
			fputs(" | Calls: ", f);
			put_padded(f, calls, strlen(calls), 4);
			fprintf(f, " | Avg: %.4fs | Total: %.4fs\n", total / (double)k->s->n, total);
		}
		put_tree(f, k, depth + 1);
	}
}

/* Python's format(v, ",.0f"). */
static void
put_thousands(FILE *f, double v)
{
	char digits[400];
	const char *d = digits;
	size_t n;

	if (isnan(v) || isinf(v)) {
		fputs(isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", f);
		return;
	}
	snprintf(digits, sizeof(digits), "%.0f", v);
	if (*d == '-')
		fputc(*d++, f);
	n = strlen(d);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			fputc(',', f);
		fputc(d[i], f);
	}
}

static int
path_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct series *const *)a)->path,
	    (*(const struct series *const *)b)->path);
}

/* The seed's report of r's series into f; false when out of memory. Lock held. */
static bool
seed_report(FILE *f, const gb_simple_reporter *r, struct series **v)
{
	struct node root = { 0 };
	size_t n_metrics = 0;
	bool ok = true;

	if (r->n == 0)
		return true;
	for (size_t i = 0; i < r->n; i++) {
		if (r->series[i].metric)
			v[n_metrics++] = &r->series[i];
		else if (ok)
			ok = tree_add(&root, &r->series[i]);
	}
	fputs("=== Telemetry Report ===\n\n\n--- Timings ---\n", f);
	if (ok)
		put_tree(f, &root, 0);
	node_free(&root);
	if (n_metrics > 0) {
		qsort(v, n_metrics, sizeof(*v), path_cmp);
		fputs("\n--- Metrics ---\n", f);
	}
	for (size_t i = 0; i < n_metrics; i++) {
		double total = 0;
		char count[24];
		for (size_t k = 0; k < v[i]->n; k++)
			total += v[i]->vals[k];
		snprintf(count, sizeof(count), "%zu", v[i]->n);
		put_padded(f, v[i]->path, strlen(v[i]->path), 40);
		fputs(" | Count: ", f);
		put_padded(f, count, strlen(count), 4);
		fputs(" | Total: ", f);
		put_thousands(f, total);
		fputc('\n', f);
	}
	return ok;
}

char *
gb_simple_reporter_report(const gb_simple_reporter *r)
{
	return gb_simple_reporter_report_format(r, GB_REPORT_GBATCH);
}

char *
gb_simple_reporter_report_format(const gb_simple_reporter *r, gb_report_format format)
{
	gb_simple_reporter *w = (gb_simple_reporter *)(uintptr_t)r; /* the lock only */
	struct series **v;
	char *text = NULL;
	size_t len;
	FILE *f;

	pthread_mutex_lock(&w->lock);
	if ((v = malloc((r->n ? r->n : 1) * sizeof(*v))) == NULL)
		goto out;
	for (size_t i = 0; i < r->n; i++)
		v[i] = &r->series[i];
	if ((f = open_memstream(&text, &len)) == NULL)
		goto out;
	if (format == GB_REPORT_SEED) {
		if (!seed_report(f, r, v))
			fputs("(out of memory)\n", f);
	} else {
		qsort(v, r->n, sizeof(*v), tree_cmp);
		fputs("=== Telemetry Report ===\n", f);
		print_section(f, v, r->n, false);
		print_section(f, v, r->n, true);
	}
	if (fclose(f) != 0) {
		free(text);
		text = NULL;
	}
out:
	pthread_mutex_unlock(&w->lock);
	free(v);
	return text;
}
