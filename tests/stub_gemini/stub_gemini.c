/*
 * stub_gemini.c - gbatch-stub-gemini, a local stand-in for the Gemini REST API (generateContent,
 * countTokens, cachedContents create/delete; the Files API in stub_files.c, the Batch API in
 * stub_batch.c) with deterministic answers, realistic usageMetadata, latency and a fault plan,
 * so the client, the processor, the tests and the demo run without a key or a network.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <bsd/string.h>
#include <jansson.h>

#include "clock.h"
#include "log.h"
#include "parse.h"
#include "stub_batch.h"
#include "stub_files.h"

#define MAX_BODY (32u << 20)
#define MAX_FAULTS 64
#define MAX_SEEN 1024
#define DEFAULT_KEY "stub-key"
#define DEFAULT_SLOW_NS (10ull * GB_NS_PER_SEC)
#define DEFAULT_RETRY_NS (GB_NS_PER_SEC)
#define IMPLICIT_CACHE_MIN_TOKENS 1024
#define MAX_CACHES 1024
#define DEFAULT_PARTS 1000000
#define MAX_PARTS 20000000
#define MAX_ECHO 4096
#define MAX_FIXTURE (1u << 20)

/* The real API's answer to a wrong key, as recorded (tests/fixtures/gemini/api-key-invalid.json:
 * FirebaseExtended/vertexai-sdk-test-data, mock-responses/googleai/unary-failure-api-key.json). */
static const char bad_key_reply[] =
    "{\n  \"error\": {\n    \"code\": 400,\n"
    "    \"message\": \"API key not valid. Please pass a valid API key.\",\n"
    "    \"status\": \"INVALID_ARGUMENT\",\n    \"details\": [\n      {\n"
    "        \"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\",\n"
    "        \"reason\": \"API_KEY_INVALID\",\n        \"domain\": \"googleapis.com\",\n"
    "        \"metadata\": {\n          \"service\": \"generativelanguage.googleapis.com\"\n"
    "        }\n      },\n      {\n"
    "        \"@type\": \"type.googleapis.com/google.rpc.LocalizedMessage\",\n"
    "        \"locale\": \"en-US\",\n"
    "        \"message\": \"API key not valid. Please pass a valid API key.\"\n      },\n"
    "      {\n        \"@type\": \"type.googleapis.com/google.rpc.DebugInfo\",\n"
    "        \"detail\": \"Invalid API key: key1234\"\n      }\n    ]\n  }\n}\n";

enum fault_kind {
	F_NONE,
	F_429,
	F_QUOTA,
	F_400,
	F_403,
	F_404,
	F_500,
	F_503,
	F_504,
	F_SLOW,
	F_MALFORMED,
	F_FEW,
	F_MANY,
	F_FENCED,
	F_TEXT,
	F_MAXTOKENS,
	F_BLOCKED,
	F_SAFETY,
	F_ECHO_HEADERS,
	F_ECHO_ESCAPED,
	F_PARTS,
	F_FIXTURE,
};

static const char *const fault_names[] = {
	[F_NONE] = "none", [F_429] = "429", [F_QUOTA] = "quota", [F_400] = "400", [F_403] = "403",
	[F_404] = "404", [F_500] = "500", [F_503] = "503", [F_504] = "504", [F_SLOW] = "slow",
	[F_MALFORMED] = "malformed", [F_FEW] = "few", [F_MANY] = "many", [F_FENCED] = "fenced",
	[F_TEXT] = "text", [F_MAXTOKENS] = "maxtokens", [F_BLOCKED] = "blocked", [F_SAFETY] = "safety",
	[F_ECHO_HEADERS] = "echo-headers", [F_ECHO_ESCAPED] = "echo-escaped", [F_PARTS] = "parts",
	[F_FIXTURE] = "fixture",
};

enum fault_only { ONLY_ANY, ONLY_BATCH, ONLY_SINGLE };

struct fault {
	enum fault_kind kind;
	enum fault_only only;
	unsigned remaining; /* 0 with forever set: every matching request */
	bool forever;
	uint64_t delay_ns; /* 429/quota: retryDelay; slow: how long to stall */
	uint64_t n;        /* parts: the empty parts after the answer */
	char *body;        /* fixture: the file's bytes, served verbatim */
	int status;        /* fixture: its HTTP status */
};

/* An explicit context cache (cachedContents). */
struct cache {
	char name[64];
	char model[128];
	long tokens;
	bool deleted;
};

struct stub {
	const char *key;
	uint64_t latency_ns;
	FILE *log;
	pthread_mutex_t lock; /* guards faults, seen, log, request_no */
	pthread_cond_t wake;  /* broadcast at shutdown to cut sleeps short */
	bool stopping;
	struct fault faults[MAX_FAULTS];
	size_t n_faults;
	uint64_t seen[MAX_SEEN]; /* hashes of content already sent: the implicit cache */
	size_t n_seen;
	uint64_t request_no;
	struct cache caches[MAX_CACHES];
	size_t n_caches;
};

static struct stub stub = {
	.key = DEFAULT_KEY,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
};

/* What one request asked for, as far as the stand-in understands it. */
struct ask {
	char model[128];
	bool count_tokens;
	bool json;
	const json_t *schema; /* borrowed from the request body */
	size_t prompt_chars;
	size_t inline_parts;
	uint64_t content_hash;
	size_t content_chars;
	size_t nq;
	char **questions; /* nq texts; for a single "Question:" prompt nq = 1 and numbered = false */
	bool numbered;
	const char *cached_content; /* the request's cachedContent, borrowed from the body */
	const json_t *gen;          /* its generationConfig, borrowed */
	const json_t *safety;       /* its safetySettings, borrowed */
	size_t file_parts;          /* fileData parts (stub_files.c) */
	bool bad_file;              /* one names no ACTIVE file */
	long cache_tokens;          /* what that cache holds */
};

struct conn {
	void *files; /* a Files API request's state (stub_files.c) */
	char *body;
	size_t len, cap; /* cap doubles: a 20 MiB batch body must not cost a copy per chunk */
	bool too_big;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: gbatch-stub-gemini [--port N] [--latency DUR] [--log FILE] [--api-key KEY]\n"
	    "                          [--fault KIND[:COUNT][:OPT=VAL...]]... [--files-processing N]\n"
	    "                          [--files-fault SPEC]... [--batch-time DUR]\n"
	    "                          [--batch-fault SPEC]...\n"
	    "A local Gemini REST stand-in: POST /v1beta/models/MODEL:generateContent and :countTokens,\n"
	    "POST /v1beta/cachedContents (a cache: its tokens come back as cachedContentTokenCount of\n"
	    "every generateContent naming it in cachedContent) and DELETE /v1beta/cachedContents/ID.\n"
	    "  --port N       port on 127.0.0.1 (default 0: pick a free one); prints\n"
	    "                 \"listening on 127.0.0.1:PORT\" on stdout once ready\n"
	    "  --latency DUR  delay before every response (e.g. 200ms; default 0)\n"
	    "  --log FILE     one JSON line per request: n, mono_ms and real_ms (at arrival), method,\n"
	    "                 path, model, questions, json, status, fault, key_ok (never the key\n"
	    "                 itself), content_hash (FNV-1a 64 of the content parts' text, hex), the\n"
	    "                 usageMetadata returned, cached_content (the cache a request named) and\n"
	    "                 cache_name (the cache created or deleted), generation_config and\n"
	    "                 safety_settings (the request's generationConfig and safetySettings,\n"
	    "                 as sent)\n"
	    "  --api-key KEY  the key expected in x-goog-api-key (default $STUB_GEMINI_API_KEY,\n"
	    "                 else \"" DEFAULT_KEY "\"); missing: 401, wrong: the real API's 400\n"
	    "                 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID, as recorded\n"
	    "  --fault SPEC   applied to the next COUNT matching requests (default 1; 0 = all),\n"
	    "                 faults queued in the order given. KIND: 429, quota (per-day 429), 400,\n"
	    "                 403, 404, 500, 503, 504, slow, malformed, few, many, fenced, text,\n"
	    "                 maxtokens, blocked, safety, echo-headers (a 400 whose message lists\n"
	    "                 the request's headers, the key included, as a careless server\n"
	    "                 would), echo-escaped (the same after N bytes of filler, each\n"
	    "                 header value's first letter a JSON \\u escape), parts (the answer\n"
	    "                 followed by N empty text parts), fixture (the file=PATH served\n"
	    "                 verbatim, with status=N or the body's error.code, else 200: a\n"
	    "                 recorded reply of the real API, tests/fixtures/gemini/).\n"
	    "                 OPT: delay=DUR (429/quota retryDelay, default 1s; slow stall,\n"
	    "                 default 10s), only=batch|single, n=N (parts: default 1000000;\n"
	    "                 echo-escaped: the filler), file=PATH and status=N (fixture)\n"
	    "Files API (stub_files.c): POST /upload/v1beta/files (X-Goog-Upload-Command start,\n"
	    "then \"upload, finalize\" or query on the X-Goog-Upload-URL it returns), GET and\n"
	    "DELETE /v1beta/files/ID; generateContent refuses a fileData part naming no ACTIVE\n"
	    "file (400). The log gets file, declared, size_received, adler32 (of the bytes\n"
	    "received, in order), mime_type and bytes (of that request) for those requests.\n"
	    "  --files-processing N  GETs that answer PROCESSING before ACTIVE (default 1)\n"
	    "  --files-fault SPEC    failed[:N] (the next N files end FAILED) or upload-503[:N]\n"
	    "                 (the next N uploads keep half their bytes and answer 503)\n"
	    "Batch API (stub_batch.c): POST /v1beta/models/MODEL:batchGenerateContent (inline\n"
	    "inputConfig.requests.requests[] or inputConfig.fileName, a JSONL file uploaded above),\n"
	    "GET /v1beta/batches/ID, GET /v1beta/batches (pageSize, pageToken), POST\n"
	    "/v1beta/batches/ID:cancel, DELETE /v1beta/batches/ID and GET\n"
	    "/download/v1beta/files/batch-ID:download?alt=media (the responses file of a file\n"
	    "batch). Each answer is the one generateContent gives the same request, computed in\n"
	    "input order when the batch is created. The log gets batch_op (create, get, list,\n"
	    "cancel, delete, download), batch, state and, for create, display_name, input,\n"
	    "requests, errors, partial and usage (the sum of the answers' usageMetadata).\n"
	    "Limits: a create body of 20 MiB (over it: 400), 100000 requests a batch, a JSONL\n"
	    "file of 128 MiB; 100 batches kept (then the oldest done one is forgotten; 429 when\n"
	    "none is done).\n"
	    "  --batch-time DUR      a batch is PENDING for the first quarter of DUR, RUNNING\n"
	    "                 (batchStats counting answers) until DUR, then done (default 1s)\n"
	    "  --batch-fault SPEC    errors:PCT (PCT%% of every batch's requests, rounded down,\n"
	    "                 chosen by key, answered with a per-request error), partial:PCT[:KIND]\n"
	    "                 (as many others answered with --fault KIND: few, many, fenced,\n"
	    "                 text, maxtokens, blocked or safety; default few), expire[:N] or\n"
	    "                 fail[:N] (the next N batches end EXPIRED or FAILED), create-503[:N]\n"
	    "                 or get-503[:N] (the next N creates or gets answer 503),\n"
	    "                 create-lost[:N] (the next N creates make the batch, answer 503)\n"
	    "Questions are the lines \"Question N: ...\" of the last text part of the request;\n"
	    "answer N is \"Answer to question N: <question>\", a JSON array when the request asks\n"
	    "for application/json. A lone \"Question: ...\" gets \"Answer to question: <question>\".\n"
	    "  --help, --version\n"
	    "SIGTERM or SIGINT stops it cleanly.\n");
}

/* Reads the fixture file path into f->body; its status is f->status when given, else the
 * body's error.code, else 200. */
static int
load_fixture(struct fault *f, const char *path, char *err, size_t errlen)
{
	FILE *in = fopen(path, "r");
	size_t len = 0;
	json_t *v;

	if (in == NULL || (f->body = malloc(MAX_FIXTURE + 1)) == NULL ||
	    (len = fread(f->body, 1, MAX_FIXTURE + 1, in)) > MAX_FIXTURE || ferror(in) ||
	    memchr(f->body, '\0', len) != NULL) {
		snprintf(err, errlen, "cannot read fixture \"%.160s\" (a text file of 1 MiB at most)", path);
		if (in != NULL)
			fclose(in);
		return -1;
	}
	fclose(in);
	f->body[len] = '\0';
	if (f->status == 0) {
		json_int_t code;

		v = json_loads(f->body, 0, NULL);
		code = json_is_integer(json_object_get(json_object_get(v, "error"), "code")) ?
		    json_integer_value(json_object_get(json_object_get(v, "error"), "code")) : 200;
		json_decref(v);
		if (code < 100 || code > 599) {
			snprintf(err, errlen, "fixture \"%.160s\": error.code %lld is no HTTP status "
			    "(give status=N)", path, (long long)code);
			return -1;
		}
		f->status = (int)code;
	}
	return 0;
}

static int
parse_fault(const char *spec, struct fault *f, char *err, size_t errlen)
{
	char buf[PATH_MAX + 256], *save = NULL, *tok;
	const char *file = NULL;
	size_t i;

	if (strlcpy(buf, spec, sizeof(buf)) >= sizeof(buf)) {
		snprintf(err, errlen, "fault \"%.40s...\" is too long", spec);
		return -1;
	}
	memset(f, 0, sizeof(*f));
	f->remaining = 1;
	tok = strtok_r(buf, ":", &save);
	if (tok == NULL)
		goto bad_kind;
	for (i = F_429; i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
		if (strcmp(tok, fault_names[i]) == 0)
			f->kind = (enum fault_kind)i;
	if (f->kind == F_NONE)
		goto bad_kind;
	f->delay_ns = f->kind == F_SLOW ? DEFAULT_SLOW_NS : DEFAULT_RETRY_NS;
	f->n = DEFAULT_PARTS;
	for (int pos = 0; (tok = strtok_r(NULL, ":", &save)) != NULL; pos++) {
		uint64_t v;
		if (strncmp(tok, "delay=", 6) == 0) {
			if (gb__parse_duration(tok + 6, &f->delay_ns, err, errlen) != 0)
				return -1;
		} else if (strncmp(tok, "n=", 2) == 0) {
			if (gb__parse_uint(tok + 2, 0, MAX_PARTS, &f->n, err, errlen) != 0)
				return -1;
		} else if (strncmp(tok, "file=", 5) == 0 && f->kind == F_FIXTURE) {
			file = spec + (tok + 5 - buf);
		} else if (strncmp(tok, "status=", 7) == 0 && f->kind == F_FIXTURE) {
			if (gb__parse_uint(tok + 7, 100, 599, &v, err, errlen) != 0)
				return -1;
			f->status = (int)v;
		} else if (strcmp(tok, "only=batch") == 0) {
			f->only = ONLY_BATCH;
		} else if (strcmp(tok, "only=single") == 0) {
			f->only = ONLY_SINGLE;
		} else if (pos == 0 && gb__parse_uint(tok, 0, 1000000, &v, err, errlen) == 0) {
			f->remaining = (unsigned)v;
			f->forever = v == 0;
		} else {
			snprintf(err, errlen, "fault \"%s\": bad part \"%s\" (use COUNT, delay=DUR, "
			    "only=batch, only=single, n=N, or for fixture file=PATH and status=N)", spec, tok);
			return -1;
		}
	}
	if (f->kind == F_FIXTURE) {
		char path[PATH_MAX];
		if (file == NULL) {
			snprintf(err, errlen, "fault \"%s\": a fixture needs file=PATH", spec);
			return -1;
		}
		strlcpy(path, file, sizeof(path));
		path[strcspn(path, ":")] = '\0';
		return load_fixture(f, path, err, errlen);
	}
	return 0;
bad_kind:
	snprintf(err, errlen, "fault \"%s\": unknown kind (use 429, quota, 400, 403, 404, 500, 503, "
	    "504, slow, malformed, few, many, fenced, text, maxtokens, blocked, safety, echo-headers, "
	    "echo-escaped, parts or fixture)", spec);
	return -1;
}

/* Takes the fault for a request of nq questions: the first queued fault with requests left
 * whose filter matches. */
static struct fault
take_fault(size_t nq)
{
	struct fault none = { .kind = F_NONE };

	for (size_t i = 0; i < stub.n_faults; i++) {
		struct fault *f = &stub.faults[i];
		if (!f->forever && f->remaining == 0)
			continue;
		if ((f->only == ONLY_BATCH && nq <= 1) || (f->only == ONLY_SINGLE && nq > 1))
			continue;
		if (!f->forever)
			f->remaining--;
		return *f;
	}
	return none;
}

/* Sleeps ns, or less when the stand-in is stopping. */
static void
stall(uint64_t ns)
{
	struct timespec ts;
	uint64_t until;

	if (ns == 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	until = (uint64_t)ts.tv_sec * GB_NS_PER_SEC + (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec = (time_t)(until / GB_NS_PER_SEC);
	ts.tv_nsec = (long)(until % GB_NS_PER_SEC);
	pthread_mutex_lock(&stub.lock);
	while (!stub.stopping && pthread_cond_timedwait(&stub.wake, &stub.lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&stub.lock);
}

static uint64_t
fnv1a(const char *s, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static long
tokens_of(size_t chars)
{
	return (long)((chars + 3) / 4);
}

static void
ask_free(struct ask *a)
{
	for (size_t i = 0; i < a->nq; i++)
		free(a->questions[i]);
	free(a->questions);
}

static void
add_question(struct ask *a, const char *start, size_t len)
{
	char **q = realloc(a->questions, (a->nq + 1) * sizeof(*q));
	if (q == NULL)
		return;
	a->questions = q;
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\r'))
		len--;
	if ((q[a->nq] = strndup(start, len)) != NULL)
		a->nq++;
}

/* Finds "Question N: text" lines (numbered) or, failing that, one "Question: text" line. */
static void
find_questions(struct ask *a, const char *text)
{
	const char *line = text;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		const char *p = line;
		if (len > 9 && strncmp(p, "Question ", 9) == 0) {
			p += 9;
			while (*p >= '0' && *p <= '9')
				p++;
			if (p > line + 9 && p[0] == ':' && p[1] == ' ' && p + 2 <= line + len) {
				add_question(a, p + 2, len - (size_t)(p + 2 - line));
				a->numbered = true;
			}
		}
		line = end != NULL ? end + 1 : NULL;
	}
	if (a->nq > 0)
		return;
	for (line = text; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		if (len > 10 && strncmp(line, "Question: ", 10) == 0) {
			add_question(a, line + 10, len - 10);
			return;
		}
		line = end != NULL ? end + 1 : NULL;
	}
}

/* Adds one part's text (or inline blob) to the ask; returns its text, NULL for other parts.
 * Content parts (everything but the final text part) also go into the content hash. */
static const char *
scan_part(struct ask *a, const json_t *part, bool content)
{
	const char *t = json_string_value(json_object_get(part, "text"));

	if (t != NULL) {
		size_t n = strlen(t);
		a->prompt_chars += n;
		if (content) {
			a->content_hash = fnv1a(t, n, a->content_hash);
			a->content_chars += n;
		}
	} else if (json_object_get(part, "inlineData") != NULL ||
	    json_object_get(part, "inline_data") != NULL) {
		a->inline_parts++;
	} else if (json_object_get(part, "fileData") != NULL) {
		a->file_parts++;
		a->bad_file |= !stub_files_part_ok(json_object_get(part, "fileData"));
	}
	return t;
}

/* Reads what the stand-in needs from a request body; -1 when it is not a JSON object. */
static int
parse_ask(struct ask *a, const json_t *req)
{
	const json_t *contents = json_object_get(req, "contents");
	const json_t *gc = json_object_get(req, "generationConfig");
	const json_t *sys = json_object_get(json_object_get(req, "systemInstruction"), "parts");
	const char *mime, *last = NULL;
	size_t i, j, n, np;

	if (!json_is_object(req))
		return -1;
	a->content_hash = 1469598103934665603ull;
	for (j = 0; j < json_array_size(sys); j++)
		scan_part(a, json_array_get(sys, j), false);
	n = json_array_size(contents);
	for (i = 0; i < n; i++) {
		const json_t *parts = json_object_get(json_array_get(contents, i), "parts");
		np = json_array_size(parts);
		for (j = 0; j < np; j++) {
			/* The last part of the last turn holds the questions; the rest is content. */
			bool final = i + 1 == n && j + 1 == np;
			const char *t = scan_part(a, json_array_get(parts, j), !final);
			if (final)
				last = t;
		}
	}
	a->cached_content = json_string_value(json_object_get(req, "cachedContent"));
	a->gen = gc;
	a->safety = json_object_get(req, "safetySettings");
	mime = json_string_value(json_object_get(gc, "responseMimeType"));
	a->json = mime != NULL && strcmp(mime, "application/json") == 0;
	a->schema = json_object_get(gc, "responseSchema");
	if (last != NULL)
		find_questions(a, last);
	return 0;
}

static json_t *
gemini_error(int code, const char *status, const char *message)
{
	return json_pack("{s:{s:i, s:s, s:s, s:[]}}", "error", "code", code, "message", message,
	    "status", status, "details");
}

static json_t *
error_for(enum fault_kind k, uint64_t delay_ns, int *code)
{
	char delay[64];
	json_t *e, *details;

	snprintf(delay, sizeof(delay), "%.9gs", (double)delay_ns / 1e9);
	switch (k) {
	case F_429:
	case F_QUOTA:
		*code = 429;
		e = gemini_error(429, "RESOURCE_EXHAUSTED", k == F_QUOTA ?
		    "You exceeded your current quota, please check your plan and billing details." :
		    "Resource has been exhausted (e.g. check quota).");
		details = json_object_get(json_object_get(e, "error"), "details");
		json_array_append_new(details, json_pack("{s:s, s:[{s:s, s:s, s:{s:s, s:s}, s:s}]}",
		    "@type", "type.googleapis.com/google.rpc.QuotaFailure", "violations",
		    "quotaMetric", k == F_QUOTA ?
		    "generativelanguage.googleapis.com/generate_content_free_tier_requests" :
		    "generativelanguage.googleapis.com/generate_requests_per_model",
		    "quotaId", k == F_QUOTA ? "GenerateRequestsPerDayPerProjectPerModel-FreeTier" :
		    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
		    "quotaDimensions", "location", "global", "model", "stub", "quotaValue",
		    k == F_QUOTA ? "250" : "10"));
		json_array_append_new(details, json_pack("{s:s, s:s}", "@type",
		    "type.googleapis.com/google.rpc.RetryInfo", "retryDelay", delay));
		return e;
	case F_400:
		*code = 400;
		return gemini_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.");
	case F_403:
		*code = 403;
		return gemini_error(403, "PERMISSION_DENIED",
		    "The caller does not have permission");
	case F_404:
		*code = 404;
		return gemini_error(404, "NOT_FOUND", "models/stub is not found for API version v1beta.");
	case F_500:
		*code = 500;
		return gemini_error(500, "INTERNAL", "An internal error has occurred. Please retry.");
	case F_503:
		*code = 503;
		return gemini_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.");
	case F_504:
		*code = 504;
		return gemini_error(504, "DEADLINE_EXCEEDED", "The request timed out. Please try again.");
	default:
		return NULL;
	}
}

static json_t *
answer_text_value(const struct ask *a, size_t i)
{
	char *s = NULL;
	json_t *v;

	if (a->numbered) {
		if (asprintf(&s, "Answer to question %zu: %s", i + 1, a->questions[i]) < 0)
			return NULL;
	} else if (a->nq == 1) {
		if (asprintf(&s, "Answer to question: %s", a->questions[0]) < 0)
			return NULL;
	} else if (asprintf(&s, "Stub answer about %zu characters of content.", a->content_chars) < 0) {
		return NULL;
	}
	v = json_string(s);
	free(s);
	return v;
}

/* A deterministic value of the given (OpenAPI-subset) schema for question i. */
static json_t *
schema_value(const struct ask *a, const json_t *schema, size_t i, int depth)
{
	const char *type = json_string_value(json_object_get(schema, "type"));
	const json_t *props;
	const char *key;
	json_t *val, *out;

	if (type == NULL || depth > 8)
		return answer_text_value(a, i);
	if (strcasecmp(type, "object") == 0) {
		out = json_object();
		props = json_object_get(schema, "properties");
		json_object_foreach((json_t *)(uintptr_t)props, key, val)
			json_object_set_new(out, key, schema_value(a, val, i, depth + 1));
		return out;
	}
	if (strcasecmp(type, "array") == 0) {
		out = json_array();
		json_array_append_new(out, schema_value(a, json_object_get(schema, "items"), i,
		    depth + 1));
		return out;
	}
	if (strcasecmp(type, "integer") == 0)
		return json_integer((json_int_t)i + 1);
	if (strcasecmp(type, "number") == 0)
		return json_real((double)i + 1.5);
	if (strcasecmp(type, "boolean") == 0)
		return json_boolean(i % 2 == 0);
	return answer_text_value(a, i);
}

static bool
is_type(const json_t *schema, const char *type)
{
	const char *t = json_string_value(json_object_get(schema, "type"));

	return t != NULL && strcasecmp(t, type) == 0;
}

/* The reply text. Numbered questions get a JSON array of answers (the prompt asks for one);
 * a single question gets plain text, or a JSON value when the request asks for JSON. */
static char *
answer_text(const struct ask *a, enum fault_kind k)
{
	size_t n = a->nq, i;
	json_t *arr, *v;
	char *s, *fenced;

	if (k == F_TEXT)
		return strdup("Here is what I found in the document, in a few words of prose.");
	if (!a->numbered || (a->schema != NULL && !is_type(a->schema, "array"))) {
		v = a->schema != NULL ? schema_value(a, a->schema, 0, 0) : answer_text_value(a, 0);
		if (v == NULL)
			return NULL;
		s = a->json ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) :
		    strdup(json_string_value(v) != NULL ? json_string_value(v) : "");
		json_decref(v);
		return s;
	}
	if (k == F_FEW && n > 0)
		n--;
	arr = json_array();
	for (i = 0; i < n; i++) {
		const json_t *items = a->schema != NULL ? json_object_get(a->schema, "items") : NULL;
		json_array_append_new(arr, items != NULL ? schema_value(a, items, i, 0) :
		    answer_text_value(a, i));
	}
	if (k == F_MANY)
		json_array_append_new(arr, json_string("An answer to a question nobody asked."));
	s = json_dumps(arr, JSON_INDENT(2));
	json_decref(arr);
	if (k == F_FENCED && s != NULL) {
		if (asprintf(&fenced, "```json\n%s\n```\n", s) < 0)
			fenced = NULL;
		free(s);
		s = fenced;
	}
	return s;
}

/* The implicit cache of 2.5 models: content already seen is billed as cached. */
static long
cached_tokens(const struct ask *a)
{
	long tokens = tokens_of(a->content_chars);
	bool hit = false;

	if (strstr(a->model, "2.5") == NULL || tokens < IMPLICIT_CACHE_MIN_TOKENS)
		return 0;
	for (size_t i = 0; i < stub.n_seen; i++)
		hit = hit || stub.seen[i] == a->content_hash;
	if (!hit && stub.n_seen < MAX_SEEN)
		stub.seen[stub.n_seen++] = a->content_hash;
	return hit ? tokens : 0;
}

static json_t *
usage_json(const struct ask *a, const char *text, long cached)
{
	long prompt = tokens_of(a->prompt_chars) + 258 * (long)a->inline_parts + a->cache_tokens;
	long cand = text != NULL ? tokens_of(strlen(text)) : 0;
	long thoughts = strstr(a->model, "2.5") != NULL ? 16 + 8 * (long)a->nq : 0;
	json_t *u = json_pack("{s:I, s:I}", "promptTokenCount", (json_int_t)prompt,
	    "totalTokenCount", (json_int_t)(prompt + cand + thoughts));

	if (text != NULL)
		json_object_set_new(u, "candidatesTokenCount", json_integer(cand));
	if (thoughts > 0)
		json_object_set_new(u, "thoughtsTokenCount", json_integer(thoughts));
	if (cached + a->cache_tokens > 0)
		json_object_set_new(u, "cachedContentTokenCount", json_integer(cached + a->cache_tokens));
	return u;
}

static json_t *
success_json(const struct ask *a, enum fault_kind k, long cached)
{
	json_t *cand, *resp;
	char *text = NULL;
	const char *finish = "STOP";

	if (k == F_BLOCKED) {
		return json_pack("{s:{s:s, s:[{s:s, s:s}]}, s:o, s:s}", "promptFeedback",
		    "blockReason", "SAFETY", "safetyRatings", "category",
		    "HARM_CATEGORY_DANGEROUS_CONTENT", "probability", "HIGH",
		    "usageMetadata", usage_json(a, NULL, cached), "modelVersion", a->model);
	}
	cand = json_pack("{s:{s:s}, s:i}", "content", "role", "model", "index", 0);
	if (k == F_MAXTOKENS || k == F_SAFETY) {
		finish = k == F_MAXTOKENS ? "MAX_TOKENS" : "SAFETY";
	} else {
		text = answer_text(a, k);
		json_object_set_new(json_object_get(cand, "content"), "parts",
		    json_pack("[{s:s}]", "text", text != NULL ? text : ""));
	}
	json_object_set_new(cand, "finishReason", json_string(finish));
	resp = json_pack("{s:[o], s:o, s:s, s:s}", "candidates", cand, "usageMetadata",
	    usage_json(a, text, cached), "modelVersion", a->model, "responseId", "stub");
	free(text);
	return resp;
}

static void
log_request(const char *method, const char *path, const struct ask *a, int status,
    enum fault_kind k, bool key_ok, uint64_t mono_ns, uint64_t real_ns, const json_t *body)
{
	const json_t *usage = json_object_get(body, "usageMetadata");
	json_t *line;
	char *s, hash[24];

	if (stub.log == NULL)
		return;
	snprintf(hash, sizeof(hash), "%016" PRIx64, a->content_hash);
	line = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:I, s:b, s:i, s:s, s:b, s:s}",
	    "n", (json_int_t)stub.request_no,
	    "mono_ms", (json_int_t)(mono_ns / GB_NS_PER_MS),
	    "real_ms", (json_int_t)(real_ns / GB_NS_PER_MS), "method", method, "path", path,
	    "model", a->model, "questions", (json_int_t)a->nq, "json", a->json, "status", status,
	    "fault", fault_names[k], "key_ok", key_ok, "content_hash", hash);
	if (usage != NULL)
		json_object_set(line, "usage", (json_t *)(uintptr_t)usage);
	if (a->cached_content != NULL)
		json_object_set_new(line, "cached_content", json_string(a->cached_content));
	if (a->file_parts > 0)
		json_object_set_new(line, "file_parts", json_integer((json_int_t)a->file_parts));
	if (json_is_string(json_object_get(body, "name")))
		json_object_set(line, "cache_name", json_object_get(body, "name"));
	if (a->gen != NULL)
		json_object_set(line, "generation_config", (json_t *)(uintptr_t)a->gen);
	if (a->safety != NULL)
		json_object_set(line, "safety_settings", (json_t *)(uintptr_t)a->safety);
	s = json_dumps(line, JSON_COMPACT);
	if (s != NULL) {
		fprintf(stub.log, "%s\n", s);
		fflush(stub.log);
	}
	free(s);
	json_decref(line);
}

static enum MHD_Result
reply(struct MHD_Connection *c, int status, json_t *body)
{
	char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	struct MHD_Response *r;
	enum MHD_Result ret;

	json_decref(body);
	if (s == NULL)
		s = strdup("{\"error\":{\"code\":500,\"message\":\"stand-in out of memory\",\"status\":\"INTERNAL\"}}");
	r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json; charset=UTF-8");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_raw(struct MHD_Connection *c, int status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
	    MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "application/json; charset=UTF-8");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	char *text = cls;

	(void)kind;
	strlcat(text, key, MAX_ECHO);
	strlcat(text, ": ", MAX_ECHO);
	strlcat(text, value != NULL ? value : "", MAX_ECHO);
	strlcat(text, "; ", MAX_ECHO);
	return MHD_YES;
}

/* The echo-headers fault: a 400 whose message repeats every request header; echo-escaped:
 * the same after pad bytes of filler, the first letter of each header value written as a JSON
 * \u escape (a server may escape what it echoes: the key is then not in the raw bytes). */
static json_t *
echo_headers(struct MHD_Connection *c, int *status, size_t pad)
{
	char text[MAX_ECHO] = "Bad request; ";

	for (size_t i = strlen(text); pad > 0 && i < MAX_ECHO / 2; pad--, i++)
		text[i] = 'x', text[i + 1] = '\0';
	strlcat(text, " the headers were: ", MAX_ECHO);
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, text);
	*status = 400;
	return gemini_error(400, "INVALID_ARGUMENT", text);
}

/* Sends body with every ": X" of its message written ": \u00XX" instead. */
static enum MHD_Result
reply_escaped(struct MHD_Connection *c, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT), *out, *o;
	enum MHD_Result ret;

	json_decref(body);
	if (s == NULL || (out = malloc(strlen(s) * 6 + 1)) == NULL) {
		free(s);
		return reply_raw(c, 500, "{\"error\":{\"code\":500,\"message\":\"stand-in: no memory\"}}");
	}
	o = out;
	for (const char *p = s; *p != '\0'; p++) {
		*o++ = *p;
		if (p[0] == ':' && p[1] == ' ' && p[2] != '\0' && p[2] != '"' && p[2] != '\\') {
			o += sprintf(o, " \\u%04x", (unsigned char)p[2]);
			p += 2;
		}
	}
	*o = '\0';
	ret = reply_raw(c, status, out);
	free(out);
	free(s);
	return ret;
}

/* The parts fault: body's one answer part followed by n parts {"text":""}, as raw JSON (a
 * tree of that many parts would cost the stand-in gigabytes). */
static enum MHD_Result
reply_parts(struct MHD_Connection *c, json_t *body, uint64_t n)
{
	static const char marker[] = "{\"text\":\"\\u0001gb-parts\"}", part[] = "{\"text\":\"\"}";
	json_t *parts = json_object_get(json_object_get(json_array_get(json_object_get(body,
	    "candidates"), 0), "content"), "parts");
	char *s, *at, *out, *o;
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len;

	json_array_append_new(parts, json_pack("{s:s}", "text", "\001gb-parts"));
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (s == NULL || (at = strstr(s, marker)) == NULL ||
	    (out = malloc((len = strlen(s)) + n * sizeof(part))) == NULL) {
		free(s);
		return reply_raw(c, 500, "{\"error\":{\"code\":500,\"message\":\"stand-in: no parts\"}}");
	}
	o = out;
	memcpy(o, s, (size_t)(at - s));
	o += at - s;
	for (uint64_t i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		memcpy(o, part, sizeof(part) - 1);
		o += sizeof(part) - 1;
	}
	if (n == 0 && o > out && o[-1] == ',')
		o--;
	len -= (size_t)(at - s) + sizeof(marker) - 1;
	memcpy(o, at + sizeof(marker) - 1, len);
	o += len;
	free(s);
	r = MHD_create_response_from_buffer((size_t)(o - out), out, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json; charset=UTF-8");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* Splits "/v1beta/models/MODEL:METHOD" into the ask; -1 for any other path. */
static int
parse_path(const char *url, struct ask *a)
{
	static const char prefix[] = "/v1beta/models/";
	const char *colon;
	size_t mlen;

	if (strncmp(url, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	url += sizeof(prefix) - 1;
	if ((colon = strrchr(url, ':')) == NULL)
		return -1;
	mlen = (size_t)(colon - url);
	if (mlen == 0 || mlen >= sizeof(a->model) || memchr(url, '/', mlen) != NULL)
		return -1;
	memcpy(a->model, url, mlen);
	a->model[mlen] = '\0';
	if (strcmp(colon + 1, "countTokens") == 0)
		a->count_tokens = true;
	else if (strcmp(colon + 1, "generateContent") != 0)
		return -1;
	return 0;
}

/* POST /v1beta/cachedContents: stores the content's size under a new name. */
static json_t *
cache_create(struct ask *a, const json_t *req, int *status)
{
	const char *model = json_string_value(json_object_get(req, "model"));
	const char *ttl = json_string_value(json_object_get(req, "ttl"));
	struct cache *c;
	json_t *body;

	if (model == NULL || strncmp(model, "models/", 7) != 0 || strlen(model + 7) == 0 ||
	    strlen(model + 7) >= sizeof(a->model) || a->prompt_chars + a->inline_parts == 0) {
		*status = 400;
		return gemini_error(400, "INVALID_ARGUMENT",
		    "A cachedContent needs \"model\": \"models/...\" and contents.");
	}
	strlcpy(a->model, model + 7, sizeof(a->model));
	pthread_mutex_lock(&stub.lock);
	if (stub.n_caches == MAX_CACHES) {
		pthread_mutex_unlock(&stub.lock);
		*status = 429;
		return gemini_error(429, "RESOURCE_EXHAUSTED", "Too many cached contents.");
	}
	c = &stub.caches[stub.n_caches];
	snprintf(c->name, sizeof(c->name), "cachedContents/stub%zu-%08" PRIx64, stub.n_caches + 1,
	    a->content_hash & 0xffffffffu);
	strlcpy(c->model, a->model, sizeof(c->model));
	c->tokens = tokens_of(a->prompt_chars) + 258 * (long)a->inline_parts;
	stub.n_caches++;
	body = json_pack("{s:s, s:s, s:s, s:{s:I}}", "name", c->name, "model", model, "ttl",
	    ttl != NULL ? ttl : "3600s", "usageMetadata", "totalTokenCount", (json_int_t)c->tokens);
	pthread_mutex_unlock(&stub.lock);
	return body;
}

/* A generateContent naming a cache: NULL with a->cache_tokens set when it may use it, else
 * the error to answer. */
static json_t *
cache_use(struct ask *a, int *status)
{
	json_t *err = NULL;
	size_t i;

	pthread_mutex_lock(&stub.lock);
	for (i = 0; i < stub.n_caches; i++)
		if (!stub.caches[i].deleted && strcmp(stub.caches[i].name, a->cached_content) == 0)
			break;
	if (i == stub.n_caches) {
		*status = 404;
		err = gemini_error(404, "NOT_FOUND", "CachedContent not found (or permission denied).");
	} else if (strcmp(stub.caches[i].model, a->model) != 0) {
		*status = 400;
		err = gemini_error(400, "INVALID_ARGUMENT",
		    "Model used by GenerateContent request and CachedContent has to be the same.");
	} else {
		a->cache_tokens = stub.caches[i].tokens;
	}
	pthread_mutex_unlock(&stub.lock);
	return err;
}

/* DELETE /v1beta/cachedContents/NAME. */
static enum MHD_Result
serve_delete(struct MHD_Connection *c, const char *url)
{
	uint64_t mono_ns = gb__clock_mono_ns(), real_ns = gb__clock_real_ns();
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-goog-api-key");
	bool key_ok = key != NULL && strcmp(key, stub.key) == 0;
	struct ask a = { .model = "" };
	int status = 200;
	json_t *body = NULL;
	size_t i;

	if (!key_ok) {
		status = key == NULL ? 401 : 400;
		body = key == NULL ? gemini_error(401, "UNAUTHENTICATED", "API key missing.") :
		    json_loads(bad_key_reply, 0, NULL);
	}
	pthread_mutex_lock(&stub.lock);
	if (body == NULL && strncmp(url, "/v1beta/cachedContents/", 23) == 0) {
		for (i = 0; i < stub.n_caches; i++) {
			struct cache *ca = &stub.caches[i];
			if (!ca->deleted && strcmp(ca->name, url + 8) == 0) {
				ca->deleted = true;
				body = json_object();
				break;
			}
		}
	}
	if (body == NULL) {
		status = 404;
		body = gemini_error(404, "NOT_FOUND", "CachedContent not found (or permission denied).");
	}
	stub.request_no++;
	json_t *logged = json_pack("{s:s}", "name", url + strlen("/v1beta/"));
	log_request("DELETE", url, &a, status, F_NONE, key_ok, mono_ns, real_ns,
	    status == 200 ? logged : body);
	json_decref(logged);
	pthread_mutex_unlock(&stub.lock);
	return reply(c, status, body);
}

/* The missing and wrong key answers of every endpoint: NULL when the key is right. */
json_t *
stub_gemini_key_check(struct MHD_Connection *c, int *status, bool *key_ok)
{
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-goog-api-key");

	*key_ok = key != NULL && strcmp(key, stub.key) == 0;
	if (*key_ok)
		return NULL;
	*status = key == NULL ? 401 : 400;
	return key == NULL ? gemini_error(401, "UNAUTHENTICATED",
	    "Method doesn't allow unregistered callers (callers without established identity). "
	    "Please use API Key or other form of API consumer identity to call this API.") :
	    json_loads(bad_key_reply, 0, NULL);
}

bool
stub_gemini_answer_fault(const char *name)
{
	static const enum fault_kind shaping[] = { F_FEW, F_MANY, F_FENCED, F_TEXT, F_MAXTOKENS,
		F_BLOCKED, F_SAFETY };

	for (size_t i = 0; name != NULL && i < sizeof(shaping) / sizeof(shaping[0]); i++)
		if (strcmp(name, fault_names[shaping[i]]) == 0)
			return true;
	return false;
}

/* What POST /v1beta/models/MODEL:generateContent answers for req without a --fault: the
 * same checks, answers, usageMetadata and caches (explicit and implicit) as serve(). */
json_t *
stub_gemini_generate(const char *model, const json_t *req, const char *fault, int *status)
{
	struct ask a = { .model = "" };
	enum fault_kind k = F_NONE;
	json_t *body = NULL;
	long cached;

	for (size_t i = F_429; stub_gemini_answer_fault(fault) && i <= F_FIXTURE; i++)
		if (strcmp(fault, fault_names[i]) == 0)
			k = (enum fault_kind)i;
	*status = 200;
	strlcpy(a.model, model, sizeof(a.model));
	if (parse_ask(&a, req) != 0) {
		*status = 400;
		body = gemini_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
	} else if (a.bad_file) {
		*status = 400;
		body = gemini_error(400, "FAILED_PRECONDITION", "A fileData part names no ACTIVE file.");
	} else if (a.cached_content == NULL || (body = cache_use(&a, status)) == NULL) {
		pthread_mutex_lock(&stub.lock);
		cached = cached_tokens(&a);
		pthread_mutex_unlock(&stub.lock);
		body = success_json(&a, k, cached);
	}
	ask_free(&a);
	return body;
}

static enum MHD_Result
serve(struct MHD_Connection *c, const char *url, struct conn *cn)
{
	uint64_t mono_ns = gb__clock_mono_ns(), real_ns = gb__clock_real_ns();
	struct ask a = { .model = "" };
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-goog-api-key");
	bool key_ok = key != NULL && strcmp(key, stub.key) == 0;
	json_t *req = NULL, *body;
	const char *raw = NULL; /* served verbatim instead of body, when set */
	struct fault f = { .kind = F_NONE };
	int status = 200;
	long cached = 0;
	enum MHD_Result ret;

	bool create = strcmp(url, "/v1beta/cachedContents") == 0;

	if (!create && parse_path(url, &a) != 0) {
		status = 404;
		body = gemini_error(404, "NOT_FOUND", "The requested URL was not found on this server.");
	} else if (key == NULL) {
		status = 401;
		body = gemini_error(401, "UNAUTHENTICATED",
		    "Method doesn't allow unregistered callers (callers without established identity). "
		    "Please use API Key or other form of API consumer identity to call this API.");
	} else if (!key_ok) {
		status = 400;
		raw = bad_key_reply;
		body = json_loads(raw, 0, NULL);
	} else if (cn->too_big) {
		status = 413;
		body = gemini_error(413, "INVALID_ARGUMENT", "Request payload size exceeds the limit.");
	} else if ((req = json_loadb(cn->body != NULL ? cn->body : "", cn->len, 0, NULL)) == NULL ||
	    parse_ask(&a, req) != 0) {
		status = 400;
		body = gemini_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
	} else if (a.bad_file) {
		status = 400;
		body = gemini_error(400, "FAILED_PRECONDITION", "A fileData part names no ACTIVE file.");
	} else if (create) {
		body = cache_create(&a, req, &status);
	} else if (a.cached_content != NULL && (body = cache_use(&a, &status)) != NULL) {
		/* an unknown or deleted cache, or one of another model: refused */
	} else {
		pthread_mutex_lock(&stub.lock);
		if (!a.count_tokens) {
			f = take_fault(a.nq);
			cached = cached_tokens(&a);
		}
		pthread_mutex_unlock(&stub.lock);
		if (a.count_tokens)
			body = json_pack("{s:I}", "totalTokens",
			    (json_int_t)(tokens_of(a.prompt_chars) + 258 * (long)a.inline_parts));
		else if (f.kind == F_FIXTURE) {
			status = f.status;
			raw = f.body;
			body = json_loads(raw, 0, NULL);
		} else if (f.kind == F_ECHO_HEADERS || f.kind == F_ECHO_ESCAPED)
			body = echo_headers(c, &status, f.kind == F_ECHO_ESCAPED ? f.n : 0);
		else if ((body = error_for(f.kind, f.delay_ns, &status)) == NULL)
			body = success_json(&a, f.kind, cached);
	}
	stall(stub.latency_ns + (f.kind == F_SLOW ? f.delay_ns : 0));
	pthread_mutex_lock(&stub.lock);
	stub.request_no++;
	log_request("POST", url, &a, status, f.kind, key_ok, mono_ns, real_ns,
	    f.kind == F_MALFORMED ? NULL : body);
	pthread_mutex_unlock(&stub.lock);
	if (raw != NULL) {
		json_decref(body);
		ret = reply_raw(c, status, raw);
	} else if (f.kind == F_MALFORMED) {
		json_decref(body);
		ret = reply_raw(c, 200, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"[\\\"Ans");
	} else if (f.kind == F_PARTS && status == 200) {
		ret = reply_parts(c, body, f.n);
	} else if (f.kind == F_ECHO_ESCAPED) {
		ret = reply_escaped(c, status, body);
	} else {
		ret = reply(c, status, body);
	}
	json_decref(req);
	ask_free(&a);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct conn *cn = *con_cls;

	(void)cls;
	(void)version;
	if (cn == NULL) {
		if ((cn = calloc(1, sizeof(*cn))) == NULL)
			return MHD_NO;
		*con_cls = cn;
		if (!stub_files_claims(url))
			return MHD_YES;
	}
	if (stub_files_claims(url))
		return stub_files_handle(c, url, method, upload, upload_size, &cn->files);
	if (*upload_size > 0) {
		if (!cn->too_big && cn->len + *upload_size <= MAX_BODY) {
			if (cn->len + *upload_size + 1 > cn->cap) {
				size_t cap = cn->cap > 0 ? cn->cap : 65536;
				while (cap < cn->len + *upload_size + 1)
					cap *= 2;
				char *nb = realloc(cn->body, cap);
				if (nb == NULL)
					return MHD_NO;
				cn->body = nb;
				cn->cap = cap;
			}
			memcpy(cn->body + cn->len, upload, *upload_size);
			cn->len += *upload_size;
			cn->body[cn->len] = '\0';
		} else {
			cn->too_big = true;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (stub_batch_claims(url))
		return stub_batch_handle(c, url, method, cn->body, cn->len, cn->too_big);
	if (strcmp(method, "DELETE") == 0)
		return serve_delete(c, url);
	if (strcmp(method, "POST") != 0)
		return reply(c, 405, gemini_error(405, "INVALID_ARGUMENT", "Use POST or DELETE."));
	return serve(c, url, cn);
}

static void
request_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (cn != NULL) {
		stub_files_done(cn->files);
		free(cn->body);
		free(cn);
		*con_cls = NULL;
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "latency", required_argument, NULL, 'l' },
		{ "log", required_argument, NULL, 'L' },
		{ "api-key", required_argument, NULL, 'k' },
		{ "fault", required_argument, NULL, 'f' },
		{ "files-processing", required_argument, NULL, 'P' },
		{ "files-fault", required_argument, NULL, 'F' },
		{ "batch-time", required_argument, NULL, 'T' },
		{ "batch-fault", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	uint64_t port = 0;
	const char *env_key = getenv("STUB_GEMINI_API_KEY");
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	sigset_t sigs;
	int opt, sig;

	gb__log_init(argv[0]);
	if (env_key != NULL && *env_key != '\0')
		stub.key = env_key;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (gb__parse_uint(optarg, 0, 65535, &port, err, sizeof(err)) != 0)
				goto bad;
			break;
		case 'l':
			if (gb__parse_duration(optarg, &stub.latency_ns, err, sizeof(err)) != 0)
				goto bad;
			break;
		case 'L':
			if ((stub.log = fopen(optarg, "a")) == NULL) {
				gb__log_warn("cannot open request log \"%s\"", optarg);
				return 2;
			}
			break;
		case 'k':
			stub.key = optarg;
			break;
		case 'f':
			if (stub.n_faults == MAX_FAULTS) {
				snprintf(err, sizeof(err), "more than %d faults", MAX_FAULTS);
				goto bad;
			}
			if (parse_fault(optarg, &stub.faults[stub.n_faults], err, sizeof(err)) != 0)
				goto bad;
			stub.n_faults++;
			break;
		case 'P':
		case 'F':
			if (stub_files_option(opt == 'P' ? "files-processing" : "files-fault", optarg, err,
			    sizeof(err)) != 0)
				goto bad;
			break;
		case 'T':
		case 'B':
			if (stub_batch_option(opt == 'T' ? "batch-time" : "batch-fault", optarg, err,
			    sizeof(err)) != 0)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("gbatch-stub-gemini %s\n", GBATCH_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		snprintf(err, sizeof(err), "unexpected argument \"%s\"", argv[optind]);
		goto bad;
	}

	stub_files_init(stub.log, stub.key, &stub.lock, &stub.request_no);
	stub_batch_init(stub.log, &stub.lock, &stub.request_no);
	/* Block the stop signals before the server's threads start, so only sigwait sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
	    MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
	if (d == NULL) {
		gb__log_warnx("cannot listen on 127.0.0.1:%" PRIu64 " (port in use?)", port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening on 127.0.0.1:%u\n", info != NULL ? (unsigned)info->port : (unsigned)port);
	fflush(stdout);

	while (sigwait(&sigs, &sig) != 0)
		;
	pthread_mutex_lock(&stub.lock);
	stub.stopping = true;
	pthread_cond_broadcast(&stub.wake);
	pthread_mutex_unlock(&stub.lock);
	MHD_stop_daemon(d);
	if (stub.log != NULL)
		fclose(stub.log);
	return 0;
bad:
	gb__usage_error("%s", err);
}
