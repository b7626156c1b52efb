/*
 * stub_proc.c - the tests' handle on a gbatch-stub-gemini process: fork/exec, wait for the
 * "listening on" line with poll and a deadline, SIGTERM and reap on stop.
 */
#include "stub_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"

#define START_DEADLINE_NS (5 * GB_NS_PER_SEC)
#define MAX_ARGS 32

const char *
stub_binary(void)
{
	const char *env = getenv("GBATCH_STUB_GEMINI");

	return env != NULL && *env != '\0' ? env : GBATCH_STUB_GEMINI;
}

/* Reads one line from fd into buf within the deadline; 0 or -1. */
static int
read_line(int fd, char *buf, size_t len, uint64_t deadline)
{
	size_t n = 0;

	while (n + 1 < len) {
		uint64_t now = gb__clock_mono_ns();
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;
		if (now >= deadline)
			return -1;
		if (poll(&p, 1, (int)((deadline - now) / GB_NS_PER_MS) + 1) <= 0)
			continue;
		if ((r = read(fd, buf + n, 1)) <= 0)
			return -1;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		n++;
	}
	return -1;
}

int
stub_start(struct stub_proc *s, const char *const *args)
{
	const char *argv[MAX_ARGS + 8];
	char line[256];
	int out[2], fd, i = 0;
	const char *tmp = getenv("TMPDIR");

	memset(s, 0, sizeof(*s));
	snprintf(s->log_path, sizeof(s->log_path), "%s/gbatch-stub-XXXXXX.log",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if ((fd = mkstemps(s->log_path, 4)) < 0) {
		perror("stub_start: mkstemps");
		return -1;
	}
	close(fd);
	argv[i++] = stub_binary();
	argv[i++] = "--port";
	argv[i++] = "0";
	argv[i++] = "--api-key";
	argv[i++] = STUB_KEY;
	argv[i++] = "--log";
	argv[i++] = s->log_path;
	for (int j = 0; args != NULL && args[j] != NULL && j < MAX_ARGS; j++)
		argv[i++] = args[j];
	argv[i] = NULL;
	if (pipe(out) != 0)
		return -1;
	if ((s->pid = fork()) < 0)
		return -1;
	if (s->pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		execv(argv[0], (char *const *)(uintptr_t)argv);
		perror(argv[0]);
		_exit(127);
	}
	close(out[1]);
	if (read_line(out[0], line, sizeof(line), gb__clock_mono_ns() + START_DEADLINE_NS) != 0 ||
	    sscanf(line, "listening on 127.0.0.1:%u", &s->port) != 1 || s->port == 0) {
		fprintf(stderr, "stub_start: %s did not report its port\n", argv[0]);
		close(out[0]);
		stub_stop(s);
		return -1;
	}
	close(out[0]);
	snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%u", s->port);
	return 0;
}

int
stub_stop(struct stub_proc *s)
{
	uint64_t deadline = gb__clock_mono_ns() + START_DEADLINE_NS;
	int status, rc = -1;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		for (;;) {
			pid_t w = waitpid(s->pid, &status, WNOHANG);
			if (w == s->pid) {
				rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
				break;
			}
			if (w < 0 || gb__clock_mono_ns() > deadline) {
				kill(s->pid, SIGKILL);
				waitpid(s->pid, &status, 0);
				break;
			}
			usleep(2000);
		}
		s->pid = 0;
	}
	if (s->log_path[0] != '\0')
		unlink(s->log_path);
	s->log_path[0] = '\0';
	return rc;
}

json_t *
stub_requests(const struct stub_proc *s)
{
	json_t *all = json_array();
	FILE *f = fopen(s->log_path, "r");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL)
		return all;
	while (getline(&line, &cap, f) > 0) {
		json_t *v = json_loads(line, 0, NULL);
		if (v != NULL)
			json_array_append_new(all, v);
	}
	free(line);
	fclose(f);
	return all;
}
