/*
 * clock.c - clock_gettime wrappers, and the tick clock a scope's edges read. CLOCK_MONOTONIC and
 * CLOCK_REALTIME cannot fail on Linux with a valid timespec, so these return the value directly.
 * The tick clock's calibration is a few process-wide atomics: the ratio of CLOCK_MONOTONIC's
 * nanoseconds to ticks since the first read, measured again as the span grows.
 */
#define _POSIX_C_SOURCE 200809L
#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#define FIRST_SPAN_NS 50000ull /* the first estimate's span */
#define PAIR_SLACK_NS 2000ull  /* a (ticks, ns) pair read further apart than this is read again */
#define JUMP_SPAN_NS 10000000ull /* spans this long tell a jump of the counter from the pairs' error */

static uint64_t
clock_read(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * GB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t
gb__clock_mono_ns(void)
{
	return clock_read(CLOCK_MONOTONIC);
}

uint64_t
gb__clock_real_ns(void)
{
	return clock_read(CLOCK_REALTIME);
}

uint64_t
gb__clock_real_coarse_ns(void)
{
#ifdef CLOCK_REALTIME_COARSE
	return clock_read(CLOCK_REALTIME_COARSE);
#else
	return clock_read(CLOCK_REALTIME);
#endif
}

/* ---- the tick clock ---- */

_Atomic int gb__clock_tick_kind = GB__TICK_UNKNOWN;
static pthread_once_t tick_once = PTHREAD_ONCE_INIT;
static uint64_t base_tick, base_ns;   /* the first pair, or the one after a jump: written
                                         * before the kind, then only by the recalibrating thread */
static uint64_t good_span;            /* the ticks the ratio was measured over (the same;
                                         * next_cal's release and acquire order them) */
static _Atomic uint64_t ns_per_tick;  /* a double's bits */
static _Atomic uint64_t next_cal;     /* the tick past which the ratio is measured again;
                                         UINT64_MAX while a thread measures it */

static double
ratio_load(void)
{
	uint64_t bits = atomic_load_explicit(&ns_per_tick, memory_order_relaxed);
	double r;

	memcpy(&r, &bits, sizeof(r));
	return r;
}

static void
ratio_store(double r)
{
	uint64_t bits;

	memcpy(&bits, &r, sizeof(bits));
	atomic_store_explicit(&ns_per_tick, bits, memory_order_relaxed);
}

#if defined(__x86_64__)
static uint64_t
rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* CPUID 0x80000007 EDX bit 8: the counter runs at a constant rate in every state. */
static int
tsc_invariant(void)
{
	unsigned a, b, c, d;

	if (__get_cpuid(0x80000000u, &a, &b, &c, &d) == 0 || a < 0x80000007u)
		return 0;
	__get_cpuid(0x80000007u, &a, &b, &c, &d);
	return (d >> 8) & 1u;
}

/* A tick read between two reads of CLOCK_MONOTONIC, *ns their midpoint; the closest of a few
 * tries when the thread was preempted between them. */
static uint64_t
read_pair(uint64_t *ns)
{
	uint64_t best_gap = UINT64_MAX, tick = 0;

	for (int i = 0; i < 4 && best_gap > PAIR_SLACK_NS; i++) {
		uint64_t a = gb__clock_mono_ns(), t = rdtsc(), b = gb__clock_mono_ns();

		if (b - a < best_gap) {
			best_gap = b - a;
			tick = t;
			*ns = a + (b - a) / 2;
		}
	}
	return tick;
}

static void
tick_init(void)
{
	uint64_t t = 0, ns = 0;
	const char *force = getenv("GBATCH_CLOCK");
	int kind = GB__TICK_MONO;

	if (tsc_invariant() && (force == NULL || strcmp(force, "monotonic") != 0)) {
		base_tick = read_pair(&base_ns);
		for (long i = 0; i < 10000000L; i++) {
			t = read_pair(&ns);
			if (ns - base_ns >= FIRST_SPAN_NS)
				break;
		}
		if (t > base_tick && ns > base_ns) {
			ratio_store((double)(ns - base_ns) / (double)(t - base_tick));
			good_span = t - base_tick;
			atomic_store_explicit(&next_cal, t, memory_order_relaxed);
			kind = GB__TICK_TSC;
		}
	}
	atomic_store_explicit(&gb__clock_tick_kind, kind, memory_order_release);
}

/* Measures the ratio again over the whole span since the first pair; the next time is when
 * that span has doubled, or a second from now. One thread does it; the others go on with the
 * ratio they have. */
static void
recalibrate(uint64_t seen)
{
	uint64_t ns, t, span, second;
	int jumped;
	double r;

	/* acquire: the base and the span the last recalibration left, which it released */
	if (!atomic_compare_exchange_strong_explicit(&next_cal, &seen, UINT64_MAX,
	    memory_order_acquire, memory_order_relaxed))
		return;
	t = read_pair(&ns);
	r = ratio_load();
	span = t > base_tick ? t - base_tick : 0;
	/* The rate is constant: over a span long enough for the pairs' error not to matter, a
	 * ratio off by more than a percent is a jump of the counter against CLOCK_MONOTONIC (a
	 * virtual machine restored from a snapshot, or moved). Measure from there on, at the
	 * rate known, refined again once the new span is longer than the one it came from. */
	if (t <= base_tick || ns <= base_ns) {
		jumped = 1;
	} else {
		double now = (double)(ns - base_ns) / (double)span;
		jumped = (double)span * r >= JUMP_SPAN_NS && (now < r * 0.99 || now > r * 1.01);
		if (!jumped && span > good_span) {
			r = now;
			ratio_store(r);
			good_span = span;
		}
	}
	second = (uint64_t)((double)GB_NS_PER_SEC / r);
	if (jumped) {
		base_tick = t;
		base_ns = ns;
		span = (uint64_t)((double)JUMP_SPAN_NS / r);
	}
	atomic_store_explicit(&next_cal, t + (span < second ? span : second), memory_order_release);
}
#else
static void
tick_init(void)
{
	atomic_store_explicit(&gb__clock_tick_kind, GB__TICK_MONO, memory_order_release);
}
#endif

uint64_t
gb__clock_tick_first(void)
{
	pthread_once(&tick_once, tick_init);
	return gb__clock_tick();
}

uint64_t
gb__clock_ticks_ns(uint64_t from, uint64_t to)
{
	uint64_t d = to > from ? to - from : 0;

#if defined(__x86_64__)
	if (atomic_load_explicit(&gb__clock_tick_kind, memory_order_acquire) == GB__TICK_TSC) {
		uint64_t next = atomic_load_explicit(&next_cal, memory_order_relaxed);

		if (to >= next && next != UINT64_MAX)
			recalibrate(next);
		return (uint64_t)((double)d * ratio_load() + 0.5);
	}
#endif
	return d;
}

void
gb__clock_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / GB_NS_PER_SEC), (long)(ns % GB_NS_PER_SEC) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
