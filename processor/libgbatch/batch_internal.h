/*
 * batch_internal.h - what the files of the batch processor share (not a public API): the
 * processor and result structures, the answer and prompt helpers (batch_prompt.c) and the
 * result's bookkeeping (batch_result.c), used by the one driver of the workflow (batch_run.c).
 */
#ifndef GBATCH_LIBGBATCH_BATCH_INTERNAL_H
#define GBATCH_LIBGBATCH_BATCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <gbatch/processor.h>

#include "gemini_client.h"

struct gb_processor {
	gb_gemini *client;
	gb_tele *tele;
	char *system;
};

/* Per-method cost, as the seed's metrics.batch / metrics.individual. */
struct gb_method {
	unsigned calls;
	int64_t prompt, output, cached, thoughts, total;
	unsigned retries;
	double time;
};

struct gb_answer {
	char *text;         /* NULL when failed */
	json_t *structured; /* schema runs: the parsed answer */
	const char *source; /* "batch", "individual", "error" (static strings) */
	char *error;
	char *partial;      /* why the answer is partial (finishReason not STOP), or NULL */
	char finish[32];
	char block[40];
};

struct gb_result {
	size_t n;
	char **questions;
	struct gb_answer *answers;
	struct gb_answer *individual; /* compare mode: the one-by-one answers; else NULL */
	bool has_schema;
	struct gb_method batch, indiv, usage;
	const char *batch_outcome; /* "complete", "partial", "failed", "skipped" (static) */
	size_t batch_received;
	char *batch_error;
	char *fatal;
	double processing_time;
};

/* ---- batch_result.c ---- */

/* A result for the n questions (copied), every answer an error until taken, with room for
 * the one-by-one answers when compare is set. NULL when out of memory. */
gb_result *gb__result_new(const char *const *questions, size_t n, bool compare);
/* Makes a an error with message msg (copied), dropping what it held. */
void gb__answer_set_error(struct gb_answer *a, const char *msg);
/* Adds what one call cost (its usage and retries) to m. */
void gb__method_add(struct gb_method *m, const gb_gemini_result *res);
/* Sums the batch and individual costs into r->usage. */
void gb__result_usage_sum(gb_result *r);

/* ---- batch_prompt.c ---- */

/* The batched prompt for the questions idx[0..n) of r, asking for a JSON array (of schema
 * items when has_schema). Owned by the caller; NULL when out of memory. */
char *gb__batch_prompt(const gb_result *r, const size_t *idx, size_t n, bool has_schema);
/* The prompt asking one question alone (owned; NULL when out of memory). */
char *gb__single_prompt(const char *question);
/* The text between a leading ``` fence line and a trailing ``` (owned copy; NULL when out of
 * memory). */
char *gb__strip_fences(const char *text);
/* Stores one answer value (a JSON string, or for a schema any value following it) into a,
 * from source (a static string). Returns false when the value is not an acceptable answer
 * or memory ran out. */
bool gb__answer_take_value(struct gb_answer *a, const json_t *v, const json_t *schema,
    const char *source);
/* Copies the call's finishReason and blockReason into a. */
void gb__answer_copy_reasons(struct gb_answer *a, const gb_gemini_result *res);
/* Why a successful HTTP call brought no usable text (written into buf), or NULL when it did. */
const char *gb__no_text_reason(const gb_gemini_result *res, char *buf, size_t len);

/* ---- batch_metrics.c ---- */

/* The OpenTelemetry GenAI client metrics of one call to model: its duration (retries included,
 * with error.type when it failed) and, when it answered, its tokens by gen_ai.token.type;
 * mode (NULL: none) tags them: "batch" for a Batch API batch's response. */
void gb__genai_metrics(gb_tele *t, const char *model, const char *mode,
    const gb_gemini_result *res);
/* The seed's api_success or api_failures of one call. */
void gb__client_call_metrics(gb_tele *t, const gb_gemini_result *res);
/* The seed's seed_total_tokens and billable_tokens of one call's reply. */
void gb__client_response_metrics(gb_tele *t, const gb_gemini_result *res);

#endif
