/*
 * batch_processor.c - gb_processor_process_questions: one batched Gemini call for N answers,
 * checked and repaired with individual calls, optional comparison with asking one by one, and
 * the seed's telemetry scopes and metrics around every step.
 */
#include <gbatch/processor.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>
#include <jansson.h>

#include "clock.h"
#include "batch_steps.h"
#include "gemini_client.h"
#include "log.h"

#define NS(seconds) ((uint64_t)((seconds) * 1e9))

struct gb_processor {
	gb_gemini *client;
	gb_tele *tele;
	char *system;
};

/* Per-method cost, as the seed's metrics.batch / metrics.individual. */
struct method {
	unsigned calls;
	int64_t prompt, output, cached, thoughts, total;
	unsigned retries;
	double time;
};

struct answer {
	char *text;         /* NULL when failed */
	json_t *structured; /* schema runs: the parsed answer */
	const char *source; /* "batch", "individual", "error" */
	char *error;
	char finish[32];
	char block[40];
};

struct gb_result {
	size_t n;
	char **questions;
	struct answer *answers;
	struct answer *individual; /* compare mode: the one-by-one answers; else NULL */
	bool has_schema;
	struct method batch, indiv, usage;
	const char *batch_outcome; /* "complete", "partial", "failed", "skipped" */
	size_t batch_received;
	char *batch_error;
	char *fatal;
	double processing_time;
};

/* What one run shares between its steps. */
struct run {
	gb_processor *p;
	const gb_content *content;
	size_t n_content;
	const json_t *schema; /* the user's schema for one answer, or NULL */
	const char *cached;   /* "cachedContents/..." holding the content and system, or NULL */
	gb_result *r;
};

void
gb_processor_opts_init(gb_processor_opts *o)
{
	memset(o, 0, sizeof(*o));
}

gb_processor *
gb_processor_new(const gb_processor_opts *o, char *err, size_t errlen)
{
	gb_processor *p;
	gb_gemini_opts co = {
		.api_base = o->api_base != NULL ? o->api_base : GB_DEFAULT_API_BASE,
		.api_key = o->api_key,
		.model = o->model != NULL && *o->model != '\0' ? o->model : GB_DEFAULT_MODEL,
		.connect_timeout_ns = NS(o->connect_timeout_s),
		.timeout_ns = NS(o->timeout_s),
		.max_attempts = o->max_attempts,
		.backoff_base_ns = NS(o->backoff_base_s),
		.backoff_max_ns = NS(o->backoff_max_s),
		.max_retry_delay_ns = NS(o->max_retry_delay_s),
	};

	if (o->timeout_s < 0 || o->connect_timeout_s < 0 || o->backoff_base_s < 0 ||
	    o->backoff_max_s < 0 || o->max_retry_delay_s < 0) {
		snprintf(err, errlen, "timeouts and backoff must not be negative");
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((p->client = gb__gemini_new(&co, err, errlen)) == NULL) {
		free(p);
		return NULL;
	}
	gb_processor_set_telemetry(p, o->tele);
	if (o->system_instruction != NULL && (p->system = strdup(o->system_instruction)) == NULL) {
		gb_processor_free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return p;
}

void
gb_processor_set_telemetry(gb_processor *p, gb_tele *tele)
{
	p->tele = tele != NULL ? tele : gb_tele_new(NULL, 0, GB_TELE_DISABLE);
}

void
gb_processor_free(gb_processor *p)
{
	if (p == NULL)
		return;
	gb__gemini_free(p->client);
	free(p->system);
	free(p);
}

/* ---- results ---- */

static void
answer_fini(struct answer *a)
{
	free(a->text);
	free(a->error);
	json_decref(a->structured);
	memset(a, 0, sizeof(*a));
}

void
gb_result_free(gb_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->questions[i]);
		answer_fini(&r->answers[i]);
		if (r->individual != NULL)
			answer_fini(&r->individual[i]);
	}
	free(r->questions);
	free(r->answers);
	free(r->individual);
	free(r->batch_error);
	free(r->fatal);
	free(r);
}

size_t
gb_result_question_count(const gb_result *r)
{
	return r->n;
}

size_t
gb_result_failed_count(const gb_result *r)
{
	size_t failed = 0;

	for (size_t i = 0; i < r->n; i++)
		failed += r->answers[i].text == NULL;
	return failed;
}

const char *
gb_result_answer(const gb_result *r, size_t i)
{
	return i < r->n ? r->answers[i].text : NULL;
}

const char *
gb_result_source(const gb_result *r, size_t i)
{
	return i < r->n ? r->answers[i].source : NULL;
}

const char *
gb_result_error(const gb_result *r, size_t i)
{
	return i < r->n ? r->answers[i].error : NULL;
}

const char *
gb_result_fatal_error(const gb_result *r)
{
	return r->fatal;
}

static void
set_error(struct answer *a, const char *msg)
{
	free(a->text);
	a->text = NULL;
	json_decref(a->structured);
	a->structured = NULL;
	free(a->error);
	a->error = strdup(msg);
	a->source = "error";
}

static void
method_add(struct method *m, const gb_gemini_result *res)
{
	m->calls++;
	m->prompt += res->usage.prompt;
	m->output += res->usage.candidates;
	m->cached += res->usage.cached;
	m->thoughts += res->usage.thoughts;
	m->total += res->usage.total;
	m->retries += res->attempts > 0 ? res->attempts - 1 : 0;
}

/* ---- answers ---- */

/* The text between a leading ``` fence line (```json, ```) and a trailing ``` (owned copy). */
static char *
strip_fences(const char *text)
{
	const char *s = text, *e = text + strlen(text);

	while (s < e && strchr(" \t\r\n", *s) != NULL)
		s++;
	while (e > s && strchr(" \t\r\n", e[-1]) != NULL)
		e--;
	if (e - s >= 6 && strncmp(s, "```", 3) == 0) {
		const char *nl = memchr(s, '\n', (size_t)(e - s));
		s = nl != NULL ? nl + 1 : s + 3;
		if (e - s >= 3 && strncmp(e - 3, "```", 3) == 0)
			e -= 3;
		while (e > s && strchr(" \t\r\n", e[-1]) != NULL)
			e--;
	}
	return strndup(s, (size_t)(e - s));
}

static bool
type_is(const char *type, const char *want)
{
	return type != NULL && strcasecmp(type, want) == 0;
}

/* Whether v follows schema (Gemini's OpenAPI subset: type, properties, required, items, enum,
 * nullable). Unknown keywords are not checked. */
static bool
schema_ok(const json_t *schema, const json_t *v, int depth)
{
	const char *type = json_string_value(json_object_get(schema, "type"));
	const json_t *en = json_object_get(schema, "enum"), *req, *props;
	size_t i;

	if (depth > 32)
		return false;
	if (json_is_null(v))
		return json_is_true(json_object_get(schema, "nullable")) || type == NULL;
	if (json_is_array(en) && json_array_size(en) > 0) {
		bool found = false;
		for (i = 0; i < json_array_size(en) && !found; i++)
			found = json_equal(json_array_get(en, i), v);
		if (!found)
			return false;
	}
	if (type == NULL)
		return true;
	if (type_is(type, "string"))
		return json_is_string(v);
	if (type_is(type, "integer"))
		return json_is_integer(v);
	if (type_is(type, "number"))
		return json_is_number(v);
	if (type_is(type, "boolean"))
		return json_is_boolean(v);
	if (type_is(type, "array")) {
		const json_t *items = json_object_get(schema, "items");
		if (!json_is_array(v))
			return false;
		for (i = 0; i < json_array_size(v); i++)
			if (items != NULL && !schema_ok(items, json_array_get(v, i), depth + 1))
				return false;
		return true;
	}
	if (type_is(type, "object")) {
		const char *key;
		const json_t *sub;
		if (!json_is_object(v))
			return false;
		req = json_object_get(schema, "required");
		for (i = 0; i < json_array_size(req); i++) {
			const char *k = json_string_value(json_array_get(req, i));
			if (k != NULL && json_object_get(v, k) == NULL)
				return false;
		}
		props = json_object_get(schema, "properties");
		json_object_foreach((json_t *)(uintptr_t)props, key, sub) {
			const json_t *pv = json_object_get(v, key);
			if (pv != NULL && !schema_ok(sub, pv, depth + 1))
				return false;
		}
		return true;
	}
	return true;
}

/* Stores one answer value (a JSON string, or for a schema any value following it) into a.
 * Returns false when the value is not an acceptable answer. */
static bool
take_value(struct answer *a, const json_t *v, const json_t *schema, const char *source)
{
	char *text;

	if (schema != NULL) {
		if (!schema_ok(schema, v, 0))
			return false;
		text = json_is_string(v) ? strdup(json_string_value(v)) :
		    json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		a->structured = json_deep_copy(v);
	} else {
		if (!json_is_string(v))
			return false;
		text = strdup(json_string_value(v));
	}
	free(a->text);
	a->text = text;
	free(a->error);
	a->error = NULL;
	a->source = source;
	return text != NULL;
}

static void
copy_reasons(struct answer *a, const gb_gemini_result *res)
{
	strlcpy(a->finish, res->finish_reason, sizeof(a->finish));
	strlcpy(a->block, res->block_reason, sizeof(a->block));
}

/* Why a successful HTTP call brought no usable text, or NULL when it did. */
static const char *
no_text_reason(const gb_gemini_result *res, char *buf, size_t len)
{
	if (res->block_reason[0] != '\0') {
		snprintf(buf, len, "the prompt was blocked (blockReason %s)", res->block_reason);
		return buf;
	}
	if (res->text == NULL || res->text[0] == '\0') {
		snprintf(buf, len, "the answer has no text (finishReason %s)",
		    res->finish_reason[0] != '\0' ? res->finish_reason : "missing");
		return buf;
	}
	return NULL;
}

/* ---- telemetry helpers ---- */

static void
count(struct run *run, const char *name, double inc)
{
	if (inc != 0)
		gb_tele_count(run->p->tele, name, inc, NULL, 0);
}

/* Counts what a finished call did: successes, tokens and the errors met on the way. */
static void
count_call(struct run *run, const gb_gemini_result *res)
{
	if (res->status == GB__GEMINI_OK) {
		count(run, "api_calls_successful", 1);
		count(run, "total_tokens", (double)res->usage.total);
	}
	count(run, "retryable_errors", res->retryable_errors);
	count(run, "non_retryable_errors", res->non_retryable_errors);
}

static int
call(struct run *run, const gb_gemini_request *rq, gb_gemini_result *res)
{
	int rc;

	GB_SCOPE(run->p->tele, "client.api_call_with_retry")
		rc = gb__gemini_generate(run->p->client, rq, res);
	count_call(run, res);
	return rc;
}

/* ---- prompts ---- */

/* One line per question; line breaks inside a question would break the numbering. */
static void
append_question(char **buf, size_t *len, size_t *cap, const char *label, const char *q)
{
	size_t need = strlen(label) + strlen(q) + 2;
	char *nb;

	if (*buf == NULL)
		return;
	if (*len + need + 1 > *cap) {
		*cap = (*len + need + 1) * 2;
		if ((nb = realloc(*buf, *cap)) == NULL) {
			free(*buf);
			*buf = NULL;
			return;
		}
		*buf = nb;
	}
	*len += (size_t)sprintf(*buf + *len, "%s", label);
	for (; *q != '\0'; q++)
		(*buf)[(*len)++] = *q == '\n' || *q == '\r' ? ' ' : *q;
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = '\0';
}

static char *
batch_prompt(const struct run *run, const size_t *idx, size_t n)
{
	size_t len = 0, cap = 512;
	char *buf = malloc(cap), label[48];

	if (buf == NULL)
		return NULL;
	len = (size_t)snprintf(buf, cap,
	    "Answer each of the following %zu questions about the content above.\n"
	    "Reply with a single JSON array of exactly %zu %s, one per question, in the order the "
	    "questions are asked, and nothing else.\n\n",
	    n, n, run->schema != NULL ? "items, each following the response schema" : "strings");
	for (size_t k = 0; k < n; k++) {
		snprintf(label, sizeof(label), "Question %zu: ", k + 1);
		append_question(&buf, &len, &cap, label, run->r->questions[idx[k]]);
	}
	return buf;
}

static char *
single_prompt(const char *question)
{
	size_t len = 0, cap = 256;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	len = (size_t)snprintf(buf, cap, "Answer the following question about the content above.\n\n");
	append_question(&buf, &len, &cap, "Question: ", question);
	return buf;
}

/* The content parts a request carries: none when a cache holds the content. */
static size_t
content_parts(const struct run *run)
{
	return run->cached != NULL ? 0 : run->n_content;
}

/* The request's parts: the content parts, then the prompt as the last part. */
static gb_gemini_part *
request_parts(const struct run *run, const char *prompt)
{
	size_t nc = content_parts(run);
	gb_gemini_part *parts = calloc(nc + 1, sizeof(*parts));

	if (parts == NULL)
		return NULL;
	for (size_t i = 0; i < nc; i++) {
		const gb_content *c = &run->content[i];
		bool text = c->mime_type == NULL || strcmp(c->mime_type, "text/plain") == 0;
		parts[i].mime_type = text ? NULL : c->mime_type;
		parts[i].data = c->data;
		parts[i].len = c->len;
	}
	parts[nc].data = prompt;
	parts[nc].len = strlen(prompt);
	return parts;
}

/* The request around parts (from request_parts): with a cache, the system instruction is in
 * the cache and the request names it. */
static gb_gemini_request
make_request(const struct run *run, const gb_gemini_part *parts, int json, const json_t *schema)
{
	gb_gemini_request rq = { .parts = parts, .n_parts = content_parts(run) + 1,
		.system = run->cached != NULL ? NULL : run->p->system, .json = json, .schema = schema,
		.cached_content = run->cached };

	return rq;
}

/* ---- individual calls ---- */

/* Takes the outcome of question i's own call (seconds long) into a, accounting into m.
 * Returns 1 when the error is fatal. */
static int
take_single(struct run *run, struct answer *a, struct method *m, gb_gemini_result *res,
    double seconds)
{
	char reason[160], *clean = NULL;
	int fatal = 0;

	m->time += seconds;
	copy_reasons(a, res);
	if (res->status != GB__GEMINI_OK) {
		set_error(a, res->message);
		fatal = gb__gemini_is_fatal(res);
		if (res->attempts > 0 && res->http_status != 0)
			method_add(m, res);
	} else {
		method_add(m, res);
		if (no_text_reason(res, reason, sizeof(reason)) != NULL) {
			set_error(a, reason);
		} else if (run->schema == NULL) {
			size_t n = strlen(res->text);
			json_t *v;
			while (n > 0 && strchr(" \t\r\n", res->text[n - 1]) != NULL)
				res->text[--n] = '\0';
			v = json_string(res->text);
			if (v == NULL || !take_value(a, v, NULL, "individual"))
				set_error(a, "out of memory");
			json_decref(v);
		} else {
			json_t *v = (clean = strip_fences(res->text)) != NULL ?
			    json_loads(clean, JSON_DECODE_ANY, NULL) : NULL;
			if (v == NULL || !take_value(a, v, run->schema, "individual"))
				set_error(a, "the answer does not follow the response schema");
			json_decref(v);
		}
	}
	count(run, a->text != NULL ? "individual_success" : "individual_failures", 1);
	free(clean);
	return fatal;
}

/* Asks question i alone into a, accounting into m. Returns 1 when the error is fatal. */
static int
ask_one(struct run *run, size_t i, struct answer *a, struct method *m)
{
	char *prompt = single_prompt(run->r->questions[i]);
	gb_gemini_part *parts = prompt != NULL ? request_parts(run, prompt) : NULL;
	gb_gemini_request rq = make_request(run, parts, 0, run->schema);
	gb_gemini_result res = { 0 };
	uint64_t t0 = gb__clock_mono_ns();
	int fatal;

	if (parts == NULL) {
		set_error(a, "out of memory");
		free(prompt);
		return 0;
	}
	call(run, &rq, &res);
	fatal = take_single(run, a, m, &res, (double)(gb__clock_mono_ns() - t0) / 1e9);
	gb__gemini_result_fini(&res);
	free(parts);
	free(prompt);
	return fatal;
}

/* Asks the questions idx[0..n) one by one into answers[], stopping at a fatal error. Returns 1
 * when a fatal error stopped it (its message copied into r->fatal). */
static int
run_individual(struct run *run, const size_t *idx, size_t n, struct answer *answers,
    struct method *m)
{
	char ibuf[24];
	gb_kv kv = { "question_index", ibuf };
	int fatal = 0;

	GB_SCOPE(run->p->tele, "individual.processing") {
		for (size_t k = 0; k < n; k++) {
			struct answer *a = &answers[idx[k]];
			if (fatal) {
				set_error(a, run->r->fatal);
				continue;
			}
			snprintf(ibuf, sizeof(ibuf), "%zu", idx[k]);
			gb_scope s = gb_tele_begin(run->p->tele, "individual.question", &kv, 1);
			fatal = ask_one(run, idx[k], a, m);
			gb_tele_end(run->p->tele, &s);
			if (fatal && run->r->fatal == NULL)
				run->r->fatal = strdup(a->error != NULL ? a->error : "stopped");
		}
	}
	return fatal;
}

/* ---- the batched call ---- */

enum batch_outcome { BATCH_COMPLETE, BATCH_PARTIAL, BATCH_FAILED, BATCH_FATAL };

/* Takes the batch reply apart into r->answers; marks missing[i] for what it could not use. */
static enum batch_outcome
take_batch(struct run *run, const gb_gemini_result *res, bool *missing, const char **error_type)
{
	gb_result *r = run->r;
	char reason[160], *clean;
	json_t *arr;
	size_t i, got = 0, n;

	if (no_text_reason(res, reason, sizeof(reason)) != NULL) {
		*error_type = res->block_reason[0] != '\0' ? "blocked" : "no_text";
		r->batch_error = strdup(reason);
		return BATCH_FAILED;
	}
	if ((clean = strip_fences(res->text)) == NULL)
		return BATCH_FAILED;
	arr = json_loads(clean, JSON_DECODE_ANY, NULL);
	free(clean);
	if (!json_is_array(arr)) {
		*error_type = arr == NULL ? "invalid_json" : "not_an_array";
		if (asprintf(&r->batch_error, "the batched answer is %s%s%s%s",
		    arr == NULL ? "not valid JSON" : "not a JSON array",
		    strcmp(res->finish_reason, "STOP") != 0 ? " (finishReason " : "",
		    strcmp(res->finish_reason, "STOP") != 0 ? res->finish_reason : "",
		    strcmp(res->finish_reason, "STOP") != 0 ? ")" : "") < 0)
			r->batch_error = NULL;
		json_decref(arr);
		return BATCH_FAILED;
	}
	n = json_array_size(arr);
	r->batch_received = n;
	for (i = 0; i < r->n; i++) {
		struct answer *a = &r->answers[i];
		missing[i] = i >= n || !take_value(a, json_array_get(arr, i), run->schema, "batch");
		if (!missing[i]) {
			copy_reasons(a, res);
			got++;
		}
	}
	json_decref(arr);
	if (n != r->n) {
		*error_type = "count_mismatch";
		if (asprintf(&r->batch_error, "the batched answer has %zu answers for %zu questions",
		    n, r->n) < 0)
			r->batch_error = NULL;
	} else if (got < r->n) {
		*error_type = "invalid_answer";
		if (asprintf(&r->batch_error, "%zu of the batched answers are not %s", r->n - got,
		    run->schema != NULL ? "valid for the schema" : "strings") < 0)
			r->batch_error = NULL;
	}
	if (got == 0)
		return BATCH_FAILED;
	return got == r->n ? BATCH_COMPLETE : BATCH_PARTIAL;
}

/* Takes the outcome of the batched call into r: the answers it brought, or why it failed. */
static enum batch_outcome
take_batch_call(struct run *run, const gb_gemini_result *res, bool *missing,
    const char **error_type)
{
	gb_result *r = run->r;
	enum batch_outcome out = BATCH_FAILED;

	if (res->status != GB__GEMINI_OK) {
		if (res->attempts > 0 && res->http_status != 0)
			method_add(&r->batch, res);
		*error_type = res->status == GB__GEMINI_E_TIMEOUT ? "timeout" :
		    res->status == GB__GEMINI_E_QUOTA_DAY ? "quota_exhausted" :
		    res->status == GB__GEMINI_E_RESPONSE ? "invalid_response" :
		    res->status == GB__GEMINI_E_TRANSPORT ? "transport_error" : "api_error";
		r->batch_error = strdup(res->message);
		out = gb__gemini_is_fatal(res) ? BATCH_FATAL : BATCH_FAILED;
		if (out == BATCH_FATAL)
			r->fatal = strdup(res->message);
		return out;
	}
	method_add(&r->batch, res);
	GB_SCOPE(run->p->tele, "batch.response_processing")
		out = take_batch(run, res, missing, error_type);
	return out;
}

/* The batched request's prompt, parts and array schema (owned by the caller); false when out
 * of memory. */
static bool
batch_request(struct run *run, char **prompt, gb_gemini_part **parts, json_t **schema)
{
	gb_result *r = run->r;
	size_t *idx = malloc(r->n * sizeof(*idx));

	*prompt = NULL;
	*parts = NULL;
	*schema = NULL;
	for (size_t i = 0; idx != NULL && i < r->n; i++)
		idx[i] = i;
	*prompt = idx != NULL ? batch_prompt(run, idx, r->n) : NULL;
	*parts = *prompt != NULL ? request_parts(run, *prompt) : NULL;
	if (run->schema != NULL)
		*schema = json_pack("{s:s, s:O}", "type", "ARRAY", "items", run->schema);
	free(idx);
	return *parts != NULL && (run->schema == NULL || *schema != NULL);
}

static enum batch_outcome
run_batch(struct run *run, bool *missing, const char **error_type)
{
	gb_result *r = run->r;
	char *prompt = NULL;
	gb_gemini_part *parts = NULL;
	gb_gemini_result res = { 0 };
	enum batch_outcome out = BATCH_FAILED;
	uint64_t t0 = gb__clock_mono_ns();
	json_t *schema = NULL;
	bool ok = false;

	*error_type = "out_of_memory";
	GB_SCOPE(run->p->tele, "batch.processing") {
		GB_SCOPE(run->p->tele, "batch.prompt_creation")
			ok = batch_request(run, &prompt, &parts, &schema);
		if (!ok)
			break;
		gb_gemini_request rq = make_request(run, parts, 1, schema);
		GB_SCOPE(run->p->tele, "batch.api_call")
			call(run, &rq, &res);
		out = take_batch_call(run, &res, missing, error_type);
	}
	r->batch.time += (double)(gb__clock_mono_ns() - t0) / 1e9;
	gb__gemini_result_fini(&res);
	json_decref(schema);
	free(parts);
	free(prompt);
	return out;
}

/* ---- the whole run ---- */

static const char *
content_type(const gb_content *content, size_t n)
{
	const char *t = "text";

	for (size_t i = 0; i < n; i++) {
		const char *m = content[i].mime_type;
		const char *this = m == NULL || strcmp(m, "text/plain") == 0 ? "text" : m;
		if (i > 0 && strcmp(this, t) != 0)
			return "mixed";
		t = this;
	}
	return t;
}

static gb_result *
result_new(const char *const *questions, size_t n, bool compare)
{
	gb_result *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->n = n;
	r->questions = calloc(n, sizeof(*r->questions));
	r->answers = calloc(n, sizeof(*r->answers));
	r->individual = compare ? calloc(n, sizeof(*r->individual)) : NULL;
	if (r->questions == NULL || r->answers == NULL || (compare && r->individual == NULL))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((r->questions[i] = strdup(questions[i])) == NULL)
			goto fail;
		r->answers[i].source = "error";
		if (compare)
			r->individual[i].source = "error";
	}
	r->batch_outcome = "skipped";
	return r;
fail:
	gb_result_free(r);
	return NULL;
}

static int
check_args(const gb_content *content, size_t n_content, const char *const *questions, size_t n,
    char *err, size_t errlen)
{
	if (n == 0 || questions == NULL) {
		snprintf(err, errlen, "no questions to ask");
		return -EINVAL;
	}
	if (n_content == 0 || content == NULL) {
		snprintf(err, errlen, "no content to ask about");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (questions[i] == NULL || questions[i][0] == '\0') {
			snprintf(err, errlen, "question %zu is empty", i + 1);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < n_content; i++) {
		if (content[i].data == NULL && content[i].len > 0) {
			snprintf(err, errlen, "content part %zu has no data", i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* Records the batch's outcome and lists in idx the questions still to ask one by one (all of
 * them when it failed, none after a fatal error). Returns how many. */
static size_t
after_batch(struct run *run, enum batch_outcome out, const bool *missing, size_t *idx,
    const char *error_type)
{
	gb_result *r = run->r;
	size_t k = 0;

	r->batch_outcome = out == BATCH_COMPLETE ? "complete" : out == BATCH_PARTIAL ? "partial" :
	    "failed";
	count(run, out == BATCH_COMPLETE || out == BATCH_PARTIAL ? "batch_success" : "batch_failures", 1);
	if (out == BATCH_FATAL) {
		for (size_t i = 0; i < r->n; i++)
			set_error(&r->answers[i], r->fatal != NULL ? r->fatal : "stopped");
		return 0;
	}
	for (size_t i = 0; i < r->n; i++)
		if (out == BATCH_FAILED || missing[i])
			idx[k++] = i;
	if (out != BATCH_COMPLETE)
		gb__log_info("batched call %s (%s): asking %zu question%s individually",
		    out == BATCH_PARTIAL ? "incomplete" : "failed",
		    r->batch_error != NULL ? r->batch_error : error_type, k, k == 1 ? "" : "s");
	return k;
}

/* The batch and its repair or fallback, under batch.attempt / batch.individual_fallback. */
static void
batch_then_repair(struct run *run)
{
	gb_result *r = run->r;
	bool *missing = calloc(r->n, sizeof(*missing));
	size_t *idx = calloc(r->n, sizeof(*idx)), k;
	const char *error_type = "none";
	enum batch_outcome out = BATCH_FAILED;

	if (missing == NULL || idx == NULL) {
		r->batch_error = strdup("out of memory");
		goto done;
	}
	GB_SCOPE(run->p->tele, "batch.attempt")
		out = run_batch(run, missing, &error_type);
	k = after_batch(run, out, missing, idx, error_type);
	if (k > 0) {
		gb_kv kv = { "error_type", error_type };
		gb_scope s = gb_tele_begin(run->p->tele, "batch.individual_fallback", &kv, 1);
		run_individual(run, idx, k, r->answers, &r->batch);
		gb_tele_end(run->p->tele, &s);
	}
done:
	free(missing);
	free(idx);
}

static void
usage_sum(gb_result *r)
{
	r->usage = r->batch;
	r->usage.calls += r->indiv.calls;
	r->usage.prompt += r->indiv.prompt;
	r->usage.output += r->indiv.output;
	r->usage.cached += r->indiv.cached;
	r->usage.thoughts += r->indiv.thoughts;
	r->usage.total += r->indiv.total;
	r->usage.retries += r->indiv.retries;
	r->usage.time += r->indiv.time;
}

/* Parses opts' response schema into *schema (NULL when there is none). Returns 0, or -EINVAL
 * with err filled when it is not a JSON object. */
static int
parse_schema(const gb_process_opts *opts, json_t **schema, char *err, size_t errlen)
{
	json_error_t jerr;

	*schema = NULL;
	if (opts == NULL || opts->response_schema == NULL)
		return 0;
	*schema = json_loads(opts->response_schema, 0, &jerr);
	if (!json_is_object(*schema)) {
		snprintf(err, errlen, "the response schema is not a JSON object (%s, line %d)",
		    *schema == NULL ? jerr.text : "another JSON value", *schema == NULL ? jerr.line : 1);
		json_decref(*schema);
		*schema = NULL;
		return -EINVAL;
	}
	return 0;
}

int
gb_process_opts_check(const gb_process_opts *opts, char *err, size_t errlen)
{
	json_t *schema;
	int rc = parse_schema(opts, &schema, err, errlen);

	json_decref(schema);
	return rc;
}

/* Checks the arguments and sets up run for them: the schema parsed, an empty result. Returns
 * 0, or -EINVAL / -ENOMEM with err filled. */
static int
run_init(struct run *run, gb_processor *p, const gb_content *content, size_t n_content,
    const char *const *questions, size_t n, const gb_process_opts *opts, char *err, size_t errlen)
{
	bool compare = opts != NULL && (opts->flags & GB_PROCESS_COMPARE) != 0;
	json_t *schema = NULL;
	int rc;

	memset(run, 0, sizeof(*run));
	run->p = p;
	run->content = content;
	run->n_content = n_content;
	if ((rc = check_args(content, n_content, questions, n, err, errlen)) != 0)
		return rc;
	if ((rc = parse_schema(opts, &schema, err, errlen)) != 0)
		return rc;
	if ((run->r = result_new(questions, n, compare)) == NULL) {
		json_decref(schema);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	run->schema = schema;
	run->r->has_schema = schema != NULL;
	return 0;
}

int
gb_processor_process_questions(gb_processor *p, const gb_content *content, size_t n_content,
    const char *const *questions, size_t n, const gb_process_opts *opts, gb_result **out,
    char *err, size_t errlen)
{
	bool compare = opts != NULL && (opts->flags & GB_PROCESS_COMPARE) != 0;
	struct run run;
	char nbuf[24];
	uint64_t t0 = gb__clock_mono_ns();
	int rc;

	*out = NULL;
	if ((rc = run_init(&run, p, content, n_content, questions, n, opts, err, errlen)) != 0)
		return rc;
	snprintf(nbuf, sizeof(nbuf), "%zu", n);
	gb_kv meta[2] = { { "question_count", nbuf }, { "content_type", content_type(content, n_content) } };
	gb_scope total = gb_tele_begin(p->tele, "batch.total_processing", meta, 2);

	batch_then_repair(&run);
	if (compare && run.r->fatal == NULL) {
		size_t *idx = malloc(n * sizeof(*idx));
		GB_SCOPE(p->tele, "batch.comparison_run") {
			for (size_t i = 0; idx != NULL && i < n; i++)
				idx[i] = i;
			if (idx != NULL)
				run_individual(&run, idx, n, run.r->individual, &run.r->indiv);
		}
		free(idx);
	}
	GB_SCOPE(p->tele, "batch.result_building") {
		usage_sum(run.r);
		if (compare && run.r->batch.total > 0 && run.r->indiv.calls > 0)
			gb_tele_gauge(p->tele, "token_efficiency",
			    (double)run.r->indiv.total / (double)run.r->batch.total, NULL, 0);
	}
	gb_tele_end(p->tele, &total);
	run.r->processing_time = (double)(gb__clock_mono_ns() - t0) / 1e9;
	json_decref((json_t *)(uintptr_t)run.schema);
	*out = run.r;
	return 0;
}

/* ---- the same work as a sequence of requests, for a caller that sends them ---- */

enum qstate { Q_BATCH, Q_REPAIR, Q_COMPARE, Q_DONE };

struct gb_qrun {
	struct run run;
	bool compare;
	enum qstate state;
	bool *missing;
	size_t *idx;   /* the questions this state asks one by one */
	size_t n_idx;
	size_t k;      /* the next of them */
	char *prompt;  /* of the request given out */
	gb_gemini_part *parts;
	json_t *schema;
	const char *error_type;
	char *cached;
	uint64_t t0;
};

int
gb__qrun_new(gb_processor *p, const gb_content *content, size_t n_content,
    const char *const *questions, size_t n, const gb_process_opts *opts, const char *cached,
    gb_qrun **out, char *err, size_t errlen)
{
	gb_qrun *q = calloc(1, sizeof(*q));
	int rc;

	*out = NULL;
	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((rc = run_init(&q->run, p, content, n_content, questions, n, opts, err, errlen)) != 0) {
		free(q);
		return rc;
	}
	q->compare = opts != NULL && (opts->flags & GB_PROCESS_COMPARE) != 0;
	q->missing = calloc(n, sizeof(*q->missing));
	q->idx = calloc(n, sizeof(*q->idx));
	q->cached = cached != NULL ? strdup(cached) : NULL;
	if (q->missing == NULL || q->idx == NULL || (cached != NULL && q->cached == NULL)) {
		gb__qrun_free(q);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	q->run.cached = q->cached;
	q->error_type = "none";
	q->t0 = gb__clock_mono_ns();
	*out = q;
	return 0;
}

static void
request_release(gb_qrun *q)
{
	free(q->prompt);
	free(q->parts);
	json_decref(q->schema);
	q->prompt = NULL;
	q->parts = NULL;
	q->schema = NULL;
}

/* Moves on to comparing, or to the end. */
static void
after_answers(gb_qrun *q)
{
	gb_result *r = q->run.r;

	q->k = 0;
	if (q->state != Q_COMPARE && q->compare && r->fatal == NULL) {
		q->state = Q_COMPARE;
		for (size_t i = 0; i < r->n; i++)
			q->idx[i] = i;
		q->n_idx = r->n;
		return;
	}
	q->state = Q_DONE;
	usage_sum(r);
	if (q->compare && r->batch.total > 0 && r->indiv.calls > 0)
		gb_tele_gauge(q->run.p->tele, "token_efficiency",
		    (double)r->indiv.total / (double)r->batch.total, NULL, 0);
	r->processing_time = (double)(gb__clock_mono_ns() - q->t0) / 1e9;
}

int
gb__qrun_next(gb_qrun *q, gb_gemini_request *rq, const char **kind)
{
	request_release(q);
	if (q->state == Q_BATCH) {
		if (!batch_request(&q->run, &q->prompt, &q->parts, &q->schema)) {
			q->run.r->batch_error = strdup("out of memory");
			q->error_type = "out_of_memory";
			q->n_idx = after_batch(&q->run, BATCH_FAILED, q->missing, q->idx, q->error_type);
			q->state = Q_REPAIR;
		} else {
			*rq = make_request(&q->run, q->parts, 1, q->schema);
			*kind = "batch";
			return 1;
		}
	}
	while (q->state == Q_REPAIR || q->state == Q_COMPARE) {
		if (q->k == q->n_idx) {
			after_answers(q);
			continue;
		}
		if ((q->prompt = single_prompt(q->run.r->questions[q->idx[q->k]])) == NULL ||
		    (q->parts = request_parts(&q->run, q->prompt)) == NULL) {
			request_release(q);
			set_error(&(q->state == Q_REPAIR ? q->run.r->answers :
			    q->run.r->individual)[q->idx[q->k++]], "out of memory");
			continue;
		}
		*rq = make_request(&q->run, q->parts, 0, q->run.schema);
		*kind = "single";
		return 1;
	}
	return 0;
}

void
gb__qrun_take(gb_qrun *q, gb_gemini_result *res)
{
	gb_result *r = q->run.r;
	enum batch_outcome out;
	struct answer *as;
	int fatal;

	count_call(&q->run, res);
	if (q->state == Q_BATCH) {
		r->batch.time += res->seconds;
		out = take_batch_call(&q->run, res, q->missing, &q->error_type);
		q->n_idx = after_batch(&q->run, out, q->missing, q->idx, q->error_type);
		q->state = Q_REPAIR;
		q->k = 0;
		return;
	}
	as = q->state == Q_REPAIR ? r->answers : r->individual;
	fatal = take_single(&q->run, &as[q->idx[q->k]], q->state == Q_REPAIR ? &r->batch : &r->indiv,
	    res, res->seconds);
	q->k++;
	if (fatal) {
		if (r->fatal == NULL)
			r->fatal = strdup(as[q->idx[q->k - 1]].error != NULL ?
			    as[q->idx[q->k - 1]].error : "stopped");
		for (; q->k < q->n_idx; q->k++)
			set_error(&as[q->idx[q->k]], r->fatal);
	}
}

gb_result *
gb__qrun_result(gb_qrun *q)
{
	gb_result *r = q->run.r;

	if (q->state != Q_DONE)
		return NULL;
	q->run.r = NULL;
	return r;
}

void
gb__qrun_free(gb_qrun *q)
{
	if (q == NULL)
		return;
	request_release(q);
	gb_result_free(q->run.r);
	json_decref((json_t *)(uintptr_t)q->run.schema);
	free(q->missing);
	free(q->idx);
	free(q->cached);
	free(q);
}

gb_gemini *
gb__processor_client(gb_processor *p)
{
	return p->client;
}

gb_tele *
gb__processor_tele(gb_processor *p)
{
	return p->tele;
}

const char *
gb__processor_system(const gb_processor *p)
{
	return p->system;
}

/* ---- JSON ---- */

static json_t *
method_json(const struct method *m)
{
	return json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:f}", "calls", (int)m->calls,
	    "prompt_tokens", (json_int_t)m->prompt, "output_tokens", (json_int_t)m->output,
	    "cached_tokens", (json_int_t)m->cached, "thoughts_tokens", (json_int_t)m->thoughts,
	    "total_tokens", (json_int_t)m->total, "time", m->time);
}

static json_t *
str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
answers_json(const gb_result *r, const struct answer *as)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < r->n; i++)
		json_array_append_new(arr, str_or_null(as[i].text));
	return arr;
}

static json_t *
details_json(const gb_result *r)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < r->n; i++) {
		const struct answer *a = &r->answers[i];
		json_t *d = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i, "question",
		    r->questions[i], "source", a->source);
		if (a->finish[0] != '\0')
			json_object_set_new(d, "finish_reason", json_string(a->finish));
		if (a->block[0] != '\0')
			json_object_set_new(d, "block_reason", json_string(a->block));
		if (a->error != NULL)
			json_object_set_new(d, "error", json_string(a->error));
		json_array_append_new(arr, d);
	}
	return arr;
}

static json_t *
efficiency_json(const gb_result *r)
{
	double ratio, time_eff;

	if (r->individual == NULL || r->indiv.calls == 0 || r->batch.total == 0)
		return json_pack("{s:n, s:n, s:n, s:b}", "token_efficiency_ratio", "time_efficiency",
		    "meets_target", "comparison_available", 0);
	ratio = (double)r->indiv.total / (double)r->batch.total;
	time_eff = r->batch.time > 0 ? r->indiv.time / r->batch.time : 0;
	return json_pack("{s:f, s:f, s:b, s:b}", "token_efficiency_ratio", ratio,
	    "time_efficiency", time_eff, "meets_target", ratio >= GB_TARGET_TOKEN_EFFICIENCY,
	    "comparison_available", 1);
}

char *
gb_result_to_json(const gb_result *r, unsigned flags)
{
	json_t *root, *usage;
	char *s;

	usage = method_json(&r->usage);
	json_object_set_new(usage, "retries", json_integer(r->usage.retries));
	json_object_del(usage, "time");
	root = json_pack("{s:I, s:o, s:o, s:{s:s, s:I, s:I, s:o}, s:o, s:f, s:{s:o, s:o}, s:o}",
	    "question_count", (json_int_t)r->n,
	    "answers", answers_json(r, r->answers),
	    "answer_details", details_json(r),
	    "batch", "outcome", r->batch_outcome, "answers_expected", (json_int_t)r->n,
	    "answers_received", (json_int_t)r->batch_received, "error", str_or_null(r->batch_error),
	    "efficiency", efficiency_json(r),
	    "processing_time", r->processing_time,
	    "metrics", "batch", method_json(&r->batch), "individual", method_json(&r->indiv),
	    "usage", usage);
	if (root == NULL)
		return NULL;
	if (r->individual != NULL)
		json_object_set_new(root, "individual_answers", answers_json(r, r->individual));
	if (r->has_schema) {
		json_t *sd = json_array();
		for (size_t i = 0; i < r->n; i++)
			json_array_append(sd, r->answers[i].structured != NULL ?
			    r->answers[i].structured : json_null());
		json_object_set_new(root, "structured_data", sd);
	}
	if (r->fatal != NULL)
		json_object_set_new(root, "error", json_string(r->fatal));
	s = json_dumps(root, (flags & GB_RESULT_JSON_PRETTY) != 0 ? JSON_INDENT(2) : JSON_COMPACT);
	json_decref(root);
	return s;
}
