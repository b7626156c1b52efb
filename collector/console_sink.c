/*
 * console_sink.c - console lines and the summary report. The lines match the in-process console
 * reporter's (processor/reporter_console.c) field for field. Scopes are folded into a small hash
 * table of per-scope figures (calls, total, max, a fixed-size sketch for p50/p95: sketch.c) of
 * at most max_scopes entries, records of further scopes counted; the tree is only built when a
 * report is printed. Producer bytes are escaped (controls, C1 included, and bytes that are not
 * UTF-8): a scope name must not be able to drive the terminal.
 *
 * Output never stalls the drain: each line is formatted whole into a line buffer, queued
 * (at most QUEUE_MAX bytes) and written only when poll says the descriptor has room, in chunks
 * of whole lines of at most PIPE_BUF bytes, which a pipe with room takes without blocking. A
 * reader that falls behind costs whole lines, counted (only a line longer than PIPE_BUF can be
 * left half-written at exit).
 */
#include "console_sink.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "hash.h"
#include "sketch.h"
#include "text.h"

#define LINE_MAX_BYTES (32 * 1024) /* one line; a longer one is cut and ends in "...\n" */
#define LINE_END_ROOM 4            /* kept free for "...\n" */
#define QUEUE_MAX (1024 * 1024)    /* bytes waiting for a slow reader */
#define QUEUE_FLUSH_AT (64 * 1024) /* queued bytes that trigger a write */
#define SUMMARY_WAIT_NS (1000ull * GB_NS_PER_MS) /* a summary line waits this for room */
#define RETRY_NS (10ull * GB_NS_PER_MS) /* after finding no room, how long until we look again */

struct scope_stats {
	char *name;
	size_t len, parent_len;
	bool timing;       /* timings and metrics of one name are kept apart */
	uint64_t calls;
	double total, max;
	gb_sketch *sketch; /* timings only */
	size_t *children;  /* built for a report only */
	size_t n_children;
};

struct gb_console_sink {
	enum gb_console_mode mode;
	int fd;
	bool regular;      /* a regular file: always writable, written whole */
	bool stalled;      /* a wait for the reader ran out; no more waits until a write works */
	uint64_t retry_ns; /* no room when last looked: no look before this without a wait */
	uint64_t lines_dropped;
	char *queue;       /* QUEUE_MAX bytes */
	size_t qlen;
	char line[LINE_MAX_BYTES];
	size_t llen;
	bool cut;
	size_t max_scopes;
	uint64_t capped;   /* records of scopes past max_scopes, not summarised */
	struct scope_stats *scopes;
	size_t n, cap;
	uint32_t *slots; /* index + 1 */
	size_t nslots;
};

int
gb__console_parse_mode(const char *text, enum gb_console_mode *out)
{
	if (strcmp(text, "lines") == 0)
		*out = GB_CONSOLE_LINES;
	else if (strcmp(text, "summary") == 0)
		*out = GB_CONSOLE_SUMMARY;
	else if (strcmp(text, "off") == 0)
		*out = GB_CONSOLE_OFF;
	else
		return -1;
	return 0;
}

gb_console_sink *
gb__console_new(enum gb_console_mode mode, int fd, size_t max_scopes)
{
	gb_console_sink *c = calloc(1, sizeof(*c));
	struct stat st;

	if (c == NULL)
		return NULL;
	c->mode = mode;
	c->fd = fd;
	c->regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	c->max_scopes = max_scopes ? max_scopes : GB_CONSOLE_MAX_SCOPES;
	if (mode != GB_CONSOLE_OFF && (c->queue = malloc(QUEUE_MAX)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
gb__console_free(gb_console_sink *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->scopes[i].name);
		free(c->scopes[i].sketch);
		free(c->scopes[i].children);
	}
	free(c->scopes);
	free(c->slots);
	free(c->queue);
	free(c);
}

uint64_t
gb__console_lines_dropped(const gb_console_sink *c)
{
	return c->lines_dropped;
}

uint64_t
gb__console_summary_capped(const gb_console_sink *c)
{
	return c->capped;
}

/* ---- the output queue ---- */

static uint64_t
count_lines(const char *s, size_t len)
{
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

/* Writes queued bytes while the descriptor has room, waiting for room until wait_ns has
 * passed (0: not at all, and not even a look within RETRY_NS of finding no room; no waits
 * while stalled). A write error (the reader is gone) drops the queue, counted. */
static void
queue_write(gb_console_sink *c, uint64_t wait_ns)
{
	uint64_t now = gb__clock_mono_ns();
	uint64_t end = now + (c->stalled ? 0 : wait_ns);
	size_t off = 0;

	if (wait_ns == 0 && now < c->retry_ns)
		return;
	while (off < c->qlen) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		int ms = now < end ? (int)((end - now + GB_NS_PER_MS - 1) / GB_NS_PER_MS) : 0;
		size_t n = c->qlen - off;
		ssize_t w;
		int rc = c->regular ? 1 : poll(&p, 1, ms);

		if (rc < 0 && errno == EINTR) {
			now = gb__clock_mono_ns();
			continue;
		}
		if (rc == 0) {
			if (wait_ns > 0)
				c->stalled = true;
			c->retry_ns = gb__clock_mono_ns() + RETRY_NS;
			break;
		}
		if (rc < 0)
			goto broken;
		if (!c->regular && n > PIPE_BUF) {
			/* whole lines only, so a reader never holds half a line while the rest
			 * waits here (a line over PIPE_BUF bytes goes out in pieces) */
			const char *nl = memrchr(c->queue + off, '\n', PIPE_BUF);

			n = nl != NULL ? (size_t)(nl - (c->queue + off)) + 1 : PIPE_BUF;
		}
		w = write(c->fd, c->queue + off, n);
		now = gb__clock_mono_ns();
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* a descriptor someone made non-blocking: no room after all */
			c->retry_ns = now + RETRY_NS;
			break;
		}
		if (w <= 0)
			goto broken;
		off += (size_t)w;
		c->stalled = false;
	}
	if (off > 0) {
		memmove(c->queue, c->queue + off, c->qlen - off);
		c->qlen -= off;
	}
	return;
broken:
	c->lines_dropped += count_lines(c->queue + off, c->qlen - off);
	c->qlen = 0;
}

/* Queues the finished line; when the queue has no room for it, writes what the descriptor
 * takes (waiting up to wait_ns) and drops the line, counted, if there is still no room. */
static void
line_out(gb_console_sink *c, uint64_t wait_ns)
{
	if (c->cut) {
		memcpy(c->line + c->llen, "...\n", 4);
		c->llen += 4;
	}
	if (c->qlen + c->llen > QUEUE_MAX)
		queue_write(c, wait_ns);
	if (c->qlen + c->llen > QUEUE_MAX) {
		c->lines_dropped++;
	} else {
		memcpy(c->queue + c->qlen, c->line, c->llen);
		c->qlen += c->llen;
	}
	c->llen = 0;
	c->cut = false;
	if (c->qlen >= QUEUE_FLUSH_AT)
		queue_write(c, 0);
}

/* ---- formatting into the line buffer ---- */

static size_t
line_room(const gb_console_sink *c)
{
	return LINE_MAX_BYTES - LINE_END_ROOM - c->llen;
}

static void
put(gb_console_sink *c, const char *s, size_t len)
{
	size_t room = line_room(c);

	if (len > room) {
		len = room;
		c->cut = true;
	}
	memcpy(c->line + c->llen, s, len);
	c->llen += len;
}

static void
puts_(gb_console_sink *c, const char *s)
{
	put(c, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
putf(gb_console_sink *c, const char *fmt, ...)
{
	size_t room = line_room(c);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->line + c->llen, room + 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > room) {
		n = (int)room;
		c->cut = true;
	}
	c->llen += (size_t)n;
}

/* Appends len untrusted bytes, escaping what a terminal would act on: C0 controls, DEL, '\',
 * the C1 controls (U+0080..U+009F, e.g. the CSI \xc2\x9b) and bytes that are not UTF-8. */
static void
put_escaped(gb_console_sink *c, const char *s, size_t len)
{
	size_t start = 0, i = 0;

	while (i < len && !c->cut) {
		size_t n = s[i] == '\\' ? 0 : gb__text_printable(s + i, len - i);

		if (n > 0) {
			i += n;
			continue;
		}
		put(c, s + start, i - start);
		putf(c, "\\x%02x", (unsigned char)s[i]);
		start = ++i;
	}
	if (!c->cut)
		put(c, s + start, len - start);
}

static void
put_meta(gb_console_sink *c, const gb_record *r, const char *metric_type)
{
	bool first = true;

	puts_(c, " (");
	if (metric_type != NULL) {
		putf(c, "metric_type=%s", metric_type);
		first = false;
	}
	putf(c, "%sdepth=%u", first ? "" : ", ", (unsigned)r->depth);
	if (r->parent_len > 0) {
		puts_(c, ", parent_scope=");
		put_escaped(c, r->scope, r->parent_len);
	}
	putf(c, ", call_count=%u", (unsigned)r->call_count);
	for (size_t i = 0; i < r->n_meta; i++) {
		puts_(c, ", ");
		put_escaped(c, r->meta[i].key, r->meta[i].key_len);
		puts_(c, "=");
		put_escaped(c, r->meta[i].value, r->meta[i].value_len);
	}
	puts_(c, ")\n");
}

static void
print_line(gb_console_sink *c, const gb_record *r)
{
	/* a full queue and a reader that had no room when last looked: the line would be
	 * dropped, so do not spend the formatting on it */
	if (c->qlen > QUEUE_MAX - LINE_MAX_BYTES && gb__clock_mono_ns() < c->retry_ns) {
		c->lines_dropped++;
		return;
	}
	if (r->kind == GB_REC_TIMING) {
		puts_(c, "[TIMING] ");
		for (unsigned i = 0; i < r->depth && i < 64; i++)
			puts_(c, "  ");
		put_escaped(c, r->scope, r->scope_len);
		putf(c, ": duration=%.4fs", r->value);
		put_meta(c, r, NULL);
	} else {
		puts_(c, "[METRIC] ");
		put_escaped(c, r->scope, r->scope_len);
		putf(c, ": %.15g", r->value);
		put_meta(c, r, r->kind == GB_REC_COUNTER ? "counter" :
		    r->kind == GB_REC_GAUGE ? "gauge" : r->kind == GB_REC_HISTOGRAM ? "histogram" :
		    NULL);
	}
	line_out(c, 0);
}

static long
find(const gb_console_sink *c, const char *s, size_t len, bool timing, size_t *slot)
{
	size_t j;

	if (c->nslots == 0)
		return -1;
	for (j = gb__hash_mix(gb__hash_more(GB_HASH_SEED + timing, s, len)) & (c->nslots - 1); c->slots[j] != 0;
	    j = (j + 1) & (c->nslots - 1)) {
		const struct scope_stats *st = &c->scopes[c->slots[j] - 1];

		if (st->timing == timing && st->len == len && memcmp(st->name, s, len) == 0)
			return (long)(c->slots[j] - 1);
	}
	if (slot != NULL)
		*slot = j;
	return -1;
}

static int
grow(gb_console_sink *c)
{
	if (c->n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		struct scope_stats *s = realloc(c->scopes, cap * sizeof(*s));

		if (s == NULL)
			return -1;
		c->scopes = s;
		c->cap = cap;
	}
	if ((c->n + 1) * 2 > c->nslots) {
		size_t ns = c->nslots ? c->nslots * 2 : 64;
		uint32_t *slots = calloc(ns, sizeof(*slots));

		if (slots == NULL)
			return -1;
		for (size_t i = 0; i < c->n; i++) {
			const struct scope_stats *st = &c->scopes[i];
			size_t j = gb__hash_mix(gb__hash_more(GB_HASH_SEED + st->timing, st->name, st->len)) & (ns - 1);

			while (slots[j] != 0)
				j = (j + 1) & (ns - 1);
			slots[j] = (uint32_t)(i + 1);
		}
		free(c->slots);
		c->slots = slots;
		c->nslots = ns;
	}
	return 0;
}

static struct scope_stats *
scope_for(gb_console_sink *c, const gb_record *r)
{
	bool timing = r->kind == GB_REC_TIMING;
	size_t slot;
	long i = find(c, r->scope, r->scope_len, timing, &slot);
	struct scope_stats *st;

	if (i >= 0)
		return &c->scopes[i];
	if (c->n >= c->max_scopes) {
		c->capped++;
		return NULL;
	}
	if (grow(c) < 0)
		return NULL;
	(void)find(c, r->scope, r->scope_len, timing, &slot);
	st = &c->scopes[c->n];
	memset(st, 0, sizeof(*st));
	st->name = malloc(r->scope_len + 1);
	st->sketch = timing ? malloc(sizeof(*st->sketch)) : NULL;
	if (st->name == NULL || (timing && st->sketch == NULL)) {
		free(st->name);
		free(st->sketch);
		return NULL;
	}
	if (timing)
		gb__sketch_init(st->sketch);
	memcpy(st->name, r->scope, r->scope_len);
	st->name[r->scope_len] = '\0';
	st->len = r->scope_len;
	st->parent_len = r->parent_len;
	st->timing = timing;
	c->slots[slot] = (uint32_t)(c->n + 1);
	return &c->scopes[c->n++];
}

void
gb__console_record(gb_console_sink *c, const gb_record *r)
{
	struct scope_stats *st;

	if (c->mode == GB_CONSOLE_LINES) {
		print_line(c, r);
		return;
	}
	if (c->mode != GB_CONSOLE_SUMMARY || (st = scope_for(c, r)) == NULL)
		return;
	if (st->calls == 0 || r->value > st->max)
		st->max = r->value;
	st->calls++;
	st->total += r->value;
	if (st->sketch != NULL)
		gb__sketch_add(st->sketch, r->value);
}

static const gb_console_sink *sort_sink;

static int
cmp_scope(const void *a, const void *b)
{
	const struct scope_stats *x = &sort_sink->scopes[*(const size_t *)a];
	const struct scope_stats *y = &sort_sink->scopes[*(const size_t *)b];
	size_t n = x->len < y->len ? x->len : y->len;
	int d = memcmp(x->name, y->name, n);

	return d != 0 ? d : (x->len > y->len) - (x->len < y->len);
}

static void
print_timing(gb_console_sink *c, size_t i, unsigned level)
{
	struct scope_stats *st = &c->scopes[i];

	for (unsigned k = 0; k < level && k < 64; k++)
		puts_(c, "  ");
	put_escaped(c, st->name, st->len);
	putf(c, ": calls=%llu avg=%.4fs p50=%.4fs p95=%.4fs max=%.4fs total=%.4fs\n",
	    (unsigned long long)st->calls, st->total / (double)st->calls,
	    gb__sketch_percentile(st->sketch, 50), gb__sketch_percentile(st->sketch, 95), st->max,
	    st->total);
	line_out(c, SUMMARY_WAIT_NS);
	for (size_t k = 0; k < st->n_children; k++)
		print_timing(c, st->children[k], level + 1);
}

void
gb__console_summary(gb_console_sink *c)
{
	size_t *order = NULL, *parent = NULL;
	size_t nt = 0, nm = 0;

	if (c->mode != GB_CONSOLE_SUMMARY)
		goto out;
	order = malloc((c->n + 1) * sizeof(*order));
	parent = malloc((c->n + 1) * sizeof(*parent));
	if (order == NULL || parent == NULL)
		goto out;
	for (size_t i = 0; i < c->n; i++) {
		order[i] = i;
		free(c->scopes[i].children);
		c->scopes[i].children = NULL;
		c->scopes[i].n_children = 0;
		if (c->scopes[i].timing)
			nt++;
		else
			nm++;
	}
	sort_sink = c;
	qsort(order, c->n, sizeof(*order), cmp_scope);
	/* children lists in name order; a timing whose parent never reported is a root */
	for (size_t k = 0; k < c->n; k++) {
		struct scope_stats *st = &c->scopes[order[k]];
		long p = -1;

		if (st->timing && st->parent_len > 0 && st->parent_len < st->len)
			p = find(c, st->name, st->parent_len, true, NULL);
		parent[order[k]] = p >= 0 ? (size_t)p : SIZE_MAX;
		if (p >= 0) {
			struct scope_stats *ps = &c->scopes[p];
			size_t *ch = realloc(ps->children, (ps->n_children + 1) * sizeof(*ch));

			if (ch == NULL) {
				parent[order[k]] = SIZE_MAX;
				continue;
			}
			ps->children = ch;
			ps->children[ps->n_children++] = order[k];
		}
	}
	puts_(c, "=== gbatch telemetry summary ===\n");
	line_out(c, SUMMARY_WAIT_NS);
	putf(c, "timings (%zu scopes):\n", nt);
	line_out(c, SUMMARY_WAIT_NS);
	for (size_t k = 0; k < c->n; k++)
		if (c->scopes[order[k]].timing && parent[order[k]] == SIZE_MAX)
			print_timing(c, order[k], 1);
	putf(c, "metrics (%zu):\n", nm);
	line_out(c, SUMMARY_WAIT_NS);
	for (size_t k = 0; k < c->n; k++) {
		const struct scope_stats *st = &c->scopes[order[k]];

		if (st->timing)
			continue;
		puts_(c, "  ");
		put_escaped(c, st->name, st->len);
		putf(c, ": count=%llu total=%.15g\n", (unsigned long long)st->calls, st->total);
		line_out(c, SUMMARY_WAIT_NS);
	}
	if (c->capped > 0) {
		putf(c, "not summarised: %llu records of scopes past the first %zu\n",
		    (unsigned long long)c->capped, c->max_scopes);
		line_out(c, SUMMARY_WAIT_NS);
	}
out:
	free(order);
	free(parent);
	gb__console_flush(c, 0);
}

void
gb__console_flush(gb_console_sink *c, uint64_t wait_ns)
{
	if (c->qlen > 0)
		queue_write(c, wait_ns);
}

void
gb__console_finish(gb_console_sink *c, uint64_t wait_ns)
{
	gb__console_flush(c, wait_ns);
	c->lines_dropped += count_lines(c->queue, c->qlen);
	c->qlen = 0;
}
