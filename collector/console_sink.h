/*
 * console_sink.h - the collector's console output, in the seed's two shapes: `lines` prints
 * each record as it arrives (PrintReporter: "[TIMING] <indent>scope: duration=0.1234s (...)"),
 * `summary` keeps per-scope figures and prints the scope tree on demand (SIGUSR1, exit).
 * Output is queued (1 MiB at most) and written only as fast as the reader takes it: a slow or
 * stalled reader costs whole lines, counted, and never stalls the caller.
 */
#ifndef GBATCH_COLLECTOR_CONSOLE_SINK_H
#define GBATCH_COLLECTOR_CONSOLE_SINK_H

#include <stdint.h>

#include "record.h"

enum gb_console_mode {
	GB_CONSOLE_OFF = 0,
	GB_CONSOLE_LINES = 1,
	GB_CONSOLE_SUMMARY = 2,
};

/* Parses "lines", "summary" or "off". Returns 0, or -1 for anything else. */
int gb__console_parse_mode(const char *text, enum gb_console_mode *out);

typedef struct gb_console_sink gb_console_sink;

/* The scopes a summary tracks by default: a tree longer than this is not read on a console,
 * and each holds at most a 2.6 KiB sketch (sketch.h) and a 512-byte name: about 34 MiB in all. */
#define GB_CONSOLE_MAX_SCOPES 10000

/* A sink writing to fd (borrowed, not closed; SIGPIPE must be ignored, as the collector does,
 * for a reader that goes away to be a counted loss). In summary mode it tracks at most
 * max_scopes scopes (0 = GB_CONSOLE_MAX_SCOPES; timings and metrics together, first seen
 * first), each timing scope with a fixed-size sketch for the percentiles. NULL when out of
 * memory. */
gb_console_sink *gb__console_new(enum gb_console_mode mode, int fd, size_t max_scopes);
void gb__console_free(gb_console_sink *c);

/* Takes one record: lines mode queues its line (bytes that are not printable are escaped as
 * \xNN; a line over 32 KiB is cut and ends in "..."), writing without waiting once 64 KiB are
 * queued (with the queue full and a reader that had no room, the line is counted as dropped
 * without being formatted); summary mode folds it into its scope, or counts it (see
 * gb__console_summary_capped) when its scope is new and max_scopes are tracked already.
 * Allocates only for a scope seen for the first time. */
void gb__console_record(gb_console_sink *c, const gb_record *r);

/* Summary mode: queues the report of everything seen so far (the figures are kept; p50 and
 * p95 are nearest-rank percentiles of every value, within the sketch's 3.125%; a last line
 * counts the records of scopes past the cap, if any); a line
 * that finds the queue full waits up to 1 s for the reader (once: a reader that stalls is not
 * waited for again until it takes something). Lines mode: nothing. Then writes without
 * waiting. */
void gb__console_summary(gb_console_sink *c);

/* Writes what is queued, waiting up to wait_ns for a reader that has no room (0: only what
 * it takes now). What is left stays queued. */
void gb__console_flush(gb_console_sink *c, uint64_t wait_ns);

/* The last flush: as gb__console_flush, then what is still queued is dropped, counted. */
void gb__console_finish(gb_console_sink *c, uint64_t wait_ns);

/* Lines lost so far: the queue was full, or the descriptor failed (the reader is gone). */
uint64_t gb__console_lines_dropped(const gb_console_sink *c);

/* Summary mode: records not summarised so far because their scope was past max_scopes. */
uint64_t gb__console_summary_capped(const gb_console_sink *c);

#endif
