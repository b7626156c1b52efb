/* test_reporter_shm.c - the shm reporter end to end: context -> shm reporter -> ring ->
 * gb__ring_read -> gb__rec_decode keeps every field (truncation flags included); a ring that
 * cannot be opened warns once and counts drops; a full ring drops and counts; close detaches. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gbatch/telemetry.h>

#include "check_main.h"
#include "clock.h"
#include "record.h"
#include "ring.h"
#include "test_rings.h"

struct got {
	gb_record rec;
	gb_rec_kv meta[GB_REC_MAX_META];
	char scope[GB_REC_MAX_SCOPE + 1];
	char kv[GB_REC_MAX_META][2][GB_REC_MAX_VALUE + 1];
	int decode_rc;
};

static struct got got[64];
static size_t n_got;
static char ring_name[64];
static gb_ring *consumer;

/* Rings are named "tele-test-<runner pid>-..." so the runner can remove them all at the end. */
static pid_t runner_pid;

/* Removes every ring of this run. */
static void
remove_run_rings(void)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "tele-test-%d-", (int)runner_pid);
	gb_test_remove_rings(prefix);
}

static void
handler(void *ctx, uint16_t type, const uint8_t *payload, size_t len)
{
	struct got *g;

	(void)ctx;
	ck_assert_uint_eq(type, GB_RING_TYPE_TELEMETRY);
	ck_assert_uint_lt(n_got, 64);
	g = &got[n_got++];
	g->decode_rc = gb__rec_decode(payload, len, &g->rec, g->meta);
	if (g->decode_rc != 0)
		return;
	/* The payload is only valid during the call: keep copies. */
	memcpy(g->scope, g->rec.scope, g->rec.scope_len);
	g->scope[g->rec.scope_len] = '\0';
	for (size_t i = 0; i < g->rec.n_meta; i++) {
		memcpy(g->kv[i][0], g->meta[i].key, g->meta[i].key_len);
		g->kv[i][0][g->meta[i].key_len] = '\0';
		memcpy(g->kv[i][1], g->meta[i].value, g->meta[i].value_len);
		g->kv[i][1][g->meta[i].value_len] = '\0';
	}
}

static void
open_consumer(uint64_t capacity)
{
	static int seq;
	gb_ring_opts o;
	char err[256];

	snprintf(ring_name, sizeof(ring_name), "tele-test-%d-%d-%d", (int)runner_pid,
	    (int)getpid(), seq++);
	gb__ring_opts_init(&o);
	o.capacity = capacity;
	ck_assert_msg(gb__ring_open_consumer(&consumer, ring_name, &o, err, sizeof(err)) == GB_RING_OK,
	    "%s", err);
	n_got = 0;
}

static void
close_consumer(void)
{
	char err[256];

	gb__ring_close(consumer);
	ck_assert_int_eq(gb__ring_unlink(ring_name, err, sizeof(err)), 0);
}

static size_t
drain(void)
{
	size_t total = 0, n;

	while ((n = gb__ring_read(consumer, handler, NULL, 1000)) > 0)
		total += n;
	return total;
}

START_TEST(round_trip_keeps_every_field)
{
	open_consumer(0);
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb_reporter rep = gb_shm_reporter_as_reporter(sr);
	gb_tele *t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	const gb_kv smeta[] = { { "model", "gemini-2.0-flash" }, { "question_index", "3" } };
	const gb_kv cmeta[] = { { "status", "ok" } };
	uint64_t before = gb__clock_real_ns();

	gb_scope a = gb_tele_begin(t, "batch.total_processing", NULL, 0);
	gb_scope b = gb_tele_begin(t, "batch.attempt", smeta, 2);
	gb_tele_count(t, "calls", 2, cmeta, 1);
	gb_tele_gauge(t, "level", 0.5, NULL, 0);
	gb_tele_metric(t, "plain", -1.25, NULL, 0);
	gb_tele_end(t, &b);
	gb_tele_end(t, &a);
	uint64_t after = gb__clock_real_ns();

	ck_assert_uint_eq(gb_shm_reporter_written(sr), 5);
	ck_assert_uint_eq(gb_shm_reporter_dropped(sr), 0);
	ck_assert_uint_eq(drain(), 5);
	for (size_t i = 0; i < 5; i++) {
		const gb_record *r = &got[i].rec;
		ck_assert_int_eq(got[i].decode_rc, 0);
		ck_assert_uint_eq(r->pid, (uint32_t)getpid());
		ck_assert_uint_eq(r->tid, (uint32_t)gettid());
		ck_assert_uint_eq(r->flags, 0);
		/* every record carries the coarse clock: up to a tick behind */
		ck_assert_uint_ge(r->ts_ns, before - 20 * GB_NS_PER_MS);
		ck_assert_uint_le(r->ts_ns, after);
	}
	const char *inner = "batch.total_processing.batch.attempt";
	ck_assert_str_eq(got[0].scope, "batch.total_processing.batch.attempt.calls");
	ck_assert_uint_eq(got[0].rec.kind, GB_REC_COUNTER);
	ck_assert_double_eq(got[0].rec.value, 2);
	ck_assert_uint_eq(got[0].rec.depth, 2);
	ck_assert_uint_eq(got[0].rec.parent_len, strlen(inner));
	ck_assert_uint_eq(got[0].rec.call_count, 1);
	ck_assert_uint_eq(got[0].rec.n_meta, 1);
	ck_assert_str_eq(got[0].kv[0][0], "status");
	ck_assert_str_eq(got[0].kv[0][1], "ok");
	ck_assert_str_eq(got[1].scope, "batch.total_processing.batch.attempt.level");
	ck_assert_uint_eq(got[1].rec.kind, GB_REC_GAUGE);
	ck_assert_double_eq(got[1].rec.value, 0.5);
	ck_assert_str_eq(got[2].scope, "batch.total_processing.batch.attempt.plain");
	ck_assert_uint_eq(got[2].rec.kind, GB_REC_METRIC);
	ck_assert_double_eq(got[2].rec.value, -1.25);
	ck_assert_str_eq(got[3].scope, inner);
	ck_assert_uint_eq(got[3].rec.kind, GB_REC_TIMING);
	ck_assert_uint_eq(got[3].rec.depth, 1);
	ck_assert_uint_eq(got[3].rec.parent_len, strlen("batch.total_processing"));
	ck_assert_uint_eq(got[3].rec.n_meta, 2);
	ck_assert_str_eq(got[3].kv[0][0], "model");
	ck_assert_str_eq(got[3].kv[0][1], "gemini-2.0-flash");
	ck_assert_str_eq(got[3].kv[1][0], "question_index");
	ck_assert_str_eq(got[3].kv[1][1], "3");
	ck_assert(got[3].rec.value >= 0 && got[3].rec.value <= (double)(after - before) / 1e9);
	ck_assert_str_eq(got[4].scope, "batch.total_processing");
	ck_assert_uint_eq(got[4].rec.depth, 0);
	ck_assert_uint_eq(got[4].rec.parent_len, 0);
	ck_assert_uint_eq(got[4].rec.n_meta, 0);
	ck_assert(got[4].rec.value >= got[3].rec.value);

	gb_tele_free(t);
	gb_shm_reporter_close(sr);
	close_consumer();
}
END_TEST

/* The context hands the shm reporter the lengths it knows instead of calling its callbacks: the
 * records it writes are the callbacks' own, byte for byte but the time (a long path, truncated,
 * and metadata past the limit included). */
static void
assert_same_record(const struct got *a, const struct got *b)
{
	ck_assert_int_eq(a->decode_rc, 0);
	ck_assert_int_eq(b->decode_rc, 0);
	ck_assert_str_eq(a->scope, b->scope);
	ck_assert_uint_eq(a->rec.kind, b->rec.kind);
	ck_assert_uint_eq(a->rec.flags, b->rec.flags);
	ck_assert_uint_eq(a->rec.depth, b->rec.depth);
	ck_assert_uint_eq(a->rec.parent_len, b->rec.parent_len);
	ck_assert_uint_eq(a->rec.call_count, b->rec.call_count);
	ck_assert_uint_eq(a->rec.pid, b->rec.pid);
	ck_assert_uint_eq(a->rec.tid, b->rec.tid);
	ck_assert_uint_eq(a->rec.n_meta, b->rec.n_meta);
	ck_assert_uint_eq(a->rec.meta_dropped, b->rec.meta_dropped);
	for (size_t i = 0; i < a->rec.n_meta; i++) {
		ck_assert_str_eq(a->kv[i][0], b->kv[i][0]);
		ck_assert_str_eq(a->kv[i][1], b->kv[i][1]);
	}
}

static gb_tele_meta last_meta;
static char last_scope[GB_REC_MAX_SCOPE + 200];
static gb_kv last_kv[GB_REC_MAX_META + 4];

static int
keep_metric(void *self, const char *scope, double v, const gb_tele_meta *m)
{
	(void)self;
	(void)v;
	snprintf(last_scope, sizeof(last_scope), "%s", scope);
	last_meta = *m;
	memcpy(last_kv, m->extra, m->n_extra * sizeof(*m->extra));
	last_meta.extra = last_kv;
	return 0;
}

START_TEST(context_writes_what_the_callbacks_write)
{
	static char longname[GB_REC_MAX_SCOPE + 50];
	gb_kv meta[GB_REC_MAX_META + 2];

	open_consumer(0);
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb_reporter reps[2] = { gb_shm_reporter_as_reporter(sr), { .record_metric = keep_metric } };
	gb_tele *t = gb_tele_new(reps, 2, GB_TELE_ENABLE);
	memset(longname, 'n', sizeof(longname) - 1);
	for (size_t i = 0; i < GB_REC_MAX_META + 2; i++)
		meta[i] = (gb_kv){ i == 0 ? "model" : "k", i == 1 ? "gemini-2.0-flash" : "v" };

	const char *names[] = { "calls", longname };
	const size_t n_meta[] = { 2, GB_REC_MAX_META + 2 };
	for (int k = 0; k < 2; k++) {
		GB_SCOPE(t, "batch.total_processing") {
			gb_tele_count(t, names[k], 3, meta, n_meta[k]);
			/* the same record through the callback the context did not call */
			ck_assert_int_eq(reps[0].record_metric(reps[0].self, last_scope, 3, &last_meta), 0);
		}
	}
	ck_assert_uint_eq(drain(), 6);
	assert_same_record(&got[0], &got[1]);
	ck_assert_str_eq(got[0].scope, "batch.total_processing.calls");
	ck_assert_uint_eq(got[0].rec.kind, GB_REC_COUNTER);
	ck_assert_uint_eq(got[0].rec.parent_len, strlen("batch.total_processing"));
	ck_assert_uint_eq(got[0].rec.n_meta, 2);
	ck_assert_str_eq(got[0].kv[1][1], "gemini-2.0-flash");
	assert_same_record(&got[3], &got[4]);
	ck_assert_uint_eq(got[3].rec.scope_len, GB_REC_MAX_SCOPE);
	ck_assert_uint_eq(got[3].rec.flags, GB_REC_F_SCOPE_TRUNC | GB_REC_F_META_DROPPED);
	ck_assert_uint_eq(got[3].rec.meta_dropped, 2);
	ck_assert_uint_eq(got[3].rec.call_count, 1);
	ck_assert_uint_eq(got[2].rec.kind, GB_REC_TIMING);
	ck_assert_uint_eq(got[5].rec.call_count, 2);
	gb_tele_free(t);
	gb_shm_reporter_close(sr);
	close_consumer();
}
END_TEST

/* Through the public calls: pairs past what a record holds are counted in it, so the
 * collector can count them as dropped tags. */
START_TEST(metadata_past_the_record_limit_is_counted)
{
	gb_kv meta[20];
	char keys[20][8];

	open_consumer(0);
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb_reporter rep = gb_shm_reporter_as_reporter(sr);
	gb_tele *t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	for (int i = 0; i < 20; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		meta[i] = (gb_kv){ keys[i], "v" };
	}
	gb_tele_count(t, "many", 1, meta, 20);
	ck_assert_uint_eq(drain(), 1);
	ck_assert_int_eq(got[0].decode_rc, 0);
	ck_assert_uint_eq(got[0].rec.n_meta, GB_REC_MAX_META);
	ck_assert_uint_eq(got[0].rec.meta_dropped, 20 - GB_REC_MAX_META);
	ck_assert(got[0].rec.flags & GB_REC_F_META_DROPPED);
	gb_tele_free(t);
	gb_shm_reporter_close(sr);
	close_consumer();
}
END_TEST

START_TEST(oversize_input_truncated_and_flagged)
{
	static char scope[GB_REC_MAX_SCOPE + 100], key[GB_REC_MAX_KEY + 10],
	    value[GB_REC_MAX_VALUE + 10];
	gb_kv many[GB_REC_MAX_META + 3];
	gb_tele_meta m = { .depth = 0, .call_count = 7 };

	open_consumer(0);
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb_reporter rep = gb_shm_reporter_as_reporter(sr);
	memset(scope, 's', sizeof(scope) - 1);
	memset(key, 'k', sizeof(key) - 1);
	memset(value, 'v', sizeof(value) - 1);
	for (size_t i = 0; i < GB_REC_MAX_META + 3; i++)
		many[i] = (gb_kv){ "key", "val" };
	many[0] = (gb_kv){ key, "short" };
	many[1] = (gb_kv){ "short", value };

	ck_assert_int_eq(rep.record_metric(rep.self, scope, 1, &m), 0);
	m.extra = many;
	m.n_extra = GB_REC_MAX_META + 3;
	ck_assert_int_eq(rep.record_timing(rep.self, "s", 1, &m), 0);
	ck_assert_uint_eq(drain(), 2);

	ck_assert_int_eq(got[0].decode_rc, 0);
	ck_assert_uint_eq(got[0].rec.flags, GB_REC_F_SCOPE_TRUNC);
	ck_assert_uint_eq(got[0].rec.scope_len, GB_REC_MAX_SCOPE);
	ck_assert_uint_eq(got[0].rec.call_count, 7);
	ck_assert_int_eq(got[1].decode_rc, 0);
	ck_assert_uint_eq(got[1].rec.flags,
	    GB_REC_F_META_DROPPED | GB_REC_F_KEY_TRUNC | GB_REC_F_VALUE_TRUNC);
	ck_assert_uint_eq(got[1].rec.n_meta, GB_REC_MAX_META);
	ck_assert_uint_eq(got[1].rec.meta_dropped, 3);
	ck_assert_uint_eq(strlen(got[1].kv[0][0]), GB_REC_MAX_KEY);
	ck_assert_str_eq(got[1].kv[0][1], "short");
	ck_assert_uint_eq(strlen(got[1].kv[1][1]), GB_REC_MAX_VALUE);
	ck_assert_str_eq(got[1].kv[15][0], "key");

	gb_shm_reporter_close(sr);
	close_consumer();
}
END_TEST

START_TEST(full_ring_drops_and_counts)
{
	gb_tele_meta m = { .depth = 0, .call_count = 1 };
	gb_ring_stats st;

	open_consumer(64u << 10);
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb_reporter rep = gb_shm_reporter_as_reporter(sr);
	for (int i = 0; i < 5000; i++)
		ck_assert_int_eq(rep.record_metric(rep.self, "fill.the.ring", i, &m), 0);
	uint64_t w = gb_shm_reporter_written(sr), d = gb_shm_reporter_dropped(sr);
	ck_assert_uint_eq(w + d, 5000);
	ck_assert_uint_gt(d, 0);
	ck_assert_uint_gt(w, 0);
	gb__ring_stats(consumer, &st);
	ck_assert_uint_eq(st.dropped_records, d);
	gb_shm_reporter_close(sr);
	close_consumer();
}
END_TEST

START_TEST(heartbeat_while_open_detached_on_close)
{
	gb_ring_stats st;

	open_consumer(0);
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb__ring_stats(consumer, &st);
	ck_assert_uint_eq(st.producers_live, 1);
	ck_assert_uint_eq(st.producers_ever, 1);
	gb_shm_reporter_close(sr);
	gb__ring_stats(consumer, &st);
	ck_assert_uint_eq(st.producers_live, 0);
	close_consumer();
}
END_TEST

START_TEST(unopenable_ring_warns_once_and_counts)
{
	char err[8192];
	FILE *cap = tmpfile();
	int saved = dup(STDERR_FILENO);
	gb_tele_meta m = { .depth = 0, .call_count = 1 };

	dup2(fileno(cap), STDERR_FILENO);
	gb_shm_reporter *sr = gb_shm_reporter_open("/nonexistent-gbatch-dir/ring");
	gb_reporter rep = gb_shm_reporter_as_reporter(sr);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(rep.record_metric(rep.self, "x", 1, &m), 0);
		ck_assert_int_eq(rep.record_timing(rep.self, "y", 1, &m), 0);
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(cap);
	size_t n = fread(err, 1, sizeof(err) - 1, cap);
	err[n] = '\0';
	fclose(cap);

	ck_assert_ptr_nonnull(sr);
	ck_assert_uint_eq(gb_shm_reporter_written(sr), 0);
	ck_assert_uint_eq(gb_shm_reporter_dropped(sr), 6);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent-gbatch-dir/ring"));
	ck_assert_ptr_nonnull(strstr(err, "counted as dropped"));
	ck_assert_ptr_eq(strchr(err, '\n'), err + n - 1); /* one line */
	gb_shm_reporter_close(sr);
}
END_TEST

#define WRITERS 4
#define PER_WRITER 200
static gb_tele *shared;

static void *
writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_WRITER; i++) {
		GB_SCOPE(shared, "work") {
			gb_tele_count(shared, "items", 1, NULL, 0);
		}
	}
	return NULL;
}

static size_t counted[2];

static void
count_handler(void *ctx, uint16_t type, const uint8_t *payload, size_t len)
{
	gb_rec_kv kv[GB_REC_MAX_META];
	gb_record r;

	(void)ctx;
	(void)type;
	ck_assert_int_eq(gb__rec_decode(payload, len, &r, kv), 0);
	counted[r.kind == GB_REC_COUNTER]++;
}

START_TEST(threads_write_concurrently)
{
	pthread_t th[WRITERS];

	open_consumer(0);
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	gb_reporter rep = gb_shm_reporter_as_reporter(sr);
	shared = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	for (int i = 0; i < WRITERS; i++)
		pthread_create(&th[i], NULL, writer, NULL);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	gb_tele_free(shared);

	ck_assert_uint_eq(gb_shm_reporter_written(sr), 2 * WRITERS * PER_WRITER);
	ck_assert_uint_eq(gb_shm_reporter_dropped(sr), 0);
	while (gb__ring_read(consumer, count_handler, NULL, 1000) > 0)
		;
	ck_assert_uint_eq(counted[0], WRITERS * PER_WRITER);
	ck_assert_uint_eq(counted[1], WRITERS * PER_WRITER);
	gb_shm_reporter_close(sr);
	close_consumer();
}
END_TEST

/* In the runner process: the prefix of every ring of this run. */
static void
record_runner_pid(void)
{
	runner_pid = getpid();
}

/* Each thread counts what it writes in a slot of its own, 64 of them, given back at its exit:
 * with 80 threads alive at once (16 past the slots) and then 100 more one after another
 * (reusing slots), every record is counted once, in written or dropped. */
#define MANY_WRITERS 80
#define LATE_WRITERS 100
#define EACH_WRITES 50

static pthread_barrier_t all_alive;
static gb_reporter many_rep;

static void *
many_writer(void *arg)
{
	gb_tele_meta m = { .call_count = 1, .metric_type = "counter" };

	if (arg != NULL)
		pthread_barrier_wait(&all_alive);
	for (int i = 0; i < EACH_WRITES; i++)
		many_rep.record_metric(many_rep.self, "slots.writes", 1, &m);
	if (arg != NULL)
		pthread_barrier_wait(&all_alive); /* nobody exits before all have written */
	return NULL;
}

START_TEST(written_counted_exactly_past_the_writer_slots)
{
	pthread_t th[MANY_WRITERS];
	uint64_t total = (MANY_WRITERS + LATE_WRITERS) * EACH_WRITES;

	open_consumer(0);
	gb_shm_reporter *sr = gb_shm_reporter_open(ring_name);
	many_rep = gb_shm_reporter_as_reporter(sr);
	counted[0] = counted[1] = 0;
	pthread_barrier_init(&all_alive, NULL, MANY_WRITERS);
	for (int i = 0; i < MANY_WRITERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, many_writer, &all_alive), 0);
	for (int i = 0; i < MANY_WRITERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&all_alive);
	ck_assert_uint_eq(gb_shm_reporter_written(sr), MANY_WRITERS * EACH_WRITES);
	for (int i = 0; i < LATE_WRITERS; i++) {
		ck_assert_int_eq(pthread_create(&th[0], NULL, many_writer, NULL), 0);
		pthread_join(th[0], NULL);
	}
	many_writer(NULL); /* and this thread */
	total += EACH_WRITES;
	ck_assert_uint_eq(gb_shm_reporter_written(sr), total);
	ck_assert_uint_eq(gb_shm_reporter_dropped(sr), 0);
	while (gb__ring_read(consumer, count_handler, NULL, 1000) > 0)
		;
	ck_assert_uint_eq(counted[1], total);
	gb_shm_reporter_close(sr);
	close_consumer();
}
END_TEST

static Suite *
reporter_shm_suite(void)
{
	Suite *s = suite_create("reporter_shm");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, round_trip_keeps_every_field);
	tcase_add_test(tc, context_writes_what_the_callbacks_write);
	tcase_add_test(tc, oversize_input_truncated_and_flagged);
	tcase_add_test(tc, metadata_past_the_record_limit_is_counted);
	tcase_add_test(tc, full_ring_drops_and_counts);
	tcase_add_test(tc, heartbeat_while_open_detached_on_close);
	tcase_add_test(tc, unopenable_ring_warns_once_and_counts);
	tcase_add_test(tc, threads_write_concurrently);
	tcase_add_test(tc, written_counted_exactly_past_the_writer_slots);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = reporter_shm_suite,
	.before_run = record_runner_pid, .after_run = remove_run_rings };
