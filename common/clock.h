/*
 * clock.h - the clocks gbatch uses, in nanoseconds as uint64_t.
 * Monotonic for durations; realtime for record timestamps; the coarse realtime
 * clock (a few ns, tick-resolution) for counters and gauges, whose stamp need not be precise.
 */
#ifndef GBATCH_COMMON_CLOCK_H
#define GBATCH_COMMON_CLOCK_H

#include <stdint.h>

#define GB_NS_PER_SEC 1000000000ull
#define GB_NS_PER_MS 1000000ull

uint64_t gb__clock_mono_ns(void);
uint64_t gb__clock_real_ns(void);
uint64_t gb__clock_real_coarse_ns(void);
/* Sleeps ns whatever signals come in between (a handler's EINTR resumes the sleep). */
void gb__clock_sleep_ns(uint64_t ns);

#endif
