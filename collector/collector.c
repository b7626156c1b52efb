/*
 * collector.c - the drain loop. Each pass reads a bounded batch from every ring (no syscall
 * and no allocation per record: the sinks pack into fixed buffers), then runs what is due:
 * the flush of folded metrics, the 10 s self-report, a SIGUSR1 summary. With nothing to read
 * it sends the partial datagram and sleeps on a ring's futex with a short timeout, so an idle
 * collector costs about nothing and a signal is seen within that timeout.
 */
#include "collector.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dispatch.h"
#include "log.h"

#define BATCH 4096                        /* records per ring per pass */
#define IDLE_WAIT_NS (100ull * GB_NS_PER_MS) /* longest sleep: bounds signal latency */
#define MULTI_WAIT_NS (10ull * GB_NS_PER_MS) /* per-ring sleep when there are several */
#define FINAL_DRAIN_NS (2ull * GB_NS_PER_SEC)
#define CONSOLE_EXIT_WAIT_NS (2ull * GB_NS_PER_SEC) /* for a slow reader of the last output */

struct ring_slot {
	gb_ring *ring;
	uint64_t capacity;
	size_t held;                          /* records read, not yet released */
	uint64_t dropped, unblocked, invalid; /* counters at the previous report */
};

struct gb_collector {
	gb_collector_config cfg;
	struct ring_slot rings[GB_COLLECTOR_MAX_RINGS];
	size_t n_rings;
	gb_statsd_sink *statsd;
	gb_console_sink *console;
	gb_dispatch d;
	size_t next_wait; /* round-robin over the rings when idle */
};

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t summary_wanted;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		summary_wanted = 1;
	else
		stop_signal = sig;
}

static void install_signals(void);

gb_collector *
gb__collector_new(const gb_collector_config *cfg, char *err, size_t errlen)
{
	gb_collector *c;

	/* before any ring is attached: a stop signal from then on drains instead of killing */
	stop_signal = 0;
	summary_wanted = 0;
	install_signals();
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->cfg = *cfg;
	if (c->cfg.report_interval_ns == 0)
		c->cfg.report_interval_ns = GB_COLLECTOR_REPORT_NS;
	if (cfg->statsd_on && (c->statsd = gb__statsd_new(&cfg->statsd, err, errlen)) == NULL)
		goto fail;
	if (cfg->console != GB_CONSOLE_OFF &&
	    (c->console = gb__console_new(cfg->console, cfg->console_fd, 0)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->d.statsd = c->statsd;
	c->d.console = c->console;
	for (size_t i = 0; i < cfg->n_rings; i++) {
		struct ring_slot *rs = &c->rings[i];
		gb_ring_stats st;

		if (gb__ring_open_consumer(&rs->ring, cfg->rings[i], &cfg->ring_opts, err, errlen) !=
		    GB_RING_OK)
			goto fail;
		c->n_rings++;
		/* drops from before this collector were reported by its predecessor, or by no one */
		gb__ring_stats(rs->ring, &st);
		rs->capacity = st.capacity;
		rs->dropped = st.dropped_records;
		rs->unblocked = st.unblocked_records;
		rs->invalid = st.invalid_records;
	}
	return c;
fail:
	gb__collector_free(c);
	return NULL;
}

void
gb__collector_free(gb_collector *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_rings; i++)
		gb__ring_close(c->rings[i].ring);
	gb__statsd_free(c->statsd);
	gb__console_free(c->console);
	free(c);
}

static void flush_sinks(gb_collector *c);

/* Sends what the held records became, then gives their space back to the producers. */
static void
release(gb_collector *c)
{
	flush_sinks(c);
	for (size_t i = 0; i < c->n_rings; i++) {
		gb__ring_release(c->rings[i].ring);
		c->rings[i].held = 0;
	}
}

/* One bounded pass over every ring. The records stay in their rings until what they became
 * has been sent: a collector killed at any point leaves its successor to read them again,
 * never loses them. They are released when the drain goes idle or a ring holds BATCH records
 * (or a quarter of its bytes), so lines still pack across passes and a SIGKILL repeats at most
 * BATCH records per ring. Folded counters and gauges are the exception: they leave at the
 * next flush interval. */
static size_t
drain_once(gb_collector *c)
{
	bool full = false;
	size_t n = 0;

	for (size_t i = 0; i < c->n_rings; i++) {
		struct ring_slot *rs = &c->rings[i];
		size_t got = gb__ring_read_hold(rs->ring, gb__dispatch_payload, &c->d,
		    BATCH - rs->held);

		rs->held += got;
		n += got;
		if (rs->held >= BATCH || gb__ring_held(rs->ring) >= rs->capacity / 4)
			full = true;
	}
	if (n == 0 || full)
		release(c);
	return n;
}

static void
report(gb_collector *c)
{
	gb_ring_figures fig[GB_COLLECTOR_MAX_RINGS];

	for (size_t i = 0; i < c->n_rings; i++) {
		struct ring_slot *rs = &c->rings[i];
		gb_ring_stats st;

		gb__ring_stats(rs->ring, &st);
		fig[i] = (gb_ring_figures){
			.name = gb__ring_name(rs->ring),
			.dropped = st.dropped_records - rs->dropped,
			.unblocked = st.unblocked_records - rs->unblocked,
			.lag_bytes = st.tail - st.head,
		};
		c->d.ring_invalid += st.invalid_records - rs->invalid;
		rs->dropped = st.dropped_records;
		rs->unblocked = st.unblocked_records;
		rs->invalid = st.invalid_records;
	}
	gb__dispatch_report(&c->d, fig, c->n_rings);
}

/* True once some producer attached to some ring and none is live on any. */
static bool
producers_done(gb_collector *c)
{
	unsigned ever = 0, live = 0;

	for (size_t i = 0; i < c->n_rings; i++) {
		gb_ring_stats st;

		gb__ring_stats(c->rings[i].ring, &st);
		ever += st.producers_ever;
		live += st.producers_live;
	}
	return ever > 0 && live == 0;
}

static void
flush_sinks(gb_collector *c)
{
	if (c->statsd != NULL)
		gb__statsd_flush(c->statsd);
	if (c->console != NULL)
		gb__console_flush(c->console, 0);
}

static void
idle_wait(gb_collector *c, uint64_t now, uint64_t next_due)
{
	uint64_t t = next_due > now ? next_due - now : 0;

	if (t > IDLE_WAIT_NS)
		t = IDLE_WAIT_NS;
	if (c->n_rings > 1 && t > MULTI_WAIT_NS)
		t = MULTI_WAIT_NS;
	if (t == 0)
		return;
	gb__ring_wait(c->rings[c->next_wait].ring, t);
	c->next_wait = (c->next_wait + 1) % c->n_rings;
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: a futex wait returns at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
finish(gb_collector *c)
{
	uint64_t end = gb__clock_mono_ns() + FINAL_DRAIN_NS;
	gb_statsd_stats st = { 0 };

	/* producers may still be writing: drain until a pass finds nothing, within a deadline */
	while (drain_once(c) > 0 && gb__clock_mono_ns() < end)
		;
	if (c->statsd != NULL)
		gb__statsd_flush_aggregates(c->statsd);
	report(c);
	release(c);
	if (c->console != NULL) {
		gb__console_summary(c->console);
		gb__console_finish(c->console, CONSOLE_EXIT_WAIT_NS);
	}
	if (c->statsd != NULL)
		gb__statsd_get_stats(c->statsd, &st);
	gb__log_info("drained: %llu records read, %llu invalid; statsd: %llu packets sent, "
	    "send_errors %llu, values_rejected %llu; console_lines_dropped %llu",
	    (unsigned long long)c->d.records_read,
	    (unsigned long long)(c->d.records_invalid + c->d.ring_invalid),
	    (unsigned long long)st.packets_sent, (unsigned long long)st.send_errors,
	    (unsigned long long)st.values_rejected,
	    (unsigned long long)(c->console ? gb__console_lines_dropped(c->console) : 0));
}

int
gb__collector_run(gb_collector *c)
{
	uint64_t now = gb__clock_mono_ns();
	uint64_t next_flush = now + c->cfg.flush_interval_ns;
	uint64_t next_report = now + c->cfg.report_interval_ns;

	while (!stop_signal) {
		size_t n = drain_once(c);

		now = gb__clock_mono_ns();
		if (summary_wanted) {
			summary_wanted = 0;
			if (c->console != NULL)
				gb__console_summary(c->console);
		}
		if (now >= next_flush) {
			if (c->statsd != NULL)
				gb__statsd_flush_aggregates(c->statsd);
			next_flush = now + c->cfg.flush_interval_ns;
		}
		if (now >= next_report) {
			report(c);
			next_report = now + c->cfg.report_interval_ns;
		}
		if (n > 0)
			continue;
		if (c->cfg.exit_when_producers_done && producers_done(c) && drain_once(c) == 0) {
			gb__log_info("every producer has detached: exiting");
			break;
		}
		idle_wait(c, now, next_flush < next_report ? next_flush : next_report);
	}
	if (stop_signal)
		gb__log_info("signal %d: draining and exiting", (int)stop_signal);
	finish(c);
	return 0;
}
