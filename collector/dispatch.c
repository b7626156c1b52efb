/*
 * dispatch.c - one record from the ring to the sinks, and the collector's own figures back
 * out through the DogStatsD sink. The decoder does the length checks; this file only trusts
 * what it returns.
 */
#include "dispatch.h"

#include <string.h>

#include "record.h"
#include "ring.h"

void
gb__dispatch_payload(void *ctx, uint16_t type, const uint8_t *payload, size_t len)
{
	gb_dispatch *d = ctx;
	gb_rec_kv meta[GB_REC_MAX_META];
	gb_record r;

	if (type != GB_RING_TYPE_TELEMETRY || gb__rec_decode(payload, len, &r, meta) < 0) {
		d->records_invalid++;
		return;
	}
	d->records_read++;
	if (d->statsd != NULL)
		gb__statsd_record(d->statsd, &r);
	if (d->console != NULL)
		gb__console_record(d->console, &r);
	if (d->prom != NULL)
		gb__prom_record(d->prom, &r, d->now_ns);
}

static void
counter(gb_dispatch *d, const char *name, uint64_t now, uint64_t before, const char *tag)
{
	gb__statsd_metric(d->statsd, name, (double)(now - before), 'c', tag);
}

void
gb__dispatch_report(gb_dispatch *d, const gb_ring_figures *rings, size_t n)
{
	gb_statsd_stats st;
	char tag[GB_STATSD_TAG_MAX + 1];

	for (size_t i = 0; i < n && i < GB_DISPATCH_MAX_RINGS; i++) {
		d->ring_dropped[i] += rings[i].dropped;
		d->ring_unblocked[i] += rings[i].unblocked;
		d->ring_lag[i] = rings[i].lag_bytes;
	}
	if (d->statsd == NULL)
		return;
	gb__statsd_get_stats(d->statsd, &st);
	counter(d, "gbatch.collector.records_read", d->records_read, d->last_read, NULL);
	counter(d, "gbatch.collector.records_invalid", d->records_invalid + d->ring_invalid,
	    d->last_invalid, NULL);
	counter(d, "gbatch.collector.packets_sent", st.packets_sent, d->last.packets_sent, NULL);
	counter(d, "gbatch.collector.bytes_sent", st.bytes_sent, d->last.bytes_sent, NULL);
	counter(d, "gbatch.collector.send_errors", st.send_errors, d->last.send_errors, NULL);
	counter(d, "gbatch.collector.values_rejected", st.values_rejected, d->last.values_rejected,
	    NULL);
	counter(d, "gbatch.collector.tags_dropped", st.tags_dropped, d->last.tags_dropped, NULL);
	counter(d, "gbatch.collector.tag_values_capped", st.tag_values_capped,
	    d->last.tag_values_capped, NULL);
	counter(d, "gbatch.collector.tags_renamed", st.tags_renamed, d->last.tags_renamed, NULL);
	counter(d, "gbatch.collector.names_capped", st.names_capped, d->last.names_capped, NULL);
	counter(d, "gbatch.collector.contexts_dropped", st.contexts_dropped,
	    d->last.contexts_dropped, NULL);
	if (d->console != NULL) {
		uint64_t lost = gb__console_lines_dropped(d->console);

		uint64_t capped = gb__console_summary_capped(d->console);

		counter(d, "gbatch.collector.console_lines_dropped", lost, d->last_console_dropped,
		    NULL);
		counter(d, "gbatch.collector.console_summary_capped", capped,
		    d->last_console_capped, NULL);
		d->last_console_dropped = lost;
		d->last_console_capped = capped;
	}
	for (size_t i = 0; i < n; i++) {
		size_t tl = gb__statsd_tag(tag, "ring", 4, rings[i].name, strlen(rings[i].name), NULL);

		tag[tl] = '\0';
		gb__statsd_metric(d->statsd, "gbatch.collector.records_dropped",
		    (double)rings[i].dropped, 'c', tag);
		gb__statsd_metric(d->statsd, "gbatch.collector.records_unblocked",
		    (double)rings[i].unblocked, 'c', tag);
		gb__statsd_metric(d->statsd, "gbatch.collector.ring_lag_bytes",
		    (double)rings[i].lag_bytes, 'g', tag);
	}
	d->last = st;
	d->last_read = d->records_read;
	d->last_invalid = d->records_invalid + d->ring_invalid;
	gb__statsd_flush(d->statsd);
}

void
gb__dispatch_publish(gb_dispatch *d, const char *const *rings, size_t n)
{
	gb_prom_stats ps;
	gb_prom_snap *snap;

	if (d->prom == NULL)
		return;
	gb__prom_expire(d->prom, d->now_ns);
	gb__prom_get_stats(d->prom, &ps);
	gb__prom_own(d->prom, GB_PROM_OWN_RECORDS_READ, NULL, (double)d->records_read);
	gb__prom_own(d->prom, GB_PROM_OWN_RECORDS_INVALID, NULL,
	    (double)(d->records_invalid + d->ring_invalid));
	if (d->statsd != NULL) {
		gb_statsd_stats st;

		gb__statsd_get_stats(d->statsd, &st);
		gb__prom_own(d->prom, GB_PROM_OWN_PACKETS_SENT, NULL, (double)st.packets_sent);
		gb__prom_own(d->prom, GB_PROM_OWN_BYTES_SENT, NULL, (double)st.bytes_sent);
		gb__prom_own(d->prom, GB_PROM_OWN_SEND_ERRORS, NULL, (double)st.send_errors);
	}
	gb__prom_own(d->prom, GB_PROM_OWN_VALUES_REJECTED, NULL, (double)ps.values_rejected);
	gb__prom_own(d->prom, GB_PROM_OWN_TAGS_DROPPED, NULL, (double)ps.tags_dropped);
	gb__prom_own(d->prom, GB_PROM_OWN_TAG_VALUES_CAPPED, NULL, (double)ps.tag_values_capped);
	gb__prom_own(d->prom, GB_PROM_OWN_TAGS_RENAMED, NULL, (double)ps.tags_renamed);
	gb__prom_own(d->prom, GB_PROM_OWN_NAMES_CAPPED, NULL, (double)ps.names_capped);
	gb__prom_own(d->prom, GB_PROM_OWN_CONTEXTS_DROPPED, NULL, (double)ps.contexts_dropped);
	gb__prom_own(d->prom, GB_PROM_OWN_SERIES, NULL, (double)ps.series);
	gb__prom_own(d->prom, GB_PROM_OWN_SERIES_EXPIRED, NULL, (double)ps.series_expired);
	if (d->console != NULL) {
		gb__prom_own(d->prom, GB_PROM_OWN_CONSOLE_LINES_DROPPED, NULL,
		    (double)gb__console_lines_dropped(d->console));
		gb__prom_own(d->prom, GB_PROM_OWN_CONSOLE_SUMMARY_CAPPED, NULL,
		    (double)gb__console_summary_capped(d->console));
	}
	for (size_t i = 0; i < n && i < GB_DISPATCH_MAX_RINGS; i++) {
		gb__prom_own(d->prom, GB_PROM_OWN_RECORDS_DROPPED, rings[i],
		    (double)d->ring_dropped[i]);
		gb__prom_own(d->prom, GB_PROM_OWN_RECORDS_UNBLOCKED, rings[i],
		    (double)d->ring_unblocked[i]);
		gb__prom_own(d->prom, GB_PROM_OWN_RING_LAG_BYTES, rings[i], (double)d->ring_lag[i]);
	}
	/* the drain's share of a scrape: this copy and a swap; rendering is the HTTP thread's */
	if (d->http != NULL && (snap = gb__prom_http_spare(d->http)) != NULL &&
	    gb__prom_fill(d->prom, snap) == 0)
		gb__prom_http_publish(d->http, snap);
}
