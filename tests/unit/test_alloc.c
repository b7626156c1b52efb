/* test_alloc.c - every allocation refused in turn, in jansson's manner: the 1st, then the 2nd,
 * and so on until a run completes without one refused, through (a) the public telemetry calls
 * with the simple, shm and a recording reporter, (b) the record codec, (c) a real result's JSON
 * and (d) processing questions against the Gemini stand-in (one child process
 * per refused allocation, so that a crash names its allocation and the others still run). Each run must not crash, must
 * leave no block allocated (counted by alloc_fail.c; ASan's leak checker and valgrind see the
 * same), and must return its error (NULL, negative) or degrade as its header says.
 *
 * The binary links libgbatch statically with the allocation functions wrapped (see
 * tests/CMakeLists.txt); jansson allocates through the same counter. Each test prints how many
 * allocation points it went through; GB_ALLOC_TRACE=1 in the environment prints the outcome of
 * every refused allocation of the processing test. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gbatch/processor.h>
#include <gbatch/telemetry.h>

#include "alloc_fail.h"
#include "check_main.h"
#include "record.h"
#include "stub_processor.h"
#include "tele_recorder.h"
#include "test_rings.h"

/* No scenario comes near this many allocations; a loop that does has stopped ending. */
#define MAX_POINTS 100000ul

/* Rings are named "alloc-test-<runner pid>-..." so the runner can remove them all. */
static pid_t runner_pid;

/* ---- (a) telemetry ---- */

struct tele_run {
	struct recorder *rc;
	char ring[64];
	/* what the run saw */
	int tele_null;     /* gb_tele_new returned NULL */
	int tele_null_ok;  /* ... and an allocation had been refused in it */
	int simple_null_ok, shm_null_ok, report_null_ok;
	int report_bad;    /* the report was neither NULL nor a report */
	int shm_sum_bad;   /* written + dropped != records given */
	uint64_t shm_written, shm_dropped;
};

static void *
tele_scenario(void *arg)
{
	struct tele_run *run = arg;
	gb_simple_reporter *simple;
	gb_shm_reporter *shm;
	gb_reporter reps[3];
	size_t n = 0;
	gb_tele *t;
	bool before;
	char *report;
	const gb_kv two[] = { { "model", "gemini-2.0-flash" }, { "question_index", "3" } };
	gb_kv many[20];
	char keys[20][8];

	for (size_t i = 0; i < 20; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		many[i].key = keys[i];
		many[i].value = "v";
	}
	reps[n++] = recorder_reporter(run->rc);
	before = gb_alloc_failed();
	simple = gb_simple_reporter_new(4);
	if (simple != NULL)
		reps[n++] = gb_simple_reporter_as_reporter(simple);
	else
		run->simple_null_ok = !before && gb_alloc_failed() ? 1 : -1;
	before = gb_alloc_failed();
	shm = gb_shm_reporter_open(run->ring);
	if (shm != NULL)
		reps[n++] = gb_shm_reporter_as_reporter(shm);
	else
		run->shm_null_ok = !before && gb_alloc_failed() ? 1 : -1;

	before = gb_alloc_failed();
	t = gb_tele_new(reps, n, GB_TELE_ENABLE);
	if (t == NULL) {
		run->tele_null = 1;
		run->tele_null_ok = !before && gb_alloc_failed();
	} else {
		gb_scope outer = gb_tele_begin(t, "alloc.outer", two, 2);
		gb_scope deep[24];

		GB_SCOPE(t, "alloc.guarded") {
			gb_tele_count(t, "calls", 1, two, 2);
			gb_tele_gauge(t, "level", 0.5, NULL, 0);
			gb_tele_metric(t, "plain", -1.25, many, 20); /* past the inline metadata */
		}
		/* deeper than the first frames and path buffer: they grow */
		for (size_t i = 0; i < 24; i++)
			deep[i] = gb_tele_begin(t, "a_rather_long_scope_name_to_grow_the_path_buffer",
			    i % 2 ? many : NULL, i % 2 ? 20 : 0);
		for (size_t i = 24; i-- > 0;)
			gb_tele_end(t, &deep[i]);
		/* more paths than the first call-count table holds */
		for (size_t i = 0; i < 80; i++) {
			char name[32];

			snprintf(name, sizeof(name), "metric_%zu", i);
			gb_tele_count(t, name, 1, NULL, 0);
		}
		gb_tele_end(t, &outer);
	}
	if (simple != NULL) {
		before = gb_alloc_failed();
		report = gb_simple_reporter_report(simple);
		if (report == NULL)
			run->report_null_ok = !before && gb_alloc_failed() ? 1 : -1;
		else if (strncmp(report, "=== Telemetry Report ===", 24) != 0)
			run->report_bad = 1;
		free(report);
	}
	gb_tele_free(t);
	if (shm != NULL) {
		run->shm_written = gb_shm_reporter_written(shm);
		run->shm_dropped = gb_shm_reporter_dropped(shm);
		if (t != NULL && run->shm_written + run->shm_dropped != run->rc->n)
			run->shm_sum_bad = 1;
	}
	gb_simple_reporter_free(simple);
	gb_shm_reporter_close(shm);
	return NULL;
}

/* Runs the scenario on a thread of its own, so that the thread's telemetry state is freed at
 * its exit like any other block. Returns 0, or the pthread error. No Check assertion may run
 * while allocations are refused: Check allocates to record where each one is. */
static int
run_tele(struct tele_run *run)
{
	pthread_t th;
	int rc;

	if ((rc = pthread_create(&th, NULL, tele_scenario, run)) != 0)
		return rc;
	return pthread_join(th, NULL);
}

START_TEST(alloc_fails_in_telemetry)
{
	struct recorder rc;
	struct tele_run run;
	unsigned long n;
	size_t full_records = 0;
	long live0;

	recorder_init(&rc);
	live0 = gb_alloc_live();
	for (n = 1; n < MAX_POINTS; n++) {
		memset(&run, 0, sizeof(run));
		run.rc = &rc;
		rc.n = 0;
		snprintf(run.ring, sizeof(run.ring), "alloc-test-%d-tele", (int)runner_pid);
		int err;

		gb_alloc_arm(n);
		err = run_tele(&run);
		gb_alloc_disarm();
		ck_assert_int_eq(err, 0);
		ck_assert_msg(gb_alloc_live() == live0, "allocation %lu refused: %ld blocks left "
		    "allocated", n, gb_alloc_live() - live0);
		ck_assert_msg(!run.tele_null || run.tele_null_ok, "allocation %lu: gb_tele_new NULL "
		    "without running out of memory", n);
		ck_assert_msg(run.simple_null_ok >= 0 && run.shm_null_ok >= 0 &&
		    run.report_null_ok >= 0, "allocation %lu: NULL without running out of memory", n);
		ck_assert_msg(!run.report_bad, "allocation %lu: the simple report is not a report", n);
		ck_assert_msg(!run.shm_sum_bad, "allocation %lu: the shm reporter wrote %" PRIu64
		    " and dropped %" PRIu64 " of %zu records", n, run.shm_written, run.shm_dropped,
		    rc.n);
		if (!gb_alloc_failed()) {
			full_records = rc.n;
			break;
		}
	}
	ck_assert_uint_lt(n, MAX_POINTS);
	/* The run without a refusal: every record reached the reporters. 3 in the guarded
	 * scope and its timing, 24 deep timings, 80 counters, the outer timing. */
	ck_assert_uint_eq(full_records, 4 + 24 + 80 + 1);
	ck_assert_uint_eq(run.shm_written + run.shm_dropped, full_records);
	ck_assert_uint_eq(rc.lost, 0);
	printf("alloc: telemetry: %lu allocation points\n", n - 1);
	recorder_fini(&rc);
}
END_TEST

/* ---- (b) the record codec ---- */

START_TEST(alloc_fails_in_record_codec)
{
	static uint8_t buf[2 * GB_REC_MAX_SIZE];
	const gb_rec_kv meta_in[2] = {
		{ "model", 5, "gemini-2.0-flash", 16 },
		{ "question_index", 14, "3", 1 },
	};
	gb_rec_kv meta_out[GB_REC_MAX_META];
	gb_record r = { 0 }, back;
	unsigned long n;
	size_t len;
	long live0 = gb_alloc_live();

	r.kind = GB_REC_TIMING;
	r.scope = "batch.total_processing.batch.attempt";
	r.scope_len = strlen(r.scope);
	r.parent_len = 22;
	r.depth = 1;
	r.call_count = 7;
	r.value = 0.25;
	r.meta = meta_in;
	r.n_meta = 2;
	/* The codec works in the caller's buffers: the first run already refuses nothing. */
	for (n = 1; n < MAX_POINTS; n++) {
		size_t size, short_len;
		int rc, short_rc;

		gb_alloc_arm(n);
		size = gb__rec_size(&r);
		len = gb__rec_encode(&r, buf, sizeof(buf));
		short_rc = gb__rec_decode(buf, len - 1, &back, meta_out);
		rc = gb__rec_decode(buf, len, &back, meta_out);
		short_len = gb__rec_encode(&r, buf + len, size - 1);
		gb_alloc_disarm();
		ck_assert_uint_eq(len, size);
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(short_rc, -1);
		ck_assert_uint_eq(short_len, 0);
		ck_assert_int_eq(gb_alloc_live(), live0);
		if (!gb_alloc_failed())
			break;
	}
	ck_assert_uint_eq(n, 1);
	ck_assert_double_eq(back.value, 0.25);
	ck_assert_uint_eq(back.n_meta, 2);
	printf("alloc: record codec: %lu allocation points\n", n - 1);
}
END_TEST

/* ---- (c) a real result's JSON, (d) processing ---- */

static const char content_text[] =
    "The Tay Bridge was a railway bridge over the Firth of Tay in Scotland. It opened in 1878 "
    "and fell in a storm on 28 December 1879 while a train was crossing it.";
static const char *const qs[] = {
	"When did the bridge open?",
	"When did it fall?",
	"Which firth does it cross?",
};
#define NQ (sizeof(qs) / sizeof(qs[0]))

static struct stub_proc stub;

static gb_processor *
new_processor(gb_tele *t)
{
	gb_processor_opts o;
	char err[256];
	gb_processor *p;

	stub_processor_opts(&o, &stub, t, 0.001);
	p = gb_processor_new(&o, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	return p;
}

/* A result with every part: a missing batch answer repaired individually, a comparison run,
 * and an error entry. */
static gb_result *
real_result(gb_processor *p)
{
	gb_content c = { NULL, content_text, sizeof(content_text) - 1, NULL };
	gb_process_opts po = { .flags = GB_PROCESS_COMPARE };
	gb_result *res = NULL;
	char err[256];

	ck_assert_int_eq(gb_processor_process_questions(p, &c, 1, qs, NQ, &po, &res, err,
	    sizeof(err)), 0);
	ck_assert_ptr_nonnull(res);
	return res;
}

/* Where got first differs from want, for the report of a JSON that came out incomplete. */
static void
print_difference(unsigned long n, const char *want, const char *got)
{
	size_t i = 0, from;

	while (want[i] != '\0' && want[i] == got[i])
		i++;
	from = i > 40 ? i - 40 : 0;
	printf("alloc: result JSON, allocation %lu refused: %zu bytes instead of %zu, from byte "
	    "%zu:\n  want ...%.100s\n  got  ...%.100s\n", n, strlen(got), strlen(want), i,
	    want + from, got + from);
}

START_TEST(alloc_fails_in_result_json)
{
	const char *args[] = { "--fault", "few", "--fault", "400:1:only=single", NULL };
	unsigned flags = (unsigned)_i ? GB_RESULT_JSON_PRETTY : 0;
	gb_processor *p;
	gb_result *res;
	char *want, *got;
	unsigned long n, nulls = 0;
	char bad[1024] = "";
	size_t nbad = 0, badlen = 0;
	long live0;

	ck_assert_int_eq(stub_start(&stub, args), 0);
	p = new_processor(NULL);
	res = real_result(p);
	want = gb_result_to_json(res, flags);
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(strstr(want, "individual_answers"));
	live0 = gb_alloc_live();
	for (n = 1; n < MAX_POINTS; n++) {
		gb_alloc_arm(n);
		got = gb_result_to_json(res, flags);
		gb_alloc_disarm();
		if (got == NULL) {
			ck_assert_msg(gb_alloc_failed(), "NULL without running out of memory");
			nulls++;
		} else if (strcmp(got, want) != 0) {
			/* documented: NULL when out of memory; never a part of the result */
			if (badlen < sizeof(bad))
				badlen += (size_t)snprintf(bad + badlen, sizeof(bad) - badlen, " %lu", n);
			if (nbad++ < 8 && flags == 0)
				print_difference(n, want, got);
		}
		free(got);
		ck_assert_msg(gb_alloc_live() == live0, "allocation %lu refused: %ld blocks left "
		    "allocated", n, gb_alloc_live() - live0);
		if (!gb_alloc_failed())
			break;
	}
	ck_assert_uint_lt(n, MAX_POINTS);
	printf("alloc: result JSON (flags %u): %lu allocation points, %lu gave NULL, %zu gave "
	    "incomplete JSON\n", flags, n - 1, nulls, nbad);
	free(want);
	gb_result_free(res);
	gb_processor_free(p);
	ck_assert_int_eq(stub_stop(&stub), 0);
	ck_assert_msg(nbad == 0, "gb_result_to_json returned incomplete JSON instead of NULL when "
	    "allocation%s refused (%zu of %lu):%s", nbad > 1 ? "s were" : " was", nbad, n - 1, bad);
}
END_TEST

/* What one refused allocation did to gb_processor_process_questions, in a child process of
 * its own: so that a crash at one allocation still lets the others run, and is named. */
enum { RUN_CLEAN = 10, RUN_HANDLED, RUN_LEAKED, RUN_BAD_RETURN };

struct processing {
	gb_simple_reporter *simple;
	gb_tele *t;
	gb_processor *p;
	long live_before; /* blocks allocated before simple, t and p were made */
	unsigned long n;
	int verdict;
};

/* The call, on a thread of its own so that its telemetry state is freed at its exit. */
static void *
processing_thread(void *arg)
{
	struct processing *pr = arg;
	gb_content c = { NULL, content_text, sizeof(content_text) - 1, NULL };
	gb_process_opts po = { .flags = 0 };
	gb_result *res = (gb_result *)&res; /* must become NULL or a result */
	char err[256] = "";
	int rc;

	gb_alloc_arm(pr->n);
	rc = gb_processor_process_questions(pr->p, &c, 1, qs, NQ, &po, &res, err, sizeof(err));
	gb_alloc_disarm();
	if (rc == 0)
		pr->verdict = res != NULL && gb_result_question_count(res) == NQ &&
		    (gb_alloc_failed() || gb_result_failed_count(res) == 0) ? 0 : RUN_BAD_RETURN;
	else
		pr->verdict = rc == -ENOMEM && gb_alloc_failed() && res == NULL && err[0] != '\0' ?
		    0 : RUN_BAD_RETURN;
	if (pr->verdict == RUN_BAD_RETURN)
		fprintf(stderr, "alloc: processing, allocation %lu refused: returned %d (%s)\n",
		    pr->n, rc, err);
	if (rc == 0 && res != NULL)
		gb_result_free(res);
	return NULL;
}

/* jansson 2.14's lexer ignores a failed growth of the buffer it saves a string's text in
 * (lex_save), so a refused allocation while it reads a string with an escape leaves the text
 * short and trips assert(0) in lex_scan_string. That abort is jansson's defect, not ours: it
 * is recognised by its message, counted and printed apart, and only that one is excused. */
#define JANSSON_LEX_ABORT "lex_scan_string: Assertion"

static char child_err[64];

/* Whether the child that just died of SIGABRT was stopped by jansson's lexer assertion. */
static bool
jansson_lexer_abort(void)
{
	char buf[4096];
	FILE *f = fopen(child_err, "r");
	size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f != NULL)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, JANSSON_LEX_ABORT) != NULL;
}

/* In the child: one run with allocation n refused, then everything freed and counted. */
static int
processing_child(struct processing *pr)
{
	pthread_t th;

	if (freopen(child_err, "w", stderr) == NULL)
		return 1;
	alarm(60); /* a hang is reported as SIGALRM */
	if (pthread_create(&th, NULL, processing_thread, pr) != 0 || pthread_join(th, NULL) != 0)
		return 1;
	gb_processor_free(pr->p);
	gb_tele_free(pr->t);
	gb_simple_reporter_free(pr->simple);
	if (pr->verdict == 0 && gb_alloc_live() != pr->live_before)
		pr->verdict = RUN_LEAKED;
	if (pr->verdict == 0)
		pr->verdict = gb_alloc_failed() ? RUN_HANDLED : RUN_CLEAN;
	return pr->verdict;
}

START_TEST(alloc_fails_in_processing)
{
	const char *args[] = { NULL };
	struct processing pr = { 0 };
	unsigned long n;
	char crashed[512] = "", leaked[256] = "", bad[256] = "";
	size_t ncrashed = 0, nleaked = 0, nbad = 0, njansson = 0, len_c = 0, len_l = 0, len_b = 0;

	snprintf(child_err, sizeof(child_err), "/tmp/gbatch-alloc-%d.err", (int)getpid());
	ck_assert_int_eq(stub_start(&stub, args), 0);
	pr.live_before = gb_alloc_live();
	pr.simple = gb_simple_reporter_new(0);
	ck_assert_ptr_nonnull(pr.simple);
	gb_reporter rep = gb_simple_reporter_as_reporter(pr.simple);
	pr.t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	ck_assert_ptr_nonnull(pr.t);
	pr.p = new_processor(pr.t); /* no request yet: each child opens its own connection */
	for (n = 1; n < MAX_POINTS; n++) {
		int status, code = -1;
		pid_t pid;

		fflush(NULL);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			pr.n = n;
			_exit(processing_child(&pr));
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			code = WEXITSTATUS(status);
		if (getenv("GB_ALLOC_TRACE") != NULL)
			fprintf(stderr, "alloc: processing, allocation %lu: %d\n", n, code);
		if (code == RUN_CLEAN)
			break;
		if (code == RUN_LEAKED) {
			if (len_l < sizeof(leaked))
				len_l += (size_t)snprintf(leaked + len_l, sizeof(leaked) - len_l, " %lu", n);
			nleaked++;
		} else if (code == RUN_BAD_RETURN) {
			if (len_b < sizeof(bad))
				len_b += (size_t)snprintf(bad + len_b, sizeof(bad) - len_b, " %lu", n);
			nbad++;
		} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
		    jansson_lexer_abort()) {
			printf("alloc: processing, allocation %lu refused: jansson's lexer aborted (%s)\n",
			    n, JANSSON_LEX_ABORT);
			njansson++;
		} else if (code != RUN_HANDLED) {
			if (len_c < sizeof(crashed))
				len_c += (size_t)snprintf(crashed + len_c, sizeof(crashed) - len_c,
				    " %lu(%s %d)", n, WIFSIGNALED(status) ? "signal" : "exit",
				    WIFSIGNALED(status) ? WTERMSIG(status) : code);
			ncrashed++;
		}
	}
	ck_assert_uint_lt(n, MAX_POINTS);
	printf("alloc: processing: %lu allocation points, %zu crashed, %zu leaked, %zu returned "
	    "wrongly, %zu stopped by jansson's lexer\n", n - 1, ncrashed, nleaked, nbad, njansson);
	unlink(child_err);
	gb_processor_free(pr.p);
	gb_tele_free(pr.t);
	gb_simple_reporter_free(pr.simple);
	ck_assert_int_eq(stub_stop(&stub), 0);
	ck_assert_msg(ncrashed == 0, "gb_processor_process_questions crashed when allocation "
	    "N was refused (%zu of %lu), N(how):%s", ncrashed, n - 1, crashed);
	ck_assert_msg(nleaked == 0, "gb_processor_process_questions leaked when allocation N was "
	    "refused (%zu of %lu), N:%s", nleaked, n - 1, leaked);
	ck_assert_msg(nbad == 0, "gb_processor_process_questions returned neither a result nor "
	    "-ENOMEM when allocation N was refused (%zu of %lu), N:%s", nbad, n - 1, bad);
}
END_TEST

/* In the runner process, before any JSON value exists and before the tests fork. */
static void
before_run(void)
{
	runner_pid = getpid();
	gb_alloc_install();
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static void
after_run(void)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "alloc-test-%d-", (int)runner_pid);
	gb_test_remove_rings(prefix);
}

static Suite *
alloc_suite(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc = tcase_create("every allocation refused in turn");

	tcase_add_test(tc, alloc_fails_in_telemetry);
	tcase_add_test(tc, alloc_fails_in_record_codec);
	tcase_add_loop_test(tc, alloc_fails_in_result_json, 0, 2);
	tcase_add_test(tc, alloc_fails_in_processing);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = alloc_suite, .before_run = before_run,
	.after_run = after_run };
