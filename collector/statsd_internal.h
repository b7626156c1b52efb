/*
 * statsd_internal.h - what the statsd_*.c files share and the rest of the collector does not
 * need: the integer writer of the value grammar and the socket the sink sends through.
 */
#ifndef GBATCH_COLLECTOR_STATSD_INTERNAL_H
#define GBATCH_COLLECTOR_STATSD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "statsd_sink.h"

#define GB_STATSD_QUEUE 16 /* full datagrams sent together by one sendmmsg */

/* Writes v in decimal into out (room for 20 bytes). Returns the length; not NUL-terminated. */
size_t gb__statsd_u64(char *out, uint64_t v);

/* A non-blocking datagram socket connected to a target; fd is -1 while it is down, and it is
 * reconnected on a later send. */
typedef struct gb_statsd_sock {
	gb_statsd_target target;
	int fd;
	uint64_t next_connect_ns;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t send_timeout_ns; /* see gb_statsd_config.send_timeout_ns */
	bool congested; /* a wait for room ran out; no more waits until a send succeeds */
} gb_statsd_sock;

/* Resolves t (a failure is returned with err saying why) and connects; a target that is not
 * there yet is retried later, not an error. Returns 0 or -1. */
int gb__statsd_sock_open(gb_statsd_sock *k, const gb_statsd_target *t, uint64_t send_timeout_ns,
    char *err, size_t errlen);

/* Closes the socket if it is open. */
void gb__statsd_sock_close(gb_statsd_sock *k);

/* Sends the n datagrams pkt[i] of len[i] bytes (n <= GB_STATSD_QUEUE), counting what is sent
 * and what fails in st. */
void gb__statsd_sock_send(gb_statsd_sock *k, char (*pkt)[GB_STATSD_UNIX_MAX], const size_t *len,
    size_t n, gb_statsd_stats *st);

#endif
