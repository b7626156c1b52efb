/* test_aggregate.c - the per-interval context table (sums, last values, first-seen order,
 * reuse after a flush, growth past thousands of contexts, the context cap, shrinking after a
 * burst) and the tag cardinality cap. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "check_main.h"

struct seen {
	char out[1 << 20];
	size_t len;
	size_t n;
};

static void
collect(void *ctx, const char *name, size_t nl, const char *tags, size_t tl, enum gb_agg_type type,
    double v)
{
	struct seen *s = ctx;

	s->len += (size_t)snprintf(s->out + s->len, sizeof(s->out) - s->len, "%.*s|%c|%.*s=%g\n",
	    (int)nl, name, (char)type, (int)tl, tags, v);
	s->n++;
}

START_TEST(sums_counters_keeps_last_gauge)
{
	gb_agg *a = gb__agg_new(0);
	static struct seen s;

	ck_assert_int_eq(gb__agg_add(a, "c", 1, "t:1", 3, GB_AGG_COUNTER, 1), 0);
	ck_assert_int_eq(gb__agg_add(a, "g", 1, "", 0, GB_AGG_GAUGE, 5), 0);
	ck_assert_int_eq(gb__agg_add(a, "c", 1, "t:1", 3, GB_AGG_COUNTER, 2.5), 0);
	ck_assert_int_eq(gb__agg_add(a, "c", 1, "t:2", 3, GB_AGG_COUNTER, 7), 0);
	ck_assert_int_eq(gb__agg_add(a, "g", 1, "", 0, GB_AGG_GAUGE, -3), 0);
	/* same bytes, other split between name and tags: another context */
	ck_assert_int_eq(gb__agg_add(a, "ct", 2, ":1", 2, GB_AGG_COUNTER, 100), 0);
	/* same name and tags, other type: another context */
	ck_assert_int_eq(gb__agg_add(a, "g", 1, "", 0, GB_AGG_COUNTER, 1), 0);
	ck_assert_uint_eq(gb__agg_count(a), 5);
	gb__agg_flush(a, collect, &s);
	ck_assert_str_eq(s.out, "c|c|t:1=3.5\ng|g|=-3\nc|c|t:2=7\nct|c|:1=100\ng|c|=1\n");
	ck_assert_uint_eq(gb__agg_count(a), 0);
	s.len = 0;
	s.out[0] = '\0';
	gb__agg_flush(a, collect, &s);
	ck_assert_str_eq(s.out, "");
	ck_assert_int_eq(gb__agg_add(a, "c", 1, "t:1", 3, GB_AGG_COUNTER, 1), 0);
	gb__agg_flush(a, collect, &s);
	ck_assert_str_eq(s.out, "c|c|t:1=1\n");
	gb__agg_free(a);
}
END_TEST

START_TEST(grows_to_many_contexts)
{
	gb_agg *a = gb__agg_new(0);
	static struct seen s;
	char name[32];

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 20000; i++) {
			int n = snprintf(name, sizeof(name), "metric.%d", i);
			ck_assert_int_eq(gb__agg_add(a, name, (size_t)n, "x:y", 3, GB_AGG_COUNTER, i), 0);
		}
	}
	ck_assert_uint_eq(gb__agg_count(a), 20000);
	gb__agg_flush(a, collect, &s);
	ck_assert_uint_eq(s.n, 20000);
	ck_assert_ptr_nonnull(strstr(s.out, "metric.19999|c|x:y=59997\n"));
	ck_assert(strncmp(s.out, "metric.0|c|x:y=0\nmetric.1|c|x:y=3\n", 34) == 0);
	gb__agg_free(a);
}
END_TEST

START_TEST(context_cap_drops_and_counts_new_contexts)
{
	gb_agg *a = gb__agg_new(3);
	static struct seen s;
	char name[32];

	for (int i = 0; i < 10; i++) {
		int n = snprintf(name, sizeof(name), "m%d", i);
		ck_assert_int_eq(gb__agg_add(a, name, (size_t)n, "", 0, GB_AGG_COUNTER, 1), i < 3 ? 0 : 1);
	}
	/* a context already held still folds; a gauge of a held name is another context */
	ck_assert_int_eq(gb__agg_add(a, "m0", 2, "", 0, GB_AGG_COUNTER, 5), 0);
	ck_assert_int_eq(gb__agg_add(a, "m0", 2, "", 0, GB_AGG_GAUGE, 5), 1);
	ck_assert_uint_eq(gb__agg_count(a), 3);
	ck_assert_uint_eq(gb__agg_dropped(a), 8);
	gb__agg_flush(a, collect, &s);
	ck_assert_str_eq(s.out, "m0|c|=6\nm1|c|=1\nm2|c|=1\n");
	/* the cap is per interval: the next one has room again */
	s.len = 0;
	s.out[0] = '\0';
	ck_assert_int_eq(gb__agg_add(a, "m9", 2, "", 0, GB_AGG_GAUGE, 2), 0);
	gb__agg_flush(a, collect, &s);
	ck_assert_str_eq(s.out, "m9|g|=2\n");
	ck_assert_uint_eq(gb__agg_dropped(a), 8);
	gb__agg_free(a);
}
END_TEST

static void
discard(void *ctx, const char *name, size_t nl, const char *tags, size_t tl, enum gb_agg_type type,
    double v)
{
	(void)name, (void)nl, (void)tags, (void)tl, (void)type, (void)v;
	++*(size_t *)ctx;
}

START_TEST(tables_shrink_after_a_burst)
{
	gb_agg *a = gb__agg_new(0);
	size_t idle, burst, n = 0;
	char name[64];

	ck_assert_int_eq(gb__agg_add(a, "steady", 6, "k:v", 3, GB_AGG_COUNTER, 1), 0);
	gb__agg_flush(a, discard, &n);
	idle = gb__agg_bytes(a);
	for (int i = 0; i < 100000; i++) {
		int len = snprintf(name, sizeof(name), "burst.metric_name_%d", i);
		ck_assert_int_eq(gb__agg_add(a, name, (size_t)len, "k:v,j:w", 7, GB_AGG_COUNTER, 1), 0);
	}
	burst = gb__agg_bytes(a);
	ck_assert_uint_gt(burst, 100 * idle);
	/* the flush of the burst keeps it: that interval needed it */
	gb__agg_flush(a, discard, &n);
	ck_assert_uint_eq(n, 100001);
	ck_assert_uint_ge(gb__agg_bytes(a), burst / 2);
	/* an ordinary interval after it: back to about what it needs */
	ck_assert_int_eq(gb__agg_add(a, "steady", 6, "k:v", 3, GB_AGG_COUNTER, 1), 0);
	gb__agg_flush(a, discard, &n);
	ck_assert_uint_le(gb__agg_bytes(a), 2 * idle);
	/* and it still works, growing again when asked */
	for (int i = 0; i < 5000; i++) {
		int len = snprintf(name, sizeof(name), "again.%d", i);
		ck_assert_int_eq(gb__agg_add(a, name, (size_t)len, "", 0, GB_AGG_GAUGE, i), 0);
	}
	ck_assert_uint_eq(gb__agg_count(a), 5000);
	n = 0;
	gb__agg_flush(a, discard, &n);
	ck_assert_uint_eq(n, 5000);
	gb__agg_free(a);
}
END_TEST

START_TEST(a_steady_interval_keeps_its_memory)
{
	gb_agg *a = gb__agg_new(0);
	size_t n = 0, before;
	char name[32];

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 3000; i++) {
			int len = snprintf(name, sizeof(name), "m.%d", i);
			ck_assert_int_eq(gb__agg_add(a, name, (size_t)len, "", 0, GB_AGG_COUNTER, 1), 0);
		}
		before = gb__agg_bytes(a);
		gb__agg_flush(a, discard, &n);
		ck_assert_uint_eq(gb__agg_bytes(a), before);
	}
	gb__agg_free(a);
}
END_TEST

START_TEST(cap_admits_known_values_and_refuses_new_ones)
{
	gb_taglim *l = gb__taglim_new(3);

	ck_assert(gb__taglim_admit(l, "k", 1, "a", 1));
	ck_assert(gb__taglim_admit(l, "k", 1, "b", 1));
	ck_assert(gb__taglim_admit(l, "k", 1, "c", 1));
	ck_assert(!gb__taglim_admit(l, "k", 1, "d", 1));
	ck_assert(gb__taglim_admit(l, "k", 1, "a", 1));
	ck_assert(gb__taglim_admit(l, "j", 1, "d", 1)); /* per key */
	ck_assert(!gb__taglim_admit(l, "k", 1, "e", 1));
	ck_assert_uint_eq(gb__taglim_capped(l), 2);
	gb__taglim_free(l);
}
END_TEST

START_TEST(cap_of_zero_admits_everything)
{
	gb_taglim *l = gb__taglim_new(0);
	char v[16];

	for (int i = 0; i < 10000; i++) {
		int n = snprintf(v, sizeof(v), "%d", i);
		ck_assert(gb__taglim_admit(l, "k", 1, v, (size_t)n));
	}
	ck_assert_uint_eq(gb__taglim_capped(l), 0);
	gb__taglim_free(l);
}
END_TEST

START_TEST(keys_past_the_limit_are_capped)
{
	gb_taglim *l = gb__taglim_new(10);
	char k[16];

	for (int i = 0; i < GB_TAGLIM_MAX_KEYS; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i);
		ck_assert(gb__taglim_admit(l, k, (size_t)n, "v", 1));
	}
	ck_assert(!gb__taglim_admit(l, "one_more", 8, "v", 1));
	ck_assert(gb__taglim_admit(l, "key0", 4, "w", 1));
	ck_assert_uint_eq(gb__taglim_capped(l), 1);
	gb__taglim_free(l);
}
END_TEST

static Suite *
aggregate_suite(void)
{
	Suite *s = suite_create("aggregate");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, sums_counters_keeps_last_gauge);
	tcase_add_test(tc, grows_to_many_contexts);
	tcase_add_test(tc, context_cap_drops_and_counts_new_contexts);
	tcase_add_test(tc, tables_shrink_after_a_burst);
	tcase_add_test(tc, a_steady_interval_keeps_its_memory);
	tcase_add_test(tc, cap_admits_known_values_and_refuses_new_ones);
	tcase_add_test(tc, cap_of_zero_admits_everything);
	tcase_add_test(tc, keys_past_the_limit_are_capped);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = aggregate_suite };
