/*
 * json_writer.c - compact JSON text straight into a buffer, as jansson 2.14's json_dumps
 * with JSON_COMPACT writes it: strings escaped the same way (\" \\ \b \f \n \r \t, other
 * control characters \u00XX, everything else as it is), integers in decimal, reals with %.17g
 * and a ".0" or exponent kept, so the text is the same whichever builds it.
 */
#include "json_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
gb__jw_init(gb_jw *w, size_t hint)
{
	w->len = 0;
	w->failed = 0;
	w->cap = hint > 0 ? hint : 256;
	if ((w->s = malloc(w->cap)) == NULL) {
		w->cap = 0;
		w->failed = 1;
	}
}

void
gb__jw_fini(gb_jw *w)
{
	free(w->s);
	memset(w, 0, sizeof(*w));
}

char *
gb__jw_finish(gb_jw *w, size_t *len)
{
	char *s;

	gb__jw_raw(w, "", 1); /* the terminating NUL */
	if (w->failed) {
		gb__jw_fini(w);
		return NULL;
	}
	s = w->s;
	if (len != NULL)
		*len = w->len - 1;
	memset(w, 0, sizeof(*w));
	return s;
}

/* Room for n more bytes; 0, or -1 (w failed). */
static int
reserve(gb_jw *w, size_t n)
{
	size_t cap = w->cap;
	char *ns;

	if (w->failed)
		return -1;
	if (n <= w->cap - w->len)
		return 0;
	while (cap - w->len < n) {
		if (cap > SIZE_MAX / 2) {
			w->failed = 1;
			return -1;
		}
		cap = cap > 0 ? cap * 2 : 256;
	}
	if ((ns = realloc(w->s, cap)) == NULL) {
		w->failed = 1;
		return -1;
	}
	w->s = ns;
	w->cap = cap;
	return 0;
}

void
gb__jw_raw(gb_jw *w, const char *s, size_t n)
{
	if (reserve(w, n) != 0)
		return;
	memcpy(w->s + w->len, s, n);
	w->len += n;
}

void
gb__jw_lit(gb_jw *w, const char *s)
{
	gb__jw_raw(w, s, strlen(s));
}

/* The length of the UTF-8 sequence at s (n bytes left), or 0 when it is not one: jansson's
 * utf8_check_first and utf8_check_full. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char u = s[0];
	size_t len;
	uint32_t v;

	if (u < 0x80)
		return 1;
	if (u >= 0xC2 && u <= 0xDF)
		len = 2, v = u & 0x1F;
	else if (u >= 0xE0 && u <= 0xEF)
		len = 3, v = u & 0x0F;
	else if (u >= 0xF0 && u <= 0xF4)
		len = 4, v = u & 0x07;
	else
		return 0; /* a continuation byte, an overlong ASCII (C0, C1), or past F4 */
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (len == 3 && v < 0x800) ||
	    (len == 4 && v < 0x10000))
		return 0;
	return len;
}

int
gb__utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, k; i < n; i += k)
		if ((k = p[i] < 0x80 ? 1 : utf8_seq(p + i, n - i)) == 0)
			return 0;
	return 1;
}

void
gb__jw_strn(gb_jw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	/* at most 6 bytes out for a byte in (\u00XX), plus the quotes */
	if (n > (SIZE_MAX - 2) / 6) {
		w->failed = 1;
		return;
	}
	if (reserve(w, n * 6 + 2) != 0)
		return;
	char *o = w->s + w->len;
	*o++ = '"';
	while (i < n) {
		unsigned char c = p[i];
		size_t k;
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			*o++ = (char)c;
			i++;
			continue;
		}
		if (c >= 0x80) {
			if ((k = utf8_seq(p + i, n - i)) == 0) {
				w->failed = 1;
				return;
			}
			memcpy(o, p + i, k);
			o += k;
			i += k;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
		i++;
	}
	*o++ = '"';
	w->len = (size_t)(o - w->s);
}

void
gb__jw_str(gb_jw *w, const char *s)
{
	if (s == NULL) {
		w->failed = 1;
		return;
	}
	gb__jw_strn(w, s, strlen(s));
}

void
gb__jw_str_or_null(gb_jw *w, const char *s)
{
	if (s != NULL)
		gb__jw_strn(w, s, strlen(s));
	else
		gb__jw_raw(w, "null", 4);
}

void
gb__jw_int(gb_jw *w, long long v)
{
	char buf[24], *e = buf + sizeof(buf), *p = e;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		*--p = '-';
	gb__jw_raw(w, p, (size_t)(e - p));
}

/* jansson's jsonp_dtostr at precision 17: %.17g, a decimal comma of the locale made a point,
 * ".0" added when there is neither a point nor an exponent, the exponent's '+' and leading
 * zeros removed. */
void
gb__jw_real(gb_jw *w, double v)
{
	char buf[64], *e;
	int n;

	if (!isfinite(v) || (n = snprintf(buf, sizeof(buf) - 3, "%.17g", v)) < 0 ||
	    (size_t)n >= sizeof(buf) - 3) {
		w->failed = 1;
		return;
	}
	for (char *p = buf; *p != '\0'; p++)
		if (*p == ',')
			*p = '.';
	if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	if ((e = strchr(buf, 'e')) != NULL) {
		char *start = e + 1, *end = e + 2;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, (size_t)(buf + n - end) + 1);
			n -= (int)(end - start);
		}
	}
	gb__jw_raw(w, buf, (size_t)n);
}

void
gb__jw_bool(gb_jw *w, int v)
{
	if (v)
		gb__jw_raw(w, "true", 4);
	else
		gb__jw_raw(w, "false", 5);
}

void
gb__jw_value(gb_jw *w, const json_t *v, size_t flags)
{
	size_t need;

	flags |= JSON_COMPACT | JSON_ENCODE_ANY;
	if (v == NULL || (need = json_dumpb(v, NULL, 0, flags)) == 0) {
		w->failed = 1;
		return;
	}
	if (reserve(w, need) != 0)
		return;
	if (json_dumpb(v, w->s + w->len, need, flags) != need) {
		w->failed = 1;
		return;
	}
	w->len += need;
}
