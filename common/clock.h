/*
 * clock.h - the clocks gbatch uses, in nanoseconds as uint64_t.
 * Monotonic for durations; realtime for record timestamps; the coarse realtime
 * clock (a few ns, tick-resolution) for counters and gauges, whose stamp need not be precise.
 * A scope's two edges read the tick clock below: one read each, the cheapest precise clock.
 */
#ifndef GBATCH_COMMON_CLOCK_H
#define GBATCH_COMMON_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#define GB_NS_PER_SEC 1000000000ull
#define GB_NS_PER_MS 1000000ull

uint64_t gb__clock_mono_ns(void);
uint64_t gb__clock_real_ns(void);
uint64_t gb__clock_real_coarse_ns(void);
/* Sleeps ns whatever signals come in between (a handler's EINTR resumes the sleep). */
void gb__clock_sleep_ns(uint64_t ns);

/* The tick clock: the CPU's time-stamp counter where it is invariant (x86-64 whose CPUID says so:
 * constant rate, never stopped), else CLOCK_MONOTONIC in nanoseconds. On a virtual machine the
 * counter is several times cheaper to read than CLOCK_MONOTONIC, which reads it and scales it.
 * Ticks only mean something as a difference: gb__clock_ticks_ns turns one into nanoseconds,
 * against CLOCK_MONOTONIC (measured at the first read, then again whenever the span since
 * doubles, at most once a second; a ratio off by more than a percent is a jump of the counter,
 * as when a virtual machine is restored from a snapshot, and measuring starts again from there:
 * only a duration spanning the jump is wrong). GBATCH_CLOCK=monotonic in the environment keeps
 * to CLOCK_MONOTONIC. Thread-safe; the first read of a process spends ~50 us on a first
 * estimate. */
enum { GB__TICK_UNKNOWN = 0, GB__TICK_TSC = 1, GB__TICK_MONO = 2 };
extern _Atomic int gb__clock_tick_kind;
uint64_t gb__clock_tick_first(void);

static inline uint64_t
gb__clock_tick(void)
{
#if defined(__x86_64__)
	int kind = atomic_load_explicit(&gb__clock_tick_kind, memory_order_relaxed);

	if (kind == GB__TICK_TSC) {
		uint32_t lo, hi;

		__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
		return (uint64_t)hi << 32 | lo;
	}
	if (kind == GB__TICK_UNKNOWN)
		return gb__clock_tick_first();
#endif
	return gb__clock_mono_ns();
}

/* Nanoseconds between two reads of the tick clock, from <= to (0 when to < from: a thread
 * moved to a CPU whose counter lags by a few cycles). `to` should be a fresh read: it may
 * refresh the calibration. */
uint64_t gb__clock_ticks_ns(uint64_t from, uint64_t to);

#endif
