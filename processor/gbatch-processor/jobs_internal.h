/*
 * jobs_internal.h - what the files of the jobs runner share: the jobs, their slots, the
 * context caches and the runner itself (jobs_run.c), the jobs file and the output
 * (jobs_file.c), the caches (jobs_cache.c). Not an interface of anything else.
 */
#ifndef GBATCH_PROCESSOR_JOBS_INTERNAL_H
#define GBATCH_PROCESSOR_JOBS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "batch_run.h"
#include "content_upload.h"
#include "gemini_client.h"
#include "jobs.h"
#include "json_writer.h"
#include "progress.h"
#include "rate_limit.h"

#define MAX_JOBS_FILE (1u << 30)
#define MAX_LINE (64u << 20)
#define MAX_ID 256

/* One line of the jobs file that parsed. */
struct job {
	size_t line;
	json_t *obj;     /* the line (owns the strings below) */
	json_t *id;      /* borrowed from obj: a string or an integer */
	char *key;       /* id as compact JSON: the identity resume compares */
	const char *content;
	size_t content_len;
	const char *content_file;
	const char **questions;
	size_t nq;
	char *schema; /* the job's schema as JSON text, or NULL */
	char *gen;    /* its generation_config as JSON text (checked), or NULL */
	char *safety; /* its safety_settings as JSON text (checked), or NULL */
};

/* A cache of one content, shared by every job asking about it. */
struct cache {
	uint64_t hash;
	char *name;       /* "cachedContents/...", NULL when the content is not cached */
	int64_t tokens;   /* what countTokens said */
	uint64_t expires; /* monotonic time its TTL ends */
	int retired;      /* replaced by a fresh one near its expiry; still deleted at the end */
};

/* A job being worked on. */
struct slot {
	struct job *job;
	char *data;          /* content read from content_file */
	gb_content content;
	gb_qrun *q;
	gb_gemini_xfer *x;  /* the request given out, NULL between requests */
	gb_gemini_result res;
	const char *kind;
	uint64_t est;        /* its estimated input tokens */
	uint64_t ready_at;   /* may be sent from then (a retry's backoff) */
	uint64_t queued_at;  /* since when it waits to be sent */
	uint64_t ticket;
	int in_flight;
	int cached_hit;
	char *cache_name;
	int64_t cache_tokens;
	uint64_t started;
	int from_batch;          /* its batched call was answered by the Batch API batch */
	int content_deferred;    /* its content is read only if something must be asked again */
	int64_t billable_batch;  /* billable tokens of that answer (billed at the batch rate) */
	int64_t billable_asked;  /* of the calls sent interactively */
};

struct totals {
	size_t jobs, done, answered_full, failed, skipped, invalid, answers, errors, requests;
	size_t unwritten; /* jobs whose result line could not be written */
	size_t only_partial; /* jobs answered in full but for partial answers (finishReason) */
	size_t batch_left;   /* jobs a batch that did not succeed left undone */
	int64_t prompt, output, cached, thoughts, total;
	unsigned caches_created, cache_hits, rate_waits, http_429;
};

struct runner {
	const struct gb_jobs_opts *o;
	gb_processor *p;
	gb_gemini *client;
	gb_tele *tele;
	CURLM *multi;
	gb_rate *rate;
	struct job *jobs;
	size_t n_jobs, next_job;
	struct slot *slots;
	struct cache *caches;
	size_t n_caches;
	struct gb_uploads uploads; /* the Files API's files of the run */
	json_t *done_ids; /* keys already in the output (a set) */
	int out_fd;
	int in_flight;
	uint64_t t0, last_progress;
	int progress;
	uint64_t pause_until;     /* a 429 holds every request until then (monotonic) */
	uint64_t rate_wait_until; /* this round, the earliest a request held by the limiter may go */
	struct gb_progress_rate rate_samples;
	int stop_now; /* a fatal API error or a failed write: the run cannot go on */
	struct totals tot;
	struct batch_mode *bm; /* --batch-api: the batch and its answers, else NULL */
	int submitting;        /* jobs are being put into the batch, not run */
	int keep_caches;       /* a batch that is not over may still use the caches */
};

/* ---- jobs_run.c, for jobs_batch.c ---- */

/* Puts job j into slot s (content, cache, state machine); a job that cannot start is written
 * as failed and the slot left empty (s->job NULL). */
void gb__jobs_slot_start(struct runner *rn, struct slot *s, struct job *j);
/* Frees what slot s holds and empties it. */
void gb__jobs_slot_clear(struct slot *s);
/* Writes the job of slot s as failed with error, and empties the slot. */
void gb__jobs_slot_fail(struct runner *rn, struct slot *s, const char *error);
/* Whether the job's id is already in the output (done before, or in this run). */
int gb__jobs_done(const struct runner *rn, const struct job *j);
/* Adds a call's usage to the run's totals. */
void gb__jobs_count_tokens(struct runner *rn, const gb_gemini_usage *u);
/* Whether a SIGINT or SIGTERM came since the run started. */
int gb__jobs_signalled(void);

/* ---- jobs_batch.c: --batch-api ---- */

/* Puts every job still to do into one batch (or, with --resume, finds the batch
 * OUTPUT.batch.json names), polls it until it ends, and reads its answers into rn->bm. 0: the
 * loop should now run the jobs the batch answered; GB__EXIT_INCOMPLETE: stopped (a signal, a
 * batch that failed, expired or was cancelled; the jobs are left to --resume); 2: cannot
 * start (logged). */
int gb__jobs_batch_begin(struct runner *rn);
/* Whether the loop runs job j: it is one the batch answered (or should have). */
int gb__jobs_batch_wanted(const struct runner *rn, const struct job *j);
/* Whether job j's batched call has its answer in the batch (so its content is only read if
 * some answer must be asked again). */
int gb__jobs_batch_has(const struct runner *rn, const struct job *j);
/* Takes the batch's answer to the slot's batched call into its state machine, then, for what
 * it left unanswered, reads the content to ask again (or, with --batch-no-repair, gives those
 * questions up). */
void gb__jobs_batch_answer(struct runner *rn, struct slot *s);
/* Writes ,"mode":"batch","batch_api":{...} (name, answers from the batch and asked
 * interactively, billable tokens at either rate) into the job's result line being written. */
void gb__jobs_batch_line(const struct runner *rn, const struct slot *s, const gb_result *r,
    gb_jw *w);
/* Adds a job whose line was written to the batch's totals (the summary at the end). */
void gb__jobs_batch_written(struct runner *rn, const struct slot *s, const gb_result *r);
/* After the loop: the summary, and once every job of the batch is written, the state file
 * removed and the batch's input file, content files and caches of an earlier run deleted. */
void gb__jobs_batch_end(struct runner *rn, size_t left);
/* --batch-cancel: cancels the batch OUTPUT.batch.json names. Returns the exit status. */
int gb__jobs_batch_cancel(struct runner *rn);
/* Frees rn->bm. */
void gb__jobs_batch_free(struct runner *rn);

/* ---- jobs_batch_input.c ---- */

struct gb_batch_state;
/* Builds the inputConfig of a batch of every job still to do: their keys into st->jobs, the
 * content files and caches their requests name into st->files and st->caches, and for a file
 * input its name into st->input_file (uploaded and ACTIVE). A job that cannot start, or
 * whose request cannot be built, is written as failed. Returns 0 with *input (new) and
 * *bytes (the requests' size) set, 1 when no job is left to submit, -1 with err set. */
int gb__jobs_batch_input(struct runner *rn, struct gb_batch_state *st, json_t **input,
    uint64_t *bytes, char *err, size_t errlen);

/* ---- jobs_file.c ---- */

/* Frees what j holds and zeroes it. */
void gb__job_fini(struct job *j);
/* Reads the jobs file and keeps the jobs of this shard in rn->jobs; its malformed lines are
 * reported with their number and skipped. Every line is parsed, whatever its shard, so that
 * an id repeated on a later line is refused there as in a run of the whole file. Returns 0,
 * or -1 when the file cannot be read. */
int gb__jobs_load(struct runner *rn);
/* Opens the output (stdout without --output); with --resume, collects the ids already done
 * and repairs a last line cut short. Returns 0, or -1 when it cannot be used. */
int gb__jobs_output_open(struct runner *rn);
/* Appends line s and a newline with a single write where the system allows. Returns 0, or -1
 * when the write failed (logged; a regular file is cut back to where the line started). */
int gb__jobs_write_line(struct runner *rn, const char *s);
/* Flushes --output to disk (fsync) and closes it; stdout is left open. Returns 0, or -1 when
 * what was written may not be on disk (logged). */
int gb__jobs_output_close(struct runner *rn);

/* ---- jobs_upload.c ---- */

/* Sets the slot's content from its job: read (s->data) to send inline, or uploaded to the
 * Files API (above the inline limit, or with --upload) and named by its URI. Returns 0, or -1
 * with why in err (the content file or the upload, named). */
int gb__jobs_content(struct runner *rn, struct slot *s, char *err, size_t errlen);

/* ---- jobs_cache.c ---- */

/* The cache for the slot's content: found, or counted and created now (blocking: it happens
 * once per distinct content). NULL when the content is sent inline. */
struct cache *gb__jobs_cache_for(struct runner *rn, struct slot *s);
/* Deletes the run's caches (unless --keep-cache) and frees them. */
void gb__jobs_caches_delete(struct runner *rn);

#endif
