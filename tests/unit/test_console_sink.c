/* test_console_sink.c - console output checked line by line: the seed's PrintReporter lines
 * (indentation by depth, metadata, escaping of hostile bytes) and the summary tree (calls,
 * avg, p50, p95, max, total; metrics count and total). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_sink.h"

static char *buf;
static size_t len;
static FILE *out;

static void
setup(void)
{
	out = open_memstream(&buf, &len);
}

static void
teardown(void)
{
	fclose(out);
	free(buf);
}

static gb_record
rec(enum gb_rec_kind kind, const char *scope, size_t parent_len, unsigned depth, double v)
{
	gb_record r = {
		.kind = (uint8_t)kind,
		.value = v,
		.scope = scope,
		.scope_len = strlen(scope),
		.parent_len = parent_len,
		.depth = (uint16_t)depth,
	};
	return r;
}

START_TEST(mode_names)
{
	enum gb_console_mode m;

	ck_assert_int_eq(gb__console_parse_mode("lines", &m), 0);
	ck_assert_int_eq(m, GB_CONSOLE_LINES);
	ck_assert_int_eq(gb__console_parse_mode("summary", &m), 0);
	ck_assert_int_eq(m, GB_CONSOLE_SUMMARY);
	ck_assert_int_eq(gb__console_parse_mode("off", &m), 0);
	ck_assert_int_eq(m, GB_CONSOLE_OFF);
	ck_assert_int_eq(gb__console_parse_mode("Lines", &m), -1);
	ck_assert_int_eq(gb__console_parse_mode("", &m), -1);
}
END_TEST

START_TEST(lines_in_the_seed_format)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_LINES, out, 0);
	const gb_rec_kv meta[] = { { "question_count", 14, "5", 1 }, { "model", 5, "flash", 5 } };
	gb_record r = rec(GB_REC_TIMING, "batch.total_processing", 0, 0, 1.23456);

	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "batch.total_processing.batch.attempt", 22, 1, 0.1234);
	r.call_count = 3;
	r.meta = meta;
	r.n_meta = 2;
	gb__console_record(c, &r);
	r = rec(GB_REC_COUNTER, "api.calls", 0, 0, 42);
	gb__console_record(c, &r);
	r = rec(GB_REC_GAUGE, "inflight", 0, 0, 2.5);
	gb__console_record(c, &r);
	r = rec(GB_REC_METRIC, "batch.x.tokens", 7, 1, 0.25);
	gb__console_record(c, &r);
	gb__console_flush(c);
	ck_assert_str_eq(buf,
	    "[TIMING] batch.total_processing: duration=1.2346s (depth=0, call_count=0)\n"
	    "[TIMING]   batch.total_processing.batch.attempt: duration=0.1234s (depth=1, "
	    "parent_scope=batch.total_processing, call_count=3, question_count=5, model=flash)\n"
	    "[METRIC] api.calls: 42 (metric_type=counter, depth=0, call_count=0)\n"
	    "[METRIC] inflight: 2.5 (metric_type=gauge, depth=0, call_count=0)\n"
	    "[METRIC] batch.x.tokens: 0.25 (depth=1, parent_scope=batch.x, call_count=0)\n");
	gb__console_free(c);
}
END_TEST

START_TEST(lines_escape_terminal_bytes)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_LINES, out, 0);
	const gb_rec_kv meta[] = { { "k\n", 2, "\x1b]0;title\x07", 10 } };
	gb_record r = rec(GB_REC_METRIC, "a\nb\x1b[31m\\", 0, 0, 1);

	r.meta = meta;
	r.n_meta = 1;
	gb__console_record(c, &r);
	gb__console_flush(c);
	ck_assert_str_eq(buf,
	    "[METRIC] a\\x0ab\\x1b[31m\\x5c: 1 (depth=0, call_count=0, k\\x0a=\\x1b]0;title\\x07)\n");
	gb__console_free(c);
}
END_TEST

START_TEST(summary_tree_with_percentiles)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_SUMMARY, out, 0);
	gb_record r;

	for (int i = 1; i <= 20; i++) {
		r = rec(GB_REC_TIMING, "batch.attempt", 5, 1, i / 100.0);
		gb__console_record(c, &r);
	}
	r = rec(GB_REC_TIMING, "batch", 0, 0, 2);
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "batch", 0, 0, 4);
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "alpha.orphan", 5, 1, 0.5); /* its parent never reported */
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "batch.attempt.parse", 13, 2, 0.001);
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "batch.aaa", 5, 1, 0.002);
	gb__console_record(c, &r);
	r = rec(GB_REC_COUNTER, "tokens", 0, 0, 100);
	gb__console_record(c, &r);
	r = rec(GB_REC_COUNTER, "tokens", 0, 0, 23);
	gb__console_record(c, &r);
	r = rec(GB_REC_METRIC, "batch", 0, 0, 7); /* a metric named like a timing scope */
	gb__console_record(c, &r);
	gb__console_summary(c);
	ck_assert_str_eq(buf,
	    "=== gbatch telemetry summary ===\n"
	    "timings (5 scopes):\n"
	    "  alpha.orphan: calls=1 avg=0.5000s p50=0.5000s p95=0.5000s max=0.5000s total=0.5000s\n"
	    "  batch: calls=2 avg=3.0000s p50=2.0000s p95=4.0000s max=4.0000s total=6.0000s\n"
	    "    batch.aaa: calls=1 avg=0.0020s p50=0.0020s p95=0.0020s max=0.0020s total=0.0020s\n"
	    "    batch.attempt: calls=20 avg=0.1050s p50=0.1000s p95=0.1900s max=0.2000s "
	    "total=2.1000s\n"
	    "      batch.attempt.parse: calls=1 avg=0.0010s p50=0.0010s p95=0.0010s max=0.0010s "
	    "total=0.0010s\n"
	    "metrics (2):\n"
	    "  batch: count=1 total=7\n"
	    "  tokens: count=2 total=123\n");
	/* a second report shows the same figures */
	fflush(out);
	size_t first = len;
	gb__console_summary(c);
	ck_assert_uint_eq(len, 2 * first);
	ck_assert(memcmp(buf, buf + first, first) == 0);
	gb__console_free(c);
}
END_TEST

START_TEST(summary_percentiles_use_the_last_values)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_SUMMARY, out, 10);
	gb_record r;

	for (int i = 1; i <= 100; i++) {
		r = rec(GB_REC_TIMING, "t", 0, 0, i);
		gb__console_record(c, &r);
	}
	gb__console_summary(c);
	ck_assert_ptr_nonnull(strstr(buf, "  t: calls=100 avg=50.5000s p50=95.0000s p95=100.0000s "
	    "max=100.0000s total=5050.0000s\n"));
	gb__console_free(c);
}
END_TEST

START_TEST(self_parent_is_not_a_loop)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_SUMMARY, out, 0);
	gb_record r = rec(GB_REC_TIMING, "x", 1, 0, 1);

	gb__console_record(c, &r);
	gb__console_summary(c);
	ck_assert_ptr_nonnull(strstr(buf, "  x: calls=1"));
	gb__console_free(c);
}
END_TEST

START_TEST(off_prints_nothing)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_OFF, out, 0);
	gb_record r = rec(GB_REC_TIMING, "x", 0, 0, 1);

	gb__console_record(c, &r);
	gb__console_summary(c);
	ck_assert_uint_eq(len, 0);
	gb__console_free(c);
}
END_TEST

static Suite *
console_suite(void)
{
	Suite *s = suite_create("console_sink");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, mode_names);
	tcase_add_test(tc, lines_in_the_seed_format);
	tcase_add_test(tc, lines_escape_terminal_bytes);
	tcase_add_test(tc, summary_tree_with_percentiles);
	tcase_add_test(tc, summary_percentiles_use_the_last_values);
	tcase_add_test(tc, self_parent_is_not_a_loop);
	tcase_add_test(tc, off_prints_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(console_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
