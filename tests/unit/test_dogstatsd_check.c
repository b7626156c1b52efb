/* test_dogstatsd_check.c - the strict line checker against the DataDog agent's parser rules
 * for what DogStatsD 1.1 added: packed values ("n:1:2:3|d", empty values skipped, at least
 * one, never on a set) and the |T timestamp field (strconv.ParseInt, at least 1), with the
 * fields after the type in any order. Lines the agent refuses must be refused here too. */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "dogstatsd_check.h"

static const struct {
	const char *line;
	int ok;
} lines[] = {
	{ "a.b:1|c", 1 },
	{ "a.b:1.5|ms|#k:v", 1 },
	{ "a.b:1|c|@0.5|#k:v", 1 },
	{ "a.b:1|c|#k:v|@0.5", 1 },             /* the agent reads the fields in any order */
	{ "a.b:1:2:3|d", 1 },                   /* DogStatsD 1.1 packed values */
	{ "a.b:1:2.5:1e3|h|#k:v", 1 },
	{ "a.b:0.1:0.2|ms", 1 },
	{ "a.b:1::2|d", 1 },                    /* the agent skips an empty value */
	{ "a.b::1|d", 1 },
	{ "a.b:1:|d", 1 },
	{ "a.b:1|c|T1700000000", 1 },
	{ "a.b:1|g|#k:v|T1700000000", 1 },
	{ "a.b:1|g|T1700000000|#k:v", 1 },
	{ "a.b:1|c|T+1700000000", 1 },          /* what ParseInt reads */
	{ "a.b:1|c|T9223372036854775807", 1 },
	{ "a.b:1|c|T1", 1 },
	{ "a.b:2:3|c|#k:v|T1700000000", 1 },
	{ "a.b:|d", 0 },
	{ "a.b::|d", 0 },                       /* no value at all */
	{ "a.b:1:x|d", 0 },
	{ "a.b:1:-2|ms", 0 },                   /* a negative timing, packed or not */
	{ "a.b:1:2|s", 0 },                     /* sets are never packed */
	{ "a.b:1|c|T0", 0 },                    /* the agent wants a timestamp > 0 */
	{ "a.b:1|c|T-5", 0 },
	{ "a.b:1|c|T", 0 },
	{ "a.b:1|c|T12x", 0 },
	{ "a.b:1|c|T1.5", 0 },
	{ "a.b:1|c|T9223372036854775808", 0 },  /* past int64 */
	{ "a.b:1|c|T1|T2", 0 },
	{ "a.b:1|c|#k:v|#k:w", 0 },
	{ "a.b:1|c|@0.5|@0.5", 0 },
	{ "a.b:1|c|", 0 },
	{ "a.b:1|c|x", 0 },
	{ "a.b:1|c|#K:v", 0 },
	{ "a.b:1|x", 0 },
};

START_TEST(lines_follow_the_agents_rules)
{
	const char *why = "";
	int rc = dsd_check_line(lines[_i].line, strlen(lines[_i].line), &why);

	if (lines[_i].ok)
		ck_assert_msg(rc == 0, "\"%s\" refused: %s", lines[_i].line, why);
	else
		ck_assert_msg(rc == -1, "\"%s\" accepted", lines[_i].line);
}
END_TEST

START_TEST(a_packed_datagram_is_checked_line_by_line)
{
	static const char d[] = "a.b:1:2:3|d|#k:v\nc.d:4|c|T1700000000\n";
	const char *why = "";
	size_t bad;

	ck_assert_int_eq(dsd_check_datagram(d, sizeof(d) - 1, 8192, &why, &bad), 2);
	ck_assert_int_eq(dsd_check_datagram(d, sizeof(d) - 1, 20, &why, &bad), -1);
}
END_TEST

static Suite *
check_suite(void)
{
	Suite *s = suite_create("dogstatsd_check");
	TCase *tc = tcase_create("lines");

	tcase_add_loop_test(tc, lines_follow_the_agents_rules, 0, sizeof(lines) / sizeof(lines[0]));
	tcase_add_test(tc, a_packed_datagram_is_checked_line_by_line);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = check_suite };
