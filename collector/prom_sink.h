/*
 * prom_sink.h - the collector's Prometheus sink: every record updates a series (counters
 * summed for the whole run, gauges at their last value, timings and token counts in
 * histograms) under names and labels that follow Prometheus' rules, bounded by the same caps
 * as DogStatsD (--max-names, --max-tag-values, --max-contexts). The drain thread owns the
 * series; at each flush it copies them into a snapshot that the HTTP thread (prom_http.c)
 * renders as the text exposition format 0.0.4, so a scrape never waits on the drain.
 */
#ifndef GBATCH_COLLECTOR_PROM_SINK_H
#define GBATCH_COLLECTOR_PROM_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define GB_PROM_MAX_BUCKETS 64
#define GB_PROM_LABEL_MAX 200        /* a label name, and a label value in bytes (unescaped) */
#define GB_PROM_NAME_MAX 220         /* a metric name with its suffix */
#define GB_PROM_DEFAULT_EXPIRE_NS (300ull * 1000000000ull)

/* ---- names, labels, values (prom_format.c, exposed for tests) ---- */

/* Writes a label name made from key[0, len) into out (room for GB_PROM_LABEL_MAX + 1):
 * bytes outside [A-Za-z0-9_] become '_' (a run of them one '_'), a leading digit gets a '_'
 * in front, cut at GB_PROM_LABEL_MAX. Returns the length, 0 when nothing is left. Not
 * NUL-terminated. Reserved names (see gb__prom_label_reserved) are the caller's business. */
size_t gb__prom_label_name(char *out, const char *key, size_t len);

/* True for label names a producer may not set as such: "le", "job", "instance", "depth",
 * "parent_scope" and anything starting with "__". */
bool gb__prom_label_reserved(const char *name, size_t len);

/* Writes value[0, len) escaped for a label value into out (room for 2 * GB_PROM_LABEL_MAX
 * bytes): '\\' -> "\\\\", '"' -> "\\\"", newline -> "\\n"; other control bytes and invalid
 * UTF-8 become '_'; cut at GB_PROM_LABEL_MAX input bytes on a character boundary. Returns the
 * length written. */
size_t gb__prom_label_value(char *out, const char *value, size_t len);

/* Formats v as the exposition format reads it: the shortest decimal that reads back as v,
 * "+Inf", "-Inf" or "NaN". out has room for 32 bytes. Returns the length. */
size_t gb__prom_number(char *out, double v);

/* Parses a --prometheus-buckets list: comma-separated durations (parse.h; a bare number is
 * seconds), strictly increasing, at least one, at most GB_PROM_MAX_BUCKETS, each > 0. Bounds
 * in seconds. Returns the count, or -1 with err naming the list and the bad item. */
int gb__prom_parse_buckets(const char *text, double *bounds, char *err, size_t errlen);

/* The default timing buckets, seconds: 5 ms to 120 s. */
extern const double gb__prom_default_buckets[];
extern const size_t gb__prom_n_default_buckets;

/* ---- the sink (prom_sink.c) ---- */

typedef struct gb_prom_sink gb_prom_sink;
typedef struct gb_prom_snap gb_prom_snap;

typedef struct gb_prom_config {
	const char *prefix;           /* as --prefix (NULL: "gbatch."); dots become '_' */
	enum { GB_PROM_NAMES_LEAF = 0, GB_PROM_NAMES_PATH = 1 } names;
	const char *const *tags;      /* global tags "key:value": labels of every series */
	size_t n_tags;
	const char *const *drop_tags; /* tag keys never made labels (compared after sanitising) */
	size_t n_drop_tags;
	size_t max_tag_values;        /* as --max-tag-values; 0 = no cap */
	size_t max_names;             /* as --max-names; 0 = no cap */
	size_t max_contexts;          /* series held at most (own ones not counted); 0 = no cap */
	const double *buckets;        /* timing bucket bounds, seconds; NULL: the default */
	size_t n_buckets;
	uint64_t expire_ns;           /* a series not updated for this long is dropped; 0 never */
} gb_prom_config;

typedef struct gb_prom_stats {
	uint64_t values_rejected;   /* NaN, infinities, negative timings or counter increments,
	                               names another type's family holds */
	uint64_t tags_dropped;      /* a label name seen twice, pairs a producer could not fit */
	uint64_t tag_values_capped; /* values replaced by "other" */
	uint64_t tags_renamed;      /* reserved label names sent as user_<name> */
	uint64_t names_capped;      /* records counted under <prefix>other */
	uint64_t contexts_dropped;  /* values of new series past max_contexts */
	uint64_t series_expired;
	uint64_t series;            /* held now, own ones not counted */
} gb_prom_stats;

/* The collector's own figures (gbatch_collector_*), set by the dispatcher. */
enum gb_prom_own {
	GB_PROM_OWN_RECORDS_READ, GB_PROM_OWN_RECORDS_INVALID, GB_PROM_OWN_PACKETS_SENT,
	GB_PROM_OWN_BYTES_SENT, GB_PROM_OWN_SEND_ERRORS, GB_PROM_OWN_VALUES_REJECTED,
	GB_PROM_OWN_TAGS_DROPPED, GB_PROM_OWN_TAG_VALUES_CAPPED, GB_PROM_OWN_TAGS_RENAMED,
	GB_PROM_OWN_NAMES_CAPPED, GB_PROM_OWN_CONTEXTS_DROPPED, GB_PROM_OWN_CONSOLE_LINES_DROPPED,
	GB_PROM_OWN_CONSOLE_SUMMARY_CAPPED, GB_PROM_OWN_SERIES, GB_PROM_OWN_SERIES_EXPIRED,
	GB_PROM_OWN_RECORDS_DROPPED, GB_PROM_OWN_RECORDS_UNBLOCKED, GB_PROM_OWN_RING_LAG_BYTES,
	GB_PROM_OWN_COUNT
};

/* A sink, or NULL with err saying why (a bad prefix, tag or bucket list, out of memory). */
gb_prom_sink *gb__prom_new(const gb_prom_config *cfg, char *err, size_t errlen);
void gb__prom_free(gb_prom_sink *s);

/* Takes one record into its series. now_ns (monotonic) dates the update, for expiry. */
void gb__prom_record(gb_prom_sink *s, const gb_record *r, uint64_t now_ns);

/* Sets one of the collector's own figures (counters take the total since the start). ring
 * names the ring for the per-ring ones and is NULL for the others. */
void gb__prom_own(gb_prom_sink *s, enum gb_prom_own which, const char *ring, double v);

/* Drops the series not updated for expire_ns before now_ns. */
void gb__prom_expire(gb_prom_sink *s, uint64_t now_ns);

/* The counters so far. */
void gb__prom_get_stats(const gb_prom_sink *s, gb_prom_stats *out);

/* Copies every family and series into snap (an empty one, or one used before: its memory is
 * reused). Returns 0, or -1 when memory ran out (snap then holds nothing). */
int gb__prom_fill(gb_prom_sink *s, gb_prom_snap *snap);

/* ---- snapshots (prom_format.c) ---- */

gb_prom_snap *gb__prom_snap_new(void);
void gb__prom_snap_free(gb_prom_snap *snap);

/* Renders snap as the text exposition format 0.0.4 into a malloc'ed buffer (*len bytes, not
 * NUL-terminated) that the caller frees. NULL when memory ran out. */
char *gb__prom_render(const gb_prom_snap *snap, size_t *len);

#endif
