/*
 * fdio.c - see fdio.h.
 */
#include "fdio.h"

#include <errno.h>
#include <unistd.h>

int
gb__write_all(int fd, const void *buf, size_t n)
{
	const char *s = buf;

	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}
