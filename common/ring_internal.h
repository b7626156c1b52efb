/*
 * ring_internal.h - what the ring's own files share and nothing else may include: the struct
 * behind gb_ring and the few small helpers both the producer and the consumer side use.
 */
#ifndef GBATCH_COMMON_RING_INTERNAL_H
#define GBATCH_COMMON_RING_INTERNAL_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "ring_layout.h"

#define GB_RING_NAME_MAX_LEN 64
#define GB_RING_SHM_DIR "/dev/shm/gbatch."
#define GB_RING_PATH_MAX 4096

struct gb_ring {
	char name[GB_RING_PATH_MAX]; /* as given, or the resolved default */
	char path[GB_RING_PATH_MAX]; /* the segment's file: /dev/shm/gbatch.<name>, or name */
	bool is_path;
	bool consumer;
	int fd;
	dev_t dev;                /* the segment this mapping is of, to tell a replacement */
	ino_t ino;
	/* set on the slow path (gb__ring_check, a consumer's fault handler, a producer that
	 * left the segment): from then on nothing touches the mapping, claims are refused */
	atomic_bool unusable;
	uint8_t *map;
	size_t map_len;
	gb_rl_header *hdr;
	uint8_t *data;
	/* copies of the validated identity: never re-read from the segment */
	uint64_t capacity, mask, max_record;
	unsigned lap_shift;       /* log2(capacity): position >> lap_shift is the lap */
	int slot;                 /* producer slot, or -1 when the table was full */
	_Atomic uint64_t wakes;   /* FUTEX_WAKE calls made through this handle */
	/* consumer only */
	uint64_t head;            /* read up to here */
	uint64_t released;        /* published to the producers (hdr->head) up to here */
	uint64_t unblock_ns;
	bool stuck;
	uint64_t stuck_pos, stuck_since;
};

/* n rounded up to the record alignment. */
static inline uint64_t
gb__ring_align8(uint64_t n)
{
	return (n + (GB_RL_ALIGN - 1)) & ~(uint64_t)(GB_RL_ALIGN - 1);
}

/* The record header word at data offset off. */
static inline _Atomic uint64_t *
gb__ring_word_at(const gb_ring *r, uint64_t off)
{
	return (_Atomic uint64_t *)(void *)(r->data + off);
}

/* The tag a claimed header carries in its flags: the low 16 bits of the lap it was claimed
 * in, so a late commit can tell its own claim from a later one at the same place. */
static inline uint16_t
gb__ring_lap_tag(const gb_ring *r, uint64_t pos)
{
	return (uint16_t)(pos >> r->lap_shift);
}

/* futex(2) on the segment's wake word: shared between processes, so no PRIVATE flag. */
static inline long
gb__ring_futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)(uintptr_t)word, op, val, ts, NULL, 0);
}

/* ring.c: the name to open (name, else $GBATCH_RING, else the default), and r's names (its
 * shm name or path) filled from it. Returns 0, or -1 with err. */
const char *gb__ring_resolve_name(const char *name);
int gb__ring_names(gb_ring *r, const char *name, char *err, size_t errlen);
/* ring_consume.c: finishes a release a predecessor was killed in (release_to past head). */
void gb__ring_finish_release(gb_ring *r);

#endif
