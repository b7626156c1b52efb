/*
 * log.h - the tiny logging layer shared by every gbatch program and libgbatch.
 * Messages go to stderr as "prog: level: text"; the level comes from GBATCH_LOG_LEVEL
 * (debug, info, warn, error, off; default info). The _warn variants append strerror(errno).
 */
#ifndef GBATCH_COMMON_LOG_H
#define GBATCH_COMMON_LOG_H

#include <stdarg.h>

enum gb_log_level {
	GB_LOG_DEBUG = 0,
	GB_LOG_INFO = 1,
	GB_LOG_WARN = 2,
	GB_LOG_ERROR = 3,
	GB_LOG_OFF = 4,
};

#define GB_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Makes sure descriptors 0, 1 and 2 are open, opening /dev/null on any that is closed, so
 * that nothing the program opens later becomes its stdin, stdout or stderr (exits 1 when
 * /dev/null cannot be opened). gb__log_init calls it first. */
void gb__stdio_ensure(void);
/* Sets the program name shown before every message (not copied: pass a literal or argv[0])
 * after gb__stdio_ensure, and reads GBATCH_LOG_LEVEL; an unknown level is a usage error: it says so and exits 2.
 * Programs call it; library code that logs without it warns once about an unknown level
 * and keeps the default. */
void gb__log_init(const char *progname);
/* Overrides the level read from the environment. */
void gb__log_set_level(enum gb_log_level level);
enum gb_log_level gb__log_get_level(void);
/* Parses "debug", "info", "warn", "error" or "off"; returns -1 for anything else. */
int gb__log_parse_level(const char *text, enum gb_log_level *out);

void gb__log_debug(const char *fmt, ...) GB_PRINTF(1, 2);
void gb__log_info(const char *fmt, ...) GB_PRINTF(1, 2);
/* gb__log_warn appends ": strerror(errno)"; gb__log_warnx does not. */
void gb__log_warn(const char *fmt, ...) GB_PRINTF(1, 2);
void gb__log_warnx(const char *fmt, ...) GB_PRINTF(1, 2);
/* Log at error level (always shown unless the level is off) and exit(1). */
void gb__fatal(const char *fmt, ...) GB_PRINTF(1, 2) __attribute__((noreturn));
void gb__fatalx(const char *fmt, ...) GB_PRINTF(1, 2) __attribute__((noreturn));
/* A usage error of a program: prints "prog: message" and "Try 'prog --help'." on stderr,
 * whatever the level, and exits 2. The message should name the bad value. */
void gb__usage_error(const char *fmt, ...) GB_PRINTF(1, 2) __attribute__((noreturn));

#endif
