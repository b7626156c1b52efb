/*
 * jobs_batch_input.c - the input of a --batch-api batch: the batched request of every job
 * still to do, built exactly as the interactive run would send it, kept inline while the
 * whole stays under the API's inline limit, else written as JSON lines ({"key", "request"})
 * to a temporary file that goes up through the Files API.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "batch_state.h"
#include "gemini_batch.h"
#include "jobs_internal.h"
#include "log.h"

/* Where the requests go: a JSON array while they fit inline, else a temporary file. */
struct sink {
	json_t *inline_reqs;
	FILE *file;
	uint64_t bytes;
};

/* One line of the input file: {"key": KEY, "request": REQ}. */
static int
write_line(FILE *f, const json_t *key, const json_t *req)
{
	json_t *line = json_pack("{s:O, s:O}", "key", key, "request", req);
	int rc = line != NULL ? json_dumpf(line, f, JSON_COMPACT) : -1;

	json_decref(line);
	return rc != 0 || fputc('\n', f) == EOF ? -1 : 0;
}

/* Moves what is in the array into the file: the whole no longer fits inline. */
static int
sink_to_file(struct sink *k)
{
	json_t *e;
	size_t i;

	if ((k->file = tmpfile()) == NULL)
		return -1;
	json_array_foreach(k->inline_reqs, i, e)
		if (write_line(k->file, json_object_get(json_object_get(e, "metadata"), "key"),
		    json_object_get(e, "request")) != 0)
			return -1;
	json_array_clear(k->inline_reqs);
	return 0;
}

/* Adds one job's request (a reference taken) under key. */
static int
sink_add(struct sink *k, const char *key, json_t *req, char *err, size_t errlen)
{
	size_t n = json_dumpb(req, NULL, 0, JSON_COMPACT);
	json_t *kv = json_string(key);
	int rc;

	k->bytes += n + strlen(key) + 48;
	if (n == 0 || kv == NULL) {
		rc = -1;
		snprintf(err, errlen, "out of memory building the batch");
	} else if (k->file == NULL && k->bytes > GB__BATCH_INLINE_MAX - 4096 &&
	    sink_to_file(k) != 0) {
		rc = -1;
		snprintf(err, errlen, "cannot write the batch's input file: %s", strerror(errno));
	} else if (k->file != NULL) {
		if ((rc = write_line(k->file, kv, req)) != 0)
			snprintf(err, errlen, "cannot write the batch's input file: %s", strerror(errno));
	} else if ((rc = json_array_append_new(k->inline_reqs, json_pack("{s:O, s:{s:O}}",
	    "request", req, "metadata", "key", kv))) != 0) {
		snprintf(err, errlen, "out of memory building the batch");
	}
	json_decref(kv);
	json_decref(req);
	return rc;
}

/* Puts the batched request of every job still to do into k, its key into st.jobs. A job
 * that cannot start or whose request cannot be built is written as failed, as --jobs would.
 * Returns 0, or -1 with err set (the run cannot go on). */
static int
collect(struct runner *rn, struct gb_batch_state *st, struct sink *k, char *err, size_t errlen)
{
	gb_gemini_request rq;
	const char *kind;

	rn->submitting = 1;
	for (size_t i = 0; i < rn->n_jobs && !rn->stop_now; i++) {
		struct job *j = &rn->jobs[i];
		struct slot s;
		json_t *req;
		if (gb__jobs_done(rn, j))
			continue;
		gb__jobs_slot_start(rn, &s, j);
		if (s.job == NULL)
			continue;
		if (!gb__qrun_next(s.q, &rq, &kind) || (req = gb__gemini_request_json(&rq)) == NULL) {
			gb__jobs_slot_fail(rn, &s, "the request cannot be built (a text that is not "
			    "UTF-8, or out of memory)");
			continue;
		}
		gb__jobs_slot_clear(&s);
		if (sink_add(k, j->key, req, err, errlen) != 0 ||
		    json_array_append_new(st->jobs, json_string(j->key)) != 0) {
			rn->submitting = 0;
			return -1;
		}
	}
	rn->submitting = 0;
	if (rn->stop_now) {
		snprintf(err, errlen, "the batch is not submitted: a result could not be written");
		return -1;
	}
	if (k->bytes > GB__FILES_MAX_BYTES) {
		snprintf(err, errlen, "the batch's requests are %" PRIu64 " bytes, more than the "
		    "Files API takes (2 GiB): run the jobs in parts (--shard), or send large content "
		    "with --upload or --cache", k->bytes);
		return -1;
	}
	return 0;
}

/* The names of the content files and caches the requests point at, for whoever ends the
 * batch (this run, or one with --resume) to delete. */
static void
note_resources(struct runner *rn, struct gb_batch_state *st)
{
	for (size_t i = 0; i < rn->uploads.n; i++)
		if (rn->uploads.v[i]->error == NULL)
			json_array_append_new(st->files, json_string(rn->uploads.v[i]->file.name));
	for (size_t i = 0; i < rn->n_caches; i++)
		if (rn->caches[i].name != NULL)
			json_array_append_new(st->caches, json_string(rn->caches[i].name));
}

/* Uploads the input file as JSON lines and waits until the API has it. */
static int
upload_input(struct runner *rn, struct gb_batch_state *st, FILE *f, char *err, size_t errlen)
{
	gb_files_source src = { fileno(f), NULL, 0, "application/jsonl", st->display_name };
	gb_gemini_result res = { 0 };
	gb_gemini_file file;
	long len;

	if (fflush(f) != 0 || (len = ftell(f)) < 0) {
		snprintf(err, errlen, "cannot write the batch's input file: %s", strerror(errno));
		return -1;
	}
	src.len = (uint64_t)len;
	if (gb__files_upload(rn->client, rn->tele, &src, &file, &res) == GB__GEMINI_OK)
		gb__files_wait_active(rn->client, rn->tele, &file, NULL, &res);
	if (res.status != GB__GEMINI_OK) {
		snprintf(err, errlen, "uploading the batch's input file failed: %s", res.message);
		rn->stop_now = gb__gemini_is_fatal(&res);
		gb__gemini_result_fini(&res);
		return -1;
	}
	strlcpy(st->input_file, file.name, sizeof(st->input_file));
	gb__log_info("the batch's %ld bytes of requests went up as %s", len, file.name);
	gb__gemini_result_fini(&res);
	return 0;
}

int
gb__jobs_batch_input(struct runner *rn, struct gb_batch_state *st, json_t **input,
    uint64_t *bytes, char *err, size_t errlen)
{
	struct sink k = { .inline_reqs = json_array() };
	int rc = -1;

	*input = NULL;
	if (k.inline_reqs == NULL || collect(rn, st, &k, err, errlen) != 0)
		goto out;
	*bytes = k.bytes;
	if (json_array_size(st->jobs) == 0) {
		rc = 1;
		goto out;
	}
	note_resources(rn, st);
	if (k.file != NULL && upload_input(rn, st, k.file, err, errlen) != 0)
		goto out;
	*input = k.file != NULL ? json_pack("{s:s}", "fileName", st->input_file) :
	    json_pack("{s:{s:O}}", "requests", "requests", k.inline_reqs);
	if (*input == NULL)
		snprintf(err, errlen, "out of memory building the batch");
	else
		rc = 0;
out:
	json_decref(k.inline_reqs);
	if (k.file != NULL)
		fclose(k.file);
	return rc;
}
