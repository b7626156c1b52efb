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
};

struct totals {
	size_t jobs, done, answered_full, failed, skipped, invalid, answers, errors, requests;
	size_t unwritten; /* jobs whose result line could not be written */
	size_t only_partial; /* jobs answered in full but for partial answers (finishReason) */
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
};

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
