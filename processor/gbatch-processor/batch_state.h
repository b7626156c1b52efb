/*
 * batch_state.h - OUTPUT.batch.json, what --jobs --batch-api submitted: written (atomically,
 * synced) before the batch is created and again once the API named it, so that a run killed
 * at any point and started again with --resume polls the same batch and never submits its
 * jobs twice.
 */
#ifndef GBATCH_PROCESSOR_BATCH_STATE_H
#define GBATCH_PROCESSOR_BATCH_STATE_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#define GB__BATCH_STATE_VERSION 1

struct gb_batch_state {
	char name[128];         /* "batches/..."; "" while the batch is being created */
	char display_name[129]; /* what finds the batch when its creation's answer was lost */
	char model[128];
	char input_file[128];   /* "files/..." of a file-input batch, or "" (inline) */
	time_t submitted;       /* wall time just before the creation */
	json_t *jobs;           /* the keys of the jobs in the batch, in order (array) */
	json_t *files;          /* content files (names) the requests point at (array) */
	json_t *caches;         /* context caches (names) the requests point at (array) */
};

/* The state file's path for output: "OUTPUT.batch.json". 0, or -1 when it is too long. */
int gb__batch_state_path(const char *output, char *path, size_t len);
/* Reads path into st (initialised): 1 read, 0 there is none, -1 with why in err when it
 * cannot be read or is not a state file of this version (every field checked). */
int gb__batch_state_load(const char *path, struct gb_batch_state *st, char *err, size_t errlen);
/* Writes st to path through a synced temporary file and a rename, then syncs the directory.
 * 0, or -1 with why in err. */
int gb__batch_state_save(const char *path, const struct gb_batch_state *st, char *err,
    size_t errlen);
/* Removes path (and syncs its directory). 0, or -1 with why in err. */
int gb__batch_state_remove(const char *path, char *err, size_t errlen);
/* Drops what st holds and zeroes it. */
void gb__batch_state_fini(struct gb_batch_state *st);

#endif
