/*
 * gb_limits.h - the limits more than one file must agree on, in one place. Not a public API.
 */
#ifndef GBATCH_COMMON_GB_LIMITS_H
#define GBATCH_COMMON_GB_LIMITS_H

/* Questions in one question set: a --questions file or a jobs line. */
#define GB_MAX_QUESTIONS 10000
/* Gemini refuses inline requests above 20 MB; base64 grows data by a third. */
#define GB_MAX_INLINE_BYTES (15u << 20)
/* A file read into memory: a content, questions, schema or jobs-line content file. */
#define GB_MAX_FILE_BYTES (64u << 20)

#endif
