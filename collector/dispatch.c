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
