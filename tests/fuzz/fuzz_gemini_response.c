/*
 * fuzz_gemini_response.c - libFuzzer target for the Gemini client's parsers of what the API
 * (or anything posing as it) answers: a 2xx body, an error body, a RetryInfo duration.
 * Whatever the bytes, the results stay bounded and NUL-terminated, and the answer text is
 * never longer than the body it came from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemini_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_result(const gb_gemini_result *res, size_t size)
{
	if (memchr(res->message, '\0', sizeof(res->message)) == NULL ||
	    memchr(res->finish_reason, '\0', sizeof(res->finish_reason)) == NULL ||
	    memchr(res->block_reason, '\0', sizeof(res->block_reason)) == NULL ||
	    memchr(res->api_status, '\0', sizeof(res->api_status)) == NULL)
		abort();
	if (res->text != NULL && strlen(res->text) > size)
		abort();
	if (res->usage.prompt < 0 || res->usage.total < 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size heap copies: ASan sees any read past the end */
	char *body = malloc(size ? size : 1), *text = malloc(size + 1);
	gb_gemini_result res;
	uint64_t delay, ns;
	int per_day;

	if (body == NULL || text == NULL)
		abort();
	memcpy(body, data, size);
	memcpy(text, data, size);
	text[size] = '\0';

	memset(&res, 0, sizeof(res));
	gb__gemini_parse_response(body, size, &res);
	check_result(&res, size);
	gb__gemini_result_fini(&res);

	memset(&res, 0, sizeof(res));
	gb__gemini_parse_error(429, body, size, &res, &delay, &per_day);
	check_result(&res, size);
	if (per_day != 0 && per_day != 1)
		abort();
	gb__gemini_result_fini(&res);

	if (gb__gemini_parse_proto_duration(text, &ns) == 0 && ns / 1000000000ull > 315576000000ull)
		abort();
	free(body);
	free(text);
	return 0;
}
