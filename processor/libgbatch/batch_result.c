/*
 * batch_result.c - the result of one question set: its answers and their sources, what each
 * method cost, and the result as JSON (gb_result_to_json), the keys the README lists.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch_internal.h"
#include "json_writer.h"

static void
answer_fini(struct gb_answer *a)
{
	free(a->text);
	free(a->error);
	free(a->partial);
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

const char *
gb_result_partial(const gb_result *r, size_t i)
{
	return i < r->n && r->answers[i].text != NULL ? r->answers[i].partial : NULL;
}

size_t
gb_result_partial_count(const gb_result *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += gb_result_partial(r, i) != NULL;
	return n;
}

void
gb__answer_set_error(struct gb_answer *a, const char *msg)
{
	free(a->text);
	a->text = NULL;
	json_decref(a->structured);
	a->structured = NULL;
	free(a->error);
	a->error = strdup(msg);
	free(a->partial);
	a->partial = NULL;
	a->source = "error";
}

void
gb__method_add(struct gb_method *m, const gb_gemini_result *res)
{
	m->calls++;
	m->prompt += res->usage.prompt;
	m->output += res->usage.candidates;
	m->cached += res->usage.cached;
	m->thoughts += res->usage.thoughts;
	m->total += res->usage.total;
	m->retries += res->attempts > 0 ? res->attempts - 1 : 0;
}

void
gb__result_usage_sum(gb_result *r)
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

gb_result *
gb__result_new(const char *const *questions, size_t n, bool compare)
{
	gb_result *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->questions = calloc(n, sizeof(*r->questions));
	r->answers = calloc(n, sizeof(*r->answers));
	r->individual = compare ? calloc(n, sizeof(*r->individual)) : NULL;
	if (r->questions == NULL || r->answers == NULL || (compare && r->individual == NULL))
		goto fail;
	r->n = n; /* only now may gb_result_free walk the arrays */
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

/* ---- JSON ---- */

static json_t *
method_json(const struct gb_method *m)
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

/* Appends v (stolen) to arr; on failure arr is released. Returns arr, or NULL. */
static json_t *
append(json_t *arr, json_t *v)
{
	if (arr == NULL || json_array_append_new(arr, v) != 0) {
		json_decref(arr);
		if (arr == NULL)
			json_decref(v);
		return NULL;
	}
	return arr;
}

/* Sets key to v (stolen) in obj. Returns 0, or -1 when it could not (v is released). */
static int
set(json_t *obj, const char *key, json_t *v)
{
	return json_object_set_new(obj, key, v);
}

static json_t *
answers_json(const gb_result *r, const struct gb_answer *as)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < r->n && arr != NULL; i++)
		arr = append(arr, str_or_null(as[i].text));
	return arr;
}

static json_t *
detail_json(const gb_result *r, size_t i)
{
	const struct gb_answer *a = &r->answers[i];
	json_t *d = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i, "question",
	    r->questions[i], "source", a->source);

	if (d == NULL || (a->finish[0] != '\0' && set(d, "finish_reason", json_string(a->finish))) ||
	    (a->block[0] != '\0' && set(d, "block_reason", json_string(a->block))) ||
	    (a->error != NULL && set(d, "error", json_string(a->error))) ||
	    (gb_result_partial(r, i) != NULL && set(d, "partial", json_string(a->partial)))) {
		json_decref(d);
		return NULL;
	}
	return d;
}

static json_t *
details_json(const gb_result *r)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < r->n && arr != NULL; i++)
		arr = append(arr, detail_json(r, i));
	return arr;
}

static json_t *
structured_json(const gb_result *r)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < r->n && arr != NULL; i++)
		arr = append(arr, r->answers[i].structured != NULL ?
		    json_incref(r->answers[i].structured) : json_null());
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

/* The usage block: the methods' sum, with retries and without time. */
static json_t *
usage_json(const gb_result *r)
{
	json_t *usage = method_json(&r->usage);

	if (usage == NULL || set(usage, "retries", json_integer(r->usage.retries)) != 0 ||
	    json_object_del(usage, "time") != 0) {
		json_decref(usage);
		return NULL;
	}
	return usage;
}

/* The whole result as a JSON object; NULL when any part of it could not be made. */
static json_t *
result_json(const gb_result *r)
{
	json_t *root = json_pack("{s:I, s:o, s:o, s:{s:s, s:I, s:I, s:o}, s:o, s:f, s:{s:o, s:o}, "
	    "s:o}", "question_count", (json_int_t)r->n,
	    "answers", answers_json(r, r->answers),
	    "answer_details", details_json(r),
	    "batch", "outcome", r->batch_outcome, "answers_expected", (json_int_t)r->n,
	    "answers_received", (json_int_t)r->batch_received, "error", str_or_null(r->batch_error),
	    "efficiency", efficiency_json(r),
	    "processing_time", r->processing_time,
	    "metrics", "batch", method_json(&r->batch), "individual", method_json(&r->indiv),
	    "usage", usage_json(r));

	if (root == NULL ||
	    (r->individual != NULL && set(root, "individual_answers",
	    answers_json(r, r->individual)) != 0) ||
	    (r->has_schema && set(root, "structured_data", structured_json(r)) != 0) ||
	    (r->fatal != NULL && set(root, "error", json_string(r->fatal)) != 0) ||
	    set(root, "partial_count", json_integer((json_int_t)gb_result_partial_count(r))) != 0) {
		json_decref(root);
		return NULL;
	}
	return root;
}

/* Dumps root into a buffer of its own size: counted first, then written where nothing can
 * fail. (json_dumps grows a buffer as it writes and, when growing fails on a key, leaves the
 * key out and goes on: jansson 2.14 ignores that error.) NULL when out of memory. */
static char *
dump(const json_t *root, size_t flags)
{
	size_t need = json_dumpb(root, NULL, 0, flags);
	char *s = need > 0 ? malloc(need + 1) : NULL;

	if (s == NULL || json_dumpb(root, s, need, flags) != need) {
		free(s);
		return NULL;
	}
	s[need] = '\0';
	return s;
}

/* ---- the compact text, written straight: what dump(result_json(r), JSON_COMPACT) gives,
 * key for key, at a tenth of the cost (every --jobs result line is one) ---- */

static void
method_text(gb_jw *w, const struct gb_method *m, bool usage)
{
	gb__jw_lit(w, "{\"calls\":");
	gb__jw_int(w, (int)m->calls);
	gb__jw_lit(w, ",\"prompt_tokens\":");
	gb__jw_int(w, m->prompt);
	gb__jw_lit(w, ",\"output_tokens\":");
	gb__jw_int(w, m->output);
	gb__jw_lit(w, ",\"cached_tokens\":");
	gb__jw_int(w, m->cached);
	gb__jw_lit(w, ",\"thoughts_tokens\":");
	gb__jw_int(w, m->thoughts);
	gb__jw_lit(w, ",\"total_tokens\":");
	gb__jw_int(w, m->total);
	if (usage) {
		gb__jw_lit(w, ",\"retries\":");
		gb__jw_int(w, m->retries);
	} else {
		gb__jw_lit(w, ",\"time\":");
		gb__jw_real(w, m->time);
	}
	gb__jw_raw(w, "}", 1);
}

static void
answers_text(gb_jw *w, const gb_result *r, const struct gb_answer *as)
{
	gb__jw_raw(w, "[", 1);
	for (size_t i = 0; i < r->n; i++) {
		if (i > 0)
			gb__jw_raw(w, ",", 1);
		gb__jw_str_or_null(w, as[i].text);
	}
	gb__jw_raw(w, "]", 1);
}

static void
details_text(gb_jw *w, const gb_result *r)
{
	gb__jw_raw(w, "[", 1);
	for (size_t i = 0; i < r->n; i++) {
		const struct gb_answer *a = &r->answers[i];
		gb__jw_lit(w, i > 0 ? ",{\"index\":" : "{\"index\":");
		gb__jw_int(w, (long long)i);
		gb__jw_lit(w, ",\"question\":");
		gb__jw_str(w, r->questions[i]);
		gb__jw_lit(w, ",\"source\":");
		gb__jw_str(w, a->source);
		if (a->finish[0] != '\0') {
			gb__jw_lit(w, ",\"finish_reason\":");
			gb__jw_str(w, a->finish);
		}
		if (a->block[0] != '\0') {
			gb__jw_lit(w, ",\"block_reason\":");
			gb__jw_str(w, a->block);
		}
		if (a->error != NULL) {
			gb__jw_lit(w, ",\"error\":");
			gb__jw_str(w, a->error);
		}
		if (gb_result_partial(r, i) != NULL) {
			gb__jw_lit(w, ",\"partial\":");
			gb__jw_str(w, a->partial);
		}
		gb__jw_raw(w, "}", 1);
	}
	gb__jw_raw(w, "]", 1);
}

static void
efficiency_text(gb_jw *w, const gb_result *r)
{
	double ratio;

	if (r->individual == NULL || r->indiv.calls == 0 || r->batch.total == 0) {
		gb__jw_lit(w, "{\"token_efficiency_ratio\":null,\"time_efficiency\":null,"
		    "\"meets_target\":null,\"comparison_available\":false}");
		return;
	}
	ratio = (double)r->indiv.total / (double)r->batch.total;
	gb__jw_lit(w, "{\"token_efficiency_ratio\":");
	gb__jw_real(w, ratio);
	gb__jw_lit(w, ",\"time_efficiency\":");
	gb__jw_real(w, r->batch.time > 0 ? r->indiv.time / r->batch.time : 0);
	gb__jw_lit(w, ",\"meets_target\":");
	gb__jw_bool(w, ratio >= GB_TARGET_TOKEN_EFFICIENCY);
	gb__jw_lit(w, ",\"comparison_available\":true}");
}

static void
structured_text(gb_jw *w, const gb_result *r)
{
	gb__jw_raw(w, "[", 1);
	for (size_t i = 0; i < r->n; i++) {
		if (i > 0)
			gb__jw_raw(w, ",", 1);
		if (r->answers[i].structured != NULL)
			gb__jw_value(w, r->answers[i].structured, 0);
		else
			gb__jw_raw(w, "null", 4);
	}
	gb__jw_raw(w, "]", 1);
}

static char *
result_text(const gb_result *r)
{
	gb_jw w;

	gb__jw_init(&w, 1024 + r->n * 256);
	gb__jw_lit(&w, "{\"question_count\":");
	gb__jw_int(&w, (long long)r->n);
	gb__jw_lit(&w, ",\"answers\":");
	answers_text(&w, r, r->answers);
	gb__jw_lit(&w, ",\"answer_details\":");
	details_text(&w, r);
	gb__jw_lit(&w, ",\"batch\":{\"outcome\":");
	gb__jw_str(&w, r->batch_outcome);
	gb__jw_lit(&w, ",\"answers_expected\":");
	gb__jw_int(&w, (long long)r->n);
	gb__jw_lit(&w, ",\"answers_received\":");
	gb__jw_int(&w, (long long)r->batch_received);
	gb__jw_lit(&w, ",\"error\":");
	gb__jw_str_or_null(&w, r->batch_error);
	gb__jw_lit(&w, "},\"efficiency\":");
	efficiency_text(&w, r);
	gb__jw_lit(&w, ",\"processing_time\":");
	gb__jw_real(&w, r->processing_time);
	gb__jw_lit(&w, ",\"metrics\":{\"batch\":");
	method_text(&w, &r->batch, false);
	gb__jw_lit(&w, ",\"individual\":");
	method_text(&w, &r->indiv, false);
	gb__jw_lit(&w, "},\"usage\":");
	method_text(&w, &r->usage, true);
	if (r->individual != NULL) {
		gb__jw_lit(&w, ",\"individual_answers\":");
		answers_text(&w, r, r->individual);
	}
	if (r->has_schema) {
		gb__jw_lit(&w, ",\"structured_data\":");
		structured_text(&w, r);
	}
	if (r->fatal != NULL) {
		gb__jw_lit(&w, ",\"error\":");
		gb__jw_str(&w, r->fatal);
	}
	gb__jw_lit(&w, ",\"partial_count\":");
	gb__jw_int(&w, (long long)gb_result_partial_count(r));
	gb__jw_raw(&w, "}", 1);
	return gb__jw_finish(&w, NULL);
}

char *
gb_result_to_json(const gb_result *r, unsigned flags)
{
	json_t *root;
	char *s;

	if ((flags & GB_RESULT_JSON_PRETTY) == 0)
		return result_text(r);
	if ((root = result_json(r)) == NULL)
		return NULL;
	s = dump(root, JSON_INDENT(2));
	json_decref(root);
	return s;
}
