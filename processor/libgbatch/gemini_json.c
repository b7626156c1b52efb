/*
 * gemini_json.c - the JSON of the Gemini REST API: the generateContent request built from
 * parts, and the replies taken apart (answers, usage, finish and block reasons, errors with
 * their RetryInfo). Pure functions on untrusted bytes: every field is checked for type and
 * size before use. The fuzz target's code. The request is written straight (json_writer.c)
 * and a reply read in place (json_scan.c) when jansson would surely read it alike; jansson
 * reads the rest and words the errors.
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
#include "json_scan.h"
#include "json_writer.h"

#define MAX_API_MESSAGE 300
#define REQUEST_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

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

	if (p->file_uri != NULL)
		return json_pack("{s:{s:s, s:s}}", "fileData", "mimeType",
		    p->mime_type != NULL ? p->mime_type : "text/plain", "fileUri", p->file_uri);
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
	/* One generationConfig: the caller's settings and the JSON answer the processor asks. */
	if (rq->json || rq->schema != NULL || rq->generation != NULL) {
		gc = rq->generation != NULL ? json_deep_copy(rq->generation) : json_object();
		if (gc == NULL || json_object_set_new(req, "generationConfig", gc) != 0)
			goto fail;
		if ((rq->json || rq->schema != NULL) && json_object_set_new(gc, "responseMimeType",
		    json_string("application/json")) != 0)
			goto fail;
		if (rq->schema != NULL &&
		    json_object_set_new(gc, "responseSchema", json_deep_copy(rq->schema)) != 0)
			goto fail;
	}
	if (rq->safety != NULL &&
	    json_object_set_new(req, "safetySettings", json_deep_copy(rq->safety)) != 0)
		goto fail;
	if (rq->cached_content != NULL &&
	    json_object_set_new(req, "cachedContent", json_string(rq->cached_content)) != 0)
		goto fail;
	return req;
fail:
	json_decref(req);
	return NULL;
}

/* The request text as json_dumps(gb__gemini_request_json(rq), REQUEST_DUMP_FLAGS) writes it,
 * through jansson: for what the straight writer below leaves to it. */
static char *
request_text_jansson(const gb_gemini_request *rq, size_t *len)
{
	json_t *req = gb__gemini_request_json(rq);
	char *s = req != NULL ? json_dumps(req, REQUEST_DUMP_FLAGS) : NULL;

	json_decref(req);
	if (s != NULL && len != NULL)
		*len = strlen(s);
	return s;
}

static void
part_text(gb_jw *w, const gb_gemini_part *p)
{
	char *b64;

	if (p->file_uri != NULL) {
		gb__jw_lit(w, "{\"fileData\":{\"mimeType\":");
		gb__jw_str(w, p->mime_type != NULL ? p->mime_type : "text/plain");
		gb__jw_lit(w, ",\"fileUri\":");
		gb__jw_str(w, p->file_uri);
		gb__jw_lit(w, "}}");
	} else if (p->mime_type == NULL) {
		gb__jw_lit(w, "{\"text\":");
		gb__jw_strn(w, p->data, p->len);
		gb__jw_raw(w, "}", 1);
	} else {
		gb__jw_lit(w, "{\"inlineData\":{\"mimeType\":");
		gb__jw_str(w, p->mime_type);
		gb__jw_lit(w, ",\"data\":");
		if ((b64 = base64(p->data, p->len)) == NULL)
			w->failed = 1;
		else
			gb__jw_strn(w, b64, strlen(b64));
		free(b64);
		gb__jw_lit(w, "}}");
	}
}

/* generationConfig: the caller's settings, then the JSON answer the processor asks. */
static void
generation_text(gb_jw *w, const gb_gemini_request *rq)
{
	int first = 1;

	if (rq->generation != NULL) {
		size_t at = w->len;
		gb__jw_value(w, rq->generation, REQUEST_DUMP_FLAGS);
		if (w->failed)
			return;
		first = w->len - at == 2; /* "{}" */
		w->len--;                 /* its '}': the fields below go inside */
	} else {
		gb__jw_raw(w, "{", 1);
	}
	if (rq->json || rq->schema != NULL) {
		gb__jw_lit(w, first ? "\"responseMimeType\":\"application/json\"" :
		    ",\"responseMimeType\":\"application/json\"");
		first = 0;
	}
	if (rq->schema != NULL) {
		gb__jw_lit(w, first ? "\"responseSchema\":" : ",\"responseSchema\":");
		gb__jw_value(w, rq->schema, REQUEST_DUMP_FLAGS);
	}
	gb__jw_raw(w, "}", 1);
}

char *
gb__gemini_request_text(const gb_gemini_request *rq, size_t *len)
{
	const json_t *g = rq->generation;
	gb_jw w;
	size_t hint = 512;

	/* Settings that name what the processor sets itself (or are not an object) are left to
	 * jansson's merge, which keeps their place. */
	if (g != NULL && (!json_is_object(g) || json_object_get(g, "responseMimeType") != NULL ||
	    json_object_get(g, "responseSchema") != NULL))
		return request_text_jansson(rq, len);
	for (size_t i = 0; i < rq->n_parts; i++)
		hint += rq->parts[i].mime_type != NULL ? rq->parts[i].len / 3 * 4 + 64 :
		    rq->parts[i].len + rq->parts[i].len / 8 + 16;
	gb__jw_init(&w, hint);
	gb__jw_lit(&w, "{\"contents\":[{\"role\":\"user\",\"parts\":[");
	for (size_t i = 0; i < rq->n_parts; i++) {
		if (i > 0)
			gb__jw_raw(&w, ",", 1);
		part_text(&w, &rq->parts[i]);
	}
	gb__jw_lit(&w, "]}]");
	if (rq->system != NULL && *rq->system != '\0') {
		gb__jw_lit(&w, ",\"systemInstruction\":{\"parts\":[{\"text\":");
		gb__jw_str(&w, rq->system);
		gb__jw_lit(&w, "}]}");
	}
	if (rq->json || rq->schema != NULL || g != NULL) {
		gb__jw_lit(&w, ",\"generationConfig\":");
		generation_text(&w, rq);
	}
	if (rq->safety != NULL) {
		gb__jw_lit(&w, ",\"safetySettings\":");
		gb__jw_value(&w, rq->safety, REQUEST_DUMP_FLAGS);
	}
	if (rq->cached_content != NULL) {
		gb__jw_lit(&w, ",\"cachedContent\":");
		gb__jw_str(&w, rq->cached_content);
	}
	gb__jw_raw(&w, "}", 1);
	return gb__jw_finish(&w, len);
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

/* ---- the reply's parts, found without building them ----
 * A reply of millions of tiny parts would cost jansson hundreds of bytes a part: the array
 * candidates[0].content.parts is located with a scanner that builds nothing, the rest of the
 * reply parsed with it left out, and the parts parsed one at a time. */

#define MAX_SCAN_DEPTH 2048

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at '"': returns just past the closing quote, or NULL. *escaped is set when it has a '\'. */
static const char *
skip_string(const char *p, const char *end, int *escaped)
{
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\') {
			*escaped = 1;
			p++;
		}
	}
	return NULL;
}

/* Skips one value at p (no leading blanks); returns its end, or NULL when it is not one. A
 * string with escapes in it sets *escaped. Not a validator: what is kept is parsed by
 * jansson. */
static const char *
skip_value(const char *p, const char *end, int depth, int *escaped)
{
	char close;

	if (p >= end || depth > MAX_SCAN_DEPTH)
		return NULL;
	if (*p == '"')
		return skip_string(p, end, escaped);
	if (*p != '{' && *p != '[') {
		const char *q = p;
		while (q < end && strchr(",]} \t\r\n", *q) == NULL)
			q++;
		return q > p ? q : NULL;
	}
	close = *p == '{' ? '}' : ']';
	p = skip_ws(p + 1, end);
	if (p < end && *p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			if (p >= end || *p != '"' || (p = skip_string(p, end, escaped)) == NULL)
				return NULL;
			p = skip_ws(p, end);
			if (p >= end || *p++ != ':')
				return NULL;
			p = skip_ws(p, end);
		}
		if ((p = skip_value(p, end, depth + 1, escaped)) == NULL)
			return NULL;
		p = skip_ws(p, end);
		if (p < end && *p == close)
			return p + 1;
		if (p >= end || *p != ',')
			return NULL;
		p = skip_ws(p + 1, end);
	}
}

/* In the object at p, the value of the last member named name (as jansson keeps the last);
 * NULL when there is none or when a key has escapes (it might spell name). */
static const char *
member(const char *p, const char *end, const char *name, const char **vend)
{
	size_t nl = strlen(name);
	const char *found = NULL;
	int in_values = 0;

	if (p >= end || *p != '{')
		return NULL;
	p = skip_ws(p + 1, end);
	while (p < end && *p == '"') {
		int escaped = 0;
		const char *k = p + 1, *ke = skip_string(p, end, &escaped), *v;
		if (ke == NULL || escaped)
			return NULL;
		p = skip_ws(ke, end);
		if (p >= end || *p++ != ':')
			return NULL;
		v = skip_ws(p, end);
		if ((p = skip_value(v, end, 1, &in_values)) == NULL)
			return NULL;
		if ((size_t)(ke - 1 - k) == nl && memcmp(k, name, nl) == 0) {
			found = v;
			*vend = p;
		}
		p = skip_ws(p, end);
		if (p < end && *p == ',')
			p = skip_ws(p + 1, end);
	}
	return p < end && *p == '}' ? found : NULL;
}

/* The span [*ps, *pe) of candidates[0].content.parts in body, when it is an array. */
static int
find_parts(const char *body, size_t len, const char **ps, const char **pe)
{
	const char *end = body + len, *v, *ve, *c;

	if ((v = member(skip_ws(body, end), end, "candidates", &ve)) == NULL || *v != '[')
		return 0;
	c = skip_ws(v + 1, end);
	if ((v = member(c, ve, "content", &ve)) == NULL ||
	    (v = member(v, ve, "parts", &ve)) == NULL || *v != '[')
		return 0;
	*ps = v;
	*pe = ve;
	return 1;
}

/* Appends the text of one part (unless it is a thought summary) to res->text. */
static int
add_part_text(const json_t *part, gb_gemini_result *res, size_t *used, size_t *cap)
{
	const json_t *t = json_object_get(part, "text");
	size_t n = json_string_length(t);
	char *nt;

	if (!json_is_string(t) || json_is_true(json_object_get(part, "thought")))
		return 0;
	if (res->text == NULL || *used + n + 1 > *cap) {
		size_t want = (*used + n + 1) * 2;
		if ((nt = realloc(res->text, want)) == NULL)
			return -1;
		res->text = nt;
		*cap = want;
	}
	memcpy(res->text + *used, json_string_value(t), n);
	*used += n;
	res->text[*used] = '\0';
	return 0;
}

/* Parses the elements of the parts array [ps, pe) one at a time into res->text. Returns 0, -1
 * when one is not JSON (err set), -2 out of memory. */
static int
parse_parts(const char *ps, const char *pe, gb_gemini_result *res, json_error_t *err)
{
	const char *p = skip_ws(ps + 1, pe), *e;
	size_t used = 0, cap = 0;
	int escaped = 0;

	while (p < pe && *p != ']') {
		json_t *part;
		if ((e = skip_value(p, pe, 1, &escaped)) == NULL ||
		    (part = json_loadb(p, (size_t)(e - p), JSON_DECODE_ANY, err)) == NULL)
			return -1;
		if (add_part_text(part, res, &used, &cap) != 0) {
			json_decref(part);
			return -2;
		}
		json_decref(part);
		p = skip_ws(e, pe);
		if (p < pe && *p == ',')
			p = skip_ws(p + 1, pe);
	}
	return 0;
}

/* The reply without its parts array (replaced by []), parsed; *ps and *pe get where the
 * parts are, both NULL when there is no such array (then it is all there). */
static json_t *
load_without_parts(const char *body, size_t len, const char **ps, const char **pe,
    json_error_t *jerr)
{
	json_t *root;
	char *rest;
	size_t head;

	*ps = *pe = NULL;
	if (!find_parts(body, len, ps, pe)) {
		*ps = *pe = NULL;
		return json_loadb(body, len, 0, jerr);
	}
	head = (size_t)(*ps - body);
	if ((rest = malloc(len - (size_t)(*pe - *ps) + 3)) == NULL) {
		snprintf(jerr->text, sizeof(jerr->text), "out of memory");
		jerr->position = 0;
		return NULL;
	}
	memcpy(rest, body, head);
	memcpy(rest + head, "[]", 2);
	memcpy(rest + head + 2, *pe, len - (size_t)(*pe - body));
	root = json_loadb(rest, len - (size_t)(*pe - *ps) + 2, 0, jerr);
	if (root == NULL && (size_t)jerr->position > head)
		jerr->position += (int)(*pe - *ps) - 2;
	free(rest);
	return root;
}

/* ---- the reply read in place: the common case, without jansson ---- */

static int64_t
scan_usage(gb_jspan v)
{
	int64_t x;

	return v.p != NULL && gb__jscan_int(v, &x) && x >= 0 ? x : 0;
}

/* The string member key of obj copied as copy_clean copies it (64 bytes at most), or
 * nothing when there is none or it is not a string. */
/* The string v (or none: p NULL) copied as copy_clean copies it (64 bytes at most); nothing
 * when it is not a string. */
static void
scan_reason(gb_jspan v, char *dst, size_t dstlen)
{
	char tmp[65];

	if (v.p == NULL || gb__jscan_kind(v) != '"')
		return;
	if (gb__jscan_strlen(v) < sizeof(tmp)) {
		tmp[gb__jscan_str(v, tmp)] = '\0';
	} else {
		char *all = malloc(gb__jscan_strlen(v) + 1);
		if (all == NULL)
			return;
		all[gb__jscan_str(v, all)] = '\0';
		memcpy(tmp, all, sizeof(tmp) - 1);
		tmp[sizeof(tmp) - 1] = '\0';
		free(all);
	}
	copy_clean(dst, dstlen, tmp, 64);
}

/* The text of the parts, thought summaries left out, as add_part_text joins them: 1 with
 * *text set (NULL when no part has text), 0 out of memory. */
static int
scan_parts(gb_jspan parts, char **text)
{
	static const char *const names[] = { "text", "thought" };
	gb_jspan part = { NULL, NULL }, f[2], t;
	size_t used = 0, cap = 0;
	char *nt;

	*text = NULL;
	while (gb__jscan_next(parts, &part)) {
		gb__jscan_members(part, names, 2, f);
		t = f[0];
		if (t.p == NULL || gb__jscan_kind(t) != '"' ||
		    (f[1].p != NULL && gb__jscan_kind(f[1]) == 't'))
			continue;
		size_t n = gb__jscan_strlen(t);
		if (*text == NULL || used + n + 1 > cap) {
			if ((nt = realloc(*text, (used + n + 1) * 2)) == NULL) {
				free(*text);
				*text = NULL;
				return 0;
			}
			*text = nt;
			cap = (used + n + 1) * 2;
		}
		used += gb__jscan_str(t, *text + used);
		(*text)[used] = '\0';
	}
	return 1;
}

/* The reply read in place into res, when it is a document jansson surely reads and has a
 * first candidate: 1 (res filled, GB__GEMINI_OK), else 0 with res untouched, for the
 * jansson path (which words every error). */
static int
parse_in_place(const char *body, size_t len, gb_gemini_result *res)
{
	static const char *const top[] = { "candidates", "usageMetadata", "promptFeedback" };
	static const char *const counts[] = { "promptTokenCount", "candidatesTokenCount",
		"cachedContentTokenCount", "thoughtsTokenCount", "totalTokenCount" };
	static const char *const in_cand[] = { "content", "finishReason" };
	gb_jspan root, t[3], u[5], c[2], cand = { NULL, NULL }, parts, block;
	gb_gemini_result r = *res;

	if (!gb__jscan_document(body, len, &root))
		return 0;
	gb__jscan_members(root, top, 3, t);
	if (t[0].p == NULL || !gb__jscan_next(t[0], &cand) || gb__jscan_kind(cand) != '{')
		return 0;
	gb__jscan_members(cand, in_cand, 2, c);
	r.text = NULL;
	if (c[0].p != NULL && gb__jscan_member(c[0], "parts", &parts) && !scan_parts(parts, &r.text))
		return 0;
	gb__jscan_members(t[1], counts, 5, u);
	r.usage.prompt = scan_usage(u[0]);
	r.usage.candidates = scan_usage(u[1]);
	r.usage.cached = scan_usage(u[2]);
	r.usage.thoughts = scan_usage(u[3]);
	r.usage.total = scan_usage(u[4]);
	if (gb__jscan_member(t[2], "blockReason", &block))
		scan_reason(block, r.block_reason, sizeof(r.block_reason));
	scan_reason(c[1], r.finish_reason, sizeof(r.finish_reason));
	/* as the jansson path does: a text found replaces res->text, none leaves it */
	if (r.text == NULL)
		r.text = res->text;
	else
		free(res->text);
	r.status = GB__GEMINI_OK;
	*res = r;
	return 1;
}

int
gb__gemini_parse_response(const char *body, size_t len, gb_gemini_result *res)
{
	if (parse_in_place(body, len, res))
		return res->status;
	return gb__gemini_parse_response_jansson(body, len, res);
}

int
gb__gemini_parse_response_jansson(const char *body, size_t len, gb_gemini_result *res)
{
	json_error_t jerr;
	const char *ps, *pe;
	json_t *root;
	const json_t *cands, *cand, *parts, *u, *fr, *br;
	size_t used = 0, cap = 0;
	int rc = 0;

	root = load_without_parts(body, len, &ps, &pe, &jerr);
	if (root != NULL && json_is_object(root) && ps != NULL)
		rc = parse_parts(ps, pe, res, &jerr);
	if (root == NULL || !json_is_object(root) || rc == -1) {
		snprintf(res->message, sizeof(res->message),
		    "the API's answer is not valid JSON (%s at byte %d)",
		    root == NULL || rc == -1 ? jerr.text : "not an object",
		    root == NULL ? jerr.position : rc == -1 ? (int)(ps - body) + jerr.position : 0);
		json_decref(root);
		free(res->text);
		res->text = NULL;
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
	/* Join the text parts, skipping thought summaries (those of a parts array left in). */
	parts = json_object_get(json_object_get(cand, "content"), "parts");
	for (size_t i = 0; rc == 0 && ps == NULL && i < json_array_size(parts); i++)
		rc = add_part_text(json_array_get(parts, i), res, &used, &cap);
	json_decref(root);
	if (rc != 0) {
		free(res->text);
		res->text = NULL;
		snprintf(res->message, sizeof(res->message), "out of memory reading the answer");
		return res->status = GB__GEMINI_E_NOMEM;
	}
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

/* ErrorInfo reasons (domain googleapis.com) that no retry and no other question can cure:
 * the key, its restrictions or its project. */
static const struct {
	const char *reason, *advice;
} fatal_reasons[] = {
	{ "API_KEY_INVALID", "the API key is not valid (or has expired): set GEMINI_API_KEY to a "
	    "valid key" },
	{ "API_KEY_EXPIRED", "the API key has expired: renew it, or set GEMINI_API_KEY to a new key" },
	{ "API_KEY_SERVICE_BLOCKED", "the API key may not call the Generative Language API: allow "
	    "it in the key's API restrictions" },
	{ "API_KEY_HTTP_REFERRER_BLOCKED", "the API key's restrictions refuse this caller: lift "
	    "them or use another key" },
	{ "API_KEY_IP_ADDRESS_BLOCKED", "the API key's restrictions refuse this address: lift "
	    "them or use another key" },
	{ "SERVICE_DISABLED", "the Generative Language API is not enabled in the key's project: "
	    "enable it" },
	{ "CONSUMER_SUSPENDED", "the key's project is suspended: see its console" },
	{ "BILLING_DISABLED", "billing is disabled for the key's project: enable billing" },
};

const char *
gb__gemini_fatal_reason(const char *reason)
{
	for (size_t i = 0; reason != NULL && i < sizeof(fatal_reasons) / sizeof(fatal_reasons[0]);
	    i++)
		if (strcmp(reason, fatal_reasons[i].reason) == 0)
			return fatal_reasons[i].advice;
	return NULL;
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
	res->api_status[0] = res->reason[0] = '\0';
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
		} else if (type_is(d, "google.rpc.ErrorInfo")) {
			const char *r = json_string_value(json_object_get(d, "reason"));
			if (r != NULL && res->reason[0] == '\0')
				copy_clean(res->reason, sizeof(res->reason), r, sizeof(res->reason) - 1);
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
	if (gb__gemini_fatal_reason(res->reason) != NULL) {
		char more[200];
		snprintf(more, sizeof(more), " (%s: %s)", res->reason,
		    gb__gemini_fatal_reason(res->reason));
		strlcat(res->message, more, sizeof(res->message));
	}
	json_decref(root);
}
