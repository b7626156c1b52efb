/*
 * batch_prompt.c - the words of the workflow: the batched and the single prompt, and taking
 * an answer apart again (code fences, the response schema's subset, finish and block reasons).
 * Everything here reads model output, which is untrusted: nothing is assumed about its shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>
#include <jansson.h>

#include "batch_internal.h"

/* ---- prompts ---- */

/* One line per question; line breaks inside a question would break the numbering. */
static void
append_question(char **buf, size_t *len, size_t *cap, const char *label, const char *q)
{
	size_t need = strlen(label) + strlen(q) + 2;
	char *nb;

	if (*buf == NULL)
		return;
	if (*len + need + 1 > *cap) {
		*cap = (*len + need + 1) * 2;
		if ((nb = realloc(*buf, *cap)) == NULL) {
			free(*buf);
			*buf = NULL;
			return;
		}
		*buf = nb;
	}
	*len += (size_t)sprintf(*buf + *len, "%s", label);
	for (; *q != '\0'; q++)
		(*buf)[(*len)++] = *q == '\n' || *q == '\r' ? ' ' : *q;
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = '\0';
}

char *
gb__batch_prompt(const gb_result *r, const size_t *idx, size_t n, bool has_schema)
{
	size_t len = 0, cap = 512;
	char *buf = malloc(cap), label[48];

	if (buf == NULL)
		return NULL;
	len = (size_t)snprintf(buf, cap,
	    "Answer each of the following %zu questions about the content above.\n"
	    "Reply with a single JSON array of exactly %zu %s, one per question, in the order the "
	    "questions are asked, and nothing else.\n\n",
	    n, n, has_schema ? "items, each following the response schema" : "strings");
	for (size_t k = 0; k < n; k++) {
		snprintf(label, sizeof(label), "Question %zu: ", k + 1);
		append_question(&buf, &len, &cap, label, r->questions[idx[k]]);
	}
	return buf;
}

char *
gb__single_prompt(const char *question)
{
	size_t len = 0, cap = 256;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	len = (size_t)snprintf(buf, cap, "Answer the following question about the content above.\n\n");
	append_question(&buf, &len, &cap, "Question: ", question);
	return buf;
}

/* ---- answers ---- */

char *
gb__strip_fences(const char *text)
{
	const char *s = text, *e = text + strlen(text);

	while (s < e && strchr(" \t\r\n", *s) != NULL)
		s++;
	while (e > s && strchr(" \t\r\n", e[-1]) != NULL)
		e--;
	if (e - s >= 6 && strncmp(s, "```", 3) == 0) {
		const char *nl = memchr(s, '\n', (size_t)(e - s));
		s = nl != NULL ? nl + 1 : s + 3;
		if (e - s >= 3 && strncmp(e - 3, "```", 3) == 0)
			e -= 3;
		while (e > s && strchr(" \t\r\n", e[-1]) != NULL)
			e--;
	}
	return strndup(s, (size_t)(e - s));
}

static bool
type_is(const char *type, const char *want)
{
	return type != NULL && strcasecmp(type, want) == 0;
}

/* Whether v follows schema (Gemini's OpenAPI subset: type, properties, required, items, enum,
 * nullable). Unknown keywords are not checked. */
static bool
schema_ok(const json_t *schema, const json_t *v, int depth)
{
	const char *type = json_string_value(json_object_get(schema, "type"));
	const json_t *en = json_object_get(schema, "enum"), *req;
	json_t *props;
	size_t i;

	if (depth > 32)
		return false;
	if (json_is_null(v))
		return json_is_true(json_object_get(schema, "nullable")) || type == NULL;
	if (json_is_array(en) && json_array_size(en) > 0) {
		bool found = false;
		for (i = 0; i < json_array_size(en) && !found; i++)
			found = json_equal(json_array_get(en, i), v);
		if (!found)
			return false;
	}
	if (type == NULL)
		return true;
	if (type_is(type, "string"))
		return json_is_string(v);
	if (type_is(type, "integer"))
		return json_is_integer(v);
	if (type_is(type, "number"))
		return json_is_number(v);
	if (type_is(type, "boolean"))
		return json_is_boolean(v);
	if (type_is(type, "array")) {
		const json_t *items = json_object_get(schema, "items");
		if (!json_is_array(v))
			return false;
		for (i = 0; i < json_array_size(v); i++)
			if (items != NULL && !schema_ok(items, json_array_get(v, i), depth + 1))
				return false;
		return true;
	}
	if (type_is(type, "object")) {
		const char *key;
		const json_t *sub;
		if (!json_is_object(v))
			return false;
		req = json_object_get(schema, "required");
		for (i = 0; i < json_array_size(req); i++) {
			const char *k = json_string_value(json_array_get(req, i));
			if (k != NULL && json_object_get(v, k) == NULL)
				return false;
		}
		props = json_object_get(schema, "properties");
		json_object_foreach(props, key, sub) {
			const json_t *pv = json_object_get(v, key);
			if (pv != NULL && !schema_ok(sub, pv, depth + 1))
				return false;
		}
		return true;
	}
	return true;
}

bool
gb__answer_take_value(struct gb_answer *a, const json_t *v, const json_t *schema, const char *source)
{
	char *text;

	if (schema != NULL) {
		if (!schema_ok(schema, v, 0))
			return false;
		text = json_is_string(v) ? strdup(json_string_value(v)) :
		    json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		a->structured = json_deep_copy(v);
	} else {
		if (!json_is_string(v))
			return false;
		text = strdup(json_string_value(v));
	}
	free(a->text);
	a->text = text;
	free(a->error);
	a->error = NULL;
	free(a->partial);
	a->partial = NULL;
	a->source = source;
	return text != NULL;
}

void
gb__answer_copy_reasons(struct gb_answer *a, const gb_gemini_result *res)
{
	strlcpy(a->finish, res->finish_reason, sizeof(a->finish));
	strlcpy(a->block, res->block_reason, sizeof(a->block));
}

const char *
gb__no_text_reason(const gb_gemini_result *res, char *buf, size_t len)
{
	if (res->block_reason[0] != '\0') {
		snprintf(buf, len, "the prompt was blocked (blockReason %s)", res->block_reason);
		return buf;
	}
	if (res->text == NULL || res->text[0] == '\0') {
		snprintf(buf, len, "the answer has no text (finishReason %s)",
		    res->finish_reason[0] != '\0' ? res->finish_reason : "missing");
		return buf;
	}
	return NULL;
}
