/*
 * sketch.h - a fixed-size quantile sketch for the console summary: a log-linear histogram of
 * 16 bins per power of two, so any quantile it returns is within 1/32 (3.125%) of the true one.
 */
#ifndef GBATCH_COLLECTOR_SKETCH_H
#define GBATCH_COLLECTOR_SKETCH_H

#include <stdint.h>

/* Values v in [2^GB_SKETCH_MIN_EXP, 2^GB_SKETCH_MAX_EXP) (about 1 us to 24 days, in seconds)
 * fall in GB_SKETCH_SUB bins per power of two; the bin's midpoint is within
 * GB_SKETCH_REL_ERROR of every value in it. Below that range (zero, negative, NaN) one bin,
 * above it (infinity) another. */
#define GB_SKETCH_SUB 16
#define GB_SKETCH_MIN_EXP (-20)
#define GB_SKETCH_MAX_EXP 21
#define GB_SKETCH_REL_ERROR (1.0 / (2 * GB_SKETCH_SUB))
#define GB_SKETCH_BINS ((GB_SKETCH_MAX_EXP - GB_SKETCH_MIN_EXP) * GB_SKETCH_SUB + 2)

typedef struct gb_sketch {
	uint64_t n;          /* values added (a bin stops counting at UINT32_MAX; n with it) */
	double min, max;     /* exact, over every value added */
	uint32_t bin[GB_SKETCH_BINS];
} gb_sketch;

/* An empty sketch. */
void gb__sketch_init(gb_sketch *s);

/* Adds v. No allocation. */
void gb__sketch_add(gb_sketch *s, double v);

/* The nearest-rank pct-th percentile (0..100) of the values added: the midpoint of the bin
 * holding the value of rank ceil(n * pct / 100), kept within [min, max]. For a true value in
 * the range above the result is within GB_SKETCH_REL_ERROR of it (relative); for one in
 * [0, 2^GB_SKETCH_MIN_EXP), within 2^GB_SKETCH_MIN_EXP of it (absolute); above the range it is
 * the largest value added. 0 for an empty sketch. */
double gb__sketch_percentile(const gb_sketch *s, unsigned pct);

#endif
