/*
 * record.c - encode and decode telemetry records. The encoder is on the producer's hot path:
 * one pass, fixed-size stores, no allocation. The decoder checks every length against what is
 * left before it looks at the bytes, because another process wrote them.
 */
#include "record.h"

#include <assert.h>
#include <string.h>

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static void
put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint16_t
get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static size_t
kept_meta(const gb_record *r)
{
	return min_size(r->n_meta, GB_REC_MAX_META);
}

static size_t
put_key(char *key, size_t n, size_t max, const void *p, size_t len)
{
	if (n > max || len > max - n)
		return max + 1;
	memcpy(key + n, p, len);
	return n + len;
}

/* The wire form of r's scope and metadata, untruncated, into buf; max + 1 when too long. */
static size_t
put_tail(const gb_record *r, uint8_t *buf, size_t max)
{
	size_t n;

	if (r->scope_len > max)
		return max + 1;
	n = put_key((char *)buf, 0, max, r->scope, r->scope_len);
	for (size_t i = 0; i < r->n_meta && n <= max; i++) {
		uint16_t l[2] = { (uint16_t)r->meta[i].key_len, (uint16_t)r->meta[i].value_len };

		if (r->meta[i].key_len > max || r->meta[i].value_len > max)
			return max + 1;
		n = put_key((char *)buf, n, max, l, sizeof(l));
		n = put_key((char *)buf, n, max, r->meta[i].key, r->meta[i].key_len);
		n = put_key((char *)buf, n, max, r->meta[i].value, r->meta[i].value_len);
	}
	return n;
}

const uint8_t *
gb__rec_ident(const gb_record *r, uint8_t *buf, size_t max, uint64_t *head, size_t *len)
{
	const uint8_t *p = r->tail;
	size_t n = r->tail_len;

	if (p == NULL) {
		if ((n = put_tail(r, buf, max)) > max)
			return NULL;
		p = buf;
	} else if (n > max) {
		return NULL;
	}
	/* each field fits its bits: n <= max <= 65535 bounds scope_len, and parent_len and
	 * n_meta are checked */
	if (max > UINT16_MAX || r->parent_len > r->scope_len || r->n_meta > UINT8_MAX)
		return NULL;
	*head = (uint64_t)r->kind | (uint64_t)r->depth << 8 | (uint64_t)r->parent_len << 24 |
	    (uint64_t)r->scope_len << 40 | (uint64_t)r->n_meta << 56;
	*len = n;
	return p;
}

size_t
gb__rec_size(const gb_record *r)
{
	size_t n = GB_REC_HEADER_SIZE + min_size(r->scope_len, GB_REC_MAX_SCOPE);
	size_t nm = kept_meta(r);

	for (size_t i = 0; i < nm; i++)
		n += 4 + min_size(r->meta[i].key_len, GB_REC_MAX_KEY) +
		    min_size(r->meta[i].value_len, GB_REC_MAX_VALUE);
	return n;
}

void
gb__rec_write(const gb_record *r, uint8_t *buf, size_t size)
{
	size_t scope_len = min_size(r->scope_len, GB_REC_MAX_SCOPE);
	size_t nm = kept_meta(r);
	uint8_t flags = r->flags & GB_REC_F_ALL;
	uint8_t *p;

	if (scope_len < r->scope_len)
		flags |= GB_REC_F_SCOPE_TRUNC;
	if (nm < r->n_meta || r->meta_dropped > 0)
		flags |= GB_REC_F_META_DROPPED;

	p = buf + GB_REC_HEADER_SIZE;
	if (scope_len > 0)
		memcpy(p, r->scope, scope_len);
	p += scope_len;
	for (size_t i = 0; i < nm; i++) {
		const gb_rec_kv *kv = &r->meta[i];
		size_t kl = min_size(kv->key_len, GB_REC_MAX_KEY);
		size_t vl = min_size(kv->value_len, GB_REC_MAX_VALUE);

		if (kl < kv->key_len)
			flags |= GB_REC_F_KEY_TRUNC;
		if (vl < kv->value_len)
			flags |= GB_REC_F_VALUE_TRUNC;
		put16(p, (uint16_t)kl);
		put16(p + 2, (uint16_t)vl);
		if (kl > 0)
			memcpy(p + 4, kv->key, kl);
		if (vl > 0)
			memcpy(p + 4 + kl, kv->value, vl);
		p += 4 + kl + vl;
	}
	assert((size_t)(p - buf) == size);
	(void)size;
	gb__rec_put_header(buf, r, flags, nm, scope_len, min_size(r->parent_len, scope_len),
	    (size_t)r->meta_dropped + (r->n_meta - nm));
}

size_t
gb__rec_encode(const gb_record *r, uint8_t *buf, size_t cap)
{
	size_t need = gb__rec_size(r);

	if (cap < need)
		return 0;
	gb__rec_write(r, buf, need);
	return need;
}

int
gb__rec_decode(const uint8_t *buf, size_t len, gb_record *out, gb_rec_kv meta[GB_REC_MAX_META])
{
	size_t off, scope_len, parent_len, nm;

	if (len < GB_REC_HEADER_SIZE || buf[0] != GB_REC_VERSION)
		return -1;
	if (buf[1] < GB_REC_TIMING || buf[1] > GB_REC_HISTOGRAM)
		return -1;
	nm = buf[3];
	scope_len = get16(buf + 14);
	parent_len = get16(buf + 16);
	if (nm > GB_REC_MAX_META || scope_len > GB_REC_MAX_SCOPE || parent_len > scope_len ||
	    (buf[2] & ~GB_REC_F_ALL) != 0 ||
	    (get16(buf + 18) != 0 && (buf[2] & GB_REC_F_META_DROPPED) == 0))
		return -1;
	if (len - GB_REC_HEADER_SIZE < scope_len)
		return -1;

	out->kind = buf[1];
	out->flags = buf[2];
	out->pid = get32(buf + 4);
	out->tid = get32(buf + 8);
	out->depth = get16(buf + 12);
	out->call_count = get32(buf + 20);
	out->meta_dropped = get16(buf + 18);
	memcpy(&out->ts_ns, buf + 24, sizeof(out->ts_ns));
	memcpy(&out->value, buf + 32, sizeof(out->value));
	out->scope = (const char *)buf + GB_REC_HEADER_SIZE;
	out->scope_len = scope_len;
	out->parent_len = parent_len;

	off = GB_REC_HEADER_SIZE + scope_len;
	for (size_t i = 0; i < nm; i++) {
		size_t kl, vl;

		if (len - off < 4)
			return -1;
		kl = get16(buf + off);
		vl = get16(buf + off + 2);
		off += 4;
		if (kl > GB_REC_MAX_KEY || vl > GB_REC_MAX_VALUE || len - off < kl + vl)
			return -1;
		meta[i].key = (const char *)buf + off;
		meta[i].key_len = kl;
		meta[i].value = (const char *)buf + off + kl;
		meta[i].value_len = vl;
		off += kl + vl;
	}
	if (off != len)
		return -1;
	out->meta = meta;
	out->n_meta = nm;
	out->tail = buf + GB_REC_HEADER_SIZE;
	out->tail_len = len - GB_REC_HEADER_SIZE;
	return 0;
}
