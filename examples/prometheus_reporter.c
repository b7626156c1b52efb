/*
 * prometheus_reporter.c - the seed's Prometheus example in C: a reporter that maps gbatch's
 * telemetry onto Prometheus metrics and, when the batch job ends, pushes them to a Pushgateway
 * (the Prometheus way for batch jobs, which end before any scrape) with libcurl:
 *   timings of client.api_call_with_retry  -> gemini_api_duration_seconds (histogram)
 *   batch_success / batch_failures counts  -> gemini_batch_operations_total{status}
 *   total_tokens counts                    -> gemini_tokens_total
 * usage: prometheus_reporter [--pushgateway URL] [--job NAME] [--print]
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <gbatch/telemetry.h>

/* Prometheus's default histogram buckets, in seconds. */
static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct prom {
	pthread_mutex_t lock; /* reporters are called from any recording thread */
	unsigned long long bucket_counts[N_BUCKETS], duration_count;
	double duration_sum;
	double batch_success, batch_failures, tokens;
};

/* True when scope is name or ends in ".name": scopes carry their enclosing path. */
static int
scope_is(const char *scope, const char *name)
{
	size_t sl = strlen(scope), nl = strlen(name);

	return sl >= nl && strcmp(scope + sl - nl, name) == 0 &&
	    (sl == nl || scope[sl - nl - 1] == '.');
}

static int
prom_timing(void *self, const char *scope, double seconds, const gb_tele_meta *m)
{
	struct prom *p = self;

	(void)m;
	if (!scope_is(scope, "client.api_call_with_retry"))
		return 0;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < N_BUCKETS; i++)
		p->bucket_counts[i] += seconds <= buckets[i];
	p->duration_count++;
	p->duration_sum += seconds;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int
prom_metric(void *self, const char *scope, double value, const gb_tele_meta *m)
{
	struct prom *p = self;
	double *target = NULL;

	(void)m;
	if (scope_is(scope, "batch_success"))
		target = &p->batch_success;
	else if (scope_is(scope, "batch_failures"))
		target = &p->batch_failures;
	else if (scope_is(scope, "total_tokens"))
		target = &p->tokens;
	if (target == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	*target += value;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* The text exposition format (version 0.0.4). Returns a string the caller frees, or NULL. */
static char *
prom_exposition(struct prom *p)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return NULL;
	pthread_mutex_lock(&p->lock);
	fputs("# HELP gemini_api_duration_seconds Duration of Gemini API calls, retries included.\n"
	      "# TYPE gemini_api_duration_seconds histogram\n", f);
	for (size_t i = 0; i < N_BUCKETS; i++)
		fprintf(f, "gemini_api_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
		    p->bucket_counts[i]);
	fprintf(f, "gemini_api_duration_seconds_bucket{le=\"+Inf\"} %llu\n", p->duration_count);
	fprintf(f, "gemini_api_duration_seconds_sum %.9g\n", p->duration_sum);
	fprintf(f, "gemini_api_duration_seconds_count %llu\n", p->duration_count);
	fputs("# HELP gemini_batch_operations_total Batch operations by outcome.\n"
	      "# TYPE gemini_batch_operations_total counter\n", f);
	fprintf(f, "gemini_batch_operations_total{status=\"success\"} %.15g\n", p->batch_success);
	fprintf(f, "gemini_batch_operations_total{status=\"failure\"} %.15g\n", p->batch_failures);
	fputs("# HELP gemini_tokens_total Tokens used by Gemini calls.\n"
	      "# TYPE gemini_tokens_total counter\n", f);
	fprintf(f, "gemini_tokens_total %.15g\n", p->tokens);
	pthread_mutex_unlock(&p->lock);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* PUTs body to <gateway>/metrics/job/<job>, replacing the job's group. Returns 0 or -1. */
static int
push(const char *gateway, const char *job, const char *body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char url[1024], *esc;
	long status = 0;
	CURLcode rc;

	if (c == NULL || (esc = curl_easy_escape(c, job, 0)) == NULL) {
		fprintf(stderr, "prometheus_reporter: out of memory\n");
		curl_easy_cleanup(c);
		return -1;
	}
	snprintf(url, sizeof(url), "%s/metrics/job/%s", gateway, esc);
	curl_free(esc);
	hdr = curl_slist_append(hdr, "Content-Type: text/plain; version=0.0.4");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "prometheus_reporter: push to %s failed: %s\n", url, curl_easy_strerror(rc));
		return -1;
	}
	if (status / 100 != 2) {
		fprintf(stderr, "prometheus_reporter: push to %s: HTTP %ld\n", url, status);
		return -1;
	}
	return 0;
}

/* A small batch job: four API calls (one fails), token counts, a success and a failure. */
static void
run_job(gb_tele *t)
{
	GB_SCOPE(t, "batch.total_processing") {
		for (int i = 0; i < 4; i++) {
			char idx[16];
			snprintf(idx, sizeof(idx), "%d", i);
			const gb_kv meta[] = { { "question_index", idx } };
			gb_scope call = gb_tele_begin(t, "client.api_call_with_retry", meta, 1);
			gb_tele_count(t, "total_tokens", i == 3 ? 0 : 400 + i, NULL, 0);
			gb_tele_end(t, &call);
		}
		gb_tele_count(t, "batch_success", 3, NULL, 0);
		gb_tele_count(t, "batch_failures", 1, NULL, 0);
	}
}

int
main(int argc, char **argv)
{
	const char *gateway = NULL, *job = "gbatch";
	int print = 0, rc = 0;
	struct prom p = { .lock = PTHREAD_MUTEX_INITIALIZER };

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--pushgateway") == 0 && i + 1 < argc)
			gateway = argv[++i];
		else if (strcmp(argv[i], "--job") == 0 && i + 1 < argc)
			job = argv[++i];
		else if (strcmp(argv[i], "--print") == 0)
			print = 1;
		else {
			fprintf(stderr, "usage: %s [--pushgateway URL] [--job NAME] [--print]\n", argv[0]);
			return 2;
		}
	}
	gb_reporter rep = { .self = &p, .record_timing = prom_timing, .record_metric = prom_metric };
	gb_tele *t = gb_tele_new(&rep, 1, GB_TELE_ENABLE);
	if (t == NULL)
		return 1;
	run_job(t);
	gb_tele_free(t);

	/* The job has ended: push once. */
	char *body = prom_exposition(&p);
	if (body == NULL)
		return 1;
	if (print || gateway == NULL)
		fputs(body, stdout);
	if (gateway != NULL) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = push(gateway, job, body) == 0 ? 0 : 1;
		curl_global_cleanup();
	}
	free(body);
	return rc;
}
