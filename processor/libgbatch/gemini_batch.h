/*
 * gemini_batch.h - the Batch API of the Gemini client (internal, not a public API): many
 * generateContent requests submitted as one asynchronous batch (inline, or as a JSON-lines
 * file of the Files API), polled until it ends, its responses read from the batch or from
 * its responses file, or cancelled. Every field the server sends is checked.
 */
#ifndef GBATCH_LIBGBATCH_GEMINI_BATCH_H
#define GBATCH_LIBGBATCH_GEMINI_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "gemini_client.h"

/* What the API takes inline: the whole request at most 20 MB; more goes as a file. */
#define GB__BATCH_INLINE_MAX (20u * 1000u * 1000u)

/* A batch's state, from BatchState (BATCH_STATE_*; the SDKs' JOB_STATE_* is taken too). */
enum gb__batch_state {
	GB__BATCH_UNKNOWN = 0,
	GB__BATCH_PENDING,
	GB__BATCH_RUNNING,
	GB__BATCH_SUCCEEDED,
	GB__BATCH_FAILED,
	GB__BATCH_CANCELLED,
	GB__BATCH_EXPIRED,
};

/* A batch as the API describes it (an Operation around a GenerateContentBatch, or the
 * batch itself); every string bounded and checked. */
typedef struct gb_gemini_batch {
	char name[128];           /* "batches/abc123" */
	char display_name[128];
	char state_text[40];      /* as sent: "BATCH_STATE_RUNNING" ("" when absent) */
	enum gb__batch_state state;
	int done;                 /* the Operation says it is over */
	int64_t requests, succeeded, failed, pending; /* batchStats (a count left out is 0);
	                                                 -1 when there is no batchStats */
	time_t create_time;       /* 0 when not given */
	char responses_file[128]; /* "files/..." of a file-input batch that succeeded, or "" */
	json_t *inlined;          /* the inlinedResponses array (a reference), or NULL */
	char error[512];          /* the Operation's or batch's error.message, or "" */
} gb_gemini_batch;

/* The state named by text, GB__BATCH_UNKNOWN for anything else. */
enum gb__batch_state gb__batch_state_of(const char *text);
/* Whether the state is final: SUCCEEDED, FAILED, CANCELLED or EXPIRED. */
int gb__batch_state_final(enum gb__batch_state s);
/* "succeeded", "running", ...: the state as a tag value. */
const char *gb__batch_state_tag(enum gb__batch_state s);
/* Whether name is a batch's name: "batches/" and 1 to 100 of [A-Za-z0-9_-]. */
int gb__batch_name_ok(const char *name);

/* Reads an Operation (or a bare GenerateContentBatch) into b, which it resets. Returns 0, or
 * -1 with why in err when a field is missing, of the wrong type or too long (the name is
 * required). */
int gb__batch_parse(const json_t *v, gb_gemini_batch *b, char *err, size_t errlen);
/* Drops what b holds. */
void gb__batch_fini(gb_gemini_batch *b);

/* Submits body ({"batch": {...}}) to models/MODEL:batchGenerateContent, one attempt at a time:
 * after an attempt that may have reached the API (a timeout, a lost connection, a 5xx) it
 * looks for a batch of the same display name created since not_before before trying again,
 * so a batch is never created twice. Fills b, res and returns res->status. */
int gb__batch_create(gb_gemini *c, const char *model, const json_t *body, time_t not_before,
    gb_gemini_batch *b, gb_gemini_result *res);
/* GET v1beta/NAME, with retries. Fills b, res and returns res->status. */
int gb__batch_get(gb_gemini *c, const char *name, gb_gemini_batch *b, gb_gemini_result *res);
/* POST v1beta/NAME:cancel, with retries. Returns res->status. */
int gb__batch_cancel(gb_gemini *c, const char *name, gb_gemini_result *res);
/* Looks through the list of batches (GET v1beta/batches, at most 20 pages) for the newest one
 * named display_name created at or after not_before: 1 with b filled, 0 when there is none,
 * -1 when the list could not be read (res says why). */
int gb__batch_find(gb_gemini *c, const char *display_name, time_t not_before,
    gb_gemini_batch *b, gb_gemini_result *res);
/* Downloads file ("files/...": a responses file) into res->text (at most 64 MiB), with
 * retries. Returns res->status. */
int gb__batch_download(gb_gemini *c, const char *file, gb_gemini_result *res);

/* One response of a batch, as the client's result of a generateContent call: a
 * GenerateContentResponse parsed as gb__gemini_parse_response parses one, or an error (a
 * google.rpc.Status) as an API error that is not fatal. Fills res (reset) and returns its
 * status. */
int gb__batch_response_result(const json_t *response, const json_t *error, gb_gemini *c,
    gb_gemini_result *res);

#endif
