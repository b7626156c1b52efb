/*
 * processor.c - a gb_processor's life: the Gemini client it owns, the telemetry context it
 * reports to, the system instruction; and the accessors the jobs runner drives it through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_internal.h"
#include "batch_run.h"

#define NS(seconds) ((uint64_t)((seconds) * 1e9))

void
gb_processor_opts_init(gb_processor_opts *o)
{
	memset(o, 0, sizeof(*o));
}

gb_processor *
gb_processor_new(const gb_processor_opts *o, char *err, size_t errlen)
{
	gb_processor *p;
	gb_gemini_opts co = {
		.api_base = o->api_base != NULL ? o->api_base : GB_DEFAULT_API_BASE,
		.api_key = o->api_key,
		.model = o->model != NULL && *o->model != '\0' ? o->model : GB_DEFAULT_MODEL,
		.connect_timeout_ns = NS(o->connect_timeout_s),
		.timeout_ns = NS(o->timeout_s),
		.max_attempts = o->max_attempts,
		.backoff_base_ns = NS(o->backoff_base_s),
		.backoff_max_ns = NS(o->backoff_max_s),
		.max_retry_delay_ns = NS(o->max_retry_delay_s),
	};

	if (o->timeout_s < 0 || o->connect_timeout_s < 0 || o->backoff_base_s < 0 ||
	    o->backoff_max_s < 0 || o->max_retry_delay_s < 0) {
		snprintf(err, errlen, "timeouts and backoff must not be negative");
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((p->client = gb__gemini_new(&co, err, errlen)) == NULL) {
		free(p);
		return NULL;
	}
	gb_processor_set_telemetry(p, o->tele);
	if (o->system_instruction != NULL && (p->system = strdup(o->system_instruction)) == NULL) {
		gb_processor_free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return p;
}

void
gb_processor_set_telemetry(gb_processor *p, gb_tele *tele)
{
	p->tele = tele != NULL ? tele : gb_tele_new(NULL, 0, GB_TELE_DISABLE);
}

void
gb_processor_free(gb_processor *p)
{
	if (p == NULL)
		return;
	gb__gemini_free(p->client);
	free(p->system);
	free(p);
}

gb_gemini *
gb__processor_client(gb_processor *p)
{
	return p->client;
}

gb_tele *
gb__processor_tele(gb_processor *p)
{
	return p->tele;
}

const char *
gb__processor_system(const gb_processor *p)
{
	return p->system;
}
