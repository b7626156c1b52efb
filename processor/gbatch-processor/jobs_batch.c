/*
 * jobs_batch.c - gbatch-processor --jobs --batch-api: every job's batched call goes into one
 * Gemini Batch API batch (inline while the whole stays under the API's inline limit, else a
 * JSON-lines file of the Files API), billed at half the interactive rate. The batch is named
 * in OUTPUT.batch.json before it is created and once it exists, polled with a growing,
 * jittered wait until it ends, and its answers handed to the jobs runner's loop, which asks
 * what the batch left unanswered interactively and writes each job as --jobs does.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>

#include "batch_state.h"
#include "clock.h"
#include "gemini_batch.h"
#include "jobs_internal.h"
#include "log.h"
#include "telemetry_internal.h"

#define POLL_MAX_NS (10ull * 60 * GB_NS_PER_SEC)
#define POLL_GROWTH 1.5
#define SLICE_NS (100 * GB_NS_PER_MS)
#define NOT_BEFORE_SLACK 300 /* seconds: clocks differ between here and the API */

struct batch_mode {
	char path[PATH_MAX];     /* OUTPUT.batch.json */
	struct gb_batch_state st;
	gb_gemini_batch b;
	json_t *answers;         /* job key -> {"response": ...} or {"error": ...} */
	json_t *wanted;          /* the keys the loop runs (a set) */
	size_t from_batch, asked, jobs_written;
	int64_t billable_batch, billable_asked;
};

static const char *
model_id(const char *model)
{
	return strncmp(model, "models/", 7) == 0 ? model + 7 : model;
}

/* The display name: --batch-name, or "gbatch-JOBS-TIME-RANDOM" from the jobs file's name. */
static void
make_display_name(const struct runner *rn, char *out, size_t len)
{
	const char *base = strrchr(rn->o->jobs_path, '/');
	char stem[64];
	size_t n = 0;

	if (rn->o->batch_name != NULL) {
		strlcpy(out, rn->o->batch_name, len);
		return;
	}
	base = base != NULL ? base + 1 : rn->o->jobs_path;
	for (; base[n] != '\0' && base[n] != '.' && n < sizeof(stem) - 1; n++)
		stem[n] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
		    base[n]) != NULL ? base[n] : '_';
	stem[n] = '\0';
	snprintf(out, len, "gbatch-%s-%lld-%08x", stem, (long long)time(NULL), arc4random());
}

/* ---- creating the batch ---- */

static int
save_state(struct batch_mode *bm)
{
	char err[PATH_MAX + 128];

	if (gb__batch_state_save(bm->path, &bm->st, err, sizeof(err)) == 0)
		return 0;
	gb__log_warnx("%s", err);
	return -1;
}

/* Records the batch's state as a gauge (one value per state, tagged with its name). */
static void
record_state(struct runner *rn, const gb_gemini_batch *b)
{
	gb_kv kv[2] = { { "state", gb__batch_state_tag(b->state) }, { "mode", "batch" } };

	gb_tele_gauge(rn->tele, "batch_job.state", (double)b->state, kv, 2);
}

/* Builds and creates the batch; its name and jobs are in the state file before it is created
 * (with no name yet) and once it is. 0; -1 with err set; 1 when there was nothing to submit. */
static int
submit(struct runner *rn, struct batch_mode *bm, char *err, size_t errlen)
{
	gb_gemini_result res = { 0 };
	json_t *input, *body;
	uint64_t bytes = 0;
	int rc;

	if ((rc = gb__jobs_batch_input(rn, &bm->st, &input, &bytes, err, errlen)) != 0)
		return rc;
	rc = -1;
	body = json_pack("{s:{s:s, s:o}}", "batch", "displayName", bm->st.display_name,
	    "inputConfig", input);
	bm->st.submitted = time(NULL);
	if (body == NULL || save_state(bm) != 0) {
		json_decref(body);
		snprintf(err, errlen, "the batch is not submitted: its state file cannot be written");
		goto out;
	}
	gb__log_info("submitting %zu jobs as batch \"%s\" (%s input, %" PRIu64 " bytes)",
	    json_array_size(bm->st.jobs), bm->st.display_name,
	    bm->st.input_file[0] != '\0' ? "file" : "inline", bytes);
	gb__batch_create(rn->client, model_id(bm->st.model), body,
	    bm->st.submitted - NOT_BEFORE_SLACK, &bm->b, &res);
	json_decref(body);
	if (res.status != GB__GEMINI_OK) {
		char why[PATH_MAX + 128];
		snprintf(err, errlen, "creating the batch failed: %s", res.message);
		rn->stop_now = 1;
		/* A refusal (a 4xx other than 408 and 429) created nothing: no state to keep. */
		if (res.http_status >= 400 && res.http_status < 500 && res.http_status != 408 &&
		    res.http_status != 429 && gb__batch_state_remove(bm->path, why, sizeof(why)) != 0)
			gb__log_warnx("%s", why);
		goto out;
	}
	strlcpy(bm->st.name, bm->b.name, sizeof(bm->st.name));
	gb_tele_count(rn->tele, "batch_job.requests", (double)json_array_size(bm->st.jobs), NULL, 0);
	record_state(rn, &bm->b);
	if (save_state(bm) != 0)
		gb__log_warnx("batch %s is created but not recorded: a --resume finds it by its "
		    "display name \"%s\"", bm->st.name, bm->st.display_name);
	rc = 0;
out:
	gb__gemini_result_fini(&res);
	return rc;
}

/* With --resume and a state file: the batch it names, or, when the run that wrote it was
 * stopped before the API named the batch, the batch of its display name. 1 adopted; 0 there
 * is none (submit anew, with the same display name); -1 with err set. */
static int
adopt(struct runner *rn, struct batch_mode *bm, char *err, size_t errlen)
{
	gb_gemini_result res = { 0 };
	int found;

	if (bm->st.name[0] != '\0') {
		gb__log_info("resuming batch %s (\"%s\", %zu jobs)", bm->st.name, bm->st.display_name,
		    json_array_size(bm->st.jobs));
		return 1;
	}
	found = gb__batch_find(rn->client, bm->st.display_name, bm->st.submitted - NOT_BEFORE_SLACK,
	    &bm->b, &res);
	if (found < 0) {
		snprintf(err, errlen, "cannot tell whether batch \"%s\" was created: %s",
		    bm->st.display_name, res.message);
		gb__gemini_result_fini(&res);
		return -1;
	}
	gb__gemini_result_fini(&res);
	if (found == 0) {
		gb__log_info("batch \"%s\" was never created: submitting it now",
		    bm->st.display_name);
		json_array_clear(bm->st.jobs);
		if (bm->st.input_file[0] != '\0')
			json_array_append_new(bm->st.files, json_string(bm->st.input_file));
		bm->st.input_file[0] = '\0';
		return 0;
	}
	strlcpy(bm->st.name, bm->b.name, sizeof(bm->st.name));
	gb__log_info("resuming batch %s (found by its display name \"%s\")", bm->st.name,
	    bm->st.display_name);
	return save_state(bm) == 0 ? 1 : -1;
}

/* ---- polling ---- */

static void
fmt_age(char *buf, size_t len, time_t since)
{
	long long s = (long long)(time(NULL) - since);

	if (s < 0)
		s = 0;
	if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
}

static void
fmt_count(char *buf, size_t len, int64_t n)
{
	if (n < 0)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%" PRId64, n);
}

/* The batch's line: its state, batchStats and time since it was submitted. */
static void
say_state(const struct runner *rn, const struct batch_mode *bm, double next_s, int live)
{
	const gb_gemini_batch *b = &bm->b;
	char age[32], pend[24], ok[24], bad[24];

	fmt_age(age, sizeof(age), bm->st.submitted);
	fmt_count(pend, sizeof(pend), b->pending);
	fmt_count(ok, sizeof(ok), b->succeeded);
	fmt_count(bad, sizeof(bad), b->failed);
	if (live && rn->progress)
		fprintf(stderr, "\r\033[K%.60s %s: %s pending, %s succeeded, %s failed, %s since "
		    "submit, next poll in %.0fs", b->name, gb__batch_state_tag(b->state), pend, ok, bad,
		    age, next_s);
	else
		gb__log_info("batch %s is %s: %s pending, %s succeeded, %s failed, %s since submit",
		    b->name, b->state_text[0] != '\0' ? b->state_text : "in an unnamed state", pend,
		    ok, bad, age);
}

/* Waits ns, in slices so a signal stops the wait, the live line (on a terminal) shown at
 * once and then every second; 0, or -1 on a signal. */
static int
wait_ns(struct runner *rn, struct batch_mode *bm, uint64_t ns)
{
	uint64_t now = gb__clock_mono_ns(), end = now + ns, shown = 0;

	for (; now < end; now = gb__clock_mono_ns()) {
		uint64_t left = end - now < SLICE_NS ? end - now : SLICE_NS;
		struct timespec ts = { 0, (long)left };
		if (gb__jobs_signalled())
			return -1;
		if (rn->progress && (shown == 0 || now - shown >= GB_NS_PER_SEC)) {
			say_state(rn, bm, (double)(end - now) / 1e9, 1);
			shown = now;
		}
		nanosleep(&ts, NULL);
	}
	return gb__jobs_signalled() ? -1 : 0;
}

/* The wait after a poll: from --batch-poll growing by half each time up to ten times it
 * (at most ten minutes), give or take a tenth so that many runs do not poll in step. */
static uint64_t
next_wait(uint64_t *cur, uint64_t base)
{
	uint64_t cap = base * 10 < POLL_MAX_NS ? base * 10 : POLL_MAX_NS, w = *cur;
	double jitter = 0.9 + 0.2 * ((double)arc4random() / (double)UINT32_MAX);

	if (cap < base)
		cap = base;
	*cur = (uint64_t)((double)*cur * POLL_GROWTH);
	if (*cur > cap)
		*cur = cap;
	return (uint64_t)((double)w * jitter);
}

/* Polls the batch until it ends. 0 once it is over (bm->b final), -1 when the run stops
 * (a signal, or an error every later poll would meet; logged). */
static int
poll_batch(struct runner *rn, struct batch_mode *bm)
{
	uint64_t cur = rn->o->batch_poll_ns, t;
	enum gb__batch_state last = bm->b.state;
	int first = 1;

	for (;;) {
		gb_gemini_result res = { 0 };
		gb_gemini_batch b = { 0 };
		t = gb__clock_mono_ns();
		int rc = gb__batch_get(rn->client, bm->st.name, &b, &res);
		gb_kv kv[2] = { { "state", gb__batch_state_tag(rc == GB__GEMINI_OK ? b.state :
			GB__BATCH_UNKNOWN) }, { "mode", "batch" } };
		gb__tele_timing(rn->tele, "batch_job.poll", (double)(gb__clock_mono_ns() - t) / 1e9,
		    kv, 2);
		if (rc != GB__GEMINI_OK) {
			int fatal = gb__gemini_is_fatal(&res) || res.http_status == 404;
			gb__log_warnx("polling batch %s failed: %s%s%s", bm->st.name, res.message,
			    fatal ? "" : " (polling on)", res.http_status == 404 ? "; if the batch is "
			    "gone, remove the state file to submit its jobs in a new batch" : "");
			gb__gemini_result_fini(&res);
			if (fatal) {
				rn->stop_now = 1;
				return -1;
			}
		} else {
			gb__gemini_result_fini(&res);
			gb__batch_fini(&bm->b);
			bm->b = b;
			if (b.state != last)
				record_state(rn, &b);
			if (first || b.state != last) {
				if (rn->progress)
					fputs("\r\033[K", stderr);
				say_state(rn, bm, 0, 0);
			}
			last = b.state;
			first = 0;
			if (b.done)
				return 0;
		}
		if (wait_ns(rn, bm, next_wait(&cur, rn->o->batch_poll_ns)) != 0) {
			if (rn->progress)
				fputs("\r\033[K", stderr);
			gb__log_warnx("stopped polling batch %s, which goes on: run again with --resume "
			    "to poll it, or with --batch-cancel to cancel it", bm->st.name);
			return -1;
		}
	}
}

/* ---- the answers ---- */

/* Keeps item ({"response"} or {"error"}) as the answer to key, which must be one of the
 * batch's jobs, once. */
static void
keep_answer(struct batch_mode *bm, const char *key, json_t *item, size_t *unknown)
{
	if (key == NULL || json_object_get(bm->wanted, key) == NULL ||
	    json_object_get(bm->answers, key) != NULL) {
		(*unknown)++;
		return;
	}
	json_object_set(bm->answers, key, item);
}

/* The key of the i-th response: its own (metadata.key inline, key in the file), else the
 * i-th job's, as the API keeps the order of the requests. */
static const char *
key_of(const struct batch_mode *bm, const json_t *own, size_t i)
{
	if (json_is_string(own))
		return json_string_value(own);
	return json_string_value(json_array_get(bm->st.jobs, i));
}

/* Reads the answers of a batch that ended: inlined, or from its responses file. */
static int
load_answers(struct runner *rn, struct batch_mode *bm)
{
	size_t unknown = 0, i = 0;
	json_t *item;

	if (bm->b.inlined != NULL) {
		json_array_foreach(bm->b.inlined, i, item)
			if (json_is_object(item))
				keep_answer(bm, key_of(bm, json_object_get(json_object_get(item,
				    "metadata"), "key"), i), item, &unknown);
	} else if (bm->b.responses_file[0] != '\0') {
		gb_gemini_result res = { 0 };
		if (gb__batch_download(rn->client, bm->b.responses_file, &res) != GB__GEMINI_OK) {
			gb__log_warnx("cannot download the answers of batch %s (%s): %s; run again with "
			    "--resume to try again", bm->st.name, bm->b.responses_file, res.message);
			rn->stop_now = gb__gemini_is_fatal(&res);
			gb__gemini_result_fini(&res);
			return -1;
		}
		for (char *line = res.text, *nl; line != NULL && *line != '\0'; line = nl, i++) {
			if ((nl = strchr(line, '\n')) != NULL)
				*nl++ = '\0';
			item = json_loads(line, 0, NULL);
			if (json_is_object(item))
				keep_answer(bm, key_of(bm, json_object_get(item, "key"), i), item,
				    &unknown);
			else
				unknown++;
			json_decref(item);
		}
		gb__gemini_result_fini(&res);
	}
	if (unknown > 0)
		gb__log_warnx("batch %s: %zu of its answers are not JSON objects, repeat a job or name "
		    "none of its jobs; they are left out", bm->st.name, unknown);
	return 0;
}

/* The batch is over: what the loop runs. A batch that succeeded answers every one of its
 * jobs (one with no answer is asked again); any other end leaves its jobs undone but those
 * it did answer. Returns 0 to run the loop, GB__EXIT_INCOMPLETE when the answers cannot be
 * read. */
static int
take_end(struct runner *rn, struct batch_mode *bm)
{
	const gb_gemini_batch *b = &bm->b;
	const char *key;
	json_t *v;
	void *tmp;

	if (b->state == GB__BATCH_SUCCEEDED && b->inlined == NULL && b->responses_file[0] == '\0') {
		gb__log_warnx("batch %s succeeded but names no responses (neither inlinedResponses nor "
		    "a responsesFile): run again with --resume to read it again", b->name);
		return GB__EXIT_INCOMPLETE;
	}
	if (load_answers(rn, bm) != 0)
		return GB__EXIT_INCOMPLETE;
	if (b->state == GB__BATCH_SUCCEEDED) {
		size_t missing = json_array_size(bm->st.jobs) - json_object_size(bm->answers);
		if (missing > 0)
			gb__log_warnx("batch %s has no answer for %zu of its jobs: they are %s", b->name,
			    missing, rn->o->batch_no_repair ? "left as errors (--batch-no-repair)" :
			    "asked interactively");
		return 0;
	}
	gb__log_warnx("batch %s ended %s%s%s: its %zu jobs are not done but the %zu it answered; "
	    "run again with --resume to submit them in a new batch", b->name,
	    b->state_text[0] != '\0' ? b->state_text : "without a state", b->error[0] != '\0' ?
	    ": " : "", b->error, json_array_size(bm->st.jobs) - json_object_size(bm->answers),
	    json_object_size(bm->answers));
	json_object_foreach_safe(bm->wanted, tmp, key, v)
		if (json_object_get(bm->answers, key) == NULL)
			json_object_del(bm->wanted, key);
	return 0;
}

/* ---- with the jobs runner ---- */

static int64_t
billable(const gb_gemini_usage *u)
{
	return u->prompt - u->cached + u->candidates + u->thoughts;
}

int
gb__jobs_batch_begin(struct runner *rn)
{
	struct batch_mode *bm = calloc(1, sizeof(*bm));
	char err[PATH_MAX + 512] = "";
	int had, rc;
	json_t *k;
	size_t i;

	if (bm == NULL || (bm->answers = json_object()) == NULL ||
	    (bm->wanted = json_object()) == NULL)
		gb__fatalx("out of memory");
	rn->bm = bm;
	if (gb__batch_state_path(rn->o->output, bm->path, sizeof(bm->path)) != 0) {
		gb__log_warnx("the batch's state file for \"%s\" would have too long a path",
		    rn->o->output);
		return 2;
	}
	if ((had = gb__batch_state_load(bm->path, &bm->st, err, sizeof(err))) < 0) {
		gb__log_warnx("%s: remove it to submit the jobs in a new batch", err);
		return 2;
	}
	if (had && !rn->o->resume) {
		gb__log_warnx("\"%s\" names batch %s (\"%s\") submitted earlier: run again with "
		    "--resume to go on with it, or with --batch-cancel to cancel it", bm->path,
		    bm->st.name[0] != '\0' ? bm->st.name : "(being created)", bm->st.display_name);
		return 2;
	}
	if (!had) {
		if ((bm->st.jobs = json_array()) == NULL || (bm->st.files = json_array()) == NULL ||
		    (bm->st.caches = json_array()) == NULL)
			gb__fatalx("out of memory");
		make_display_name(rn, bm->st.display_name, sizeof(bm->st.display_name));
		strlcpy(bm->st.model, rn->o->model, sizeof(bm->st.model));
	} else if (strcmp(model_id(bm->st.model), model_id(rn->o->model)) != 0) {
		gb__log_info("batch \"%s\" asks %s; what it leaves unanswered is asked of %s",
		    bm->st.display_name, bm->st.model, rn->o->model);
	}
	rc = had ? adopt(rn, bm, err, sizeof(err)) : 0;
	if (rc == 0 && (rc = submit(rn, bm, err, sizeof(err))) == 1) {
		gb__log_info("no job to submit");
		return 0;
	}
	if (rc < 0) {
		gb__log_warnx("%s", err);
		return GB__EXIT_INCOMPLETE;
	}
	json_array_foreach(bm->st.jobs, i, k)
		json_object_set_new(bm->wanted, json_string_value(k), json_true());
	if (poll_batch(rn, bm) != 0)
		return GB__EXIT_INCOMPLETE;
	return take_end(rn, bm);
}

int
gb__jobs_batch_wanted(const struct runner *rn, const struct job *j)
{
	return json_object_get(rn->bm->wanted, j->key) != NULL;
}

int
gb__jobs_batch_has(const struct runner *rn, const struct job *j)
{
	return json_object_get(rn->bm->answers, j->key) != NULL;
}

void
gb__jobs_batch_answer(struct runner *rn, struct slot *s)
{
	const json_t *item = json_object_get(rn->bm->answers, s->job->key);
	char err[600], why[700];

	gb__batch_response_result(json_object_get(item, "response"), json_object_get(item, "error"),
	    rn->client, &s->res);
	s->from_batch = 1;
	if (s->res.status == GB__GEMINI_OK) {
		s->billable_batch = billable(&s->res.usage);
		gb__jobs_count_tokens(rn, &s->res.usage);
	}
	snprintf(why, sizeof(why), "not answered by batch %s (--batch-no-repair): %s",
	    rn->bm->st.name, s->res.status == GB__GEMINI_OK ? "its answer is incomplete" :
	    s->res.message);
	gb__qrun_take_from_batch(s->q, &s->res);
	gb__gemini_result_fini(&s->res);
	if (gb__qrun_to_ask(s->q) == 0)
		return;
	if (rn->o->batch_no_repair) {
		gb__qrun_abandon(s->q, why);
		return;
	}
	/* What the batch left unanswered is asked now: the content is needed after all. */
	if (s->content_deferred && gb__jobs_content(rn, s, err, sizeof(err)) != 0) {
		gb__log_warnx("job %s (line %zu): %s", s->job->key, s->job->line, err);
		gb__qrun_abandon(s->q, err);
	}
	s->content_deferred = 0;
}

/* How many of r's answers came from the batch (nb) and how many were asked interactively (ni). */
static void
answer_sources(const struct slot *s, const gb_result *r, size_t *nb, size_t *ni)
{
	size_t n = r != NULL ? gb_result_question_count(r) : 0;

	*nb = *ni = 0;
	for (size_t i = 0; i < n; i++) {
		const char *src = gb_result_source(r, i);
		*nb += s->from_batch && strcmp(src, "batch") == 0;
		*ni += strcmp(src, "individual") == 0 || (!s->from_batch && strcmp(src, "batch") == 0);
	}
}

void
gb__jobs_batch_line(const struct runner *rn, const struct slot *s, const gb_result *r,
    gb_jw *w)
{
	size_t nb, ni;

	answer_sources(s, r, &nb, &ni);
	gb__jw_lit(w, ",\"mode\":\"batch\",\"batch_api\":{\"name\":");
	gb__jw_str(w, rn->bm->st.name);
	gb__jw_lit(w, ",\"answers_from_batch\":");
	gb__jw_int(w, (long long)nb);
	gb__jw_lit(w, ",\"answers_asked\":");
	gb__jw_int(w, (long long)ni);
	gb__jw_lit(w, ",\"billable_tokens\":");
	gb__jw_int(w, (long long)(s->billable_batch + s->billable_asked));
	gb__jw_lit(w, ",\"billable_tokens_at_batch_rate\":");
	gb__jw_real(w, (double)s->billable_batch / 2 + (double)s->billable_asked);
	gb__jw_raw(w, "}", 1);
}

void
gb__jobs_batch_written(struct runner *rn, const struct slot *s, const gb_result *r)
{
	struct batch_mode *bm = rn->bm;
	size_t nb, ni;

	answer_sources(s, r, &nb, &ni);
	bm->from_batch += nb;
	bm->asked += ni;
	bm->billable_batch += s->billable_batch;
	bm->billable_asked += s->billable_asked;
	bm->jobs_written++;
}

/* ---- the end ---- */

static int
this_runs(const struct runner *rn, const char *name)
{
	for (size_t i = 0; i < rn->uploads.n; i++)
		if (strcmp(rn->uploads.v[i]->file.name, name) == 0)
			return 1;
	for (size_t i = 0; i < rn->n_caches; i++)
		if (rn->caches[i].name != NULL && strcmp(rn->caches[i].name, name) == 0)
			return 1;
	return 0;
}

static void
forget_own(const struct runner *rn, json_t *names)
{
	for (size_t i = json_array_size(names); i-- > 0;)
		if (this_runs(rn, json_string_value(json_array_get(names, i))))
			json_array_remove(names, i);
}

/* Deletes (unless kept) what the batch's requests pointed at and an earlier run made (a
 * DELETE of its name, files and caches alike): this run's own files and caches are deleted
 * with the run's. */
static void
delete_resources(struct runner *rn, struct batch_mode *bm)
{
	json_t *lists[2] = { bm->st.files, bm->st.caches }, *v;
	int keep[2] = { rn->o->keep_files, rn->o->keep_cache };
	size_t i;

	if (bm->st.input_file[0] != '\0' && !rn->o->keep_files)
		json_array_append_new(bm->st.files, json_string(bm->st.input_file));
	for (int l = 0; l < 2; l++)
		json_array_foreach(lists[l], i, v) {
			gb_gemini_result res = { 0 };
			const char *name = json_string_value(v);
			if (keep[l] || this_runs(rn, name))
				continue;
			if (gb__files_delete(rn->client, name, &res) != GB__GEMINI_OK)
				gb__log_warnx("cannot delete %s (%s); it expires on its own", name,
				    res.message);
			gb__gemini_result_fini(&res);
		}
}

static void
summary(const struct runner *rn, const struct batch_mode *bm)
{
	int64_t all = bm->billable_batch + bm->billable_asked;

	fprintf(stderr, "gbatch-processor: batch %s %s (%s input, %zu jobs, %zu written): %zu "
	    "answers from the batch, %zu asked interactively; billable tokens %" PRId64 " (%" PRId64
	    " of the batch at half the rate), billed as %.0f interactive tokens\n",
	    bm->st.name, bm->b.state_text[0] != '\0' ? bm->b.state_text : "not over",
	    bm->st.input_file[0] != '\0' ? "file" : "inline",
	    json_array_size(bm->st.jobs), bm->jobs_written, bm->from_batch, bm->asked, all,
	    bm->billable_batch, (double)bm->billable_batch / 2 + (double)bm->billable_asked);
	(void)rn;
}

void
gb__jobs_batch_end(struct runner *rn, size_t left)
{
	struct batch_mode *bm = rn->bm;
	char err[PATH_MAX + 128];

	if (bm == NULL || bm->st.name[0] == '\0')
		return;
	summary(rn, bm);
	if (!bm->b.done)
		return;
	if (left > 0) {
		/* Some jobs are left to --resume: the run's own files and caches go at its end,
		 * and the state file no longer names them. */
		forget_own(rn, bm->st.files);
		forget_own(rn, bm->st.caches);
		save_state(bm);
		return;
	}
	delete_resources(rn, bm);
	if (gb__batch_state_remove(bm->path, err, sizeof(err)) != 0)
		gb__log_warnx("%s", err);
}

int
gb__jobs_batch_cancel(struct runner *rn)
{
	struct batch_mode *bm = calloc(1, sizeof(*bm));
	gb_gemini_result res = { 0 };
	char err[PATH_MAX + 512];
	int had;

	if (bm == NULL || (bm->answers = json_object()) == NULL ||
	    (bm->wanted = json_object()) == NULL)
		gb__fatalx("out of memory");
	rn->bm = bm;
	if (gb__batch_state_path(rn->o->output, bm->path, sizeof(bm->path)) != 0 ||
	    (had = gb__batch_state_load(bm->path, &bm->st, err, sizeof(err))) <= 0) {
		gb__log_warnx("no batch to cancel: %s", bm->path[0] != '\0' ? err : "the path is too "
		    "long");
		return 2;
	}
	if ((had = adopt(rn, bm, err, sizeof(err))) <= 0) {
		if (had < 0)
			gb__log_warnx("%s", err);
		else if (gb__batch_state_remove(bm->path, err, sizeof(err)) != 0)
			gb__log_warnx("%s", err);
		return had < 0 ? 1 : 0;
	}
	if (gb__batch_cancel(rn->client, bm->st.name, &res) != GB__GEMINI_OK) {
		gb__log_warnx("cancelling batch %s failed: %s", bm->st.name, res.message);
		gb__gemini_result_fini(&res);
		return 1;
	}
	if (gb__batch_get(rn->client, bm->st.name, &bm->b, &res) == GB__GEMINI_OK) {
		record_state(rn, &bm->b);
		say_state(rn, bm, 0, 0);
	}
	gb__gemini_result_fini(&res);
	gb__log_info("cancelled batch %s; its jobs are left to a run with --resume (a new batch)",
	    bm->st.name);
	delete_resources(rn, bm);
	if (gb__batch_state_remove(bm->path, err, sizeof(err)) != 0) {
		gb__log_warnx("%s", err);
		return 1;
	}
	return 0;
}

void
gb__jobs_batch_free(struct runner *rn)
{
	struct batch_mode *bm = rn->bm;

	if (bm == NULL)
		return;
	gb__batch_state_fini(&bm->st);
	gb__batch_fini(&bm->b);
	json_decref(bm->answers);
	json_decref(bm->wanted);
	free(bm);
	rn->bm = NULL;
}
