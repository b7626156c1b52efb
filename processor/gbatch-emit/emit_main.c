/*
 * emit_main.c - gbatch-emit: lets the shell steps of a batch pipeline write telemetry records
 * into the same shared-memory ring as gbatch-processor. Telemetry must never fail a pipeline:
 * a missing ring warns and exits 0 unless --strict; only bad input (a malformed ring name
 * included) is an error (exit 2).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gbatch/telemetry.h>

#include "log.h"
#include "record.h"
#include "reporter_shm.h"
#include "ring.h"

#define EXIT_RING 1
#define EXIT_USAGE 2
#define MAX_META GB_REC_MAX_META /* what one record holds */
#define MAX_WORDS (3 + 2 * MAX_META)

static const char usage_text[] =
    "usage: gbatch-emit [--ring R] [--strict] KIND NAME VALUE [--meta KEY=VALUE]...\n"
    "       gbatch-emit [--ring R] [--strict] --stdin\n"
    "       gbatch-emit --help | --version\n"
    "\n"
    "Writes one telemetry record into the shared-memory ring read by gbatch-collector.\n"
    "  KIND         timing (VALUE in seconds), count (an increment), gauge (a level) or metric\n"
    "  NAME         the scope path, e.g. pipeline.download\n"
    "  --meta K=V   metadata carried with the record (repeatable, in order; at most 16)\n"
    "  --ring R     ring name or path (default: $GBATCH_RING, else \"default\")\n"
    "  --stdin      read records from standard input, one per line: KIND NAME VALUE [--meta K=V]...\n"
    "               (blank lines and lines starting with # are skipped)\n"
    "  --strict     exit 1 when the ring cannot be opened or a record is dropped\n"
    "Exit status: 0 written (or ring missing without --strict), 1 ring problem with --strict,\n"
    "2 bad input (every bad line of --stdin is reported).\n";

/* One parsed record; strings point into the argument words. */
struct emit_rec {
	const char *kind;
	const char *name;
	const char *value_text;
	double value;
	gb_kv meta[MAX_META];
	size_t n_meta;
};

/* Parses KIND NAME VALUE [--meta K=V]... from words. Returns 0, or -1 after printing why,
 * naming the bad text; where prefixes the message (a line number for --stdin). */
static int
parse_record(char **w, int n, struct emit_rec *r, const char *where)
{
	char *end;
	int pos = 0;

	r->n_meta = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(w[i], "--meta") == 0) {
			char *eq;
			if (i + 1 >= n) {
				gb__log_warnx("%s--meta needs KEY=VALUE", where);
				return -1;
			}
			eq = strchr(w[++i], '=');
			if (eq == NULL || eq == w[i]) {
				gb__log_warnx("%sbad --meta \"%s\": expected KEY=VALUE with a non-empty KEY",
				    where, w[i]);
				return -1;
			}
			if (r->n_meta == MAX_META) {
				gb__log_warnx("%stoo many --meta pairs (at most %d, what one record "
				    "holds)", where, MAX_META);
				return -1;
			}
			*eq = '\0';
			r->meta[r->n_meta++] = (gb_kv){ w[i], eq + 1 };
			continue;
		}
		if (strncmp(w[i], "--", 2) == 0 && w[i][2] != '\0') {
			gb__log_warnx("%sunknown option \"%s\"", where, w[i]);
			return -1;
		}
		switch (pos++) {
		case 0:
			r->kind = w[i];
			break;
		case 1:
			r->name = w[i];
			break;
		case 2:
			r->value_text = w[i];
			errno = 0;
			r->value = strtod(w[i], &end);
			if (end == w[i] || *end != '\0' || errno == ERANGE || !isfinite(r->value)) {
				gb__log_warnx("%sbad value \"%s\": expected a finite number", where, w[i]);
				return -1;
			}
			break;
		default:
			gb__log_warnx("%sunexpected argument \"%s\"", where, w[i]);
			return -1;
		}
	}
	if (pos < 3) {
		gb__log_warnx("%sexpected KIND NAME VALUE, got %d of them", where, pos);
		return -1;
	}
	if (strcmp(r->kind, "timing") != 0 && strcmp(r->kind, "count") != 0 &&
	    strcmp(r->kind, "gauge") != 0 && strcmp(r->kind, "metric") != 0) {
		gb__log_warnx("%sunknown kind \"%s\": use timing, count, gauge or metric", where, r->kind);
		return -1;
	}
	if (r->name[0] == '\0') {
		gb__log_warnx("%sempty NAME", where);
		return -1;
	}
	if (strcmp(r->kind, "timing") == 0 && r->value < 0) {
		gb__log_warnx("%sbad value \"%s\": a timing cannot be negative", where,
		    r->value_text);
		return -1;
	}
	return 0;
}

/* Hands r to the reporter; returns 0, or -1 when the ring dropped it. */
static int
emit(gb_shm_reporter *sr, const struct emit_rec *r)
{
	gb_reporter rep = gb_shm_reporter_as_reporter(sr);
	gb_tele_meta m = { .depth = 0, .call_count = 1, .extra = r->meta, .n_extra = r->n_meta };
	uint64_t dropped = gb_shm_reporter_dropped(sr);

	if (strcmp(r->kind, "timing") == 0) {
		rep.record_timing(rep.self, r->name, r->value, &m);
	} else {
		if (strcmp(r->kind, "count") == 0)
			m.metric_type = "counter";
		else if (strcmp(r->kind, "gauge") == 0)
			m.metric_type = "gauge";
		rep.record_metric(rep.self, r->name, r->value, &m);
	}
	return gb_shm_reporter_dropped(sr) == dropped ? 0 : -1;
}

/* Splits line in place at blanks into at most max words; returns the count, or -1 if more. */
static int
split_words(char *line, char **w, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		w[n++] = p;
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
}

/* Reads records from stdin. Returns the number of bad lines; *drops counts dropped records. */
static int
run_stdin(gb_shm_reporter *sr, unsigned *drops)
{
	char *line = NULL, *w[MAX_WORDS], where[64];
	size_t cap = 0;
	unsigned lineno = 0;
	int bad = 0, n;
	struct emit_rec r;

	while (getline(&line, &cap, stdin) != -1) {
		lineno++;
		snprintf(where, sizeof(where), "line %u: ", lineno);
		n = split_words(line, w, MAX_WORDS);
		if (n == 0 || (n > 0 && w[0][0] == '#'))
			continue;
		if (n < 0) {
			gb__log_warnx("%stoo many words", where);
			bad++;
			continue;
		}
		if (parse_record(w, n, &r, where) != 0) {
			bad++;
			continue;
		}
		if (sr != NULL && emit(sr, &r) != 0)
			(*drops)++;
	}
	free(line);
	return bad;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ring", required_argument, NULL, 'r' },
		{ "stdin", no_argument, NULL, 's' },
		{ "strict", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ring = NULL, *ring_env;
	bool from_stdin = false, strict = false;
	struct emit_rec rec;
	gb_shm_reporter *sr;
	char err[256];
	unsigned drops = 0;
	int c, bad = 0;
	bool have_ring;

	gb__log_init(argv[0]);
	/* "+": stop at the first non-option, so --meta and negative VALUEs reach parse_record. */
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			ring = optarg;
			break;
		case 's':
			from_stdin = true;
			break;
		case 'S':
			strict = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("gbatch-emit %s\n", GBATCH_VERSION);
			return 0;
		default:
			fputs(usage_text, stderr);
			return EXIT_USAGE;
		}
	}
	/* a name that can never be a ring is bad input, unlike a ring that is not there yet */
	if ((ring != NULL || ((ring_env = getenv("GBATCH_RING")) != NULL && *ring_env != '\0')) &&
	    gb__ring_name_check(ring != NULL ? ring : ring_env, err, sizeof(err)) != 0) {
		gb__usage_error("%s%s", ring != NULL ? "--ring: " : "GBATCH_RING: ", err);
	}
	if (from_stdin && optind < argc) {
		gb__usage_error("--stdin takes no record on the command line (got \"%s\")", argv[optind]);
	}
	if (!from_stdin && parse_record(argv + optind, argc - optind, &rec, "") != 0)
		return EXIT_USAGE;

	sr = gb__shm_reporter_attach(ring, err, sizeof(err));
	have_ring = sr != NULL;
	if (!have_ring)
		gb__log_warnx("%s; %s", err, strict ? "nothing written" : "records not written (exit 0 "
		    "without --strict)");
	if (from_stdin)
		bad = run_stdin(sr, &drops);
	else if (sr != NULL && emit(sr, &rec) != 0)
		drops++;
	gb_shm_reporter_close(sr);

	if (drops > 0)
		gb__log_warnx("%u record(s) dropped: the ring is full or unusable", drops);
	if (bad > 0)
		return EXIT_USAGE;
	if (strict && (!have_ring || drops > 0))
		return EXIT_RING;
	return 0;
}
