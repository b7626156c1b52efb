/*
 * stub_files.c - the stand-in's Files API: the resumable upload protocol (start, upload and
 * finalize, query), files that stay PROCESSING for a number of polls, get and delete, and the
 * faults the client must survive (a FAILED file, a 503 in the middle of the bytes). The bytes
 * are counted and checksummed (Adler-32) as they arrive; those of a file of KEEP_MAX bytes at
 * most are kept too (while the kept total stays under KEEP_TOTAL), for the Batch API's
 * inputConfig.fileName (stub_batch.c). Every request is logged as a JSON line beside the rest
 * of the stand-in's.
 */
#include "stub_files.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "clock.h"
#include "parse.h"

#define MAX_FILES 256
#define ADLER_MOD 65521u
#define KEEP_MAX (128u << 20)
#define KEEP_TOTAL (512u << 20)

struct sfile {
	char id[24];
	char mime[128];
	char display[128];
	uint64_t declared, received;
	uint32_t adler_a, adler_b;
	bool finalized, deleted, failed;
	unsigned polls_left; /* GETs still answered PROCESSING */
	bool cut;            /* the 503 fault: the bytes past half of this request are dropped */
	char *data;          /* the bytes received, when kept (declared <= KEEP_MAX) */
	bool keep;
};

static struct {
	FILE *log;
	const char *key;
	pthread_mutex_t *lock;
	uint64_t *request_no;
	unsigned processing_polls;
	unsigned fail_files;  /* the next N files end FAILED */
	unsigned cut_uploads; /* the next N upload requests are cut halfway with a 503 */
	struct sfile files[MAX_FILES];
	size_t n_files, next_id;
	uint64_t kept; /* bytes reserved for kept files */
} sf = { .processing_polls = 1 };

/* One request in progress. */
struct sreq {
	struct sfile *f;   /* the upload session, for upload requests */
	uint64_t bytes;    /* taken from this request's body */
	uint64_t keep;     /* bytes of this request counted (all but after a cut) */
	bool offset_bad, too_big;
	char *body;        /* a small JSON body (start) */
	size_t len;
};

void
stub_files_init(FILE *log, const char *key, pthread_mutex_t *lock, uint64_t *request_no)
{
	sf.log = log;
	sf.key = key;
	sf.lock = lock;
	sf.request_no = request_no;
}

int
stub_files_option(const char *name, const char *arg, char *err, size_t errlen)
{
	uint64_t n;

	if (strcmp(name, "files-processing") == 0) {
		if (gb__parse_uint(arg, 0, 1000, &n, err, errlen) != 0)
			return -1;
		sf.processing_polls = (unsigned)n;
		return 0;
	}
	if (strncmp(arg, "failed", 6) == 0 || strncmp(arg, "upload-503", 10) == 0) {
		const char *colon = strchr(arg, ':');
		n = 1;
		if (colon != NULL && gb__parse_uint(colon + 1, 1, 1000, &n, err, errlen) != 0)
			return -1;
		if (arg[0] == 'f')
			sf.fail_files += (unsigned)n;
		else
			sf.cut_uploads += (unsigned)n;
		return 0;
	}
	snprintf(err, errlen, "unknown --files-fault \"%s\" (failed[:N] or upload-503[:N])", arg);
	return -1;
}

bool
stub_files_claims(const char *url)
{
	return strncmp(url, "/upload/v1beta/files", 20) == 0 || strncmp(url, "/v1beta/files", 13) == 0;
}

static struct sfile *
find(const char *id)
{
	for (size_t i = 0; id != NULL && i < sf.n_files; i++)
		if (strcmp(sf.files[i].id, id) == 0)
			return &sf.files[i];
	return NULL;
}

static json_t *
file_json(const struct sfile *f, const char *host)
{
	char size[24];
	const char *state = f->polls_left > 0 ? "PROCESSING" : f->failed ? "FAILED" : "ACTIVE";
	json_t *o;

	snprintf(size, sizeof(size), "%" PRIu64, f->received);
	o = json_pack("{s:s+, s:s, s:s, s:s, s:s, s:s+++}", "name", "files/", f->id, "displayName",
	    f->display, "mimeType", f->mime, "sizeBytes", size, "state", state, "uri", "http://",
	    host, "/v1beta/files/", f->id);
	if (f->polls_left == 0 && f->failed)
		json_object_set_new(o, "error", json_pack("{s:i, s:s}", "code", 400, "message",
		    "The file could not be processed (stand-in fault)."));
	return o;
}

bool
stub_files_part_ok(const json_t *file_data)
{
	const char *uri = json_string_value(json_object_get(file_data, "fileUri"));
	const char *id = uri != NULL ? strstr(uri, "/v1beta/files/") : NULL;
	struct sfile *f;
	bool ok;

	pthread_mutex_lock(sf.lock);
	f = id != NULL ? find(id + 14) : NULL;
	ok = f != NULL && f->finalized && !f->deleted && !f->failed && f->polls_left == 0;
	pthread_mutex_unlock(sf.lock);
	return ok;
}

static void
log_line(const char *method, const char *url, const char *command, int status, bool key_ok,
    const struct sfile *f, const struct sreq *r)
{
	json_t *line;
	char *s, sum[16];

	if (sf.log == NULL)
		return;
	line = json_pack("{s:I, s:I, s:s, s:s, s:s, s:i, s:b}", "n", (json_int_t)*sf.request_no,
	    "mono_ms", (json_int_t)(gb__clock_mono_ns() / GB_NS_PER_MS), "method", method, "path",
	    url, "command", command != NULL ? command : "", "status", status, "key_ok", key_ok);
	if (f != NULL) {
		snprintf(sum, sizeof(sum), "%08x", (f->adler_b << 16) | f->adler_a);
		json_object_set_new(line, "file", json_pack("s+", "files/", f->id));
		json_object_set_new(line, "declared", json_integer((json_int_t)f->declared));
		json_object_set_new(line, "size_received", json_integer((json_int_t)f->received));
		json_object_set_new(line, "adler32", json_string(sum));
		json_object_set_new(line, "mime_type", json_string(f->mime));
	}
	if (r != NULL)
		json_object_set_new(line, "bytes", json_integer((json_int_t)r->bytes));
	if ((s = json_dumps(line, JSON_COMPACT)) != NULL) {
		fprintf(sf.log, "%s\n", s);
		fflush(sf.log);
	}
	free(s);
	json_decref(line);
}

static enum MHD_Result
respond(struct MHD_Connection *c, int status, json_t *body, const char *const *headers)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *s;

	if (body == NULL)
		body = json_object();
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (s == NULL)
		s = strdup("{}");
	r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json; charset=UTF-8");
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
		MHD_add_response_header(r, headers[i], headers[i + 1]);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static json_t *
error_json(int code, const char *status, const char *message)
{
	return json_pack("{s:{s:i, s:s, s:s}}", "error", "code", code, "message", message, "status",
	    status);
}

/* Counts and checksums the bytes of an upload request as they come. */
static void
take_bytes(struct sreq *r, const char *data, size_t n)
{
	struct sfile *f = r->f;

	for (size_t i = 0; i < n; i++, r->bytes++) {
		if (r->bytes >= r->keep)
			continue;
		f->adler_a = (f->adler_a + (unsigned char)data[i]) % ADLER_MOD;
		f->adler_b = (f->adler_b + f->adler_a) % ADLER_MOD;
		if (f->keep && f->received < f->declared)
			f->data[f->received] = data[i];
		f->received++;
	}
}

/* POST /upload/v1beta/files, command start. */
static enum MHD_Result
upload_start(struct MHD_Connection *c, struct sreq *r, int *status, struct sfile **out)
{
	const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "X-Goog-Upload-Header-Content-Length");
	const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "X-Goog-Upload-Header-Content-Type");
	const char *proto = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Goog-Upload-Protocol");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	json_t *meta = json_loadb(r->body != NULL ? r->body : "", r->len, 0, NULL);
	const char *dn = json_string_value(json_object_get(json_object_get(meta, "file"),
	    "display_name"));
	char err[128], url[512];
	uint64_t n;
	struct sfile *f;

	if (proto == NULL || strcmp(proto, "resumable") != 0 || len == NULL || type == NULL ||
	    gb__parse_uint(len, 0, UINT64_MAX, &n, err, sizeof(err)) != 0 || dn == NULL ||
	    sf.n_files == MAX_FILES || host == NULL) {
		json_decref(meta);
		*status = 400;
		return respond(c, 400, error_json(400, "INVALID_ARGUMENT", "Bad upload start."), NULL);
	}
	f = &sf.files[sf.n_files++];
	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "stub-%zu", ++sf.next_id);
	snprintf(f->mime, sizeof(f->mime), "%s", type);
	snprintf(f->display, sizeof(f->display), "%s", dn);
	json_decref(meta);
	f->declared = n;
	f->adler_a = 1;
	if (n <= KEEP_MAX && sf.kept + n <= KEEP_TOTAL && (f->data = malloc(n + 1)) != NULL) {
		f->keep = true;
		sf.kept += n;
	}
	*out = f;
	snprintf(url, sizeof(url), "http://%s/upload/v1beta/files?upload_id=%s&upload_protocol="
	    "resumable", host, f->id);
	const char *headers[] = { "X-Goog-Upload-URL", url, "X-Goog-Upload-Status", "active",
		"X-Goog-Upload-Chunk-Granularity", "8388608", NULL };
	return respond(c, 200, NULL, headers);
}

/* The command on an upload session: upload, finalize (the bytes taken), or query. */
static enum MHD_Result
upload_command(struct MHD_Connection *c, struct sreq *r, const char *command, int *status)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	struct sfile *f = r->f;
	char got[24];

	snprintf(got, sizeof(got), "%" PRIu64, f->received);
	if (strcasecmp(command, "query") == 0) {
		const char *headers[] = { "X-Goog-Upload-Status", f->finalized ? "final" : "active",
			"X-Goog-Upload-Size-Received", got, NULL };
		return respond(c, 200, NULL, headers);
	}
	if (r->offset_bad || f->finalized) {
		*status = 400;
		return respond(c, 400, error_json(400, "INVALID_ARGUMENT",
		    "X-Goog-Upload-Offset is not where the upload is."), NULL);
	}
	if (r->keep < r->bytes) {
		*status = 503;
		return respond(c, 503, error_json(503, "UNAVAILABLE", "The upload was cut short "
		    "(stand-in fault)."), NULL);
	}
	if (f->received != f->declared) {
		*status = 400;
		return respond(c, 400, error_json(400, "INVALID_ARGUMENT",
		    "The upload is not the size its start declared."), NULL);
	}
	f->finalized = true;
	f->polls_left = sf.processing_polls;
	if (sf.fail_files > 0) {
		sf.fail_files--;
		f->failed = true;
	}
	const char *headers[] = { "X-Goog-Upload-Status", "final", NULL };
	return respond(c, 200, json_pack("{s:o}", "file", file_json(f, host)), headers);
}

/* Sets up an upload request's state when its headers are in. */
static void
upload_begin(struct MHD_Connection *c, struct sreq *r)
{
	const char *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "upload_id");
	const char *off = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Goog-Upload-Offset");
	const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	const char *command = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Goog-Upload-Command");
	char err[128];
	uint64_t o, n = 0;

	r->keep = UINT64_MAX;
	if ((r->f = find(id)) == NULL || command == NULL || strncasecmp(command, "upload", 6) != 0)
		return;
	if (off == NULL || gb__parse_uint(off, 0, UINT64_MAX, &o, err, sizeof(err)) != 0 ||
	    o != r->f->received)
		r->offset_bad = true;
	if (len != NULL)
		gb__parse_uint(len, 0, UINT64_MAX, &n, err, sizeof(err));
	if (sf.cut_uploads > 0 && n > 1) {
		sf.cut_uploads--;
		r->keep = n / 2;
	}
	if (r->offset_bad)
		r->keep = 0;
}

/* Frees a file's kept bytes. */
static void
forget_bytes(struct sfile *f)
{
	if (f->keep)
		sf.kept -= f->declared;
	free(f->data);
	f->data = NULL;
	f->keep = false;
}

int
stub_files_content(const char *name, char **data, size_t *len)
{
	struct sfile *f;
	int ret = 0;

	*data = NULL;
	*len = 0;
	pthread_mutex_lock(sf.lock);
	f = name != NULL && strncmp(name, "files/", 6) == 0 ? find(name + 6) : NULL;
	if (f == NULL || !f->finalized || f->deleted || f->failed)
		ret = -1;
	else if (!f->keep)
		ret = -2;
	else if ((*data = malloc(f->received + 1)) == NULL)
		ret = -2;
	if (ret == 0) {
		memcpy(*data, f->data, f->received);
		(*data)[f->received] = '\0';
		*len = f->received;
	}
	pthread_mutex_unlock(sf.lock);
	return ret;
}

static enum MHD_Result
serve_file(struct MHD_Connection *c, const char *url, const char *method, int *status,
    struct sfile **out)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	struct sfile *f = strncmp(url, "/v1beta/files/", 14) == 0 ? find(url + 14) : NULL;

	if (f == NULL || f->deleted || !f->finalized) {
		*status = 404;
		return respond(c, 404, error_json(404, "NOT_FOUND", "File not found."), NULL);
	}
	*out = f;
	if (strcmp(method, "DELETE") == 0) {
		f->deleted = true;
		forget_bytes(f);
		return respond(c, 200, json_object(), NULL);
	}
	if (strcmp(method, "GET") != 0) {
		*status = 405;
		return respond(c, 405, error_json(405, "INVALID_ARGUMENT", "Use GET or DELETE."), NULL);
	}
	json_t *body = file_json(f, host != NULL ? host : "127.0.0.1");
	if (f->polls_left > 0)
		f->polls_left--;
	return respond(c, 200, body, NULL);
}

enum MHD_Result
stub_files_handle(struct MHD_Connection *c, const char *url, const char *method,
    const char *upload, size_t *upload_size, void **state)
{
	struct sreq *r = *state;
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-goog-api-key");
	const char *command = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Goog-Upload-Command");
	bool key_ok = key != NULL && strcmp(key, sf.key) == 0;
	struct sfile *f = NULL;
	enum MHD_Result ret;
	int status = 200;

	pthread_mutex_lock(sf.lock);
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			pthread_mutex_unlock(sf.lock);
			return MHD_NO;
		}
		*state = r;
		if (strcmp(url, "/upload/v1beta/files") == 0 &&
		    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "upload_id") != NULL)
			upload_begin(c, r);
		pthread_mutex_unlock(sf.lock);
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (r->f != NULL && !r->offset_bad) {
			take_bytes(r, upload, *upload_size);
		} else if (!r->too_big && r->len + *upload_size <= 65536) {
			char *nb = realloc(r->body, r->len + *upload_size + 1);
			if (nb != NULL) {
				memcpy(nb + r->len, upload, *upload_size);
				r->body = nb;
				r->len += *upload_size;
				r->body[r->len] = '\0';
			}
		} else {
			r->too_big = true;
		}
		*upload_size = 0;
		pthread_mutex_unlock(sf.lock);
		return MHD_YES;
	}
	f = r->f;
	if (!key_ok) {
		status = key == NULL ? 401 : 403;
		ret = respond(c, status, error_json(status, key == NULL ? "UNAUTHENTICATED" :
		    "PERMISSION_DENIED", "API key missing or not valid."), NULL);
	} else if (strncmp(url, "/v1beta/files/", 14) == 0) {
		ret = serve_file(c, url, method, &status, &f);
	} else if (strcmp(method, "POST") != 0 || command == NULL) {
		status = 400;
		ret = respond(c, 400, error_json(400, "INVALID_ARGUMENT", "Not an upload."), NULL);
	} else if (strcasecmp(command, "start") == 0) {
		ret = upload_start(c, r, &status, &f);
	} else if (f == NULL) {
		status = 404;
		ret = respond(c, 404, error_json(404, "NOT_FOUND", "No such upload."), NULL);
	} else {
		ret = upload_command(c, r, command, &status);
	}
	(*sf.request_no)++;
	log_line(method, url, command, status, key_ok, f, f != NULL && r->f == f ? r : NULL);
	pthread_mutex_unlock(sf.lock);
	return ret;
}

void
stub_files_done(void *state)
{
	struct sreq *r = state;

	if (r != NULL)
		free(r->body);
	free(r);
}
