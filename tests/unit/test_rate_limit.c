/* test_rate_limit.c - the requests/tokens window: the RPM cap in every window, the retry time
 * it names, token estimates and their reconciliation, the shared pause, the tier table. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "check_main.h"
#include "clock.h"
#include "rate_limit.h"

#define MS GB_NS_PER_MS
#define SEC GB_NS_PER_SEC

START_TEST(tiers_parse)
{
	ck_assert_int_eq(gb__rate_parse_tier("free"), 0);
	ck_assert_int_eq(gb__rate_parse_tier("tier1"), 1);
	ck_assert_int_eq(gb__rate_parse_tier("tier_1"), 1);
	ck_assert_int_eq(gb__rate_parse_tier("Tier-2"), 2);
	ck_assert_int_eq(gb__rate_parse_tier("TIER3"), 3);
	ck_assert_int_eq(gb__rate_parse_tier("tier4"), -1);
	ck_assert_int_eq(gb__rate_parse_tier("tier"), -1);
	ck_assert_int_eq(gb__rate_parse_tier(""), -1);
	ck_assert_int_eq(gb__rate_parse_tier("paid"), -1);
}
END_TEST

START_TEST(seed_table)
{
	gb_rate_limits l;

	l = gb__rate_defaults("gemini-2.5-flash", 0);
	ck_assert_uint_eq(l.rpm, 10);
	ck_assert_uint_eq(l.tpm, 250000);
	l = gb__rate_defaults("models/gemini-2.0-flash", 0);
	ck_assert_uint_eq(l.rpm, 15);
	ck_assert_uint_eq(l.tpm, 1000000);
	l = gb__rate_defaults("gemini-2.0-flash-lite", 0);
	ck_assert_uint_eq(l.rpm, 30);
	l = gb__rate_defaults("gemini-2.0-flash-001", 1);
	ck_assert_uint_eq(l.rpm, 2000);
	ck_assert_uint_eq(l.tpm, 4000000);
	l = gb__rate_defaults("gemini-2.0-flash-lite-001", 1);
	ck_assert_uint_eq(l.rpm, 4000);
	l = gb__rate_defaults("gemini-1.5-flash", 1);
	ck_assert_uint_eq(l.rpm, 2000);
	l = gb__rate_defaults("gemini-2.5-flash", 3);
	ck_assert_uint_eq(l.rpm, 1000);
	l = gb__rate_defaults("gemini-2.0-flashy", 1);
	ck_assert_uint_eq(l.rpm, 15);
	ck_assert_uint_eq(l.tpm, 250000);
}
END_TEST

START_TEST(rpm_cap_and_retry_time)
{
	gb_rate_limits lim = { 3, 0 };
	gb_rate *r = gb__rate_new(lim, 1 * SEC);
	uint64_t ticket, at = 0, t0 = 100 * SEC;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(gb__rate_acquire(r, t0, 10, &ticket, &at), 1);
	ck_assert_int_eq(gb__rate_acquire(r, t0 + 100 * MS, 10, &ticket, &at), 1);
	ck_assert_int_eq(gb__rate_acquire(r, t0 + 200 * MS, 10, &ticket, &at), 1);
	ck_assert_int_eq(gb__rate_acquire(r, t0 + 300 * MS, 10, &ticket, &at), 0);
	ck_assert_uint_eq(at, t0 + SEC);
	ck_assert_int_eq(gb__rate_acquire(r, t0 + SEC - 1, 10, &ticket, &at), 0);
	ck_assert_int_eq(gb__rate_acquire(r, t0 + SEC, 10, &ticket, &at), 1);
	ck_assert_uint_eq(gb__rate_requests(r, t0 + SEC), 3);
	ck_assert_uint_eq(gb__rate_requests(r, t0 + 3 * SEC), 0);
	gb__rate_free(r);
}
END_TEST

START_TEST(tokens_estimated_then_reconciled)
{
	gb_rate_limits lim = { 100, 1000 };
	gb_rate *r = gb__rate_new(lim, 60 * SEC);
	uint64_t a, b, at = 0, t0 = SEC;

	ck_assert_int_eq(gb__rate_acquire(r, t0, 600, &a, &at), 1);
	ck_assert_int_eq(gb__rate_acquire(r, t0 + SEC, 300, &b, &at), 1);
	ck_assert_int_eq(gb__rate_acquire(r, t0 + 2 * SEC, 200, &b, &at), 0);
	ck_assert_uint_eq(at, t0 + 60 * SEC);
	/* The first request really cost 100 tokens: room again. */
	gb__rate_reconcile(r, a, 100);
	ck_assert_uint_eq(gb__rate_tokens(r, t0 + 2 * SEC), 400);
	ck_assert_int_eq(gb__rate_acquire(r, t0 + 2 * SEC, 200, &b, &at), 1);
	/* Over the whole budget: waits for an empty window, then goes alone. */
	ck_assert_int_eq(gb__rate_acquire(r, t0 + 3 * SEC, 5000, &b, &at), 0);
	ck_assert_uint_eq(at, t0 + 2 * SEC + 60 * SEC);
	ck_assert_int_eq(gb__rate_acquire(r, at, 5000, &b, &at), 1);
	gb__rate_free(r);
}
END_TEST

START_TEST(pause_holds_everyone)
{
	gb_rate_limits lim = { 100, 0 };
	gb_rate *r = gb__rate_new(lim, 60 * SEC);
	uint64_t t, at = 0;

	gb__rate_pause(r, 5 * SEC);
	gb__rate_pause(r, 4 * SEC);
	ck_assert_int_eq(gb__rate_acquire(r, 3 * SEC, 1, &t, &at), 0);
	ck_assert_uint_eq(at, 5 * SEC);
	ck_assert_int_eq(gb__rate_acquire(r, 5 * SEC, 1, &t, &at), 1);
	gb__rate_free(r);
}
END_TEST

START_TEST(no_window_ever_holds_more_than_rpm)
{
	gb_rate_limits lim = { 7, 0 };
	gb_rate *r = gb__rate_new(lim, 500 * MS);
	uint64_t sent[400], now = SEC, t, at;
	size_t n = 0;

	/* Callers asking at irregular times, always as soon as allowed. */
	while (n < sizeof(sent) / sizeof(sent[0])) {
		if (gb__rate_acquire(r, now, 1, &t, &at))
			sent[n++] = now;
		else
			now = at + (uint64_t)(rand() % 3) * MS;
		now += (uint64_t)(rand() % 5) * MS;
	}
	for (size_t i = 0; i + 7 < n; i++)
		ck_assert_uint_ge(sent[i + 7] - sent[i], 500 * MS);
	gb__rate_free(r);
}
END_TEST

static Suite *
rate_limit_suite(void)
{
	Suite *s = suite_create("rate_limit");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, tiers_parse);
	tcase_add_test(tc, seed_table);
	tcase_add_test(tc, rpm_cap_and_retry_time);
	tcase_add_test(tc, tokens_estimated_then_reconciled);
	tcase_add_test(tc, pause_holds_everyone);
	tcase_add_test(tc, no_window_ever_holds_more_than_rpm);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = rate_limit_suite };
