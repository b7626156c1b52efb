/*
 * stub_batch_create.c - POST /v1beta/models/MODEL:batchGenerateContent for the stand-in: reads
 * the batch (displayName, priority and either inputConfig.requests.requests[] or
 * inputConfig.fileName, a JSONL file of {"key", "request"} lines kept by stub_files.c), checks
 * every length and type, answers every request in input order with what generateContent would
 * answer (stub_gemini_generate), applies the --batch-fault plan (per-request errors and shaped
 * answers chosen by key, a batch that will expire or fail) and keeps the batch.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "stub_batch_int.h"
#include "stub_files.h"

static struct stub_batches *const sb = &stub_batch__state;

/* What the body asks for. */
struct spec {
	const char *display;
	const json_t *requests; /* inline */
	const char *file_name;  /* or a file */
	char priority[24];      /* "" for 0 */
	json_t *work;           /* [{"request", "metadata" | "key"}], in input order */
	char msg[256];          /* why it is refused */
	int status;
};

/* obj's field under its JSON name or its proto name (the API takes both). */
static const json_t *
field(const json_t *obj, const char *camel, const char *snake)
{
	const json_t *v = json_object_get(obj, camel);

	return v != NULL ? v : json_object_get(obj, snake);
}

static int
refuse(struct spec *s, int status, const char *msg)
{
	s->status = status;
	strlcpy(s->msg, msg, sizeof(s->msg));
	return -1;
}

/* priority: an int64, as a JSON number or a string of digits. */
static int
read_priority(struct spec *s, const json_t *p)
{
	char *end = NULL;
	long long v = 0;

	if (p == NULL)
		return 0;
	if (json_is_integer(p)) {
		v = json_integer_value(p);
	} else if (json_is_string(p) && json_string_length(p) > 0 && json_string_length(p) < 21) {
		v = strtoll(json_string_value(p), &end, 10);
		if (*end != '\0')
			return refuse(s, 400, "Invalid value at 'batch.priority' (TYPE_INT64).");
	} else {
		return refuse(s, 400, "Invalid value at 'batch.priority' (TYPE_INT64).");
	}
	if (v != 0)
		snprintf(s->priority, sizeof(s->priority), "%lld", v);
	return 0;
}

static int
read_spec(struct spec *s, const json_t *batch)
{
	const json_t *dn = field(batch, "displayName", "display_name");
	const json_t *ic = field(batch, "inputConfig", "input_config");
	const json_t *reqs = json_object_get(field(ic, "requests", "requests"), "requests");
	const json_t *fname = field(ic, "fileName", "file_name");

	if (!json_is_string(dn) || json_string_length(dn) == 0)
		return refuse(s, 400, "batch.display_name is required.");
	if (json_string_length(dn) > MAX_DISPLAY || strlen(json_string_value(dn)) !=
	    json_string_length(dn))
		return refuse(s, 400, "batch.display_name holds a NUL or is over 512 bytes.");
	s->display = json_string_value(dn);
	if (!json_is_object(ic) || (reqs != NULL) == (fname != NULL))
		return refuse(s, 400, "batch.input_config needs one of requests.requests or "
		    "file_name.");
	if (fname != NULL && (!json_is_string(fname) || strncmp(json_string_value(fname),
	    "files/", 6) != 0 || json_string_length(fname) > 128))
		return refuse(s, 400, "batch.input_config.file_name must be \"files/ID\".");
	if (reqs != NULL && (!json_is_array(reqs) || json_array_size(reqs) == 0))
		return refuse(s, 400, "batch.input_config.requests.requests must be a non-empty "
		    "array.");
	if (json_array_size(reqs) > MAX_REQUESTS)
		return refuse(s, 400, "Too many requests in the batch (100000 at most here).");
	s->requests = reqs;
	s->file_name = json_string_value(fname);
	return read_priority(s, json_object_get(batch, "priority"));
}

/* The inline requests: each {"request": {...}, "metadata": {...}?}. */
static int
inline_work(struct spec *s)
{
	char msg[160];
	size_t i;
	const json_t *el;

	s->work = json_array();
	json_array_foreach(s->requests, i, el) {
		const json_t *req = json_object_get(el, "request"), *meta = json_object_get(el,
		    "metadata");
		if (!json_is_object(req) || (meta != NULL && !json_is_object(meta))) {
			snprintf(msg, sizeof(msg), "batch.input_config.requests.requests[%zu] needs a "
			    "request object (and an object metadata).", i);
			return refuse(s, 400, msg);
		}
		json_array_append_new(s->work, json_pack("{s:O, s:O*}", "request", req, "metadata",
		    meta));
	}
	return 0;
}

/* One line of the JSONL file: {"key": "...", "request": {...}}; blank lines are skipped. */
static int
file_line(struct spec *s, const char *p, size_t len, size_t no)
{
	char msg[160];
	json_t *o;
	const json_t *req, *key;
	size_t i;

	for (i = 0; i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'); i++)
		;
	if (i == len)
		return 0;
	o = json_loadb(p, len, 0, NULL);
	req = json_object_get(o, "request");
	key = json_object_get(o, "key");
	if (!json_is_object(req) || (key != NULL && !json_is_string(key)) ||
	    json_array_size(s->work) == MAX_REQUESTS) {
		json_decref(o);
		snprintf(msg, sizeof(msg), "Line %zu of %.64s is not {\"key\": \"...\", \"request\": "
		    "{...}} (or the file has over 100000 lines).", no, s->file_name);
		return refuse(s, 400, msg);
	}
	json_array_append_new(s->work, json_pack("{s:O, s:O*}", "request", req, "key", key));
	json_decref(o);
	return 0;
}

static int
file_work(struct spec *s)
{
	char *data, msg[192];
	size_t len, no = 0;
	int rc = stub_files_content(s->file_name, &data, &len);

	if (rc != 0) {
		snprintf(msg, sizeof(msg), rc == -1 ? "File %.128s not found." :
		    "File %.128s is over what the stand-in keeps (128 MiB).", s->file_name);
		return refuse(s, rc == -1 ? 404 : 400, msg);
	}
	s->work = json_array();
	for (const char *p = data, *end = data + len; p < end && rc == 0;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		rc = file_line(s, p, n, ++no);
		p += n + 1;
	}
	free(data);
	if (rc == 0 && json_array_size(s->work) == 0)
		return refuse(s, 400, "The input file holds no requests.");
	return rc;
}

static uint64_t
fnv1a(const char *t)
{
	uint64_t h = 1469598103934665603ull;

	for (; *t != '\0'; t++) {
		h ^= (unsigned char)*t;
		h *= 1099511628211ull;
	}
	return h;
}

struct rank {
	uint64_t h;
	size_t i;
};

static int
by_hash(const void *a, const void *b)
{
	const struct rank *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* The fault of each request: 'e' (per-request error), 'p' (shaped answer) or 0, for exactly
 * n * PCT / 100 (rounded down) of them each, those whose key hashes lowest. */
static char *
pick_faults(const json_t *work, bool file)
{
	size_t n = json_array_size(work), errors = n * sb->error_pct / 100;
	size_t partial = n * sb->partial_pct / 100;
	struct rank *r = calloc(n, sizeof(*r));
	char *kind = calloc(n + 1, 1), idx[24];

	if (r == NULL || kind == NULL) {
		free(r);
		free(kind);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *el = json_array_get(work, i);
		const char *key = json_string_value(file ? json_object_get(el, "key") :
		    json_object_get(json_object_get(el, "metadata"), "key"));
		snprintf(idx, sizeof(idx), "%zu", i);
		r[i].h = fnv1a(key != NULL ? key : idx);
		r[i].i = i;
	}
	qsort(r, n, sizeof(*r), by_hash);
	for (size_t i = 0; i < errors + partial && i < n; i++)
		kind[r[i].i] = i < errors ? 'e' : 'p';
	free(r);
	return kind;
}

/* The google.rpc.Code of an error reply's status. */
static int
rpc_code(const char *status)
{
	static const char *const names[] = { "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
		"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" };

	for (int i = 1; status != NULL && i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcmp(status, names[i]) == 0)
			return i;
	return 2;
}

static void
add_usage(json_t *sum, const json_t *usage)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)(uintptr_t)usage, k, v) {
		if (json_is_integer(v))
			json_object_set_new(sum, k, json_integer(json_integer_value(v) +
			    json_integer_value(json_object_get(sum, k))));
	}
}

/* Answers every request of s->work in order into b->items; the summed usage into usage. */
static int
answer_all(struct sbatch *b, const struct spec *s, json_t *usage, size_t *errors)
{
	bool file = s->file_name != NULL;
	char *kind = pick_faults(s->work, file);
	const json_t *el;
	size_t i;

	if (kind == NULL || (b->failed = calloc(b->n, sizeof(bool))) == NULL) {
		free(kind);
		return -1;
	}
	b->items = json_array();
	json_array_foreach(s->work, i, el) {
		int status = 200;
		json_t *body = NULL, *item, *err;
		if (kind[i] != 'e')
			body = stub_gemini_generate(b->model, json_object_get(el, "request"),
			    kind[i] == 'p' ? sb->partial_kind : NULL, &status);
		if (kind[i] == 'e' || status != 200) {
			err = json_object_get(body, "error");
			item = json_pack("{s:{s:i, s:s}}", "error", "code", kind[i] == 'e' ? 13 :
			    rpc_code(json_string_value(json_object_get(err, "status"))), "message",
			    kind[i] == 'e' ? "Internal error encountered (stand-in fault)." :
			    json_string_value(json_object_get(err, "message")) != NULL ?
			    json_string_value(json_object_get(err, "message")) : "Request failed.");
			json_decref(body);
			b->failed[i] = true;
			(*errors)++;
		} else {
			add_usage(usage, json_object_get(body, "usageMetadata"));
			item = json_pack("{s:o}", "response", body);
		}
		if (file && json_object_get(el, "key") != NULL)
			json_object_set(item, "key", json_object_get(el, "key"));
		else if (!file && json_object_get(el, "metadata") != NULL)
			json_object_set(item, "metadata", json_object_get(el, "metadata"));
		json_array_append_new(b->items, item);
	}
	free(kind);
	return 0;
}

/* Makes the batch s asks for: its answers, and what it will end as. */
static struct sbatch *
batch_new(const struct spec *s, const char *model, json_t *usage, size_t *errors)
{
	struct sbatch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	strlcpy(b->model, model, sizeof(b->model));
	b->n = json_array_size(s->work);
	if ((b->display = strdup(s->display)) == NULL ||
	    (s->file_name != NULL && (b->file_name = strdup(s->file_name)) == NULL) ||
	    (s->priority[0] != '\0' && (b->priority = strdup(s->priority)) == NULL) ||
	    answer_all(b, s, usage, errors) != 0) {
		stub_batch__free(b);
		return NULL;
	}
	return b;
}

/* Makes room for one more batch when MAX_BATCHES are kept: forgets the oldest done one. False
 * when all are still to do. Call locked. */
static bool
make_room(void)
{
	uint64_t now = gb__clock_mono_ns();
	size_t i;

	if (sb->n_batches < MAX_BATCHES)
		return true;
	for (i = 0; i < sb->n_batches && !stub_batch__view(sb->batches[i], now, false).done; i++)
		;
	if (i == sb->n_batches)
		return false;
	stub_batch__free(sb->batches[i]);
	memmove(&sb->batches[i], &sb->batches[i + 1], (sb->n_batches - i - 1) *
	    sizeof(sb->batches[0]));
	sb->n_batches--;
	return true;
}

/* Keeps b under a new name, with the end the fault plan gives it: 0 with the lock held (b can
 * be deleted as soon as it is let go), or -1 when MAX_BATCHES are kept and none is done. */
static int
keep(struct sbatch *b)
{
	uint32_t h = (uint32_t)fnv1a(b->display);

	pthread_mutex_lock(sb->lock);
	if (!make_room()) {
		pthread_mutex_unlock(sb->lock);
		return -1;
	}
	sb->created++;
	snprintf(b->id, sizeof(b->id), "stub%06zu%08" PRIx32, sb->created,
	    h ^ (uint32_t)(sb->created * 2654435761u));
	b->created_mono = gb__clock_mono_ns();
	b->created_real = gb__clock_real_ns();
	if (sb->expire > 0) {
		sb->expire--;
		b->end = END_EXPIRED;
	} else if (sb->fail > 0) {
		sb->fail--;
		b->end = END_FAILED;
	}
	sb->batches[sb->n_batches++] = b;
	return 0;
}

/* The model of "/v1beta/models/MODEL:batchGenerateContent"; false when it is no model name. */
static bool
model_of(const char *url, char *model, size_t size)
{
	const char *m = url + 15, *colon = strrchr(m, ':');
	size_t n = colon != NULL ? (size_t)(colon - m) : 0;

	if (n == 0 || n >= size || memchr(m, '/', n) != NULL)
		return false;
	memcpy(model, m, n);
	model[n] = '\0';
	return true;
}

static bool
take_create_503(void)
{
	bool take;

	pthread_mutex_lock(sb->lock);
	take = sb->create_503 > 0;
	if (take)
		sb->create_503--;
	pthread_mutex_unlock(sb->lock);
	return take;
}

enum MHD_Result
stub_batch__create(struct MHD_Connection *c, struct breq *r, const char *url, const char *body,
    size_t len, bool too_big)
{
	struct spec s = { .status = 200 };
	json_t *req = NULL, *usage, *op;
	struct sbatch *b;
	struct view v;
	size_t errors = 0;
	char model[128], *text;

	if (!model_of(url, model, sizeof(model)))
		return stub_batch__fail(c, r, 404, "NOT_FOUND", "Method not found.");
	if (too_big || len > INLINE_MAX)
		return stub_batch__fail(c, r, 400, "INVALID_ARGUMENT",
		    "Request payload size exceeds the limit: 20971520 bytes.");
	if (take_create_503())
		return stub_batch__fail(c, r, 503, "UNAVAILABLE",
		    "The service is currently unavailable.");
	req = json_loadb(body != NULL ? body : "", len, 0, NULL);
	if (!json_is_object(json_object_get(req, "batch")))
		refuse(&s, 400, "Invalid JSON payload received: a {\"batch\": {...}} object is needed.");
	else if (read_spec(&s, json_object_get(req, "batch")) == 0)
		(void)(s.file_name != NULL ? file_work(&s) : inline_work(&s));
	if (s.status != 200) {
		json_decref(s.work);
		json_decref(req);
		return stub_batch__fail(c, r, s.status, s.status == 404 ? "NOT_FOUND" :
		    "INVALID_ARGUMENT", s.msg);
	}
	usage = json_object();
	b = batch_new(&s, model, usage, &errors);
	json_decref(s.work);
	json_decref(req);
	if (b == NULL || keep(b) != 0) {
		bool full = b != NULL;
		stub_batch__free(b);
		json_decref(usage);
		return stub_batch__fail(c, r, 429, "RESOURCE_EXHAUSTED", full ?
		    "Too many batches still to do (100 at most here)." : "The stand-in is out of memory.");
	}
	r->status = 200;
	r->extra = json_pack("{s:s+, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "batch", "batches/",
	    b->id, "display_name", b->display, "model", model, "input", b->file_name != NULL ?
	    "file" : "inline", "requests", (json_int_t)b->n, "errors", (json_int_t)errors,
	    "partial", (json_int_t)(b->n * sb->partial_pct / 100), "usage", usage);
	json_object_set_new(r->extra, "state", json_string(ST_PENDING));
	if (sb->create_lost > 0) {
		/* The batch exists, but its creator never hears so. */
		sb->create_lost--;
		json_object_set_new(r->extra, "lost", json_true());
		pthread_mutex_unlock(sb->lock);
		return stub_batch__fail(c, r, 503, "UNAVAILABLE", "The service is currently "
		    "unavailable.");
	}
	/* Still under keep's lock: the reply shares the batch's answers with the kept batch. */
	v = stub_batch__view(b, 0, true);
	op = stub_batch__operation(b, &v);
	text = json_dumps(op, JSON_COMPACT);
	json_decref(op);
	return stub_batch__reply_locked(c, r, text, JSON_TYPE);
}
