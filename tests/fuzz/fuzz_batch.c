/*
 * fuzz_batch.c - libFuzzer target for what the Batch API (or anything posing as it) answers:
 * a batch (an Operation or a bare GenerateContentBatch), each of its inlined responses taken
 * as a call's result, and the lines of a responses file. Whatever the bytes, every string
 * stays bounded and NUL-terminated, a name is a batch's name, the counts are never below -1
 * and a state is one of the known ones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemini_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_batch(const gb_gemini_batch *b)
{
	if (memchr(b->name, '\0', sizeof(b->name)) == NULL || !gb__batch_name_ok(b->name) ||
	    memchr(b->display_name, '\0', sizeof(b->display_name)) == NULL ||
	    memchr(b->state_text, '\0', sizeof(b->state_text)) == NULL ||
	    memchr(b->responses_file, '\0', sizeof(b->responses_file)) == NULL ||
	    memchr(b->error, '\0', sizeof(b->error)) == NULL)
		abort();
	if (b->requests < -1 || b->succeeded < -1 || b->failed < -1 || b->pending < -1 ||
	    b->state < GB__BATCH_UNKNOWN || b->state > GB__BATCH_EXPIRED)
		abort();
	if (b->responses_file[0] != '\0' && strncmp(b->responses_file, "files/", 6) != 0)
		abort();
	if (b->inlined != NULL && !json_is_array(b->inlined))
		abort();
}

static void
take(const json_t *item)
{
	gb_gemini_result res = { 0 };

	gb__batch_response_result(json_object_get(item, "response"), json_object_get(item, "error"),
	    NULL, &res);
	if (memchr(res.message, '\0', sizeof(res.message)) == NULL ||
	    (res.status != 0 && res.message[0] == '\0'))
		abort();
	gb__gemini_result_fini(&res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL), *item;
	gb_gemini_batch b = { 0 };
	char err[256];
	size_t i;

	if (gb__batch_parse(v, &b, err, sizeof(err)) == 0) {
		check_batch(&b);
		json_array_foreach(b.inlined, i, item)
			take(item);
	} else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0' || b.inlined != NULL) {
		abort();
	}
	gb__batch_fini(&b);
	json_decref(v);
	/* the same bytes as a responses file's lines */
	for (const uint8_t *p = data, *end = data + size, *nl; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		json_t *line = json_loadb((const char *)p, (size_t)(nl - p), 0, NULL);
		if (json_is_object(line))
			take(line);
		json_decref(line);
	}
	return 0;
}
