/*
 * collector.h - the collector daemon's core: opens its rings as their one consumer, drains
 * them in bounded batches into the sinks, flushes on the interval, reports its own figures,
 * sleeps on the ring futex when idle, and on SIGTERM/SIGINT drains and flushes before it returns.
 */
#ifndef GBATCH_COLLECTOR_COLLECTOR_H
#define GBATCH_COLLECTOR_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "console_sink.h"
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
	enum gb_console_mode console;
	int console_fd;               /* where console output goes (borrowed) */
	uint64_t flush_interval_ns;   /* aggregates leave this often */
	uint64_t report_interval_ns;  /* self-metrics; 0 = GB_COLLECTOR_REPORT_NS */
	bool exit_when_producers_done;
} gb_collector_config;

typedef struct gb_collector gb_collector;

/* Installs the SIGTERM/SIGINT/SIGUSR1 handlers (before attaching, so a stop signal from then
 * on is never lost), opens every ring and builds the sinks. Returns NULL with err saying what
 * failed (naming the ring or the target). cfg is copied; the strings it points to must outlive
 * the collector. */
gb_collector *gb__collector_new(const gb_collector_config *cfg, char *err, size_t errlen);

/* Runs until a stop signal (also one that came since gb__collector_new), or (with
 * exit_when_producers_done) until every producer that attached is gone; then drains every
 * ring, flushes every sink, sends a last report and prints the summary. Returns 0. */
int gb__collector_run(gb_collector *c);

/* Closes the rings (never unlinks them) and frees the sinks. NULL is fine. */
void gb__collector_free(gb_collector *c);

#endif
