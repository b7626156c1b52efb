/* test_gemini_batch.c - the Batch API pieces: a batch read from an Operation or a bare
 * GenerateContentBatch (states, batchStats as int64 strings, inlined responses, the
 * responses file, errors), shapes that are refused, one response taken as a call's result,
 * and the real API's recorded replies (tests/fixtures/gemini). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "gemini_batch.h"

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);

	ck_assert_msg(v != NULL, "bad test JSON: %s", e.text);
	return v;
}

static int
parse(const char *text, gb_gemini_batch *b, char *err, size_t errlen)
{
	json_t *v = J(text);
	int rc = gb__batch_parse(v, b, err, errlen);

	json_decref(v);
	return rc;
}

START_TEST(states_are_read_from_either_spelling)
{
	ck_assert_int_eq(gb__batch_state_of("BATCH_STATE_PENDING"), GB__BATCH_PENDING);
	ck_assert_int_eq(gb__batch_state_of("BATCH_STATE_RUNNING"), GB__BATCH_RUNNING);
	ck_assert_int_eq(gb__batch_state_of("BATCH_STATE_SUCCEEDED"), GB__BATCH_SUCCEEDED);
	ck_assert_int_eq(gb__batch_state_of("JOB_STATE_SUCCEEDED"), GB__BATCH_SUCCEEDED);
	ck_assert_int_eq(gb__batch_state_of("BATCH_STATE_EXPIRED"), GB__BATCH_EXPIRED);
	ck_assert_int_eq(gb__batch_state_of("BATCH_STATE_CANCELLED"), GB__BATCH_CANCELLED);
	ck_assert_int_eq(gb__batch_state_of("BATCH_STATE_FAILED"), GB__BATCH_FAILED);
	ck_assert_int_eq(gb__batch_state_of("BATCH_STATE_UNSPECIFIED"), GB__BATCH_UNKNOWN);
	ck_assert_int_eq(gb__batch_state_of("SUCCEEDED"), GB__BATCH_UNKNOWN);
	ck_assert_int_eq(gb__batch_state_of(""), GB__BATCH_UNKNOWN);
	ck_assert(gb__batch_state_final(GB__BATCH_EXPIRED));
	ck_assert(!gb__batch_state_final(GB__BATCH_RUNNING));
	ck_assert_str_eq(gb__batch_state_tag(GB__BATCH_SUCCEEDED), "succeeded");
}
END_TEST

START_TEST(a_pending_operation_is_read_with_its_stats)
{
	gb_gemini_batch b = { 0 };
	char err[256];

	ck_assert_int_eq(parse("{\"name\": \"batches/abc-123_x\", \"metadata\": {\"@type\": "
	    "\"type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch\", "
	    "\"model\": \"models/gemini-2.0-flash\", \"displayName\": \"gbatch-jobs-1\", "
	    "\"createTime\": \"2025-07-11T11:36:28.123456Z\", \"batchStats\": {\"requestCount\": "
	    "\"2000\", \"pendingRequestCount\": \"1990\", \"successfulRequestCount\": 10}, "
	    "\"state\": \"BATCH_STATE_PENDING\"}}", &b, err, sizeof(err)), 0);
	ck_assert_str_eq(b.name, "batches/abc-123_x");
	ck_assert_str_eq(b.display_name, "gbatch-jobs-1");
	ck_assert_int_eq(b.state, GB__BATCH_PENDING);
	ck_assert_int_eq(b.done, 0);
	ck_assert_int_eq(b.requests, 2000);
	ck_assert_int_eq(b.pending, 1990);
	ck_assert_int_eq(b.succeeded, 10);
	ck_assert_int_eq(b.failed, 0); /* a count of zero is left out */
	ck_assert_int_eq((long long)b.create_time, 1752233788LL);
	ck_assert_ptr_null(b.inlined);
	gb__batch_fini(&b);
}
END_TEST

START_TEST(a_succeeded_operation_brings_its_inlined_responses)
{
	gb_gemini_batch b = { 0 };
	char err[256];

	ck_assert_int_eq(parse("{\"name\": \"batches/b1\", \"done\": true, \"metadata\": "
	    "{\"state\": \"BATCH_STATE_SUCCEEDED\", \"createTime\": \"2025-07-11T11:36:28+01:00\"}, "
	    "\"response\": {\"@type\": \"x.GenerateContentBatchOutput\", \"inlinedResponses\": "
	    "{\"inlinedResponses\": [{\"response\": {\"candidates\": []}, \"metadata\": {\"key\": "
	    "\"1\"}}, {\"error\": {\"code\": 3, \"message\": \"m\"}}]}}}", &b, err, sizeof(err)), 0);
	ck_assert_int_eq(b.state, GB__BATCH_SUCCEEDED);
	ck_assert_int_eq(b.done, 1);
	ck_assert_int_eq(b.requests, -1); /* no batchStats at all */
	ck_assert_int_eq((long long)b.create_time, 1752233788LL - 3600);
	ck_assert_ptr_nonnull(b.inlined);
	ck_assert_int_eq(json_array_size(b.inlined), 2);
	gb__batch_fini(&b);
	ck_assert_ptr_null(b.inlined);
}
END_TEST

START_TEST(a_file_batch_names_its_responses_file)
{
	gb_gemini_batch b = { 0 };
	char err[256];

	ck_assert_int_eq(parse("{\"name\": \"batches/b2\", \"done\": true, \"metadata\": "
	    "{\"state\": \"BATCH_STATE_SUCCEEDED\"}, \"response\": {\"responsesFile\": "
	    "\"files/batch-abc\"}}", &b, err, sizeof(err)), 0);
	ck_assert_str_eq(b.responses_file, "files/batch-abc");
	gb__batch_fini(&b);
	/* a bare GenerateContentBatch, its output in "output" */
	ck_assert_int_eq(parse("{\"name\": \"batches/b3\", \"state\": \"JOB_STATE_FAILED\", "
	    "\"error\": {\"code\": 13, \"message\": \"internal\\u0001 error\"}, \"output\": "
	    "{\"responsesFile\": \"files/r\"}}", &b, err, sizeof(err)), 0);
	ck_assert_int_eq(b.state, GB__BATCH_FAILED);
	ck_assert_int_eq(b.done, 1);
	ck_assert_str_eq(b.error, "internal  error");
	ck_assert_str_eq(b.responses_file, "files/r");
	gb__batch_fini(&b);
}
END_TEST

START_TEST(a_done_operation_without_a_state_is_read_from_its_error)
{
	gb_gemini_batch b = { 0 };
	char err[256];

	ck_assert_int_eq(parse("{\"name\": \"batches/b4\", \"done\": true, \"error\": {\"code\": "
	    "4, \"message\": \"deadline\"}}", &b, err, sizeof(err)), 0);
	ck_assert_int_eq(b.state, GB__BATCH_FAILED);
	ck_assert_str_eq(b.error, "deadline");
	gb__batch_fini(&b);
}
END_TEST

START_TEST(batches_of_the_wrong_shape_are_refused)
{
	static const char *const bad[] = {
		"[]",
		"{}",
		"{\"name\": \"operations/x\"}",
		"{\"name\": \"batches/\"}",
		"{\"name\": \"batches/a/b\"}",
		"{\"name\": \"batches/a b\"}",
		"{\"name\": 7}",
		"{\"name\": \"batches/a\", \"done\": \"yes\"}",
		"{\"name\": \"batches/a\", \"metadata\": {\"state\": 3}}",
		"{\"name\": \"batches/a\", \"metadata\": {\"batchStats\": []}}",
		"{\"name\": \"batches/a\", \"metadata\": {\"batchStats\": {\"requestCount\": \"-1\"}}}",
		"{\"name\": \"batches/a\", \"metadata\": {\"batchStats\": {\"requestCount\": \"1e3\"}}}",
		"{\"name\": \"batches/a\", \"metadata\": {\"batchStats\": {\"requestCount\": "
		    "\"9999999999999999999\"}}}",
		"{\"name\": \"batches/a\", \"metadata\": {\"batchStats\": {\"requestCount\": -4}}}",
		"{\"name\": \"batches/a\", \"response\": {\"responsesFile\": \"gs://x\"}}",
		"{\"name\": \"batches/a\", \"response\": {\"responsesFile\": \"files/a/../b\"}}",
		"{\"name\": \"batches/a\", \"response\": {\"inlinedResponses\": {\"inlinedResponses\": "
		    "{}}}}",
		"{\"name\": \"batches/a\", \"response\": []}",
		"{\"name\": \"batches/a\", \"metadata\": {\"displayName\": \"a\\nb\"}}",
	};
	gb_gemini_batch b = { 0 };
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(parse(bad[i], &b, err, sizeof(err)) == -1, "taken: %s", bad[i]);
		ck_assert_msg(err[0] != '\0', "no reason for %s", bad[i]);
		ck_assert_ptr_null(b.inlined);
	}
}
END_TEST

START_TEST(names_longer_than_their_room_are_refused)
{
	char text[512], id[128];
	gb_gemini_batch b = { 0 };
	char err[256];

	memset(id, 'a', 100);
	id[100] = '\0';
	snprintf(text, sizeof(text), "{\"name\": \"batches/%s\"}", id);
	ck_assert_int_eq(parse(text, &b, err, sizeof(err)), 0);
	gb__batch_fini(&b);
	strcat(id, "a");
	snprintf(text, sizeof(text), "{\"name\": \"batches/%s\"}", id);
	ck_assert_int_eq(parse(text, &b, err, sizeof(err)), -1);
	ck_assert(gb__batch_name_ok("batches/x-Y_9"));
	ck_assert(!gb__batch_name_ok("batches/x.y"));
}
END_TEST

START_TEST(a_response_becomes_the_result_of_a_call)
{
	gb_gemini_result res = { 0 };
	json_t *r = J("{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"[\\\"a\\\"]\"}], "
	    "\"role\": \"model\"}, \"finishReason\": \"STOP\"}], \"usageMetadata\": "
	    "{\"promptTokenCount\": 12, \"candidatesTokenCount\": 3, \"totalTokenCount\": 15}}");
	json_t *e = J("{\"code\": 3, \"message\": \"Request contains an invalid argument.\"}");

	ck_assert_int_eq(gb__batch_response_result(r, NULL, NULL, &res), 0);
	ck_assert_str_eq(res.text, "[\"a\"]");
	ck_assert_str_eq(res.finish_reason, "STOP");
	ck_assert_int_eq(res.usage.prompt, 12);
	ck_assert_int_eq(res.usage.total, 15);
	ck_assert_int_eq(res.attempts, 1);
	ck_assert_int_eq(res.non_retryable_errors, 0);
	gb__gemini_result_fini(&res);
	ck_assert_int_eq(gb__batch_response_result(NULL, e, NULL, &res), GB__GEMINI_E_API);
	ck_assert_ptr_nonnull(strstr(res.message, "invalid argument"));
	ck_assert_ptr_nonnull(strstr(res.message, "code 3"));
	ck_assert_int_eq(res.http_status, 0);
	ck_assert_int_eq(res.non_retryable_errors, 1);
	ck_assert_int_eq(gb__gemini_is_fatal(&res), 0);
	gb__gemini_result_fini(&res);
	ck_assert_int_eq(gb__batch_response_result(NULL, NULL, NULL, &res), GB__GEMINI_E_RESPONSE);
	gb__gemini_result_fini(&res);
	json_decref(r);
	json_decref(e);
}
END_TEST

/* ---- the real API's replies, as recorded (tests/fixtures/gemini/README.md) ---- */

static json_t *
fixture(const char *name)
{
	char path[512];
	json_error_t e;
	json_t *v;

	snprintf(path, sizeof(path), "%s/%s", GB_FIXTURES, name);
	v = json_load_file(path, 0, &e);
	ck_assert_msg(v != NULL, "%s: %s", path, e.text);
	return v;
}

static void
parse_fixture(const char *name, gb_gemini_batch *b)
{
	json_t *v = fixture(name);
	char err[256];

	ck_assert_msg(gb__batch_parse(v, b, err, sizeof(err)) == 0, "%s: %s", name, err);
	json_decref(v);
}

START_TEST(recorded_creates_and_gets_are_read)
{
	gb_gemini_batch b = { 0 };

	parse_fixture("batch-create-inline.json", &b);
	ck_assert_str_eq(b.name, "batches/tti3ik8qob66dxcvynlg5swnutyntbi926ac");
	ck_assert_str_eq(b.display_name, "capitals-batch");
	ck_assert_int_eq(b.state, GB__BATCH_PENDING);
	ck_assert_int_eq(b.done, 0);
	ck_assert_int_eq(b.requests, 3);
	ck_assert_int_eq(b.pending, 3);
	ck_assert_int_eq(b.succeeded, 0);
	ck_assert_int_ne((long long)b.create_time, 0);
	parse_fixture("batch-get-succeeded-inline.json", &b);
	ck_assert_int_eq(b.state, GB__BATCH_SUCCEEDED);
	ck_assert_int_eq(b.done, 1);
	ck_assert_int_eq(b.succeeded, 3);
	ck_assert_int_eq(json_array_size(b.inlined), 3);
	for (size_t i = 0; i < 3; i++) {
		gb_gemini_result res = { 0 };
		const json_t *item = json_array_get(b.inlined, i);
		ck_assert_int_eq(gb__batch_response_result(json_object_get(item, "response"),
		    json_object_get(item, "error"), NULL, &res), GB__GEMINI_OK);
		ck_assert_ptr_nonnull(strstr(res.text, "The capital of"));
		ck_assert_int_eq(res.usage.prompt, 8);
		ck_assert_int_eq(res.usage.total, res.usage.prompt + res.usage.candidates);
		gb__gemini_result_fini(&res);
	}
	parse_fixture("batch-create-file.json", &b);
	ck_assert_int_eq(b.state, GB__BATCH_PENDING);
	ck_assert_str_eq(b.display_name, "my batch name");
	parse_fixture("batch-get-succeeded-file.json", &b);
	ck_assert_int_eq(b.state, GB__BATCH_SUCCEEDED);
	ck_assert_str_eq(b.responses_file, "files/batch-leg9wy9p5df66syjxke2eq4xfjqcwp47ejv3");
	ck_assert_ptr_null(b.inlined);
	parse_fixture("batch-get-running.json", &b);
	ck_assert_int_eq(b.state, GB__BATCH_RUNNING);
	ck_assert_int_eq(b.done, 0);
	ck_assert_int_eq(b.succeeded, 1);
	ck_assert_int_eq(b.pending, 2);
	gb__batch_fini(&b);
}
END_TEST

START_TEST(recorded_ends_other_than_success_are_read_with_their_error)
{
	static const struct {
		const char *file;
		enum gb__batch_state state;
		const char *error;
	} ends[] = {
		{ "batch-get-cancelled.json", GB__BATCH_CANCELLED, "The batch was cancelled." },
		{ "batch-get-expired.json", GB__BATCH_EXPIRED, "expired" },
		{ "batch-get-failed.json", GB__BATCH_FAILED, "The batch failed" },
	};
	gb_gemini_batch b = { 0 };

	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		parse_fixture(ends[i].file, &b);
		ck_assert_int_eq(b.state, ends[i].state);
		ck_assert_int_eq(b.done, 1);
		ck_assert_msg(strstr(b.error, ends[i].error) != NULL, "%s: %s", ends[i].file, b.error);
	}
	gb__batch_fini(&b);
}
END_TEST

START_TEST(a_recorded_per_request_error_is_a_failed_call)
{
	gb_gemini_batch b = { 0 };
	gb_gemini_result res = { 0 };
	const json_t *item;

	parse_fixture("batch-inline-error.json", &b);
	ck_assert_int_eq(json_array_size(b.inlined), 2);
	item = json_array_get(b.inlined, 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(item, "metadata"), "key")),
	    "request-2");
	ck_assert_int_eq(gb__batch_response_result(json_object_get(item, "response"),
	    json_object_get(item, "error"), NULL, &res), GB__GEMINI_E_API);
	ck_assert_ptr_nonnull(strstr(res.message, "Internal error encountered"));
	ck_assert_ptr_nonnull(strstr(res.message, "code 13"));
	gb__gemini_result_fini(&res);
	gb__batch_fini(&b);
}
END_TEST

START_TEST(the_recorded_list_holds_operations)
{
	json_t *v = fixture("batch-list.json"), *op;
	gb_gemini_batch b = { 0 };
	char err[256];
	size_t i;

	ck_assert(json_array_size(json_object_get(v, "operations")) > 0);
	json_array_foreach(json_object_get(v, "operations"), i, op) {
		ck_assert_msg(gb__batch_parse(op, &b, err, sizeof(err)) == 0, "%s", err);
		ck_assert(b.name[0] != '\0');
	}
	ck_assert_str_eq(b.display_name, "ExecuteAsFile Example");
	gb__batch_fini(&b);
	json_decref(v);
}
END_TEST

static Suite *
gemini_batch_suite(void)
{
	Suite *s = suite_create("gemini_batch");
	TCase *pure = tcase_create("pure");

	tcase_add_test(pure, states_are_read_from_either_spelling);
	tcase_add_test(pure, a_pending_operation_is_read_with_its_stats);
	tcase_add_test(pure, a_succeeded_operation_brings_its_inlined_responses);
	tcase_add_test(pure, a_file_batch_names_its_responses_file);
	tcase_add_test(pure, a_done_operation_without_a_state_is_read_from_its_error);
	tcase_add_test(pure, batches_of_the_wrong_shape_are_refused);
	tcase_add_test(pure, names_longer_than_their_room_are_refused);
	tcase_add_test(pure, a_response_becomes_the_result_of_a_call);
	tcase_add_test(pure, recorded_creates_and_gets_are_read);
	tcase_add_test(pure, recorded_ends_other_than_success_are_read_with_their_error);
	tcase_add_test(pure, a_recorded_per_request_error_is_a_failed_call);
	tcase_add_test(pure, the_recorded_list_holds_operations);
	suite_add_tcase(s, pure);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = gemini_batch_suite };
