/* test_gemini_client.c - the Gemini client: request JSON, response and error parsing, and
 * calls against a real gbatch-stub-gemini process (retries, timeouts, quota, keep-alive). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "clock.h"
#include "gemini_client.h"
#include "stub_proc.h"

static const char batch_prompt[] =
    "Answer each question about the content above as a JSON array of 3 strings.\n"
    "Question 1: What is it?\nQuestion 2: Who made it?\nQuestion 3: When?\n";

static struct stub_proc stub;

/* Starts the stand-in with args and a client on it; timeouts and backoff short. */
static gb_gemini *
start(const char *const *args, unsigned attempts, uint64_t timeout_ns)
{
	char err[256];
	gb_gemini_opts o = {
		.api_key = STUB_KEY,
		.model = "gemini-2.0-flash",
		.timeout_ns = timeout_ns != 0 ? timeout_ns : 5 * GB_NS_PER_SEC,
		.max_attempts = attempts,
		.backoff_base_ns = 20 * GB_NS_PER_MS,
		.backoff_max_ns = 100 * GB_NS_PER_MS,
	};
	gb_gemini *c;

	ck_assert_int_eq(stub_start(&stub, args), 0);
	o.api_base = stub.base;
	c = gb__gemini_new(&o, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	return c;
}

static int
ask(gb_gemini *c, gb_gemini_result *res)
{
	gb_gemini_part parts[2] = {
		{ NULL, "The content: a small red bicycle.", 33, NULL },
		{ NULL, batch_prompt, sizeof(batch_prompt) - 1, NULL },
	};
	gb_gemini_request rq = { .parts = parts, .n_parts = 2, .json = 1 };

	return gb__gemini_generate(c, &rq, res);
}

static void
finish(gb_gemini *c)
{
	gb__gemini_free(c);
	ck_assert_int_eq(stub_stop(&stub), 0);
}

static int64_t
log_int(json_t *log, size_t i, const char *key)
{
	return json_integer_value(json_object_get(json_array_get(log, i), key));
}

START_TEST(request_json_shape)
{
	gb_gemini_part parts[2] = { { NULL, "hello", 5, NULL }, { "application/pdf", "abcd", 4, NULL } };
	json_t *schema = json_pack("{s:s, s:{s:s}}", "type", "ARRAY", "items", "type", "STRING");
	gb_gemini_request rq = { .parts = parts, .n_parts = 2, .system = "Be brief.",
		.schema = schema, .cached_content = "cachedContents/abc" };
	json_t *req = gb__gemini_request_json(&rq);
	char *s;

	ck_assert_ptr_nonnull(req);
	s = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_str_eq(s, "{\"cachedContent\":\"cachedContents/abc\",\"contents\":[{\"parts\":"
	    "[{\"text\":\"hello\"},{\"inlineData\":{\"data\":\"YWJjZA==\",\"mimeType\":"
	    "\"application/pdf\"}}],\"role\":\"user\"}],\"generationConfig\":{\"responseMimeType\":"
	    "\"application/json\",\"responseSchema\":{\"items\":{\"type\":\"STRING\"},\"type\":"
	    "\"ARRAY\"}},\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]}}");
	free(s);
	json_decref(req);
	json_decref(schema);

	parts[0].data = "bad \xff utf-8";
	parts[0].len = 11;
	rq.n_parts = 1;
	ck_assert_ptr_null(gb__gemini_request_json(&rq));
}
END_TEST

/* The request text written straight is jansson's dump of the request's JSON, byte for byte,
 * or NULL where that is NULL, for requests of every shape. */
static const struct {
	const char *gen, *safety, *schema, *system, *cached;
	int json;
	unsigned parts; /* bit 0 text, 1 inline data, 2 a file, 3 text that is not UTF-8 */
} text_cases[] = {
	{ NULL, NULL, NULL, NULL, NULL, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 1 },
	{ NULL, NULL, NULL, "", NULL, 0, 0 },
	{ NULL, NULL, "{\"type\": \"ARRAY\", \"items\": {\"type\": \"NUMBER\", \"minimum\": 0.1}}",
	    "Be brief.\n\"Exactly\".", "cachedContents/abc", 0, 7 },
	{ "{\"temperature\": 0.7, \"topP\": 0.95, \"topK\": 40, \"stopSequences\": [\"\\n\"]}",
	    "[{\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"OFF\"}]", NULL, NULL,
	    NULL, 1, 1 },
	{ "{\"temperature\": 1e-7}", NULL, "{\"type\": \"STRING\"}", NULL, NULL, 1, 3 },
	{ "{}", NULL, NULL, NULL, NULL, 0, 1 },
	{ "{}", NULL, NULL, NULL, NULL, 1, 1 },
	{ "{\"responseMimeType\": \"text/plain\", \"seed\": 3}", NULL, NULL, NULL, NULL, 1, 1 },
	{ "{\"seed\": 3, \"responseSchema\": {}}", NULL, "{\"type\": \"STRING\"}", NULL, NULL, 1, 1 },
	{ "[1]", NULL, NULL, NULL, NULL, 1, 1 },
	{ NULL, NULL, NULL, "caf\xc3\xa9 \x01", "cachedContents/\xe2\x82\xac", 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, 1, 9 },
	{ NULL, NULL, NULL, "bad \xc3", NULL, 1, 1 },
	{ NULL, NULL, NULL, NULL, "bad \xed\xa0\x80", 1, 1 },
};

START_TEST(request_text_is_janssons_dump)
{
	gb_gemini_part parts[4], all[4] = { { NULL, "Tab\there \"q\" \\ \x1f \0 nul", 21, NULL },
		{ "image/png", "\x89PNG\r\n\x1a\n\x00", 9, NULL },
		{ "application/pdf", NULL, 0, "https://example.com/files/abc" },
		{ NULL, "bad \xff utf-8", 12, NULL } };
	json_t *gen = text_cases[_i].gen != NULL ? json_loads(text_cases[_i].gen, 0, NULL) : NULL;
	json_t *safety = text_cases[_i].safety != NULL ? json_loads(text_cases[_i].safety, 0, NULL) :
	    NULL;
	json_t *schema = text_cases[_i].schema != NULL ? json_loads(text_cases[_i].schema, 0, NULL) :
	    NULL;
	gb_gemini_request rq = { .parts = parts, .system = text_cases[_i].system,
		.json = text_cases[_i].json, .schema = schema, .generation = gen, .safety = safety,
		.cached_content = text_cases[_i].cached };
	json_t *req;
	char *want, *got;
	size_t len = 0;

	for (unsigned b = 0; b < 4; b++)
		if (text_cases[_i].parts & (1u << b))
			parts[rq.n_parts++] = all[b];
	req = gb__gemini_request_json(&rq);
	want = req != NULL ? json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	got = gb__gemini_request_text(&rq, &len);
	if (want == NULL) {
		ck_assert_ptr_null(got);
	} else {
		ck_assert_ptr_nonnull(got);
		ck_assert_str_eq(got, want);
		ck_assert_uint_eq(len, strlen(want));
	}
	free(want);
	free(got);
	json_decref(req);
	json_decref(gen);
	json_decref(safety);
	json_decref(schema);
}
END_TEST

START_TEST(proto_durations)
{
	uint64_t ns = 7;

	ck_assert_int_eq(gb__gemini_parse_proto_duration("40s", &ns), 0);
	ck_assert_uint_eq(ns, 40 * GB_NS_PER_SEC);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("45.837906927s", &ns), 0);
	ck_assert_uint_eq(ns, 45837906927ull);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("1.5s", &ns), 0);
	ck_assert_uint_eq(ns, 1500000000ull);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("0s", &ns), 0);
	ck_assert_uint_eq(ns, 0);
	ns = 7;
	ck_assert_int_eq(gb__gemini_parse_proto_duration("", &ns), -1);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("s", &ns), -1);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("40", &ns), -1);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("-1s", &ns), -1);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("1.5ms", &ns), -1);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("1.s", &ns), -1);
	ck_assert_int_eq(gb__gemini_parse_proto_duration("99999999999999999999s", &ns), -1);
	ck_assert_uint_eq(ns, 7);
}
END_TEST

START_TEST(error_shapes)
{
	static const char minute[] = "{\"error\":{\"code\":429,\"message\":\"Slow\\ndown\","
	    "\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":"
	    "\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[{\"quotaId\":"
	    "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\"}]},{\"@type\":"
	    "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"45.837906927s\"}]}}";
	static const char day[] = "{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":"
	    "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
	    "\"violations\":[{\"quotaId\":\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\"}]}]}}";
	gb_gemini_result res = { 0 };
	uint64_t delay;
	int per_day;

	gb__gemini_parse_error(429, minute, sizeof(minute) - 1, &res, &delay, &per_day);
	ck_assert_uint_eq(delay, 45837906927ull);
	ck_assert_int_eq(per_day, 0);
	ck_assert_str_eq(res.api_status, "RESOURCE_EXHAUSTED");
	ck_assert_str_eq(res.message, "Gemini API error 429 RESOURCE_EXHAUSTED: Slow down");

	gb__gemini_parse_error(429, day, sizeof(day) - 1, &res, &delay, &per_day);
	ck_assert_uint_eq(delay, 0);
	ck_assert_int_eq(per_day, 1);

	gb__gemini_parse_error(502, "<html>bad gateway</html>", 24, &res, &delay, &per_day);
	ck_assert_str_eq(res.api_status, "");
	ck_assert_ptr_nonnull(strstr(res.message, "HTTP 502 without a Gemini error body"));

	/* Wrong types are ignored, not trusted. */
	gb__gemini_parse_error(500, "{\"error\":{\"message\":7,\"status\":[],\"details\":{}}}", 49,
	    &res, &delay, &per_day);
	ck_assert_str_eq(res.api_status, "");
	ck_assert_uint_eq(delay, 0);
}
END_TEST

START_TEST(response_shapes)
{
	static const char ok[] = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"thinking\","
	    "\"thought\":true},{\"text\":\"Hello \"},{\"text\":\"world\"}]},\"finishReason\":\"STOP\"}],"
	    "\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":3,"
	    "\"cachedContentTokenCount\":4,\"thoughtsTokenCount\":5,\"totalTokenCount\":18}}";
	static const char blocked[] = "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},"
	    "\"usageMetadata\":{\"promptTokenCount\":\"many\",\"totalTokenCount\":-3}}";
	gb_gemini_result res = { 0 };

	ck_assert_int_eq(gb__gemini_parse_response(ok, sizeof(ok) - 1, &res), GB__GEMINI_OK);
	ck_assert_str_eq(res.text, "Hello world");
	ck_assert_str_eq(res.finish_reason, "STOP");
	ck_assert_int_eq(res.usage.prompt, 10);
	ck_assert_int_eq(res.usage.candidates, 3);
	ck_assert_int_eq(res.usage.cached, 4);
	ck_assert_int_eq(res.usage.thoughts, 5);
	ck_assert_int_eq(res.usage.total, 18);
	gb__gemini_result_fini(&res);

	ck_assert_int_eq(gb__gemini_parse_response(blocked, sizeof(blocked) - 1, &res), GB__GEMINI_OK);
	ck_assert_ptr_null(res.text);
	ck_assert_str_eq(res.block_reason, "SAFETY");
	ck_assert_int_eq(res.usage.prompt, 0);
	ck_assert_int_eq(res.usage.total, 0);
	gb__gemini_result_fini(&res);

	ck_assert_int_eq(gb__gemini_parse_response("{\"candidates\":[]}", 17, &res),
	    GB__GEMINI_E_RESPONSE);
	ck_assert_int_eq(gb__gemini_parse_response("[1,2]", 5, &res), GB__GEMINI_E_RESPONSE);
	ck_assert_int_eq(gb__gemini_parse_response("{\"cand", 6, &res), GB__GEMINI_E_RESPONSE);
	ck_assert_ptr_nonnull(strstr(res.message, "not valid JSON"));
	gb__gemini_result_fini(&res);
}
END_TEST

/* ---- the reply read in place against jansson ---- */

static const char *const replies[] = {
	"{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"[\\n  \\\"Answer 1\\\",\\n"
	    "  \\\"Answer 2\\\"\\n]\"}]},\"index\":0,\"finishReason\":\"STOP\"}],\"usageMetadata\":"
	    "{\"promptTokenCount\":71,\"totalTokenCount\":107,\"candidatesTokenCount\":36},"
	    "\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"stub\"}",
	" {\"candidates\" : [ {\"content\": {\"parts\": [{\"text\": \"a\\u00e9\\u20ac\\ud83d\\ude00\\/\\b\\f\\r\\t\"},"
	    " {\"text\": \"x\", \"thought\": true}, {\"text\": \"y\", \"thought\": false}, 7, [], "
	    "{\"thought\": true}, {\"text\": 3}, {\"text\": \"\"}]}, \"finishReason\": \"MAX\\u005fTOKENS\"}, "
	    "\"second\"], \"usageMetadata\": {\"promptTokenCount\": -4, \"candidatesTokenCount\": 1.5, "
	    "\"thoughtsTokenCount\": 999999999999999999, \"cachedContentTokenCount\": -0, "
	    "\"totalTokenCount\": 1e2}} \r\n",
	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"first\"}]},\"content\":{\"parts\":"
	    "[{\"text\":\"last content wins\",\"text\":\"last text wins\"}]},\"finishReason\":\"A\","
	    "\"finishReason\":\"B\"}],\"candidates\":[{\"finishReason\":\"LATER\"}],"
	    "\"promptFeedback\":{\"blockReason\":\"OTHER\\u0001\\u007f\",\"blockReason\":"
	    "\"SAFETY_WITH_A_VERY_LONG_NAME_THAT_DOES_NOT_FIT_THE_FIELD_AT_ALL_0123456789abcdef\"}}",
	"{\"candidates\":[{\"content\":{\"parts\":{\"text\":\"not an array\"}},\"finishReason\":7}],"
	    "\"promptFeedback\":\"none\",\"usageMetadata\":[1]}",
	"{\"candidates\":[{\"content\":\"text\"}], \"x\": [0, -0.5e-3, 1E+5, 12345678901234567, "
	    "true, false, null, {\"deep\": [[[[{}]]]]}]}",
	"{\"candidates\":[1]}",
	"{\"candidates\":{}}",
	"{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}",
	"{}",
	"[]",
	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"nul \\u0000 inside\"}]}}]}",
	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lone \\ud800 surrogate\"}]}}]}",
	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"low \\udc00 first\"}]}}]}",
	"{\"candidates\":[{\"content\":{\"parts\":[{\"te\\u0078t\":\"escaped key\"}]}}]}",
	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"raw\ttab\"}]}}]}",
	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}]}}]}",
	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"bad \xc3\x28 utf-8\"}]}}]}",
	"{\"candidates\":[{\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"totalTokenCount\":"
	    "99999999999999999999}}",
	"{\"candidates\":[{\"finishReason\":\"STOP\"}],\"n\":1e400}",
	"{\"candidates\":[{\"finishReason\":\"STOP\"}],\"n\":1e-400}",
	"{\"candidates\":[{\"finishReason\":\"STOP\"}],\"n\":012}",
	"{\"candidates\":[{\"finishReason\":\"STOP\"},]}",
	"{\"candidates\":[{\"finishReason\":\"STOP\"}]} x",
	"{\"candidates\":[{\"finishReason\":\"STOP\"}]}{}",
};

static const char *const fixtures[] = { "basic-reply-short.json", "finish-reason-safety.json",
	"max-tokens-thinking.json", "thinking-thought-summary.json", "api-key-invalid.json",
	"api-key-expired.json", "service-disabled.json" };

/* Both readings of the same bytes give the same result, message included. */
static void
same_reading(const char *body, size_t len)
{
	gb_gemini_result a = { 0 }, b = { 0 };
	int ra = gb__gemini_parse_response(body, len, &a);
	int rb = gb__gemini_parse_response_jansson(body, len, &b);

	ck_assert_int_eq(ra, rb);
	ck_assert_int_eq(a.status, b.status);
	ck_assert_msg((a.text == NULL) == (b.text == NULL), "text %s vs %s in %.*s",
	    a.text != NULL ? a.text : "NULL", b.text != NULL ? b.text : "NULL", (int)len, body);
	if (a.text != NULL)
		ck_assert_str_eq(a.text, b.text);
	ck_assert_str_eq(a.message, b.message);
	ck_assert_str_eq(a.finish_reason, b.finish_reason);
	ck_assert_str_eq(a.block_reason, b.block_reason);
	ck_assert_mem_eq(&a.usage, &b.usage, sizeof(a.usage));
	gb__gemini_result_fini(&a);
	gb__gemini_result_fini(&b);
}

/* Every reply above, every recorded one, and each of them cut short at every byte and with
 * bytes replaced one at a time, read both ways. */
START_TEST(replies_read_in_place_as_jansson_reads_them)
{
	static const char swaps[] = { '"', '\\', '}', ',', '0', '\x80', '\0' };
	char path[512], *buf = malloc(1 << 16);
	size_t n_all = sizeof(replies) / sizeof(replies[0]) + sizeof(fixtures) / sizeof(fixtures[0]);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < n_all; i++) {
		size_t len;
		if (i < sizeof(replies) / sizeof(replies[0])) {
			len = strlen(replies[i]);
			memcpy(buf, replies[i], len);
		} else {
			FILE *f;
			snprintf(path, sizeof(path), "%s/%s", GB_FIXTURES,
			    fixtures[i - sizeof(replies) / sizeof(replies[0])]);
			ck_assert_msg((f = fopen(path, "r")) != NULL, "cannot open %s", path);
			len = fread(buf, 1, (1 << 16) - 1, f);
			fclose(f);
		}
		same_reading(buf, len);
		for (size_t cut = 0; cut < len; cut++)
			same_reading(buf, cut);
		for (size_t at = 0; at < len; at++) {
			char was = buf[at];
			for (size_t k = 0; k < sizeof(swaps); k++) {
				buf[at] = swaps[k];
				same_reading(buf, len);
			}
			buf[at] = was;
		}
	}
	free(buf);
}
END_TEST

START_TEST(answers_and_usage)
{
	gb_gemini *c = start(NULL, 3, 0);
	gb_gemini_result res = { 0 };
	json_t *arr, *log;

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	arr = json_loads(res.text, 0, NULL);
	ck_assert_uint_eq(json_array_size(arr), 3);
	ck_assert_str_eq(json_string_value(json_array_get(arr, 0)), "Answer to question 1: What is it?");
	ck_assert_str_eq(json_string_value(json_array_get(arr, 2)), "Answer to question 3: When?");
	json_decref(arr);
	ck_assert_str_eq(res.finish_reason, "STOP");
	/* The stand-in bills ceil(chars / 4) for the prompt and for the answer. */
	ck_assert_int_eq(res.usage.prompt, (int64_t)(33 + sizeof(batch_prompt) - 1 + 3) / 4);
	ck_assert_int_eq(res.usage.candidates, (int64_t)(strlen(res.text) + 3) / 4);
	ck_assert_int_eq(res.usage.total, res.usage.prompt + res.usage.candidates);
	ck_assert_uint_eq(res.attempts, 1);
	gb__gemini_result_fini(&res);

	/* Keep-alive: later calls reuse the connection. */
	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	ck_assert_uint_eq(gb__gemini_connections(c), 1);
	gb__gemini_result_fini(&res);

	log = stub_requests(&stub);
	ck_assert_uint_eq(json_array_size(log), 3);
	ck_assert_int_eq(log_int(log, 0, "questions"), 3);
	ck_assert(json_is_true(json_object_get(json_array_get(log, 0), "key_ok")));
	ck_assert(json_is_true(json_object_get(json_array_get(log, 0), "json")));
	json_decref(log);
	finish(c);
}
END_TEST

/* Runs the exchanges xs[0..n) on multi until each is done; their results go into rs. */
static void
run_xfers(CURLM *multi, gb_gemini_xfer **xs, gb_gemini_result *rs, size_t n)
{
	uint64_t deadline = gb__clock_mono_ns() + 10 * GB_NS_PER_SEC, delay;
	size_t left = n;
	int running, nmsg;
	CURLMsg *m;

	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(curl_multi_add_handle(multi, gb__gemini_xfer_easy(xs[i])), CURLM_OK);
	while (left > 0) {
		ck_assert_msg(gb__clock_mono_ns() < deadline, "the exchanges did not finish");
		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &nmsg)) != NULL) {
			for (size_t i = 0; m->msg == CURLMSG_DONE && i < n; i++) {
				if (m->easy_handle != gb__gemini_xfer_handle(xs[i]))
					continue;
				curl_multi_remove_handle(multi, m->easy_handle);
				ck_assert_int_eq(gb__gemini_xfer_done(xs[i], m->data.result, &rs[i], &delay), 0);
				left--;
			}
		}
		if (left > 0)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
}

/* Exchanges on a caller's multi handle: an exchange freed leaves its easy handle to the next
 * one, so the handles are made once, and the connections are kept alive. */
START_TEST(exchanges_reuse_easy_handles)
{
	gb_gemini *c = start(NULL, 3, 0);
	gb_gemini_part part = { NULL, batch_prompt, sizeof(batch_prompt) - 1, NULL };
	gb_gemini_request rq = { .parts = &part, .n_parts = 1, .json = 1 };
	gb_gemini_result rs[2] = { { 0 }, { 0 } };
	gb_gemini_xfer *xs[2];
	CURLM *multi = curl_multi_init();
	CURL *first[2];

	ck_assert_ptr_nonnull(multi);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < 2; i++)
			ck_assert_ptr_nonnull(xs[i] = gb__gemini_xfer_new(c, &rq, &rs[i]));
		ck_assert_ptr_ne(gb__gemini_xfer_handle(xs[0]), gb__gemini_xfer_handle(xs[1]));
		for (size_t i = 0; round == 0 && i < 2; i++)
			first[i] = gb__gemini_xfer_handle(xs[i]);
		for (size_t i = 0; round > 0 && i < 2; i++)
			ck_assert(gb__gemini_xfer_handle(xs[i]) == first[0] ||
			    gb__gemini_xfer_handle(xs[i]) == first[1]);
		run_xfers(multi, xs, rs, 2);
		for (size_t i = 0; i < 2; i++) {
			ck_assert_int_eq(rs[i].status, GB__GEMINI_OK);
			ck_assert_str_eq(rs[i].finish_reason, "STOP");
			ck_assert_ptr_nonnull(strstr(rs[i].text, "Answer to question 3: When?"));
			ck_assert_uint_eq(rs[i].attempts, 1);
			gb__gemini_xfer_free(xs[i]);
			gb__gemini_result_fini(&rs[i]);
		}
	}
	ck_assert_uint_le(gb__gemini_connections(c), 2);
	curl_multi_cleanup(multi);
	finish(c);
}
END_TEST

START_TEST(retry_honours_retry_delay)
{
	const char *args[] = { "--fault", "429:1:delay=0.6s", NULL };
	gb_gemini *c = start(args, 3, 0);
	gb_gemini_result res = { 0 };
	json_t *log;
	int64_t gap;

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	ck_assert_uint_eq(res.attempts, 2);
	ck_assert_uint_eq(res.retryable_errors, 1);
	ck_assert_double_eq_tol(res.retry_delay_seconds, 0.6, 1e-9);
	log = stub_requests(&stub);
	ck_assert_uint_eq(json_array_size(log), 2);
	ck_assert_int_eq(log_int(log, 0, "status"), 429);
	ck_assert_int_eq(log_int(log, 1, "status"), 200);
	/* The second request came at least retryDelay after the first (backoff alone is 20 ms),
	 * and not much more than retryDelay plus its tenth of jitter. */
	gap = log_int(log, 1, "mono_ms") - log_int(log, 0, "mono_ms");
	ck_assert_int_ge(gap, 600);
	ck_assert_int_le(gap, 600 + 60 + 250);
	json_decref(log);
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(retry_5xx_with_backoff)
{
	const char *args[] = { "--fault", "500", "--fault", "503", "--fault", "504", NULL };
	gb_gemini *c = start(args, 5, 0);
	gb_gemini_result res = { 0 };

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	ck_assert_uint_eq(res.attempts, 4);
	ck_assert_uint_eq(res.retryable_errors, 3);
	/* Equal jitter: each wait is between half and all of 20, 40, 80 ms. */
	ck_assert_double_ge(res.backoff_seconds, 0.070);
	ck_assert_double_le(res.backoff_seconds, 0.140 + 0.001);
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(gives_up_after_max_attempts)
{
	const char *args[] = { "--fault", "503:0", NULL };
	gb_gemini *c = start(args, 3, 0);
	gb_gemini_result res = { 0 };
	json_t *log;

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_E_API);
	ck_assert_int_eq(res.http_status, 503);
	ck_assert_str_eq(res.api_status, "UNAVAILABLE");
	ck_assert_uint_eq(res.attempts, 3);
	ck_assert_ptr_nonnull(strstr(res.message, "The model is overloaded"));
	ck_assert_ptr_nonnull(strstr(res.message, "gave up after 3 attempts"));
	ck_assert_int_eq(gb__gemini_is_fatal(&res), 0);
	log = stub_requests(&stub);
	ck_assert_uint_eq(json_array_size(log), 3);
	json_decref(log);
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(no_retry_on_400)
{
	const char *args[] = { "--fault", "400", NULL };
	gb_gemini *c = start(args, 5, 0);
	gb_gemini_result res = { 0 };
	json_t *log;

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_E_API);
	ck_assert_int_eq(res.http_status, 400);
	ck_assert_str_eq(res.api_status, "INVALID_ARGUMENT");
	ck_assert_uint_eq(res.attempts, 1);
	ck_assert_uint_eq(res.non_retryable_errors, 1);
	ck_assert_str_eq(res.message,
	    "Gemini API error 400 INVALID_ARGUMENT: Request contains an invalid argument.");
	log = stub_requests(&stub);
	ck_assert_uint_eq(json_array_size(log), 1);
	json_decref(log);
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(per_day_quota_is_fatal)
{
	const char *args[] = { "--fault", "quota:0:delay=0.1s", NULL };
	gb_gemini *c = start(args, 5, 0);
	gb_gemini_result res = { 0 };

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_E_QUOTA_DAY);
	ck_assert_uint_eq(res.attempts, 1);
	ck_assert_int_eq(gb__gemini_is_fatal(&res), 1);
	ck_assert_ptr_nonnull(strstr(res.message, "daily quota exhausted"));
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(retry_delay_beyond_limit_is_not_waited)
{
	const char *args[] = { "--fault", "429:1:delay=700s", NULL };
	gb_gemini *c = start(args, 5, 0);
	gb_gemini_result res = { 0 };

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_E_API);
	ck_assert_uint_eq(res.attempts, 1);
	ck_assert_ptr_nonnull(strstr(res.message, "asks to wait 700s"));
	ck_assert_double_lt(res.seconds, 5);
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(timeout_is_retried)
{
	const char *args[] = { "--fault", "slow:1:delay=3s", NULL };
	gb_gemini *c = start(args, 3, 300 * GB_NS_PER_MS);
	gb_gemini_result res = { 0 };

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	ck_assert_uint_eq(res.attempts, 2);
	ck_assert_uint_eq(res.retryable_errors, 1);
	ck_assert_double_ge(res.seconds, 0.3);
	ck_assert_double_lt(res.seconds, 2.5);
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(timeout_reported)
{
	const char *args[] = { "--fault", "slow:0:delay=3s", NULL };
	gb_gemini *c = start(args, 2, 200 * GB_NS_PER_MS);
	gb_gemini_result res = { 0 };

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_E_TIMEOUT);
	ck_assert_uint_eq(res.attempts, 2);
	ck_assert_ptr_nonnull(strstr(res.message, "within 0.2s (timeout)"));
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(odd_answers)
{
	const char *args[] = { "--fault", "malformed", "--fault", "maxtokens", "--fault", "blocked",
		"--fault", "safety", NULL };
	gb_gemini *c = start(args, 3, 0);
	gb_gemini_result res = { 0 };

	ck_assert_int_eq(ask(c, &res), GB__GEMINI_E_RESPONSE);
	ck_assert_uint_eq(res.attempts, 1);
	ck_assert_ptr_nonnull(strstr(res.message, "not valid JSON"));
	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	ck_assert_ptr_null(res.text);
	ck_assert_str_eq(res.finish_reason, "MAX_TOKENS");
	ck_assert_int_gt(res.usage.prompt, 0);
	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	ck_assert_ptr_null(res.text);
	ck_assert_str_eq(res.block_reason, "SAFETY");
	ck_assert_str_eq(res.finish_reason, "");
	ck_assert_int_eq(ask(c, &res), GB__GEMINI_OK);
	ck_assert_str_eq(res.finish_reason, "SAFETY");
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(wrong_key_is_fatal_and_not_echoed)
{
	char err[256];
	gb_gemini_opts o = { .api_key = "sk-wrong-secret-987", .model = "gemini-2.0-flash",
		.max_attempts = 3 };
	gb_gemini *c;
	gb_gemini_result res = { 0 };

	ck_assert_int_eq(stub_start(&stub, NULL), 0);
	o.api_base = stub.base;
	c = gb__gemini_new(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(ask(c, &res), GB__GEMINI_E_API);
	ck_assert_int_eq(res.http_status, 400);
	ck_assert_str_eq(res.reason, "API_KEY_INVALID");
	ck_assert_ptr_nonnull(strstr(res.message, "set GEMINI_API_KEY"));
	ck_assert_uint_eq(res.attempts, 1);
	ck_assert_int_eq(gb__gemini_is_fatal(&res), 1);
	ck_assert_ptr_null(strstr(res.message, "sk-wrong-secret-987"));
	gb__gemini_result_fini(&res);
	finish(c);
}
END_TEST

START_TEST(unreachable_and_bad_options)
{
	char err[256];
	gb_gemini_opts o = { .api_key = "k", .model = "gemini-2.0-flash", .max_attempts = 2,
		.backoff_base_ns = GB_NS_PER_MS, .api_base = "http://127.0.0.1:1" };
	gb_gemini *c = gb__gemini_new(&o, err, sizeof(err));
	gb_gemini_result res = { 0 };

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(ask(c, &res), GB__GEMINI_E_TRANSPORT);
	ck_assert_uint_eq(res.attempts, 2);
	ck_assert_ptr_nonnull(strstr(res.message, "cannot talk to http://127.0.0.1:1"));
	gb__gemini_result_fini(&res);
	gb__gemini_free(c);

	o.model = "../etc";
	ck_assert_ptr_null(gb__gemini_new(&o, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "\"../etc\""));
	o.model = "gemini-2.0-flash";
	o.api_base = "ftp://x";
	ck_assert_ptr_null(gb__gemini_new(&o, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "\"ftp://x\""));
	o.api_key = NULL;
	ck_assert_ptr_null(gb__gemini_new(&o, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "GEMINI_API_KEY"));
}
END_TEST

static Suite *
gemini_client_suite(void)
{
	Suite *s = suite_create("gemini_client");
	TCase *pure = tcase_create("parsing");
	TCase *live = tcase_create("against the stand-in");
	TCase *in_place = tcase_create("replies read in place");

	tcase_add_test(pure, request_json_shape);
	tcase_add_loop_test(pure, request_text_is_janssons_dump, 0,
	    (int)(sizeof(text_cases) / sizeof(text_cases[0])));
	tcase_add_test(pure, proto_durations);
	tcase_add_test(pure, error_shapes);
	tcase_add_test(pure, response_shapes);
	tcase_add_test(live, answers_and_usage);
	tcase_add_test(live, exchanges_reuse_easy_handles);
	tcase_add_test(live, retry_honours_retry_delay);
	tcase_add_test(live, retry_5xx_with_backoff);
	tcase_add_test(live, gives_up_after_max_attempts);
	tcase_add_test(live, no_retry_on_400);
	tcase_add_test(live, per_day_quota_is_fatal);
	tcase_add_test(live, retry_delay_beyond_limit_is_not_waited);
	tcase_add_test(live, timeout_is_retried);
	tcase_add_test(live, timeout_reported);
	tcase_add_test(live, odd_answers);
	tcase_add_test(live, wrong_key_is_fatal_and_not_echoed);
	tcase_add_test(live, unreachable_and_bad_options);
	tcase_set_timeout(live, 30);
	tcase_add_test(in_place, replies_read_in_place_as_jansson_reads_them);
	tcase_set_timeout(in_place, 300);
	suite_add_tcase(s, pure);
	suite_add_tcase(s, in_place);
	suite_add_tcase(s, live);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = gemini_client_suite };
