/*
 * processor_main.c - gbatch-processor: asks the questions of a file about one or more content
 * files in one batched Gemini call and prints the result as JSON, with telemetry into the
 * shared-memory ring (for gbatch-collector), the console, an in-process summary, or nowhere.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gbatch/processor.h>
#include <gbatch/telemetry.h>

#include "clock.h"
#include "gb_limits.h"
#include "log.h"
#include "parse.h"
#include "content_file.h"
#include "jobs.h"
#include "rate_limit.h"

#define EXIT_USAGE 2
#define MAX_SHARDS 100000

struct telemetry {
	gb_tele *tele;
	gb_simple_reporter *simple;
	gb_shm_reporter *shm;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: gbatch-processor [options] --questions FILE CONTENT_FILE...\n"
	    "       gbatch-processor [options] --jobs FILE.jsonl [--output FILE] [--parallel N]\n"
	    "                        [--shard I/N]\n"
	    "Asks every question of FILE (one per line; blank lines skipped) about the content files\n"
	    "in one batched Gemini call, asks missing or failed answers one by one, and prints the\n"
	    "result as JSON. With --jobs, does the same for every job of a JSON-lines file.\n"
	    "  --questions FILE   the questions, one per line (required without --jobs)\n"
	    "  --model M          model (default $GEMINI_MODEL, else " GB_DEFAULT_MODEL ")\n"
	    "  --api-base URL     API endpoint (default $GEMINI_API_BASE, else\n"
	    "                     " GB_DEFAULT_API_BASE ")\n"
	    "  --compare          also ask each question individually and report token and time\n"
	    "                     efficiency (target ratio %.2f)\n"
	    "  --schema FILE      JSON schema every answer must follow (responseSchema)\n"
	    "  --system TEXT      system instruction\n"
	    "  --telemetry KIND   shm[:RING] (default: the ring gbatch-collector drains, RING\n"
	    "                     default $GBATCH_RING or \"default\"), console (records on\n"
	    "                     stderr), simple (a summary on stderr at the end) or off\n"
	    "  --output FILE      write the JSON result to FILE (stdout then gets one line per answer);\n"
	    "                     with --jobs, the results file (default stdout)\n"
	    "  --timeout DUR      per HTTP attempt (default 120s)\n"
	    "  --max-attempts N   HTTP attempts per call, retries included (default 5)\n"
	    "Jobs (--jobs FILE.jsonl): one job a line, {\"id\": \"...\" or N, \"content\": \"...\" or\n"
	    "\"content_file\": \"PATH\", \"questions\": [\"...\", ...], \"schema\": {...}}; one result a\n"
	    "line, {\"id\", \"line\", the result's keys, \"outcome\": answered|partial|failed}, written\n"
	    "as each job finishes. A malformed line is reported with its number and skipped.\n"
	    "  --parallel N       requests in flight at most (default 1; 1 to 1024)\n"
	    "  --resume           skip the ids already in --output (a cut-off last line is removed)\n"
	    "  --shard I/N        run only the jobs on the lines L with (L - 1) %% N == I (0 <= I < N,\n"
	    "                     N at most 100000; blank lines count): one of N processes sharing\n"
	    "                     the file; malformed lines of other shards are left to them\n"
	    "  --tier T           free, tier1, tier2 or tier3 (default $GEMINI_TIER, else free): the\n"
	    "                     model's requests and tokens per minute\n"
	    "  --rpm N            requests per window instead of the tier's\n"
	    "  --tpm N            input tokens per window instead of the tier's (0: no limit)\n"
	    "  --rate-window DUR  the rate window (default 60s; shorter only for testing)\n"
	    "  --drain-timeout DUR  after SIGINT/SIGTERM, how long in-flight jobs may finish\n"
	    "                     (default 30s); a second signal stops at once\n"
	    "  --cache            upload content of at least --cache-min-tokens once as a context\n"
	    "                     cache (cachedContents) and ask every question of it against that\n"
	    "  --cache-min-tokens N  (default 4096)\n"
	    "  --cache-ttl DUR    the caches' time to live (default 3600s)\n"
	    "  --keep-cache       leave the caches to expire instead of deleting them at the end\n"
	    "  --progress, --no-progress  live progress on stderr (default: when it is a terminal;\n"
	    "                     otherwise one summary line at the end)\n"
	    "  --help, --version\n"
	    "Content files are text, or sent inline by extension: .pdf, .png, .jpg, .jpeg, .webp,\n"
	    ".gif, .heic, .heif. The key comes from GEMINI_API_KEY and is never printed.\n"
	    "Exit status: 0 every question answered, 1 some failed (or a jobs line was invalid),\n"
	    "2 usage error, 3 a jobs run stopped before every job was done: a signal, a per-day\n"
	    "quota, a refused key or an unknown model, a failed write (run again with --resume).\n",
	    GB_TARGET_TOKEN_EFFICIENCY);
}

static void
usage_error(const char *fmt, const char *value)
{
	fprintf(stderr, "gbatch-processor: ");
	fprintf(stderr, fmt, value);
	fprintf(stderr, "\nTry 'gbatch-processor --help'.\n");
	exit(EXIT_USAGE);
}

/* Parses --shard I/N: 0 <= I < N <= MAX_SHARDS. Returns 0, or -1. */
static int
parse_shard(const char *text, unsigned *index, unsigned *count)
{
	const char *slash = strchr(text, '/');
	char digits[16], err[128];
	uint64_t i, n;

	if (slash == NULL || (size_t)(slash - text) >= sizeof(digits))
		return -1;
	memcpy(digits, text, (size_t)(slash - text));
	digits[slash - text] = '\0';
	if (gb__parse_uint(digits, 0, MAX_SHARDS - 1, &i, err, sizeof(err)) != 0 ||
	    gb__parse_uint(slash + 1, 1, MAX_SHARDS, &n, err, sizeof(err)) != 0 || i >= n)
		return -1;
	*index = (unsigned)i;
	*count = (unsigned)n;
	return 0;
}

/* Splits the questions file into lines, trimmed, blank lines skipped (in place). */
static size_t
split_questions(char *text, char **out, size_t max, const char *path)
{
	size_t n = 0;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t len = strlen(line);
		while (len > 0 && strchr(" \t\r", line[len - 1]) != NULL)
			line[--len] = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\0')
			continue;
		if (n == max)
			usage_error("too many questions in \"%s\" (at most 10000)", path);
		out[n++] = line;
	}
	return n;
}

/* Creates the processor, refusing bad options (model, API base, ...) with exit 2. Called before
 * telemetry is opened, so a usage error never creates a ring. */
static gb_processor *
new_processor(const gb_processor_opts *o)
{
	char err[512];
	gb_processor *p = gb_processor_new(o, err, sizeof(err));

	if (p == NULL)
		usage_error("%s", err);
	return p;
}

static struct telemetry
telemetry_open(const char *kind)
{
	struct telemetry t = { 0 };
	gb_reporter rep;

	if (strcmp(kind, "off") == 0)
		return t;
	if (strcmp(kind, "console") == 0) {
		rep = gb_console_reporter(stderr);
	} else if (strcmp(kind, "simple") == 0) {
		if ((t.simple = gb_simple_reporter_new(0)) == NULL)
			gb__fatalx("out of memory");
		rep = gb_simple_reporter_as_reporter(t.simple);
	} else {
		const char *ring = kind[3] == ':' ? kind + 4 : NULL;
		if ((t.shm = gb_shm_reporter_open(ring)) == NULL)
			gb__fatalx("out of memory");
		rep = gb_shm_reporter_as_reporter(t.shm);
	}
	if ((t.tele = gb_tele_new(&rep, 1, GB_TELE_ENABLE)) == NULL)
		gb__fatalx("out of memory");
	return t;
}

static void
telemetry_close(struct telemetry *t)
{
	gb_tele_free(t->tele);
	if (t->simple != NULL) {
		char *report = gb_simple_reporter_report(t->simple);
		if (report != NULL)
			fprintf(stderr, "%s", report);
		free(report);
		gb_simple_reporter_free(t->simple);
	}
	if (t->shm != NULL)
		gb_shm_reporter_close(t->shm);
}

/* A ring is a name [A-Za-z0-9_-]{1,64}, or a path when it holds a '/'. */
static bool
ring_ok(const char *r)
{
	return strchr(r, '/') != NULL || (r[0] != '\0' && strlen(r) <= 64 &&
	    strspn(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
	    strlen(r));
}

static bool
telemetry_kind_ok(const char *k)
{
	if (strcmp(k, "off") == 0 || strcmp(k, "console") == 0 || strcmp(k, "simple") == 0 ||
	    strcmp(k, "shm") == 0)
		return true;
	return strncmp(k, "shm:", 4) == 0 && ring_ok(k + 4);
}

static int
write_output(const char *path, const char *json)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		gb__log_warn("cannot write \"%s\"", path);
		return -1;
	}
	if (fprintf(f, "%s\n", json) < 0 || fclose(f) != 0) {
		gb__log_warn("cannot write \"%s\"", path);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "questions", required_argument, NULL, 'q' },
		{ "model", required_argument, NULL, 'm' },
		{ "api-base", required_argument, NULL, 'b' },
		{ "compare", no_argument, NULL, 'c' },
		{ "schema", required_argument, NULL, 's' },
		{ "system", required_argument, NULL, 'S' },
		{ "telemetry", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "max-attempts", required_argument, NULL, 'a' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "parallel", required_argument, NULL, 'P' },
		{ "resume", no_argument, NULL, 'r' },
		{ "shard", required_argument, NULL, 'H' },
		{ "tier", required_argument, NULL, 'E' },
		{ "rpm", required_argument, NULL, 'R' },
		{ "tpm", required_argument, NULL, 'K' },
		{ "rate-window", required_argument, NULL, 'W' },
		{ "drain-timeout", required_argument, NULL, 'D' },
		{ "cache", no_argument, NULL, 'C' },
		{ "cache-min-tokens", required_argument, NULL, 'M' },
		{ "cache-ttl", required_argument, NULL, 'L' },
		{ "keep-cache", no_argument, NULL, 'k' },
		{ "progress", no_argument, NULL, 'g' },
		{ "no-progress", no_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *questions_path = NULL, *schema_path = NULL, *output = NULL;
	const char *telemetry_kind = "shm";
	char err[512], *qtext, *schema = NULL, **questions, *json;
	gb_processor_opts o;
	gb_process_opts po = { 0 };
	gb_content *content;
	size_t nq, len, inline_bytes = 0, n_content;
	uint64_t v;
	int opt, status;
	gb_processor *p;
	gb_result *r;
	struct telemetry tele;
	struct gb_jobs_opts jo = { .parallel = 1, .window_ns = 60 * GB_NS_PER_SEC,
		.drain_ns = 30 * GB_NS_PER_SEC, .cache_min_tokens = 4096,
		.cache_ttl_ns = 3600 * GB_NS_PER_SEC, .progress = -1 };
	const char *tier_text = getenv("GEMINI_TIER");
	int64_t rpm = -1, tpm = -1;
	bool jobs_only = false;

	gb__log_init(argv[0]);
	gb_processor_opts_init(&o);
	o.model = getenv("GEMINI_MODEL");
	o.api_base = getenv("GEMINI_API_BASE");
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			questions_path = optarg;
			break;
		case 'm':
			o.model = optarg;
			break;
		case 'b':
			o.api_base = optarg;
			break;
		case 'c':
			po.flags |= GB_PROCESS_COMPARE;
			break;
		case 's':
			schema_path = optarg;
			break;
		case 'S':
			o.system_instruction = optarg;
			break;
		case 't':
			if (!telemetry_kind_ok(optarg))
				usage_error("invalid --telemetry \"%s\" (use shm, shm:RING, console, simple or off)",
				    optarg);
			telemetry_kind = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'T':
			if (gb__parse_duration(optarg, &v, err, sizeof(err)) != 0 || v == 0)
				usage_error("invalid --timeout \"%s\" (use e.g. 30s, 2m)", optarg);
			o.timeout_s = (double)v / 1e9;
			break;
		case 'a':
			if (gb__parse_uint(optarg, 1, 100, &v, err, sizeof(err)) != 0)
				usage_error("invalid --max-attempts \"%s\" (use 1 to 100)", optarg);
			o.max_attempts = (unsigned)v;
			break;
		case 'j':
			jo.jobs_path = optarg;
			break;
		case 'P':
			if (gb__parse_uint(optarg, 1, 1024, &v, err, sizeof(err)) != 0)
				usage_error("invalid --parallel \"%s\" (use 1 to 1024)", optarg);
			jo.parallel = (unsigned)v;
			jobs_only = true;
			break;
		case 'r':
			jo.resume = true;
			jobs_only = true;
			break;
		case 'H':
			if (parse_shard(optarg, &jo.shard_index, &jo.shard_count) != 0)
				usage_error("invalid --shard \"%s\" (use I/N, 0 <= I < N <= 100000)", optarg);
			jobs_only = true;
			break;
		case 'E':
			tier_text = optarg;
			break;
		case 'R':
			if (gb__parse_uint(optarg, 1, 1000000, &v, err, sizeof(err)) != 0)
				usage_error("invalid --rpm \"%s\" (use 1 to 1000000)", optarg);
			rpm = (int64_t)v;
			break;
		case 'K':
			if (gb__parse_uint(optarg, 0, INT64_MAX, &v, err, sizeof(err)) != 0)
				usage_error("invalid --tpm \"%s\" (a whole number; 0 for no limit)", optarg);
			tpm = (int64_t)v;
			break;
		case 'W':
			if (gb__parse_duration(optarg, &v, err, sizeof(err)) != 0 || v < GB_NS_PER_MS)
				usage_error("invalid --rate-window \"%s\" (use e.g. 60s, 2s)", optarg);
			jo.window_ns = v;
			break;
		case 'D':
			if (gb__parse_duration(optarg, &v, err, sizeof(err)) != 0)
				usage_error("invalid --drain-timeout \"%s\" (use e.g. 30s, 0)", optarg);
			jo.drain_ns = v;
			break;
		case 'C':
			jo.cache = true;
			jobs_only = true;
			break;
		case 'M':
			if (gb__parse_uint(optarg, 0, INT64_MAX, &v, err, sizeof(err)) != 0)
				usage_error("invalid --cache-min-tokens \"%s\" (a whole number)", optarg);
			jo.cache_min_tokens = v;
			break;
		case 'L':
			if (gb__parse_duration(optarg, &v, err, sizeof(err)) != 0 || v < GB_NS_PER_SEC)
				usage_error("invalid --cache-ttl \"%s\" (at least 1s, e.g. 3600s, 2h)", optarg);
			jo.cache_ttl_ns = v;
			break;
		case 'k':
			jo.keep_cache = true;
			break;
		case 'g':
			jo.progress = 1;
			break;
		case 'G':
			jo.progress = 0;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("gbatch-processor %s\n", GBATCH_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'gbatch-processor --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (strcmp(telemetry_kind, "shm") == 0 && getenv("GBATCH_RING") != NULL &&
	    getenv("GBATCH_RING")[0] != '\0' && !ring_ok(getenv("GBATCH_RING")))
		usage_error("invalid GBATCH_RING \"%s\" (a name of [A-Za-z0-9_-], 1 to 64, or a path "
		    "containing '/')", getenv("GBATCH_RING"));
	/* only --jobs uses the tier, but a bad one is refused whatever the mode */
	if (tier_text != NULL && gb__rate_parse_tier(tier_text) < 0)
		usage_error("invalid tier \"%s\" (use free, tier1, tier2 or tier3)", tier_text);
	if (jo.jobs_path != NULL) {
		int tier = tier_text != NULL ? gb__rate_parse_tier(tier_text) : 0;
		if (questions_path != NULL || optind < argc)
			usage_error("%s", "--jobs takes the questions and content from the jobs file: "
			    "no --questions or CONTENT_FILE");
		if (jo.resume && output == NULL)
			usage_error("%s", "--resume needs --output FILE (the results to resume from)");
		o.api_key = getenv("GEMINI_API_KEY");
		if (o.api_key == NULL || *o.api_key == '\0')
			usage_error("%s", "GEMINI_API_KEY is not set");
		if (schema_path != NULL &&
		    (schema = gb__read_file(schema_path, GB_MAX_FILE_BYTES, &len)) == NULL)
			usage_error("cannot read schema file \"%s\"", schema_path);
		jo.model = o.model != NULL && *o.model != '\0' ? o.model : GB_DEFAULT_MODEL;
		jo.limits = gb__rate_defaults(jo.model, tier);
		if (rpm >= 0)
			jo.limits.rpm = (unsigned)rpm;
		if (tpm >= 0)
			jo.limits.tpm = (uint64_t)tpm;
		jo.output = output;
		jo.process = po;
		jo.process.response_schema = schema;
		if (gb_process_opts_check(&jo.process, err, sizeof(err)) != 0)
			usage_error("%s", err);
		if (access(jo.jobs_path, R_OK) != 0)
			usage_error("cannot read jobs file \"%s\"", jo.jobs_path);
		p = new_processor(&o);
		tele = telemetry_open(telemetry_kind);
		gb_processor_set_telemetry(p, tele.tele);
		status = gb__jobs_run(p, &jo);
		gb_processor_free(p);
		telemetry_close(&tele);
		free(schema);
		return status;
	}
	if (jobs_only)
		usage_error("%s", "--parallel, --resume, --cache and --shard need --jobs FILE");
	if (questions_path == NULL)
		usage_error("%s", "--questions FILE is required");
	if (optind == argc)
		usage_error("%s", "no CONTENT_FILE given");
	o.api_key = getenv("GEMINI_API_KEY");
	if (o.api_key == NULL || *o.api_key == '\0')
		usage_error("%s", "GEMINI_API_KEY is not set");

	if ((qtext = gb__read_file(questions_path, GB_MAX_FILE_BYTES, &len)) == NULL)
		usage_error("cannot read questions file \"%s\"", questions_path);
	if ((questions = calloc(GB_MAX_QUESTIONS, sizeof(*questions))) == NULL)
		gb__fatalx("out of memory");
	if ((nq = split_questions(qtext, questions, GB_MAX_QUESTIONS, questions_path)) == 0)
		usage_error("no questions in \"%s\"", questions_path);
	if (schema_path != NULL && (schema = gb__read_file(schema_path, GB_MAX_FILE_BYTES, &len)) == NULL)
		usage_error("cannot read schema file \"%s\"", schema_path);
	po.response_schema = schema;

	n_content = (size_t)(argc - optind);
	if ((content = calloc(n_content, sizeof(*content))) == NULL)
		gb__fatalx("out of memory");
	for (size_t i = 0; i < n_content; i++) {
		const char *path = argv[optind + (int)i];
		char *data = gb__read_file(path, GB_MAX_FILE_BYTES, &len);
		if (data == NULL)
			usage_error("cannot read content file \"%s\"", path);
		content[i].mime_type = gb__mime_for(path);
		content[i].data = data;
		content[i].len = len;
		if ((inline_bytes += len) > GB_MAX_INLINE_BYTES)
			usage_error("content is too large for one inline request (15 MiB at most; \"%s\")",
			    path);
	}

	if (gb_process_opts_check(&po, err, sizeof(err)) != 0)
		usage_error("%s", err);
	p = new_processor(&o);
	tele = telemetry_open(telemetry_kind);
	gb_processor_set_telemetry(p, tele.tele);
	status = gb_processor_process_questions(p, content, n_content, (const char *const *)questions,
	    nq, &po, &r, err, sizeof(err));
	if (status != 0) {
		gb_processor_free(p);
		telemetry_close(&tele);
		usage_error("%s", err);
	}
	if ((json = gb_result_to_json(r, GB_RESULT_JSON_PRETTY)) == NULL)
		gb__fatalx("out of memory");
	if (output != NULL) {
		if (write_output(output, json) != 0)
			status = 1;
		for (size_t i = 0; i < nq; i++) {
			const char *a = gb_result_answer(r, i);
			printf("%zu. [%s] %s\n", i + 1, gb_result_source(r, i),
			    a != NULL ? a : gb_result_error(r, i));
		}
	} else {
		printf("%s\n", json);
	}
	if (gb_result_fatal_error(r) != NULL)
		gb__log_warnx("stopped: %s", gb_result_fatal_error(r));
	if (gb_result_failed_count(r) > 0) {
		gb__log_warnx("%zu of %zu questions have no answer", gb_result_failed_count(r), nq);
		status = 1;
	}
	free(json);
	gb_result_free(r);
	gb_processor_free(p);
	telemetry_close(&tele);
	for (size_t i = 0; i < n_content; i++)
		free((void *)(uintptr_t)content[i].data);
	free(content);
	free(questions);
	free(qtext);
	free(schema);
	return status;
}
