/*
 * gen_flags.c - the generation settings on gbatch-processor's command line, spelled as flags
 * and sent under the REST reference's names: --temperature (temperature), --top-p (topP),
 * --top-k (topK), --max-output-tokens (maxOutputTokens), --stop (stopSequences), --seed
 * (seed), --thinking-budget and --include-thoughts (thinkingConfig), --safety (safetySettings).
 * A value is checked by the library's own rules the moment it is read.
 */
#include "gen_flags.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen_config.h"
#include "log.h"

enum { G_TEMPERATURE, G_TOP_P, G_TOP_K, G_MAX_TOKENS, G_STOP, G_SEED, G_THINKING_BUDGET,
	G_INCLUDE_THOUGHTS, G_SAFETY, G_ACCEPT_PARTIAL };

const struct option gb__gen_options[GB__N_GEN_OPTIONS] = {
	[G_TEMPERATURE] = { "temperature", required_argument, NULL, 0 },
	[G_TOP_P] = { "top-p", required_argument, NULL, 0 },
	[G_TOP_K] = { "top-k", required_argument, NULL, 0 },
	[G_MAX_TOKENS] = { "max-output-tokens", required_argument, NULL, 0 },
	[G_STOP] = { "stop", required_argument, NULL, 0 },
	[G_SEED] = { "seed", required_argument, NULL, 0 },
	[G_THINKING_BUDGET] = { "thinking-budget", required_argument, NULL, 0 },
	[G_INCLUDE_THOUGHTS] = { "include-thoughts", no_argument, NULL, 0 },
	[G_SAFETY] = { "safety", required_argument, NULL, 0 },
	[G_ACCEPT_PARTIAL] = { "accept-partial", no_argument, NULL, 0 },
};
_Static_assert(G_ACCEPT_PARTIAL + 1 == GB__N_GEN_OPTIONS, "one entry per flag");

void
gb__gen_flags_usage(FILE *out)
{
	fputs("Generation settings (sent as generationConfig and safetySettings; a jobs line's\n"
	    "\"generation_config\" and \"safety_settings\" override them key by key):\n"
	    "  --temperature X    0 to 2            --top-p X   0 to 1\n"
	    "  --top-k N          at least 1        --seed N    a 32-bit whole number\n"
	    "  --max-output-tokens N  at least 1\n"
	    "  --stop SEQ         a stop sequence (repeatable, at most 5)\n"
	    "  --thinking-budget N  thinking tokens: 0 off, -1 dynamic (2.5 models)\n"
	    "  --include-thoughts  ask for thought summaries (never taken as the answer)\n"
	    "  --safety CATEGORY=THRESHOLD  repeatable; CATEGORY HARM_CATEGORY_HARASSMENT,\n"
	    "                     _HATE_SPEECH, _SEXUALLY_EXPLICIT, _DANGEROUS_CONTENT or\n"
	    "                     _CIVIC_INTEGRITY; THRESHOLD BLOCK_NONE, BLOCK_ONLY_HIGH,\n"
	    "                     BLOCK_MEDIUM_AND_ABOVE, BLOCK_LOW_AND_ABOVE or OFF\n"
	    "  --accept-partial   take an answer whose finishReason is not STOP (SAFETY,\n"
	    "                     RECITATION, MAX_TOKENS, ...) as a plain answer; otherwise it\n"
	    "                     is kept but marked partial (answer_details[].partial, exit 4)\n",
	    out);
}

static json_t *
number(const char *flag, const char *arg, bool whole)
{
	char *end;
	double d;
	long long n;

	errno = 0;
	if (whole) {
		n = strtoll(arg, &end, 10);
		if (*arg != '\0' && *end == '\0' && errno == 0)
			return json_integer((json_int_t)n);
	} else {
		d = strtod(arg, &end);
		if (*arg != '\0' && *end == '\0' && errno == 0 && isfinite(d))
			return json_real(d);
	}
	gb__usage_error("invalid --%s \"%s\" (not a %snumber)", flag, arg, whole ? "whole " : "");
}

/* Sets key to v (stolen) in obj, creating obj; the result checked as the API will. */
static void
set_checked(struct gb_gen_flags *g, json_t **obj, const char *key, json_t *v, const char *flag,
    const char *arg)
{
	char err[256];

	if (v == NULL || (*obj == NULL && (*obj = json_object()) == NULL) ||
	    json_object_set_new(*obj, key, v) != 0)
		gb__fatalx("out of memory");
	if (gb__gen_check(g->gen, g->safety, err, sizeof(err)) != 0)
		gb__usage_error("invalid --%s \"%s\" (%s)", flag, arg, err);
}

static void
add_safety(struct gb_gen_flags *g, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char err[256];
	json_t *s;

	if (eq == NULL || eq == arg || eq[1] == '\0')
		gb__usage_error("invalid --safety \"%s\" (use CATEGORY=THRESHOLD, e.g. "
		    "HARM_CATEGORY_HARASSMENT=BLOCK_ONLY_HIGH)", arg);
	s = json_pack("{s:s%, s:s}", "category", arg, (size_t)(eq - arg), "threshold", eq + 1);
	if (s == NULL || (g->safety == NULL && (g->safety = json_array()) == NULL) ||
	    json_array_append_new(g->safety, s) != 0)
		gb__fatalx("out of memory");
	if (gb__gen_check(NULL, g->safety, err, sizeof(err)) != 0)
		gb__usage_error("invalid --safety \"%s\" (%s)", arg, err);
}

void
gb__gen_flag(struct gb_gen_flags *g, size_t i, const char *arg)
{
	static const char *const keys[] = { [G_TEMPERATURE] = "temperature", [G_TOP_P] = "topP",
		[G_TOP_K] = "topK", [G_MAX_TOKENS] = "maxOutputTokens", [G_SEED] = "seed" };
	const char *flag = gb__gen_options[i].name;
	json_t *tc, *stop;

	switch (i) {
	case G_TEMPERATURE:
	case G_TOP_P:
		set_checked(g, &g->gen, keys[i], number(flag, arg, false), flag, arg);
		break;
	case G_TOP_K:
	case G_MAX_TOKENS:
	case G_SEED:
		set_checked(g, &g->gen, keys[i], number(flag, arg, true), flag, arg);
		break;
	case G_STOP:
		stop = g->gen != NULL ? json_object_get(g->gen, "stopSequences") : NULL;
		stop = stop != NULL ? json_incref(stop) : json_array();
		if (stop == NULL || json_array_append_new(stop, json_string(arg)) != 0)
			gb__fatalx("out of memory");
		set_checked(g, &g->gen, "stopSequences", stop, flag, arg);
		break;
	case G_THINKING_BUDGET:
	case G_INCLUDE_THOUGHTS:
		tc = g->gen != NULL ? json_object_get(g->gen, "thinkingConfig") : NULL;
		tc = tc != NULL ? json_incref(tc) : json_object();
		if (tc == NULL || json_object_set_new(tc, i == G_INCLUDE_THOUGHTS ? "includeThoughts" :
		    "thinkingBudget", i == G_INCLUDE_THOUGHTS ? json_true() :
		    number(flag, arg, true)) != 0)
			gb__fatalx("out of memory");
		set_checked(g, &g->gen, "thinkingConfig", tc, flag, arg != NULL ? arg : "");
		break;
	case G_SAFETY:
		add_safety(g, arg);
		break;
	default:
		g->accept_partial = true;
		break;
	}
}

void
gb__gen_flags_apply(struct gb_gen_flags *g, gb_process_opts *po)
{
	size_t f = JSON_COMPACT | JSON_REAL_PRECISION(15);

	if ((g->gen != NULL && (g->gen_text = json_dumps(g->gen, f)) == NULL) ||
	    (g->safety != NULL && (g->safety_text = json_dumps(g->safety, JSON_COMPACT)) == NULL))
		gb__fatalx("out of memory");
	po->generation_config = g->gen_text;
	po->safety_settings = g->safety_text;
	if (g->accept_partial)
		po->flags |= GB_PROCESS_ACCEPT_PARTIAL;
}

void
gb__gen_flags_fini(struct gb_gen_flags *g)
{
	json_decref(g->gen);
	json_decref(g->safety);
	free(g->gen_text);
	free(g->safety_text);
	memset(g, 0, sizeof(*g));
}
