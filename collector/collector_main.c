/*
 * collector_main.c - gbatch-collector's command line and environment: flags, the DataDog
 * client variables (DD_DOGSTATSD_URL, DD_AGENT_HOST/DD_DOGSTATSD_PORT, DD_ENV, DD_SERVICE,
 * DD_VERSION, DD_TAGS, DD_ENTITY_ID) and GBATCH_RING. Anything bad exits 2 naming it.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "collector.h"
#include "log.h"
#include "parse.h"

#define MAX_TAGS 64
#define MAX_DROP 32
#define DEFAULT_MAX_TAG_VALUES 1000

struct cli {
	gb_collector_config cfg;
	gb_statsd_target target;
	const char *tags[MAX_TAGS];
	size_t n_tags;
	const char *drop[MAX_DROP];
	size_t n_drop;
	char env_tags[6][GB_STATSD_TAG_MAX + 32];
	char *dd_tags; /* a writable copy of DD_TAGS, split in place */
};

static const char usage[] =
    "usage: gbatch-collector [--ring NAME|PATH]... [--statsd URL|off]\n"
    "         [--console lines|summary|off] [--flush-interval DUR] [--prefix P]\n"
    "         [--tag K:V]... [--drop-tag KEY]... [--max-tag-values N]\n"
    "         [--send-timeout DUR] [--unblock-timeout DUR] [--exit-when-producers-done]\n"
    "         [--trust-uid UID] [--version] [--help]\n"
    "\n"
    "Drains gbatch telemetry rings into DogStatsD and the console.\n"
    "  --ring NAME|PATH         ring to drain (repeatable; default $GBATCH_RING or \"default\")\n"
    "  --statsd URL|off         udp://host:port or unixgram:///path (default from\n"
    "                           DD_DOGSTATSD_URL, DD_AGENT_HOST + DD_DOGSTATSD_PORT,\n"
    "                           else udp://127.0.0.1:8125)\n"
    "  --console MODE           lines, summary (on SIGUSR1 and at exit) or off\n"
    "                           (default: summary when stdout is a terminal, else off)\n"
    "  --flush-interval DUR     how often folded counters and gauges are sent (default 1s)\n"
    "  --prefix P               metric name prefix (default \"gbatch.\")\n"
    "  --tag K:V                tag added to every metric (repeatable); also DD_ENV,\n"
    "                           DD_SERVICE, DD_VERSION, DD_TAGS, DD_ENTITY_ID\n"
    "  --drop-tag KEY           never send tags with this key (repeatable)\n"
    "  --max-tag-values N       distinct values per metadata tag key before \"other\"\n"
    "                           (default 1000, 0 = no cap)\n"
    "  --send-timeout DUR       unixgram: how long a datagram may wait for room in a\n"
    "                           slow agent's queue before it is dropped (default 1s,\n"
    "                           at most 60s, 0 = never wait)\n"
    "  --unblock-timeout DUR    pad over a record a dead producer left unfinished (default 2s)\n"
    "  --exit-when-producers-done  exit once every producer that attached is gone\n"
    "  --trust-uid UID          also accept rings owned by this uid\n"
    "Exit status: 0 after a clean drain, 1 when a ring or the target cannot be used,\n"
    "2 for bad flags, values or environment.\n";

static void __attribute__((noreturn))
bad(const char *fmt, const char *what, const char *detail)
{
	fprintf(stderr, "gbatch-collector: ");
	fprintf(stderr, fmt, what, detail);
	fprintf(stderr, "\n(try gbatch-collector --help)\n");
	exit(2);
}

static uint64_t
duration_arg(const char *flag, const char *text, uint64_t min_ns, uint64_t max_ns)
{
	char err[256];
	uint64_t ns;

	if (gb__parse_duration(text, &ns, err, sizeof(err)) < 0)
		bad("%s: %s", flag, err);
	if (ns < min_ns)
		bad("%s: \"%s\" is too short", flag, text);
	if (ns > max_ns)
		bad("%s: \"%s\" is too long", flag, text);
	return ns;
}

/* A --tag must already be a valid tag: what the user typed is what is sent. */
static void
check_tag(const char *flag, const char *t)
{
	char out[GB_STATSD_TAG_MAX + 1];
	const char *colon = strchr(t, ':');
	size_t kl, n = colon ? gb__statsd_tag(out, t, (size_t)(colon - t), colon + 1,
	    strlen(colon + 1), &kl) : gb__statsd_tag(out, t, strlen(t), NULL, 0, &kl);

	if (n >= 4 && strncmp(t, "host", 4) == 0 && (t[4] == ':' || t[4] == '\0'))
		bad("%s \"%s\": the host tag cannot be set (it would override the host)", flag, t);
	if (n == 0 || n != strlen(t) || memcmp(out, t, n) != 0)
		bad("%s \"%s\": not a valid tag (key:value, lower case [a-z0-9_-:./], letter first, "
		    "at most 200 bytes, not ending in ':')", flag, t);
}

static void
add_tag(struct cli *cl, const char *t)
{
	if (cl->n_tags == MAX_TAGS)
		bad("%s: more than %s tags", "--tag", "64");
	cl->tags[cl->n_tags++] = t;
}

static void
env_tag(struct cli *cl, size_t slot, const char *var, const char *key)
{
	const char *v = getenv(var);

	if (v == NULL || v[0] == '\0')
		return;
	if (strlen(v) > GB_STATSD_TAG_MAX)
		bad("%s: \"%.60s...\" is longer than 200 bytes", var, v);
	snprintf(cl->env_tags[slot], sizeof(cl->env_tags[slot]), "%s:%s", key, v);
	add_tag(cl, cl->env_tags[slot]);
}

/* DD_TAGS: tags separated by commas or spaces, sanitised like metadata. */
static void
env_dd_tags(struct cli *cl)
{
	const char *v = getenv("DD_TAGS");
	char *save = NULL, *t;

	if (v == NULL || v[0] == '\0')
		return;
	if ((cl->dd_tags = strdup(v)) == NULL)
		gb__fatal("strdup");
	for (t = strtok_r(cl->dd_tags, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
		char out[GB_STATSD_TAG_MAX + 1];

		if (gb__statsd_tag(out, t, strcspn(t, ":"), NULL, 0, NULL) == 0)
			bad("DD_TAGS: \"%s\" has no tag key (%s)", t, "a key starts with a letter");
		add_tag(cl, t);
	}
}

static void
parse_env(struct cli *cl)
{
	char err[256];
	const char *ring = getenv("GBATCH_RING");

	if (gb__statsd_target_from_env(&cl->target, err, sizeof(err)) < 0)
		bad("%s%s", err, "");
	if (ring != NULL && ring[0] != '\0' && gb__ring_name_check(ring, err, sizeof(err)) < 0)
		bad("GBATCH_RING: %s%s", err, "");
	env_tag(cl, 0, "DD_ENV", "env");
	env_tag(cl, 1, "DD_SERVICE", "service");
	env_tag(cl, 2, "DD_VERSION", "version");
	env_tag(cl, 3, "DD_ENTITY_ID", "dd.internal.entity_id");
	env_dd_tags(cl);
}

enum { OPT_RING = 256, OPT_STATSD, OPT_CONSOLE, OPT_FLUSH, OPT_PREFIX, OPT_TAG, OPT_DROP,
	OPT_MAXTAG, OPT_SENDTIMEOUT, OPT_UNBLOCK, OPT_EXITDONE, OPT_TRUST, OPT_VERSION, OPT_HELP };

static const struct option options[] = {
	{ "ring", required_argument, NULL, OPT_RING },
	{ "statsd", required_argument, NULL, OPT_STATSD },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "flush-interval", required_argument, NULL, OPT_FLUSH },
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "tag", required_argument, NULL, OPT_TAG },
	{ "drop-tag", required_argument, NULL, OPT_DROP },
	{ "max-tag-values", required_argument, NULL, OPT_MAXTAG },
	{ "send-timeout", required_argument, NULL, OPT_SENDTIMEOUT },
	{ "unblock-timeout", required_argument, NULL, OPT_UNBLOCK },
	{ "exit-when-producers-done", no_argument, NULL, OPT_EXITDONE },
	{ "trust-uid", required_argument, NULL, OPT_TRUST },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void
parse_args(struct cli *cl, int argc, char **argv)
{
	gb_collector_config *cfg = &cl->cfg;
	bool console_set = false;
	char err[256];
	uint64_t v;
	int o;

	gb__ring_opts_init(&cfg->ring_opts);
	cfg->ring_opts.no_create = false;
	cfg->flush_interval_ns = GB_NS_PER_SEC;
	cfg->statsd_on = true;
	cfg->statsd.max_tag_values = DEFAULT_MAX_TAG_VALUES;
	cfg->statsd.send_timeout_ns = GB_STATSD_DEFAULT_SEND_TIMEOUT_NS;
	cfg->console_fd = STDOUT_FILENO;
	parse_env(cl);

	opterr = 0;
	while ((o = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (o) {
		case OPT_RING:
			if (gb__ring_name_check(optarg, err, sizeof(err)) < 0)
				bad("--ring: %s%s", err, "");
			if (cfg->n_rings == GB_COLLECTOR_MAX_RINGS)
				bad("--ring \"%s\": more than %s rings", optarg, "16");
			cfg->rings[cfg->n_rings++] = optarg;
			break;
		case OPT_STATSD:
			if (strcmp(optarg, "off") == 0)
				cfg->statsd_on = false;
			else if (gb__statsd_parse_url(optarg, &cl->target, err, sizeof(err)) < 0)
				bad("--statsd: %s%s", err, "");
			else
				cfg->statsd_on = true;
			break;
		case OPT_CONSOLE:
			if (gb__console_parse_mode(optarg, &cfg->console) < 0)
				bad("--console \"%s\": use lines, summary or off%s", optarg, "");
			console_set = true;
			break;
		case OPT_FLUSH:
			cfg->flush_interval_ns = duration_arg("--flush-interval", optarg, GB_NS_PER_MS,
			    UINT64_MAX);
			break;
		case OPT_PREFIX:
			if (gb__statsd_prefix_check(optarg, err, sizeof(err)) < 0)
				bad("--prefix: %s%s", err, "");
			cfg->statsd.prefix = optarg;
			break;
		case OPT_TAG:
			check_tag("--tag", optarg);
			add_tag(cl, optarg);
			break;
		case OPT_DROP:
			if (cl->n_drop == MAX_DROP)
				bad("--drop-tag \"%s\": more than %s", optarg, "32");
			check_tag("--drop-tag", optarg);
			if (strchr(optarg, ':') != NULL)
				bad("--drop-tag \"%s\": give the key only%s", optarg, "");
			cl->drop[cl->n_drop++] = optarg;
			break;
		case OPT_MAXTAG:
			if (gb__parse_uint(optarg, 0, 1000000, &v, err, sizeof(err)) < 0)
				bad("--max-tag-values: %s%s", err, "");
			cfg->statsd.max_tag_values = (size_t)v;
			break;
		case OPT_UNBLOCK:
			cfg->ring_opts.unblock_timeout_ns = duration_arg("--unblock-timeout", optarg,
			    GB_NS_PER_MS, UINT64_MAX);
			break;
		case OPT_SENDTIMEOUT:
			cfg->statsd.send_timeout_ns = duration_arg("--send-timeout", optarg, 0,
			    GB_STATSD_MAX_SEND_TIMEOUT_NS);
			break;
		case OPT_EXITDONE:
			cfg->exit_when_producers_done = true;
			break;
		case OPT_TRUST:
			if (gb__parse_uint(optarg, 0, 4294967294u, &v, err, sizeof(err)) < 0)
				bad("--trust-uid: %s%s", err, "");
			cfg->ring_opts.trusted_uid = (int64_t)v;
			break;
		case OPT_VERSION:
			printf("gbatch-collector %s\n", GBATCH_VERSION);
			exit(0);
		case OPT_HELP:
			fputs(usage, stdout);
			exit(0);
		case ':':
			bad("%s needs a value%s", argv[optind - 1], "");
		default:
			bad("unknown option \"%s\"%s", argv[optind - 1], "");
		}
	}
	if (optind < argc)
		bad("unexpected argument \"%s\"%s", argv[optind], "");
	if (cfg->n_rings == 0) {
		const char *ring = getenv("GBATCH_RING");
		cfg->rings[cfg->n_rings++] = ring && ring[0] ? ring : GB_RING_DEFAULT_NAME;
	}
	if (!console_set)
		cfg->console = isatty(STDOUT_FILENO) ? GB_CONSOLE_SUMMARY : GB_CONSOLE_OFF;
	cfg->statsd.target = &cl->target;
	cfg->statsd.tags = cl->tags;
	cfg->statsd.n_tags = cl->n_tags;
	cfg->statsd.drop_tags = cl->drop;
	cfg->statsd.n_drop_tags = cl->n_drop;
}

int
main(int argc, char **argv)
{
	static struct cli cl;
	char err[512];
	gb_collector *c;
	int rc;

	gb__log_init("gbatch-collector");
	parse_args(&cl, argc, argv);
	if ((c = gb__collector_new(&cl.cfg, err, sizeof(err))) == NULL) {
		gb__log_warnx("%s", err);
		return 1;
	}
	rc = gb__collector_run(c);
	gb__collector_free(c);
	free(cl.dd_tags);
	return rc;
}
