/*
 * text.h - untrusted text made safe for a terminal: what a terminal would act on (C0 controls,
 * DEL, the C1 controls U+0080..U+009F, bytes that are not UTF-8) escaped as \xNN, and JSON
 * text with DEL and C1 written as \u escapes (the same value).
 */
#ifndef GBATCH_COMMON_TEXT_H
#define GBATCH_COMMON_TEXT_H

#include <stddef.h>

#define GB_TEXT_BACKSLASH 1u  /* escape '\' too, so that an escape cannot be forged */
#define GB_TEXT_KEEP_LINES 2u /* leave '\n' and '\t' as they are */

/* The length of the character at s (len > 0 bytes) when it may be shown as it is: 1 for
 * printable ASCII, 2 to 4 for a valid UTF-8 sequence that is not a C1 control; 0 when the byte
 * s[0] must be escaped. */
size_t gb__text_printable(const char *s, size_t len);
/* Copies the len bytes of s into out (outlen > 0 bytes, always NUL-terminated, cut before an
 * escape that does not fit), every byte gb__text_printable refuses written as \xNN (and as
 * flags say). Returns the length written. */
size_t gb__text_escape(char *out, size_t outlen, const char *s, size_t len, unsigned flags);
/* The JSON text json (as jansson writes it: valid UTF-8) with DEL and the C1 controls written
 * as \u007f and \u0080..\u009f: the same JSON value, safe on a terminal. A new string (the
 * caller frees it), NULL when out of memory. */
char *gb__json_term_safe(const char *json);

#endif
