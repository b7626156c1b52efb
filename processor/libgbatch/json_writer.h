/*
 * json_writer.h - compact JSON text written straight into a growing buffer (internal, not a
 * public API): byte for byte what jansson's json_dumps(JSON_COMPACT) makes of the same values,
 * without building them first. The request of every Gemini call and every result line go
 * through here; building a jansson tree and dumping it cost ten times as much.
 */
#ifndef GBATCH_LIBGBATCH_JSON_WRITER_H
#define GBATCH_LIBGBATCH_JSON_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A text being written. Any failure (out of memory, a string that is not UTF-8, a real that
 * is not finite: what jansson would refuse) is remembered, and gb__jw_finish reports it. */
typedef struct gb_jw {
	char *s;
	size_t len, cap;
	int failed;
} gb_jw;

/* Starts an empty text with room for about hint bytes (caller-owned struct). */
void gb__jw_init(gb_jw *w, size_t hint);
/* The text (the caller frees it), or NULL when anything failed (everything freed). Either
 * way w is empty after. */
char *gb__jw_finish(gb_jw *w, size_t *len);
/* Drops the text. */
void gb__jw_fini(gb_jw *w);

/* Appends n bytes as they are: punctuation and keys the caller knows need no escape. */
void gb__jw_raw(gb_jw *w, const char *s, size_t n);
/* Appends a NUL-terminated literal as it is. */
void gb__jw_lit(gb_jw *w, const char *s);
/* Appends the n bytes of s as a JSON string, escaped as jansson escapes it; fails when they
 * are not UTF-8 (jansson's rules: no overlong forms, no surrogates, nothing past U+10FFFF). */
void gb__jw_strn(gb_jw *w, const char *s, size_t n);
/* The same for a NUL-terminated string; NULL fails (as jansson's "s" does). */
void gb__jw_str(gb_jw *w, const char *s);
/* A NUL-terminated string, or null when s is NULL. */
void gb__jw_str_or_null(gb_jw *w, const char *s);
void gb__jw_int(gb_jw *w, long long v);
/* A real as jansson writes one at its default precision (%.17g, always with a '.' or an
 * exponent); fails when v is not finite, which json_real refuses. */
void gb__jw_real(gb_jw *w, double v);
void gb__jw_bool(gb_jw *w, int v);
/* Any jansson value, dumped compact with jansson's flags (JSON_COMPACT and JSON_ENCODE_ANY
 * are added; e.g. JSON_REAL_PRECISION(15)). NULL fails. */
void gb__jw_value(gb_jw *w, const json_t *v, size_t flags);

/* Whether the n bytes of s are UTF-8 by jansson's rules (NUL bytes included). */
int gb__utf8_valid(const char *s, size_t n);

#endif
