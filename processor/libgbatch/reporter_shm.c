/*
 * reporter_shm.c - the shared-memory reporter: encodes every record straight into a claimed
 * slot of the telemetry ring (claim, encode, commit) for gbatch-collector to drain. It never
 * blocks and never fails its caller: a full ring or a ring that cannot be opened costs a count.
 * What it has written is counted per thread (a slot of its own, no locked instruction).
 * Its heartbeat thread also watches the segment: one found shrunk is no longer touched (its
 * records count as dropped); one removed or replaced is left for the segment now at the name,
 * and what was written into the old one and never read is counted as dropped.
 */
#include <gbatch/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "record.h"
#include "reporter_shm.h"
#include "ring.h"

#define HEARTBEAT_NS (250 * GB_NS_PER_MS)
#define RETIRED_MAX 8 /* segments left behind and still mapped (until close) */
#define WRITER_SLOTS 64 /* threads that count what they write without a locked instruction */

/* What one thread has written, in every reporter: only the thread that holds the slot's index
 * adds to it (a load and a store, no locked instruction), anyone may read it. 64 bytes apart,
 * so two threads' counts never share a cache line. */
struct writer_slot {
	_Atomic uint64_t n;
	char pad[56];
};

struct gb_shm_reporter {
	_Atomic(gb_ring *) ring; /* the segment written into; NULL when the ring could not be opened */
	/* heartbeat thread only (and close, after joining it): */
	gb_ring *retired[RETIRED_MAX]; /* segments left: still mapped, a late writer may hold one */
	bool retired_done[RETIRED_MAX]; /* its unread records were counted */
	uint64_t retired_unread[RETIRED_MAX];
	size_t n_retired;
	bool shrunk_warned, follow_warned;
	bool no_create; /* as opened: a removed ring is followed, never made, by an attacher */
	struct writer_slot writes[WRITER_SLOTS];
	_Atomic uint64_t written_shared; /* by the threads past WRITER_SLOTS */
	_Atomic uint64_t unread;  /* of what was written, what went into a left segment unread */
	_Atomic uint64_t dropped;
	atomic_bool full_warned;
	pthread_t heartbeat;
	pthread_mutex_t lock; /* guards stop, for the heartbeat thread's timed wait */
	pthread_cond_t cond;
	bool stop;
};

/* pid and tid are cached: both are system calls. A forked child refreshes them. The tid and
 * the writer slot's index are in static TLS (initial-exec): one load each, not a call into the
 * dynamic loader per record. */
static _Atomic uint32_t cached_pid;
static _Thread_local uint32_t cached_tid __attribute__((tls_model("initial-exec")));
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The writer slots' indices, one per live thread that has written (-1: none yet; -2: none was
 * free), given back when the thread exits. */
static _Thread_local int writer_index __attribute__((tls_model("initial-exec"))) = -1;
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;
static bool writer_taken[WRITER_SLOTS];
static pthread_once_t writer_once = PTHREAD_ONCE_INIT;
static pthread_key_t writer_key;
static bool writer_key_ok;

static void
after_fork_child(void)
{
	atomic_store_explicit(&cached_pid, (uint32_t)getpid(), memory_order_relaxed);
	cached_tid = 0;
	/* only this thread lives on: the other threads' indices are free again */
	pthread_mutex_init(&writer_lock, NULL);
	memset(writer_taken, 0, sizeof(writer_taken));
	if (writer_index >= 0)
		writer_taken[writer_index] = true;
}

static void
writer_release(void *index)
{
	pthread_mutex_lock(&writer_lock);
	writer_taken[(intptr_t)index - 1] = false;
	pthread_mutex_unlock(&writer_lock);
	writer_index = -1; /* a later destructor that records takes one again */
}

static void
writer_key_create(void)
{
	writer_key_ok = pthread_key_create(&writer_key, writer_release) == 0;
}

static int
writer_take(void)
{
	int i = -2;

	pthread_once(&writer_once, writer_key_create);
	if (writer_key_ok) {
		pthread_mutex_lock(&writer_lock);
		for (int k = 0; k < WRITER_SLOTS && i < 0; k++) {
			if (!writer_taken[k]) {
				writer_taken[k] = true;
				i = k;
			}
		}
		pthread_mutex_unlock(&writer_lock);
		if (i >= 0 && pthread_setspecific(writer_key, (void *)(intptr_t)(i + 1)) != 0) {
			writer_release((void *)(intptr_t)(i + 1));
			i = -2;
		}
	}
	return writer_index = i;
}

/* One more record written by this thread. */
static void
count_written(gb_shm_reporter *r)
{
	int i = writer_index;

	if (i == -1)
		i = writer_take();
	if (i >= 0) {
		_Atomic uint64_t *n = &r->writes[i].n;
		atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
		    memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&r->written_shared, 1, memory_order_relaxed);
	}
}

static void
install_atfork(void)
{
	atomic_store_explicit(&cached_pid, (uint32_t)getpid(), memory_order_relaxed);
	pthread_atfork(NULL, NULL, after_fork_child);
}

static inline uint32_t
this_tid(void)
{
	if (cached_tid == 0)
		cached_tid = (uint32_t)gettid();
	return cached_tid;
}

static uint8_t
kind_of(const char *metric_type)
{
	if (metric_type == NULL)
		return GB_REC_METRIC;
	if (strcmp(metric_type, "counter") == 0)
		return GB_REC_COUNTER;
	if (strcmp(metric_type, "gauge") == 0)
		return GB_REC_GAUGE;
	if (strcmp(metric_type, "histogram") == 0)
		return GB_REC_HISTOGRAM;
	return GB_REC_METRIC;
}

/* A record refused by the ring: counted, and the first refusal logged. */
static void
refused(gb_shm_reporter *r, gb_ring *ring, int st)
{
	atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
	if (st != GB_RING_DAMAGED && !atomic_exchange(&r->full_warned, true))
		gb__log_warnx("telemetry: ring \"%s\" %s: records are being dropped and counted",
		    gb__ring_name(ring), st == GB_RING_FULL ? "is full" : "refused a record");
}

/* Claims and encodes a record with metadata (the borrowed pairs of m); a copy of rec, so
 * that the caller's never has its address taken. */
static int
write_with_meta(gb_ring *ring, gb_record rec, const gb_tele_meta *m, gb_ring_claim *c)
{
	gb_rec_kv kv[GB_REC_MAX_META];
	size_t nkv = m->n_extra < GB_REC_MAX_META ? m->n_extra : GB_REC_MAX_META, size;
	int st;

	for (size_t i = 0; i < nkv; i++) {
		kv[i] = (gb_rec_kv){ .key = m->extra[i].key, .key_len = strlen(m->extra[i].key),
			.value = m->extra[i].value, .value_len = strlen(m->extra[i].value) };
	}
	rec.meta = kv;
	rec.n_meta = m->n_extra; /* more than GB_REC_MAX_META: the encoder flags the rest dropped */
	size = gb__rec_size(&rec);
	if ((st = gb__ring_claim(ring, GB_RING_TYPE_TELEMETRY, size, c)) == GB_RING_OK)
		gb__rec_write(&rec, c->data, size);
	return st;
}

/* Claims the record's exact size, encodes it straight into the claimed slot and commits: no
 * buffer in between, every length measured once (by the caller when it knows them). The
 * record's time is the coarse wall clock (a few ms): the context already read the precise
 * clock once per edge of a scope, and nothing downstream needs better than that. A record
 * without metadata (most) is sized and written inline. */
int
gb__shm_reporter_write(gb_shm_reporter *r, uint8_t kind, const char *scope, size_t scope_len,
    size_t parent_len, double value, const gb_tele_meta *m)
{
	gb_ring *ring = atomic_load_explicit(&r->ring, memory_order_acquire);
	gb_ring_claim c;
	int st;

	if (ring == NULL) {
		atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
		return 0;
	}
	gb_record rec = {
		.ts_ns = gb__clock_real_coarse_ns(),
		.value = value,
		.kind = kind,
		.depth = m->depth < 0 ? 0 : m->depth > UINT16_MAX ? UINT16_MAX : (uint16_t)m->depth,
		.pid = atomic_load_explicit(&cached_pid, memory_order_relaxed),
		.tid = this_tid(),
		.call_count = m->call_count,
		.scope = scope,
		.scope_len = scope_len,
		.parent_len = parent_len <= scope_len ? parent_len : 0,
	};
	if (m->n_extra == 0 && gb__rec_is_plain(&rec)) {
		/* the hot path: sized and written inline (rec never leaves this function) */
		st = gb__ring_claim(ring, GB_RING_TYPE_TELEMETRY, GB_REC_HEADER_SIZE + scope_len, &c);
		if (st == GB_RING_OK)
			gb__rec_write_plain(&rec, c.data);
	} else {
		st = write_with_meta(ring, rec, m, &c);
	}
	if (st != GB_RING_OK) {
		refused(r, ring, st);
		return 0;
	}
	gb__ring_commit(ring, &c);
	count_written(r);
	return 0;
}

static int
shm_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	return gb__shm_reporter_write(self, GB_REC_TIMING, scope, strlen(scope),
	    m->parent_scope != NULL ? strlen(m->parent_scope) : 0, seconds, m);
}

static int
shm_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	return gb__shm_reporter_write(self, kind_of(m->metric_type), scope, strlen(scope),
	    m->parent_scope != NULL ? strlen(m->parent_scope) : 0, value, m);
}

/* Moves n records from written to dropped: they went into a segment nobody will read. */
static void
count_unread(gb_shm_reporter *r, uint64_t n)
{
	if (n == 0)
		return;
	atomic_fetch_add_explicit(&r->unread, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->dropped, n, memory_order_relaxed);
}

/* Counts what is left unread in the segments left behind, once nobody else will read it. */
static void
drain_retired(gb_shm_reporter *r)
{
	for (size_t i = 0; i < r->n_retired; i++) {
		uint64_t n = 0;
		int rc;

		if (r->retired_done[i])
			continue;
		rc = gb__ring_orphan_drain(r->retired[i], &n);
		r->retired_unread[i] += n;
		count_unread(r, n);
		if (rc == 0) {
			r->retired_done[i] = true;
			if (r->retired_unread[i] > 0)
				gb__log_warnx("telemetry: ring \"%s\": %llu record(s) written into the "
				    "removed segment were never read by a collector: counted as dropped",
				    gb__ring_name(r->retired[i]),
				    (unsigned long long)r->retired_unread[i]);
		}
	}
}

/* The slow path, on every heartbeat: is the segment still the ring's, and whole? */
static void
watch_segment(gb_shm_reporter *r)
{
	gb_ring *ring = atomic_load_explicit(&r->ring, memory_order_relaxed), *nr;
	gb_ring_opts o;
	unsigned what;
	char err[256];

	if (ring == NULL)
		return;
	what = gb__ring_check(ring);
	if ((what & GB_RING_SHRUNK) && !r->shrunk_warned) {
		r->shrunk_warned = true;
		gb__log_warnx("telemetry: ring \"%s\": the segment shrank under this process "
		    "(another process truncated it): it is no longer written to, its records are "
		    "counted as dropped", gb__ring_name(ring));
	}
	if (!(what & (GB_RING_REMOVED | GB_RING_REPLACED)))
		return;
	if (r->n_retired == RETIRED_MAX) {
		if (!r->follow_warned)
			gb__log_warnx("telemetry: ring \"%s\" was removed or replaced again: this "
			    "producer keeps writing into the segment it has", gb__ring_name(ring));
		r->follow_warned = true;
		return;
	}
	gb__ring_opts_init(&o);
	o.no_create = r->no_create;
	if (gb__ring_open_producer(&nr, gb__ring_name(ring), &o, err, sizeof(err)) != GB_RING_OK) {
		if (!r->follow_warned)
			gb__log_warnx("telemetry: ring \"%s\" was %s; cannot follow it yet: %s",
			    gb__ring_name(ring), what & GB_RING_REPLACED ? "replaced" : "removed", err);
		r->follow_warned = true;
		return;
	}
	r->follow_warned = false;
	gb__log_warnx("telemetry: ring \"%s\" was %s under this producer: writing into the "
	    "segment now at its name", gb__ring_name(ring),
	    what & GB_RING_REPLACED ? "replaced by another segment" : "removed");
	atomic_store_explicit(&r->ring, nr, memory_order_release);
	gb__ring_leave(ring);
	r->retired[r->n_retired++] = ring;
}

/* Keeps this producer's heartbeat fresh so the collector knows it is alive, and watches the
 * segment (watch_segment). */
static void *
heartbeat_main(void *arg)
{
	gb_shm_reporter *r = arg;
	struct timespec ts;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		watch_segment(r);
		drain_retired(r);
		gb__ring_heartbeat(atomic_load_explicit(&r->ring, memory_order_relaxed));
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += HEARTBEAT_NS;
		if (ts.tv_nsec >= (long)GB_NS_PER_SEC) {
			ts.tv_sec++;
			ts.tv_nsec -= (long)GB_NS_PER_SEC;
		}
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Opens ring (creating it unless no_create) and starts the heartbeat thread. Returns NULL with
 * err filled when the ring cannot be opened; *oom tells running out of memory apart. */
static gb_shm_reporter *
shm_open_ring(const char *ring, bool no_create, char *err, size_t errlen, bool *oom)
{
	gb_shm_reporter *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	gb_ring_opts o;

	*oom = r == NULL;
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_once(&atfork_once, install_atfork);
	gb__ring_opts_init(&o);
	o.no_create = no_create;
	gb_ring *opened;
	if (gb__ring_open_producer(&opened, ring, &o, err, errlen) != GB_RING_OK) {
		free(r);
		return NULL;
	}
	atomic_init(&r->ring, opened);
	r->no_create = no_create;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&r->heartbeat, NULL, heartbeat_main, r) != 0) {
		gb__log_warnx("telemetry: cannot start the heartbeat thread of ring \"%s\"; the collector "
		    "may take this producer for dead", gb__ring_name(opened));
		r->stop = true;
	}
	return r;
}

gb_shm_reporter *
gb_shm_reporter_open(const char *ring)
{
	gb_shm_reporter *r;
	char err[256];
	bool oom;

	if ((r = shm_open_ring(ring, false, err, sizeof(err), &oom)) != NULL || oom)
		return r;
	gb__log_warnx("telemetry: %s; its records are counted as dropped", err);
	return calloc(1, sizeof(*r));
}

gb_shm_reporter *
gb__shm_reporter_attach(const char *ring, char *err, size_t errlen)
{
	bool oom;

	return shm_open_ring(ring, true, err, errlen, &oom);
}

gb_reporter
gb_shm_reporter_as_reporter(gb_shm_reporter *r)
{
	return (gb_reporter){ .self = r, .record_timing = shm_timing, .record_metric = shm_metric };
}

gb_shm_reporter *
gb__shm_reporter_of(const gb_reporter *rep)
{
	if (rep->record_timing == shm_timing && rep->record_metric == shm_metric)
		return rep->self;
	return NULL;
}

uint64_t
gb_shm_reporter_written(const gb_shm_reporter *r)
{
	uint64_t n = atomic_load_explicit(&r->written_shared, memory_order_relaxed), unread;

	for (size_t i = 0; i < WRITER_SLOTS; i++)
		n += atomic_load_explicit(&r->writes[i].n, memory_order_relaxed);
	unread = atomic_load_explicit(&r->unread, memory_order_relaxed);
	return n > unread ? n - unread : 0;
}

uint64_t
gb_shm_reporter_dropped(const gb_shm_reporter *r)
{
	return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

void
gb_shm_reporter_close(gb_shm_reporter *r)
{
	gb_ring *ring;
	bool running;

	if (r == NULL)
		return;
	ring = atomic_load_explicit(&r->ring, memory_order_acquire);
	if (ring != NULL) {
		pthread_mutex_lock(&r->lock);
		running = !r->stop;
		r->stop = true;
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->lock);
		if (running)
			pthread_join(r->heartbeat, NULL);
		/* one last look: a segment removed since the last heartbeat is left like the others,
		 * and what the left segments still hold is counted unless a collector still drains
		 * them (then they are its to read) or another producer still writes into them */
		if ((gb__ring_check(ring) & (GB_RING_REMOVED | GB_RING_REPLACED)) &&
		    r->n_retired < RETIRED_MAX) {
			gb__log_warnx("telemetry: ring \"%s\" was removed or replaced under this "
			    "producer", gb__ring_name(ring));
			gb__ring_leave(ring);
			r->retired[r->n_retired++] = ring;
			ring = NULL;
		}
		drain_retired(r);
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		gb__ring_close(ring);
		for (size_t i = 0; i < r->n_retired; i++)
			gb__ring_close(r->retired[i]);
	}
	free(r);
}
