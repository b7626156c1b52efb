/*
 * gen_config.c - the generation settings as the Gemini REST reference names them
 * (generationConfig, safetySettings): checked field by field before any request, so a bad
 * value is a usage error naming it rather than a 400 per question, merged a jobs line over
 * the command line, and the note that tells a user why an answer stopped short.
 */
#include "gen_config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const categories[] = { "HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH",
	"HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_DANGEROUS_CONTENT",
	"HARM_CATEGORY_CIVIC_INTEGRITY" };
static const char *const thresholds[] = { "BLOCK_NONE", "BLOCK_ONLY_HIGH",
	"BLOCK_MEDIUM_AND_ABOVE", "BLOCK_LOW_AND_ABOVE", "OFF", "HARM_BLOCK_THRESHOLD_UNSPECIFIED" };

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* v as short JSON text for a message. */
static void
shown(const json_t *v, char *buf, size_t len)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));

	snprintf(buf, len, "%.60s%s", s != NULL ? s : "?", s != NULL && strlen(s) > 60 ? "..." : "");
	free(s);
}

static int
bad(const char *field, const json_t *v, const char *why, char *err, size_t errlen)
{
	char val[80];

	shown(v, val, sizeof(val));
	snprintf(err, errlen, "%s %s: %s", field, val, why);
	return -1;
}

static int
in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

static int
number_in(const json_t *v, double lo, double hi)
{
	return json_is_number(v) && json_number_value(v) >= lo && json_number_value(v) <= hi;
}

static int
check_thinking(const json_t *tc, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(tc))
		return bad("thinkingConfig", tc, "use an object {thinkingBudget, includeThoughts}", err,
		    errlen);
	json_object_foreach((json_t *)(uintptr_t)tc, key, v) {
		if (strcmp(key, "thinkingBudget") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < -1 ||
			    json_integer_value(v) > 1000000)
				return bad("thinkingBudget", v, "use -1 dynamic, 0 off, or a number of tokens",
				    err, errlen);
		} else if (strcmp(key, "includeThoughts") == 0) {
			if (!json_is_boolean(v))
				return bad("includeThoughts", v, "use true or false", err, errlen);
		} else {
			snprintf(err, errlen, "unknown thinkingConfig field \"%.60s\" (use thinkingBudget, "
			    "includeThoughts)", key);
			return -1;
		}
	}
	return 0;
}

static int
check_stop(const json_t *v, char *err, size_t errlen)
{
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > GB__MAX_STOP_SEQUENCES)
		return bad("stopSequences", v, "use 1 to 5 strings", err, errlen);
	for (size_t i = 0; i < json_array_size(v); i++) {
		const json_t *s = json_array_get(v, i);
		if (!json_is_string(s) || json_string_length(s) == 0)
			return bad("stop sequence", s, "use a non-empty string", err, errlen);
	}
	return 0;
}

/* One field of a generationConfig. */
static int
check_field(const char *key, const json_t *v, char *err, size_t errlen)
{
	if (strcmp(key, "temperature") == 0)
		return number_in(v, 0, 2) ? 0 : bad("temperature", v, "use 0 to 2", err, errlen);
	if (strcmp(key, "topP") == 0)
		return number_in(v, 0, 1) ? 0 : bad("topP", v, "use 0 to 1", err, errlen);
	if (strcmp(key, "topK") == 0)
		return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <=
		    INT32_MAX ? 0 : bad("topK", v, "use a whole number, at least 1", err, errlen);
	if (strcmp(key, "maxOutputTokens") == 0)
		return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <=
		    INT32_MAX ? 0 : bad("maxOutputTokens", v, "use a whole number, at least 1", err, errlen);
	if (strcmp(key, "seed") == 0)
		return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
		    json_integer_value(v) <= INT32_MAX ? 0 : bad("seed", v, "use a 32-bit whole number",
		    err, errlen);
	if (strcmp(key, "stopSequences") == 0)
		return check_stop(v, err, errlen);
	if (strcmp(key, "thinkingConfig") == 0)
		return check_thinking(v, err, errlen);
	snprintf(err, errlen, "unknown generation_config field \"%.60s\" (use temperature, topP, "
	    "topK, maxOutputTokens, stopSequences, seed, thinkingConfig; a schema goes in "
	    "schema)", key);
	return -1;
}

static int
check_safety(const json_t *safety, char *err, size_t errlen)
{
	if (!json_is_array(safety))
		return bad("safety_settings", safety, "use an array of {category, threshold}", err, errlen);
	for (size_t i = 0; i < json_array_size(safety); i++) {
		const json_t *s = json_array_get(safety, i);
		const json_t *c = json_object_get(s, "category"), *t = json_object_get(s, "threshold");
		if (!json_is_object(s) || json_object_size(s) != 2 || c == NULL || t == NULL)
			return bad("safety setting", s, "use {\"category\": ..., \"threshold\": ...}", err,
			    errlen);
		if (!in_list(json_string_value(c), categories, N_OF(categories)))
			return bad("safety category", c, "use HARM_CATEGORY_HARASSMENT, _HATE_SPEECH, "
			    "_SEXUALLY_EXPLICIT, _DANGEROUS_CONTENT or _CIVIC_INTEGRITY", err, errlen);
		if (!in_list(json_string_value(t), thresholds, N_OF(thresholds)))
			return bad("safety threshold", t, "use BLOCK_NONE, BLOCK_ONLY_HIGH, "
			    "BLOCK_MEDIUM_AND_ABOVE, BLOCK_LOW_AND_ABOVE or OFF", err, errlen);
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_object_get(json_array_get(safety, j), "category"), c))
				return bad("safety category", c, "given twice", err, errlen);
	}
	return 0;
}

int
gb__gen_check(const json_t *gen, const json_t *safety, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (gen != NULL) {
		if (!json_is_object(gen))
			return bad("generation_config", gen, "use a JSON object", err, errlen);
		json_object_foreach((json_t *)(uintptr_t)gen, key, v)
			if (check_field(key, v, err, errlen) != 0)
				return -1;
	}
	return safety != NULL ? check_safety(safety, err, errlen) : 0;
}

static json_t *
load(const char *text, const char *what, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

	if (v == NULL)
		snprintf(err, errlen, "%s is not valid JSON (%s)", what, jerr.text);
	return v;
}

int
gb__gen_parse(const char *gen_text, const char *safety_text, json_t **gen, json_t **safety,
    char *err, size_t errlen)
{
	*gen = *safety = NULL;
	if ((gen_text != NULL && (*gen = load(gen_text, "generation_config", err, errlen)) == NULL) ||
	    (safety_text != NULL &&
	    (*safety = load(safety_text, "safety_settings", err, errlen)) == NULL) ||
	    gb__gen_check(*gen, *safety, err, errlen) != 0) {
		json_decref(*gen);
		json_decref(*safety);
		*gen = *safety = NULL;
		return -1;
	}
	return 0;
}

/* base's safety list with over's categories replaced or added. */
static int
merge_safety(json_t *base, const json_t *over)
{
	for (size_t i = 0; i < json_array_size(over); i++) {
		json_t *o = json_array_get(over, i);
		size_t j;
		for (j = 0; j < json_array_size(base); j++)
			if (json_equal(json_object_get(json_array_get(base, j), "category"),
			    json_object_get(o, "category")))
				break;
		if ((j < json_array_size(base) ? json_array_set(base, j, o) :
		    json_array_append(base, o)) != 0)
			return -1;
	}
	return 0;
}

char *
gb__gen_merge(const char *base, const char *over, int safety, int *oom)
{
	json_t *b = base != NULL ? json_loads(base, JSON_DECODE_ANY, NULL) : NULL;
	json_t *o = over != NULL ? json_loads(over, JSON_DECODE_ANY, NULL) : NULL;
	char *out = NULL;
	int rc = 0;

	*oom = 0;
	if (b == NULL || o == NULL) {
		json_t *only = b != NULL ? b : o;
		out = only != NULL ? json_dumps(only, JSON_COMPACT | JSON_ENCODE_ANY |
		    JSON_REAL_PRECISION(15)) : NULL;
	} else if (safety) {
		rc = merge_safety(b, o);
	} else {
		json_t *tb = json_object_get(b, "thinkingConfig"), *to = json_object_get(o,
		    "thinkingConfig");
		json_t *tc = tb != NULL && to != NULL ? json_deep_copy(tb) : NULL;
		rc = json_object_update(b, o);
		if (rc == 0 && tc != NULL)
			rc = json_object_update(tc, to) != 0 ||
			    json_object_set(b, "thinkingConfig", tc) != 0 ? -1 : 0;
		json_decref(tc);
	}
	if (b != NULL && o != NULL && rc == 0)
		out = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(15));
	*oom = (base != NULL || over != NULL) && out == NULL;
	json_decref(b);
	json_decref(o);
	return out;
}

const char *
gb__gen_finish_note(const char *lead, const char *finish, const gb_gemini_usage *u,
    const json_t *gen, char *buf, size_t len)
{
	const json_t *budget = json_object_get(json_object_get(gen, "thinkingConfig"),
	    "thinkingBudget");
	const json_t *max = json_object_get(gen, "maxOutputTokens");
	char clause[200] = "", head[256];

	snprintf(head, sizeof(head), "%s", lead); /* lead may be buf */
	if (strcmp(finish, "MAX_TOKENS") == 0 && u->thoughts > 0 && json_is_integer(budget) &&
	    json_integer_value(budget) > 0 && u->thoughts >= json_integer_value(budget))
		snprintf(clause, sizeof(clause), "; thinking used %" PRId64 " tokens, the whole "
		    "thinking budget of %" PRId64 " (lower --thinking-budget or raise "
		    "--max-output-tokens)", u->thoughts, (int64_t)json_integer_value(budget));
	else if (strcmp(finish, "MAX_TOKENS") == 0 && u->thoughts > 0 && json_is_integer(max))
		snprintf(clause, sizeof(clause), "; thinking used %" PRId64 " of the %" PRId64
		    " output tokens (set --thinking-budget, or raise --max-output-tokens)",
		    u->thoughts, (int64_t)json_integer_value(max));
	snprintf(buf, len, "%s%s", head, clause);
	return buf;
}
