/* test_progress.c - the live progress line of --jobs: its exact text in each state, a rate that
 * waits for enough samples, a sliding window, and a width that never passes 80 columns. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "clock.h"
#include "progress.h"

#define MS GB_NS_PER_MS
#define SEC GB_NS_PER_SEC

static const char *
render(const struct gb_progress *p, unsigned width)
{
	static char buf[256];
	size_t n = gb__progress_render(buf, sizeof(buf), p, width);

	ck_assert_uint_eq(n, strlen(buf));
	ck_assert_uint_le(n, width);
	return buf;
}

START_TEST(line_shows_counts_rate_and_eta)
{
	struct gb_progress p = { .done = 12, .todo = 300, .answers = 36, .errors = 0,
		.tokens = 48210, .rate = 2.5, .eta = 115 };

	ck_assert_str_eq(render(&p, 79),
	    "jobs 12/300  answers 36  errors 0  tokens 48210  2.5 req/s  ETA 0:01:55");
	p.rate = -1;
	p.eta = -1;
	ck_assert_str_eq(render(&p, 79),
	    "jobs 12/300  answers 36  errors 0  tokens 48210  -- req/s  ETA --:--");
}
END_TEST

START_TEST(waiting_and_paused_are_said)
{
	struct gb_progress p = { .done = 15, .todo = 300, .answers = 45, .errors = 1,
		.tokens = 60000, .rate = 0.25, .eta = 1140, .state = GB_PROGRESS_RATE_WAIT, .wait = 11.2 };

	ck_assert_str_eq(render(&p, 79),
	    "jobs 15/300  answers 45  errors 1  tokens 60000  waiting for rate limit 12s");
	p.state = GB_PROGRESS_429_PAUSE;
	p.wait = 25.3;
	ck_assert_str_eq(render(&p, 79),
	    "jobs 15/300  answers 45  errors 1  tokens 60000  paused by 429 for 26s");
}
END_TEST

START_TEST(durations)
{
	static const struct {
		double s;
		const char *text;
	} cases[] = { { -3, "0s" }, { 0, "0s" }, { 0.2, "1s" }, { 59, "59s" }, { 60, "1m00s" },
		{ 185, "3m05s" }, { 7800, "2h10m" }, { 359999, "99h59m" }, { 360000, ">99h" },
		{ 1e300, ">99h" }, { INFINITY, ">99h" }, { NAN, "0s" } };
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gb__progress_duration(buf, sizeof(buf), cases[i].s);
		ck_assert_str_eq(buf, cases[i].text);
	}
}
END_TEST

/* Two jobs answered in a fraction of a millisecond (the first frame of a run against a fast
 * server) gave 5 301 req/s: no rate until the samples span 5 s, or 1 s and 20 requests. */
START_TEST(no_rate_from_the_first_frames)
{
	struct gb_progress_rate r = { 0 };
	double rps = -1, jps = -1;
	uint64_t t0 = 1000 * SEC;

	gb__progress_rate_add(&r, t0, 0, 0);
	ck_assert_int_eq(gb__progress_rate_get(&r, &rps, &jps), -1);
	gb__progress_rate_add(&r, t0 + 377 * 1000, 2, 2);
	ck_assert_int_eq(gb__progress_rate_get(&r, &rps, &jps), -1);
	gb__progress_rate_add(&r, t0 + 900 * MS, 19, 19);
	ck_assert_int_eq(gb__progress_rate_get(&r, &rps, &jps), -1);
	gb__progress_rate_add(&r, t0 + 2 * SEC, 19, 19);
	ck_assert_int_eq(gb__progress_rate_get(&r, &rps, &jps), -1);
	gb__progress_rate_add(&r, t0 + 4 * SEC, 40, 20);
	ck_assert_int_eq(gb__progress_rate_get(&r, &rps, &jps), 0);
	ck_assert_double_eq(rps, 10);
	ck_assert_double_eq(jps, 5);

	/* A slow run: 3 requests in 5 s is a rate. */
	struct gb_progress_rate slow = { 0 };
	gb__progress_rate_add(&slow, t0, 0, 0);
	gb__progress_rate_add(&slow, t0 + 4 * SEC, 2, 2);
	ck_assert_int_eq(gb__progress_rate_get(&slow, &rps, &jps), -1);
	gb__progress_rate_add(&slow, t0 + 5 * SEC, 3, 3);
	ck_assert_int_eq(gb__progress_rate_get(&slow, &rps, &jps), 0);
	ck_assert_double_eq(rps, 0.6);
}
END_TEST

/* The rate covers the last 30 s: a fast start does not hide a run that has slowed down, and
 * the ring keeps its newest samples. */
START_TEST(rate_window_slides)
{
	struct gb_progress_rate r = { 0 };
	double rps, jps;
	uint64_t t0 = 5 * SEC;
	size_t req = 0;

	/* 60 s at 10 req/s, then 60 s at 1 req/s, a sample every 250 ms. */
	for (int i = 0; i <= 480; i++) {
		gb__progress_rate_add(&r, t0 + (uint64_t)i * 250 * MS, req, req);
		req += i < 240 ? (i % 2 ? 3u : 2u) : (i % 4 == 0 ? 1u : 0u);
	}
	ck_assert_int_eq(gb__progress_rate_get(&r, &rps, &jps), 0);
	ck_assert_msg(fabs(rps - 1) < 0.05, "rate %f over the last 30 s", rps);
	ck_assert_uint_eq(r.n, GB_PROGRESS_SAMPLES);
}
END_TEST

/* Whatever the values, the line stays within its width, and a wait or a pause stays visible in
 * 80 columns. */
START_TEST(width_holds_for_extreme_values)
{
	static const size_t counts[] = { 0, 9, 99999, 123456789, SIZE_MAX };
	static const double rates[] = { -1, 0, 0.04, 1e5, 1e300, INFINITY, NAN };
	static const unsigned widths[] = { 80, 79, 60, 40, 20, 5, 1, 0 };
	struct gb_progress p;

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
		for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++)
			for (int st = 0; st < 3; st++)
				for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
					p = (struct gb_progress){ .done = counts[c], .todo = counts[c],
						.answers = counts[c], .errors = counts[c],
						.tokens = counts[c] == SIZE_MAX ? INT64_MAX : (int64_t)counts[c],
						.rate = rates[k], .eta = rates[k] * 1e6, .state = st,
						.wait = rates[k] };
					const char *l = render(&p, widths[w]);
					if (widths[w] >= 79 && st == GB_PROGRESS_RATE_WAIT)
						ck_assert_msg(strstr(l, "waiting for rate limit ") != NULL, "%s", l);
					if (widths[w] >= 79 && st == GB_PROGRESS_429_PAUSE)
						ck_assert_msg(strstr(l, "paused by 429 for ") != NULL, "%s", l);
					if (widths[w] >= 79 && st == GB_PROGRESS_RUNNING)
						ck_assert_msg(strstr(l, " req/s  ETA ") != NULL, "%s", l);
				}
	p = (struct gb_progress){ .done = SIZE_MAX, .todo = SIZE_MAX, .answers = SIZE_MAX,
		.errors = SIZE_MAX, .tokens = INT64_MAX, .state = GB_PROGRESS_429_PAUSE, .wait = 1e9 };
	ck_assert_str_eq(render(&p, 79),
	    "jobs 18.4E/18.4E  paused by 429 for >99h  answers 18.4E  errors 18.4E");
	p = (struct gb_progress){ .done = 123456, .todo = 2000000, .answers = 370368,
		.errors = 12, .tokens = 98765432109LL, .rate = 12.25, .eta = 50000 };
	ck_assert_str_eq(render(&p, 79),
	    "jobs 123.5k/2.0M  12.2 req/s  ETA 13:53:20  answers 370.4k  errors 12");
	ck_assert_str_eq(render(&p, 60), "jobs 123.5k/2.0M  12.2 req/s  ETA 13:53:20  answers 370.4k");
	ck_assert_str_eq(render(&p, 10), "jobs");
	p.done = 12;
	p.todo = 300;
	ck_assert_str_eq(render(&p, 79),
	    "jobs 12/300  answers 370.4k  errors 12  tokens 98.8G  12.2 req/s  ETA 13:53:20");
}
END_TEST

/* The free tier's 15 requests a minute, said once when it makes the run long. */
START_TEST(rate_limit_is_said_when_it_makes_the_run_long)
{
	char buf[256];

	ck_assert_int_eq(gb__progress_rate_note(buf, sizeof(buf), 300, 15, 60 * SEC,
	    "gemini-2.5-flash"), 1);
	ck_assert_str_eq(buf, "the rate limit for gemini-2.5-flash is 15 requests per minute (--tier, "
	    "default free, or --rpm): 300 jobs take 19m00s at least");
	ck_assert_int_eq(gb__progress_rate_note(buf, sizeof(buf), 16, 15, 60 * SEC, NULL), 1);
	ck_assert_str_eq(buf, "the rate limit for the model is 15 requests per minute (--tier, "
	    "default free, or --rpm): 16 jobs take 1m00s at least");
	/* One window's worth, a faster tier, no jobs: nothing to say. */
	ck_assert_int_eq(gb__progress_rate_note(buf, sizeof(buf), 15, 15, 60 * SEC, NULL), 0);
	ck_assert_int_eq(gb__progress_rate_note(buf, sizeof(buf), 300, 1000, 60 * SEC, NULL), 0);
	ck_assert_int_eq(gb__progress_rate_note(buf, sizeof(buf), 0, 15, 60 * SEC, NULL), 0);
	/* A test's short window. */
	ck_assert_int_eq(gb__progress_rate_note(buf, sizeof(buf), 200, 2, 2 * SEC, "m"), 1);
	ck_assert_str_eq(buf, "the rate limit for m is 2 requests per 2s (--tier, default free, or "
	    "--rpm): 200 jobs take 3m18s at least");
}
END_TEST

static Suite *
progress_suite(void)
{
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, line_shows_counts_rate_and_eta);
	tcase_add_test(tc, waiting_and_paused_are_said);
	tcase_add_test(tc, durations);
	tcase_add_test(tc, no_rate_from_the_first_frames);
	tcase_add_test(tc, rate_window_slides);
	tcase_add_test(tc, width_holds_for_extreme_values);
	tcase_add_test(tc, rate_limit_is_said_when_it_makes_the_run_long);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = progress_suite };
