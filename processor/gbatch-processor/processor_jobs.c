/*
 * processor_jobs.c - gbatch-processor --jobs: one thread, one libcurl multi handle, up to N
 * jobs in slots, each a gb_qrun state machine with at most one request in flight. A shared
 * rate limiter gates every HTTP attempt; results are appended one line per job with a single
 * write(2) as each finishes, so --resume after any interruption knows exactly what is done.
 */
#include "processor_jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "batch_run.h"
#include "clock.h"
#include "gb_limits.h"
#include "hash.h"
#include "gemini_client.h"
#include "log.h"
#include "telemetry_internal.h"

#define MAX_JOBS_FILE (1u << 30)
#define MAX_LINE (64u << 20)
#define MAX_ID 256
#define TICK_NS (100 * GB_NS_PER_MS)
#define PROGRESS_NS (250 * GB_NS_PER_MS)

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
	int64_t prompt, output, cached, thoughts, total;
	unsigned caches_created, cache_hits, rate_waits, http_429;
};

struct runner {
	const struct gb__jobs_opts *o;
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
	json_t *done_ids; /* keys already in the output (a set) */
	int out_fd;
	int in_flight;
	uint64_t t0, last_progress;
	int progress;
	int stop_now; /* a fatal API error or a failed write: the run cannot go on */
	struct totals tot;
};

static volatile sig_atomic_t stop_signals;

static void
on_stop(int sig)
{
	(void)sig;
	stop_signals++;
}

char *
gb__read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		return NULL;
	do {
		if (n > max) {
			free(buf);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	if (ferror(f) || n > max) {
		free(buf);
		fclose(f);
		errno = n > max ? EFBIG : EIO;
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

const char *
gb__mime_for(const char *path)
{
	static const struct { const char *ext, *mime; } types[] = {
		{ ".pdf", "application/pdf" }, { ".png", "image/png" }, { ".jpg", "image/jpeg" },
		{ ".jpeg", "image/jpeg" }, { ".webp", "image/webp" }, { ".gif", "image/gif" },
		{ ".heic", "image/heic" }, { ".heif", "image/heif" },
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot, types[i].ext) == 0)
			return types[i].mime;
	return NULL;
}

/* ---- the jobs file ---- */

static void
job_fini(struct job *j)
{
	json_decref(j->obj);
	free(j->key);
	free(j->questions);
	free(j->schema);
	memset(j, 0, sizeof(*j));
}

/* Parses one line into j. Returns 0, or -1 with why in err. */
static int
job_parse(struct job *j, const char *text, size_t len, size_t line, char *err, size_t errlen)
{
	json_error_t jerr;
	const json_t *qs, *c, *cf, *sc;
	size_t i;

	memset(j, 0, sizeof(*j));
	j->line = line;
	if ((j->obj = json_loadb(text, len, 0, &jerr)) == NULL) {
		snprintf(err, errlen, "not JSON (%s)", jerr.text);
		return -1;
	}
	if (!json_is_object(j->obj)) {
		snprintf(err, errlen, "not a JSON object");
		goto bad;
	}
	j->id = json_object_get(j->obj, "id");
	if (!(json_is_string(j->id) && json_string_length(j->id) > 0 &&
	    json_string_length(j->id) <= MAX_ID) && !json_is_integer(j->id)) {
		snprintf(err, errlen, "\"id\" must be a non-empty string (at most %d bytes) or an "
		    "integer", MAX_ID);
		goto bad;
	}
	c = json_object_get(j->obj, "content");
	cf = json_object_get(j->obj, "content_file");
	if ((c == NULL) == (cf == NULL)) {
		snprintf(err, errlen, "give exactly one of \"content\" and \"content_file\"");
		goto bad;
	}
	if (c != NULL && (!json_is_string(c) || json_string_length(c) == 0)) {
		snprintf(err, errlen, "\"content\" must be a non-empty string");
		goto bad;
	}
	if (cf != NULL && (!json_is_string(cf) || json_string_length(cf) == 0 ||
	    strlen(json_string_value(cf)) != json_string_length(cf))) {
		snprintf(err, errlen, "\"content_file\" must be a file name");
		goto bad;
	}
	j->content = json_string_value(c);
	j->content_len = json_string_length(c);
	j->content_file = json_string_value(cf);
	qs = json_object_get(j->obj, "questions");
	if (!json_is_array(qs) || json_array_size(qs) == 0 || json_array_size(qs) > GB_MAX_QUESTIONS) {
		snprintf(err, errlen, "\"questions\" must be an array of 1 to %d strings", GB_MAX_QUESTIONS);
		goto bad;
	}
	j->nq = json_array_size(qs);
	if ((j->questions = calloc(j->nq, sizeof(*j->questions))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	for (i = 0; i < j->nq; i++) {
		const json_t *q = json_array_get(qs, i);
		if (!json_is_string(q) || json_string_length(q) == 0 ||
		    strlen(json_string_value(q)) != json_string_length(q)) {
			snprintf(err, errlen, "question %zu is not a non-empty string", i + 1);
			goto bad;
		}
		j->questions[i] = json_string_value(q);
	}
	sc = json_object_get(j->obj, "schema");
	if (sc != NULL && (!json_is_object(sc) || (j->schema = json_dumps(sc, JSON_COMPACT)) == NULL)) {
		snprintf(err, errlen, "\"schema\" must be a JSON object");
		goto bad;
	}
	if ((j->key = json_dumps(j->id, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	return 0;
bad:
	job_fini(j);
	return -1;
}

int
gb__jobs_parse_line(const char *text, size_t len, char *err, size_t errlen)
{
	struct job j;

	if (job_parse(&j, text, len, 1, err, errlen) != 0)
		return -1;
	job_fini(&j);
	return 0;
}

/* Whether the job on line (1-based) belongs to this process's shard. */
static int
line_in_shard(const struct gb__jobs_opts *o, size_t line)
{
	return o->shard_count <= 1 || (line - 1) % o->shard_count == o->shard_index;
}

/* Parses the job on one line (len bytes, trailing blanks trimmed) into j and adds its id to
 * seen, the ids of the valid lines before it. Returns 0, or -1 with why in err. */
static int
line_job(struct job *j, const char *text, size_t len, size_t line, json_t *seen, char *err,
    size_t errlen)
{
	if (len > MAX_LINE) {
		snprintf(err, errlen, "line longer than %u MiB", MAX_LINE >> 20);
		return -1;
	}
	if (job_parse(j, text, len, line, err, errlen) != 0)
		return -1;
	if (json_object_get(seen, j->key) != NULL) {
		snprintf(err, errlen, "id %s appears on an earlier line", j->key);
		job_fini(j);
		return -1;
	}
	json_object_set_new(seen, j->key, json_true());
	return 0;
}

/* Reads the jobs file and keeps the jobs of this shard; its malformed lines are reported with
 * their number and skipped. Every line is parsed, whatever its shard, so that an id repeated on
 * a later line is refused there as in a run of the whole file. Returns 0, or -1 when the file
 * cannot be read. */
static int
jobs_load(struct runner *rn)
{
	size_t len, line = 0, cap = 0;
	/* room for the longest id, every byte escaped as \u00XX */
	char *text = gb__read_file(rn->o->jobs_path, MAX_JOBS_FILE, &len), *p, *end,
	    err[6 * MAX_ID + 128];
	json_t *seen = json_object();

	if (text == NULL || seen == NULL) {
		gb__log_warn("cannot read jobs file \"%s\"", rn->o->jobs_path);
		free(text);
		json_decref(seen);
		return -1;
	}
	for (p = text; p < text + len; p = end + 1) {
		struct job j;
		size_t l;
		int mine;
		if ((end = memchr(p, '\n', (size_t)(text + len - p))) == NULL)
			end = text + len;
		l = (size_t)(end - p);
		line++;
		while (l > 0 && strchr(" \t\r", p[l - 1]) != NULL)
			l--;
		if (strspn(p, " \t\r") >= l)
			continue;
		mine = line_in_shard(rn->o, line);
		if (line_job(&j, p, l, line, seen, err, sizeof(err)) != 0) {
			if (mine) {
				gb__log_warnx("%s:%zu: %s; skipped", rn->o->jobs_path, line, err);
				rn->tot.invalid++;
			}
			continue;
		}
		if (!mine) {
			job_fini(&j);
			continue;
		}
		if (rn->n_jobs == cap) {
			struct job *nj = realloc(rn->jobs, (cap = cap ? cap * 2 : 64) * sizeof(*nj));
			if (nj == NULL)
				gb__fatalx("out of memory reading the jobs file");
			rn->jobs = nj;
		}
		rn->jobs[rn->n_jobs++] = j;
	}
	if (rn->o->shard_count > 1)
		gb__log_info("shard %u/%u: %zu of the %zu jobs of \"%s\"", rn->o->shard_index,
		    rn->o->shard_count, rn->n_jobs, json_object_size(seen), rn->o->jobs_path);
	if (rn->tot.invalid > 0)
		gb_tele_count(rn->tele, "job_lines_invalid", (double)rn->tot.invalid, NULL, 0);
	json_decref(seen);
	free(text);
	return 0;
}

/* ---- the output ---- */

/* Collects the ids of complete lines already in the output; a last line without its newline
 * (a write cut short by kill -9) is cut off. Returns 0, or -1 when the file cannot be used. */
static int
resume_scan(struct runner *rn, int fd)
{
	struct stat st;
	size_t len = 0, bad = 0, line = 0;
	char *text, *p, *end;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		gb__log_warnx("--resume needs --output to be a regular file");
		return -1;
	}
	if (st.st_size == 0)
		return 0;
	if ((text = gb__read_file(rn->o->output, (size_t)st.st_size, &len)) == NULL) {
		gb__log_warn("cannot read \"%s\" to resume", rn->o->output);
		return -1;
	}
	for (p = text; p < text + len; p = end + 1) {
		json_t *v, *id;
		char *key;
		if ((end = memchr(p, '\n', (size_t)(text + len - p))) == NULL) {
			gb__log_warnx("%s: the last line is incomplete (an interrupted write); removed",
			    rn->o->output);
			if (ftruncate(fd, (off_t)(p - text)) != 0) {
				gb__log_warn("cannot repair \"%s\"", rn->o->output);
				free(text);
				return -1;
			}
			break;
		}
		line++;
		v = json_loadb(p, (size_t)(end - p), 0, NULL);
		id = json_object_get(v, "id");
		if (!json_is_string(id) && !json_is_integer(id)) {
			bad++;
		} else if ((key = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
			json_object_set_new(rn->done_ids, key, json_true());
			free(key);
		}
		json_decref(v);
	}
	if (bad > 0)
		gb__log_warnx("%s: %zu of %zu lines are not results with an id; ignored", rn->o->output,
		    bad, line);
	free(text);
	return 0;
}

static int
output_open(struct runner *rn)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (rn->o->resume ? O_APPEND : O_TRUNC);

	if (rn->o->output == NULL) {
		rn->out_fd = STDOUT_FILENO;
		return 0;
	}
	if ((rn->out_fd = open(rn->o->output, flags, 0644)) < 0) {
		gb__log_warn("cannot open output \"%s\"", rn->o->output);
		return -1;
	}
	return rn->o->resume ? resume_scan(rn, rn->out_fd) : 0;
}

/* Appends one line with a single write where the system allows, so a reader or a later
 * --resume sees whole lines only (but for a crash inside the write, which resume repairs). */
static int
write_line(struct runner *rn, const char *s)
{
	size_t len = strlen(s), off = 0;
	char *buf = malloc(len + 1);

	if (buf == NULL)
		return -1;
	memcpy(buf, s, len);
	buf[len++] = '\n';
	while (off < len) {
		ssize_t w = write(rn->out_fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			gb__log_warn("cannot write results to \"%s\"",
			    rn->o->output != NULL ? rn->o->output : "stdout");
			free(buf);
			return -1;
		}
		off += (size_t)w;
	}
	free(buf);
	return 0;
}

/* ---- caching ---- */

static json_t *
content_json(const gb_content *c)
{
	gb_gemini_part part = { c->mime_type, c->data, c->len };
	gb_gemini_request rq = { .parts = &part, .n_parts = 1 };
	json_t *req = gb__gemini_request_json(&rq), *contents;

	contents = json_incref(json_object_get(req, "contents"));
	json_decref(req);
	return contents;
}

/* Whether name is a cache name as the API gives them. */
static int
cache_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 14 && n <= 200 && strncmp(name, "cachedContents/", 15) == 0 &&
	    strspn(name + 15, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
	    n - 15;
}

/* The cache for the slot's content: found, or counted and created now (blocking: it happens
 * once per distinct content). NULL when the content is sent inline. */
static struct cache *
cache_for(struct runner *rn, struct slot *s)
{
	const char *model = rn->o->model, *sys = gb__processor_system(rn->p);
	uint64_t h = gb__hash_more(GB_HASH_SEED, model, strlen(model));
	gb_gemini_result res = { 0 };
	json_t *contents, *body, *answer = NULL;
	struct cache *c, *nc;
	char path[200];
	const json_t *v;

	h = gb__hash_more(h, s->content.mime_type != NULL ? s->content.mime_type : "text",
	    s->content.mime_type != NULL ? strlen(s->content.mime_type) : 4);
	h = gb__hash_more(h, sys != NULL ? sys : "", sys != NULL ? strlen(sys) : 0);
	h = gb__hash_more(h, s->content.data, s->content.len);
	for (size_t i = 0; i < rn->n_caches; i++) {
		if (rn->caches[i].hash == h && !rn->caches[i].retired) {
			if (rn->caches[i].name == NULL)
				return NULL;
			/* A cache about to expire would fail the calls still to come: a fresh one
			 * replaces it (a tenth of the TTL early, at most a minute). */
			uint64_t margin = rn->o->cache_ttl_ns / 10 < 60 * GB_NS_PER_SEC ?
			    rn->o->cache_ttl_ns / 10 : 60 * GB_NS_PER_SEC;
			if (gb__clock_mono_ns() + margin >= rn->caches[i].expires) {
				rn->caches[i].retired = 1;
				break;
			}
			s->cached_hit = 1;
			rn->tot.cache_hits++;
			gb_tele_count(rn->tele, "cache_hits", 1, NULL, 0);
			return &rn->caches[i];
		}
	}
	if ((nc = realloc(rn->caches, (rn->n_caches + 1) * sizeof(*nc))) == NULL)
		return NULL;
	rn->caches = nc;
	c = &rn->caches[rn->n_caches++];
	memset(c, 0, sizeof(*c));
	c->hash = h;
	if ((contents = content_json(&s->content)) == NULL)
		return NULL;
	snprintf(path, sizeof(path), "models/%s:countTokens",
	    strncmp(model, "models/", 7) == 0 ? model + 7 : model);
	body = json_pack("{s:O}", "contents", contents);
	gb__gemini_rest(rn->client, path, body, &answer, &res);
	json_decref(body);
	v = json_object_get(answer, "totalTokens");
	if (res.status != GB__GEMINI_OK || !json_is_integer(v) || json_integer_value(v) < 0) {
		gb__log_warnx("countTokens failed (%s); job %s sends its content inline",
		    res.status != GB__GEMINI_OK ? res.message : "no totalTokens", s->job->key);
		goto out;
	}
	c->tokens = (int64_t)json_integer_value(v);
	if ((uint64_t)c->tokens < rn->o->cache_min_tokens)
		goto out;
	json_decref(answer);
	char ttl[32];
	snprintf(ttl, sizeof(ttl), "%" PRIu64 "s", (uint64_t)(rn->o->cache_ttl_ns / GB_NS_PER_SEC));
	body = json_pack("{s:s+, s:O, s:s}", "model", "models/",
	    strncmp(model, "models/", 7) == 0 ? model + 7 : model, "contents", contents, "ttl", ttl);
	if (body != NULL && sys != NULL)
		json_object_set_new(body, "systemInstruction", json_pack("{s:[{s:s}]}", "parts",
		    "text", sys));
	gb__gemini_rest(rn->client, "cachedContents", body, &answer, &res);
	json_decref(body);
	v = json_object_get(answer, "name");
	if (res.status != GB__GEMINI_OK || !json_is_string(v) || !cache_name_ok(json_string_value(v))) {
		gb__log_warnx("creating a context cache failed (%s); job %s sends its content inline",
		    res.status != GB__GEMINI_OK ? res.message : "no valid name", s->job->key);
		goto out;
	}
	c->name = strdup(json_string_value(v));
	c->expires = gb__clock_mono_ns() + rn->o->cache_ttl_ns;
	rn->tot.caches_created++;
	gb_tele_count(rn->tele, "caches_created", 1, NULL, 0);
out:
	json_decref(answer);
	json_decref(contents);
	gb__gemini_result_fini(&res);
	return c->name != NULL ? c : NULL;
}

static void
caches_delete(struct runner *rn)
{
	for (size_t i = 0; i < rn->n_caches; i++) {
		struct cache *c = &rn->caches[i];
		if (c->name != NULL && !rn->o->keep_cache) {
			gb_gemini_result res = { 0 };
			json_t *answer = NULL;
			if (gb__gemini_rest(rn->client, c->name, NULL, &answer, &res) != GB__GEMINI_OK)
				gb__log_warnx("cannot delete %s (%s); it expires with its TTL", c->name,
				    res.message);
			json_decref(answer);
			gb__gemini_result_fini(&res);
		} else if (c->name != NULL) {
			gb__log_info("kept %s (--keep-cache)", c->name);
		}
		free(c->name);
	}
	free(rn->caches);
}

/* ---- one job ---- */

static void
slot_clear(struct slot *s)
{
	gb__gemini_xfer_free(s->x);
	gb__gemini_result_fini(&s->res);
	gb__qrun_free(s->q);
	free(s->data);
	free(s->cache_name);
	memset(s, 0, sizeof(*s));
}

/* The run's totals for the summary line (the token counters are the driver's). */
static void
count_tokens(struct runner *rn, const gb_gemini_usage *u)
{
	rn->tot.prompt += u->prompt;
	rn->tot.output += u->candidates;
	rn->tot.cached += u->cached;
	rn->tot.thoughts += u->thoughts;
	rn->tot.total += u->total;
}

/* Writes the job's line: {"id", "line", then the result's keys, "cache"}, or an error. */
static void
job_write(struct runner *rn, struct slot *s, gb_result *r, const char *error)
{
	json_t *line = json_pack("{s:O, s:I}", "id", s->job->id, "line", (json_int_t)s->job->line);
	char *text = r != NULL ? gb_result_to_json(r, 0) : NULL, *outs;
	json_t *res = text != NULL ? json_loads(text, 0, NULL) : NULL;
	const char *outcome = "failed";
	char qbuf[24], lbuf[24];

	if (line == NULL)
		gb__fatalx("out of memory writing a result");
	if (res != NULL) {
		json_object_update(line, res);
		json_decref(res);
	}
	if (r != NULL) {
		size_t failed = gb_result_failed_count(r);
		rn->tot.answers += gb_result_question_count(r) - failed;
		rn->tot.errors += failed;
		outcome = failed == 0 ? "answered" : failed < gb_result_question_count(r) ? "partial" :
		    "failed";
	} else {
		rn->tot.errors += s->job->nq;
		json_object_set_new(line, "error", json_string(error != NULL ? error : "failed"));
	}
	json_object_set_new(line, "outcome", json_string(outcome));
	if (s->cache_name != NULL)
		json_object_set_new(line, "cache", json_pack("{s:s, s:I, s:b}", "name", s->cache_name,
		    "tokens", (json_int_t)s->cache_tokens, "reused", s->cached_hit));
	if ((outs = json_dumps(line, JSON_COMPACT)) == NULL)
		gb__fatalx("out of memory writing a result");
	if (write_line(rn, outs) != 0)
		rn->stop_now = 1;
	free(outs);
	free(text);
	json_decref(line);
	rn->tot.done++;
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
	gb__tele_timing(rn->tele, "job.processing",
	    (double)(gb__clock_mono_ns() - s->started) / 1e9, meta, 4);
}

/* Puts job j into slot s: reads its content, sets up its cache and its state machine. A job
 * that cannot start is written as failed and the slot left empty. */
static void
job_start(struct runner *rn, struct slot *s, struct job *j)
{
	gb_process_opts po = rn->o->process;
	struct cache *c = NULL;
	char err[512];
	size_t len = 0;

	memset(s, 0, sizeof(*s));
	s->job = j;
	s->started = gb__clock_mono_ns();
	gb_kv meta = { "job_id", j->key };
	gb__tele_timing(rn->tele, "job.queue_wait", (double)(s->started - rn->t0) / 1e9, &meta, 1);
	if (j->content_file != NULL) {
		if ((s->data = gb__read_file(j->content_file, GB_MAX_FILE_BYTES, &len)) == NULL) {
			snprintf(err, sizeof(err), "cannot read content file \"%s\": %s", j->content_file,
			    strerror(errno));
			goto fail;
		}
		s->content.mime_type = gb__mime_for(j->content_file);
		s->content.data = s->data;
		s->content.len = len;
	} else {
		s->content.data = j->content;
		s->content.len = j->content_len;
	}
	if (rn->o->cache && (c = cache_for(rn, s)) != NULL) {
		if ((s->cache_name = strdup(c->name)) == NULL) {
			snprintf(err, sizeof(err), "out of memory");
			goto fail;
		}
		s->cache_tokens = c->tokens;
	}
	if (s->content.len > GB_MAX_INLINE_BYTES && s->cache_name == NULL) {
		snprintf(err, sizeof(err), "content is too large for one inline request (15 MiB at most)");
		goto fail;
	}
	if (j->schema != NULL)
		po.response_schema = j->schema;
	if (gb__qrun_new(rn->p, &s->content, 1, j->questions, j->nq, &po, s->cache_name, 0, &s->q,
	    err, sizeof(err)) != 0)
		goto fail;
	return;
fail:
	gb__log_warnx("job %s (line %zu): %s", j->key, j->line, err);
	job_write(rn, s, NULL, err);
	slot_clear(s);
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
			slot_clear(s);
			return;
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
		rn->tot.http_429++;
		gb__rate_pause(rn->rate, now + (delay > 0 ? delay : GB_NS_PER_SEC));
	}
	if (again) {
		s->res.backoff_seconds += (double)delay / 1e9;
		s->ready_at = now + delay;
		s->queued_at = s->ready_at;
		return;
	}
	if (s->res.status == GB__GEMINI_OK)
		count_tokens(rn, &s->res.usage);
	gb__qrun_take(s->q, &s->res);
	gb__gemini_xfer_free(s->x);
	s->x = NULL;
	gb__gemini_result_fini(&s->res);
}

/* ---- progress ---- */

static void
fmt_eta(char *buf, size_t len, double s)
{
	if (s < 0 || s > 359999)
		snprintf(buf, len, "--:--");
	else
		snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
}

static void
progress(struct runner *rn, uint64_t now, int final)
{
	double el = (double)(now - rn->t0) / 1e9;
	size_t todo = rn->tot.jobs - rn->tot.skipped;
	char eta[32], shard[48] = "";

	if (rn->progress && (final || now - rn->last_progress >= PROGRESS_NS)) {
		double rate = el > 0 ? (double)rn->tot.done / el : 0;
		fmt_eta(eta, sizeof(eta), rate > 0 ? (double)(todo - rn->tot.done) / rate : -1);
		fprintf(stderr, "\r\033[Kjobs %zu/%zu  answers %zu  errors %zu  tokens %" PRId64
		    "  %.1f req/s  ETA %s%s", rn->tot.done, todo, rn->tot.answers, rn->tot.errors,
		    rn->tot.total, el > 0 ? (double)rn->tot.requests / el : 0.0, eta,
		    final ? "\n" : "");
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

static struct job *
next_job(struct runner *rn)
{
	while (rn->next_job < rn->n_jobs) {
		struct job *j = &rn->jobs[rn->next_job++];
		if (json_object_get(rn->done_ids, j->key) == NULL)
			return j;
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
				job_start(rn, s, j);
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
		slot_clear(s);
		left++;
	}
	while (next_job(rn) != NULL)
		left++;
	return left;
}

int
gb__jobs_run(gb_processor *p, const struct gb__jobs_opts *o)
{
	struct runner rn = { .o = o, .p = p, .client = gb__processor_client(p),
		.tele = gb__processor_tele(p), .out_fd = -1 };
	size_t left;
	int status;

	rn.t0 = gb__clock_mono_ns();
	rn.progress = o->progress >= 0 ? o->progress : isatty(STDERR_FILENO);
	if ((rn.done_ids = json_object()) == NULL)
		gb__fatalx("out of memory");
	if (jobs_load(&rn) != 0 || output_open(&rn) != 0) {
		status = 2;
		goto out;
	}
	rn.tot.jobs = rn.n_jobs;
	for (size_t i = 0; i < rn.n_jobs; i++)
		rn.tot.skipped += json_object_get(rn.done_ids, rn.jobs[i].key) != NULL;
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
	left = loop(&rn);
	caches_delete(&rn);
	progress(&rn, gb__clock_mono_ns(), 1);
	if (left > 0) {
		gb__log_warnx("incomplete: %zu job(s) not done; run again with --resume to finish them", left);
		status = GB__EXIT_INCOMPLETE;
	} else {
		status = rn.tot.failed > 0 || rn.tot.invalid > 0 ? 1 : 0;
	}
out:
	if (rn.out_fd > STDOUT_FILENO)
		close(rn.out_fd);
	curl_multi_cleanup(rn.multi);
	gb__rate_free(rn.rate);
	free(rn.slots);
	for (size_t i = 0; i < rn.n_jobs; i++)
		job_fini(&rn.jobs[i]);
	free(rn.jobs);
	json_decref(rn.done_ids);
	return status;
}
