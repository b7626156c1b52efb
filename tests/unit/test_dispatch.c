/* test_dispatch.c - ring payloads to sinks: valid records reach both sinks, anything that
 * fails to decode or has an unknown type is counted as invalid and reaches neither, and the
 * self-metrics report deltas under gbatch.collector.*. Driven from plain buffers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "dispatch.h"
#include "dogstatsd_check.h"
#include "ring.h"

static char sent[1 << 16];
static size_t sent_len;

static int
capture(void *ctx, const char *d, size_t len)
{
	const char *why;

	(void)ctx;
	ck_assert_msg(dsd_check_datagram(d, len, GB_STATSD_UDP_MAX, &why, NULL) > 0, "%s", why);
	ck_assert_uint_lt(sent_len + len, sizeof(sent));
	memcpy(sent + sent_len, d, len);
	sent_len += len;
	sent[sent_len] = '\0';
	return 0;
}

static size_t
encode(uint8_t *buf, size_t cap, enum gb_rec_kind kind, const char *scope, double v)
{
	gb_record r = { .kind = (uint8_t)kind, .value = v, .scope = scope, .scope_len = strlen(scope) };

	return gb__rec_encode(&r, buf, cap);
}

struct fixture {
	gb_statsd_sink *statsd;
	gb_console_sink *console;
	char *out;
	size_t out_len;
	FILE *f;
	gb_dispatch d;
};

static void
fixture_init_with(struct fixture *fx, enum gb_console_mode mode, size_t max_scopes,
    size_t max_contexts)
{
	gb_statsd_config cfg = { .send = capture, .max_datagram = GB_STATSD_UDP_MAX,
		.max_contexts = max_contexts };
	char err[256];

	memset(fx, 0, sizeof(*fx));
	sent_len = 0;
	sent[0] = '\0';
	fx->statsd = gb__statsd_new(&cfg, err, sizeof(err));
	ck_assert_msg(fx->statsd != NULL, "%s", err);
	fx->f = tmpfile();
	ck_assert_ptr_nonnull(fx->f);
	fx->console = gb__console_new(mode, fileno(fx->f), max_scopes);
	fx->d.statsd = fx->statsd;
	fx->d.console = fx->console;
}

static void
fixture_init(struct fixture *fx)
{
	fixture_init_with(fx, GB_CONSOLE_LINES, 0, 0);
}

/* Reads what the console wrote into fx->out and fx->out_len. */
static void
console_text(struct fixture *fx)
{
	gb__console_flush(fx->console, 0);
	fflush(fx->f);
	free(fx->out);
	fx->out = NULL;
	fx->out_len = 0;
	rewind(fx->f);
	char chunk[4096];
	size_t n;
	FILE *m = open_memstream(&fx->out, &fx->out_len);

	ck_assert_ptr_nonnull(m);
	while ((n = fread(chunk, 1, sizeof(chunk), fx->f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
}

static void
fixture_fini(struct fixture *fx)
{
	gb__statsd_free(fx->statsd);
	gb__console_free(fx->console);
	fclose(fx->f);
	free(fx->out);
}

START_TEST(valid_records_reach_both_sinks)
{
	struct fixture fx;
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t n;

	fixture_init(&fx);
	n = encode(buf, sizeof(buf), GB_REC_TIMING, "step", 0.5);
	gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, n);
	n = encode(buf, sizeof(buf), GB_REC_COUNTER, "hits", 2);
	gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, n);
	gb__statsd_flush_aggregates(fx.statsd);
	console_text(&fx);
	ck_assert_uint_eq(fx.d.records_read, 2);
	ck_assert_uint_eq(fx.d.records_invalid, 0);
	ck_assert_str_eq(sent, "gbatch.step:500|ms|#depth:0\ngbatch.hits:2|c|#depth:0\n");
	ck_assert_str_eq(fx.out, "[TIMING] step: duration=0.5000s (depth=0, call_count=0)\n"
	    "[METRIC] hits: 2 (metric_type=counter, depth=0, call_count=0)\n");
	fixture_fini(&fx);
}
END_TEST

START_TEST(invalid_payloads_are_counted_and_go_nowhere)
{
	struct fixture fx;
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t n;

	fixture_init(&fx);
	n = encode(buf, sizeof(buf), GB_REC_TIMING, "step", 0.5);
	gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, n - 1);  /* short */
	gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, 0);      /* empty */
	gb__dispatch_payload(&fx.d, 7, buf, n);                            /* unknown type */
	buf[0] = 99;                                                       /* bad version */
	gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, n);
	memset(buf, 0xff, sizeof(buf));                                    /* garbage */
	gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, sizeof(buf));
	gb__statsd_flush_aggregates(fx.statsd);
	console_text(&fx);
	ck_assert_uint_eq(fx.d.records_read, 0);
	ck_assert_uint_eq(fx.d.records_invalid, 5);
	ck_assert_uint_eq(sent_len, 0);
	ck_assert_uint_eq(fx.out_len, 0);
	fixture_fini(&fx);
}
END_TEST

START_TEST(report_sends_deltas)
{
	struct fixture fx;
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t n = encode(buf, sizeof(buf), GB_REC_TIMING, "step", 0.5);
	gb_ring_figures fig = { .name = "Default", .dropped = 3, .unblocked = 1, .lag_bytes = 4096 };

	fixture_init(&fx);
	for (int i = 0; i < 5; i++)
		gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, n);
	gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, 3);
	fx.d.ring_invalid = 2;
	gb__statsd_flush(fx.statsd);
	sent_len = 0;
	gb__dispatch_report(&fx.d, &fig, 1);
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.records_read:5|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.records_invalid:3|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.packets_sent:1|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.send_errors:0|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.console_lines_dropped:0|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.values_rejected:0|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.records_dropped:3|c|#ring:default\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.records_unblocked:1|c|#ring:default\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.ring_lag_bytes:4096|g|#ring:default\n"));
	/* the next report counts from here */
	sent_len = 0;
	gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, n);
	gb__dispatch_report(&fx.d, &fig, 1);
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.records_read:1|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.records_invalid:0|c\n"));
	fixture_fini(&fx);
}
END_TEST

START_TEST(report_counts_the_caps)
{
	struct fixture fx;
	uint8_t buf[GB_REC_MAX_SIZE];
	const char *scopes[] = { "one", "two", "three", "two", "four" };
	gb_ring_figures fig = { .name = "r" };

	fixture_init_with(&fx, GB_CONSOLE_SUMMARY, 2, 2);
	for (int i = 0; i < 5; i++) {
		size_t n = encode(buf, sizeof(buf), GB_REC_COUNTER, scopes[i], 1);
		gb__dispatch_payload(&fx.d, GB_RING_TYPE_TELEMETRY, buf, n);
	}
	gb__statsd_flush_aggregates(fx.statsd);
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.one:1|c|#depth:0\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.two:2|c|#depth:0\n"));
	ck_assert_ptr_null(strstr(sent, "gbatch.three"));
	ck_assert_ptr_null(strstr(sent, "gbatch.four"));
	sent_len = 0;
	gb__dispatch_report(&fx.d, &fig, 1);
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.contexts_dropped:2|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.console_summary_capped:2|c\n"));
	sent_len = 0;
	gb__dispatch_report(&fx.d, &fig, 1);
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.contexts_dropped:0|c\n"));
	ck_assert_ptr_nonnull(strstr(sent, "gbatch.collector.console_summary_capped:0|c\n"));
	fixture_fini(&fx);
}
END_TEST

static Suite *
dispatch_suite(void)
{
	Suite *s = suite_create("dispatch");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, valid_records_reach_both_sinks);
	tcase_add_test(tc, invalid_payloads_are_counted_and_go_nowhere);
	tcase_add_test(tc, report_sends_deltas);
	tcase_add_test(tc, report_counts_the_caps);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = dispatch_suite };
