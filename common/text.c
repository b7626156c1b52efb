/*
 * text.c - untrusted bytes shown on a terminal: controls (C0, DEL, C1) and bytes that are not
 * UTF-8 escaped, valid UTF-8 text kept as it is; JSON text with DEL and C1 as \u escapes.
 */
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

size_t
gb__text_printable(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	if (s[0] < 0x80)
		return s[0] >= 0x20 && s[0] != 0x7f ? 1 : 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!cont(s[i]))
			return 0;
	if (n == 2 && s[0] == 0xc2 && s[1] <= 0x9f) /* U+0080..U+009F: C1 controls */
		return 0;
	if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) ||  /* overlong */
	    (n == 3 && s[0] == 0xed && s[1] > 0x9f) ||  /* surrogates */
	    (n == 4 && s[0] == 0xf0 && s[1] < 0x90) ||  /* overlong */
	    (n == 4 && s[0] == 0xf4 && s[1] > 0x8f))    /* above U+10FFFF */
		return 0;
	return n;
}

size_t
gb__text_escape(char *out, size_t outlen, const char *s, size_t len, unsigned flags)
{
	size_t o = 0, i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n = gb__text_printable(s + i, len - i);

		if ((flags & GB_TEXT_BACKSLASH) && c == '\\')
			n = 0;
		if ((flags & GB_TEXT_KEEP_LINES) && (c == '\n' || c == '\t'))
			n = 1;
		if (n > 0) {
			if (o + n >= outlen)
				break;
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		if (o + 4 >= outlen)
			break;
		snprintf(out + o, 5, "\\x%02x", c);
		o += 4;
		i++;
	}
	out[o] = '\0';
	return o;
}

char *
gb__json_term_safe(const char *json)
{
	const unsigned char *s = (const unsigned char *)json;
	size_t len = strlen(json), extra = 0, o = 0;
	char *out;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == 0x7f)
			extra += 5; /* one byte becomes \u007f */
		else if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
			extra += 4; /* two bytes become \u0080..\u009f */
	}
	if ((out = malloc(len + extra + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned cp;
		if (s[i] == 0x7f)
			cp = 0x7f;
		else if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
			cp = s[++i];
		else {
			out[o++] = (char)s[i];
			continue;
		}
		snprintf(out + o, 7, "\\u%04x", cp);
		o += 6;
	}
	out[o] = '\0';
	return out;
}
