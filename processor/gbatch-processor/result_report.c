/*
 * result_report.c - how gbatch-processor shows the result of one question set.
 */
#include "result_report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs.h"
#include "log.h"
#include "text.h"

/* Writes the result to path and syncs it to disk. Returns 0, or -1 (logged) when any part of
 * it failed. */
static int
write_output(const char *path, const char *json)
{
	FILE *f = fopen(path, "w");
	int w;

	if (f == NULL) {
		gb__log_warn("cannot write \"%s\"", path);
		return -1;
	}
	w = fprintf(f, "%s\n", json);
	/* EINVAL: --output names something that cannot be synced (a pipe, a device) */
	if (w < 0 || fflush(f) != 0 || (fsync(fileno(f)) != 0 && errno != EINVAL)) {
		gb__log_warn("cannot write \"%s\"", path);
		fclose(f);
		return -1;
	}
	if (fclose(f) != 0) {
		gb__log_warn("cannot write \"%s\"", path);
		return -1;
	}
	return 0;
}

/* Prints "N. [source] text" ("[source, partial]" when it is), text's controls escaped (its
 * lines and tabs kept). */
static void
print_answer(size_t i, const char *source, bool partial, const char *text)
{
	size_t len = strlen(text), cap = 4 * len + 1;
	char *shown = malloc(cap);

	if (shown == NULL)
		gb__fatalx("out of memory");
	gb__text_escape(shown, cap, text, len, GB_TEXT_KEEP_LINES);
	printf("%zu. [%s%s] %s\n", i + 1, source, partial ? ", partial" : "", shown);
	free(shown);
}

int
gb__result_report(const gb_result *r, const char *output)
{
	size_t nq = gb_result_question_count(r);
	char *raw = gb_result_to_json(r, GB_RESULT_JSON_PRETTY), *json;
	int status = 0;

	/* DEL and C1 controls as \u escapes: the same JSON, safe on a terminal */
	if (raw == NULL || (json = gb__json_term_safe(raw)) == NULL)
		gb__fatalx("out of memory");
	free(raw);
	if (output != NULL) {
		if (write_output(output, json) != 0)
			status = 1;
		for (size_t i = 0; i < nq; i++)
			print_answer(i, gb_result_source(r, i), gb_result_partial(r, i) != NULL,
			    gb_result_answer(r, i) != NULL ?
			    gb_result_answer(r, i) : gb_result_error(r, i));
	} else {
		printf("%s\n", json);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		gb__log_warn("cannot write the %s to stdout", output != NULL ? "answers" : "result");
		status = 1;
	}
	if (gb_result_fatal_error(r) != NULL)
		gb__log_warnx("stopped: %s", gb_result_fatal_error(r));
	if (gb_result_failed_count(r) > 0) {
		gb__log_warnx("%zu of %zu questions have no answer", gb_result_failed_count(r), nq);
		status = 1;
	} else if (gb_result_partial_count(r) > 0 && status == 0) {
		gb__log_warnx("%zu of %zu answers are partial (finishReason not STOP; "
		    "--accept-partial takes them)", gb_result_partial_count(r), nq);
		status = GB__EXIT_PARTIAL;
	}
	free(json);
	return status;
}

