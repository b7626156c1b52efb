/*
 * tele_recorder.h - a test reporter that keeps a copy of every record it receives, so the
 * telemetry tests can assert on scope paths, values and metadata after the fact. The one
 * recording reporter of the tests (test_telemetry.c, test_batch_processor.c).
 * Header-only (static inline functions) because each unit test is one executable.
 */
#ifndef GBATCH_TESTS_TELE_RECORDER_H
#define GBATCH_TESTS_TELE_RECORDER_H

#include <gbatch/telemetry.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_MAX 8192

struct rec {
	char kind; /* 't' timing, 'm' metric */
	char scope[256];
	double value;
	int depth;
	char parent[256]; /* "" when parent_scope was NULL */
	int has_parent;
	unsigned call_count;
	char type[16]; /* "" when metric_type was NULL */
	char extra[256]; /* "k=v,k=v" */
};

struct recorder {
	pthread_mutex_t lock;
	struct rec *r;
	size_t n;
	int fail; /* return -1 from every callback */
	size_t lost; /* records received when r was full (REC_MAX) */
};

static inline void
recorder_init(struct recorder *rc)
{
	pthread_mutex_init(&rc->lock, NULL);
	rc->r = calloc(REC_MAX, sizeof(*rc->r));
	rc->n = 0;
	rc->fail = 0;
	rc->lost = 0;
}

static inline void
recorder_fini(struct recorder *rc)
{
	pthread_mutex_destroy(&rc->lock);
	free(rc->r);
}

static inline int
recorder_add(struct recorder *rc, char kind, const char *scope, double v, const gb_tele_meta *m)
{
	pthread_mutex_lock(&rc->lock);
	if (rc->n < REC_MAX) {
		struct rec *r = &rc->r[rc->n++];
		size_t len = 0;
		r->kind = kind;
		snprintf(r->scope, sizeof(r->scope), "%s", scope);
		r->value = v;
		r->depth = m->depth;
		r->has_parent = m->parent_scope != NULL;
		snprintf(r->parent, sizeof(r->parent), "%s", m->parent_scope ? m->parent_scope : "");
		r->call_count = m->call_count;
		snprintf(r->type, sizeof(r->type), "%s", m->metric_type ? m->metric_type : "");
		r->extra[0] = '\0';
		for (size_t i = 0; i < m->n_extra && len < sizeof(r->extra); i++)
			len += (size_t)snprintf(r->extra + len, sizeof(r->extra) - len, "%s%s=%s",
			    i ? "," : "", m->extra[i].key, m->extra[i].value);
	} else {
		rc->lost++;
	}
	pthread_mutex_unlock(&rc->lock);
	return rc->fail ? -1 : 0;
}

static inline int
recorder_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	return recorder_add(self, 't', scope, seconds, m);
}

static inline int
recorder_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	return recorder_add(self, 'm', scope, value, m);
}

static inline gb_reporter
recorder_reporter(struct recorder *rc)
{
	return (gb_reporter){ .self = rc, .record_timing = recorder_timing,
		.record_metric = recorder_metric };
}

/* The first record of that kind ('t' timing, 'm' metric) and scope, or NULL. */
static inline const struct rec *
recorder_find(const struct recorder *rc, char kind, const char *scope)
{
	for (size_t i = 0; i < rc->n; i++)
		if (rc->r[i].kind == kind && strcmp(rc->r[i].scope, scope) == 0)
			return &rc->r[i];
	return NULL;
}

/* How many records, of either kind, have that scope. */
static inline size_t
recorder_count(const struct recorder *rc, const char *scope)
{
	size_t n = 0;

	for (size_t i = 0; i < rc->n; i++)
		n += strcmp(rc->r[i].scope, scope) == 0;
	return n;
}

/* The sum of the values of the records of that kind and scope. */
static inline double
recorder_sum(const struct recorder *rc, char kind, const char *scope)
{
	double s = 0;

	for (size_t i = 0; i < rc->n; i++)
		if (rc->r[i].kind == kind && strcmp(rc->r[i].scope, scope) == 0)
			s += rc->r[i].value;
	return s;
}

#endif
