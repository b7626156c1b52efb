/*
 * gemini_client.h - the Gemini REST client inside libgbatch (internal, not a public API):
 * one generateContent call with retries, on a reused libcurl handle (keep-alive). Builds the
 * request JSON, parses the untrusted response, and turns Gemini's error shape into a result.
 */
#ifndef GBATCH_PROCESSOR_GEMINI_CLIENT_H
#define GBATCH_PROCESSOR_GEMINI_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#define GB__GEMINI_DEFAULT_BASE "https://generativelanguage.googleapis.com"

typedef struct gb_gemini gb_gemini;

/* Client settings; a zero field takes the default given beside it. */
typedef struct gb_gemini_opts {
	const char *api_base;        /* NULL: GB__GEMINI_DEFAULT_BASE */
	const char *api_key;         /* required; copied, sent only as x-goog-api-key, never logged */
	const char *model;           /* default model, e.g. "gemini-2.0-flash"; required */
	uint64_t connect_timeout_ns; /* 10 s */
	uint64_t timeout_ns;         /* whole request, per attempt: 120 s */
	unsigned max_attempts;       /* HTTP requests per call, retries included: 5 */
	uint64_t backoff_base_ns;    /* first backoff without a retryDelay: 1 s, doubling */
	uint64_t backoff_max_ns;     /* cap on one backoff: 60 s */
	uint64_t max_retry_delay_ns; /* a server retryDelay longer than this ends the call: 10 min */
} gb_gemini_opts;

/* One part of the user turn: text when mime_type is NULL, else inline data sent base64, or
 * with file_uri set a file of the Files API (fileData; data and len unused). */
typedef struct gb_gemini_part {
	const char *mime_type;
	const char *data;
	size_t len;
	const char *file_uri;
} gb_gemini_part;

typedef struct gb_gemini_request {
	const char *model; /* NULL: the client's model */
	const gb_gemini_part *parts;
	size_t n_parts;
	const char *system;         /* systemInstruction text, or NULL */
	int json;                   /* ask for responseMimeType application/json */
	const json_t *schema;       /* generationConfig.responseSchema (implies json), or NULL */
	const char *cached_content; /* "cachedContents/...", or NULL */
	const json_t *generation;   /* generationConfig fields (checked), merged with the above */
	const json_t *safety;       /* safetySettings (checked), or NULL */
} gb_gemini_request;

typedef struct gb_gemini_usage {
	int64_t prompt;     /* promptTokenCount (cached tokens included) */
	int64_t candidates; /* candidatesTokenCount */
	int64_t cached;     /* cachedContentTokenCount */
	int64_t thoughts;   /* thoughtsTokenCount */
	int64_t total;      /* totalTokenCount */
} gb_gemini_usage;

/* Status of a call; negative is an error. */
enum gb__gemini_status {
	GB__GEMINI_OK = 0,
	GB__GEMINI_E_API = -1,       /* the API answered with an error (http_status, api_status) */
	GB__GEMINI_E_QUOTA_DAY = -2, /* a per-day quota is exhausted: retrying today is pointless */
	GB__GEMINI_E_TIMEOUT = -3,   /* no complete answer within the timeout */
	GB__GEMINI_E_TRANSPORT = -4, /* could not connect, send or receive */
	GB__GEMINI_E_RESPONSE = -5,  /* a 2xx answer that is not a generateContent response */
	GB__GEMINI_E_REQUEST = -6,   /* the request could not be built (bad model name, not UTF-8) */
	GB__GEMINI_E_NOMEM = -7,
};

/* The outcome of one call (all attempts). Zero-initialise, pass to gb__gemini_generate, then
 * release with gb__gemini_result_fini. */
typedef struct gb_gemini_result {
	int status;               /* enum gb__gemini_status */
	long http_status;         /* of the last attempt; 0 when no HTTP answer */
	char api_status[40];      /* error.status of the last error, e.g. "RESOURCE_EXHAUSTED" */
	char reason[48];          /* its google.rpc.ErrorInfo reason, e.g. "API_KEY_INVALID"; "" */
	char message[512];        /* what went wrong, for a user; "" on success */
	char *text;               /* the first candidate's parts' text joined; NULL when there is none */
	char finish_reason[32];   /* the first candidate's finishReason; "" without one */
	char block_reason[40];    /* promptFeedback.blockReason; "" when the prompt was not blocked */
	gb_gemini_usage usage;   /* of the successful attempt */
	unsigned attempts;        /* HTTP requests made */
	unsigned retryable_errors;     /* failed attempts of a kind worth retrying */
	unsigned non_retryable_errors; /* failed attempts that ended the call at once */
	double seconds;                /* wall time of the call, backoff included */
	double backoff_seconds;        /* time spent waiting between attempts */
	double retry_delay_seconds;    /* the last retryDelay the server asked for; 0 without one */
} gb_gemini_result;

/* Creates a client. NULL on bad options or out of memory, with err (always terminated) saying
 * which. The client is not thread-safe: one per thread. */
gb_gemini *gb__gemini_new(const gb_gemini_opts *o, char *err, size_t errlen);
/* Closes the connection, wipes the key and frees c (NULL is fine). */
void gb__gemini_free(gb_gemini *c);

/* Every text of a result (message, api_status, reasons, text) has the client's key (of 8
 * bytes or more) masked with '*', and the messages anything shaped like a Google API key
 * ("AIza" and 35 of [0-9A-Za-z_-]), whatever the server sent. */
/* Runs generateContent with retries: 429 (but not a per-day quota), 408, 500, 502, 503, 504,
 * timeouts and connection failures are retried with exponential backoff and jitter, waiting at
 * least the server's RetryInfo.retryDelay when it gives one; anything else ends the call.
 * Fills res and returns res->status. */
int gb__gemini_generate(gb_gemini *c, const gb_gemini_request *rq, gb_gemini_result *res);
/* Frees what res owns and zeroes it. */
void gb__gemini_result_fini(gb_gemini_result *res);
/* 1 when the error in res will repeat for every later call (per-day quota, a key that is
 * missing or refused: 401, 403, or any answer whose ErrorInfo reason is about the key or the
 * project, such as 400 API_KEY_INVALID; an unknown model): the caller should stop rather than
 * fall back. */
int gb__gemini_is_fatal(const gb_gemini_result *res);
/* New connections the client opened so far (1 while keep-alive holds). */
unsigned gb__gemini_connections(const gb_gemini *c);
/* The model c asks (borrowed), as given: "gemini-2.0-flash". */
const char *gb__gemini_model(const gb_gemini *c);

/* Another REST method of the API on the client's handle, with the same retries: POST body
 * to {base}/v1beta/{path} (e.g. "models/M:countTokens", "cachedContents"), or DELETE it when
 * body is NULL. On success *out is the answer's JSON object (new reference); on failure *out is
 * NULL. Fills res (text holds the raw answer) and returns res->status. */
int gb__gemini_rest(gb_gemini *c, const char *path, const json_t *body, json_t **out,
    gb_gemini_result *res);

/* generateContent driven by the caller's libcurl multi handle, one attempt at a time, so many
 * calls share one thread. The caller adds gb__gemini_xfer_easy's handle to its multi handle,
 * and when libcurl reports it done, removes it and calls gb__gemini_xfer_done; on 1 it waits
 * *delay_ns (or longer) and starts another attempt the same way. */
typedef struct gb_gemini_xfer gb_gemini_xfer;
/* Builds the request (copied) of one call on client c (which must outlive it). NULL with res
 * filled when it cannot be built; res is reset either way. */
gb_gemini_xfer *gb__gemini_xfer_new(gb_gemini *c, const gb_gemini_request *rq,
    gb_gemini_result *res);
/* The easy handle (owned by x) set up for the next attempt. */
CURL *gb__gemini_xfer_easy(gb_gemini_xfer *x);
/* The easy handle of x as it is, to remove it from the multi handle. */
CURL *gb__gemini_xfer_handle(const gb_gemini_xfer *x);
/* Reads the finished attempt (libcurl's result rc) into res, as gb__gemini_generate would.
 * Returns 1 when another attempt should follow after *delay_ns, 0 when res is final. */
int gb__gemini_xfer_done(gb_gemini_xfer *x, CURLcode rc, gb_gemini_result *res,
    uint64_t *delay_ns);
/* Frees x (NULL is fine); its handle must not be in a multi handle. */
void gb__gemini_xfer_free(gb_gemini_xfer *x);

/* The pieces, for tests and for the multi-handle driver. */

/* The JSON body of rq (new reference), or NULL when a text part is not UTF-8 or out of memory. */
json_t *gb__gemini_request_json(const gb_gemini_request *rq);
/* The same body as the text sent: byte for byte json_dumps(gb__gemini_request_json(rq),
 * JSON_COMPACT | JSON_REAL_PRECISION(15)), written without building the tree (the caller
 * frees it; *len, when len is not NULL, gets its length). NULL where that gives NULL. */
char *gb__gemini_request_text(const gb_gemini_request *rq, size_t *len);
/* Parses a 2xx body into res (text, finish_reason, block_reason, usage). Returns GB__GEMINI_OK
 * or GB__GEMINI_E_RESPONSE with res->message set. */
int gb__gemini_parse_response(const char *body, size_t len, gb_gemini_result *res);
/* The same, read by jansson alone (gb__gemini_parse_response reads the common reply in place
 * and leaves the rest to this): what the in-place reading is checked against. */
int gb__gemini_parse_response_jansson(const char *body, size_t len, gb_gemini_result *res);
/* The advice for an ErrorInfo reason that every later call would meet (API_KEY_INVALID,
 * API_KEY_EXPIRED, SERVICE_DISABLED, CONSUMER_SUSPENDED, BILLING_DISABLED, ...): what to fix,
 * as a static string; NULL for any other reason. */
const char *gb__gemini_fatal_reason(const char *reason);
/* Parses an error answer (any body) of HTTP status http into res->api_status, res->reason
 * and res->message (which ends with the advice of a fatal reason);
 * *retry_delay_ns gets RetryInfo.retryDelay (0 without one), *per_day 1 when a QuotaFailure
 * violation is a per-day quota. */
void gb__gemini_parse_error(long http, const char *body, size_t len, gb_gemini_result *res,
    uint64_t *retry_delay_ns, int *per_day);
/* One exchange of another shape on the client's handle, for the Files API: POST body (JSON
 * text) to url, or POST read_len bytes from read_fn (a long upload: no overall timeout, only a
 * stall of the client's timeout ends it), or GET (get set) or DELETE url. headers (NULL-ended,
 * or NULL) go after the key header; header_fn sees every response header line. */
typedef struct gb_gemini_call {
	const char *url;
	const char *const *headers;
	const char *body;
	curl_read_callback read_fn;
	curl_seek_callback seek_fn; /* rewinds read_fn's body (a request libcurl sends again) */
	void *read_arg;
	uint64_t read_len;
	int get;
	curl_write_callback header_fn;
	void *header_arg;
} gb_gemini_call;
/* Makes one attempt of k with the client's key, scrubbing and classification: res gets the
 * outcome (res->text the raw answer on success; res->attempts counts up). Returns 1 when the
 * retry policy says to try again after *delay_ns, 0 when res is final. */
int gb__gemini_call_once(gb_gemini *c, const gb_gemini_call *k, gb_gemini_result *res,
    uint64_t *delay_ns);
/* Masks the client's key and anything shaped like a Google API key in the len bytes of s. */
void gb__gemini_scrub(const gb_gemini *c, char *s, size_t len);
/* The API base, without a trailing '/' (borrowed). */
const char *gb__gemini_base(const gb_gemini *c);

/* Parses a google.protobuf.Duration text ("40s", "45.837906927s", "0.5s"). 0 or -1. */
int gb__gemini_parse_proto_duration(const char *text, uint64_t *ns);

#endif
