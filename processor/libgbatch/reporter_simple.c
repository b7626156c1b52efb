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
 */
#include <gbatch/telemetry.h>

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

char *
gb_simple_reporter_report(const gb_simple_reporter *r)
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
	qsort(v, r->n, sizeof(*v), tree_cmp);
	if ((f = open_memstream(&text, &len)) == NULL)
		goto out;
	fputs("=== Telemetry Report ===\n", f);
	print_section(f, v, r->n, false);
	print_section(f, v, r->n, true);
	if (fclose(f) != 0) {
		free(text);
		text = NULL;
	}
out:
	pthread_mutex_unlock(&w->lock);
	free(v);
	return text;
}
