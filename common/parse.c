/*
 * parse.c - number parsing without strtoul's surprises (leading spaces, signs,
 * silent wrap-around): every character is checked and every multiplication guarded.
 */
#include "parse.h"

#include <stdio.h>
#include <string.h>

struct unit {
	const char *name;
	uint64_t scale;
};

static const struct unit duration_units[] = {
	{ "ns", 1ull },
	{ "us", 1000ull },
	{ "ms", 1000000ull },
	{ "s", 1000000000ull },
	{ "m", 60ull * 1000000000ull },
	{ "h", 3600ull * 1000000000ull },
	{ NULL, 0 },
};

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads the digits at *p into *out; returns the number of digits, or -1 on overflow. */
static int
read_digits(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	while (is_digit(**p)) {
		unsigned d = (unsigned)(**p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		(*p)++;
		n++;
	}
	*out = v;
	return n;
}

static const struct unit *
find_unit(const struct unit *units, const char *name)
{
	for (; units->name != NULL; units++)
		if (strcmp(units->name, name) == 0)
			return units;
	return NULL;
}

int
gb__parse_duration(const char *text, uint64_t *ns, char *err, size_t errlen)
{
	const char *p = text;
	uint64_t whole, frac = 0, frac_scale = 1;
	const struct unit *u;
	int nd;

	if (text == NULL || *text == '\0') {
		snprintf(err, errlen, "empty duration (use e.g. 250ms, 2s, 1m)");
		return -1;
	}
	if ((nd = read_digits(&p, &whole)) < 0)
		goto overflow;
	if (*p == '.') {
		p++;
		int nf = 0;
		while (is_digit(*p)) {
			/* Digits past nanosecond precision of an hour are noise: ignore them. */
			if (nf < 12) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_scale *= 10;
			}
			nf++;
			p++;
		}
		if (nf == 0)
			goto garbage;
	} else if (nd == 0) {
		goto garbage;
	}
	if (*p == '\0') {
		if (whole == 0 && frac == 0) {
			*ns = 0;
			return 0;
		}
		snprintf(err, errlen, "duration \"%s\" has no unit (use ns, us, ms, s, m or h)", text);
		return -1;
	}
	if ((u = find_unit(duration_units, p)) == NULL) {
		snprintf(err, errlen, "duration \"%s\" has an unknown unit \"%s\" (use ns, us, ms, s, m or h)",
		    text, p);
		return -1;
	}
	if (whole > UINT64_MAX / u->scale)
		goto overflow;
	uint64_t v = whole * u->scale;
	/* The fraction has at most 12 digits: long double (64-bit mantissa) keeps it exact to the ns. */
	uint64_t fv = (uint64_t)((long double)frac * (long double)u->scale / (long double)frac_scale);
	if (v > UINT64_MAX - fv)
		goto overflow;
	*ns = v + fv;
	return 0;
garbage:
	snprintf(err, errlen, "invalid duration \"%s\" (use a number and a unit, e.g. 250ms, 2s, 1m)", text);
	return -1;
overflow:
	snprintf(err, errlen, "duration \"%s\" is too large", text);
	return -1;
}

int
gb__parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	const char *p = text;
	uint64_t v;
	int nd;

	if (text == NULL || *text == '\0') {
		snprintf(err, errlen, "empty number");
		return -1;
	}
	nd = read_digits(&p, &v);
	if (nd == 0 || *p != '\0') {
		snprintf(err, errlen, "invalid number \"%s\" (expected a whole number from %llu to %llu)",
		    text, (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	if (nd < 0 || v < min || v > max) {
		snprintf(err, errlen, "number \"%s\" is out of range (%llu to %llu)",
		    text, (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}
