/*
 * gemini_json.c - the JSON of the Gemini REST API: the generateContent request built from
 * parts, and the replies taken apart (answers, usage, finish and block reasons, errors with
 * their RetryInfo). Pure functions on untrusted bytes: every field is checked for type and
 * size before use. The fuzz target's code.
 */
#include "gemini_client.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>
#include <jansson.h>

#include "clock.h"

#define MAX_API_MESSAGE 300

/* ---- request ---- */

static char *
base64(const char *src, size_t len)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = (const unsigned char *)src;
	char *out, *o;
	size_t i;

	if (len > (SIZE_MAX / 4) * 3 - 3 || (out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	for (i = 0, o = out; i + 2 < len; i += 3) {
		*o++ = tbl[s[i] >> 2];
		*o++ = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*o++ = tbl[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		*o++ = tbl[s[i + 2] & 63];
	}
	if (i < len) {
		*o++ = tbl[s[i] >> 2];
		if (i + 1 < len) {
			*o++ = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
			*o++ = tbl[(s[i + 1] & 15) << 2];
		} else {
			*o++ = tbl[(s[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static json_t *
part_json(const gb_gemini_part *p)
{
	json_t *v;
	char *b64;

	if (p->mime_type == NULL) {
		if ((v = json_stringn(p->data, p->len)) == NULL)
			return NULL;
		return json_pack("{s:o}", "text", v);
	}
	if ((b64 = base64(p->data, p->len)) == NULL)
		return NULL;
	v = json_pack("{s:{s:s, s:s}}", "inlineData", "mimeType", p->mime_type, "data", b64);
	free(b64);
	return v;
}

json_t *
gb__gemini_request_json(const gb_gemini_request *rq)
{
	json_t *req, *parts, *gc;

	if ((parts = json_array()) == NULL)
		return NULL;
	for (size_t i = 0; i < rq->n_parts; i++) {
		json_t *p = part_json(&rq->parts[i]);
		if (p == NULL || json_array_append_new(parts, p) != 0) {
			json_decref(parts);
			return NULL;
		}
	}
	req = json_pack("{s:[{s:s, s:o}]}", "contents", "role", "user", "parts", parts);
	if (req == NULL)
		return NULL;
	if (rq->system != NULL && *rq->system != '\0') {
		json_t *sys = json_string(rq->system);
		if (sys == NULL || json_object_set_new(req, "systemInstruction",
		    json_pack("{s:[{s:o}]}", "parts", "text", sys)) != 0)
			goto fail;
	}
	if (rq->json || rq->schema != NULL) {
		gc = json_pack("{s:s}", "responseMimeType", "application/json");
		if (gc == NULL || json_object_set_new(req, "generationConfig", gc) != 0)
			goto fail;
		if (rq->schema != NULL &&
		    json_object_set_new(gc, "responseSchema", json_deep_copy(rq->schema)) != 0)
			goto fail;
	}
	if (rq->cached_content != NULL &&
	    json_object_set_new(req, "cachedContent", json_string(rq->cached_content)) != 0)
		goto fail;
	return req;
fail:
	json_decref(req);
	return NULL;
}

/* ---- response ---- */

void
gb__gemini_result_fini(gb_gemini_result *res)
{
	free(res->text);
	memset(res, 0, sizeof(*res));
}

/* Copies an untrusted string for a message: bounded, control characters made spaces. */
static void
copy_clean(char *dst, size_t dstlen, const char *src, size_t max)
{
	size_t i, n = strlen(src);

	if (n > max)
		n = max;
	if (n >= dstlen)
		n = dstlen - 1;
	for (i = 0; i < n; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? ' ' : src[i];
	dst[n] = '\0';
}

static int64_t
usage_field(const json_t *u, const char *key)
{
	const json_t *v = json_object_get(u, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return 0;
	return (int64_t)json_integer_value(v);
}

int
gb__gemini_parse_response(const char *body, size_t len, gb_gemini_result *res)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, 0, &jerr);
	const json_t *cands, *cand, *parts, *u, *fr, *br;
	size_t i, total = 0;

	if (root == NULL || !json_is_object(root)) {
		snprintf(res->message, sizeof(res->message),
		    "the API's answer is not valid JSON (%s at byte %d)",
		    root == NULL ? jerr.text : "not an object", root == NULL ? jerr.position : 0);
		json_decref(root);
		return res->status = GB__GEMINI_E_RESPONSE;
	}
	u = json_object_get(root, "usageMetadata");
	res->usage.prompt = usage_field(u, "promptTokenCount");
	res->usage.candidates = usage_field(u, "candidatesTokenCount");
	res->usage.cached = usage_field(u, "cachedContentTokenCount");
	res->usage.thoughts = usage_field(u, "thoughtsTokenCount");
	res->usage.total = usage_field(u, "totalTokenCount");
	br = json_object_get(json_object_get(root, "promptFeedback"), "blockReason");
	if (json_is_string(br))
		copy_clean(res->block_reason, sizeof(res->block_reason), json_string_value(br), 64);
	cands = json_object_get(root, "candidates");
	cand = json_array_get(cands, 0);
	if (!json_is_object(cand)) {
		json_decref(root);
		if (res->block_reason[0] != '\0')
			return res->status = GB__GEMINI_OK;
		snprintf(res->message, sizeof(res->message), "the API's answer has no candidates");
		return res->status = GB__GEMINI_E_RESPONSE;
	}
	fr = json_object_get(cand, "finishReason");
	if (json_is_string(fr))
		copy_clean(res->finish_reason, sizeof(res->finish_reason), json_string_value(fr), 64);
	parts = json_object_get(json_object_get(cand, "content"), "parts");
	/* Join the text parts, skipping thought summaries. */
	for (i = 0; i < json_array_size(parts); i++) {
		const json_t *p = json_array_get(parts, i);
		if (json_is_true(json_object_get(p, "thought")))
			continue;
		total += json_string_length(json_object_get(p, "text"));
	}
	for (i = 0; i < json_array_size(parts); i++) {
		const json_t *p = json_array_get(parts, i), *t = json_object_get(p, "text");
		size_t have;
		if (!json_is_string(t) || json_is_true(json_object_get(p, "thought")))
			continue;
		if (res->text == NULL && (res->text = calloc(1, total + 1)) == NULL) {
			json_decref(root);
			snprintf(res->message, sizeof(res->message), "out of memory reading the answer");
			return res->status = GB__GEMINI_E_NOMEM;
		}
		have = strlen(res->text);
		memcpy(res->text + have, json_string_value(t), json_string_length(t));
		res->text[have + json_string_length(t)] = '\0';
	}
	json_decref(root);
	return res->status = GB__GEMINI_OK;
}

int
gb__gemini_parse_proto_duration(const char *text, uint64_t *ns)
{
	uint64_t whole = 0, frac = 0, scale = GB_NS_PER_SEC;
	const char *p = text;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > 315576000000ull) /* the proto's own limit: 10000 years */
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
		}
	}
	if (strcmp(p, "s") != 0 || whole > UINT64_MAX / GB_NS_PER_SEC - 1)
		return -1;
	*ns = whole * GB_NS_PER_SEC + frac;
	return 0;
}

static int
type_is(const json_t *detail, const char *suffix)
{
	const char *t = json_string_value(json_object_get(detail, "@type"));
	size_t tl, sl = strlen(suffix);

	if (t == NULL || (tl = strlen(t)) < sl)
		return 0;
	return strcmp(t + tl - sl, suffix) == 0;
}

void
gb__gemini_parse_error(long http, const char *body, size_t len, gb_gemini_result *res,
    uint64_t *retry_delay_ns, int *per_day)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	const json_t *err = json_object_get(root, "error"), *details, *d, *v;
	const char *msg = json_string_value(json_object_get(err, "message"));
	const char *st = json_string_value(json_object_get(err, "status"));
	char clean[MAX_API_MESSAGE + 1];
	size_t i, j;

	*retry_delay_ns = 0;
	*per_day = 0;
	res->api_status[0] = '\0';
	if (st != NULL)
		copy_clean(res->api_status, sizeof(res->api_status), st, 38);
	details = json_object_get(err, "details");
	for (i = 0; i < json_array_size(details); i++) {
		d = json_array_get(details, i);
		if (type_is(d, "google.rpc.RetryInfo")) {
			v = json_object_get(d, "retryDelay");
			if (!json_is_string(v) ||
			    gb__gemini_parse_proto_duration(json_string_value(v), retry_delay_ns) != 0)
				*retry_delay_ns = 0;
		} else if (type_is(d, "google.rpc.QuotaFailure")) {
			const json_t *viol = json_object_get(d, "violations");
			for (j = 0; j < json_array_size(viol); j++) {
				const char *q = json_string_value(json_object_get(json_array_get(viol, j),
				    "quotaId"));
				if (q != NULL && strstr(q, "PerDay") != NULL)
					*per_day = 1;
			}
		}
	}
	if (msg != NULL) {
		copy_clean(clean, sizeof(clean), msg, MAX_API_MESSAGE);
		snprintf(res->message, sizeof(res->message), "Gemini API error %ld%s%s: %s", http,
		    res->api_status[0] != '\0' ? " " : "", res->api_status, clean);
	} else {
		snprintf(res->message, sizeof(res->message),
		    "Gemini API answered HTTP %ld without a Gemini error body (is the API base right?)",
		    http);
	}
	json_decref(root);
}
