/*
 * sketch.c - the console summary's quantile sketch: frexp splits a value into its power of two
 * and a mantissa in [0.5, 1), whose 16 equal slices are the bins. Deterministic, no libm log.
 */
#include "sketch.h"

#include <math.h>
#include <string.h>

void
gb__sketch_init(gb_sketch *s)
{
	memset(s, 0, sizeof(*s));
}

/* The bin of v: 0 below the range, GB_SKETCH_BINS - 1 above it. */
static unsigned
bin_of(double v)
{
	int e;
	double f;
	unsigned sub;

	if (!(v >= ldexp(1.0, GB_SKETCH_MIN_EXP)))
		return 0; /* zero, negative, NaN, tiny */
	if (v >= ldexp(1.0, GB_SKETCH_MAX_EXP))
		return GB_SKETCH_BINS - 1;
	f = frexp(v, &e); /* v = f * 2^e, f in [0.5, 1): e in (MIN_EXP, MAX_EXP] */
	sub = (unsigned)((f - 0.5) * (2 * GB_SKETCH_SUB));
	if (sub >= GB_SKETCH_SUB)
		sub = GB_SKETCH_SUB - 1;
	return 1 + (unsigned)(e - 1 - GB_SKETCH_MIN_EXP) * GB_SKETCH_SUB + sub;
}

/* The midpoint of bin b (1 .. GB_SKETCH_BINS - 2). */
static double
mid_of(unsigned b)
{
	unsigned i = b - 1;
	int e = (int)(i / GB_SKETCH_SUB) + GB_SKETCH_MIN_EXP + 1;
	double f = 0.5 + ((double)(i % GB_SKETCH_SUB) + 0.5) / (2 * GB_SKETCH_SUB);

	return ldexp(f, e);
}

void
gb__sketch_add(gb_sketch *s, double v)
{
	unsigned b = bin_of(v);

	if (s->bin[b] == UINT32_MAX)
		return;
	if (s->n == 0 || v < s->min)
		s->min = v;
	if (s->n == 0 || v > s->max)
		s->max = v;
	s->bin[b]++;
	s->n++;
}

double
gb__sketch_percentile(const gb_sketch *s, unsigned pct)
{
	uint64_t rank, seen = 0;
	double v;
	unsigned b;

	if (s->n == 0)
		return 0;
	rank = (s->n * (pct > 100 ? 100 : pct) + 99) / 100;
	if (rank == 0)
		rank = 1;
	for (b = 0; b < GB_SKETCH_BINS - 1; b++) {
		seen += s->bin[b];
		if (seen >= rank)
			break;
	}
	if (b == 0)
		v = 0;
	else if (b == GB_SKETCH_BINS - 1)
		v = s->max;
	else
		v = mid_of(b);
	return v < s->min ? s->min : v > s->max ? s->max : v;
}
