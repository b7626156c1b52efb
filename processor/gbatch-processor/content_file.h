/*
 * content_file.h - bounded reads of the files gbatch-processor is given (content files
 * checked: regular, not under /proc, /sys or /dev, inside --content-root), and the MIME type
 * of a content file.
 */
#ifndef GBATCH_PROCESSOR_CONTENT_FILE_H
#define GBATCH_PROCESSOR_CONTENT_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file of at most max bytes (NUL-terminated, *len without the NUL); NULL with
 * errno set (EFBIG when larger). The caller frees it. */
char *gb__read_file(const char *path, size_t max, size_t *len);
/* Reads a content file as gb__read_file does, after refusing anything but a regular file
 * (opened without blocking, so a FIFO never hangs), a path that resolves under /proc, /sys or
 * /dev, and, when root (an absolute resolved directory) is not NULL, one that resolves outside
 * root. NULL with why in err (not naming path: the caller does). */
char *gb__read_content_file(const char *path, const char *root, size_t max, size_t *len,
    char *err, size_t errlen);
/* Opens a content file after the checks of gb__read_content_file, for reading it as it is
 * sent: the descriptor (the caller closes it) with *size its size, or -1 with why in err. */
int gb__open_content_file(const char *path, const char *root, uint64_t *size, char *err,
    size_t errlen);
/* Reads fd to its end as gb__read_file does. */
char *gb__read_fd(int fd, size_t max, size_t *len);
/* The MIME type to send a content file inline with, by extension; NULL for text. */
const char *gb__mime_for(const char *path);

#endif
