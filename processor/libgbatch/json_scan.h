/*
 * json_scan.h - reading a JSON text in place (internal, not a public API): a validator that
 * says whether jansson would surely accept a document, and, in a document it passed, members,
 * elements and strings found and decoded without building anything. For the replies of every
 * Gemini call; anything it is not sure of is left to jansson, whose messages the user sees.
 */
#ifndef GBATCH_LIBGBATCH_JSON_SCAN_H
#define GBATCH_LIBGBATCH_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* A value in the text: [p, end). */
typedef struct gb_jspan {
	const char *p, *end;
} gb_jspan;

/* 1 when the n bytes at s are one JSON object, with nothing but blanks around it, that
 * json_loadb(s, n, 0) accepts, with its strings free of escaped NULs, lone surrogates, raw
 * control characters and bytes that are not UTF-8, its numbers within range, no key written
 * with escapes and at most 64 levels deep; 0 otherwise (it may still be valid: ask jansson).
 * *root gets the object. */
int gb__jscan_document(const char *s, size_t n, gb_jspan *root);

/* In the object obj (of a document that passed), the value of the last member named name,
 * as jansson keeps the last: 1 with *v set, 0 when there is none or obj is not an object. */
int gb__jscan_member(gb_jspan obj, const char *name, gb_jspan *v);
/* The same for the n names at once, in one walk: v[i] gets the value of names[i], or
 * {NULL, NULL}. Returns how many were found. */
int gb__jscan_members(gb_jspan obj, const char *const *names, size_t n, gb_jspan *v);
/* The element after *el in the array arr, or its first when el->p is NULL: 1 with *el set,
 * 0 at the end or when arr is not an array. */
int gb__jscan_next(gb_jspan arr, gb_jspan *el);

/* What a value is, by its first byte: '"' string, '{' object, '[' array, 't' true, 'f'
 * false, 'n' null, '0' a number. */
char gb__jscan_kind(gb_jspan v);
/* 1 with *out set when v is an integer (no fraction, no exponent) of int64_t, else 0. */
int gb__jscan_int(gb_jspan v, int64_t *out);
/* The decoded length of the string v. */
size_t gb__jscan_strlen(gb_jspan v);
/* Decodes the string v into out (room for gb__jscan_strlen(v) bytes, not terminated);
 * returns the bytes written. */
size_t gb__jscan_str(gb_jspan v, char *out);

#endif
