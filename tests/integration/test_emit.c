/* test_emit.c - gbatch-emit as a user runs it: the real binary (path in argv[1]) writes into
 * a ring this test reads as the consumer; kinds, metadata, --stdin, a missing ring with and
 * without --strict, and every kind of bad input (exit 2, message naming the bad text). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "record.h"
#include "ring.h"
#include "test_rings.h"

static const char *emit_path;
static char ring_name[64];
static gb_ring *consumer;
static char out_text[8192], err_text[8192];
static pid_t last_pid;

struct got {
	gb_record rec;
	char scope[GB_REC_MAX_SCOPE + 1];
	char meta[512]; /* "k=v,k=v" */
};
static struct got got[32];
static size_t n_got;

/* Rings are named "emit-test-<runner pid>-..." so the runner can remove them all at the end. */
static pid_t runner_pid;

/* Removes every ring of this run. */
static void
remove_run_rings(void)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "emit-test-%d-", (int)runner_pid);
	gb_test_remove_rings(prefix);
}

static void
handler(void *ctx, uint16_t type, const uint8_t *payload, size_t len)
{
	gb_rec_kv kv[GB_REC_MAX_META];
	struct got *g;
	size_t off = 0;

	(void)ctx;
	(void)type;
	ck_assert_uint_lt(n_got, 32);
	g = &got[n_got++];
	ck_assert_int_eq(gb__rec_decode(payload, len, &g->rec, kv), 0);
	snprintf(g->scope, sizeof(g->scope), "%.*s", (int)g->rec.scope_len, g->rec.scope);
	g->meta[0] = '\0';
	for (size_t i = 0; i < g->rec.n_meta; i++)
		off += (size_t)snprintf(g->meta + off, sizeof(g->meta) - off, "%s%.*s=%.*s",
		    i ? "," : "", (int)kv[i].key_len, kv[i].key, (int)kv[i].value_len, kv[i].value);
}

static size_t
drain(void)
{
	n_got = 0;
	while (gb__ring_read(consumer, handler, NULL, 100) > 0)
		;
	return n_got;
}

static void
setup(void)
{
	static int seq;
	char err[256];

	snprintf(ring_name, sizeof(ring_name), "emit-test-%d-%d-%d", (int)runner_pid,
	    (int)getpid(), seq++);
	ck_assert_msg(gb__ring_open_consumer(&consumer, ring_name, NULL, err, sizeof(err)) == GB_RING_OK,
	    "%s", err);
}

static void
teardown(void)
{
	char err[256];

	gb__ring_close(consumer);
	gb__ring_unlink(ring_name, err, sizeof(err));
}

static void
read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
}

/* Runs gbatch-emit with args (NULL-terminated, without argv[0]) and input on stdin (NULL: none);
 * GBATCH_RING is set to ring_env unless NULL. Returns the exit status; output in out/err_text. */
static int
run(const char *input, const char *ring_env, const char *const *args)
{
	int in[2], out[2], err[2], status;
	const char *argv[64] = { emit_path };
	size_t n = 1;

	for (; args[n - 1] != NULL; n++) {
		ck_assert_uint_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
		argv[n] = args[n - 1];
	}
	argv[n] = NULL;
	ck_assert(pipe(in) == 0 && pipe(out) == 0 && pipe(err) == 0);
	last_pid = fork();
	ck_assert_int_ge(last_pid, 0);
	if (last_pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(in[1]);
		close(out[0]);
		close(err[0]);
		if (ring_env != NULL)
			setenv("GBATCH_RING", ring_env, 1);
		else
			unsetenv("GBATCH_RING");
		unsetenv("GBATCH_LOG_LEVEL");
		execv(emit_path, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (input != NULL)
		ck_assert_int_eq(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
	close(in[1]);
	read_all(out[0], out_text, sizeof(out_text));
	read_all(err[0], err_text, sizeof(err_text));
	ck_assert_int_eq(waitpid(last_pid, &status, 0), last_pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

#define RUN(input, env, ...) run((input), (env), (const char *const[]){ __VA_ARGS__, NULL })

START_TEST(each_kind_with_metadata)
{
	ck_assert_int_eq(RUN(NULL, NULL, "--ring", ring_name, "count", "pipeline.files", "3",
	    "--meta", "stage=download", "--meta", "host=a=b"), 0);
	ck_assert_str_eq(err_text, "");
	ck_assert_uint_eq(drain(), 1);
	ck_assert_str_eq(got[0].scope, "pipeline.files");
	ck_assert_uint_eq(got[0].rec.kind, GB_REC_COUNTER);
	ck_assert_double_eq(got[0].rec.value, 3);
	ck_assert_str_eq(got[0].meta, "stage=download,host=a=b");
	ck_assert_uint_eq(got[0].rec.pid, (uint32_t)last_pid);
	ck_assert_uint_eq(got[0].rec.depth, 0);
	ck_assert_uint_eq(got[0].rec.parent_len, 0);

	ck_assert_int_eq(RUN(NULL, ring_name, "timing", "pipeline.download", "1.5"), 0);
	ck_assert_int_eq(RUN(NULL, ring_name, "gauge", "queue.depth", "-2"), 0);
	ck_assert_int_eq(RUN(NULL, ring_name, "metric", "ratio", "0.25e1"), 0);
	ck_assert_uint_eq(drain(), 3);
	ck_assert_uint_eq(got[0].rec.kind, GB_REC_TIMING);
	ck_assert_double_eq(got[0].rec.value, 1.5);
	ck_assert_uint_eq(got[1].rec.kind, GB_REC_GAUGE);
	ck_assert_double_eq(got[1].rec.value, -2);
	ck_assert_uint_eq(got[2].rec.kind, GB_REC_METRIC);
	ck_assert_double_eq(got[2].rec.value, 2.5);
}
END_TEST

START_TEST(records_from_stdin)
{
	ck_assert_int_eq(RUN("count a 1 --meta k=v\n\n# comment\n  gauge b 2  \ntiming c 0.5\n",
	    ring_name, "--stdin"), 0);
	ck_assert_str_eq(err_text, "");
	ck_assert_uint_eq(drain(), 3);
	ck_assert_str_eq(got[0].scope, "a");
	ck_assert_str_eq(got[0].meta, "k=v");
	ck_assert_str_eq(got[1].scope, "b");
	ck_assert_uint_eq(got[1].rec.kind, GB_REC_GAUGE);
	ck_assert_str_eq(got[2].scope, "c");
}
END_TEST

START_TEST(bad_stdin_lines_named_others_written)
{
	ck_assert_int_eq(RUN("count a 1\ncount b x1\ngauge c 2\nhisto d 1\n", ring_name, "--stdin"), 2);
	ck_assert_ptr_nonnull(strstr(err_text, "line 2: bad value \"x1\""));
	ck_assert_ptr_nonnull(strstr(err_text, "line 4: unknown kind \"histo\""));
	ck_assert_uint_eq(drain(), 2);
	ck_assert_str_eq(got[0].scope, "a");
	ck_assert_str_eq(got[1].scope, "c");
}
END_TEST

static void
assert_bad(const char *needle, const char *const *args)
{
	ck_assert_int_eq(run(NULL, ring_name, args), 2);
	ck_assert_msg(strstr(err_text, needle) != NULL, "stderr \"%s\" lacks \"%s\"", err_text, needle);
	ck_assert_uint_eq(drain(), 0);
}

#define BAD(needle, ...) assert_bad((needle), (const char *const[]){ __VA_ARGS__, NULL })

START_TEST(bad_input_exits_2_naming_it)
{
	BAD("unknown kind \"histogram\"", "histogram", "x", "1");
	BAD("bad value \"abc\"", "count", "x", "abc");
	BAD("bad value \"nan\"", "gauge", "x", "nan");
	BAD("bad value \"inf\"", "gauge", "x", "inf");
	BAD("bad value \"1e999\"", "gauge", "x", "1e999");
	BAD("bad value \"\"", "gauge", "x", "");
	BAD("bad value \"-1\": a timing cannot be negative", "timing", "x", "-1");
	BAD("bad --meta \"novalue\"", "count", "x", "1", "--meta", "novalue");
	BAD("bad --meta \"=v\"", "count", "x", "1", "--meta", "=v");
	BAD("--meta needs KEY=VALUE", "count", "x", "1", "--meta");
	BAD("empty NAME", "count", "", "1");
	BAD("expected KIND NAME VALUE, got 2", "count", "x");
	BAD("unexpected argument \"extra\"", "count", "x", "1", "extra");
	BAD("unknown option \"--bogus\"", "count", "x", "1", "--bogus");
	BAD("--stdin takes no record", "--stdin", "count", "x", "1");
	/* more pairs than one record holds would be lost: refused, naming the limit */
	BAD("too many --meta pairs (at most 16", "count", "x", "1",
	    "--meta", "a=1", "--meta", "b=1", "--meta", "c=1", "--meta", "d=1", "--meta", "e=1",
	    "--meta", "f=1", "--meta", "g=1", "--meta", "h=1", "--meta", "i=1", "--meta", "j=1",
	    "--meta", "k=1", "--meta", "l=1", "--meta", "m=1", "--meta", "n=1", "--meta", "o=1",
	    "--meta", "p=1", "--meta", "q=1");
}
END_TEST

START_TEST(missing_ring_warns_exit_0_unless_strict)
{
	char missing[80], path[128];
	struct stat st;

	snprintf(missing, sizeof(missing), "%s-absent", ring_name);
	snprintf(path, sizeof(path), "/dev/shm/gbatch.%s", missing);
	ck_assert_int_eq(RUN(NULL, NULL, "--ring", missing, "count", "x", "1"), 0);
	ck_assert_ptr_nonnull(strstr(err_text, missing));
	ck_assert_ptr_nonnull(strstr(err_text, "exit 0 without --strict"));
	ck_assert_int_eq(RUN(NULL, NULL, "--ring", missing, "--strict", "count", "x", "1"), 1);
	ck_assert_ptr_nonnull(strstr(err_text, missing));
	ck_assert_int_eq(RUN("count x 1\n", missing, "--strict", "--stdin"), 1);
	ck_assert_int_ne(stat(path, &st), 0); /* never created */
	/* bad input is still bad input without a ring */
	ck_assert_int_eq(RUN(NULL, NULL, "--ring", missing, "count", "x", "zz"), 2);
	ck_assert_ptr_nonnull(strstr(err_text, "\"zz\""));
}
END_TEST

START_TEST(help_and_version)
{
	ck_assert_int_eq(RUN(NULL, NULL, "--help"), 0);
	ck_assert(strncmp(out_text, "usage: gbatch-emit", 18) == 0);
	ck_assert_int_eq(RUN(NULL, NULL, "--version"), 0);
	ck_assert(strncmp(out_text, "gbatch-emit ", 12) == 0);
	ck_assert_int_eq(RUN(NULL, NULL, "--no-such-option"), 2);
	ck_assert_ptr_nonnull(strstr(err_text, "usage: gbatch-emit"));
}
END_TEST

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-gbatch-emit\n", argv[0]);
		return 2;
	}
	emit_path = argv[1];
	Suite *s = suite_create("emit");
	TCase *tc = tcase_create("cli");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, each_kind_with_metadata);
	tcase_add_test(tc, records_from_stdin);
	tcase_add_test(tc, bad_stdin_lines_named_others_written);
	tcase_add_test(tc, bad_input_exits_2_naming_it);
	tcase_add_test(tc, missing_ring_warns_exit_0_unless_strict);
	tcase_add_test(tc, help_and_version);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	runner_pid = getpid();
	srunner_run_all(sr, CK_NORMAL);
	remove_run_rings();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
