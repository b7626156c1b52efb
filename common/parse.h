/*
 * parse.h - strict parsing of the numbers users type on command lines and in the
 * environment: durations ("250ms", "2s", "1.5s", "1m") and bounded integers. Garbage,
 * overflow, negatives and empty text are refused with a message naming the bad text, written
 * into err (always NUL-terminated).
 */
#ifndef GBATCH_COMMON_PARSE_H
#define GBATCH_COMMON_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Duration with a unit: ns, us, ms, s, m, h; a decimal fraction is allowed ("1.5s");
 * a bare "0" is zero. Result in nanoseconds. Returns 0, or -1 with err filled. */
int gb__parse_duration(const char *text, uint64_t *ns, char *err, size_t errlen);

/* Whole decimal number in [min, max]. Returns 0, or -1 with err filled. */
int gb__parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen);

#endif
