/*
 * json_scan.c - a JSON text read in place. gb__jscan_document checks a whole document by the
 * grammar jansson 2.14 parses (RFC 8259: its numbers, escapes, blanks and nothing after the
 * value) and the limits it enforces (UTF-8, no escaped NUL, surrogates in pairs, integers
 * within int64, reals within double), refusing more than jansson where that keeps it simple;
 * the finders then walk the checked text without checking again. Nothing is allocated.
 */
#include "json_scan.h"

#include <string.h>

#include "json_writer.h"

#define MAX_DEPTH 64
#define MAX_INT_DIGITS 18   /* any 18-digit integer fits int64_t */
#define MAX_REAL_MAGNITUDE 300 /* digits before the point plus exponent: below DBL_MAX */

static const char *
blanks(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int
hex4(const char *p, const char *e, unsigned *u)
{
	*u = 0;
	if (e - p < 4)
		return 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
		    c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) :
		    c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
		if (d == 16)
			return 0;
		*u = *u << 4 | d;
	}
	return 1;
}

/* A string at p ('"'): past its closing quote, or NULL. A key may have no escapes. */
static const char *
string(const char *p, const char *e, int key)
{
	unsigned u, lo;

	for (p++; p < e;) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c >= 0x80) {
			size_t k = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 :
			    c >= 0xF0 && c <= 0xF4 ? 4 : 0;
			if (k == 0 || (size_t)(e - p) < k || !gb__utf8_valid(p, k))
				return NULL;
			p += k;
			continue;
		}
		if (c != '\\') {
			p++;
			continue;
		}
		if (key || ++p >= e)
			return NULL;
		if (strchr("\"\\/bfnrt", *p) != NULL && *p != '\0') {
			p++;
			continue;
		}
		if (*p != 'u' || !hex4(p + 1, e, &u) || u == 0 || (u >= 0xDC00 && u <= 0xDFFF))
			return NULL;
		p += 5;
		if (u >= 0xD800 && u <= 0xDBFF) {
			if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, e, &lo) ||
			    lo < 0xDC00 || lo > 0xDFFF)
				return NULL;
			p += 6;
		}
	}
	return NULL;
}

static int
digit(const char *p, const char *e)
{
	return p < e && *p >= '0' && *p <= '9';
}

/* A number at p: its end, or NULL (malformed, or perhaps out of jansson's range). */
static const char *
number(const char *p, const char *e)
{
	size_t whole = 0, exp = 0;
	int real = 0;

	if (p < e && *p == '-')
		p++;
	if (!digit(p, e))
		return NULL;
	if (*p == '0') {
		p++;
		whole = 1;
		if (digit(p, e))
			return NULL;
	} else {
		for (; digit(p, e); p++)
			whole++;
	}
	if (p < e && *p == '.') {
		real = 1;
		if (!digit(++p, e))
			return NULL;
		while (digit(p, e))
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		real = 1;
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (!digit(p, e))
			return NULL;
		for (; digit(p, e); p++)
			if ((exp = exp * 10 + (size_t)(*p - '0')) > MAX_REAL_MAGNITUDE)
				return NULL;
	}
	if (real ? whole + exp > MAX_REAL_MAGNITUDE : whole > MAX_INT_DIGITS)
		return NULL;
	return p;
}

static const char *
literal(const char *p, const char *e, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(e - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

static const char *value(const char *p, const char *e, int depth);

/* An object or an array at p, its members or elements checked: past its end, or NULL. */
static const char *
container(const char *p, const char *e, int depth)
{
	char close = *p == '{' ? '}' : ']';

	if (depth > MAX_DEPTH)
		return NULL;
	p = blanks(p + 1, e);
	if (p < e && *p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			if (p >= e || *p != '"' || (p = string(p, e, 1)) == NULL)
				return NULL;
			p = blanks(p, e);
			if (p >= e || *p != ':')
				return NULL;
			p = blanks(p + 1, e);
		}
		if ((p = value(p, e, depth + 1)) == NULL)
			return NULL;
		p = blanks(p, e);
		if (p < e && *p == close)
			return p + 1;
		if (p >= e || *p != ',')
			return NULL;
		p = blanks(p + 1, e);
	}
}

static const char *
value(const char *p, const char *e, int depth)
{
	if (p >= e)
		return NULL;
	switch (*p) {
	case '"': return string(p, e, 0);
	case '{':
	case '[': return container(p, e, depth);
	case 't': return literal(p, e, "true");
	case 'f': return literal(p, e, "false");
	case 'n': return literal(p, e, "null");
	default: return number(p, e);
	}
}

int
gb__jscan_document(const char *s, size_t n, gb_jspan *root)
{
	const char *e = s + n, *p = blanks(s, e), *v;

	if (p >= e || *p != '{' || (v = container(p, e, 1)) == NULL || blanks(v, e) != e)
		return 0;
	root->p = p;
	root->end = v;
	return 1;
}

/* ---- walking a checked text ---- */

/* The end of the checked value at p. */
static const char *
skip(const char *p, const char *e)
{
	int depth = 0;

	do {
		if (*p == '"') {
			for (p++; *p != '"'; p++)
				if (*p == '\\')
					p++;
			p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			depth--;
			p++;
		} else if (depth > 0) {
			p++;
		} else {
			while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
			    *p != '\r' && *p != '\n')
				p++;
		}
	} while (depth > 0);
	return p;
}

int
gb__jscan_members(gb_jspan obj, const char *const *names, size_t n, gb_jspan *v)
{
	const char *p, *e = obj.end;
	int found = 0;

	for (size_t i = 0; i < n; i++)
		v[i].p = v[i].end = NULL;
	if (obj.p == NULL || *obj.p != '{')
		return 0;
	for (p = blanks(obj.p + 1, e); *p == '"';) {
		const char *k = p + 1, *ke = strchr(k, '"'), *ve;
		/* keys have no escapes: the first quote ends them */
		p = blanks(blanks(ke + 1, e) + 1, e);
		ve = skip(p, e);
		for (size_t i = 0; i < n; i++) {
			if (strncmp(k, names[i], (size_t)(ke - k)) == 0 && names[i][ke - k] == '\0') {
				found += v[i].p == NULL;
				v[i].p = p;
				v[i].end = ve;
			}
		}
		p = blanks(ve, e);
		if (*p == ',')
			p = blanks(p + 1, e);
	}
	return found;
}

int
gb__jscan_member(gb_jspan obj, const char *name, gb_jspan *v)
{
	return gb__jscan_members(obj, &name, 1, v) > 0;
}

int
gb__jscan_next(gb_jspan arr, gb_jspan *el)
{
	const char *p, *e = arr.end;

	if (arr.p == NULL || *arr.p != '[')
		return 0;
	if (el->p == NULL) {
		p = blanks(arr.p + 1, e);
	} else {
		p = blanks(el->end, e);
		if (*p != ',')
			return 0;
		p = blanks(p + 1, e);
	}
	if (*p == ']')
		return 0;
	el->p = p;
	el->end = skip(p, e);
	return 1;
}

char
gb__jscan_kind(gb_jspan v)
{
	return *v.p == '-' || (*v.p >= '0' && *v.p <= '9') ? '0' : *v.p;
}

int
gb__jscan_int(gb_jspan v, int64_t *out)
{
	const char *p = v.p;
	int neg = *p == '-';
	int64_t x = 0;

	for (p += neg; p < v.end; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		x = x * 10 + (*p - '0');
	}
	*out = neg ? -x : x;
	return gb__jscan_kind(v) == '0';
}

/* Decodes the checked string v into out when out is not NULL; returns its decoded length. */
static size_t
decode(gb_jspan v, char *out)
{
	const char *p = v.p + 1, *e = v.end - 1;
	size_t n = 0;
	unsigned u, lo;

	while (p < e) {
		const char *run = p;
		while (p < e && *p != '\\')
			p++;
		if (out != NULL)
			memcpy(out + n, run, (size_t)(p - run));
		n += (size_t)(p - run);
		if (p >= e)
			break;
		if (p[1] != 'u') {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			if (out != NULL)
				out[n] = to[strchr(from, p[1]) - from];
			n++;
			p += 2;
			continue;
		}
		hex4(p + 2, e, &u);
		p += 6;
		if (u >= 0xD800 && u <= 0xDBFF) {
			hex4(p + 2, e, &lo);
			u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
			p += 6;
		}
		char b[4];
		size_t k = u < 0x80 ? 1 : u < 0x800 ? 2 : u < 0x10000 ? 3 : 4;
		if (k == 1) {
			b[0] = (char)u;
		} else if (k == 2) {
			b[0] = (char)(0xC0 | u >> 6);
			b[1] = (char)(0x80 | (u & 0x3F));
		} else if (k == 3) {
			b[0] = (char)(0xE0 | u >> 12);
			b[1] = (char)(0x80 | ((u >> 6) & 0x3F));
			b[2] = (char)(0x80 | (u & 0x3F));
		} else {
			b[0] = (char)(0xF0 | u >> 18);
			b[1] = (char)(0x80 | ((u >> 12) & 0x3F));
			b[2] = (char)(0x80 | ((u >> 6) & 0x3F));
			b[3] = (char)(0x80 | (u & 0x3F));
		}
		if (out != NULL)
			memcpy(out + n, b, k);
		n += k;
	}
	return n;
}

size_t
gb__jscan_strlen(gb_jspan v)
{
	return decode(v, NULL);
}

size_t
gb__jscan_str(gb_jspan v, char *out)
{
	return decode(v, out);
}
