/* test_log.c - message format, level threshold, errno text and GBATCH_LOG_LEVEL. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "log.h"

static int last_status;

/* Runs fn in a child with stderr on a pipe and returns what it wrote (static buffer);
 * the child's exit status goes to last_status. */
static const char *
capture(void (*fn)(void))
{
	static char out[4096];
	int fds[2];
	pid_t pid;
	size_t len = 0;
	ssize_t n;
	int status;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		fn();
		_exit(0);
	}
	close(fds[1]);
	while (len < sizeof(out) - 1 && (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	last_status = WEXITSTATUS(status);
	return out;
}

static void
emit_levels(void)
{
	unsetenv("GBATCH_LOG_LEVEL");
	gb__log_init("/usr/bin/gbatch-test");
	gb__log_debug("hidden %d", 1);
	gb__log_info("shown %d", 2);
	errno = ENOENT;
	gb__log_warn("open %s", "x");
	gb__log_warnx("plain");
}

START_TEST(format_and_default_level)
{
	const char *out = capture(emit_levels);

	ck_assert_str_eq(out,
	    "gbatch-test: info: shown 2\n"
	    "gbatch-test: warn: open x: No such file or directory\n"
	    "gbatch-test: warn: plain\n");
}
END_TEST

static void
emit_with_env_warn(void)
{
	setenv("GBATCH_LOG_LEVEL", "warn", 1);
	gb__log_init("t");
	gb__log_info("hidden");
	gb__log_warnx("kept");
}

START_TEST(env_level)
{
	ck_assert_str_eq(capture(emit_with_env_warn), "t: warn: kept\n");
	ck_assert_int_eq(last_status, 0);
}
END_TEST

static void
emit_with_bad_env(void)
{
	setenv("GBATCH_LOG_LEVEL", "loud", 1);
	gb__log_init("t");
	gb__log_info("still info");
}

START_TEST(bad_env_level_named)
{
	ck_assert_str_eq(capture(emit_with_bad_env),
	    "t: GBATCH_LOG_LEVEL=\"loud\" is not a level: use debug, info, warn, error or off\n");
	ck_assert_int_eq(last_status, 2);
}
END_TEST

static void
emit_lazy_bad_env(void)
{
	setenv("GBATCH_LOG_LEVEL", "loud", 1);
	gb__log_info("still info");
}

/* Library code logging without gb__log_init never exits its caller. */
START_TEST(bad_env_level_in_a_library_warns)
{
	ck_assert_str_eq(capture(emit_lazy_bad_env),
	    "gbatch: warn: ignoring GBATCH_LOG_LEVEL=\"loud\": use debug, info, warn, error or off\n"
	    "gbatch: info: still info\n");
	ck_assert_int_eq(last_status, 0);
}
END_TEST

static void
emit_fatalx(void)
{
	gb__log_init("t");
	gb__log_set_level(GB_LOG_OFF);
	gb__log_warnx("hidden");
	gb__log_set_level(GB_LOG_ERROR);
	gb__fatalx("bad value \"%s\"", "q");
}

START_TEST(fatalx_exits_1)
{
	ck_assert_str_eq(capture(emit_fatalx), "t: error: bad value \"q\"\n");
	ck_assert_int_eq(last_status, 1);
}
END_TEST

static void
emit_long(void)
{
	char big[5000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	gb__log_init("t");
	gb__log_warnx("%s", big);
}

START_TEST(long_message_truncated_with_newline)
{
	const char *out = capture(emit_long);
	size_t len = strlen(out);

	ck_assert_uint_eq(len, 2047);
	ck_assert_int_eq(out[len - 1], '\n');
}
END_TEST

START_TEST(parse_level)
{
	enum gb_log_level l;

	ck_assert_int_eq(gb__log_parse_level("debug", &l), 0);
	ck_assert_int_eq(l, GB_LOG_DEBUG);
	ck_assert_int_eq(gb__log_parse_level("off", &l), 0);
	ck_assert_int_eq(l, GB_LOG_OFF);
	ck_assert_int_eq(gb__log_parse_level("DEBUG", &l), -1);
	ck_assert_int_eq(gb__log_parse_level("", &l), -1);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, format_and_default_level);
	tcase_add_test(tc, env_level);
	tcase_add_test(tc, bad_env_level_named);
	tcase_add_test(tc, bad_env_level_in_a_library_warns);
	tcase_add_test(tc, fatalx_exits_1);
	tcase_add_test(tc, long_message_truncated_with_newline);
	tcase_add_test(tc, parse_level);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = log_suite };
