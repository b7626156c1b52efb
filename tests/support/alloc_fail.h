/*
 * alloc_fail.h - fails the Nth allocation of a test program, in the manner of jansson's own
 * tests. A program linked with alloc_fail.c and -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=free,--wrap=strdup,--wrap=strndup,--wrap=asprintf,
 * --wrap=open_memstream (GB_ALLOC_FAIL_WRAP in tests/CMakeLists.txt) sends every one of those
 * calls made by its statically linked objects (libgbatch included) through here, and jansson's
 * through json_set_alloc_funcs (gb_alloc_install). Allocations inside shared libraries (libc's
 * own, libcurl's) are neither counted nor failed.
 *
 * Besides failing, it counts the blocks it handed out and not yet freed, so a test can check
 * that a run left nothing behind (gb_alloc_live), with or without a leak checker.
 */
#ifndef GBATCH_TESTS_ALLOC_FAIL_H
#define GBATCH_TESTS_ALLOC_FAIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

/* Routes jansson's allocations through the counter. Call once, before any JSON value exists. */
void gb_alloc_install(void);
/* Starts counting allocations from 0 and refuses the nth from now (1-based; 0: none). */
void gb_alloc_arm(unsigned long n);
/* Refuses nothing from now on; gb_alloc_calls and gb_alloc_failed keep their values. */
void gb_alloc_disarm(void);
/* Allocations attempted since gb_alloc_arm, the refused one included. */
unsigned long gb_alloc_calls(void);
/* True once the armed allocation has been refused. */
bool gb_alloc_failed(void);
/* Blocks handed out through the wrappers and not yet freed (any time since the start). */
long gb_alloc_live(void);

/* The wrappers the linker's --wrap sends calls to, and the real functions. */
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
FILE *__wrap_open_memstream(char **ptr, size_t *size);
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
FILE *__real_open_memstream(char **ptr, size_t *size);

#endif
