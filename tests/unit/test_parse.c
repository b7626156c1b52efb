/* test_parse.c - durations, sizes and bounded integers: accepted forms and refusals. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "parse.h"

static const struct { const char *text; uint64_t ns; } good_durations[] = {
	{ "0", 0 },
	{ "250ms", 250000000ull },
	{ "2s", 2000000000ull },
	{ "1m", 60000000000ull },
	{ "1h", 3600000000000ull },
	{ "15us", 15000ull },
	{ "7ns", 7ull },
	{ "1.5s", 1500000000ull },
	{ "45.837906927s", 45837906927ull },
	{ "0.25ms", 250000ull },
	{ ".5s", 500000000ull },
};

static const char *const bad_durations[] = {
	"", "s", "2", "-1s", "+1s", " 1s", "1s ", "1x", "1.s", "1..5s", "abc",
	"99999999999999999999s", "18446744073709551615h", "1sec", "2S",
};

START_TEST(duration_accepts)
{
	char err[256];
	uint64_t ns = 12345;

	ck_assert_msg(gb__parse_duration(good_durations[_i].text, &ns, err, sizeof(err)) == 0,
	    "%s: %s", good_durations[_i].text, err);
	ck_assert_uint_eq(ns, good_durations[_i].ns);
}
END_TEST

START_TEST(duration_refuses)
{
	char err[256] = "";
	uint64_t ns = 12345;

	ck_assert_int_eq(gb__parse_duration(bad_durations[_i], &ns, err, sizeof(err)), -1);
	ck_assert_uint_eq(ns, 12345);
	ck_assert_msg(strstr(err, "duration") != NULL, "message: %s", err);
	if (bad_durations[_i][0] != '\0')
		ck_assert_msg(strstr(err, bad_durations[_i]) != NULL, "message %s does not name %s",
		    err, bad_durations[_i]);
}
END_TEST

START_TEST(uint_bounds)
{
	char err[256];
	uint64_t v = 0;

	ck_assert_int_eq(gb__parse_uint("8", 1, 64, &v, err, sizeof(err)), 0);
	ck_assert_uint_eq(v, 8);
	ck_assert_int_eq(gb__parse_uint("18446744073709551615", 0, UINT64_MAX, &v, err, sizeof(err)), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(gb__parse_uint("18446744073709551616", 0, UINT64_MAX, &v, err, sizeof(err)), -1);
	ck_assert_int_eq(gb__parse_uint("0", 1, 64, &v, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "\"0\""));
	ck_assert_int_eq(gb__parse_uint("65", 1, 64, &v, err, sizeof(err)), -1);
	ck_assert_int_eq(gb__parse_uint("-1", 0, 64, &v, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "\"-1\""));
	ck_assert_int_eq(gb__parse_uint("4x", 0, 64, &v, err, sizeof(err)), -1);
	ck_assert_int_eq(gb__parse_uint("", 0, 64, &v, err, sizeof(err)), -1);
	ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(err_buffer_small)
{
	char err[8];
	uint64_t v;

	ck_assert_int_eq(gb__parse_duration("a very long bad duration", &v, err, sizeof(err)), -1);
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
}
END_TEST

static Suite *
parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, duration_accepts, 0, sizeof(good_durations) / sizeof(good_durations[0]));
	tcase_add_loop_test(tc, duration_refuses, 0, sizeof(bad_durations) / sizeof(bad_durations[0]));
	tcase_add_test(tc, uint_bounds);
	tcase_add_test(tc, err_buffer_small);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = parse_suite };
