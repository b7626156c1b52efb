/* test_processor_ring.c - gbatch-processor --telemetry shm:RING against the stand-in: the
 * records in the ring carry the seed's scope names with the right depth, parent and metadata,
 * counters and gauges keep their kinds, and the API key is in no record.
 *   test_processor_ring GBATCH_PROCESSOR */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "record.h"
#include "ring.h"
#include "stub_proc.h"

static const char *processor;

struct seen {
	char scope[GB_REC_MAX_SCOPE + 1];
	size_t parent_len;
	unsigned depth;
	uint8_t kind;
	double value;
	char meta[256];
};

static struct seen seen[1024];
static size_t nseen;
static int key_found;
static int invalid;

static void
on_record(void *ctx, uint16_t type, const uint8_t *payload, size_t len)
{
	gb_rec_kv meta[GB_REC_MAX_META];
	gb_record r;
	struct seen *s;

	(void)ctx;
	if (memmem(payload, len, STUB_KEY, strlen(STUB_KEY)) != NULL)
		key_found = 1;
	if (type != GB_RING_TYPE_TELEMETRY || gb__rec_decode(payload, len, &r, meta) != 0) {
		invalid++;
		return;
	}
	if (nseen == sizeof(seen) / sizeof(seen[0]))
		return;
	s = &seen[nseen++];
	memset(s, 0, sizeof(*s));
	memcpy(s->scope, r.scope, r.scope_len);
	s->parent_len = r.parent_len;
	s->depth = r.depth;
	s->kind = r.kind;
	s->value = r.value;
	for (size_t i = 0; i < r.n_meta; i++) {
		size_t l = strlen(s->meta);
		snprintf(s->meta + l, sizeof(s->meta) - l, "%s%.*s=%.*s", i > 0 ? "," : "",
		    (int)meta[i].key_len, meta[i].key, (int)meta[i].value_len, meta[i].value);
	}
}

static const struct seen *
find(const char *scope, uint8_t kind)
{
	for (size_t i = 0; i < nseen; i++)
		if (seen[i].kind == kind && strcmp(seen[i].scope, scope) == 0)
			return &seen[i];
	return NULL;
}

static size_t
count(const char *scope)
{
	size_t n = 0;

	for (size_t i = 0; i < nseen; i++)
		n += strcmp(seen[i].scope, scope) == 0;
	return n;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* Runs the processor to completion (10 s deadline); returns its exit status. */
static int
run_processor(const char *ring, const char *base, const char *qpath, const char *cpath)
{
	char tele[128];
	uint64_t deadline = gb__clock_mono_ns() + 10 * GB_NS_PER_SEC;
	pid_t pid, w;
	int status;

	snprintf(tele, sizeof(tele), "shm:%s", ring);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("GEMINI_API_KEY", STUB_KEY, 1);
		setenv("GEMINI_API_BASE", base, 1);
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(126);
		execl(processor, processor, "--telemetry", tele, "--telemetry-ids", "--compare", "--questions", qpath,
		    cpath, (char *)NULL);
		_exit(127);
	}
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && gb__clock_mono_ns() < deadline)
		usleep(5000);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ck_abort_msg("gbatch-processor did not finish within 10 s");
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(records_in_the_ring)
{
	struct stub_proc stub;
	char ring[64], err[256], dir[] = "/tmp/gbatch-ring-test-XXXXXX", qpath[128], cpath[128];
	gb_ring *consumer = NULL;
	const struct seen *s;
	size_t got;

	snprintf(ring, sizeof(ring), "gbtest-proc-%d", (int)getpid());
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(qpath, sizeof(qpath), "%s/q.txt", dir);
	snprintf(cpath, sizeof(cpath), "%s/c.txt", dir);
	write_file(qpath, "Who built it?\nWhen did it open?\nWhere is it?\n");
	write_file(cpath, "A bridge over a firth, built by a company in a hurry.\n");
	ck_assert_int_eq(gb__ring_open_consumer(&consumer, ring, NULL, err, sizeof(err)), GB_RING_OK);
	ck_assert_int_eq(stub_start(&stub, NULL), 0);

	ck_assert_int_eq(run_processor(ring, stub.base, qpath, cpath), 0);
	do
		got = gb__ring_read(consumer, on_record, NULL, 256);
	while (got > 0);

	ck_assert_int_eq(invalid, 0);
	ck_assert_int_eq(key_found, 0);
	s = find("batch.total_processing", GB_REC_TIMING);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->depth, 0);
	ck_assert_uint_eq(s->parent_len, 0);
	ck_assert_str_eq(s->meta, "question_count=3,content_type=text");
	s = find("batch.total_processing.batch.attempt", GB_REC_TIMING);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->depth, 1);
	ck_assert_uint_eq(s->parent_len, strlen("batch.total_processing"));
	s = find("batch.total_processing.batch.attempt.batch.processing.batch.api_call."
	    "client.generate_content.client.execute_generation.client.api_call_with_retry",
	    GB_REC_TIMING);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->depth, 6);
	ck_assert_uint_eq(s->parent_len,
	    strlen("batch.total_processing.batch.attempt.batch.processing.batch.api_call."
	    "client.generate_content.client.execute_generation"));
	ck_assert_uint_eq(count("batch.total_processing.batch.comparison_run.individual.processing."
	    "individual.question"), 3);
	s = find("batch.total_processing.batch.comparison_run.individual.processing."
	    "individual.question", GB_REC_TIMING);
	ck_assert_str_eq(s->meta, "question_index=0");
	s = find("batch.total_processing.batch_success", GB_REC_COUNTER);
	ck_assert_ptr_nonnull(s);
	ck_assert_double_eq(s->value, 1);
	s = find("batch.total_processing.batch.result_building.token_efficiency", GB_REC_GAUGE);
	ck_assert_ptr_nonnull(s);
	ck_assert_double_gt(s->value, 1);

	ck_assert_int_eq(stub_stop(&stub), 0);
	gb__ring_close(consumer);
	ck_assert_int_eq(gb__ring_unlink(ring, err, sizeof(err)), 0);
	unlink(qpath);
	unlink(cpath);
	rmdir(dir);
}
END_TEST

int
main(int argc, char **argv)
{
	Suite *s = suite_create("processor_ring");
	TCase *tc = tcase_create("shm telemetry");
	SRunner *sr;
	int failed;

	if (argc != 2) {
		fprintf(stderr, "usage: test_processor_ring GBATCH_PROCESSOR\n");
		return 2;
	}
	processor = argv[1];
	tcase_add_test(tc, records_in_the_ring);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
