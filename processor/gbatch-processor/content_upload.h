/*
 * content_upload.h - content too large to send inline (or every content, with --upload) goes
 * to the Files API: one upload per distinct content in a run, referenced by its URI, and the
 * run's files deleted at the end unless --keep-files.
 */
#ifndef GBATCH_PROCESSOR_CONTENT_UPLOAD_H
#define GBATCH_PROCESSOR_CONTENT_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gbatch/processor.h>

#include "gemini_files.h"

/* The files a run uploaded, one per distinct content (by gb__content_key); each stays where
 * it is until the end, so a job may point at its uri. */
struct gb_uploads {
	struct gb_upload {
		uint64_t key;
		gb_gemini_file file;
		char *error; /* why the upload or the processing failed; NULL when ACTIVE */
	} **v;
	size_t n;
	unsigned deleted, delete_failures;
};

/* The key of a content: its MIME type and bytes, hashed as the context caches hash them. */
uint64_t gb__content_key(const char *mime, const void *data, size_t len);
/* The same over len bytes of fd, read in pieces. 0, or -1 with errno set. */
int gb__content_key_fd(int fd, const char *mime, uint64_t len, uint64_t *key);

/* The ACTIVE file holding src (key: gb__content_key of it): uploaded and waited for now, or
 * the one uploaded earlier in the run. NULL with why (naming the file when there is one) in
 * err; a failure is remembered, so a content is uploaded once whatever happens. */
const gb_gemini_file *gb__uploads_get(struct gb_uploads *u, gb_gemini *c, gb_tele *t,
    const gb_files_source *src, uint64_t key, char *err, size_t errlen);
/* Deletes the run's files (unless keep: then they are listed) and frees them. A failed
 * deletion is a warning. */
void gb__uploads_finish(struct gb_uploads *u, gb_gemini *c, bool keep);

/* The content files of the one-content run: read into memory, or, above what is left of the
 * inline limit or with upload set, opened to be uploaded. */
struct gb_content_set {
	size_t n;
	gb_content *content;
	char **bufs;   /* what was read, per file (NULL for a file to upload) */
	int *fds;      /* a file to upload, else -1 */
	uint64_t *sizes;
	char *const *paths;
};

/* Loads the n files of paths (checked against root as every content file is). A file that
 * cannot be read, or is larger than the Files API takes, is a usage error (exit 2), so it
 * never costs a request. */
void gb__content_set_load(struct gb_content_set *cs, char *const *paths, size_t n,
    const char *root, bool upload);
/* Uploads the files left to upload and points their content at the files. 0, or -1 with err
 * naming the content file and why. */
int gb__content_set_upload(struct gb_content_set *cs, struct gb_uploads *u, gb_gemini *c,
    gb_tele *t, char *err, size_t errlen);
/* Frees what cs holds. */
void gb__content_set_fini(struct gb_content_set *cs);

#endif
