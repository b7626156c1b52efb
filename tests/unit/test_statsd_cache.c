/* test_statsd_cache.c - the DogStatsD sink's line cache: a record's key is its own fields (a
 * record built in memory and its decoded copy key alike), keys that collide in every bit of
 * their hash still never share a line, a full bucket lets go of its oldest line and only that
 * one, the cache stays within its bound however many keys pass, 1 000 values of a tag all
 * stay, and the hash spreads them like a random function. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "record.h"
#include "statsd_internal.h"

/* A timing of scope with one metadata pair k:v; the strings must outlive the record. */
static gb_record
rec_kv(const char *scope, const gb_rec_kv *kv)
{
	gb_record r = { .kind = GB_REC_TIMING, .value = 1, .depth = 1, .scope = scope,
		.scope_len = strlen(scope), .parent_len = 0, .meta = kv, .n_meta = kv ? 1 : 0 };
	return r;
}

/* k may point into itself (a record built in memory): filled in place, never copied. */
static void
key_of(const gb_record *r, gb_statsd_key *k)
{
	ck_assert(gb__statsd_cache_key(r, k));
}

/* Caches the text "name:<id>" for k. */
static void
put_text(gb_statsd_cache *c, const gb_statsd_key *k, const char *id)
{
	gb_statsd_line *e = gb__statsd_cache_put(c, k, "name", 4, id, strlen(id));

	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->name_len, 4);
	ck_assert_uint_eq(e->tags_len, strlen(id));
}

/* Asserts that k finds exactly the text id (or nothing, id NULL). */
static void
assert_finds(gb_statsd_cache *c, const gb_statsd_key *k, const char *id)
{
	gb_statsd_line *e = gb__statsd_cache_find(c, k);

	if (id == NULL) {
		ck_assert_msg(e == NULL, "found \"%.*s\" where nothing is cached",
		    e ? (int)e->tags_len : 0, e ? e->text + 4 : "");
		return;
	}
	ck_assert_msg(e != NULL, "\"%s\" not found", id);
	ck_assert_uint_eq(e->tags_len, strlen(id));
	ck_assert_msg(memcmp(e->text, "name", 4) == 0 && memcmp(e->text + 4, id, e->tags_len) == 0,
	    "found \"%.*s\" for \"%s\"", (int)e->tags_len, e->text + 4, id);
}

START_TEST(a_record_and_its_decoded_copy_key_alike)
{
	const gb_rec_kv kv[] = { { "model", 5, "gemini-2.0-flash", 16 }, { "n", 1, "7", 1 } };
	gb_record r = rec_kv("batch.attempt", kv), back;
	gb_rec_kv dm[GB_REC_MAX_META];
	uint8_t buf[GB_REC_MAX_SIZE];
	size_t n;
	gb_statsd_key built, decoded;

	r.n_meta = 2;
	r.parent_len = 5;
	n = gb__rec_encode(&r, buf, sizeof(buf));
	ck_assert_int_eq(gb__rec_decode(buf, n, &back, dm), 0);
	ck_assert_ptr_eq(back.tail, buf + GB_REC_HEADER_SIZE);
	key_of(&r, &built);
	key_of(&back, &decoded);
	ck_assert_ptr_eq(built.ident, built.buf);   /* built in memory: written out */
	ck_assert_ptr_eq(decoded.ident, back.tail); /* decoded: the record's own bytes */
	ck_assert_uint_eq(built.head, decoded.head);
	ck_assert_uint_eq(built.len, decoded.len);
	ck_assert_uint_eq(built.len, n - GB_REC_HEADER_SIZE);
	ck_assert(memcmp(built.ident, decoded.ident, built.len) == 0);
	ck_assert_uint_eq(built.hash, decoded.hash);

	gb_statsd_cache *c = gb__statsd_cache_new(0);
	put_text(c, &built, "a");
	assert_finds(c, &decoded, "a");
	gb__statsd_cache_free(c);
}
END_TEST

/* Records whose bytes or header fields differ, each given the very same hash: a lookup must
 * compare the key itself, so none is ever served another's line. */
START_TEST(colliding_keys_never_share_a_line)
{
	const gb_rec_kv a[] = { { "k", 1, "a", 1 } }, b[] = { { "k", 1, "b", 1 } };
	const gb_rec_kv ab[] = { { "k", 1, "ab", 2 } }, kab[] = { { "ka", 2, "b", 1 } };
	gb_record r[12];
	gb_statsd_key k[12];
	char id[12][4];
	gb_statsd_cache *c = gb__statsd_cache_new(0);

	r[0] = rec_kv("s", a);
	r[1] = rec_kv("s", b);      /* another value */
	r[2] = rec_kv("s", ab);     /* the same bytes split otherwise */
	r[3] = rec_kv("s", kab);
	r[4] = rec_kv("s", a);
	r[4].depth = 2;             /* the same bytes, another depth */
	r[5] = rec_kv("s", a);
	r[5].kind = GB_REC_HISTOGRAM;
	r[6] = rec_kv("s", NULL);   /* no metadata */
	r[7] = rec_kv("sk", NULL);
	r[7].parent_len = 1;        /* a parent */
	for (int i = 8; i < 12; i++) {
		r[i] = rec_kv("s", a);
		r[i].depth = (uint16_t)(10 + i);
	}
	for (int i = 0; i < 12; i++) {
		key_of(&r[i], &k[i]);
		k[i].hash = 0x5eedull;  /* one bucket, one hash */
		snprintf(id[i], sizeof(id[i]), "%d", i);
	}
	for (int i = 0; i < 12; i++) {
		for (int j = i; j < 12; j++)
			assert_finds(c, &k[j], NULL); /* not put yet, whatever else is */
		put_text(c, &k[i], id[i]);
		/* a bucket holds eight: the ones put last are there, each with its own text */
		for (int j = i; j >= 0 && j > i - 8; j--)
			assert_finds(c, &k[j], id[j]);
		for (int j = i - 8; j >= 0; j--)
			assert_finds(c, &k[j], NULL);
	}
	gb__statsd_cache_free(c);
}
END_TEST

START_TEST(a_full_bucket_lets_its_oldest_line_go)
{
	char scope[16][8];
	gb_statsd_key k[16];
	gb_statsd_cache *c = gb__statsd_cache_new(8); /* one bucket of eight */

	for (int i = 0; i < 16; i++) {
		snprintf(scope[i], sizeof(scope[i]), "s%d", i);
		gb_record r = rec_kv(scope[i], NULL);

		key_of(&r, &k[i]);
	}
	for (int i = 0; i < 16; i++) {
		put_text(c, &k[i], scope[i]);
		ck_assert_uint_eq(gb__statsd_cache_lines(c), i < 8 ? (size_t)i + 1 : 8);
		for (int j = 0; j <= i; j++)
			assert_finds(c, &k[j], j > i - 8 ? scope[j] : NULL);
	}
	gb__statsd_cache_free(c);
}
END_TEST

START_TEST(the_cache_stays_within_its_bound)
{
	gb_statsd_cache *c = gb__statsd_cache_new(0);
	char scope[32], text[GB_STATSD_CACHE_TEXT_MAX];
	size_t most = 0;
	/* a line's allocation: its bookkeeping (well under 64 bytes), key and text */
	size_t per_line = 64 + 32 + sizeof(text);
	size_t bound = GB_STATSD_CACHE_LINES * per_line + GB_STATSD_CACHE_LINES * 16 + 4096;

	memset(text, 't', sizeof(text));
	for (int i = 0; i < 3 * GB_STATSD_CACHE_LINES; i++) {
		int n = snprintf(scope, sizeof(scope), "scope.%d", i);
		gb_record r = rec_kv(scope, NULL);
		gb_statsd_key k;

		key_of(&r, &k);
		ck_assert_uint_le((size_t)n, 32);
		ck_assert_ptr_null(gb__statsd_cache_find(c, &k));
		ck_assert_ptr_nonnull(gb__statsd_cache_put(c, &k, scope, (size_t)n, text,
		    sizeof(text) - (size_t)n));
		ck_assert_uint_le(gb__statsd_cache_lines(c), GB_STATSD_CACHE_LINES);
		ck_assert_uint_le(gb__statsd_cache_bytes(c), bound);
		if (gb__statsd_cache_lines(c) > most)
			most = gb__statsd_cache_lines(c);
	}
	/* it did grow: far more than the first table's 256 lines */
	ck_assert_uint_gt(most, GB_STATSD_CACHE_LINES / 2);
	gb__statsd_cache_free(c);
}
END_TEST

START_TEST(over_long_keys_and_texts_are_not_cached)
{
	static char scope[GB_STATSD_CACHE_KEY_MAX + 2];
	static char text[GB_STATSD_CACHE_TEXT_MAX + 1];
	gb_record r;
	gb_statsd_key k;
	gb_statsd_cache *c = gb__statsd_cache_new(0);

	memset(scope, 'x', GB_STATSD_CACHE_KEY_MAX + 1);
	r = rec_kv(scope, NULL);
	ck_assert(!gb__statsd_cache_key(&r, &k));
	scope[GB_STATSD_CACHE_KEY_MAX] = '\0'; /* exactly the most */
	r = rec_kv(scope, NULL);
	key_of(&r, &k);
	memset(text, 't', sizeof(text));
	ck_assert_ptr_null(gb__statsd_cache_put(c, &k, "n", 1, text, sizeof(text) - 1));
	ck_assert_ptr_null(gb__statsd_cache_find(c, &k));
	ck_assert_ptr_nonnull(gb__statsd_cache_put(c, &k, "n", 1, text, sizeof(text) - 2));
	ck_assert_ptr_nonnull(gb__statsd_cache_find(c, &k));
	gb__statsd_cache_free(c);
}
END_TEST

/* The values of one tag of one call site, as the bench and a busy producer write them. */
static void
value_key(size_t site, size_t v, char *val, size_t cap, gb_statsd_key *k)
{
	static const char *const scopes[] = { "batch.total_processing.batch.attempt",
		"batch.total_processing.batch.upload", "batch.total_processing.batch.poll" };
	int n = snprintf(val, cap, "%zu", v);
	const gb_rec_kv kv[] = { { "question_count", 14, val, (size_t)n },
		{ "model", 5, "gemini-2.0-flash", 16 } };
	gb_record r = rec_kv(scopes[site % 3], kv);

	r.n_meta = 2;
	r.parent_len = 22;
	key_of(&r, k);
}

START_TEST(a_thousand_values_of_a_tag_all_stay)
{
	gb_statsd_cache *c = gb__statsd_cache_new(0);
	char val[24];

	for (size_t site = 0; site < 3; site++)
		for (size_t v = 0; v < 1000; v++) {
			gb_statsd_key k;

			value_key(site, v, val, sizeof(val), &k);
			put_text(c, &k, val);
		}
	ck_assert_uint_eq(gb__statsd_cache_lines(c), 3000);
	for (size_t site = 0; site < 3; site++)
		for (size_t v = 1000; v-- > 0;) {
			gb_statsd_key k;

			value_key(site, v, val, sizeof(val), &k);
			assert_finds(c, &k, val);
		}
	gb__statsd_cache_free(c);
}
END_TEST

/* 1 000 keys in 2 048 slots: a random function fills 2048 * (1 - e^(-1000/2048)) = 790 of
 * them; the low bits of a hash that spreads badly fill far fewer. */
START_TEST(the_hash_spreads_the_values_of_a_tag)
{
	static unsigned char used[2048];
	size_t filled = 0;
	char val[24];

	for (size_t v = 0; v < 1000; v++) {
		gb_statsd_key k;

		value_key(0, v, val, sizeof(val), &k);
		filled += used[k.hash & 2047]++ == 0;
	}
	ck_assert_uint_ge(filled, 750);
}
END_TEST

static Suite *
statsd_cache_suite(void)
{
	Suite *s = suite_create("statsd_cache");
	TCase *tc = tcase_create("cache");

	tcase_set_timeout(tc, 60); /* tens of thousands of lines, under the sanitizers too */

	tcase_add_test(tc, a_record_and_its_decoded_copy_key_alike);
	tcase_add_test(tc, colliding_keys_never_share_a_line);
	tcase_add_test(tc, a_full_bucket_lets_its_oldest_line_go);
	tcase_add_test(tc, the_cache_stays_within_its_bound);
	tcase_add_test(tc, over_long_keys_and_texts_are_not_cached);
	tcase_add_test(tc, a_thousand_values_of_a_tag_all_stay);
	tcase_add_test(tc, the_hash_spreads_the_values_of_a_tag);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = statsd_cache_suite };
