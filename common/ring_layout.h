/*
 * ring_layout.h - the byte layout of a gbatch ring segment. NOT A PUBLIC API.
 * Both sides of the ring (the processor's producers and the collector) map the same
 * bytes; this header is the one place that says what they are. Change anything here
 * and bump GB_RL_VERSION_MAJOR (incompatible) or GB_RL_VERSION_MINOR (compatible addition).
 *
 * Segment: a 4096-byte header page followed by `capacity` data bytes.
 *
 * Header page (all integers host byte order; the segment never leaves the host):
 *   line 0   identity, written once by the creator before the magic is published:
 *            magic "GBRING01" (8 bytes, stored LAST with release ordering), version
 *            major/minor, header size, capacity, max record payload, creation time
 *   line 1   tail          claim position (bytes ever claimed, monotonic), CAS by producers
 *   line 2   head_cache    a recent copy of head kept by producers so they rarely read head
 *   line 3   head          consumer position: everything before it has been read and zeroed;
 *                          persists across consumer restarts
 *            release_to    where the consumer is releasing to (set before it zeroes):
 *                          a successor finds a release cut short by a kill and completes it
 *   line 4   dropped_records   claims refused (ring full, too big, contention), counted
 *   line 5   dropped_bytes     payload bytes of those claims
 *   line 6   unblocked_records records the consumer padded over after the unblock timeout
 *   line 7   invalid_records   corrupt headers or positions the consumer skipped
 *   line 8   the wake line: futex wake word and sleeping flag, written only when the
 *            consumer goes to sleep or is woken, so the look every commit takes at
 *            sleeping does not miss while a live consumer writes its heartbeat.
 *            The sleep: the consumer sets sleeping (seq_cst), looks at head, waits
 *            GB_RL_SETTLE_NS, looks again, then FUTEX_WAITs on the wake word. A producer
 *            reads sleeping right after its commit's release store, with no fence between
 *            (the commit stays a plain store): a commit the producer made before it read
 *            sleeping clear is visible by the second look, since a store leaves a CPU's
 *            store buffer within nanoseconds. A producer that reads it set takes it
 *            (exchange), bumps the wake word and FUTEX_WAKEs.
 *   line 9   the consumer: heartbeat, pid, and exported_dropped / exported_unblocked: how
 *            much of dropped_records and unblocked_records some consumer has already
 *            reported, so each drop is reported once across consumer restarts
 *   line 10  producers_ever    attaches since creation
 *   lines 11-18 producer table: GB_RL_PRODUCERS slots of {state, pid, heartbeat}
 * Each counter owns a 128-byte line so that writers of one do not slow readers of another.
 *
 * Records in the data area: an 8-byte header {int32 length, uint16 type, uint16 flags}
 * then the payload; length = 8 + payload bytes; the next record starts at the length
 * rounded up to 8. length 0 = not yet written (zeroed space); length < 0 = claimed and
 * being written; length > 0 = committed. type 0 = padding the consumer skips (the wrap,
 * aborted claims, unblocked records). A record never crosses the end of the data area.
 * flags: the low 16 bits of the lap (position / capacity) of the header's position, in every
 * header anyone writes (major 2). The consumer takes a header only when it carries the lap
 * of the position it reads: a producer that resumes after the consumer padded over its claim
 * and the space went round again (stopped, or preempted that long) may still store its old
 * header there, and that word is never read as a record. A producer's own commit, a release
 * store, first checks that its claimed header is still there.
 * The header is accessed as one 64-bit atomic word, so the layout above assumes a
 * little-endian host (checked below).
 */
#ifndef GBATCH_COMMON_RING_LAYOUT_H
#define GBATCH_COMMON_RING_LAYOUT_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ring_layout.h: the record header word assumes a little-endian host"
#endif

#define GB_RL_MAGIC "GBRING01"         /* 8 bytes, no NUL stored */
#define GB_RL_VERSION_MAJOR 2
#define GB_RL_VERSION_MINOR 0
#define GB_RL_HEADER_SIZE 4096u
#define GB_RL_LINE 128u
#define GB_RL_PRODUCERS 64u
#define GB_RL_REC_HEADER 8u
#define GB_RL_ALIGN 8u
#define GB_RL_MAX_RECORD_CAP (64u << 10)   /* max record payload is capacity/8, at most this */

/* Producer slot states (a zeroed slot, 0, is free). */
#define GB_RL_SLOT_ATTACHED 1u
#define GB_RL_SLOT_DETACHED 2u
/* How long a consumer that set sleeping waits before its last look at head (line 8). */
#define GB_RL_SETTLE_NS 50000ull
/* A producer whose heartbeat is older than this counts as dead. */
#define GB_RL_PRODUCER_STALE_NS (5ull * 1000000000ull)

typedef struct gb_rl_producer {
	_Atomic uint32_t state;       /* GB_RL_SLOT_* */
	_Atomic uint32_t pid;         /* in the producer's PID namespace: informational only */
	_Atomic uint64_t heartbeat_ns; /* CLOCK_REALTIME_COARSE of the last heartbeat */
} gb_rl_producer;

typedef struct gb_rl_header {
	/* line 0: identity */
	_Atomic uint64_t magic;       /* GB_RL_MAGIC's 8 bytes; 0 until initialised */
	uint16_t version_major;       /* refused when different */
	uint16_t version_minor;       /* informational: additions only */
	uint32_t header_size;         /* GB_RL_HEADER_SIZE */
	uint64_t capacity;            /* data bytes: a power of two in [64 KiB, 1 GiB] */
	uint64_t max_record;          /* largest payload accepted by a claim */
	uint64_t created_ns;          /* CLOCK_REALTIME at creation */
	uint8_t pad0[GB_RL_LINE - 40];

	_Atomic uint64_t tail;
	uint8_t pad1[GB_RL_LINE - 8];
	_Atomic uint64_t head_cache;
	uint8_t pad2[GB_RL_LINE - 8];
	_Atomic uint64_t head;
	_Atomic uint64_t release_to;
	uint8_t pad3[GB_RL_LINE - 16];
	_Atomic uint64_t dropped_records;
	uint8_t pad4[GB_RL_LINE - 8];
	_Atomic uint64_t dropped_bytes;
	uint8_t pad5[GB_RL_LINE - 8];
	_Atomic uint64_t unblocked_records;
	uint8_t pad6[GB_RL_LINE - 8];
	_Atomic uint64_t invalid_records;
	uint8_t pad7[GB_RL_LINE - 8];

	/* line 8: the wake line */
	_Atomic uint32_t futex_word;  /* bumped by a producer before FUTEX_WAKE */
	_Atomic uint32_t sleeping;    /* 1 while the consumer is (about to be) in FUTEX_WAIT */
	uint8_t pad8[GB_RL_LINE - 8];

	/* line 9: the consumer */
	_Atomic uint64_t consumer_heartbeat_ns; /* CLOCK_REALTIME_COARSE of its last read or wait */
	_Atomic uint32_t consumer_pid; /* informational; 0 when none attached */
	_Atomic uint64_t exported_dropped;   /* of dropped_records, reported by a consumer */
	_Atomic uint64_t exported_unblocked; /* of unblocked_records, likewise */
	uint8_t pad9[GB_RL_LINE - 32];

	_Atomic uint64_t producers_ever;
	uint8_t pad10[GB_RL_LINE - 8];

	gb_rl_producer producers[GB_RL_PRODUCERS];
} gb_rl_header;

static_assert(sizeof(gb_rl_producer) == 16, "producer slot is 16 bytes");
static_assert(offsetof(gb_rl_header, tail) == 1 * GB_RL_LINE, "tail on line 1");
static_assert(offsetof(gb_rl_header, head_cache) == 2 * GB_RL_LINE, "head_cache on line 2");
static_assert(offsetof(gb_rl_header, head) == 3 * GB_RL_LINE, "head on line 3");
static_assert(offsetof(gb_rl_header, dropped_records) == 4 * GB_RL_LINE, "line 4");
static_assert(offsetof(gb_rl_header, dropped_bytes) == 5 * GB_RL_LINE, "line 5");
static_assert(offsetof(gb_rl_header, unblocked_records) == 6 * GB_RL_LINE, "line 6");
static_assert(offsetof(gb_rl_header, invalid_records) == 7 * GB_RL_LINE, "line 7");
static_assert(offsetof(gb_rl_header, futex_word) == 8 * GB_RL_LINE, "line 8");
static_assert(offsetof(gb_rl_header, consumer_heartbeat_ns) == 9 * GB_RL_LINE, "line 9");
static_assert(offsetof(gb_rl_header, exported_dropped) == 9 * GB_RL_LINE + 16, "line 9");
static_assert(offsetof(gb_rl_header, producers_ever) == 10 * GB_RL_LINE, "line 10");
static_assert(offsetof(gb_rl_header, producers) == 11 * GB_RL_LINE, "line 11");
static_assert(sizeof(gb_rl_header) <= GB_RL_HEADER_SIZE, "header fits its page");
static_assert(sizeof(_Atomic uint64_t) == 8, "lock-free 64-bit atomics are plain words");

/* The 64-bit record header word: length in the low 32 bits, type, then flags. */
static inline uint64_t
gb__rl_word(int32_t length, uint16_t type, uint16_t flags)
{
	return (uint64_t)(uint32_t)length | (uint64_t)type << 32 | (uint64_t)flags << 48;
}

static inline int32_t
gb__rl_length(uint64_t word)
{
	return (int32_t)(uint32_t)(word & 0xffffffffu);
}

static inline uint16_t
gb__rl_type(uint64_t word)
{
	return (uint16_t)(word >> 32);
}

/* The largest payload a ring of this capacity accepts. */
static inline uint64_t
gb__rl_max_record(uint64_t capacity)
{
	uint64_t m = capacity / 8;

	return m > GB_RL_MAX_RECORD_CAP ? GB_RL_MAX_RECORD_CAP : m;
}

/* Checks the identity line of a mapped segment of `size` bytes (the first size bytes of
 * seg, untrusted). Returns 0 when the segment may be used, 1 when the magic is not yet
 * published (a creator may still be initialising it), -1 when it must be refused; in
 * both non-zero cases why says what is wrong. Never reads beyond size. */
int gb__rl_check(const void *seg, size_t size, char *why, size_t whylen);

#endif
