/*
 * prom_http.h - the HTTP side of --prometheus: GET /metrics and /healthz on one
 * libmicrohttpd thread, and the hand-over of snapshots from the drain thread. The drain fills
 * a spare snapshot and publishes it with one pointer swap under a mutex; a scrape holds the
 * published one only while it renders it. Neither side ever waits for the other's work.
 */
#ifndef GBATCH_COLLECTOR_PROM_HTTP_H
#define GBATCH_COLLECTOR_PROM_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "prom_sink.h"

#define GB_PROM_HTTP_CONNECTIONS 16 /* open connections at most */

/* A --prometheus address: HOST:PORT, [IPV6]:PORT or :PORT (every IPv4 interface), port 0 to
 * 65535 (0: any free port). */
typedef struct gb_prom_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[300]; /* as given, for messages */
} gb_prom_addr;

/* Parses text into a. Returns 0, or -1 with err naming the value. */
int gb__prom_parse_addr(const char *text, gb_prom_addr *a, char *err, size_t errlen);

typedef struct gb_prom_http gb_prom_http;

/* Listens on a and starts the server thread (with every signal blocked: signals stay the
 * drain thread's). NULL with err naming the address when it cannot listen. The port it got
 * is logged. */
gb_prom_http *gb__prom_http_new(const gb_prom_addr *a, char *err, size_t errlen);

/* A snapshot the drain may fill now (never the published one, nor one a scrape renders), or
 * NULL when none is free or memory ran out. Drain thread only. */
gb_prom_snap *gb__prom_http_spare(gb_prom_http *h);

/* Makes snap, filled from gb__prom_http_spare, the one scrapes see. Drain thread only. */
void gb__prom_http_publish(gb_prom_http *h, gb_prom_snap *snap);

/* Stops the server (open connections are closed) and frees the snapshots. NULL is fine. */
void gb__prom_http_free(gb_prom_http *h);

#endif
