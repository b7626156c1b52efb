/*
 * jobs.h - gbatch-processor --jobs: many question sets from a JSON-lines file,
 * answered with up to N requests in flight on one libcurl multi handle, within the model's
 * rate limits, written as JSON lines as each job finishes, resumable after any interruption.
 */
#ifndef GBATCH_PROCESSOR_JOBS_H
#define GBATCH_PROCESSOR_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gbatch/processor.h>

#include "rate_limit.h"

/* Exit status of a run that stopped before every job was done: a signal, an API error that
 * every later call would meet (per-day quota, refused key, unknown model), a failed write. */
#define GB__EXIT_INCOMPLETE 3
/* Exit status of a run where every question has an answer but some answers are partial: their
 * finishReason is not STOP (SAFETY, RECITATION, MAX_TOKENS, ...) and --accept-partial was not
 * given. */
#define GB__EXIT_PARTIAL 4

struct gb_jobs_opts {
	const char *jobs_path;     /* the JSON-lines jobs file */
	const char *output;        /* results file, or NULL for stdout */
	const char *model;         /* the model asked (for the cache) */
	const char *content_root;  /* every content_file must resolve inside it; NULL: anywhere
	                              (but /proc, /sys and /dev, always refused) */
	unsigned shard_index;      /* run only the jobs on the lines L with */
	unsigned shard_count;      /* (L - 1) % shard_count == shard_index; 0 or 1: every line */
	unsigned parallel;         /* requests in flight at most, >= 1 */
	bool resume;               /* skip ids already in output (required) */
	gb_rate_limits limits;    /* per window */
	uint64_t window_ns;        /* the rate window: 60 s but in tests */
	uint64_t drain_ns;         /* after SIGINT/SIGTERM, how long in-flight work may finish */
	bool cache;                /* explicit context caching */
	bool keep_cache;           /* leave the caches for their TTL instead of deleting them */
	uint64_t cache_min_tokens; /* content of fewer tokens is sent inline */
	uint64_t cache_ttl_ns;
	bool upload;               /* every content through the Files API, not only the large */
	bool keep_files;           /* leave the uploaded files instead of deleting them */
	gb_process_opts process;   /* compare flag; response_schema: the default schema */
	int progress;              /* 1 live progress on stderr, 0 one summary line, -1 auto (a TTY) */
	bool batch_api;            /* every job's batched call through one Batch API batch */
	uint64_t batch_poll_ns;    /* the first wait between polls of the batch */
	const char *batch_name;    /* the batch's display name; NULL: made from the jobs file */
	bool batch_no_repair;      /* leave what the batch did not answer instead of asking */
	bool batch_cancel;         /* cancel the batch OUTPUT.batch.json names, and stop */
};

/* Runs every job of o->jobs_path (of its shard, when o->shard_count > 1) through processor p
 * (borrowed; its telemetry context gets the run's records). Returns the process exit status:
 * 0 every job answered in full, 1 some job, question or line failed, 2 the jobs or output file
 * cannot be used, GB__EXIT_INCOMPLETE when the run stopped before every job was done (see
 * above), GB__EXIT_PARTIAL when nothing failed but some answers are partial. With batch_api,
 * the batched calls go into one Batch API batch first (jobs_batch.c); a batch that ended
 * without succeeding leaves its jobs undone (GB__EXIT_INCOMPLETE). */
int gb__jobs_run(gb_processor *p, const struct gb_jobs_opts *o);

/* Parses --shard I/N: 0 <= I < N <= max. Returns 0, or -1. */
int gb__jobs_parse_shard(const char *text, unsigned max, unsigned *index, unsigned *count);

/* Parses one line of a jobs file (len bytes, not NUL-terminated) as --jobs does, and lets it
 * go: the fuzz target's entry. Returns 0, or -1 with why in err. */
int gb__jobs_parse_line(const char *text, size_t len, char *err, size_t errlen);

#endif
