/*
 * stub_batch.c - the stand-in's Batch API: batchGenerateContent with inline requests or a JSONL
 * file of the Files API (stub_files.c), batches that are PENDING, then RUNNING, then done over
 * --batch-time, get, list, cancel, delete and the download of a file batch's responses, in the
 * shapes of the real API's recorded replies (tests/fixtures/gemini/batch-*). Every answer is the
 * one generateContent gives the same request (stub_gemini_generate), computed in input order
 * when the batch is created, so that a batch run and an interactive run agree. The faults are
 * per-request errors chosen by key, answers shaped by a --fault kind, batches that expire or
 * fail, and 503s. Every request is logged as a JSON line beside the rest of the stand-in's.
 */
#include "stub_batch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bsd/string.h>

#include "clock.h"
#include "parse.h"
#include "stub_batch_int.h"

#define DEFAULT_PAGE 50
#define MAX_PAGE 1000
#define MAX_BATCH_NS (48ull * 3600 * GB_NS_PER_SEC)
#define META_TYPE "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
#define OUTPUT_TYPE \
	"type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"

struct stub_batches stub_batch__state = { .batch_ns = GB_NS_PER_SEC, .partial_kind = "few" };
static struct stub_batches *const sb = &stub_batch__state;

void
stub_batch_init(FILE *log, pthread_mutex_t *lock, uint64_t *request_no)
{
	sb->log = log;
	sb->lock = lock;
	sb->request_no = request_no;
}

/* The N of KIND[:N], 1 when left out, added to *out. */
static int
parse_count(const char *arg, unsigned *out, char *err, size_t errlen)
{
	uint64_t n = 1;

	if (arg != NULL && gb__parse_uint(arg, 1, 1000, &n, err, errlen) != 0)
		return -1;
	*out += (unsigned)n;
	return 0;
}

static int
parse_fault(const char *spec, char *err, size_t errlen)
{
	char buf[64], *save = NULL, *kind, *a1, *a2;
	uint64_t pct;

	if (strlcpy(buf, spec, sizeof(buf)) >= sizeof(buf))
		goto bad;
	kind = strtok_r(buf, ":", &save);
	a1 = strtok_r(NULL, ":", &save);
	a2 = strtok_r(NULL, ":", &save);
	if (kind == NULL || strtok_r(NULL, ":", &save) != NULL)
		goto bad;
	if (strcmp(kind, "errors") == 0 || strcmp(kind, "partial") == 0) {
		if (a1 == NULL || gb__parse_uint(a1, 0, 100, &pct, err, errlen) != 0 ||
		    (a2 != NULL && kind[0] == 'e'))
			goto bad;
		if (kind[0] == 'p' && a2 != NULL && (!stub_gemini_answer_fault(a2) ||
		    strlcpy(sb->partial_kind, a2, sizeof(sb->partial_kind)) >= sizeof(sb->partial_kind)))
			goto bad;
		*(kind[0] == 'e' ? &sb->error_pct : &sb->partial_pct) = (unsigned)pct;
		if (sb->error_pct + sb->partial_pct > 100) {
			snprintf(err, errlen, "--batch-fault \"%s\": errors and partial add up to more "
			    "than 100%%", spec);
			return -1;
		}
		return 0;
	}
	if (a2 != NULL)
		goto bad;
	if (strcmp(kind, "expire") == 0)
		return parse_count(a1, &sb->expire, err, errlen);
	if (strcmp(kind, "fail") == 0)
		return parse_count(a1, &sb->fail, err, errlen);
	if (strcmp(kind, "create-503") == 0)
		return parse_count(a1, &sb->create_503, err, errlen);
	if (strcmp(kind, "create-lost") == 0)
		return parse_count(a1, &sb->create_lost, err, errlen);
	if (strcmp(kind, "get-503") == 0)
		return parse_count(a1, &sb->get_503, err, errlen);
bad:
	snprintf(err, errlen, "--batch-fault \"%.64s\": use errors:PCT, partial:PCT[:KIND] (KIND: "
	    "few, many, fenced, text, maxtokens, blocked, safety), expire[:N], fail[:N], "
	    "create-503[:N], create-lost[:N] or get-503[:N]", spec);
	return -1;
}

int
stub_batch_option(const char *name, const char *arg, char *err, size_t errlen)
{
	if (strcmp(name, "batch-time") != 0)
		return parse_fault(arg, err, errlen);
	if (gb__parse_duration(arg, &sb->batch_ns, err, errlen) != 0)
		return -1;
	if (sb->batch_ns > MAX_BATCH_NS) {
		snprintf(err, errlen, "--batch-time \"%s\" is over 48h (a real batch expires then)",
		    arg);
		return -1;
	}
	return 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool
stub_batch_claims(const char *url)
{
	return strcmp(url, "/v1beta/batches") == 0 || strncmp(url, "/v1beta/batches/", 16) == 0 ||
	    strncmp(url, "/download/v1beta/files/", 23) == 0 ||
	    (strncmp(url, "/v1beta/models/", 15) == 0 && ends_with(url, ":batchGenerateContent"));
}

static json_t *
error_json(int code, const char *status, const char *message)
{
	return json_pack("{s:{s:i, s:s, s:s, s:[]}}", "error", "code", code, "message", message,
	    "status", status, "details");
}

/* Sends text (freed here) with status. */
enum MHD_Result
stub_batch__respond(struct MHD_Connection *c, int status, char *text, const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (text == NULL && (text = strdup("{\"error\":{\"code\":500,\"message\":\"stand-in: no "
	    "memory\",\"status\":\"INTERNAL\"}}")) == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Writes r's log line and counts the request. Call locked. */
void
stub_batch__log(struct breq *r)
{
	json_t *line;
	char *s;

	(*sb->request_no)++;
	if (sb->log == NULL)
		return;
	line = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:i, s:b}", "n", (json_int_t)*sb->request_no,
	    "mono_ms", (json_int_t)(r->mono_ns / GB_NS_PER_MS),
	    "real_ms", (json_int_t)(r->real_ns / GB_NS_PER_MS), "method", r->method, "path", r->url,
	    "batch_op", r->op, "status", r->status, "key_ok", r->key_ok);
	if (r->extra != NULL)
		json_object_update(line, r->extra);
	if ((s = json_dumps(line, JSON_COMPACT)) != NULL) {
		fprintf(sb->log, "%s\n", s);
		fflush(sb->log);
	}
	free(s);
	json_decref(line);
}

enum MHD_Result
stub_batch__reply_locked(struct MHD_Connection *c, struct breq *r, char *text, const char *type)
{
	stub_batch__log(r);
	pthread_mutex_unlock(sb->lock);
	json_decref(r->extra);
	return stub_batch__respond(c, r->status, text, type);
}

/* Logs r and sends body (a new reference, dumped here). */
enum MHD_Result
stub_batch__finish(struct MHD_Connection *c, struct breq *r, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);

	json_decref(body);
	pthread_mutex_lock(sb->lock);
	return stub_batch__reply_locked(c, r, s, JSON_TYPE);
}

enum MHD_Result
stub_batch__fail(struct MHD_Connection *c, struct breq *r, int code, const char *status,
    const char *message)
{
	r->status = code;
	return stub_batch__finish(c, r, error_json(code, status, message));
}

static void
rfc3339(uint64_t real_ns, char *buf, size_t len)
{
	time_t s = (time_t)(real_ns / GB_NS_PER_SEC);
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%09" PRIu64 "Z", (uint64_t)(real_ns % GB_NS_PER_SEC));
}

/* How many of b's items are answered el ns after its creation, while it runs. */
static size_t
answered_at(const struct sbatch *b, uint64_t el)
{
	uint64_t run = sb->batch_ns / 4, span = sb->batch_ns - run;

	if (b->end != END_SUCCEEDED || el < run)
		return 0;
	if (span == 0 || el >= sb->batch_ns)
		return b->n;
	return (size_t)((double)b->n * (double)(el - run) / (double)span);
}

struct view
stub_batch__view(const struct sbatch *b, uint64_t now, bool at_create)
{
	static const char *const ends[] = { [END_SUCCEEDED] = ST_SUCCEEDED,
		[END_FAILED] = "BATCH_STATE_FAILED", [END_EXPIRED] = "BATCH_STATE_EXPIRED" };
	uint64_t el = now - b->created_mono, run = sb->batch_ns / 4;
	struct view v = { .state = ST_PENDING };

	if (at_create)
		return v;
	if (b->cancel_mono != 0) {
		el = b->cancel_mono - b->created_mono;
		v.state = "BATCH_STATE_CANCELLED";
		v.done = true;
		v.update_off = v.end_off = el;
		v.answered = el >= sb->batch_ns ? 0 : answered_at(b, el);
		return v;
	}
	if (el >= sb->batch_ns) {
		v.state = ends[b->end];
		v.done = true;
		v.update_off = v.end_off = sb->batch_ns;
		v.answered = b->end == END_SUCCEEDED ? b->n : 0;
	} else if (el >= run) {
		v.state = ST_RUNNING;
		v.update_off = run;
		v.answered = answered_at(b, el);
	}
	return v;
}

/* batchStats: the counts as int64 strings, zero counts left out as the API does. */
static json_t *
stats_json(const struct sbatch *b, const struct view *v)
{
	size_t failed = 0, counts[4];
	static const char *const names[] = { "requestCount", "successfulRequestCount",
		"failedRequestCount", "pendingRequestCount" };
	json_t *o = json_object();
	char n[24];

	for (size_t i = 0; i < v->answered; i++)
		failed += b->failed[i];
	counts[0] = b->n;
	counts[1] = v->answered - failed;
	counts[2] = failed;
	counts[3] = b->n - v->answered;
	for (size_t i = 0; i < 4; i++) {
		if (counts[i] == 0)
			continue;
		snprintf(n, sizeof(n), "%zu", counts[i]);
		json_object_set_new(o, names[i], json_string(n));
	}
	return o;
}

/* GenerateContentBatchOutput without its @type. */
static json_t *
output_json(const struct sbatch *b)
{
	if (b->file_name == NULL)
		return json_pack("{s:{s:O}}", "inlinedResponses", "inlinedResponses", b->items);
	return json_pack("{s:s+}", "responsesFile", "files/batch-", b->id);
}

static json_t *
end_error(const struct sbatch *b)
{
	if (b->cancel_mono != 0)
		return json_pack("{s:i, s:s}", "code", 1, "message", "The batch was cancelled.");
	if (b->end == END_FAILED)
		return json_pack("{s:i, s:s}", "code", 13, "message",
		    "The batch failed (stand-in fault).");
	return json_pack("{s:i, s:s}", "code", 4, "message",
	    "The batch expired before it was done (stand-in fault).");
}

/* The Operation of b as v sees it. Call locked: it shares b's items. */
json_t *
stub_batch__operation(const struct sbatch *b, const struct view *v)
{
	char name[MAX_ID + 16], t[40];
	json_t *meta, *op, *output = NULL, *resp;

	snprintf(name, sizeof(name), "batches/%s", b->id);
	meta = json_pack("{s:s, s:s+, s:s}", "@type", META_TYPE, "model", "models/", b->model,
	    "displayName", b->display);
	if (b->file_name != NULL)
		json_object_set_new(meta, "inputConfig", json_pack("{s:s}", "fileName", b->file_name));
	if (v->done && strcmp(v->state, ST_SUCCEEDED) == 0) {
		output = output_json(b);
		json_object_set(meta, "output", output);
	}
	rfc3339(b->created_real, t, sizeof(t));
	json_object_set_new(meta, "createTime", json_string(t));
	if (v->done) {
		rfc3339(b->created_real + v->end_off, t, sizeof(t));
		json_object_set_new(meta, "endTime", json_string(t));
	}
	rfc3339(b->created_real + v->update_off, t, sizeof(t));
	json_object_set_new(meta, "updateTime", json_string(t));
	json_object_set_new(meta, "batchStats", stats_json(b, v));
	json_object_set_new(meta, "state", json_string(v->state));
	if (b->priority != NULL)
		json_object_set_new(meta, "priority", json_string(b->priority));
	json_object_set_new(meta, "name", json_string(name));
	op = json_pack("{s:s, s:o}", "name", name, "metadata", meta);
	if (!v->done)
		return op;
	json_object_set_new(op, "done", json_true());
	if (output == NULL) {
		json_object_set_new(op, "error", end_error(b));
		return op;
	}
	resp = json_pack("{s:s}", "@type", OUTPUT_TYPE);
	json_object_update(resp, output);
	json_decref(output);
	json_object_set_new(op, "response", resp);
	return op;
}

void
stub_batch__free(struct sbatch *b)
{
	if (b == NULL)
		return;
	free(b->display);
	free(b->file_name);
	free(b->priority);
	free(b->failed);
	json_decref(b->items);
	free(b);
}

/* The batch named id (the part after "batches/"), or NULL. Call locked. */
static struct sbatch *
find(const char *id, size_t *at)
{
	for (size_t i = 0; i < sb->n_batches; i++) {
		if (strcmp(sb->batches[i]->id, id) == 0) {
			if (at != NULL)
				*at = i;
			return sb->batches[i];
		}
	}
	return NULL;
}

/* GET /v1beta/batches?pageSize=N&pageToken=T: the operations, newest first. */
static enum MHD_Result
batch_list(struct MHD_Connection *c, struct breq *r)
{
	const char *size = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pageSize");
	const char *token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pageToken");
	uint64_t page = DEFAULT_PAGE, from = 0, now = gb__clock_mono_ns();
	char err[128], next[32];
	json_t *ops, *body;
	size_t i;
	char *s;

	if (size != NULL && *size != '\0' &&
	    gb__parse_uint(size, 0, INT32_MAX, &page, err, sizeof(err)) != 0)
		return stub_batch__fail(c, r, 400, "INVALID_ARGUMENT", "Invalid value at 'page_size'.");
	page = page == 0 ? DEFAULT_PAGE : page > MAX_PAGE ? MAX_PAGE : page;
	pthread_mutex_lock(sb->lock);
	if (token != NULL && *token != '\0' && (strncmp(token, "stub-page-", 10) != 0 ||
	    gb__parse_uint(token + 10, 1, sb->n_batches, &from, err, sizeof(err)) != 0)) {
		pthread_mutex_unlock(sb->lock);
		return stub_batch__fail(c, r, 400, "INVALID_ARGUMENT", "Invalid page token.");
	}
	ops = json_array();
	for (i = (size_t)from; i < sb->n_batches && i < from + page; i++) {
		const struct sbatch *b = sb->batches[sb->n_batches - 1 - i];
		struct view v = stub_batch__view(b, now, false);
		json_array_append_new(ops, stub_batch__operation(b, &v));
	}
	body = json_pack("{s:o}", "operations", ops);
	if (i < sb->n_batches) {
		snprintf(next, sizeof(next), "stub-page-%zu", i);
		json_object_set_new(body, "nextPageToken", json_string(next));
	}
	r->status = 200;
	r->extra = json_pack("{s:I, s:I}", "operations", (json_int_t)json_array_size(ops),
	    "page_size", (json_int_t)page);
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return stub_batch__reply_locked(c, r, s, JSON_TYPE);
}

/* GET /v1beta/batches/ID. */
static enum MHD_Result
batch_get(struct MHD_Connection *c, struct breq *r, const char *id)
{
	struct sbatch *b;
	struct view v;
	json_t *op;
	char *s;

	pthread_mutex_lock(sb->lock);
	if (sb->get_503 > 0) {
		sb->get_503--;
		pthread_mutex_unlock(sb->lock);
		return stub_batch__fail(c, r, 503, "UNAVAILABLE", "The service is currently unavailable.");
	}
	if ((b = find(id, NULL)) == NULL) {
		pthread_mutex_unlock(sb->lock);
		return stub_batch__fail(c, r, 404, "NOT_FOUND", "Requested entity was not found.");
	}
	v = stub_batch__view(b, gb__clock_mono_ns(), false);
	op = stub_batch__operation(b, &v);
	s = json_dumps(op, JSON_COMPACT);
	json_decref(op);
	r->status = 200;
	r->extra = json_pack("{s:s+, s:s, s:b}", "batch", "batches/", b->id, "state", v.state,
	    "done", v.done);
	return stub_batch__reply_locked(c, r, s, JSON_TYPE);
}

/* POST /v1beta/batches/ID:cancel (cancelled at once) or DELETE /v1beta/batches/ID. */
static enum MHD_Result
batch_end(struct MHD_Connection *c, struct breq *r, const char *id, bool cancel)
{
	uint64_t now = gb__clock_mono_ns();
	struct sbatch *b;
	struct view v;
	size_t at = 0;

	pthread_mutex_lock(sb->lock);
	if ((b = find(id, &at)) == NULL) {
		pthread_mutex_unlock(sb->lock);
		return stub_batch__fail(c, r, 404, "NOT_FOUND", "Requested entity was not found.");
	}
	v = stub_batch__view(b, now, false);
	r->extra = json_pack("{s:s+, s:s}", "batch", "batches/", b->id, "state", v.state);
	if (cancel && v.done && b->cancel_mono == 0) {
		pthread_mutex_unlock(sb->lock);
		json_decref(r->extra);
		r->extra = NULL;
		return stub_batch__fail(c, r, 400, "FAILED_PRECONDITION",
		    "The batch is already done and cannot be cancelled.");
	}
	if (cancel && b->cancel_mono == 0) {
		b->cancel_mono = now;
	} else if (!cancel) {
		stub_batch__free(b);
		memmove(&sb->batches[at], &sb->batches[at + 1], (sb->n_batches - at - 1) *
		    sizeof(sb->batches[0]));
		sb->n_batches--;
	}
	pthread_mutex_unlock(sb->lock);
	r->status = 200;
	return stub_batch__finish(c, r, json_object());
}

/* GET /download/v1beta/files/batch-ID:download?alt=media: the responses, one JSON a line. */
static enum MHD_Result
batch_download(struct MHD_Connection *c, struct breq *r, const char *name)
{
	const char *alt = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "alt");
	char id[MAX_ID];
	const char *colon = strchr(name, ':');
	struct sbatch *b = NULL;
	struct view v;
	size_t len = 0, cap = 1 << 16;
	char *out, *line;

	if (alt == NULL || strcmp(alt, "media") != 0)
		return stub_batch__fail(c, r, 400, "INVALID_ARGUMENT", "Only alt=media is served here.");
	pthread_mutex_lock(sb->lock);
	if (strncmp(name, "batch-", 6) == 0 && colon != NULL && strcmp(colon, ":download") == 0 &&
	    (size_t)(colon - name - 6) < sizeof(id)) {
		memcpy(id, name + 6, (size_t)(colon - name - 6));
		id[colon - name - 6] = '\0';
		b = find(id, NULL);
	}
	if (b != NULL)
		v = stub_batch__view(b, gb__clock_mono_ns(), false);
	if (b == NULL || b->file_name == NULL || strcmp(v.state, ST_SUCCEEDED) != 0 ||
	    (out = malloc(cap)) == NULL) {
		pthread_mutex_unlock(sb->lock);
		return stub_batch__fail(c, r, 404, "NOT_FOUND", "Requested entity was not found.");
	}
	for (size_t i = 0; i < b->n; i++) {
		size_t n;
		if ((line = json_dumps(json_array_get(b->items, i), JSON_COMPACT)) == NULL)
			continue;
		n = strlen(line);
		while (len + n + 2 > cap) {
			char *bigger = realloc(out, cap * 2);
			if (bigger == NULL)
				break;
			out = bigger;
			cap *= 2;
		}
		if (len + n + 2 <= cap) {
			memcpy(out + len, line, n);
			len += n;
			out[len++] = '\n';
		}
		free(line);
	}
	out[len] = '\0';
	r->status = 200;
	r->extra = json_pack("{s:s+, s:I}", "batch", "batches/", b->id, "bytes", (json_int_t)len);
	return stub_batch__reply_locked(c, r, out, "application/jsonl");
}

static const char *
op_of(const char *url, const char *method)
{
	if (strncmp(url, "/v1beta/models/", 15) == 0)
		return "create";
	if (strncmp(url, "/download/", 10) == 0)
		return "download";
	if (strcmp(url, "/v1beta/batches") == 0)
		return "list";
	if (ends_with(url, ":cancel"))
		return "cancel";
	return strcmp(method, "DELETE") == 0 ? "delete" : "get";
}

/* Takes the id of "/v1beta/batches/ID[:cancel]": lowercase letters, digits and '-'. */
static bool
batch_id(const char *url, char *id, bool *cancel)
{
	const char *p = url + 16;
	size_t n = strcspn(p, ":");

	*cancel = strcmp(p + n, ":cancel") == 0;
	if (n == 0 || n >= MAX_ID || (p[n] != '\0' && !*cancel) ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return false;
	memcpy(id, p, n);
	id[n] = '\0';
	return true;
}

enum MHD_Result
stub_batch_handle(struct MHD_Connection *c, const char *url, const char *method,
    const char *body, size_t len, bool too_big)
{
	struct breq r = { .method = method, .url = url, .op = op_of(url, method),
		.mono_ns = gb__clock_mono_ns(), .real_ns = gb__clock_real_ns() };
	json_t *refused = stub_gemini_key_check(c, &r.status, &r.key_ok);
	char id[MAX_ID];
	bool cancel;

	if (refused != NULL)
		return stub_batch__finish(c, &r, refused);
	if (strcmp(r.op, "create") == 0 && strcmp(method, "POST") == 0)
		return stub_batch__create(c, &r, url, body, len, too_big);
	if (strcmp(r.op, "download") == 0 && strcmp(method, "GET") == 0)
		return batch_download(c, &r, url + 23);
	if (strcmp(r.op, "list") == 0 && strcmp(method, "GET") == 0)
		return batch_list(c, &r);
	if (strncmp(url, "/v1beta/batches/", 16) == 0 && batch_id(url, id, &cancel)) {
		if (cancel && strcmp(method, "POST") == 0)
			return batch_end(c, &r, id, true);
		if (!cancel && strcmp(method, "DELETE") == 0)
			return batch_end(c, &r, id, false);
		if (!cancel && strcmp(method, "GET") == 0)
			return batch_get(c, &r, id);
	}
	return stub_batch__fail(c, &r, 404, "NOT_FOUND", "Method not found.");
}
