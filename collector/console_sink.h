/*
 * console_sink.h - the collector's console output, in the seed's two shapes: `lines` prints
 * each record as it arrives (PrintReporter: "[TIMING] <indent>scope: duration=0.1234s (...)"),
 * `summary` keeps per-scope figures and prints the scope tree on demand (SIGUSR1, exit).
 */
#ifndef GBATCH_COLLECTOR_CONSOLE_SINK_H
#define GBATCH_COLLECTOR_CONSOLE_SINK_H

#include <stdio.h>

#include "record.h"

enum gb_console_mode {
	GB_CONSOLE_OFF = 0,
	GB_CONSOLE_LINES = 1,
	GB_CONSOLE_SUMMARY = 2,
};

/* Parses "lines", "summary" or "off". Returns 0, or -1 for anything else. */
int gb__console_parse_mode(const char *text, enum gb_console_mode *out);

typedef struct gb_console_sink gb_console_sink;

/* A sink writing to out (borrowed, not closed). In summary mode it keeps the last
 * max_samples values per scope for the percentiles (0 = 1000). NULL when out of memory. */
gb_console_sink *gb__console_new(enum gb_console_mode mode, FILE *out, size_t max_samples);
void gb__console_free(gb_console_sink *c);

/* Takes one record: lines mode prints it (bytes that are not printable are escaped as \xNN),
 * summary mode folds it into its scope. Allocates only for a scope seen for the first time. */
void gb__console_record(gb_console_sink *c, const gb_record *r);

/* Summary mode: prints the report of everything seen so far (the figures are kept). Lines
 * mode: nothing. Then flushes out. */
void gb__console_summary(gb_console_sink *c);

/* Flushes out. */
void gb__console_flush(gb_console_sink *c);

#endif
