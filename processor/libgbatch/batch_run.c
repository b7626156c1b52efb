/*
 * batch_run.c - the one driver of the workflow: one batched call for N answers, checked and
 * repaired with individual calls, optionally compared with asking one by one. It is a state
 * machine of requests (batch_run.h), so gb_processor_process_questions and the jobs runner
 * drive the same steps and count the same things; the seed's scopes open around the steps
 * when the caller runs them in order (GB__QRUN_SCOPED).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch_internal.h"
#include "batch_run.h"
#include "clock.h"
#include "gen_config.h"
#include "log.h"
#include "telemetry_internal.h"

enum qstate { Q_BATCH, Q_REPAIR, Q_COMPARE, Q_DONE };
enum batch_outcome { BATCH_COMPLETE, BATCH_PARTIAL, BATCH_FAILED, BATCH_FATAL };

/* batch.total_processing > batch.attempt > batch.processing > batch.api_call is the deepest. */
#define MAX_OPEN 4

struct gb_qrun {
	gb_processor *p;
	const gb_content *content;
	size_t n_content;
	json_t *schema;       /* the user's schema for one answer (owned), or NULL */
	json_t *gen;          /* the generationConfig settings (owned), or NULL */
	json_t *safety;       /* the safetySettings (owned), or NULL */
	bool accept_partial;  /* GB_PROCESS_ACCEPT_PARTIAL */
	char *cached;         /* "cachedContents/..." holding the content and system, or NULL */
	gb_result *r;
	bool compare;
	bool scoped;
	bool no_ids;          /* GB_PROCESS_NO_TELEMETRY_IDS */
	bool via_batch_api;   /* the outcome being taken came from a Batch API batch */
	enum qstate state;
	bool *missing;        /* the batch's answers that could not be used */
	size_t *idx;          /* the questions this state asks one by one */
	size_t n_idx;
	size_t k;             /* the next of them */
	char *prompt;         /* of the request given out */
	gb_gemini_part *parts;
	json_t *array_schema; /* the batched request's schema: an array of the user's */
	const char *error_type;
	uint64_t t0;
	gb_scope open[MAX_OPEN];
	unsigned n_open;
	gb_scope question;    /* individual.question, open while its request is out */
	char index_buf[24];
};

/* ---- scopes and counters ---- */

static size_t content_parts(const gb_qrun *q);

static void
scope_open(gb_qrun *q, const char *name, const gb_kv *meta, size_t n)
{
	if (!q->scoped)
		return;
	assert(q->n_open < MAX_OPEN);
	q->open[q->n_open++] = gb_tele_begin(q->p->tele, name, meta, n);
}

static void
scope_close(gb_qrun *q)
{
	if (!q->scoped)
		return;
	assert(q->n_open > 0);
	gb_tele_end(q->p->tele, &q->open[--q->n_open]);
}

static void
count(gb_qrun *q, const char *name, double inc)
{
	if (inc != 0)
		gb_tele_count(q->p->tele, name, inc, NULL, 0);
}

/* Counts what a finished call did: successes, tokens and the errors met on the way; and,
 * when no client scopes were open around it (the jobs runner), the seed's client metrics. */
static void
count_call(gb_qrun *q, const gb_gemini_result *res)
{
	if (!q->scoped) {
		gb__tele_histogram(q->p->tele, "num_parts", (double)(content_parts(q) + 1), NULL, 0);
		gb__client_call_metrics(q->p->tele, res);
		if (res->status == GB__GEMINI_OK)
			gb__client_response_metrics(q->p->tele, res);
	}
	if (res->status == GB__GEMINI_OK) {
		count(q, "api_calls_successful", 1);
		count(q, "total_tokens", (double)res->usage.total);
		count(q, "prompt_tokens", (double)res->usage.prompt);
		count(q, "output_tokens", (double)res->usage.candidates);
		count(q, "cached_tokens", (double)res->usage.cached);
		count(q, "thoughts_tokens", (double)res->usage.thoughts);
	}
	count(q, "retryable_errors", res->retryable_errors);
	count(q, "non_retryable_errors", res->non_retryable_errors);
	gb__genai_metrics(q->p->tele, gb__gemini_model(q->p->client),
	    q->via_batch_api ? "batch" : NULL, res);
}

/* ---- requests ---- */

/* The content parts a request carries: none when a cache holds the content. */
static size_t
content_parts(const gb_qrun *q)
{
	return q->cached != NULL ? 0 : q->n_content;
}

/* The request's parts: the content parts, then the prompt as the last part. */
static gb_gemini_part *
request_parts(const gb_qrun *q, const char *prompt)
{
	size_t nc = content_parts(q);
	gb_gemini_part *parts = calloc(nc + 1, sizeof(*parts));

	if (parts == NULL)
		return NULL;
	for (size_t i = 0; i < nc; i++) {
		const gb_content *c = &q->content[i];
		bool text = c->mime_type == NULL || strcmp(c->mime_type, "text/plain") == 0;
		parts[i].mime_type = text && c->file_uri == NULL ? NULL : c->mime_type;
		parts[i].data = c->data;
		parts[i].len = c->len;
		parts[i].file_uri = c->file_uri;
	}
	parts[nc].data = prompt;
	parts[nc].len = strlen(prompt);
	return parts;
}

/* The request around q's parts: with a cache, the system instruction is in the cache and
 * the request names it. */
static gb_gemini_request
make_request(const gb_qrun *q, int json, const json_t *schema)
{
	gb_gemini_request rq = { .parts = q->parts, .n_parts = content_parts(q) + 1,
		.system = q->cached != NULL ? NULL : q->p->system, .json = json, .schema = schema,
		.cached_content = q->cached, .generation = q->gen, .safety = q->safety };

	return rq;
}

static void
request_release(gb_qrun *q)
{
	free(q->prompt);
	free(q->parts);
	json_decref(q->array_schema);
	q->prompt = NULL;
	q->parts = NULL;
	q->array_schema = NULL;
}

/* The batched request's prompt, parts and array schema; false when out of memory. */
static bool
batch_request(gb_qrun *q)
{
	gb_result *r = q->r;
	size_t *idx = malloc(r->n * sizeof(*idx));

	for (size_t i = 0; idx != NULL && i < r->n; i++)
		idx[i] = i;
	q->prompt = idx != NULL ? gb__batch_prompt(r, idx, r->n, q->schema != NULL) : NULL;
	q->parts = q->prompt != NULL ? request_parts(q, q->prompt) : NULL;
	if (q->schema != NULL)
		q->array_schema = json_pack("{s:s, s:O}", "type", "ARRAY", "items", q->schema);
	free(idx);
	return q->parts != NULL && (q->schema == NULL || q->array_schema != NULL);
}

/* ---- the batched call ---- */

/* Takes the batch reply's array apart into r->answers; marks missing[i] for what it could
 * not use. */
static enum batch_outcome
take_array(gb_qrun *q, const gb_gemini_result *res, const json_t *arr)
{
	gb_result *r = q->r;
	size_t got = 0, n = json_array_size(arr);

	r->batch_received = n;
	for (size_t i = 0; i < r->n; i++) {
		struct gb_answer *a = &r->answers[i];
		q->missing[i] = i >= n ||
		    !gb__answer_take_value(a, json_array_get(arr, i), q->schema, "batch");
		if (!q->missing[i]) {
			gb__answer_copy_reasons(a, res);
			got++;
		}
	}
	if (n != r->n) {
		q->error_type = "count_mismatch";
		if (asprintf(&r->batch_error, "the batched answer has %zu answers for %zu questions",
		    n, r->n) < 0)
			r->batch_error = NULL;
	} else if (got < r->n) {
		q->error_type = "invalid_answer";
		if (asprintf(&r->batch_error, "%zu of the batched answers are not %s", r->n - got,
		    q->schema != NULL ? "valid for the schema" : "strings") < 0)
			r->batch_error = NULL;
	}
	if (got == 0)
		return BATCH_FAILED;
	return got == r->n ? BATCH_COMPLETE : BATCH_PARTIAL;
}

/* Why an answer with text that ended with res's finishReason (not STOP) is partial. */
static const char *
early_note(const gb_qrun *q, const gb_gemini_result *res, char *buf, size_t len)
{
	char lead[96];

	snprintf(lead, sizeof(lead), "the answer stopped early: finishReason %s",
	    res->finish_reason);
	return gb__gen_finish_note(lead, res->finish_reason, &res->usage, q->gen, buf, len);
}

/* Takes the text of a successful batch reply apart into r->answers. */
static enum batch_outcome
take_batch_text(gb_qrun *q, const gb_gemini_result *res)
{
	gb_result *r = q->r;
	char reason[320], *clean;
	bool stopped = strcmp(res->finish_reason, "STOP") == 0;
	enum batch_outcome out;
	json_t *arr;

	if (gb__no_text_reason(res, reason, sizeof(reason)) != NULL) {
		q->error_type = res->block_reason[0] != '\0' ? "blocked" : "no_text";
		r->batch_error = strdup(gb__gen_finish_note(reason, res->finish_reason,
		    &res->usage, q->gen, reason, sizeof(reason)));
		return BATCH_FAILED;
	}
	/* Which of the answers did the stop cut or filter? Ask each alone instead. */
	if (!stopped && res->finish_reason[0] != '\0' && !q->accept_partial) {
		q->error_type = "finish_reason";
		r->batch_error = strdup(early_note(q, res, reason, sizeof(reason)));
		return BATCH_FAILED;
	}
	if ((clean = gb__strip_fences(res->text)) == NULL)
		return BATCH_FAILED;
	arr = json_loads(clean, JSON_DECODE_ANY, NULL);
	free(clean);
	if (!json_is_array(arr)) {
		q->error_type = arr == NULL ? "invalid_json" : "not_an_array";
		if (asprintf(&r->batch_error, "the batched answer is %s%s%s%s",
		    arr == NULL ? "not valid JSON" : "not a JSON array",
		    !stopped ? " (finishReason " : "", !stopped ? res->finish_reason : "",
		    !stopped ? ")" : "") < 0)
			r->batch_error = NULL;
		json_decref(arr);
		return BATCH_FAILED;
	}
	out = take_array(q, res, arr);
	json_decref(arr);
	return out;
}

/* Takes the outcome of the batched call into r: the answers it brought, or why it failed. */
static enum batch_outcome
take_batch(gb_qrun *q, const gb_gemini_result *res)
{
	gb_result *r = q->r;
	enum batch_outcome out = BATCH_FAILED;

	if (res->status != GB__GEMINI_OK) {
		if (res->attempts > 0 && res->http_status != 0)
			gb__method_add(&r->batch, res);
		q->error_type = res->status == GB__GEMINI_E_TIMEOUT ? "timeout" :
		    res->status == GB__GEMINI_E_QUOTA_DAY ? "quota_exhausted" :
		    res->status == GB__GEMINI_E_RESPONSE ? "invalid_response" :
		    res->status == GB__GEMINI_E_TRANSPORT ? "transport_error" : "api_error";
		r->batch_error = strdup(res->message);
		if (!gb__gemini_is_fatal(res))
			return BATCH_FAILED;
		r->fatal = strdup(res->message);
		return BATCH_FATAL;
	}
	gb__method_add(&r->batch, res);
	GB_SCOPE(q->p->tele, "batch.response_processing")
		out = take_batch_text(q, res);
	return out;
}

/* Opens individual.processing over n questions, with the seed's metadata. */
static void
open_individual(gb_qrun *q, size_t n)
{
	char nbuf[24];

	snprintf(nbuf, sizeof(nbuf), "%zu", n);
	gb_kv kv[2] = { { "method", "individual" }, { "question_count", nbuf } };
	scope_open(q, "individual.processing", kv, 2);
}

/* Records the batch's outcome and lists in q->idx the questions still to ask one by one (all
 * of them when it failed, none after a fatal error), opening the fallback's scopes when
 * there are any. */
static void
after_batch(gb_qrun *q, enum batch_outcome out)
{
	gb_result *r = q->r;
	size_t k = 0;

	r->batch_outcome = out == BATCH_COMPLETE ? "complete" : out == BATCH_PARTIAL ? "partial" :
	    "failed";
	count(q, out == BATCH_COMPLETE || out == BATCH_PARTIAL ? "batch_success" : "batch_failures",
	    1);
	q->state = Q_REPAIR;
	q->k = q->n_idx = 0;
	if (out == BATCH_FATAL) {
		for (size_t i = 0; i < r->n; i++)
			gb__answer_set_error(&r->answers[i], r->fatal != NULL ? r->fatal : "stopped");
		return;
	}
	for (size_t i = 0; i < r->n; i++)
		if (out == BATCH_FAILED || q->missing[i])
			q->idx[k++] = i;
	q->n_idx = k;
	if (k == 0)
		return;
	gb__log_info("batched call %s (%s): asking %zu question%s individually",
	    out == BATCH_PARTIAL ? "incomplete" : "failed",
	    r->batch_error != NULL ? r->batch_error : q->error_type, k, k == 1 ? "" : "s");
	gb_kv kv = { "error_type", q->error_type };
	scope_open(q, "batch.individual_fallback", &kv, 1);
	open_individual(q, k);
}

/* ---- individual calls ---- */

/* Whether a successful call's answer ended otherwise than with STOP. */
static bool
stopped_early(const gb_gemini_result *res)
{
	return res->finish_reason[0] != '\0' && strcmp(res->finish_reason, "STOP") != 0;
}

/* Takes the outcome of one question's own call into a, accounting into m. Returns 1 when
 * the error is fatal; an answer that stopped early is partial unless accepted. */
static int
take_single(gb_qrun *q, struct gb_answer *a, struct gb_method *m, gb_gemini_result *res)
{
	char reason[320], *clean = NULL;
	int fatal = 0;

	m->time += res->seconds;
	gb__answer_copy_reasons(a, res);
	if (res->status != GB__GEMINI_OK) {
		gb__answer_set_error(a, res->message);
		fatal = gb__gemini_is_fatal(res);
		if (res->attempts > 0 && res->http_status != 0)
			gb__method_add(m, res);
	} else {
		gb__method_add(m, res);
		if (gb__no_text_reason(res, reason, sizeof(reason)) != NULL) {
			gb__answer_set_error(a, gb__gen_finish_note(reason, res->finish_reason,
			    &res->usage, q->gen, reason, sizeof(reason)));
		} else if (q->schema == NULL) {
			size_t n = strlen(res->text);
			json_t *v;
			while (n > 0 && strchr(" \t\r\n", res->text[n - 1]) != NULL)
				res->text[--n] = '\0';
			v = json_string(res->text);
			if (v == NULL || !gb__answer_take_value(a, v, NULL, "individual"))
				gb__answer_set_error(a, "out of memory");
			json_decref(v);
		} else {
			json_t *v = (clean = gb__strip_fences(res->text)) != NULL ?
			    json_loads(clean, JSON_DECODE_ANY, NULL) : NULL;
			if (v == NULL || !gb__answer_take_value(a, v, q->schema, "individual"))
				gb__answer_set_error(a, "the answer does not follow the response schema");
			json_decref(v);
		}
	}
	if (a->text != NULL && stopped_early(res) && !q->accept_partial &&
	    (a->partial = strdup(early_note(q, res, reason, sizeof(reason)))) == NULL)
		gb__answer_set_error(a, "out of memory");
	count(q, a->text != NULL ? "individual_success" : "individual_failures", 1);
	free(clean);
	return fatal;
}

/* The answers the current state fills, and the method it accounts to. */
static struct gb_answer *
state_answers(const gb_qrun *q, struct gb_method **m)
{
	bool repair = q->state == Q_REPAIR;

	*m = repair ? &q->r->batch : &q->r->indiv;
	return repair ? q->r->answers : q->r->individual;
}

/* ---- the whole run ---- */

static void
finish(gb_qrun *q)
{
	gb_result *r = q->r;

	q->state = Q_DONE;
	scope_open(q, "batch.result_building", NULL, 0);
	gb__result_usage_sum(r);
	if (q->compare && r->batch.total > 0 && r->indiv.calls > 0)
		gb_tele_gauge(q->p->tele, "token_efficiency",
		    (double)r->indiv.total / (double)r->batch.total, NULL, 0);
	scope_close(q);
	scope_close(q); /* batch.total_processing */
	r->processing_time = (double)(gb__clock_mono_ns() - q->t0) / 1e9;
}

/* The questions of the current state are all asked: closes its scopes and moves on to
 * comparing, or to the end. */
static void
after_answers(gb_qrun *q)
{
	gb_result *r = q->r;

	if (q->state == Q_COMPARE || q->n_idx > 0) {
		scope_close(q); /* individual.processing */
		scope_close(q); /* batch.individual_fallback or batch.comparison_run */
	}
	q->k = 0;
	if (q->state == Q_COMPARE || !q->compare || r->fatal != NULL) {
		finish(q);
		return;
	}
	q->state = Q_COMPARE;
	for (size_t i = 0; i < r->n; i++)
		q->idx[i] = i;
	q->n_idx = r->n;
	scope_open(q, "batch.comparison_run", NULL, 0);
	open_individual(q, r->n);
}

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
		if (content[i].data == NULL && content[i].len > 0 && content[i].file_uri == NULL) {
			snprintf(err, errlen, "content part %zu has no data", i + 1);
			return -EINVAL;
		}
	}
	return 0;
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

/* Parses opts' generation settings into *gen and *safety (NULL when absent). Returns 0, or
 * -EINVAL with err naming the bad field and value. */
static int
parse_gen(const gb_process_opts *opts, json_t **gen, json_t **safety, char *err, size_t errlen)
{
	*gen = *safety = NULL;
	if (opts == NULL)
		return 0;
	return gb__gen_parse(opts->generation_config, opts->safety_settings, gen, safety, err,
	    errlen) != 0 ? -EINVAL : 0;
}

int
gb_process_opts_check(const gb_process_opts *opts, char *err, size_t errlen)
{
	json_t *schema, *gen, *safety;
	int rc = parse_schema(opts, &schema, err, errlen);

	json_decref(schema);
	if (rc == 0 && (rc = parse_gen(opts, &gen, &safety, err, errlen)) == 0) {
		json_decref(gen);
		json_decref(safety);
	}
	return rc;
}

int
gb__qrun_new(gb_processor *p, const gb_content *content, size_t n_content,
    const char *const *questions, size_t n, const gb_process_opts *opts, const char *cached,
    unsigned flags, gb_qrun **out, char *err, size_t errlen)
{
	gb_qrun *q;
	char nbuf[24];
	int rc;

	*out = NULL;
	if ((rc = check_args(content, n_content, questions, n, err, errlen)) != 0)
		return rc;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		goto oom;
	q->p = p;
	q->content = content;
	q->n_content = n_content;
	q->compare = opts != NULL && (opts->flags & GB_PROCESS_COMPARE) != 0;
	q->scoped = (flags & GB__QRUN_SCOPED) != 0;
	q->no_ids = opts != NULL && (opts->flags & GB_PROCESS_NO_TELEMETRY_IDS) != 0;
	q->error_type = "none";
	q->accept_partial = opts != NULL && (opts->flags & GB_PROCESS_ACCEPT_PARTIAL) != 0;
	if ((rc = parse_schema(opts, &q->schema, err, errlen)) != 0 ||
	    (rc = parse_gen(opts, &q->gen, &q->safety, err, errlen)) != 0) {
		json_decref(q->schema);
		free(q);
		return rc;
	}
	q->r = gb__result_new(questions, n, q->compare);
	q->missing = calloc(n, sizeof(*q->missing));
	q->idx = calloc(n, sizeof(*q->idx));
	q->cached = cached != NULL ? strdup(cached) : NULL;
	if (q->r == NULL || q->missing == NULL || q->idx == NULL ||
	    (cached != NULL && q->cached == NULL))
		goto oom;
	q->r->has_schema = q->schema != NULL;
	q->t0 = gb__clock_mono_ns();
	snprintf(nbuf, sizeof(nbuf), "%zu", n);
	gb_kv meta[2] = { { "question_count", nbuf },
		{ "content_type", content_type(content, n_content) } };
	scope_open(q, "batch.total_processing", meta, 2);
	*out = q;
	return 0;
oom:
	gb__qrun_free(q);
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* Gets the batched request ready, under batch.attempt > batch.processing; false when it
 * could not be made (the batch then counts as failed). */
static bool
next_batch(gb_qrun *q)
{
	bool ok = false;

	gb_kv kv[2] = { { "method", "batch" },
		{ "schema_enabled", q->schema != NULL ? "True" : "False" } };

	scope_open(q, "batch.attempt", NULL, 0);
	scope_open(q, "batch.processing", kv, 2);
	GB_SCOPE(q->p->tele, "batch.prompt_creation")
		ok = batch_request(q);
	if (ok) {
		scope_open(q, "batch.api_call", NULL, 0);
		return true;
	}
	request_release(q);
	scope_close(q);
	scope_close(q);
	q->r->batch_error = strdup("out of memory");
	q->error_type = "out_of_memory";
	after_batch(q, BATCH_FAILED);
	return false;
}

int
gb__qrun_next(gb_qrun *q, gb_gemini_request *rq, const char **kind)
{
	request_release(q);
	if (q->state == Q_BATCH && next_batch(q)) {
		*rq = make_request(q, 1, q->array_schema);
		*kind = "batch";
		return 1;
	}
	while (q->state == Q_REPAIR || q->state == Q_COMPARE) {
		struct gb_method *m;
		struct gb_answer *as = state_answers(q, &m);
		if (q->k == q->n_idx) {
			after_answers(q);
			continue;
		}
		if ((q->prompt = gb__single_prompt(q->r->questions[q->idx[q->k]])) == NULL ||
		    (q->parts = request_parts(q, q->prompt)) == NULL) {
			request_release(q);
			gb__answer_set_error(&as[q->idx[q->k++]], "out of memory");
			continue;
		}
		if (q->scoped) {
			snprintf(q->index_buf, sizeof(q->index_buf), "%zu", q->idx[q->k]);
			gb_kv kv = { "question_index", q->index_buf };
			q->question = gb_tele_begin(q->p->tele, "individual.question", &kv,
			    q->no_ids ? 0 : 1);
		}
		*rq = make_request(q, 0, q->schema);
		*kind = "single";
		return 1;
	}
	return 0;
}

void
gb__qrun_take(gb_qrun *q, gb_gemini_result *res)
{
	gb_result *r = q->r;
	struct gb_method *m;
	struct gb_answer *as;
	enum batch_outcome out;

	count_call(q, res);
	if (q->state == Q_BATCH) {
		scope_close(q); /* batch.api_call */
		r->batch.time += res->seconds;
		out = take_batch(q, res);
		scope_close(q); /* batch.processing */
		scope_close(q); /* batch.attempt */
		after_batch(q, out);
		return;
	}
	as = state_answers(q, &m);
	int fatal = take_single(q, &as[q->idx[q->k]], m, res);
	if (q->scoped)
		gb_tele_end(q->p->tele, &q->question);
	q->k++;
	if (!fatal)
		return;
	if (r->fatal == NULL)
		r->fatal = strdup(as[q->idx[q->k - 1]].error != NULL ?
		    as[q->idx[q->k - 1]].error : "stopped");
	for (; q->k < q->n_idx; q->k++)
		gb__answer_set_error(&as[q->idx[q->k]], r->fatal);
}

void
gb__qrun_take_from_batch(gb_qrun *q, gb_gemini_result *res)
{
	q->via_batch_api = true;
	gb__qrun_take(q, res);
	q->via_batch_api = false;
}

size_t
gb__qrun_to_ask(const gb_qrun *q)
{
	return q->state == Q_REPAIR || q->state == Q_COMPARE ? q->n_idx - q->k : 0;
}

void
gb__qrun_abandon(gb_qrun *q, const char *why)
{
	struct gb_method *m;
	struct gb_answer *as;

	if (q->state != Q_REPAIR && q->state != Q_COMPARE)
		return;
	as = state_answers(q, &m);
	for (; q->k < q->n_idx; q->k++)
		gb__answer_set_error(&as[q->idx[q->k]], why);
}

gb_result *
gb__qrun_result(gb_qrun *q)
{
	gb_result *r = q->r;

	if (q->state != Q_DONE)
		return NULL;
	q->r = NULL;
	return r;
}

void
gb__qrun_free(gb_qrun *q)
{
	if (q == NULL)
		return;
	request_release(q);
	while (q->n_open > 0)
		scope_close(q);
	gb_result_free(q->r);
	json_decref(q->schema);
	json_decref(q->gen);
	json_decref(q->safety);
	free(q->missing);
	free(q->idx);
	free(q->cached);
	free(q);
}

/* ---- the one-content run: every request sent as soon as it is ready ---- */

/* One call under the seed's client scopes: client.generate_content > client.execute_generation
 * (num_parts) > client.api_call_with_retry (the exchange, retries included; api_success or
 * api_failures), then client.process_response (reading the reply's usage into its metrics;
 * the reply's JSON is parsed inside the exchange, as its retries need). The seed times
 * client.process_response twice per call, the second time over its own processed reply; this
 * records the one that does the work. */
static void
client_call(gb_processor *p, const gb_gemini_request *rq, gb_gemini_result *res)
{
	GB_SCOPE(p->tele, "client.generate_content")
	GB_SCOPE(p->tele, "client.execute_generation") {
		gb__tele_histogram(p->tele, "num_parts", (double)rq->n_parts, NULL, 0);
		GB_SCOPE(p->tele, "client.api_call_with_retry") {
			gb__gemini_generate(p->client, rq, res);
			gb__client_call_metrics(p->tele, res);
		}
		if (res->status == GB__GEMINI_OK)
			GB_SCOPE(p->tele, "client.process_response")
				gb__client_response_metrics(p->tele, res);
	}
}

int
gb_processor_process_questions(gb_processor *p, const gb_content *content, size_t n_content,
    const char *const *questions, size_t n, const gb_process_opts *opts, gb_result **out,
    char *err, size_t errlen)
{
	gb_gemini_request rq;
	const char *kind;
	gb_qrun *q;
	int rc;

	*out = NULL;
	if ((rc = gb__qrun_new(p, content, n_content, questions, n, opts, NULL, GB__QRUN_SCOPED,
	    &q, err, errlen)) != 0)
		return rc;
	while (gb__qrun_next(q, &rq, &kind)) {
		gb_gemini_result res = { 0 };
		client_call(p, &rq, &res);
		gb__qrun_take(q, &res);
		gb__gemini_result_fini(&res);
	}
	*out = gb__qrun_result(q);
	gb__qrun_free(q);
	return 0;
}
