/*
 * collector_main.c - gbatch-collector's command line and environment: flags, the DataDog
 * client variables (DD_DOGSTATSD_URL, DD_DOGSTATSD_SOCKET, DD_AGENT_HOST/DD_DOGSTATSD_PORT,
 * DD_ENV, DD_SERVICE, DD_VERSION, DD_TAGS, DD_ENTITY_ID) and GBATCH_RING. Anything bad exits 2 naming it.
 */
#include <getopt.h>
#include <stdbool.h>
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
#define DEFAULT_MAX_NAMES 1000

struct cli {
	gb_collector_config cfg;
	gb_statsd_target target;
	const char *tags[MAX_TAGS];
	size_t n_tags;
	const char *drop[MAX_DROP];
	size_t n_drop;
	char env_tags[6][GB_STATSD_TAG_MAX + 32];
	char *dd_tags; /* a writable copy of DD_TAGS, split in place */
	bool console_set; /* --console given */
	char env_err[256]; /* what was wrong with the StatsD target in the environment, if
	                      anything: an error only while StatsD is on */
	double buckets[GB_PROM_MAX_BUCKETS];
};

static const char usage[] =
    "usage: gbatch-collector [--ring NAME|PATH]... [--statsd URL|off]\n"
    "         [--prometheus ADDR:PORT [--prometheus-buckets LIST] [--prometheus-expire DUR]]\n"
    "         [--console lines|summary|off] [--flush-interval DUR] [--prefix P]\n"
    "         [--names leaf|path] [--tag K:V]... [--drop-tag KEY]... [--max-tag-values N]\n"
    "         [--max-names N] [--max-contexts N] [--send-timeout DUR] [--datagram-wait DUR]\n"
    "         [--timing-type ms|h|d] [--pack-values] [--timestamps] [--resolve-interval DUR]\n"
    "         [--unblock-timeout DUR] [--exit-when-producers-done] [--trust-uid UID]\n"
    "         [--version] [--help]\n"
    "\n"
    "Drains gbatch telemetry rings into DogStatsD, Prometheus and the console.\n"
    "  --ring NAME|PATH         ring to drain (repeatable; default $GBATCH_RING or \"default\")\n"
    "  --statsd URL|off         udp://host[:port] (port 8125 when absent, IPv6 as\n"
    "                           udp://[::1]:8125), unix:///path or unixgram:///path\n"
    "                           (datagrams), unixstream:///path (the agent's stream\n"
    "                           socket, length-framed); default from DD_DOGSTATSD_URL,\n"
    "                           else DD_DOGSTATSD_SOCKET (a unixgram path), else\n"
    "                           DD_AGENT_HOST + DD_DOGSTATSD_PORT, else\n"
    "                           udp://127.0.0.1:8125; off: no StatsD at all\n"
    "  --prometheus ADDR:PORT   serve GET /metrics (and /healthz) on HOST:PORT,\n"
    "                           [IPV6]:PORT or :PORT (every IPv4 interface; port 0:\n"
    "                           any free one, logged)\n"
    "  --prometheus-buckets LIST  timing histogram bounds, durations, strictly\n"
    "                           increasing (default 5ms,10ms,25ms,50ms,100ms,250ms,\n"
    "                           500ms,1s,2.5s,5s,10s,20s,30s,60s,120s)\n"
    "  --prometheus-expire DUR  drop a series not updated for this long (default 5m,\n"
    "                           0 = never)\n"
    "  --console MODE           lines, summary (on SIGUSR1 and at exit) or off\n"
    "                           (default: summary when stdout is a terminal, else off)\n"
    "  --flush-interval DUR     how often folded counters and gauges are sent (default 1s)\n"
    "  --prefix P               metric name prefix (default \"gbatch.\"; gen_ai.* names,\n"
    "                           OpenTelemetry's, go out without it)\n"
    "  --names leaf|path        a metric is named after the record's own name, its call\n"
    "                           path in the parent_scope tag (leaf, the default), or after\n"
    "                           the whole path (path, as gbatch 0.1 named them)\n"
    "  --tag K:V                tag added to every metric (repeatable); also DD_ENV,\n"
    "                           DD_SERVICE, DD_VERSION, DD_TAGS, DD_ENTITY_ID (each tag\n"
    "                           at most 200 bytes, all of them joined at most 1024)\n"
    "  --drop-tag KEY           never send tags with this key (repeatable)\n"
    "  --max-tag-values N       distinct values per tag key (parent_scope included)\n"
    "                           before \"other\" (default 1000, 0 = no cap)\n"
    "  --max-names N            distinct metric names before <prefix>other\n"
    "                           (default 1000, 0 = no cap)\n"
    "  --max-contexts N         distinct counter/gauge contexts (name, type, tags) folded\n"
    "                           per flush interval; values of new ones past it are not\n"
    "                           sent, counted in gbatch.collector.contexts_dropped\n"
    "                           (default 20000, at most 10000000, 0 = no cap)\n"
    "                           --max-tag-values, --max-names and --max-contexts (series\n"
    "                           held) bound /metrics too\n"
    "  --send-timeout DUR       Unix sockets: how long a datagram may wait for room in\n"
    "                           a slow agent's queue before it is dropped (default 1s,\n"
    "                           at most 60s, 0 = never wait)\n"
    "  --datagram-wait DUR      a part-filled datagram waits this long for more lines;\n"
    "                           a full one goes at once (default 5ms, at most 1s, 0 =\n"
    "                           send whenever the rings are empty)\n"
    "  --timing-type ms|h|d     the type timings and histogram samples go out as: ms\n"
    "                           (StatsD timers, every server reads them; the default),\n"
    "                           h (DogStatsD histograms) or d (distributions: percentiles\n"
    "                           across every host)\n"
    "  --pack-values            every sample of one timing or histogram context in one\n"
    "                           message per flush interval (name:v1:v2:v3|d|#tags,\n"
    "                           DogStatsD 1.1, agent 6.25 or later; not for Etsy statsd)\n"
    "  --timestamps             counters and gauges of records older than two flush\n"
    "                           intervals when read (a backlog after a restart) go out\n"
    "                           with |T<unix seconds>, per interval, so they land when\n"
    "                           they happened (agent 7.40 or later). Off by default:\n"
    "                           Etsy statsd would glue the field onto the last tag\n"
    "  --resolve-interval DUR   a udp:// host name is resolved again this often and\n"
    "                           after failed sends (default 60s, at least 10ms)\n"
    "  --unblock-timeout DUR    pad over a record a dead producer left unfinished (default 2s)\n"
    "  --exit-when-producers-done  exit once every producer that attached is gone\n"
    "  --trust-uid UID          also accept rings owned by this uid\n"
    "SIGTERM, SIGINT and SIGHUP drain every ring and exit; SIGUSR1 prints the summary.\n"
    "Exit status: 0 after a clean drain, 1 when a ring or the target cannot be used\n"
    "or the --prometheus address cannot be listened on,\n"
    "2 for bad flags, values or environment.\n";

static uint64_t
duration_arg(const char *flag, const char *text, uint64_t min_ns, uint64_t max_ns)
{
	char err[256];
	uint64_t ns;

	if (gb__parse_duration(text, &ns, err, sizeof(err)) < 0)
		gb__usage_error("%s: %s", flag, err);
	if (ns < min_ns)
		gb__usage_error("%s: \"%s\" is too short", flag, text);
	if (ns > max_ns)
		gb__usage_error("%s: \"%s\" is too long", flag, text);
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
		gb__usage_error("%s \"%s\": the host tag cannot be set (it would override the host)",
		    flag, t);
	if (n == 0 || n != strlen(t) || memcmp(out, t, n) != 0)
		gb__usage_error("%s \"%s\": not a valid tag (key:value, lower case [a-z0-9_-:./], "
		    "letter first, at most %d bytes, not ending in ':')", flag, t, GB_STATSD_TAG_MAX);
}

static void
add_tag(struct cli *cl, const char *t)
{
	if (cl->n_tags == MAX_TAGS)
		gb__usage_error("--tag: more than %d tags", MAX_TAGS);
	cl->tags[cl->n_tags++] = t;
}

static void
env_tag(struct cli *cl, size_t slot, const char *var, const char *key)
{
	const char *v = getenv(var);

	if (v == NULL || v[0] == '\0')
		return;
	if (strlen(v) > GB_STATSD_TAG_MAX)
		gb__usage_error("%s: \"%.60s...\" is longer than %d bytes", var, v, GB_STATSD_TAG_MAX);
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
			gb__usage_error("DD_TAGS: \"%s\" has no tag key (a key starts with a letter)",
			    t);
		if (strlen(t) > GB_STATSD_TAG_MAX)
			gb__usage_error("DD_TAGS: \"%.60s...\" is longer than %d bytes", t,
			    GB_STATSD_TAG_MAX);
		add_tag(cl, t);
	}
}

static void
parse_env(struct cli *cl)
{
	char err[256];
	const char *ring = getenv("GBATCH_RING");

	if (gb__statsd_target_from_env(&cl->target, cl->env_err, sizeof(cl->env_err)) < 0 &&
	    cl->env_err[0] == '\0')
		snprintf(cl->env_err, sizeof(cl->env_err), "the StatsD target in the environment");
	if (ring != NULL && ring[0] != '\0' && gb__ring_name_check(ring, err, sizeof(err)) < 0)
		gb__usage_error("GBATCH_RING: %s", err);
	env_tag(cl, 0, "DD_ENV", "env");
	env_tag(cl, 1, "DD_SERVICE", "service");
	env_tag(cl, 2, "DD_VERSION", "version");
	env_tag(cl, 3, "DD_ENTITY_ID", "dd.internal.entity_id");
	env_dd_tags(cl);
}

/* ---- the flags: one handler each, arg NULL for those without a value ---- */

static void
flag_ring(struct cli *cl, const char *arg)
{
	gb_collector_config *cfg = &cl->cfg;
	char err[256];

	if (gb__ring_name_check(arg, err, sizeof(err)) < 0)
		gb__usage_error("--ring: %s", err);
	if (cfg->n_rings == GB_COLLECTOR_MAX_RINGS)
		gb__usage_error("--ring \"%s\": more than %d rings", arg, GB_COLLECTOR_MAX_RINGS);
	cfg->rings[cfg->n_rings++] = arg;
}

static void
flag_statsd(struct cli *cl, const char *arg)
{
	char err[256];

	if (strcmp(arg, "off") == 0) {
		cl->cfg.statsd_on = false;
		return;
	}
	if (gb__statsd_parse_url(arg, &cl->target, err, sizeof(err)) < 0)
		gb__usage_error("--statsd: %s", err);
	cl->cfg.statsd_on = true;
}

/* ---- --prometheus and its settings ---- */

static void
flag_prometheus(struct cli *cl, const char *arg)
{
	char err[512];

	if (gb__prom_parse_addr(arg, &cl->cfg.prom_addr, err, sizeof(err)) < 0)
		gb__usage_error("--prometheus: %s", err);
	cl->cfg.prom_on = true;
}

static void
flag_prometheus_buckets(struct cli *cl, const char *arg)
{
	char err[512];
	int n = gb__prom_parse_buckets(arg, cl->buckets, err, sizeof(err));

	if (n < 0)
		gb__usage_error("--prometheus-buckets: %s", err);
	cl->cfg.prom.buckets = cl->buckets;
	cl->cfg.prom.n_buckets = (size_t)n;
}

static void
flag_prometheus_expire(struct cli *cl, const char *arg)
{
	cl->cfg.prom.expire_ns = duration_arg("--prometheus-expire", arg, 0, UINT64_MAX);
}

static void
flag_console(struct cli *cl, const char *arg)
{
	if (gb__console_parse_mode(arg, &cl->cfg.console) < 0)
		gb__usage_error("--console \"%s\": use lines, summary or off", arg);
	cl->console_set = true;
}

static void
flag_flush_interval(struct cli *cl, const char *arg)
{
	cl->cfg.flush_interval_ns = duration_arg("--flush-interval", arg, GB_NS_PER_MS,
	    UINT64_MAX);
}

static void
flag_prefix(struct cli *cl, const char *arg)
{
	char err[256];

	if (gb__statsd_prefix_check(arg, err, sizeof(err)) < 0)
		gb__usage_error("--prefix: %s", err);
	cl->cfg.statsd.prefix = arg;
}

static void
flag_tag(struct cli *cl, const char *arg)
{
	check_tag("--tag", arg);
	add_tag(cl, arg);
}

static void
flag_drop_tag(struct cli *cl, const char *arg)
{
	if (cl->n_drop == MAX_DROP)
		gb__usage_error("--drop-tag \"%s\": more than %d", arg, MAX_DROP);
	check_tag("--drop-tag", arg);
	if (strchr(arg, ':') != NULL)
		gb__usage_error("--drop-tag \"%s\": give the key only", arg);
	cl->drop[cl->n_drop++] = arg;
}

static void
flag_max_tag_values(struct cli *cl, const char *arg)
{
	char err[256];
	uint64_t v;

	if (gb__parse_uint(arg, 0, 1000000, &v, err, sizeof(err)) < 0)
		gb__usage_error("--max-tag-values: %s", err);
	cl->cfg.statsd.max_tag_values = (size_t)v;
}

static void
flag_names(struct cli *cl, const char *arg)
{
	if (strcmp(arg, "leaf") == 0)
		cl->cfg.statsd.names = GB_STATSD_NAMES_LEAF;
	else if (strcmp(arg, "path") == 0)
		cl->cfg.statsd.names = GB_STATSD_NAMES_PATH;
	else
		gb__usage_error("--names \"%s\": use leaf or path", arg);
}

static void
flag_max_names(struct cli *cl, const char *arg)
{
	char err[256];
	uint64_t v;

	if (gb__parse_uint(arg, 0, 1000000, &v, err, sizeof(err)) < 0)
		gb__usage_error("--max-names: %s", err);
	cl->cfg.statsd.max_names = (size_t)v;
}

static void
flag_max_contexts(struct cli *cl, const char *arg)
{
	char err[256];
	uint64_t v;

	if (gb__parse_uint(arg, 0, GB_STATSD_MAX_CONTEXTS, &v, err, sizeof(err)) < 0)
		gb__usage_error("--max-contexts: %s", err);
	cl->cfg.statsd.max_contexts = (size_t)v;
}

static void
flag_send_timeout(struct cli *cl, const char *arg)
{
	cl->cfg.statsd.send_timeout_ns = duration_arg("--send-timeout", arg, 0,
	    GB_STATSD_MAX_SEND_TIMEOUT_NS);
}

static void
flag_datagram_wait(struct cli *cl, const char *arg)
{
	cl->cfg.statsd.datagram_wait_ns = duration_arg("--datagram-wait", arg, 0,
	    GB_STATSD_MAX_DATAGRAM_WAIT_NS);
}

/* ---- the DogStatsD dialect: timing type, packed values, timestamps, re-resolution ---- */

static void
flag_timing_type(struct cli *cl, const char *arg)
{
	if (gb__statsd_timing_parse(arg, &cl->cfg.statsd.timing) < 0)
		gb__usage_error("--timing-type \"%s\": use ms, h or d", arg);
}

static void
flag_pack_values(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->cfg.statsd.pack_values = true;
}

static void
flag_timestamps(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->cfg.statsd.timestamps = true;
}

static void
flag_resolve_interval(struct cli *cl, const char *arg)
{
	cl->cfg.statsd.resolve_interval_ns = duration_arg("--resolve-interval", arg,
	    10 * GB_NS_PER_MS, UINT64_MAX / 2);
}

static void
flag_unblock_timeout(struct cli *cl, const char *arg)
{
	cl->cfg.ring_opts.unblock_timeout_ns = duration_arg("--unblock-timeout", arg,
	    GB_NS_PER_MS, UINT64_MAX);
}

static void
flag_exit_when_done(struct cli *cl, const char *arg)
{
	(void)arg;
	cl->cfg.exit_when_producers_done = true;
}

static void
flag_trust_uid(struct cli *cl, const char *arg)
{
	char err[256];
	uint64_t v;

	if (gb__parse_uint(arg, 0, 4294967294u, &v, err, sizeof(err)) < 0)
		gb__usage_error("--trust-uid: %s", err);
	cl->cfg.ring_opts.trusted_uid = (int64_t)v;
}

static void
flag_version(struct cli *cl, const char *arg)
{
	(void)cl;
	(void)arg;
	printf("gbatch-collector %s\n", GBATCH_VERSION);
	exit(0);
}

static void
flag_help(struct cli *cl, const char *arg)
{
	(void)cl;
	(void)arg;
	fputs(usage, stdout);
	exit(0);
}

static const struct flag {
	const char *name;
	int has_arg; /* required_argument or no_argument */
	void (*handle)(struct cli *cl, const char *arg);
} flags[] = {
	{ "ring", required_argument, flag_ring },
	{ "statsd", required_argument, flag_statsd },
	{ "prometheus", required_argument, flag_prometheus },
	{ "prometheus-buckets", required_argument, flag_prometheus_buckets },
	{ "prometheus-expire", required_argument, flag_prometheus_expire },
	{ "console", required_argument, flag_console },
	{ "flush-interval", required_argument, flag_flush_interval },
	{ "prefix", required_argument, flag_prefix },
	{ "tag", required_argument, flag_tag },
	{ "drop-tag", required_argument, flag_drop_tag },
	{ "max-tag-values", required_argument, flag_max_tag_values },
	{ "names", required_argument, flag_names },
	{ "max-names", required_argument, flag_max_names },
	{ "max-contexts", required_argument, flag_max_contexts },
	{ "send-timeout", required_argument, flag_send_timeout },
	{ "datagram-wait", required_argument, flag_datagram_wait },
	{ "timing-type", required_argument, flag_timing_type },
	{ "pack-values", no_argument, flag_pack_values },
	{ "timestamps", no_argument, flag_timestamps },
	{ "resolve-interval", required_argument, flag_resolve_interval },
	{ "unblock-timeout", required_argument, flag_unblock_timeout },
	{ "exit-when-producers-done", no_argument, flag_exit_when_done },
	{ "trust-uid", required_argument, flag_trust_uid },
	{ "version", no_argument, flag_version },
	{ "help", no_argument, flag_help },
};
#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))
#define FLAG_BASE 256 /* getopt_long returns FLAG_BASE + the index in flags */

static void
set_defaults(gb_collector_config *cfg)
{
	gb__ring_opts_init(&cfg->ring_opts);
	cfg->ring_opts.no_create = false;
	cfg->flush_interval_ns = GB_NS_PER_SEC;
	cfg->statsd_on = true;
	cfg->statsd.max_tag_values = DEFAULT_MAX_TAG_VALUES;
	cfg->statsd.max_names = DEFAULT_MAX_NAMES;
	cfg->statsd.max_contexts = GB_STATSD_DEFAULT_MAX_CONTEXTS;
	cfg->statsd.send_timeout_ns = GB_STATSD_DEFAULT_SEND_TIMEOUT_NS;
	cfg->statsd.datagram_wait_ns = GB_STATSD_DEFAULT_DATAGRAM_WAIT_NS;
	cfg->console_fd = STDOUT_FILENO;
	cfg->prom.expire_ns = GB_PROM_DEFAULT_EXPIRE_NS;
}

/* The Prometheus sink takes the StatsD sink's names, tags and caps: one policy for both. */
static void
finish_prom_config(struct cli *cl)
{
	gb_collector_config *cfg = &cl->cfg;

	cfg->prom.prefix = cfg->statsd.prefix;
	cfg->prom.names = cfg->statsd.names == GB_STATSD_NAMES_PATH ? GB_PROM_NAMES_PATH :
	    GB_PROM_NAMES_LEAF;
	cfg->prom.tags = cl->tags;
	cfg->prom.n_tags = cl->n_tags;
	cfg->prom.drop_tags = cl->drop;
	cfg->prom.n_drop_tags = cl->n_drop;
	cfg->prom.max_tag_values = cfg->statsd.max_tag_values;
	cfg->prom.max_names = cfg->statsd.max_names;
	cfg->prom.max_contexts = cfg->statsd.max_contexts;
}

/* What the flags left unset, and the lists handed to the sink. */
static void
finish_config(struct cli *cl)
{
	gb_collector_config *cfg = &cl->cfg;
	char err[256];

	if (cfg->n_rings == 0) {
		const char *ring = getenv("GBATCH_RING");
		cfg->rings[cfg->n_rings++] = ring && ring[0] ? ring : GB_RING_DEFAULT_NAME;
	}
	if (!cl->console_set)
		cfg->console = isatty(STDOUT_FILENO) ? GB_CONSOLE_SUMMARY : GB_CONSOLE_OFF;
	cfg->statsd.target = &cl->target;
	cfg->statsd.flush_interval_ns = cfg->flush_interval_ns;
	cfg->statsd.tags = cl->tags;
	cfg->statsd.n_tags = cl->n_tags;
	cfg->statsd.drop_tags = cl->drop;
	cfg->statsd.n_drop_tags = cl->n_drop;
	if (cfg->statsd_on && cl->env_err[0] != '\0')
		gb__usage_error("%s", cl->env_err);
	if (cfg->statsd_on && gb__statsd_tags_check(&cfg->statsd, err, sizeof(err)) < 0)
		gb__usage_error("--tag, DD_TAGS, DD_ENV, DD_SERVICE, DD_VERSION, DD_ENTITY_ID: %s",
		    err);
	finish_prom_config(cl);
}

static void
parse_args(struct cli *cl, int argc, char **argv)
{
	struct option longopts[N_FLAGS + 1] = { { NULL, 0, NULL, 0 } };
	int o;

	for (size_t i = 0; i < N_FLAGS; i++)
		longopts[i] = (struct option){ flags[i].name, flags[i].has_arg, NULL,
			FLAG_BASE + (int)i };
	set_defaults(&cl->cfg);
	parse_env(cl);
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (o >= FLAG_BASE && (size_t)(o - FLAG_BASE) < N_FLAGS)
			flags[o - FLAG_BASE].handle(cl, optarg);
		else if (o == ':')
			gb__usage_error("%s needs a value", argv[optind - 1]);
		else
			gb__usage_error("unknown option \"%s\"", argv[optind - 1]);
	}
	if (optind < argc)
		gb__usage_error("unexpected argument \"%s\"", argv[optind]);
	finish_config(cl);
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
