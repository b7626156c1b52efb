/*
 * statsd_format.c - the DogStatsD grammar: metric names, tags and values. Every byte here comes
 * from another process, so each is mapped through a whitelist and every write is bounded; the
 * functions are pure, which is what lets the unit tests and the fuzzer hammer them alone.
 */
#include "statsd_sink.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <wctype.h>

#include "statsd_internal.h"

static bool
is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static bool
is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_letter(unsigned char c)
{
	return is_lower(c) || is_upper(c);
}

size_t
gb__statsd_name(char *out, const char *prefix, size_t prefix_len, const char *scope,
    size_t scope_len)
{
	size_t n = prefix_len, start = prefix_len;
	bool need_letter = prefix_len == 0;
	char last = '.';

	memcpy(out, prefix, prefix_len);
	for (size_t i = 0; i < scope_len && n < GB_STATSD_NAME_MAX; i++) {
		unsigned char c = (unsigned char)scope[i];
		char w;

		if (is_letter(c))
			w = (char)c;
		else if (need_letter)
			continue;
		else if (is_digit(c) || c == '_')
			w = (char)c;
		else if (c == '.')
			w = '.';
		else
			w = '~'; /* a replaced byte: '_', one per run */
		if (w == '.' && last == '.')
			continue;
		if (w == '~') {
			if (last == '~')
				continue;
			out[n++] = '_';
		} else {
			out[n++] = w;
		}
		last = w;
		need_letter = false;
	}
	while (n > start && out[n - 1] == '.')
		n--;
	if (n == start) {
		static const char unnamed[] = "unnamed";
		size_t room = GB_STATSD_NAME_MAX - n;
		size_t k = sizeof(unnamed) - 1 < room ? sizeof(unnamed) - 1 : room;

		memcpy(out + n, unnamed, k);
		n += k;
	}
	return n;
}

int
gb__statsd_prefix_check(const char *prefix, char *err, size_t errlen)
{
	size_t len = strlen(prefix);
	char buf[GB_STATSD_NAME_MAX + 1];

	if (len == 0)
		return 0;
	if (len > GB_STATSD_PREFIX_MAX) {
		snprintf(err, errlen, "prefix \"%.40s...\" is longer than %d bytes", prefix,
		    GB_STATSD_PREFIX_MAX);
		return -1;
	}
	/* a valid prefix is one that sanitising leaves alone (bar its final dot) */
	size_t body = prefix[len - 1] == '.' ? len - 1 : len;
	if (body == 0 || gb__statsd_name(buf, "", 0, prefix, body) != body ||
	    memcmp(buf, prefix, body) != 0) {
		snprintf(err, errlen,
		    "prefix \"%s\" is not a metric name (letter first, then [A-Za-z0-9_.], "
		    "no empty segment, optionally ending in '.')", prefix);
		return -1;
	}
	return 0;
}

/* Maps one ASCII tag byte: the allowed byte, lowered, or 0 when it must be replaced. */
static char
tag_byte(unsigned char c, bool in_key)
{
	if (is_upper(c))
		return (char)(c - 'A' + 'a');
	if (is_lower(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '/')
		return (char)c;
	if (c == ':' && !in_key)
		return ':';
	return 0;
}

/* ---- UTF-8 letters: DataDog keeps Unicode letters in tags (lowered) ---- */

static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale;

static void
utf8_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Decodes the UTF-8 sequence at s[0, len) into *cp. Returns its length (2 to 4), or 0 when
 * it is not a valid, shortest-form sequence of a scalar value. */
static size_t
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 :
	    s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	uint32_t v;

	if (n == 0 || n > len)
		return 0;
	v = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

static size_t
utf8_encode(uint32_t v, char *out)
{
	if (v < 0x800) {
		out[0] = (char)(0xc0 | v >> 6);
		out[1] = (char)(0x80 | (v & 0x3f));
		return 2;
	}
	if (v < 0x10000) {
		out[0] = (char)(0xe0 | v >> 12);
		out[1] = (char)(0x80 | (v >> 6 & 0x3f));
		out[2] = (char)(0x80 | (v & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | v >> 18);
	out[1] = (char)(0x80 | (v >> 12 & 0x3f));
	out[2] = (char)(0x80 | (v >> 6 & 0x3f));
	out[3] = (char)(0x80 | (v & 0x3f));
	return 4;
}

/* A Unicode letter (lowered) at s[0, len): its length in s, with the lowered letter written
 * into low (*low_len bytes). 0 when the bytes there are not a valid UTF-8 letter (invalid
 * sequences, C1 controls, symbols, punctuation: replaced). */
static size_t
utf8_letter(const unsigned char *s, size_t len, char low[4], size_t *low_len)
{
	uint32_t cp;
	size_t n = utf8_decode(s, len, &cp);
	wint_t lw;

	pthread_once(&utf8_once, utf8_init);
	if (n == 0 || utf8_locale == (locale_t)0 || !iswalpha_l((wint_t)cp, utf8_locale))
		return 0;
	lw = towlower_l((wint_t)cp, utf8_locale);
	if (lw < 0x80 || lw > 0x10ffff || (lw >= 0xd800 && lw <= 0xdfff))
		lw = (wint_t)cp;
	*low_len = utf8_encode((uint32_t)lw, low);
	return n;
}

/* Appends the sanitised bytes of s to out[*n, limit), a run of replaced bytes as one '_'. A
 * key starts at its first letter. */
static void
tag_part(char *out, size_t *n, size_t limit, const char *s, size_t len, bool in_key)
{
	bool replaced = false;
	size_t i = 0;

	while (i < len && *n < limit) {
		const unsigned char *c = (const unsigned char *)s + i;
		char low[4];
		size_t used = 1, low_len = 1;

		if (*c >= 0x80 && (used = utf8_letter(c, len - i, low, &low_len)) > 0) {
			if (*n + low_len > limit)
				return;
			memcpy(out + *n, low, low_len);
			*n += low_len;
			replaced = false;
			i += used;
			continue;
		}
		used = 1;
		if (*c >= 0x80) /* not a letter: skip the whole sequence, if it is one */
			while (i + used < len && (c[used] & 0xc0) == 0x80 && used < 4)
				used++;
		i += used;
		if (in_key && *n == 0 && !is_letter(*c))
			continue;
		low[0] = *c < 0x80 ? tag_byte(*c, in_key) : 0;
		if (low[0] == 0) {
			if (replaced)
				continue;
			low[0] = '_';
			replaced = true;
		} else {
			replaced = false;
		}
		out[(*n)++] = low[0];
	}
}

size_t
gb__statsd_tag(char *out, const char *key, size_t key_len, const char *value,
    size_t value_len, size_t *key_len_out)
{
	size_t n = 0, k;

	tag_part(out, &n, GB_STATSD_TAG_MAX, key, key_len, true);
	if (n == 0)
		return 0;
	k = n;
	if (value != NULL && n + 1 < GB_STATSD_TAG_MAX) {
		out[n++] = ':';
		tag_part(out, &n, GB_STATSD_TAG_MAX, value, value_len, false);
		while (n > k && out[n - 1] == ':')
			n--;
	}
	if (key_len_out != NULL)
		*key_len_out = k;
	return n;
}

/* "00" to "99": two digits a division. */
static const char pairs[201] =
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243"
    "4445464748495051525354555657585960616263646566676869707172737475767778798081828384858687"
    "888990919293949596979899";

/* Writes the last width decimal digits of v (leading zeros kept) into out[0, width). */
static void
put_digits(char *out, uint64_t v, size_t width)
{
	while (width >= 2) {
		const char *d = pairs + v % 100 * 2;

		v /= 100;
		out[--width] = d[1];
		out[--width] = d[0];
	}
	if (width == 1)
		out[0] = (char)('0' + v % 10);
}

size_t
gb__statsd_u64(char *out, uint64_t v)
{
	size_t n = 1;

	for (uint64_t t = v; t >= 10; t /= 10)
		n++;
	put_digits(out, v, n);
	return n;
}

size_t
gb__statsd_value(char *out, double v)
{
	double a = fabs(v);
	size_t n = 0;

	if (a == 0) {
		out[0] = '0';
		return 1;
	}
	if (a < 1e-4 || a >= 1e15) {
		int k = snprintf(out, GB_STATSD_VALUE_MAX, "%.15g", v);
		return k > 0 ? (size_t)k : 0;
	}
	if (v < 0)
		out[n++] = '-';
	uint64_t ip = (uint64_t)a;
	uint64_t frac = (uint64_t)((a - (double)ip) * 1e9 + 0.5);
	if (frac >= 1000000000u) {
		ip++;
		frac -= 1000000000u;
	}
	n += gb__statsd_u64(out + n, ip);
	if (frac != 0) {
		size_t digits = 9;

		/* the trailing zeros go: at most 8 of them, as 4 + 4 + 2 + 1 (constant divisors,
		 * which the compiler turns into multiplications) */
		if (frac % 10000 == 0) {
			frac /= 10000;
			digits -= 4;
		}
		if (frac % 10000 == 0) {
			frac /= 10000;
			digits -= 4;
		}
		if (frac % 100 == 0) {
			frac /= 100;
			digits -= 2;
		}
		if (frac % 10 == 0) {
			frac /= 10;
			digits--;
		}
		out[n++] = '.';
		put_digits(out + n, frac, digits);
		n += digits;
	}
	return n;
}

static const char *const timing_names[] = { "ms", "h", "d" };

int
gb__statsd_timing_parse(const char *t, enum gb_statsd_timing *out)
{
	for (size_t i = 0; i < sizeof(timing_names) / sizeof(timing_names[0]); i++) {
		if (strcmp(t, timing_names[i]) == 0) {
			*out = (enum gb_statsd_timing)i;
			return 0;
		}
	}
	return -1;
}

const char *
gb__statsd_timing_name(enum gb_statsd_timing t)
{
	return timing_names[(unsigned)t <= GB_STATSD_TIMING_D ? t : GB_STATSD_TIMING_MS];
}

/* ---- global tags ---- */

/* The global tags of cfg, sanitised and joined with commas, into out (room for
 * GB_STATSD_GLOBAL_TAGS_MAX bytes). Returns the length, or -1 with err naming the tag where
 * they grow too long. */
long
gb__statsd_join_globals(const gb_statsd_config *cfg, char *out, char *err, size_t errlen)
{
	char tag[GB_STATSD_TAG_MAX + 1];
	size_t len = 0;

	for (size_t i = 0; i < cfg->n_tags; i++) {
		const char *t = cfg->tags[i], *colon = strchr(t, ':');
		size_t n = colon ? gb__statsd_tag(tag, t, (size_t)(colon - t), colon + 1,
		    strlen(colon + 1), NULL) : gb__statsd_tag(tag, t, strlen(t), NULL, 0, NULL);

		if (n == 0)
			continue;
		if (len + 1 + n > GB_STATSD_GLOBAL_TAGS_MAX) {
			snprintf(err, errlen, "global tags are longer than %d bytes at \"%.60s\"",
			    GB_STATSD_GLOBAL_TAGS_MAX, t);
			return -1;
		}
		if (len > 0)
			out[len++] = ',';
		memcpy(out + len, tag, n);
		len += n;
	}
	return (long)len;
}

/* Whether global tags of len bytes leave a line of a max-byte datagram room for a name and
 * two tags of its own. */
bool
gb__statsd_globals_fit(size_t max, size_t len)
{
	return max >= GB_STATSD_NAME_MAX + 1 + GB_STATSD_VALUE_MAX + 6 + len + 1 +
	    2 * GB_STATSD_TAG_MAX;
}

int
gb__statsd_tags_check(const gb_statsd_config *cfg, char *err, size_t errlen)
{
	char joined[GB_STATSD_GLOBAL_TAGS_MAX];
	long n = gb__statsd_join_globals(cfg, joined, err, errlen);
	size_t max = cfg->target == NULL ? cfg->max_datagram :
	    cfg->target->kind != GB_STATSD_UDP ? GB_STATSD_UNIX_MAX : GB_STATSD_UDP_MAX;

	if (n < 0)
		return -1;
	if (cfg->max_datagram != 0 && cfg->max_datagram < max)
		max = cfg->max_datagram;
	if (!gb__statsd_globals_fit(max, (size_t)n)) {
		snprintf(err, errlen, "global tags (%ld bytes) leave too little room in a %zu-byte "
		    "datagram", n, max);
		return -1;
	}
	return 0;
}
