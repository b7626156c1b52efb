/*
 * ring.h - the shared-memory many-to-one telemetry ring (internal API, not installed).
 * Producers (the processor's threads, gbatch-emit) claim and commit records without ever
 * waiting; one consumer (the collector) reads them in order. Modelled on Aeron's
 * many-to-one ring buffer. The byte layout is private to ring_layout.h.
 */
#ifndef GBATCH_COMMON_RING_H
#define GBATCH_COMMON_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct gb_ring gb_ring;

/* Status of ring calls: negative is an error or a drop, as in Varnish's VSL. */
typedef enum gb_ring_status {
	GB_RING_OK = 0,
	GB_RING_FULL = -1,      /* claim: not enough free space; the record was dropped and counted */
	GB_RING_TOO_BIG = -2,   /* claim: longer than the ring's max record size; dropped and counted */
	GB_RING_INVALID = -3,   /* open: bad name, or a segment that failed validation (message says why);
	                           claim: a damaged segment (misaligned tail); dropped and counted */
	GB_RING_NOT_FOUND = -4, /* open with no_create: no such segment */
	GB_RING_BUSY = -5,      /* open_consumer: another consumer holds the ring */
	GB_RING_SYSERR = -6,    /* open: a system call failed (message has strerror) */
	GB_RING_DAMAGED = -7,   /* claim: the segment shrank under this process or was given up
	                           (gb__ring_check, gb__ring_set_unusable): the record was dropped
	                           and is NOT counted in the segment, which is no longer touched;
	                           the caller counts it */
} gb_ring_status;

/* Record types. 0 is the ring's own padding and never reaches a handler. */
#define GB_RING_TYPE_PADDING 0
#define GB_RING_TYPE_TELEMETRY 1

#define GB_RING_DEFAULT_NAME "default"
#define GB_RING_DEFAULT_CAPACITY (4u << 20)
#define GB_RING_MIN_CAPACITY (64u << 10)
#define GB_RING_MAX_CAPACITY (1u << 30)
#define GB_RING_DEFAULT_UNBLOCK_NS (2ull * 1000000000ull)

typedef struct gb_ring_opts {
	uint64_t capacity;           /* data bytes if this open creates the segment: a power of two
	                                in [64 KiB, 1 GiB]; 0 = 4 MiB. Ignored when attaching. */
	unsigned mode;               /* creation mode, 0600 (0 means 0600) or 0660; attaching
	                                refuses a group-writable segment unless this is 0660 */
	int64_t trusted_uid;         /* attaching also accepts segments owned by this uid; -1 = none */
	uint64_t unblock_timeout_ns; /* consumer: pad over a stuck record after this; 0 = 2 s */
	bool no_create;              /* attach only; GB_RING_NOT_FOUND when the segment is absent */
} gb_ring_opts;

/* Fills o with the defaults above (trusted_uid -1). */
void gb__ring_opts_init(gb_ring_opts *o);

/* Checks a ring name: [A-Za-z0-9_-]{1,64} names /dev/shm/gbatch.<name>; a value containing
 * '/' is a file path (a tmpfs mounted elsewhere). Returns 0, or -1 with err naming the name. */
int gb__ring_name_check(const char *name, char *err, size_t errlen);

/* Opens ring `name` (NULL: $GBATCH_RING, else "default") as a producer, creating it if absent
 * (a new segment is sized, backed with posix_fallocate so that a full tmpfs is an error here and
 * never a SIGBUS later, and initialised under a temporary name, then renamed into place: no
 * half-made segment is ever visible or left behind)
 * (unless o->no_create), attaching and validating it otherwise, and takes a producer slot.
 * On success *out is set and GB_RING_OK returned; otherwise a negative status and err says
 * why, naming the ring. o may be NULL for defaults. */
int gb__ring_open_producer(gb_ring **out, const char *name, const gb_ring_opts *o,
    char *err, size_t errlen);

/* Opens ring `name` as its one consumer (flock LOCK_EX|LOCK_NB): GB_RING_BUSY when another
 * consumer holds it. Creates the segment if absent unless o->no_create. */
int gb__ring_open_consumer(gb_ring **out, const char *name, const gb_ring_opts *o,
    char *err, size_t errlen);

/* Producer: marks its slot detached. Consumer: releases the lock. Unmaps; never unlinks.
 * An unusable ring (see gb__ring_check) is unmapped without another access. */
void gb__ring_close(gb_ring *r);

/* Removes the segment's name (shm_unlink or unlink for a path). 0, or -1 with err. */
int gb__ring_unlink(const char *name, char *err, size_t errlen);

/* ---- producer side: no syscall on this path, except FUTEX_WAKE when the consumer sleeps ---- */

typedef struct gb_ring_claim {
	uint8_t *data; /* where to write len payload bytes */
	size_t len;
	uint64_t pos;  /* ring position of the record header: private to the ring */
} gb_ring_claim;

/* Reserves len payload bytes for one record of type (not 0). Never blocks. Returns GB_RING_OK
 * and fills c, or GB_RING_FULL / GB_RING_TOO_BIG / GB_RING_INVALID after counting the drop.
 * Every OK claim must be followed by exactly one commit or abort from the same process. */
int gb__ring_claim(gb_ring *r, uint16_t type, size_t len, gb_ring_claim *c);
/* Publishes a claimed record to the consumer (release store of its length). */
void gb__ring_commit(gb_ring *r, gb_ring_claim *c);
/* Gives a claimed record back: it becomes padding the consumer skips (not counted as dropped). */
void gb__ring_abort(gb_ring *r, gb_ring_claim *c);
/* claim + copy + commit. Returns the claim's status. */
int gb__ring_write(gb_ring *r, uint16_t type, const void *payload, size_t len);
/* Refreshes this producer's heartbeat (a relaxed store of a coarse clock). Call at least
 * every second while attached; the shm reporter runs a thread for it. Does nothing on an
 * unusable ring. */
void gb__ring_heartbeat(gb_ring *r);

/* A producer that moved to a new segment (gb__ring_check said REMOVED or REPLACED) gives the
 * old one up: marks its slot detached. Claims on it still work (the mapping stays until
 * gb__ring_close) until gb__ring_orphan_drain has counted what is left in it. */
void gb__ring_leave(gb_ring *r);

/* A producer, on a segment it left: when no consumer holds the segment (its flock is free) and
 * no other live producer is attached, reads every committed record left in it as its consumer
 * would, discarding them, and sets *unread to how many (the records nobody will ever read: the
 * caller counts them dropped). Returns 0 when the segment is done with (then it is unusable:
 * claims on it fail with GB_RING_DAMAGED), 1 when it must be called again later (a consumer
 * still drains it, another producer still writes into it, or a claim is not yet committed);
 * *unread is what this call read either way. Slow path: takes a flock and reads the segment. */
int gb__ring_orphan_drain(gb_ring *r, uint64_t *unread);

/* ---- consumer side ---- */

/* Called once per committed record, in ring order. payload points into the shared segment:
 * another process wrote it, so it is untrusted and valid only during the call. */
typedef void (*gb_ring_handler)(void *ctx, uint16_t type, const uint8_t *payload, size_t len);

/* Reads at most max_records committed records, calling h on each, and keeps them: their bytes
 * stay in the ring, unavailable to producers, until gb__ring_release. A consumer that dies
 * before releasing leaves them to its successor, which reads them again (at-least-once). Also
 * pads over a record stuck uncommitted for longer than the unblock timeout. Returns the number
 * of records handed to h. */
size_t gb__ring_read_hold(gb_ring *r, gb_ring_handler h, void *ctx, size_t max_records);

/* Zeroes every record read so far and gives the space back to the producers (publishes head).
 * Call it once what the records became has left the process. */
void gb__ring_release(gb_ring *r);

/* Bytes read but not yet released. */
uint64_t gb__ring_held(const gb_ring *r);

/* gb__ring_read_hold, then gb__ring_release. */
size_t gb__ring_read(gb_ring *r, gb_ring_handler h, void *ctx, size_t max_records);

/* Sleeps until a producer commits or timeout_ns passes: announces the sleep, waits out the
 * producers' store buffers (GB_RL_SETTLE_NS of timeout_ns), looks once more, then waits on the
 * segment's futex (ring_layout.h, line 8). Checks the segment's size (gb__ring_check_size)
 * after each nap, before touching it again. */
void gb__ring_wait(gb_ring *r, uint64_t timeout_ns);

/* Producer: how many times this handle woke a sleeping consumer (a FUTEX_WAKE each). */
uint64_t gb__ring_wakes(gb_ring *r);

typedef struct gb_ring_stats {
	uint64_t capacity, max_record;
	uint64_t head, tail;        /* consumer and claim positions; lag = tail - head */
	uint64_t dropped_records, dropped_bytes;
	uint64_t unblocked_records; /* torn records padded over by the consumer */
	uint64_t invalid_records;   /* corrupt headers skipped by the consumer */
	unsigned producers_live;    /* attached with a fresh heartbeat */
	unsigned producers_ever;    /* attaches since the segment was created */
	uint64_t newest_heartbeat_ns; /* the freshest heartbeat of an attached producer, 0 if none
	                                 (CLOCK_REALTIME_COARSE, as gb__clock_real_coarse_ns) */
	uint64_t exported_dropped;   /* of dropped_records and unblocked_records, what some */
	uint64_t exported_unblocked; /* consumer has reported (gb__ring_set_exported); never
	                                more than the counter itself */
} gb_ring_stats;

/* A snapshot of the counters (relaxed loads). Either side may call it. An unusable ring
 * reports only its capacity and max_record. */

void gb__ring_stats(gb_ring *r, gb_ring_stats *s);

/* The consumer records that dropped_records and unblocked_records have been reported up to
 * these values (from gb__ring_stats), so a later consumer reports only what came after. */
void gb__ring_set_exported(gb_ring *r, uint64_t dropped, uint64_t unblocked);

/* The name the ring was opened with (the resolved default when NULL was given). */
const char *gb__ring_name(const gb_ring *r);

/* ---- the segment under this process's feet (slow path: system calls) ---- */

#define GB_RING_SHRUNK 1u   /* the file is smaller than the mapping: another process truncated it */
#define GB_RING_REMOVED 2u  /* unlinked: no name leads to this segment any more */
#define GB_RING_REPLACED 4u /* the ring's name now leads to another file */

/* Compares the segment with its mapping (fstat) and its name (lstat) and returns GB_RING_*
 * flags, 0 when all is well. SHRUNK makes the ring unusable first: from then on nothing in
 * this process touches the mapping through r (claims fail with GB_RING_DAMAGED; heartbeat,
 * stats, read, release and close skip it), since a page past the new end would fault (SIGBUS).
 * Call it from the slow path (a producer's heartbeat, a consumer's periodic pass). */
unsigned gb__ring_check(gb_ring *r);

/* The size half of gb__ring_check (one fstat): true when r is unusable (now or before). */
bool gb__ring_check_size(gb_ring *r);

/* Marks r unusable (see gb__ring_check): a consumer that caught a fault in the mapping. */
void gb__ring_set_unusable(gb_ring *r);
bool gb__ring_is_unusable(const gb_ring *r);

/* The device and inode of r's segment, and whether ring `name` now leads elsewhere: 1 when
 * its file is absent or another inode, 0 when it is still (dev, ino) or cannot be told. */
void gb__ring_identity(const gb_ring *r, dev_t *dev, ino_t *ino);
int gb__ring_path_changed(const char *name, dev_t dev, ino_t ino);

/* The address range of r's mapping (header page and data area), for a consumer's fault
 * handler scoped to it. */
void gb__ring_mapping(const gb_ring *r, const void **base, size_t *len);

/* Consumer: the ring position read up to (records before it were handed to the handler or
 * skipped). With gb_ring_stats.tail: a drain that must reach a tail seen earlier. */
uint64_t gb__ring_read_pos(const gb_ring *r);

#endif
