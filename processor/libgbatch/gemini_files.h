/*
 * gemini_files.h - the Files API of the Gemini client (internal, not a public API): content
 * too large to send inline is uploaded once with the resumable upload protocol, streamed from
 * its file, waited on while the API processes it, named in requests as fileData, and deleted.
 */
#ifndef GBATCH_LIBGBATCH_GEMINI_FILES_H
#define GBATCH_LIBGBATCH_GEMINI_FILES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <gbatch/telemetry.h>

#include "gemini_client.h"

/* The API takes files of at most 2 GiB. */
#define GB__FILES_MAX_BYTES (2ull << 30)

/* A file as the API describes it; every string bounded and checked. */
typedef struct gb_gemini_file {
	char name[64];       /* "files/abc-123" */
	char uri[512];       /* what fileData.fileUri names */
	char mime_type[128];
	char state[24];      /* PROCESSING, ACTIVE, FAILED ("" when not given) */
	int64_t size_bytes;  /* -1 when not given */
	char error[256];     /* error.message of a FAILED file */
} gb_gemini_file;

/* What to upload: len bytes of fd from offset 0 (read as they are sent, never all in
 * memory), or of data when fd is -1. */
typedef struct gb_files_source {
	int fd;
	const void *data;
	uint64_t len;
	const char *mime_type;    /* NULL: text/plain */
	const char *display_name; /* NULL: none */
} gb_files_source;

/* How long to wait for a PROCESSING file: polls after first_ns, doubling up to max_ns, until
 * deadline_ns has passed. Zero fields: 250 ms, 8 s, 10 min. */
typedef struct gb_files_wait {
	uint64_t first_ns, max_ns, deadline_ns;
} gb_files_wait;

/* Whether the header line (len bytes, as libcurl gives it, with its CRLF) is header name
 * (case-insensitive): 1 with its value, trimmed, in out (terminated); 0 when it is another
 * header; -1 when it is this one but its value is empty, longer than outlen - 1 or holds a
 * control character. */
int gb__files_header_value(const char *line, size_t len, const char *name, char *out,
    size_t outlen);
/* Reads a File object (or an answer {"file": File}) into f. Returns 0, or -1 with why in err
 * when a field is missing, of the wrong type or too long (name and uri are required). */
int gb__files_parse_file(const json_t *v, gb_gemini_file *f, char *err, size_t errlen);

/* Makes exchange k until it succeeds or the retry policy gives up, sleeping the backoff in
 * between; res counts every attempt (it is not reset). Returns res->status. */
int gb__files_exchange(gb_gemini *c, const gb_gemini_call *k, gb_gemini_result *res);
/* Uploads src with the resumable protocol (start, then upload+finalize; an upload cut short
 * by a retryable failure is queried and resumed where the server's count ends, or restarted
 * when the query fails), each step retried as gb__gemini_generate retries. Refuses more than
 * GB__FILES_MAX_BYTES before any request. Records the scope files.upload and the counters
 * files_uploaded and file_bytes_uploaded into t (NULL: none). Fills f, res (scrubbed) and
 * returns res->status. */
int gb__files_upload(gb_gemini *c, gb_tele *t, const gb_files_source *src, gb_gemini_file *f,
    gb_gemini_result *res);
/* Polls f (GET v1beta/NAME) while it is PROCESSING, as w says (NULL: the defaults), in the
 * scope files.wait_active. GB__GEMINI_OK once f is ACTIVE; GB__GEMINI_E_API when it FAILED
 * and GB__GEMINI_E_TIMEOUT past the deadline, the message naming the file either way. */
int gb__files_wait_active(gb_gemini *c, gb_tele *t, gb_gemini_file *f, const gb_files_wait *w,
    gb_gemini_result *res);
/* Deletes file name ("files/..."), with retries. Returns res->status. */
int gb__files_delete(gb_gemini *c, const char *name, gb_gemini_result *res);

#endif
