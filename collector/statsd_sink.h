/*
 * statsd_sink.h - the collector's DogStatsD sink: turns telemetry records into DogStatsD lines
 * (`name:value|type|#tags`), sanitised so nothing a producer writes can break a line or a tag,
 * folds counters and gauges per flush interval, packs lines into datagrams that never exceed
 * the target's limit, and sends them on a non-blocking socket that may be down at any time
 * (a slow agent on a Unix socket is waited for, within a bound).
 */
#ifndef GBATCH_COLLECTOR_STATSD_SINK_H
#define GBATCH_COLLECTOR_STATSD_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define GB_STATSD_UDP_MAX 1432        /* datagram limit for UDP (fits a 1500 B MTU) */
#define GB_STATSD_UNIX_MAX 8192       /* datagram (or stream frame) limit for Unix sockets */
#define GB_STATSD_NAME_MAX 200        /* metric name, prefix included */
#define GB_STATSD_TAG_MAX 200         /* one tag, key:value */
#define GB_STATSD_PREFIX_MAX 100
#define GB_STATSD_GLOBAL_TAGS_MAX 1024 /* all global tags joined with commas */
#define GB_STATSD_VALUE_MAX 32        /* a formatted value */
#define GB_STATSD_DEFAULT_PREFIX "gbatch."
#define GB_STATSD_DEFAULT_URL "udp://127.0.0.1:8125"
#define GB_STATSD_DEFAULT_SEND_TIMEOUT_NS 1000000000ull /* see gb_statsd_config.send_timeout_ns */
#define GB_STATSD_MAX_SEND_TIMEOUT_NS 60000000000ull
#define GB_STATSD_DEFAULT_DATAGRAM_WAIT_NS 5000000ull /* see gb_statsd_config.datagram_wait_ns */
#define GB_STATSD_MAX_DATAGRAM_WAIT_NS 1000000000ull
#define GB_STATSD_DEFAULT_MAX_CONTEXTS 20000 /* the CLI's default for max_contexts */
#define GB_STATSD_MAX_CONTEXTS 10000000      /* the largest max_contexts accepted */
#define GB_STATSD_DEFAULT_PORT "8125"
#define GB_STATSD_DEFAULT_RESOLVE_NS 60000000000ull /* see gb_statsd_config.resolve_interval_ns */

/* ---- sanitising (statsd_format.c, exposed for tests) ---- */

/* Writes prefix + the sanitised scope into out (room for GB_STATSD_NAME_MAX + 1 bytes): bytes
 * outside [A-Za-z0-9_.] become '_' (a run of them one '_'), empty path segments and trailing
 * dots go, the name starts with a letter and is cut at GB_STATSD_NAME_MAX. A scope with
 * nothing usable becomes "unnamed". prefix must have passed gb__statsd_prefix_check.
 * Returns the length (never 0); out is not NUL-terminated. */
size_t gb__statsd_name(char *out, const char *prefix, size_t prefix_len, const char *scope,
    size_t scope_len);

/* Checks a user-given prefix: empty, or a name as above optionally ending in '.', at most
 * GB_STATSD_PREFIX_MAX bytes. Returns 0, or -1 with err naming the prefix. */
int gb__statsd_prefix_check(const char *prefix, char *err, size_t errlen);

/* Writes the tag key:value into out (room for GB_STATSD_TAG_MAX + 1 bytes): lower case,
 * bytes outside [a-z0-9_-./] (and ':' in the key) become '_' (a run of them one '_'), the key
 * starts with a letter, the key "host" becomes "user_host", the tag is cut at
 * GB_STATSD_TAG_MAX and never ends in ':' (an empty value leaves the bare key). value may be
 * NULL for a bare key. Returns the length, or 0 when the key has no letter (no tag);
 * *key_len gets the length of the key part. Not NUL-terminated. */
size_t gb__statsd_tag(char *out, const char *key, size_t key_len, const char *value,
    size_t value_len, size_t *key_len_out);

/* Formats a finite v as a DogStatsD number ("12", "0.1234", "1e+20") into out (room for
 * GB_STATSD_VALUE_MAX bytes). Returns the length. */
size_t gb__statsd_value(char *out, double v);

/* ---- the target (statsd_target.c) ---- */

enum gb_statsd_kind {
	GB_STATSD_UDP = 1,
	GB_STATSD_UNIXGRAM = 2,   /* datagrams on a Unix socket */
	GB_STATSD_UNIXSTREAM = 3, /* the agent's stream socket: each message after its 4-byte
	                             little-endian length */
};

typedef struct gb_statsd_target {
	enum gb_statsd_kind kind;
	bool guess_stream; /* unix://: a datagram socket, or a stream one if the path is one */
	char host[256]; /* udp: a name or address ("::1" without brackets) */
	char port[8];   /* udp */
	char path[108]; /* unix sockets: the socket path */
} gb_statsd_target;

/* Parses what datadog-go accepts: "udp://host[:port]" (port 8125 when absent, IPv6 as
 * [addr] or [addr]:port), "unix:///path" (datagram, or stream when the socket at path is a
 * stream socket), "unixgram:///path", "unixstream:///path". Returns 0, or -1 with err naming
 * the URL and what is wrong with it. */
int gb__statsd_parse_url(const char *url, gb_statsd_target *t, char *err, size_t errlen);

/* The target the DataDog clients would pick from the environment: DD_DOGSTATSD_URL, else
 * DD_DOGSTATSD_SOCKET (a unixgram path), else DD_AGENT_HOST and DD_DOGSTATSD_PORT (each
 * defaulting as below), else GB_STATSD_DEFAULT_URL. Returns 0, or -1 with err naming the
 * variable and its bad value. */
int gb__statsd_target_from_env(gb_statsd_target *t, char *err, size_t errlen);

/* ---- the sink (statsd_sink.c, sending in statsd_socket.c) ---- */

typedef struct gb_statsd_sink gb_statsd_sink;

/* Sends one datagram somewhere other than a socket (tests, benchmarks). Returns 0, or -1 with
 * errno set: counted as a send error. */
typedef int (*gb_statsd_send_fn)(void *ctx, const char *dgram, size_t len);

/* How a record's scope becomes a metric name. */
enum gb_statsd_names {
	GB_STATSD_NAMES_LEAF = 0, /* prefix + the record's own name (its scope path without the
	                             parent path); the parent path goes in parent_scope */
	GB_STATSD_NAMES_PATH = 1, /* prefix + the whole scope path, as gbatch 0.1 named them */
};

/* Tag keys a producer's metadata never sets as such (renamed user_<key>, counted in
 * tags_renamed): the agent's own (host, device, source, env, service, version, dd.internal.*)
 * and the collector's (depth, parent_scope, and every global tag key). */
#define GB_STATSD_RESERVED_KEYS "host", "device", "source", "env", "service", "version", \
	"depth", "parent_scope"
#define GB_STATSD_RESERVED_PREFIX "dd.internal."

/* The DogStatsD type timings and histogram samples go out as. */
enum gb_statsd_timing {
	GB_STATSD_TIMING_MS = 0, /* "ms": what every StatsD server reads */
	GB_STATSD_TIMING_H = 1,  /* "h": a DogStatsD histogram, per agent */
	GB_STATSD_TIMING_D = 2,  /* "d": a DogStatsD distribution, across every agent */
};

/* Parses "ms", "h" or "d". Returns 0, or -1. (statsd_format.c) */
int gb__statsd_timing_parse(const char *s, enum gb_statsd_timing *out);
/* The type letters of t. */
const char *gb__statsd_timing_name(enum gb_statsd_timing t);

typedef struct gb_statsd_config {
	const gb_statsd_target *target; /* where to send; NULL to use send instead */
	gb_statsd_send_fn send;
	void *send_ctx;
	size_t max_datagram;            /* 0: by target kind; required with send */
	const char *prefix;             /* NULL: GB_STATSD_DEFAULT_PREFIX */
	const char *const *tags;        /* global tags "key:value", sanitised here */
	size_t n_tags;
	const char *const *drop_tags;   /* tag keys never sent (compared after sanitising) */
	size_t n_drop_tags;
	size_t max_tag_values;          /* distinct values per tag key (parent_scope included);
	                                   0 = no cap */
	enum gb_statsd_names names;
	size_t max_names;               /* distinct metric names; later ones become
	                                   <prefix>other (counted); 0 = no cap */
	size_t max_contexts;            /* distinct counter and gauge contexts folded per flush
	                                   interval (at most GB_STATSD_MAX_CONTEXTS); values of
	                                   a new context past it are not sent, counted in
	                                   contexts_dropped. 0 = no cap */
	uint64_t send_timeout_ns;       /* Unix sockets: how long one datagram may wait for room in
	                                   the target's queue (at most
	                                   GB_STATSD_MAX_SEND_TIMEOUT_NS); a wait that runs out
	                                   drops it (a send error) and marks the target congested:
	                                   no further waits until a datagram gets through.
	                                   0 = never wait. UDP never waits. */
	enum gb_statsd_timing timing;   /* the type of timing and histogram lines */
	bool pack_values;               /* every sample of one timing or histogram context in
	                                   one message per flush (DogStatsD 1.1, "n:v1:v2|d"),
	                                   each message within one datagram */
	bool timestamps;                /* counters and gauges of records older than two
	                                   flush intervals when read go out with |T<seconds>,
	                                   folded per interval of their own time */
	uint64_t flush_interval_ns;     /* what "older than two intervals" measures; 0: 1 s */
	uint64_t resolve_interval_ns;   /* udp: a host name is resolved again this often (and
	                                   when sends fail); 0: GB_STATSD_DEFAULT_RESOLVE_NS */
	uint64_t datagram_wait_ns;      /* how long a part-filled datagram waits for more lines
	                                   (gb__statsd_hold_ns); 0 = none */
} gb_statsd_config;

typedef struct gb_statsd_stats {
	uint64_t lines;             /* lines packed */
	uint64_t packets_sent, bytes_sent;
	uint64_t send_errors;       /* datagrams that could not be sent, or (UDP) that the
	                               kernel reported refused by the target on a later send */
	uint64_t values_rejected;   /* NaN, infinities, negative timings */
	uint64_t tags_dropped;      /* tags left out to keep a line within one datagram, and
	                               metadata pairs a producer could not fit in its record */
	uint64_t tag_values_capped; /* values replaced by "other" by the cardinality cap */
	uint64_t tags_renamed;      /* producer tags with a reserved key, sent as user_<key> */
	uint64_t names_capped;      /* records sent as <prefix>other by the name cap */
	uint64_t fold_errors;       /* counters or gauges lost because the table could not grow */
	uint64_t contexts_dropped;  /* counter and gauge values refused by max_contexts */
	uint64_t line_cache_misses; /* records whose name and tags were made anew: not found in
	                               the line cache (first seen, let go, or too long for it) */
} gb_statsd_stats;

/* Creates a sink; with a target it resolves the UDP host (a failure is returned) and opens a
 * non-blocking socket (a Unix-socket target that is not there yet is retried later, not an
 * error; one whose queue is full is waited for only as send_timeout_ns allows). Returns NULL
 * with err saying why. */
gb_statsd_sink *gb__statsd_new(const gb_statsd_config *cfg, char *err, size_t errlen);
/* Checks the global tags of cfg as gb__statsd_new would (joined at most
 * GB_STATSD_GLOBAL_TAGS_MAX bytes, leaving room in the target's datagrams) without opening
 * anything. Returns 0, or -1 with err naming the tag or the size. */
int gb__statsd_tags_check(const gb_statsd_config *cfg, char *err, size_t errlen);
/* Sends what is pending (aggregates are NOT flushed: call gb__statsd_flush_aggregates first)
 * and frees the sink. NULL is fine. */
void gb__statsd_free(gb_statsd_sink *s);

/* Takes one record: a timing becomes a line at once; a counter, gauge or metric is folded
 * into its context until the next gb__statsd_flush_aggregates. Non-finite values and negative
 * timings are counted in values_rejected and dropped. No allocation except for a new context. */
void gb__statsd_record(gb_statsd_sink *s, const gb_record *r);

/* Emits every folded counter and gauge, then sends what is pending. */
void gb__statsd_flush_aggregates(gb_statsd_sink *s);

/* Sends the pending datagram, if any. */
void gb__statsd_flush(gb_statsd_sink *s);

/* Sends the full datagrams waiting to go, keeping the part-filled one. */
void gb__statsd_send_full(gb_statsd_sink *s);

/* Sends everything that came from records read so far (the --pack-values messages gathered
 * for the flush interval too; not the folded counters and gauges): what a caller calls before
 * it gives the records' ring space back. */
void gb__statsd_flush_read(gb_statsd_sink *s);

/* How much longer (ns) what is pending may wait before gb__statsd_flush_read: a datagram goes
 * out when it is full (gb__statsd_send_full), or once its first line has waited
 * datagram_wait_ns; --pack-values
 * samples wait for the flush interval (UINT64_MAX: until gb__statsd_flush_aggregates). 0 when
 * it must go now, or nothing is pending. */
uint64_t gb__statsd_hold_ns(const gb_statsd_sink *s, uint64_t now_ns);

/* Packs one line of our own (self-metrics): name is used as is, type 'c' or 'g', tag (may be
 * NULL) is a valid tag, followed by the global tags. Non-finite values are rejected. */
void gb__statsd_metric(gb_statsd_sink *s, const char *name, double v, char type, const char *tag);

/* The counters so far. */
void gb__statsd_get_stats(const gb_statsd_sink *s, gb_statsd_stats *out);

#endif
