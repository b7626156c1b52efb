/*
 * batch_run.h - the one driver of the batch workflow (not a public API): a question set taken
 * apart into the requests it sends. The caller asks for the next request, sends it however it
 * likes and hands back the outcome: gb_processor_process_questions sends each at once, the
 * jobs runner interleaves many question sets on one libcurl multi handle.
 */
#ifndef GBATCH_LIBGBATCH_BATCH_RUN_H
#define GBATCH_LIBGBATCH_BATCH_RUN_H

#include <stddef.h>

#include <gbatch/processor.h>

#include "gemini_client.h"

typedef struct gb_qrun gb_qrun;

/* Open the seed's nested scopes (batch.total_processing > batch.attempt > ...) around the
 * steps: only for a caller that runs the steps one after another in one thread, with no
 * other scope of the same context opened or closed in between. */
#define GB__QRUN_SCOPED 1u

/* Prepares the work of gb_processor_process_questions on the same arguments (borrowed until
 * gb__qrun_free), with cached ("cachedContents/...", copied) naming a cache that holds the
 * content and the system instruction, or NULL to send the content in every request. flags:
 * GB__QRUN_SCOPED or 0 (then every record goes to the caller's current scope). The seed's
 * counters and the token counters are recorded alike in both cases. Returns 0 with *out set,
 * or -EINVAL / -ENOMEM with err filled. */
int gb__qrun_new(gb_processor *p, const gb_content *content, size_t n_content,
    const char *const *questions, size_t n, const gb_process_opts *opts, const char *cached,
    unsigned flags, gb_qrun **out, char *err, size_t errlen);
/* The next request to send, in *rq (its pointers valid until the next call on q), with *kind
 * "batch" or "single". Returns 1, or 0 when the work is done (gb__qrun_result). */
int gb__qrun_next(gb_qrun *q, gb_gemini_request *rq, const char **kind);
/* Takes the final outcome (retries done) of the request gb__qrun_next gave last. res->seconds
 * counts as the call's time. */
void gb__qrun_take(gb_qrun *q, gb_gemini_result *res);
/* gb__qrun_take of an outcome a Batch API batch gave for the request gb__qrun_next gave last
 * (not sent): counted alike, its GenAI metrics tagged mode:batch. */
void gb__qrun_take_from_batch(gb_qrun *q, gb_gemini_result *res);
/* How many questions q will still ask one by one in its current state (0 when it is done or
 * has its batched call still to make). */
size_t gb__qrun_to_ask(const gb_qrun *q);
/* Gives up the questions q still has to ask one by one: each answer becomes an error saying
 * why (copied); gb__qrun_next then finishes. */
void gb__qrun_abandon(gb_qrun *q, const char *why);
/* The result, handed over to the caller (gb_result_free), once gb__qrun_next returned 0;
 * NULL before. */
gb_result *gb__qrun_result(gb_qrun *q);
/* Frees q (NULL is fine) and the result unless it was handed over. */
void gb__qrun_free(gb_qrun *q);

/* The processor's client, telemetry context and system instruction (borrowed). */
gb_gemini *gb__processor_client(gb_processor *p);
gb_tele *gb__processor_tele(gb_processor *p);
const char *gb__processor_system(const gb_processor *p);

#endif
