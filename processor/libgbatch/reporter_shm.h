/*
 * reporter_shm.h - what processor/ programs need of the shm reporter beyond the public API
 * (internal, not installed): attaching to a ring that must already exist, and the context's
 * way in, which hands over the lengths it already knows.
 */
#ifndef GBATCH_PROCESSOR_REPORTER_SHM_H
#define GBATCH_PROCESSOR_REPORTER_SHM_H

#include <stddef.h>
#include <stdint.h>

#include <gbatch/telemetry.h>

/* Like gb_shm_reporter_open, but attaches only (never creates the ring) and logs nothing:
 * NULL with err filled (naming the ring) when it cannot be opened or memory runs out.
 * Close with gb_shm_reporter_close. */
gb_shm_reporter *gb__shm_reporter_attach(const char *ring, char *err, size_t errlen);

/* The shm reporter behind rep when rep is one (as gb_shm_reporter_as_reporter made it), else
 * NULL. */
gb_shm_reporter *gb__shm_reporter_of(const gb_reporter *rep);

/* Writes one record as the reporter's callbacks do, with the lengths the caller knows: scope is
 * scope_len bytes (no NUL needed), the parent scope its first parent_len bytes (0 at top
 * level), kind a GB_REC_* kind. Never blocks, never fails its caller: a record that cannot be
 * written is counted as dropped. Returns 0. */
int gb__shm_reporter_write(gb_shm_reporter *r, uint8_t kind, const char *scope, size_t scope_len,
    size_t parent_len, double value, const gb_tele_meta *m);

#endif
