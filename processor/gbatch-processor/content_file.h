/*
 * content_file.h - bounded reads of the files gbatch-processor is given (content files
 * checked: regular, not under /proc, /sys or /dev, inside --content-root), and the MIME type
 * of a content file.
 */
#ifndef GBATCH_PROCESSOR_CONTENT_FILE_H
#define GBATCH_PROCESSOR_CONTENT_FILE_H

#include <stddef.h>

/* Reads a whole file of at most max bytes (NUL-terminated, *len without the NUL); NULL with
 * errno set (EFBIG when larger). The caller frees it. */
char *gb__read_file(const char *path, size_t max, size_t *len);
/* Reads a content file as gb__read_file does, after refusing anything but a regular file
 * (opened without blocking, so a FIFO never hangs), a path that resolves under /proc, /sys or
 * /dev, and, when root (an absolute resolved directory) is not NULL, one that resolves outside
 * root. NULL with why in err (not naming path: the caller does). */
char *gb__read_content_file(const char *path, const char *root, size_t max, size_t *len,
    char *err, size_t errlen);
/* The MIME type to send a content file inline with, by extension; NULL for text. */
const char *gb__mime_for(const char *path);

#endif
