/*
 * telemetry_internal.h - what libgbatch's own modules need from the telemetry context beyond
 * the public API (not a public API): timings measured elsewhere, such as one job of many
 * interleaved in a single thread, where a begin/end scope cannot stay open.
 */
#ifndef GBATCH_PROCESSOR_TELEMETRY_INTERNAL_H
#define GBATCH_PROCESSOR_TELEMETRY_INTERNAL_H

#include <stddef.h>

#include <gbatch/telemetry.h>

/* Distinct paths whose call counts a context keeps; later new paths report call_count 0. */
#define GB_TELE_MAX_PATHS 65536

/* Reports a timing of `seconds` under "<current scope path>.<name>" (or name at top level),
 * with n metadata pairs (borrowed during the call), as if a scope had lasted that long. */
void gb__tele_timing(gb_tele *t, const char *name, double seconds, const gb_kv *meta, size_t n);
/* Reports one sample of a distribution that is not a time (a token count) under "<current
 * scope path>.<name>": record_metric with metric_type "histogram". */
void gb__tele_histogram(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n);

#endif
