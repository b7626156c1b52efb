/*
 * processor_main.c - gbatch-processor: asks the questions of a file about one or more content
 * files in one batched Gemini call and prints the result as JSON, or runs every job of a
 * JSON-lines file (--jobs), with telemetry into the shared-memory ring (for gbatch-collector),
 * the console, an in-process summary, or nowhere. Every option is checked before anything is
 * opened, so a usage error (exit 2) never creates a ring or sends a request.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gbatch/processor.h>
#include <gbatch/telemetry.h>

#include "clock.h"
#include "content_file.h"
#include "batch_run.h"
#include "content_upload.h"
#include "gb_limits.h"
#include "gen_flags.h"
#include "jobs.h"
#include "log.h"
#include "parse.h"
#include "rate_limit.h"
#include "result_report.h"
#include "ring.h"
#include "text.h"

#define MAX_SHARDS 100000

/* Everything the command line and the environment say. */
struct cli {
	gb_processor_opts o;
	gb_process_opts po;
	struct gb_jobs_opts jo;
	struct gb_gen_flags gf;
	const char *questions_path, *schema_path, *output, *telemetry_kind, *tier_text;
	char *content_root; /* --content-root, resolved */
	int64_t rpm, tpm;
	bool jobs_only; /* a flag that means nothing without --jobs was given */
	bool batch_only; /* one that means nothing without --batch-api */
};

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
	    "  --model M          model (default $GEMINI_MODEL, else " GB_DEFAULT_MODEL "; empty\n"
	    "                     --model= or GEMINI_MODEL= is a usage error, as for --api-base)\n"
	    "  --api-base URL     API endpoint (default $GEMINI_API_BASE, else\n"
	    "                     " GB_DEFAULT_API_BASE ")\n"
	    "  --compare          also ask each question individually and report token and time\n"
	    "                     efficiency (target ratio %.2f)\n"
	    "  --schema FILE      JSON schema every answer must follow (responseSchema)\n"
	    "  --system TEXT      system instruction\n"
	    "  --telemetry KIND   shm[:RING] (default: the ring gbatch-collector drains, RING\n"
	    "                     default $GBATCH_RING or \"default\"), console (records on\n"
	    "                     stderr), simple (a summary on stderr at the end) or off\n"
	    "  --telemetry-format FORMAT  gbatch (default) or seed: console lines and the simple\n"
	    "                     summary in the text the Python gemini-batch prints\n"
	    "  --telemetry-ids    also put ids in telemetry metadata: question_index, and with\n"
	    "                     --jobs job_id, line, question_count (by default only values\n"
	    "                     with few distinct ones, so dashboards get few tag sets)\n"
	    "  --content-root DIR  every content file (CONTENT_FILE and each content_file of a\n"
	    "                     jobs file) must resolve inside DIR; a job whose file is outside\n"
	    "                     fails, a CONTENT_FILE outside is a usage error\n"
	    "  --output FILE      write the JSON result to FILE (stdout then gets one line per answer);\n"
	    "                     with --jobs, the results file (default stdout); synced to disk\n"
	    "                     at the end\n"
	    "  --timeout DUR      per HTTP attempt (default 120s)\n"
	    "  --max-attempts N   HTTP attempts per call, retries included (default 5)\n"
	    "  --upload           send every content through the Files API (content over the\n"
	    "                     15 MiB inline limit always is; 2 GiB a file at most); a file\n"
	    "                     not uploaded or FAILED is an error naming it (exit 1)\n"
	    "  --keep-files       leave the uploaded files (the API deletes them after 48 hours)\n"
	    "                     instead of deleting them at the end\n",
	    GB_TARGET_TOKEN_EFFICIENCY);
	gb__gen_flags_usage(out);
	fprintf(out,
	    "Jobs (--jobs FILE.jsonl): one job a line, {\"id\": \"...\" or N, \"content\": \"...\" or\n"
	    "\"content_file\": \"PATH\", \"questions\": [\"...\", ...], \"schema\": {...},\n"
	    "\"generation_config\": {...}, \"safety_settings\": [...]}; one result a\n"
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
	    "Batch API (--jobs and --output): every job's batched call goes into one Gemini batch,\n"
	    "billed at half the rate and answered within 24 hours; what it leaves unanswered is\n"
	    "asked interactively. OUTPUT.batch.json names the batch; --resume goes on with it.\n"
	    "  --batch-api        submit the jobs as one batch (inline up to 20 MB, else a file)\n"
	    "  --batch-poll DUR   first wait between polls (default 30s; grows to ten times, 10m\n"
	    "                     at most)\n"
	    "  --batch-name NAME  the batch's display name (default gbatch-JOBS-TIME-RANDOM)\n"
	    "  --batch-no-repair  leave what the batch did not answer as errors\n"
	    "  --batch-cancel     cancel the batch OUTPUT.batch.json names, and stop\n"
	    "  --help, --version\n"
	    "Content files are text, or sent inline by extension: .pdf, .png, .jpg, .jpeg, .webp,\n"
	    ".gif, .heic, .heif; only regular files are read (never a FIFO or a device), and never\n"
	    "one under /proc, /sys or /dev. The key comes from GEMINI_API_KEY (empty: a usage\n"
	    "error) and is never printed; it, and anything shaped like a Google API key, is masked\n"
	    "in whatever the server sends back before it is shown, written or reported.\n"
	    "Exit status: 0 every question answered, 1 some failed (or a jobs line was invalid, or\n"
	    "the result could not be written in full), 2 usage error (a bad generation setting\n"
	    "too, before any request), 3 a jobs run stopped before every job was done: a signal,\n"
	    "a batch that failed, expired or was cancelled, a per-day quota, a refused key (401,\n"
	    "403, or an ErrorInfo reason such as 400 API_KEY_INVALID) or an unknown model, a\n"
	    "result that could not be written or synced (those jobs are not counted done: run\n"
	    "again with --resume), 4 every question has an answer but some are partial (their\n"
	    "finishReason is not STOP; --accept-partial takes them as answers).\n");
}

/* ---- the flags: one small handler each ---- */

typedef void flag_fn(struct cli *cl, const char *arg);

static uint64_t
uint_arg(const char *flag, const char *arg, uint64_t min, uint64_t max, const char *hint)
{
	char err[256];
	uint64_t v;

	if (gb__parse_uint(arg, min, max, &v, err, sizeof(err)) != 0)
		gb__usage_error("invalid %s \"%s\" (%s)", flag, arg, hint);
	return v;
}

static uint64_t
duration_arg(const char *flag, const char *arg, uint64_t min_ns, const char *hint)
{
	char err[256];
	uint64_t v;

	if (gb__parse_duration(arg, &v, err, sizeof(err)) != 0 || v < min_ns)
		gb__usage_error("invalid %s \"%s\" (%s)", flag, arg, hint);
	return v;
}

static bool
ring_ok(const char *ring)
{
	char err[256];

	return gb__ring_name_check(ring, err, sizeof(err)) == 0;
}

static void
on_questions(struct cli *cl, const char *arg)
{
	cl->questions_path = arg;
}

static void
on_model(struct cli *cl, const char *arg)
{
	if (*arg == '\0')
		gb__usage_error("invalid --model \"\" (empty: give a model, e.g. %s)", GB_DEFAULT_MODEL);
	cl->o.model = arg;
}

static void
on_api_base(struct cli *cl, const char *arg)
{
	if (*arg == '\0')
		gb__usage_error("invalid --api-base \"\" (empty: give a URL, e.g. %s)",
		    GB_DEFAULT_API_BASE);
	cl->o.api_base = arg;
}

/* GEMINI_MODEL or GEMINI_API_BASE: unset means the default, set but empty is refused (it
 * would silently mean the real endpoint). */
static const char *
env_nonempty(const char *var)
{
	const char *v = getenv(var);

	if (v != NULL && *v == '\0')
		gb__usage_error("%s is set but empty (unset it for the default)", var);
	return v;
}

static void
on_compare(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->po.flags |= GB_PROCESS_COMPARE;
}

static void
on_schema(struct cli *cl, const char *arg)
{
	cl->schema_path = arg;
}

static void
on_system(struct cli *cl, const char *arg)
{
	cl->o.system_instruction = arg;
}

static void
on_telemetry(struct cli *cl, const char *arg)
{
	bool ok = strcmp(arg, "off") == 0 || strcmp(arg, "console") == 0 ||
	    strcmp(arg, "simple") == 0 || strcmp(arg, "shm") == 0 ||
	    (strncmp(arg, "shm:", 4) == 0 && ring_ok(arg + 4));

	if (!ok)
		gb__usage_error("invalid --telemetry \"%s\" (use shm, shm:RING, console, simple or off)",
		    arg);
	cl->telemetry_kind = arg;
}

/* The text format of the console and simple reporters (--telemetry-format). */
static gb_report_format report_format = GB_REPORT_GBATCH;

static void
on_telemetry_format(struct cli *cl, const char *arg)
{
	(void)cl;
	if (strcmp(arg, "gbatch") == 0)
		report_format = GB_REPORT_GBATCH;
	else if (strcmp(arg, "seed") == 0)
		report_format = GB_REPORT_SEED;
	else
		gb__usage_error("invalid --telemetry-format \"%s\" (use gbatch or seed)", arg);
}

static void
on_telemetry_ids(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->po.flags &= ~GB_PROCESS_NO_TELEMETRY_IDS;
}

static void
on_output(struct cli *cl, const char *arg)
{
	cl->output = arg;
}

static void
on_timeout(struct cli *cl, const char *arg)
{
	cl->o.timeout_s = (double)duration_arg("--timeout", arg, 1, "use e.g. 30s, 2m") / 1e9;
}

static void
on_max_attempts(struct cli *cl, const char *arg)
{
	cl->o.max_attempts = (unsigned)uint_arg("--max-attempts", arg, 1, 100, "use 1 to 100");
}

static void
on_content_root(struct cli *cl, const char *arg)
{
	struct stat st;

	free(cl->content_root);
	if (*arg == '\0')
		gb__usage_error("invalid --content-root \"\" (empty: give a directory)");
	if ((cl->content_root = realpath(arg, NULL)) == NULL)
		gb__usage_error("invalid --content-root \"%s\" (%s)", arg, strerror(errno));
	if (stat(cl->content_root, &st) != 0 || !S_ISDIR(st.st_mode))
		gb__usage_error("invalid --content-root \"%s\" (not a directory)", arg);
	cl->jo.content_root = cl->content_root;
}

static void
on_upload(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.upload = true;
}

static void
on_keep_files(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.keep_files = true;
}

static void
on_jobs(struct cli *cl, const char *arg)
{
	cl->jo.jobs_path = arg;
}

static void
on_parallel(struct cli *cl, const char *arg)
{
	cl->jo.parallel = (unsigned)uint_arg("--parallel", arg, 1, 1024, "use 1 to 1024");
	cl->jobs_only = true;
}

static void
on_resume(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.resume = true;
	cl->jobs_only = true;
}

static void
on_shard(struct cli *cl, const char *arg)
{
	if (gb__jobs_parse_shard(arg, MAX_SHARDS, &cl->jo.shard_index, &cl->jo.shard_count) != 0)
		gb__usage_error("invalid --shard \"%s\" (use I/N, 0 <= I < N <= %d)", arg, MAX_SHARDS);
	cl->jobs_only = true;
}

static void
on_tier(struct cli *cl, const char *arg)
{
	cl->tier_text = arg;
}

static void
on_rpm(struct cli *cl, const char *arg)
{
	cl->rpm = (int64_t)uint_arg("--rpm", arg, 1, 1000000, "use 1 to 1000000");
}

static void
on_tpm(struct cli *cl, const char *arg)
{
	cl->tpm = (int64_t)uint_arg("--tpm", arg, 0, INT64_MAX, "a whole number; 0 for no limit");
}

static void
on_rate_window(struct cli *cl, const char *arg)
{
	cl->jo.window_ns = duration_arg("--rate-window", arg, GB_NS_PER_MS, "use e.g. 60s, 2s");
}

static void
on_drain_timeout(struct cli *cl, const char *arg)
{
	cl->jo.drain_ns = duration_arg("--drain-timeout", arg, 0, "use e.g. 30s, 0");
}

static void
on_cache(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.cache = true;
	cl->jobs_only = true;
}

static void
on_cache_min_tokens(struct cli *cl, const char *arg)
{
	cl->jo.cache_min_tokens = uint_arg("--cache-min-tokens", arg, 0, INT64_MAX,
	    "a whole number");
}

static void
on_cache_ttl(struct cli *cl, const char *arg)
{
	cl->jo.cache_ttl_ns = duration_arg("--cache-ttl", arg, GB_NS_PER_SEC,
	    "at least 1s, e.g. 3600s, 2h");
}

static void
on_keep_cache(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.keep_cache = true;
}

static void
on_progress(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.progress = 1;
}

static void
on_no_progress(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.progress = 0;
}

static void
on_batch_api(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.batch_api = cl->jobs_only = true;
}

static void
on_batch_poll(struct cli *cl, const char *arg)
{
	cl->jo.batch_poll_ns = duration_arg("--batch-poll", arg, 10 * GB_NS_PER_MS,
	    "at least 10ms, e.g. 30s, 2m");
	cl->batch_only = true;
}

static void
on_batch_name(struct cli *cl, const char *arg)
{
	size_t n = strlen(arg), i = 0, c;

	while (i < n && (c = gb__text_printable(arg + i, n - i)) > 0)
		i += c;
	if (n == 0 || n > 128 || i != n)
		gb__usage_error("invalid --batch-name \"%s\" (1 to 128 bytes of UTF-8, no control "
		    "characters)", arg);
	cl->jo.batch_name = arg;
	cl->batch_only = true;
}

static void
on_batch_no_repair(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.batch_no_repair = true;
	cl->batch_only = true;
}

static void
on_batch_cancel(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->jo.batch_cancel = cl->jo.batch_api = cl->jobs_only = true;
}

static void
on_help(struct cli *cl, const char *arg)
{
	(void)cl;
	(void)arg;
	usage(stdout);
	exit(0);
}

static void
on_version(struct cli *cl, const char *arg)
{
	(void)cl;
	(void)arg;
	printf("gbatch-processor %s\n", GBATCH_VERSION);
	exit(0);
}

static const struct flag {
	const char *name;
	int has_arg;
	flag_fn *fn;
} flags[] = {
	{ "questions", required_argument, on_questions },
	{ "model", required_argument, on_model },
	{ "api-base", required_argument, on_api_base },
	{ "compare", no_argument, on_compare },
	{ "schema", required_argument, on_schema },
	{ "system", required_argument, on_system },
	{ "telemetry", required_argument, on_telemetry },
	{ "telemetry-ids", no_argument, on_telemetry_ids },
	{ "telemetry-format", required_argument, on_telemetry_format },
	{ "output", required_argument, on_output },
	{ "timeout", required_argument, on_timeout },
	{ "max-attempts", required_argument, on_max_attempts },
	{ "content-root", required_argument, on_content_root },
	{ "upload", no_argument, on_upload },
	{ "keep-files", no_argument, on_keep_files },
	{ "jobs", required_argument, on_jobs },
	{ "parallel", required_argument, on_parallel },
	{ "resume", no_argument, on_resume },
	{ "shard", required_argument, on_shard },
	{ "tier", required_argument, on_tier },
	{ "rpm", required_argument, on_rpm },
	{ "tpm", required_argument, on_tpm },
	{ "rate-window", required_argument, on_rate_window },
	{ "drain-timeout", required_argument, on_drain_timeout },
	{ "cache", no_argument, on_cache },
	{ "cache-min-tokens", required_argument, on_cache_min_tokens },
	{ "cache-ttl", required_argument, on_cache_ttl },
	{ "keep-cache", no_argument, on_keep_cache },
	{ "progress", no_argument, on_progress },
	{ "no-progress", no_argument, on_no_progress },
	{ "batch-api", no_argument, on_batch_api },
	{ "batch-poll", required_argument, on_batch_poll },
	{ "batch-name", required_argument, on_batch_name },
	{ "batch-no-repair", no_argument, on_batch_no_repair },
	{ "batch-cancel", no_argument, on_batch_cancel },
	{ "help", no_argument, on_help },
	{ "version", no_argument, on_version },
};

#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

/* Reads the flags into cl (defaults from the environment first). Returns optind. */
static int
parse_args(struct cli *cl, int argc, char **argv)
{
	struct option longopts[N_FLAGS + GB__N_GEN_OPTIONS + 1];
	int opt;

	memset(cl, 0, sizeof(*cl));
	gb_processor_opts_init(&cl->o);
	cl->telemetry_kind = "shm";
	cl->po.flags = GB_PROCESS_NO_TELEMETRY_IDS;
	cl->tier_text = getenv("GEMINI_TIER");
	cl->rpm = cl->tpm = -1;
	cl->jo = (struct gb_jobs_opts){ .parallel = 1, .window_ns = 60 * GB_NS_PER_SEC,
		.drain_ns = 30 * GB_NS_PER_SEC, .cache_min_tokens = 4096,
		.cache_ttl_ns = 3600 * GB_NS_PER_SEC, .progress = -1,
		.batch_poll_ns = 30 * GB_NS_PER_SEC };
	for (size_t i = 0; i < N_FLAGS; i++)
		longopts[i] = (struct option){ flags[i].name, flags[i].has_arg, NULL, (int)i };
	for (size_t i = 0; i < GB__N_GEN_OPTIONS; i++)
		longopts[N_FLAGS + i] = (struct option){ gb__gen_options[i].name,
			gb__gen_options[i].has_arg, NULL, (int)(N_FLAGS + i) };
	longopts[N_FLAGS + GB__N_GEN_OPTIONS] = (struct option){ NULL, 0, NULL, 0 };
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt < 0 || (size_t)opt >= N_FLAGS + GB__N_GEN_OPTIONS) {
			fprintf(stderr, "Try 'gbatch-processor --help'.\n");
			exit(2);
		}
		if ((size_t)opt >= N_FLAGS)
			gb__gen_flag(&cl->gf, (size_t)opt - N_FLAGS, optarg);
		else
			flags[opt].fn(cl, optarg);
	}
	gb__gen_flags_apply(&cl->gf, &cl->po);
	return optind;
}

/* The checks that need every flag: the environment, the key, what goes with what. */
static void
check_args(struct cli *cl, int n_args)
{
	const char *ring = getenv("GBATCH_RING");

	if (strcmp(cl->telemetry_kind, "shm") == 0 && ring != NULL && ring[0] != '\0' &&
	    !ring_ok(ring))
		gb__usage_error("invalid GBATCH_RING \"%s\" (a name of [A-Za-z0-9_-], 1 to 64, or a "
		    "path containing '/')", ring);
	/* only --jobs uses the tier, but a bad one is refused whatever the mode */
	if (cl->tier_text != NULL && gb__rate_parse_tier(cl->tier_text) < 0)
		gb__usage_error("invalid tier \"%s\" (use free, tier1, tier2 or tier3)", cl->tier_text);
	if (cl->jo.jobs_path != NULL) {
		if (cl->questions_path != NULL || n_args > 0)
			gb__usage_error("--jobs takes the questions and content from the jobs file: "
			    "no --questions or CONTENT_FILE");
		if (cl->jo.resume && cl->output == NULL)
			gb__usage_error("--resume needs --output FILE (the results to resume from)");
		if (cl->jo.batch_api && cl->output == NULL)
			gb__usage_error("--batch-api needs --output FILE (OUTPUT.batch.json names the "
			    "batch)");
		if (cl->jo.batch_api && (cl->po.flags & GB_PROCESS_COMPARE) != 0)
			gb__usage_error("--compare cannot be used with --batch-api (it asks every "
			    "question interactively)");
	} else {
		if (cl->jobs_only)
			gb__usage_error("--parallel, --resume, --cache, --batch-api and --shard need "
			    "--jobs FILE");
		if (cl->questions_path == NULL)
			gb__usage_error("--questions FILE is required");
		if (n_args == 0)
			gb__usage_error("no CONTENT_FILE given");
	}
	if (cl->batch_only && !cl->jo.batch_api)
		gb__usage_error("--batch-poll, --batch-name and --batch-no-repair need --batch-api");
	if (cl->o.model == NULL)
		cl->o.model = env_nonempty("GEMINI_MODEL");
	if (cl->o.api_base == NULL)
		cl->o.api_base = env_nonempty("GEMINI_API_BASE");
	cl->o.api_key = getenv("GEMINI_API_KEY");
	if (cl->o.api_key == NULL)
		gb__usage_error("GEMINI_API_KEY is not set");
	if (*cl->o.api_key == '\0')
		gb__usage_error("GEMINI_API_KEY is empty");
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
			gb__usage_error("too many questions in \"%s\" (at most %d)", path, GB_MAX_QUESTIONS);
		out[n++] = line;
	}
	return n;
}

/* The --schema file (NULL without one; exit 2 when it cannot be read). */
static char *
read_schema(const struct cli *cl)
{
	size_t len;
	char *schema = NULL;

	if (cl->schema_path != NULL &&
	    (schema = gb__read_file(cl->schema_path, GB_MAX_FILE_BYTES, &len)) == NULL)
		gb__usage_error("cannot read schema file \"%s\"", cl->schema_path);
	return schema;
}

/* Creates the processor, refusing bad options (model, API base, ...) with exit 2. Called before
 * telemetry is opened, so a usage error never creates a ring. */
static gb_processor *
new_processor(const gb_processor_opts *o)
{
	char err[512];
	gb_processor *p = gb_processor_new(o, err, sizeof(err));

	if (p == NULL)
		gb__usage_error("%s", err);
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
		rep = gb_console_reporter_format(stderr, report_format);
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
		char *report = gb_simple_reporter_report_format(t->simple, report_format);
		if (report != NULL)
			fprintf(stderr, "%s", report);
		free(report);
		gb_simple_reporter_free(t->simple);
	}
	if (t->shm != NULL)
		gb_shm_reporter_close(t->shm);
}

/* ---- --jobs ---- */

static int
run_jobs(struct cli *cl)
{
	struct gb_jobs_opts *jo = &cl->jo;
	int tier = cl->tier_text != NULL ? gb__rate_parse_tier(cl->tier_text) : 0;
	char err[512], *schema = read_schema(cl);
	struct telemetry tele;
	gb_processor *p;
	int status;

	jo->model = cl->o.model != NULL && *cl->o.model != '\0' ? cl->o.model : GB_DEFAULT_MODEL;
	jo->limits = gb__rate_defaults(jo->model, tier);
	if (cl->rpm >= 0)
		jo->limits.rpm = (unsigned)cl->rpm;
	if (cl->tpm >= 0)
		jo->limits.tpm = (uint64_t)cl->tpm;
	jo->output = cl->output;
	jo->process = cl->po;
	jo->process.response_schema = schema;
	if (gb_process_opts_check(&jo->process, err, sizeof(err)) != 0)
		gb__usage_error("%s", err);
	if (access(jo->jobs_path, R_OK) != 0)
		gb__usage_error("cannot read jobs file \"%s\"", jo->jobs_path);
	p = new_processor(&cl->o);
	tele = telemetry_open(cl->telemetry_kind);
	gb_processor_set_telemetry(p, tele.tele);
	status = gb__jobs_run(p, jo);
	gb_processor_free(p);
	telemetry_close(&tele);
	free(schema);
	return status;
}

/* ---- one question set ---- */

static int
run_questions(struct cli *cl, char *const *paths, size_t n_content)
{
	char err[1024], *qtext, **questions, *schema;
	size_t nq, len;
	struct gb_content_set cs;
	struct gb_uploads up = { 0 };
	struct telemetry tele;
	gb_processor *p;
	gb_result *r;
	int status;

	if ((qtext = gb__read_file(cl->questions_path, GB_MAX_FILE_BYTES, &len)) == NULL)
		gb__usage_error("cannot read questions file \"%s\"", cl->questions_path);
	if ((questions = calloc(GB_MAX_QUESTIONS, sizeof(*questions))) == NULL)
		gb__fatalx("out of memory");
	if ((nq = split_questions(qtext, questions, GB_MAX_QUESTIONS, cl->questions_path)) == 0)
		gb__usage_error("no questions in \"%s\"", cl->questions_path);
	cl->po.response_schema = schema = read_schema(cl);
	gb__content_set_load(&cs, paths, n_content, cl->jo.content_root, cl->jo.upload);
	if (gb_process_opts_check(&cl->po, err, sizeof(err)) != 0)
		gb__usage_error("%s", err);
	p = new_processor(&cl->o);
	tele = telemetry_open(cl->telemetry_kind);
	gb_processor_set_telemetry(p, tele.tele);
	if (gb__content_set_upload(&cs, &up, gb__processor_client(p), tele.tele, err,
	    sizeof(err)) != 0) {
		gb__log_warnx("%s; no question asked", err);
		status = 1;
	} else if (gb_processor_process_questions(p, cs.content, n_content,
	    (const char *const *)questions, nq, &cl->po, &r, err, sizeof(err)) != 0) {
		gb__uploads_finish(&up, gb__processor_client(p), cl->jo.keep_files);
		gb_processor_free(p);
		telemetry_close(&tele);
		gb__usage_error("%s", err);
	} else {
		status = gb__result_report(r, cl->output);
		gb_result_free(r);
	}
	gb__uploads_finish(&up, gb__processor_client(p), cl->jo.keep_files);
	gb_processor_free(p);
	telemetry_close(&tele);
	gb__content_set_fini(&cs);
	free(questions);
	free(qtext);
	free(schema);
	return status;
}

int
main(int argc, char **argv)
{
	struct cli cl;
	int first, status;

	gb__log_init(argv[0]);
	first = parse_args(&cl, argc, argv);
	check_args(&cl, argc - first);
	status = cl.jo.jobs_path != NULL ? run_jobs(&cl) :
	    run_questions(&cl, argv + first, (size_t)(argc - first));
	free(cl.content_root);
	gb__gen_flags_fini(&cl.gf);
	return status;
}
