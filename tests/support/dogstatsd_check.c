/*
 * dogstatsd_check.c - the strict DogStatsD checker: a hand-written scanner over the grammar in
 * dogstatsd_check.h, written apart from the sink so that the two do not share a mistake.
 */
#include "dogstatsd_check.h"

#include <locale.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#define NAME_MAX_LEN 200
#define TAG_MAX_LEN 200

static bool
lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool
alpha(char c)
{
	return lower(c) || (c >= 'A' && c <= 'Z');
}

static bool
digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
fail(const char **why, const char *msg)
{
	*why = msg;
	return -1;
}

/* Scans digits at s[*i, end); returns how many. */
static size_t
digits(const char *s, size_t *i, size_t end)
{
	size_t n = 0;

	while (*i < end && digit(s[*i])) {
		(*i)++;
		n++;
	}
	return n;
}

static int
check_value(const char *s, size_t len, bool nonneg, const char **why)
{
	size_t i = 0;

	if (len == 0)
		return fail(why, "empty value");
	if (s[i] == '-') {
		if (nonneg)
			return fail(why, "negative timing");
		i++;
	}
	if (digits(s, &i, len) == 0)
		return fail(why, "value without digits");
	if (i < len && s[i] == '.') {
		i++;
		if (digits(s, &i, len) == 0)
			return fail(why, "value with an empty fraction");
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (digits(s, &i, len) == 0)
			return fail(why, "value with an empty exponent");
	}
	if (i != len)
		return fail(why, "junk in value");
	return 0;
}

static int
check_name(const char *s, size_t len, const char **why)
{
	if (len == 0)
		return fail(why, "empty name");
	if (len > NAME_MAX_LEN)
		return fail(why, "name over 200 bytes");
	if (!alpha(s[0]))
		return fail(why, "name not starting with a letter");
	for (size_t i = 1; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (s[i - 1] == '.')
				return fail(why, "empty name segment");
			continue;
		}
		if (!alpha(c) && !digit(c) && c != '_')
			return fail(why, "bad byte in name");
	}
	if (s[len - 1] == '.')
		return fail(why, "name ending in '.'");
	return 0;
}

/* The length of a lower-case Unicode letter in UTF-8 at s[0, len) (DataDog keeps those in
 * tags), or 0. Decoded by the C library, not by hand, to differ from the sink. */
static size_t
utf8_lower_letter(const char *s, size_t len)
{
	static locale_t loc;
	locale_t old;
	mbstate_t st;
	wchar_t wc;
	size_t n;

	if (loc == (locale_t)0 && (loc = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0)) == 0)
		return 0;
	memset(&st, 0, sizeof(st));
	old = uselocale(loc);
	n = mbrtowc(&wc, s, len, &st);
	if (n == (size_t)-1 || n == (size_t)-2 || n < 2 || !iswalpha((wint_t)wc) ||
	    towlower((wint_t)wc) != (wint_t)wc)
		n = 0;
	uselocale(old);
	return n;
}

static int
check_tag(const char *s, size_t len, const char **why)
{
	if (len == 0)
		return fail(why, "empty tag");
	if (len > TAG_MAX_LEN)
		return fail(why, "tag over 200 bytes");
	if (!lower(s[0]) && utf8_lower_letter(s, len) == 0)
		return fail(why, "tag not starting with a lower-case letter");
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		size_t u;

		if (c == ':')
			continue;
		if ((unsigned char)c >= 0x80 && (u = utf8_lower_letter(s + i, len - i)) > 0) {
			i += u - 1;
			continue;
		}
		if (!lower(c) && !digit(c) && c != '_' && c != '-' && c != '.' && c != '/')
			return fail(why, "bad byte in tag");
	}
	if (s[len - 1] == ':')
		return fail(why, "tag ending in ':'");
	return 0;
}

static int
check_tags(const char *s, size_t len, const char **why)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == ',') {
			if (check_tag(s + start, i - start, why) < 0)
				return -1;
			start = i + 1;
		}
	}
	return 0;
}

static int
check_rate(const char *s, size_t len, const char **why)
{
	size_t i = 0;

	if ((len == 1 && s[0] == '1') || (len == 3 && memcmp(s, "1.0", 3) == 0))
		return 0;
	if (len < 3 || s[0] != '0' || s[1] != '.')
		return fail(why, "bad sample rate");
	i = 2;
	if (digits(s, &i, len) == 0 || i != len)
		return fail(why, "bad sample rate");
	return 0;
}

/* The values after the name: one, or (DogStatsD 1.1) several joined by ':', where the agent
 * skips empty ones ("1::2") but needs at least one; a set's value is never packed. */
static int
check_values(const char *s, size_t len, bool nonneg, bool set, const char **why)
{
	size_t start = 0, n = 0;

	if (len == 0)
		return fail(why, "empty value");
	if (memchr(s, ':', len) == NULL)
		return check_value(s, len, nonneg, why);
	if (set)
		return fail(why, "packed values on a set");
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ':')
			continue;
		if (i > start) {
			if (check_value(s + start, i - start, nonneg, why) < 0)
				return -1;
			n++;
		}
		start = i + 1;
	}
	return n > 0 ? 0 : fail(why, "packed values without a value");
}

/* "T" and the second the agent files the sample under: what Go's strconv.ParseInt(s, 10, 64)
 * reads (an optional sign, decimal digits, within int64), at least 1. */
static int
check_timestamp(const char *s, size_t len, const char **why)
{
	size_t i = 0;
	bool neg = false;
	unsigned long long v = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (i == len)
		return fail(why, "timestamp without digits");
	for (; i < len; i++) {
		if (!digit(s[i]))
			return fail(why, "junk in timestamp");
		if (v > (9223372036854775807ull - (unsigned)(s[i] - '0')) / 10)
			return fail(why, "timestamp out of range");
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (neg || v < 1)
		return fail(why, "timestamp below 1");
	return 0;
}

/* The fields after the type, in any order as the agent reads them: "@rate", "#tags" and
 * "T<seconds>", each at most once (the agent would let a later one win, and ignore a field
 * it does not know: both are refused here). */
static int
check_fields(const char *p, const char *end, const char **why)
{
	bool rate = false, tags = false, ts = false;

	while (p != NULL) {
		const char *f = p + 1;
		const char *next = memchr(f, '|', (size_t)(end - f));
		size_t fl = (size_t)((next ? next : end) - f);

		if (fl == 0)
			return fail(why, "empty field after the type");
		if (f[0] == '@') {
			if (rate)
				return fail(why, "sample rate twice");
			rate = true;
			if (check_rate(f + 1, fl - 1, why) < 0)
				return -1;
		} else if (f[0] == '#') {
			if (tags)
				return fail(why, "tags twice");
			tags = true;
			if (check_tags(f + 1, fl - 1, why) < 0)
				return -1;
		} else if (f[0] == 'T') {
			if (ts)
				return fail(why, "timestamp twice");
			ts = true;
			if (check_timestamp(f + 1, fl - 1, why) < 0)
				return -1;
		} else {
			return fail(why, "unknown field after the type");
		}
		p = next;
	}
	return 0;
}

int
dsd_check_line(const char *line, size_t len, const char **why)
{
	const char *colon = memchr(line, ':', len);
	const char *bar, *end = line + len;
	size_t tl;

	if (memchr(line, '\n', len) != NULL || memchr(line, '\0', len) != NULL)
		return fail(why, "newline or NUL inside a line");
	if (colon == NULL)
		return fail(why, "no ':' after the name");
	if (check_name(line, (size_t)(colon - line), why) < 0)
		return -1;
	bar = memchr(colon, '|', (size_t)(end - colon));
	if (bar == NULL)
		return fail(why, "no type");
	const char *type = bar + 1;
	const char *next = memchr(type, '|', (size_t)(end - type));
	tl = (size_t)((next ? next : end) - type);
	bool ms = tl == 2 && memcmp(type, "ms", 2) == 0;
	if (!(ms || (tl == 1 && strchr("cghds", type[0]) != NULL)))
		return fail(why, "unknown metric type");
	if (check_values(colon + 1, (size_t)(bar - colon - 1), ms, tl == 1 && type[0] == 's',
	    why) < 0)
		return -1;
	return check_fields(next, end, why);
}

long
dsd_check_datagram(const char *d, size_t len, size_t max, const char **why, size_t *bad_line)
{
	size_t start = 0;
	long lines = 0;

	if (bad_line != NULL)
		*bad_line = 0;
	if (len == 0)
		return fail(why, "empty datagram");
	if (len > max)
		return fail(why, "datagram over the size limit");
	if (d[len - 1] != '\n')
		return fail(why, "datagram not ending in a newline");
	for (size_t i = 0; i < len; i++) {
		if (d[i] != '\n')
			continue;
		if (i == start || dsd_check_line(d + start, i - start, why) < 0) {
			if (i == start)
				*why = "empty line";
			if (bad_line != NULL)
				*bad_line = start;
			return -1;
		}
		lines++;
		start = i + 1;
	}
	return lines;
}
