/* test_gemini_files.c - the Files API pieces: the response headers the upload protocol reads
 * (X-Goog-Upload-URL and the rest: case-insensitive, length-checked), the File object, the
 * fileData part of a request, and an upload against a real gbatch-stub-gemini process. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "clock.h"
#include "gemini_files.h"
#include "stub_proc.h"

#define HDR(s) (s), sizeof(s) - 1

START_TEST(upload_url_header_is_found_whatever_its_case)
{
	char v[64];

	ck_assert_int_eq(gb__files_header_value(HDR("X-Goog-Upload-URL: http://h/u?id=1\r\n"),
	    "x-goog-upload-url", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "http://h/u?id=1");
	ck_assert_int_eq(gb__files_header_value(HDR("x-goog-upload-url:\thttp://h/u \r\n"),
	    "X-Goog-Upload-URL", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "http://h/u");
	ck_assert_int_eq(gb__files_header_value(HDR("X-GOOG-UPLOAD-URL:http://h/x\n"),
	    "x-goog-upload-url", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "http://h/x");
}
END_TEST

START_TEST(other_headers_are_not_taken_for_it)
{
	char v[64] = "untouched";

	ck_assert_int_eq(gb__files_header_value(HDR("X-Goog-Upload-URLs: http://h/\r\n"),
	    "x-goog-upload-url", v, sizeof(v)), 0);
	ck_assert_int_eq(gb__files_header_value(HDR("X-Goog-Upload-Status: active\r\n"),
	    "x-goog-upload-url", v, sizeof(v)), 0);
	ck_assert_int_eq(gb__files_header_value(HDR("HTTP/1.1 200 OK\r\n"), "x-goog-upload-url", v,
	    sizeof(v)), 0);
	ck_assert_int_eq(gb__files_header_value(HDR("X-Goog-Upload"), "x-goog-upload-url", v,
	    sizeof(v)), 0);
	ck_assert_int_eq(gb__files_header_value("", 0, "x-goog-upload-url", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "untouched");
}
END_TEST

START_TEST(a_value_too_long_empty_or_with_controls_is_refused)
{
	char v[8] = "untouch";

	/* 7 bytes fit in 8, 8 do not */
	ck_assert_int_eq(gb__files_header_value(HDR("X-A: 1234567\r\n"), "x-a", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "1234567");
	strcpy(v, "untouch");
	ck_assert_int_eq(gb__files_header_value(HDR("X-A: 12345678\r\n"), "x-a", v, sizeof(v)), -1);
	ck_assert_str_eq(v, "untouch");
	ck_assert_int_eq(gb__files_header_value(HDR("X-A:   \r\n"), "x-a", v, sizeof(v)), -1);
	ck_assert_int_eq(gb__files_header_value(HDR("X-A: a\x01z\r\n"), "x-a", v, sizeof(v)), -1);
	ck_assert_int_eq(gb__files_header_value(HDR("X-A: a\rz\r\n"), "x-a", v, sizeof(v)), -1);
	ck_assert_str_eq(v, "untouch");
}
END_TEST

static json_t *
load(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	ck_assert_msg(v != NULL, "%s", jerr.text);
	return v;
}

START_TEST(file_object_as_the_upload_and_get_answer_it)
{
	gb_gemini_file f;
	char err[256];
	json_t *v = load("{\"file\": {\"name\": \"files/abc-123\", \"displayName\": \"doc.pdf\","
	    "\"mimeType\": \"application/pdf\", \"sizeBytes\": \"2147483648\","
	    "\"createTime\": \"2025-01-01T00:00:00Z\", \"state\": \"PROCESSING\","
	    "\"uri\": \"https://generativelanguage.googleapis.com/v1beta/files/abc-123\","
	    "\"source\": \"UPLOADED\"}}");

	ck_assert_int_eq(gb__files_parse_file(v, &f, err, sizeof(err)), 0);
	ck_assert_str_eq(f.name, "files/abc-123");
	ck_assert_str_eq(f.uri, "https://generativelanguage.googleapis.com/v1beta/files/abc-123");
	ck_assert_str_eq(f.mime_type, "application/pdf");
	ck_assert_str_eq(f.state, "PROCESSING");
	ck_assert_int_eq(f.size_bytes, 2147483648LL);
	ck_assert_str_eq(f.error, "");
	json_decref(v);
	/* a GET answers the File itself; sizeBytes may come as a number */
	v = load("{\"name\": \"files/x\", \"uri\": \"http://127.0.0.1:9/v1beta/files/x\","
	    "\"state\": \"FAILED\", \"sizeBytes\": 5, \"error\": {\"code\": 400, \"message\":"
	    "\"bad\\nvideo\"}}");
	ck_assert_int_eq(gb__files_parse_file(v, &f, err, sizeof(err)), 0);
	ck_assert_str_eq(f.state, "FAILED");
	ck_assert_int_eq(f.size_bytes, 5);
	ck_assert_str_eq(f.error, "bad video");
	ck_assert_str_eq(f.mime_type, "");
	json_decref(v);
}
END_TEST

START_TEST(file_objects_of_the_wrong_shape_are_refused)
{
	static const char *const bad[] = {
		"[]",
		"{\"file\": {}}",
		"{\"name\": \"files/x\"}",
		"{\"name\": \"other/x\", \"uri\": \"https://h/x\"}",
		"{\"name\": \"files/\", \"uri\": \"https://h/x\"}",
		"{\"name\": \"files/A_B\", \"uri\": \"https://h/x\"}",
		"{\"name\": \"files/x\", \"uri\": \"ftp://h/x\"}",
		"{\"name\": \"files/x\", \"uri\": \"https://h/x y\"}",
		"{\"name\": \"files/x\", \"uri\": 5}",
		"{\"name\": \"files/x\", \"uri\": \"https://h/x\", \"state\": \"active!\"}",
		"{\"name\": \"files/x\", \"uri\": \"https://h/x\", \"state\": 1}",
		"{\"name\": \"files/x\", \"uri\": \"https://h/x\", \"sizeBytes\": \"-1\"}",
		"{\"name\": \"files/x\", \"uri\": \"https://h/x\", \"sizeBytes\": \"12a\"}",
		"{\"name\": \"files/x\", \"uri\": \"https://h/x\", \"sizeBytes\": \"99999999999999999999\"}",
		"{\"name\": \"files/x\", \"uri\": \"https://h/x\", \"mimeType\": \"a\\u0001b\"}",
	};
	gb_gemini_file f;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *v = load(bad[i]);
		err[0] = '\0';
		ck_assert_msg(gb__files_parse_file(v, &f, err, sizeof(err)) == -1, "took %s", bad[i]);
		ck_assert_msg(err[0] != '\0', "no reason for %s", bad[i]);
		json_decref(v);
	}
}
END_TEST

START_TEST(names_and_uris_longer_than_their_room_are_refused)
{
	char text[1400], name[80];
	gb_gemini_file f;
	char err[256];
	json_t *v;

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"name\": \"files/%s\", \"uri\": \"https://h/x\"}", name);
	v = load(text);
	ck_assert_int_eq(gb__files_parse_file(v, &f, err, sizeof(err)), -1);
	json_decref(v);
	char uri[600];
	memset(uri, 'u', sizeof(uri) - 1);
	uri[sizeof(uri) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"name\": \"files/x\", \"uri\": \"https://%s\"}", uri);
	v = load(text);
	ck_assert_int_eq(gb__files_parse_file(v, &f, err, sizeof(err)), -1);
	json_decref(v);
}
END_TEST

START_TEST(a_file_part_is_sent_as_file_data)
{
	gb_gemini_part parts[2] = { { "video/mp4", NULL, 0, "https://h/v1beta/files/x" },
		{ NULL, "Question: what?", 15, NULL } };
	gb_gemini_request rq = { .parts = parts, .n_parts = 2 };
	json_t *req = gb__gemini_request_json(&rq);
	json_t *p0 = json_array_get(json_object_get(json_array_get(json_object_get(req, "contents"),
	    0), "parts"), 0);

	ck_assert_ptr_nonnull(req);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p0, "fileData"),
	    "fileUri")), "https://h/v1beta/files/x");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p0, "fileData"),
	    "mimeType")), "video/mp4");
	ck_assert_ptr_null(json_object_get(p0, "inlineData"));
	ck_assert_int_eq(json_object_size(p0), 1);
	json_decref(req);
	parts[0].mime_type = NULL; /* text content uploaded: text/plain */
	req = gb__gemini_request_json(&rq);
	p0 = json_array_get(json_object_get(json_array_get(json_object_get(req, "contents"), 0),
	    "parts"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p0, "fileData"),
	    "mimeType")), "text/plain");
	json_decref(req);
}
END_TEST

static struct stub_proc stub;

START_TEST(an_upload_from_memory_reaches_the_stand_in_whole)
{
	static const char data[] = "Forty bytes of content, for a test: here.";
	const char *const args[] = { "--files-processing", "1", NULL };
	gb_gemini_opts o = { .api_key = STUB_KEY, .model = "gemini-2.0-flash",
		.backoff_base_ns = 20 * GB_NS_PER_MS };
	gb_files_source src = { -1, data, sizeof(data) - 1, "text/plain", "t.txt" };
	gb_files_wait w = { .first_ns = GB_NS_PER_MS };
	gb_gemini_result res = { 0 };
	gb_gemini_file f;
	char err[256];
	gb_gemini *c;
	json_t *log;

	ck_assert_int_eq(stub_start(&stub, args), 0);
	o.api_base = stub.base;
	ck_assert_ptr_nonnull(c = gb__gemini_new(&o, err, sizeof(err)));
	ck_assert_int_eq(gb__files_upload(c, NULL, &src, &f, &res), GB__GEMINI_OK);
	ck_assert_str_eq(f.state, "PROCESSING");
	ck_assert_int_eq(f.size_bytes, (int64_t)sizeof(data) - 1);
	ck_assert_int_eq(gb__files_wait_active(c, NULL, &f, &w, &res), GB__GEMINI_OK);
	ck_assert_str_eq(f.state, "ACTIVE");
	ck_assert_int_eq(gb__files_delete(c, f.name, &res), GB__GEMINI_OK);
	ck_assert_int_eq(gb__files_delete(c, f.name, &res), GB__GEMINI_E_API);
	ck_assert_int_eq(res.http_status, 404);
	gb__gemini_result_fini(&res);
	log = stub_requests(&stub);
	ck_assert_int_eq(json_array_size(log), 6); /* start, finalize, 2 GETs, 2 DELETEs */
	json_t *fin = json_array_get(log, 1);
	ck_assert_str_eq(json_string_value(json_object_get(fin, "command")), "upload, finalize");
	ck_assert_int_eq(json_integer_value(json_object_get(fin, "size_received")), 41);
	ck_assert_str_eq(json_string_value(json_object_get(fin, "adler32")), "3a800e8c");
	json_decref(log);
	gb__gemini_free(c);
	ck_assert_int_eq(stub_stop(&stub), 0);
}
END_TEST

/* Uploads a few bytes to a stand-in started with args; the client's backoff short. */
static gb_gemini *
upload_some(const char *const *args, gb_gemini_file *f)
{
	gb_gemini_opts o = { .api_key = STUB_KEY, .model = "gemini-2.0-flash",
		.backoff_base_ns = 20 * GB_NS_PER_MS };
	gb_files_source src = { -1, "some bytes", 10, NULL, NULL };
	gb_gemini_result res = { 0 };
	char err[256];
	gb_gemini *c;

	ck_assert_int_eq(stub_start(&stub, args), 0);
	o.api_base = stub.base;
	ck_assert_ptr_nonnull(c = gb__gemini_new(&o, err, sizeof(err)));
	ck_assert_int_eq(gb__files_upload(c, NULL, &src, f, &res), GB__GEMINI_OK);
	gb__gemini_result_fini(&res);
	return c;
}

START_TEST(a_file_still_processing_at_the_deadline_is_a_timeout_naming_it)
{
	const char *const args[] = { "--files-processing", "1000", NULL };
	gb_files_wait w = { .first_ns = GB_NS_PER_MS, .max_ns = 4 * GB_NS_PER_MS,
		.deadline_ns = 60 * GB_NS_PER_MS };
	gb_gemini_result res = { 0 };
	gb_gemini_file f;
	gb_gemini *c = upload_some(args, &f);
	json_t *log;

	ck_assert_int_eq(gb__files_wait_active(c, NULL, &f, &w, &res), GB__GEMINI_E_TIMEOUT);
	ck_assert_str_eq(res.message, "file files/stub-1 is still PROCESSING after 0.06s");
	log = stub_requests(&stub);
	/* polls after 1, 2, 4, 4, ... ms: bounded by the deadline, at least a few of them */
	ck_assert_uint_ge(json_array_size(log), 2 + 3);
	ck_assert_uint_le(json_array_size(log), 2 + 60);
	json_decref(log);
	gb__gemini_result_fini(&res);
	gb__gemini_free(c);
	ck_assert_int_eq(stub_stop(&stub), 0);
}
END_TEST

START_TEST(a_failed_file_is_an_error_naming_it_and_the_reason)
{
	const char *const args[] = { "--files-processing", "1", "--files-fault", "failed", NULL };
	gb_files_wait w = { .first_ns = GB_NS_PER_MS };
	gb_gemini_result res = { 0 };
	gb_gemini_file f;
	gb_gemini *c = upload_some(args, &f);

	ck_assert_int_eq(gb__files_wait_active(c, NULL, &f, &w, &res), GB__GEMINI_E_API);
	ck_assert_str_eq(res.message, "file files/stub-1 is FAILED: The file could not be processed "
	    "(stand-in fault).");
	ck_assert_str_eq(f.state, "FAILED");
	gb__gemini_result_fini(&res);
	gb__gemini_free(c);
	ck_assert_int_eq(stub_stop(&stub), 0);
}
END_TEST

START_TEST(more_than_2_gib_is_refused_before_any_request)
{
	gb_gemini_opts o = { .api_key = STUB_KEY, .model = "gemini-2.0-flash",
		.api_base = "http://127.0.0.1:9" };
	gb_files_source src = { -1, "", GB__FILES_MAX_BYTES + 1, NULL, NULL };
	gb_gemini_result res = { 0 };
	gb_gemini_file f;
	char err[256];
	gb_gemini *c = gb__gemini_new(&o, err, sizeof(err));

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(gb__files_upload(c, NULL, &src, &f, &res), GB__GEMINI_E_REQUEST);
	ck_assert_uint_eq(res.attempts, 0);
	ck_assert_ptr_nonnull(strstr(res.message, "2 GiB"));
	gb__gemini_result_fini(&res);
	gb__gemini_free(c);
}
END_TEST

static Suite *
gemini_files_suite(void)
{
	Suite *s = suite_create("gemini_files");
	TCase *pure = tcase_create("parsing");
	TCase *live = tcase_create("against the stand-in");

	tcase_add_test(pure, upload_url_header_is_found_whatever_its_case);
	tcase_add_test(pure, other_headers_are_not_taken_for_it);
	tcase_add_test(pure, a_value_too_long_empty_or_with_controls_is_refused);
	tcase_add_test(pure, file_object_as_the_upload_and_get_answer_it);
	tcase_add_test(pure, file_objects_of_the_wrong_shape_are_refused);
	tcase_add_test(pure, names_and_uris_longer_than_their_room_are_refused);
	tcase_add_test(pure, a_file_part_is_sent_as_file_data);
	tcase_add_test(pure, more_than_2_gib_is_refused_before_any_request);
	tcase_add_test(live, an_upload_from_memory_reaches_the_stand_in_whole);
	tcase_add_test(live, a_file_still_processing_at_the_deadline_is_a_timeout_naming_it);
	tcase_add_test(live, a_failed_file_is_an_error_naming_it_and_the_reason);
	tcase_set_timeout(live, 30);
	suite_add_tcase(s, pure);
	suite_add_tcase(s, live);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = gemini_files_suite };
