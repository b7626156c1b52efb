/*
 * gemini_batch.c - the Batch API: models.batchGenerateContent, batches.get, .cancel,
 * .list and the responses file's download, on the client's handle with its key, scrubbing and
 * retries. What the server sends is untrusted: every string is bounded and checked, every
 * count of batchStats (an int64: a JSON string) parsed strictly.
 */
#include "gemini_batch.h"
#include "gemini_files.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bsd/string.h>

#include "clock.h"
#include "parse.h"

#define MAX_URL 2048
#define MAX_LIST_PAGES 20

/* ---- states ---- */

static const struct {
	const char *suffix;
	enum gb__batch_state state;
	const char *tag;
} states[] = {
	{ "PENDING", GB__BATCH_PENDING, "pending" },
	{ "RUNNING", GB__BATCH_RUNNING, "running" },
	{ "SUCCEEDED", GB__BATCH_SUCCEEDED, "succeeded" },
	{ "FAILED", GB__BATCH_FAILED, "failed" },
	{ "CANCELLED", GB__BATCH_CANCELLED, "cancelled" },
	{ "EXPIRED", GB__BATCH_EXPIRED, "expired" },
};

enum gb__batch_state
gb__batch_state_of(const char *text)
{
	const char *s;

	if (strncmp(text, "BATCH_STATE_", 12) == 0)
		s = text + 12;
	else if (strncmp(text, "JOB_STATE_", 10) == 0)
		s = text + 10;
	else
		return GB__BATCH_UNKNOWN;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(s, states[i].suffix) == 0)
			return states[i].state;
	return GB__BATCH_UNKNOWN;
}

int
gb__batch_state_final(enum gb__batch_state s)
{
	return s == GB__BATCH_SUCCEEDED || s == GB__BATCH_FAILED || s == GB__BATCH_CANCELLED ||
	    s == GB__BATCH_EXPIRED;
}

const char *
gb__batch_state_tag(enum gb__batch_state s)
{
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (states[i].state == s)
			return states[i].tag;
	return "unknown";
}

static int
id_ok(const char *id, size_t max)
{
	size_t n = strlen(id);

	return n > 0 && n <= max && strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-") == n;
}

int
gb__batch_name_ok(const char *name)
{
	return strncmp(name, "batches/", 8) == 0 && id_ok(name + 8, 100);
}

/* ---- what the server sends ---- */

/* Copies string member key of o into out: 1 copied, 0 absent, -1 not a string, too long or
 * holding a control character. */
static int
take_string(const json_t *o, const char *key, char *out, size_t outlen)
{
	const json_t *v = json_object_get(o, key);
	size_t n;

	if (v == NULL)
		return 0;
	if (!json_is_string(v) || (n = json_string_length(v)) >= outlen)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (iscntrl((unsigned char)json_string_value(v)[i]))
			return -1;
	memcpy(out, json_string_value(v), n + 1);
	return 1;
}

/* An int64 of batchStats: a JSON string of digits (proto3 JSON), a non-negative integer
 * taken too; -1 when absent. Returns 0, or -1 when it is of another shape. */
static int
take_count(const json_t *o, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(o, key);
	char why[96];
	uint64_t n;

	*out = -1;
	if (v == NULL)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		n = (uint64_t)json_integer_value(v);
	else if (!json_is_string(v) || gb__parse_uint(json_string_value(v), 0, INT64_MAX, &n, why,
	    sizeof(why)) != 0)
		return -1;
	*out = (int64_t)n;
	return 0;
}

/* An RFC 3339 time ("2025-07-11T11:36:28.123456Z", "...+05:30"), seconds since the epoch;
 * 0 when it is not one. */
static time_t
parse_time(const char *s)
{
	struct tm tm = { 0 };
	int off = 0, n = 0, oh, om;
	char sign;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return 0;
	s += n;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			;
	if ((*s == '+' || *s == '-') && sscanf(s, "%c%2d:%2d", &sign, &oh, &om) == 3 &&
	    strlen(s) == 6)
		off = (sign == '-' ? -1 : 1) * (oh * 3600 + om * 60);
	else if (strcmp(s, "Z") != 0)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return 0;
	return t - off;
}

/* The error.message of o (an Operation or a batch), made printable, into out. */
static void
take_error(const json_t *o, char *out, size_t outlen)
{
	const json_t *e = json_object_get(o, "error");
	const char *m = json_string_value(json_object_get(e, "message"));

	if (m == NULL || out[0] != '\0')
		return;
	strlcpy(out, m, outlen);
	for (char *p = out; *p != '\0'; p++)
		if (iscntrl((unsigned char)*p))
			*p = ' ';
}

/* The output of a batch (Operation.response, or GenerateContentBatch.output): the responses
 * file's name or the inlined responses. Returns 0, or -1 on a wrong shape. */
static int
take_output(const json_t *out, gb_gemini_batch *b)
{
	json_t *in = json_object_get(out, "inlinedResponses"), *arr;
	int rc;

	if (!json_is_object(out))
		return out == NULL ? 0 : -1;
	if ((rc = take_string(out, "responsesFile", b->responses_file,
	    sizeof(b->responses_file))) < 0 || (rc == 1 && (strncmp(b->responses_file, "files/", 6) != 0 ||
	    !id_ok(b->responses_file + 6, 100))))
		return -1;
	if (in == NULL)
		return 0;
	/* InlinedResponses wraps its array: {"inlinedResponses": {"inlinedResponses": [...]}} */
	arr = json_is_object(in) ? json_object_get(in, "inlinedResponses") : in;
	if (arr == NULL && json_is_object(in))
		arr = json_array();
	else
		json_incref(arr);
	if (!json_is_array(arr)) {
		json_decref(arr);
		return -1;
	}
	json_decref(b->inlined);
	b->inlined = arr;
	return 0;
}

/* The batch's own fields (GenerateContentBatch) of o. */
static int
take_batch(const json_t *o, gb_gemini_batch *b)
{
	const json_t *stats = json_object_get(o, "batchStats");
	char created[48] = "";

	if (take_string(o, "displayName", b->display_name, sizeof(b->display_name)) < 0 ||
	    take_string(o, "state", b->state_text, sizeof(b->state_text)) < 0 ||
	    take_string(o, "createTime", created, sizeof(created)) < 0)
		return -1;
	if (stats != NULL && (!json_is_object(stats) ||
	    take_count(stats, "requestCount", &b->requests) != 0 ||
	    take_count(stats, "successfulRequestCount", &b->succeeded) != 0 ||
	    take_count(stats, "failedRequestCount", &b->failed) != 0 ||
	    take_count(stats, "pendingRequestCount", &b->pending) != 0))
		return -1;
	/* the API leaves a count of zero out of batchStats */
	if (stats != NULL) {
		int64_t *counts[] = { &b->requests, &b->succeeded, &b->failed, &b->pending };
		for (size_t i = 0; i < 4; i++)
			if (*counts[i] < 0)
				*counts[i] = 0;
	}
	if (b->state_text[0] != '\0')
		b->state = gb__batch_state_of(b->state_text);
	if (created[0] != '\0')
		b->create_time = parse_time(created);
	take_error(o, b->error, sizeof(b->error));
	return take_output(json_object_get(o, "output"), b);
}

int
gb__batch_parse(const json_t *v, gb_gemini_batch *b, char *err, size_t errlen)
{
	const json_t *meta = json_object_get(v, "metadata"), *done = json_object_get(v, "done");
	int is_op = json_is_object(meta);

	gb__batch_fini(b);
	b->requests = b->succeeded = b->failed = b->pending = -1;
	if (!json_is_object(v)) {
		snprintf(err, errlen, "the batch is not a JSON object");
		return -1;
	}
	if (take_string(v, "name", b->name, sizeof(b->name)) != 1 || !gb__batch_name_ok(b->name)) {
		snprintf(err, errlen, "the batch has no valid name (batches/ and 1 to 100 of "
		    "[A-Za-z0-9_-])");
		return -1;
	}
	if ((done != NULL && !json_is_boolean(done)) || take_batch(is_op ? meta : v, b) != 0 ||
	    take_output(json_object_get(v, "response"), b) != 0) {
		snprintf(err, errlen, "batch %s has a field of the wrong shape (state, batchStats, "
		    "createTime, output)", b->name);
		gb__batch_fini(b);
		return -1;
	}
	if (is_op)
		take_error(v, b->error, sizeof(b->error));
	b->done = json_is_true(done) || gb__batch_state_final(b->state);
	if (json_is_true(done) && b->state == GB__BATCH_UNKNOWN)
		b->state = b->error[0] != '\0' ? GB__BATCH_FAILED : GB__BATCH_SUCCEEDED;
	return 0;
}

void
gb__batch_fini(gb_gemini_batch *b)
{
	json_decref(b->inlined);
	memset(b, 0, sizeof(*b));
}

/* ---- exchanges ---- */

/* k until it succeeds or the retry policy gives up, into res (reset first). */
static int
exchange(gb_gemini *c, const gb_gemini_call *k, gb_gemini_result *res)
{
	gb__gemini_result_fini(res);
	return gb__files_exchange(c, k, res);
}

/* Parses res->text (a successful answer) as a batch into b; E_RESPONSE when it is not one. */
static int
answer_batch(gb_gemini_result *res, gb_gemini_batch *b, const char *what)
{
	json_t *v = json_loads(res->text != NULL ? res->text : "", 0, NULL);
	char why[256];

	if (gb__batch_parse(v, b, why, sizeof(why)) != 0) {
		snprintf(res->message, sizeof(res->message), "the answer to %s is not a batch: %s",
		    what, v == NULL ? "not JSON" : why);
		res->status = GB__GEMINI_E_RESPONSE;
	}
	json_decref(v);
	return res->status;
}

int
gb__batch_get(gb_gemini *c, const char *name, gb_gemini_batch *b, gb_gemini_result *res)
{
	char url[MAX_URL];
	gb_gemini_call k = { .url = url, .get = 1 };

	snprintf(url, sizeof(url), "%s/v1beta/%s", gb__gemini_base(c), name);
	if (exchange(c, &k, res) != GB__GEMINI_OK)
		return res->status;
	return answer_batch(res, b, "batches.get");
}

int
gb__batch_cancel(gb_gemini *c, const char *name, gb_gemini_result *res)
{
	char url[MAX_URL];
	const char *headers[] = { "Content-Type: application/json", NULL };
	gb_gemini_call k = { .url = url, .headers = headers, .body = "{}" };

	snprintf(url, sizeof(url), "%s/v1beta/%s:cancel", gb__gemini_base(c), name);
	return exchange(c, &k, res);
}

int
gb__batch_download(gb_gemini *c, const char *file, gb_gemini_result *res)
{
	char url[MAX_URL];
	gb_gemini_call k = { .url = url, .get = 1 };

	snprintf(url, sizeof(url), "%s/download/v1beta/%s:download?alt=media", gb__gemini_base(c),
	    file);
	return exchange(c, &k, res);
}

/* One page of the list: the newest match so far in *b (found set), the next token. */
static int
list_page(gb_gemini *c, const char *token, const char *display_name, time_t not_before,
    gb_gemini_batch *b, int *found, char *next, size_t nextlen, gb_gemini_result *res)
{
	char url[MAX_URL], why[256];
	gb_gemini_call k = { .url = url, .get = 1 };
	const json_t *ops, *op;
	json_t *v;
	size_t i;

	size_t n = (size_t)snprintf(url, sizeof(url), "%s/v1beta/batches?pageSize=100%s",
	    gb__gemini_base(c), token[0] != '\0' ? "&pageToken=" : "");

	/* The token is the server's: percent-encoded but for the unreserved characters. */
	for (const char *t = token; *t != '\0' && n + 4 < sizeof(url); t++)
		n += (size_t)(isalnum((unsigned char)*t) || strchr("-._~", *t) != NULL ?
		    snprintf(url + n, sizeof(url) - n, "%c", *t) :
		    snprintf(url + n, sizeof(url) - n, "%%%02X", (unsigned char)*t));
	if (exchange(c, &k, res) != GB__GEMINI_OK)
		return -1;
	v = json_loads(res->text != NULL ? res->text : "", 0, NULL);
	ops = json_object_get(v, "operations");
	if (!json_is_object(v) || (ops != NULL && !json_is_array(ops)) ||
	    take_string(v, "nextPageToken", next, nextlen) < 0) {
		snprintf(res->message, sizeof(res->message), "the list of batches is not of the "
		    "shape of ListOperationsResponse");
		res->status = GB__GEMINI_E_RESPONSE;
		json_decref(v);
		return -1;
	}
	json_array_foreach(ops, i, op) {
		gb_gemini_batch cand = { 0 };
		if (gb__batch_parse(op, &cand, why, sizeof(why)) == 0 &&
		    strcmp(cand.display_name, display_name) == 0 && cand.create_time >= not_before &&
		    (!*found || cand.create_time > b->create_time)) {
			gb__batch_fini(b);
			*b = cand;
			*found = 1;
			continue;
		}
		gb__batch_fini(&cand);
	}
	json_decref(v);
	return 0;
}

int
gb__batch_find(gb_gemini *c, const char *display_name, time_t not_before, gb_gemini_batch *b,
    gb_gemini_result *res)
{
	char token[256] = "", next[256];
	int found = 0;

	gb__batch_fini(b);
	for (int page = 0; page < MAX_LIST_PAGES; page++) {
		next[0] = '\0';
		if (list_page(c, token, display_name, not_before, b, &found, next, sizeof(next),
		    res) != 0) {
			gb__batch_fini(b);
			return -1;
		}
		if (next[0] == '\0')
			break;
		memcpy(token, next, sizeof(token));
	}
	return found;
}

int
gb__batch_create(gb_gemini *c, const char *model, const json_t *body, time_t not_before,
    gb_gemini_batch *b, gb_gemini_result *res)
{
	const char *headers[] = { "Content-Type: application/json", NULL };
	const char *display = json_string_value(json_object_get(json_object_get(body, "batch"),
	    "displayName"));
	gb_gemini_call k = { .headers = headers };
	char url[MAX_URL], *text = json_dumps(body, JSON_COMPACT);
	uint64_t delay = 0;
	int again;

	gb__gemini_result_fini(res);
	if (text == NULL || display == NULL) {
		free(text);
		snprintf(res->message, sizeof(res->message), "out of memory building the batch");
		return res->status = GB__GEMINI_E_NOMEM;
	}
	snprintf(url, sizeof(url), "%s/v1beta/models/%s:batchGenerateContent", gb__gemini_base(c),
	    model);
	k.url = url;
	k.body = text;
	while ((again = gb__gemini_call_once(c, &k, res, &delay)) != 0) {
		gb_gemini_result lr = { 0 };
		gb__clock_sleep_ns(delay);
		res->backoff_seconds += (double)delay / 1e9;
		/* The attempt may have created the batch before its answer was lost. */
		int found = gb__batch_find(c, display, not_before, b, &lr);
		gb__gemini_result_fini(&lr);
		if (found == 1) {
			free(text);
			res->status = GB__GEMINI_OK;
			res->message[0] = '\0';
			return res->status;
		}
	}
	free(text);
	if (res->status != GB__GEMINI_OK)
		return res->status;
	return answer_batch(res, b, "batchGenerateContent");
}

/* ---- one response ---- */

int
gb__batch_response_result(const json_t *response, const json_t *error, gb_gemini *c,
    gb_gemini_result *res)
{
	char *text;

	gb__gemini_result_fini(res);
	res->attempts = 1;
	if (json_is_object(response) && (text = json_dumps(response, JSON_COMPACT)) != NULL) {
		gb__gemini_parse_response(text, strlen(text), res);
		free(text);
		/* the batch's answer was scrubbed as a whole when it came */
		if (res->status == GB__GEMINI_OK)
			return res->status;
	} else if (json_is_object(error)) {
		const char *m = json_string_value(json_object_get(error, "message"));
		json_int_t code = json_integer_value(json_object_get(error, "code"));
		res->status = GB__GEMINI_E_API;
		snprintf(res->message, sizeof(res->message), "the batch could not answer this request: "
		    "%.400s (code %" JSON_INTEGER_FORMAT ")", m != NULL ? m : "no message", code);
	} else {
		res->status = GB__GEMINI_E_RESPONSE;
		snprintf(res->message, sizeof(res->message), "the batch has no response for this "
		    "request");
	}
	res->non_retryable_errors = 1;
	if (c != NULL)
		gb__gemini_scrub(c, res->message, strlen(res->message));
	return res->status;
}
