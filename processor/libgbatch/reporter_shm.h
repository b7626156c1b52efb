/*
 * reporter_shm.h - what processor/ programs need of the shm reporter beyond the public API
 * (internal, not installed): attaching to a ring that must already exist.
 */
#ifndef GBATCH_PROCESSOR_REPORTER_SHM_H
#define GBATCH_PROCESSOR_REPORTER_SHM_H

#include <stddef.h>

#include <gbatch/telemetry.h>

/* Like gb_shm_reporter_open, but attaches only (never creates the ring) and logs nothing:
 * NULL with err filled (naming the ring) when it cannot be opened or memory runs out.
 * Close with gb_shm_reporter_close. */
gb_shm_reporter *gb__shm_reporter_attach(const char *ring, char *err, size_t errlen);

#endif
