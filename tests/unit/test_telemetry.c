/* test_telemetry.c - the telemetry context against the seed's semantics: scope paths, depth,
 * parent_scope, call_count, metric_type, metadata order, GB_SCOPE exits, usage errors,
 * per-thread and per-context stacks, reporter fan-out and failures, the no-op context. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "tele_recorder.h"
#include "telemetry_internal.h"

static struct recorder rc;
static gb_tele *t;

static void
setup(void)
{
	recorder_init(&rc);
	gb_reporter r = recorder_reporter(&rc);
	t = gb_tele_new(&r, 1, GB_TELE_ENABLE);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(gb_tele_enabled(t), 1);
}

static void
teardown(void)
{
	gb_tele_free(t);
	recorder_fini(&rc);
}

/* stderr captured into a temporary file between capture_begin and capture_end. */
static int saved_stderr = -1;
static FILE *capture_file;

static void
capture_begin(void)
{
	capture_file = tmpfile();
	ck_assert_ptr_nonnull(capture_file);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fileno(capture_file), STDERR_FILENO);
}

static const char *
capture_end(void)
{
	static char out[8192];
	size_t n;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	rewind(capture_file);
	n = fread(out, 1, sizeof(out) - 1, capture_file);
	out[n] = '\0';
	fclose(capture_file);
	return out;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
assert_rec(size_t i, char kind, const char *scope, int depth, const char *parent, unsigned cc,
    const char *type, const char *extra)
{
	ck_assert_uint_gt(rc.n, i);
	const struct rec *r = &rc.r[i];
	ck_assert_int_eq(r->kind, kind);
	ck_assert_str_eq(r->scope, scope);
	ck_assert_int_eq(r->depth, depth);
	ck_assert_int_eq(r->has_parent, parent != NULL);
	ck_assert_str_eq(r->parent, parent ? parent : "");
	ck_assert_uint_eq(r->call_count, cc);
	ck_assert_str_eq(r->type, type ? type : "");
	ck_assert_str_eq(r->extra, extra);
}

START_TEST(paths_join_with_dots)
{
	gb_scope a = gb_tele_begin(t, "batch.total_processing", NULL, 0);
	gb_scope b = gb_tele_begin(t, "batch.attempt", NULL, 0);
	gb_scope c = gb_tele_begin(t, "client.api_call", NULL, 0);
	gb_tele_end(t, &c);
	gb_tele_end(t, &b);
	gb_tele_end(t, &a);

	ck_assert_uint_eq(rc.n, 3);
	assert_rec(0, 't', "batch.total_processing.batch.attempt.client.api_call", 2,
	    "batch.total_processing.batch.attempt", 1, NULL, "");
	assert_rec(1, 't', "batch.total_processing.batch.attempt", 1, "batch.total_processing", 1,
	    NULL, "");
	assert_rec(2, 't', "batch.total_processing", 0, NULL, 1, NULL, "");
	ck_assert(rc.r[2].value >= rc.r[1].value && rc.r[1].value >= rc.r[0].value);
	ck_assert(rc.r[0].value >= 0.0 && rc.r[2].value < 10.0);
}
END_TEST

START_TEST(call_count_per_full_path)
{
	for (int i = 0; i < 3; i++) {
		GB_SCOPE(t, "a") {
			GB_SCOPE(t, "b") {}
		}
	}
	GB_SCOPE(t, "b") {}

	ck_assert_uint_eq(rc.n, 7);
	for (unsigned i = 0; i < 3; i++) {
		assert_rec(2 * i, 't', "a.b", 1, "a", i + 1, NULL, "");
		assert_rec(2 * i + 1, 't', "a", 0, NULL, i + 1, NULL, "");
	}
	assert_rec(6, 't', "b", 0, NULL, 1, NULL, "");
}
END_TEST

START_TEST(call_count_same_path_however_built)
{
	gb_tele_count(t, "batch.api.calls", 1, NULL, 0);
	GB_SCOPE(t, "batch") {
		gb_tele_count(t, "api.calls", 1, NULL, 0);
		GB_SCOPE(t, "api") {
			gb_tele_count(t, "calls", 1, NULL, 0);
		}
	}
	GB_SCOPE(t, "batch.api") {
		gb_tele_count(t, "calls", 1, NULL, 0);
	}

	ck_assert_uint_eq(rc.n, 7);
	assert_rec(0, 'm', "batch.api.calls", 0, NULL, 1, "counter", "");
	assert_rec(1, 'm', "batch.api.calls", 1, "batch", 2, "counter", "");
	assert_rec(2, 'm', "batch.api.calls", 2, "batch.api", 3, "counter", "");
	assert_rec(3, 't', "batch.api", 1, "batch", 1, NULL, "");
	assert_rec(5, 'm', "batch.api.calls", 1, "batch.api", 4, "counter", "");
	assert_rec(6, 't', "batch.api", 0, NULL, 2, NULL, "");
}
END_TEST

/* A name passed in a buffer the caller rewrites: counted by its text, not its address. */
START_TEST(call_count_follows_the_text_of_a_reused_buffer)
{
	char name[16];

	for (int round = 0; round < 2; round++) {
		GB_SCOPE(t, "jobs") {
			for (int i = 0; i < 3; i++) {
				snprintf(name, sizeof(name), "job_%d", i);
				gb_tele_count(t, name, 1, NULL, 0);
			}
		}
		snprintf(name, sizeof(name), "top_%d", round % 2);
		gb_tele_count(t, name, 1, NULL, 0);
		gb_tele_count(t, name, 1, NULL, 0);
	}
	ck_assert_uint_eq(rc.n, 2 * 6);
	for (unsigned round = 0; round < 2; round++) {
		const size_t b = round * 6;
		assert_rec(b + 0, 'm', "jobs.job_0", 1, "jobs", round + 1, "counter", "");
		assert_rec(b + 1, 'm', "jobs.job_1", 1, "jobs", round + 1, "counter", "");
		assert_rec(b + 2, 'm', "jobs.job_2", 1, "jobs", round + 1, "counter", "");
		assert_rec(b + 3, 't', "jobs", 0, NULL, round + 1, NULL, "");
	}
	assert_rec(4, 'm', "top_0", 0, NULL, 1, "counter", "");
	assert_rec(5, 'm', "top_0", 0, NULL, 2, "counter", "");
	assert_rec(10, 'm', "top_1", 0, NULL, 1, "counter", "");
	assert_rec(11, 'm', "top_1", 0, NULL, 2, "counter", "");
}
END_TEST

/* Names may hold dots, so one path can be reached by different splits ("a" > "b" > "c", and
 * "b.c" under "a"); a buffer rewritten between calls must still be counted by its text. */
START_TEST(call_count_of_dotted_names_in_a_reused_buffer)
{
	char name[8];

	GB_SCOPE(t, "a") {
		GB_SCOPE(t, "b") {
			gb_tele_metric(t, "c", 1, NULL, 0);
		}
		snprintf(name, sizeof(name), "b.c");
		gb_tele_metric(t, name, 2, NULL, 0);
		snprintf(name, sizeof(name), "c");
		gb_tele_metric(t, name, 3, NULL, 0);
		snprintf(name, sizeof(name), "b.c");
		gb_tele_metric(t, name, 4, NULL, 0);
	}
	ck_assert_uint_eq(rc.n, 6);
	assert_rec(0, 'm', "a.b.c", 2, "a.b", 1, NULL, "");
	assert_rec(2, 'm', "a.b.c", 1, "a", 2, NULL, "");
	assert_rec(3, 'm', "a.c", 1, "a", 1, NULL, "");
	assert_rec(4, 'm', "a.b.c", 1, "a", 3, NULL, "");
	ck_assert_double_eq(rc.r[3].value, 3);
}
END_TEST

/* Every call count of one path recorded by several threads at once is given exactly once. */
#define SHARED_THREADS 4
#define SHARED_EACH 20000

static _Atomic unsigned char shared_seen[SHARED_THREADS * SHARED_EACH + 1];
static atomic_int shared_bad;

static int
shared_metric(void *self, const char *scope, double v, const gb_tele_meta *m)
{
	(void)self;
	(void)v;
	if (strcmp(scope, "pool.done") != 0 || m->call_count == 0 ||
	    m->call_count > SHARED_THREADS * SHARED_EACH ||
	    atomic_exchange(&shared_seen[m->call_count], 1) != 0)
		atomic_fetch_add(&shared_bad, 1);
	return 0;
}

static void *
shared_body(void *arg)
{
	gb_tele *tt = arg;

	GB_SCOPE(tt, "pool") {
		for (int i = 0; i < SHARED_EACH; i++)
			gb_tele_count(tt, "done", 1, NULL, 0);
	}
	return NULL;
}

START_TEST(call_counts_exact_across_threads)
{
	gb_reporter r = { .self = NULL, .record_metric = shared_metric };
	gb_tele *tt = gb_tele_new(&r, 1, GB_TELE_ENABLE);
	pthread_t th[SHARED_THREADS];

	for (int i = 0; i < SHARED_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, shared_body, tt), 0);
	for (int i = 0; i < SHARED_THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&shared_bad), 0);
	for (unsigned n = 1; n <= SHARED_THREADS * SHARED_EACH; n++)
		ck_assert_uint_eq(atomic_load(&shared_seen[n]), 1);
	gb_tele_free(tt);
}
END_TEST

/* 8 threads sharing one context over more paths than a thread's cache holds, each thread
 * in one of two orders, so that paths are added, by two threads at once too, and the table
 * grows, while the other threads look them up without a lock: every count of every path is
 * given exactly once. */
#define MANY_THREADS 8
#define MANY_PATHS 200
#define MANY_ROUNDS 25
#define MANY_EACH (MANY_THREADS * MANY_ROUNDS)

static _Atomic unsigned char many_seen[2][MANY_PATHS][MANY_EACH + 1];
static atomic_int many_bad;
static pthread_barrier_t many_go;

static int
many_metric(void *self, const char *scope, double v, const gb_tele_meta *m)
{
	int nested = strncmp(scope, "pool.", 5) == 0;
	unsigned i, n = m->call_count;
	char rest;

	(void)self;
	(void)v;
	if (sscanf(scope + (nested ? 5 : 0), "n%u%c", &i, &rest) != 1 || i >= MANY_PATHS ||
	    n == 0 || n > MANY_EACH || m->depth != nested ||
	    (nested ? m->parent_scope == NULL || strcmp(m->parent_scope, "pool") != 0 :
	    m->parent_scope != NULL) ||
	    atomic_exchange(&many_seen[nested][i][n], 1) != 0)
		atomic_fetch_add(&many_bad, 1);
	return 0;
}

static void
many_round(gb_tele *tt, unsigned first)
{
	char name[16]; /* one buffer, rewritten for every name */

	for (unsigned k = 0; k < MANY_PATHS; k++) {
		snprintf(name, sizeof(name), "n%u", (first + k) % MANY_PATHS);
		gb_tele_count(tt, name, 1, NULL, 0);
	}
}

static void *
many_body(void *arg)
{
	gb_tele *tt = ((void **)arg)[0];
	unsigned first = (unsigned)(uintptr_t)((void **)arg)[1];

	pthread_barrier_wait(&many_go);
	for (int r = 0; r < MANY_ROUNDS; r++) {
		many_round(tt, first);
		GB_SCOPE(tt, "pool") {
			many_round(tt, first + 7);
		}
	}
	return NULL;
}

START_TEST(call_counts_exact_with_8_threads_over_many_paths)
{
	gb_reporter r = { .self = NULL, .record_metric = many_metric };
	gb_tele *tt = gb_tele_new(&r, 1, GB_TELE_ENABLE);
	pthread_t th[MANY_THREADS];
	void *args[MANY_THREADS][2];

	pthread_barrier_init(&many_go, NULL, MANY_THREADS);
	for (int i = 0; i < MANY_THREADS; i++) {
		args[i][0] = tt;
		args[i][1] = (void *)(uintptr_t)(i % 2 * (MANY_PATHS / 2)); /* two orders */
		ck_assert_int_eq(pthread_create(&th[i], NULL, many_body, args[i]), 0);
	}
	for (int i = 0; i < MANY_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&many_go);
	int bad = atomic_load(&many_bad);
	ck_assert_int_eq(bad, 0);
	for (int nested = 0; nested < 2; nested++)
		for (unsigned i = 0; i < MANY_PATHS; i++)
			for (unsigned n = 1; n <= MANY_EACH; n++)
				ck_assert_msg(atomic_load(&many_seen[nested][i][n]) == 1,
				    "%sn%u: count %u given %d times", nested ? "pool." : "", i, n,
				    atomic_load(&many_seen[nested][i][n]));
	gb_tele_free(tt);
}
END_TEST

/* A thread's cache maps (name, enclosing scope) to a path: the same name pointer, or one buffer
 * rewritten, under scopes that come and go (and more names than the cache has slots) always
 * gets the path of the scope open now, never one cached under another ("a" and "b" are the
 * same length, so a path cached under one has the right text after the other's path too). */
static void
names_in_scope(const char *outer, unsigned round, char *name, size_t size)
{
	gb_scope s = gb_tele_begin(t, outer, NULL, 0);

	snprintf(name, size, "same");
	gb_tele_metric(t, name, 0, NULL, 0);
	gb_tele_metric(t, "x", 0, NULL, 0);
	for (unsigned i = 0; i < 100; i++) {
		snprintf(name, size, "m%u", (i + round) % 100);
		gb_tele_metric(t, name, i, NULL, 0);
	}
	gb_tele_metric(t, "x", 0, NULL, 0);
	snprintf(name, size, "same");
	gb_tele_metric(t, name, 0, NULL, 0);
	gb_tele_end(t, &s);
}

START_TEST(cached_paths_follow_the_enclosing_scope)
{
	static const char *outer[] = { "a", "b", "a.b" };
	char name[16], path[32];
	size_t k = 0;

	for (unsigned round = 0; round < 3; round++) {
		for (int o = 0; o < 3; o++)
			names_in_scope(outer[o], round, name, sizeof(name));
		gb_tele_metric(t, "x", 1, NULL, 0);
		GB_SCOPE(t, "a") {
			GB_SCOPE(t, "b") {
				gb_tele_metric(t, "x", 2, NULL, 0); /* a.b.x again, by another split */
			}
		}
	}
	ck_assert_uint_eq(rc.n, 3 * (3 * 105 + 4));
	for (unsigned r = 0; r < 3; r++) {
		for (int o = 0; o < 3; o++) {
			/* a.b.x is also recorded by the nested scopes; "a" and "a.b" are also timed
			 * by them, "b" only here */
			unsigned x0 = o == 2 ? 3 * r : 2 * r, timed = o == 1 ? r + 1 : 2 * r + 1;

			snprintf(path, sizeof(path), "%s.same", outer[o]);
			assert_rec(k++, 'm', path, 1, outer[o], 2 * r + 1, NULL, "");
			snprintf(path, sizeof(path), "%s.x", outer[o]);
			assert_rec(k++, 'm', path, 1, outer[o], x0 + 1, NULL, "");
			for (unsigned i = 0; i < 100; i++, k++) {
				snprintf(path, sizeof(path), "%s.m%u", outer[o], (i + r) % 100);
				assert_rec(k, 'm', path, 1, outer[o], r + 1, NULL, "");
			}
			snprintf(path, sizeof(path), "%s.x", outer[o]);
			assert_rec(k++, 'm', path, 1, outer[o], x0 + 2, NULL, "");
			snprintf(path, sizeof(path), "%s.same", outer[o]);
			assert_rec(k++, 'm', path, 1, outer[o], 2 * r + 2, NULL, "");
			assert_rec(k++, 't', outer[o], 0, NULL, timed, NULL, "");
		}
		assert_rec(k++, 'm', "x", 0, NULL, r + 1, NULL, "");
		assert_rec(k++, 'm', "a.b.x", 2, "a.b", 3 * r + 3, NULL, "");
		assert_rec(k++, 't', "a.b", 1, "a", 2 * r + 2, NULL, "");
		assert_rec(k++, 't', "a", 0, NULL, 2 * r + 2, NULL, "");
	}
}
END_TEST

/* What a context keeps for its call counts is bounded: past GB_TELE_MAX_PATHS distinct paths
 * it stops growing, and what it holds is the tables and one entry per path counted. */
START_TEST(call_count_memory_stays_bounded)
{
	gb_reporter none = { 0 };
	gb_tele *tt = gb_tele_new(&none, 1, GB_TELE_ENABLE);
	size_t empty = gb__tele_memory(tt), full;
	char name[32];

	ck_assert_uint_gt(empty, 0);
	ck_assert_uint_lt(empty, 4096);
	for (unsigned i = 0; i < GB_TELE_MAX_PATHS + 1000; i++) {
		snprintf(name, sizeof(name), "made.up.%07u", i); /* 15 bytes each */
		gb_tele_count(tt, name, 1, NULL, 0);
	}
	full = gb__tele_memory(tt);
	/* the newest table has 2 * GB_TELE_MAX_PATHS slots, the older ones fewer together */
	size_t tables = 2 * (2 * GB_TELE_MAX_PATHS) * sizeof(void *) + 4096;
	size_t entries = GB_TELE_MAX_PATHS * (sizeof(struct gb__count_entry) + 16);
	ck_assert_uint_le(full, tables + entries);
	ck_assert_uint_gt(full, entries);
	for (unsigned i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "more.made.up.%u", i);
		gb_tele_count(tt, name, 1, NULL, 0);
		GB_SCOPE(tt, name) {}
	}
	ck_assert_uint_eq(gb__tele_memory(tt), full);
	gb_tele_free(tt);
}
END_TEST

/* Past GB_TELE_MAX_PATHS distinct paths, a new one is still reported, under its full path and
 * parent, with call_count 0; the paths counted before stay exact. */
struct last_rec {
	char scope[64], parent[64];
	unsigned call_count;
	size_t n;
};

static int
last_metric(void *self, const char *scope, double v, const gb_tele_meta *m)
{
	struct last_rec *l = self;

	(void)v;
	snprintf(l->scope, sizeof(l->scope), "%s", scope);
	snprintf(l->parent, sizeof(l->parent), "%s", m->parent_scope ? m->parent_scope : "");
	l->call_count = m->call_count;
	l->n++;
	return 0;
}

START_TEST(call_counts_past_the_table_cap)
{
	struct last_rec l = { .n = 0 };
	gb_reporter r = { .self = &l, .record_metric = last_metric, .record_timing = last_metric };
	gb_tele *tt = gb_tele_new(&r, 1, GB_TELE_ENABLE);
	char name[32];

	gb_tele_count(tt, "early", 1, NULL, 0);
	for (unsigned i = 0; i + 1 < GB_TELE_MAX_PATHS; i++) { /* with "early": the table is full */
		snprintf(name, sizeof(name), "n%u", i);
		gb_tele_count(tt, name, 1, NULL, 0);
	}
	snprintf(name, sizeof(name), "n%u", GB_TELE_MAX_PATHS - 2);
	ck_assert_str_eq(l.scope, name);
	ck_assert_uint_eq(l.call_count, 1);
	gb_tele_count(tt, "late", 1, NULL, 0);
	ck_assert_str_eq(l.scope, "late");
	ck_assert_uint_eq(l.call_count, 0);
	gb_tele_count(tt, "early", 1, NULL, 0);
	ck_assert_str_eq(l.scope, "early");
	ck_assert_uint_eq(l.call_count, 2);
	GB_SCOPE(tt, "late_scope") {
		gb_tele_count(tt, "inside", 1, NULL, 0);
		ck_assert_str_eq(l.scope, "late_scope.inside");
		ck_assert_str_eq(l.parent, "late_scope");
		ck_assert_uint_eq(l.call_count, 0);
	}
	ck_assert_str_eq(l.scope, "late_scope");
	ck_assert_uint_eq(l.call_count, 0);
	ck_assert_uint_eq(l.n, GB_TELE_MAX_PATHS + 4);
	gb_tele_free(tt);
}
END_TEST

START_TEST(metric_types_and_paths)
{
	gb_tele_metric(t, "top", 1.5, NULL, 0);
	GB_SCOPE(t, "s") {
		GB_SCOPE(t, "u") {
			gb_tele_count(t, "calls", 2, NULL, 0);
			gb_tele_count(t, "calls", 3, NULL, 0);
		}
		gb_tele_gauge(t, "level", 0.25, NULL, 0);
		gb_tele_metric(t, "plain", -4, NULL, 0);
	}

	ck_assert_uint_eq(rc.n, 7);
	assert_rec(0, 'm', "top", 0, NULL, 1, NULL, "");
	ck_assert_double_eq(rc.r[0].value, 1.5);
	assert_rec(1, 'm', "s.u.calls", 2, "s.u", 1, "counter", "");
	assert_rec(2, 'm', "s.u.calls", 2, "s.u", 2, "counter", "");
	ck_assert_double_eq(rc.r[2].value, 3);
	assert_rec(3, 't', "s.u", 1, "s", 1, NULL, "");
	assert_rec(4, 'm', "s.level", 1, "s", 1, "gauge", "");
	ck_assert_double_eq(rc.r[4].value, 0.25);
	assert_rec(5, 'm', "s.plain", 1, "s", 1, NULL, "");
	ck_assert_double_eq(rc.r[5].value, -4);
	assert_rec(6, 't', "s", 0, NULL, 1, NULL, "");
}
END_TEST

START_TEST(metadata_in_given_order)
{
	const gb_kv scope_meta[] = { { "zeta", "1" }, { "alpha", "two" }, { "mid", "" } };
	const gb_kv metric_meta[] = { { "q", "9" }, { "b", "x=y" } };
	char key[8] = "k", val[8] = "v";
	const gb_kv borrowed[] = { { key, val } };

	gb_scope s = gb_tele_begin(t, "s", scope_meta, 3);
	gb_scope inner = gb_tele_begin(t, "in", borrowed, 1);
	strcpy(key, "XX"); /* begin copies the metadata: later changes do not show */
	strcpy(val, "YY");
	gb_tele_metric(t, "m", 1, metric_meta, 2);
	gb_tele_end(t, &inner);
	gb_tele_end(t, &s);

	assert_rec(0, 'm', "s.in.m", 2, "s.in", 1, NULL, "q=9,b=x=y");
	assert_rec(1, 't', "s.in", 1, "s", 1, NULL, "k=v");
	assert_rec(2, 't', "s", 0, NULL, 1, NULL, "zeta=1,alpha=two,mid=");
}
END_TEST

START_TEST(many_metadata_pairs)
{
	gb_kv meta[40];
	char keys[40][8], vals[40][8];

	for (int i = 0; i < 40; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		snprintf(vals[i], sizeof(vals[i]), "%d", i);
		meta[i] = (gb_kv){ keys[i], vals[i] };
	}
	gb_scope s = gb_tele_begin(t, "wide", meta, 40);
	gb_tele_end(t, &s);
	ck_assert_uint_eq(rc.n, 1);
	ck_assert(strncmp(rc.r[0].extra, "k0=0,k1=1,k2=2,", 15) == 0);
}
END_TEST

static int
leave_by_return(gb_tele *tt)
{
	GB_SCOPE(tt, "ret") {
		GB_SCOPE(tt, "inner") {
			return 7;
		}
	}
	return 0;
}

START_TEST(gb_scope_ends_on_every_exit)
{
	int after_block = 0;

	ck_assert_int_eq(leave_by_return(t), 7);
	/* GB_SCOPE is itself a one-pass loop: break leaves the guarded block (ending the scope)
	 * and carries on after it, in the same iteration of the enclosing loop. */
	for (int i = 0; i < 3; i++) {
		GB_SCOPE(t, "loop") {
			if (i == 1)
				break;
			gb_tele_count(t, "not_after_break", 1, NULL, 0);
		}
		after_block++;
	}
	GB_SCOPE(t, "jump") {
		goto out;
	}
out:
	GB_SCOPE(t, "after") {}

	ck_assert_int_eq(after_block, 3);
	ck_assert_uint_eq(rc.n, 9);
	assert_rec(0, 't', "ret.inner", 1, "ret", 1, NULL, "");
	assert_rec(1, 't', "ret", 0, NULL, 1, NULL, "");
	assert_rec(2, 'm', "loop.not_after_break", 1, "loop", 1, "counter", "");
	assert_rec(3, 't', "loop", 0, NULL, 1, NULL, "");
	assert_rec(4, 't', "loop", 0, NULL, 2, NULL, "");
	assert_rec(5, 'm', "loop.not_after_break", 1, "loop", 2, "counter", "");
	assert_rec(6, 't', "loop", 0, NULL, 3, NULL, "");
	assert_rec(7, 't', "jump", 0, NULL, 1, NULL, "");
	assert_rec(8, 't', "after", 0, NULL, 1, NULL, "");
}
END_TEST

START_TEST(out_of_order_end_is_a_logged_usage_error)
{
	capture_begin();
	gb_scope a = gb_tele_begin(t, "a", NULL, 0);
	gb_scope b = gb_tele_begin(t, "b", NULL, 0);
	gb_scope c = gb_tele_begin(t, "c", NULL, 0);
	gb_tele_end(t, &a); /* closes c and b unreported */
	gb_tele_end(t, &b);
	gb_tele_end(t, &c);
	gb_tele_end(t, &a); /* twice: harmless */
	gb_scope d = gb_tele_begin(t, "d", NULL, 0);
	gb_tele_end(t, &d);
	const char *err = capture_end();

	ck_assert_uint_eq(rc.n, 2);
	assert_rec(0, 't', "a", 0, NULL, 1, NULL, "");
	assert_rec(1, 't', "d", 0, NULL, 1, NULL, "");
	ck_assert_uint_eq(count_lines(err), 1);
	ck_assert_ptr_nonnull(strstr(err, "usage error: scope \"a\" ended before its inner scope "
	                                  "\"a.b.c\"; 2 inner scope(s) closed unreported"));
}
END_TEST

START_TEST(out_of_order_end_does_not_confuse_a_later_scope)
{
	capture_begin();
	gb_scope a = gb_tele_begin(t, "a", NULL, 0);
	gb_scope b = gb_tele_begin(t, "b", NULL, 0);
	gb_tele_end(t, &a);
	gb_scope a2 = gb_tele_begin(t, "a2", NULL, 0);
	gb_scope c = gb_tele_begin(t, "c", NULL, 0); /* same stack slot as b had */
	gb_tele_end(t, &b);                         /* must not end c */
	gb_tele_end(t, &c);
	gb_tele_end(t, &a2);
	capture_end();

	ck_assert_uint_eq(rc.n, 3);
	assert_rec(0, 't', "a", 0, NULL, 1, NULL, "");
	assert_rec(1, 't', "a2.c", 1, "a2", 1, NULL, "");
	assert_rec(2, 't', "a2", 0, NULL, 1, NULL, "");
}
END_TEST

START_TEST(two_contexts_on_one_thread_do_not_mix)
{
	struct recorder rc2;
	recorder_init(&rc2);
	gb_reporter r2 = recorder_reporter(&rc2);
	gb_tele *t2 = gb_tele_new(&r2, 1, GB_TELE_ENABLE);

	gb_scope a = gb_tele_begin(t, "one", NULL, 0);
	gb_scope b = gb_tele_begin(t2, "two", NULL, 0);
	gb_tele_count(t, "n", 1, NULL, 0);
	gb_tele_count(t2, "n", 1, NULL, 0);
	gb_tele_end(t, &a);
	gb_tele_end(t2, &b);

	ck_assert_uint_eq(rc.n, 2);
	assert_rec(0, 'm', "one.n", 1, "one", 1, "counter", "");
	assert_rec(1, 't', "one", 0, NULL, 1, NULL, "");
	ck_assert_uint_eq(rc2.n, 2);
	ck_assert_str_eq(rc2.r[0].scope, "two.n");
	ck_assert_str_eq(rc2.r[1].scope, "two");
	gb_tele_free(t2);
	recorder_fini(&rc2);
}
END_TEST

START_TEST(context_freed_with_open_scope_leaves_no_trace)
{
	struct recorder rc2;
	recorder_init(&rc2);
	gb_reporter r2 = recorder_reporter(&rc2);

	gb_tele *t2 = gb_tele_new(&r2, 1, GB_TELE_ENABLE);
	gb_scope open = gb_tele_begin(t2, "left.open", NULL, 0);
	(void)open;
	gb_tele_free(t2);
	t2 = gb_tele_new(&r2, 1, GB_TELE_ENABLE); /* may reuse the address */
	GB_SCOPE(t2, "fresh") {}
	gb_tele_free(t2);
	ck_assert_uint_eq(rc2.n, 1);
	ck_assert_str_eq(rc2.r[0].scope, "fresh");
	ck_assert_int_eq(rc2.r[0].depth, 0);
	ck_assert_int_eq(rc2.r[0].has_parent, 0);
	ck_assert_uint_eq(rc2.r[0].call_count, 1);
	recorder_fini(&rc2);
}
END_TEST

/* ---- threads ---- */

#define ROUNDS 200
static pthread_barrier_t barrier;

static void *
thread_body(void *arg)
{
	const char *name = arg;

	for (int i = 0; i < ROUNDS; i++) {
		gb_scope outer = gb_tele_begin(t, name, NULL, 0);
		pthread_barrier_wait(&barrier); /* both threads now have an open outer scope */
		gb_scope inner = gb_tele_begin(t, "inner", NULL, 0);
		pthread_barrier_wait(&barrier);
		gb_tele_count(t, "n", 1, NULL, 0);
		gb_tele_end(t, &inner);
		pthread_barrier_wait(&barrier);
		gb_tele_end(t, &outer);
	}
	return NULL;
}

START_TEST(threads_have_their_own_stacks)
{
	pthread_t a, b;
	size_t seen_inner[2] = { 0, 0 };

	pthread_barrier_init(&barrier, NULL, 2);
	pthread_create(&a, NULL, thread_body, (void *)(uintptr_t) "ta");
	pthread_create(&b, NULL, thread_body, (void *)(uintptr_t) "tb");
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_barrier_destroy(&barrier);

	ck_assert_uint_eq(rc.n, 6 * ROUNDS);
	for (size_t i = 0; i < rc.n; i++) {
		const struct rec *r = &rc.r[i];
		const char *owner = strncmp(r->scope, "ta", 2) == 0 ? "ta" : "tb";
		ck_assert(strncmp(r->scope, owner, 2) == 0);
		if (strcmp(r->scope + 2, ".inner") == 0) {
			ck_assert_int_eq(r->depth, 1);
			ck_assert_str_eq(r->parent, owner);
			seen_inner[owner[1] == 'b']++;
		} else if (strcmp(r->scope + 2, ".inner.n") == 0) {
			ck_assert_int_eq(r->depth, 2);
		} else {
			ck_assert_str_eq(r->scope, owner);
			ck_assert_int_eq(r->depth, 0);
		}
	}
	ck_assert_uint_eq(seen_inner[0], ROUNDS);
	ck_assert_uint_eq(seen_inner[1], ROUNDS);
}
END_TEST

/* ---- reporters ---- */

START_TEST(every_reporter_receives_everything)
{
	struct recorder r1, r2;
	recorder_init(&r1);
	recorder_init(&r2);
	gb_reporter reps[] = { recorder_reporter(&r1), recorder_reporter(&r2) };
	gb_tele *tt = gb_tele_new(reps, 2, GB_TELE_ENABLE);

	GB_SCOPE(tt, "x") {
		gb_tele_gauge(tt, "g", 1, NULL, 0);
	}
	gb_tele_free(tt);
	ck_assert_uint_eq(r1.n, 2);
	ck_assert_uint_eq(r2.n, 2);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_str_eq(r1.r[i].scope, r2.r[i].scope);
		ck_assert_int_eq(r1.r[i].kind, r2.r[i].kind);
	}
	ck_assert_str_eq(r1.r[0].scope, "x.g");
	recorder_fini(&r1);
	recorder_fini(&r2);
}
END_TEST

START_TEST(reporter_with_one_callback)
{
	struct recorder only_m, only_t;
	recorder_init(&only_m);
	recorder_init(&only_t);
	gb_reporter reps[] = {
		{ .self = &only_m, .record_metric = recorder_metric },
		{ .self = &only_t, .record_timing = recorder_timing },
	};
	gb_tele *tt = gb_tele_new(reps, 2, GB_TELE_ENABLE);

	GB_SCOPE(tt, "x") {
		gb_tele_count(tt, "c", 1, NULL, 0);
	}
	gb_tele_free(tt);
	ck_assert_uint_eq(only_m.n, 1);
	ck_assert_str_eq(only_m.r[0].scope, "x.c");
	ck_assert_uint_eq(only_t.n, 1);
	ck_assert_str_eq(only_t.r[0].scope, "x");
	recorder_fini(&only_m);
	recorder_fini(&only_t);
}
END_TEST

START_TEST(failing_reporter_logged_once_others_unaffected)
{
	struct recorder bad, good;
	recorder_init(&bad);
	recorder_init(&good);
	bad.fail = 1;
	gb_reporter reps[] = { recorder_reporter(&bad), recorder_reporter(&good) };
	gb_tele *tt = gb_tele_new(reps, 2, GB_TELE_ENABLE);

	capture_begin();
	for (int i = 0; i < 5; i++) {
		GB_SCOPE(tt, "op") {
			gb_tele_count(tt, "n", 1, NULL, 0);
		}
	}
	const char *err = capture_end();
	gb_tele_free(tt);

	ck_assert_uint_eq(good.n, 10);
	ck_assert_uint_eq(bad.n, 10); /* still called every time */
	ck_assert_uint_eq(count_lines(err), 1);
	ck_assert_ptr_nonnull(strstr(err, "reporter 0 failed to record metric \"op.n\""));
	recorder_fini(&bad);
	recorder_fini(&good);
}
END_TEST

/* ---- names the seed refuses ---- */

/* Every entry point that takes a name, given NULL and "": nothing is recorded, the calls
 * around them are unaffected, and one warning says so for the whole process. */
START_TEST(missing_or_empty_names_are_refused_with_one_warning)
{
	static const char *const names[] = { NULL, "" };
	gb_kv kv = { "k", "v" };

	capture_begin();
	for (size_t i = 0; i < 2; i++) {
		const char *name = names[i];
		gb_scope s = gb_tele_begin(t, name, &kv, 1);
		ck_assert_ptr_null(s.tele);
		gb_tele_end(t, &s);
		GB_SCOPE(t, name) {
			gb_tele_metric(t, name, 1, &kv, 1);
			gb_tele_count(t, name, 1, NULL, 0);
			gb_tele_gauge(t, name, 2, NULL, 0);
			gb__tele_timing(t, name, 0.5, NULL, 0);
			gb__tele_histogram(t, name, 7, NULL, 0);
		}
	}
	GB_SCOPE(t, "named") {
		gb_scope bad = gb_tele_begin(t, NULL, NULL, 0);
		gb_tele_count(t, "n", 1, NULL, 0);
		gb_tele_end(t, &bad);
	}
	const char *err = capture_end();

	ck_assert_uint_eq(rc.n, 2);
	assert_rec(0, 'm', "named.n", 1, "named", 1, "counter", "");
	assert_rec(1, 't', "named", 0, NULL, 1, NULL, "");
	ck_assert_uint_eq(count_lines(err), 1);
	ck_assert_ptr_nonnull(strstr(err, "telemetry: a scope with a NULL name is not recorded"));
}
END_TEST

/* ---- the no-op context ---- */

START_TEST(disabled_context_does_nothing)
{
	struct recorder r1;
	recorder_init(&r1);
	gb_reporter rep = recorder_reporter(&r1);
	gb_tele *off = gb_tele_new(&rep, 1, GB_TELE_DISABLE);
	gb_tele *off2 = gb_tele_new(NULL, 0, GB_TELE_DISABLE | GB_TELE_ENABLE);

	ck_assert_ptr_eq(off, off2);
	ck_assert_int_eq(gb_tele_enabled(off), 0);
	ck_assert_int_eq(gb_tele_enabled(NULL), 0);
	gb_scope s = gb_tele_begin(off, "x", NULL, 0);
	ck_assert_ptr_null(s.tele);
	gb_tele_count(off, "c", 1, NULL, 0);
	gb_tele_gauge(off, "g", 1, NULL, 0);
	gb_tele_metric(off, "m", 1, NULL, 0);
	gb_tele_end(off, &s);
	GB_SCOPE(off, "y") {
		gb_tele_metric(off, "m", 1, NULL, 0);
	}
	GB_SCOPE(NULL, "z") {
		gb_tele_count(NULL, "c", 1, NULL, 0);
	}
	gb_tele_free(off);
	gb_tele_free(off2);
	ck_assert_uint_eq(r1.n, 0);
	recorder_fini(&r1);
}
END_TEST

/* Runs in a child: sets the environment, makes a context, then changes the environment and
 * makes another; exits with 10 * first enabled + second enabled. */
static int
env_child(const char *var, const char *value, unsigned flags)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		unsetenv("GEMINI_TELEMETRY");
		unsetenv("DEBUG");
		if (var != NULL)
			setenv(var, value, 1);
		gb_tele *a = gb_tele_new(NULL, 0, flags);
		if (var != NULL)
			unsetenv(var);
		else
			setenv("GEMINI_TELEMETRY", "1", 1);
		gb_tele *b = gb_tele_new(NULL, 0, flags);
		int code = 10 * gb_tele_enabled(a) + gb_tele_enabled(b);
		gb_tele_free(a);
		gb_tele_free(b);
		_exit(code);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(environment_read_once)
{
	ck_assert_int_eq(env_child("GEMINI_TELEMETRY", "1", 0), 11);
	ck_assert_int_eq(env_child("DEBUG", "1", 0), 11);
	ck_assert_int_eq(env_child(NULL, NULL, 0), 0);
	ck_assert_int_eq(env_child("GEMINI_TELEMETRY", "0", 0), 0);
	ck_assert_int_eq(env_child("GEMINI_TELEMETRY", "yes", 0), 0);
	ck_assert_int_eq(env_child("GEMINI_TELEMETRY", "1", GB_TELE_DISABLE), 0);
	ck_assert_int_eq(env_child(NULL, NULL, GB_TELE_ENABLE), 11);
}
END_TEST

static Suite *
telemetry_suite(void)
{
	Suite *s = suite_create("telemetry");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, paths_join_with_dots);
	tcase_add_test(tc, call_count_per_full_path);
	tcase_add_test(tc, call_count_same_path_however_built);
	tcase_add_test(tc, call_count_follows_the_text_of_a_reused_buffer);
	tcase_add_test(tc, call_count_of_dotted_names_in_a_reused_buffer);
	tcase_add_test(tc, call_counts_exact_across_threads);
	tcase_add_test(tc, call_counts_past_the_table_cap);
	tcase_add_test(tc, call_counts_exact_with_8_threads_over_many_paths);
	tcase_add_test(tc, cached_paths_follow_the_enclosing_scope);
	tcase_add_test(tc, call_count_memory_stays_bounded);
	tcase_add_test(tc, metric_types_and_paths);
	tcase_add_test(tc, metadata_in_given_order);
	tcase_add_test(tc, many_metadata_pairs);
	tcase_add_test(tc, gb_scope_ends_on_every_exit);
	tcase_add_test(tc, out_of_order_end_is_a_logged_usage_error);
	tcase_add_test(tc, out_of_order_end_does_not_confuse_a_later_scope);
	tcase_add_test(tc, two_contexts_on_one_thread_do_not_mix);
	tcase_add_test(tc, context_freed_with_open_scope_leaves_no_trace);
	tcase_add_test(tc, threads_have_their_own_stacks);
	tcase_add_test(tc, every_reporter_receives_everything);
	tcase_add_test(tc, reporter_with_one_callback);
	tcase_add_test(tc, failing_reporter_logged_once_others_unaffected);
	tcase_add_test(tc, missing_or_empty_names_are_refused_with_one_warning);
	tcase_add_test(tc, disabled_context_does_nothing);
	tcase_add_test(tc, environment_read_once);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = telemetry_suite };
