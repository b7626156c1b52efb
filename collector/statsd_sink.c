/*
 * statsd_sink.c - the DogStatsD sink: records become lines, counters and gauges are folded per
 * flush interval, lines are packed into datagrams that never exceed the target's limit and
 * handed to the socket (statsd_socket.c) or a send function. The sanitised name and tags of a
 * record are cached (statsd_cache.c), so a repeated record costs a hash and a compare of its
 * own bytes.
 */
#include "statsd_sink.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "clock.h"
#include "hash.h"
#include "statsd_internal.h"

#define MAX_DROP_TAGS 32
#define MAX_GLOBAL_KEYS 72

struct gb_statsd_sink {
	bool has_target;
	gb_statsd_sock sock; /* with a target */
	gb_statsd_send_fn send; /* without */
	void *send_ctx;
	size_t max;

	char prefix[GB_STATSD_PREFIX_MAX + 1];
	size_t prefix_len;
	char global[GB_STATSD_GLOBAL_TAGS_MAX];
	size_t global_len;
	char drop[MAX_DROP_TAGS][GB_STATSD_TAG_MAX + 1];
	size_t drop_len[MAX_DROP_TAGS];
	size_t n_drop;
	char gkey[MAX_GLOBAL_KEYS][GB_STATSD_TAG_MAX + 1]; /* the global tags' keys */
	size_t gkey_len[MAX_GLOBAL_KEYS];
	size_t n_gkeys;
	enum gb_statsd_names names;

	gb_agg *agg;
	gb_agg *backlog;         /* --timestamps: folded per interval of the records' own time;
	                            the tags of a context end in its 8-byte second */
	gb_statsd_pack *packed;  /* --pack-values */
	const char *timing_type; /* "ms", "h" or "d" */
	bool timestamps;
	uint64_t backlog_age_ns; /* older than this when read: a backlog (two flush intervals) */
	uint64_t bucket_ns;      /* a backlog is folded per this much of its own time */
	gb_taglim *lim;
	gb_taglim *names_lim;    /* the distinct metric names, under one key */
	gb_statsd_stats st;
	uint64_t capped_on_hits; /* values the cap replaced, counted again on cache hits */
	uint64_t names_capped_on_hits;
	gb_statsd_cache *cache;

	/* the datagrams: depth slots of max bytes each, back to back in pkt; full ones wait in
	 * slots [0, nq), the one being filled is slot nq */
	char *pkt;
	size_t depth;
	size_t plen;                 /* bytes in slot nq */
	uint64_t plen_since_ns;      /* CLOCK_MONOTONIC of its first line */
	uint64_t datagram_wait_ns;
	size_t nq;
	size_t qlen[GB_STATSD_QUEUE_UDP];
};

static char *
slot(gb_statsd_sink *s, size_t i)
{
	return s->pkt + i * s->max;
}

/* Bytes a line may give to its tags: the datagram minus name, value, type and separators. */
#define TS_FIELD_MAX 22 /* "|T" and a 20-digit second */

static size_t
tag_room(const gb_statsd_sink *s, size_t name_len)
{
	return s->max - (name_len + 1 + GB_STATSD_VALUE_MAX + 3 + 2 + 1 +
	    (s->timestamps ? TS_FIELD_MAX : 0));
}

static int
set_globals(gb_statsd_sink *s, const gb_statsd_config *cfg, char *err, size_t errlen)
{
	long n = gb__statsd_join_globals(cfg, s->global, err, errlen);

	if (n < 0)
		return -1;
	s->global_len = (size_t)n;
	/* the global tags' keys, which a producer's metadata may not set */
	for (size_t at = 0; at < s->global_len && s->n_gkeys < MAX_GLOBAL_KEYS;) {
		const char *t = s->global + at, *end = memchr(t, ',', s->global_len - at);
		size_t tl = end != NULL ? (size_t)(end - t) : s->global_len - at;
		const char *c = memchr(t, ':', tl);
		size_t kl = c != NULL ? (size_t)(c - t) : tl;

		memcpy(s->gkey[s->n_gkeys], t, kl);
		s->gkey_len[s->n_gkeys++] = kl;
		at += tl + 1;
	}
	if (cfg->n_drop_tags > MAX_DROP_TAGS) {
		snprintf(err, errlen, "at most %d tags can be dropped", MAX_DROP_TAGS);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_drop_tags; i++) {
		const char *k = cfg->drop_tags[i];

		s->drop_len[s->n_drop] = gb__statsd_tag(s->drop[s->n_drop], k, strlen(k), NULL, 0,
		    NULL);
		if (s->drop_len[s->n_drop] > 0)
			s->n_drop++;
	}
	return 0;
}

/* The timing type, packing and timestamps of cfg. */
static int
set_dialect(gb_statsd_sink *s, const gb_statsd_config *cfg, char *err, size_t errlen)
{
	uint64_t interval = cfg->flush_interval_ns ? cfg->flush_interval_ns : GB_NS_PER_SEC;

	if ((unsigned)cfg->timing > GB_STATSD_TIMING_D) {
		snprintf(err, errlen, "timing type %d is not ms, h or d", (int)cfg->timing);
		return -1;
	}
	s->timing_type = gb__statsd_timing_name(cfg->timing);
	if (!cfg->pack_values) {
		gb__statsd_pack_free(s->packed);
		s->packed = NULL;
	}
	s->timestamps = cfg->timestamps;
	s->datagram_wait_ns = cfg->datagram_wait_ns;
	s->backlog_age_ns = interval > UINT64_MAX / 2 ? UINT64_MAX : 2 * interval;
	s->bucket_ns = interval < GB_NS_PER_SEC ? GB_NS_PER_SEC : interval;
	return 0;
}

gb_statsd_sink *
gb__statsd_new(const gb_statsd_config *cfg, char *err, size_t errlen)
{
	gb_statsd_sink *s = calloc(1, sizeof(*s));
	const char *prefix = cfg->prefix ? cfg->prefix : GB_STATSD_DEFAULT_PREFIX;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->sock.fd = -1;
	if (gb__statsd_prefix_check(prefix, err, errlen) < 0)
		goto fail;
	s->prefix_len = strlen(prefix);
	memcpy(s->prefix, prefix, s->prefix_len);
	if (set_globals(s, cfg, err, errlen) < 0)
		goto fail;
	s->agg = gb__agg_new(cfg->max_contexts);
	s->backlog = gb__agg_new(cfg->max_contexts);
	s->packed = gb__statsd_pack_new(cfg->max_contexts);
	s->lim = gb__taglim_new(cfg->max_tag_values);
	s->names_lim = gb__taglim_new(cfg->max_names);
	s->names = cfg->names;
	s->cache = gb__statsd_cache_new(0);
	if (s->agg == NULL || s->backlog == NULL || s->packed == NULL || s->lim == NULL ||
	    s->names_lim == NULL || s->cache == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (set_dialect(s, cfg, err, errlen) < 0)
		goto fail;
	if (cfg->target != NULL) {
		s->has_target = true;
		s->max = cfg->target->kind != GB_STATSD_UDP ? GB_STATSD_UNIX_MAX : GB_STATSD_UDP_MAX;
		if (gb__statsd_sock_open(&s->sock, cfg->target, cfg->send_timeout_ns,
		    cfg->resolve_interval_ns, err, errlen) < 0)
			goto fail;
	} else {
		s->send = cfg->send;
		s->send_ctx = cfg->send_ctx;
		s->max = cfg->max_datagram;
	}
	if (cfg->max_contexts > GB_STATSD_MAX_CONTEXTS) {
		snprintf(err, errlen, "max_contexts %zu is over the limit of %d", cfg->max_contexts,
		    GB_STATSD_MAX_CONTEXTS);
		goto fail;
	}
	if (cfg->max_datagram != 0 && cfg->max_datagram < s->max)
		s->max = cfg->max_datagram;
	if (s->sock.send_timeout_ns > GB_STATSD_MAX_SEND_TIMEOUT_NS) {
		snprintf(err, errlen, "send timeout %llu ms is over the limit of %llu ms",
		    (unsigned long long)(s->sock.send_timeout_ns / GB_NS_PER_MS),
		    (unsigned long long)(GB_STATSD_MAX_SEND_TIMEOUT_NS / GB_NS_PER_MS));
		goto fail;
	}
	if (s->max < 512 || s->max > GB_STATSD_UNIX_MAX || (s->send == NULL && !s->has_target)) {
		snprintf(err, errlen, "datagram size %zu not in [512, %d], or nowhere to send", s->max,
		    GB_STATSD_UNIX_MAX);
		goto fail;
	}
	if (!gb__statsd_globals_fit(s->max, s->global_len)) {
		snprintf(err, errlen, "global tags (%zu bytes) leave too little room in a %zu-byte "
		    "datagram", s->global_len, s->max);
		goto fail;
	}
	s->depth = s->has_target && cfg->target->kind == GB_STATSD_UDP ? GB_STATSD_QUEUE_UDP :
	    GB_STATSD_QUEUE;
	if ((s->pkt = malloc(s->depth * s->max)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return s;
fail:
	gb__statsd_free(s);
	return NULL;
}

void
gb__statsd_free(gb_statsd_sink *s)
{
	if (s == NULL)
		return;
	if (s->pkt != NULL)
		gb__statsd_flush(s);
	gb__statsd_sock_close(&s->sock);
	gb__agg_free(s->agg);
	gb__agg_free(s->backlog);
	gb__statsd_pack_free(s->packed);
	gb__taglim_free(s->lim);
	gb__taglim_free(s->names_lim);
	gb__statsd_cache_free(s->cache);
	free(s->pkt);
	free(s);
}

static void
send_queue(gb_statsd_sink *s)
{
	if (s->has_target) {
		gb__statsd_sock_send(&s->sock, s->pkt, s->max, s->qlen, s->nq, &s->st);
	} else {
		for (size_t k = 0; k < s->nq; k++) {
			if (s->send(s->send_ctx, slot(s, k), s->qlen[k]) == 0) {
				s->st.packets_sent++;
				s->st.bytes_sent += s->qlen[k];
			} else {
				s->st.send_errors++;
			}
		}
	}
	s->nq = 0;
}

uint64_t
gb__statsd_hold_ns(const gb_statsd_sink *s, uint64_t now_ns)
{
	uint64_t age;

	if (s->packed != NULL && !gb__statsd_pack_empty(s->packed))
		return UINT64_MAX; /* packed samples: until the flush interval */
	if (s->plen == 0)
		return 0; /* nothing to hold (full datagrams: gb__statsd_send_full) */
	age = now_ns - s->plen_since_ns;
	return age < s->datagram_wait_ns ? s->datagram_wait_ns - age : 0;
}

void
gb__statsd_send_full(gb_statsd_sink *s)
{
	size_t nq = s->nq;

	if (nq == 0)
		return;
	send_queue(s); /* slots [0, nq); the part-filled one in slot nq moves to the front */
	if (s->plen > 0)
		memmove(slot(s, 0), slot(s, nq), s->plen);
}

void
gb__statsd_flush(gb_statsd_sink *s)
{
	if (s->plen > 0) {
		s->qlen[s->nq++] = s->plen;
		s->plen = 0;
	}
	if (s->nq > 0)
		send_queue(s);
}

/* Room for a line of len bytes (at most s->max) at the end of the current datagram, where
 * the caller writes it: a datagram it would not fit is queued first, a full queue sent. */
static char *
line_room(gb_statsd_sink *s, size_t len)
{
	char *p;

	if (s->plen + len > s->max) {
		s->qlen[s->nq++] = s->plen;
		s->plen = 0;
		if (s->nq == s->depth)
			send_queue(s);
	}
	if (s->plen == 0 && s->datagram_wait_ns > 0)
		s->plen_since_ns = gb__clock_mono_ns(); /* one clock read per datagram */
	p = slot(s, s->nq) + s->plen;
	s->plen += len;
	s->st.lines++;
	return p;
}

static bool
dropped_key(const gb_statsd_sink *s, const char *key, size_t len)
{
	for (size_t i = 0; i < s->n_drop; i++)
		if (s->drop_len[i] == len && memcmp(s->drop[i], key, len) == 0)
			return true;
	return false;
}

/* Appends ",tag" (or "tag" first) into out[*n, limit) if it fits; counts it when it does not. */
static void
put_tag(gb_statsd_sink *s, char *out, size_t *n, size_t limit, const char *tag, size_t len)
{
	size_t need = len + (*n > 0);

	if (*n + need > limit) {
		s->st.tags_dropped++;
		return;
	}
	if (*n > 0)
		out[(*n)++] = ',';
	memcpy(out + *n, tag, len);
	*n += len;
}

/* Whether a producer may not set a tag with this (sanitised) key: the agent's keys and the
 * collector's own, global ones included. */
static bool
reserved_key(const gb_statsd_sink *s, const char *key, size_t len)
{
	static const char *const fixed[] = { GB_STATSD_RESERVED_KEYS };
	static const char prefix[] = GB_STATSD_RESERVED_PREFIX;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strlen(fixed[i]) == len && memcmp(fixed[i], key, len) == 0)
			return true;
	if (len >= sizeof(prefix) - 1 && memcmp(key, prefix, sizeof(prefix) - 1) == 0)
		return true;
	for (size_t i = 0; i < s->n_gkeys; i++)
		if (s->gkey_len[i] == len && memcmp(s->gkey[i], key, len) == 0)
			return true;
	return false;
}

/* Renames the tag tag[0, *len) with key length *kl to user_<key>, cut to the tag limit. */
static void
rename_tag(char *tag, size_t *len, size_t *kl)
{
	size_t n = *len + 5 > GB_STATSD_TAG_MAX ? GB_STATSD_TAG_MAX - 5 : *len;

	memmove(tag + 5, tag, n);
	memcpy(tag, "user_", 5);
	*len = n + 5;
	*kl = *kl + 5 < *len ? *kl + 5 : *len;
	while (*len > *kl && tag[*len - 1] == ':')
		(*len)--;
}

/* Applies the value cap to tag[0, *len) (key length kl): a value past the cap becomes
 * "other". */
static void
cap_value(gb_statsd_sink *s, char *tag, size_t *len, size_t kl)
{
	static const char other[] = ":other";

	if (*len <= kl || gb__taglim_admit(s->lim, tag, kl, tag + kl + 1, *len - kl - 1))
		return;
	*len = kl;
	if (kl + sizeof(other) - 1 <= GB_STATSD_TAG_MAX) {
		memcpy(tag + kl, other, sizeof(other) - 1);
		*len += sizeof(other) - 1;
	}
}

/* Writes the tags of r (no "|#") into out, within limit bytes, the global tags included. */
static size_t
record_tags(gb_statsd_sink *s, const gb_record *r, char *out, size_t limit)
{
	char tag[GB_STATSD_TAG_MAX + 1];
	size_t n = 0, len, kl;
	size_t room = limit - (s->global_len ? s->global_len + 1 : 0);

	if (!dropped_key(s, "depth", 5)) {
		memcpy(tag, "depth:", 6);
		len = 6 + gb__statsd_u64(tag + 6, r->depth);
		put_tag(s, out, &n, room, tag, len);
	}
	if (r->parent_len > 0 && !dropped_key(s, "parent_scope", 12)) {
		len = gb__statsd_tag(tag, "parent_scope", 12, r->scope, r->parent_len, &kl);
		cap_value(s, tag, &len, kl);
		put_tag(s, out, &n, room, tag, len);
	}
	for (size_t i = 0; i < r->n_meta; i++) {
		const gb_rec_kv *kv = &r->meta[i];

		len = gb__statsd_tag(tag, kv->key, kv->key_len, kv->value, kv->value_len, &kl);
		if (len == 0 || dropped_key(s, tag, kl))
			continue;
		if (reserved_key(s, tag, kl)) {
			rename_tag(tag, &len, &kl);
			s->st.tags_renamed++;
		}
		cap_value(s, tag, &len, kl);
		put_tag(s, out, &n, room, tag, len);
	}
	if (s->global_len > 0) {
		if (n > 0)
			out[n++] = ',';
		memcpy(out + n, s->global, s->global_len);
		n += s->global_len;
	}
	return n;
}

/* Writes "name:values|type[|#tags][|T<ts_s>]\n" into the current datagram; vals is the
 * value text after the name's ':' (one value, or several joined by ':'); ts_s 0 sends no
 * timestamp. The line's length is known before it is written, so it is written once, in
 * place. */
static void
emit_text(gb_statsd_sink *s, const char *name, size_t nl, const char *vals, size_t vl,
    const char *type, const char *tags, size_t tl, uint64_t ts_s)
{
	char ts[20];
	size_t n = 0, ty = strlen(type);
	size_t tsl = ts_s != 0 ? gb__statsd_u64(ts, ts_s) : 0;
	size_t len = nl + 1 + vl + 1 + ty + (tl > 0 ? 2 + tl : 0) + (tsl > 0 ? 2 + tsl : 0) + 1;
	char *p;

	if (len > s->max) { /* kept out by tag_room and the packing room; never split a line */
		s->st.values_rejected++;
		return;
	}
	p = line_room(s, len);
	memcpy(p, name, nl);
	n = nl;
	p[n++] = ':';
	memcpy(p + n, vals, vl);
	n += vl;
	p[n++] = '|';
	memcpy(p + n, type, ty);
	n += ty;
	if (tl > 0) {
		p[n++] = '|';
		p[n++] = '#';
		memcpy(p + n, tags, tl);
		n += tl;
	}
	if (tsl > 0) {
		p[n++] = '|';
		p[n++] = 'T';
		memcpy(p + n, ts, tsl);
		n += tsl;
	}
	p[n] = '\n';
}

static void
emit_line(gb_statsd_sink *s, const char *name, size_t nl, double v, const char *type,
    const char *tags, size_t tl)
{
	char val[GB_STATSD_VALUE_MAX];

	emit_text(s, name, nl, val, gb__statsd_value(val, v), type, tags, tl, 0);
}

/* The part of r's scope its metric is named after: the whole path, or its own name. */
static void
name_source(const gb_statsd_sink *s, const gb_record *r, const char **p, size_t *len)
{
	size_t skip = 0;

	if (s->names == GB_STATSD_NAMES_LEAF && r->parent_len > 0 && r->parent_len < r->scope_len)
		skip = r->parent_len + (r->scope[r->parent_len] == '.');
	*p = r->scope + skip;
	*len = r->scope_len - skip;
}

/* Writes r's metric name into name: the prefix and the sanitised scope (an OpenTelemetry
 * semantic-convention name, gen_ai.*, without the prefix), or <prefix>other past the name
 * cap. */
static size_t
make_name(gb_statsd_sink *s, const gb_record *r, char *name)
{
	static const char semconv[] = "gen_ai.";
	const char *src;
	size_t len, nl;
	bool own_name;

	name_source(s, r, &src, &len);
	own_name = len > sizeof(semconv) - 1 && memcmp(src, semconv, sizeof(semconv) - 1) == 0;
	nl = gb__statsd_name(name, own_name ? "" : s->prefix, own_name ? 0 : s->prefix_len, src,
	    len);
	if (!gb__taglim_admit(s->names_lim, "", 0, name, nl))
		nl = gb__statsd_name(name, s->prefix, s->prefix_len, "other", 5);
	return nl;
}

/* The slow path: sanitises r's name into name and its tags (cap and budget applied) into tags. */
static void
make_line_parts(gb_statsd_sink *s, const gb_record *r, char *name, size_t *nl, char *tags,
    size_t *tl)
{
	*nl = make_name(s, r, name);
	*tl = record_tags(s, r, tags, tag_room(s, *nl));
}

/* The sink's own emit for packed messages. */
static void
emit_packed(void *ctx, const char *name, size_t nl, const char *vals, size_t vl,
    const char *tags, size_t tl)
{
	gb_statsd_sink *s = ctx;

	emit_text(s, name, nl, vals + 1, vl - 1, s->timing_type, tags, tl, 0);
}

/* A sample of a timing or histogram: a line of its own, or into its context's packed
 * message. */
static void
emit_sample(gb_statsd_sink *s, const char *np, size_t nl, double v, const char *tp, size_t tl,
    gb_statsd_pack_hint *hint)
{
	char val[GB_STATSD_VALUE_MAX];
	size_t vl, fixed;

	if (s->packed == NULL) {
		emit_line(s, np, nl, v, s->timing_type, tp, tl);
		return;
	}
	vl = gb__statsd_value(val, v);
	/* what the message needs besides its values: name, '|', type, "|#" tags, '\n' */
	fixed = nl + 1 + strlen(s->timing_type) + (tl > 0 ? 2 + tl : 0) + 1;
	if (fixed >= s->max || gb__statsd_pack_add(s->packed, hint, np, nl, tp, tl, val, vl,
	    s->max - fixed, emit_packed, s) < 0)
		emit_text(s, np, nl, val, vl, s->timing_type, tp, tl, 0);
}

/* Whether r was written long enough before it is read to be a backlog (--timestamps). */
static bool
is_backlog(const gb_statsd_sink *s, const gb_record *r)
{
	uint64_t now;

	if (!s->timestamps || r->ts_ns == 0)
		return false;
	now = gb__clock_real_ns();
	return now > r->ts_ns && now - r->ts_ns > s->backlog_age_ns;
}

/* Folds a backlog counter or gauge into the context of its own interval: the interval's
 * first second rides at the end of the tags (8 bytes), taken off again at flush. */
static int
fold_backlog(gb_statsd_sink *s, const gb_record *r, const char *np, size_t nl, const char *tp,
    size_t tl, enum gb_agg_type type)
{
	char tags[GB_STATSD_UNIX_MAX + 8];
	uint64_t sec = r->ts_ns / s->bucket_ns * s->bucket_ns / GB_NS_PER_SEC;

	if (tl > GB_STATSD_UNIX_MAX)
		return -1;
	memcpy(tags, tp, tl);
	memcpy(tags + tl, &sec, 8);
	return gb__agg_add(s->backlog, np, nl, tags, tl + 8, type, r->value);
}

static void
take_value(gb_statsd_sink *s, const gb_record *r, const char *np, size_t nl, const char *tp,
    size_t tl, gb_statsd_pack_hint *hint)
{
	double v = r->value;
	enum gb_agg_type type = r->kind == GB_REC_COUNTER ? GB_AGG_COUNTER : GB_AGG_GAUGE;
	int rc;

	switch (r->kind) {
	case GB_REC_TIMING:
		v *= 1000.0;
		if (!isfinite(v)) {
			s->st.values_rejected++;
			return;
		}
		emit_sample(s, np, nl, v, tp, tl, hint);
		return;
	case GB_REC_HISTOGRAM:
		/* a StatsD timer is the one distribution every server reads; the values are the
		 * samples as they are (token counts), not milliseconds */
		if (v < 0) {
			s->st.values_rejected++;
			return;
		}
		emit_sample(s, np, nl, v, tp, tl, hint);
		return;
	default:
		rc = is_backlog(s, r) ? fold_backlog(s, r, np, nl, tp, tl, type) :
		    gb__agg_add(s->agg, np, nl, tp, tl, type, v);
		if (rc < 0)
			s->st.fold_errors++;
		return;
	}
}

/* Makes r's name and tags and caches them for k; *np and *tp point to them (in the cache,
 * or in name and tags when the line cannot be cached). */
static gb_statsd_line *
make_and_cache(gb_statsd_sink *s, const gb_record *r, const gb_statsd_key *k, char *name,
    size_t *nl, char *tags, size_t *tl)
{
	uint64_t dropped = s->st.tags_dropped, capped = gb__taglim_capped(s->lim);
	uint64_t renamed = s->st.tags_renamed, ncapped = gb__taglim_capped(s->names_lim);
	gb_statsd_line *e;

	s->st.line_cache_misses++;
	make_line_parts(s, r, name, nl, tags, tl);
	if (k == NULL || (e = gb__statsd_cache_put(s->cache, k, name, *nl, tags, *tl)) == NULL)
		return NULL;
	e->tags_dropped = (uint16_t)(s->st.tags_dropped - dropped);
	e->values_capped = (uint16_t)(gb__taglim_capped(s->lim) - capped);
	e->tags_renamed = (uint16_t)(s->st.tags_renamed - renamed);
	e->name_capped = (uint16_t)(gb__taglim_capped(s->names_lim) - ncapped);
	return e;
}

void
gb__statsd_record(gb_statsd_sink *s, const gb_record *r)
{
	char name[GB_STATSD_NAME_MAX + 1];
	char tags[GB_STATSD_UNIX_MAX];
	gb_statsd_key k;
	const char *np = name, *tp = tags;
	size_t nl, tl;
	double v = r->value;
	gb_statsd_line *e = NULL;

	if (!isfinite(v) || (r->kind == GB_REC_TIMING && v < 0)) {
		s->st.values_rejected++;
		return;
	}
	/* pairs the producer could not fit in its record (an older one only flags it) */
	s->st.tags_dropped += r->meta_dropped > 0 ? r->meta_dropped :
	    (r->flags & GB_REC_F_META_DROPPED) != 0;
	if (gb__statsd_cache_key(r, &k) && (e = gb__statsd_cache_find(s->cache, &k)) != NULL) {
		s->st.tags_dropped += e->tags_dropped;
		s->st.tags_renamed += e->tags_renamed;
		s->capped_on_hits += e->values_capped;
		s->names_capped_on_hits += e->name_capped;
	} else {
		e = make_and_cache(s, r, k.ident != NULL ? &k : NULL, name, &nl, tags, &tl);
	}
	if (e != NULL) {
		np = e->text;
		nl = e->name_len;
		tp = e->text + nl;
		tl = e->tags_len;
	}
	take_value(s, r, np, nl, tp, tl, e != NULL ? &e->pack : NULL);
}

static void
emit_folded(void *ctx, const char *name, size_t name_len, const char *tags, size_t tags_len,
    enum gb_agg_type type, double v)
{
	gb_statsd_sink *s = ctx;

	if (!isfinite(v)) { /* a sum of finite values can still overflow */
		s->st.values_rejected++;
		return;
	}
	emit_line(s, name, name_len, v, type == GB_AGG_COUNTER ? "c" : "g", tags, tags_len);
}

static void
emit_backlog(void *ctx, const char *name, size_t name_len, const char *tags, size_t tags_len,
    enum gb_agg_type type, double v)
{
	gb_statsd_sink *s = ctx;
	char val[GB_STATSD_VALUE_MAX];
	uint64_t sec;

	if (!isfinite(v)) {
		s->st.values_rejected++;
		return;
	}
	memcpy(&sec, tags + tags_len - 8, 8);
	emit_text(s, name, name_len, val, gb__statsd_value(val, v),
	    type == GB_AGG_COUNTER ? "c" : "g", tags, tags_len - 8, sec);
}

void
gb__statsd_flush_read(gb_statsd_sink *s)
{
	if (s->packed != NULL)
		gb__statsd_pack_flush(s->packed, emit_packed, s);
	gb__statsd_flush(s);
}

void
gb__statsd_flush_aggregates(gb_statsd_sink *s)
{
	gb__agg_flush(s->backlog, emit_backlog, s);
	gb__agg_flush(s->agg, emit_folded, s);
	if (s->packed != NULL)
		gb__statsd_pack_flush(s->packed, emit_packed, s);
	gb__statsd_flush(s);
}

void
gb__statsd_metric(gb_statsd_sink *s, const char *name, double v, char type, const char *tag)
{
	char tags[GB_STATSD_TAG_MAX + 1 + GB_STATSD_GLOBAL_TAGS_MAX];
	char ty[2] = { type, '\0' };
	size_t tl = 0, nl;

	if (!isfinite(v)) {
		s->st.values_rejected++;
		return;
	}
	if (tag != NULL) {
		tl = strlen(tag);
		if (tl > GB_STATSD_TAG_MAX)
			tl = GB_STATSD_TAG_MAX;
		memcpy(tags, tag, tl);
	}
	if (s->global_len > 0) {
		if (tl > 0)
			tags[tl++] = ',';
		memcpy(tags + tl, s->global, s->global_len);
		tl += s->global_len;
	}
	nl = strnlen(name, GB_STATSD_NAME_MAX);
	if (tl > tag_room(s, nl)) {
		s->st.tags_dropped++;
		tl = 0;
	}
	emit_line(s, name, nl, v, ty, tags, tl);
}

void
gb__statsd_get_stats(const gb_statsd_sink *s, gb_statsd_stats *out)
{
	*out = s->st;
	out->tag_values_capped = gb__taglim_capped(s->lim) + s->capped_on_hits;
	out->names_capped = gb__taglim_capped(s->names_lim) + s->names_capped_on_hits;
	out->contexts_dropped = gb__agg_dropped(s->agg) + gb__agg_dropped(s->backlog);
}
