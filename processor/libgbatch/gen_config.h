/*
 * gen_config.h - the generation settings of a request (internal, not a public API): a
 * generationConfig and a safetySettings list as the REST reference names them, checked before
 * anything is sent, merged (a jobs line over the command line), and the words that explain an
 * answer that did not finish with STOP.
 */
#ifndef GBATCH_LIBGBATCH_GEN_CONFIG_H
#define GBATCH_LIBGBATCH_GEN_CONFIG_H

#include <stddef.h>

#include <jansson.h>

#include "gemini_client.h"

#define GB__MAX_STOP_SEQUENCES 5

/* Parses and checks the JSON texts of a generationConfig object (temperature 0..2, topP 0..1,
 * topK >= 1, maxOutputTokens >= 1, stopSequences of 1 to 5 non-empty strings, seed an integer,
 * thinkingConfig {thinkingBudget -1 (dynamic), 0 (off) or more, includeThoughts a boolean};
 * nothing else) and of a safetySettings array ([{category, threshold}], each category once).
 * Either text may be NULL (then its *out is NULL). Returns 0 with *gen and *safety set (new
 * references), or -1 with both NULL and err naming the field and its value. */
int gb__gen_parse(const char *gen_text, const char *safety_text, json_t **gen, json_t **safety,
    char *err, size_t errlen);
/* The same checks on values already parsed; NULL is valid. 0, or -1 with err set. */
int gb__gen_check(const json_t *gen, const json_t *safety, char *err, size_t errlen);
/* over's settings on top of base's (JSON texts, either NULL): a generationConfig key by key
 * (thinkingConfig too), a safetySettings list category by category. Returns a new text the
 * caller frees, NULL when both are NULL; *oom is set when memory ran out. Both must have
 * passed gb__gen_parse. */
char *gb__gen_merge(const char *base, const char *over, int safety, int *oom);
/* lead (what is wrong with an answer that ended with finish), and for MAX_TOKENS after
 * thinking how much of the thinking budget or of maxOutputTokens of gen (the request's
 * generationConfig, or NULL) the thoughts took, when gen sets one. Writes into buf (which may
 * hold lead) and returns it. */
const char *gb__gen_finish_note(const char *lead, const char *finish, const gb_gemini_usage *u,
    const json_t *gen, char *buf, size_t len);

#endif
