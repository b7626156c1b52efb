/* test_record.c - the telemetry record codec: round trips, truncation flags, and the
 * decoder's refusal of every malformed input we can think of (it must never read past len). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "record.h"

static gb_record
sample(const gb_rec_kv *meta, size_t n)
{
	static const char scope[] = "batch.total_processing.batch.attempt";
	gb_record r = {
		.ts_ns = 1764166000123456789ull,
		.value = 0.1234,
		.kind = GB_REC_TIMING,
		.depth = 1,
		.pid = 4242,
		.tid = 4243,
		.call_count = 7,
		.scope = scope,
		.scope_len = sizeof(scope) - 1,
		.parent_len = strlen("batch.total_processing"),
		.meta = meta,
		.n_meta = n,
	};
	return r;
}

static void
assert_same(const gb_record *a, const gb_record *b)
{
	ck_assert_uint_eq(a->ts_ns, b->ts_ns);
	ck_assert(memcmp(&a->value, &b->value, sizeof(double)) == 0);
	ck_assert_uint_eq(a->kind, b->kind);
	ck_assert_uint_eq(a->depth, b->depth);
	ck_assert_uint_eq(a->pid, b->pid);
	ck_assert_uint_eq(a->tid, b->tid);
	ck_assert_uint_eq(a->call_count, b->call_count);
	ck_assert_uint_eq(a->scope_len, b->scope_len);
	ck_assert(memcmp(a->scope, b->scope, a->scope_len) == 0);
	ck_assert_uint_eq(a->parent_len, b->parent_len);
	ck_assert_uint_eq(a->n_meta, b->n_meta);
	for (size_t i = 0; i < a->n_meta; i++) {
		ck_assert_uint_eq(a->meta[i].key_len, b->meta[i].key_len);
		ck_assert_uint_eq(a->meta[i].value_len, b->meta[i].value_len);
		ck_assert(memcmp(a->meta[i].key, b->meta[i].key, a->meta[i].key_len) == 0);
		ck_assert(memcmp(a->meta[i].value, b->meta[i].value, a->meta[i].value_len) == 0);
	}
}

START_TEST(round_trip_keeps_every_field)
{
	const gb_rec_kv meta[] = {
		{ "question_count", 14, "5", 1 },
		{ "content_type", 12, "text", 4 },
		{ "", 0, "", 0 },
	};
	gb_record in = sample(meta, 3), out;
	gb_rec_kv dm[GB_REC_MAX_META];
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t n = gb__rec_encode(&in, buf, sizeof(buf));

	ck_assert_uint_eq(n, gb__rec_size(&in));
	ck_assert_uint_eq(n, GB_REC_HEADER_SIZE + in.scope_len + 3 * 4 + 14 + 1 + 12 + 4);
	ck_assert_int_eq(gb__rec_decode(buf, n, &out, dm), 0);
	assert_same(&in, &out);
	ck_assert_uint_eq(out.flags, 0);
}
END_TEST

/* The inline writer of a record without metadata gives the encoder's bytes exactly, and only
 * such records count as plain. */
START_TEST(plain_writer_matches_the_encoder)
{
	const gb_rec_kv meta[] = { { "k", 1, "v", 1 } };
	static char long_scope[GB_REC_MAX_SCOPE + 1];
	uint8_t enc[GB_REC_MAX_SIZE], plain[GB_REC_MAX_SIZE];

	memset(long_scope, 's', sizeof(long_scope));

	for (int k = 0; k < 4; k++) {
		gb_record in = sample(NULL, 0);

		in.kind = GB_REC_COUNTER + k % 4;
		in.depth = (uint16_t)(k * 1000);
		in.parent_len = k == 1 ? 0 : k == 2 ? in.scope_len + 5 : in.parent_len;
		if (k == 3) {
			in.scope = long_scope;
			in.scope_len = GB_REC_MAX_SCOPE;
			in.parent_len = 100;
		}
		ck_assert(gb__rec_is_plain(&in));
		size_t n = gb__rec_encode(&in, enc, sizeof(enc));
		ck_assert_uint_eq(n, GB_REC_HEADER_SIZE + in.scope_len);
		memset(plain, 0xa5, sizeof(plain));
		gb__rec_write_plain(&in, plain);
		ck_assert(memcmp(enc, plain, n) == 0);
		ck_assert_uint_eq(plain[n], 0xa5);
	}
	gb_record with_meta = sample(meta, 1), flagged = sample(NULL, 0), dropped = sample(NULL, 0);
	gb_record too_long = sample(NULL, 0);
	flagged.flags = GB_REC_F_KEY_TRUNC;
	dropped.meta_dropped = 1;
	too_long.scope = long_scope;
	too_long.scope_len = GB_REC_MAX_SCOPE + 1;
	ck_assert(!gb__rec_is_plain(&with_meta));
	ck_assert(!gb__rec_is_plain(&flagged));
	ck_assert(!gb__rec_is_plain(&dropped));
	ck_assert(!gb__rec_is_plain(&too_long));
}
END_TEST

START_TEST(special_values_survive)
{
	const double values[] = { 0.0, -0.0, 1e308, -1e-308, NAN, INFINITY, -INFINITY };
	uint8_t buf[256];
	gb_rec_kv dm[GB_REC_MAX_META];

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		gb_record in = sample(NULL, 0), out;
		in.value = values[i];
		in.kind = GB_REC_GAUGE;
		size_t n = gb__rec_encode(&in, buf, sizeof(buf));
		ck_assert_int_eq(gb__rec_decode(buf, n, &out, dm), 0);
		assert_same(&in, &out);
	}
}
END_TEST

START_TEST(oversize_input_truncated_and_flagged)
{
	static char big[4096];
	gb_rec_kv meta[20];
	gb_record in, out;
	gb_rec_kv dm[GB_REC_MAX_META];
	uint8_t buf[GB_REC_MAX_SIZE];

	memset(big, 'x', sizeof(big));
	for (size_t i = 0; i < 20; i++)
		meta[i] = (gb_rec_kv){ big, 1000, big, 1000 };
	in = sample(meta, 20);
	in.scope = big;
	in.scope_len = sizeof(big);
	in.parent_len = 3000;

	size_t n = gb__rec_encode(&in, buf, sizeof(buf));
	ck_assert_uint_eq(n, GB_REC_MAX_SIZE);
	ck_assert_int_eq(gb__rec_decode(buf, n, &out, dm), 0);
	ck_assert_uint_eq(out.flags,
	    GB_REC_F_SCOPE_TRUNC | GB_REC_F_META_DROPPED | GB_REC_F_KEY_TRUNC | GB_REC_F_VALUE_TRUNC);
	ck_assert_uint_eq(out.scope_len, GB_REC_MAX_SCOPE);
	ck_assert_uint_eq(out.parent_len, GB_REC_MAX_SCOPE);
	ck_assert_uint_eq(out.n_meta, GB_REC_MAX_META);
	ck_assert_uint_eq(out.meta[15].key_len, GB_REC_MAX_KEY);
	ck_assert_uint_eq(out.meta[15].value_len, GB_REC_MAX_VALUE);
}
END_TEST

START_TEST(encode_refuses_small_buffer)
{
	gb_record in = sample(NULL, 0);
	uint8_t buf[128];

	ck_assert_uint_eq(gb__rec_encode(&in, buf, GB_REC_HEADER_SIZE), 0);
	ck_assert_uint_eq(gb__rec_encode(&in, buf, gb__rec_size(&in) - 1), 0);
	ck_assert_uint_eq(gb__rec_encode(&in, buf, gb__rec_size(&in)), gb__rec_size(&in));
}
END_TEST

/* Every truncation of a valid record, and every single-byte change to its header, must
 * either decode to something within bounds or be refused. */
START_TEST(decoder_refuses_malformed)
{
	const gb_rec_kv meta[] = { { "k", 1, "v", 1 }, { "key2", 4, "value2", 6 } };
	gb_record in = sample(meta, 2), out;
	gb_rec_kv dm[GB_REC_MAX_META];
	uint8_t good[256], buf[256];
	size_t n = gb__rec_encode(&in, good, sizeof(good));

	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *exact = malloc(cut ? cut : 1);
		memcpy(exact, good, cut);
		ck_assert_msg(gb__rec_decode(exact, cut, &out, dm) == -1, "accepted %zu of %zu bytes", cut, n);
		free(exact);
	}
	memcpy(buf, good, n);
	buf[n] = 0;
	ck_assert_int_eq(gb__rec_decode(buf, n + 1, &out, dm), -1);

	static const struct { size_t off; uint8_t val; } bad[] = {
		{ 0, 0 }, { 0, 2 }, { 1, 0 }, { 1, 6 }, { 2, 0x10 }, { 3, 17 }, { 3, 3 },
		{ 15, 0x02 }, /* scope_len + 512 */
		{ 16, 0xff }, /* parent_len > scope_len */
		{ 18, 1 },    /* pairs dropped without GB_REC_F_META_DROPPED */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(buf, good, n);
		buf[bad[i].off] = bad[i].val;
		ck_assert_msg(gb__rec_decode(buf, n, &out, dm) == -1, "accepted byte %zu = %u",
		    bad[i].off, bad[i].val);
	}
	/* A key length pointing past the end. */
	memcpy(buf, good, n);
	buf[GB_REC_HEADER_SIZE + in.scope_len] = 200;
	ck_assert_int_eq(gb__rec_decode(buf, n, &out, dm), -1);
}
END_TEST

START_TEST(max_size_fits_smallest_ring_record)
{
	/* The smallest ring (64 KiB) allows records of capacity / 8 = 8 KiB including an 8-byte header. */
	ck_assert_uint_le(GB_REC_MAX_SIZE + 8, 8192);
}
END_TEST

static Suite *
record_suite(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, round_trip_keeps_every_field);
	tcase_add_test(tc, plain_writer_matches_the_encoder);
	tcase_add_test(tc, special_values_survive);
	tcase_add_test(tc, oversize_input_truncated_and_flagged);
	tcase_add_test(tc, encode_refuses_small_buffer);
	tcase_add_test(tc, decoder_refuses_malformed);
	tcase_add_test(tc, max_size_fits_smallest_ring_record);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = record_suite };
