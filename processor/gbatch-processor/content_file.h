/*
 * content_file.h - bounded reads of the files gbatch-processor is given, and the MIME type
 * of a content file.
 */
#ifndef GBATCH_PROCESSOR_CONTENT_FILE_H
#define GBATCH_PROCESSOR_CONTENT_FILE_H

#include <stddef.h>

/* Reads a whole file of at most max bytes (NUL-terminated, *len without the NUL); NULL with
 * errno set (EFBIG when larger). The caller frees it. */
char *gb__read_file(const char *path, size_t max, size_t *len);
/* The MIME type to send a content file inline with, by extension; NULL for text. */
const char *gb__mime_for(const char *path);

#endif
