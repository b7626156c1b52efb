/* test_prom_sink.c - the Prometheus sink and its exposition: label names and values made
 * valid and escaped, numbers that read back, the bucket list, records folded into series
 * (cumulative buckets ending in +Inf, counters that only grow, gauges at their last value),
 * the GenAI names, reserved labels renamed, the caps shared with DogStatsD, type clashes,
 * expiry and the collector's own families. Asserted on the exact rendered text. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "prom_sink.h"

static char *
render(gb_prom_sink *s)
{
	gb_prom_snap *snap = gb__prom_snap_new();
	size_t len;
	char *text, *out;

	ck_assert_ptr_nonnull(snap);
	ck_assert_int_eq(gb__prom_fill(s, snap), 0);
	text = gb__prom_render(snap, &len);
	ck_assert_ptr_nonnull(text);
	out = malloc(len + 1);
	memcpy(out, text, len);
	out[len] = '\0';
	free(text);
	gb__prom_snap_free(snap);
	return out;
}

static void
rec(gb_prom_sink *s, enum gb_rec_kind kind, const char *scope, size_t parent_len, double v,
    const gb_rec_kv *meta, size_t n_meta, uint64_t now)
{
	gb_record r = { .kind = (uint8_t)kind, .value = v, .scope = scope,
		.scope_len = strlen(scope), .parent_len = parent_len, .meta = meta, .n_meta = n_meta,
		.depth = parent_len > 0 };

	gb__prom_record(s, &r, now);
}

static gb_rec_kv
kv(const char *k, const char *v)
{
	return (gb_rec_kv){ k, strlen(k), v, strlen(v) };
}

static gb_prom_sink *
sink(gb_prom_config *cfg)
{
	char err[256];
	gb_prom_sink *s = gb__prom_new(cfg, err, sizeof(err));

	ck_assert_msg(s != NULL, "%s", err);
	return s;
}

static void
assert_has(const char *text, const char *part)
{
	ck_assert_msg(strstr(text, part) != NULL, "missing:\n%s\nin:\n%s", part, text);
}

START_TEST(label_names_follow_prometheus_rules)
{
	char out[GB_PROM_LABEL_MAX + 1];
	size_t n;

	n = gb__prom_label_name(out, "gen_ai.token.type", 17);
	ck_assert_str_eq((out[n] = '\0', out), "gen_ai_token_type");
	n = gb__prom_label_name(out, "9lives", 6);
	ck_assert_str_eq((out[n] = '\0', out), "_9lives");
	n = gb__prom_label_name(out, "a-/-b\xc3\xa9", 7);
	ck_assert_str_eq((out[n] = '\0', out), "a_b_");
	ck_assert_uint_eq(gb__prom_label_name(out, "", 0), 0);
	ck_assert(gb__prom_label_reserved("le", 2));
	ck_assert(gb__prom_label_reserved("__name__", 8));
	ck_assert(gb__prom_label_reserved("job", 3));
	ck_assert(!gb__prom_label_reserved("model", 5));
	ck_assert(!gb__prom_label_reserved("_x", 2));
}
END_TEST

START_TEST(label_values_are_escaped_and_made_valid_utf8)
{
	char out[2 * GB_PROM_LABEL_MAX + 1], big[300];
	size_t n;

	n = gb__prom_label_value(out, "a\\b\"c\nd", 7);
	ck_assert_str_eq((out[n] = '\0', out), "a\\\\b\\\"c\\nd");
	n = gb__prom_label_value(out, "\xff\t\xc2\x9b\xc3\xa9z\xe2\x82", 9);
	/* \xff, the tab, the C1 control, then é, z and a sequence cut short (two bytes) */
	ck_assert_str_eq((out[n] = '\0', out), "___\xc3\xa9z__");
	memset(big, 'v', sizeof(big));
	ck_assert_uint_eq(gb__prom_label_value(out, big, sizeof(big)), GB_PROM_LABEL_MAX);
}
END_TEST

START_TEST(numbers_read_back_exactly)
{
	char out[32];
	size_t n;

	n = gb__prom_number(out, 0.005);
	ck_assert_str_eq((out[n] = '\0', out), "0.005");
	n = gb__prom_number(out, 3);
	ck_assert_str_eq((out[n] = '\0', out), "3");
	n = gb__prom_number(out, 0.1 + 0.2);
	ck_assert_str_eq((out[n] = '\0', out), "0.30000000000000004");
	n = gb__prom_number(out, INFINITY);
	ck_assert_str_eq((out[n] = '\0', out), "+Inf");
	n = gb__prom_number(out, -2.5e300);
	ck_assert_double_eq(strtod((out[n] = '\0', out), NULL), -2.5e300);
}
END_TEST

START_TEST(bucket_lists_are_strictly_increasing_durations)
{
	double b[GB_PROM_MAX_BUCKETS];
	char err[256];

	ck_assert_int_eq(gb__prom_parse_buckets("5ms,0.5,2s,1m", b, err, sizeof(err)), 4);
	ck_assert_double_eq(b[0], 0.005);
	ck_assert_double_eq(b[1], 0.5);
	ck_assert_double_eq(b[3], 60);
	ck_assert_int_eq(gb__prom_parse_buckets("3,1", b, err, sizeof(err)), -1);
	assert_has(err, "\"3,1\": bucket \"1\" is not above the one before it");
	ck_assert_int_eq(gb__prom_parse_buckets("1s,1s", b, err, sizeof(err)), -1);
	ck_assert_int_eq(gb__prom_parse_buckets("1s,,2s", b, err, sizeof(err)), -1);
	ck_assert_int_eq(gb__prom_parse_buckets("0", b, err, sizeof(err)), -1);
	ck_assert_int_eq(gb__prom_parse_buckets("x", b, err, sizeof(err)), -1);
	assert_has(err, "\"x\"");
}
END_TEST

START_TEST(timings_are_histograms_with_cumulative_buckets)
{
	static const double bounds[] = { 0.1, 1 };
	gb_prom_config cfg = { .buckets = bounds, .n_buckets = 2 };
	gb_prom_sink *s = sink(&cfg);
	gb_rec_kv m = kv("model", "flash");
	char *t;

	rec(s, GB_REC_TIMING, "batch.total.batch.api_call", 11, 0.05, &m, 1, 1);
	rec(s, GB_REC_TIMING, "batch.total.batch.api_call", 11, 0.1, &m, 1, 1);
	rec(s, GB_REC_TIMING, "batch.total.batch.api_call", 11, 0.5, &m, 1, 1);
	rec(s, GB_REC_TIMING, "batch.total.batch.api_call", 11, 2, &m, 1, 1);
	t = render(s);
	assert_has(t,
	    "# HELP gbatch_batch_api_call_seconds gbatch.batch.api_call (timing, seconds)\n"
	    "# TYPE gbatch_batch_api_call_seconds histogram\n"
	    "gbatch_batch_api_call_seconds_bucket{depth=\"1\",model=\"flash\","
	    "parent_scope=\"batch.total\",le=\"0.1\"} 2\n"
	    "gbatch_batch_api_call_seconds_bucket{depth=\"1\",model=\"flash\","
	    "parent_scope=\"batch.total\",le=\"1\"} 3\n"
	    "gbatch_batch_api_call_seconds_bucket{depth=\"1\",model=\"flash\","
	    "parent_scope=\"batch.total\",le=\"+Inf\"} 4\n"
	    "gbatch_batch_api_call_seconds_sum{depth=\"1\",model=\"flash\","
	    "parent_scope=\"batch.total\"} 2.65\n"
	    "gbatch_batch_api_call_seconds_count{depth=\"1\",model=\"flash\","
	    "parent_scope=\"batch.total\"} 4\n");
	free(t);
	gb__prom_free(s);
}
END_TEST

START_TEST(counters_only_grow_and_gauges_keep_the_last_value)
{
	gb_prom_config cfg = { 0 };
	gb_prom_sink *s = sink(&cfg);
	char *t;

	rec(s, GB_REC_COUNTER, "jobs_completed", 0, 2, NULL, 0, 1);
	rec(s, GB_REC_GAUGE, "in_flight", 0, 7, NULL, 0, 1);
	free(render(s)); /* a scrape changes nothing */
	rec(s, GB_REC_COUNTER, "jobs_completed", 0, 3, NULL, 0, 2);
	rec(s, GB_REC_COUNTER, "jobs_completed", 0, -1, NULL, 0, 2);      /* not monotonic */
	rec(s, GB_REC_COUNTER, "jobs_completed", 0, NAN, NULL, 0, 2);
	rec(s, GB_REC_GAUGE, "in_flight", 0, -4, NULL, 0, 2);
	t = render(s);
	assert_has(t, "# TYPE gbatch_jobs_completed_total counter\n"
	    "gbatch_jobs_completed_total{depth=\"0\"} 5\n");
	assert_has(t, "# TYPE gbatch_in_flight gauge\ngbatch_in_flight{depth=\"0\"} -4\n");
	free(t);
	{
		gb_prom_stats st;

		gb__prom_get_stats(s, &st);
		ck_assert_uint_eq(st.values_rejected, 2);
		ck_assert_uint_eq(st.series, 2);
	}
	gb__prom_free(s);
}
END_TEST

/* The series cache keys on the whole identity: records of one scope that differ only in depth,
 * parent, kind or a tag value go to series of their own, and the same record again to its. */
START_TEST(records_that_differ_in_identity_only_keep_their_own_series)
{
	gb_prom_config cfg = { 0 };
	gb_prom_sink *s = sink(&cfg);
	gb_rec_kv a = kv("model", "a"), b = kv("model", "b");
	gb_prom_stats st;
	char *t;

	for (int i = 0; i < 3; i++) {
		rec(s, GB_REC_COUNTER, "x.y", 0, 1, NULL, 0, 1);
		rec(s, GB_REC_COUNTER, "x.y", 1, 10, NULL, 0, 1);
		rec(s, GB_REC_COUNTER, "x.y", 0, 100, &a, 1, 1);
		rec(s, GB_REC_COUNTER, "x.y", 0, 1000, &b, 1, 1);
	}
	t = render(s);
	assert_has(t, "gbatch_x_y_total{depth=\"0\"} 3\n");
	assert_has(t, "gbatch_y_total{depth=\"1\",parent_scope=\"x\"} 30\n");
	assert_has(t, "gbatch_x_y_total{depth=\"0\",model=\"a\"} 300\n");
	assert_has(t, "gbatch_x_y_total{depth=\"0\",model=\"b\"} 3000\n");
	free(t);
	gb__prom_get_stats(s, &st);
	ck_assert_uint_eq(st.series, 4);
	gb__prom_free(s);
}
END_TEST

START_TEST(genai_metrics_take_their_opentelemetry_prometheus_names)
{
	gb_prom_config cfg = { 0 };
	gb_prom_sink *s = sink(&cfg);
	gb_rec_kv m[2] = { kv("gen_ai.token.type", "input"), kv("gen_ai.request.model", "g-2") };
	char *t;

	rec(s, GB_REC_TIMING, "gen_ai.client.operation.duration", 0, 0.3, m + 1, 1, 1);
	rec(s, GB_REC_HISTOGRAM, "gen_ai.client.token.usage", 0, 100, m, 2, 1);
	t = render(s);
	assert_has(t, "# TYPE gen_ai_client_operation_duration_seconds histogram\n");
	assert_has(t, "# TYPE gen_ai_client_token_usage histogram\n");
	/* the convention's token buckets: 100 is in le=256, not in le=64 */
	assert_has(t, "gen_ai_client_token_usage_bucket{depth=\"0\",gen_ai_request_model=\"g-2\","
	    "gen_ai_token_type=\"input\",le=\"64\"} 0\n");
	assert_has(t, "gen_ai_client_token_usage_bucket{depth=\"0\",gen_ai_request_model=\"g-2\","
	    "gen_ai_token_type=\"input\",le=\"256\"} 1\n");
	assert_has(t, "le=\"67108864\"} 1\n");
	ck_assert_ptr_null(strstr(t, "gbatch_gen_ai"));
	free(t);
	gb__prom_free(s);
}
END_TEST

START_TEST(reserved_and_repeated_labels_are_renamed_or_dropped)
{
	static const char *const tags[] = { "env:prod", "dd.internal.entity_id:pod-1" };
	gb_prom_config cfg = { .tags = tags, .n_tags = 2 };
	gb_prom_sink *s = sink(&cfg);
	gb_rec_kv m[6] = { kv("le", "x"), kv("job", "y"), kv("env", "spoof"), kv("__name__", "z"),
		kv("a.b", "1"), kv("a_b", "2") };
	gb_prom_stats st;
	char *t;

	rec(s, GB_REC_COUNTER, "spoof", 0, 1, m, 6, 1);
	gb__prom_own(s, GB_PROM_OWN_RECORDS_READ, NULL, 0);
	t = render(s);
	assert_has(t, "gbatch_spoof_total{a_b=\"1\",depth=\"0\",env=\"prod\",user___name__=\"z\","
	    "user_env=\"spoof\",user_job=\"y\",user_le=\"x\"} 1\n");
	ck_assert_ptr_null(strstr(t, "entity_id"));
	assert_has(t, "gbatch_collector_records_read_total{env=\"prod\"} 0\n");
	free(t);
	gb__prom_get_stats(s, &st);
	ck_assert_uint_eq(st.tags_renamed, 4);
	ck_assert_uint_eq(st.tags_dropped, 1); /* a.b and a_b are one label name */
	gb__prom_free(s);
}
END_TEST

/* A global tag named like a label every series or bucket has (--tag le:x, DD_TAGS=depth:y)
 * would make a series with two labels of one name, which fails the whole scrape. */
START_TEST(reserved_global_tags_are_renamed)
{
	static const char *const tags[] = { "le:zz", "depth:9", "quantile:q", "__x:w" };
	gb_prom_config cfg = { .tags = tags, .n_tags = 4 };
	gb_prom_sink *s = sink(&cfg);
	char *t;

	rec(s, GB_REC_TIMING, "step", 0, 0.002, NULL, 0, 1);
	t = render(s);
	assert_has(t, "gbatch_step_seconds_bucket{depth=\"0\",user___x=\"w\",user_depth=\"9\","
	    "user_le=\"zz\",user_quantile=\"q\",le=\"0.005\"} 1\n");
	ck_assert_ptr_null(strstr(t, "{le="));
	ck_assert_ptr_null(strstr(t, ",le=\"zz"));
	free(t);
	gb__prom_free(s);
}
END_TEST

START_TEST(the_dogstatsd_caps_bound_the_series)
{
	gb_prom_config cfg = { .max_names = 2, .max_tag_values = 1, .max_contexts = 4 };
	gb_prom_sink *s = sink(&cfg);
	gb_rec_kv a = kv("model", "a"), b = kv("model", "b"), k[3] = { kv("k", "1"), kv("k", "2"),
		kv("k", "3") };
	gb_prom_stats st;
	char *t;

	rec(s, GB_REC_COUNTER, "one", 0, 1, &a, 1, 1);
	rec(s, GB_REC_COUNTER, "one", 0, 1, &b, 1, 1);     /* second value: other */
	rec(s, GB_REC_COUNTER, "two", 0, 1, NULL, 0, 1);
	rec(s, GB_REC_COUNTER, "three", 0, 5, NULL, 0, 1); /* third name: gbatch_other */
	rec(s, GB_REC_COUNTER, "three", 0, 5, NULL, 0, 1); /* cached: counted again */
	rec(s, GB_REC_GAUGE, "two", 0, 1, k, 1, 1);         /* new series past the cap of 4 */
	t = render(s);
	assert_has(t, "gbatch_one_total{depth=\"0\",model=\"a\"} 1\n");
	assert_has(t, "gbatch_one_total{depth=\"0\",model=\"other\"} 1\n");
	assert_has(t, "gbatch_other_total{depth=\"0\"} 10\n");
	ck_assert_ptr_null(strstr(t, "gbatch_three"));
	ck_assert_ptr_null(strstr(t, "gbatch_two{"));
	free(t);
	gb__prom_get_stats(s, &st);
	ck_assert_uint_eq(st.tag_values_capped, 1);
	ck_assert_uint_eq(st.names_capped, 2);
	ck_assert_uint_eq(st.contexts_dropped, 1);
	ck_assert_uint_eq(st.series, 4);
	gb__prom_free(s);
}
END_TEST

START_TEST(a_name_held_by_another_type_is_rejected)
{
	gb_prom_config cfg = { 0 };
	gb_prom_sink *s = sink(&cfg);
	gb_prom_stats st;
	char *t;

	rec(s, GB_REC_TIMING, "step", 0, 1, NULL, 0, 1);          /* gbatch_step_seconds */
	rec(s, GB_REC_GAUGE, "step_seconds_count", 0, 1, NULL, 0, 1);
	rec(s, GB_REC_GAUGE, "step_seconds", 0, 1, NULL, 0, 1);
	rec(s, GB_REC_COUNTER, "collector.records_read", 0, 1, NULL, 0, 1); /* our own name */
	t = render(s);
	ck_assert_ptr_null(strstr(t, "# TYPE gbatch_step_seconds_count"));
	ck_assert_ptr_null(strstr(t, "# TYPE gbatch_step_seconds gauge"));
	ck_assert_ptr_null(strstr(t, "gbatch_collector_records_read_total{depth"));
	free(t);
	gb__prom_get_stats(s, &st);
	ck_assert_uint_eq(st.values_rejected, 3);
	gb__prom_free(s);
}
END_TEST

START_TEST(series_not_updated_expire)
{
	gb_prom_config cfg = { .expire_ns = 100 };
	gb_prom_sink *s = sink(&cfg);
	gb_prom_stats st;
	char *t;

	rec(s, GB_REC_COUNTER, "old", 0, 1, NULL, 0, 1000);
	rec(s, GB_REC_COUNTER, "fresh", 0, 1, NULL, 0, 1000);
	rec(s, GB_REC_COUNTER, "fresh", 0, 1, NULL, 0, 1050);
	gb__prom_expire(s, 1120);
	t = render(s);
	ck_assert_ptr_null(strstr(t, "gbatch_old"));
	assert_has(t, "gbatch_fresh_total{depth=\"0\"} 2\n");
	free(t);
	/* the cache forgot the expired series: a new record makes it again, from 0 */
	rec(s, GB_REC_COUNTER, "old", 0, 4, NULL, 0, 1130);
	t = render(s);
	assert_has(t, "gbatch_old_total{depth=\"0\"} 4\n");
	free(t);
	gb__prom_get_stats(s, &st);
	ck_assert_uint_eq(st.series_expired, 1);
	gb__prom_free(s);
}
END_TEST

START_TEST(own_figures_carry_the_ring_label)
{
	gb_prom_config cfg = { 0 };
	gb_prom_sink *s = sink(&cfg);
	char *t;

	gb__prom_own(s, GB_PROM_OWN_RECORDS_READ, NULL, 12);
	gb__prom_own(s, GB_PROM_OWN_RECORDS_DROPPED, "default", 3);
	gb__prom_own(s, GB_PROM_OWN_RECORDS_DROPPED, "second", 4);
	gb__prom_own(s, GB_PROM_OWN_RECORDS_READ, NULL, 13);
	t = render(s);
	assert_has(t, "# TYPE gbatch_collector_records_read_total counter\n"
	    "gbatch_collector_records_read_total 13\n");
	assert_has(t, "# TYPE gbatch_collector_records_dropped_total counter\n"
	    "gbatch_collector_records_dropped_total{ring=\"default\"} 3\n"
	    "gbatch_collector_records_dropped_total{ring=\"second\"} 4\n");
	free(t);
	gb__prom_free(s);
}
END_TEST

static Suite *
prom_sink_suite(void)
{
	Suite *s = suite_create("prom_sink");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, label_names_follow_prometheus_rules);
	tcase_add_test(tc, label_values_are_escaped_and_made_valid_utf8);
	tcase_add_test(tc, numbers_read_back_exactly);
	tcase_add_test(tc, bucket_lists_are_strictly_increasing_durations);
	tcase_add_test(tc, timings_are_histograms_with_cumulative_buckets);
	tcase_add_test(tc, counters_only_grow_and_gauges_keep_the_last_value);
	tcase_add_test(tc, records_that_differ_in_identity_only_keep_their_own_series);
	tcase_add_test(tc, genai_metrics_take_their_opentelemetry_prometheus_names);
	tcase_add_test(tc, reserved_and_repeated_labels_are_renamed_or_dropped);
	tcase_add_test(tc, reserved_global_tags_are_renamed);
	tcase_add_test(tc, the_dogstatsd_caps_bound_the_series);
	tcase_add_test(tc, a_name_held_by_another_type_is_rejected);
	tcase_add_test(tc, series_not_updated_expire);
	tcase_add_test(tc, own_figures_carry_the_ring_label);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = prom_sink_suite };
