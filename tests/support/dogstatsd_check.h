/*
 * dogstatsd_check.h - a strict checker of DogStatsD datagrams, our own reading of the grammar
 * (DESIGN.md §5), stricter than any server: the tests run everything the collector sends
 * through it, so a line a lenient server would quietly accept still fails a test.
 *
 *   datagram = 1*(line "\n")                          at most the size limit
 *   line     = name ":" values "|" type *("|" field)
 *   field    = "@" rate / "#" tag *("," tag) / "T" ts      each at most once, in any order
 *   name     = letter *199([A-Za-z0-9_] / "." not after "." and not last)
 *   values   = value / *":" value 1*(1*":" value) *":"    DogStatsD 1.1 packed values, as
 *              the agent reads them (empty ones skipped, at least one; never on a set)
 *   value    = ["-"] digits ["." digits] [("e"/"E") ["+"/"-"] digits], finite; >= 0 for ms
 *   ts       = ["+"/"-"] digits, within int64 and >= 1 (the agent's strconv.ParseInt)
 *   type     = "c" / "g" / "ms" / "h" / "d" / "s"
 *   rate     = "0." digits / "1" / "1.0"
 *   tag      = lower *199([a-z0-9_./-] / ":"), the part before the first ":" without ":"
 *              and not ending in ":"
 */
#ifndef GBATCH_TESTS_DOGSTATSD_CHECK_H
#define GBATCH_TESTS_DOGSTATSD_CHECK_H

#include <stddef.h>

/* Checks one line without its "\n". Returns 0, or -1 with why (a static string) set. */
int dsd_check_line(const char *line, size_t len, const char **why);

/* Checks a datagram of at most max bytes. Returns the number of lines, or -1 with why set;
 * *bad_line (may be NULL) gets the offset of the offending line. */
long dsd_check_datagram(const char *d, size_t len, size_t max, const char **why, size_t *bad_line);

#endif
