/*
 * ring_produce.c - the producer side of the ring: the lock-free claim/commit of Aeron's
 * many-to-one ring buffer, abort, write, the heartbeat, and the consumer's wake-up.
 */
#include "ring_internal.h"

#include <assert.h>
#include <stdatomic.h>
#include <string.h>

#include "clock.h"

#define CLAIM_ATTEMPTS 256 /* CAS failures before a claim gives up */

static int
drop(gb_ring *r, size_t len, int status)
{
	atomic_fetch_add_explicit(&r->hdr->dropped_records, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->hdr->dropped_bytes, len, memory_order_relaxed);
	return status;
}

/* True when `need` bytes fit between tail and head (false on nonsense positions). */
static bool
fits(const gb_ring *r, uint64_t head, uint64_t tail, uint64_t need)
{
	uint64_t used = tail - head;

	return tail >= head && used <= r->capacity && need <= r->capacity - used;
}

/* The end of a claim that moved tail from `tail` to take pad + stride bytes: the padding,
 * the claimed header, c. */
static inline int
claimed(gb_ring *r, uint16_t type, size_t len, gb_ring_claim *c, uint64_t tail, uint64_t pad,
    uint64_t stride)
{
	uint64_t off = tail & r->mask;

	/* gb__ring_orphan_drain sets the flag, then reads tail (both seq_cst); this claim moved
	 * tail, then reads the flag: one of the two sees the other. When this one does, nobody will
	 * read the segment again: the span becomes padding and the record is counted dropped. */
	if (__builtin_expect(atomic_load_explicit(&r->unusable, memory_order_seq_cst), 0)) {
		if (pad != 0)
			atomic_store_explicit(gb__ring_word_at(r, off), gb__rl_word((int32_t)pad,
			    GB_RING_TYPE_PADDING, gb__ring_lap_tag(r, tail)), memory_order_release);
		atomic_store_explicit(gb__ring_word_at(r, pad != 0 ? 0 : off),
		    gb__rl_word((int32_t)stride, GB_RING_TYPE_PADDING, gb__ring_lap_tag(r, tail + pad)),
		    memory_order_release);
		return drop(r, len, GB_RING_DAMAGED);
	}
	if (pad != 0) {
		atomic_store_explicit(gb__ring_word_at(r, off), gb__rl_word((int32_t)pad,
		    GB_RING_TYPE_PADDING, gb__ring_lap_tag(r, tail)), memory_order_release);
		off = 0;
	}
	atomic_store_explicit(gb__ring_word_at(r, off), gb__rl_word(-(int32_t)(GB_RL_REC_HEADER + len),
	    type, gb__ring_lap_tag(r, tail + pad)), memory_order_relaxed);
	c->data = r->data + off + GB_RL_REC_HEADER;
	c->len = len;
	c->pos = tail + pad;
	return GB_RING_OK;
}

/* A claim the first attempt could not make: the wrap, a stale head_cache, a full ring, another
 * producer's claim between the load of tail and the CAS, or a damaged segment. */
static __attribute__((noinline)) int
claim_slow(gb_ring *r, uint16_t type, size_t len, gb_ring_claim *c, uint64_t head, uint64_t tail)
{
	gb_rl_header *h = r->hdr;
	uint64_t off, pad, stride = gb__ring_align8(GB_RL_REC_HEADER + len), to_end;

	if (len > r->max_record)
		return drop(r, len, GB_RING_TOO_BIG);
	for (int attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
		/* only a damaged segment holds such a tail; the consumer's next read resets it */
		if (tail & (GB_RL_ALIGN - 1))
			return drop(r, len, GB_RING_INVALID);
		off = tail & r->mask;
		to_end = r->capacity - off;
		pad = stride > to_end ? to_end : 0;
		if (!fits(r, head, tail, pad + stride)) {
			head = atomic_load_explicit(&h->head, memory_order_acquire);
			if (!fits(r, head, tail, pad + stride))
				return drop(r, len, GB_RING_FULL);
			atomic_store_explicit(&h->head_cache, head, memory_order_release);
		}
		if (atomic_compare_exchange_weak_explicit(&h->tail, &tail, tail + pad + stride,
		    memory_order_seq_cst, memory_order_relaxed))
			return claimed(r, type, len, c, tail, pad, stride);
	}
	return drop(r, len, GB_RING_FULL);
}

/* The first attempt is the whole claim when the record fits before the end of the data area
 * and within the cached head, and no other producer moves tail meanwhile: one CAS. Inlined
 * into gb__ring_claim and gb__ring_write. */
static inline __attribute__((always_inline)) int
claim(gb_ring *r, uint16_t type, size_t len, gb_ring_claim *c)
{
	gb_rl_header *h = r->hdr;
	uint64_t head, tail, stride;

	assert(type != GB_RING_TYPE_PADDING);
	/* a process-local flag set on the slow path: the segment must not be touched (a plain
	 * load on x86) */
	if (atomic_load_explicit(&r->unusable, memory_order_acquire))
		return GB_RING_DAMAGED;
	head = atomic_load_explicit(&h->head_cache, memory_order_acquire);
	tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	stride = gb__ring_align8(GB_RL_REC_HEADER + len);
	if (__builtin_expect(len <= r->max_record && !(tail & (GB_RL_ALIGN - 1)) &&
	    stride <= r->capacity - (tail & r->mask) && fits(r, head, tail, stride) &&
	    atomic_compare_exchange_strong_explicit(&h->tail, &tail, tail + stride,
	    memory_order_seq_cst, memory_order_relaxed), 1))
		return claimed(r, type, len, c, tail, 0, stride);
	return claim_slow(r, type, len, c, head, tail);
}

int
gb__ring_claim(gb_ring *r, uint16_t type, size_t len, gb_ring_claim *c)
{
	return claim(r, type, len, c);
}

/* The consumer announced sleep: the producer that takes the flag (exchange, so one producer
 * per sleep) bumps the wake word and wakes it; every other producer sees the flag clear and
 * makes no syscall. The consumer clears the flag itself too when it wakes on its own. */
static __attribute__((noinline)) void
wake_consumer(gb_ring *r)
{
	if (atomic_exchange_explicit(&r->hdr->sleeping, 0, memory_order_seq_cst) == 0)
		return;
	atomic_fetch_add_explicit(&r->hdr->futex_word, 1, memory_order_seq_cst);
	gb__ring_futex(&r->hdr->futex_word, FUTEX_WAKE, 1, NULL);
	atomic_fetch_add_explicit(&r->wakes, 1, memory_order_relaxed);
}

uint64_t
gb__ring_wakes(gb_ring *r)
{
	return atomic_load_explicit(&r->wakes, memory_order_relaxed);
}

/* Flips a claimed header to committed (type kept) or to padding: a release store, as Aeron
 * commits. The consumer pads over a claim stuck past the unblock timeout and gives its space
 * back, so a producer resuming after that (stopped, or preempted that long) first checks that
 * its claimed header, length and lap, is still there, and leaves the ring alone when it is
 * not. One resuming between that check and its store may still store its old header; the
 * consumer never takes a header of another lap than its position's (ring_layout.h). */
static inline __attribute__((always_inline)) bool
publish(gb_ring *r, gb_ring_claim *c, bool padding)
{
	_Atomic uint64_t *w = gb__ring_word_at(r, c->pos & r->mask);
	int32_t len = (int32_t)(GB_RL_REC_HEADER + c->len);
	uint16_t lap = gb__ring_lap_tag(r, c->pos);
	uint64_t old = atomic_load_explicit(w, memory_order_relaxed);

	if (gb__rl_length(old) != -len || (uint16_t)(old >> 48) != lap)
		return false;
	atomic_store_explicit(w, gb__rl_word(len, padding ? GB_RING_TYPE_PADDING : gb__rl_type(old),
	    lap), memory_order_release);
	return true;
}

/* No fence between the commit and the look at sleeping: the consumer waits out the store
 * buffer before it sleeps (ring_layout.h, line 8). */
static inline __attribute__((always_inline)) void
commit(gb_ring *r, gb_ring_claim *c)
{
	if (publish(r, c, false) &&
	    __builtin_expect(atomic_load_explicit(&r->hdr->sleeping, memory_order_relaxed) != 0, 0))
		wake_consumer(r);
}

void
gb__ring_commit(gb_ring *r, gb_ring_claim *c)
{
	commit(r, c);
}

void
gb__ring_abort(gb_ring *r, gb_ring_claim *c)
{
	publish(r, c, true);
}

int
gb__ring_write(gb_ring *r, uint16_t type, const void *payload, size_t len)
{
	gb_ring_claim c;
	int rc = claim(r, type, len, &c);

	if (rc != GB_RING_OK)
		return rc;
	memcpy(c.data, payload, len);
	commit(r, &c);
	return GB_RING_OK;
}

void
gb__ring_heartbeat(gb_ring *r)
{
	if (r->slot >= 0 && !atomic_load_explicit(&r->unusable, memory_order_relaxed))
		atomic_store_explicit(&r->hdr->producers[r->slot].heartbeat_ns,
		    gb__clock_real_coarse_ns(), memory_order_relaxed);
}
