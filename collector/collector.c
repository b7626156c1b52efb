/*
 * collector.c - the drain loop. Each pass reads a bounded batch from every ring (no syscall
 * and no allocation per record: the sinks pack into fixed buffers), then runs what is due:
 * the flush of folded metrics, the 10 s self-report, a SIGUSR1 summary, and every 250 ms a look
 * at each segment (shrunk, removed, replaced). With nothing to read it sends the partial
 * datagram; for LINGER_NS after the last records it stays awake, polling with a nanosleep that
 * grows from POLL_MIN_NS to POLL_MAX_NS, so producers that keep writing never find it asleep
 * and never pay a wake-up; after that it sleeps on a ring's futex with a short timeout, so an
 * idle collector costs about nothing and a signal is seen within that timeout. Every access
 * to a mapping runs under a SIGBUS guard scoped to that mapping: a segment truncated by another
 * process is reported as damaged and closed, and the collector goes on.
 */
#include "collector.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "dispatch.h"
#include "log.h"
#include "ring_layout.h"

#define BATCH 4096                        /* records per ring per pass */
#define IDLE_WAIT_NS (100ull * GB_NS_PER_MS) /* longest sleep: bounds signal latency */
#define MULTI_WAIT_NS (10ull * GB_NS_PER_MS) /* per-ring sleep when there are several */
#define CHECK_NS (250ull * GB_NS_PER_MS)  /* how often each segment is looked at */
#define LINGER_NS (50ull * GB_NS_PER_MS)  /* awake this long after the last records read */
#define POLL_MIN_NS (50ull * 1000)        /* the first nap of a linger */
#define POLL_MAX_NS (1ull * GB_NS_PER_MS) /* the longest: bounds a record's wait while awake */
#define FINAL_DRAIN_NS (2ull * GB_NS_PER_SEC)
#define FINAL_NAP_NS (1ull * GB_NS_PER_MS) /* while a claim before the final tail is uncommitted */
#define CONSOLE_EXIT_WAIT_NS (2ull * GB_NS_PER_SEC) /* for a slow reader of the last output */

/* One mapped segment being drained. */
struct ring_view {
	gb_ring *ring;                        /* NULL: none */
	uint64_t capacity;
	size_t held;                          /* records read, not yet released */
	uint64_t dropped, unblocked, invalid; /* counters at the previous report */
	unsigned base_ever;                   /* producers_ever when this collector attached */
	uint64_t goal;                        /* the final drain reads up to this tail */
	size_t last_read;                     /* records the last pass read from it */
};

/* One ring the collector was asked to drain, by name. */
struct ring_slot {
	char name[4096];        /* as opened: the ring's resolved name or path */
	struct ring_view cur;   /* the segment at the name */
	struct ring_view old;   /* a removed or replaced segment, drained to its end */
	bool damaged;           /* cur shrank under us and was closed: wait for a new segment */
	dev_t dead_dev;         /* the damaged segment, to tell when the name leads elsewhere */
	ino_t dead_ino;
	bool warned;            /* a follow or re-attach failure was logged */
	uint64_t carried_dropped, carried_unblocked; /* from closed segments, for the next report */
};

struct gb_collector {
	gb_collector_config cfg;
	struct ring_slot rings[GB_COLLECTOR_MAX_RINGS];
	size_t n_rings;
	gb_statsd_sink *statsd;
	gb_console_sink *console;
	gb_prom_sink *prom;
	gb_prom_http *http;
	gb_dispatch d;
	size_t next_wait;       /* round-robin over the rings when idle */
	uint64_t busy_ns;       /* CLOCK_MONOTONIC of the last pass that read records */
	uint64_t poll_ns;       /* the next nap while lingering */
	uint64_t start_real_ns; /* CLOCK_REALTIME_COARSE when this collector started */
	bool own_producer;      /* a producer of this run was seen (--exit-when-producers-done) */
	uint64_t dropped_reported, unblocked_reported; /* in records_dropped / _unblocked, this run */
};

_Static_assert(GB_COLLECTOR_MAX_RINGS <= GB_DISPATCH_MAX_RINGS, "every ring in /metrics");

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

/* ---- the SIGBUS guard: a fault inside the mapping being accessed jumps back out ---- */

static sigjmp_buf guard_env;
static volatile sig_atomic_t guard_on;
static uintptr_t guard_lo, guard_hi;

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	(void)uc;
	if (guard_on && si->si_code > 0 && a >= guard_lo && a < guard_hi) {
		guard_on = 0;
		siglongjmp(guard_env, 1);
	}
	/* not a fault in a ring's mapping: what SIGBUS would have done without us */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Aims the guard at v's mapping; then sigsetjmp(guard_env, 0) and guard_on = 1 in the caller
 * (sigsetjmp must run in the frame that stays live). SA_NODEFER keeps SIGBUS unblocked after
 * a jump, so no mask needs saving: the guard costs no system call. */
static void
guard_aim(const struct ring_view *v)
{
	const void *base;
	size_t len;

	gb__ring_mapping(v->ring, &base, &len);
	guard_lo = (uintptr_t)base;
	guard_hi = guard_lo + len;
}

/* A copy of the record being dispatched: a fault can only come while copying it, before the
 * sinks see a byte, so a jump out never leaves a sink half-way through a record. */
static uint8_t stage[GB_RL_MAX_RECORD_CAP];

static void
dispatch_copy(void *ctx, uint16_t type, const uint8_t *payload, size_t len)
{
	if (len > sizeof(stage))
		len = sizeof(stage); /* the ring caps payloads below this */
	memcpy(stage, payload, len);
	guard_on = 0;
	gb__dispatch_payload(ctx, type, stage, len);
	guard_on = 1;
}

/* Each returns false when the segment faulted (it shrank): the caller calls view_damaged. */
static bool
view_read(gb_collector *c, struct ring_view *v, size_t max, size_t *got)
{
	guard_aim(v);
	if (sigsetjmp(guard_env, 0) != 0)
		return false;
	guard_on = 1;
	*got = gb__ring_read_hold(v->ring, dispatch_copy, &c->d, max);
	guard_on = 0;
	return true;
}

static bool
view_release(struct ring_view *v)
{
	guard_aim(v);
	if (sigsetjmp(guard_env, 0) != 0)
		return false;
	guard_on = 1;
	gb__ring_release(v->ring);
	guard_on = 0;
	return true;
}

static bool
view_stats(struct ring_view *v, gb_ring_stats *st)
{
	guard_aim(v);
	if (sigsetjmp(guard_env, 0) != 0)
		return false;
	guard_on = 1;
	gb__ring_stats(v->ring, st);
	guard_on = 0;
	return true;
}

/* Marks in v's segment that its drops have been reported up to what v last took in. */
static bool
view_mark_exported(struct ring_view *v)
{
	guard_aim(v);
	if (sigsetjmp(guard_env, 0) != 0)
		return false;
	guard_on = 1;
	gb__ring_set_exported(v->ring, v->dropped, v->unblocked);
	guard_on = 0;
	return true;
}

static bool
view_wait(struct ring_view *v, uint64_t ns)
{
	guard_aim(v);
	if (sigsetjmp(guard_env, 0) != 0)
		return false;
	guard_on = 1;
	gb__ring_wait(v->ring, ns);
	guard_on = 0;
	return true;
}

static bool
view_close_guarded(struct ring_view *v)
{
	guard_aim(v);
	if (sigsetjmp(guard_env, 0) != 0)
		return false;
	guard_on = 1;
	gb__ring_close(v->ring);
	guard_on = 0;
	return true;
}

/* Closes v's segment; one that faults meanwhile is closed without another access. */
static void
view_close(struct ring_view *v)
{
	if (v->ring == NULL)
		return;
	if (!view_close_guarded(v)) {
		gb__ring_set_unusable(v->ring);
		gb__ring_close(v->ring);
	}
	memset(v, 0, sizeof(*v));
}

/* Starts draining segment ring in v: the counters so far are its predecessor's to report. */
static void
view_start(struct ring_view *v, gb_ring *ring, bool before_start)
{
	gb_ring_stats st;

	memset(v, 0, sizeof(*v));
	v->ring = ring;
	if (!view_stats(v, &st)) {
		gb__ring_set_unusable(ring);
		memset(&st, 0, sizeof(st));
	}
	v->capacity = st.capacity;
	/* drops no consumer has reported yet (made while none ran, or before a crash) are this
	 * collector's to report, once */
	v->dropped = st.exported_dropped;
	v->unblocked = st.exported_unblocked;
	v->invalid = st.invalid_records;
	/* a segment followed after the start holds only producers of this run */
	v->base_ever = before_start ? st.producers_ever : 0;
}

/* Folds v's counters since the last report into the slot's carried figures (before a close). */
static void
view_carry(gb_collector *c, struct ring_slot *s, struct ring_view *v)
{
	gb_ring_stats st;

	if (v->ring == NULL || !view_stats(v, &st) || gb__ring_is_unusable(v->ring))
		return;
	s->carried_dropped += st.dropped_records - v->dropped;
	s->carried_unblocked += st.unblocked_records - v->unblocked;
	c->d.ring_invalid += st.invalid_records - v->invalid;
	v->dropped = st.dropped_records;
	v->unblocked = st.unblocked_records;
	v->invalid = st.invalid_records;
	view_mark_exported(v);
}

/* v's segment faulted or was found shrunk: another process truncated it. What it held is gone
 * (the kernel freed the pages); close it without another access and go on. */
static void
view_damaged(struct ring_slot *s, struct ring_view *v)
{
	gb__ring_set_unusable(v->ring);
	gb__log_warnx("ring \"%s\": damaged: the segment shrank under the collector (another "
	    "process truncated it); what it held is lost; %s", s->name, v == &s->cur ?
	    "waiting for the ring to be removed or recreated" : "its successor is drained");
	if (v == &s->cur) {
		gb__ring_identity(v->ring, &s->dead_dev, &s->dead_ino);
		s->damaged = true;
	}
	gb__ring_close(v->ring);
	memset(v, 0, sizeof(*v));
}

static void install_signals(void);

/* Calls fn on every view of c that has a segment. */
#define FOR_EACH_VIEW(c, s, v)                                                        \
	for (struct ring_slot *s = (c)->rings; s < (c)->rings + (c)->n_rings; s++)     \
		for (struct ring_view *v = &s->cur; v != NULL;                           \
		     v = v == &s->cur ? &s->old : NULL)                                   \
			if (v->ring != NULL)

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
	c->start_real_ns = gb__clock_real_coarse_ns();
	if (c->cfg.report_interval_ns == 0)
		c->cfg.report_interval_ns = GB_COLLECTOR_REPORT_NS;
	if (cfg->statsd_on && (c->statsd = gb__statsd_new(&cfg->statsd, err, errlen)) == NULL)
		goto fail;
	if (cfg->console != GB_CONSOLE_OFF &&
	    (c->console = gb__console_new(cfg->console, cfg->console_fd, 0)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (cfg->prom_on && ((c->prom = gb__prom_new(&cfg->prom, err, errlen)) == NULL ||
	    (c->http = gb__prom_http_new(&cfg->prom_addr, err, errlen)) == NULL))
		goto fail;
	c->d.statsd = c->statsd;
	c->d.console = c->console;
	c->d.prom = c->prom;
	c->d.http = c->http;
	c->d.now_ns = gb__clock_mono_ns();
	for (size_t i = 0; i < cfg->n_rings; i++) {
		struct ring_slot *rs = &c->rings[i];
		gb_ring *ring;

		if (gb__ring_open_consumer(&ring, cfg->rings[i], &cfg->ring_opts, err, errlen) !=
		    GB_RING_OK)
			goto fail;
		c->n_rings++;
		snprintf(rs->name, sizeof(rs->name), "%s", gb__ring_name(ring));
		/* drops from before this collector were reported by its predecessor, or by no one */
		view_start(&rs->cur, ring, true);
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
	FOR_EACH_VIEW(c, s, v)
		view_close(v);
	gb__statsd_free(c->statsd);
	gb__console_free(c->console);
	gb__prom_http_free(c->http); /* before the sink: its snapshots borrow the bucket bounds */
	gb__prom_free(c->prom);
	free(c);
}

static void flush_sinks(gb_collector *c);

/* What /metrics shows, as of now. */
static void
publish(gb_collector *c)
{
	const char *names[GB_COLLECTOR_MAX_RINGS];

	for (size_t i = 0; i < c->n_rings; i++)
		names[i] = c->rings[i].name;
	gb__dispatch_publish(&c->d, names, c->n_rings);
}

/* Sends what the held records became, then gives their space back to the producers. */
static void
release(gb_collector *c)
{
	flush_sinks(c);
	FOR_EACH_VIEW(c, s, v) {
		if (!view_release(v))
			view_damaged(s, v);
		else
			v->held = 0;
	}
}

/* How much longer the sinks may hold what they have not sent (0: send it now). */
static uint64_t
hold_ns(const gb_collector *c, uint64_t now)
{
	return c->statsd != NULL ? gb__statsd_hold_ns(c->statsd, now) : 0;
}

/* One bounded pass over every ring. The records stay in their rings until what they became
 * has been sent: a collector killed at any point leaves its successor to read them again,
 * never loses them. They are released when the drain goes idle or a ring holds BATCH records
 * (or a quarter of its bytes), so lines still pack across passes and a SIGKILL repeats at most
 * BATCH records per ring. With --pack-values the records of samples gathered for the flush
 * interval stay held until then (or until the BATCH rule sends them early). Folded counters
 * and gauges are the exception: their records are released, their sums leave at the next
 * flush interval. */
static size_t
drain_once(gb_collector *c)
{
	bool full = false;
	size_t n = 0;

	FOR_EACH_VIEW(c, s, v) {
		size_t got = 0;

		if (!view_read(c, v, BATCH - v->held, &got)) {
			view_damaged(s, v);
			continue;
		}
		v->last_read = got;
		v->held += got;
		n += got;
		if (v->held >= BATCH || gb__ring_held(v->ring) >= v->capacity / 4)
			full = true;
	}
	/* an empty pass sends a part-filled datagram only once it has waited --datagram-wait, so
	 * how well lines pack does not depend on which side is faster */
	if (full || (n == 0 && hold_ns(c, gb__clock_mono_ns()) == 0))
		release(c);
	else if (n == 0 && c->statsd != NULL)
		gb__statsd_send_full(c->statsd); /* full ones go now; their records stay held */
	return n;
}

/* Marks in every segment that its drops have been reported up to what was taken in. */
static void
mark_exported(gb_collector *c)
{
	FOR_EACH_VIEW(c, s, v)
		if (!gb__ring_is_unusable(v->ring) && !view_mark_exported(v))
			view_damaged(s, v);
}

static void
report(gb_collector *c)
{
	gb_ring_figures fig[GB_COLLECTOR_MAX_RINGS];

	for (size_t i = 0; i < c->n_rings; i++) {
		struct ring_slot *rs = &c->rings[i];

		fig[i] = (gb_ring_figures){ .name = rs->name, .dropped = rs->carried_dropped,
			.unblocked = rs->carried_unblocked };
		rs->carried_dropped = rs->carried_unblocked = 0;
		for (struct ring_view *v = &rs->cur; v != NULL; v = v == &rs->cur ? &rs->old : NULL) {
			gb_ring_stats st;

			if (v->ring == NULL)
				continue;
			if (!view_stats(v, &st)) {
				view_damaged(rs, v);
				continue;
			}
			if (gb__ring_is_unusable(v->ring))
				continue;
			fig[i].dropped += st.dropped_records - v->dropped;
			fig[i].unblocked += st.unblocked_records - v->unblocked;
			fig[i].lag_bytes += st.tail - st.head;
			c->d.ring_invalid += st.invalid_records - v->invalid;
			v->dropped = st.dropped_records;
			v->unblocked = st.unblocked_records;
			v->invalid = st.invalid_records;
		}
		c->dropped_reported += fig[i].dropped;
		c->unblocked_reported += fig[i].unblocked;
	}
	gb__dispatch_report(&c->d, fig, c->n_rings);
	/* only once the report is out (a collector killed in between reports them again); with
	 * no StatsD the exit line reports them, and marks them then */
	if (c->statsd != NULL)
		mark_exported(c);
}

/* True once a producer of this run (attached since this collector started, or with a
 * heartbeat newer than its start: not a leftover of an earlier run) was seen and none is live
 * on any ring. */
static bool
producers_done(gb_collector *c)
{
	unsigned live = 0;

	FOR_EACH_VIEW(c, s, v) {
		gb_ring_stats st;

		if (!view_stats(v, &st)) {
			view_damaged(s, v);
			continue;
		}
		if (st.producers_ever > v->base_ever || st.newest_heartbeat_ns > c->start_real_ns)
			c->own_producer = true;
		live += st.producers_live;
	}
	return c->own_producer && live == 0;
}

static void
flush_sinks(gb_collector *c)
{
	if (c->statsd != NULL)
		gb__statsd_flush_read(c->statsd); /* the packed samples too: never released unsent */
	if (c->console != NULL)
		gb__console_flush(c->console, 0);
}

static void
nap(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / GB_NS_PER_SEC), (long)(ns % GB_NS_PER_SEC) };

	nanosleep(&ts, NULL); /* a signal ends it early, which is what the loop wants */
}

static void
idle_wait(gb_collector *c, uint64_t now, uint64_t next_due)
{
	uint64_t t = next_due > now ? next_due - now : 0;
	size_t n = 0, k;

	FOR_EACH_VIEW(c, s, v)
		n++;
	if (t > IDLE_WAIT_NS)
		t = IDLE_WAIT_NS;
	if (n > 1 && t > MULTI_WAIT_NS)
		t = MULTI_WAIT_NS;
	if (hold_ns(c, now) > 0 && t > hold_ns(c, now))
		t = hold_ns(c, now); /* wake up to send the part-filled datagram */
	if (t == 0)
		return;
	if (n > 0 && now - c->busy_ns < LINGER_NS) {
		nap(c->poll_ns < t ? c->poll_ns : t); /* awake: no producer pays a wake-up */
		c->poll_ns = c->poll_ns * 2 > POLL_MAX_NS ? POLL_MAX_NS : c->poll_ns * 2;
		return;
	}
	if (n == 0) {
		nap(t); /* every ring damaged: wait for them to be recreated */
		return;
	}
	k = c->next_wait++ % n;
	FOR_EACH_VIEW(c, s, v) {
		if (k-- != 0)
			continue;
		if (!view_wait(v, t))
			view_damaged(s, v);
		break;
	}
	/* the idle pass is the slow path: a segment that shrank while we slept is found by its
	 * size before the next pass touches it (the SIGBUS guard covers a shrink mid-pass) */
	FOR_EACH_VIEW(c, s, v) {
		if (gb__ring_check_size(v->ring))
			view_damaged(s, v);
	}
}

/* Opens the segment now at s's name (attaching, or creating it if absent). */
static gb_ring *
reopen(gb_collector *c, struct ring_slot *s, const char *why)
{
	gb_ring *ring;
	char err[512];

	if (gb__ring_open_consumer(&ring, s->name, &c->cfg.ring_opts, err, sizeof(err)) !=
	    GB_RING_OK) {
		if (!s->warned)
			gb__log_warnx("%s; cannot drain the segment at its name yet: %s", why, err);
		s->warned = true;
		return NULL;
	}
	s->warned = false;
	return ring;
}

/* The periodic look at every segment: shrunk ones are closed (damaged), a removed or replaced
 * one is drained to its end beside the one now at the name, a drained old one is closed, and
 * a damaged ring is re-attached once its name leads to a new segment. System calls, no
 * access to a mapping. */
static void
check_rings(gb_collector *c)
{
	char why[512];

	for (size_t i = 0; i < c->n_rings; i++) {
		struct ring_slot *s = &c->rings[i];
		gb_ring *ring;
		unsigned what;

		if (s->damaged) {
			if (!gb__ring_path_changed(s->name, s->dead_dev, s->dead_ino))
				continue;
			snprintf(why, sizeof(why), "ring \"%s\": recreated after the damage", s->name);
			if ((ring = reopen(c, s, why)) == NULL)
				continue;
			gb__log_warnx("ring \"%s\": draining the new segment at its name", s->name);
			view_start(&s->cur, ring, false);
			s->damaged = false;
			continue;
		}
		if (s->old.ring != NULL) {
			gb_ring_stats st;

			if (gb__ring_check(s->old.ring) & GB_RING_SHRUNK) {
				view_damaged(s, &s->old);
			} else if (!view_stats(&s->old, &st)) {
				view_damaged(s, &s->old);
			} else if (s->old.last_read == 0 && s->old.held == 0 && st.producers_live == 0 &&
			    gb__ring_read_pos(s->old.ring) == st.tail) {
				view_carry(c, s, &s->old);
				view_close(&s->old);
				gb__log_info("ring \"%s\": the old segment is drained to its end and closed",
				    s->name);
			}
		}
		if (s->cur.ring == NULL)
			continue;
		what = gb__ring_check(s->cur.ring);
		if (what & GB_RING_SHRUNK) {
			view_damaged(s, &s->cur);
			continue;
		}
		if (!(what & (GB_RING_REMOVED | GB_RING_REPLACED)) || s->old.ring != NULL)
			continue; /* a second replacement waits until the first old one is drained */
		snprintf(why, sizeof(why), "ring \"%s\": the segment was %s", s->name,
		    what & GB_RING_REPLACED ? "replaced by another" : "removed");
		if ((ring = reopen(c, s, why)) == NULL)
			continue;
		gb__log_warnx("%s: draining it to its end, and the new segment at its name", why);
		s->old = s->cur;
		view_start(&s->cur, ring, false);
	}
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
	sigaction(SIGHUP, &sa, NULL); /* a closed terminal or a service manager: drain and exit */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* True when every segment has been read up to the tail it had when the final drain began. */
static bool
reached_goals(gb_collector *c)
{
	FOR_EACH_VIEW(c, s, v) {
		if (!gb__ring_is_unusable(v->ring) &&
		    (int64_t)(gb__ring_read_pos(v->ring) - v->goal) < 0)
			return false;
	}
	return true;
}

static void
finish(gb_collector *c)
{
	uint64_t end = gb__clock_mono_ns() + FINAL_DRAIN_NS;
	gb_statsd_stats st = { 0 };

	/* Everything claimed before the stop is delivered: read up to the tail seen now, napping
	 * while a claim before it is still uncommitted (a producer preempted between claim and
	 * commit), then on while passes find records, all within the deadline. */
	FOR_EACH_VIEW(c, s, v) {
		gb_ring_stats rst;

		if (!view_stats(v, &rst)) {
			view_damaged(s, v);
			continue;
		}
		v->goal = rst.tail;
	}
	for (;;) {
		size_t n = drain_once(c);

		if (gb__clock_mono_ns() >= end)
			break;
		if (n > 0)
			continue;
		if (reached_goals(c))
			break;
		nap(FINAL_NAP_NS);
	}
	if (c->statsd != NULL)
		gb__statsd_flush_aggregates(c->statsd);
	report(c);
	release(c);
	c->d.now_ns = gb__clock_mono_ns();
	publish(c); /* for a scrape during the rest of the exit */
	if (c->console != NULL) {
		gb__console_summary(c->console);
		gb__console_finish(c->console, CONSOLE_EXIT_WAIT_NS);
	}
	if (c->statsd != NULL)
		gb__statsd_get_stats(c->statsd, &st);
	gb__log_info("drained: %llu records read, %llu invalid, %llu dropped by producers and %llu "
	    "unblocked reported; statsd: %llu packets sent, send_errors %llu, values_rejected "
	    "%llu; console_lines_dropped %llu",
	    (unsigned long long)c->d.records_read,
	    (unsigned long long)(c->d.records_invalid + c->d.ring_invalid),
	    (unsigned long long)c->dropped_reported, (unsigned long long)c->unblocked_reported,
	    (unsigned long long)st.packets_sent, (unsigned long long)st.send_errors,
	    (unsigned long long)st.values_rejected,
	    (unsigned long long)(c->console ? gb__console_lines_dropped(c->console) : 0));
	if (c->statsd == NULL)
		mark_exported(c);
}

int
gb__collector_run(gb_collector *c)
{
	uint64_t now = gb__clock_mono_ns();
	uint64_t next_flush = now + c->cfg.flush_interval_ns;
	uint64_t next_report = now + c->cfg.report_interval_ns;
	uint64_t next_check = now + CHECK_NS;

	publish(c); /* /metrics answers with the collector's own figures from the start */
	while (!stop_signal) {
		size_t n = drain_once(c);

		now = gb__clock_mono_ns();
		c->d.now_ns = now;
		if (summary_wanted) {
			summary_wanted = 0;
			if (c->console != NULL)
				gb__console_summary(c->console);
		}
		if (now >= next_flush) {
			if (c->statsd != NULL)
				gb__statsd_flush_aggregates(c->statsd);
			publish(c);
			next_flush = now + c->cfg.flush_interval_ns;
		}
		if (now >= next_report) {
			report(c);
			next_report = now + c->cfg.report_interval_ns;
		}
		if (now >= next_check) {
			check_rings(c);
			next_check = now + CHECK_NS;
		}
		if (n > 0) {
			c->busy_ns = now;
			c->poll_ns = POLL_MIN_NS;
			continue;
		}
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
