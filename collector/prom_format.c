/*
 * prom_format.c - the Prometheus side of hostile input and the text exposition format:
 * label names and values made valid whatever a producer wrote, numbers written so they read
 * back exactly, the bucket list of --prometheus-buckets, and a snapshot rendered as format
 * 0.0.4 (HELP and TYPE for every family, each family's samples together, cumulative buckets
 * ending in +Inf). Rendering runs on the HTTP thread and touches only the snapshot.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "prom_internal.h"

const double gb__prom_default_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
	5, 10, 20, 30, 60, 120 };
const size_t gb__prom_n_default_buckets = sizeof(gb__prom_default_buckets) /
    sizeof(gb__prom_default_buckets[0]);

static bool
is_alnum_(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

size_t
gb__prom_label_name(char *out, const char *key, size_t len)
{
	size_t n = 0;
	bool last_replaced = false;

	if (len > 0 && key[0] >= '0' && key[0] <= '9')
		out[n++] = '_';
	for (size_t i = 0; i < len && n < GB_PROM_LABEL_MAX; i++) {
		unsigned char c = (unsigned char)key[i];

		if (is_alnum_(c)) {
			out[n++] = (char)c;
			last_replaced = false;
		} else if (!last_replaced) {
			out[n++] = '_';
			last_replaced = true;
		}
	}
	return n;
}

bool
gb__prom_label_reserved(const char *name, size_t len)
{
	static const char *const fixed[] = { "le", "job", "instance", "depth", "parent_scope",
		"quantile" };

	if (len >= 2 && name[0] == '_' && name[1] == '_')
		return true;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strlen(fixed[i]) == len && memcmp(fixed[i], name, len) == 0)
			return true;
	return false;
}

/* Bytes of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is not one: no
 * overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t k;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		k = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		k = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		k = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

size_t
gb__prom_label_value(char *out, const char *value, size_t len)
{
	const unsigned char *v = (const unsigned char *)value;
	size_t n = 0;

	if (len > GB_PROM_LABEL_MAX)
		len = GB_PROM_LABEL_MAX;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_len(v + i, len - i);

		if (k == 0 || (k == 1 && (v[i] < 0x20 || v[i] == 0x7f) && v[i] != '\n') ||
		    (k == 2 && v[i] == 0xc2 && v[i + 1] < 0xa0)) {
			out[n++] = '_'; /* invalid, a control byte or a C1 control */
			i += k == 0 ? 1 : k;
			continue;
		}
		if (v[i] == '\\' || v[i] == '"') {
			out[n++] = '\\';
			out[n++] = (char)v[i];
		} else if (v[i] == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else {
			memcpy(out + n, v + i, k);
			n += k;
		}
		i += k;
	}
	return n;
}

/* Writes the integer v (|v| < 2^53) in decimal: the common case, bucket counts, without
 * snprintf. */
static size_t
integer(char *out, double v)
{
	char tmp[24];
	size_t n = 0, k = 0;
	uint64_t u = (uint64_t)fabs(v);

	if (v < 0)
		out[k++] = '-';
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	while (n > 0)
		out[k++] = tmp[--n];
	return k;
}

size_t
gb__prom_number(char *out, double v)
{
	if (isnan(v))
		return (size_t)snprintf(out, 32, "NaN");
	if (isinf(v))
		return (size_t)snprintf(out, 32, "%s", v > 0 ? "+Inf" : "-Inf");
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return integer(out, v);
	for (int prec = 15; prec < 17; prec++) {
		int n = snprintf(out, 32, "%.*g", prec, v);

		if (strtod(out, NULL) == v)
			return (size_t)n;
	}
	return (size_t)snprintf(out, 32, "%.17g", v);
}

int
gb__prom_parse_buckets(const char *text, double *bounds, char *err, size_t errlen)
{
	char item[64];
	int n = 0;
	const char *p = text;

	for (;;) {
		size_t len = strcspn(p, ",");
		uint64_t ns;
		char why[128];

		if (len == 0 || len >= sizeof(item)) {
			snprintf(err, errlen, "\"%s\": %s", text, len == 0 ? "an empty item" :
			    "an item too long");
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (strspn(item, "0123456789.") == len && len + 1 < sizeof(item))
			memcpy(item + len, "s", 2); /* a bare number is seconds, as Prometheus writes */
		if (gb__parse_duration(item, &ns, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "\"%s\": %s", text, why);
			return -1;
		}
		if (ns == 0) {
			snprintf(err, errlen, "\"%s\": bucket \"%.*s\" is not above 0", text, (int)len,
			    p);
			return -1;
		}
		if (n == GB_PROM_MAX_BUCKETS) {
			snprintf(err, errlen, "\"%s\": more than %d buckets", text, GB_PROM_MAX_BUCKETS);
			return -1;
		}
		bounds[n] = (double)ns / 1e9;
		if (n > 0 && bounds[n] <= bounds[n - 1]) {
			snprintf(err, errlen, "\"%s\": bucket \"%.*s\" is not above the one before it "
			    "(bounds must be strictly increasing)", text, (int)len, p);
			return -1;
		}
		n++;
		if (p[len] == '\0')
			return n;
		p += len + 1;
	}
}

/* ---- snapshots ---- */

gb_prom_snap *
gb__prom_snap_new(void)
{
	return calloc(1, sizeof(gb_prom_snap));
}

void
gb__prom_snap_free(gb_prom_snap *s)
{
	if (s == NULL)
		return;
	free(s->text);
	free(s->fam);
	free(s->ser);
	free(s->val);
	free(s);
}

/* Makes room for need elements of size sz in *arr (capacity *cap). */
static int
grow(void **arr, size_t *cap, size_t need, size_t sz)
{
	size_t c = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	if ((p = realloc(*arr, c * sz)) == NULL)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

int
gb__prom_snap_text(gb_prom_snap *s, const char *p, size_t len, size_t *off)
{
	if (grow((void **)&s->text, &s->text_cap, s->text_len + len, 1) < 0)
		return -1;
	if (len > 0)
		memcpy(s->text + s->text_len, p, len);
	*off = s->text_len;
	s->text_len += len;
	return 0;
}

int
gb__prom_snap_vals(gb_prom_snap *s, size_t n, size_t *off)
{
	if (grow((void **)&s->val, &s->val_cap, s->n_val + n, sizeof(double)) < 0)
		return -1;
	*off = s->n_val;
	s->n_val += n;
	return 0;
}

/* ---- rendering ---- */

struct out {
	char *p;
	size_t n;
};

static void
put(struct out *o, const char *p, size_t len)
{
	if (len == 0)
		return; /* p may be NULL */
	memcpy(o->p + o->n, p, len);
	o->n += len;
}

static void
put_s(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
put_num(struct out *o, double v)
{
	o->n += gb__prom_number(o->p + o->n, v);
}

/* name[suffix]{labels[,extra]} value\n */
static void
sample(struct out *o, const gb_prom_snap *s, const struct gb_prom_snap_fam *f,
    const struct gb_prom_snap_ser *se, const char *suffix, const char *extra, size_t extra_len,
    double v)
{
	put(o, s->text + f->name_off, f->name_len);
	put_s(o, suffix);
	if (se->labels_len > 0 || extra_len > 0) {
		put(o, "{", 1);
		put(o, s->text + se->labels_off, se->labels_len);
		if (se->labels_len > 0 && extra_len > 0)
			put(o, ",", 1);
		put(o, extra, extra_len);
		put(o, "}", 1);
	}
	put(o, " ", 1);
	put_num(o, v);
	put(o, "\n", 1);
}

/* The le="..." label of each bucket bound of a family, written once per family. */
struct les {
	char text[GB_PROM_MAX_BUCKETS][48];
	size_t len[GB_PROM_MAX_BUCKETS];
};

static void
make_les(struct les *l, const struct gb_prom_snap_fam *f)
{
	for (size_t b = 0; b < f->n_bounds && b < GB_PROM_MAX_BUCKETS; b++) {
		size_t n = 4;

		memcpy(l->text[b], "le=\"", 4);
		n += gb__prom_number(l->text[b] + n, f->bounds[b]);
		l->text[b][n++] = '"';
		l->len[b] = n;
	}
}

static void
render_series(struct out *o, const gb_prom_snap *s, const struct gb_prom_snap_fam *f,
    const struct gb_prom_snap_ser *se, const struct les *les)
{
	const double *v = s->val + se->val_off;
	double cum = 0;

	if (f->type != GB_PROM_HISTOGRAM) {
		sample(o, s, f, se, "", NULL, 0, v[0]);
		return;
	}
	for (size_t b = 0; b < f->n_bounds; b++) {
		cum += v[2 + b];
		sample(o, s, f, se, "_bucket", les->text[b], les->len[b], cum);
	}
	sample(o, s, f, se, "_bucket", "le=\"+Inf\"", 9, v[0]);
	sample(o, s, f, se, "_sum", NULL, 0, v[1]);
	sample(o, s, f, se, "_count", NULL, 0, v[0]);
}

/* An upper bound of the rendered size. */
static size_t
render_size(const gb_prom_snap *s)
{
	size_t total = 0;

	for (size_t i = 0; i < s->n_fam; i++) {
		const struct gb_prom_snap_fam *f = &s->fam[i];
		size_t lines = f->type == GB_PROM_HISTOGRAM ? f->n_bounds + 3 : 1;

		total += 2 * f->name_len + f->help_len + 32;
		for (size_t k = f->first; k < f->first + f->n; k++)
			total += lines * (f->name_len + s->ser[k].labels_len + 8 + 4 + 1 + 48 + 1 + 32 + 1);
	}
	return total;
}

char *
gb__prom_render(const gb_prom_snap *s, size_t *len)
{
	static const char *const types[] = { "", "counter", "gauge", "histogram" };
	struct out o = { malloc(render_size(s) + 1), 0 };
	struct les les;

	if (o.p == NULL)
		return NULL;
	for (size_t i = 0; i < s->n_fam; i++) {
		const struct gb_prom_snap_fam *f = &s->fam[i];

		if (f->n == 0)
			continue;
		put_s(&o, "# HELP ");
		put(&o, s->text + f->name_off, f->name_len);
		put(&o, " ", 1);
		put(&o, s->text + f->help_off, f->help_len);
		put_s(&o, "\n# TYPE ");
		put(&o, s->text + f->name_off, f->name_len);
		put(&o, " ", 1);
		put_s(&o, types[f->type]);
		put(&o, "\n", 1);
		if (f->type == GB_PROM_HISTOGRAM)
			make_les(&les, f);
		for (size_t k = f->first; k < f->first + f->n; k++)
			render_series(&o, s, f, &s->ser[k], &les);
	}
	*len = o.n;
	return o.p;
}
