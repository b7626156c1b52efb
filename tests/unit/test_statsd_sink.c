/* test_statsd_sink.c - the DogStatsD sink: names, tags and values sanitised to the grammar,
 * counters and gauges folded, datagrams packed within their limit, hostile producers (every
 * byte value, UTF-8, huge and empty names) checked by the strict line checker, timing types,
 * packed values and timestamps, and real UDP, unixgram and unixstream sockets, including a
 * target that goes away and comes back. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "check_main.h"
#include "clock.h"
#include "dogstatsd_check.h"
#include "record.h"
#include "statsd_internal.h"
#include "statsd_sink.h"

/* ---- a capture of every datagram the sink sends ---- */

#define CAP_MAX (1u << 22)

struct capture {
	char *buf; /* all datagrams back to back */
	size_t len;
	size_t n_dgrams;
	size_t max;
	long lines;
	int fail_with; /* errno to fail every send with, 0 to accept */
};

static int
capture_send(void *ctx, const char *d, size_t len)
{
	struct capture *c = ctx;
	const char *why = "";
	size_t bad = 0;
	long n;

	if (c->fail_with != 0) {
		errno = c->fail_with;
		return -1;
	}
	n = dsd_check_datagram(d, len, c->max, &why, &bad);
	if (n < 0)
		ck_abort_msg("invalid datagram (%s) at line \"%.*s\"", why,
		    (int)strcspn(d + bad, "\n"), d + bad);
	c->lines += n;
	ck_assert_uint_le(c->len + len, CAP_MAX);
	memcpy(c->buf + c->len, d, len);
	c->len += len;
	c->buf[c->len] = '\0';
	c->n_dgrams++;
	return 0;
}

static struct capture *
capture_new(size_t max)
{
	struct capture *c = calloc(1, sizeof(*c));

	c->buf = malloc(CAP_MAX + 1);
	c->buf[0] = '\0';
	c->max = max;
	return c;
}

static void
capture_free(struct capture *c)
{
	free(c->buf);
	free(c);
}

static gb_statsd_sink *
sink_for(struct capture *c, const gb_statsd_config *extra)
{
	gb_statsd_config cfg = { 0 };
	char err[256];
	gb_statsd_sink *s;

	if (extra != NULL)
		cfg = *extra;
	cfg.send = capture_send;
	cfg.send_ctx = c;
	cfg.max_datagram = c->max;
	s = gb__statsd_new(&cfg, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	return s;
}

static gb_record
rec(enum gb_rec_kind kind, const char *scope, size_t parent_len, double v)
{
	gb_record r = {
		.kind = (uint8_t)kind,
		.value = v,
		.scope = scope,
		.scope_len = strlen(scope),
		.parent_len = parent_len,
		.depth = parent_len ? 1 : 0,
	};
	return r;
}

/* ---- sanitising ---- */

static const struct {
	const char *prefix, *scope, *want;
} names[] = {
	{ "gbatch.", "batch.total_processing", "gbatch.batch.total_processing" },
	{ "gbatch.", "", "gbatch.unnamed" },
	{ "gbatch.", "......", "gbatch.unnamed" },
	{ "gbatch.", ".a..b.", "gbatch.a.b" },
	{ "gbatch.", "a b|c#d,e:f\ng", "gbatch.a_b_c_d_e_f_g" },
	{ "gbatch.", "a|||b", "gbatch.a_b" },
	{ "gbatch.", "h\xc3\xa9llo.w\xc3\xb6rld", "gbatch.h_llo.w_rld" },
	{ "gbatch.", "Mixed.Case_9", "gbatch.Mixed.Case_9" },
	{ "gbatch.", "9lives", "gbatch.9lives" },
	{ "", "9lives", "lives" },
	{ "", "123", "unnamed" },
	{ "", "..x", "x" },
	{ "app", "x", "appx" },
};

START_TEST(name_is_sanitised)
{
	char out[GB_STATSD_NAME_MAX + 1];
	size_t n = gb__statsd_name(out, names[_i].prefix, strlen(names[_i].prefix), names[_i].scope,
	    strlen(names[_i].scope));

	ck_assert_str_eq((out[n] = '\0', out), names[_i].want);
}
END_TEST

START_TEST(long_name_is_cut_at_200)
{
	static char scope[10 * 1024 + 1];
	char out[GB_STATSD_NAME_MAX + 8];
	const char *why;
	size_t n;

	memset(scope, 'a', sizeof(scope) - 1);
	for (size_t i = 7; i < sizeof(scope) - 1; i += 8)
		scope[i] = '.';
	n = gb__statsd_name(out, "gbatch.", 7, scope, sizeof(scope) - 1);
	ck_assert_uint_le(n, GB_STATSD_NAME_MAX);
	ck_assert_uint_ge(n, GB_STATSD_NAME_MAX - 1);
	memcpy(out + n, ":1|c", 4);
	ck_assert_msg(dsd_check_line(out, n + 4, &why) == 0, "%s", why);
}
END_TEST

static const struct {
	const char *key, *value, *want;
} tags[] = {
	{ "model", "gemini-2.0-flash", "model:gemini-2.0-flash" },
	{ "Model", "Gemini 2.0 Flash", "model:gemini_2.0_flash" },
	{ "host", "evil", "host:evil" }, /* reserved keys are the sink's business */
	{ "Größe", "Ünïcode", "größe:ünïcode" },
	{ "k", "\xd0\x97\xd0\xbd\xd0\xb0\xd1\x87", "k:\xd0\xb7\xd0\xbd\xd0\xb0\xd1\x87" },
	{ "k", "a\xc2\x9b[31mb", "k:a_31mb" },  /* a C1 control is no letter */
	{ "k", "a\xc3\x28" "b", "k:a_b" },         /* an invalid sequence */
	{ "k", "a\xe0\x80\xaf" "b", "k:a_b" },     /* an overlong '/' */
	{ "k", "\xed\xa0\x80x", "k:_x" },        /* a surrogate */
	{ "\xc3\xa9t\xc3\xa9", "v", "\xc3\xa9t\xc3\xa9:v" }, /* a key may start with a letter of any script */
	{ "a:b", "c", "a_b:c" },
	{ "k", "v:", "k:v" },
	{ "k", "a:b", "k:a:b" },
	{ "k", ":::", "k" },
	{ "k", "", "k" },
	{ "k", "a|b,c#d\ne", "k:a_b_c_d_e" },
	{ "_9key", "x", "key:x" },
	{ "path", "/tmp/x.json", "path:/tmp/x.json" },
	{ "k", "\xe2\x9c\x93ok", "k:_ok" },
};

START_TEST(tag_is_sanitised)
{
	char out[GB_STATSD_TAG_MAX + 1];
	size_t kl, n = gb__statsd_tag(out, tags[_i].key, strlen(tags[_i].key), tags[_i].value,
	    strlen(tags[_i].value), &kl);

	out[n] = '\0';
	ck_assert_str_eq(out, tags[_i].want);
	ck_assert_uint_eq(kl, strcspn(tags[_i].want, ":"));
}
END_TEST

START_TEST(tag_without_letter_is_no_tag)
{
	char out[GB_STATSD_TAG_MAX + 1];

	ck_assert_uint_eq(gb__statsd_tag(out, "123", 3, "x", 1, NULL), 0);
	ck_assert_uint_eq(gb__statsd_tag(out, "", 0, "x", 1, NULL), 0);
	ck_assert_uint_eq(gb__statsd_tag(out, ":|,#", 4, "x", 1, NULL), 0);
}
END_TEST

START_TEST(long_tag_is_cut_and_never_ends_in_colon)
{
	char key[300], value[300], out[GB_STATSD_TAG_MAX + 1];
	const char *why;
	size_t n;

	memset(key, 'k', sizeof(key));
	memset(value, ':', sizeof(value));
	n = gb__statsd_tag(out, key, 199, value, sizeof(value), NULL);
	ck_assert_uint_eq(n, 199);
	n = gb__statsd_tag(out, key, 150, value, sizeof(value), NULL);
	ck_assert_uint_eq(n, 150);
	memset(value, 'v', sizeof(value));
	value[48] = ':';
	n = gb__statsd_tag(out, key, 150, value, sizeof(value), NULL);
	ck_assert_uint_eq(n, 199); /* cut at 200 lands on the ':' and drops it */
	n = gb__statsd_tag(out, key, sizeof(key), value, sizeof(value), NULL);
	ck_assert_uint_eq(n, GB_STATSD_TAG_MAX);
	char line[300] = "a:1|c|#";
	memcpy(line + 7, out, n);
	ck_assert_msg(dsd_check_line(line, 7 + n, &why) == 0, "%s", why);
}
END_TEST

static const struct {
	double v;
	const char *want;
} values[] = {
	{ 0.0, "0" }, { -0.0, "0" }, { 5, "5" }, { -5, "-5" }, { 123.4, "123.4" }, { 2.5, "2.5" },
	{ 0.001, "0.001" }, { 1e20, "1e+20" }, { 1e-7, "1e-07" }, { 999999.9999999999, "1000000" },
	{ 18446744073709.5, "18446744073709.5" },
};

START_TEST(value_is_formatted)
{
	char out[GB_STATSD_VALUE_MAX];
	size_t n = gb__statsd_value(out, values[_i].v);

	out[n] = '\0';
	ck_assert_str_eq(out, values[_i].want);
}
END_TEST

START_TEST(prefix_check)
{
	char err[256];

	ck_assert_int_eq(gb__statsd_prefix_check("gbatch.", err, sizeof(err)), 0);
	ck_assert_int_eq(gb__statsd_prefix_check("", err, sizeof(err)), 0);
	ck_assert_int_eq(gb__statsd_prefix_check("my_app.v2.", err, sizeof(err)), 0);
	ck_assert_int_eq(gb__statsd_prefix_check("9app.", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "\"9app.\""));
	ck_assert_int_eq(gb__statsd_prefix_check("a..b.", err, sizeof(err)), -1);
	ck_assert_int_eq(gb__statsd_prefix_check("a b.", err, sizeof(err)), -1);
	ck_assert_int_eq(gb__statsd_prefix_check(".", err, sizeof(err)), -1);
}
END_TEST

/* ---- lines ---- */

START_TEST(timing_line_carries_depth_parent_and_metadata)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	const gb_rec_kv meta[] = { { "question_count", 14, "5", 1 } };
	gb_record r = rec(GB_REC_TIMING, "batch.total_processing.batch.attempt",
	    strlen("batch.total_processing"), 0.1234);

	r.meta = meta;
	r.n_meta = 1;
	gb__statsd_record(s, &r);
	r = rec(GB_REC_TIMING, "batch.total_processing", 0, 2);
	gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	ck_assert_str_eq(c->buf,
	    "gbatch.batch.attempt:123.4|ms|#depth:1,"
	    "parent_scope:batch.total_processing,question_count:5\n"
	    "gbatch.batch.total_processing:2000|ms|#depth:0\n");
	ck_assert_uint_eq(c->n_dgrams, 1);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(counters_sum_gauges_keep_last_per_context)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	const gb_rec_kv m1[] = { { "model", 5, "a", 1 } }, m2[] = { { "model", 5, "b", 1 } };
	gb_record r;

	for (int i = 1; i <= 3; i++) {
		r = rec(GB_REC_COUNTER, "api.calls", 0, i);
		r.meta = m1;
		r.n_meta = 1;
		gb__statsd_record(s, &r);
		r.meta = m2;
		r.value = 10;
		gb__statsd_record(s, &r);
		r = rec(GB_REC_GAUGE, "inflight", 0, i);
		gb__statsd_record(s, &r);
		r = rec(GB_REC_METRIC, "token_efficiency", 0, 0.5 * i);
		gb__statsd_record(s, &r);
	}
	ck_assert_uint_eq(c->len, 0); /* nothing leaves before the flush */
	gb__statsd_flush_aggregates(s);
	ck_assert_str_eq(c->buf,
	    "gbatch.api.calls:6|c|#depth:0,model:a\n"
	    "gbatch.api.calls:30|c|#depth:0,model:b\n"
	    "gbatch.inflight:3|g|#depth:0\n"
	    "gbatch.token_efficiency:1.5|g|#depth:0\n");
	/* the next interval starts empty */
	c->len = 0;
	c->buf[0] = '\0';
	r = rec(GB_REC_COUNTER, "api.calls", 0, 1);
	gb__statsd_record(s, &r);
	gb__statsd_flush_aggregates(s);
	ck_assert_str_eq(c->buf, "gbatch.api.calls:1|c|#depth:0\n");
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(non_finite_and_negative_timings_are_rejected)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	const double bad[] = { NAN, INFINITY, -INFINITY };
	gb_statsd_stats st;
	gb_record r;

	for (size_t i = 0; i < 3; i++) {
		for (int k = GB_REC_TIMING; k <= GB_REC_METRIC; k++) {
			r = rec((enum gb_rec_kind)k, "x", 0, bad[i]);
			gb__statsd_record(s, &r);
		}
	}
	r = rec(GB_REC_TIMING, "x", 0, -0.5);
	gb__statsd_record(s, &r);
	r = rec(GB_REC_TIMING, "x", 0, 1e306); /* finite seconds, infinite milliseconds */
	gb__statsd_record(s, &r);
	r = rec(GB_REC_COUNTER, "sum", 0, 1.5e308);
	gb__statsd_record(s, &r);
	gb__statsd_record(s, &r); /* the sum overflows */
	gb__statsd_metric(s, "gbatch.collector.x", NAN, 'g', NULL);
	gb__statsd_flush_aggregates(s);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.values_rejected, 12 + 1 + 1 + 1 + 1);
	ck_assert_uint_eq(c->len, 0);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(global_tags_and_dropped_tags)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	const char *gt[] = { "env:prod", "Team:ML Ops", "bare", "123:nokey" };
	const char *drop[] = { "depth", "Secret" };
	gb_statsd_config cfg = { .tags = gt, .n_tags = 4, .drop_tags = drop, .n_drop_tags = 2 };
	gb_statsd_sink *s = sink_for(c, &cfg);
	const gb_rec_kv meta[] = { { "secret", 6, "x", 1 }, { "kept", 4, "y", 1 } };
	gb_record r = rec(GB_REC_TIMING, "a.b", 1, 1);

	r.meta = meta;
	r.n_meta = 2;
	gb__statsd_record(s, &r);
	gb__statsd_metric(s, "gbatch.collector.records_read", 7, 'c', "ring:default");
	gb__statsd_flush(s);
	ck_assert_str_eq(c->buf,
	    "gbatch.b:1000|ms|#parent_scope:a,kept:y,env:prod,team:ml_ops,bare\n"
	    "gbatch.collector.records_read:7|c|#ring:default,env:prod,team:ml_ops,bare\n");
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(tag_values_are_capped_per_key)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_config cfg = { .max_tag_values = 2 };
	gb_statsd_sink *s = sink_for(c, &cfg);
	const char *vals[] = { "a", "b", "c", "a", "d", "b" };
	gb_statsd_stats st;

	for (size_t i = 0; i < 6; i++) {
		gb_rec_kv meta[] = { { "id", 2, vals[i], 1 }, { "other_key", 9, vals[i], 1 } };
		gb_record r = rec(GB_REC_TIMING, "t", 0, 0.001);

		r.meta = meta;
		r.n_meta = 2;
		gb__statsd_record(s, &r);
	}
	gb__statsd_flush(s);
	ck_assert_str_eq(c->buf,
	    "gbatch.t:1|ms|#depth:0,id:a,other_key:a\n"
	    "gbatch.t:1|ms|#depth:0,id:b,other_key:b\n"
	    "gbatch.t:1|ms|#depth:0,id:other,other_key:other\n"
	    "gbatch.t:1|ms|#depth:0,id:a,other_key:a\n"
	    "gbatch.t:1|ms|#depth:0,id:other,other_key:other\n"
	    "gbatch.t:1|ms|#depth:0,id:b,other_key:b\n");
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.tag_values_capped, 4);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* Lines are packed: every datagram is full (the next line would not have fitted), none is
 * over the limit, and every line arrives once, in order. */
START_TEST(lines_are_packed_and_never_split)
{
	size_t max = _i == 0 ? GB_STATSD_UDP_MAX : GB_STATSD_UNIX_MAX;
	struct capture *c = capture_new(max);
	gb_statsd_sink *s = sink_for(c, NULL);
	gb_statsd_stats st;
	char scope[64];
	const char *p, *end;
	size_t prev_end = 0, n = 0;

	for (int i = 0; i < 5000; i++) {
		snprintf(scope, sizeof(scope), "scope.%d%s", i, i % 7 ? "" : ".with.a.longer.tail");
		gb_record r = rec(GB_REC_TIMING, scope, 0, i / 1000.0);
		gb__statsd_record(s, &r);
	}
	gb__statsd_flush(s);
	ck_assert_int_eq(c->lines, 5000);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.lines, 5000);
	ck_assert_uint_eq(st.packets_sent, c->n_dgrams);
	ck_assert_uint_eq(st.bytes_sent, c->len);
	ck_assert_uint_lt(c->n_dgrams, 5000 * 40 / max + 2);
	p = c->buf;
	end = c->buf + c->len;
	for (int i = 0; p < end; i++) {
		char want[64];
		int wl = snprintf(want, sizeof(want), "gbatch.scope.%d", i);

		ck_assert_msg(strncmp(p, want, (size_t)wl) == 0 && p[wl] == (i % 7 ? ':' : '.'),
		    "line %d out of order", i);
		p = strchr(p, '\n') + 1;
		n++;
	}
	ck_assert_uint_eq(n, 5000);
	(void)prev_end;
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* ---- hostile producers ---- */

static void
hostile_run(size_t max)
{
	struct capture *c = capture_new(max);
	gb_statsd_sink *s = sink_for(c, NULL);
	gb_statsd_stats st;
	static char big[10 * 1024];
	char scope[8], key[8], val[8];
	long valid = 0;

	/* every byte value in the scope, a key and a value, alone and between letters */
	for (int b = 0; b < 256; b++) {
		snprintf(scope, sizeof(scope), "a%cb", b);
		scope[1] = (char)b;
		snprintf(key, sizeof(key), "k%cx", b);
		key[1] = (char)b;
		val[0] = (char)b;
		val[1] = 'v';
		val[2] = (char)b;
		for (int pass = 0; pass < 2; pass++) {
			gb_rec_kv meta[] = { { key, 3, val, 3 }, { key + 1, 1, val, 1 } };
			gb_record r = rec(GB_REC_TIMING, pass ? scope + 1 : scope, pass ? 0 : 2, 0.5);

			r.scope_len = pass ? 1 : 3;
			r.meta = meta;
			r.n_meta = 2;
			gb__statsd_record(s, &r);
			valid++;
		}
	}
	/* UTF-8, empty names, names of only dots, separators only */
	const char *odd[] = { "", ".", "...........", "d\xc3\xa9j\xc3\xa0.vu", "\xf0\x9f\x98\x80",
		"|", ",#:|\n", "\n\n\n", "a.\x00.b", "-x-", ":1|c", "x:1|c\ny:2|g|#evil" };
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		gb_rec_kv meta[] = { { odd[i], strlen(odd[i]), odd[i], strlen(odd[i]) } };
		gb_record r = rec(GB_REC_TIMING, odd[i], 0, 1);

		r.meta = meta;
		r.n_meta = 1;
		gb__statsd_record(s, &r);
		valid++;
	}
	/* a 10 KiB name of every byte value, parent = most of it */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 3);
	gb_record r = rec(GB_REC_TIMING, big, sizeof(big) - 10, 3);
	r.scope_len = sizeof(big);
	gb__statsd_record(s, &r);
	valid++;
	/* 16 metadata pairs at the codec's limits, full of separators */
	static char keys[GB_REC_MAX_META][GB_REC_MAX_KEY], vals[GB_REC_MAX_META][GB_REC_MAX_VALUE];
	gb_rec_kv meta[GB_REC_MAX_META];
	for (int i = 0; i < GB_REC_MAX_META; i++) {
		memset(keys[i], 'a' + i, sizeof(keys[i]));
		for (size_t j = 0; j < sizeof(vals[i]); j++)
			vals[i][j] = "v|,#:\n\xc3\xa9"[j % 8];
		meta[i] = (gb_rec_kv){ keys[i], sizeof(keys[i]), vals[i], sizeof(vals[i]) };
	}
	r = rec(GB_REC_TIMING, big, 400, 4);
	r.scope_len = 512;
	r.meta = meta;
	r.n_meta = GB_REC_MAX_META;
	gb__statsd_record(s, &r);
	valid++;
	/* the same records as counters: each distinct context arrives once */
	r.kind = GB_REC_COUNTER;
	gb__statsd_record(s, &r);
	gb__statsd_record(s, &r);
	gb__statsd_flush_aggregates(s);

	ck_assert_int_eq(c->lines, valid + 1);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.send_errors, 0);
	ck_assert_uint_eq(st.values_rejected, 0);
	if (max == GB_STATSD_UDP_MAX)
		ck_assert_uint_gt(st.tags_dropped, 0);
	else
		ck_assert_uint_eq(st.tags_dropped, 0);
	/* the last line is the summed counter */
	ck_assert_ptr_nonnull(strstr(c->buf, ":8|c|#depth:1,parent_scope:"));
	gb__statsd_free(s);
	capture_free(c);
}

START_TEST(hostile_input_gives_only_valid_lines_udp)
{
	hostile_run(GB_STATSD_UDP_MAX);
}
END_TEST

START_TEST(hostile_input_gives_only_valid_lines_unixgram)
{
	hostile_run(GB_STATSD_UNIX_MAX);
}
END_TEST

/* Records that went through the codec, truncation and all, come out valid too. */
START_TEST(decoded_records_give_valid_lines)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	static char big[2000];
	uint8_t buf[GB_REC_MAX_SIZE];
	gb_rec_kv in[20], dm[GB_REC_MAX_META];
	gb_record r = rec(GB_REC_TIMING, big, 700, 0.25), out;
	size_t n;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(255 - i % 256);
	for (int i = 0; i < 20; i++)
		in[i] = (gb_rec_kv){ big + i, 300, big + 2 * i, 400 };
	r.scope_len = sizeof(big);
	r.meta = in;
	r.n_meta = 20;
	n = gb__rec_encode(&r, buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(gb__rec_decode(buf, n, &out, dm), 0);
	gb__statsd_record(s, &out);
	gb__statsd_flush(s);
	ck_assert_int_eq(c->lines, 1);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* The name/tags cache must give what the slow path gives, and keep records apart that differ
 * in depth, parent or metadata only. */
/* The same call, made from two places, is one metric: its place is in parent_scope. */
START_TEST(a_call_is_one_metric_wherever_it_is_made)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	const char *from_batch = "batch.total_processing.batch.attempt.batch.processing."
	    "batch.api_call.client.api_call_with_retry";
	const char *from_compare = "batch.total_processing.batch.comparison_run."
	    "individual.processing.individual.question.client.api_call_with_retry";
	gb_record r = rec(GB_REC_TIMING, from_batch, strlen(from_batch) - 27, 0.5);

	r.depth = 4;
	gb__statsd_record(s, &r);
	r = rec(GB_REC_TIMING, from_compare, strlen(from_compare) - 27, 0.25);
	r.depth = 4;
	gb__statsd_record(s, &r);
	r = rec(GB_REC_COUNTER, "batch.total_processing.batch_success", 22, 1);
	gb__statsd_record(s, &r);
	gb__statsd_flush_aggregates(s);
	ck_assert_str_eq(c->buf,
	    "gbatch.client.api_call_with_retry:500|ms|#depth:4,parent_scope:batch.total_processing."
	    "batch.attempt.batch.processing.batch.api_call\n"
	    "gbatch.client.api_call_with_retry:250|ms|#depth:4,parent_scope:batch.total_processing."
	    "batch.comparison_run.individual.processing.individual.question\n"
	    "gbatch.batch_success:1|c|#depth:1,parent_scope:batch.total_processing\n");
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(path_names_keep_the_whole_scope)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_config cfg = { .names = GB_STATSD_NAMES_PATH };
	gb_statsd_sink *s = sink_for(c, &cfg);
	gb_record r = rec(GB_REC_TIMING, "batch.total_processing.batch.attempt",
	    strlen("batch.total_processing"), 0.1234);

	r.depth = 1;
	gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	ck_assert_str_eq(c->buf, "gbatch.batch.total_processing.batch.attempt:123.4|ms|#depth:1,"
	    "parent_scope:batch.total_processing\n");
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* OpenTelemetry's names go out as the convention spells them; histograms are not seconds. */
START_TEST(semantic_convention_names_and_histograms)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	const gb_rec_kv meta[] = { { "gen_ai.token.type", 17, "input", 5 } };
	gb_record r = rec(GB_REC_HISTOGRAM, "job.gen_ai.client.token.usage", 3, 812);

	r.meta = meta;
	r.n_meta = 1;
	gb__statsd_record(s, &r);
	r = rec(GB_REC_TIMING, "gen_ai.client.operation.duration", 0, 1.5);
	gb__statsd_record(s, &r);
	r = rec(GB_REC_HISTOGRAM, "tokens", 0, -1);
	gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	ck_assert_str_eq(c->buf,
	    "gen_ai.client.token.usage:812|ms|#depth:1,parent_scope:job,gen_ai.token.type:input\n"
	    "gen_ai.client.operation.duration:1500|ms|#depth:0\n");
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* A producer cannot set the agent's tags or the collector's: its keys become user_<key>. */
START_TEST(reserved_tag_keys_are_renamed_and_counted)
{
	struct capture *c = capture_new(GB_STATSD_UNIX_MAX);
	const char *gt[] = { "env:staging", "team:ml" };
	gb_statsd_config cfg = { .tags = gt, .n_tags = 2 };
	gb_statsd_sink *s = sink_for(c, &cfg);
	const gb_rec_kv meta[] = {
		{ "dd.internal.entity_id", 21, "pod-x", 5 }, { "DD.Internal.Card", 16, "high", 4 },
		{ "env", 3, "prod-from-producer", 18 }, { "host", 4, "spoofed", 7 },
		{ "service", 7, "x", 1 }, { "version", 7, "9", 1 }, { "device", 6, "d", 1 },
		{ "source", 6, "s", 1 }, { "depth", 5, "99", 2 }, { "parent_scope", 12, "p", 1 },
		{ "team", 4, "other-team", 10 }, { "model", 5, "m", 1 },
	};
	gb_record r = rec(GB_REC_TIMING, "t", 0, 0.001);
	gb_statsd_stats st;

	r.meta = meta;
	r.n_meta = sizeof(meta) / sizeof(meta[0]);
	gb__statsd_record(s, &r);
	gb__statsd_record(s, &r); /* a cache hit counts again */
	gb__statsd_flush(s);
	const char *want = "gbatch.t:1|ms|#depth:0,user_dd.internal.entity_id:pod-x,"
	    "user_dd.internal.card:high,user_env:prod-from-producer,user_host:spoofed,"
	    "user_service:x,user_version:9,user_device:d,user_source:s,user_depth:99,"
	    "user_parent_scope:p,user_team:other-team,model:m,env:staging,team:ml\n";
	ck_assert_uint_eq(c->len, 2 * strlen(want));
	ck_assert(strncmp(c->buf, want, strlen(want)) == 0);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.tags_renamed, 2 * 11);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(names_and_parent_scopes_are_capped)
{
	struct capture *c = capture_new(GB_STATSD_UNIX_MAX);
	gb_statsd_config cfg = { .max_names = 3, .max_tag_values = 2 };
	gb_statsd_sink *s = sink_for(c, &cfg);
	char scope[64];
	gb_statsd_stats st;

	for (int i = 0; i < 5; i++) {
		int n = snprintf(scope, sizeof(scope), "p%d.n%d", i, i);
		gb_record r = rec(GB_REC_TIMING, scope, 2, 0.001);
		(void)n;
		gb__statsd_record(s, &r);
	}
	gb__statsd_flush(s);
	ck_assert_str_eq(c->buf,
	    "gbatch.n0:1|ms|#depth:1,parent_scope:p0\n"
	    "gbatch.n1:1|ms|#depth:1,parent_scope:p1\n"
	    "gbatch.n2:1|ms|#depth:1,parent_scope:other\n"
	    "gbatch.other:1|ms|#depth:1,parent_scope:other\n"
	    "gbatch.other:1|ms|#depth:1,parent_scope:other\n");
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.names_capped, 2);
	ck_assert_uint_eq(st.tag_values_capped, 3);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* Pairs a producer could not fit into its record are counted as dropped tags. */
START_TEST(metadata_left_out_by_the_producer_is_counted)
{
	struct capture *c = capture_new(GB_STATSD_UNIX_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	gb_rec_kv meta[20], dm[GB_REC_MAX_META];
	char keys[20][8];
	uint8_t buf[GB_REC_MAX_SIZE];
	gb_record r = rec(GB_REC_TIMING, "t", 0, 0.001), out;
	gb_statsd_stats st;
	size_t n;

	for (int i = 0; i < 20; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		meta[i] = (gb_rec_kv){ keys[i], strlen(keys[i]), "v", 1 };
	}
	r.meta = meta;
	r.n_meta = 20;
	n = gb__rec_encode(&r, buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(gb__rec_decode(buf, n, &out, dm), 0);
	ck_assert_uint_eq(out.n_meta, GB_REC_MAX_META);
	ck_assert_uint_eq(out.meta_dropped, 4);
	gb__statsd_record(s, &out);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.tags_dropped, 4);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(cached_lines_match_and_stay_apart)
{
	struct capture *c = capture_new(GB_STATSD_UNIX_MAX);
	gb_statsd_config cfg = { .names = GB_STATSD_NAMES_PATH };
	gb_statsd_sink *s = sink_for(c, &cfg);
	const gb_rec_kv m1[] = { { "k", 1, "a", 1 } }, m2[] = { { "k", 1, "b", 1 } };
	static char long_scope[600];
	gb_statsd_stats st;

	memset(long_scope, 'x', sizeof(long_scope) - 1);
	for (int round = 0; round < 3; round++) {
		gb_record r = rec(GB_REC_TIMING, "a.b", 1, 0.001);

		gb__statsd_record(s, &r);
		r.depth = 2;
		gb__statsd_record(s, &r);
		r.parent_len = 0;
		gb__statsd_record(s, &r);
		r.meta = m1;
		r.n_meta = 1;
		gb__statsd_record(s, &r);
		r.meta = m2;
		gb__statsd_record(s, &r);
		r = rec(GB_REC_TIMING, long_scope, 0, 0.001); /* too long to be cached */
		gb__statsd_record(s, &r);
	}
	gb__statsd_flush(s);
	const char *one =
	    "gbatch.a.b:1|ms|#depth:1,parent_scope:a\n"
	    "gbatch.a.b:1|ms|#depth:2,parent_scope:a\n"
	    "gbatch.a.b:1|ms|#depth:2\n"
	    "gbatch.a.b:1|ms|#depth:2,k:a\n"
	    "gbatch.a.b:1|ms|#depth:2,k:b\n";
	size_t ol = strlen(one), line = 7 + 193 + strlen(":1|ms|#depth:0\n");
	ck_assert_uint_eq(c->len, 3 * (ol + line));
	for (int round = 0; round < 3; round++)
		ck_assert(memcmp(c->buf + round * (ol + line), one, ol) == 0);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.lines, 18);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* Real tag variety: one call site with 1 000 values of a tag, ten call sites with 100 each,
 * over and over in a scrambled order. Each record's name and tags are made once, the first
 * time it is seen, and found in the line cache ever after; every line stays its own. */
START_TEST(a_thousand_tag_values_per_call_site_stay_cached)
{
	static const char *const sites[] = { "a.attempt", "a.request", "a.upload", "a.parse",
		"a.retry", "a.poll", "a.fetch", "a.check", "a.render", "a.write" };
	size_t n_sites = _i == 0 ? 1 : 10, n_values = _i == 0 ? 1000 : 100;
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	gb_statsd_stats st;
	uint64_t x = 88172645463325252ull;
	size_t total = n_sites * n_values * 4;

	for (size_t i = 0; i < total; i++) {
		size_t id, site, value;
		char val[16], want[96], line[96];
		gb_rec_kv kv[] = { { "question_count", 14, val, 0 }, { "model", 5, "g-2", 3 } };
		gb_record r;

		/* every record once, then the rest in a scrambled order */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		id = i < n_sites * n_values ? i : (size_t)(x % (n_sites * n_values));
		site = id / n_values;
		value = id % n_values;
		kv[0].value_len = (size_t)snprintf(val, sizeof(val), "%zu", value);
		r = rec(GB_REC_TIMING, sites[site], 1, 0.002);
		r.meta = kv;
		r.n_meta = 2;
		gb__statsd_record(s, &r);
		gb__statsd_flush(s);
		snprintf(want, sizeof(want), "gbatch.%s:2|ms|#depth:1,parent_scope:a,"
		    "question_count:%zu,model:g-2\n", sites[site] + 2, value);
		ck_assert_uint_lt(strlen(want), sizeof(line));
		ck_assert_uint_ge(c->len, strlen(want));
		memcpy(line, c->buf + c->len - strlen(want), strlen(want));
		line[strlen(want)] = '\0';
		ck_assert_str_eq(line, want);
	}
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.lines, total);
	ck_assert_uint_eq(st.line_cache_misses, n_sites * n_values);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* ---- the dialect: timing types, packed values, timestamps ---- */

START_TEST(timing_type_sets_the_type_of_timings_and_histograms)
{
	static const char *const want[] = { "ms", "h", "d" };
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_config cfg = { .timing = (enum gb_statsd_timing)_i };
	gb_statsd_sink *s = sink_for(c, &cfg);
	gb_record t = rec(GB_REC_TIMING, "call", 0, 0.25);
	gb_record h = rec(GB_REC_HISTOGRAM, "gen_ai.client.token.usage", 0, 42);
	char expect[256];
	enum gb_statsd_timing parsed;

	gb__statsd_record(s, &t);
	gb__statsd_record(s, &h);
	gb__statsd_flush(s);
	snprintf(expect, sizeof(expect), "gbatch.call:250|%s|#depth:0\n"
	    "gen_ai.client.token.usage:42|%s|#depth:0\n", want[_i], want[_i]);
	ck_assert_str_eq(c->buf, expect);
	ck_assert_int_eq(gb__statsd_timing_parse(want[_i], &parsed), 0);
	ck_assert_int_eq(parsed, _i);
	ck_assert_int_eq(gb__statsd_timing_parse("x", &parsed), -1);
	ck_assert_int_eq(gb__statsd_timing_parse("", &parsed), -1);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* Every value of the captured lines of metric name (packed or not) into seen[i] for the
 * value i / 100 ms; returns how many values were read. */
static long
count_values(const char *buf, const char *name, int *seen, int n_seen, long *messages)
{
	size_t nl = strlen(name);
	long n = 0;

	for (const char *p = buf; *p != '\0'; p = strchr(p, '\n') + 1) {
		const char *end = strchr(p, '\n');

		if (strncmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		(*messages)++;
		for (const char *v = p + nl; *v == ':' && v < end;) {
			char *after;
			double x = strtod(v + 1, &after);
			long i = lround(x * 100);

			ck_assert_msg(i >= 0 && i < n_seen, "value %g out of range", x);
			seen[i]++;
			n++;
			v = after;
		}
	}
	return n;
}

START_TEST(packed_values_keep_every_sample_within_each_datagram)
{
	enum { N = 5000 };
	size_t max = _i == 0 ? GB_STATSD_UDP_MAX : GB_STATSD_UNIX_MAX;
	struct capture *c = capture_new(max);
	gb_statsd_config cfg = { .timing = GB_STATSD_TIMING_D, .pack_values = true };
	gb_statsd_sink *s = sink_for(c, &cfg);
	static int seen[N], seen_other[N];
	long got, messages = 0, other_messages = 0;
	gb_rec_kv meta[] = { { "model", 5, "gemini-2.0-flash", 16 } };

	memset(seen, 0, sizeof(seen));
	memset(seen_other, 0, sizeof(seen_other));
	for (int i = 0; i < N; i++) {
		gb_record r = rec(GB_REC_TIMING, "attempt", 0, i / 100000.0);
		gb_record o = rec(GB_REC_TIMING, "other", 0, i / 100000.0);

		r.meta = meta;
		r.n_meta = 1;
		gb__statsd_record(s, &r);
		if (i % 10 == 0)
			gb__statsd_record(s, &o);
	}
	/* only full messages left before the flush; the rest leaves with it */
	ck_assert_uint_lt(c->len, (size_t)N * 6);
	gb__statsd_flush_aggregates(s);
	got = count_values(c->buf, "gbatch.attempt", seen, N, &messages);
	ck_assert_int_eq(got, N);
	for (int i = 0; i < N; i++)
		ck_assert_msg(seen[i] == 1, "value %d seen %d times", i, seen[i]);
	got = count_values(c->buf, "gbatch.other", seen_other, N, &other_messages);
	ck_assert_int_eq(got, N / 10);
	for (int i = 0; i < N; i += 10)
		ck_assert_int_eq(seen_other[i], 1);
	/* many samples a message, each message a line of its own kind and tags */
	ck_assert_int_lt(messages, N / 20);
	ck_assert_ptr_nonnull(strstr(c->buf, "|d|#depth:0,model:gemini-2.0-flash\n"));
	ck_assert_ptr_null(strstr(c->buf, "|ms"));
	/* the next interval starts empty */
	size_t before = c->len;
	gb__statsd_flush_aggregates(s);
	ck_assert_uint_eq(c->len, before);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

static gb_record
rec_at(enum gb_rec_kind kind, const char *scope, double v, uint64_t ts_ns)
{
	gb_record r = rec(kind, scope, 0, v);

	r.ts_ns = ts_ns;
	return r;
}

START_TEST(timestamps_place_a_backlog_at_its_own_seconds)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_config cfg = { .timestamps = true, .flush_interval_ns = GB_NS_PER_SEC };
	gb_statsd_sink *s = sink_for(c, &cfg);
	uint64_t now = gb__clock_real_ns();
	uint64_t old = (now / GB_NS_PER_SEC - 100) * GB_NS_PER_SEC; /* a second's start */
	char want[512];

	gb_record a = rec_at(GB_REC_COUNTER, "calls", 2, old + 100 * GB_NS_PER_MS);
	gb_record b = rec_at(GB_REC_COUNTER, "calls", 3, old + 900 * GB_NS_PER_MS);
	gb_record d = rec_at(GB_REC_COUNTER, "calls", 5, old + GB_NS_PER_SEC);
	gb_record g1 = rec_at(GB_REC_GAUGE, "queue", 7, old + 200 * GB_NS_PER_MS);
	gb_record g2 = rec_at(GB_REC_GAUGE, "queue", 8, old + 300 * GB_NS_PER_MS);
	gb_record live = rec_at(GB_REC_COUNTER, "calls", 11, now);
	gb_record untimed = rec_at(GB_REC_COUNTER, "calls", 13, 0);
	gb__statsd_record(s, &a);
	gb__statsd_record(s, &b);
	gb__statsd_record(s, &d);
	gb__statsd_record(s, &g1);
	gb__statsd_record(s, &g2);
	gb__statsd_record(s, &live);
	gb__statsd_record(s, &untimed);
	gb__statsd_flush_aggregates(s);
	snprintf(want, sizeof(want),
	    "gbatch.calls:5|c|#depth:0|T%llu\n"
	    "gbatch.calls:5|c|#depth:0|T%llu\n"
	    "gbatch.queue:8|g|#depth:0|T%llu\n"
	    "gbatch.calls:24|c|#depth:0\n",
	    (unsigned long long)(old / GB_NS_PER_SEC), (unsigned long long)(old / GB_NS_PER_SEC + 1),
	    (unsigned long long)(old / GB_NS_PER_SEC));
	ck_assert_str_eq(c->buf, want);
	gb__statsd_free(s);
	capture_free(c);

	/* off (the default): the same records fold as they always did, no |T */
	c = capture_new(GB_STATSD_UDP_MAX);
	s = sink_for(c, NULL);
	gb__statsd_record(s, &a);
	gb__statsd_record(s, &d);
	gb__statsd_record(s, &live);
	gb__statsd_flush_aggregates(s);
	ck_assert_str_eq(c->buf, "gbatch.calls:18|c|#depth:0\n");
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(timestamps_group_a_backlog_per_flush_interval)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_config cfg = { .timestamps = true, .flush_interval_ns = 10 * GB_NS_PER_SEC };
	gb_statsd_sink *s = sink_for(c, &cfg);
	uint64_t base = (gb__clock_real_ns() / (10 * GB_NS_PER_SEC) - 10) * 10 * GB_NS_PER_SEC;
	char want[256];

	for (int i = 0; i < 20; i++) { /* two 10 s intervals, one a second */
		gb_record r = rec_at(GB_REC_COUNTER, "calls", 1, base + (uint64_t)i * GB_NS_PER_SEC);
		gb__statsd_record(s, &r);
	}
	gb__statsd_flush_aggregates(s);
	snprintf(want, sizeof(want), "gbatch.calls:10|c|#depth:0|T%llu\n"
	    "gbatch.calls:10|c|#depth:0|T%llu\n", (unsigned long long)(base / GB_NS_PER_SEC),
	    (unsigned long long)(base / GB_NS_PER_SEC + 10));
	ck_assert_str_eq(c->buf, want);
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

START_TEST(send_errors_are_counted)
{
	struct capture *c = capture_new(GB_STATSD_UDP_MAX);
	gb_statsd_sink *s = sink_for(c, NULL);
	gb_statsd_stats st;
	gb_record r = rec(GB_REC_TIMING, "x", 0, 1);

	c->fail_with = ECONNREFUSED;
	gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	c->fail_with = 0;
	gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.send_errors, 1);
	ck_assert_uint_eq(st.packets_sent, 1);
	ck_assert_str_eq(c->buf, "gbatch.x:1000|ms|#depth:0\n");
	gb__statsd_free(s);
	capture_free(c);
}
END_TEST

/* ---- targets ---- */

static const struct {
	const char *url;
	int ok;
	const char *host, *port, *path;
} urls[] = {
	{ "udp://127.0.0.1:8125", 1, "127.0.0.1", "8125", "" },
	{ "udp://localhost:1", 1, "localhost", "1", "" },
	{ "udp://[::1]:65535", 1, "::1", "65535", "" },
	{ "unixgram:///var/run/datadog/dsd.socket", 1, "", "", "/var/run/datadog/dsd.socket" },
	/* the forms datadog-go accepts besides: no port, unix://, unixstream:// */
	{ "udp://127.0.0.1", 1, "127.0.0.1", "8125", "" },
	{ "udp://localhost", 1, "localhost", "8125", "" },
	{ "udp://[::1]", 1, "::1", "8125", "" },
	{ "unix:///var/run/datadog/dsd.socket", 1, "", "", "/var/run/datadog/dsd.socket" },
	{ "unixstream:///var/run/datadog/dsd.socket", 1, "", "", "/var/run/datadog/dsd.socket" },
	{ "udp://127.0.0.1:", 0, 0, 0, 0 },
	{ "udp://[::1]:", 0, 0, 0, 0 },
	{ "udp://[::1]x", 0, 0, 0, 0 },
	{ "udp://[::1", 0, 0, 0, 0 },
	{ "unix://relative.sock", 0, 0, 0, 0 },
	{ "unixstream://", 0, 0, 0, 0 },
	{ "udp://h st:1", 0, 0, 0, 0 },
	{ "udp://127.0.0.1:0", 0, 0, 0, 0 },
	{ "udp://127.0.0.1:65536", 0, 0, 0, 0 },
	{ "udp://:8125", 0, 0, 0, 0 },
	{ "udp://h:12x", 0, 0, 0, 0 },
	{ "udp://::1:8125", 0, 0, 0, 0 },
	{ "tcp://h:1", 0, 0, 0, 0 },
	{ "unixgram://relative", 0, 0, 0, 0 },
	{ "", 0, 0, 0, 0 },
};

START_TEST(urls_parse)
{
	gb_statsd_target t;
	char err[256] = "";
	int rc = gb__statsd_parse_url(urls[_i].url, &t, err, sizeof(err));

	if (!urls[_i].ok) {
		ck_assert_int_eq(rc, -1);
		ck_assert_msg(strstr(err, urls[_i].url) != NULL, "message does not name the URL: %s",
		    err);
		return;
	}
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_int_eq(t.kind, strncmp(urls[_i].url, "udp", 3) == 0 ? GB_STATSD_UDP :
	    strncmp(urls[_i].url, "unixstream", 10) == 0 ? GB_STATSD_UNIXSTREAM : GB_STATSD_UNIXGRAM);
	ck_assert_int_eq(t.guess_stream, strncmp(urls[_i].url, "unix:", 5) == 0);
	ck_assert_str_eq(t.host, urls[_i].host);
	ck_assert_str_eq(t.port, urls[_i].port);
	ck_assert_str_eq(t.path, urls[_i].path);
}
END_TEST

START_TEST(env_picks_the_target_like_datadog_clients)
{
	gb_statsd_target t;
	char err[256];

	unsetenv("DD_DOGSTATSD_URL");
	unsetenv("DD_AGENT_HOST");
	unsetenv("DD_DOGSTATSD_PORT");
	ck_assert_int_eq(gb__statsd_target_from_env(&t, err, sizeof(err)), 0);
	ck_assert_str_eq(t.host, "127.0.0.1");
	ck_assert_str_eq(t.port, "8125");
	setenv("DD_AGENT_HOST", "10.0.0.7", 1);
	ck_assert_int_eq(gb__statsd_target_from_env(&t, err, sizeof(err)), 0);
	ck_assert_str_eq(t.host, "10.0.0.7");
	ck_assert_str_eq(t.port, "8125");
	setenv("DD_DOGSTATSD_PORT", "9125", 1);
	ck_assert_int_eq(gb__statsd_target_from_env(&t, err, sizeof(err)), 0);
	ck_assert_str_eq(t.port, "9125");
	setenv("DD_DOGSTATSD_URL", "unixgram:///run/dsd.sock", 1);
	ck_assert_int_eq(gb__statsd_target_from_env(&t, err, sizeof(err)), 0);
	ck_assert_int_eq(t.kind, GB_STATSD_UNIXGRAM);
	ck_assert_str_eq(t.path, "/run/dsd.sock");
	setenv("DD_DOGSTATSD_URL", "bogus", 1);
	ck_assert_int_eq(gb__statsd_target_from_env(&t, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "DD_DOGSTATSD_URL"));
	ck_assert_ptr_nonnull(strstr(err, "bogus"));
	unsetenv("DD_DOGSTATSD_URL");
	setenv("DD_DOGSTATSD_PORT", "99999", 1);
	ck_assert_int_eq(gb__statsd_target_from_env(&t, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "99999"));
	unsetenv("DD_AGENT_HOST");
	unsetenv("DD_DOGSTATSD_PORT");
}
END_TEST

/* DD_DOGSTATSD_URL first (datadog-go's order), then DD_DOGSTATSD_SOCKET, then DD_AGENT_HOST;
 * the URL the admission controller injects in socket mode, as it is. */
START_TEST(env_socket_and_the_admission_controllers_url)
{
	gb_statsd_target t;
	char err[256];

	unsetenv("DD_DOGSTATSD_URL");
	setenv("DD_AGENT_HOST", "10.0.0.7", 1);
	setenv("DD_DOGSTATSD_SOCKET", "/var/run/datadog/dsd.socket", 1);
	ck_assert_msg(gb__statsd_target_from_env(&t, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(t.kind, GB_STATSD_UNIXGRAM);
	ck_assert(!t.guess_stream);
	ck_assert_str_eq(t.path, "/var/run/datadog/dsd.socket");
	setenv("DD_DOGSTATSD_URL", "unix:///var/run/datadog/dsd.socket", 1);
	setenv("DD_DOGSTATSD_SOCKET", "/elsewhere.sock", 1);
	ck_assert_msg(gb__statsd_target_from_env(&t, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(t.kind, GB_STATSD_UNIXGRAM);
	ck_assert(t.guess_stream);
	ck_assert_str_eq(t.path, "/var/run/datadog/dsd.socket");
	setenv("DD_DOGSTATSD_URL", "udp://localhost", 1);
	ck_assert_msg(gb__statsd_target_from_env(&t, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(t.host, "localhost");
	ck_assert_str_eq(t.port, "8125");
	unsetenv("DD_DOGSTATSD_URL");
	setenv("DD_DOGSTATSD_SOCKET", "relative.sock", 1);
	ck_assert_int_eq(gb__statsd_target_from_env(&t, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "DD_DOGSTATSD_SOCKET"));
	ck_assert_ptr_nonnull(strstr(err, "relative.sock"));
	unsetenv("DD_DOGSTATSD_SOCKET");
	unsetenv("DD_AGENT_HOST");
}
END_TEST

/* Receives one datagram within a deadline; returns its length, or -1. */
static ssize_t
recv_within(int fd, char *buf, size_t cap, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return recv(fd, buf, cap, 0);
}

START_TEST(udp_socket_sends_and_survives_no_listener)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	gb_statsd_target t;
	gb_statsd_stats st;
	char url[64], err[256], buf[2048];
	gb_record r = rec(GB_REC_TIMING, "udp.test", 0, 0.002);

	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "udp://127.0.0.1:%u", ntohs(sa.sin_port));
	ck_assert_int_eq(gb__statsd_parse_url(url, &t, err, sizeof(err)), 0);
	gb_statsd_config cfg = { .target = &t };
	gb_statsd_sink *s = gb__statsd_new(&cfg, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	ssize_t n = recv_within(fd, buf, sizeof(buf) - 1, 5000);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "gbatch.udp.test:2|ms|#depth:0\n");
	close(fd); /* nobody listens any more: ECONNREFUSED comes back */
	for (int i = 0; i < 50; i++) {
		gb__statsd_record(s, &r);
		gb__statsd_flush(s);
	}
	gb__statsd_get_stats(s, &st);
	/* each refusal reported is a datagram lost; the send that reported it is tried again */
	ck_assert_uint_gt(st.send_errors, 0);
	ck_assert_uint_le(st.send_errors, 50);
	ck_assert_uint_eq(st.packets_sent, 51);
	gb__statsd_free(s);
}
END_TEST

static int
bind_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

START_TEST(unixgram_reconnects_after_the_agent_restarts)
{
	char path[64], url[96], err[256], buf[GB_STATSD_UNIX_MAX];
	gb_statsd_target t;
	gb_statsd_stats st;
	gb_record r = rec(GB_REC_COUNTER, "uds", 0, 1);
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/tmp/gbatch-test-dsd-%d.sock", (int)getpid());
	unlink(path);
	snprintf(url, sizeof(url), "unixgram://%s", path);
	ck_assert_int_eq(gb__statsd_parse_url(url, &t, err, sizeof(err)), 0);
	gb_statsd_config cfg = { .target = &t };
	gb_statsd_sink *s = gb__statsd_new(&cfg, err, sizeof(err)); /* the agent is not there yet */
	ck_assert_msg(s != NULL, "%s", err);
	gb__statsd_record(s, &r);
	gb__statsd_flush_aggregates(s);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.send_errors, 1);

	fd = bind_unix(path);
	n = -1;
	for (uint64_t end = gb__clock_mono_ns() + 5 * GB_NS_PER_SEC; n < 0 && gb__clock_mono_ns() < end;) {
		gb__statsd_record(s, &r);
		gb__statsd_flush_aggregates(s);
		n = recv_within(fd, buf, sizeof(buf) - 1, 50);
	}
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "gbatch.uds:1|c|#depth:0\n");

	close(fd); /* the agent restarts: a new socket at the same path */
	unlink(path);
	fd = bind_unix(path);
	n = -1;
	for (uint64_t end = gb__clock_mono_ns() + 5 * GB_NS_PER_SEC; n < 0 && gb__clock_mono_ns() < end;) {
		gb__statsd_record(s, &r);
		gb__statsd_flush_aggregates(s);
		n = recv_within(fd, buf, sizeof(buf) - 1, 50);
	}
	ck_assert_int_gt(n, 0);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_ge(st.send_errors, 2);
	gb__statsd_free(s);
	close(fd);
	unlink(path);
}
END_TEST

/* A stream listener at path, as the agent's unixstream socket. */
static int
listen_stream(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

/* Reads one frame (4-byte little-endian length, then the message) within 5 s into buf,
 * NUL-terminated. Returns its length, or -1. */
static long
read_frame(int fd, char *buf, size_t cap)
{
	uint8_t h[4];
	size_t off = 0, len;

	while (off < 4) {
		ssize_t n = recv_within(fd, (char *)h + off, 4 - off, 5000);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	len = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
	ck_assert_uint_lt(len, cap);
	for (off = 0; off < len;) {
		ssize_t n = recv_within(fd, buf + off, len - off, 5000);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	buf[len] = '\0';
	return (long)len;
}

static gb_statsd_sink *
url_sink(const char *url)
{
	char err[256];
	gb_statsd_target t;

	ck_assert_msg(gb__statsd_parse_url(url, &t, err, sizeof(err)) == 0, "%s", err);
	gb_statsd_config cfg = { .target = &t };
	gb_statsd_sink *s = gb__statsd_new(&cfg, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	return s;
}

START_TEST(unixstream_frames_each_message_and_reconnects)
{
	char path[64], url[96], buf[GB_STATSD_UNIX_MAX + 1];
	gb_statsd_stats st;
	gb_record r = rec(GB_REC_COUNTER, "uds", 0, 1);
	int lfd, fd;

	snprintf(path, sizeof(path), "/tmp/gbatch-test-dss-%d.sock", (int)getpid());
	snprintf(url, sizeof(url), _i == 0 ? "unixstream://%s" : "unix://%s", path);
	lfd = listen_stream(path);
	gb_statsd_sink *s = url_sink(url);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	gb__statsd_record(s, &r);
	gb__statsd_flush_aggregates(s);
	ck_assert_int_eq(read_frame(fd, buf, sizeof(buf)), 24);
	ck_assert_str_eq(buf, "gbatch.uds:1|c|#depth:0\n");

	/* the agent restarts: EPIPE on the old connection, the message goes on a new one */
	close(fd);
	close(lfd);
	lfd = listen_stream(path);
	gb__statsd_record(s, &r);
	gb__statsd_flush_aggregates(s);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read_frame(fd, buf, sizeof(buf)), 24);
	ck_assert_str_eq(buf, "gbatch.uds:1|c|#depth:0\n");
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.packets_sent, 2);
	ck_assert_uint_eq(st.send_errors, 0);

	/* no agent at all: what cannot be sent is counted */
	close(fd);
	close(lfd);
	unlink(path);
	gb__statsd_record(s, &r);
	gb__statsd_flush_aggregates(s);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_eq(st.packets_sent, 2);
	ck_assert_uint_eq(st.send_errors, 1);
	gb__statsd_free(s);
}
END_TEST

/* ---- UDP generic segmentation offload ---- */

/* A UDP receiver on loopback, and a socket of the sink's connected to it. */
static int
gso_pair(gb_statsd_sock *k)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), sz = 4 << 20;
	gb_statsd_target t;
	char url[64], err[256];

	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "udp://127.0.0.1:%u", ntohs(sa.sin_port));
	ck_assert_int_eq(gb__statsd_parse_url(url, &t, err, sizeof(err)), 0);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
	ck_assert_msg(gb__statsd_sock_open(k, &t, 0, 0, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_ge(k->fd, 0);
	return fd;
}

#define GSO_N 60

/* Datagram i: its number, then filler, len[i] bytes: runs of one length with shorter ones
 * between, then a longer one again, all within 1432. */
static void
gso_datagrams(char *pkt, size_t *len)
{
	for (size_t i = 0; i < GSO_N; i++) {
		char *d = pkt + i * GB_STATSD_UDP_MAX;

		len[i] = i % 20 == 19 ? 700 - i : i < 30 || i == 50 ? GB_STATSD_UDP_MAX : 1000 + i % 3;
		memset(d, 'a' + (char)(i % 26), len[i]);
		snprintf(d, 8, "%06zu", i);
		d[6] = ':';
	}
}

/* Every datagram arrives once, on its own, with its own bytes and length; in queue order
 * when in_order, else (GSO: longest first) in any. */
static void
gso_receive_all(int fd, const char *pkt, const size_t *len, bool in_order)
{
	static char buf[65536];
	bool seen[GSO_N] = { false };

	for (size_t i = 0; i < GSO_N; i++) {
		ssize_t n = recv_within(fd, buf, sizeof(buf), 5000);
		size_t id;

		ck_assert_msg(n >= 0, "datagram %zu of %d never arrived", i, GSO_N);
		ck_assert_int_le(n, GB_STATSD_UDP_MAX);
		ck_assert_int_ge(n, 7);
		id = (size_t)strtoul(buf, NULL, 10);
		ck_assert_uint_lt(id, GSO_N);
		ck_assert_msg(!seen[id], "datagram %zu arrived twice", id);
		seen[id] = true;
		if (in_order)
			ck_assert_uint_eq(id, i);
		ck_assert_int_eq(n, (ssize_t)len[id]);
		ck_assert_msg(memcmp(buf, pkt + id * GB_STATSD_UDP_MAX, len[id]) == 0,
		    "datagram %zu arrived as \"%.6s\"", id, buf);
	}
	ck_assert_int_lt(recv_within(fd, buf, sizeof(buf), 100), 0); /* and nothing more */
}

START_TEST(udp_gso_sends_the_same_datagrams)
{
	static char pkt[GSO_N * GB_STATSD_UDP_MAX];
	size_t len[GSO_N];
	gb_statsd_sock k;
	gb_statsd_stats st = { 0 };
	int fd = gso_pair(&k);

	ck_assert_msg(k.gso, "this kernel has no UDP_SEGMENT: the test cannot see GSO");
	gso_datagrams(pkt, len);
	gb__statsd_sock_send(&k, pkt, GB_STATSD_UDP_MAX, len, GSO_N, &st);
	ck_assert(k.gso);
	ck_assert_uint_eq(st.packets_sent, GSO_N);
	ck_assert_uint_eq(st.send_errors, 0);
	gso_receive_all(fd, pkt, len, false);
	gb__statsd_sock_close(&k);
	close(fd);
}
END_TEST

/* A socket whose UDP checksums are off makes the kernel refuse every GSO message (EINVAL),
 * as a route without checksum offload (EIO) or with a smaller MTU would: the same datagrams
 * then go one message each, none lost or sent twice, and the socket stops asking. */
START_TEST(udp_gso_refused_falls_back_to_one_datagram_a_message)
{
	static char pkt[GSO_N * GB_STATSD_UDP_MAX];
	size_t len[GSO_N];
	gb_statsd_sock k;
	gb_statsd_stats st = { 0 };
	int fd = gso_pair(&k), one = 1;

	ck_assert_msg(k.gso, "this kernel has no UDP_SEGMENT: the test cannot see GSO");
	ck_assert_int_eq(setsockopt(k.fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)), 0);
	gso_datagrams(pkt, len);
	gb__statsd_sock_send(&k, pkt, GB_STATSD_UDP_MAX, len, GSO_N, &st);
	ck_assert(!k.gso);
	ck_assert_uint_eq(st.packets_sent, GSO_N);
	ck_assert_uint_eq(st.send_errors, 0);
	gso_receive_all(fd, pkt, len, true); /* the first message was refused: none went first */
	gb__statsd_sock_send(&k, pkt, GB_STATSD_UDP_MAX, len, GSO_N, &st); /* and again */
	ck_assert_uint_eq(st.packets_sent, 2 * GSO_N);
	gso_receive_all(fd, pkt, len, true);
	gb__statsd_sock_close(&k);
	close(fd);
}
END_TEST

START_TEST(unix_url_sends_datagrams_to_a_datagram_socket)
{
	char path[64], url[96], buf[GB_STATSD_UNIX_MAX];
	gb_record r = rec(GB_REC_COUNTER, "uds", 0, 1);
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/tmp/gbatch-test-dsu-%d.sock", (int)getpid());
	snprintf(url, sizeof(url), "unix://%s", path);
	fd = bind_unix(path);
	gb_statsd_sink *s = url_sink(url);
	gb__statsd_record(s, &r);
	gb__statsd_flush_aggregates(s);
	n = recv_within(fd, buf, sizeof(buf) - 1, 5000);
	ck_assert_int_eq(n, 24);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "gbatch.uds:1|c|#depth:0\n");
	gb__statsd_free(s);
	close(fd);
	unlink(path);
}
END_TEST

/* A unixgram agent that reads one datagram per millisecond, counting lines, until it has
 * `want` lines or nothing came for 10 s. */
struct slow_agent {
	int fd;
	long want, lines;
};

static void *
slow_agent_run(void *arg)
{
	struct slow_agent *a = arg;
	char buf[GB_STATSD_UNIX_MAX];
	const struct timespec ms = { .tv_nsec = 1000000 };

	while (a->lines < a->want) {
		ssize_t n = recv_within(a->fd, buf, sizeof(buf), 10000);

		if (n <= 0)
			break;
		for (ssize_t k = 0; k < n; k++)
			a->lines += buf[k] == '\n';
		nanosleep(&ms, NULL);
	}
	return NULL;
}

static gb_statsd_sink *
unixgram_sink(const char *path, uint64_t send_timeout_ns)
{
	char url[96], err[256];
	gb_statsd_target t;

	snprintf(url, sizeof(url), "unixgram://%s", path);
	ck_assert_int_eq(gb__statsd_parse_url(url, &t, err, sizeof(err)), 0);
	/* small datagrams: many of them, far more than the agent's queue holds */
	gb_statsd_config cfg = { .target = &t, .max_datagram = 1024,
		.send_timeout_ns = send_timeout_ns };
	gb_statsd_sink *s = gb__statsd_new(&cfg, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	return s;
}

START_TEST(unixgram_slow_agent_loses_nothing)
{
	char path[64];
	struct slow_agent a = { .want = 6000 };
	gb_statsd_stats st;
	gb_record r = rec(GB_REC_TIMING, "uds.slow", 0, 0.002);
	pthread_t th;

	snprintf(path, sizeof(path), "/tmp/gbatch-test-slow-%d.sock", (int)getpid());
	a.fd = bind_unix(path);
	gb_statsd_sink *s = unixgram_sink(path, 30 * GB_NS_PER_SEC);
	ck_assert_int_eq(pthread_create(&th, NULL, slow_agent_run, &a), 0);
	for (long i = 0; i < a.want; i++)
		gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	gb__statsd_get_stats(s, &st);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	/* about 170 datagrams against a queue of net.unix.max_dgram_qlen (10 by default) */
	ck_assert_uint_gt(st.packets_sent, 100);
	ck_assert_uint_eq(st.send_errors, 0);
	ck_assert_int_eq(a.lines, a.want);
	gb__statsd_free(s);
	close(a.fd);
	unlink(path);
}
END_TEST

/* Lines in what the agent has queued, read without waiting. */
static long
drain_lines(int fd)
{
	char buf[GB_STATSD_UNIX_MAX];
	long lines = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		for (ssize_t k = 0; k < n; k++)
			lines += buf[k] == '\n';
	return lines;
}

START_TEST(unixgram_agent_that_stops_reading_costs_counted_datagrams)
{
	char path[64];
	gb_statsd_stats st;
	gb_record r = rec(GB_REC_TIMING, "uds.stuck", 0, 0.002);
	int fd;
	long got;

	snprintf(path, sizeof(path), "/tmp/gbatch-test-stuck-%d.sock", (int)getpid());
	fd = bind_unix(path);
	gb_statsd_sink *s = unixgram_sink(path, 20 * GB_NS_PER_MS);
	for (int i = 0; i < 3000; i++)
		gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	gb__statsd_get_stats(s, &st);
	ck_assert_uint_gt(st.send_errors, 0);
	got = drain_lines(fd);
	ck_assert_int_gt(got, 0);
	ck_assert_int_lt(got, 3000);
	ck_assert_uint_eq(st.lines, 3000);

	/* the agent reads again: the next datagram gets through and ends the congestion */
	gb__statsd_record(s, &r);
	gb__statsd_flush(s);
	ck_assert_int_eq(drain_lines(fd), 1);
	gb__statsd_get_stats(s, &st);
	uint64_t errors = st.send_errors;
	gb__statsd_free(s);
	ck_assert_uint_gt(errors, 0);
	close(fd);
	unlink(path);
}
END_TEST

START_TEST(send_timeout_over_the_limit_is_refused)
{
	char err[256];
	gb_statsd_target t;

	ck_assert_int_eq(gb__statsd_parse_url("unixgram:///tmp/x.sock", &t, err, sizeof(err)), 0);
	gb_statsd_config cfg = { .target = &t,
		.send_timeout_ns = GB_STATSD_MAX_SEND_TIMEOUT_NS + 1 };
	ck_assert_ptr_null(gb__statsd_new(&cfg, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "send timeout 60000 ms"));
}
END_TEST

static Suite *
statsd_suite(void)
{
	Suite *s = suite_create("statsd_sink");
	TCase *tc = tcase_create("format");

	tcase_add_loop_test(tc, name_is_sanitised, 0, sizeof(names) / sizeof(names[0]));
	tcase_add_test(tc, long_name_is_cut_at_200);
	tcase_add_loop_test(tc, tag_is_sanitised, 0, sizeof(tags) / sizeof(tags[0]));
	tcase_add_test(tc, tag_without_letter_is_no_tag);
	tcase_add_test(tc, long_tag_is_cut_and_never_ends_in_colon);
	tcase_add_loop_test(tc, value_is_formatted, 0, sizeof(values) / sizeof(values[0]));
	tcase_add_test(tc, prefix_check);
	tcase_add_test(tc, timing_line_carries_depth_parent_and_metadata);
	tcase_add_test(tc, counters_sum_gauges_keep_last_per_context);
	tcase_add_test(tc, non_finite_and_negative_timings_are_rejected);
	tcase_add_test(tc, global_tags_and_dropped_tags);
	tcase_add_test(tc, tag_values_are_capped_per_key);
	tcase_add_loop_test(tc, lines_are_packed_and_never_split, 0, 2);
	tcase_add_test(tc, hostile_input_gives_only_valid_lines_udp);
	tcase_add_test(tc, hostile_input_gives_only_valid_lines_unixgram);
	tcase_add_test(tc, decoded_records_give_valid_lines);
	tcase_add_test(tc, a_call_is_one_metric_wherever_it_is_made);
	tcase_add_test(tc, path_names_keep_the_whole_scope);
	tcase_add_test(tc, semantic_convention_names_and_histograms);
	tcase_add_test(tc, reserved_tag_keys_are_renamed_and_counted);
	tcase_add_test(tc, names_and_parent_scopes_are_capped);
	tcase_add_test(tc, metadata_left_out_by_the_producer_is_counted);
	tcase_add_test(tc, cached_lines_match_and_stay_apart);
	tcase_add_loop_test(tc, a_thousand_tag_values_per_call_site_stay_cached, 0, 2);
	tcase_add_test(tc, send_errors_are_counted);
	tcase_add_loop_test(tc, timing_type_sets_the_type_of_timings_and_histograms, 0, 3);
	tcase_add_loop_test(tc, packed_values_keep_every_sample_within_each_datagram, 0, 2);
	tcase_add_test(tc, timestamps_place_a_backlog_at_its_own_seconds);
	tcase_add_test(tc, timestamps_group_a_backlog_per_flush_interval);
	suite_add_tcase(s, tc);

	tc = tcase_create("target");
	tcase_add_loop_test(tc, urls_parse, 0, sizeof(urls) / sizeof(urls[0]));
	tcase_add_test(tc, env_picks_the_target_like_datadog_clients);
	tcase_add_test(tc, env_socket_and_the_admission_controllers_url);
	tcase_add_test(tc, udp_socket_sends_and_survives_no_listener);
	tcase_add_test(tc, unixgram_reconnects_after_the_agent_restarts);
	tcase_add_test(tc, unixgram_slow_agent_loses_nothing);
	tcase_add_loop_test(tc, unixstream_frames_each_message_and_reconnects, 0, 2);
	tcase_add_test(tc, unix_url_sends_datagrams_to_a_datagram_socket);
	tcase_add_test(tc, udp_gso_sends_the_same_datagrams);
	tcase_add_test(tc, udp_gso_refused_falls_back_to_one_datagram_a_message);
	tcase_add_test(tc, unixgram_agent_that_stops_reading_costs_counted_datagrams);
	tcase_add_test(tc, send_timeout_over_the_limit_is_refused);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = statsd_suite };
