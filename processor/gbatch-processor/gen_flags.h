/*
 * gen_flags.h - gbatch-processor's generation settings flags (--temperature ... --safety,
 * --accept-partial): each value checked as it is read, gathered into the generationConfig and
 * safetySettings texts of the gb_process_opts every job starts from.
 */
#ifndef GBATCH_PROCESSOR_GEN_FLAGS_H
#define GBATCH_PROCESSOR_GEN_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <getopt.h>
#include <jansson.h>

#include <gbatch/processor.h>

struct gb_gen_flags {
	json_t *gen;    /* the generationConfig fields given, or NULL */
	json_t *safety; /* the safetySettings given, or NULL */
	bool accept_partial;
	char *gen_text, *safety_text;
};

#define GB__N_GEN_OPTIONS 10

/* The flags' names and arguments, for getopt_long. */
extern const struct option gb__gen_options[GB__N_GEN_OPTIONS];

/* Takes flag i of gb__gen_options with its argument; a bad value exits 2 naming it. */
void gb__gen_flag(struct gb_gen_flags *g, size_t i, const char *arg);
/* Puts what the flags gave into po (the texts belong to g until gb__gen_flags_fini). */
void gb__gen_flags_apply(struct gb_gen_flags *g, gb_process_opts *po);
void gb__gen_flags_fini(struct gb_gen_flags *g);
/* The flags' lines of --help. */
void gb__gen_flags_usage(FILE *out);

#endif
