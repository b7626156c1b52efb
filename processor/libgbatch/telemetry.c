/*
 * telemetry.c - the telemetry context: per-thread scope stacks, call counts, fan-out to reporters.
 * A disabled context is one shared static no-op object, so a scope on it is a pointer compare
 * and nothing else: no clock read, no thread-local lookup.
 *
 * Call counts: one entry per distinct path, allocated once and never moved, its count an
 * atomic, in a table read without a lock (telemetry_counts.c). Every thread keeps a small
 * cache from (name pointer, enclosing scope's entry) to the entry, checked against the name's
 * text, so a record on a path it has seen hashes nothing and copies no path: the entry holds
 * the full path, and its length, that the reporters receive. The shm reporter is called with
 * those lengths (nothing is measured twice); a scope's edges read the tick clock (clock.h) once
 * each.
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
#include "record.h"
#include "reporter_shm.h"
#include "telemetry_internal.h"

struct gb_tele {
	gb_reporter *reps;
	gb_shm_reporter **shm; /* per reporter: the shm reporter it is, else NULL */
	size_t n_reps;
	atomic_bool *failed;  /* per reporter: a failure has been logged */
	uint64_t gen;         /* tells this context from a later one at the same address */
	gb__counts counts;    /* the call counts: one entry per distinct path */
};

/* A thread's cache: what `name` under the scope whose entry is `up` (NULL at top level)
 * resolved to last time. */
struct cache_slot {
	const char *name;
	const struct gb__count_entry *up;
	struct gb__count_entry *e;
};

#define CACHE_SLOTS 64 /* a power of two */

/* An open scope. Its metadata live in the stack's string buffer, "key\0value\0...", after
 * its path when it has no entry (the entry holds the path otherwise). */
struct frame {
	uint64_t start;            /* tick clock at begin */
	size_t buf_off;            /* where this frame's part of the buffer starts */
	size_t path_off, path_len; /* the path in the buffer, when there is no entry */
	size_t kv_off;             /* "key\0value\0..." in the buffer */
	uint64_t hash; /* of the path, so nested paths hash only their own name */
	struct gb__count_entry *e; /* the path's entry: NULL when the table was full */
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
	uint64_t last_tick; /* start ticks are made strictly increasing: they identify frames */
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
/* in static TLS (initial-exec): one load per record, not a call into the dynamic loader */
static _Thread_local struct thread_state *tls __attribute__((tls_model("initial-exec")));

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
	t->shm = calloc(n ? n : 1, sizeof(*t->shm));
	t->failed = calloc(n ? n : 1, sizeof(*t->failed));
	if (t->reps == NULL || t->shm == NULL || t->failed == NULL ||
	    gb__counts_init(&t->counts) != 0) {
		free(t->reps);
		free(t->shm);
		free(t->failed);
		free(t);
		return NULL;
	}
	if (n > 0)
		memcpy(t->reps, reporters, n * sizeof(*reporters));
	t->n_reps = n;
	for (size_t i = 0; i < n; i++) {
		atomic_init(&t->failed[i], false);
		t->shm[i] = gb__shm_reporter_of(&reporters[i]);
	}
	t->gen = atomic_fetch_add(&next_gen, 1);
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
	gb__counts_fini(&t->counts);
	free(t->failed);
	free(t->shm);
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

static struct cache_slot *
cache_slot(struct stack *st, const char *name, const struct gb__count_entry *up)
{
	uintptr_t k = (uintptr_t)name ^ ((uintptr_t)up * 0x9e3779b97f4a7c15u);

	return &st->cache[(k ^ (k >> 17)) & (CACHE_SLOTS - 1)];
}

/* The entry of "<innermost scope of st>.<name>" (name at top level): from the thread's cache
 * when it has resolved this name here before, else composed, looked up and cached. NULL when
 * the path has no entry (table full, out of memory); then p, when not NULL, describes the
 * path composed at the end of the buffer (p->len == SIZE_MAX: not even that). */
static inline __attribute__((always_inline)) struct gb__count_entry *
resolve(gb_tele *t, struct stack *st, const char *name, struct path *p)
{
	const struct frame *up = st->depth > 0 ? &st->frames[st->depth - 1] : NULL;
	struct cache_slot *c = cache_slot(st, name, up ? up->e : NULL);
	struct gb__count_entry *e;

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
	e = gb__counts_find(&t->counts, st->buf + p->off, p->len, p->hash);
	if (e != NULL && (up == NULL || up->e != NULL))
		*c = (struct cache_slot){ name, up ? up->e : NULL, e };
	return e;
}

/* One more record of entry e: the new count (0 without an entry). */
static unsigned
count_bump(struct gb__count_entry *e)
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

/* One record as the reporters receive it, beside its value and metadata: the full path, its
 * length and its parent's (the path's first parent_len bytes, 0 at top level), and its kind. */
struct out {
	const char *scope;
	size_t len, parent_len;
	uint8_t kind; /* GB_REC_* */
};

/* Hands the record to every reporter: the shm reporter with the lengths, the others through
 * their callbacks. */
static inline __attribute__((always_inline)) void
report(gb_tele *t, const struct out *o, double v, const gb_tele_meta *m)
{
	bool timing = o->kind == GB_REC_TIMING;

	for (size_t i = 0; i < t->n_reps; i++) {
		const gb_reporter *r = &t->reps[i];
		int rc;

		if (t->shm[i] != NULL)
			rc = gb__shm_reporter_write(t->shm[i], o->kind, o->scope, o->len, o->parent_len,
			    v, m);
		else if (timing)
			rc = r->record_timing != NULL ? r->record_timing(r->self, o->scope, v, m) : 0;
		else
			rc = r->record_metric != NULL ? r->record_metric(r->self, o->scope, v, m) : 0;
		if (rc != 0)
			reporter_failed(t, i, timing ? "timing" : "metric", o->scope);
	}
}

size_t
gb__tele_memory(const gb_tele *t)
{
	return t == NULL || t == &gb__tele_noop ? 0 : gb__counts_memory(&t->counts);
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
	struct gb__count_entry *e = resolve(t, st, name, &p);
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
	uint64_t now = gb__clock_tick();
	if (now <= st->last_tick)
		now = st->last_tick + 1;
	st->last_tick = now;
	f.start = now;
	st->frames[st->depth] = f;
	s.tele = t;
	s.start_ns = now;
	s.depth = st->depth++;
	return s;
oom:
	gb__log_warnx("telemetry: out of memory; scope \"%s\" is not recorded", name);
	return s;
}

/* Reports frame i of st (the innermost one), which ended at tick now, and pops it. */
static void
end_frame(gb_tele *t, struct stack *st, unsigned i, uint64_t now)
{
	struct frame *f = &st->frames[i];
	gb_kv inline_kv[META_INLINE], *kv = inline_kv;
	struct out o = { .kind = GB_REC_TIMING };
	const char *p;

	o.scope = frame_path(st, f, &o.len);
	if (f->n_kv > META_INLINE && (kv = malloc(f->n_kv * sizeof(*kv))) == NULL) {
		gb__log_warnx("telemetry: out of memory; timing of \"%s\" is not recorded", o.scope);
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
		.parent_scope = i > 0 ? frame_path(st, &st->frames[i - 1], &o.parent_len) : NULL,
		.call_count = count_bump(f->e),
		.metric_type = NULL,
		.extra = kv,
		.n_extra = f->n_kv,
	};
	report(t, &o, (double)gb__clock_ticks_ns(f->start, now) / 1e9, &m);
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
	now = gb__clock_tick();
	if (t != s->tele) {
		gb__log_warnx("telemetry: usage error: scope ended on another context than it began on");
		t = s->tele;
	}
	s->tele = NULL;
	st = find_stack(t);
	if (st == NULL || s->depth >= st->depth || st->frames[s->depth].start != s->start_ns) {
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

/* Places name at this thread's current position in t: fills m's depth, parent_scope and
 * call_count and o's path and lengths (the path is name itself at top level). False when out
 * of memory (logged, the record is lost). The path is the entry's, or one composed in the
 * thread's stack buffer when the path has no entry. */
static inline __attribute__((always_inline)) bool
place(gb_tele *t, const char *name, gb_tele_meta *m, struct out *o)
{
	struct stack *st = get_stack(t);
	struct gb__count_entry *e;
	struct path p;

	if (st == NULL) { /* no thread state: at top level, without the cache */
		o->len = strlen(name);
		e = gb__counts_find(&t->counts, name, o->len, gb__hash_more(GB_HASH_SEED, name, o->len));
		m->call_count = count_bump(e);
		o->scope = name;
		return true;
	}
	e = resolve(t, st, name, &p);
	if (e == NULL && p.len == SIZE_MAX) {
		gb__log_warnx("telemetry: out of memory; \"%s\" is not recorded", name);
		return false;
	}
	if (st->depth > 0) {
		m->depth = (int)st->depth;
		m->parent_scope = frame_path(st, &st->frames[st->depth - 1], &o->parent_len);
	}
	m->call_count = count_bump(e);
	o->scope = e != NULL ? e->path : st->buf + p.off;
	o->len = e != NULL ? e->len : p.len;
	return true;
}

static void
record(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n, const char *type,
    uint8_t kind)
{
	gb_tele_meta m = { .metric_type = type, .extra = meta, .n_extra = n };
	struct out o = { .kind = kind };

	if (place(t, name, &m, &o))
		report(t, &o, v, &m);
}

void
gb__tele_timing(gb_tele *t, const char *name, double seconds, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "timing"))
		return;
	record(t, name, seconds, meta, n, NULL, GB_REC_TIMING);
}

void
gb__tele_histogram(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "histogram"))
		return;
	record(t, name, v, meta, n, "histogram", GB_REC_HISTOGRAM);
}

void
gb_tele_metric(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "metric"))
		return;
	record(t, name, v, meta, n, NULL, GB_REC_METRIC);
}

void
gb_tele_count(gb_tele *t, const char *name, double inc, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "counter"))
		return;
	record(t, name, inc, meta, n, "counter", GB_REC_COUNTER);
}

void
gb_tele_gauge(gb_tele *t, const char *name, double v, const gb_kv *meta, size_t n)
{
	if (t == &gb__tele_noop || t == NULL || !name_ok(name, "gauge"))
		return;
	record(t, name, v, meta, n, "gauge", GB_REC_GAUGE);
}
