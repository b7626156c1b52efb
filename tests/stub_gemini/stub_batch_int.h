/*
 * stub_batch_int.h - what the two halves of the stand-in's Batch API share: stub_batch.c (the
 * routes, a batch's state over time, its Operation, get, list, cancel, delete, download) and
 * stub_batch_create.c (batchGenerateContent: the body, the requests, their answers). Not an
 * interface of the stand-in: stub_batch.h is.
 */
#ifndef GBATCH_TESTS_STUB_BATCH_INT_H
#define GBATCH_TESTS_STUB_BATCH_INT_H

#include "stub_batch.h"
#include "clock.h"

#define MAX_BATCHES 100          /* kept; past it the oldest done one goes, or 429 */
#define MAX_REQUESTS 100000      /* per batch */
#define INLINE_MAX (20u << 20)   /* the body of a create */
#define MAX_DISPLAY 512
#define MAX_ID 32
#define ST_PENDING "BATCH_STATE_PENDING"
#define ST_RUNNING "BATCH_STATE_RUNNING"
#define ST_SUCCEEDED "BATCH_STATE_SUCCEEDED"

enum end_state { END_SUCCEEDED, END_FAILED, END_EXPIRED };

struct sbatch {
	char id[MAX_ID];
	char model[128];
	char *display;
	char *file_name;      /* inputConfig.fileName; NULL for inline requests */
	char *priority;       /* as given, when not 0 */
	uint64_t created_mono, created_real;
	uint64_t cancel_mono; /* 0: not cancelled */
	enum end_state end;
	size_t n;
	json_t *items;        /* inline: the InlinedResponse objects; file: the responses' lines */
	bool *failed;         /* which items are errors */
};

/* The Batch API's state and options; the batches are guarded by *lock. */
struct stub_batches {
	FILE *log;
	pthread_mutex_t *lock;
	uint64_t *request_no;
	uint64_t batch_ns;
	unsigned error_pct, partial_pct;
	char partial_kind[16];
	unsigned expire, fail, create_503, create_lost, get_503;
	struct sbatch *batches[MAX_BATCHES]; /* in creation order */
	size_t n_batches, created;
};

#define JSON_TYPE "application/json; charset=UTF-8"

extern struct stub_batches stub_batch__state;

/* One request, for its log line. */
struct breq {
	const char *method, *url, *op;
	int status;
	bool key_ok;
	uint64_t mono_ns, real_ns;
	json_t *extra; /* fields added to the log line; released once the reply is sent */
};

/* What a batch looks like at some moment. */
struct view {
	const char *state;
	bool done;
	uint64_t update_off, end_off; /* after creation, ns */
	size_t answered;              /* the first items answered so far */
};

/* POST /v1beta/models/MODEL:batchGenerateContent (stub_batch_create.c). */
enum MHD_Result stub_batch__create(struct MHD_Connection *c, struct breq *r, const char *url,
    const char *body, size_t len, bool too_big);
/* Logs r (taking the lock) and sends body, a new reference dumped and released here. */
enum MHD_Result stub_batch__finish(struct MHD_Connection *c, struct breq *r, json_t *body);
/* Called under sb->lock: logs r, lets the lock go and sends text (taken) with r->status. */
enum MHD_Result stub_batch__reply_locked(struct MHD_Connection *c, struct breq *r, char *text,
    const char *type);
/* Answers with the API's error shape {"error": {code, message, status, details}}. */
enum MHD_Result stub_batch__fail(struct MHD_Connection *c, struct breq *r, int code,
    const char *status, const char *message);
/* Sends text (freed here). */
enum MHD_Result stub_batch__respond(struct MHD_Connection *c, int status, char *text,
    const char *type);
/* Writes r's log line and counts the request. Call locked. */
void stub_batch__log(struct breq *r);
/* b at mono time now; at_create: as its create reply shows it (PENDING). */
struct view stub_batch__view(const struct sbatch *b, uint64_t now, bool at_create);
/* b's Operation as v sees it, a new reference. Call locked: it shares b's items. */
json_t *stub_batch__operation(const struct sbatch *b, const struct view *v);
void stub_batch__free(struct sbatch *b);

#endif
