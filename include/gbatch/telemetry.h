/*
 * gbatch/telemetry.h - time every step of a batch job through a telemetry context with
 * pluggable, duck-typed reporters (the C face of gemini-batch's TelemetryContext).
 *
 * A context holds any number of reporters. Scopes nest per thread and join their names with
 * dots ("batch.total_processing.batch.attempt"); every timing and metric carries its depth,
 * its parent scope (NULL at top level), a call count and the caller's key/value metadata.
 * When telemetry is off every call goes to one shared no-op context and costs next to nothing.
 */
#ifndef GBATCH_TELEMETRY_H
#define GBATCH_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef GB_API
#define GB_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One metadata pair. Both strings are borrowed for the duration of the call. */
typedef struct gb_kv {
	const char *key;
	const char *value;
} gb_kv;

/* What a reporter receives beside the scope name and the value. Valid only during the call. */
typedef struct gb_tele_meta {
	int depth;                /* 0 at top level */
	const char *parent_scope; /* full path of the enclosing scope; NULL at top level */
	unsigned call_count;      /* how many times this scope path has been recorded, this one
	                             included; 0 for paths new after a context has counted
	                             65 536 distinct ones (its table is bounded) */
	const char *metric_type;  /* "counter" (gb_tele_count), "gauge" (gb_tele_gauge),
	                             "histogram" (libgbatch's own token counts), else NULL */
	const gb_kv *extra;       /* the caller's metadata, in the order given */
	size_t n_extra;
} gb_tele_meta;

/* A reporter: "duck typed", so either callback may be NULL. A non-zero return is a failure:
 * logged once per reporter, never passed on to the caller, and the other reporters still run.
 * Callbacks may be called from any thread that records telemetry. */
typedef struct gb_reporter {
	void *self;
	int (*record_timing)(void *self, const char *scope, double seconds, const gb_tele_meta *m);
	int (*record_metric)(void *self, const char *scope, double value, const gb_tele_meta *m);
} gb_reporter;

typedef struct gb_tele gb_tele;

/* A scope in progress; lives on the caller's stack. Fields are private. */
typedef struct gb_scope {
	gb_tele *tele;     /* NULL when the context is off or the scope has ended */
	uint64_t start_ns; /* the tick clock at begin (tells this scope from a later one) */
	unsigned depth;    /* stack depth at begin, to catch out-of-order ends */
	int once;          /* GB_SCOPE's loop control */
} gb_scope;

#define GB_TELE_ENABLE 0x1u  /* on, whatever the environment says */
#define GB_TELE_DISABLE 0x2u /* off, whatever the environment says */

/* Creates a context over n reporters (the array is copied; each reporter's self is borrowed and
 * must outlive the context). Without flags it is on when GEMINI_TELEMETRY=1 or DEBUG=1 (read
 * once per process); otherwise it returns the shared no-op context. NULL only when out of memory. */
GB_API gb_tele *gb_tele_new(const gb_reporter *reporters, size_t n, unsigned flags);
/* Frees a context (a no-op for the shared no-op context and NULL). Scopes still open on other
 * threads must have ended. */
GB_API void gb_tele_free(gb_tele *t);
/* 1 when t records anything, 0 for the no-op context. */
GB_API int gb_tele_enabled(const gb_tele *t);

/* Starts scope `name` (borrowed during the call) nested in this thread's current scope, with n
 * metadata pairs (copied) that its timing will carry. A NULL or empty name is refused, as the
 * seed refuses it: the scope returned records nothing (ending it is harmless), and the first
 * refusal of the process is logged. Every other entry point taking a name (the metrics below,
 * GB_SCOPE) refuses it the same way. */
GB_API gb_scope gb_tele_begin(gb_tele *t, const char *name, const gb_kv *meta, size_t n);
/* Ends s and reports its duration in seconds to every reporter. Ending a scope that is not the
 * innermost one of this thread is a usage error: logged, and the scopes inside it are closed
 * unreported; never a crash. Ending twice is harmless. */
GB_API void gb_tele_end(gb_tele *t, gb_scope *s);

/* Reports a value under "<current scope path>.<name>" (or name at top level) to every
 * reporter's record_metric: plain metric (metric_type NULL), counter increment and gauge level. */
GB_API void gb_tele_metric(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n);
GB_API void gb_tele_count(gb_tele *t, const char *name, double inc, const gb_kv *meta, size_t n);
GB_API void gb_tele_gauge(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n);

/* Ends the scope when the block it guards is left in any way (the cleanup attribute):
 *     GB_SCOPE(t, "batch.api_call") { ... return x; ... }
 * GB_SCOPE is itself a one-pass loop: a break directly inside it leaves the guarded block
 * (ending the scope), not an enclosing loop. On the no-op context it costs a pointer compare:
 * the check is inline, before any call. */
GB_API void gb__tele_scope_cleanup(gb_scope *s);
/* The shared no-op context (internal: compare addresses only). */
GB_API extern struct gb_tele gb__tele_noop;

static inline gb_scope
gb__tele_scope_begin(gb_tele *t, const char *name)
{
	if (t == &gb__tele_noop || t == NULL) {
		gb_scope off = { NULL, 0, 0, 0 };
		return off;
	}
	return gb_tele_begin(t, name, NULL, 0);
}

static inline void
gb__tele_scope_exit(gb_scope *s)
{
	if (s->tele != NULL)
		gb__tele_scope_cleanup(s);
}

#define GB__CAT2(a, b) a##b
#define GB__CAT(a, b) GB__CAT2(a, b)
#define GB__SCOPE_AS(v, t, name)                                                         \
	for (gb_scope v __attribute__((cleanup(gb__tele_scope_exit))) =                      \
	         gb__tele_scope_begin((t), (name));                                          \
	     v.once == 0; v.once = 1)
#define GB_SCOPE(t, name) GB__SCOPE_AS(GB__CAT(gb__scope_, __COUNTER__), t, name)

/* ---- built-in reporters ---- */

/* Prints each record in gbatch's format to out (borrowed), one line each:
 *   [TIMING] <two spaces per depth>SCOPE: duration=S.SSSSs (depth=D[, parent_scope=P], call_count=N[, K=V]...)
 *   [METRIC] SCOPE: VALUE ([metric_type=T, ]depth=D[, parent_scope=P], call_count=N[, K=V]...)
 * parent_scope is left out at top level, metric_type for plain metrics; VALUE is %.15g; K=V
 * are the caller's metadata in order (one named like a built-in takes its place: see
 * gb_console_reporter_format). A failed write makes the callback return -1. */
GB_API gb_reporter gb_console_reporter(FILE *out);

/* The text formats of the built-in console and simple reporters. */
typedef enum gb_report_format {
	GB_REPORT_GBATCH = 0, /* gbatch's own, as above */
	GB_REPORT_SEED = 1    /* the seed's text, byte for byte (see each reporter) */
} gb_report_format;

/* gb_console_reporter in either format. GB_REPORT_SEED prints the line of the seed's
 * PrintReporter (examples/custom_telemetry_reporter.py), its metadata a Python dict:
 *   [TIMING] <two spaces per depth>SCOPE: duration=S.SSSSs (metadata: {'depth': D, 'call_count': D, 'parent_scope': 'P', K: V...})
 *   [METRIC] SCOPE: VALUE (metadata: {'depth': D, 'parent_scope': None, 'metric_type': 'counter', K: V...})
 * parent_scope is None at top level; metric_type is there for counters, gauges and histograms;
 * call_count is the seed's (its nesting count: equal to depth); a whole VALUE prints as an int,
 * another as Python prints a float; a caller's value spelled as an integer, True, False or
 * None prints bare, any other as a Python string literal. In both formats a caller's key named
 * like a built-in one (depth, parent_scope, call_count, metric_type) takes its place and
 * value: every key is printed once, the caller's value winning, as the seed's dict merge does. */
GB_API gb_reporter gb_console_reporter_format(FILE *out, gb_report_format format);

/* Keeps up to max_entries_per_scope values per scope path in memory (0 = 1000; the most recent
 * ones) and renders the seed's hierarchical report over them, each scope right before the
 * scopes nested in it and indented two spaces per depth:
 *   === Telemetry Report ===
 *   Timings:
 *     SCOPE: calls=N, avg=S.SSSSs, total=S.SSSSs
 *   Metrics:
 *     SCOPE: count=N, total=V
 * Thread-safe. */
typedef struct gb_simple_reporter gb_simple_reporter;
GB_API gb_simple_reporter *gb_simple_reporter_new(size_t max_entries_per_scope);
GB_API gb_reporter gb_simple_reporter_as_reporter(gb_simple_reporter *r);
/* The report as a NUL-terminated string the caller frees; NULL when out of memory. */
GB_API char *gb_simple_reporter_report(const gb_simple_reporter *r);
/* The report in either format, as gb_simple_reporter_report returns it. GB_REPORT_SEED is the
 * text the seed's SimpleReporter.print_report() writes (get_report() and a newline; "" when
 * nothing was recorded): scope paths split at every dot into a tree sorted by name,
 *   === Telemetry Report ===
 *   <empty line>
 *   <empty line>
 *   --- Timings ---
 *   batch:
 *     total_processing               | Calls: 1    | Avg: 0.0123s | Total: 0.0123s
 *   <empty line>
 *   --- Metrics ---
 *   batch.total_processing.batch_success     | Count: 1    | Total: 1
 * (the Metrics part only when there are metrics; totals with thousands separators). Where
 * the seed would lose rows (a scope that has its own timing and nested scopes: its dict keeps
 * only one of them), this report shows the scope's row and then its nested scopes beneath. */
GB_API char *gb_simple_reporter_report_format(const gb_simple_reporter *r,
    gb_report_format format);
GB_API void gb_simple_reporter_free(gb_simple_reporter *r);

/* Writes every record into the shared-memory ring `ring` (NULL: $GBATCH_RING, else "default")
 * for gbatch-collector. Never NULL but when out of memory: a ring that cannot be opened warns
 * once and its records are counted as dropped. Recording never blocks, and nothing that happens
 * to the segment can fail or kill the caller: it is backed when created (a full tmpfs is a
 * warning, not a SIGBUS); a thread checks it every 250 ms, and one found shrunk (truncated by
 * another process) is no longer touched, its records counted as dropped; one removed or
 * replaced is left for the segment now at the name (created if absent), with a warning. No
 * signal handler is installed: a record written in the moment between a truncation and that
 * check can still fault. */
typedef struct gb_shm_reporter gb_shm_reporter;
GB_API gb_shm_reporter *gb_shm_reporter_open(const char *ring);
GB_API gb_reporter gb_shm_reporter_as_reporter(gb_shm_reporter *r);
/* Records written into the ring, and records it could not write (ring full or not open, the
 * segment shrunk); their sum is every record the reporter was given. Records written into a
 * segment that was then removed and that no collector read move from written to dropped once
 * they are known to be lost (when no collector drains that segment and no other producer
 * writes into it, at the latest at close), with a warning naming the ring. */
GB_API uint64_t gb_shm_reporter_written(const gb_shm_reporter *r);
GB_API uint64_t gb_shm_reporter_dropped(const gb_shm_reporter *r);
/* Marks this producer detached and frees r. */
GB_API void gb_shm_reporter_close(gb_shm_reporter *r);

#ifdef __cplusplus
}
#endif

#endif
