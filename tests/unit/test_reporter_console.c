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

/* The seed's format, byte for byte: the expected lines are what the seed's own
 * gemini_batch/telemetry.py (gemini-batch-prediction at 498e846) and the PrintReporter of its
 * examples/custom_telemetry_reporter.py printed for this scenario, run with a fake
 * time.perf_counter giving these durations:
 *     with ctx("batch.total_processing", question_count=2, content_type="text"):
 *         with ctx("batch.attempt"):
 *             with ctx("batch.processing", method="batch", schema_enabled=False):
 *                 ctx.count("api_success"); ctx.metric("token_efficiency", 0.375)
 *                 ctx.gauge("level", 2.5)
 *         with ctx("batch.result_building"): ctx.metric("total_tokens", 1234)
 *     with ctx("odd", depth=3, note="it's"): pass
 *     with ctx("quoted", note='say "hi"\n'): ctx.count("n", 5, parent_scope="mine")
 * Here the records are what gbatch's context gives for the same scopes. */
START_TEST(seed_format_lines_match_the_seed)
{
	gb_reporter r = gb_console_reporter_format(out, GB_REPORT_SEED);
	const char *p3 = "batch.total_processing.batch.attempt.batch.processing";
	const gb_kv proc[] = { { "method", "batch" }, { "schema_enabled", "False" } };
	const gb_kv total[] = { { "question_count", "2" }, { "content_type", "text" } };
	const gb_kv odd[] = { { "depth", "3" }, { "note", "it's" } };
	const gb_kv mine[] = { { "parent_scope", "mine" } };
	const gb_kv quoted[] = { { "note", "say \"hi\"\n" } };
	gb_tele_meta m;
	char want[4096];

	m = (gb_tele_meta){ .depth = 3, .parent_scope = p3, .call_count = 1, .metric_type = "counter" };
	r.record_metric(r.self, "batch.total_processing.batch.attempt.batch.processing.api_success", 1, &m);
	m.metric_type = NULL;
	r.record_metric(r.self, "batch.total_processing.batch.attempt.batch.processing.token_efficiency",
	    0.375, &m);
	m.metric_type = "gauge";
	r.record_metric(r.self, "batch.total_processing.batch.attempt.batch.processing.level", 2.5, &m);
	m = (gb_tele_meta){ .depth = 2, .parent_scope = "batch.total_processing.batch.attempt",
		.call_count = 1, .extra = proc, .n_extra = 2 };
	r.record_timing(r.self, p3, 0.5, &m);
	m = (gb_tele_meta){ .depth = 1, .parent_scope = "batch.total_processing", .call_count = 1 };
	r.record_timing(r.self, "batch.total_processing.batch.attempt", 2.25, &m);
	m = (gb_tele_meta){ .depth = 2, .parent_scope = "batch.total_processing.batch.result_building",
		.call_count = 1 };
	r.record_metric(r.self, "batch.total_processing.batch.result_building.total_tokens", 1234, &m);
	m = (gb_tele_meta){ .depth = 1, .parent_scope = "batch.total_processing", .call_count = 1 };
	r.record_timing(r.self, "batch.total_processing.batch.result_building", 0.125, &m);
	m = (gb_tele_meta){ .depth = 0, .call_count = 1, .extra = total, .n_extra = 2 };
	r.record_timing(r.self, "batch.total_processing", 10.0, &m);
	m = (gb_tele_meta){ .depth = 0, .call_count = 1, .extra = odd, .n_extra = 2 };
	r.record_timing(r.self, "odd", 0.0625, &m);
	m = (gb_tele_meta){ .depth = 1, .parent_scope = "quoted", .call_count = 1,
		.metric_type = "counter", .extra = mine, .n_extra = 1 };
	r.record_metric(r.self, "quoted.n", 5, &m);
	m = (gb_tele_meta){ .depth = 0, .call_count = 1, .extra = quoted, .n_extra = 1 };
	r.record_timing(r.self, "quoted", 0.5, &m);

	fflush(out);
	snprintf(want, sizeof(want), "%s",
	    "[METRIC] batch.total_processing.batch.attempt.batch.processing.api_success: 1 (metadata: {'depth': 3, 'parent_scope': 'batch.total_processing.batch.attempt.batch.processing', 'metric_type': 'counter'})\n"
	    "[METRIC] batch.total_processing.batch.attempt.batch.processing.token_efficiency: 0.375 (metadata: {'depth': 3, 'parent_scope': 'batch.total_processing.batch.attempt.batch.processing'})\n"
	    "[METRIC] batch.total_processing.batch.attempt.batch.processing.level: 2.5 (metadata: {'depth': 3, 'parent_scope': 'batch.total_processing.batch.attempt.batch.processing', 'metric_type': 'gauge'})\n"
	    "[TIMING]     batch.total_processing.batch.attempt.batch.processing: duration=0.5000s (metadata: {'depth': 2, 'call_count': 2, 'parent_scope': 'batch.total_processing.batch.attempt', 'method': 'batch', 'schema_enabled': False})\n"
	    "[TIMING]   batch.total_processing.batch.attempt: duration=2.2500s (metadata: {'depth': 1, 'call_count': 1, 'parent_scope': 'batch.total_processing'})\n"
	    "[METRIC] batch.total_processing.batch.result_building.total_tokens: 1234 (metadata: {'depth': 2, 'parent_scope': 'batch.total_processing.batch.result_building'})\n"
	    "[TIMING]   batch.total_processing.batch.result_building: duration=0.1250s (metadata: {'depth': 1, 'call_count': 1, 'parent_scope': 'batch.total_processing'})\n"
	    "[TIMING] batch.total_processing: duration=10.0000s (metadata: {'depth': 0, 'call_count': 0, 'parent_scope': None, 'question_count': 2, 'content_type': 'text'})\n"
	    "[TIMING]       odd: duration=0.0625s (metadata: {'depth': 3, 'call_count': 0, 'parent_scope': None, 'note': \"it's\"})\n"
	    "[METRIC] quoted.n: 5 (metadata: {'depth': 1, 'parent_scope': 'mine', 'metric_type': 'counter'})\n"
	    "[TIMING] quoted: duration=0.5000s (metadata: {'depth': 0, 'call_count': 0, 'parent_scope': None, 'note': 'say \"hi\"\\n'})\n");
	ck_assert_str_eq(text, want);
}
END_TEST

/* A caller's key named like a built-in one takes the built-in's place and value, once. */
START_TEST(caller_key_named_like_a_builtin_is_printed_once)
{
	gb_reporter r = gb_console_reporter(out);
	const gb_kv kv[] = { { "depth", "9" }, { "model", "m" }, { "call_count", "x" } };
	const gb_kv type[] = { { "metric_type", "mine" } };
	gb_tele_meta m = { .depth = 1, .parent_scope = "a", .call_count = 2, .extra = kv,
		.n_extra = 3 };

	r.record_timing(r.self, "a.b", 0.5, &m);
	m = (gb_tele_meta){ .depth = 0, .call_count = 1, .metric_type = "counter", .extra = type,
		.n_extra = 1 };
	r.record_metric(r.self, "n", 1, &m);
	ck_assert_str_eq(line(0), "[TIMING]   a.b: duration=0.5000s (depth=9, parent_scope=a, "
	                          "call_count=x, model=m)");
	ck_assert_str_eq(line(1), "[METRIC] n: 1 (metric_type=mine, depth=0, call_count=1)");
	ck_assert_str_eq(line(2), "");
}
END_TEST

/* Python's spelling of floats and strings in the seed's format. */
START_TEST(seed_format_spells_values_as_python_does)
{
	gb_reporter r = gb_console_reporter_format(out, GB_REPORT_SEED);
	const gb_kv kv[] = { { "s", "a\\b\x01\t" }, { "n", "-12" }, { "z", "007" },
		{ "none", "None" } };
	gb_tele_meta m = { .depth = 0, .call_count = 1, .extra = kv, .n_extra = 4 };
	static const struct {
		double v;
		const char *text;
	} values[] = { { 0.1, "0.1" }, { 1e16, "1e+16" }, { 1e17, "1e+17" },
		{ 0.0001, "0.0001" }, { 0.00001, "1e-05" }, { -2.5e-7, "-2.5e-07" },
		{ 123456.789, "123456.789" }, { 1.0 / 3, "0.3333333333333333" } };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char want[256];
		gb_tele_meta plain = { .depth = 0, .call_count = 1 };
		r.record_metric(r.self, "v", values[i].v, &plain);
		snprintf(want, sizeof(want), "[METRIC] v: %s (metadata: {'depth': 0, 'parent_scope': "
		    "None})", values[i].text);
		ck_assert_str_eq(line((int)i), want);
	}
	r.record_timing(r.self, "t", 1, &m);
	ck_assert_str_eq(line(8), "[TIMING] t: duration=1.0000s (metadata: {'depth': 0, "
	    "'call_count': 0, 'parent_scope': None, 's': 'a\\\\b\\x01\\t', 'n': -12, 'z': '007', "
	    "'none': None})");
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
	tcase_add_test(tc, seed_format_lines_match_the_seed);
	tcase_add_test(tc, caller_key_named_like_a_builtin_is_printed_once);
	tcase_add_test(tc, seed_format_spells_values_as_python_does);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = reporter_console_suite };
