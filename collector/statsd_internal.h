/*
 * statsd_internal.h - what the statsd_*.c files share and the rest of the collector does not
 * need: the line cache, the integer writer of the value grammar, the socket the sink sends
 * through and the table of packed values.
 */
#ifndef GBATCH_COLLECTOR_STATSD_INTERNAL_H
#define GBATCH_COLLECTOR_STATSD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "hash.h"
#include "statsd_sink.h"

#define GB_STATSD_QUEUE 16     /* full datagrams sent together to a Unix socket (or a send
                                  function) */
#define GB_STATSD_QUEUE_UDP 64 /* and over UDP: one sendmmsg, runs of them GSO messages */

/* Where a context was last found, kept by the caller beside the name and tags it made (the
 * sink's line cache), so a repeated context is found without hashing; zeroed means none. */
typedef struct gb_statsd_pack_hint {
	uint32_t index, generation;
} gb_statsd_pack_hint;

/* ---- the line cache (statsd_cache.c): a record's sanitised name and tags, found again by
 * the record's own fields where they lie ---- */

#define GB_STATSD_CACHE_LINES 16384 /* the most lines the cache holds (default and ceiling) */
#define GB_STATSD_CACHE_KEY_MAX 256 /* a record whose scope and metadata take more bytes is
                                       not cached */
#define GB_STATSD_CACHE_TEXT_MAX 512 /* nor one whose name and tags do */

typedef struct gb_statsd_cache gb_statsd_cache;

/* A record's identity as the cache keys it (gb__statsd_cache_key): the packed header fields,
 * its scope and metadata bytes (in the record itself, or in buf for a record built in
 * memory: so a key is filled where it is used, never copied) and their hash. */
typedef struct gb_statsd_key {
	uint64_t head, hash;
	const uint8_t *ident;
	size_t len;
	uint8_t buf[GB_STATSD_CACHE_KEY_MAX];
} gb_statsd_key;

/* One cached line: the name, then the tags, and what making them cost, counted again on
 * every hit. */
typedef struct gb_statsd_line {
	const char *text;
	uint16_t name_len, tags_len;
	uint16_t tags_dropped, values_capped, tags_renamed, name_capped;
	gb_statsd_pack_hint pack; /* where this line's samples are being packed */
} gb_statsd_line;

/* An empty cache that grows as lines are added, to at most max_lines lines (0 or more than
 * GB_STATSD_CACHE_LINES: GB_STATSD_CACHE_LINES; rounded down to eight times a power of two,
 * at least 8); NULL when out of memory. */
gb_statsd_cache *gb__statsd_cache_new(size_t max_lines);
void gb__statsd_cache_free(gb_statsd_cache *c);

/* Fills k from r (hashing r's bytes where they lie). Returns false when r is not cached
 * (its scope and metadata are longer than GB_STATSD_CACHE_KEY_MAX). */
bool gb__statsd_cache_key(const gb_record *r, gb_statsd_key *k);

/* The line cached for exactly k (its head and bytes compared in full, not only its hash), or
 * NULL. */
gb_statsd_line *gb__statsd_cache_find(gb_statsd_cache *c, const gb_statsd_key *k);

/* Caches name and tags (copied) for k, which must not be cached yet; a full cache first lets
 * go of the oldest line of k's bucket. Returns the new line, whose counters and pack hint are
 * zero, or NULL when the text is longer than GB_STATSD_CACHE_TEXT_MAX or memory runs out. */
gb_statsd_line *gb__statsd_cache_put(gb_statsd_cache *c, const gb_statsd_key *k,
    const char *name, size_t name_len, const char *tags, size_t tags_len);

/* How many lines the cache holds, and the bytes it has allocated for them and its table. */
size_t gb__statsd_cache_lines(const gb_statsd_cache *c);
size_t gb__statsd_cache_bytes(const gb_statsd_cache *c);

/* Writes v in decimal into out (room for 20 bytes). Returns the length; not NUL-terminated. */
size_t gb__statsd_u64(char *out, uint64_t v);

/* A non-blocking socket connected to a target (datagrams, or the agent's length-framed
 * stream); fd is -1 while it is down, and it is reconnected on a later send. A UDP host name
 * is resolved again every resolve_interval_ns and after a failed send. */
typedef struct gb_statsd_sock {
	gb_statsd_target target;
	int fd;
	bool stream;              /* SOCK_STREAM with 4-byte little-endian length frames */
	uint64_t next_connect_ns;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t send_timeout_ns; /* see gb_statsd_config.send_timeout_ns */
	uint64_t resolve_interval_ns;
	uint64_t next_resolve_ns; /* udp: when the host is resolved again */
	uint64_t resolve_backoff_ns; /* after failed lookups: the wait before the next; 0 after
	                                a lookup that answered */
	bool congested; /* a wait for room ran out; no more waits until a send succeeds */
	bool gso;       /* udp: the kernel takes UDP_SEGMENT on this socket, and no send has
	                   been refused with it since it was connected */
} gb_statsd_sock;

/* Resolves t (a failure is returned with err saying why) and connects; a target that is not
 * there yet is retried later, not an error. resolve_interval_ns 0 means
 * GB_STATSD_DEFAULT_RESOLVE_NS. Returns 0 or -1. */
int gb__statsd_sock_open(gb_statsd_sock *k, const gb_statsd_target *t, uint64_t send_timeout_ns,
    uint64_t resolve_interval_ns, char *err, size_t errlen);

/* Closes the socket if it is open. */
void gb__statsd_sock_close(gb_statsd_sock *k);

/* Sends the n datagrams (n <= GB_STATSD_QUEUE_UDP) of len[i] bytes at pkt + i * stride,
 * each as one frame on a stream target, counting what is sent and what fails (dropped) in
 * st. Over UDP, with GSO, a run of datagrams of one length (and a shorter one after it) goes
 * as one message the kernel cuts into those same datagrams. */
void gb__statsd_sock_send(gb_statsd_sock *k, const char *pkt, size_t stride, const size_t *len,
    size_t n, gb_statsd_stats *st);

/* ---- packed values (statsd_pack.c): the samples of one context over one flush ---- */

typedef struct gb_statsd_pack gb_statsd_pack;

/* Receives one packed message: name, the values as ":v1:v2..." (vals_len bytes), tags. The
 * strings are valid only during the call. */
typedef void (*gb_statsd_pack_emit)(void *ctx, const char *name, size_t name_len,
    const char *vals, size_t vals_len, const char *tags, size_t tags_len);

/* An empty table holding at most max_contexts contexts (0: no cap), or NULL. */
gb_statsd_pack *gb__statsd_pack_new(size_t max_contexts);
void gb__statsd_pack_free(gb_statsd_pack *p);

/* Appends ":" and the value text val (val_len bytes) to the context (name, tags). When the
 * context's values would pass room bytes (what its message may give them), its message goes
 * to emit first and the value starts the next one. Returns 0, or -1 when the context is new
 * and the table is full or out of memory: the caller sends the value on a line of its own.
 * hint may be NULL; it is checked against the context before it is used. */
int gb__statsd_pack_add(gb_statsd_pack *p, gb_statsd_pack_hint *hint, const char *name,
    size_t name_len, const char *tags, size_t tags_len, const char *val, size_t val_len,
    size_t room, gb_statsd_pack_emit emit, void *ctx);

/* Hands every context's message to emit, in first-seen order, and empties the table. */
void gb__statsd_pack_flush(gb_statsd_pack *p, gb_statsd_pack_emit emit, void *ctx);

/* True when the table holds no context (nothing gathered since the last flush). */
bool gb__statsd_pack_empty(const gb_statsd_pack *p);

/* The global tags of cfg, sanitised and joined with commas, into out (room for
 * GB_STATSD_GLOBAL_TAGS_MAX bytes). Returns the length, or -1 with err naming the tag where
 * they grow too long. */
long gb__statsd_join_globals(const gb_statsd_config *cfg, char *out, char *err, size_t errlen);
/* Whether global tags of len bytes leave a line of a max-byte datagram room for a name and
 * two tags of its own. */
bool gb__statsd_globals_fit(size_t max, size_t len);

#endif
