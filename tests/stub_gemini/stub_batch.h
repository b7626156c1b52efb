/*
 * stub_batch.h - the stand-in's Batch API (stub_batch.c), hooked into gbatch-stub-gemini's
 * request handler: batchGenerateContent, batches get, list, cancel and delete, and the
 * download of a batch's responses file; and the two things of stub_gemini.c it shares.
 */
#ifndef GBATCH_TESTS_STUB_BATCH_H
#define GBATCH_TESTS_STUB_BATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <microhttpd.h>

/* Shares the stand-in's log, lock and request counter. Call once the options are read. */
void stub_batch_init(FILE *log, pthread_mutex_t *lock, uint64_t *request_no);
/* --batch-time DUR or --batch-fault SPEC (name without the dashes). 0, or -1 with err. */
int stub_batch_option(const char *name, const char *arg, char *err, size_t errlen);
/* Whether url is the Batch API's. */
bool stub_batch_claims(const char *url);
/* Answers a Batch API request whose body (len bytes; too_big when it was cut) is all in. */
enum MHD_Result stub_batch_handle(struct MHD_Connection *c, const char *url, const char *method,
    const char *body, size_t len, bool too_big);

/* stub_gemini.c: the missing (401) or wrong (400, the recorded reply) key answer, a new
 * reference with *status set; NULL when the x-goog-api-key header is the stand-in's key.
 * *key_ok tells which. */
json_t *stub_gemini_key_check(struct MHD_Connection *c, int *status, bool *key_ok);
/* stub_gemini.c: what generateContent on model answers for the request req, exactly as POST
 * /v1beta/models/MODEL:generateContent would (answers, usageMetadata, explicit and implicit
 * caches, fileData checks), without the --fault plan; fault, when not NULL, is a --fault kind
 * that shapes a 200 answer (see stub_gemini_answer_fault). Returns the reply body (a new
 * reference) with *status its HTTP status. Takes the stand-in's lock: call it unlocked. */
json_t *stub_gemini_generate(const char *model, const json_t *req, const char *fault,
    int *status);
/* Whether name is a --fault kind that shapes a 200 answer: few, many, fenced, text,
 * maxtokens, blocked, safety. */
bool stub_gemini_answer_fault(const char *name);

#endif
