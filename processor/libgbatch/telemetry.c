/*
 * telemetry.c - the telemetry context: per-thread scope stacks, call counts, fan-out to reporters.
 * A disabled context is one shared static no-op object, so a scope on it is a pointer compare
 * and nothing else: no clock read, no thread-local lookup.
 *
 * Call counts: one entry per distinct path, allocated once and never moved, its count an
 * atomic. The table of entries takes a lock only to find a path this thread has not seen in
 * this place; every thread keeps a small cache from (name pointer, enclosing scope's entry) to
 * the entry, checked against the name's text, so a record on a path it has seen takes no lock,
 * hashes nothing and copies no path: the entry holds the full path the reporters receive.
 */
#include <gbatch/telemetry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hash.h"
#include "log.h"
#include "telemetry_internal.h"

struct gb_tele {
	gb_reporter *reps;
	size_t n_reps;
	atomic_bool *failed;  /* per reporter: a failure has been logged */
	uint64_t gen;         /* tells this context from a later one at the same address */
	pthread_mutex_t lock; /* guards the table of entries (never an entry's count) */
	struct count_entry **counts; /* open addressing, power-of-two size */
	size_t counts_cap, counts_used;
	bool counts_full;     /* GB_TELE_MAX_PATHS reached (warned once) */
};

/* One scope path and how often it has been recorded. Allocated once, freed with the context:
 * frames and the threads' caches point at it. */
struct count_entry {
	uint64_t hash;
	_Atomic unsigned count;
	size_t len;           /* path length */
	char path[];
};

/* A thread's cache: what `name` under the scope whose entry is `up` (NULL at top level)
 * resolved to last time. */
struct cache_slot {
	const char *name;
	const struct count_entry *up;
	struct count_entry *e;
};

#define CACHE_SLOTS 64 /* a power of two */

/* An open scope. Its metadata live in the stack's string buffer, "key\0value\0...", after
 * its path when it has no entry (the entry holds the path otherwise). */
struct frame {
	uint64_t start_ns;
	size_t buf_off;            /* where this frame's part of the buffer starts */
	size_t path_off, path_len; /* the path in the buffer, when there is no entry */
	size_t kv_off;             /* "key\0value\0..." in the buffer */
	uint64_t hash; /* of the path, so nested paths hash only their own name */
	struct count_entry *e;     /* the path's entry: NULL when the table was full */
	size_t n_kv;
};

/* A path written at the end of a stack's buffer. */
struct path {
	size_t off, len;
	uint64_t hash;
};

/* One thread's scopes on one context. */
struct stack {
	const gb_tele *tele;
	uint64_t gen;
	struct frame *frames;
	unsigned depth, frames_cap;
	char *buf;
	size_t len, buf_cap;
	uint64_t last_ns; /* start times are made strictly increasing: they identify frames */
	struct cache_slot cache[CACHE_SLOTS];
};

/* Everything a thread keeps: one stack per context it has used. */
struct thread_state {
	struct stack *stacks;
	size_t n, cap;
};

/* The shared no-op context: only its address matters (telemetry.h compares it inline). */
gb_tele gb__tele_noop;
static _Atomic uint64_t next_gen = 1;
static _Atomic int env_enabled = -1;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static _Thread_local struct thread_state *tls;

#define META_INLINE 16

static bool
env_is_one(const char *name)
{
	const char *v = getenv(name);
	return v != NULL && strcmp(v, "1") == 0;
}

/* GEMINI_TELEMETRY=1 or DEBUG=1, read on first use only. */
static bool
enabled_by_env(void)
{
	int e = atomic_load_explicit(&env_enabled, memory_order_relaxed);
	if (e < 0) {
		e = env_is_one("GEMINI_TELEMETRY") || env_is_one("DEBUG");
		atomic_store_explicit(&env_enabled, e, memory_order_relaxed);
	}
	return e == 1;
}

gb_tele *
gb_tele_new(const gb_reporter *reporters, size_t n, unsigned flags)
{
	gb_tele *t;

	if (flags & GB_TELE_DISABLE)
		return &gb__tele_noop;
	if (!(flags & GB_TELE_ENABLE) && !enabled_by_env())
		return &gb__tele_noop;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->reps = calloc(n ? n : 1, sizeof(*t->reps));
	t->failed = calloc(n ? n : 1, sizeof(*t->failed));
	t->counts_cap = 64;
	t->counts = calloc(t->counts_cap, sizeof(*t->counts));
	if (t->reps == NULL || t->failed == NULL || t->counts == NULL) {
		free(t->reps);
		free(t->failed);
		free(t->counts);
		free(t);
		return NULL;
	}
	if (n > 0)
		memcpy(t->reps, reporters, n * sizeof(*reporters));
	t->n_reps = n;
	for (size_t i = 0; i < n; i++)
		atomic_init(&t->failed[i], false);
	t->gen = atomic_fetch_add(&next_gen, 1);
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

static struct stack *find_stack(const gb_tele *t);

void
gb_tele_free(gb_tele *t)
{
	struct stack *st;

	if (t == NULL || t == &gb__tele_noop)
		return;
	/* This thread's stack for t becomes free for reuse; other threads' stacks are empty
	 * by contract, and a later context at this address has another gen. */
	if ((st = find_stack(t)) != NULL) {
		st->depth = 0;
		st->len = 0;
		st->tele = NULL;
	}
	for (size_t i = 0; i < t->counts_cap; i++)
		free(t->counts[i]);
	free(t->counts);
	pthread_mutex_destroy(&t->lock);
	free(t->failed);
	free(t->reps);
	free(t);
}

int
gb_tele_enabled(const gb_tele *t)
{
	return t != NULL && t != &gb__tele_noop;
}

/* ---- per-thread state ---- */

static void
thread_state_free(void *p)
{
	struct thread_state *ts = p;

	for (size_t i = 0; i < ts->n; i++) {
		free(ts->stacks[i].frames);
		free(ts->stacks[i].buf);
	}
	free(ts->stacks);
	free(ts);
	tls = NULL; /* a later destructor of this thread may record again: start afresh */
}

static bool key_ok;

/* Without a key a thread's state could not be freed at its exit: telemetry then records
 * nothing (a library never exits its caller's process). */
static void
key_create(void)
{
	if (pthread_key_create(&key, thread_state_free) == 0)
		key_ok = true;
	else
		gb__log_warnx("telemetry: cannot create a thread-local key; scopes are not recorded");
}

static struct thread_state *
thread_state(void)
{
	if (tls != NULL)
		return tls;
	pthread_once(&key_once, key_create);
	if (!key_ok || (tls = calloc(1, sizeof(*tls))) == NULL)
		return NULL;
	pthread_setspecific(key, tls);
	return tls;
}

/* This thread's stack for t, or NULL when it has none. */
static struct stack *
find_stack(const gb_tele *t)
{
	struct thread_state *ts = tls;

	if (ts == NULL)
		return NULL;
	for (size_t i = 0; i < ts->n; i++) {
		if (ts->stacks[i].tele == t && ts->stacks[i].gen == t->gen)
			return &ts->stacks[i];
	}
	return NULL;
}

/* This thread's stack for t, taking an empty one (of any context) or adding one. */
static struct stack *
get_stack(const gb_tele *t)
{
	struct thread_state *ts;
	struct stack *st;

	if ((st = find_stack(t)) != NULL)
		return st;
	if ((ts = thread_state()) == NULL)
		return NULL;
	for (size_t i = 0; i < ts->n; i++) {
		if (ts->stacks[i].depth == 0) {
			st = &ts->stacks[i];
			break;
		}
	}
	if (st == NULL) {
		if (ts->n == ts->cap) {
			size_t cap = ts->cap ? ts->cap * 2 : 4;
			struct stack *s = realloc(ts->stacks, cap * sizeof(*s));
			if (s == NULL)
				return NULL;
			ts->stacks = s;
			ts->cap = cap;
		}
		st = &ts->stacks[ts->n++];
		memset(st, 0, sizeof(*st));
	}
	if (st->tele != t || st->gen != t->gen)
		memset(st->cache, 0, sizeof(st->cache)); /* entries of another context */
	st->tele = t;
	st->gen = t->gen;
	st->len = 0;
	return st;
}

static bool
buf_reserve(struct stack *st, size_t more)
{
	size_t cap = st->buf_cap ? st->buf_cap : 256;
	char *b;

	if (st->len + more <= st->buf_cap)
		return true;
	while (cap < st->len + more)
		cap *= 2;
	if ((b = realloc(st->buf, cap)) == NULL)
		return false;
	st->buf = b;
	st->buf_cap = cap;
	return true;
}

static void
buf_put(struct stack *st, const char *s)
{
	size_t l = strlen(s) + 1;

	memcpy(st->buf + st->len, s, l);
	st->len += l;
}

/* ---- paths and call counts ---- */

/* The full path of frame f: its entry's, or the one kept in the buffer. */
static const char *
frame_path(const struct stack *st, const struct frame *f, size_t *len)
{
	if (f->e != NULL) {
		*len = f->e->len;
		return f->e->path;
	}
	*len = f->path_len;
	return st->buf + f->path_off;
}

/* Writes "<path of the innermost scope>.<name>" (or name) at the end of the buffer without
 * keeping it, and describes it in p. False when out of memory. */
static bool
compose_path(struct stack *st, const char *name, struct path *p)
{
	size_t nl = strlen(name), ul;
	const char *up;

	p->off = st->len;
	if (st->depth == 0) {
		if (!buf_reserve(st, nl + 1))
			return false;
		memcpy(st->buf + p->off, name, nl + 1);
		p->len = nl;
		p->hash = gb__hash_more(GB_HASH_SEED, name, nl);
		return true;
	}
	const struct frame *f = &st->frames[st->depth - 1];
	if (!buf_reserve(st, f->path_len + (f->e ? f->e->len : 0) + 1 + nl + 1))
		return false;
	up = frame_path(st, f, &ul); /* after the reserve: it may point into the buffer */
	memcpy(st->buf + p->off, up, ul);
	st->buf[p->off + ul] = '.';
	memcpy(st->buf + p->off + ul + 1, name, nl + 1);
	p->len = ul + 1 + nl;
	p->hash = gb__hash_more(gb__hash_more(f->hash, ".", 1), name, nl);
	return true;
}

static bool
counts_grow(gb_tele *t)
{
	size_t cap = t->counts_cap * 2;
	struct count_entry **c = calloc(cap, sizeof(*c));

	if (c == NULL)
		return false;
	for (size_t i = 0; i < t->counts_cap; i++) {
		if (t->counts[i] == NULL)
			continue;
		size_t j = gb__hash_mix(t->counts[i]->hash) & (cap - 1);
		while (c[j] != NULL)
			j = (j + 1) & (cap - 1);
		c[j] = t->counts[i];
	}
	free(t->counts);
	t->counts = c;
	t->counts_cap = cap;
	return true;
}

/* The entry of the path (len bytes, hash h) at path, added when new;
 * NULL when out of memory or, for a new path, once the table holds GB_TELE_MAX_PATHS (so a
 * program that makes up names keeps bounded memory; the paths already counted stay exact). */
static struct count_entry *
entry_find(gb_tele *t, const char *path, size_t len, uint64_t h)
{
	struct count_entry *e = NULL;

	pthread_mutex_lock(&t->lock);
	if (t->counts_used < GB_TELE_MAX_PATHS && 2 * (t->counts_used + 1) > t->counts_cap &&
	    !counts_grow(t))
		goto out;
	size_t j = gb__hash_mix(h) & (t->counts_cap - 1);
	while (t->counts[j] != NULL && (t->counts[j]->hash != h || t->counts[j]->len != len ||
	    memcmp(t->counts[j]->path, path, len) != 0))
		j = (j + 1) & (t->counts_cap - 1);
	if ((e = t->counts[j]) != NULL)
		goto out;
	if (t->counts_used >= GB_TELE_MAX_PATHS) {
		if (!t->counts_full)
			gb__log_warnx("telemetry: %d distinct scope and metric names; the "
			    "call counts of new ones are 0 from now on", GB_TELE_MAX_PATHS);
		t->counts_full = true;
		goto out;
	}
	if ((e = malloc(sizeof(*e) + len + 1)) == NULL)
		goto out;
	e->hash = h;
	atomic_init(&e->count, 0);
	e->len = len;
	memcpy(e->path, path, len + 1);
	t->counts[j] = e;
	t->counts_used++;
out:
	pthread_mutex_unlock(&t->lock);
	return e;
}

static struct cache_slot *
cache_slot(struct stack *st, const char *name, const struct count_entry *up)
{
	uintptr_t k = (uintptr_t)name ^ ((uintptr_t)up * 0x9e3779b97f4a7c15u);

	return &st->cache[(k ^ (k >> 17)) & (CACHE_SLOTS - 1)];
}

/* The entry of "<innermost scope of st>.<name>" (name at top level): from the thread's cache
 * when it has resolved this name here before, else composed, looked up and cached. NULL when
 * the path has no entry (table full, out of memory); then p, when not NULL, describes the
 * path composed at the end of the buffer (p->len == SIZE_MAX: not even that). */
static struct count_entry *
resolve(gb_tele *t, struct stack *st, const char *name, struct path *p)
{
	const struct frame *up = st->depth > 0 ? &st->frames[st->depth - 1] : NULL;
	struct cache_slot *c = cache_slot(st, name, up ? up->e : NULL);
	struct count_entry *e;

	/* the entry's path is "<up's path>.<name>" (name at top level): what follows up's path
	 * must be this name's text, however the entry was first reached (names may hold dots) */
	if (c->name == name && c->e != NULL && c->up == (up ? up->e : NULL) &&
	    (up == NULL || up->e != NULL) &&
	    strcmp(c->e->path + (up != NULL ? up->e->len + 1 : 0), name) == 0)
		return c->e;
	if (!compose_path(st, name, p)) {
		p->len = SIZE_MAX;
		return NULL;
	}
	e = entry_find(t, st->buf + p->off, p->len, p->hash);
	if (e != NULL && (up == NULL || up->e != NULL))
		*c = (struct cache_slot){ name, up ? up->e : NULL, e };
	return e;
}

/* One more record of entry e: the new count (0 without an entry). */
static unsigned
count_bump(struct count_entry *e)
{
	return e != NULL ? atomic_fetch_add_explicit(&e->count, 1, memory_order_relaxed) + 1 : 0;
}

/* ---- fan-out ---- */

static void
reporter_failed(gb_tele *t, size_t i, const char *what, const char *scope)
{
	if (!atomic_exchange(&t->failed[i], true))
		gb__log_warnx("telemetry: reporter %zu failed to record %s \"%s\"; "
		    "its later failures are not logged", i, what, scope);
}

static void
report_timing(gb_tele *t, const char *scope, double seconds, const gb_tele_meta *m)
{
	for (size_t i = 0; i < t->n_reps; i++) {
		const gb_reporter *r = &t->reps[i];
		if (r->record_timing != NULL && r->record_timing(r->self, scope, seconds, m) != 0)
			reporter_failed(t, i, "timing", scope);
	}
}

static void
report_metric(gb_tele *t, const char *scope, double value, const gb_tele_meta *m)
{
	for (size_t i = 0; i < t->n_reps; i++) {
		const gb_reporter *r = &t->reps[i];
		if (r->record_metric != NULL && r->record_metric(r->self, scope, value, m) != 0)
			reporter_failed(t, i, "metric", scope);
	}
}

/* ---- names ---- */

static atomic_bool unnamed_warned;

/* False for a NULL or empty name, which is refused as the seed refuses it ("Scope name must
 * be a non-empty string"): nothing is recorded, and the first refusal of the process is
 * logged. */
static bool
name_ok(const char *name, const char *what)
{
	if (name != NULL && name[0] != '\0')
		return true;
	if (!atomic_exchange(&unnamed_warned, true))
		gb__log_warnx("telemetry: a %s %s name is not recorded (the name must be a non-empty "
		    "string; later ones are not logged)", what, name == NULL ? "with a NULL" :
		    "with an empty");
	return false;
}

/* ---- scopes ---- */

gb_scope
gb_tele_begin(gb_tele *t, const char *name, const gb_kv *meta, size_t n)
{
	gb_scope s = { 0 };
	struct stack *st;
	struct path p;
	size_t need = 0;

	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "scope"))
		return s;
	if ((st = get_stack(t)) == NULL)
		goto oom;
	if (st->depth == st->frames_cap) {
		unsigned cap = st->frames_cap ? st->frames_cap * 2 : 8;
		struct frame *f = realloc(st->frames, cap * sizeof(*f));
		if (f == NULL)
			goto oom;
		st->frames = f;
		st->frames_cap = cap;
	}
	struct count_entry *e = resolve(t, st, name, &p);
	struct frame f = { .buf_off = st->len, .e = e, .n_kv = n };

	if (e != NULL) {
		f.hash = e->hash;
	} else if (p.len == SIZE_MAX) {
		goto oom;
	} else { /* no entry: the path stays in the buffer */
		f.path_off = p.off;
		f.path_len = p.len;
		f.hash = p.hash;
		st->len = p.off + p.len + 1;
	}
	f.kv_off = st->len;
	for (size_t i = 0; i < n; i++)
		need += strlen(meta[i].key) + strlen(meta[i].value) + 2;
	if (!buf_reserve(st, need)) {
		st->len = f.buf_off;
		goto oom;
	}
	for (size_t i = 0; i < n; i++) {
		buf_put(st, meta[i].key);
		buf_put(st, meta[i].value);
	}
	uint64_t now = gb__clock_mono_ns();
	if (now <= st->last_ns)
		now = st->last_ns + 1;
	st->last_ns = now;
	f.start_ns = now;
	st->frames[st->depth] = f;
	s.tele = t;
	s.start_ns = now;
	s.depth = st->depth++;
	return s;
oom:
	gb__log_warnx("telemetry: out of memory; scope \"%s\" is not recorded", name);
	return s;
}

/* Reports frame i of st (the innermost one) and pops it. */
static void
end_frame(gb_tele *t, struct stack *st, unsigned i, uint64_t now)
{
	struct frame *f = &st->frames[i];
	gb_kv inline_kv[META_INLINE], *kv = inline_kv;
	size_t len;
	const char *path = frame_path(st, f, &len);
	const char *p;

	if (f->n_kv > META_INLINE && (kv = malloc(f->n_kv * sizeof(*kv))) == NULL) {
		gb__log_warnx("telemetry: out of memory; timing of \"%s\" is not recorded", path);
		goto pop;
	}
	p = st->buf + f->kv_off;
	for (size_t k = 0; k < f->n_kv; k++) {
		kv[k].key = p;
		p += strlen(p) + 1;
		kv[k].value = p;
		p += strlen(p) + 1;
	}
	gb_tele_meta m = {
		.depth = (int)i,
		.parent_scope = i > 0 ? frame_path(st, &st->frames[i - 1], &len) : NULL,
		.call_count = count_bump(f->e),
		.metric_type = NULL,
		.extra = kv,
		.n_extra = f->n_kv,
	};
	report_timing(t, path, (double)(now - f->start_ns) / 1e9, &m);
	if (kv != inline_kv)
		free(kv);
pop:
	st->len = f->buf_off;
	st->depth = i;
}

void
gb_tele_end(gb_tele *t, gb_scope *s)
{
	struct stack *st;
	uint64_t now;
	size_t len;

	if (s == NULL || s->tele == NULL)
		return;
	now = gb__clock_mono_ns();
	if (t != s->tele) {
		gb__log_warnx("telemetry: usage error: scope ended on another context than it began on");
		t = s->tele;
	}
	s->tele = NULL;
	st = find_stack(t);
	if (st == NULL || s->depth >= st->depth || st->frames[s->depth].start_ns != s->start_ns) {
		/* Already closed by an out-of-order end (logged then), or ended on another thread. */
		if (st == NULL)
			gb__log_warnx("telemetry: usage error: scope ended on a thread it did not begin on");
		return;
	}
	if (s->depth + 1 != st->depth) {
		gb__log_warnx("telemetry: usage error: scope \"%s\" ended before its inner scope \"%s\"; "
		    "%u inner scope(s) closed unreported", frame_path(st, &st->frames[s->depth], &len),
		    frame_path(st, &st->frames[st->depth - 1], &len), st->depth - s->depth - 1);
		st->depth = s->depth + 1;
	}
	end_frame(t, st, s->depth, now);
}

void
gb__tele_scope_cleanup(gb_scope *s)
{
	if (s->tele != NULL)
		gb_tele_end(s->tele, s);
}

/* ---- metrics ---- */

/* Places name at this thread's current position in t: fills m's depth and parent_scope and
 * call_count, and returns the full path (name itself at top level), or NULL when out of
 * memory (logged, the record is lost). The path is the entry's, or one composed in the
 * thread's stack buffer when the path has no entry. */
static const char *
place(gb_tele *t, const char *name, gb_tele_meta *m)
{
	struct stack *st = get_stack(t);
	struct count_entry *e;
	struct path p;
	size_t len;

	if (st == NULL) { /* no thread state: at top level, without the cache */
		len = strlen(name);
		e = entry_find(t, name, len, gb__hash_more(GB_HASH_SEED, name, len));
		m->call_count = count_bump(e);
		return name;
	}
	e = resolve(t, st, name, &p);
	if (e == NULL && p.len == SIZE_MAX) {
		gb__log_warnx("telemetry: out of memory; \"%s\" is not recorded", name);
		return NULL;
	}
	if (st->depth > 0) {
		m->depth = (int)st->depth;
		m->parent_scope = frame_path(st, &st->frames[st->depth - 1], &len);
	}
	m->call_count = count_bump(e);
	return e != NULL ? e->path : st->buf + p.off;
}

static void
record(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n, const char *type)
{
	gb_tele_meta m = { .metric_type = type, .extra = meta, .n_extra = n };
	const char *path = place(t, name, &m);

	if (path != NULL)
		report_metric(t, path, v, &m);
}

void
gb__tele_timing(gb_tele *t, const char *name, double seconds, const gb_kv *meta, size_t n)
{
	gb_tele_meta m = { .extra = meta, .n_extra = n };
	const char *path;

	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "timing"))
		return;
	if ((path = place(t, name, &m)) != NULL)
		report_timing(t, path, seconds, &m);
}

void
gb__tele_histogram(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "histogram"))
		return;
	record(t, name, v, meta, n, "histogram");
}

void
gb_tele_metric(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "metric"))
		return;
	record(t, name, v, meta, n, NULL);
}

void
gb_tele_count(gb_tele *t, const char *name, double inc, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "counter"))
		return;
	record(t, name, inc, meta, n, "counter");
}

void
gb_tele_gauge(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "gauge"))
		return;
	record(t, name, v, meta, n, "gauge");
}
