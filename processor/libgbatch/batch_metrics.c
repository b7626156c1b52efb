/*
 * batch_metrics.c - what one Gemini call is counted as: the OpenTelemetry GenAI client metrics
 * and the seed's client metrics. The driver (batch_run.c) decides where they are recorded.
 */
#include <stdio.h>

#include "batch_internal.h"
#include "telemetry_internal.h"

/* error.type of a failed call: the HTTP status the API answered, else what went wrong. */
static const char *
error_type(const gb_gemini_result *res, char *buf, size_t len)
{
	if (res->http_status != 0) {
		snprintf(buf, len, "%ld", res->http_status);
		return buf;
	}
	return res->status == GB__GEMINI_E_TIMEOUT ? "timeout" :
	    res->status == GB__GEMINI_E_TRANSPORT ? "transport_error" :
	    res->status == GB__GEMINI_E_RESPONSE ? "invalid_response" :
	    res->status == GB__GEMINI_E_REQUEST ? "invalid_request" : "_OTHER";
}

/* The OpenTelemetry GenAI client metrics of one call: its duration (retries included) and,
 * when it answered, its tokens by type: input (promptTokenCount), output (candidates and
 * thoughts: what is billed as output), and the parts the API reports apart, cached (of the
 * input) and thoughts (of the output); mode (NULL: none) tags them, "batch" for what a Batch
 * API batch answered. */
void
gb__genai_metrics(gb_tele *t, const char *model, const char *mode, const gb_gemini_result *res)
{
	static const char *const types[] = { "input", "output", "cached", "thoughts" };
	const int64_t tokens[] = { res->usage.prompt, res->usage.candidates + res->usage.thoughts,
		res->usage.cached, res->usage.thoughts };
	char ebuf[24];
	gb_kv kv[5] = { { "gen_ai.operation.name", "generate_content" },
		{ "gen_ai.provider.name", "gcp.gemini" },
		{ "gen_ai.request.model", model }, { "mode", mode }, { NULL, NULL } };
	size_t n = mode != NULL ? 4 : 3;

	/* A batch's response took no time of its own: the batch's time is batch_job.*'s. */
	if (res->status != GB__GEMINI_OK) {
		kv[n] = (gb_kv){ "error.type", error_type(res, ebuf, sizeof(ebuf)) };
		if (mode == NULL)
			gb__tele_timing(t, "gen_ai.client.operation.duration", res->seconds, kv, n + 1);
		return;
	}
	if (mode == NULL)
		gb__tele_timing(t, "gen_ai.client.operation.duration", res->seconds, kv, n);
	for (size_t i = 0; i < 4; i++) {
		if (i >= 2 && tokens[i] == 0)
			continue;
		kv[n] = (gb_kv){ "gen_ai.token.type", types[i] };
		gb__tele_histogram(t, "gen_ai.client.token.usage", (double)tokens[i], kv, n + 1);
	}
}

/* The seed's client metrics of one call, which its client records inside its scopes: whether
 * the call ended well (api_success) or not (api_failures: after its retries, or at once on an
 * error not worth retrying), then from the reply the seed's total_tokens (prompt + candidates,
 * sent as seed_total_tokens: gbatch's total_tokens is the API's totalTokenCount, thinking
 * included) and billable_tokens (what is billed at the full rate: the prompt less its cached
 * part, the candidates and the thoughts). */
void
gb__client_call_metrics(gb_tele *t, const gb_gemini_result *res)
{
	gb_tele_count(t, res->status == GB__GEMINI_OK ? "api_success" : "api_failures", 1, NULL, 0);
}

void
gb__client_response_metrics(gb_tele *t, const gb_gemini_result *res)
{
	const gb_gemini_usage *u = &res->usage;

	gb_tele_count(t, "seed_total_tokens", (double)(u->prompt + u->candidates), NULL, 0);
	gb_tele_count(t, "billable_tokens",
	    (double)(u->prompt - u->cached + u->candidates + u->thoughts), NULL, 0);
}

