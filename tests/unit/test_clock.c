/* test_clock.c - the clocks agree with each other and move forward; the tick clock measures
 * what CLOCK_MONOTONIC measures. */
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
	/* glibc's time() reads the coarse clock, a tick behind: near a second's edge the
	 * precise clock is already in the next second */
	ck_assert_uint_le(real, after + 1);
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

/* An interval timed by the tick clock lies within the same interval timed by CLOCK_MONOTONIC
 * around it: at least the span between the inner reads, at most the span between the outer
 * ones (with 0.5% for the calibration). The first read of the process is in the first round. */
START_TEST(ticks_measure_what_monotonic_measures)
{
	for (int round = 0; round < 3; round++) {
		struct timespec nap = { 0, (long)(5 + 10 * round) * 1000000L };
		uint64_t m0 = gb__clock_mono_ns(), t0 = gb__clock_tick(), m1 = gb__clock_mono_ns();

		nanosleep(&nap, NULL);
		uint64_t m2 = gb__clock_mono_ns(), t1 = gb__clock_tick(), m3 = gb__clock_mono_ns();
		uint64_t ns = gb__clock_ticks_ns(t0, t1), inner = m2 - m1, outer = m3 - m0;

		ck_assert_uint_ge(inner, (uint64_t)nap.tv_nsec);
		ck_assert_uint_ge(ns, inner - inner / 200);
		ck_assert_uint_le(ns, outer + outer / 200);
	}
}
END_TEST

/* A difference taken the wrong way round (a thread moved to a CPU whose counter lags) is 0,
 * not a wrapped 584 years. */
START_TEST(ticks_backwards_are_no_time)
{
	uint64_t now = gb__clock_tick();

	ck_assert_uint_eq(gb__clock_ticks_ns(now, now), 0);
	ck_assert_uint_eq(gb__clock_ticks_ns(now + 1000, now), 0);
	ck_assert_uint_lt(gb__clock_ticks_ns(now, now + 1000), GB_NS_PER_MS);
}
END_TEST

START_TEST(gbatch_clock_monotonic_keeps_to_the_kernels_clock)
{
	uint64_t a, b;

	/* each test runs in a process of its own: the tick clock is not chosen yet */
	ck_assert_int_eq(gb__clock_tick_kind, GB__TICK_UNKNOWN);
	setenv("GBATCH_CLOCK", "monotonic", 1);
	a = gb__clock_tick();
	ck_assert_int_eq(gb__clock_tick_kind, GB__TICK_MONO);
	b = gb__clock_mono_ns();
	ck_assert_uint_le(a, b);
	ck_assert_uint_lt(b - a, 1000000000ull);
}
END_TEST

START_TEST(ticks_sleep_and_measure_a_sleep)
{
	uint64_t t0 = gb__clock_tick(), m0 = gb__clock_mono_ns(), m1, t1;

	gb__clock_sleep_ns(20 * GB_NS_PER_MS);
	t1 = gb__clock_tick();
	m1 = gb__clock_mono_ns();
	ck_assert_uint_ge(m1 - m0, 20 * GB_NS_PER_MS);
	/* the ticks' span lies within the span CLOCK_MONOTONIC measured around it, give or take
	 * the calibration's percent */
	ck_assert_uint_ge(gb__clock_ticks_ns(t0, t1), 19 * GB_NS_PER_MS);
	ck_assert_uint_le(gb__clock_ticks_ns(t0, t1), (m1 - m0) + (m1 - m0) / 50);
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
	tcase_add_test(tc, ticks_measure_what_monotonic_measures);
	tcase_add_test(tc, ticks_backwards_are_no_time);
	tcase_add_test(tc, gbatch_clock_monotonic_keeps_to_the_kernels_clock);
	tcase_add_test(tc, ticks_sleep_and_measure_a_sleep);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = clock_suite };
