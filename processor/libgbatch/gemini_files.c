/*
 * gemini_files.c - the Files API: the resumable upload protocol (a start request that names
 * the size and type and returns an upload URL, then the bytes with "upload, finalize"),
 * streamed from the content's file by a read callback, the wait while the file is PROCESSING,
 * and its deletion. Every header and every field the server sends is bounded and checked.
 */
#include "gemini_files.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "clock.h"
#include "log.h"
#include "telemetry_internal.h"

#define MAX_URL 2048

/* ---- the pieces the server sends ---- */

int
gb__files_header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), s, e;

	if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
		return 0;
	s = nlen + 1;
	e = len;
	while (e > s && strchr(" \t\r\n", line[e - 1]) != NULL)
		e--;
	while (s < e && (line[s] == ' ' || line[s] == '\t'))
		s++;
	if (e == s || e - s >= outlen)
		return -1;
	for (size_t i = s; i < e; i++)
		if (iscntrl((unsigned char)line[i]))
			return -1;
	memcpy(out, line + s, e - s);
	out[e - s] = '\0';
	return 1;
}

/* Copies the string member key of o into out (outlen bytes): 1 copied, 0 absent, -1 not a
 * string, empty, too long or holding a control character. */
static int
take_string(const json_t *o, const char *key, char *out, size_t outlen)
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	size_t n;

	if (v == NULL)
		return 0;
	if (s == NULL || (n = json_string_length(v)) == 0 || n >= outlen)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (iscntrl((unsigned char)s[i]))
			return -1;
	memcpy(out, s, n + 1);
	return 1;
}

/* sizeBytes is an int64, which proto3 JSON writes as a string; a number is taken too. */
static int
take_size(const json_t *o, int64_t *size)
{
	const json_t *v = json_object_get(o, "sizeBytes");
	const char *s = json_string_value(v);
	char *end;
	long long n;

	*size = -1;
	if (v == NULL)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*size = (int64_t)json_integer_value(v);
		return 0;
	}
	if (s == NULL || !isdigit((unsigned char)s[0]) || strlen(s) > 19)
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*size = (int64_t)n;
	return 0;
}

int
gb__files_parse_file(const json_t *v, gb_gemini_file *f, char *err, size_t errlen)
{
	const json_t *o = json_is_object(json_object_get(v, "file")) ? json_object_get(v, "file") : v;
	const json_t *e = json_object_get(o, "error");

	memset(f, 0, sizeof(*f));
	f->size_bytes = -1;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "the file is not a JSON object");
		return -1;
	}
	if (take_string(o, "name", f->name, sizeof(f->name)) != 1 ||
	    strncmp(f->name, "files/", 6) != 0 || f->name[6] == '\0' ||
	    strspn(f->name + 6, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(f->name + 6)) {
		snprintf(err, errlen, "the file has no valid name (files/ and [a-z0-9-], at most %zu "
		    "bytes)", sizeof(f->name) - 1);
		return -1;
	}
	if (take_string(o, "uri", f->uri, sizeof(f->uri)) != 1 || strchr(f->uri, ' ') != NULL ||
	    (strncmp(f->uri, "https://", 8) != 0 && strncmp(f->uri, "http://", 7) != 0)) {
		snprintf(err, errlen, "file %s has no valid uri (http(s)://, at most %zu bytes)",
		    f->name, sizeof(f->uri) - 1);
		return -1;
	}
	if (take_string(o, "mimeType", f->mime_type, sizeof(f->mime_type)) < 0 ||
	    take_string(o, "state", f->state, sizeof(f->state)) < 0 ||
	    strspn(f->state, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != strlen(f->state) ||
	    take_size(o, &f->size_bytes) != 0) {
		snprintf(err, errlen, "file %s has a mimeType, state or sizeBytes of the wrong shape",
		    f->name);
		return -1;
	}
	if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
		strlcpy(f->error, json_string_value(json_object_get(e, "message")), sizeof(f->error));
	for (char *p = f->error; *p != '\0'; p++)
		if (iscntrl((unsigned char)*p))
			*p = ' ';
	return 0;
}

/* ---- exchanges ---- */

int
gb__files_exchange(gb_gemini *c, const gb_gemini_call *k, gb_gemini_result *res)
{
	uint64_t delay = 0;

	while (gb__gemini_call_once(c, k, res, &delay)) {
		gb__clock_sleep_ns(delay);
		res->backoff_seconds += (double)delay / 1e9;
	}
	return res->status;
}

/* The response headers the protocol reads. */
struct hdrs {
	char upload_url[MAX_URL];
	char status[32];   /* X-Goog-Upload-Status: active, final, cancelled */
	char received[24]; /* X-Goog-Upload-Size-Received */
	int bad;           /* one of them was empty, too long or held a control */
};

static size_t
on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct hdrs *h = arg;
	size_t n = size * nmemb;

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0)
		memset(h, 0, sizeof(*h)); /* a new response: nothing of an earlier attempt's */
	if (gb__files_header_value(line, n, "x-goog-upload-url", h->upload_url,
	    sizeof(h->upload_url)) < 0 ||
	    gb__files_header_value(line, n, "x-goog-upload-status", h->status, sizeof(h->status)) < 0 ||
	    gb__files_header_value(line, n, "x-goog-upload-size-received", h->received,
	    sizeof(h->received)) < 0)
		h->bad = 1;
	return n;
}

/* Parses res->text (a successful answer) as a file into f; E_RESPONSE when it is not one. */
static int
answer_file(gb_gemini_result *res, gb_gemini_file *f, const char *what)
{
	json_error_t jerr;
	json_t *v = json_loads(res->text != NULL ? res->text : "", 0, &jerr);
	char why[256];

	if (gb__files_parse_file(v, f, why, sizeof(why)) != 0) {
		snprintf(res->message, sizeof(res->message), "the answer to %s is not a file: %s", what,
		    v == NULL ? "not JSON" : why);
		res->status = GB__GEMINI_E_RESPONSE;
	}
	json_decref(v);
	return res->status;
}

/* ---- the upload ---- */

struct reader {
	const gb_files_source *src;
	uint64_t from; /* where this request's body starts */
	uint64_t pos;  /* the next byte to send */
	uint64_t sent; /* every byte handed to libcurl, resent ones included */
	int err;       /* errno of a failed read */
};

static size_t
on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct reader *r = arg;
	uint64_t left = r->src->len - r->pos;
	size_t n = size * nmemb < left ? size * nmemb : (size_t)left;
	ssize_t got;

	if (n == 0)
		return 0;
	if (r->src->fd < 0) {
		memcpy(buf, (const char *)r->src->data + r->pos, n);
		got = (ssize_t)n;
	} else {
		while ((got = pread(r->src->fd, buf, n, (off_t)r->pos)) < 0 && errno == EINTR)
			;
		if (got <= 0) {
			r->err = got < 0 ? errno : EIO;
			return CURL_READFUNC_ABORT;
		}
	}
	r->pos += (uint64_t)got;
	r->sent += (uint64_t)got;
	return (size_t)got;
}

/* libcurl sends the body again (a reused connection found closed): back to where it starts. */
static int
on_seek(void *arg, curl_off_t offset, int origin)
{
	struct reader *r = arg;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->src->len - r->from)
		return CURL_SEEKFUNC_FAIL;
	r->pos = r->from + (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* The start request: *url gets the upload URL, checked to be on the API's host (the key goes
 * there too). */
static int
upload_start(gb_gemini *c, const gb_files_source *src, char *url, gb_gemini_result *res)
{
	const char *base = gb__gemini_base(c);
	char start[MAX_URL], len_h[80], type_h[200], *body;
	const char *headers[] = { "X-Goog-Upload-Protocol: resumable",
		"X-Goog-Upload-Command: start", len_h, type_h, "Content-Type: application/json",
		NULL };
	struct hdrs h = { .bad = 0 };
	json_t *meta = json_pack("{s:{s:s}}", "file", "display_name",
	    src->display_name != NULL ? src->display_name : "gbatch content");
	gb_gemini_call k = { .url = start, .headers = headers, .header_fn = on_header,
		.header_arg = &h };

	snprintf(start, sizeof(start), "%s/upload/v1beta/files", base);
	snprintf(len_h, sizeof(len_h), "X-Goog-Upload-Header-Content-Length: %" PRIu64, src->len);
	snprintf(type_h, sizeof(type_h), "X-Goog-Upload-Header-Content-Type: %.128s",
	    src->mime_type != NULL ? src->mime_type : "text/plain");
	if (meta == NULL || (body = json_dumps(meta, JSON_COMPACT)) == NULL) {
		json_decref(meta);
		snprintf(res->message, sizeof(res->message), "out of memory building the upload");
		return res->status = GB__GEMINI_E_NOMEM;
	}
	json_decref(meta);
	k.body = body;
	gb__files_exchange(c, &k, res);
	free(body);
	if (res->status != GB__GEMINI_OK)
		return res->status;
	gb__gemini_scrub(c, h.upload_url, strlen(h.upload_url));
	if (h.bad || h.upload_url[0] == '\0' || strncmp(h.upload_url, base, strlen(base)) != 0 ||
	    h.upload_url[strlen(base)] != '/') {
		snprintf(res->message, sizeof(res->message), "the upload start at %.200s gave %s",
		    start, h.bad || h.upload_url[0] != '\0' ? "an X-Goog-Upload-URL that is not a URL "
		    "of the API's host (or too long)" : "no X-Goog-Upload-URL");
		return res->status = GB__GEMINI_E_RESPONSE;
	}
	strlcpy(url, h.upload_url, MAX_URL);
	return GB__GEMINI_OK;
}

/* Asks the upload URL how much it holds: 1 with *offset when the upload can go on from there
 * (status active), 0 when it must start again (no answer, or any other status). */
static int
upload_query(gb_gemini *c, const char *url, uint64_t len, uint64_t *offset)
{
	const char *headers[] = { "X-Goog-Upload-Command: query", NULL };
	struct hdrs h = { .bad = 0 };
	gb_gemini_call k = { .url = url, .headers = headers, .body = "", .header_fn = on_header,
		.header_arg = &h };
	gb_gemini_result q = { 0 };
	char *end;
	unsigned long long n;
	int rc = 0;

	gb__files_exchange(c, &k, &q);
	if (q.status == GB__GEMINI_OK && !h.bad && strcasecmp(h.status, "active") == 0 &&
	    isdigit((unsigned char)h.received[0])) {
		errno = 0;
		n = strtoull(h.received, &end, 10);
		if (errno == 0 && *end == '\0' && n <= len) {
			*offset = n;
			rc = 1;
		}
	}
	gb__log_debug("upload query: %s, status \"%s\", %s bytes received", q.status ==
	    GB__GEMINI_OK ? "answered" : q.message, h.status, h.received);
	gb__gemini_result_fini(&q);
	return rc;
}

/* Sends the bytes from the offset, resuming after a retryable failure where the server says it
 * holds them, restarting (a new start) when it cannot say. */
static int
upload_bytes(gb_gemini *c, const gb_files_source *src, char *url, struct reader *r,
    gb_gemini_result *res)
{
	char off_h[64];
	const char *headers[] = { "X-Goog-Upload-Command: upload, finalize", off_h,
		"Content-Type:", "Expect:", NULL };
	gb_gemini_call k = { .url = url, .headers = headers, .read_fn = on_read, .seek_fn = on_seek,
		.read_arg = r };
	uint64_t delay = 0, from = 0;

	res->attempts = 0; /* the bytes are a step of their own, with attempts of their own */
	for (;;) {
		r->pos = r->from = from;
		r->err = 0;
		k.read_len = src->len - from;
		snprintf(off_h, sizeof(off_h), "X-Goog-Upload-Offset: %" PRIu64, from);
		if (!gb__gemini_call_once(c, &k, res, &delay)) {
			if (r->err != 0)
				snprintf(res->message, sizeof(res->message), "cannot read the content: %s",
				    strerror(r->err));
			return res->status;
		}
		gb__clock_sleep_ns(delay);
		res->backoff_seconds += (double)delay / 1e9;
		if (upload_query(c, url, src->len, &from) == 1) {
			gb__log_info("upload interrupted (%s); resuming at byte %" PRIu64, res->message,
			    from);
			continue;
		}
		gb__log_info("upload interrupted (%s); starting it again", res->message);
		from = 0;
		if (upload_start(c, src, url, res) != GB__GEMINI_OK)
			return res->status;
	}
}

int
gb__files_upload(gb_gemini *c, gb_tele *t, const gb_files_source *src, gb_gemini_file *f,
    gb_gemini_result *res)
{
	char url[MAX_URL];
	struct reader r = { .src = src };
	uint64_t t0 = gb__clock_mono_ns();
	gb_scope s;

	gb__gemini_result_fini(res);
	memset(f, 0, sizeof(*f));
	if (src->len > GB__FILES_MAX_BYTES) {
		snprintf(res->message, sizeof(res->message), "%" PRIu64 " bytes is more than the Files "
		    "API takes (2 GiB, %llu bytes, a file)", src->len, GB__FILES_MAX_BYTES);
		return res->status = GB__GEMINI_E_REQUEST;
	}
	s = gb__tele_scope_begin(t, "files.upload");
	if (upload_start(c, src, url, res) == GB__GEMINI_OK &&
	    upload_bytes(c, src, url, &r, res) == GB__GEMINI_OK)
		answer_file(res, f, "the upload");
	gb_tele_count(t, "file_bytes_uploaded", (double)r.sent, NULL, 0);
	if (res->status == GB__GEMINI_OK)
		gb_tele_count(t, "files_uploaded", 1, NULL, 0);
	gb__tele_scope_exit(&s);
	res->seconds = (double)(gb__clock_mono_ns() - t0) / 1e9;
	free(res->text);
	res->text = NULL;
	return res->status;
}

/* ---- waiting, deleting ---- */

static int
processing(const gb_gemini_file *f)
{
	return f->state[0] == '\0' || strcmp(f->state, "PROCESSING") == 0 ||
	    strcmp(f->state, "STATE_UNSPECIFIED") == 0;
}

/* One GET of f into f; res->status. */
static int
file_get(gb_gemini *c, gb_gemini_file *f, gb_gemini_result *res)
{
	char url[MAX_URL], name[sizeof(f->name)];
	gb_gemini_call k = { .url = url, .get = 1 };

	strlcpy(name, f->name, sizeof(name));
	snprintf(url, sizeof(url), "%s/v1beta/%s", gb__gemini_base(c), name);
	gb__gemini_result_fini(res);
	if (gb__files_exchange(c, &k, res) != GB__GEMINI_OK ||
	    answer_file(res, f, name) != GB__GEMINI_OK)
		return res->status;
	if (strcmp(f->name, name) != 0) {
		snprintf(res->message, sizeof(res->message), "asked for %s, the API answered with %s",
		    name, f->name);
		res->status = GB__GEMINI_E_RESPONSE;
	}
	return res->status;
}

static int
wait_loop(gb_gemini *c, gb_gemini_file *f, const gb_files_wait *w, gb_gemini_result *res)
{
	uint64_t first = w != NULL && w->first_ns > 0 ? w->first_ns : 250 * GB_NS_PER_MS;
	uint64_t max = w != NULL && w->max_ns > 0 ? w->max_ns : 8 * GB_NS_PER_SEC;
	uint64_t limit = w != NULL && w->deadline_ns > 0 ? w->deadline_ns : 600 * GB_NS_PER_SEC;
	uint64_t t0 = gb__clock_mono_ns(), step = first, now;

	while (processing(f)) {
		now = gb__clock_mono_ns();
		if (now - t0 >= limit) {
			snprintf(res->message, sizeof(res->message), "file %s is still %s after %gs",
			    f->name, f->state[0] != '\0' ? f->state : "not ACTIVE", (double)limit / 1e9);
			return res->status = GB__GEMINI_E_TIMEOUT;
		}
		gb__clock_sleep_ns(step < limit - (now - t0) ? step : limit - (now - t0));
		step = step * 2 < max ? step * 2 : max;
		if (file_get(c, f, res) != GB__GEMINI_OK)
			return res->status;
	}
	if (strcmp(f->state, "ACTIVE") == 0)
		return res->status = GB__GEMINI_OK;
	snprintf(res->message, sizeof(res->message), "file %s is %s: %s", f->name, f->state,
	    f->error[0] != '\0' ? f->error : "the API gives no reason");
	gb__gemini_scrub(c, res->message, strlen(res->message));
	return res->status = GB__GEMINI_E_API;
}

int
gb__files_wait_active(gb_gemini *c, gb_tele *t, gb_gemini_file *f, const gb_files_wait *w,
    gb_gemini_result *res)
{
	gb_scope s = gb__tele_scope_begin(t, "files.wait_active");

	gb__gemini_result_fini(res);
	wait_loop(c, f, w, res);
	gb__tele_scope_exit(&s);
	free(res->text);
	res->text = NULL;
	return res->status;
}

int
gb__files_delete(gb_gemini *c, const char *name, gb_gemini_result *res)
{
	json_t *answer = NULL;

	gb__gemini_rest(c, name, NULL, &answer, res);
	json_decref(answer);
	return res->status;
}
