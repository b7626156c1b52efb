/*
 * reporter_console.c - prints every record as one line, in the seed's PrintReporter format:
 *
 *   [TIMING] <two spaces per depth>SCOPE: duration=S.SSSSs (depth=D[, parent_scope=P], call_count=N[, K=V]...)
 *   [METRIC] SCOPE: VALUE ([metric_type=T, ]depth=D[, parent_scope=P], call_count=N[, K=V]...)
 *
 * The duration has four decimals; VALUE is printf's %.15g (integers print exactly); parent_scope
 * is left out at top level and metric_type for plain metrics; K=V are the caller's metadata in
 * order. Each line is written under the stream's lock, so lines from threads never interleave.
 * Scopes, keys and values are escaped as gbatch-collector's console escapes them (controls, C1
 * included, '\' and bytes that are not UTF-8 as \xNN): no record can drive the terminal.
 */
#include <gbatch/telemetry.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Writes s escaped. */
static void
put_field(FILE *out, const char *s)
{
	char small[512], *buf = small;
	size_t len = strlen(s), cap = 4 * len + 1;

	if (cap > sizeof(small) && (buf = malloc(cap)) == NULL) {
		fputs("(out of memory)", out);
		return;
	}
	gb__text_escape(buf, buf == small ? sizeof(small) : cap, s, len, GB_TEXT_BACKSLASH);
	fputs(buf, out);
	if (buf != small)
		free(buf);
}

static void
print_tail(FILE *out, const gb_tele_meta *m)
{
	fprintf(out, "depth=%d", m->depth);
	if (m->parent_scope != NULL) {
		fputs(", parent_scope=", out);
		put_field(out, m->parent_scope);
	}
	fprintf(out, ", call_count=%u", m->call_count);
	for (size_t i = 0; i < m->n_extra; i++) {
		fputs(", ", out);
		put_field(out, m->extra[i].key);
		fputc('=', out);
		put_field(out, m->extra[i].value);
	}
	fputs(")\n", out);
}

static int
console_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	FILE *out = self;
	int err;

	flockfile(out);
	fprintf(out, "[TIMING] %*s", 2 * m->depth, "");
	put_field(out, scope);
	fprintf(out, ": duration=%.4fs (", seconds);
	print_tail(out, m);
	err = fflush(out) != 0 || ferror(out);
	funlockfile(out);
	return err ? -1 : 0;
}

static int
console_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	FILE *out = self;
	int err;

	flockfile(out);
	fputs("[METRIC] ", out);
	put_field(out, scope);
	fprintf(out, ": %.15g (", value);
	if (m->metric_type != NULL)
		fprintf(out, "metric_type=%s, ", m->metric_type);
	print_tail(out, m);
	err = fflush(out) != 0 || ferror(out);
	funlockfile(out);
	return err ? -1 : 0;
}

gb_reporter
gb_console_reporter(FILE *out)
{
	return (gb_reporter){
		.self = out,
		.record_timing = console_timing,
		.record_metric = console_metric,
	};
}
