/*
 * jobs_cache.c - explicit context caching for --jobs --cache: content of enough tokens is
 * uploaded once to cachedContents and named by every call about it; a cache near the end of
 * its TTL is replaced by a fresh one; the run's caches are deleted at the end.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hash.h"
#include "jobs_internal.h"
#include "log.h"

static json_t *
content_json(const gb_content *c)
{
	gb_gemini_part part = { c->mime_type, c->data, c->len, c->file_uri };
	gb_gemini_request rq = { .parts = &part, .n_parts = 1 };
	json_t *req = gb__gemini_request_json(&rq), *contents;

	contents = json_incref(json_object_get(req, "contents"));
	json_decref(req);
	return contents;
}

/* Whether name is a cache name as the API gives them. */
static int
cache_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 14 && n <= 200 && strncmp(name, "cachedContents/", 15) == 0 &&
	    strspn(name + 15, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
	    n - 15;
}

struct cache *
gb__jobs_cache_for(struct runner *rn, struct slot *s)
{
	const char *model = rn->o->model, *sys = gb__processor_system(rn->p);
	uint64_t h = gb__hash_more(GB_HASH_SEED, model, strlen(model));
	gb_gemini_result res = { 0 };
	json_t *contents, *body, *answer = NULL;
	struct cache *c, *nc;
	char path[200];
	const json_t *v;

	h = gb__hash_more(h, s->content.mime_type != NULL ? s->content.mime_type : "text",
	    s->content.mime_type != NULL ? strlen(s->content.mime_type) : 4);
	h = gb__hash_more(h, sys != NULL ? sys : "", sys != NULL ? strlen(sys) : 0);
	h = gb__hash_more(h, s->content.data, s->content.len);
	if (s->content.file_uri != NULL)
		h = gb__hash_more(h, s->content.file_uri, strlen(s->content.file_uri));
	for (size_t i = 0; i < rn->n_caches; i++) {
		if (rn->caches[i].hash == h && !rn->caches[i].retired) {
			if (rn->caches[i].name == NULL)
				return NULL;
			/* A cache about to expire would fail the calls still to come: a fresh one
			 * replaces it (a tenth of the TTL early, at most a minute). */
			uint64_t margin = rn->o->cache_ttl_ns / 10 < 60 * GB_NS_PER_SEC ?
			    rn->o->cache_ttl_ns / 10 : 60 * GB_NS_PER_SEC;
			if (gb__clock_mono_ns() + margin >= rn->caches[i].expires) {
				rn->caches[i].retired = 1;
				break;
			}
			s->cached_hit = 1;
			rn->tot.cache_hits++;
			gb_tele_count(rn->tele, "cache_hits", 1, NULL, 0);
			return &rn->caches[i];
		}
	}
	if ((nc = realloc(rn->caches, (rn->n_caches + 1) * sizeof(*nc))) == NULL)
		return NULL;
	rn->caches = nc;
	c = &rn->caches[rn->n_caches++];
	memset(c, 0, sizeof(*c));
	c->hash = h;
	if ((contents = content_json(&s->content)) == NULL)
		return NULL;
	snprintf(path, sizeof(path), "models/%s:countTokens",
	    strncmp(model, "models/", 7) == 0 ? model + 7 : model);
	body = json_pack("{s:O}", "contents", contents);
	gb__gemini_rest(rn->client, path, body, &answer, &res);
	json_decref(body);
	v = json_object_get(answer, "totalTokens");
	if (res.status != GB__GEMINI_OK || !json_is_integer(v) || json_integer_value(v) < 0) {
		gb__log_warnx("countTokens failed (%s); job %s sends its content inline",
		    res.status != GB__GEMINI_OK ? res.message : "no totalTokens", s->job->key);
		goto out;
	}
	c->tokens = (int64_t)json_integer_value(v);
	if ((uint64_t)c->tokens < rn->o->cache_min_tokens)
		goto out;
	json_decref(answer);
	char ttl[32];
	snprintf(ttl, sizeof(ttl), "%" PRIu64 "s", (uint64_t)(rn->o->cache_ttl_ns / GB_NS_PER_SEC));
	body = json_pack("{s:s+, s:O, s:s}", "model", "models/",
	    strncmp(model, "models/", 7) == 0 ? model + 7 : model, "contents", contents, "ttl", ttl);
	if (body != NULL && sys != NULL)
		json_object_set_new(body, "systemInstruction", json_pack("{s:[{s:s}]}", "parts",
		    "text", sys));
	gb__gemini_rest(rn->client, "cachedContents", body, &answer, &res);
	json_decref(body);
	v = json_object_get(answer, "name");
	if (res.status != GB__GEMINI_OK || !json_is_string(v) || !cache_name_ok(json_string_value(v))) {
		gb__log_warnx("creating a context cache failed (%s); job %s sends its content inline",
		    res.status != GB__GEMINI_OK ? res.message : "no valid name", s->job->key);
		goto out;
	}
	c->name = strdup(json_string_value(v));
	c->expires = gb__clock_mono_ns() + rn->o->cache_ttl_ns;
	rn->tot.caches_created++;
	gb_tele_count(rn->tele, "caches_created", 1, NULL, 0);
out:
	json_decref(answer);
	json_decref(contents);
	gb__gemini_result_fini(&res);
	return c->name != NULL ? c : NULL;
}

void
gb__jobs_caches_delete(struct runner *rn)
{
	for (size_t i = 0; i < rn->n_caches; i++) {
		struct cache *c = &rn->caches[i];
		if (c->name != NULL && !rn->o->keep_cache && !rn->keep_caches) {
			gb_gemini_result res = { 0 };
			json_t *answer = NULL;
			if (gb__gemini_rest(rn->client, c->name, NULL, &answer, &res) != GB__GEMINI_OK)
				gb__log_warnx("cannot delete %s (%s); it expires with its TTL", c->name,
				    res.message);
			json_decref(answer);
			gb__gemini_result_fini(&res);
		} else if (c->name != NULL) {
			gb__log_info("kept %s (%s)", c->name, rn->keep_caches ? "the batch may use it" :
			    "--keep-cache");
		}
		free(c->name);
	}
	free(rn->caches);
}
