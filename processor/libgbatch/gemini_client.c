/*
 * gemini_client.c - generateContent over one reused libcurl easy handle, with retries that
 * honour the server's RetryInfo. Everything the network sends is checked for type and size
 * before use and scrubbed of the key; libcurl and jansson errors become messages a user can
 * act on.
 */
#include "gemini_client.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <curl/curl.h>

#include "clock.h"
#include "log.h"

#define MAX_RESPONSE (64u << 20)
#define KEY_HEADER "x-goog-api-key: "
#define GOOGLE_KEY_TAIL 35 /* "AIza" and 35 of [0-9A-Za-z_-]: the shape of a Google API key */
#define MIN_MASKED_KEY 8   /* a shorter key (a test's) cannot be told from ordinary words */
#define MAX_SPARE_HANDLES 1024 /* easy handles of finished exchanges kept for the next ones */

struct gb_gemini {
	CURL *curl;
	struct curl_slist *headers; /* holds the key: wiped before it is freed */
	char *base;
	char *model;
	gb_gemini_opts o;
	unsigned connections;
	char errbuf[CURL_ERROR_SIZE];
	CURL **spare; /* easy handles of freed exchanges, reused by the next ones */
	size_t n_spare, cap_spare;
};

struct buf {
	char *data;
	size_t len;
	int too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
model_name_ok(const char *m)
{
	if (m == NULL || *m == '\0' || strlen(m) > 128)
		return 0;
	for (; *m != '\0'; m++)
		if (!isalnum((unsigned char)*m) && *m != '-' && *m != '.' && *m != '_')
			return 0;
	return 1;
}

/* "models/gemini-2.0-flash" and "gemini-2.0-flash" name the same model. */
static const char *
strip_models(const char *m)
{
	return m != NULL && strncmp(m, "models/", 7) == 0 ? m + 7 : m;
}

gb_gemini *
gb__gemini_new(const gb_gemini_opts *o, char *err, size_t errlen)
{
	gb_gemini *c;
	char *hdr = NULL;
	const char *base = o->api_base != NULL && *o->api_base != '\0' ? o->api_base :
	    GB__GEMINI_DEFAULT_BASE;
	size_t blen;

	if (o->api_key == NULL || *o->api_key == '\0') {
		snprintf(err, errlen, "no API key: set GEMINI_API_KEY");
		return NULL;
	}
	if (strpbrk(o->api_key, "\r\n") != NULL) {
		snprintf(err, errlen, "the API key contains a line break");
		return NULL;
	}
	if (!model_name_ok(strip_models(o->model))) {
		snprintf(err, errlen, "invalid model name \"%s\" (letters, digits, '-', '.', '_')",
		    o->model != NULL ? o->model : "");
		return NULL;
	}
	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
		snprintf(err, errlen, "invalid API base \"%s\" (use http://host[:port] or https://...)", base);
		return NULL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	c->o = *o;
	c->o.api_key = NULL;
	c->base = strdup(base);
	c->model = strdup(strip_models(o->model));
	if (c->base == NULL || c->model == NULL)
		goto nomem;
	blen = strlen(c->base);
	while (blen > 0 && c->base[blen - 1] == '/')
		c->base[--blen] = '\0';
	if (c->o.connect_timeout_ns == 0)
		c->o.connect_timeout_ns = 10 * GB_NS_PER_SEC;
	if (c->o.timeout_ns == 0)
		c->o.timeout_ns = 120 * GB_NS_PER_SEC;
	if (c->o.max_attempts == 0)
		c->o.max_attempts = 5;
	if (c->o.backoff_base_ns == 0)
		c->o.backoff_base_ns = GB_NS_PER_SEC;
	if (c->o.backoff_max_ns == 0)
		c->o.backoff_max_ns = 60 * GB_NS_PER_SEC;
	if (c->o.max_retry_delay_ns == 0)
		c->o.max_retry_delay_ns = 600 * GB_NS_PER_SEC;
	if (asprintf(&hdr, KEY_HEADER "%s", o->api_key) < 0) {
		hdr = NULL;
		goto nomem;
	}
	c->headers = curl_slist_append(NULL, hdr);
	explicit_bzero(hdr, strlen(hdr));
	free(hdr);
	if (c->headers == NULL ||
	    curl_slist_append(c->headers, "Content-Type: application/json") == NULL)
		goto nomem;
	if ((c->curl = curl_easy_init()) == NULL)
		goto nomem;
	return c;
nomem:
	gb__gemini_free(c);
	snprintf(err, errlen, "out of memory creating the Gemini client");
	return NULL;
}

void
gb__gemini_free(gb_gemini *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	while (c->n_spare > 0)
		curl_easy_cleanup(c->spare[--c->n_spare]);
	free(c->spare);
	if (c->headers != NULL) {
		explicit_bzero(c->headers->data, strlen(c->headers->data));
		curl_slist_free_all(c->headers);
	}
	free(c->base);
	free(c->model);
	free(c);
}

const char *
gb__gemini_model(const gb_gemini *c)
{
	return c->model;
}

unsigned
gb__gemini_connections(const gb_gemini *c)
{
	return c->connections;
}

int
gb__gemini_is_fatal(const gb_gemini_result *res)
{
	if (res->status == GB__GEMINI_E_QUOTA_DAY || res->status == GB__GEMINI_E_REQUEST)
		return 1;
	return res->status == GB__GEMINI_E_API &&
	    (res->http_status == 401 || res->http_status == 403 || res->http_status == 404 ||
	    gb__gemini_fatal_reason(res->reason) != NULL);
}

/* ---- transport ---- */

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *nd;

	if (n > MAX_RESPONSE - b->len) {
		b->too_big = 1;
		return 0;
	}
	if ((nd = realloc(b->data, b->len + n + 1)) == NULL)
		return 0;
	memcpy(nd + b->len, ptr, n);
	b->data = nd;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int
curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return 1;
	default:
		return 0;
	}
}

static int
http_retryable(long http)
{
	return http == 408 || http == 429 || http == 500 || http == 502 || http == 503 || http == 504;
}

/* Prepares handle h for one exchange: POST body to url, or DELETE url when body is NULL. The
 * answer goes into b, libcurl's message into errbuf. */
static void
easy_setup(const gb_gemini *c, CURL *h, const char *url, const char *body, struct buf *b,
    char *errbuf)
{
	curl_easy_reset(h);
	errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->o.connect_timeout_ns / GB_NS_PER_MS));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->o.timeout_ns / GB_NS_PER_MS));
	curl_easy_setopt(h, CURLOPT_USERAGENT, "gbatch/0.1");
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
}

/* Masks with '*' every occurrence of key (klen bytes, at least MIN_MASKED_KEY) in the len
 * bytes of s. */
static void
mask_key(char *s, size_t len, const char *key, size_t klen)
{
	char *p = s, *end = s + len;

	while (klen >= MIN_MASKED_KEY && (p = memmem(p, (size_t)(end - p), key, klen)) != NULL) {
		memset(p, '*', klen);
		p += klen;
	}
}

static int
key_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Masks anything in the len bytes of s shaped like a Google API key ("AIza" and 35 key
 * bytes). */
static void
mask_google_keys(char *s, size_t len)
{
	char *p = s, *end = s + len;

	while ((p = memmem(p, (size_t)(end - p), "AIza", 4)) != NULL) {
		size_t n = 4;
		while (n < 4 + GOOGLE_KEY_TAIL && p + n < end && key_char(p[n]))
			n++;
		if (n == 4 + GOOGLE_KEY_TAIL)
			memset(p, '*', n);
		p += n;
	}
}

/* A field cut short (messages are bounded) may end in the first part of the key or of a
 * Google key: masks such a tail, down to MIN_MASKED_KEY bytes of the key or "AIza". */
static void
mask_cut_tail(char *s, size_t len, const char *key, size_t klen)
{
	for (size_t k = klen > len ? len : klen; k >= MIN_MASKED_KEY && klen >= MIN_MASKED_KEY; k--) {
		if (memcmp(s + len - k, key, k) == 0) {
			memset(s + len - k, '*', k);
			return;
		}
	}
	for (size_t i = len; i-- > 0 && len - i <= 4 + GOOGLE_KEY_TAIL;) {
		if (len - i >= 4 && memcmp(s + i, "AIza", 4) == 0) {
			size_t n = 4;
			while (i + n < len && key_char(s[i + n]))
				n++;
			if (i + n == len)
				memset(s + i, '*', n);
			return;
		}
		if (!key_char(s[i]))
			return;
	}
}

static const char *
client_key(const gb_gemini *c)
{
	return c->headers->data + strlen(KEY_HEADER);
}

/* The raw answer, before it is parsed: the key masked, and in an error answer (whose message
 * is shown to the user) anything that looks like a Google API key. */
static void
scrub_body(const gb_gemini *c, struct buf *b, long http)
{
	if (b->data == NULL)
		return;
	mask_key(b->data, b->len, client_key(c), strlen(client_key(c)));
	if (http < 200 || http >= 300)
		mask_google_keys(b->data, b->len);
}

/* And what was taken from it, in case the server escaped the key in its JSON: everything the
 * server said is scrubbed before anyone prints, logs, stores or reports it. */
static void
scrub_result(const gb_gemini *c, gb_gemini_result *res)
{
	const char *key = client_key(c);
	size_t klen = strlen(key);
	char *const fields[] = { res->message, res->api_status, res->reason, res->finish_reason,
		res->block_reason };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		mask_key(fields[i], strlen(fields[i]), key, klen);
		mask_google_keys(fields[i], strlen(fields[i]));
		mask_cut_tail(fields[i], strlen(fields[i]), key, klen);
	}
	if (res->text != NULL)
		mask_key(res->text, strlen(res->text), key, klen);
}

/* Reads the outcome of one finished exchange on h (libcurl's rc, the answer in b) into res.
 * A 2xx answer is parsed as generateContent when generate is set, else its body is kept in
 * res->text. Returns 1 when the failure is worth retrying, 0 otherwise (success included);
 * res->status tells which; *retry_delay_ns gets the server's RetryInfo (0 without one). */
static int
classify(gb_gemini *c, CURL *h, CURLcode rc, struct buf *b, const char *errbuf, int generate,
    gb_gemini_result *res, uint64_t *retry_delay_ns)
{
	long http = 0, nconn = 0;
	int per_day = 0, retry = 0;

	*retry_delay_ns = 0;
	res->attempts++;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
	if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK && nconn > 0)
		c->connections += (unsigned)nconn;
	res->http_status = http;
	scrub_body(c, b, http);
	res->api_status[0] = res->reason[0] = '\0';
	free(res->text);
	res->text = NULL;
	res->finish_reason[0] = res->block_reason[0] = '\0';
	memset(&res->usage, 0, sizeof(res->usage));

	if (rc != CURLE_OK) {
		if (b->too_big) {
			snprintf(res->message, sizeof(res->message),
			    "the API's answer is larger than %u MiB", MAX_RESPONSE >> 20);
			res->status = GB__GEMINI_E_RESPONSE;
		} else if (rc == CURLE_OPERATION_TIMEDOUT) {
			snprintf(res->message, sizeof(res->message),
			    "no answer from %s within %.1fs (timeout)", c->base,
			    (double)c->o.timeout_ns / 1e9);
			res->status = GB__GEMINI_E_TIMEOUT;
			retry = 1;
		} else {
			snprintf(res->message, sizeof(res->message), "cannot talk to %s: %s", c->base,
			    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
			res->status = rc == CURLE_OUT_OF_MEMORY ? GB__GEMINI_E_NOMEM : GB__GEMINI_E_TRANSPORT;
			retry = curl_retryable(rc);
		}
	} else if (http >= 200 && http < 300) {
		res->message[0] = '\0';
		if (generate) {
			gb__gemini_parse_response(b->data != NULL ? b->data : "", b->len, res);
		} else {
			res->text = b->data != NULL ? b->data : strdup("");
			b->data = NULL;
			res->status = res->text != NULL ? GB__GEMINI_OK : GB__GEMINI_E_NOMEM;
		}
	} else {
		gb__gemini_parse_error(http, b->data != NULL ? b->data : "", b->len, res, retry_delay_ns,
		    &per_day);
		res->retry_delay_seconds = (double)*retry_delay_ns / 1e9;
		if (http == 429 && per_day) {
			res->status = GB__GEMINI_E_QUOTA_DAY;
			strlcat(res->message, " (daily quota exhausted: not retried)", sizeof(res->message));
		} else {
			res->status = GB__GEMINI_E_API;
			/* a refused key or project stays refused, whatever the status says */
			retry = http_retryable(http) && gb__gemini_fatal_reason(res->reason) == NULL;
		}
	}
	free(b->data);
	memset(b, 0, sizeof(*b));
	scrub_result(c, res);
	if (res->status != GB__GEMINI_OK) {
		if (retry)
			res->retryable_errors++;
		else
			res->non_retryable_errors++;
	}
	return retry;
}

/* Uniform in [0, 1). */
static double
unit_random(void)
{
	return (double)arc4random() / 4294967296.0;
}

/* Exponential backoff with equal jitter: half the step fixed, half random. */
static uint64_t
backoff_ns(const gb_gemini *c, unsigned failures)
{
	uint64_t step = c->o.backoff_base_ns;

	for (unsigned i = 1; i < failures && step < c->o.backoff_max_ns; i++)
		step *= 2;
	if (step > c->o.backoff_max_ns)
		step = c->o.backoff_max_ns;
	return step / 2 + (uint64_t)((double)(step / 2) * unit_random());
}

/* After a retryable failure: 1 with *delay set when another attempt is worth making, 0 with
 * the reason appended to res->message when the call should end. */
static int
next_delay(const gb_gemini *c, gb_gemini_result *res, uint64_t server_delay, uint64_t *delay)
{
	if (res->attempts >= c->o.max_attempts) {
		char more[96];
		snprintf(more, sizeof(more), " (gave up after %u attempts)", res->attempts);
		strlcat(res->message, more, sizeof(res->message));
		return 0;
	}
	if (server_delay > c->o.max_retry_delay_ns) {
		char more[128];
		snprintf(more, sizeof(more), " (the server asks to wait %.0fs, more than the %.0fs "
		    "allowed: not retried)", (double)server_delay / 1e9,
		    (double)c->o.max_retry_delay_ns / 1e9);
		strlcat(res->message, more, sizeof(res->message));
		return 0;
	}
	/* The server's retryDelay is a floor (waiting less only earns another 429); up to a
	 * tenth more spreads out clients that were told the same delay. */
	if (server_delay > 0)
		*delay = server_delay + (uint64_t)((double)server_delay / 10 * unit_random());
	else
		*delay = backoff_ns(c, res->attempts);
	gb__log_debug("Gemini call failed (%s); retrying in %.2fs", res->message, (double)*delay / 1e9);
	return 1;
}

/* The URL and JSON body of rq; 0, or an error status with res->message set. */
static int
build(const gb_gemini *c, const gb_gemini_request *rq, char **url, char **body,
    gb_gemini_result *res)
{
	const char *model = rq->model != NULL ? strip_models(rq->model) : c->model;
	json_t *req;

	*url = *body = NULL;
	if (!model_name_ok(model)) {
		snprintf(res->message, sizeof(res->message), "invalid model name \"%.128s\"", model);
		return res->status = GB__GEMINI_E_REQUEST;
	}
	/* written straight; when that fails, jansson tells a bad request from no memory */
	if ((*body = gb__gemini_request_text(rq, NULL)) == NULL) {
		if ((req = gb__gemini_request_json(rq)) == NULL) {
			snprintf(res->message, sizeof(res->message),
			    "cannot build the request: a text part is not valid UTF-8 (or out of memory)");
			return res->status = GB__GEMINI_E_REQUEST;
		}
		*body = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(15));
		json_decref(req);
	}
	if (*body == NULL ||
	    asprintf(url, "%s/v1beta/models/%s:generateContent", c->base, model) < 0) {
		free(*body);
		*url = *body = NULL;
		snprintf(res->message, sizeof(res->message), "out of memory building the request");
		return res->status = GB__GEMINI_E_NOMEM;
	}
	return GB__GEMINI_OK;
}

/* Sends body to url (DELETE when body is NULL) on the client's handle until it succeeds or
 * the failure is final, sleeping between attempts. */
static int
perform(gb_gemini *c, const char *url, const char *body, int generate, gb_gemini_result *res)
{
	uint64_t t0 = gb__clock_mono_ns(), delay, server_delay;
	struct buf b = { NULL, 0, 0 };

	for (;;) {
		easy_setup(c, c->curl, url, body, &b, c->errbuf);
		CURLcode rc = curl_easy_perform(c->curl);
		if (!classify(c, c->curl, rc, &b, c->errbuf, generate, res, &server_delay) ||
		    !next_delay(c, res, server_delay, &delay))
			break;
		gb__clock_sleep_ns(delay);
		res->backoff_seconds += (double)delay / 1e9;
	}
	res->seconds = (double)(gb__clock_mono_ns() - t0) / 1e9;
	return res->status;
}

int
gb__gemini_generate(gb_gemini *c, const gb_gemini_request *rq, gb_gemini_result *res)
{
	char *url, *body;

	gb__gemini_result_fini(res);
	if (build(c, rq, &url, &body, res) != GB__GEMINI_OK)
		return res->status;
	perform(c, url, body, 1, res);
	free(url);
	free(body);
	return res->status;
}

int
gb__gemini_rest(gb_gemini *c, const char *path, const json_t *body, json_t **out,
    gb_gemini_result *res)
{
	char *url = NULL, *text = NULL;
	json_error_t jerr;

	*out = NULL;
	gb__gemini_result_fini(res);
	if ((body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) ||
	    asprintf(&url, "%s/v1beta/%s", c->base, path) < 0) {
		free(text);
		snprintf(res->message, sizeof(res->message), "out of memory building the request");
		return res->status = GB__GEMINI_E_NOMEM;
	}
	perform(c, url, text, 0, res);
	free(url);
	free(text);
	if (res->status != GB__GEMINI_OK)
		return res->status;
	*out = json_loads(res->text, JSON_DECODE_ANY, &jerr);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		snprintf(res->message, sizeof(res->message), "the API's answer to %.64s is not a "
		    "JSON object", path);
		return res->status = GB__GEMINI_E_RESPONSE;
	}
	return res->status;
}

/* ---- exchanges driven by a caller's multi handle ---- */

struct gb_gemini_xfer {
	gb_gemini *c;
	CURL *easy;
	char *url;
	char *body;
	struct buf b;
	uint64_t t0;
	char errbuf[CURL_ERROR_SIZE];
};

/* An easy handle for an exchange: a spare one (easy_setup resets it before every attempt), or
 * a new one. NULL out of memory. */
static CURL *
handle_take(gb_gemini *c)
{
	return c->n_spare > 0 ? c->spare[--c->n_spare] : curl_easy_init();
}

/* Keeps h (in no multi handle) for the next exchange, or cleans it up. */
static void
handle_give_back(gb_gemini *c, CURL *h)
{
	if (c->n_spare == c->cap_spare && c->cap_spare < MAX_SPARE_HANDLES) {
		size_t nc = c->cap_spare > 0 ? c->cap_spare * 2 : 8;
		CURL **ns = realloc(c->spare, nc * sizeof(*ns));
		if (ns != NULL) {
			c->spare = ns;
			c->cap_spare = nc;
		}
	}
	if (c->n_spare < c->cap_spare)
		c->spare[c->n_spare++] = h;
	else
		curl_easy_cleanup(h);
}

gb_gemini_xfer *
gb__gemini_xfer_new(gb_gemini *c, const gb_gemini_request *rq, gb_gemini_result *res)
{
	gb_gemini_xfer *x;

	gb__gemini_result_fini(res);
	if ((x = calloc(1, sizeof(*x))) == NULL || (x->easy = handle_take(c)) == NULL) {
		free(x);
		snprintf(res->message, sizeof(res->message), "out of memory building the request");
		res->status = GB__GEMINI_E_NOMEM;
		return NULL;
	}
	x->c = c;
	if (build(c, rq, &x->url, &x->body, res) != GB__GEMINI_OK) {
		gb__gemini_xfer_free(x);
		return NULL;
	}
	x->t0 = gb__clock_mono_ns();
	return x;
}

CURL *
gb__gemini_xfer_easy(gb_gemini_xfer *x)
{
	free(x->b.data);
	memset(&x->b, 0, sizeof(x->b));
	easy_setup(x->c, x->easy, x->url, x->body, &x->b, x->errbuf);
	return x->easy;
}

CURL *
gb__gemini_xfer_handle(const gb_gemini_xfer *x)
{
	return x->easy;
}

int
gb__gemini_xfer_done(gb_gemini_xfer *x, CURLcode rc, gb_gemini_result *res, uint64_t *delay_ns)
{
	uint64_t server_delay;
	int again;

	again = classify(x->c, x->easy, rc, &x->b, x->errbuf, 1, res, &server_delay) &&
	    next_delay(x->c, res, server_delay, delay_ns);
	res->seconds = (double)(gb__clock_mono_ns() - x->t0) / 1e9;
	return again;
}

void
gb__gemini_xfer_free(gb_gemini_xfer *x)
{
	if (x == NULL)
		return;
	if (x->easy != NULL)
		handle_give_back(x->c, x->easy);
	free(x->b.data);
	free(x->url);
	free(x->body);
	free(x);
}

/* ---- other exchanges on the client's handle: the Files API (gemini_files.c) ---- */

/* The key header and the call's headers, in a list of its own (the key wiped on free). */
static struct curl_slist *
call_headers(const gb_gemini *c, const gb_gemini_call *k)
{
	struct curl_slist *h = curl_slist_append(NULL, c->headers->data), *n;

	for (size_t i = 0; h != NULL && k->headers != NULL && k->headers[i] != NULL; i++) {
		if ((n = curl_slist_append(h, k->headers[i])) == NULL) {
			explicit_bzero(h->data, strlen(h->data));
			curl_slist_free_all(h);
			return NULL;
		}
		h = n;
	}
	return h;
}

int
gb__gemini_call_once(gb_gemini *c, const gb_gemini_call *k, gb_gemini_result *res,
    uint64_t *delay_ns)
{
	struct curl_slist *h = call_headers(c, k);
	struct buf b = { NULL, 0, 0 };
	uint64_t server_delay;
	CURLcode rc;
	int again;

	if (h == NULL) {
		snprintf(res->message, sizeof(res->message), "out of memory building the request");
		res->status = GB__GEMINI_E_NOMEM;
		return 0;
	}
	easy_setup(c, c->curl, k->url, k->body, &b, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	if (k->body == NULL && k->read_fn != NULL) {
		/* a long upload: no limit on the whole, only on a stall of timeout_ns */
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
		curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, k->read_fn);
		curl_easy_setopt(c->curl, CURLOPT_READDATA, k->read_arg);
		curl_easy_setopt(c->curl, CURLOPT_SEEKFUNCTION, k->seek_fn);
		curl_easy_setopt(c->curl, CURLOPT_SEEKDATA, k->read_arg);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)k->read_len);
		curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, 0L);
		curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME,
		    (long)(c->o.timeout_ns / GB_NS_PER_SEC > 0 ? c->o.timeout_ns / GB_NS_PER_SEC : 1));
	} else if (k->body == NULL && k->get) {
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	}
	if (k->header_fn != NULL) {
		curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, k->header_fn);
		curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, k->header_arg);
	}
	rc = curl_easy_perform(c->curl);
	again = classify(c, c->curl, rc, &b, c->errbuf, 0, res, &server_delay) &&
	    next_delay(c, res, server_delay, delay_ns);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
	explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(h);
	return again;
}

void
gb__gemini_scrub(const gb_gemini *c, char *s, size_t len)
{
	mask_key(s, len, client_key(c), strlen(client_key(c)));
	mask_google_keys(s, len);
}

const char *
gb__gemini_base(const gb_gemini *c)
{
	return c->base;
}
