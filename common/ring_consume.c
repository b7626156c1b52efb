/*
 * ring_consume.c - the consumer side of the ring: reading and holding records in order,
 * releasing them to the producers, unblocking dead producers' claims, surviving corrupt
 * bytes, and the futex sleep.
 */
#include "ring_internal.h"

#include <assert.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "clock.h"

/* Zeroes n bytes of the data area from ring position pos, across the wrap if needed. */
static void
zero_span(gb_ring *r, uint64_t pos, uint64_t n)
{
	uint64_t off = pos & r->mask, first;

	if (n > r->capacity)
		n = r->capacity;
	first = n < r->capacity - off ? n : r->capacity - off;
	memset(r->data + off, 0, first);
	memset(r->data, 0, n - first);
}

static void
count_invalid(gb_ring *r)
{
	atomic_fetch_add_explicit(&r->hdr->invalid_records, 1, memory_order_relaxed);
}

/* Corrupt bytes at head: drop everything claimed so far and go on from tail (the release
 * zeroes them). */
static void
skip_to(gb_ring *r, uint64_t tail)
{
	count_invalid(r);
	r->head = tail;
}

/* head or tail make no sense (misaligned, tail behind head, more than a ring apart):
 * the segment's header was overwritten. Restart the data area at tail. Returns false
 * when tail moved meanwhile (try again on the next read). */
static bool
reset_positions(gb_ring *r, uint64_t tail)
{
	uint64_t fixed = gb__ring_align8(tail);

	if (fixed != tail && !atomic_compare_exchange_strong_explicit(&r->hdr->tail, &tail,
	    fixed, memory_order_acq_rel, memory_order_relaxed))
		return false;
	count_invalid(r);
	memset(r->data, 0, r->capacity);
	r->head = fixed;
	r->released = fixed;
	atomic_store_explicit(&r->hdr->head, fixed, memory_order_release);
	atomic_store_explicit(&r->hdr->head_cache, fixed, memory_order_release);
	return true;
}

/* A stuck claim, length < 0 in its header: make it padding of the same length. */
static bool
unblock_claimed(gb_ring *r, uint64_t tail, uint64_t word)
{
	uint64_t off = r->head & r->mask, len = (uint64_t)-(int64_t)gb__rl_length(word);
	uint64_t stride = gb__ring_align8(len);

	if (len < GB_RL_REC_HEADER || len - GB_RL_REC_HEADER > r->max_record ||
	    stride > r->capacity - off || stride > tail - r->head) {
		skip_to(r, tail);
		return true;
	}
	if (atomic_compare_exchange_strong_explicit(gb__ring_word_at(r, off), &word,
	    gb__rl_word((int32_t)len, GB_RING_TYPE_PADDING, gb__ring_lap_tag(r, r->head)),
	    memory_order_acq_rel, memory_order_relaxed))
		atomic_fetch_add_explicit(&r->hdr->unblocked_records, 1, memory_order_relaxed);
	return true;
}

/* A claim whose producer died before writing its header: all zero up to the next
 * header. Find that header and pad up to it (in two records if it wraps). */
static bool
unblock_unwritten(gb_ring *r, uint64_t tail)
{
	uint64_t off = r->head & r->mask, gap, first, zero = 0;

	for (gap = GB_RL_ALIGN; gap < tail - r->head; gap += GB_RL_ALIGN)
		if (atomic_load_explicit(gb__ring_word_at(r, (r->head + gap) & r->mask),
		    memory_order_acquire) != 0)
			break;
	if (gap >= tail - r->head)
		return false;
	first = gap < r->capacity - off ? gap : r->capacity - off;
	if (!atomic_compare_exchange_strong_explicit(gb__ring_word_at(r, off), &zero,
	    gb__rl_word((int32_t)first, GB_RING_TYPE_PADDING, gb__ring_lap_tag(r, r->head)),
	    memory_order_acq_rel, memory_order_relaxed))
		return true;
	if (first < gap)
		atomic_store_explicit(gb__ring_word_at(r, 0), gb__rl_word((int32_t)(gap - first),
		    GB_RING_TYPE_PADDING, gb__ring_lap_tag(r, r->head + first)),
		    memory_order_release);
	atomic_fetch_add_explicit(&r->hdr->unblocked_records, 1, memory_order_relaxed);
	return true;
}

/* True when the header word at head carries head's lap (ring_layout.h): a word of another
 * lap is a late store of a producer whose claim was padded over, not a record. */
static bool
lap_ok(const gb_ring *r, uint64_t word)
{
	return (uint16_t)(word >> 48) == gb__ring_lap_tag(r, r->head);
}

/* head sits on a record not yet committed, or on a header of another lap. Returns true when
 * it was padded over (or skipped) and the read loop should look again. */
static bool
maybe_unblock(gb_ring *r, uint64_t tail, uint64_t word)
{
	uint64_t now = gb__clock_mono_ns();

	if (!r->stuck || r->stuck_pos != r->head) {
		r->stuck = true;
		r->stuck_pos = r->head;
		r->stuck_since = now;
		return false;
	}
	if (now - r->stuck_since < r->unblock_ns)
		return false;
	if (word != 0 && !lap_ok(r, word)) {
		/* still another lap's: its length says nothing about what lies here */
		skip_to(r, tail);
		return true;
	}
	if (gb__rl_length(word) < 0)
		return unblock_claimed(r, tail, word);
	return unblock_unwritten(r, tail);
}

/* True when head and tail are positions a healthy ring can have. */
static bool
positions_ok(const gb_ring *r, uint64_t tail)
{
	return !(r->head & (GB_RL_ALIGN - 1)) && !(tail & (GB_RL_ALIGN - 1)) &&
	    tail >= r->head && tail - r->head <= r->capacity;
}

/* True when a committed header at head describes a record that fits. Padding may be longer
 * than the largest record: the consumer pads over a whole dead span in one. */
static bool
record_valid(const gb_ring *r, uint64_t tail, uint64_t word)
{
	uint64_t off = r->head & r->mask, len = (uint64_t)gb__rl_length(word);
	uint64_t stride = gb__ring_align8(len);

	return len >= GB_RL_REC_HEADER &&
	    (gb__rl_type(word) == GB_RING_TYPE_PADDING || len - GB_RL_REC_HEADER <= r->max_record) &&
	    stride <= r->capacity - off && stride <= tail - r->head;
}

size_t
gb__ring_read_hold(gb_ring *r, gb_ring_handler h, void *ctx, size_t max_records)
{
	gb_rl_header *hd = r->hdr;
	uint64_t tail, start = r->head, word, off, budget;
	size_t n = 0;
	int32_t len;

	assert(r->consumer);
	if (atomic_load_explicit(&r->unusable, memory_order_relaxed))
		return 0;
	atomic_store_explicit(&hd->consumer_heartbeat_ns, gb__clock_real_coarse_ns(),
	    memory_order_relaxed);
	tail = atomic_load_explicit(&hd->tail, memory_order_acquire);
	if (!positions_ok(r, tail)) {
		reset_positions(r, tail);
		return 0;
	}
	/* padding counts against the budget too, so one call stays bounded */
	budget = max_records + 64;
	while (n < max_records && budget-- > 0 && r->head != tail) {
		off = r->head & r->mask;
		word = atomic_load_explicit(gb__ring_word_at(r, off), memory_order_acquire);
		len = gb__rl_length(word);
		if (len == 0 && word != 0) {
			/* producers write the whole word at once: type without length is noise */
			skip_to(r, tail);
			break;
		}
		if (len <= 0 || !lap_ok(r, word)) {
			if (maybe_unblock(r, tail, word))
				continue;
			break;
		}
		if (!record_valid(r, tail, word)) {
			skip_to(r, tail);
			break;
		}
		if (gb__rl_type(word) != GB_RING_TYPE_PADDING) {
			if (h != NULL)
				h(ctx, gb__rl_type(word), r->data + off + GB_RL_REC_HEADER,
				    (size_t)len - GB_RL_REC_HEADER);
			n++;
		}
		r->head += gb__ring_align8((uint64_t)len);
		if (r->head == tail) {
			tail = atomic_load_explicit(&hd->tail, memory_order_acquire);
			if (!positions_ok(r, tail))
				break; /* the next read resets */
		}
	}
	if (r->head != start)
		r->stuck = false;
	return n;
}

void
gb__ring_release(gb_ring *r)
{
	gb_rl_header *hd = r->hdr;
	uint64_t hc;

	assert(r->consumer);
	if (r->head == r->released || atomic_load_explicit(&r->unusable, memory_order_relaxed))
		return;
	/* the bytes go back zeroed: a producer's claim relies on it. The intent goes first, so a
	 * successor can finish a release this process is killed in the middle of. */
	atomic_store_explicit(&hd->release_to, r->head, memory_order_release);
	zero_span(r, r->released, r->head - r->released);
	r->released = r->head;
	atomic_store_explicit(&hd->head, r->head, memory_order_release);
	hc = atomic_load_explicit(&hd->head_cache, memory_order_relaxed);
	if (hc > r->head)
		atomic_store_explicit(&hd->head_cache, r->head, memory_order_release);
}

uint64_t
gb__ring_read_pos(const gb_ring *r)
{
	return r->head;
}

uint64_t
gb__ring_held(const gb_ring *r)
{
	return r->head - r->released;
}

size_t
gb__ring_read(gb_ring *r, gb_ring_handler h, void *ctx, size_t max_records)
{
	size_t n = gb__ring_read_hold(r, h, ctx, max_records);

	gb__ring_release(r);
	return n;
}

/* True when the header at head is a record to read (committed, of head's lap). */
static bool
readable(const gb_ring *r)
{
	uint64_t word = atomic_load_explicit(gb__ring_word_at(r, r->head & r->mask),
	    memory_order_seq_cst);

	return gb__rl_length(word) > 0 && lap_ok(r, word);
}

/* The sleep of ring_layout.h, line 8: sleeping set, a look, the settle, a second look, the
 * futex. The segment's size is checked after each nap, before the mapping is touched again. */
void
gb__ring_wait(gb_ring *r, uint64_t timeout_ns)
{
	gb_rl_header *hd = r->hdr;
	uint64_t settle = timeout_ns < GB_RL_SETTLE_NS ? timeout_ns : GB_RL_SETTLE_NS;
	uint64_t rest = timeout_ns - settle;
	struct timespec ts = { .tv_sec = (time_t)(rest / GB_NS_PER_SEC),
		.tv_nsec = (long)(rest % GB_NS_PER_SEC) };
	uint32_t seen;

	assert(r->consumer);
	if (atomic_load_explicit(&r->unusable, memory_order_relaxed))
		return;
	atomic_store_explicit(&hd->consumer_heartbeat_ns, gb__clock_real_coarse_ns(),
	    memory_order_relaxed);
	if (r->head & (GB_RL_ALIGN - 1))
		return; /* a corrupt head from the segment: the next read resets it */
	seen = atomic_load_explicit(&hd->futex_word, memory_order_seq_cst);
	atomic_store_explicit(&hd->sleeping, 1, memory_order_seq_cst);
	if (!readable(r) && timeout_ns > 0) {
		gb__clock_sleep_ns(settle);
		if (gb__ring_check_size(r))
			return;
		if (!readable(r) && rest > 0) {
			gb__ring_futex(&hd->futex_word, FUTEX_WAIT, seen, &ts);
			if (gb__ring_check_size(r))
				return;
		}
	}
	atomic_store_explicit(&hd->sleeping, 0, memory_order_seq_cst);
}

/* A predecessor killed while releasing left release_to ahead of head: what lies between was
 * sent and is partly zeroed. Finish the release rather than wait to pad over the zeroes. A value
 * that is not a position a healthy ring can have is ignored. */
void
gb__ring_finish_release(gb_ring *r)
{
	uint64_t to = atomic_load_explicit(&r->hdr->release_to, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);

	if (to <= r->head || to > tail || to - r->head > r->capacity ||
	    ((to | r->head) & (GB_RL_ALIGN - 1)))
		return;
	r->head = to;
	gb__ring_release(r);
}
