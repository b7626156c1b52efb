/*
 * rate_limit.h - the requests-per-minute and tokens-per-minute budget of one model and tier
 * (not a public API): a sliding window over the requests sent, token estimates reconciled with
 * the usage the API reports, and a shared pause that a 429 imposes on every request.
 */
#ifndef GBATCH_PROCESSOR_RATE_LIMIT_H
#define GBATCH_PROCESSOR_RATE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

/* A model's default budget per minute. */
typedef struct gb_rate_limits {
	unsigned rpm; /* requests per minute */
	uint64_t tpm; /* input tokens per minute */
} gb_rate_limits;

/* Parses a tier name: free, tier1, tier2, tier3 ("tier_1", "tier-1", any case, accepted).
 * Returns 0..3, or -1 for anything else. */
int gb__rate_parse_tier(const char *text);
/* The seed's limits for model ("models/" prefix allowed; the longest known name that prefixes
 * it counts, so "gemini-2.0-flash-001" is gemini-2.0-flash) on tier 0..3. Unknown models get
 * 15 requests and 250k tokens. tier2 and tier3 have tier1's figures (the seed's table stops at
 * tier1). */
gb_rate_limits gb__rate_defaults(const char *model, int tier);

typedef struct gb_rate gb_rate;

/* A limiter of limits.rpm requests (at least 1) and limits.tpm tokens (0: unlimited) per
 * window_ns. NULL when out of memory. */
gb_rate *gb__rate_new(gb_rate_limits limits, uint64_t window_ns);
/* Frees r (NULL is fine). */
void gb__rate_free(gb_rate *r);
/* Asks to send a request of an estimated `tokens` at monotonic time now. Returns 1 and sets
 * *ticket when it may go (it is counted from now on); returns 0 and sets *retry_at to the
 * earliest time worth asking again when the window is full or a pause holds. A request of more
 * tokens than the whole budget goes alone, into an otherwise empty window. */
int gb__rate_acquire(gb_rate *r, uint64_t now, uint64_t tokens, uint64_t *ticket,
    uint64_t *retry_at);
/* Replaces the estimate of the request behind ticket by what it really cost (while it is
 * still in the window; later it no longer matters). */
void gb__rate_reconcile(gb_rate *r, uint64_t ticket, uint64_t tokens);
/* Holds every request until `until` (monotonic; a shorter pause than the current one is
 * ignored). */
void gb__rate_pause(gb_rate *r, uint64_t until);
/* Requests and tokens in the window at time now. */
unsigned gb__rate_requests(gb_rate *r, uint64_t now);
uint64_t gb__rate_tokens(gb_rate *r, uint64_t now);

#endif
