/*
 * stub_proc.h - starts gbatch-stub-gemini as a real process for a test, on a free port read
 * from its stdout with a deadline, and reads back its request log.
 */
#ifndef GBATCH_TESTS_STUB_PROC_H
#define GBATCH_TESTS_STUB_PROC_H

#include <sys/types.h>

#include <jansson.h>

struct stub_proc {
	pid_t pid;
	unsigned port;
	char base[64];      /* "http://127.0.0.1:PORT" */
	char log_path[256]; /* the stand-in's request log (a temporary file) */
};

/* The API key the stand-in is started with. */
#define STUB_KEY "stub-test-key-0123456789"

/* Starts the stand-in with --port 0, --api-key STUB_KEY, a fresh request log and the given
 * extra arguments (NULL-terminated list, or NULL). Waits up to 5 s for it to listen.
 * Returns 0, or -1 with a message on stderr. */
int stub_start(struct stub_proc *s, const char *const *args);
/* Stops it with SIGTERM (SIGKILL after 5 s), removes the log. Returns its exit status, or -1
 * when it had to be killed or did not exit normally. */
int stub_stop(struct stub_proc *s);
/* The request log so far: an array of the logged objects (new reference; never NULL). */
json_t *stub_requests(const struct stub_proc *s);
/* Path of the gbatch-stub-gemini binary the tests run. */
const char *stub_binary(void);

#endif
