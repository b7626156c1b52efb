/*
 * fuzz_jobs_line.c - libFuzzer target for gbatch-processor --jobs' line parser: one line of
 * a JSON-lines jobs file, untrusted. It parses or says why not, never crashes or leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1), err[256];

	if (line == NULL)
		abort();
	memcpy(line, data, size);
	err[0] = '\0';
	if (gb__jobs_parse_line(line, size, err, sizeof(err)) != 0 &&
	    (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL))
		abort(); /* a refusal always says why */
	free(line);
	return 0;
}
