/* test_json_writer.c - the compact JSON writer against jansson itself: every string, integer,
 * real and value written here must be byte for byte what json_dumps(JSON_COMPACT) writes, and
 * what jansson refuses (strings that are not UTF-8, reals that are not finite) must fail. */
#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check_main.h"
#include "json_writer.h"

/* jansson's compact text of v (stolen), or NULL when v is NULL. */
static char *
jansson_text(json_t *v)
{
	char *s = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(v);
	return s;
}

static const struct {
	const char *s;
	size_t n;
} strings[] = {
#define S(lit) { lit, sizeof(lit) - 1 }
	S(""), S("plain words"), S("quote \" and backslash \\ and slash /"),
	S("\b\f\n\r\t"), S("\x01\x02\x1f control"), S("\x7f delete stays"), S("nul \0 inside"),
	S("caf\xc3\xa9"), S("\xe2\x82\xac euro"), S("\xf0\x9f\x98\x80 emoji"),
	S("\xef\xbf\xbf last of the BMP"), S("\xf4\x8f\xbf\xbf last code point"),
	S("\xc2\x9b a C1 control"),
	/* not UTF-8: jansson refuses each */
	S("\x80 lone continuation"), S("\xc0\x80 overlong NUL"), S("\xc1\xbf overlong"),
	S("\xe0\x80\x80 overlong 3"), S("\xf0\x80\x80\x80 overlong 4"), S("\xed\xa0\x80 surrogate"),
	S("\xed\xbf\xbf surrogate"), S("\xf4\x90\x80\x80 past U+10FFFF"), S("\xf5\x80\x80\x80"),
	S("\xff"), S("cut \xe2\x82"), S("cut at the end \xc3"),
#undef S
};

START_TEST(strings_are_escaped_as_jansson_escapes_them)
{
	gb_jw w;
	char *want = jansson_text(json_stringn(strings[_i].s, strings[_i].n)), *got;

	gb__jw_init(&w, 4);
	gb__jw_strn(&w, strings[_i].s, strings[_i].n);
	got = gb__jw_finish(&w, NULL);
	ck_assert_int_eq(gb__utf8_valid(strings[_i].s, strings[_i].n), want != NULL);
	if (want == NULL)
		ck_assert_ptr_null(got);
	else
		ck_assert_str_eq(got, want);
	free(want);
	free(got);
}
END_TEST

static const double reals[] = { 0.0, -0.0, 1.0, -2.5, 0.1, 1.0 / 3.0, 0.0050833010000000001,
	1e-5, 1.5e-7, 1e21, 1e22, 123456789012345678.0, 5e-324, DBL_MAX, -DBL_MIN, 100.0,
	1e100, 2.0e-308 };

START_TEST(reals_are_written_as_jansson_writes_them)
{
	gb_jw w;
	char *want = jansson_text(json_real(reals[_i])), *got;

	gb__jw_init(&w, 1);
	gb__jw_real(&w, reals[_i]);
	got = gb__jw_finish(&w, NULL);
	ck_assert_ptr_nonnull(want);
	ck_assert_str_eq(got, want);
	free(want);
	free(got);
}
END_TEST

START_TEST(what_jansson_refuses_fails_the_whole_text)
{
	const double bad[] = { NAN, INFINITY, -INFINITY };
	gb_jw w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_ptr_null(json_real(bad[i]));
		gb__jw_init(&w, 0);
		gb__jw_lit(&w, "[1,");
		gb__jw_real(&w, bad[i]);
		gb__jw_lit(&w, "]");
		ck_assert_ptr_null(gb__jw_finish(&w, NULL));
	}
	gb__jw_init(&w, 0);
	gb__jw_str(&w, NULL);
	gb__jw_lit(&w, "\"after\"");
	ck_assert_ptr_null(gb__jw_finish(&w, NULL));
	gb__jw_init(&w, 0);
	gb__jw_value(&w, NULL, 0);
	ck_assert_ptr_null(gb__jw_finish(&w, NULL));
}
END_TEST

START_TEST(integers_bools_nulls_and_values_match)
{
	const long long ints[] = { 0, 1, -1, 9, 10, 1234567890123LL, LLONG_MAX, LLONG_MIN };
	json_t *v = json_pack("{s:[i, f, s, n, b], s:{s:{}}, s:[]}", "a", 7, 0.25, "x\ny", 0, "c",
	    "d", "e");
	char *want, *got;
	size_t len;
	gb_jw w;

	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		want = jansson_text(json_integer(ints[i]));
		gb__jw_init(&w, 2);
		gb__jw_int(&w, ints[i]);
		got = gb__jw_finish(&w, &len);
		ck_assert_str_eq(got, want);
		ck_assert_uint_eq(len, strlen(want));
		free(want);
		free(got);
	}
	want = jansson_text(json_pack("[b, b, n, s?, s?]", 1, 0, NULL, "set"));
	gb__jw_init(&w, 0);
	gb__jw_lit(&w, "[");
	gb__jw_bool(&w, 1);
	gb__jw_lit(&w, ",");
	gb__jw_bool(&w, 0);
	gb__jw_lit(&w, ",");
	gb__jw_str_or_null(&w, NULL);
	gb__jw_lit(&w, ",");
	gb__jw_str_or_null(&w, NULL);
	gb__jw_lit(&w, ",");
	gb__jw_str_or_null(&w, "set");
	gb__jw_lit(&w, "]");
	got = gb__jw_finish(&w, NULL);
	ck_assert_str_eq(got, want);
	free(want);
	free(got);
	ck_assert_ptr_nonnull(v);
	want = json_dumps(v, JSON_COMPACT);
	ck_assert_str_eq(want, "{\"a\":[7,0.25,\"x\\ny\",null,false],\"c\":{\"d\":{}},\"e\":[]}");
	gb__jw_init(&w, 0);
	gb__jw_value(&w, v, 0);
	gb__jw_value(&w, json_object_get(v, "c"), 0);
	got = gb__jw_finish(&w, NULL);
	ck_assert_uint_eq(strncmp(got, want, strlen(want)), 0);
	ck_assert_str_eq(got + strlen(want), "{\"d\":{}}");
	free(want);
	free(got);
	json_decref(v);
}
END_TEST

START_TEST(a_long_text_grows_its_buffer)
{
	char *big = malloc(100000), *want, *got;
	gb_jw w;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < 99999; i++)
		big[i] = i % 7 == 0 ? '\n' : (char)('a' + i % 26);
	big[99999] = '\0';
	want = jansson_text(json_string(big));
	gb__jw_init(&w, 1);
	gb__jw_lit(&w, "");
	gb__jw_str(&w, big);
	got = gb__jw_finish(&w, NULL);
	ck_assert_str_eq(got, want);
	free(want);
	free(got);
	free(big);
}
END_TEST

static Suite *
json_writer_suite(void)
{
	Suite *s = suite_create("json_writer");
	TCase *tc = tcase_create("against jansson");

	tcase_add_loop_test(tc, strings_are_escaped_as_jansson_escapes_them, 0,
	    (int)(sizeof(strings) / sizeof(strings[0])));
	tcase_add_loop_test(tc, reals_are_written_as_jansson_writes_them, 0,
	    (int)(sizeof(reals) / sizeof(reals[0])));
	tcase_add_test(tc, what_jansson_refuses_fails_the_whole_text);
	tcase_add_test(tc, integers_bools_nulls_and_values_match);
	tcase_add_test(tc, a_long_text_grows_its_buffer);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = json_writer_suite };
