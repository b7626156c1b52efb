/*
 * ring.c - the segment of the shared-memory telemetry ring: names, the identity check,
 * creating, attaching to, closing and removing it. What either side checks later is in
 * ring_watch.c, the producer side in ring_produce.c, the consumer side in ring_consume.c, the
 * byte layout in ring_layout.h.
 */
#include "ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define ATTACH_WAIT_NS (1000ull * GB_NS_PER_MS) /* for a creator still initialising */
#define ATTACH_NAP_NS (2ull * GB_NS_PER_MS)
#define OPEN_ATTEMPTS 4                          /* create/attach races with unlinkers */

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint64_t
magic_value(void)
{
	uint64_t m;

	memcpy(&m, GB_RL_MAGIC, sizeof(m));
	return m;
}

static bool
is_pow2(uint64_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

/* ---- names ---- */

void
gb__ring_opts_init(gb_ring_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->capacity = GB_RING_DEFAULT_CAPACITY;
	o->mode = 0600;
	o->trusted_uid = -1;
	o->unblock_timeout_ns = GB_RING_DEFAULT_UNBLOCK_NS;
}

int
gb__ring_name_check(const char *name, char *err, size_t errlen)
{
	size_t i, n;

	if (name == NULL) {
		seterr(err, errlen, "ring name missing");
		return -1;
	}
	n = strlen(name);
	if (strchr(name, '/') != NULL) {
		if (n >= sizeof(((gb_ring *)0)->name)) {
			seterr(err, errlen, "ring path \"%.64s...\" is too long", name);
			return -1;
		}
		if (name[n - 1] == '/') {
			seterr(err, errlen, "ring path \"%s\" names a directory, not a file", name);
			return -1;
		}
		return 0;
	}
	if (n == 0 || n > GB_RING_NAME_MAX_LEN) {
		seterr(err, errlen, "ring name \"%.80s\" must be 1 to %d characters of "
		    "[A-Za-z0-9_-] (or a path containing '/')", name, GB_RING_NAME_MAX_LEN);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-')) {
			seterr(err, errlen, "ring name \"%s\" has a character outside "
			    "[A-Za-z0-9_-] at offset %zu (a path must contain '/')", name, i);
			return -1;
		}
	}
	return 0;
}

const char *
gb__ring_resolve_name(const char *name)
{
	if (name != NULL)
		return name;
	name = getenv("GBATCH_RING");
	if (name != NULL && name[0] != '\0')
		return name;
	return GB_RING_DEFAULT_NAME;
}

int
gb__ring_names(gb_ring *r, const char *name, char *err, size_t errlen)
{
	if (gb__ring_name_check(name, err, errlen) == -1)
		return -1;
	memcpy(r->name, name, strlen(name) + 1);
	r->is_path = strchr(name, '/') != NULL;
	if (r->is_path)
		memcpy(r->path, name, strlen(name) + 1);
	else
		snprintf(r->path, sizeof(r->path), "%s%s", GB_RING_SHM_DIR, name);
	return 0;
}

/* open(2) of the ring's file (what shm_open(3) does for a name): -1/errno. */
static int
ring_open_fd(const gb_ring *r, int flags, mode_t mode)
{
	return open(r->path, flags | O_RDWR | O_NOFOLLOW | O_CLOEXEC, mode);
}

static int
ring_unlink_name(const gb_ring *r)
{
	return unlink(r->path);
}

/* ---- the identity check (also the fuzz target) ---- */

int
gb__rl_check(const void *seg, size_t size, char *why, size_t whylen)
{
	const uint8_t *p = seg;
	uint64_t magic, cap, maxrec;
	uint16_t major, minor;
	uint32_t hsize;

	if (size < GB_RL_HEADER_SIZE) {
		seterr(why, whylen, "segment is %zu bytes, smaller than its %u-byte header",
		    size, GB_RL_HEADER_SIZE);
		return 1;
	}
	memcpy(&magic, p + offsetof(gb_rl_header, magic), sizeof(magic));
	if (magic == 0) {
		seterr(why, whylen, "segment is not initialised (no magic)");
		return 1;
	}
	if (magic != magic_value()) {
		seterr(why, whylen, "not a gbatch ring (bad magic)");
		return -1;
	}
	memcpy(&major, p + offsetof(gb_rl_header, version_major), sizeof(major));
	memcpy(&minor, p + offsetof(gb_rl_header, version_minor), sizeof(minor));
	memcpy(&hsize, p + offsetof(gb_rl_header, header_size), sizeof(hsize));
	memcpy(&cap, p + offsetof(gb_rl_header, capacity), sizeof(cap));
	memcpy(&maxrec, p + offsetof(gb_rl_header, max_record), sizeof(maxrec));
	if (major != GB_RL_VERSION_MAJOR) {
		seterr(why, whylen, "layout version %u.%u, this program reads version %d.x",
		    major, minor, GB_RL_VERSION_MAJOR);
		return -1;
	}
	if (hsize != GB_RL_HEADER_SIZE) {
		seterr(why, whylen, "header size %u, expected %u", hsize, GB_RL_HEADER_SIZE);
		return -1;
	}
	if (!is_pow2(cap) || cap < GB_RING_MIN_CAPACITY || cap > GB_RING_MAX_CAPACITY) {
		seterr(why, whylen, "capacity %llu is not a power of two in [%u, %u]",
		    (unsigned long long)cap, GB_RING_MIN_CAPACITY, GB_RING_MAX_CAPACITY);
		return -1;
	}
	if (maxrec != gb__rl_max_record(cap)) {
		seterr(why, whylen, "max record size %llu, expected %llu for capacity %llu",
		    (unsigned long long)maxrec, (unsigned long long)gb__rl_max_record(cap),
		    (unsigned long long)cap);
		return -1;
	}
	if (size != GB_RL_HEADER_SIZE + cap) {
		seterr(why, whylen, "segment is %zu bytes but its header says %llu",
		    size, (unsigned long long)(GB_RL_HEADER_SIZE + cap));
		return -1;
	}
	return 0;
}

/* ---- create and attach ---- */

/*
 * One mapping per segment per process: a producer and a consumer opened in the same
 * process (an embedded collector, the tests) share it, which also lets ThreadSanitizer
 * see their synchronisation. Keyed by device and inode, counted, under a mutex.
 */
struct mapping {
	struct mapping *next;
	dev_t dev;
	ino_t ino;
	void *map;
	size_t len;
	unsigned refs;
};

static pthread_mutex_t mappings_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mapping *mappings;

#define POPULATE_MAX (64u << 20) /* bytes of a new mapping mapped in at once, at most */

/* Maps the first POPULATE_MAX bytes of a new mapping's pages in now (MADV_POPULATE_WRITE,
 * Linux 5.14): otherwise this process's first lap round the ring takes a page fault every
 * 4 KiB on the producers' hot path (several microseconds each in a VM). Best effort: an older
 * kernel or a refusal (a full tmpfs) leaves the pages to fault in as they are touched, and a
 * page the file no longer has is an error here, not a SIGBUS. */
static void
populate(void *map, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	(void)madvise(map, len < POPULATE_MAX ? len : POPULATE_MAX, MADV_POPULATE_WRITE);
#else
	(void)map;
	(void)len;
#endif
}

/* Adopts map, len bytes of a validated segment (len = header + a power-of-two capacity),
 * for r, or the process's existing mapping of the same segment (then map is unmapped).
 * Returns 0, or -1 when out of memory (map is unmapped). */
static int
ring_map_set(gb_ring *r, int fd, void *map, size_t len)
{
	struct mapping *m;
	struct stat st;
	bool fresh = false;

	if (fstat(fd, &st) == -1) {
		munmap(map, len);
		return -1;
	}
	pthread_mutex_lock(&mappings_lock);
	for (m = mappings; m != NULL; m = m->next)
		if (m->dev == st.st_dev && m->ino == st.st_ino && m->len == len)
			break;
	if (m != NULL) {
		m->refs++;
		munmap(map, len);
	} else if ((m = calloc(1, sizeof(*m))) != NULL) {
		*m = (struct mapping){ mappings, st.st_dev, st.st_ino, map, len, 1 };
		mappings = m;
		fresh = true;
	} else {
		pthread_mutex_unlock(&mappings_lock);
		munmap(map, len);
		return -1;
	}
	pthread_mutex_unlock(&mappings_lock);
	if (fresh)
		populate(map, len);
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->map = m->map;
	r->map_len = len;
	r->hdr = m->map;
	r->data = r->map + GB_RL_HEADER_SIZE;
	/* from the validated size, not from bytes the other side could change since */
	r->capacity = len - GB_RL_HEADER_SIZE;
	r->mask = r->capacity - 1;
	r->lap_shift = (unsigned)__builtin_ctzll(r->capacity); /* a power of two: validated */
	r->max_record = gb__rl_max_record(r->capacity);
	return 0;
}

static void
ring_unmap(gb_ring *r)
{
	struct mapping **mp, *m;

	pthread_mutex_lock(&mappings_lock);
	for (mp = &mappings; (m = *mp) != NULL; mp = &m->next)
		if (m->map == (void *)r->map)
			break;
	assert(m != NULL);
	if (--m->refs == 0)
		*mp = m->next;
	else
		m = NULL;
	pthread_mutex_unlock(&mappings_lock);
	if (m != NULL) {
		munmap(m->map, m->len);
		free(m);
	}
}

/* Puts the file at tmp in place at path unless something is there already: 0, or -1/errno
 * (EEXIST: another creator won). */
static int
ring_put_in_place(const char *tmp, const char *path)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	/* a file system without RENAME_NOREPLACE: link is just as exclusive */
	if (link(tmp, path) == -1)
		return -1;
	unlink(tmp);
	return 0;
}

/*
 * The creator's side. The segment is made whole under a temporary name in the same directory
 * (sized, backed by posix_fallocate so that no later write can fault on a full tmpfs,
 * initialised, magic published last) and only then renamed into place: nobody ever sees a
 * half-made segment, and a failure leaves nothing behind. Returns GB_RING_OK with *fdp set,
 * GB_RING_BUSY when another creator put its segment in place first (attach to it), or an
 * error with err naming the ring.
 */
static int
ring_create(gb_ring *r, const gb_ring_opts *o, int *fdp, char *err, size_t errlen)
{
	static _Atomic unsigned tmp_seq;
	size_t len = GB_RL_HEADER_SIZE + o->capacity;
	char tmp[GB_RING_PATH_MAX + 48];
	gb_rl_header *h;
	void *map;
	int fd, e, rc = GB_RING_SYSERR;

	*fdp = -1;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new-%ld-%u", r->path, (long)getpid(),
	    atomic_fetch_add(&tmp_seq, 1)) >= sizeof(tmp)) {
		seterr(err, errlen, "ring \"%s\": path too long", r->name);
		return GB_RING_INVALID;
	}
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, o->mode)) == -1) {
		seterr(err, errlen, "ring \"%s\": cannot create the segment: %s", r->name,
		    strerror(errno));
		return GB_RING_SYSERR;
	}
	if (fchmod(fd, o->mode) == -1) {
		seterr(err, errlen, "ring \"%s\": cannot set the new segment's mode: %s",
		    r->name, strerror(errno));
		goto fail;
	}
	if ((e = posix_fallocate(fd, 0, (off_t)len)) != 0) {
		seterr(err, errlen, "ring \"%s\": cannot back its %zu-byte segment: %s%s",
		    r->name, len, strerror(e), e == ENOSPC ? " (the file system holding "
		    "it is full: free space or use a smaller ring)" : "");
		goto fail;
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		seterr(err, errlen, "ring \"%s\": cannot map the new segment: %s",
		    r->name, strerror(errno));
		goto fail;
	}
	h = map;
	h->version_major = GB_RL_VERSION_MAJOR;
	h->version_minor = GB_RL_VERSION_MINOR;
	h->header_size = GB_RL_HEADER_SIZE;
	h->capacity = o->capacity;
	h->max_record = gb__rl_max_record(o->capacity);
	h->created_ns = gb__clock_real_ns();
	atomic_store_explicit(&h->magic, magic_value(), memory_order_release);
	if (ring_put_in_place(tmp, r->path) == -1) {
		e = errno;
		munmap(map, len);
		if (e == EEXIST) {
			rc = GB_RING_BUSY;
		} else {
			seterr(err, errlen, "ring \"%s\": cannot put the new segment in place: %s",
			    r->name, strerror(e));
		}
		goto fail;
	}
	if (ring_map_set(r, fd, map, len) == -1) {
		seterr(err, errlen, "ring \"%s\": out of memory", r->name);
		ring_unlink_name(r);
		close(fd);
		return GB_RING_SYSERR;
	}
	*fdp = fd;
	return GB_RING_OK;
fail:
	unlink(tmp);
	close(fd);
	return rc;
}

/* Ownership and permission checks on an opened segment. */
static int
ring_check_stat(const gb_ring *r, const struct stat *st, const gb_ring_opts *o,
    char *err, size_t errlen)
{
	uid_t euid = geteuid();

	if (!S_ISREG(st->st_mode)) {
		seterr(err, errlen, "ring \"%s\": refused: not a regular file", r->name);
		return GB_RING_INVALID;
	}
	if (st->st_uid != euid && (o->trusted_uid < 0 || (uid_t)o->trusted_uid != st->st_uid)) {
		seterr(err, errlen, "ring \"%s\": refused: owned by uid %u, not by this "
		    "process's uid %u nor a trusted uid", r->name, (unsigned)st->st_uid,
		    (unsigned)euid);
		return GB_RING_INVALID;
	}
	if (st->st_mode & S_IWOTH) {
		seterr(err, errlen, "ring \"%s\": refused: writable by others (mode %04o)",
		    r->name, (unsigned)(st->st_mode & 07777));
		return GB_RING_INVALID;
	}
	if ((st->st_mode & S_IWGRP) && !(o->mode & S_IWGRP)) {
		seterr(err, errlen, "ring \"%s\": refused: writable by its group (mode %04o) "
		    "while this side expects mode %04o", r->name,
		    (unsigned)(st->st_mode & 07777), o->mode);
		return GB_RING_INVALID;
	}
	if (st->st_nlink != 1) {
		seterr(err, errlen, "ring \"%s\": refused: %lu hard links to the segment "
		    "(expected 1)", r->name, (unsigned long)st->st_nlink);
		return GB_RING_INVALID;
	}
	return GB_RING_OK;
}

/* The attaching side: validate, waiting a bounded time for a creator to finish. */
static int
ring_attach(gb_ring *r, int fd, const gb_ring_opts *o, char *err, size_t errlen)
{
	uint64_t deadline = gb__clock_mono_ns() + ATTACH_WAIT_NS;
	char why[256];
	struct stat st;
	void *map;
	size_t len;
	int rc;

	for (;;) {
		if (fstat(fd, &st) == -1) {
			seterr(err, errlen, "ring \"%s\": fstat: %s", r->name, strerror(errno));
			return GB_RING_SYSERR;
		}
		if ((rc = ring_check_stat(r, &st, o, err, errlen)) != GB_RING_OK)
			return rc;
		if (st.st_size < 0 || (uint64_t)st.st_size > GB_RL_HEADER_SIZE +
		    (uint64_t)GB_RING_MAX_CAPACITY) {
			seterr(err, errlen, "ring \"%s\": refused: segment size %lld is out of "
			    "range", r->name, (long long)st.st_size);
			return GB_RING_INVALID;
		}
		len = (size_t)st.st_size;
		rc = 1;
		snprintf(why, sizeof(why), "segment is empty");
		if (len >= GB_RL_HEADER_SIZE) {
			map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (map == MAP_FAILED) {
				seterr(err, errlen, "ring \"%s\": mmap: %s", r->name,
				    strerror(errno));
				return GB_RING_SYSERR;
			}
			if (atomic_load_explicit(&((gb_rl_header *)map)->magic,
			    memory_order_acquire) != 0)
				rc = gb__rl_check(map, len, why, sizeof(why));
			else
				snprintf(why, sizeof(why), "segment is not initialised (no magic)");
			if (rc == 0) {
				if (ring_map_set(r, fd, map, len) == -1) {
					seterr(err, errlen, "ring \"%s\": out of memory", r->name);
					return GB_RING_SYSERR;
				}
				return GB_RING_OK;
			}
			munmap(map, len);
		}
		if (rc < 0 || gb__clock_mono_ns() >= deadline) {
			seterr(err, errlen, "ring \"%s\": refused: %s%s", r->name, why,
			    rc > 0 ? " after waiting 1 s for its creator (remove it if stale)" : "");
			return GB_RING_INVALID;
		}
		gb__clock_sleep_ns(ATTACH_NAP_NS);
	}
}

static int
ring_open(gb_ring **out, const char *name, const gb_ring_opts *oin, bool consumer,
    char *err, size_t errlen)
{
	gb_ring_opts o;
	gb_ring *r;
	int fd = -1, rc = GB_RING_SYSERR, attempt;

	*out = NULL;
	if (oin != NULL)
		o = *oin;
	else
		gb__ring_opts_init(&o);
	if (o.capacity == 0)
		o.capacity = GB_RING_DEFAULT_CAPACITY;
	if (o.mode == 0)
		o.mode = 0600;
	if (o.unblock_timeout_ns == 0)
		o.unblock_timeout_ns = GB_RING_DEFAULT_UNBLOCK_NS;
	name = gb__ring_resolve_name(name);
	if (!is_pow2(o.capacity) || o.capacity < GB_RING_MIN_CAPACITY ||
	    o.capacity > GB_RING_MAX_CAPACITY) {
		seterr(err, errlen, "ring \"%s\": capacity %llu is not a power of two in "
		    "[64 KiB, 1 GiB]", name, (unsigned long long)o.capacity);
		return GB_RING_INVALID;
	}
	if (o.mode != 0600 && o.mode != 0660) {
		seterr(err, errlen, "ring \"%s\": mode %04o is neither 0600 nor 0660", name,
		    o.mode);
		return GB_RING_INVALID;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		seterr(err, errlen, "ring \"%s\": out of memory", name);
		return GB_RING_SYSERR;
	}
	r->fd = -1;
	r->slot = -1;
	r->consumer = consumer;
	r->unblock_ns = o.unblock_timeout_ns;
	if (gb__ring_names(r, name, err, errlen) == -1) {
		free(r);
		return GB_RING_INVALID;
	}
	for (attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
		if ((fd = ring_open_fd(r, 0, 0)) >= 0) {
			rc = ring_attach(r, fd, &o, err, errlen);
			break;
		}
		if (errno == ENOENT && o.no_create) {
			seterr(err, errlen, "ring \"%s\": no such segment", r->name);
			rc = GB_RING_NOT_FOUND;
			break;
		}
		if (errno == ENOENT) {
			rc = ring_create(r, &o, &fd, err, errlen);
			if (rc == GB_RING_BUSY)
				continue; /* another creator won: attach to its segment */
			break;
		}
		if (errno == ELOOP) {
			seterr(err, errlen, "ring \"%s\": refused: the segment is a symbolic link",
			    r->name);
			rc = GB_RING_INVALID;
		} else {
			seterr(err, errlen, "ring \"%s\": cannot open the segment: %s", r->name,
			    strerror(errno));
			rc = GB_RING_SYSERR;
		}
		break;
	}
	if (attempt == OPEN_ATTEMPTS) {
		seterr(err, errlen, "ring \"%s\": the segment keeps appearing and vanishing",
		    r->name);
		rc = GB_RING_SYSERR;
	}
	if (rc != GB_RING_OK) {
		if (fd >= 0)
			close(fd);
		free(r);
		return rc;
	}
	r->fd = fd;
	*out = r;
	return GB_RING_OK;
}

/* Takes a free, detached or dead producer slot; the heartbeat word is the lock. */
static void
producer_attach(gb_ring *r)
{
	uint64_t now = gb__clock_real_coarse_ns();
	unsigned i;

	atomic_fetch_add_explicit(&r->hdr->producers_ever, 1, memory_order_relaxed);
	for (i = 0; i < GB_RL_PRODUCERS; i++) {
		gb_rl_producer *p = &r->hdr->producers[i];
		uint64_t hb = atomic_load_explicit(&p->heartbeat_ns, memory_order_relaxed);

		if (hb != 0 && !(hb < now && now - hb > GB_RL_PRODUCER_STALE_NS))
			continue;
		if (!atomic_compare_exchange_strong_explicit(&p->heartbeat_ns, &hb, now,
		    memory_order_acq_rel, memory_order_relaxed))
			continue;
		atomic_store_explicit(&p->pid, (uint32_t)getpid(), memory_order_relaxed);
		atomic_store_explicit(&p->state, GB_RL_SLOT_ATTACHED, memory_order_release);
		r->slot = (int)i;
		return;
	}
}

int
gb__ring_open_producer(gb_ring **out, const char *name, const gb_ring_opts *o,
    char *err, size_t errlen)
{
	int rc = ring_open(out, name, o, false, err, errlen);

	if (rc == GB_RING_OK)
		producer_attach(*out);
	return rc;
}

int
gb__ring_open_consumer(gb_ring **out, const char *name, const gb_ring_opts *o,
    char *err, size_t errlen)
{
	gb_ring *r;
	int rc = ring_open(out, name, o, true, err, errlen);

	if (rc != GB_RING_OK)
		return rc;
	r = *out;
	if (flock(r->fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;

		if (e == EWOULDBLOCK)
			seterr(err, errlen, "ring \"%s\": another consumer (pid %u in its "
			    "namespace) is already reading it", r->name,
			    atomic_load_explicit(&r->hdr->consumer_pid, memory_order_relaxed));
		else
			seterr(err, errlen, "ring \"%s\": flock: %s", r->name, strerror(e));
		rc = e == EWOULDBLOCK ? GB_RING_BUSY : GB_RING_SYSERR;
		ring_unmap(r);
		close(r->fd);
		free(r);
		*out = NULL;
		return rc;
	}
	r->head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	r->released = r->head;
	gb__ring_finish_release(r);
	atomic_store_explicit(&r->hdr->consumer_pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&r->hdr->consumer_heartbeat_ns, gb__clock_real_coarse_ns(),
	    memory_order_relaxed);
	atomic_store_explicit(&r->hdr->sleeping, 0, memory_order_seq_cst);
	return GB_RING_OK;
}

void
gb__ring_close(gb_ring *r)
{
	if (r == NULL)
		return;
	if (atomic_load_explicit(&r->unusable, memory_order_acquire)) {
		/* shrunk (its pages may be gone) or given up: not one more access */
	} else if (r->consumer) {
		atomic_store_explicit(&r->hdr->sleeping, 0, memory_order_seq_cst);
		atomic_store_explicit(&r->hdr->consumer_pid, 0, memory_order_relaxed);
	} else if (r->slot >= 0) {
		gb_rl_producer *p = &r->hdr->producers[r->slot];

		atomic_store_explicit(&p->state, GB_RL_SLOT_DETACHED, memory_order_relaxed);
		atomic_store_explicit(&p->heartbeat_ns, 0, memory_order_release);
	}
	ring_unmap(r);
	close(r->fd);
	free(r);
}

int
gb__ring_unlink(const char *name, char *err, size_t errlen)
{
	gb_ring r;

	name = gb__ring_resolve_name(name);
	if (gb__ring_names(&r, name, err, errlen) == -1)
		return -1;
	if (ring_unlink_name(&r) == -1) {
		seterr(err, errlen, "ring \"%s\": cannot remove the segment: %s", name,
		    strerror(errno));
		return -1;
	}
	return 0;
}
