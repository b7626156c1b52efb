/* test_console_sink.c - console output checked line by line: the seed's PrintReporter lines
 * (indentation by depth, metadata, escaping of hostile bytes) and the summary tree (calls,
 * avg, p50, p95 from the sketch, max, total; metrics count and total; the cap on scopes). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "clock.h"
#include "console_sink.h"

static char *buf;
static size_t len;
static FILE *file;
static int out;

static void
setup(void)
{
	file = tmpfile();
	ck_assert_ptr_nonnull(file);
	out = fileno(file);
}

static void
teardown(void)
{
	fclose(file);
	free(buf);
	buf = NULL;
}

/* Everything written to the output file so far, NUL-terminated; len is its length. */
static const char *
text(void)
{
	off_t end = lseek(out, 0, SEEK_END);

	ck_assert_int_ge(end, 0);
	buf = realloc(buf, (size_t)end + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(out, buf, (size_t)end, 0), end);
	buf[end] = '\0';
	len = (size_t)end;
	return buf;
}

static gb_record
rec(enum gb_rec_kind kind, const char *scope, size_t parent_len, unsigned depth, double v)
{
	gb_record r = {
		.kind = (uint8_t)kind,
		.value = v,
		.scope = scope,
		.scope_len = strlen(scope),
		.parent_len = parent_len,
		.depth = (uint16_t)depth,
	};
	return r;
}

START_TEST(mode_names)
{
	enum gb_console_mode m;

	ck_assert_int_eq(gb__console_parse_mode("lines", &m), 0);
	ck_assert_int_eq(m, GB_CONSOLE_LINES);
	ck_assert_int_eq(gb__console_parse_mode("summary", &m), 0);
	ck_assert_int_eq(m, GB_CONSOLE_SUMMARY);
	ck_assert_int_eq(gb__console_parse_mode("off", &m), 0);
	ck_assert_int_eq(m, GB_CONSOLE_OFF);
	ck_assert_int_eq(gb__console_parse_mode("Lines", &m), -1);
	ck_assert_int_eq(gb__console_parse_mode("", &m), -1);
}
END_TEST

START_TEST(lines_in_the_seed_format)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_LINES, out, 0);
	const gb_rec_kv meta[] = { { "question_count", 14, "5", 1 }, { "model", 5, "flash", 5 } };
	gb_record r = rec(GB_REC_TIMING, "batch.total_processing", 0, 0, 1.23456);

	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "batch.total_processing.batch.attempt", 22, 1, 0.1234);
	r.call_count = 3;
	r.meta = meta;
	r.n_meta = 2;
	gb__console_record(c, &r);
	r = rec(GB_REC_COUNTER, "api.calls", 0, 0, 42);
	gb__console_record(c, &r);
	r = rec(GB_REC_GAUGE, "inflight", 0, 0, 2.5);
	gb__console_record(c, &r);
	r = rec(GB_REC_METRIC, "batch.x.tokens", 7, 1, 0.25);
	gb__console_record(c, &r);
	gb__console_flush(c, 0);
	ck_assert_str_eq(text(),
	    "[TIMING] batch.total_processing: duration=1.2346s (depth=0, call_count=0)\n"
	    "[TIMING]   batch.total_processing.batch.attempt: duration=0.1234s (depth=1, "
	    "parent_scope=batch.total_processing, call_count=3, question_count=5, model=flash)\n"
	    "[METRIC] api.calls: 42 (metric_type=counter, depth=0, call_count=0)\n"
	    "[METRIC] inflight: 2.5 (metric_type=gauge, depth=0, call_count=0)\n"
	    "[METRIC] batch.x.tokens: 0.25 (depth=1, parent_scope=batch.x, call_count=0)\n");
	gb__console_free(c);
}
END_TEST

START_TEST(lines_escape_terminal_bytes)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_LINES, out, 0);
	const gb_rec_kv meta[] = { { "k\n", 2, "\x1b]0;title\x07", 10 } };
	gb_record r = rec(GB_REC_METRIC, "a\nb\x1b[31m\\", 0, 0, 1);

	r.meta = meta;
	r.n_meta = 1;
	gb__console_record(c, &r);
	gb__console_flush(c, 0);
	ck_assert_str_eq(text(),
	    "[METRIC] a\\x0ab\\x1b[31m\\x5c: 1 (depth=0, call_count=0, k\\x0a=\\x1b]0;title\\x07)\n");
	gb__console_free(c);
}
END_TEST

START_TEST(summary_tree_with_percentiles)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_SUMMARY, out, 0);
	gb_record r;

	for (int i = 1; i <= 20; i++) {
		r = rec(GB_REC_TIMING, "batch.attempt", 5, 1, i / 100.0);
		gb__console_record(c, &r);
	}
	r = rec(GB_REC_TIMING, "batch", 0, 0, 2);
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "batch", 0, 0, 4);
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "alpha.orphan", 5, 1, 0.5); /* its parent never reported */
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "batch.attempt.parse", 13, 2, 0.001);
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "batch.aaa", 5, 1, 0.002);
	gb__console_record(c, &r);
	r = rec(GB_REC_COUNTER, "tokens", 0, 0, 100);
	gb__console_record(c, &r);
	r = rec(GB_REC_COUNTER, "tokens", 0, 0, 23);
	gb__console_record(c, &r);
	r = rec(GB_REC_METRIC, "batch", 0, 0, 7); /* a metric named like a timing scope */
	gb__console_record(c, &r);
	gb__console_summary(c);
	/* the percentiles are the sketch's, within 1/32 of the exact ones: batch's p50 2.0625
	 * (exact 2), batch.attempt's p50 0.0996 (0.1) and p95 0.1914 (0.19); one value, or one
	 * at the minimum or maximum, is exact */
	ck_assert_str_eq(text(),
	    "=== gbatch telemetry summary ===\n"
	    "timings (5 scopes):\n"
	    "  alpha.orphan: calls=1 avg=0.5000s p50=0.5000s p95=0.5000s max=0.5000s total=0.5000s\n"
	    "  batch: calls=2 avg=3.0000s p50=2.0625s p95=4.0000s max=4.0000s total=6.0000s\n"
	    "    batch.aaa: calls=1 avg=0.0020s p50=0.0020s p95=0.0020s max=0.0020s total=0.0020s\n"
	    "    batch.attempt: calls=20 avg=0.1050s p50=0.0996s p95=0.1914s max=0.2000s "
	    "total=2.1000s\n"
	    "      batch.attempt.parse: calls=1 avg=0.0010s p50=0.0010s p95=0.0010s max=0.0010s "
	    "total=0.0010s\n"
	    "metrics (2):\n"
	    "  batch: count=1 total=7\n"
	    "  tokens: count=2 total=123\n");
	/* a second report shows the same figures */
	size_t first = len;
	gb__console_summary(c);
	text();
	ck_assert_uint_eq(len, 2 * first);
	ck_assert(memcmp(buf, buf + first, first) == 0);
	gb__console_free(c);
}
END_TEST

START_TEST(summary_percentiles_cover_every_value)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_SUMMARY, out, 0);
	gb_record r;
	double p50, p95, mx;
	unsigned long long calls;
	const char *line;

	/* 0.001 .. 100 s rising: the exact p50 is 50 s and p95 95 s over all of them (a window
	 * of the last values would say 99.5 and 99.95) */
	for (int i = 1; i <= 100000; i++) {
		r = rec(GB_REC_TIMING, "t", 0, 0, i / 1000.0);
		gb__console_record(c, &r);
	}
	gb__console_summary(c);
	line = strstr(text(), "  t: calls=");
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(sscanf(line, "  t: calls=%llu avg=50.0005s p50=%lfs p95=%lfs max=%lfs",
	    &calls, &p50, &p95, &mx), 4);
	ck_assert_uint_eq(calls, 100000);
	ck_assert_double_le(fabs(p50 - 50) / 50, 1.0 / 32);
	ck_assert_double_le(fabs(p95 - 95) / 95, 1.0 / 32);
	ck_assert_double_eq(mx, 100);
	gb__console_free(c);
}
END_TEST

START_TEST(summary_tracks_at_most_max_scopes)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_SUMMARY, out, 3);
	const char *names[] = { "a", "b", "c", "d", "e" };
	gb_record r;

	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 5; i++) {
			r = rec(i == 2 ? GB_REC_COUNTER : GB_REC_TIMING, names[i], 0, 0, 1);
			gb__console_record(c, &r);
		}
	}
	/* a timing and a metric of one name are two scopes: "a" as a metric is the fourth */
	r = rec(GB_REC_METRIC, "a", 0, 0, 1);
	gb__console_record(c, &r);
	ck_assert_uint_eq(gb__console_summary_capped(c), 9);
	gb__console_summary(c);
	ck_assert_str_eq(text(),
	    "=== gbatch telemetry summary ===\n"
	    "timings (2 scopes):\n"
	    "  a: calls=4 avg=1.0000s p50=1.0000s p95=1.0000s max=1.0000s total=4.0000s\n"
	    "  b: calls=4 avg=1.0000s p50=1.0000s p95=1.0000s max=1.0000s total=4.0000s\n"
	    "metrics (1):\n"
	    "  c: count=4 total=4\n"
	    "not summarised: 9 records of scopes past the first 3\n");
	gb__console_free(c);
}
END_TEST

START_TEST(summary_cap_defaults_to_the_documented_constant)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_SUMMARY, out, 0);
	char name[32];
	gb_record r;

	for (int i = 0; i < GB_CONSOLE_MAX_SCOPES + 10; i++) {
		snprintf(name, sizeof(name), "m.%d", i);
		r = rec(GB_REC_COUNTER, name, 0, 0, 1);
		gb__console_record(c, &r);
	}
	ck_assert_uint_eq(gb__console_summary_capped(c), 10);
	gb__console_free(c);
}
END_TEST

START_TEST(self_parent_is_not_a_loop)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_SUMMARY, out, 0);
	gb_record r = rec(GB_REC_TIMING, "x", 1, 0, 1);

	gb__console_record(c, &r);
	gb__console_summary(c);
	ck_assert_ptr_nonnull(strstr(text(), "  x: calls=1"));
	gb__console_free(c);
}
END_TEST

START_TEST(off_prints_nothing)
{
	gb_console_sink *c = gb__console_new(GB_CONSOLE_OFF, out, 0);
	gb_record r = rec(GB_REC_TIMING, "x", 0, 0, 1);

	gb__console_record(c, &r);
	gb__console_summary(c);
	text();
	ck_assert_uint_eq(len, 0);
	gb__console_free(c);
}
END_TEST

/* ---- a pipe whose reader is slow, stalled or gone ---- */

struct reader {
	int fd;
	char *text; /* everything read */
	size_t len, cap;
};

static void *
reader_run(void *arg)
{
	struct reader *rd = arg;
	ssize_t n;

	for (;;) {
		if (rd->cap - rd->len < 65536) {
			rd->cap = rd->cap * 2 + 65536;
			rd->text = realloc(rd->text, rd->cap + 1);
			if (rd->text == NULL)
				abort();
		}
		n = read(rd->fd, rd->text + rd->len, rd->cap - rd->len);
		if (n <= 0)
			break;
		rd->len += (size_t)n;
	}
	rd->text[rd->len] = '\0';
	return NULL;
}

/* Checks that text is whole lines, each starting with prefix; returns how many. */
static long
whole_lines(const char *t, size_t tlen, const char *prefix)
{
	long n = 0;

	ck_assert_msg(tlen == 0 || t[tlen - 1] == '\n', "the output ends in half a line");
	for (const char *p = t; p < t + tlen; n++) {
		const char *nl = memchr(p, '\n', (size_t)(t + tlen - p));

		ck_assert_ptr_nonnull(nl);
		ck_assert_msg(strncmp(p, prefix, strlen(prefix)) == 0, "line %ld: \"%.*s\"", n,
		    (int)(nl - p), p);
		p = nl + 1;
	}
	return n;
}

START_TEST(lines_never_wait_for_a_stalled_reader)
{
	enum { RECORDS = 100000 };
	int fds[2];
	struct reader rd = { 0 };
	pthread_t th;
	gb_record r = rec(GB_REC_TIMING, "stalled.reader", 0, 0, 0.25);

	ck_assert_int_eq(pipe(fds), 0);
	gb_console_sink *c = gb__console_new(GB_CONSOLE_LINES, fds[1], 0);
	/* nobody reads: about 6 MB against a 64 KiB pipe and a 1 MiB queue; a blocking write
	 * would hang here until the test times out */
	for (int i = 0; i < RECORDS; i++)
		gb__console_record(c, &r);
	gb__console_flush(c, 0);
	uint64_t dropped = gb__console_lines_dropped(c);
	ck_assert_uint_gt(dropped, 0);
	ck_assert_uint_lt(dropped, RECORDS);

	/* the reader wakes up: what was queued arrives, whole lines only */
	rd.fd = fds[0];
	ck_assert_int_eq(pthread_create(&th, NULL, reader_run, &rd), 0);
	gb__console_flush(c, 30 * GB_NS_PER_SEC);
	ck_assert_uint_eq(gb__console_lines_dropped(c), dropped);
	close(fds[1]);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	long got = whole_lines(rd.text, rd.len, "[TIMING] stalled.reader: duration=0.2500s");
	ck_assert_int_eq(got + (long)dropped, RECORDS);
	gb__console_free(c);
	close(fds[0]);
	free(rd.text);
}
END_TEST

START_TEST(a_reader_that_is_gone_costs_counted_lines)
{
	int fds[2];
	gb_record r = rec(GB_REC_COUNTER, "gone", 0, 0, 1);
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;

	ck_assert_int_eq(sigaction(SIGPIPE, &ign, &old), 0);
	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	gb_console_sink *c = gb__console_new(GB_CONSOLE_LINES, fds[1], 0);
	for (int i = 0; i < 3000; i++)
		gb__console_record(c, &r);
	gb__console_flush(c, GB_NS_PER_SEC);
	ck_assert_uint_eq(gb__console_lines_dropped(c), 3000);
	gb__console_free(c);
	close(fds[1]);
	sigaction(SIGPIPE, &old, NULL);
}
END_TEST

START_TEST(an_overlong_line_is_cut_whole)
{
	size_t n = 40000;
	char *scope = malloc(n + 1);
	gb_console_sink *c = gb__console_new(GB_CONSOLE_LINES, out, 0);
	gb_record r;

	memset(scope, '\x01', n); /* each byte escaped to four */
	scope[n] = '\0';
	r = rec(GB_REC_TIMING, scope, 0, 0, 1);
	gb__console_record(c, &r);
	r = rec(GB_REC_TIMING, "next", 0, 0, 1);
	gb__console_record(c, &r);
	gb__console_flush(c, 0);
	const char *t = text();
	const char *nl = strchr(t, '\n');
	ck_assert_ptr_nonnull(nl);
	ck_assert_uint_le((size_t)(nl - t) + 1, 32 * 1024);
	ck_assert(strncmp(nl - 3, "...", 3) == 0);
	ck_assert_str_eq(nl + 1, "[TIMING] next: duration=1.0000s (depth=0, call_count=0)\n");
	gb__console_free(c);
	free(scope);
}
END_TEST

START_TEST(a_long_summary_waits_for_its_reader)
{
	enum { SCOPES = 20000 }; /* about 2 MB of report, twice the queue */
	int fds[2];
	struct reader rd = { 0 };
	pthread_t th;
	char name[32];
	gb_console_sink *c;

	ck_assert_int_eq(pipe(fds), 0);
	c = gb__console_new(GB_CONSOLE_SUMMARY, fds[1], SCOPES);
	for (int i = 0; i < SCOPES; i++) {
		snprintf(name, sizeof(name), "scope.%05d", i);
		gb_record r = rec(GB_REC_TIMING, name, 0, 0, 1);
		gb__console_record(c, &r);
	}
	rd.fd = fds[0];
	ck_assert_int_eq(pthread_create(&th, NULL, reader_run, &rd), 0);
	gb__console_summary(c);
	gb__console_flush(c, 30 * GB_NS_PER_SEC);
	close(fds[1]);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_eq(gb__console_lines_dropped(c), 0);
	ck_assert_ptr_nonnull(strstr(rd.text, "  scope.19999: calls=1 "));
	ck_assert_int_eq(whole_lines(rd.text, rd.len, ""), SCOPES + 3);
	gb__console_free(c);
	close(fds[0]);
	free(rd.text);
}
END_TEST

static Suite *
console_suite(void)
{
	Suite *s = suite_create("console_sink");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, lines_never_wait_for_a_stalled_reader);
	tcase_add_test(tc, a_reader_that_is_gone_costs_counted_lines);
	tcase_add_test(tc, an_overlong_line_is_cut_whole);
	tcase_add_test(tc, a_long_summary_waits_for_its_reader);
	tcase_add_test(tc, mode_names);
	tcase_add_test(tc, lines_in_the_seed_format);
	tcase_add_test(tc, lines_escape_terminal_bytes);
	tcase_add_test(tc, summary_tree_with_percentiles);
	tcase_add_test(tc, summary_percentiles_cover_every_value);
	tcase_add_test(tc, summary_tracks_at_most_max_scopes);
	tcase_add_test(tc, summary_cap_defaults_to_the_documented_constant);
	tcase_add_test(tc, self_parent_is_not_a_loop);
	tcase_add_test(tc, off_prints_nothing);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = console_suite };
