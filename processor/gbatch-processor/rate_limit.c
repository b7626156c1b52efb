/*
 * rate_limit.c - a sliding-window log of the requests sent in the last window: a ring of
 * (time, tokens) in send order, so expiry pops from the head and a ticket finds its entry by
 * arithmetic. Pure bookkeeping on times the caller passes: no clock, no locks.
 */
#include "rate_limit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct entry {
	uint64_t t;
	uint64_t tokens;
};

struct gb_rate {
	gb_rate_limits lim;
	uint64_t window;
	struct entry *ring; /* lim.rpm entries */
	size_t head, n;
	uint64_t first;  /* ticket of ring[head] */
	uint64_t tokens; /* sum over the window */
	uint64_t paused_until;
};

int
gb__rate_parse_tier(const char *text)
{
	char t[16];
	size_t j = 0;

	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '_' || *p == '-')
			continue;
		if (j + 1 == sizeof(t))
			return -1;
		t[j++] = (char)tolower((unsigned char)*p);
	}
	t[j] = '\0';
	if (strcmp(t, "free") == 0)
		return 0;
	if (strncmp(t, "tier", 4) == 0 && t[4] >= '1' && t[4] <= '3' && t[5] == '\0')
		return t[4] - '0';
	return -1;
}

gb_rate_limits
gb__rate_defaults(const char *model, int tier)
{
	static const struct {
		const char *model;
		gb_rate_limits free, tier1;
	} table[] = {
		{ "gemini-2.5-flash", { 10, 250000 }, { 1000, 1000000 } },
		{ "gemini-2.0-flash", { 15, 1000000 }, { 2000, 4000000 } },
		{ "gemini-2.0-flash-lite", { 30, 1000000 }, { 4000, 4000000 } },
		{ "gemini-1.5-flash", { 15, 250000 }, { 2000, 4000000 } },
	};
	gb_rate_limits unknown = { 15, 250000 };
	size_t best = 0, best_len = 0;

	if (strncmp(model, "models/", 7) == 0)
		model += 7;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		size_t l = strlen(table[i].model);
		if (strncmp(model, table[i].model, l) == 0 && l > best_len &&
		    (model[l] == '\0' || model[l] == '-')) {
			best = i;
			best_len = l;
		}
	}
	if (best_len == 0)
		return unknown;
	return tier <= 0 ? table[best].free : table[best].tier1;
}

gb_rate *
gb__rate_new(gb_rate_limits limits, uint64_t window_ns)
{
	gb_rate *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	if (limits.rpm == 0)
		limits.rpm = 1;
	r->lim = limits;
	r->window = window_ns;
	if ((r->ring = calloc(limits.rpm, sizeof(*r->ring))) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
gb__rate_free(gb_rate *r)
{
	if (r == NULL)
		return;
	free(r->ring);
	free(r);
}

static void
expire(gb_rate *r, uint64_t now)
{
	while (r->n > 0 && r->ring[r->head].t + r->window <= now) {
		r->tokens -= r->ring[r->head].tokens;
		r->head = (r->head + 1) % r->lim.rpm;
		r->n--;
		r->first++;
	}
}

int
gb__rate_acquire(gb_rate *r, uint64_t now, uint64_t tokens, uint64_t *ticket, uint64_t *retry_at)
{
	expire(r, now);
	if (now < r->paused_until) {
		*retry_at = r->paused_until;
		return 0;
	}
	if (r->n == r->lim.rpm) {
		*retry_at = r->ring[r->head].t + r->window;
		return 0;
	}
	if (r->lim.tpm > 0 && r->n > 0 && r->tokens + tokens > r->lim.tpm) {
		/* Wait for the oldest requests whose expiry frees enough tokens (all of them when
		 * this one alone is over budget). */
		uint64_t left = r->tokens;
		size_t i;
		for (i = 0; i < r->n; i++) {
			left -= r->ring[(r->head + i) % r->lim.rpm].tokens;
			if (left + tokens <= r->lim.tpm)
				break;
		}
		if (i == r->n)
			i = r->n - 1;
		*retry_at = r->ring[(r->head + i) % r->lim.rpm].t + r->window;
		return 0;
	}
	r->ring[(r->head + r->n) % r->lim.rpm] = (struct entry){ now, tokens };
	*ticket = r->first + r->n;
	r->n++;
	r->tokens += tokens;
	return 1;
}

void
gb__rate_reconcile(gb_rate *r, uint64_t ticket, uint64_t tokens)
{
	struct entry *e;

	if (ticket < r->first || ticket >= r->first + r->n)
		return;
	e = &r->ring[(r->head + (ticket - r->first)) % r->lim.rpm];
	r->tokens = r->tokens - e->tokens + tokens;
	e->tokens = tokens;
}

void
gb__rate_pause(gb_rate *r, uint64_t until)
{
	if (until > r->paused_until)
		r->paused_until = until;
}

unsigned
gb__rate_requests(gb_rate *r, uint64_t now)
{
	expire(r, now);
	return (unsigned)r->n;
}

uint64_t
gb__rate_tokens(gb_rate *r, uint64_t now)
{
	expire(r, now);
	return r->tokens;
}
