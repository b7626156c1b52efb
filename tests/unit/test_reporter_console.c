/* test_reporter_console.c - the console reporter's line format, checked line by line, both
 * called directly with fixed values and fed by a real context. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gbatch/telemetry.h>

#include "check_main.h"

static char *text;
static size_t text_len;
static FILE *out;

static void
setup(void)
{
	out = open_memstream(&text, &text_len);
	ck_assert_ptr_nonnull(out);
}

static void
teardown(void)
{
	fclose(out);
	free(text);
}

/* Line i (from 0) of the output, in a static buffer; "" past the end. */
static const char *
line(int i)
{
	static char buf[1024];
	const char *p = text;

	fflush(out);
	for (; i > 0 && p != NULL; i--)
		p = (p = strchr(p, '\n')) != NULL ? p + 1 : NULL;
	if (p == NULL || *p == '\0')
		return "";
	size_t n = strcspn(p, "\n");
	ck_assert_uint_lt(n, sizeof(buf));
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

START_TEST(direct_lines)
{
	gb_reporter r = gb_console_reporter(out);
	const gb_kv kv[] = { { "batch_size", "5" }, { "model", "gemini-2.0-flash" } };
	gb_tele_meta top = { .depth = 0, .call_count = 1 };
	gb_tele_meta nested = { .depth = 2, .parent_scope = "a.b", .call_count = 3, .extra = kv,
		.n_extra = 2 };
	gb_tele_meta counter = { .depth = 1, .parent_scope = "a", .call_count = 2,
		.metric_type = "counter", .extra = kv, .n_extra = 1 };
	gb_tele_meta gauge = { .depth = 0, .call_count = 1, .metric_type = "gauge" };

	ck_assert_int_eq(r.record_timing(r.self, "a", 0.25, &top), 0);
	ck_assert_int_eq(r.record_timing(r.self, "a.b.c", 1.23456, &nested), 0);
	ck_assert_int_eq(r.record_metric(r.self, "a.total_tokens", 1234567, &counter), 0);
	ck_assert_int_eq(r.record_metric(r.self, "ratio", 0.5, &gauge), 0);
	ck_assert_int_eq(r.record_metric(r.self, "plain", -3.75, &top), 0);

	ck_assert_str_eq(line(0), "[TIMING] a: duration=0.2500s (depth=0, call_count=1)");
	ck_assert_str_eq(line(1), "[TIMING]     a.b.c: duration=1.2346s (depth=2, parent_scope=a.b, "
	                          "call_count=3, batch_size=5, model=gemini-2.0-flash)");
	ck_assert_str_eq(line(2), "[METRIC] a.total_tokens: 1234567 (metric_type=counter, depth=1, "
	                          "parent_scope=a, call_count=2, batch_size=5)");
	ck_assert_str_eq(line(3), "[METRIC] ratio: 0.5 (metric_type=gauge, depth=0, call_count=1)");
	ck_assert_str_eq(line(4), "[METRIC] plain: -3.75 (depth=0, call_count=1)");
	ck_assert_str_eq(line(5), "");
}
END_TEST

/* Checks that l is "[TIMING] <prefix>d.dddds<suffix>" with four decimals. */
static void
assert_timing_line(const char *l, const char *prefix, const char *suffix)
{
	size_t pl = strlen(prefix);
	const char *p;

	ck_assert_msg(strncmp(l, prefix, pl) == 0, "line \"%s\" does not start with \"%s\"", l, prefix);
	p = l + pl;
	ck_assert_msg(p[0] >= '0' && p[0] <= '9' && p[1] == '.', "bad duration in \"%s\"", l);
	p += 2;
	for (int i = 0; i < 4; i++, p++)
		ck_assert_msg(*p >= '0' && *p <= '9', "bad duration in \"%s\"", l);
	ck_assert_str_eq(p, suffix);
}

START_TEST(through_a_context)
{
	gb_reporter r = gb_console_reporter(out);
	gb_tele *t = gb_tele_new(&r, 1, GB_TELE_ENABLE);
	const gb_kv kv[] = { { "question_index", "2" } };

	for (int i = 0; i < 2; i++) {
		GB_SCOPE(t, "batch.total_processing") {
			gb_scope s = gb_tele_begin(t, "batch.attempt", kv, 1);
			gb_tele_count(t, "batch_success", 1, NULL, 0);
			gb_tele_end(t, &s);
		}
	}
	gb_tele_free(t);

	for (int i = 0; i < 2; i++) {
		char cc[64];
		snprintf(cc, sizeof(cc), "call_count=%d)", i + 1);
		char want[256];
		snprintf(want, sizeof(want), "[METRIC] batch.total_processing.batch.attempt.batch_success: "
		    "1 (metric_type=counter, depth=2, parent_scope=batch.total_processing.batch.attempt, %s",
		    cc);
		ck_assert_str_eq(line(3 * i), want);
		snprintf(want, sizeof(want), "s (depth=1, parent_scope=batch.total_processing, "
		    "call_count=%d, question_index=2)", i + 1);
		assert_timing_line(line(3 * i + 1),
		    "[TIMING]   batch.total_processing.batch.attempt: duration=", want);
		snprintf(want, sizeof(want), "s (depth=0, call_count=%d)", i + 1);
		assert_timing_line(line(3 * i + 2), "[TIMING] batch.total_processing: duration=", want);
	}
	ck_assert_str_eq(line(6), "");
}
END_TEST

START_TEST(write_error_is_reported)
{
	FILE *ro = fopen("/dev/null", "r");
	gb_reporter r = gb_console_reporter(ro);
	gb_tele_meta m = { .depth = 0, .call_count = 1 };

	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(r.record_timing(r.self, "x", 1, &m), -1);
	ck_assert_int_eq(r.record_metric(r.self, "x", 1, &m), -1);
	fclose(ro);
}
END_TEST

static Suite *
reporter_console_suite(void)
{
	Suite *s = suite_create("reporter_console");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, direct_lines);
	tcase_add_test(tc, through_a_context);
	tcase_add_test(tc, write_error_is_reported);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = reporter_console_suite };
