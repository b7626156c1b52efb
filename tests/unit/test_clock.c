/* test_clock.c - the three clocks agree with each other and move forward. */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "check_main.h"
#include "clock.h"

START_TEST(monotonic_moves_forward)
{
	uint64_t prev = gb__clock_mono_ns();

	for (int i = 0; i < 100000; i++) {
		uint64_t now = gb__clock_mono_ns();
		ck_assert_uint_ge(now, prev);
		prev = now;
	}
}
END_TEST

START_TEST(realtime_matches_time)
{
	uint64_t before = (uint64_t)time(NULL);
	uint64_t real = gb__clock_real_ns() / GB_NS_PER_SEC;
	uint64_t after = (uint64_t)time(NULL);

	ck_assert_uint_ge(real, before);
	ck_assert_uint_le(real, after);
}
END_TEST

START_TEST(coarse_close_to_precise)
{
	uint64_t precise = gb__clock_real_ns();
	uint64_t coarse = gb__clock_real_coarse_ns();
	uint64_t diff = precise > coarse ? precise - coarse : coarse - precise;

	/* The coarse clock lags by at most one tick (4 ms at HZ=250); allow 50 ms. */
	ck_assert_uint_lt(diff, 50 * GB_NS_PER_MS);
}
END_TEST

static Suite *
clock_suite(void)
{
	Suite *s = suite_create("clock");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, monotonic_moves_forward);
	tcase_add_test(tc, realtime_matches_time);
	tcase_add_test(tc, coarse_close_to_precise);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = clock_suite };
