/*
 * reporter_console.c - prints every record as one line, in the seed's PrintReporter format:
 *
 *   [TIMING] <two spaces per depth>SCOPE: duration=S.SSSSs (depth=D[, parent_scope=P], call_count=N[, K=V]...)
 *   [METRIC] SCOPE: VALUE ([metric_type=T, ]depth=D[, parent_scope=P], call_count=N[, K=V]...)
 *
 * The duration has four decimals; VALUE is printf's %.15g (integers print exactly); parent_scope
 * is left out at top level and metric_type for plain metrics; K=V are the caller's metadata in
 * order. Each line is written under the stream's lock, so lines from threads never interleave.
 */
#include <gbatch/telemetry.h>

#include <stdio.h>

static void
print_tail(FILE *out, const gb_tele_meta *m)
{
	fprintf(out, "depth=%d", m->depth);
	if (m->parent_scope != NULL)
		fprintf(out, ", parent_scope=%s", m->parent_scope);
	fprintf(out, ", call_count=%u", m->call_count);
	for (size_t i = 0; i < m->n_extra; i++)
		fprintf(out, ", %s=%s", m->extra[i].key, m->extra[i].value);
	fputs(")\n", out);
}

static int
console_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	FILE *out = self;
	int err;

	flockfile(out);
	fprintf(out, "[TIMING] %*s%s: duration=%.4fs (", 2 * m->depth, "", scope, seconds);
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
	fprintf(out, "[METRIC] %s: %.15g (", scope, value);
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
