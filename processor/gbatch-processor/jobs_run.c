/*
 * jobs_run.c - gbatch-processor --jobs: one thread, one libcurl multi handle, up to N jobs in
 * slots, each a gb_qrun state machine with at most one request in flight. A shared rate
 * limiter gates every HTTP attempt; each job's result is written as soon as it is done.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "clock.h"
#include "content_file.h"
#include "gb_limits.h"
#include "gen_config.h"
#include "jobs_internal.h"
#include "json_writer.h"
#include "log.h"
#include "telemetry_internal.h"

#define TICK_NS (100 * GB_NS_PER_MS)
#define PROGRESS_NS (250 * GB_NS_PER_MS)

static volatile sig_atomic_t stop_signals;

static void
on_stop(int sig)
{
	(void)sig;
	stop_signals++;
}

/* ---- one job ---- */

void
gb__jobs_slot_clear(struct slot *s)
{
	gb__gemini_xfer_free(s->x);
	gb__gemini_result_fini(&s->res);
	gb__qrun_free(s->q);
	free(s->data);
	free(s->cache_name);
	memset(s, 0, sizeof(*s));
}

/* The run's totals for the summary line (the token counters are the driver's). */
void
gb__jobs_count_tokens(struct runner *rn, const gb_gemini_usage *u)
{
	rn->tot.prompt += u->prompt;
	rn->tot.output += u->candidates;
	rn->tot.cached += u->cached;
	rn->tot.thoughts += u->thoughts;
	rn->tot.total += u->total;
}

/* Whether job ids, lines and sizes go into telemetry metadata (--telemetry-ids): by default
 * only bounded values do, so a metrics backend gets a handful of tag sets, not one a job. */
static bool
telemetry_ids(const struct runner *rn)
{
	return (rn->o->process.flags & GB_PROCESS_NO_TELEMETRY_IDS) == 0;
}

/* The outcome of a job: answered, partial (some answers failed, or are partial: their
 * finishReason is not STOP) or failed. */
static const char *
outcome_of(const gb_result *r)
{
	size_t failed, nq;

	if (r == NULL)
		return "failed";
	failed = gb_result_failed_count(r);
	nq = gb_result_question_count(r);
	if (failed == 0)
		return gb_result_partial_count(r) == 0 ? "answered" : "partial";
	return failed < nq ? "partial" : "failed";
}

/* The job's line: {"id", "line", then the result's keys, "outcome", "cache"}, or an error. */
static char *
job_line(const struct runner *rn, const struct slot *s, const gb_result *r, const char *error,
    const char *outcome)
{
	char *text = r != NULL ? gb_result_to_json(r, 0) : NULL, *outs;
	size_t tl = text != NULL ? strlen(text) : 0;
	gb_jw w;

	/* The result's compact text goes in as it is, between the line's own keys. */
	gb__jw_init(&w, tl + 256);
	gb__jw_lit(&w, "{\"id\":");
	gb__jw_value(&w, s->job->id, 0);
	gb__jw_lit(&w, ",\"line\":");
	gb__jw_int(&w, (long long)s->job->line);
	if (tl > 2) {
		gb__jw_raw(&w, ",", 1);
		gb__jw_raw(&w, text + 1, tl - 2);
	}
	if (r == NULL) {
		gb__jw_lit(&w, ",\"error\":");
		gb__jw_str(&w, error != NULL ? error : "failed");
	}
	gb__jw_lit(&w, ",\"outcome\":");
	gb__jw_str(&w, outcome);
	if (s->cache_name != NULL) {
		gb__jw_lit(&w, ",\"cache\":{\"name\":");
		gb__jw_str(&w, s->cache_name);
		gb__jw_lit(&w, ",\"tokens\":");
		gb__jw_int(&w, (long long)s->cache_tokens);
		gb__jw_lit(&w, ",\"reused\":");
		gb__jw_bool(&w, s->cached_hit);
		gb__jw_raw(&w, "}", 1);
	}
	if (rn->bm != NULL)
		gb__jobs_batch_line(rn, s, r, &w);
	gb__jw_raw(&w, "}", 1);
	free(text);
	if ((outs = gb__jw_finish(&w, NULL)) == NULL)
		gb__fatalx("out of memory writing a result");
	return outs;
}

/* Writes the job's line and counts the job done. A line that cannot be written stops the run
 * and leaves the job undone (counted in tot.unwritten), for --resume to ask again. */
static void
job_write(struct runner *rn, struct slot *s, gb_result *r, const char *error)
{
	const char *outcome = outcome_of(r);
	char *outs = job_line(rn, s, r, error, outcome), qbuf[24], lbuf[24];
	int written = gb__jobs_write_line(rn, outs) == 0;

	free(outs);
	if (!written) {
		gb__log_warnx("job %s (line %zu) is not written; run again with --resume",
		    s->job->key, s->job->line);
		rn->stop_now = 1;
		rn->tot.unwritten++;
		return;
	}
	if (r != NULL) {
		size_t failed = gb_result_failed_count(r);
		rn->tot.answers += gb_result_question_count(r) - failed;
		rn->tot.errors += failed;
		rn->tot.only_partial += failed == 0 && gb_result_partial_count(r) > 0;
	} else {
		rn->tot.errors += s->job->nq;
	}
	rn->tot.done++;
	if (rn->bm != NULL)
		gb__jobs_batch_written(rn, s, r);
	json_object_set_new(rn->done_ids, s->job->key, json_true());
	if (strcmp(outcome, "answered") == 0)
		rn->tot.answered_full++;
	else
		rn->tot.failed++;
	gb_tele_count(rn->tele, strcmp(outcome, "answered") == 0 ? "jobs_completed" : "jobs_failed",
	    1, NULL, 0);
	snprintf(qbuf, sizeof(qbuf), "%zu", s->job->nq);
	snprintf(lbuf, sizeof(lbuf), "%zu", s->job->line);
	gb_kv meta[4] = { { "job_id", s->job->key }, { "line", lbuf }, { "question_count", qbuf },
		{ "outcome", outcome } };
	bool ids = telemetry_ids(rn);
	gb__tele_timing(rn->tele, "job.processing",
	    (double)(gb__clock_mono_ns() - s->started) / 1e9, ids ? meta : meta + 3, ids ? 4 : 1);
}

/* The generation settings of job j over the command line's, as new texts in po (the caller
 * frees them once gb__qrun_new copied them). Returns 0, or -1 with err set. */
static int
job_settings(gb_process_opts *po, const struct job *j, char *err, size_t errlen)
{
	int oom_gen, oom_safety;

	po->generation_config = gb__gen_merge(po->generation_config, j->gen, 0, &oom_gen);
	po->safety_settings = gb__gen_merge(po->safety_settings, j->safety, 1, &oom_safety);
	if (oom_gen || oom_safety) {
		free((char *)(uintptr_t)po->generation_config);
		free((char *)(uintptr_t)po->safety_settings);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Puts job j into slot s: reads its content, sets up its cache and its state machine. A job
 * that cannot start is written as failed and the slot left empty. A job whose batched call
 * the batch answered needs its content only if something must be asked again. */
void
gb__jobs_slot_start(struct runner *rn, struct slot *s, struct job *j)
{
	gb_process_opts po = rn->o->process;
	struct cache *c = NULL;
	char err[512];
	int rc;

	memset(s, 0, sizeof(*s));
	s->job = j;
	s->started = gb__clock_mono_ns();
	gb_kv meta = { "job_id", j->key };
	if (!rn->submitting)
		gb__tele_timing(rn->tele, "job.queue_wait", (double)(s->started - rn->t0) / 1e9,
		    &meta, telemetry_ids(rn) ? 1 : 0);
	if (rn->bm != NULL && !rn->submitting && gb__jobs_batch_has(rn, j)) {
		s->content_deferred = 1;
		s->content.data = "";
	} else if (gb__jobs_content(rn, s, err, sizeof(err)) != 0) {
		goto fail;
	}
	if (rn->o->cache && !s->content_deferred && (c = gb__jobs_cache_for(rn, s)) != NULL) {
		if ((s->cache_name = strdup(c->name)) == NULL) {
			snprintf(err, sizeof(err), "out of memory");
			goto fail;
		}
		s->cache_tokens = c->tokens;
	}
	if (j->schema != NULL)
		po.response_schema = j->schema;
	if (job_settings(&po, j, err, sizeof(err)) != 0)
		goto fail;
	rc = gb__qrun_new(rn->p, &s->content, 1, j->questions, j->nq, &po, s->cache_name, 0, &s->q,
	    err, sizeof(err));
	free((char *)(uintptr_t)po.generation_config);
	free((char *)(uintptr_t)po.safety_settings);
	if (rc != 0)
		goto fail;
	return;
fail:
	gb__log_warnx("job %s (line %zu): %s", j->key, j->line, err);
	gb__jobs_slot_fail(rn, s, err);
}

void
gb__jobs_slot_fail(struct runner *rn, struct slot *s, const char *error)
{
	job_write(rn, s, NULL, error);
	gb__jobs_slot_clear(s);
}

/* Input tokens of rq as the stand-in and the API roughly count them: four characters a token,
 * an inline blob 258, plus what the cache holds. */
static uint64_t
estimate(const struct slot *s, const gb_gemini_request *rq)
{
	uint64_t t = (uint64_t)s->cache_tokens;

	for (size_t i = 0; i < rq->n_parts; i++)
		t += rq->parts[i].mime_type != NULL ? 258 : (rq->parts[i].len + 3) / 4;
	if (rq->system != NULL)
		t += (strlen(rq->system) + 3) / 4;
	return t;
}

/* Gets the slot's next request ready; finishes the job when there is none. */
static void
job_advance(struct runner *rn, struct slot *s, uint64_t now)
{
	gb_gemini_request rq;

	while (s->x == NULL) {
		if (!gb__qrun_next(s->q, &rq, &s->kind)) {
			gb_result *r = gb__qrun_result(s->q);
			if (gb_result_fatal_error(r) != NULL) {
				/* Every later call would fail the same way (per-day quota, refused key,
				 * unknown model): stop, and leave the job to a later --resume. */
				gb__log_warnx("stopped: %s (job %s is not written)", gb_result_fatal_error(r),
				    s->job->key);
				rn->stop_now = 1;
				gb_result_free(r);
				return;
			}
			job_write(rn, s, r, NULL);
			gb_result_free(r);
			gb__jobs_slot_clear(s);
			return;
		}
		if (rn->bm != NULL && strcmp(s->kind, "batch") == 0) {
			gb__jobs_batch_answer(rn, s);
			continue;
		}
		if ((s->x = gb__gemini_xfer_new(rn->client, &rq, &s->res)) == NULL) {
			gb__qrun_take(s->q, &s->res);
			continue;
		}
		s->est = estimate(s, &rq);
		s->ready_at = s->queued_at = now;
	}
}

/* Sends the slot's request when its backoff is over and the rate limit allows; else lowers
 * *wake to when it is worth trying again. */
static void
job_send(struct runner *rn, struct slot *s, uint64_t now, uint64_t *wake)
{
	uint64_t retry_at;
	CURL *h;

	if (s->x == NULL)
		return;
	if (now < s->ready_at) {
		if (s->ready_at < *wake)
			*wake = s->ready_at;
		return;
	}
	if (!gb__rate_acquire(rn->rate, now, s->est, &s->ticket, &retry_at)) {
		if (retry_at < *wake)
			*wake = retry_at;
		if (rn->rate_wait_until == 0 || retry_at < rn->rate_wait_until)
			rn->rate_wait_until = retry_at;
		return;
	}
	if (now - s->queued_at > GB_NS_PER_MS) {
		gb_kv meta = { "kind", s->kind };
		rn->tot.rate_waits++;
		gb_tele_count(rn->tele, "rate_limit_waits", 1, NULL, 0);
		gb__tele_timing(rn->tele, "rate_limit.wait", (double)(now - s->queued_at) / 1e9, &meta, 1);
	}
	h = gb__gemini_xfer_easy(s->x);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)s);
	if (curl_multi_add_handle(rn->multi, h) != CURLM_OK)
		gb__fatalx("libcurl refused a transfer");
	s->in_flight = 1;
	rn->in_flight++;
	rn->tot.requests++;
	gb_tele_gauge(rn->tele, "requests_in_flight", rn->in_flight, NULL, 0);
}

/* A transfer libcurl finished: retried later, or handed to the job. */
static void
job_received(struct runner *rn, struct slot *s, CURLcode rc, uint64_t now)
{
	uint64_t delay = 0;
	int again;

	curl_multi_remove_handle(rn->multi, gb__gemini_xfer_handle(s->x));
	s->in_flight = 0;
	rn->in_flight--;
	gb_tele_gauge(rn->tele, "requests_in_flight", rn->in_flight, NULL, 0);
	again = gb__gemini_xfer_done(s->x, rc, &s->res, &delay);
	gb__rate_reconcile(rn->rate, s->ticket, s->res.status == GB__GEMINI_OK ?
	    (uint64_t)s->res.usage.prompt : s->res.http_status == 429 ? 0 : s->est);
	if (s->res.http_status == 429) {
		/* The quota is shared: everyone waits, not just this request. */
		uint64_t until = now + (delay > 0 ? delay : GB_NS_PER_SEC);
		rn->tot.http_429++;
		gb__rate_pause(rn->rate, until);
		if (until > rn->pause_until)
			rn->pause_until = until;
	}
	if (again) {
		s->res.backoff_seconds += (double)delay / 1e9;
		s->ready_at = now + delay;
		s->queued_at = s->ready_at;
		return;
	}
	if (s->res.status == GB__GEMINI_OK) {
		gb__jobs_count_tokens(rn, &s->res.usage);
		s->billable_asked += s->res.usage.prompt - s->res.usage.cached +
		    s->res.usage.candidates + s->res.usage.thoughts;
	}
	gb__qrun_take(s->q, &s->res);
	gb__gemini_xfer_free(s->x);
	s->x = NULL;
	gb__gemini_result_fini(&s->res);
}

/* ---- progress ---- */

/* The columns the line may take: 79 of an 80-column terminal or wider (the last column can
 * wrap on some terminals), fewer on a narrower one. */
static unsigned
line_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && ws.ws_col < 80)
		return ws.ws_col - 1u;
	return 79;
}

/* The line's state at now: the counts, the windowed rate and ETA, or what holds the run. */
static struct gb_progress
progress_state(struct runner *rn, uint64_t now, int final)
{
	size_t todo = rn->tot.jobs - rn->tot.skipped;
	struct gb_progress p = { .done = rn->tot.done, .todo = todo, .answers = rn->tot.answers,
		.errors = rn->tot.errors, .tokens = rn->tot.total, .rate = -1, .eta = -1 };
	double rps, jps;

	gb__progress_rate_add(&rn->rate_samples, now, rn->tot.requests, rn->tot.done);
	if (gb__progress_rate_get(&rn->rate_samples, &rps, &jps) == 0) {
		p.rate = rps;
		p.eta = jps > 0 ? (double)(todo - rn->tot.done) / jps : -1;
	}
	if (final) {
		if (rn->tot.done == todo)
			p.eta = 0;
	} else if (now < rn->pause_until) {
		p.state = GB_PROGRESS_429_PAUSE;
		p.wait = (double)(rn->pause_until - now) / 1e9;
	} else if (rn->in_flight == 0 && rn->rate_wait_until > now) {
		p.state = GB_PROGRESS_RATE_WAIT;
		p.wait = (double)(rn->rate_wait_until - now) / 1e9;
	}
	return p;
}

static void
progress(struct runner *rn, uint64_t now, int final)
{
	double el = (double)(now - rn->t0) / 1e9;
	size_t todo = rn->tot.jobs - rn->tot.skipped;
	char shard[48] = "";

	if (rn->progress && (final || now - rn->last_progress >= PROGRESS_NS)) {
		struct gb_progress p = progress_state(rn, now, final);
		char line[128];
		gb__progress_render(line, sizeof(line), &p, line_width());
		fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
		rn->last_progress = now;
	}
	if (final && rn->o->shard_count > 1)
		snprintf(shard, sizeof(shard), "shard %u/%u: ", rn->o->shard_index, rn->o->shard_count);
	if (final)
		fprintf(stderr, "gbatch-processor: %s%zu/%zu jobs done (%zu answered in full, %zu with "
		    "errors, %zu skipped as already done, %zu invalid lines), %zu answers, %zu errors, "
		    "%zu requests, %" PRId64 " tokens (%" PRId64 " cached), %u caches, %u cache hits, "
		    "%u rate waits, %u 429s, %.2fs, %.1f req/s\n", shard, rn->tot.done, todo,
		    rn->tot.answered_full, rn->tot.failed, rn->tot.skipped, rn->tot.invalid,
		    rn->tot.answers, rn->tot.errors, rn->tot.requests, rn->tot.total, rn->tot.cached,
		    rn->tot.caches_created, rn->tot.cache_hits, rn->tot.rate_waits, rn->tot.http_429, el,
		    el > 0 ? (double)rn->tot.requests / el : 0.0);
}

/* ---- the run ---- */

/* Says once, at the start, when the rate limit alone makes the run long. */
static void
say_rate_limit(const struct runner *rn)
{
	char note[256];

	if (gb__progress_rate_note(note, sizeof(note), rn->tot.jobs - rn->tot.skipped,
	    rn->o->limits.rpm, rn->o->window_ns, rn->o->model))
		gb__log_info("%s", note);
}

int
gb__jobs_done(const struct runner *rn, const struct job *j)
{
	return json_object_get(rn->done_ids, j->key) != NULL;
}

int
gb__jobs_signalled(void)
{
	return stop_signals != 0;
}

/* The next job to run: not done yet, and with --batch-api one the batch answered (the others
 * are counted left). */
static struct job *
next_job(struct runner *rn)
{
	while (rn->next_job < rn->n_jobs) {
		struct job *j = &rn->jobs[rn->next_job++];
		if (gb__jobs_done(rn, j))
			continue;
		if (rn->bm == NULL || gb__jobs_batch_wanted(rn, j))
			return j;
		rn->tot.batch_left++;
	}
	return NULL;
}

static void
signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* The loop: fill the slots, send what may go, read what came back, until every job is done
 * or a signal's drain deadline passes. Returns the number of jobs left undone. */
static size_t
loop(struct runner *rn)
{
	uint64_t drain_deadline = 0;
	int draining = 0, handled_signals = 0;
	unsigned par = rn->o->parallel;

	for (;;) {
		uint64_t now = gb__clock_mono_ns(), wake = now + TICK_NS;
		size_t busy = 0, received = 0;
		int running, nmsg, timeout_ms;
		CURLMsg *m;

		rn->rate_wait_until = 0;

		if (stop_signals != handled_signals) {
			if (!draining)
				gb__log_warnx("stopping: no new jobs; waiting up to %.1fs for the %d request(s) "
				    "in flight (signal again to stop at once)", (double)rn->o->drain_ns / 1e9,
				    rn->in_flight);
			drain_deadline = draining ? now : now + rn->o->drain_ns;
			draining = 1;
			handled_signals = stop_signals;
		}
		if ((draining && now >= drain_deadline) || rn->stop_now)
			break;
		for (unsigned i = 0; i < par; i++) {
			struct slot *s = &rn->slots[i];
			struct job *j;
			while (s->job == NULL && !draining && !rn->stop_now && (j = next_job(rn)) != NULL) {
				gb__jobs_slot_start(rn, s, j);
				if (s->job != NULL)
					job_advance(rn, s, now);
			}
			if (s->job == NULL)
				continue;
			busy++;
			if (!s->in_flight)
				job_send(rn, s, now, &wake);
		}
		if (busy == 0 && (draining || rn->next_job >= rn->n_jobs))
			break;
		curl_multi_perform(rn->multi, &running);
		now = gb__clock_mono_ns();
		while ((m = curl_multi_info_read(rn->multi, &nmsg)) != NULL) {
			struct slot *s;
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			job_received(rn, s, m->data.result, now);
			if (s->x == NULL)
				job_advance(rn, s, now);
			received++;
		}
		progress(rn, now, 0);
		/* A finished request may have freed a slot or readied the next request: no wait. */
		if (received > 0)
			continue;
		now = gb__clock_mono_ns();
		timeout_ms = wake > now ? (int)((wake - now + GB_NS_PER_MS - 1) / GB_NS_PER_MS) : 0;
		if (rn->in_flight > 0 || timeout_ms > 0)
			curl_multi_poll(rn->multi, NULL, 0, timeout_ms, NULL);
	}
	/* Whatever is still in a slot (a drain cut short) is not written: resume redoes it. */
	size_t left = 0;
	for (unsigned i = 0; i < par; i++) {
		struct slot *s = &rn->slots[i];
		if (s->job == NULL)
			continue;
		if (s->in_flight)
			curl_multi_remove_handle(rn->multi, gb__gemini_xfer_handle(s->x));
		gb__jobs_slot_clear(s);
		left++;
	}
	while (next_job(rn) != NULL)
		left++;
	return left;
}

int
gb__jobs_run(gb_processor *p, const struct gb_jobs_opts *o)
{
	struct runner rn = { .o = o, .p = p, .client = gb__processor_client(p),
		.tele = gb__processor_tele(p), .out_fd = -1 };
	size_t left;
	int status, synced;

	rn.t0 = gb__clock_mono_ns();
	rn.progress = o->progress >= 0 ? o->progress : isatty(STDERR_FILENO);
	if (o->batch_cancel) {
		status = gb__jobs_batch_cancel(&rn);
		goto out;
	}
	if ((rn.done_ids = json_object()) == NULL)
		gb__fatalx("out of memory");
	if (gb__jobs_load(&rn) != 0 || gb__jobs_output_open(&rn) != 0) {
		status = 2;
		goto out;
	}
	rn.tot.jobs = rn.n_jobs;
	for (size_t i = 0; i < rn.n_jobs; i++)
		rn.tot.skipped += json_object_get(rn.done_ids, rn.jobs[i].key) != NULL;
	say_rate_limit(&rn);
	gb__progress_rate_add(&rn.rate_samples, rn.t0, 0, 0);
	if (rn.tot.skipped > 0) {
		gb__log_info("resuming: %zu of %zu jobs are already in \"%s\"", rn.tot.skipped, rn.n_jobs,
		    o->output);
		gb_tele_count(rn.tele, "jobs_skipped", (double)rn.tot.skipped, NULL, 0);
	}
	if ((rn.multi = curl_multi_init()) == NULL || (rn.rate = gb__rate_new(o->limits,
	    o->window_ns)) == NULL || (rn.slots = calloc(o->parallel, sizeof(*rn.slots))) == NULL)
		gb__fatalx("out of memory");
	curl_multi_setopt(rn.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->parallel);
	signals_install();
	if (o->batch_api && (status = gb__jobs_batch_begin(&rn)) != 0) {
		/* The batch may still read the run's files and caches: they stay, named in the
		 * state file for the run that ends the batch to delete. */
		gb__jobs_output_close(&rn);
		rn.keep_caches = 1;
		gb__jobs_caches_delete(&rn);
		gb__uploads_finish(&rn.uploads, rn.client, true);
		goto out;
	}
	left = loop(&rn) + rn.tot.unwritten;
	gb__jobs_batch_end(&rn, left);
	left += rn.tot.batch_left;
	synced = gb__jobs_output_close(&rn) == 0;
	gb__jobs_caches_delete(&rn);
	gb__uploads_finish(&rn.uploads, rn.client, o->keep_files);
	progress(&rn, gb__clock_mono_ns(), 1);
	if (left > 0) {
		gb__log_warnx("incomplete: %zu job(s) not done; run again with --resume to finish them", left);
		status = GB__EXIT_INCOMPLETE;
	} else if (!synced) {
		status = GB__EXIT_INCOMPLETE;
	} else {
		status = rn.tot.failed > rn.tot.only_partial || rn.tot.invalid > 0 ? 1 :
		    rn.tot.only_partial > 0 ? GB__EXIT_PARTIAL : 0;
	}
out:
	gb__jobs_batch_free(&rn);
	if (rn.out_fd > STDOUT_FILENO)
		close(rn.out_fd);
	curl_multi_cleanup(rn.multi);
	gb__rate_free(rn.rate);
	free(rn.slots);
	for (size_t i = 0; i < rn.n_jobs; i++)
		gb__job_fini(&rn.jobs[i]);
	free(rn.jobs);
	json_decref(rn.done_ids);
	return status;
}
