/* test_sketch.c - the console summary's quantile sketch against exact nearest-rank percentiles:
 * the documented relative error over many orders of magnitude and at bin edges, the values
 * outside its range, and its fixed size. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check_main.h"
#include "sketch.h"

static const unsigned pcts[] = { 0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100 };

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The exact nearest-rank percentile of n sorted values, as the summary printed it before. */
static double
exact(const double *v, size_t n, unsigned pct)
{
	size_t rank = (n * pct + 99) / 100;

	return v[rank > 0 ? rank - 1 : 0];
}

/* Adds the n values to a sketch and checks every percentile in pcts against the exact one. */
static void
check_bound(double *v, size_t n)
{
	static gb_sketch s;

	gb__sketch_init(&s);
	for (size_t i = 0; i < n; i++)
		gb__sketch_add(&s, v[i]);
	qsort(v, n, sizeof(*v), cmp_double);
	ck_assert_uint_eq(s.n, n);
	ck_assert(s.min == v[0] && s.max == v[n - 1]);
	for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++) {
		double want = exact(v, n, pcts[k]), got = gb__sketch_percentile(&s, pcts[k]);

		ck_assert_msg(fabs(got - want) <= GB_SKETCH_REL_ERROR * want * (1 + 1e-12),
		    "p%u of %zu values: %.9g, exact %.9g (more than %.4f off)", pcts[k], n, got, want,
		    GB_SKETCH_REL_ERROR);
	}
}

static uint64_t rng = 88172645463325252ull;

static double
uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

START_TEST(within_the_documented_error_over_nine_decades)
{
	enum { N = 200000 };
	double *v = malloc(N * sizeof(*v));

	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < N; i++)
		v[i] = pow(10.0, -5 + 9 * uniform()); /* 10 us .. 10 000 s, log-uniform */
	check_bound(v, N);
	for (size_t i = 0; i < N; i++)
		v[i] = 0.1 + uniform(); /* API calls: 0.1 .. 1.1 s */
	check_bound(v, N);
	for (size_t i = 0; i < N; i++)
		v[i] = i % 100 == 0 ? 30 + uniform() : 0.2 * uniform() + 1e-3; /* a slow tail */
	check_bound(v, N);
	free(v);
}
END_TEST

START_TEST(within_the_error_at_bin_edges)
{
	double v[4 * 64];
	size_t n = 0;

	/* powers of two, and the values just below them, and each bin's lower edge */
	for (int e = -19; e <= 20 && n + 2 <= 64; e += 3) {
		v[n++] = ldexp(1.0, e);
		v[n++] = nextafter(ldexp(1.0, e), 0);
	}
	for (int k = 0; k < GB_SKETCH_SUB; k++)
		v[n++] = 0.5 + (double)k / (2 * GB_SKETCH_SUB);
	check_bound(v, n);
	for (size_t i = 0; i < 100; i++)
		v[i] = (double)(i + 1); /* 1 .. 100 s */
	check_bound(v, 100);
}
END_TEST

START_TEST(one_value_and_constants_are_exact)
{
	gb_sketch s;

	gb__sketch_init(&s);
	ck_assert(gb__sketch_percentile(&s, 50) == 0);
	gb__sketch_add(&s, 0.1234);
	for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++)
		ck_assert(gb__sketch_percentile(&s, pcts[k]) == 0.1234);
	for (int i = 0; i < 1000; i++)
		gb__sketch_add(&s, 0.1234);
	ck_assert(gb__sketch_percentile(&s, 99) == 0.1234);
	ck_assert_uint_eq(s.n, 1001);
}
END_TEST

START_TEST(values_outside_the_range)
{
	gb_sketch s;

	gb__sketch_init(&s);
	for (int i = 0; i < 10; i++)
		gb__sketch_add(&s, 0);
	ck_assert(gb__sketch_percentile(&s, 50) == 0);
	gb__sketch_add(&s, 1e-9); /* below: within 2^MIN_EXP */
	ck_assert(fabs(gb__sketch_percentile(&s, 100) - 1e-9) <= ldexp(1.0, GB_SKETCH_MIN_EXP));
	gb__sketch_add(&s, 1e9); /* above: the largest value */
	ck_assert(gb__sketch_percentile(&s, 100) == 1e9);
	gb__sketch_add(&s, -1); /* a producer's nonsense: counted, never a bin outside */
	gb__sketch_add(&s, NAN);
	gb__sketch_add(&s, INFINITY);
	ck_assert_uint_eq(s.n, 15);
	ck_assert(s.min == -1);
	ck_assert(isinf(gb__sketch_percentile(&s, 100)));
	ck_assert(gb__sketch_percentile(&s, 50) == 0);
}
END_TEST

START_TEST(fixed_size)
{
	/* what a summary scope costs, however many values it sees */
	ck_assert_uint_le(sizeof(gb_sketch), 2720);
	ck_assert_uint_eq(GB_SKETCH_BINS, 658);
}
END_TEST

static Suite *
sketch_suite(void)
{
	Suite *s = suite_create("sketch");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, within_the_documented_error_over_nine_decades);
	tcase_add_test(tc, within_the_error_at_bin_edges);
	tcase_add_test(tc, one_value_and_constants_are_exact);
	tcase_add_test(tc, values_outside_the_range);
	tcase_add_test(tc, fixed_size);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = sketch_suite };
