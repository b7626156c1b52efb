/*
 * stub_processor.h - the processor options the unit tests use against the Gemini stand-in: its
 * key and base URL, a model it knows, two attempts, a short backoff. Header only, for the tests
 * that link libgbatch.
 */
#ifndef GBATCH_TESTS_STUB_PROCESSOR_H
#define GBATCH_TESTS_STUB_PROCESSOR_H

#include <gbatch/processor.h>

#include "stub_proc.h"

static inline void
stub_processor_opts(gb_processor_opts *o, const struct stub_proc *s, gb_tele *tele,
    double backoff_base_s)
{
	gb_processor_opts_init(o);
	o->api_key = STUB_KEY;
	o->api_base = s->base;
	o->model = "gemini-2.5-flash";
	o->tele = tele;
	o->max_attempts = 2;
	o->backoff_base_s = backoff_base_s;
	o->timeout_s = 5;
}

#endif
