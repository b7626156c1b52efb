/*
 * record.h - the telemetry record codec: what one timing or metric looks like inside a ring
 * record (type GB_RING_TYPE_TELEMETRY). The producer encodes, truncating over-long strings and
 * flagging it; the consumer decodes bytes another process wrote, so the decoder trusts nothing.
 * Not a public API: both sides of one host share it, and GB_REC_VERSION changes with the layout.
 *
 * Wire layout (little-endian host order, no alignment assumed), GB_REC_HEADER_SIZE bytes then strings:
 *    0 u8  version (GB_REC_VERSION)     1 u8  kind (enum gb_rec_kind)
 *    2 u8  flags (GB_REC_F_*)           3 u8  n_meta (<= GB_REC_MAX_META)
 *    4 u32 pid                          8 u32 tid
 *   12 u16 depth                       14 u16 scope_len (<= GB_REC_MAX_SCOPE)
 *   16 u16 parent_len (<= scope_len)   18 u16 meta_dropped (pairs left out; 0 unless
 *                                             GB_REC_F_META_DROPPED)
 *   20 u32 call_count                  24 u64 ts_ns (CLOCK_REALTIME_COARSE)
 *   32 f64 value
 *   40 scope bytes, then n_meta times: u16 key_len, u16 value_len, key bytes, value bytes
 * The encoded record ends exactly after the last value: a length mismatch is invalid.
 */
#ifndef GBATCH_COMMON_RECORD_H
#define GBATCH_COMMON_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GB_REC_VERSION 1
#define GB_REC_HEADER_SIZE 40
#define GB_REC_MAX_META 16
#define GB_REC_MAX_SCOPE 512
#define GB_REC_MAX_KEY 64
#define GB_REC_MAX_VALUE 256
/* The largest encoded record: every string at its limit. Fits the smallest ring's max record. */
#define GB_REC_MAX_SIZE \
	(GB_REC_HEADER_SIZE + GB_REC_MAX_SCOPE + GB_REC_MAX_META * (4 + GB_REC_MAX_KEY + GB_REC_MAX_VALUE))

enum gb_rec_kind {
	GB_REC_TIMING = 1,  /* value in seconds */
	GB_REC_COUNTER = 2, /* value is an increment */
	GB_REC_GAUGE = 3,   /* value is a level */
	GB_REC_METRIC = 4,  /* a plain metric: reported like a gauge */
	GB_REC_HISTOGRAM = 5, /* one sample of a distribution that is not a time (token counts) */
};

/* Truncation flags, set by the encoder and carried to the consumer. */
#define GB_REC_F_SCOPE_TRUNC 0x01u /* the scope path was cut to GB_REC_MAX_SCOPE */
#define GB_REC_F_META_DROPPED 0x02u /* pairs past GB_REC_MAX_META were left out */
#define GB_REC_F_KEY_TRUNC 0x04u   /* some key was cut to GB_REC_MAX_KEY */
#define GB_REC_F_VALUE_TRUNC 0x08u /* some value was cut to GB_REC_MAX_VALUE */
#define GB_REC_F_ALL 0x0fu

/* A string view: not NUL-terminated. */
typedef struct gb_rec_kv {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
} gb_rec_kv;

/* One record. Encoding reads it (any lengths: the encoder truncates); decoding fills it with
 * views into the decoded buffer, valid as long as that buffer is. */
typedef struct gb_record {
	uint64_t ts_ns;
	double value;
	uint8_t kind;        /* enum gb_rec_kind */
	uint8_t flags;       /* GB_REC_F_*: decoding reports them; encoding ORs in its own */
	uint16_t depth;
	uint32_t pid, tid;
	uint32_t call_count;
	uint16_t meta_dropped; /* metadata pairs left out: decoding reports it; encoding adds
	                          the ones past GB_REC_MAX_META to it */
	const char *scope;   /* full scope path */
	size_t scope_len;
	size_t parent_len;   /* the parent scope is scope[0, parent_len); 0 at top level */
	const gb_rec_kv *meta;
	size_t n_meta;
	const uint8_t *tail; /* decoding: the encoded scope and metadata (the bytes from
	                        GB_REC_HEADER_SIZE to the end, where the views above point),
	                        tail_len bytes; encoding ignores it; NULL when not decoded,
	                        and to be set NULL by whoever changes the views after */
	size_t tail_len;
} gb_record;

/* The identity of r in two parts, for a cache that keys on them where they lie (the DogStatsD
 * sink's line cache, the Prometheus sink's series cache): *head packs kind, depth, parent_len,
 * scope_len and n_meta; the return value points to r's scope and metadata as the wire has them
 * (scope bytes, then per pair u16 key_len, u16 value_len, key, value), *len bytes. A decoded
 * record's own bytes are returned (r->tail, no copy); the ones of a record built in memory are
 * written into buf (room for max bytes), without truncating. NULL when they are longer than max
 * (then the record is not to be cached). */
const uint8_t *gb__rec_ident(const gb_record *r, uint8_t *buf, size_t max, uint64_t *head,
    size_t *len);

/* Bytes gb__rec_encode will write for r, after truncation. Always <= GB_REC_MAX_SIZE. */
size_t gb__rec_size(const gb_record *r);

/* Encodes r into buf, truncating strings to the limits above and flagging it. Returns the
 * number of bytes written (== gb__rec_size(r)), or 0 when cap is smaller than that. */
size_t gb__rec_encode(const gb_record *r, uint8_t *buf, size_t cap);

/* gb__rec_encode for a caller that has sized the record already: size must be gb__rec_size(r)
 * and buf must hold that many bytes (a ring slot claimed for it), so nothing is measured twice. */
void gb__rec_write(const gb_record *r, uint8_t *buf, size_t size);

/* The fixed part of r (the first GB_REC_HEADER_SIZE bytes) as the wire has it, with the
 * lengths and counts the encoder settled on: the one place that writes it. */
static inline void
gb__rec_put_header(uint8_t *buf, const gb_record *r, uint8_t flags, size_t n_meta,
    size_t scope_len, size_t parent_len, size_t meta_dropped)
{
	uint16_t v16;

	buf[0] = GB_REC_VERSION;
	buf[1] = r->kind;
	buf[2] = flags;
	buf[3] = (uint8_t)n_meta;
	memcpy(buf + 4, &r->pid, 4);
	memcpy(buf + 8, &r->tid, 4);
	memcpy(buf + 12, &r->depth, 2);
	v16 = (uint16_t)scope_len;
	memcpy(buf + 14, &v16, 2);
	v16 = (uint16_t)parent_len;
	memcpy(buf + 16, &v16, 2);
	v16 = (uint16_t)(meta_dropped > UINT16_MAX ? UINT16_MAX : meta_dropped);
	memcpy(buf + 18, &v16, 2);
	memcpy(buf + 20, &r->call_count, 4);
	memcpy(buf + 24, &r->ts_ns, 8);
	memcpy(buf + 32, &r->value, 8);
}

/* True when r is a plain record: no metadata, nothing dropped or flagged, a scope within
 * GB_REC_MAX_SCOPE (most counters and scopes). Its size is GB_REC_HEADER_SIZE + scope_len,
 * and gb__rec_write_plain writes it inline, byte for byte as gb__rec_write would. */
static inline bool
gb__rec_is_plain(const gb_record *r)
{
	return r->n_meta == 0 && r->meta_dropped == 0 && (r->flags & GB_REC_F_ALL) == 0 &&
	    r->scope_len <= GB_REC_MAX_SCOPE;
}

static inline void
gb__rec_write_plain(const gb_record *r, uint8_t *buf)
{
	gb__rec_put_header(buf, r, 0, 0, r->scope_len,
	    r->parent_len < r->scope_len ? r->parent_len : r->scope_len, 0);
	memcpy(buf + GB_REC_HEADER_SIZE, r->scope, r->scope_len);
}

/* Decodes len untrusted bytes into out, whose strings point into buf and whose meta points to
 * the caller's meta array. Returns 0, or -1 when the bytes are not exactly one valid record
 * (bad version or kind, a length past the end or over its limit, parent longer than scope,
 * bytes left over). Never reads outside buf[0, len). */
int gb__rec_decode(const uint8_t *buf, size_t len, gb_record *out, gb_rec_kv meta[GB_REC_MAX_META]);

#endif
