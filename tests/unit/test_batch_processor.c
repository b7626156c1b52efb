/* test_batch_processor.c - gb_processor_process_questions against a real gbatch-stub-gemini:
 * answers in order, fallback, count repair, per-answer reasons, compare figures checked against
 * the usage the stand-in logged, fatal quota, schema, and the telemetry scopes and metrics. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gbatch/processor.h>
#include <gbatch/telemetry.h>

#include "batch_internal.h"
#include "batch_run.h"
#include "check_main.h"
#include "stub_processor.h"
#include "tele_recorder.h"

static const char content_text[] =
    "The Tay Bridge was a railway bridge over the Firth of Tay in Scotland. It opened in 1878 "
    "and fell in a storm on 28 December 1879 while a train was crossing it.";

static const char *const qs[] = {
	"When did the bridge open?",
	"When did it fall?",
	"Which firth does it cross?",
	"What was crossing it when it fell?",
	"In which country is it?",
};
#define NQ (sizeof(qs) / sizeof(qs[0]))

static struct stub_proc stub;
static gb_processor *proc;
static gb_result *res;
static json_t *out;  /* the result's JSON */
static json_t *reqs; /* the stand-in's request log */

/* ---- every record the context gives its reporters (tele_recorder.h), to check names,
 * depth, parents and metadata ---- */

static struct recorder rc;

static const struct rec *
find(const char *scope, bool timing)
{
	return recorder_find(&rc, timing ? 't' : 'm', scope);
}

static size_t
count_recs(const char *scope)
{
	return recorder_count(&rc, scope);
}

static double
sum_metric(const char *scope)
{
	return recorder_sum(&rc, 'm', scope);
}

/* ---- fixtures ---- */

static void
start(const char *const *args, gb_tele *tele)
{
	gb_processor_opts o;
	char err[256];

	ck_assert_int_eq(stub_start(&stub, args), 0);
	stub_processor_opts(&o, &stub, tele, 0.01);
	proc = gb_processor_new(&o, err, sizeof(err));
	ck_assert_msg(proc != NULL, "%s", err);
}

/* The compact text is written without jansson, the indented one by jansson: the compact one
 * must be byte for byte jansson's compact dump of the indented one's values. */
static void
check_compact_is_janssons(const gb_result *r, const char *compact)
{
	char *pretty = gb_result_to_json(r, GB_RESULT_JSON_PRETTY), *again;
	json_t *tree;

	ck_assert_ptr_nonnull(pretty);
	tree = json_loads(pretty, 0, NULL);
	ck_assert_ptr_nonnull(tree);
	again = json_dumps(tree, JSON_COMPACT);
	ck_assert_str_eq(compact, again);
	free(again);
	json_decref(tree);
	free(pretty);
}

static void
run_n(size_t n, unsigned flags, const char *schema)
{
	gb_content c = { NULL, content_text, sizeof(content_text) - 1, NULL };
	gb_process_opts po = { .flags = flags, .response_schema = schema };
	char err[256], *s;

	ck_assert_int_eq(gb_processor_process_questions(proc, &c, 1, qs, n, &po, &res, err,
	    sizeof(err)), 0);
	s = gb_result_to_json(res, 0);
	ck_assert_ptr_nonnull(s);
	check_compact_is_janssons(res, s);
	out = json_loads(s, 0, NULL);
	ck_assert_ptr_nonnull(out);
	free(s);
	reqs = stub_requests(&stub);
}

static void
run(unsigned flags)
{
	run_n(NQ, flags, NULL);
}

static void
teardown(void)
{
	gb_result_free(res);
	gb_processor_free(proc);
	json_decref(out);
	json_decref(reqs);
	res = NULL;
	proc = NULL;
	out = reqs = NULL;
	if (stub.pid > 0)
		ck_assert_int_eq(stub_stop(&stub), 0);
}

static json_t *
at(const char *path)
{
	json_t *v = out;
	char buf[128], *save = NULL;

	strncpy(buf, path, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	for (char *k = strtok_r(buf, ".", &save); k != NULL; k = strtok_r(NULL, ".", &save))
		v = json_is_array(v) ? json_array_get(v, strtoul(k, NULL, 10)) : json_object_get(v, k);
	return v;
}

static int64_t
ival(const char *path)
{
	json_t *v = at(path);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", path);
	return json_integer_value(v);
}

static const char *
sval(const char *path)
{
	json_t *v = at(path);

	ck_assert_msg(json_is_string(v), "%s is not a string", path);
	return json_string_value(v);
}

/* Sum of usage field `key` over the stand-in's requests [from, to). */
static int64_t
logged_usage(size_t from, size_t to, const char *key)
{
	int64_t s = 0;

	for (size_t i = from; i < to; i++)
		s += json_integer_value(json_object_get(json_object_get(json_array_get(reqs, i), "usage"),
		    key));
	return s;
}

static int64_t
logged(size_t i, const char *key)
{
	return json_integer_value(json_object_get(json_array_get(reqs, i), key));
}

static char *
expect_batch(size_t i)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "Answer to question %zu: %s", i + 1, qs[i]);
	return buf;
}

static char *
expect_single(size_t i)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "Answer to question: %s", qs[i]);
	return buf;
}

/* ---- tests ---- */

START_TEST(answers_in_order_from_one_call)
{
	start(NULL, NULL);
	run(0);
	ck_assert_uint_eq(json_array_size(reqs), 1);
	ck_assert_int_eq(logged(0, "questions"), NQ);
	ck_assert_uint_eq(gb_result_question_count(res), NQ);
	ck_assert_uint_eq(gb_result_failed_count(res), 0);
	for (size_t i = 0; i < NQ; i++) {
		ck_assert_str_eq(gb_result_answer(res, i), expect_batch(i));
		ck_assert_str_eq(gb_result_source(res, i), "batch");
		ck_assert_ptr_null(gb_result_error(res, i));
	}
	ck_assert_int_eq(ival("question_count"), NQ);
	ck_assert_str_eq(sval("answers.4"), expect_batch(4));
	ck_assert_str_eq(sval("answer_details.2.finish_reason"), "STOP");
	ck_assert_str_eq(sval("batch.outcome"), "complete");
	ck_assert_int_eq(ival("batch.answers_received"), NQ);
	ck_assert_int_eq(ival("metrics.batch.calls"), 1);
	ck_assert_int_eq(ival("metrics.batch.prompt_tokens"), logged_usage(0, 1, "promptTokenCount"));
	ck_assert_int_eq(ival("metrics.batch.output_tokens"), logged_usage(0, 1, "candidatesTokenCount"));
	ck_assert_int_eq(ival("metrics.batch.thoughts_tokens"), logged_usage(0, 1, "thoughtsTokenCount"));
	ck_assert_int_eq(ival("metrics.batch.total_tokens"), logged_usage(0, 1, "totalTokenCount"));
	ck_assert_int_gt(ival("metrics.batch.total_tokens"), 0);
	ck_assert_int_eq(ival("metrics.individual.calls"), 0);
	ck_assert_int_eq(ival("usage.total_tokens"), ival("metrics.batch.total_tokens"));
	ck_assert(json_is_false(at("efficiency.comparison_available")));
	ck_assert(json_is_null(at("efficiency.token_efficiency_ratio")));
	ck_assert(json_is_number(at("processing_time")));
	ck_assert_ptr_null(at("structured_data"));
	ck_assert_ptr_null(at("error"));
}
END_TEST

START_TEST(fenced_answer_is_unwrapped)
{
	const char *args[] = { "--fault", "fenced", NULL };

	start(args, NULL);
	run(0);
	ck_assert_uint_eq(json_array_size(reqs), 1);
	for (size_t i = 0; i < NQ; i++)
		ck_assert_str_eq(gb_result_answer(res, i), expect_batch(i));
	ck_assert_str_eq(sval("batch.outcome"), "complete");
}
END_TEST

START_TEST(failed_batch_falls_back_to_individual_calls)
{
	const char *args[] = { "--fault", "500:0:only=batch", NULL };

	start(args, NULL);
	run(0);
	/* Two attempts at the batch (max_attempts 2), then one call per question. */
	ck_assert_uint_eq(json_array_size(reqs), 2 + NQ);
	ck_assert_int_eq(logged(1, "status"), 500);
	ck_assert_int_eq(logged(2, "questions"), 1);
	ck_assert_uint_eq(gb_result_failed_count(res), 0);
	for (size_t i = 0; i < NQ; i++) {
		ck_assert_str_eq(gb_result_answer(res, i), expect_single(i));
		ck_assert_str_eq(gb_result_source(res, i), "individual");
	}
	ck_assert_str_eq(sval("batch.outcome"), "failed");
	ck_assert_ptr_nonnull(strstr(sval("batch.error"), "500 INTERNAL"));
	/* The batch method's cost includes its failed attempts and the fallback calls. */
	ck_assert_int_eq(ival("metrics.batch.calls"), 1 + NQ);
	ck_assert_int_eq(ival("metrics.batch.total_tokens"), logged_usage(0, 2 + NQ, "totalTokenCount"));
	ck_assert_int_eq(ival("usage.retries"), 1);
}
END_TEST

START_TEST(missing_answers_are_asked_individually)
{
	const char *args[] = { "--fault", "few", NULL };

	start(args, NULL);
	run(0);
	ck_assert_uint_eq(json_array_size(reqs), 2);
	ck_assert_int_eq(logged(1, "questions"), 1);
	for (size_t i = 0; i + 1 < NQ; i++) {
		ck_assert_str_eq(gb_result_answer(res, i), expect_batch(i));
		ck_assert_str_eq(gb_result_source(res, i), "batch");
	}
	ck_assert_str_eq(gb_result_answer(res, NQ - 1), expect_single(NQ - 1));
	ck_assert_str_eq(gb_result_source(res, NQ - 1), "individual");
	ck_assert_str_eq(sval("batch.outcome"), "partial");
	ck_assert_int_eq(ival("batch.answers_received"), NQ - 1);
	ck_assert_str_eq(sval("batch.error"), "the batched answer has 4 answers for 5 questions");
	ck_assert_int_eq(ival("metrics.batch.calls"), 2);
}
END_TEST

START_TEST(extra_answers_are_detected)
{
	const char *args[] = { "--fault", "many", NULL };

	start(args, NULL);
	run(0);
	ck_assert_uint_eq(json_array_size(reqs), 1);
	ck_assert_int_eq(ival("batch.answers_received"), NQ + 1);
	ck_assert_str_eq(sval("batch.error"), "the batched answer has 6 answers for 5 questions");
	ck_assert_str_eq(gb_result_answer(res, NQ - 1), expect_batch(NQ - 1));
}
END_TEST

START_TEST(prose_batch_and_blocked_question)
{
	const char *args[] = { "--fault", "text:1:only=batch", "--fault", "blocked:1:only=single",
		"--fault", "maxtokens:1:only=single", NULL };

	start(args, NULL);
	run_n(3, 0, NULL);
	ck_assert_uint_eq(json_array_size(reqs), 4);
	ck_assert_str_eq(sval("batch.outcome"), "failed");
	ck_assert_str_eq(sval("batch.error"), "the batched answer is not valid JSON");
	ck_assert_uint_eq(gb_result_failed_count(res), 2);
	ck_assert_str_eq(gb_result_source(res, 0), "error");
	ck_assert_str_eq(gb_result_error(res, 0), "the prompt was blocked (blockReason SAFETY)");
	ck_assert_str_eq(sval("answer_details.0.block_reason"), "SAFETY");
	ck_assert_str_eq(gb_result_error(res, 1), "the answer has no text (finishReason MAX_TOKENS)");
	ck_assert_str_eq(sval("answer_details.1.finish_reason"), "MAX_TOKENS");
	ck_assert(json_is_null(at("answers.1")));
	ck_assert_str_eq(gb_result_answer(res, 2), expect_single(2));
}
END_TEST

START_TEST(compare_figures_match_the_stand_in)
{
	int64_t bt, it;
	double ratio;

	start(NULL, NULL);
	run(GB_PROCESS_COMPARE);
	ck_assert_uint_eq(json_array_size(reqs), 1 + NQ);
	bt = logged_usage(0, 1, "totalTokenCount");
	it = logged_usage(1, 1 + NQ, "totalTokenCount");
	ck_assert_int_eq(ival("metrics.batch.total_tokens"), bt);
	ck_assert_int_eq(ival("metrics.individual.total_tokens"), it);
	ck_assert_int_eq(ival("metrics.individual.calls"), NQ);
	ck_assert_int_eq(ival("metrics.individual.prompt_tokens"), logged_usage(1, 1 + NQ,
	    "promptTokenCount"));
	ck_assert_int_eq(ival("metrics.individual.output_tokens"), logged_usage(1, 1 + NQ,
	    "candidatesTokenCount"));
	ck_assert_int_eq(ival("metrics.individual.thoughts_tokens"), logged_usage(1, 1 + NQ,
	    "thoughtsTokenCount"));
	ck_assert_int_eq(ival("usage.total_tokens"), bt + it);
	ck_assert_int_eq(ival("usage.calls"), 1 + NQ);
	ratio = (double)it / (double)bt;
	ck_assert_double_eq_tol(json_real_value(at("efficiency.token_efficiency_ratio")), ratio, 1e-9);
	ck_assert(json_is_boolean(at("efficiency.meets_target")));
	ck_assert(json_boolean_value(at("efficiency.meets_target")) == (ratio >= 2.97));
	ck_assert(json_is_true(at("efficiency.comparison_available")));
	ck_assert_double_gt(json_real_value(at("efficiency.time_efficiency")), 0);
	ck_assert_str_eq(sval("individual_answers.3"), expect_single(3));
	ck_assert_str_eq(sval("answers.3"), expect_batch(3));
}
END_TEST

START_TEST(per_day_quota_stops_everything)
{
	const char *args[] = { "--fault", "quota:0:delay=0.05s", NULL };

	start(args, NULL);
	run(GB_PROCESS_COMPARE);
	ck_assert_uint_eq(json_array_size(reqs), 1);
	ck_assert_uint_eq(gb_result_failed_count(res), NQ);
	ck_assert_ptr_nonnull(gb_result_fatal_error(res));
	ck_assert_ptr_nonnull(strstr(gb_result_fatal_error(res), "daily quota exhausted"));
	ck_assert_ptr_nonnull(strstr(sval("error"), "RESOURCE_EXHAUSTED"));
	ck_assert_str_eq(sval("answer_details.0.source"), "error");
	ck_assert_int_eq(ival("metrics.individual.calls"), 0);
}
END_TEST

START_TEST(fatal_error_midway_stops_the_fallback)
{
	const char *args[] = { "--fault", "400:1:only=batch", "--fault", "quota:0:only=single", NULL };

	start(args, NULL);
	run(0);
	/* The 400 batch is not retried; the first individual call hits the daily quota. */
	ck_assert_uint_eq(json_array_size(reqs), 2);
	ck_assert_uint_eq(gb_result_failed_count(res), NQ);
	ck_assert_ptr_nonnull(gb_result_fatal_error(res));
	ck_assert_str_eq(gb_result_error(res, 4), gb_result_fatal_error(res));
}
END_TEST

START_TEST(schema_answers_are_structured_and_checked)
{
	static const char schema[] = "{\"type\":\"OBJECT\",\"properties\":{\"answer\":{\"type\":"
	    "\"STRING\"},\"confidence\":{\"type\":\"NUMBER\"}},\"required\":[\"answer\",\"confidence\"]}";
	/* The stand-in ignores enum: its answers cannot follow this one. */
	static const char enum_schema[] = "{\"type\":\"STRING\",\"enum\":[\"yes\",\"no\"]}";
	gb_content c = { NULL, content_text, sizeof(content_text) - 1, NULL };
	gb_process_opts po = { .response_schema = "[not json" };
	char err[256];
	gb_result *r2 = NULL;
	gb_reporter rep;
	gb_tele *t;

	recorder_init(&rc);
	rep = recorder_reporter(&rc);
	t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	start(NULL, t);
	run_n(2, 0, schema);
	ck_assert_uint_eq(json_array_size(reqs), 1);
	ck_assert_str_eq(find("batch.total_processing.batch.attempt.batch.processing", true)->extra,
	    "method=batch,schema_enabled=True");
	ck_assert_str_eq(json_string_value(at("structured_data.1.answer")), expect_batch(1));
	ck_assert(json_is_real(at("structured_data.1.confidence")));
	ck_assert_ptr_nonnull(strstr(gb_result_answer(res, 0), "\"answer\""));
	ck_assert_str_eq(gb_result_source(res, 1), "batch");

	/* Answers that do not follow the schema are not taken, from the batch or one by one. */
	ck_assert_int_eq(gb_processor_process_questions(proc, &c, 1, qs, 2, &(gb_process_opts){
	    .response_schema = enum_schema }, &r2, err, sizeof(err)), 0);
	ck_assert_uint_eq(gb_result_failed_count(r2), 2);
	ck_assert_str_eq(gb_result_error(r2, 1), "the answer does not follow the response schema");
	gb_result_free(r2);

	ck_assert_int_eq(gb_processor_process_questions(proc, &c, 1, qs, 2, &po, &r2, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_null(r2);
	ck_assert_ptr_nonnull(strstr(err, "response schema is not a JSON object"));
	teardown();
	gb_tele_free(t);
	recorder_fini(&rc);
}
END_TEST

START_TEST(bad_arguments)
{
	gb_content c = { NULL, content_text, sizeof(content_text) - 1, NULL };
	const char *empty[] = { "fine", "" };
	gb_processor_opts o;
	char err[256];
	gb_result *r2 = (gb_result *)&c;

	start(NULL, NULL);
	ck_assert_int_eq(gb_processor_process_questions(proc, &c, 1, qs, 0, NULL, &r2, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_null(r2);
	ck_assert_str_eq(err, "no questions to ask");
	ck_assert_int_eq(gb_processor_process_questions(proc, &c, 1, empty, 2, NULL, &r2, err,
	    sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "question 2 is empty");
	ck_assert_int_eq(gb_processor_process_questions(proc, &c, 0, qs, 1, NULL, &r2, err,
	    sizeof(err)), -EINVAL);
	gb_processor_opts_init(&o);
	ck_assert_ptr_null(gb_processor_new(&o, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "GEMINI_API_KEY"));
}
END_TEST

START_TEST(telemetry_scopes_and_metrics)
{
	gb_simple_reporter *simple = gb_simple_reporter_new(0);
	gb_reporter reps[2];
	gb_tele *t;
	const char *args[] = { "--fault", "few", NULL };
	const struct rec *r;
	char *report;

	recorder_init(&rc);
	reps[0] = recorder_reporter(&rc);
	reps[1] = gb_simple_reporter_as_reporter(simple);
	t = gb_tele_new(reps, 2, GB_TELE_ENABLE);
	start(args, t);
	run(GB_PROCESS_COMPARE);

	r = find("batch.total_processing", true);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->depth, 0);
	ck_assert_int_eq(r->has_parent, 0);
	ck_assert_str_eq(r->parent, "");
	ck_assert_str_eq(r->extra, "question_count=5,content_type=text");
	r = find("batch.total_processing.batch.attempt", true);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->depth, 1);
	ck_assert_str_eq(r->parent, "batch.total_processing");
	r = find("batch.total_processing.batch.attempt.batch.processing.batch.prompt_creation", true);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->depth, 3);
	r = find("batch.total_processing.batch.attempt.batch.processing.batch.api_call."
	    "client.generate_content.client.execute_generation.client.api_call_with_retry", true);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->depth, 6);
	ck_assert_str_eq(r->parent, "batch.total_processing.batch.attempt.batch.processing.batch.api_call."
	    "client.generate_content.client.execute_generation");
	ck_assert_ptr_nonnull(find("batch.total_processing.batch.attempt.batch.processing."
	    "batch.response_processing", true));

	/* The repair of the missing answer, with the reason in metadata. */
	r = find("batch.total_processing.batch.individual_fallback", true);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->extra, "error_type=count_mismatch");
	r = find("batch.total_processing.batch.individual_fallback.individual.processing."
	    "individual.question", true);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->depth, 3);
	ck_assert_str_eq(r->extra, "question_index=4");

	/* Compare run: one scope name for every question, the index only in metadata. */
	ck_assert_uint_eq(count_recs("batch.total_processing.batch.comparison_run.individual.processing."
	    "individual.question"), NQ);
	r = find("batch.total_processing.batch.comparison_run.individual.processing", true);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->extra, "method=individual,question_count=5");
	r = find("batch.total_processing.batch.individual_fallback.individual.processing", true);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->extra, "method=individual,question_count=1");
	for (size_t i = 0; i < rc.n; i++)
		ck_assert_msg(strstr(rc.r[i].scope, "question_") == NULL, "index in name: %s",
		    rc.r[i].scope);
	ck_assert_ptr_nonnull(find("batch.total_processing.batch.result_building", true));

	r = find("batch.total_processing.batch_success", false);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->type, "counter");
	ck_assert_double_eq(r->value, 1);
	ck_assert_uint_eq(count_recs("batch.total_processing.batch_failures"), 0);
	ck_assert_double_eq(sum_metric("batch.total_processing.batch.comparison_run.individual.processing."
	    "individual.question.individual_success"), NQ);
	ck_assert_double_eq(sum_metric("batch.total_processing.batch.attempt.batch.processing."
	    "batch.api_call.api_calls_successful"), 1);
	ck_assert_double_eq(sum_metric("batch.total_processing.batch.attempt.batch.processing."
	    "batch.api_call.total_tokens"), (double)logged_usage(0, 1, "totalTokenCount"));
	r = find("batch.total_processing.batch.result_building.token_efficiency", false);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->type, "gauge");
	ck_assert_double_eq_tol(r->value, json_real_value(at("efficiency.token_efficiency_ratio")), 1e-9);

	report = gb_simple_reporter_report(simple);
	ck_assert_ptr_nonnull(report);
	ck_assert_ptr_nonnull(strstr(report, "client.api_call_with_retry"));
	ck_assert_ptr_nonnull(strstr(report, "individual.question"));
	free(report);
	teardown();
	gb_tele_free(t);
	gb_simple_reporter_free(simple);
	ck_assert_uint_eq(rc.lost, 0);
	recorder_fini(&rc);
}
END_TEST

/* The scopes of one batch run, in the order they end, with their depth and parent. Every
 * `seed` one is a scope of the seed's run of the same questions (gemini_batch/batch_processor.py
 * and gemini_client.py: _process_standard > _process_batch > generate_content >
 * _execute_generation > _generate_with_parts > _api_call_with_retry, _process_response), at the
 * same path, depth and parent; the seed's timings come in this order too, except that it
 * times client.process_response twice (the second time over its own processed reply). The one
 * that is not is gbatch's OpenTelemetry duration of the call. */
#define P_API "batch.total_processing.batch.attempt.batch.processing.batch.api_call"
#define P_GEN P_API ".client.generate_content"
#define P_EXEC P_GEN ".client.execute_generation"
#define P_FALLBACK "batch.total_processing.batch.individual_fallback.individual.processing." \
	"individual.question.client.generate_content.client.execute_generation"
static const struct {
	const char *scope;
	int depth;
	const char *parent;
	bool seed;
} batch_tree[] = {
	{ "batch.total_processing.batch.attempt.batch.processing.batch.prompt_creation", 3,
	    "batch.total_processing.batch.attempt.batch.processing", true },
	{ P_EXEC ".client.api_call_with_retry", 6, P_EXEC, true },
	{ P_EXEC ".client.process_response", 6, P_EXEC, true },
	{ P_EXEC, 5, P_GEN, true },
	{ P_GEN, 4, P_API, true },
	{ P_API ".gen_ai.client.operation.duration", 4, P_API, false },
	{ P_API, 3, "batch.total_processing.batch.attempt.batch.processing", true },
	{ "batch.total_processing.batch.attempt.batch.processing.batch.response_processing", 3,
	    "batch.total_processing.batch.attempt.batch.processing", true },
	{ "batch.total_processing.batch.attempt.batch.processing", 2,
	    "batch.total_processing.batch.attempt", true },
	{ "batch.total_processing.batch.attempt", 1, "batch.total_processing", true },
	{ "batch.total_processing.batch.result_building", 1, "batch.total_processing", true },
	{ "batch.total_processing", 0, NULL, true },
};

START_TEST(one_batch_run_has_the_seeds_scope_tree)
{
	gb_reporter rep;
	gb_tele *t;
	size_t k = 0;

	recorder_init(&rc);
	rep = recorder_reporter(&rc);
	t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	start(NULL, t);
	run(0);
	for (size_t i = 0; i < rc.n; i++) {
		const struct rec *r = &rc.r[i];
		if (r->kind != 't')
			continue;
		ck_assert_msg(k < sizeof(batch_tree) / sizeof(batch_tree[0]), "extra timing %s",
		    r->scope);
		ck_assert_str_eq(r->scope, batch_tree[k].scope);
		ck_assert_int_eq(r->depth, batch_tree[k].depth);
		ck_assert_int_eq(r->has_parent, batch_tree[k].parent != NULL);
		ck_assert_str_eq(r->parent, batch_tree[k].parent != NULL ? batch_tree[k].parent : "");
		k++;
	}
	ck_assert_uint_eq(k, sizeof(batch_tree) / sizeof(batch_tree[0]));
	ck_assert_str_eq(find("batch.total_processing.batch.attempt.batch.processing", true)->extra,
	    "method=batch,schema_enabled=False");
	teardown();
	gb_tele_free(t);
	recorder_fini(&rc);
}
END_TEST

/* The seed's client metrics of two calls: the batch, a 503 then an answer (4 of 5); the
 * repair of the fifth question, a 400. */
START_TEST(client_metrics_of_a_retried_call_and_a_failed_one)
{
	gb_reporter rep;
	gb_tele *t;
	const struct rec *r;
	const char *args[] = { "--fault", "503:1", "--fault", "few", "--fault", "400:1:only=single",
		NULL };

	recorder_init(&rc);
	rep = recorder_reporter(&rc);
	t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	start(args, t);
	run(0);
	ck_assert_uint_eq(json_array_size(reqs), 3);

	r = find(P_EXEC ".num_parts", false);
	ck_assert_ptr_nonnull(r);
	ck_assert_double_eq(r->value, 2); /* the content and the prompt */
	ck_assert_str_eq(r->type, "histogram");
	ck_assert_int_eq(r->depth, 6);
	ck_assert_str_eq(r->parent, P_EXEC);
	ck_assert_double_eq(sum_metric(P_FALLBACK ".num_parts"), 2);

	r = find(P_EXEC ".client.api_call_with_retry.api_success", false);
	ck_assert_ptr_nonnull(r);
	ck_assert_double_eq(r->value, 1);
	ck_assert_str_eq(r->type, "counter");
	ck_assert_int_eq(r->depth, 7);
	ck_assert_uint_eq(count_recs(P_EXEC ".client.api_call_with_retry.api_failures"), 0);
	ck_assert_double_eq(sum_metric(P_FALLBACK ".client.api_call_with_retry.api_failures"), 1);
	ck_assert_uint_eq(count_recs(P_FALLBACK ".client.api_call_with_retry.api_success"), 0);

	/* From the answered attempt (the stand-in's second request). */
	r = find(P_EXEC ".client.process_response.seed_total_tokens", false);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->depth, 7);
	ck_assert_double_eq(r->value, (double)(logged_usage(1, 2, "promptTokenCount") +
	    logged_usage(1, 2, "candidatesTokenCount")));
	ck_assert_double_eq(sum_metric(P_EXEC ".client.process_response.billable_tokens"),
	    (double)(logged_usage(1, 2, "promptTokenCount") - logged_usage(1, 2,
	    "cachedContentTokenCount") + logged_usage(1, 2, "candidatesTokenCount") +
	    logged_usage(1, 2, "thoughtsTokenCount")));
	ck_assert_double_eq(sum_metric(P_API ".total_tokens"),
	    (double)logged_usage(1, 2, "totalTokenCount"));
	ck_assert_uint_eq(count_recs(P_FALLBACK ".client.process_response"), 0);
	teardown();
	gb_tele_free(t);
	ck_assert_uint_eq(rc.lost, 0);
	recorder_fini(&rc);
}
END_TEST

START_TEST(retries_are_counted)
{
	gb_reporter rep;
	gb_tele *t;
	/* The batch: a 503, then 4 answers for 5; the repair call gets a 400. */
	const char *args[] = { "--fault", "503:1", "--fault", "few", "--fault", "400:1:only=single",
		NULL };

	recorder_init(&rc);
	rep = recorder_reporter(&rc);
	t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	start(args, t);
	run(0);
	ck_assert_uint_eq(json_array_size(reqs), 3);
	ck_assert_double_eq(sum_metric("batch.total_processing.batch.attempt.batch.processing."
	    "batch.api_call.retryable_errors"), 1);
	ck_assert_double_eq(sum_metric("batch.total_processing.batch.individual_fallback.individual."
	    "processing.individual.question.non_retryable_errors"), 1);
	ck_assert_double_eq(sum_metric("batch.total_processing.batch.individual_fallback.individual."
	    "processing.individual.question.individual_failures"), 1);
	ck_assert_uint_eq(gb_result_failed_count(res), 1);
	ck_assert_ptr_nonnull(strstr(gb_result_error(res, NQ - 1), "400 INVALID_ARGUMENT"));
	teardown();
	gb_tele_free(t);
	ck_assert_uint_eq(rc.lost, 0);
	recorder_fini(&rc);
}
END_TEST

/* The request-at-a-time machine the jobs runner drives gives what the one-call API gives. */
static const struct {
	const char *fault;
	unsigned flags;
} step_cases[] = {
	{ NULL, 0 },
	{ "few", 0 },
	{ "500:1:only=batch", 0 },
	{ "blocked:1:only=single", GB_PROCESS_COMPARE },
	{ "403", 0 },
};

/* Runs the questions through gb_qrun, each request sent with gb__gemini_generate. */
static json_t *
run_steps(unsigned flags)
{
	gb_content c = { NULL, content_text, sizeof(content_text) - 1, NULL };
	gb_process_opts po = { .flags = flags };
	gb_qrun *q;
	gb_gemini_request rq;
	gb_gemini_result r = { 0 };
	const char *kind;
	gb_result *result;
	char err[256], *s;
	json_t *v;

	ck_assert_int_eq(gb__qrun_new(proc, &c, 1, qs, NQ, &po, NULL, 0, &q, err, sizeof(err)), 0);
	ck_assert_ptr_null(gb__qrun_result(q));
	while (gb__qrun_next(q, &rq, &kind)) {
		ck_assert(strcmp(kind, "batch") == 0 || strcmp(kind, "single") == 0);
		gb__gemini_generate(gb__processor_client(proc), &rq, &r);
		gb__qrun_take(q, &r);
	}
	gb__gemini_result_fini(&r);
	result = gb__qrun_result(q);
	ck_assert_ptr_nonnull(result);
	gb__qrun_free(q);
	s = gb_result_to_json(result, 0);
	v = json_loads(s, 0, NULL);
	free(s);
	gb_result_free(result);
	return v;
}

/* A result of every shape the runs give and some they rarely do: escapes, control
 * characters, non-ASCII text, structured answers, a comparison, a fatal error, reals large and
 * small. Its compact text is jansson's; text that is not UTF-8 makes both NULL. */
START_TEST(result_text_is_janssons_compact_dump)
{
	static const char *const q3[] = { "Tab\tand \"quotes\" \\", "caf\xc3\xa9 \xe2\x82\xac",
		"\x01\x1f\x7f" };
	gb_result *r = gb__result_new(q3, 3, true);
	char *s;

	ck_assert_ptr_nonnull(r);
	r->has_schema = true;
	r->answers[0].text = strdup("{\"a\": \"b\\n\"}");
	r->answers[0].structured = json_pack("{s:s, s:[i, f, n]}", "a", "b\n", "c", 1, 0.5);
	r->answers[0].source = "batch";
	strcpy(r->answers[0].finish, "STOP");
	r->answers[1].text = strdup("line\nbreak \xf0\x9f\x98\x80");
	r->answers[1].partial = strdup("the answer stopped early: finishReason MAX_TOKENS");
	r->answers[1].source = "individual";
	strcpy(r->answers[1].finish, "MAX_TOKENS");
	r->answers[2].error = strdup("Gemini API error 400: bad \x02 thing");
	strcpy(r->answers[2].block, "SAFETY");
	r->individual[1].text = strdup("one by one");
	r->batch_outcome = "partial";
	r->batch_received = 2;
	r->batch_error = strdup("the batched answer has 2 answers for 3 questions");
	r->fatal = strdup("stopped: \"quota\"");
	r->batch = (struct gb_method){ 1, 1234567890123LL, 5, 0, 7, 1234567890135LL, 0, 1.5e-7 };
	r->indiv = (struct gb_method){ 3, 40, 50, 10, 0, 90, 2, 123456.789 };
	gb__result_usage_sum(r);
	r->processing_time = 1e21;
	ck_assert_ptr_nonnull(s = gb_result_to_json(r, 0));
	check_compact_is_janssons(r, s);
	ck_assert_ptr_nonnull(strstr(s, "\"question\":\"\\u0001\\u001F\x7f\""));
	free(s);
	free(r->answers[2].error);
	r->answers[2].error = strdup("cut short \xe2\x82");
	ck_assert_ptr_null(gb_result_to_json(r, 0));
	ck_assert_ptr_null(gb_result_to_json(r, GB_RESULT_JSON_PRETTY));
	gb_result_free(r);
}
END_TEST

START_TEST(steps_match_process_questions)
{
	const char *args[] = { "--fault", step_cases[_i].fault, NULL };
	const char *const *fault = step_cases[_i].fault != NULL ? args : NULL;
	static const char *const same[] = { "question_count", "answers", "answer_details", "batch",
		"error", "individual_answers" };
	static const char *const figures[] = { "calls", "prompt_tokens", "output_tokens",
		"thoughts_tokens", "total_tokens" };
	json_t *direct, *steps;

	start(fault, NULL);
	run(step_cases[_i].flags);
	direct = json_incref(out);
	teardown();
	start(fault, NULL);
	steps = run_steps(step_cases[_i].flags);
	ck_assert_ptr_nonnull(steps);
	for (size_t k = 0; k < sizeof(same) / sizeof(same[0]); k++) {
		json_t *x = json_object_get(direct, same[k]), *y = json_object_get(steps, same[k]);
		ck_assert_msg((x == NULL && y == NULL) || json_equal(x, y), "%s differs", same[k]);
	}
	for (size_t k = 0; k < sizeof(figures) / sizeof(figures[0]); k++) {
		const char *m[] = { "batch", "individual" };
		for (size_t j = 0; j < 2; j++) {
			json_t *x = json_object_get(json_object_get(json_object_get(direct, "metrics"), m[j]),
			    figures[k]);
			json_t *y = json_object_get(json_object_get(json_object_get(steps, "metrics"), m[j]),
			    figures[k]);
			ck_assert_msg(json_equal(x, y), "metrics.%s.%s differs", m[j], figures[k]);
		}
	}
	ck_assert(json_equal(json_object_get(direct, "usage"), json_object_get(steps, "usage")));
	json_decref(direct);
	json_decref(steps);
}
END_TEST

/* Runs the questions through gb_qrun, answering every request itself: the batch with a JSON
 * array of NQ answers that ended with batch_finish, each question alone with its own answer
 * ending with single_finish. Counts the requests into *requests. */
static gb_result *
answer_all(unsigned flags, const char *batch_finish, const char *single_finish,
    unsigned *requests)
{
	gb_content c = { NULL, content_text, sizeof(content_text) - 1, NULL };
	gb_process_opts po = { .flags = flags };
	gb_gemini_request rq;
	const char *kind;
	gb_qrun *q;
	char err[256];
	json_t *arr = json_array();

	for (size_t i = 0; i < NQ; i++)
		json_array_append_new(arr, json_sprintf("Batched answer %zu", i + 1));
	ck_assert_int_eq(gb__qrun_new(proc, &c, 1, qs, NQ, &po, NULL, 0, &q, err, sizeof(err)), 0);
	*requests = 0;
	while (gb__qrun_next(q, &rq, &kind)) {
		bool batch = strcmp(kind, "batch") == 0;
		gb_gemini_result r = { .status = GB__GEMINI_OK, .http_status = 200, .attempts = 1 };
		r.text = batch ? json_dumps(arr, JSON_COMPACT) : strdup("Alone.");
		strcpy(r.finish_reason, batch ? batch_finish : single_finish);
		(*requests)++;
		gb__qrun_take(q, &r);
		gb__gemini_result_fini(&r);
	}
	json_decref(arr);
	gb_result *result = gb__qrun_result(q);
	gb__qrun_free(q);
	return result;
}

/* A batched reply that stopped early (finishReason SAFETY) may hide which answer the filter
 * cut: its questions are asked one by one; an answer of its own that stopped early is kept
 * but partial. --accept-partial takes both as before. */
START_TEST(answers_that_stopped_early_are_partial)
{
	unsigned requests;
	gb_result *r;

	start(NULL, NULL);
	r = answer_all(0, "SAFETY", "STOP", &requests);
	ck_assert_uint_eq(requests, 1 + NQ);
	ck_assert_str_eq(gb_result_source(r, 0), "individual");
	ck_assert_str_eq(gb_result_answer(r, NQ - 1), "Alone.");
	ck_assert_uint_eq(gb_result_partial_count(r), 0);
	gb_result_free(r);
	r = answer_all(0, "SAFETY", "RECITATION", &requests);
	ck_assert_uint_eq(gb_result_partial_count(r), NQ);
	ck_assert_uint_eq(gb_result_failed_count(r), 0);
	ck_assert_str_eq(gb_result_partial(r, 0), "the answer stopped early: finishReason RECITATION");
	gb_result_free(r);
	r = answer_all(GB_PROCESS_ACCEPT_PARTIAL, "SAFETY", "RECITATION", &requests);
	ck_assert_uint_eq(requests, 1);
	ck_assert_str_eq(gb_result_source(r, 0), "batch");
	ck_assert_str_eq(gb_result_answer(r, 1), "Batched answer 2");
	ck_assert_uint_eq(gb_result_partial_count(r), 0);
	ck_assert_ptr_null(gb_result_partial(r, 0));
	gb_result_free(r);
}
END_TEST

static Suite *
batch_processor_suite(void)
{
	Suite *s = suite_create("batch_processor");
	TCase *tc = tcase_create("against the stand-in");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, answers_in_order_from_one_call);
	tcase_add_test(tc, result_text_is_janssons_compact_dump);
	tcase_add_test(tc, fenced_answer_is_unwrapped);
	tcase_add_test(tc, failed_batch_falls_back_to_individual_calls);
	tcase_add_test(tc, missing_answers_are_asked_individually);
	tcase_add_test(tc, extra_answers_are_detected);
	tcase_add_test(tc, prose_batch_and_blocked_question);
	tcase_add_test(tc, compare_figures_match_the_stand_in);
	tcase_add_test(tc, per_day_quota_stops_everything);
	tcase_add_test(tc, fatal_error_midway_stops_the_fallback);
	tcase_add_test(tc, schema_answers_are_structured_and_checked);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, telemetry_scopes_and_metrics);
	tcase_add_test(tc, retries_are_counted);
	tcase_add_test(tc, answers_that_stopped_early_are_partial);
	tcase_add_test(tc, one_batch_run_has_the_seeds_scope_tree);
	tcase_add_test(tc, client_metrics_of_a_retried_call_and_a_failed_one);
	tcase_add_loop_test(tc, steps_match_process_questions, 0,
	    sizeof(step_cases) / sizeof(step_cases[0]));
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = batch_processor_suite };
