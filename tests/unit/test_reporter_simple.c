/* test_reporter_simple.c - the in-memory reporter: the report's exact text, the bounded
 * window per scope, and concurrent recording from several threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gbatch/telemetry.h>

#include "check_main.h"

static void
timing(gb_reporter *r, const char *scope, double v, int depth)
{
	gb_tele_meta m = { .depth = depth, .call_count = 1 };
	ck_assert_int_eq(r->record_timing(r->self, scope, v, &m), 0);
}

static void
metric(gb_reporter *r, const char *scope, double v, int depth)
{
	gb_tele_meta m = { .depth = depth, .call_count = 1, .metric_type = "counter" };
	ck_assert_int_eq(r->record_metric(r->self, scope, v, &m), 0);
}

START_TEST(report_text)
{
	gb_simple_reporter *s = gb_simple_reporter_new(0);
	gb_reporter r = gb_simple_reporter_as_reporter(s);

	timing(&r, "batch.total_processing.batch.attempt", 0.5, 1);
	timing(&r, "batch.total_processing.batch.attempt", 0.25, 1);
	timing(&r, "batch.total_processing-x", 1, 0);
	timing(&r, "batch.total_processing", 1.5, 0);
	timing(&r, "alpha", 2, 0);
	metric(&r, "batch.total_processing.total_tokens", 100, 1);
	metric(&r, "batch.total_processing.total_tokens", 250, 1);
	metric(&r, "batch_success", 1, 0);

	char *rep = gb_simple_reporter_report(s);
	ck_assert_str_eq(rep,
	    "=== Telemetry Report ===\n"
	    "Timings:\n"
	    "  alpha: calls=1, avg=2.0000s, total=2.0000s\n"
	    "  batch.total_processing: calls=1, avg=1.5000s, total=1.5000s\n"
	    "    batch.total_processing.batch.attempt: calls=2, avg=0.3750s, total=0.7500s\n"
	    "  batch.total_processing-x: calls=1, avg=1.0000s, total=1.0000s\n"
	    "Metrics:\n"
	    "    batch.total_processing.total_tokens: count=2, total=350\n"
	    "  batch_success: count=1, total=1\n");
	free(rep);
	gb_simple_reporter_free(s);
}
END_TEST

START_TEST(empty_report)
{
	gb_simple_reporter *s = gb_simple_reporter_new(5);
	char *rep = gb_simple_reporter_report(s);

	ck_assert_str_eq(rep, "=== Telemetry Report ===\nTimings:\nMetrics:\n");
	free(rep);
	gb_simple_reporter_free(s);
}
END_TEST

START_TEST(window_is_bounded)
{
	gb_simple_reporter *s = gb_simple_reporter_new(3);
	gb_reporter r = gb_simple_reporter_as_reporter(s);

	for (int i = 1; i <= 10; i++)
		metric(&r, "m", i, 0);
	char *rep = gb_simple_reporter_report(s);
	ck_assert_str_eq(rep, "=== Telemetry Report ===\nTimings:\nMetrics:\n  m: count=3, total=27\n");
	free(rep);
	gb_simple_reporter_free(s);
}
END_TEST

#define THREADS 4
#define PER_THREAD 5000
static gb_tele *shared;

static void *
worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		GB_SCOPE(shared, "work") {
			gb_tele_count(shared, "items", 1, NULL, 0);
		}
	}
	return NULL;
}

START_TEST(threads_through_a_context)
{
	gb_simple_reporter *s = gb_simple_reporter_new(THREADS * PER_THREAD);
	gb_reporter r = gb_simple_reporter_as_reporter(s);
	pthread_t th[THREADS];

	shared = gb_tele_new(&r, 1, GB_TELE_ENABLE);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	gb_tele_free(shared);

	char *rep = gb_simple_reporter_report(s);
	ck_assert_ptr_nonnull(strstr(rep, "\n  work: calls=20000, avg="));
	ck_assert_ptr_nonnull(strstr(rep, "\n    work.items: count=20000, total=20000\n"));
	free(rep);
	gb_simple_reporter_free(s);
}
END_TEST

/* The seed's report, byte for byte: the expected text is what the seed's own
 * gemini_batch/telemetry.py (gemini-batch-prediction at 498e846) printed from
 * _SimpleReporter().print_report() after the same record_timing and record_metric calls. */
START_TEST(seed_report_matches_the_seed)
{
	gb_simple_reporter *s = gb_simple_reporter_new(0);
	gb_reporter r = gb_simple_reporter_as_reporter(s);

	timing(&r, "client.generate_content", 0.25, 0);
	timing(&r, "client.generate_content", 0.5, 0);
	timing(&r, "client.api_call_with_retry", 0.125, 0);
	timing(&r, "batch.prompt_creation", 0.0001, 0);
	timing(&r, "job.processing", 1.5, 0);
	timing(&r, "tree.leaf_name_longer_than_thirty_characters", 2.0, 0);
	for (int i = 0; i < 3; i++)
		metric(&r, "batch.total_processing.batch_success", 1, 1);
	metric(&r, "total_tokens", 1234567, 0);
	metric(&r, "total_tokens", 89, 0);
	metric(&r, "token_efficiency", 0.5, 0);
	metric(&r, "token_efficiency", 2.0, 0);

	char *rep = gb_simple_reporter_report_format(s, GB_REPORT_SEED);
	ck_assert_str_eq(rep,
	    "=== Telemetry Report ===\n"
	    "\n"
	    "\n"
	    "--- Timings ---\n"
	    "batch:\n"
	    "  prompt_creation                | Calls: 1    | Avg: 0.0001s | Total: 0.0001s\n"
	    "client:\n"
	    "  api_call_with_retry            | Calls: 1    | Avg: 0.1250s | Total: 0.1250s\n"
	    "  generate_content               | Calls: 2    | Avg: 0.3750s | Total: 0.7500s\n"
	    "job:\n"
	    "  processing                     | Calls: 1    | Avg: 1.5000s | Total: 1.5000s\n"
	    "tree:\n"
	    "  leaf_name_longer_than_thirty_characters | Calls: 1    | Avg: 2.0000s | Total: 2.0000s\n"
	    "\n"
	    "--- Metrics ---\n"
	    "batch.total_processing.batch_success     | Count: 3    | Total: 3\n"
	    "token_efficiency                         | Count: 2    | Total: 2\n"
	    "total_tokens                             | Count: 2    | Total: 1,234,656\n");
	free(rep);
	gb_simple_reporter_free(s);
}
END_TEST

/* A scope with a timing of its own and scopes nested in it (every scope of a real run that
 * has inner ones): its row, then its inner scopes one level deeper. The seed's dict would keep
 * the last-recorded one only. Nothing recorded prints nothing, as print_report() does. */
START_TEST(seed_report_keeps_scopes_with_inner_ones)
{
	gb_simple_reporter *s = gb_simple_reporter_new(0);
	gb_reporter r = gb_simple_reporter_as_reporter(s);
	char *rep = gb_simple_reporter_report_format(s, GB_REPORT_SEED);

	ck_assert_str_eq(rep, "");
	free(rep);
	timing(&r, "batch.total_processing.batch.attempt", 0.5, 1);
	timing(&r, "batch.total_processing", 1.5, 0);
	metric(&r, "batch.total_processing.n", -1234.5, 1);
	rep = gb_simple_reporter_report_format(s, GB_REPORT_SEED);
	ck_assert_str_eq(rep,
	    "=== Telemetry Report ===\n"
	    "\n"
	    "\n"
	    "--- Timings ---\n"
	    "batch:\n"
	    "  total_processing               | Calls: 1    | Avg: 1.5000s | Total: 1.5000s\n"
	    "    batch:\n"
	    "      attempt                        | Calls: 1    | Avg: 0.5000s | Total: 0.5000s\n"
	    "\n"
	    "--- Metrics ---\n"
	    "batch.total_processing.n                 | Count: 1    | Total: -1,234\n");
	free(rep);
	gb_simple_reporter_free(s);
}
END_TEST

static Suite *
reporter_simple_suite(void)
{
	Suite *s = suite_create("reporter_simple");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, report_text);
	tcase_add_test(tc, seed_report_matches_the_seed);
	tcase_add_test(tc, seed_report_keeps_scopes_with_inner_ones);
	tcase_add_test(tc, empty_report);
	tcase_add_test(tc, window_is_bounded);
	tcase_add_test(tc, threads_through_a_context);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = reporter_simple_suite };
