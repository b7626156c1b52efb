/*
 * progress.c - the live progress line of --jobs: its text from the run's state, and the
 * sliding-window rate it shows. Nothing here reads a clock or writes a terminal, so the unit
 * tests check the exact text, and its width, for any state.
 */
#include "progress.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_TEXT 512

void
gb__progress_duration(char *buf, size_t len, double seconds)
{
	double s = seconds > 0 && isfinite(seconds) ? ceil(seconds) : seconds > 0 ? 1e9 : 0;

	if (s < 60)
		snprintf(buf, len, "%ds", (int)s);
	else if (s < 3600)
		snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
	else if (s < 100 * 3600)
		snprintf(buf, len, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
	else
		snprintf(buf, len, ">99h");
}

/* v in full, or (compact) in at most 6 characters: 9999, 12.3k, 999.9M, 18.4E. */
static void
put_count(char *buf, size_t len, uint64_t v, bool compact)
{
	static const char units[] = "kMGTPE";
	double d = (double)v;
	size_t u = 0;

	if (!compact || v < 10000) {
		snprintf(buf, len, "%" PRIu64, v);
		return;
	}
	d /= 1000;
	while (d >= 999.95 && u + 1 < sizeof(units) - 1) {
		d /= 1000;
		u++;
	}
	snprintf(buf, len, "%.1f%c", d, units[u]);
}

static void
fmt_eta(char *buf, size_t len, double s)
{
	if (!(s >= 0) || s > 359999)
		snprintf(buf, len, "--:--");
	else
		snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
}

/* What follows the counts: the rate and the ETA, or why nothing is sent. */
static void
put_tail(char *buf, size_t len, const struct gb_progress *p, bool compact)
{
	char a[32], b[32];

	if (p->state == GB_PROGRESS_RATE_WAIT || p->state == GB_PROGRESS_429_PAUSE) {
		gb__progress_duration(a, sizeof(a), p->wait);
		snprintf(buf, len, p->state == GB_PROGRESS_RATE_WAIT ? "waiting for rate limit %s" :
		    "paused by 429 for %s", a);
		return;
	}
	fmt_eta(b, sizeof(b), p->eta);
	if (!(p->rate >= 0) || !isfinite(p->rate))
		snprintf(a, sizeof(a), "--");
	else if (p->rate >= 1e15)
		snprintf(a, sizeof(a), ">1e15");
	else if (compact && p->rate >= 10000)
		put_count(a, sizeof(a), (uint64_t)p->rate, true);
	else
		snprintf(a, sizeof(a), "%.1f", p->rate);
	snprintf(buf, len, "%s req/s  ETA %s", a, b);
}

/* The whole line into buf (LINE_MAX_TEXT): counts in full or compact, the tail last or right
 * after the job count. */
static size_t
compose(char *buf, const struct gb_progress *p, bool compact, bool tail_first)
{
	char done[32], todo[32], answers[32], errors[32], tokens[32], tail[96];
	int n;

	put_count(done, sizeof(done), p->done, compact);
	put_count(todo, sizeof(todo), p->todo, compact);
	put_count(answers, sizeof(answers), p->answers, compact);
	put_count(errors, sizeof(errors), p->errors, compact);
	put_count(tokens, sizeof(tokens), p->tokens > 0 ? (uint64_t)p->tokens : 0, compact);
	put_tail(tail, sizeof(tail), p, compact);
	if (tail_first)
		n = snprintf(buf, LINE_MAX_TEXT, "jobs %s/%s  %s  answers %s  errors %s  tokens %s",
		    done, todo, tail, answers, errors, tokens);
	else
		n = snprintf(buf, LINE_MAX_TEXT, "jobs %s/%s  answers %s  errors %s  tokens %s  %s",
		    done, todo, answers, errors, tokens, tail);
	return n < 0 ? 0 : (size_t)n < LINE_MAX_TEXT ? (size_t)n : LINE_MAX_TEXT - 1;
}

size_t
gb__progress_render(char *buf, size_t len, const struct gb_progress *p, unsigned width)
{
	char text[LINE_MAX_TEXT];
	size_t n;

	if (len == 0)
		return 0;
	if (width >= len)
		width = (unsigned)(len - 1);
	n = compose(text, p, false, false);
	if (n > width)
		n = compose(text, p, true, false);
	if (n > width)
		n = compose(text, p, true, true);
	if (n > width) {
		/* Cut after the last field that fits whole, else after the last word, else at the
		 * width: never in the middle of a number. */
		size_t cut = width;
		while (cut > 1 && !(text[cut - 1] == ' ' && text[cut - 2] == ' ' && text[cut] != ' '))
			cut--;
		if (cut > 1) {
			n = cut - 2;
		} else {
			for (n = width; n > 0 && text[n] != ' '; n--)
				;
			if (n == 0)
				n = width;
		}
	}
	memcpy(buf, text, n);
	buf[n] = '\0';
	return n;
}

int
gb__progress_rate_note(char *buf, size_t len, size_t jobs, unsigned rpm, uint64_t window_ns,
    const char *model)
{
	double window = (double)window_ns / 1e9, least;
	char d[32], w[32];

	if (rpm == 0)
		rpm = 1;
	/* N requests fill ceil(N / rpm) windows; the last one starts after the others. */
	least = jobs == 0 ? 0 : (double)((jobs - 1) / rpm) * window;
	if (least < 60)
		return 0;
	gb__progress_duration(d, sizeof(d), least);
	gb__progress_duration(w, sizeof(w), window);
	snprintf(buf, len, "the rate limit for %s is %u requests per %s (--tier, default free, or "
	    "--rpm): %zu jobs take %s at least", model != NULL ? model : "the model", rpm,
	    window_ns == 60ull * 1000000000ull ? "minute" : w, jobs, d);
	return 1;
}

/* ---- the rate ---- */

void
gb__progress_rate_add(struct gb_progress_rate *r, uint64_t now, size_t requests, size_t jobs)
{
	size_t i = (r->head + r->n) % GB_PROGRESS_SAMPLES;

	if (r->n == GB_PROGRESS_SAMPLES) {
		i = r->head;
		r->head = (r->head + 1) % GB_PROGRESS_SAMPLES;
	} else {
		r->n++;
	}
	r->t[i] = now;
	r->requests[i] = requests;
	r->jobs[i] = jobs;
}

int
gb__progress_rate_get(const struct gb_progress_rate *r, double *requests_per_s,
    double *jobs_per_s)
{
	size_t last, first = 0;
	double span;

	if (r->n < 2)
		return -1;
	last = (r->head + r->n - 1) % GB_PROGRESS_SAMPLES;
	/* The oldest sample still in the window. */
	for (size_t k = 0; k < r->n - 1; k++) {
		first = (r->head + k) % GB_PROGRESS_SAMPLES;
		if (r->t[last] - r->t[first] <= GB_PROGRESS_WINDOW_NS)
			break;
	}
	span = (double)(r->t[last] - r->t[first]) / 1e9;
	if (first == last || span <= 0)
		return -1;
	if (span < 5 && !(span >= 1 && r->requests[last] - r->requests[first] >= 20))
		return -1;
	*requests_per_s = (double)(r->requests[last] - r->requests[first]) / span;
	*jobs_per_s = (double)(r->jobs[last] - r->jobs[first]) / span;
	return 0;
}
