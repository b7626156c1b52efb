/*
 * progress.h - the live progress line of gbatch-processor --jobs as a pure function of what the
 * run knows (not a public API): a request rate measured over a sliding window, so the first
 * frames show no rate rather than an absurd one, and the state a person must see when nothing
 * moves (waiting for the rate limit, paused by a 429).
 */
#ifndef GBATCH_PROCESSOR_PROGRESS_H
#define GBATCH_PROCESSOR_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

/* Why the run is not sending, when it is not. */
enum gb_progress_state {
	GB_PROGRESS_RUNNING = 0,
	GB_PROGRESS_RATE_WAIT = 1, /* nothing in flight: the rate limit holds every request */
	GB_PROGRESS_429_PAUSE = 2, /* a 429's RetryInfo holds every request */
};

/* What the line shows. */
struct gb_progress {
	size_t done, todo;      /* jobs */
	size_t answers, errors;
	int64_t tokens;
	double rate;            /* requests per second; < 0 while it cannot be told yet */
	double eta;             /* seconds left; < 0 unknown */
	enum gb_progress_state state;
	double wait;            /* seconds the wait or the pause still lasts */
};

/* Writes the line for p into buf (NUL-terminated; len > width) in at most width columns
 * (plain ASCII, so one byte a column), never more: numbers shorten (12.3k) when the full line
 * does not fit, then the rate or the state moves right after the job count, then the fields
 * that do not fit whole are left out. Returns its length.
 *   jobs 12/300  answers 36  errors 0  tokens 48210  2.5 req/s  ETA 0:01:55
 *   jobs 12/300  answers 36  errors 0  tokens 48210  waiting for rate limit 12s
 *   jobs 12/300  answers 36  errors 0  tokens 48210  paused by 429 for 26s */
size_t gb__progress_render(char *buf, size_t len, const struct gb_progress *p, unsigned width);

/* A duration as the line writes it: 12s, 3m05s, 2h10m, >99h. */
void gb__progress_duration(char *buf, size_t len, double seconds);

/* What to say once at the start of a run of `jobs` jobs under a limit of rpm requests per
 * window_ns for model (NULL: unnamed), when the limit alone makes it last a minute or more
 * (every job takes one request at least; the free tier allows 15 a minute for most models):
 * 1 with the sentence in buf, else 0. */
int gb__progress_rate_note(char *buf, size_t len, size_t jobs, unsigned rpm, uint64_t window_ns,
    const char *model);

#define GB_PROGRESS_SAMPLES 128
#define GB_PROGRESS_WINDOW_NS (30ull * 1000000000ull)

/* The run's counts at the moments the line was drawn (at most GB_PROGRESS_SAMPLES, the
 * oldest dropped first). Zero-initialise. */
struct gb_progress_rate {
	uint64_t t[GB_PROGRESS_SAMPLES];
	size_t requests[GB_PROGRESS_SAMPLES], jobs[GB_PROGRESS_SAMPLES];
	size_t n, head;
};

/* Adds the counts at monotonic time now (ns). */
void gb__progress_rate_add(struct gb_progress_rate *r, uint64_t now, size_t requests,
    size_t jobs);
/* Requests and jobs per second over the samples of the last GB_PROGRESS_WINDOW_NS. Returns 0
 * and sets both when they can be told: the samples span 5 s, or at least 1 s and 20 requests;
 * returns -1 before (a rate over two jobs in a millisecond means nothing). */
int gb__progress_rate_get(const struct gb_progress_rate *r, double *requests_per_s,
    double *jobs_per_s);

#endif
