/*
 * stub_files.h - the stand-in's Files API (stub_files.c), hooked into gbatch-stub-gemini's
 * request handler: every request under /upload/v1beta/files or /v1beta/files goes here.
 */
#ifndef GBATCH_TESTS_STUB_FILES_H
#define GBATCH_TESTS_STUB_FILES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <microhttpd.h>

/* Shares the stand-in's log, key, lock and request counter. Call once the options are read. */
void stub_files_init(FILE *log, const char *key, pthread_mutex_t *lock, uint64_t *request_no);
/* --files-processing N or --files-fault SPEC (name without the dashes). 0, or -1 with err. */
int stub_files_option(const char *name, const char *arg, char *err, size_t errlen);
/* Whether url is the Files API's. */
bool stub_files_claims(const char *url);
/* MHD's access handler for those URLs; *state is the request's (NULL at first). */
enum MHD_Result stub_files_handle(struct MHD_Connection *c, const char *url, const char *method,
    const char *upload, size_t *upload_size, void **state);
/* Frees a request's state. */
void stub_files_done(void *state);
/* Whether a generateContent part's fileData names an ACTIVE file that was not deleted. */
bool stub_files_part_ok(const json_t *file_data);
/* A copy of the bytes of the uploaded file name ("files/ID"), NUL-terminated, in *data (the
 * caller frees it) and *len: 0; -1 when no finalized file of that name is there (deleted,
 * FAILED, never finalized), -2 when its bytes were not kept (a file over 128 MiB, or over the
 * 512 MiB kept in all) or no memory. Takes the stand-in's lock: call it unlocked. */
int stub_files_content(const char *name, char **data, size_t *len);

#endif
