/*
 * jobs_file.c - the two files of a --jobs run: the JSON-lines jobs file (each line checked,
 * every id once, the shard's lines kept) and the results file (resume reads it back; each
 * result is appended with one write(2), so a crash leaves whole lines only).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content_file.h"
#include "gb_limits.h"
#include "gen_config.h"
#include "jobs_internal.h"
#include "log.h"
#include "parse.h"
#include "text.h"

/* ---- the jobs file ---- */

void
gb__job_fini(struct job *j)
{
	json_decref(j->obj);
	free(j->key);
	free(j->questions);
	free(j->schema);
	free(j->gen);
	free(j->safety);
	memset(j, 0, sizeof(*j));
}

/* The line's generation_config and safety_settings, checked as the command line's are, kept
 * as text in j. Returns 0, or -1 with why in err. */
static int
job_settings(struct job *j, char *err, size_t errlen)
{
	const json_t *gen = json_object_get(j->obj, "generation_config");
	const json_t *safety = json_object_get(j->obj, "safety_settings");

	if (gb__gen_check(gen, safety, err, errlen) != 0)
		return -1;
	if ((gen != NULL && (j->gen = json_dumps(gen, JSON_COMPACT)) == NULL) ||
	    (safety != NULL && (j->safety = json_dumps(safety, JSON_COMPACT)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
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
	if (job_settings(j, err, errlen) != 0)
		goto bad;
	if ((j->key = json_dumps(j->id, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	return 0;
bad:
	gb__job_fini(j);
	return -1;
}

int
gb__jobs_parse_shard(const char *text, unsigned max, unsigned *index, unsigned *count)
{
	const char *slash = strchr(text, '/');
	char digits[16], err[128];
	uint64_t i, n;

	if (slash == NULL || (size_t)(slash - text) >= sizeof(digits))
		return -1;
	memcpy(digits, text, (size_t)(slash - text));
	digits[slash - text] = '\0';
	if (gb__parse_uint(digits, 0, max - 1, &i, err, sizeof(err)) != 0 ||
	    gb__parse_uint(slash + 1, 1, max, &n, err, sizeof(err)) != 0 || i >= n)
		return -1;
	*index = (unsigned)i;
	*count = (unsigned)n;
	return 0;
}

int
gb__jobs_parse_line(const char *text, size_t len, char *err, size_t errlen)
{
	struct job j;

	if (job_parse(&j, text, len, 1, err, errlen) != 0)
		return -1;
	gb__job_fini(&j);
	return 0;
}

/* Whether the job on line (1-based) belongs to this process's shard. */
static int
line_in_shard(const struct gb_jobs_opts *o, size_t line)
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
		gb__job_fini(j);
		return -1;
	}
	json_object_set_new(seen, j->key, json_true());
	return 0;
}

int
gb__jobs_load(struct runner *rn)
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
			gb__job_fini(&j);
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

int
gb__jobs_output_open(struct runner *rn)
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

int
gb__jobs_write_line(struct runner *rn, const char *s)
{
	/* DEL and C1 controls as \u escapes: the same JSON, safe on a terminal */
	char *buf = gb__json_term_safe(s), *nb;
	size_t len, off = 0;
	off_t start = lseek(rn->out_fd, 0, SEEK_END); /* -1 on a pipe or a terminal */

	if (buf == NULL || (nb = realloc(buf, (len = strlen(buf)) + 2)) == NULL) {
		free(buf);
		return -1;
	}
	buf = nb;
	buf[len++] = '\n';
	while (off < len) {
		ssize_t w = write(rn->out_fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			gb__log_warn("cannot write results to \"%s\"",
			    rn->o->output != NULL ? rn->o->output : "stdout");
			/* no half line left behind where it can be taken back */
			if (off > 0 && start >= 0 && ftruncate(rn->out_fd, start) != 0)
				gb__log_warn("cannot cut \"%s\" back to its last whole line",
				    rn->o->output != NULL ? rn->o->output : "stdout");
			free(buf);
			return -1;
		}
		off += (size_t)w;
	}
	free(buf);
	return 0;
}

int
gb__jobs_output_close(struct runner *rn)
{
	int rc = 0;

	if (rn->out_fd <= STDERR_FILENO)
		return 0;
	/* EINVAL: a descriptor that cannot be synced (a pipe or a device given as --output) */
	if (fsync(rn->out_fd) != 0 && errno != EINVAL) {
		gb__log_warn("cannot flush results to \"%s\"", rn->o->output);
		rc = -1;
	}
	if (close(rn->out_fd) != 0 && rc == 0) {
		gb__log_warn("cannot close \"%s\"", rn->o->output);
		rc = -1;
	}
	rn->out_fd = -1;
	return rc;
}
