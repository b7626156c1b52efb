/*
 * custom_reporter.c - the seed's custom reporter example in C: a reporter is any struct of two
 * callbacks (either may be NULL) handed to gb_tele_new; no base type, no dependency.
 * Build against the installed library with: cc custom_reporter.c $(pkg-config --cflags --libs gbatch)
 */
#include <stdio.h>

#include <gbatch/telemetry.h>

/* The seed's MyCustomReporter: one line per timing and per metric. */
static int
my_record_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	(void)self;
	printf("[METRIC] TIMING: scope=%s, duration=%.4fs, depth=%d\n", scope, seconds, m->depth);
	return 0;
}

static int
my_record_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	(void)self;
	printf("[METRIC] GAUGE: scope=%s, value=%g, type=%s\n", scope, value,
	    m->metric_type != NULL ? m->metric_type : "gauge");
	return 0;
}

/* The seed's PrintReporter: timings indented by depth, with the parent scope. */
static int
print_record_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	(void)self;
	printf("%*s%s took %.4fs (parent: %s, call %u)\n", 2 * m->depth, "", scope, seconds,
	    m->parent_scope != NULL ? m->parent_scope : "none", m->call_count);
	return 0;
}

/* Work to time: one batch of questions, answered in two attempts. */
static void
process_batch(gb_tele *t, int questions)
{
	GB_SCOPE(t, "batch.total_processing") {
		for (int attempt = 1; attempt <= 2; attempt++) {
			char n[16];
			snprintf(n, sizeof(n), "%d", attempt);
			const gb_kv meta[] = { { "attempt", n } };
			gb_scope s = gb_tele_begin(t, "batch.attempt", meta, 1);
			gb_tele_count(t, "api_calls", 1, NULL, 0);
			gb_tele_end(t, &s);
		}
		gb_tele_count(t, "batch_success", 1, NULL, 0);
		gb_tele_gauge(t, "token_efficiency", questions / 2.0, NULL, 0);
	}
}

int
main(void)
{
	/* Several reporters; the second has only a timing callback. */
	gb_reporter reporters[] = {
		{ .self = NULL, .record_timing = my_record_timing, .record_metric = my_record_metric },
		{ .self = NULL, .record_timing = print_record_timing },
	};
	/* GB_TELE_ENABLE: on whatever GEMINI_TELEMETRY says (without it, the environment decides). */
	gb_tele *t = gb_tele_new(reporters, 2, GB_TELE_ENABLE);

	if (t == NULL)
		return 1;
	process_batch(t, 5);
	gb_tele_free(t);
	return 0;
}
