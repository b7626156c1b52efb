/*
 * reporter_console.c - prints every record as one line, in one of two formats.
 *
 * gbatch's own (GB_REPORT_GBATCH):
 *   [TIMING] <two spaces per depth>SCOPE: duration=S.SSSSs (depth=D[, parent_scope=P], call_count=N[, K=V]...)
 *   [METRIC] SCOPE: VALUE ([metric_type=T, ]depth=D[, parent_scope=P], call_count=N[, K=V]...)
 * The duration has four decimals; VALUE is printf's %.15g (integers print exactly); parent_scope
 * is left out at top level and metric_type for plain metrics; K=V are the caller's metadata in
 * order. Scopes, keys and values are escaped as gbatch-collector's console escapes them
 * (controls, C1 included, '\' and bytes that are not UTF-8 as \xNN).
 *
 * The seed's (GB_REPORT_SEED), exactly as its examples/custom_telemetry_reporter.py PrintReporter
 * prints what its telemetry.py gives it:
 *   [TIMING] <two spaces per depth>SCOPE: duration=S.SSSSs (metadata: {'depth': D, 'call_count': D, 'parent_scope': P|None, ...})
 *   [METRIC] SCOPE: VALUE (metadata: {'depth': D, 'parent_scope': P|None[, 'metric_type': T], ...})
 * the metadata a Python dict's repr, strings as Python string literals.
 *
 * The seed's call_count is its nesting count, which always equals depth; whole numbers print
 * as its ints do. Scope names are escaped as in gbatch's format (the seed's names are ASCII).
 *
 * In both, a caller's key named like a built-in one (depth, parent_scope, call_count,
 * metric_type) replaces the built-in value in its place, as the seed's dict merge does: each
 * key is printed once. Each line is written under the stream's lock, so lines from threads
 * never interleave, and no record can drive the terminal.
 */
#include <gbatch/telemetry.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* The caller's value for built-in key `key` (the last one given), or NULL. */
static const char *
caller_value(const gb_tele_meta *m, const char *key)
{
	const char *v = NULL;

	for (size_t i = 0; i < m->n_extra; i++)
		if (strcmp(m->extra[i].key, key) == 0)
			v = m->extra[i].value;
	return v;
}

/* Whether key is one the reporter prints itself: depth, parent_scope, and call_count when
 * `call_count` is set, metric_type when `type` is. */
static bool
is_builtin(const char *key, bool call_count, bool type)
{
	return strcmp(key, "depth") == 0 || strcmp(key, "parent_scope") == 0 ||
	    (call_count && strcmp(key, "call_count") == 0) ||
	    (type && strcmp(key, "metric_type") == 0);
}

/* The index of the last pair with this key, so that a repeated caller key prints once. */
static bool
last_of_key(const gb_tele_meta *m, size_t i)
{
	for (size_t k = i + 1; k < m->n_extra; k++)
		if (strcmp(m->extra[k].key, m->extra[i].key) == 0)
			return false;
	return true;
}

/* ---- gbatch's format ---- */

/* Writes s escaped. */
static void
put_field(FILE *out, const char *s)
{
	char small[512], *buf = small;
	size_t len = strlen(s), cap = 4 * len + 1;

	if (cap > sizeof(small) && (buf = malloc(cap)) == NULL) {
		fputs("(out of memory)", out);
		return;
	}
	gb__text_escape(buf, buf == small ? sizeof(small) : cap, s, len, GB_TEXT_BACKSLASH);
	fputs(buf, out);
	if (buf != small)
		free(buf);
}

static void
put_pair(FILE *out, const char *key, const char *value)
{
	put_field(out, key);
	fputc('=', out);
	put_field(out, value);
}

static void
print_tail(FILE *out, const gb_tele_meta *m, bool type)
{
	const char *v;

	if ((v = caller_value(m, "depth")) != NULL)
		put_pair(out, "depth", v);
	else
		fprintf(out, "depth=%d", m->depth);
	if ((v = caller_value(m, "parent_scope")) != NULL || (v = m->parent_scope) != NULL) {
		fputs(", ", out);
		put_pair(out, "parent_scope", v);
	}
	fputs(", ", out);
	if ((v = caller_value(m, "call_count")) != NULL)
		put_pair(out, "call_count", v);
	else
		fprintf(out, "call_count=%u", m->call_count);
	for (size_t i = 0; i < m->n_extra; i++) {
		if (is_builtin(m->extra[i].key, true, type) || !last_of_key(m, i))
			continue;
		fputs(", ", out);
		put_pair(out, m->extra[i].key, m->extra[i].value);
	}
	fputs(")\n", out);
}

static int
finish_line(FILE *out)
{
	int err = fflush(out) != 0 || ferror(out);

	funlockfile(out);
	return err ? -1 : 0;
}

static int
console_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	FILE *out = self;

	flockfile(out);
	fprintf(out, "[TIMING] %*s", 2 * m->depth, "");
	put_field(out, scope);
	fprintf(out, ": duration=%.4fs (", seconds);
	print_tail(out, m, false);
	return finish_line(out);
}

static int
console_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	FILE *out = self;
	const char *type = caller_value(m, "metric_type");

	flockfile(out);
	fputs("[METRIC] ", out);
	put_field(out, scope);
	fprintf(out, ": %.15g (", value);
	if (type != NULL || (type = m->metric_type) != NULL) {
		put_pair(out, "metric_type", type);
		fputs(", ", out);
	}
	print_tail(out, m, true);
	return finish_line(out);
}

/* ---- the seed's format: Python's repr of what the seed's reporter receives ---- */

/* Decodes the UTF-8 sequence at s (n bytes left) into *cp; its length, or 0 when invalid. */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
	uint32_t min = len == 4 ? 0x10000 : len == 3 ? 0x800 : 0x80;

	if (len == 0 || len > n || s[0] > 0xf4)
		return 0;
	*cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

/* Python's str.isprintable() for the code points a scope or a tag can plausibly hold: false
 * for the C1 controls, the no-break and other spaces, the soft hyphen, the zero-width and
 * direction marks, the line and paragraph separators and the byte order mark. */
static bool
py_printable(uint32_t cp)
{
	return !((cp >= 0x80 && cp <= 0xa0) || cp == 0xad || cp == 0x1680 ||
	    (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
	    (cp >= 0x205f && cp <= 0x2064) || cp == 0x3000 || cp == 0xfeff);
}

/* Writes s as Python's repr() of the str writes it ('...', or "..." when s holds a ' and no
 * "). A byte that is not UTF-8 (a Python str cannot hold one) is written \xNN. */
static void
put_py_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	char q = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';

	fputc(q, out);
	for (size_t i = 0, len; i < n; i += len) {
		unsigned c = p[i];
		uint32_t cp;
		len = 1;
		if (c == (unsigned char)q || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\t' || c == '\n' || c == '\r')
			fprintf(out, "\\%c", c == '\t' ? 't' : c == '\n' ? 'n' : 'r');
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else if (c < 0x80)
			fputc((int)c, out);
		else if ((len = utf8_decode(p + i, n - i, &cp)) == 0)
			fprintf(out, "\\x%02x", c), len = 1;
		else if (py_printable(cp))
			fwrite(p + i, 1, len, out);
		else
			fprintf(out, cp < 0x100 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
	}
	fputc(q, out);
}

/* A caller's value as the seed's metadata would hold it: a whole number (as Python spells an
 * int), True, False and None bare, anything else a string. */
static void
put_py_value(FILE *out, const char *v)
{
	const char *d = v[0] == '-' ? v + 1 : v;
	bool integer = d[0] != '\0' && (d[0] != '0' || d[1] == '\0') &&
	    strspn(d, "0123456789") == strlen(d);

	if (integer || strcmp(v, "True") == 0 || strcmp(v, "False") == 0 || strcmp(v, "None") == 0)
		fputs(v, out);
	else
		put_py_str(out, v);
}

/* Python's repr() of a float: the shortest digits that read back as v, fixed notation when
 * the decimal point is within 16 places (with ".0" when whole), else d.ddde+XX or d.ddde-XX. */
static void
put_py_float(FILE *out, double v)
{
	char e[40], digits[24];
	int exp10, nd = 0, decpt;

	if (isnan(v) || isinf(v)) {
		fputs(isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", out);
		return;
	}
	if (v == 0) {
		fputs(signbit(v) ? "-0.0" : "0.0", out);
		return;
	}
	for (int prec = 0; prec < 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec, v);
		if (strtod(e, NULL) == v)
			break;
	}
	for (const char *c = e; *c != 'e'; c++)
		if (*c >= '0' && *c <= '9')
			digits[nd++] = *c;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	exp10 = atoi(strchr(e, 'e') + 1);
	decpt = exp10 + 1;
	if (v < 0)
		fputc('-', out);
	if (decpt <= -4 || decpt > 16) {
		fprintf(out, "%c%s%s", digits[0], nd > 1 ? "." : "", digits + 1);
		fprintf(out, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
	} else if (decpt <= 0) {
		fputs("0.", out);
		for (int i = decpt; i < 0; i++)
			fputc('0', out);
		fputs(digits, out);
	} else if (decpt >= nd) {
		fputs(digits, out);
		for (int i = nd; i < decpt; i++)
			fputc('0', out);
		fputs(".0", out);
	} else {
		fprintf(out, "%.*s.%s", decpt, digits, digits + decpt);
	}
}

/* A metric's value as the seed prints it: a whole number as its ints print, else a float. */
static void
put_py_number(FILE *out, double v)
{
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		fprintf(out, "%lld", (long long)v);
	else
		put_py_float(out, v);
}

/* One built-in entry of the dict: the caller's value when it names the key, else the given
 * number (or string, or None when both are NULL). */
static void
put_builtin(FILE *out, const gb_tele_meta *m, const char *key, const long *num, const char *str)
{
	const char *v = caller_value(m, key);

	fprintf(out, "'%s': ", key);
	if (v != NULL)
		put_py_value(out, v);
	else if (num != NULL)
		fprintf(out, "%ld", *num);
	else if (str != NULL)
		put_py_str(out, str);
	else
		fputs("None", out);
}

static void
put_py_extras(FILE *out, const gb_tele_meta *m, bool call_count, bool type)
{
	for (size_t i = 0; i < m->n_extra; i++) {
		if (is_builtin(m->extra[i].key, call_count, type) || !last_of_key(m, i))
			continue;
		fputs(", ", out);
		put_py_str(out, m->extra[i].key);
		fputs(": ", out);
		put_py_value(out, m->extra[i].value);
	}
}

/* The indentation the seed's PrintReporter gives: two spaces per metadata depth (the caller's
 * depth when it gave a whole number; none when negative). */
static void
put_indent(FILE *out, const gb_tele_meta *m)
{
	const char *v = caller_value(m, "depth");
	long d = m->depth;

	if (v != NULL) {
		char *end;
		long c = strtol(v, &end, 10);
		if (*v != '\0' && *end == '\0')
			d = c;
	}
	for (long i = 0; i < d && i < 1000; i++)
		fputs("  ", out);
}

static int
seed_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	FILE *out = self;
	long depth = m->depth; /* the seed's call_count is its nesting count: the depth */

	flockfile(out);
	fputs("[TIMING] ", out);
	put_indent(out, m);
	put_field(out, scope);
	fprintf(out, ": duration=%.4fs (metadata: {", seconds);
	put_builtin(out, m, "depth", &depth, NULL);
	fputs(", ", out);
	put_builtin(out, m, "call_count", &depth, NULL);
	fputs(", ", out);
	put_builtin(out, m, "parent_scope", NULL, m->parent_scope);
	put_py_extras(out, m, true, false);
	fputs("})\n", out);
	return finish_line(out);
}

static int
seed_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	FILE *out = self;
	long depth = m->depth;

	flockfile(out);
	fputs("[METRIC] ", out);
	put_field(out, scope);
	fputs(": ", out);
	put_py_number(out, value);
	fputs(" (metadata: {", out);
	put_builtin(out, m, "depth", &depth, NULL);
	fputs(", ", out);
	put_builtin(out, m, "parent_scope", NULL, m->parent_scope);
	if (m->metric_type != NULL) {
		fputs(", ", out);
		put_builtin(out, m, "metric_type", NULL, m->metric_type);
	}
	put_py_extras(out, m, false, m->metric_type != NULL);
	fputs("})\n", out);
	return finish_line(out);
}

gb_reporter
gb_console_reporter_format(FILE *out, gb_report_format format)
{
	if (format == GB_REPORT_SEED)
		return (gb_reporter){ .self = out, .record_timing = seed_timing,
			.record_metric = seed_metric };
	return (gb_reporter){ .self = out, .record_timing = console_timing,
		.record_metric = console_metric };
}

gb_reporter
gb_console_reporter(FILE *out)
{
	return gb_console_reporter_format(out, GB_REPORT_GBATCH);
}
