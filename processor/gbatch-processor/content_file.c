/*
 * content_file.c - reading the files gbatch-processor is given (content, questions, schema,
 * jobs) into memory, bounded, and the MIME type a content file is sent inline with. Content
 * files are regular files only, never under /proc, /sys or /dev, and inside --content-root.
 */
#include "content_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* Reads fd to its end, at most max bytes (NUL-terminated). NULL with errno set. */
static char *
read_fd(int fd, size_t max, size_t *len)
{
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0;
	ssize_t r;

	do {
		if (n > max) {
			free(buf);
			errno = EFBIG;
			return NULL;
		}
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		n += (size_t)r;
	} while (r > 0);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

char *
gb__read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), saved;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = read_fd(fd, max, len);
	saved = errno;
	close(fd);
	errno = saved;
	return buf;
}

/* Whether path (absolute, resolved) is dir or below it. */
static int
is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 0 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Whether the resolved path real may be read: never under /proc, /sys or /dev, and inside
 * root when there is one. Returns 0, or -1 with why in err. */
static int
path_allowed(const char *real, const char *root, char *err, size_t errlen)
{
	static const char *const never[] = { "/proc", "/sys", "/dev" };

	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		if (is_under(real, never[i])) {
			snprintf(err, errlen, "refused: it is under %s (\"%s\")", never[i], real);
			return -1;
		}
	}
	if (root != NULL && !is_under(real, root)) {
		snprintf(err, errlen, "refused: \"%s\" is outside --content-root \"%s\"", real, root);
		return -1;
	}
	return 0;
}

/* The file fd actually is, checked again: a directory on the way may have been swapped for a
 * link between the check of its name and the open. Without /proc the first check stands. */
static int
opened_allowed(int fd, const char *root, char *err, size_t errlen)
{
	char link[64], real[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, real, sizeof(real) - 1)) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	real[n] = '\0';
	return path_allowed(real, root, err, errlen);
}

/* Opens a content file for reading after every check but the size. Returns the descriptor,
 * or -1 with why in err. */
static int
content_open(const char *path, const char *root, char *err, size_t errlen)
{
	char real[PATH_MAX];
	struct stat st;
	struct statfs sf;
	int fd;

	if (realpath(path, real) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (path_allowed(real, root, err, errlen) != 0)
		return -1;
	/* O_NONBLOCK: opening a FIFO never waits for a writer; O_NOFOLLOW: real has no links */
	if ((fd = open(real, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (opened_allowed(fd, root, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "refused: not a regular file");
		close(fd);
		return -1;
	}
	if (fstatfs(fd, &sf) == 0 && (sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC)) {
		snprintf(err, errlen, "refused: a file of /proc or /sys");
		close(fd);
		return -1;
	}
	return fd;
}

char *
gb__read_fd(int fd, size_t max, size_t *len)
{
	return read_fd(fd, max, len);
}

int
gb__open_content_file(const char *path, const char *root, uint64_t *size, char *err,
    size_t errlen)
{
	int fd = content_open(path, root, err, errlen);
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	if (fd >= 0)
		*size = (uint64_t)st.st_size;
	return fd;
}

char *
gb__read_content_file(const char *path, const char *root, size_t max, size_t *len, char *err,
    size_t errlen)
{
	int fd = content_open(path, root, err, errlen);
	char *buf;

	if (fd < 0)
		return NULL;
	if ((buf = read_fd(fd, max, len)) == NULL) {
		if (errno == EFBIG)
			snprintf(err, errlen, "larger than %zu MiB", max >> 20);
		else
			snprintf(err, errlen, "%s", strerror(errno));
	}
	close(fd);
	return buf;
}

const char *
gb__mime_for(const char *path)
{
	static const struct { const char *ext, *mime; } types[] = {
		{ ".pdf", "application/pdf" }, { ".png", "image/png" }, { ".jpg", "image/jpeg" },
		{ ".jpeg", "image/jpeg" }, { ".webp", "image/webp" }, { ".gif", "image/gif" },
		{ ".heic", "image/heic" }, { ".heif", "image/heif" },
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot, types[i].ext) == 0)
			return types[i].mime;
	return NULL;
}
