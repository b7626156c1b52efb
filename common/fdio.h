/*
 * fdio.h - writing to a file descriptor whatever the kernel makes of it: short writes are
 * carried on, EINTR is tried again.
 */
#ifndef GBATCH_COMMON_FDIO_H
#define GBATCH_COMMON_FDIO_H

#include <stddef.h>

/* Writes the n bytes of buf to fd. 0, or -1 with errno set (EIO when the kernel took none
 * and said nothing). */
int gb__write_all(int fd, const void *buf, size_t n);

#endif
