/*
 * ring_procs.c - the ring across real processes: producers and consumers are forked
 * children or the parent, never threads of one process, as in production.
 *   ring_procs stress [records-per-thread [ring-bytes]]
 *                                            4 producer processes x 2 threads vs a consumer
 *   ring_procs kill                          a producer SIGKILLed between claim and commit
 *   ring_procs restart                       the consumer stops mid-stream, a new one resumes
 * Exits 0 when every check holds, 1 with a message naming the failed check otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ring.h"

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "ring_procs: %s:%d: check failed: %s: ",	\
		    __FILE__, __LINE__, #cond);				\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		exit(1);						\
	}								\
} while (0)

#define PRODUCERS 4
#define THREADS 2
#define IDS (PRODUCERS * THREADS)

static char ring_name[64];
static pid_t main_pid;

/* A failed check in the main process still removes the test's segment. */
static void
remove_ring(void)
{
	if (getpid() == main_pid)
		gb__ring_unlink(ring_name, NULL, 0);
}

static void
nap_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static gb_ring *
open_ring(bool consumer, uint64_t capacity, uint64_t unblock_ns)
{
	gb_ring_opts o;
	gb_ring *r = NULL;
	char err[512] = "";
	int rc;

	gb__ring_opts_init(&o);
	o.capacity = capacity;
	o.unblock_timeout_ns = unblock_ns;
	rc = consumer ? gb__ring_open_consumer(&r, ring_name, &o, err, sizeof(err)) :
	    gb__ring_open_producer(&r, ring_name, &o, err, sizeof(err));
	CHECK(rc == GB_RING_OK, "%s", err);
	return r;
}

/* Payload: {uint32 id, uint32 len, uint64 seq} then filler bytes (uint8)(seq + id). */
static int
put_record(gb_ring *r, uint32_t id, uint64_t seq, size_t len)
{
	gb_ring_claim c;
	uint32_t l32 = (uint32_t)len;
	int rc = gb__ring_claim(r, GB_RING_TYPE_TELEMETRY, len, &c);

	if (rc != GB_RING_OK)
		return rc;
	memcpy(c.data, &id, 4);
	memcpy(c.data + 4, &l32, 4);
	memcpy(c.data + 8, &seq, 8);
	memset(c.data + 16, (int)(uint8_t)(seq + id), len - 16);
	gb__ring_commit(r, &c);
	return GB_RING_OK;
}

struct tally {
	uint64_t next[IDS], read, gaps;
	uint64_t *log;       /* restart: sequence numbers in reading order */
	size_t nlog, maxlog;
};

static void
on_record(void *ctx, uint16_t type, const uint8_t *p, size_t len)
{
	struct tally *t = ctx;
	uint32_t id, l32;
	uint64_t seq;
	size_t i;

	CHECK(type == GB_RING_TYPE_TELEMETRY, "type %u", type);
	CHECK(len >= 16, "record of %zu bytes", len);
	memcpy(&id, p, 4);
	memcpy(&l32, p + 4, 4);
	memcpy(&seq, p + 8, 8);
	CHECK(id < IDS, "producer id %u", id);
	CHECK(l32 == len, "length %zu, payload says %u", len, l32);
	CHECK(seq >= t->next[id], "id %u: seq %" PRIu64 " after %" PRIu64 " (read twice or "
	    "out of order)", id, seq, t->next[id]);
	for (i = 16; i < len; i++)
		CHECK(p[i] == (uint8_t)(seq + id), "id %u seq %" PRIu64 ": filler byte %zu",
		    id, seq, i);
	t->gaps += seq - t->next[id];
	t->next[id] = seq + 1;
	t->read++;
	if (t->log != NULL && t->nlog < t->maxlog)
		t->log[t->nlog++] = seq;
}

/* ---- stress ---- */

struct writer {
	gb_ring *r;
	uint32_t id;
	uint64_t n, ok;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t seq;

	for (seq = 0; seq < w->n; seq++) {
		if (put_record(w->r, w->id, seq, 16 + (size_t)(seq * 7 % 120)) == GB_RING_OK)
			w->ok++;
		/* a pause now and then, so that some laps are read and some are dropped */
		if (seq % 4096 == 0) {
			gb__ring_heartbeat(w->r);
			nap_ms(1);
		}
	}
	return NULL;
}

static void
stress_child(int proc, uint64_t n, int out)
{
	gb_ring *r = open_ring(false, 0, 0);
	struct writer w[THREADS];
	pthread_t t[THREADS];
	uint64_t ok[THREADS];
	int i;

	for (i = 0; i < THREADS; i++) {
		w[i] = (struct writer){ r, (uint32_t)(proc * THREADS + i), n, 0 };
		CHECK(pthread_create(&t[i], NULL, writer_main, &w[i]) == 0, "pthread_create");
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ok[i] = w[i].ok;
	}
	CHECK(write(out, ok, sizeof(ok)) == (ssize_t)sizeof(ok), "pipe write");
	gb__ring_close(r);
	_exit(0);
}

static int
stress(uint64_t n, uint64_t capacity)
{
	gb_ring *c = open_ring(true, capacity, 10 * GB_NS_PER_SEC);
	struct tally t = { 0 };
	gb_ring_stats st;
	uint64_t ok[THREADS], written_ok = 0, deadline, tail_gaps = 0;
	pid_t pids[PRODUCERS];
	int fds[2], i, running = PRODUCERS, status;

	CHECK(pipe(fds) == 0, "pipe");
	for (i = 0; i < PRODUCERS; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0, "fork");
		if (pids[i] == 0) {
			close(fds[0]);
			stress_child(i, n, fds[1]);
		}
	}
	close(fds[1]);
	deadline = gb__clock_mono_ns() + 100 * GB_NS_PER_SEC;
	while (running > 0) {
		CHECK(gb__clock_mono_ns() < deadline, "producers still running after 100 s");
		if (gb__ring_read(c, on_record, &t, 1024) == 0)
			gb__ring_wait(c, 10 * GB_NS_PER_MS);
		for (i = 0; i < PRODUCERS; i++)
			if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
				CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
				    "producer %d failed (status %#x)", i, status);
				pids[i] = 0;
				running--;
			}
	}
	while (gb__ring_read(c, on_record, &t, 1024) > 0)
		;
	for (i = 0; i < PRODUCERS; i++) {
		CHECK(read(fds[0], ok, sizeof(ok)) == (ssize_t)sizeof(ok), "pipe read");
		written_ok += ok[0] + ok[1];
	}
	for (i = 0; i < IDS; i++)
		tail_gaps += n - t.next[i];
	gb__ring_stats(c, &st);
	printf("stress: %d processes x %d threads x %" PRIu64 " records: read %" PRIu64
	    ", dropped %" PRIu64 "\n", PRODUCERS, THREADS, n, t.read, st.dropped_records);
	CHECK(st.head == st.tail, "head %" PRIu64 " tail %" PRIu64, st.head, st.tail);
	CHECK(t.read == written_ok, "read %" PRIu64 ", producers wrote %" PRIu64, t.read,
	    written_ok);
	CHECK(t.read + st.dropped_records == n * IDS, "read %" PRIu64 " + dropped %" PRIu64
	    " != %" PRIu64, t.read, st.dropped_records, n * IDS);
	CHECK(t.gaps + tail_gaps == st.dropped_records, "missing sequence numbers %" PRIu64
	    " != dropped %" PRIu64, t.gaps + tail_gaps, st.dropped_records);
	CHECK(st.unblocked_records == 0 && st.invalid_records == 0, "unblocked %" PRIu64
	    " invalid %" PRIu64, st.unblocked_records, st.invalid_records);
	CHECK(st.producers_ever == PRODUCERS && st.producers_live == 0,
	    "producers ever %u live %u", st.producers_ever, st.producers_live);
	gb__ring_close(c);
	return 0;
}

/* ---- kill ---- */

#define KILL_UNBLOCK_NS (300 * GB_NS_PER_MS)
#define KILL_RECORDS 2000

static int
kill_test(void)
{
	gb_ring *c = open_ring(true, 0, KILL_UNBLOCK_NS);
	struct tally t = { 0 };
	gb_ring_stats st;
	uint64_t t_kill, t_unblocked = 0, deadline;
	pid_t stuck, steady;
	int fds[2], status;
	char byte;

	CHECK(pipe(fds) == 0, "pipe");
	if ((stuck = fork()) == 0) {
		gb_ring *r = open_ring(false, 0, 0);
		gb_ring_claim cl;

		CHECK(gb__ring_claim(r, GB_RING_TYPE_TELEMETRY, 100, &cl) == GB_RING_OK, "claim");
		memset(cl.data, 0x55, 50);
		CHECK(write(fds[1], "c", 1) == 1, "pipe write");
		for (;;)
			pause();
	}
	CHECK(stuck > 0, "fork");
	CHECK(read(fds[0], &byte, 1) == 1, "the stuck producer did not claim");
	/* records behind the stuck claim, from a producer that keeps going */
	if ((steady = fork()) == 0) {
		gb_ring *r = open_ring(false, 0, 0);
		uint64_t seq;

		for (seq = 0; seq < KILL_RECORDS; seq++) {
			CHECK(put_record(r, 1, seq, 16 + (size_t)(seq % 64)) == GB_RING_OK,
			    "steady producer dropped seq %" PRIu64, seq);
			if (seq % 10 == 0)
				nap_ms(1);
		}
		gb__ring_close(r);
		_exit(0);
	}
	CHECK(steady > 0, "fork");
	nap_ms(50);
	CHECK(kill(stuck, SIGKILL) == 0, "kill");
	CHECK(waitpid(stuck, &status, 0) == stuck && WIFSIGNALED(status), "reap");
	t_kill = gb__clock_mono_ns();
	deadline = t_kill + 30 * GB_NS_PER_SEC;
	while (t.read < KILL_RECORDS) {
		CHECK(gb__clock_mono_ns() < deadline, "read %" PRIu64 " of %d records in 30 s",
		    t.read, KILL_RECORDS);
		if (gb__ring_read(c, on_record, &t, 256) == 0)
			gb__ring_wait(c, 20 * GB_NS_PER_MS);
		if (t_unblocked == 0) {
			gb__ring_stats(c, &st);
			if (st.unblocked_records > 0)
				t_unblocked = gb__clock_mono_ns();
		}
	}
	CHECK(waitpid(steady, &status, 0) == steady && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "steady producer failed");
	gb__ring_stats(c, &st);
	printf("kill: unblocked %.3f s after the kill (timeout %.3f s), read %" PRIu64 "\n",
	    (double)(t_unblocked - t_kill) / 1e9, (double)KILL_UNBLOCK_NS / 1e9, t.read);
	CHECK(st.unblocked_records == 1, "unblocked %" PRIu64, st.unblocked_records);
	CHECK(t_unblocked != 0 && t_unblocked - t_kill <= KILL_UNBLOCK_NS + GB_NS_PER_SEC,
	    "unblocked after %" PRIu64 " ns", t_unblocked - t_kill);
	CHECK(t.next[1] == KILL_RECORDS && t.gaps == 0, "steady producer's records: next %"
	    PRIu64 " gaps %" PRIu64, t.next[1], t.gaps);
	CHECK(st.dropped_records == 0 && st.head == st.tail, "dropped %" PRIu64,
	    st.dropped_records);
	gb__ring_close(c);
	return 0;
}

/* ---- restart ---- */

#define RESTART_RECORDS 20000
#define RESTART_FIRST 5000

/* A consumer process: reads until it has `want` records (or the last one), writes the
 * sequence numbers it read to fd, closes the ring and exits. */
static void
restart_consumer(uint64_t want, int out)
{
	gb_ring *c = open_ring(true, 0, 0);
	struct tally t = { 0 };
	uint64_t deadline = gb__clock_mono_ns() + 30 * GB_NS_PER_SEC;

	t.maxlog = RESTART_RECORDS;
	CHECK((t.log = calloc(t.maxlog, sizeof(*t.log))) != NULL, "calloc");
	while (t.nlog < want && (t.nlog == 0 || t.log[t.nlog - 1] != RESTART_RECORDS - 1)) {
		CHECK(gb__clock_mono_ns() < deadline, "consumer read only %zu records", t.nlog);
		if (gb__ring_read(c, on_record, &t, 100) == 0)
			gb__ring_wait(c, 20 * GB_NS_PER_MS);
	}
	gb__ring_close(c);
	CHECK(write(out, &t.nlog, sizeof(t.nlog)) == (ssize_t)sizeof(t.nlog), "pipe");
	CHECK(write(out, t.log, t.nlog * sizeof(*t.log)) == (ssize_t)(t.nlog * sizeof(*t.log)),
	    "pipe");
	_exit(0);
}

static size_t
collect(pid_t pid, int in, uint64_t *log)
{
	size_t n, got = 0;
	ssize_t k;
	int status;

	CHECK(read(in, &n, sizeof(n)) == (ssize_t)sizeof(n), "consumer sent nothing");
	while (got < n * sizeof(*log)) {
		k = read(in, (uint8_t *)log + got, n * sizeof(*log) - got);
		CHECK(k > 0, "short log from the consumer");
		got += (size_t)k;
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "consumer failed (status %#x)", status);
	return n;
}

static int
restart(void)
{
	uint64_t *log = calloc(2 * RESTART_RECORDS, sizeof(*log));
	size_t n1, n2, i;
	pid_t prod, c1, c2;
	int fds[2], status;
	gb_ring *r;

	CHECK(log != NULL, "calloc");
	CHECK(pipe(fds) == 0, "pipe");
	/* the producer creates the ring with the default 4 MiB: never full in this test */
	r = open_ring(false, 0, 0);
	gb__ring_close(r);
	if ((c1 = fork()) == 0)
		restart_consumer(RESTART_FIRST, fds[1]);
	if ((prod = fork()) == 0) {
		uint64_t seq;

		r = open_ring(false, 0, 0);
		for (seq = 0; seq < RESTART_RECORDS; seq++) {
			CHECK(put_record(r, 0, seq, 24) == GB_RING_OK, "dropped seq %" PRIu64, seq);
			if (seq % 50 == 0)
				nap_ms(1);
		}
		gb__ring_close(r);
		_exit(0);
	}
	CHECK(c1 > 0 && prod > 0, "fork");
	n1 = collect(c1, fds[0], log);
	if ((c2 = fork()) == 0)
		restart_consumer(RESTART_RECORDS, fds[1]);
	CHECK(c2 > 0, "fork");
	n2 = collect(c2, fds[0], log + n1);
	CHECK(waitpid(prod, &status, 0) == prod && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "producer failed");
	printf("restart: first consumer read %zu, second %zu\n", n1, n2);
	CHECK(n1 >= RESTART_FIRST && n1 < RESTART_RECORDS, "first consumer read %zu", n1);
	CHECK(n1 + n2 == RESTART_RECORDS, "read %zu + %zu of %d", n1, n2, RESTART_RECORDS);
	for (i = 0; i < n1 + n2; i++)
		CHECK(log[i] == i, "record %zu was seq %" PRIu64 " (lost or read twice)", i, log[i]);
	free(log);
	return 0;
}

int
main(int argc, char **argv)
{
	char err[512];
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: ring_procs stress [records-per-thread] | kill | restart\n");
		return 2;
	}
	snprintf(ring_name, sizeof(ring_name), "test-procs-%s-%d", argv[1], (int)getpid());
	main_pid = getpid();
	atexit(remove_ring);
	if (strcmp(argv[1], "stress") == 0)
		rc = stress(argc > 2 ? strtoull(argv[2], NULL, 10) : 100000,
		    argc > 3 ? strtoull(argv[3], NULL, 10) : 1u << 20);
	else if (strcmp(argv[1], "kill") == 0)
		rc = kill_test();
	else if (strcmp(argv[1], "restart") == 0)
		rc = restart();
	else {
		fprintf(stderr, "ring_procs: unknown test \"%s\"\n", argv[1]);
		return 2;
	}
	if (gb__ring_unlink(ring_name, err, sizeof(err)) == -1)
		fprintf(stderr, "ring_procs: %s\n", err);
	main_pid = 0;
	return rc;
}
