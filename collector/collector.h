/*
 * collector.h - the collector daemon's core: opens its rings as their one consumer, drains
 * them in bounded batches into the sinks, flushes on the interval, reports its own figures,
 * sleeps on the ring futex when idle, and on SIGTERM/SIGINT/SIGHUP drains and flushes before it
 * returns. A segment that shrinks, is removed or is replaced under it never stops it.
 */
#ifndef GBATCH_COLLECTOR_COLLECTOR_H
#define GBATCH_COLLECTOR_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "console_sink.h"
#include "prom_http.h"
#include "prom_sink.h"
#include "ring.h"
#include "statsd_sink.h"

#define GB_COLLECTOR_MAX_RINGS 16
#define GB_COLLECTOR_REPORT_NS (10ull * 1000000000ull)

typedef struct gb_collector_config {
	const char *rings[GB_COLLECTOR_MAX_RINGS]; /* names or paths; at least one */
	size_t n_rings;
	gb_ring_opts ring_opts;
	bool statsd_on;
	gb_statsd_config statsd;      /* used when statsd_on */
	bool prom_on;                 /* --prometheus: serve /metrics */
	gb_prom_addr prom_addr;
	gb_prom_config prom;          /* used when prom_on */
	enum gb_console_mode console;
	int console_fd;               /* where console output goes (borrowed) */
	uint64_t flush_interval_ns;   /* aggregates leave this often */
	uint64_t report_interval_ns;  /* self-metrics; 0 = GB_COLLECTOR_REPORT_NS */
	bool exit_when_producers_done;
} gb_collector_config;

typedef struct gb_collector gb_collector;

/* Installs the SIGTERM/SIGINT/SIGHUP/SIGUSR1 handlers (before attaching, so a stop signal from
 * then on is never lost) and a SIGBUS handler that acts only on a fault inside the ring mapping
 * being accessed (any other SIGBUS keeps its default action), opens every ring and builds the
 * sinks (with --prometheus, the HTTP server's thread, which never takes a signal). Returns NULL
 * with err saying what failed (naming the ring, the target or the address). cfg is copied; the strings it points to must outlive
 * the collector. */
gb_collector *gb__collector_new(const gb_collector_config *cfg, char *err, size_t errlen);

/* Runs until a stop signal (also one that came since gb__collector_new), or (with
 * exit_when_producers_done) until a producer of this run (attached since the collector
 * started, or with a heartbeat newer than its start) was seen and none is left; then drains
 * every ring up to at least the tail it had at that moment (waiting, within 2 s, for claims
 * before it to be committed), flushes every sink, sends a last report and prints the summary.
 * At every flush interval it also publishes what /metrics shows.
 * Every 250 ms it looks at each segment: one that shrank (a SIGBUS in its mapping, or fstat)
 * is reported damaged and closed, and re-attached once the ring's name leads to a new segment;
 * one removed or replaced is drained to its end (no live producer, nothing left) beside the
 * segment now at the name, which it attaches to or creates, with a warning naming the ring.
 * Returns 0. */
int gb__collector_run(gb_collector *c);

/* Closes the rings (never unlinks them) and frees the sinks. NULL is fine. */
void gb__collector_free(gb_collector *c);

#endif
