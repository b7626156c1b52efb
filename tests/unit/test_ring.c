/* test_ring.c - the shared-memory ring in one process: names, claim/commit/read, the wrap,
 * aborts, limits, exact drop counts, segment validation refusals, the consumer lock,
 * unblocking stuck claims, corruption, futex wake-up, producer liveness, backed creation and
 * the segment checks (shrunk, removed, replaced) with the count of what a left one holds. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "clock.h"
#include "ring.h"
#include "ring_layout.h"

#define SMALL (64u << 10)

static char ring_name[64];
static char ring_file[128];

/* A fresh ring name per test (Check forks each test, so the pid is unique too). */
static void
setup(void)
{
	static unsigned n;

	snprintf(ring_name, sizeof(ring_name), "test-ring-%d-%u", (int)getpid(), n++);
	snprintf(ring_file, sizeof(ring_file), "/dev/shm/gbatch.%s", ring_name);
}

static void
teardown(void)
{
	gb__ring_unlink(ring_name, NULL, 0);
}

static gb_ring_opts
small_opts(void)
{
	gb_ring_opts o;

	gb__ring_opts_init(&o);
	o.capacity = SMALL;
	return o;
}

static gb_ring *
producer(const gb_ring_opts *o)
{
	char err[512];
	gb_ring *r = NULL;
	int rc = gb__ring_open_producer(&r, ring_name, o, err, sizeof(err));

	ck_assert_msg(rc == GB_RING_OK, "open producer: %d %s", rc, err);
	return r;
}

static gb_ring *
consumer(const gb_ring_opts *o)
{
	char err[512];
	gb_ring *r = NULL;
	int rc = gb__ring_open_consumer(&r, ring_name, o, err, sizeof(err));

	ck_assert_msg(rc == GB_RING_OK, "open consumer: %d %s", rc, err);
	return r;
}

/* Records seen by a handler: a sequence number at the front of each payload. */
struct seen {
	uint64_t n, next, bytes;
	uint16_t type;
	size_t last_len;
	bool out_of_order;
};

static void
on_seq(void *ctx, uint16_t type, const uint8_t *p, size_t len)
{
	struct seen *s = ctx;
	uint64_t seq;

	s->type = type;
	s->last_len = len;
	s->bytes += len;
	if (len >= sizeof(seq)) {
		memcpy(&seq, p, sizeof(seq));
		if (seq != s->next)
			s->out_of_order = true;
		s->next = seq + 1;
	}
	s->n++;
}

static int
write_seq(gb_ring *r, uint64_t seq, size_t len)
{
	uint8_t buf[GB_RL_MAX_RECORD_CAP];

	ck_assert_uint_ge(len, sizeof(seq));
	memset(buf, (int)(seq & 0xff), len);
	memcpy(buf, &seq, sizeof(seq));
	return gb__ring_write(r, GB_RING_TYPE_TELEMETRY, buf, len);
}

/* Rss of this process's mapping that starts at base, in KiB (from /proc/self/smaps), or -1. */
static long
mapping_rss_kib(const void *base)
{
	char line[512], start[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	bool in = false;
	long kib = -1;

	ck_assert_ptr_nonnull(f);
	snprintf(start, sizeof(start), "%lx-", (unsigned long)(uintptr_t)base);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (!in)
			in = strncmp(line, start, strlen(start)) == 0; /* the mapping's own line */
		else if (sscanf(line, "Rss: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/* A new mapping has its pages mapped in at open, so the first lap round the ring takes no page
 * fault on the producers' path: the whole segment is resident before anything is written. */
START_TEST(new_mapping_is_populated)
{
	gb_ring_opts o = small_opts();
	gb_ring *c;
	const void *base;
	size_t len;

	void *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(probe, MAP_FAILED);
	if (madvise(probe, 4096, MADV_POPULATE_WRITE) != 0 && errno == EINVAL) {
		fprintf(stderr, "new_mapping_is_populated: this kernel has no MADV_POPULATE_WRITE\n");
		munmap(probe, 4096);
		return;
	}
	munmap(probe, 4096);
	o.capacity = 4u << 20;
	c = consumer(&o);
	gb__ring_mapping(c, &base, &len);
	ck_assert_uint_eq(len, GB_RL_HEADER_SIZE + (4u << 20));
	ck_assert_int_ge(mapping_rss_kib(base), (long)(len / 1024));
	gb__ring_close(c);
}
END_TEST

START_TEST(names)
{
	static const char *const good[] = { "default", "a", "A-z_09", "./ring", "/dev/shm/x" };
	static const char *const bad[] = { "", "has space", "dot.ted", "x\n", "ümlaut",
		"0123456789012345678901234567890123456789012345678901234567890123456789" };
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(gb__ring_name_check(good[i], err, sizeof(err)) == 0, "%s", err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_int_eq(gb__ring_name_check(bad[i], err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "ring name") != NULL, "message: %s", err);
	}
}
END_TEST

START_TEST(claim_commit_read)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 };
	gb_ring_claim cl;
	gb_ring_stats st;

	ck_assert_int_eq(gb__ring_claim(p, 7, 20, &cl), GB_RING_OK);
	ck_assert_uint_eq(cl.len, 20);
	memset(cl.data, 0xab, 20);
	memcpy(cl.data, &(uint64_t){ 0 }, 8);
	/* not committed yet: nothing to read */
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 100), 0);
	gb__ring_commit(p, &cl);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 100), 1);
	ck_assert_uint_eq(s.type, 7);
	ck_assert_uint_eq(s.last_len, 20);
	ck_assert_int_eq(write_seq(p, 1, 8), GB_RING_OK);
	ck_assert_int_eq(write_seq(p, 2, 13), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 100), 2);
	ck_assert(!s.out_of_order);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.capacity, SMALL);
	ck_assert_uint_eq(st.max_record, 8192);
	ck_assert_uint_eq(st.head, st.tail);
	ck_assert_uint_eq(st.tail, 32 + 16 + 24);
	ck_assert_uint_eq(st.dropped_records, 0);
	ck_assert_str_eq(gb__ring_name(c), ring_name);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* The consumer zeroes what it read: the data area is all zero after a drain. */
static bool
data_all_zero(void)
{
	int fd = open(ring_file, O_RDONLY);
	const uint8_t *m;
	bool zero = true;
	size_t i;

	ck_assert_int_ge(fd, 0);
	m = mmap(NULL, GB_RL_HEADER_SIZE + SMALL, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	for (i = GB_RL_HEADER_SIZE; i < GB_RL_HEADER_SIZE + SMALL; i++)
		if (m[i] != 0)
			zero = false;
	munmap((void *)(uintptr_t)m, GB_RL_HEADER_SIZE + SMALL);
	close(fd);
	return zero;
}

START_TEST(wrap_with_padding)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 };
	gb_ring_stats st;
	uint64_t seq;

	/* 1000-byte records (stride 1008) never divide 64 KiB: every lap ends in padding */
	for (seq = 0; seq < 1000; seq++) {
		ck_assert_int_eq(write_seq(p, seq, 1000), GB_RING_OK);
		if (seq % 7 == 6)
			ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 1000), 7);
	}
	gb__ring_read(c, on_seq, &s, 1000);
	ck_assert_uint_eq(s.n, 1000);
	ck_assert(!s.out_of_order);
	gb__ring_stats(c, &st);
	ck_assert_uint_gt(st.tail, 15 * SMALL);
	ck_assert_uint_eq(st.head, st.tail);
	ck_assert_uint_ne(st.tail % 1008, 0); /* padding was inserted */
	ck_assert_uint_eq(st.dropped_records, 0);
	ck_assert(data_all_zero());
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

START_TEST(abort_is_skipped)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 };
	gb_ring_claim cl;
	gb_ring_stats st;

	ck_assert_int_eq(gb__ring_claim(p, 1, 100, &cl), GB_RING_OK);
	memset(cl.data, 0xee, 100);
	ck_assert_int_eq(write_seq(p, 0, 16), GB_RING_OK);
	gb__ring_abort(p, &cl);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 1);
	ck_assert_uint_eq(s.last_len, 16);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.dropped_records, 0);
	ck_assert_uint_eq(st.head, st.tail);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

START_TEST(max_record)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 };
	gb_ring_claim cl;
	gb_ring_stats st;

	ck_assert_int_eq(write_seq(p, 0, 8192), GB_RING_OK);
	ck_assert_int_eq(gb__ring_claim(p, 1, 8193, &cl), GB_RING_TOO_BIG);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 1);
	ck_assert_uint_eq(s.last_len, 8192);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.dropped_records, 1);
	ck_assert_uint_eq(st.dropped_bytes, 8193);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

START_TEST(full_drops_exactly)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 };
	gb_ring_stats st;
	uint64_t ok = 0, dropped = 0, seq;

	/* stride 104: 630 records fit in 64 KiB (65520 bytes), the 631st does not */
	for (seq = 0; seq < 1000; seq++) {
		int rc = write_seq(p, ok, 96);

		ck_assert(rc == GB_RING_OK || rc == GB_RING_FULL);
		if (rc == GB_RING_OK)
			ok++;
		else
			dropped++;
	}
	ck_assert_uint_eq(ok, 630);
	gb__ring_stats(p, &st);
	ck_assert_uint_eq(st.dropped_records, dropped);
	ck_assert_uint_eq(st.dropped_bytes, dropped * 96);
	ck_assert_uint_eq(st.tail - st.head, 630 * 104);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10000), 630);
	ck_assert(!s.out_of_order);
	/* room again after the read */
	ck_assert_int_eq(write_seq(p, ok, 96), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10000), 1);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

START_TEST(second_consumer_busy)
{
	gb_ring_opts o = small_opts();
	gb_ring *c = consumer(&o), *c2 = NULL;
	char err[512] = "";

	ck_assert_int_eq(gb__ring_open_consumer(&c2, ring_name, &o, err, sizeof(err)),
	    GB_RING_BUSY);
	ck_assert_ptr_null(c2);
	ck_assert_msg(strstr(err, ring_name) && strstr(err, "another consumer"), "%s", err);
	gb__ring_close(c);
	c2 = consumer(&o);
	gb__ring_close(c2);
}
END_TEST

START_TEST(no_create_and_bad_opts)
{
	gb_ring_opts o = small_opts();
	gb_ring *r = NULL;
	char err[512] = "";

	o.no_create = true;
	ck_assert_int_eq(gb__ring_open_producer(&r, ring_name, &o, err, sizeof(err)),
	    GB_RING_NOT_FOUND);
	ck_assert_msg(strstr(err, ring_name) != NULL, "%s", err);
	o = small_opts();
	o.capacity = 100000;
	ck_assert_int_eq(gb__ring_open_producer(&r, ring_name, &o, err, sizeof(err)),
	    GB_RING_INVALID);
	ck_assert_msg(strstr(err, "power of two") != NULL, "%s", err);
	o = small_opts();
	o.mode = 0666;
	ck_assert_int_eq(gb__ring_open_producer(&r, ring_name, &o, err, sizeof(err)),
	    GB_RING_INVALID);
	ck_assert_int_eq(gb__ring_open_producer(&r, "bad name", NULL, err, sizeof(err)),
	    GB_RING_INVALID);
	ck_assert_int_eq(access(ring_file, F_OK), -1);
}
END_TEST

/* Creates the ring, closes it, lets `mutate` spoil its file, and expects a refusal whose
 * message names the ring and contains `reason`. */
static void
expect_refusal(void (*mutate)(int fd), const gb_ring_opts *o, const char *reason)
{
	gb_ring_opts co = small_opts();
	gb_ring *r = producer(&co);
	char err[512] = "";
	int fd, rc;

	gb__ring_close(r);
	fd = open(ring_file, O_RDWR);
	ck_assert_int_ge(fd, 0);
	mutate(fd);
	close(fd);
	r = NULL;
	rc = gb__ring_open_consumer(&r, ring_name, o, err, sizeof(err));
	ck_assert_msg(rc == GB_RING_INVALID, "rc %d: %s", rc, err);
	ck_assert_ptr_null(r);
	ck_assert_msg(strstr(err, ring_name) != NULL && strstr(err, reason) != NULL,
	    "expected \"%s\" in: %s", reason, err);
}

static void
put_u64(int fd, size_t off, uint64_t v)
{
	ck_assert_int_eq(pwrite(fd, &v, sizeof(v), (off_t)off), (ssize_t)sizeof(v));
}

static void
spoil_magic(int fd)
{
	put_u64(fd, offsetof(gb_rl_header, magic), 0x4141414141414141ull);
}

static void
spoil_version(int fd)
{
	uint16_t v = GB_RL_VERSION_MAJOR + 1;

	ck_assert_int_eq(pwrite(fd, &v, 2, offsetof(gb_rl_header, version_major)), 2);
}

static void
spoil_size(int fd)
{
	ck_assert_int_eq(ftruncate(fd, GB_RL_HEADER_SIZE + SMALL + 4096), 0);
}

static void
spoil_capacity(int fd)
{
	put_u64(fd, offsetof(gb_rl_header, capacity), SMALL + 8);
}

static void
spoil_owner(int fd)
{
	ck_assert_int_eq(fchown(fd, 12345, 12345), 0);
}

static void
spoil_mode_0666(int fd)
{
	ck_assert_int_eq(fchmod(fd, 0666), 0);
}

static void
spoil_mode_0660(int fd)
{
	ck_assert_int_eq(fchmod(fd, 0660), 0);
}

static void
spoil_hard_link(int fd)
{
	char link_path[160];

	(void)fd;
	snprintf(link_path, sizeof(link_path), "%s.link", ring_file);
	ck_assert_int_eq(link(ring_file, link_path), 0);
}

START_TEST(refusals)
{
	gb_ring_opts o = small_opts();
	char link_path[160];

	expect_refusal(spoil_magic, &o, "bad magic");
	teardown();
	expect_refusal(spoil_version, &o, "version");
	teardown();
	expect_refusal(spoil_size, &o, "bytes but its header says");
	teardown();
	expect_refusal(spoil_capacity, &o, "capacity");
	teardown();
	expect_refusal(spoil_mode_0666, &o, "writable by others");
	teardown();
	expect_refusal(spoil_mode_0660, &o, "writable by its group");
	teardown();
	expect_refusal(spoil_hard_link, &o, "hard links");
	snprintf(link_path, sizeof(link_path), "%s.link", ring_file);
	unlink(link_path);
	teardown();
}
END_TEST

START_TEST(owner_and_trusted_uid)
{
	gb_ring_opts o = small_opts();
	gb_ring *r;

	if (geteuid() != 0)
		return; /* chown needs root; the refusal path is the same as any other */
	expect_refusal(spoil_owner, &o, "owned by uid 12345");
	o.trusted_uid = 12345;
	r = consumer(&o);
	gb__ring_close(r);
}
END_TEST

START_TEST(mode_0660_accepted_when_configured)
{
	gb_ring_opts o = small_opts();
	gb_ring *r;
	struct stat st;

	o.mode = 0660;
	r = producer(&o);
	ck_assert_int_eq(stat(ring_file, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0660);
	gb__ring_close(r);
	r = consumer(&o);
	gb__ring_close(r);
}
END_TEST

START_TEST(symlink_refused)
{
	gb_ring_opts o = small_opts();
	char target[160], err[512] = "";
	gb_ring *r = NULL;
	int fd;

	snprintf(target, sizeof(target), "%s.target", ring_file);
	fd = open(target, O_CREAT | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(symlink(target, ring_file), 0);
	ck_assert_int_eq(gb__ring_open_producer(&r, ring_name, &o, err, sizeof(err)),
	    GB_RING_INVALID);
	ck_assert_msg(strstr(err, "symbolic link") != NULL, "%s", err);
	unlink(target);
}
END_TEST

START_TEST(path_ring)
{
	gb_ring_opts o = small_opts();
	char path[160], err[512] = "";
	gb_ring *p = NULL, *c = NULL;
	struct seen s = { 0 };

	snprintf(path, sizeof(path), "/dev/shm/%s-file", ring_name);
	ck_assert_int_eq(gb__ring_open_producer(&p, path, &o, err, sizeof(err)), GB_RING_OK);
	ck_assert_int_eq(gb__ring_open_consumer(&c, path, &o, err, sizeof(err)), GB_RING_OK);
	ck_assert_int_eq(write_seq(p, 0, 8), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 1);
	ck_assert_int_eq(access(path, F_OK), 0);
	gb__ring_close(p);
	gb__ring_close(c);
	ck_assert_int_eq(gb__ring_unlink(path, err, sizeof(err)), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(name_from_environment)
{
	gb_ring_opts o = small_opts();
	gb_ring *r;
	char err[512] = "";

	ck_assert_int_eq(setenv("GBATCH_RING", ring_name, 1), 0);
	ck_assert_int_eq(gb__ring_open_producer(&r, NULL, &o, err, sizeof(err)), GB_RING_OK);
	ck_assert_str_eq(gb__ring_name(r), ring_name);
	ck_assert_int_eq(access(ring_file, F_OK), 0);
	gb__ring_close(r);
}
END_TEST

/* A segment whose head and tail lines were overwritten: the consumer counts it, starts
 * again at a sane position, and the ring carries records afterwards. */
START_TEST(corrupt_positions_reset)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c;
	struct seen s = { 0 };
	gb_ring_stats st;
	int fd;

	ck_assert_int_eq(write_seq(p, 0, 8), GB_RING_OK);
	fd = open(ring_file, O_RDWR);
	ck_assert_int_ge(fd, 0);
	put_u64(fd, offsetof(gb_rl_header, head), 3);
	put_u64(fd, offsetof(gb_rl_header, tail), 5 * SMALL + 13);
	close(fd);
	c = consumer(&o);
	gb__ring_wait(c, 1);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 0);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.invalid_records, 1);
	ck_assert_uint_eq(st.head, 5 * SMALL + 16);
	ck_assert_uint_eq(st.tail, st.head);
	ck_assert_int_eq(write_seq(p, 0, 8), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 1);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* A tail that is not a multiple of the record alignment is a damaged segment, not a full
 * ring: the claim is refused as invalid (and counted as dropped) while plenty of room is
 * free, and the consumer's reset puts the ring back in service. */
/* The consumer marks how much of the drop counters it reported; a successor sees the mark,
 * and a mark past the counter (another process's bytes) is read as the counter. */
START_TEST(exported_marks_persist_and_are_clamped)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	gb_ring_stats st;
	int fd;

	for (uint64_t seq = 0; seq < 700; seq++)
		write_seq(p, seq, 96);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.dropped_records, 70);
	ck_assert_uint_eq(st.exported_dropped, 0);
	gb__ring_set_exported(p, 70, 0); /* a producer's mark is ignored */
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.exported_dropped, 0);
	gb__ring_set_exported(c, 60, 0);
	gb__ring_close(c);
	c = consumer(&o);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.exported_dropped, 60);
	fd = open(ring_file, O_RDWR);
	ck_assert_int_ge(fd, 0);
	put_u64(fd, offsetof(gb_rl_header, exported_dropped), 1000);
	put_u64(fd, offsetof(gb_rl_header, exported_unblocked), 5);
	close(fd);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.exported_dropped, 70);
	ck_assert_uint_eq(st.exported_unblocked, 0);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

START_TEST(misaligned_tail_refused_not_full)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 };
	gb_ring_claim cl;
	gb_ring_stats st;
	int fd;

	ck_assert_int_eq(write_seq(p, 0, 8), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 1);
	fd = open(ring_file, O_RDWR);
	ck_assert_int_ge(fd, 0);
	put_u64(fd, offsetof(gb_rl_header, tail), 16 + 5);
	close(fd);
	ck_assert_int_eq(gb__ring_claim(p, 1, 40, &cl), GB_RING_INVALID);
	ck_assert_int_eq(write_seq(p, 1, 8), GB_RING_INVALID);
	gb__ring_stats(p, &st);
	ck_assert_uint_eq(st.dropped_records, 2);
	ck_assert_uint_eq(st.dropped_bytes, 40 + 8);
	ck_assert_uint_eq(st.tail, 16 + 5);
	ck_assert_uint_eq(st.head, 16);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 0);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.invalid_records, 1);
	ck_assert_uint_eq(st.tail, 24);
	ck_assert_uint_eq(st.head, 24);
	ck_assert_int_eq(write_seq(p, 1, 8), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 1);
	ck_assert(!s.out_of_order);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

START_TEST(half_created_segment_refused_after_wait)
{
	char err[512] = "";
	gb_ring *r = NULL;
	uint64_t t0;
	int fd = open(ring_file, O_CREAT | O_EXCL | O_RDWR, 0600);

	ck_assert_int_ge(fd, 0);
	close(fd);
	t0 = gb__clock_mono_ns();
	ck_assert_int_eq(gb__ring_open_producer(&r, ring_name, NULL, err, sizeof(err)),
	    GB_RING_INVALID);
	ck_assert_uint_ge(gb__clock_mono_ns() - t0, 900 * GB_NS_PER_MS);
	ck_assert_uint_lt(gb__clock_mono_ns() - t0, 5 * GB_NS_PER_SEC);
	ck_assert_msg(strstr(err, "waiting") != NULL, "%s", err);
}
END_TEST

/* A creator that finishes while the attacher waits: the attach succeeds. */
static void *
late_creator(void *arg)
{
	gb_ring_opts o = small_opts();
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	int fd;
	gb_rl_header *h;
	uint64_t magic;

	(void)arg;
	fd = open(ring_file, O_RDWR);
	nanosleep(&ts, NULL);
	ck_assert_int_eq(ftruncate(fd, GB_RL_HEADER_SIZE + o.capacity), 0);
	h = mmap(NULL, GB_RL_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	h->version_major = GB_RL_VERSION_MAJOR;
	h->header_size = GB_RL_HEADER_SIZE;
	h->capacity = o.capacity;
	h->max_record = gb__rl_max_record(o.capacity);
	memcpy(&magic, GB_RL_MAGIC, 8);
	atomic_store_explicit(&h->magic, magic, memory_order_release);
	munmap(h, GB_RL_HEADER_SIZE);
	close(fd);
	return NULL;
}

START_TEST(attach_waits_for_creator)
{
	gb_ring *r;
	pthread_t t;
	int fd = open(ring_file, O_CREAT | O_EXCL | O_RDWR, 0600);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(pthread_create(&t, NULL, late_creator, NULL), 0);
	r = consumer(NULL);
	pthread_join(t, NULL);
	gb__ring_close(r);
}
END_TEST

START_TEST(consumer_restart_resumes)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 };
	uint64_t seq;

	for (seq = 0; seq < 100; seq++)
		ck_assert_int_eq(write_seq(p, seq, 24), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 40), 40);
	gb__ring_close(c);
	c = consumer(&o);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 1000), 60);
	ck_assert_uint_eq(s.n, 100);
	ck_assert_uint_eq(s.next, 100);
	ck_assert(!s.out_of_order);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* Records read but not released stay in the ring, still taking space, and a consumer that
 * goes away without releasing them leaves them to the next one (at-least-once). */
START_TEST(held_records_survive_the_consumer)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 }, again = { .next = 30 };
	gb_ring_stats st;
	uint64_t seq;

	for (seq = 0; seq < 100; seq++)
		ck_assert_int_eq(write_seq(p, seq, 24), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 30), 30);
	ck_assert_uint_eq(gb__ring_read_hold(c, on_seq, &s, 40), 40);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.head, 30 * 32);
	gb__ring_close(c);
	c = consumer(&o);
	ck_assert_uint_eq(gb__ring_read_hold(c, on_seq, &again, 1000), 70);
	ck_assert(!again.out_of_order);
	ck_assert_uint_eq(again.next, 100);
	gb__ring_release(c);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.head, st.tail);
	/* released space is zeroed and reusable: a full lap of new records reads back in order */
	for (seq = 100; seq < 100 + SMALL / 32 - 1; seq++)
		ck_assert_int_eq(write_seq(p, seq, 24), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &again, 100000), SMALL / 32 - 1);
	ck_assert(!again.out_of_order);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* A consumer killed in the middle of a release (release_to set, the span partly zeroed): its
 * successor completes the release at once and reads on after it, without an unblock wait. */
START_TEST(release_cut_short_is_completed)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { .next = 40 };
	gb_ring_stats st;
	gb_rl_header *h;
	uint64_t seq;
	uint8_t *m;
	int fd;

	for (seq = 0; seq < 100; seq++)
		ck_assert_int_eq(write_seq(p, seq, 24), GB_RING_OK);
	gb__ring_close(c);
	fd = open(ring_file, O_RDWR);
	ck_assert_int_ge(fd, 0);
	m = mmap(NULL, GB_RL_HEADER_SIZE + SMALL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	h = (gb_rl_header *)(void *)m;
	/* 40 records of 32 bytes read and sent; killed after zeroing the first 25 of them */
	atomic_store(&h->release_to, 40 * 32);
	memset(m + GB_RL_HEADER_SIZE, 0, 25 * 32);
	c = consumer(&o);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 1000), 60);
	ck_assert(!s.out_of_order);
	ck_assert_uint_eq(s.next, 100);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.unblocked_records, 0);
	ck_assert_uint_eq(st.head, st.tail);
	/* a release_to that makes no sense is ignored */
	atomic_store(&h->release_to, st.tail + 4096);
	gb__ring_close(c);
	c = consumer(&o);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.head, st.tail);
	munmap(m, GB_RL_HEADER_SIZE + SMALL);
	close(fd);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* Reads until the handler has seen `want` records or 5 s pass. */
static void
read_until(gb_ring *c, struct seen *s, uint64_t want)
{
	uint64_t deadline = gb__clock_mono_ns() + 5 * GB_NS_PER_SEC;

	while (s->n < want && gb__clock_mono_ns() < deadline)
		if (gb__ring_read(c, on_seq, s, 1000) == 0)
			gb__ring_wait(c, 5 * GB_NS_PER_MS);
}

START_TEST(unblock_claimed_not_committed)
{
	gb_ring_opts o = small_opts();
	gb_ring *p, *c;
	struct seen s = { 0 };
	gb_ring_claim stuck;
	gb_ring_stats st;
	uint64_t t0, took;

	o.unblock_timeout_ns = 200 * GB_NS_PER_MS;
	p = producer(&o);
	c = consumer(&o);
	ck_assert_int_eq(gb__ring_claim(p, 1, 40, &stuck), GB_RING_OK);
	ck_assert_int_eq(write_seq(p, 0, 8), GB_RING_OK);
	ck_assert_int_eq(write_seq(p, 1, 8), GB_RING_OK);
	t0 = gb__clock_mono_ns();
	read_until(c, &s, 2);
	took = gb__clock_mono_ns() - t0;
	ck_assert_uint_eq(s.n, 2);
	ck_assert(!s.out_of_order);
	ck_assert_uint_ge(took, 200 * GB_NS_PER_MS);
	ck_assert_uint_lt(took, 1200 * GB_NS_PER_MS);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.unblocked_records, 1);
	ck_assert_uint_eq(st.head, st.tail);
	/* the late commit finds its record gone and leaves the ring alone */
	gb__ring_commit(p, &stuck);
	ck_assert_int_eq(write_seq(p, 2, 8), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 1);
	ck_assert(!s.out_of_order);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* A producer stalled past the unblock timeout commits after the ring has wrapped and another
 * claim of the same length sits where its claim was: its commit must leave that claim alone
 * (a plain store, or a compare on the length alone, would publish the other claim's unwritten
 * payload). */
/* Claims a record at offset 0 and leaves it (the consumer pads over it after the unblock
 * timeout), writes and reads the rest of the lap, then claims the same place again in the next
 * lap (again). 56-byte payloads: 64-byte records, 1024 a lap. Returns the next sequence number
 * (the records read so far are 0 to it, less one). */
static uint64_t
claim_and_go_round(gb_ring *p, gb_ring *c, struct seen *s, gb_ring_claim *stuck,
    gb_ring_claim *again)
{
	uint64_t seq = 1;

	ck_assert_int_eq(gb__ring_claim(p, 1, 56, stuck), GB_RING_OK);
	ck_assert_int_eq(write_seq(p, 0, 56), GB_RING_OK);
	read_until(c, s, 1);
	ck_assert_uint_eq(s->n, 1);
	for (; seq < SMALL / 64 - 1; seq++) {
		ck_assert_int_eq(write_seq(p, seq, 56), GB_RING_OK);
		read_until(c, s, seq + 1);
	}
	ck_assert_uint_eq(s->n, SMALL / 64 - 1);
	ck_assert_int_eq(gb__ring_claim(p, 1, 56, again), GB_RING_OK);
	ck_assert_ptr_eq(again->data, stuck->data);
	return seq;
}

START_TEST(late_commit_after_wrap_leaves_the_new_claim_alone)
{
	gb_ring_opts o = small_opts();
	gb_ring *p, *c;
	struct seen s = { 0 };
	gb_ring_claim stuck, again;
	uint64_t seq, next;

	o.unblock_timeout_ns = 100 * GB_NS_PER_MS;
	p = producer(&o);
	c = consumer(&o);
	seq = claim_and_go_round(p, c, &s, &stuck, &again);
	gb__ring_commit(p, &stuck);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 0);
	next = seq;
	memcpy(again.data, &next, sizeof(next));
	memset(again.data + sizeof(next), 0, 56 - sizeof(next));
	gb__ring_commit(p, &again);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 1);
	ck_assert(!s.out_of_order);
	ck_assert_uint_eq(s.next, seq + 1);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* The store the commit's check cannot stop: a producer stopped between checking its claim and
 * storing its header, resuming after the consumer padded over that claim and the space went
 * round, lands its old header on a later claim still being written. The consumer never takes
 * that word for a record (it carries the old lap): no torn record is read, the later claim is
 * given up after the unblock timeout and counted, and what follows is read in order. */
START_TEST(stale_header_of_another_lap_is_not_read)
{
	gb_ring_opts o = small_opts();
	gb_ring *p, *c;
	struct seen s = { 0 };
	gb_ring_claim stuck, again;
	gb_ring_stats st;
	uint64_t seq, stale, deadline;
	_Atomic uint64_t *word;

	o.unblock_timeout_ns = 100 * GB_NS_PER_MS;
	p = producer(&o);
	c = consumer(&o);
	seq = claim_and_go_round(p, c, &s, &stuck, &again);
	word = (_Atomic uint64_t *)(void *)(stuck.data - GB_RL_REC_HEADER);
	stale = gb__rl_word(GB_RL_REC_HEADER + 56, 1, 0); /* its header as committed in lap 0 */
	memcpy(again.data, &seq, sizeof(seq)); /* half written */
	atomic_store(word, stale);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 0);
	memset(again.data + sizeof(seq), 0, 56 - sizeof(seq));
	gb__ring_commit(p, &again); /* finds the stale word, not its claim: leaves it */
	ck_assert_uint_eq(atomic_load(word), stale);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &s, 10), 0);
	deadline = gb__clock_mono_ns() + 5 * GB_NS_PER_SEC;
	do {
		gb__ring_read(c, on_seq, &s, 10);
		gb__ring_stats(c, &st);
	} while (st.invalid_records == 0 && gb__clock_mono_ns() < deadline);
	ck_assert_uint_eq(st.invalid_records, 1);
	ck_assert_uint_eq(s.n, SMALL / 64 - 1);
	s.next = seq + 1;
	ck_assert_int_eq(write_seq(p, seq + 1, 56), GB_RING_OK);
	read_until(c, &s, SMALL / 64);
	ck_assert_uint_eq(s.n, SMALL / 64);
	ck_assert(!s.out_of_order);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* A producer that died after moving tail but before writing its header leaves zeroes;
 * the consumer finds the next header and pads up to it, also across the wrap. */
START_TEST(unblock_unwritten_header)
{
	gb_ring_opts o = small_opts();
	gb_ring *p, *c;
	struct seen s = { 0 };
	gb_ring_claim stuck;
	gb_ring_stats st;
	uint64_t seq = 0, old_tail;

	o.unblock_timeout_ns = 100 * GB_NS_PER_MS;
	p = producer(&o);
	c = consumer(&o);
	/* the second round puts the dead claim across the end of the data area */
	for (int round = 0; round < 2; round++) {
		while (round == 1 && (gb__ring_stats(c, &st), (st.tail % SMALL) < SMALL - 600)) {
			ck_assert_int_eq(write_seq(p, seq++, 200), GB_RING_OK);
			read_until(c, &s, seq);
		}
		gb__ring_stats(c, &st);
		old_tail = st.tail;
		ck_assert_int_eq(gb__ring_claim(p, 1, 1000, &stuck), GB_RING_OK);
		memset(stuck.data - GB_RL_REC_HEADER, 0, GB_RL_REC_HEADER);
		if (round == 1) {
			/* wrapped: the producer also died before writing the wrap's padding */
			ck_assert_uint_eq(stuck.pos % SMALL, 0);
			ck_assert_uint_gt(stuck.pos, old_tail);
			memset(stuck.data - GB_RL_REC_HEADER + old_tail % SMALL, 0, GB_RL_REC_HEADER);
		}
		ck_assert_int_eq(write_seq(p, seq++, 8), GB_RING_OK);
		read_until(c, &s, seq);
		ck_assert_uint_eq(s.n, seq);
		ck_assert(!s.out_of_order);
		gb__ring_stats(c, &st);
		ck_assert_uint_eq(st.unblocked_records, (uint64_t)round + 1);
		ck_assert_uint_eq(st.head, st.tail);
	}
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* A consumer killed while releasing leaves a zeroed span of many records before head: its
 * successor pads over all of it, even when the span is longer than the largest record, and
 * reads on from the first record after it. */
START_TEST(unblock_long_zeroed_span)
{
	gb_ring_opts o = small_opts();
	gb_ring *p, *c;
	struct seen s = { 0 };
	gb_ring_stats st;
	uint64_t seq;
	uint8_t *m;
	int fd;

	o.unblock_timeout_ns = 100 * GB_NS_PER_MS;
	p = producer(&o);
	c = consumer(&o);
	for (seq = 0; seq < 1000; seq++)
		ck_assert_int_eq(write_seq(p, seq, 24), GB_RING_OK);
	/* 400 records of 32 bytes = 12800 bytes, more than the 8192-byte max record */
	gb__ring_stats(c, &st);
	fd = open(ring_file, O_RDWR);
	ck_assert_int_ge(fd, 0);
	m = mmap(NULL, GB_RL_HEADER_SIZE + SMALL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	memset(m + GB_RL_HEADER_SIZE + st.head % SMALL, 0, 400 * 32);
	munmap(m, GB_RL_HEADER_SIZE + SMALL);
	close(fd);
	s.next = 400;
	read_until(c, &s, 600);
	ck_assert_uint_eq(s.n, 600);
	ck_assert(!s.out_of_order);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.unblocked_records, 1);
	ck_assert_uint_eq(st.invalid_records, 0);
	ck_assert_uint_eq(st.head, st.tail);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* Random bytes over a live segment: the handler only ever sees lengths within bounds,
 * nothing crashes, corrupt records are counted, and the ring works again afterwards. */
static volatile uint8_t payload_sum;

static void
on_bounded(void *ctx, uint16_t type, const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	size_t i;

	(void)type;
	ck_assert_uint_le(len, 8192);
	for (i = 0; i < len; i++)
		sum += p[i];
	payload_sum = sum;
	(*(uint64_t *)ctx)++;
}

START_TEST(corruption_survived)
{
	gb_ring_opts o = small_opts();
	gb_ring *p, *c;
	gb_ring_stats st;
	uint64_t handled = 0, seq = 0;
	unsigned seed = 12345;
	uint8_t *m;
	int fd, i, j;
	struct seen s = { 0 };

	o.unblock_timeout_ns = 1;
	p = producer(&o);
	c = consumer(&o);
	fd = open(ring_file, O_RDWR);
	m = mmap(NULL, GB_RL_HEADER_SIZE + SMALL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	for (i = 0; i < 2000; i++) {
		for (j = 0; j < 5; j++)
			write_seq(p, seq++, 8 + rand_r(&seed) % 300);
		for (j = 0; j < 4; j++) {
			size_t off = GB_RL_HEADER_SIZE + (size_t)rand_r(&seed) % SMALL;

			m[off] = (uint8_t)rand_r(&seed);
		}
		if (i % 50 == 0) {
			/* the position lines too: tail, head_cache, head */
			size_t line = (size_t)(1 + rand_r(&seed) % 3) * GB_RL_LINE;

			m[line + (size_t)rand_r(&seed) % 8] = (uint8_t)rand_r(&seed);
		}
		gb__ring_read(c, on_bounded, &handled, 100);
		gb__ring_read(c, on_bounded, &handled, 100);
	}
	gb__ring_stats(c, &st);
	ck_assert_uint_gt(st.invalid_records, 0);
	ck_assert_uint_gt(handled, 0);
	/* corruption over: drain, then the ring carries records again */
	for (i = 0; i < 10; i++)
		gb__ring_read(c, on_bounded, &handled, 100000);
	memset(&s, 0, sizeof(s));
	for (i = 0; i < 20 && s.n == 0; i++) {
		write_seq(p, 0, 8);
		gb__ring_read(c, on_seq, &s, 100000);
	}
	ck_assert_uint_gt(s.n, 0);
	/* a spoiled identity line makes a new attach refuse */
	memset(m + 8, 0xff, 24);
	{
		gb_ring *r2 = NULL;
		char err[512] = "";

		ck_assert_int_eq(gb__ring_open_producer(&r2, ring_name, &o, err, sizeof(err)),
		    GB_RING_INVALID);
		ck_assert_msg(strstr(err, ring_name) != NULL, "%s", err);
	}
	munmap(m, GB_RL_HEADER_SIZE + SMALL);
	close(fd);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* Producer threads against a consumer thread: the TSan build checks the orderings. */
struct thr {
	gb_ring *r;
	uint32_t id;
	uint64_t n, ok;
};

static void *
thr_produce(void *arg)
{
	struct thr *t = arg;
	uint8_t buf[64];
	uint64_t seq;

	for (seq = 0; seq < t->n; seq++) {
		memcpy(buf, &t->id, 4);
		memcpy(buf + 8, &seq, 8);
		if (gb__ring_write(t->r, 1, buf, 16 + seq % 48) == GB_RING_OK)
			t->ok++;
	}
	return NULL;
}

struct cons {
	uint64_t next[2], read, gaps;
	bool bad;
};

static void
on_thr(void *ctx, uint16_t type, const uint8_t *p, size_t len)
{
	struct cons *k = ctx;
	uint32_t id;
	uint64_t seq;

	(void)type;
	if (len < 16) {
		k->bad = true;
		return;
	}
	memcpy(&id, p, 4);
	memcpy(&seq, p + 8, 8);
	if (id > 1 || seq < k->next[id]) {
		k->bad = true;
		return;
	}
	k->gaps += seq - k->next[id];
	k->next[id] = seq + 1;
	k->read++;
}

START_TEST(threads_exactly_once)
{
	gb_ring_opts o = small_opts();
	gb_ring *p, *c;
	struct thr t[2];
	pthread_t tid[2];
	struct cons k = { { 0, 0 }, 0, 0, false };
	gb_ring_stats st;
	uint64_t deadline;
	int i;

	p = producer(&o);
	c = consumer(&o);
	for (i = 0; i < 2; i++) {
		t[i] = (struct thr){ p, (uint32_t)i, 100000, 0 };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, thr_produce, &t[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		while (pthread_tryjoin_np(tid[i], NULL) == EBUSY)
			if (gb__ring_read(c, on_thr, &k, 256) == 0)
				gb__ring_wait(c, GB_NS_PER_MS);
	}
	deadline = gb__clock_mono_ns() + 10 * GB_NS_PER_SEC;
	while (k.read < t[0].ok + t[1].ok && gb__clock_mono_ns() < deadline)
		gb__ring_read(c, on_thr, &k, 1000);
	gb__ring_stats(c, &st);
	ck_assert(!k.bad);
	ck_assert_uint_eq(k.read, t[0].ok + t[1].ok);
	ck_assert_uint_eq(k.read + st.dropped_records, 200000);
	/* every missing sequence number is a counted drop, the ones after the last read too */
	ck_assert_uint_eq(k.gaps + (100000 - k.next[0]) + (100000 - k.next[1]), st.dropped_records);
	ck_assert_uint_eq(st.head, st.tail);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

static void *
delayed_write(void *arg)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	ck_assert_int_eq(write_seq(arg, 0, 8), GB_RING_OK);
	return NULL;
}

START_TEST(wait_wakes_on_commit)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	struct seen s = { 0 };
	pthread_t t;
	uint64_t t0, took;

	/* idle: the wait lasts its timeout */
	t0 = gb__clock_mono_ns();
	gb__ring_wait(c, 50 * GB_NS_PER_MS);
	took = gb__clock_mono_ns() - t0;
	ck_assert_uint_ge(took, 45 * GB_NS_PER_MS);
	/* a commit wakes it long before its 10 s timeout */
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_write, p), 0);
	t0 = gb__clock_mono_ns();
	while (gb__ring_read(c, on_seq, &s, 10) == 0 && gb__clock_mono_ns() - t0 < 10 * GB_NS_PER_SEC)
		gb__ring_wait(c, 10 * GB_NS_PER_SEC);
	took = gb__clock_mono_ns() - t0;
	pthread_join(t, NULL);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_lt(took, 5 * GB_NS_PER_SEC);
	/* data already there: no sleep at all */
	ck_assert_int_eq(write_seq(p, 1, 8), GB_RING_OK);
	t0 = gb__clock_mono_ns();
	gb__ring_wait(c, 10 * GB_NS_PER_SEC);
	ck_assert_uint_lt(gb__clock_mono_ns() - t0, GB_NS_PER_SEC);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* The segment's header, mapped by the test itself: to play a consumer that announced sleep. */
static gb_rl_header *
map_header(void)
{
	int fd = open(ring_file, O_RDWR);
	void *m;

	ck_assert_int_ge(fd, 0);
	m = mmap(NULL, sizeof(gb_rl_header), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert_ptr_ne(m, MAP_FAILED);
	return m;
}

/* A consumer that announced sleep is woken by one producer, the first to commit: 4 threads
 * committing 2 000 records through one handle make one FUTEX_WAKE, and the next sleep is woken
 * again, by a producer of another handle. */
START_TEST(one_wake_per_sleep)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *p2 = producer(&o), *c = consumer(&o);
	gb_rl_header *hd = map_header();
	struct thr t[4];
	pthread_t tid[4];
	struct seen s = { 0 };
	uint32_t w0;
	uint64_t ok = 0;
	int i;

	atomic_store(&hd->sleeping, 1);
	w0 = atomic_load(&hd->futex_word);
	for (i = 0; i < 4; i++) {
		t[i] = (struct thr){ p, (uint32_t)(i & 1), 500, 0 };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, thr_produce, &t[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		ok += t[i].ok;
	}
	ck_assert_uint_gt(ok, 0);
	ck_assert_uint_eq(gb__ring_wakes(p), 1);
	ck_assert_uint_eq(atomic_load(&hd->futex_word), w0 + 1);
	ck_assert_uint_eq(atomic_load(&hd->sleeping), 0);
	while (gb__ring_read(c, on_seq, &s, 1000) > 0)
		;
	atomic_store(&hd->sleeping, 1);
	ck_assert_int_eq(write_seq(p2, 0, 8), GB_RING_OK);
	ck_assert_int_eq(write_seq(p2, 1, 8), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_wakes(p2), 1);
	ck_assert_uint_eq(gb__ring_wakes(p), 1);
	ck_assert_uint_eq(atomic_load(&hd->futex_word), w0 + 2);
	munmap(hd, sizeof(gb_rl_header));
	gb__ring_close(p);
	gb__ring_close(p2);
	gb__ring_close(c);
}
END_TEST

START_TEST(producer_liveness)
{
	gb_ring_opts o = small_opts();
	gb_ring *p1 = producer(&o), *p2 = producer(&o), *c = consumer(&o);
	gb_ring_stats st;
	gb_rl_header *h;
	int fd;
	unsigned i;

	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.producers_live, 2);
	ck_assert_uint_eq(st.producers_ever, 2);
	gb__ring_close(p2);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.producers_live, 1);
	ck_assert_uint_eq(st.producers_ever, 2);
	/* p1 stops beating: after the stale limit it no longer counts */
	fd = open(ring_file, O_RDWR);
	h = mmap(NULL, GB_RL_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	for (i = 0; i < GB_RL_PRODUCERS; i++)
		if (atomic_load(&h->producers[i].state) == GB_RL_SLOT_ATTACHED)
			atomic_store(&h->producers[i].heartbeat_ns,
			    gb__clock_real_coarse_ns() - 10 * GB_NS_PER_SEC);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.producers_live, 0);
	gb__ring_heartbeat(p1);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.producers_live, 1);
	/* a dead producer's slot is taken over */
	for (i = 0; i < GB_RL_PRODUCERS; i++)
		atomic_store(&h->producers[i].heartbeat_ns, 1);
	p2 = producer(&o);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.producers_live, 1);
	ck_assert_uint_eq(st.producers_ever, 3);
	munmap(h, GB_RL_HEADER_SIZE);
	close(fd);
	gb__ring_close(p1);
	gb__ring_close(p2);
	gb__ring_close(c);
}
END_TEST

/* A new segment is whole and backed when it appears, and no temporary name is left. */
START_TEST(create_is_backed_and_leaves_nothing)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o);
	char prefix[160];
	struct dirent *e;
	struct stat st;
	DIR *d;

	ck_assert_int_eq(stat(ring_file, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, GB_RL_HEADER_SIZE + SMALL);
	ck_assert_uint_ge((uint64_t)st.st_blocks * 512, GB_RL_HEADER_SIZE + SMALL);
	ck_assert_uint_eq(st.st_nlink, 1);
	snprintf(prefix, sizeof(prefix), "gbatch.%s.", ring_name);
	ck_assert_ptr_nonnull(d = opendir("/dev/shm"));
	while ((e = readdir(d)) != NULL)
		ck_assert_msg(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "left behind: %s",
		    e->d_name);
	closedir(d);
	ck_assert_uint_eq(gb__ring_check(p), 0);
	gb__ring_close(p);
}
END_TEST

/* Truncated under the mapping: the check says so, and from then on nothing touches it. */
START_TEST(shrunk_segment_is_not_touched)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *c = consumer(&o);
	gb_ring_claim cl;
	gb_ring_stats st;

	ck_assert_int_eq(write_seq(p, 0, 16), GB_RING_OK);
	ck_assert_int_eq(truncate(ring_file, 0), 0);
	ck_assert_uint_eq(gb__ring_check(p) & GB_RING_SHRUNK, GB_RING_SHRUNK);
	ck_assert(gb__ring_is_unusable(p));
	/* every one of these would fault (SIGBUS) if it touched the mapping */
	ck_assert_int_eq(gb__ring_claim(p, GB_RING_TYPE_TELEMETRY, 16, &cl), GB_RING_DAMAGED);
	ck_assert_int_eq(write_seq(p, 1, 16), GB_RING_DAMAGED);
	gb__ring_heartbeat(p);
	gb__ring_stats(p, &st);
	ck_assert_uint_eq(st.capacity, SMALL);
	ck_assert_uint_eq(st.tail, 0);
	gb__ring_set_unusable(c);
	ck_assert_uint_eq(gb__ring_read(c, NULL, NULL, 10), 0);
	gb__ring_wait(c, 1000);
	gb__ring_close(p);
	gb__ring_close(c);
}
END_TEST

/* Removed, then replaced: told apart by the name, both from the mapping's side. */
START_TEST(removed_and_replaced)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *p2;
	char other[80], other_file[160], err[256];
	dev_t dev;
	ino_t ino;

	gb__ring_identity(p, &dev, &ino);
	ck_assert_int_eq(gb__ring_path_changed(ring_name, dev, ino), 0);
	ck_assert_int_eq(gb__ring_unlink(ring_name, err, sizeof(err)), 0);
	ck_assert_uint_eq(gb__ring_check(p), GB_RING_REMOVED);
	ck_assert_int_eq(gb__ring_path_changed(ring_name, dev, ino), 1);
	ck_assert(!gb__ring_is_unusable(p)); /* still mapped and whole: writable */
	ck_assert_int_eq(write_seq(p, 0, 16), GB_RING_OK);
	/* a new segment at the name, then another renamed over it */
	p2 = producer(&o);
	ck_assert_uint_eq(gb__ring_check(p), GB_RING_REMOVED | GB_RING_REPLACED);
	ck_assert_uint_eq(gb__ring_check(p2), 0);
	snprintf(other, sizeof(other), "%s-other", ring_name);
	snprintf(other_file, sizeof(other_file), "/dev/shm/gbatch.%s", other);
	gb_ring *p3;
	ck_assert_int_eq(gb__ring_open_producer(&p3, other, &o, err, sizeof(err)), GB_RING_OK);
	ck_assert_int_eq(rename(other_file, ring_file), 0);
	ck_assert_uint_eq(gb__ring_check(p2), GB_RING_REMOVED | GB_RING_REPLACED);
	ck_assert_uint_eq(gb__ring_check(p3) & GB_RING_REPLACED, 0);
	gb__ring_close(p);
	gb__ring_close(p2);
	gb__ring_close(p3);
}
END_TEST

/* A producer that left a removed segment counts what nobody read in it: not while a consumer
 * drains it or another live producer writes into it; exactly once when it is alone. */
START_TEST(orphan_drain_counts_the_unread)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o), *q = producer(&o), *c = consumer(&o);
	struct seen seen = { 0 };
	uint64_t unread = 99;
	char err[256];

	for (uint64_t i = 0; i < 10; i++)
		ck_assert_int_eq(write_seq(p, i, 24), GB_RING_OK);
	ck_assert_uint_eq(gb__ring_read(c, on_seq, &seen, 4), 4);
	ck_assert_int_eq(gb__ring_unlink(ring_name, err, sizeof(err)), 0);
	/* the consumer holds it: it will read the rest */
	ck_assert_int_eq(gb__ring_orphan_drain(p, &unread), 1);
	ck_assert_uint_eq(unread, 0);
	gb__ring_close(c);
	/* another producer is still attached and live */
	ck_assert_int_eq(gb__ring_orphan_drain(p, &unread), 1);
	ck_assert_uint_eq(unread, 0);
	ck_assert_int_eq(write_seq(q, 10, 24), GB_RING_OK);
	gb__ring_leave(q);
	ck_assert_int_eq(gb__ring_orphan_drain(p, &unread), 0);
	ck_assert_uint_eq(unread, 7); /* 10 - 4 read + q's one */
	ck_assert(gb__ring_is_unusable(p));
	ck_assert_int_eq(write_seq(p, 11, 24), GB_RING_DAMAGED);
	/* done: a second call counts nothing again */
	ck_assert_int_eq(gb__ring_orphan_drain(p, &unread), 0);
	ck_assert_uint_eq(unread, 0);
	gb__ring_close(p);
	gb__ring_close(q);
}
END_TEST

/* An uncommitted claim in a left segment makes the count wait for it. */
START_TEST(orphan_drain_waits_for_a_claim)
{
	gb_ring_opts o = small_opts();
	gb_ring *p = producer(&o);
	gb_ring_claim cl;
	uint64_t unread, total = 0;
	char err[256];

	ck_assert_int_eq(write_seq(p, 0, 24), GB_RING_OK);
	ck_assert_int_eq(gb__ring_claim(p, GB_RING_TYPE_TELEMETRY, 24, &cl), GB_RING_OK);
	memset(cl.data, 0, 24);
	ck_assert_int_eq(gb__ring_unlink(ring_name, err, sizeof(err)), 0);
	ck_assert_int_eq(gb__ring_orphan_drain(p, &unread), 1);
	total += unread;
	ck_assert(!gb__ring_is_unusable(p));
	gb__ring_commit(p, &cl);
	ck_assert_int_eq(gb__ring_orphan_drain(p, &unread), 0);
	total += unread;
	ck_assert_uint_eq(total, 2);
	gb__ring_close(p);
}
END_TEST

/* The consumer's read position, and the freshest producer heartbeat in the stats. */
START_TEST(read_pos_and_newest_heartbeat)
{
	gb_ring_opts o = small_opts();
	gb_ring *c = consumer(&o);
	gb_ring_stats st;
	gb_ring *p;

	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.newest_heartbeat_ns, 0);
	p = producer(&o);
	ck_assert_int_eq(write_seq(p, 0, 24), GB_RING_OK);
	gb__ring_heartbeat(p);
	gb__ring_stats(c, &st);
	ck_assert_uint_gt(st.newest_heartbeat_ns, 0);
	ck_assert_uint_eq(gb__ring_read_pos(c), 0);
	ck_assert_uint_eq(gb__ring_read(c, NULL, NULL, 10), 1);
	ck_assert_uint_eq(gb__ring_read_pos(c), st.tail);
	gb__ring_close(p);
	gb__ring_stats(c, &st);
	ck_assert_uint_eq(st.newest_heartbeat_ns, 0);
	gb__ring_close(c);
}
END_TEST

static Suite *
ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, names);
	tcase_add_test(tc, claim_commit_read);
	tcase_add_test(tc, wrap_with_padding);
	tcase_add_test(tc, abort_is_skipped);
	tcase_add_test(tc, max_record);
	tcase_add_test(tc, full_drops_exactly);
	tcase_add_test(tc, exported_marks_persist_and_are_clamped);
	tcase_add_test(tc, second_consumer_busy);
	tcase_add_test(tc, no_create_and_bad_opts);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, owner_and_trusted_uid);
	tcase_add_test(tc, mode_0660_accepted_when_configured);
	tcase_add_test(tc, symlink_refused);
	tcase_add_test(tc, path_ring);
	tcase_add_test(tc, name_from_environment);
	tcase_add_test(tc, corrupt_positions_reset);
	tcase_add_test(tc, misaligned_tail_refused_not_full);
	tcase_add_test(tc, half_created_segment_refused_after_wait);
	tcase_add_test(tc, attach_waits_for_creator);
	tcase_add_test(tc, consumer_restart_resumes);
	tcase_add_test(tc, held_records_survive_the_consumer);
	tcase_add_test(tc, release_cut_short_is_completed);
	tcase_add_test(tc, unblock_claimed_not_committed);
	tcase_add_test(tc, late_commit_after_wrap_leaves_the_new_claim_alone);
	tcase_add_test(tc, stale_header_of_another_lap_is_not_read);
	tcase_add_test(tc, new_mapping_is_populated);
	tcase_add_test(tc, unblock_unwritten_header);
	tcase_add_test(tc, unblock_long_zeroed_span);
	tcase_add_test(tc, corruption_survived);
	tcase_add_test(tc, threads_exactly_once);
	tcase_add_test(tc, wait_wakes_on_commit);
	tcase_add_test(tc, one_wake_per_sleep);
	tcase_add_test(tc, producer_liveness);
	tcase_add_test(tc, create_is_backed_and_leaves_nothing);
	tcase_add_test(tc, shrunk_segment_is_not_touched);
	tcase_add_test(tc, removed_and_replaced);
	tcase_add_test(tc, orphan_drain_counts_the_unread);
	tcase_add_test(tc, orphan_drain_waits_for_a_claim);
	tcase_add_test(tc, read_pos_and_newest_heartbeat);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = ring_suite };
