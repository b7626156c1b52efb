/* alloc_fail.c - the allocation wrappers of alloc_fail.h. */
#include "alloc_fail.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <jansson.h>

static atomic_ulong calls;
static atomic_ulong fail_at;
static atomic_bool failed;
static atomic_long live;

void
gb_alloc_arm(unsigned long n)
{
	atomic_store(&failed, false);
	atomic_store(&calls, 0);
	atomic_store(&fail_at, n);
}

void
gb_alloc_disarm(void)
{
	atomic_store(&fail_at, 0);
}

unsigned long
gb_alloc_calls(void)
{
	return atomic_load(&calls);
}

bool
gb_alloc_failed(void)
{
	return atomic_load(&failed);
}

long
gb_alloc_live(void)
{
	return atomic_load(&live);
}

/* True when this allocation is the one to refuse. */
static bool
refuse(void)
{
	unsigned long n = atomic_fetch_add(&calls, 1) + 1;

	if (n != atomic_load(&fail_at))
		return false;
	atomic_store(&failed, true);
	errno = ENOMEM;
	return true;
}

static void *
counted(void *p)
{
	if (p != NULL)
		atomic_fetch_add(&live, 1);
	return p;
}

void *
__wrap_malloc(size_t n)
{
	return refuse() ? NULL : counted(__real_malloc(n));
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return refuse() ? NULL : counted(__real_calloc(n, size));
}

void *
__wrap_realloc(void *p, size_t n)
{
	void *q;

	if (refuse())
		return NULL;
	q = __real_realloc(p, n);
	if (p == NULL)
		return counted(q);
	if (q == NULL && n == 0)
		atomic_fetch_sub(&live, 1); /* realloc(p, 0) may free p */
	return q;
}

void
__wrap_free(void *p)
{
	if (p != NULL)
		atomic_fetch_sub(&live, 1);
	__real_free(p);
}

char *
__wrap_strdup(const char *s)
{
	return refuse() ? NULL : counted(__real_strdup(s));
}

char *
__wrap_strndup(const char *s, size_t n)
{
	return refuse() ? NULL : counted(__real_strndup(s, n));
}

int
__wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (refuse())
		return -1; /* *out is undefined, as glibc leaves it */
	va_start(ap, fmt);
	rc = vasprintf(out, fmt, ap);
	va_end(ap);
	if (rc >= 0)
		counted(*out);
	return rc;
}

/* The buffer open_memstream hands out is the caller's to free after fclose: one block. The
 * stream's own growth happens inside libc and is not failed. */
FILE *
__wrap_open_memstream(char **ptr, size_t *size)
{
	FILE *f;

	if (refuse())
		return NULL;
	f = __real_open_memstream(ptr, size);
	if (f != NULL)
		atomic_fetch_add(&live, 1);
	return f;
}

static void *
json_malloc(size_t n)
{
	return __wrap_malloc(n);
}

static void
json_free(void *p)
{
	__wrap_free(p);
}

void
gb_alloc_install(void)
{
	json_set_alloc_funcs(json_malloc, json_free);
}
