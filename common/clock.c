/*
 * clock.c - clock_gettime wrappers. CLOCK_MONOTONIC and CLOCK_REALTIME cannot fail
 * on Linux with a valid timespec, so these return the value directly.
 */
#define _POSIX_C_SOURCE 200809L
#include "clock.h"

#include <errno.h>
#include <time.h>

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

void
gb__clock_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / GB_NS_PER_SEC), (long)(ns % GB_NS_PER_SEC) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
