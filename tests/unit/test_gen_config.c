/* test_gen_config.c - the generation settings (checked, merged, sent in one generationConfig
 * with the schema) and the recorded replies of the real API (tests/fixtures/gemini/) taken
 * apart: refused keys, thought summaries, partial answers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check_main.h"
#include "gemini_client.h"
#include "gen_config.h"

/* The bytes of a recorded reply. */
static char *
fixture(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf = malloc(1 << 20);

	snprintf(path, sizeof(path), "%s/%s", GB_FIXTURES, name);
	ck_assert_ptr_nonnull(buf);
	ck_assert_msg((f = fopen(path, "r")) != NULL, "cannot open %s", path);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static const struct {
	const char *gen, *safety, *named; /* named: in the message, NULL when valid */
} settings_cases[] = {
	{ "{\"temperature\": 0, \"topP\": 1, \"topK\": 1, \"maxOutputTokens\": 1, \"seed\": -3}",
	    NULL, NULL },
	{ "{\"temperature\": 2.01}", NULL, "temperature 2.01" },
	{ "{\"temperature\": \"hot\"}", NULL, "temperature \"hot\"" },
	{ "{\"topP\": -0.5}", NULL, "topP -0.5" },
	{ "{\"topK\": 0}", NULL, "topK 0" },
	{ "{\"topK\": 1.5}", NULL, "topK 1.5" },
	{ "{\"maxOutputTokens\": -1}", NULL, "maxOutputTokens -1" },
	{ "{\"seed\": 4294967296}", NULL, "seed 4294967296" },
	{ "{\"stopSequences\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", NULL, NULL },
	{ "{\"stopSequences\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]}", NULL, "stopSequences" },
	{ "{\"stopSequences\": [\"\"]}", NULL, "stop sequence \"\"" },
	{ "{\"thinkingConfig\": {\"thinkingBudget\": -1, \"includeThoughts\": true}}", NULL, NULL },
	{ "{\"thinkingConfig\": {\"thinkingBudget\": -2}}", NULL, "thinkingBudget -2" },
	{ "{\"thinkingConfig\": {\"includeThoughts\": 1}}", NULL, "includeThoughts 1" },
	{ "{\"thinkingConfig\": {\"budget\": 5}}", NULL, "\"budget\"" },
	{ "{\"responseMimeType\": \"text/plain\"}", NULL, "\"responseMimeType\"" },
	{ "[1]", NULL, "generation_config [1]" },
	{ "{\"temperature\": ", NULL, "not valid JSON" },
	{ NULL, "[{\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"OFF\"}, "
	    "{\"category\": \"HARM_CATEGORY_CIVIC_INTEGRITY\", \"threshold\": \"BLOCK_LOW_AND_ABOVE\"}]",
	    NULL },
	{ NULL, "[{\"category\": \"HARM_CATEGORY_VIOLENCE\", \"threshold\": \"OFF\"}]",
	    "\"HARM_CATEGORY_VIOLENCE\"" },
	{ NULL, "[{\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"BLOCK_SOME\"}]",
	    "\"BLOCK_SOME\"" },
	{ NULL, "[{\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"OFF\"}, "
	    "{\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"BLOCK_NONE\"}]",
	    "given twice" },
	{ NULL, "{\"category\": \"HARM_CATEGORY_HARASSMENT\"}", "safety_settings" },
};

START_TEST(settings_checked_naming_the_value)
{
	char err[256] = "";
	json_t *gen, *safety;
	int rc = gb__gen_parse(settings_cases[_i].gen, settings_cases[_i].safety, &gen, &safety, err,
	    sizeof(err));

	if (settings_cases[_i].named == NULL) {
		ck_assert_msg(rc == 0, "case %d refused: %s", _i, err);
		ck_assert(settings_cases[_i].gen == NULL || json_is_object(gen));
		ck_assert(settings_cases[_i].safety == NULL || json_is_array(safety));
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_ptr_null(gen);
		ck_assert_ptr_null(safety);
		ck_assert_msg(strstr(err, settings_cases[_i].named) != NULL, "case %d: \"%s\" lacks %s",
		    _i, err, settings_cases[_i].named);
	}
	json_decref(gen);
	json_decref(safety);
}
END_TEST

START_TEST(one_generation_config_with_the_schema)
{
	json_t *gen = json_pack("{s:f, s:{s:i}}", "temperature", 0.5, "thinkingConfig",
	    "thinkingBudget", 0);
	json_t *safety = json_pack("[{s:s, s:s}]", "category", "HARM_CATEGORY_HATE_SPEECH",
	    "threshold", "BLOCK_ONLY_HIGH");
	json_t *schema = json_pack("{s:s}", "type", "STRING");
	gb_gemini_part part = { NULL, "Question: why?", 14, NULL };
	gb_gemini_request rq = { .parts = &part, .n_parts = 1, .schema = schema, .generation = gen,
		.safety = safety };
	json_t *req = gb__gemini_request_json(&rq), *gc = json_object_get(req, "generationConfig");

	ck_assert_int_eq(json_object_size(gc), 4);
	ck_assert(json_real_value(json_object_get(gc, "temperature")) == 0.5);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(gc, "thinkingConfig"),
	    "thinkingBudget")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(gc, "responseMimeType")),
	    "application/json");
	ck_assert(json_equal(json_object_get(gc, "responseSchema"), schema));
	ck_assert(json_equal(json_object_get(req, "safetySettings"), safety));
	ck_assert_int_eq(json_object_size(gen), 2); /* the caller's settings are not changed */
	json_decref(req);
	/* Settings without a schema: generationConfig holds exactly them. */
	rq.schema = NULL;
	rq.safety = NULL;
	req = gb__gemini_request_json(&rq);
	ck_assert(json_equal(json_object_get(req, "generationConfig"), gen));
	ck_assert_ptr_null(json_object_get(req, "safetySettings"));
	json_decref(req);
	json_decref(gen);
	json_decref(safety);
	json_decref(schema);
}
END_TEST

START_TEST(a_jobs_line_overrides_key_by_key)
{
	int oom;
	char *g = gb__gen_merge("{\"temperature\":0.5,\"topK\":3,\"thinkingConfig\":"
	    "{\"thinkingBudget\":128}}", "{\"temperature\":1.5,\"thinkingConfig\":"
	    "{\"includeThoughts\":true}}", 0, &oom);
	char *s = gb__gen_merge("[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"OFF\"},"
	    "{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"threshold\":\"OFF\"}]",
	    "[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"BLOCK_NONE\"}]", 1, &oom);

	ck_assert_str_eq(g, "{\"temperature\":1.5,\"topK\":3,\"thinkingConfig\":"
	    "{\"thinkingBudget\":128,\"includeThoughts\":true}}");
	ck_assert_str_eq(s, "[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":"
	    "\"BLOCK_NONE\"},{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"threshold\":\"OFF\"}]");
	free(g);
	free(s);
	g = gb__gen_merge(NULL, "{\"seed\":1}", 0, &oom);
	ck_assert_str_eq(g, "{\"seed\":1}");
	ck_assert_int_eq(oom, 0);
	free(g);
	ck_assert_ptr_null(gb__gen_merge(NULL, NULL, 1, &oom));
	ck_assert_int_eq(oom, 0);
}
END_TEST

/* Every recorded refusal of a key or a project is fatal, names its reason and what to fix. */
START_TEST(recorded_refusals_are_fatal)
{
	static const struct {
		const char *file, *reason, *advice;
		long http;
	} cases[] = {
		{ "api-key-invalid.json", "API_KEY_INVALID", "set GEMINI_API_KEY to a valid key", 400 },
		{ "api-key-expired.json", "API_KEY_INVALID", "API key expired", 400 },
		{ "service-disabled.json", "SERVICE_DISABLED", "enable it", 403 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gb_gemini_result res = { .status = GB__GEMINI_E_API, .http_status = cases[i].http };
		uint64_t delay;
		int per_day;
		size_t len;
		char *body = fixture(cases[i].file, &len);

		gb__gemini_parse_error(cases[i].http, body, len, &res, &delay, &per_day);
		ck_assert_str_eq(res.reason, cases[i].reason);
		ck_assert_ptr_nonnull(gb__gemini_fatal_reason(res.reason));
		ck_assert_msg(strstr(res.message, cases[i].advice) != NULL, "%s", res.message);
		ck_assert_int_eq(gb__gemini_is_fatal(&res), 1);
		free(body);
	}
}
END_TEST

START_TEST(an_ordinary_400_is_not_fatal)
{
	static const char body[] = "{\"error\":{\"code\":400,\"message\":\"bad\",\"status\":"
	    "\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
	    "\"reason\":\"RATE_LIMIT_EXCEEDED\"}]}}";
	gb_gemini_result res = { .status = GB__GEMINI_E_API, .http_status = 400 };
	uint64_t delay;
	int per_day;

	gb__gemini_parse_error(400, body, sizeof(body) - 1, &res, &delay, &per_day);
	ck_assert_str_eq(res.reason, "RATE_LIMIT_EXCEEDED");
	ck_assert_int_eq(gb__gemini_is_fatal(&res), 0);
	ck_assert_str_eq(res.message, "Gemini API error 400 INVALID_ARGUMENT: bad");
}
END_TEST

START_TEST(recorded_answers_parse)
{
	gb_gemini_result res = { 0 };
	size_t len;
	char *body = fixture("thinking-thought-summary.json", &len);

	ck_assert_int_eq(gb__gemini_parse_response(body, len, &res), GB__GEMINI_OK);
	ck_assert_str_eq(res.text, "Mountain View"); /* the thought summary is not the answer */
	ck_assert_int_eq(res.usage.thoughts, 24);
	gb__gemini_result_fini(&res);
	free(body);
	body = fixture("finish-reason-safety.json", &len);
	ck_assert_int_eq(gb__gemini_parse_response(body, len, &res), GB__GEMINI_OK);
	ck_assert_str_eq(res.finish_reason, "SAFETY");
	ck_assert_str_eq(res.text, "Safety error incoming in 5, 4, 3, 2...");
	gb__gemini_result_fini(&res);
	free(body);
	body = fixture("max-tokens-thinking.json", &len);
	ck_assert_int_eq(gb__gemini_parse_response(body, len, &res), GB__GEMINI_OK);
	ck_assert_str_eq(res.finish_reason, "MAX_TOKENS");
	ck_assert_ptr_null(res.text);
	ck_assert_int_eq(res.usage.thoughts, 2999);
	ck_assert_int_eq(res.usage.total, 4705);
	gb__gemini_result_fini(&res);
	free(body);
}
END_TEST

START_TEST(max_tokens_note_names_the_budget)
{
	gb_gemini_usage u = { .prompt = 1706, .thoughts = 2999, .total = 4705 };
	json_t *budget = json_pack("{s:{s:i}}", "thinkingConfig", "thinkingBudget", 2048);
	json_t *max = json_pack("{s:i}", "maxOutputTokens", 3000);
	char buf[320];

	ck_assert_str_eq(gb__gen_finish_note("no text", "MAX_TOKENS", &u, budget, buf, sizeof(buf)),
	    "no text; thinking used 2999 tokens, the whole thinking budget of 2048 (lower "
	    "--thinking-budget or raise --max-output-tokens)");
	ck_assert_str_eq(gb__gen_finish_note("no text", "MAX_TOKENS", &u, max, buf, sizeof(buf)),
	    "no text; thinking used 2999 of the 3000 output tokens (set --thinking-budget, or "
	    "raise --max-output-tokens)");
	ck_assert_str_eq(gb__gen_finish_note("no text", "MAX_TOKENS", &u, NULL, buf, sizeof(buf)),
	    "no text");
	ck_assert_str_eq(gb__gen_finish_note("cut", "SAFETY", &u, budget, buf, sizeof(buf)), "cut");
	json_decref(budget);
	json_decref(max);
}
END_TEST

static Suite *
gen_config_suite(void)
{
	Suite *s = suite_create("gen_config");
	TCase *tc = tcase_create("settings and recorded replies");

	tcase_add_loop_test(tc, settings_checked_naming_the_value, 0,
	    (int)(sizeof(settings_cases) / sizeof(settings_cases[0])));
	tcase_add_test(tc, one_generation_config_with_the_schema);
	tcase_add_test(tc, a_jobs_line_overrides_key_by_key);
	tcase_add_test(tc, recorded_refusals_are_fatal);
	tcase_add_test(tc, an_ordinary_400_is_not_fatal);
	tcase_add_test(tc, recorded_answers_parse);
	tcase_add_test(tc, max_tokens_note_names_the_budget);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = gen_config_suite };
