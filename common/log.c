/*
 * log.c - stderr logging with a level threshold. Each message is formatted into one
 * buffer, its controls escaped, and written with a single write(2), so lines from threads
 * never interleave and never drive the terminal.
 */
#include "log.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_prog = "gbatch";
static _Atomic int log_level = GB_LOG_INFO;
static atomic_flag log_env_read = ATOMIC_FLAG_INIT;

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

int
gb__log_parse_level(const char *text, enum gb_log_level *out)
{
	for (int i = GB_LOG_DEBUG; i <= GB_LOG_OFF; i++) {
		if (strcmp(text, level_names[i]) == 0) {
			*out = (enum gb_log_level)i;
			return 0;
		}
	}
	if (strcmp(text, "warning") == 0) {
		*out = GB_LOG_WARN;
		return 0;
	}
	return -1;
}

static void
log_read_env(void)
{
	if (atomic_flag_test_and_set(&log_env_read))
		return;
	const char *env = getenv("GBATCH_LOG_LEVEL");
	enum gb_log_level lvl;
	if (env == NULL || *env == '\0')
		return;
	if (gb__log_parse_level(env, &lvl) == 0)
		atomic_store(&log_level, (int)lvl);
	else
		gb__log_warnx("ignoring GBATCH_LOG_LEVEL=\"%s\": use debug, info, warn, error or off", env);
}

void
gb__stdio_ensure(void)
{
	for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		int nfd;

		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* the lowest free descriptor: fd itself, as the ones below it are open */
		nfd = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
		if (nfd < 0)
			exit(1);
		if (nfd != fd) {
			dup2(nfd, fd);
			close(nfd);
		}
	}
}

void
gb__log_init(const char *progname)
{
	const char *env = getenv("GBATCH_LOG_LEVEL");
	enum gb_log_level lvl;

	gb__stdio_ensure();
	if (progname != NULL) {
		const char *slash = strrchr(progname, '/');
		log_prog = slash != NULL ? slash + 1 : progname;
	}
	/* a program refuses a bad level like any bad setting; the library only warns */
	if (env != NULL && *env != '\0' && gb__log_parse_level(env, &lvl) != 0) {
		dprintf(STDERR_FILENO, "%s: GBATCH_LOG_LEVEL=\"%.100s\" is not a level: use debug, "
		    "info, warn, error or off\n", log_prog, env);
		exit(2);
	}
	log_read_env();
}

void
gb__log_set_level(enum gb_log_level level)
{
	atomic_flag_test_and_set(&log_env_read);
	atomic_store(&log_level, (int)level);
}

enum gb_log_level
gb__log_get_level(void)
{
	log_read_env();
	return (enum gb_log_level)atomic_load(&log_level);
}

static void GB_PRINTF(3, 0)
log_emit(enum gb_log_level lvl, int errnum, const char *fmt, va_list ap)
{
	char buf[2048], msg[2048];
	int n;
	size_t len, mlen;

	if ((int)lvl < (int)gb__log_get_level())
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	mlen = n < 0 ? 0 : (size_t)n >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)n;
	if (errnum != 0 && mlen < sizeof(msg) - 1) {
		n = snprintf(msg + mlen, sizeof(msg) - mlen, ": %s", strerror(errnum));
		mlen += n < 0 ? 0 : (size_t)n >= sizeof(msg) - mlen ? sizeof(msg) - mlen - 1 : (size_t)n;
	}
	n = snprintf(buf, sizeof(buf), "%s: %s: ", log_prog, level_names[lvl]);
	len = n < 0 ? 0 : (size_t)n;
	/* one line whatever the message holds: controls (C1 included) and non-UTF-8 escaped */
	if (len < sizeof(buf) - 1)
		len += gb__text_escape(buf + len, sizeof(buf) - 1 - len, msg, mlen, 0);
	buf[len++] = '\n';
	/* One write per line; a short or failed write to stderr has nowhere to be reported. */
	ssize_t w = write(STDERR_FILENO, buf, len);
	(void)w;
}

#define LOG_BODY(lvl, errnum)                    \
	do {                                     \
		va_list ap;                      \
		va_start(ap, fmt);               \
		log_emit((lvl), (errnum), fmt, ap); \
		va_end(ap);                      \
	} while (0)

void
gb__log_debug(const char *fmt, ...)
{
	LOG_BODY(GB_LOG_DEBUG, 0);
}

void
gb__log_info(const char *fmt, ...)
{
	LOG_BODY(GB_LOG_INFO, 0);
}

void
gb__log_warn(const char *fmt, ...)
{
	int saved = errno;
	LOG_BODY(GB_LOG_WARN, saved);
	errno = saved;
}

void
gb__log_warnx(const char *fmt, ...)
{
	LOG_BODY(GB_LOG_WARN, 0);
}

void
gb__fatal(const char *fmt, ...)
{
	int saved = errno;
	LOG_BODY(GB_LOG_ERROR, saved);
	exit(1);
}

void
gb__fatalx(const char *fmt, ...)
{
	LOG_BODY(GB_LOG_ERROR, 0);
	exit(1);
}

void
gb__usage_error(const char *fmt, ...)
{
	char msg[1024], shown[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gb__text_escape(shown, sizeof(shown), msg, n < 0 ? 0 : (size_t)n >= sizeof(msg) ?
	    sizeof(msg) - 1 : (size_t)n, 0);
	dprintf(STDERR_FILENO, "%s: %s\nTry '%s --help'.\n", log_prog, shown, log_prog);
	exit(2);
}
