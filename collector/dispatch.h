/*
 * dispatch.h - what the collector does with each ring record and on each timer: decode the
 * untrusted payload, count it, hand it to the sinks; and the self-metrics it reports every
 * 10 s. Kept apart from the ring loop so it can be driven from plain buffers.
 */
#ifndef GBATCH_COLLECTOR_DISPATCH_H
#define GBATCH_COLLECTOR_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "console_sink.h"
#include "prom_http.h"
#include "prom_sink.h"
#include "statsd_sink.h"

#define GB_DISPATCH_MAX_RINGS 16 /* the rings whose totals /metrics shows */

typedef struct gb_dispatch {
	gb_statsd_sink *statsd;   /* NULL when --statsd off (borrowed) */
	gb_console_sink *console; /* NULL when --console off (borrowed) */
	gb_prom_sink *prom;       /* NULL without --prometheus (borrowed) */
	gb_prom_http *http;       /* where prom's snapshots go (borrowed) */
	uint64_t now_ns;          /* monotonic, set by the loop each pass: dates series updates */
	uint64_t records_read;    /* telemetry records decoded and dispatched */
	uint64_t records_invalid; /* payloads that did not decode, or of an unknown type */
	uint64_t ring_invalid;    /* corrupt headers the rings skipped (fed by the loop) */
	gb_statsd_stats last;     /* sink figures at the previous report */
	uint64_t last_read, last_invalid, last_console_dropped, last_console_capped;
	/* per ring, totals since the start for /metrics (the ring's slot in the loop) */
	uint64_t ring_dropped[GB_DISPATCH_MAX_RINGS], ring_unblocked[GB_DISPATCH_MAX_RINGS];
	uint64_t ring_lag[GB_DISPATCH_MAX_RINGS];
} gb_dispatch;

/* The ring handler (gb_ring_handler): ctx is a gb_dispatch. payload is untrusted. */
void gb__dispatch_payload(void *ctx, uint16_t type, const uint8_t *payload, size_t len);

/* Per-ring figures for a report: deltas since the previous report, lag now. */
typedef struct gb_ring_figures {
	const char *name;
	uint64_t dropped, unblocked;
	uint64_t lag_bytes;
} gb_ring_figures;

/* Sends the self-metrics under gbatch.collector.*: collector-wide counters as deltas since
 * the previous report (records_read, records_invalid, packets_sent, bytes_sent, send_errors,
 * values_rejected, tags_dropped, tag_values_capped, tags_renamed, names_capped,
 * contexts_dropped, and with a console
 * console_lines_dropped and console_summary_capped) and, tagged ring:<name>, records_dropped,
 * records_unblocked (deltas) and ring_lag_bytes (a gauge). Then flushes. Without statsd it
 * only adds the ring figures to the totals /metrics shows (at most GB_DISPATCH_MAX_RINGS). */
void gb__dispatch_report(gb_dispatch *d, const gb_ring_figures *rings, size_t n);

/* With --prometheus: sets the gbatch_collector_* figures (totals since the start: the same
 * ones as the report, the caps and rejections the Prometheus sink's own), drops expired
 * series and publishes a snapshot for the scrapes. rings names the rings (n of them, as in
 * the reports). No-op without it. */
void gb__dispatch_publish(gb_dispatch *d, const char *const *rings, size_t n);

#endif
