/*
 * prom_http.c - /metrics and /healthz with libmicrohttpd's internal polling thread. Three
 * snapshot slots: the published one, one a scrape may still be rendering, and a spare the
 * drain fills; the mutex guards only which slot is which and the render counts, so the drain
 * pays a lock and a swap per publish and a scrape never holds it while it renders or sends.
 */
#include "prom_http.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "parse.h"

#define SLOTS 3
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct gb_prom_http {
	struct MHD_Daemon *mhd;
	int fd;
	pthread_mutex_t mu;
	gb_prom_snap *slot[SLOTS];
	int renders[SLOTS];    /* scrapes rendering the slot now */
	int published;         /* -1: nothing yet */
};

int
gb__prom_parse_addr(const char *text, gb_prom_addr *a, char *err, size_t errlen)
{
	const char *colon = strrchr(text, ':');
	char host[256], why[128];
	uint64_t port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res;
	size_t hl;
	int rc;

	memset(a, 0, sizeof(*a));
	snprintf(a->text, sizeof(a->text), "%s", text);
	if (colon == NULL) {
		snprintf(err, errlen, "\"%s\": give ADDR:PORT (or :PORT for every interface)", text);
		return -1;
	}
	if (gb__parse_uint(colon + 1, 0, 65535, &port, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "\"%s\": the port: %s", text, why);
		return -1;
	}
	hl = (size_t)(colon - text);
	if (hl >= 2 && text[0] == '[' && text[hl - 1] == ']') {
		text++;
		hl -= 2;
	}
	if (hl >= sizeof(host) || memchr(text, '[', hl) || memchr(text, ']', hl) ||
	    (hl > 0 && memchr(text, ':', hl) && colon[-1] != ']')) {
		snprintf(err, errlen, "\"%s\": not HOST:PORT or [IPV6]:PORT", a->text);
		return -1;
	}
	memcpy(host, text, hl);
	host[hl] = '\0';
	hints.ai_family = hl == 0 ? AF_INET : AF_UNSPEC;
	if ((rc = getaddrinfo(hl == 0 ? NULL : host, colon + 1, &hints, &res)) != 0) {
		snprintf(err, errlen, "\"%s\": %s", a->text, gai_strerror(rc));
		return -1;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *body, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
	    MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	if (allow != NULL)
		MHD_add_response_header(r, "Allow", allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Renders the published snapshot, holding it (not the lock) meanwhile. */
static enum MHD_Result
metrics(struct gb_prom_http *h, struct MHD_Connection *c)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;
	int i;

	pthread_mutex_lock(&h->mu);
	if ((i = h->published) >= 0)
		h->renders[i]++;
	pthread_mutex_unlock(&h->mu);
	if (i >= 0) {
		text = gb__prom_render(h->slot[i], &len);
		pthread_mutex_lock(&h->mu);
		h->renders[i]--;
		pthread_mutex_unlock(&h->mu);
		if (text == NULL)
			return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	}
	r = text != NULL ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE) :
	    MHD_create_response_from_buffer(0, (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", CONTENT_TYPE);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", "GET, HEAD");
	if (strcmp(url, "/metrics") == 0)
		return metrics(cls, c);
	if (strcmp(url, "/healthz") == 0)
		return reply(c, MHD_HTTP_OK, "ok\n", NULL);
	return reply(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /healthz\n", NULL);
}

/* Binds and listens on a; the port got is logged. Returns the socket, or -1 with err. */
static int
listen_on(const gb_prom_addr *a, char *err, size_t errlen)
{
	struct sockaddr_storage got;
	socklen_t gl = sizeof(got);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	int one = 1, fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&got, &gl) < 0) {
		snprintf(err, errlen, "--prometheus %s: cannot listen: %s", a->text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (getnameinfo((struct sockaddr *)&got, gl, host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		gb__log_info("serving /metrics on %s%s%s:%s", strchr(host, ':') ? "[" : "", host,
		    strchr(host, ':') ? "]" : "", port);
	return fd;
}

gb_prom_http *
gb__prom_http_new(const gb_prom_addr *a, char *err, size_t errlen)
{
	struct gb_prom_http *h = calloc(1, sizeof(*h));
	sigset_t all, old;

	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	h->published = -1;
	if ((h->fd = listen_on(a, err, errlen)) < 0) {
		gb__prom_http_free(h);
		return NULL;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
	    handle, h, MHD_OPTION_LISTEN_SOCKET, h->fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)GB_PROM_HTTP_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (h->mhd != NULL)
		h->fd = -1; /* the daemon's now: MHD_stop_daemon closes it */
	if (h->mhd == NULL) {
		snprintf(err, errlen, "--prometheus %s: cannot start the HTTP server", a->text);
		gb__prom_http_free(h);
		return NULL;
	}
	return h;
}

gb_prom_snap *
gb__prom_http_spare(gb_prom_http *h)
{
	int pick = -1;

	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < SLOTS && pick < 0; i++)
		if (i != h->published && h->renders[i] == 0)
			pick = i;
	pthread_mutex_unlock(&h->mu);
	if (pick < 0)
		return NULL;
	if (h->slot[pick] == NULL)
		h->slot[pick] = gb__prom_snap_new(); /* only the drain thread writes slot[] */
	return h->slot[pick];
}

void
gb__prom_http_publish(gb_prom_http *h, gb_prom_snap *snap)
{
	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < SLOTS; i++)
		if (h->slot[i] == snap)
			h->published = i;
	pthread_mutex_unlock(&h->mu);
}

void
gb__prom_http_free(gb_prom_http *h)
{
	if (h == NULL)
		return;
	if (h->mhd != NULL)
		MHD_stop_daemon(h->mhd);
	if (h->fd >= 0)
		close(h->fd);
	for (int i = 0; i < SLOTS; i++)
		gb__prom_snap_free(h->slot[i]);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
