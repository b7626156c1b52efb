/*
 * ring_watch.c - what either side learns about a segment after opening it: whether it is still
 * whole and still the one at its name (shrunk, removed, replaced), its counters and the marks of
 * what was reported, and a producer leaving a removed segment counting what nobody read there.
 */
#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

/* ---- both sides ---- */

unsigned
gb__ring_check(gb_ring *r)
{
	struct stat st, at;
	unsigned what = 0;

	if (fstat(r->fd, &st) == 0) {
		if (st.st_size < 0 || (uint64_t)st.st_size < r->map_len) {
			what |= GB_RING_SHRUNK;
			atomic_store_explicit(&r->unusable, true, memory_order_release);
		}
		if (st.st_nlink == 0)
			what |= GB_RING_REMOVED;
	}
	if (lstat(r->path, &at) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			what |= GB_RING_REMOVED;
	} else if (at.st_dev != r->dev || at.st_ino != r->ino) {
		what |= GB_RING_REPLACED; /* often REMOVED too: a rename over it unlinks it */
	}
	if (atomic_load_explicit(&r->unusable, memory_order_acquire))
		what |= GB_RING_SHRUNK;
	return what;
}

bool
gb__ring_check_size(gb_ring *r)
{
	struct stat st;

	if (fstat(r->fd, &st) == 0 && (st.st_size < 0 || (uint64_t)st.st_size < r->map_len))
		atomic_store_explicit(&r->unusable, true, memory_order_release);
	return atomic_load_explicit(&r->unusable, memory_order_acquire);
}

void
gb__ring_set_unusable(gb_ring *r)
{
	atomic_store_explicit(&r->unusable, true, memory_order_release);
}

bool
gb__ring_is_unusable(const gb_ring *r)
{
	return atomic_load_explicit(&r->unusable, memory_order_acquire);
}

int
gb__ring_path_changed(const char *name, dev_t dev, ino_t ino)
{
	gb_ring r;
	struct stat st;

	if (gb__ring_names(&r, gb__ring_resolve_name(name), NULL, 0) == -1)
		return 0;
	if (lstat(r.path, &st) == -1)
		return errno == ENOENT ? 1 : 0;
	return st.st_dev != dev || st.st_ino != ino;
}

void
gb__ring_identity(const gb_ring *r, dev_t *dev, ino_t *ino)
{
	*dev = r->dev;
	*ino = r->ino;
}

void
gb__ring_mapping(const gb_ring *r, const void **base, size_t *len)
{
	*base = r->map;
	*len = r->map_len;
}

/* ---- a producer leaving a removed or replaced segment ---- */

void
gb__ring_leave(gb_ring *r)
{
	if (r->slot < 0 || atomic_load_explicit(&r->unusable, memory_order_acquire))
		return;
	atomic_store_explicit(&r->hdr->producers[r->slot].state, GB_RL_SLOT_DETACHED,
	    memory_order_relaxed);
	atomic_store_explicit(&r->hdr->producers[r->slot].heartbeat_ns, 0, memory_order_release);
	r->slot = -1;
}

int
gb__ring_orphan_drain(gb_ring *r, uint64_t *unread)
{
	uint64_t now = gb__clock_real_coarse_ns(), tail;
	size_t n;
	unsigned i;

	*unread = 0;
	if (atomic_load_explicit(&r->unusable, memory_order_acquire))
		return 0; /* shrunk: what it held is gone, nothing can be read or counted */
	if (gb__ring_check(r) & GB_RING_SHRUNK)
		return 0;
	gb__ring_leave(r);
	for (i = 0; i < GB_RL_PRODUCERS; i++) {
		gb_rl_producer *p = &r->hdr->producers[i];
		uint64_t hb = atomic_load_explicit(&p->heartbeat_ns, memory_order_relaxed);

		if (atomic_load_explicit(&p->state, memory_order_relaxed) == GB_RL_SLOT_ATTACHED &&
		    hb != 0 && (hb >= now || now - hb <= GB_RL_PRODUCER_STALE_NS))
			return 1; /* another producer still writes into it: it counts when it leaves */
	}
	if (flock(r->fd, LOCK_EX | LOCK_NB) == -1)
		return 1; /* a consumer still drains it */
	/* no one else reads it: this producer reads it to its end as its consumer and counts */
	r->consumer = true;
	r->head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	r->released = r->head;
	gb__ring_finish_release(r);
	while ((n = gb__ring_read_hold(r, NULL, NULL, 4096)) > 0) {
		*unread += n;
		gb__ring_release(r);
	}
	gb__ring_release(r);
	/* refuse claims from now on (they fail and are counted by their caller), then make sure
	 * none slipped in since the read: a claim that moved tail before this store is seen in
	 * tail below; one that moves it after sees the flag (gb__ring_claim) and counts itself */
	atomic_store_explicit(&r->unusable, true, memory_order_seq_cst);
	tail = atomic_load_explicit(&r->hdr->tail, memory_order_seq_cst);
	r->consumer = false;
	if (r->head != tail) {
		/* a claim not yet committed, or one that just came: read it on a later call */
		atomic_store_explicit(&r->unusable, false, memory_order_seq_cst);
		flock(r->fd, LOCK_UN);
		return 1;
	}
	flock(r->fd, LOCK_UN);
	return 0;
}

void
gb__ring_set_exported(gb_ring *r, uint64_t dropped, uint64_t unblocked)
{
	if (!r->consumer || atomic_load_explicit(&r->unusable, memory_order_acquire))
		return;
	atomic_store_explicit(&r->hdr->exported_dropped, dropped, memory_order_release);
	atomic_store_explicit(&r->hdr->exported_unblocked, unblocked, memory_order_release);
}

void
gb__ring_stats(gb_ring *r, gb_ring_stats *s)
{
	gb_rl_header *h = r->hdr;
	uint64_t now = gb__clock_real_coarse_ns();
	unsigned i;

	memset(s, 0, sizeof(*s));
	s->capacity = r->capacity;
	s->max_record = r->max_record;
	if (atomic_load_explicit(&r->unusable, memory_order_acquire))
		return;
	s->head = atomic_load_explicit(&h->head, memory_order_relaxed);
	s->tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	s->dropped_records = atomic_load_explicit(&h->dropped_records, memory_order_relaxed);
	s->dropped_bytes = atomic_load_explicit(&h->dropped_bytes, memory_order_relaxed);
	s->unblocked_records = atomic_load_explicit(&h->unblocked_records,
	    memory_order_relaxed);
	s->invalid_records = atomic_load_explicit(&h->invalid_records, memory_order_relaxed);
	s->producers_ever = (unsigned)atomic_load_explicit(&h->producers_ever,
	    memory_order_relaxed);
	/* the marks are another process's bytes: never past the counters they mark */
	s->exported_dropped = atomic_load_explicit(&h->exported_dropped, memory_order_relaxed);
	s->exported_unblocked = atomic_load_explicit(&h->exported_unblocked,
	    memory_order_relaxed);
	if (s->exported_dropped > s->dropped_records)
		s->exported_dropped = s->dropped_records;
	if (s->exported_unblocked > s->unblocked_records)
		s->exported_unblocked = s->unblocked_records;
	for (i = 0; i < GB_RL_PRODUCERS; i++) {
		gb_rl_producer *p = &h->producers[i];
		uint64_t hb = atomic_load_explicit(&p->heartbeat_ns, memory_order_relaxed);

		if (atomic_load_explicit(&p->state, memory_order_relaxed) != GB_RL_SLOT_ATTACHED)
			continue;
		if (hb != 0 && (hb >= now || now - hb <= GB_RL_PRODUCER_STALE_NS))
			s->producers_live++;
		if (hb > s->newest_heartbeat_ns)
			s->newest_heartbeat_ns = hb;
	}
}

const char *
gb__ring_name(const gb_ring *r)
{
	return r->name;
}
