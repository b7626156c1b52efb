/*
 * gbatch/processor.h - ask many questions about one content in a single Gemini call (the C face
 * of gemini-batch's BatchProcessor.process_questions), with the answer count checked, missing or
 * failed answers asked one by one, real token usage, and an optional batch-vs-individual comparison.
 */
#ifndef GBATCH_PROCESSOR_H
#define GBATCH_PROCESSOR_H

#include <stddef.h>

#include <gbatch/telemetry.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gb_processor gb_processor;
typedef struct gb_result gb_result;

#define GB_DEFAULT_MODEL "gemini-2.0-flash"
#define GB_DEFAULT_API_BASE "https://generativelanguage.googleapis.com"

/* Processor settings. Zero a struct (or call gb_processor_opts_init), then set what you need;
 * a zero field takes the default given beside it. Strings are copied by gb_processor_new. */
typedef struct gb_processor_opts {
	const char *api_key;            /* required; sent only as the x-goog-api-key header */
	const char *api_base;           /* NULL: GB_DEFAULT_API_BASE */
	const char *model;              /* NULL: GB_DEFAULT_MODEL */
	const char *system_instruction; /* NULL: none */
	gb_tele *tele;                  /* NULL: no telemetry; borrowed, must outlive the processor */
	double timeout_s;               /* one HTTP attempt, whole: 120 */
	double connect_timeout_s;       /* 10 */
	unsigned max_attempts;          /* HTTP attempts per call, retries included: 5 */
	double backoff_base_s;          /* first retry wait without a server retryDelay: 1, doubling */
	double backoff_max_s;           /* cap on one wait: 60 */
	double max_retry_delay_s;       /* a server retryDelay above this fails the call: 600 */
} gb_processor_opts;

/* Zeroes o (every field at its default). */
GB_API void gb_processor_opts_init(gb_processor_opts *o);

/* One piece of the content asked about: text (mime_type NULL or "text/plain", UTF-8), or data
 * sent inline with its MIME type (application/pdf, image/png, ...), or, with file_uri set, a
 * file already uploaded with the Files API (its "uri", ACTIVE), referenced as fileData with
 * mime_type (NULL: text/plain) and data and len unused. Borrowed during the call. */
typedef struct gb_content {
	const char *mime_type;
	const void *data;
	size_t len;
	const char *file_uri;
} gb_content;

#define GB_PROCESS_COMPARE 0x1u /* also ask every question individually and compare the cost */
/* Leave per-question ids (individual.question's question_index) out of telemetry metadata,
 * so every tag a metrics backend gets has few values; the results still carry them. */
#define GB_PROCESS_NO_TELEMETRY_IDS 0x2u
/* Take an answer whose finishReason is not STOP (SAFETY, RECITATION, MAX_TOKENS, ...) as a
 * plain answer, as before 0.2; without it such an answer is partial (gb_result_partial). */
#define GB_PROCESS_ACCEPT_PARTIAL 0x4u

typedef struct gb_process_opts {
	unsigned flags;              /* GB_PROCESS_* */
	const char *response_schema; /* JSON text of the schema each answer must follow, or NULL */
	/* Since 0.2 (libgbatch.so.1: a program built against 0.1 must be rebuilt, as gb_content
	 * grew file_uri too):
	 * generation_config is the JSON text of a generationConfig object as the REST reference
	 * names it: temperature (0 to 2), topP (0 to 1), topK (>= 1), maxOutputTokens (>= 1),
	 * stopSequences (1 to 5 strings), seed, thinkingConfig {thinkingBudget (-1 dynamic, 0 off,
	 * or tokens), includeThoughts}; nothing else (the schema stays in response_schema, and is
	 * sent in the same generationConfig). safety_settings is the JSON text of a safetySettings
	 * array, [{"category": "HARM_CATEGORY_...", "threshold": "BLOCK_..." or "OFF"}], each
	 * category once. NULL: none (the API's defaults). Thought parts are never taken as the
	 * answer. */
	const char *generation_config;
	const char *safety_settings;
} gb_process_opts;

/* Creates a processor (one HTTP connection, reused). NULL on bad options or out of memory, with
 * err (always terminated when errlen > 0) saying which. Not thread-safe: one per thread. */
GB_API gb_processor *gb_processor_new(const gb_processor_opts *o, char *err, size_t errlen);
/* Frees p (NULL is fine); the key is wiped from memory. */
GB_API void gb_processor_free(gb_processor *p);

/* Sets the telemetry context p records into from now on (borrowed, must outlive p; NULL: none),
 * so a program can check every option with gb_processor_new before it opens telemetry. */
GB_API void gb_processor_set_telemetry(gb_processor *p, gb_tele *tele);

/* Checks opts as gb_processor_process_questions will (the schema must be a JSON object, the
 * generation settings in range: err names the field and its value). Returns 0, or -EINVAL
 * with err saying why. NULL opts is valid. */
GB_API int gb_process_opts_check(const gb_process_opts *opts, char *err, size_t errlen);

/* Asks the n questions (borrowed) about the content: one batched call for a JSON array of n
 * answers; answers missing from it, and every answer when the batched call fails, are asked one
 * by one; a question that still fails becomes an error entry and the others go on. A per-day
 * quota, a refused key or an unknown model stops the work (gb_result_fatal_error). opts may be
 * NULL. On success returns 0 and *out holds a result the caller frees with gb_result_free
 * (even when some answers failed); returns -EINVAL (bad arguments, schema not JSON) or -ENOMEM
 * with err filled and *out NULL. */
GB_API int gb_processor_process_questions(gb_processor *p, const gb_content *content,
    size_t n_content, const char *const *questions, size_t n, const gb_process_opts *opts,
    gb_result **out, char *err, size_t errlen);

/* Reading a result; i < gb_result_question_count. Strings belong to the result. */
GB_API size_t gb_result_question_count(const gb_result *r);
/* Questions without an answer. */
GB_API size_t gb_result_failed_count(const gb_result *r);
/* The answer text (for a schema, the answer's JSON), or NULL when question i failed. */
GB_API const char *gb_result_answer(const gb_result *r, size_t i);
/* Where answer i came from: "batch", "individual" or "error". */
GB_API const char *gb_result_source(const gb_result *r, size_t i);
/* Why question i failed, or NULL when it was answered. */
GB_API const char *gb_result_error(const gb_result *r, size_t i);
/* Why the work stopped early (per-day quota, key refused, unknown model), or NULL. */
GB_API const char *gb_result_fatal_error(const gb_result *r);
/* Since 0.2: why answer i is partial (it has text, but its finishReason is not STOP, and
 * GB_PROCESS_ACCEPT_PARTIAL was not given), or NULL. */
GB_API const char *gb_result_partial(const gb_result *r, size_t i);
/* Since 0.2: answers that are partial. */
GB_API size_t gb_result_partial_count(const gb_result *r);

#define GB_RESULT_JSON_PRETTY 0x1u /* indented, one key per line */

/* The result as JSON text the caller frees (NULL when out of memory). Keys: question_count,
 * answers (strings, null for failures), answer_details (source, finish_reason, block_reason,
 * error, and partial with its reason, per answer), partial_count, batch (outcome, answers_expected, answers_received, error), efficiency
 * (token_efficiency_ratio, time_efficiency, meets_target, comparison_available),
 * processing_time, metrics.batch and metrics.individual ({calls, prompt_tokens, output_tokens,
 * cached_tokens, thoughts_tokens, total_tokens, time}), usage, individual_answers (compare),
 * structured_data (schema), error (fatal). */
GB_API char *gb_result_to_json(const gb_result *r, unsigned flags);
/* Frees r (NULL is fine). */
GB_API void gb_result_free(gb_result *r);

/* The token efficiency a batch must reach to count as worth it (the seed's target). */
#define GB_TARGET_TOKEN_EFFICIENCY 2.97

#ifdef __cplusplus
}
#endif

#endif
