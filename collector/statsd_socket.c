/*
 * statsd_socket.c - the sink's way to the agent: a non-blocking datagram socket, full datagrams
 * sent in batches through sendmmsg, a failed one counted and forgotten, a target that went away
 * reconnected, and a slow unixgram agent waited for within a bound.
 */
#include "statsd_internal.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"

#define RECONNECT_NS (500ull * GB_NS_PER_MS)

void
gb__statsd_sock_close(gb_statsd_sock *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

/* Opens and connects the socket; on failure leaves fd -1 and retries after RECONNECT_NS. */
static void
connect_socket(gb_statsd_sock *k)
{
	int fd;

	k->next_connect_ns = gb__clock_mono_ns() + RECONNECT_NS;
	fd = socket(k->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)&k->addr, k->addrlen) < 0) {
		close(fd);
		return;
	}
	if (k->target.kind == GB_STATSD_UNIXGRAM) {
		int sz = GB_STATSD_UNIX_MAX * 32;

		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	k->fd = fd;
}

static int
resolve(gb_statsd_sock *k, char *err, size_t errlen)
{
	if (k->target.kind == GB_STATSD_UNIXGRAM) {
		struct sockaddr_un *un = (struct sockaddr_un *)&k->addr;

		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, k->target.path, strlen(k->target.path) + 1);
		k->addrlen = sizeof(*un);
		return 0;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	int rc = getaddrinfo(k->target.host, k->target.port, &hints, &ai);

	if (rc != 0) {
		snprintf(err, errlen, "StatsD host \"%s\": %s", k->target.host, gai_strerror(rc));
		return -1;
	}
	memcpy(&k->addr, ai->ai_addr, ai->ai_addrlen);
	k->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int
gb__statsd_sock_open(gb_statsd_sock *k, const gb_statsd_target *t, uint64_t send_timeout_ns,
    char *err, size_t errlen)
{
	k->target = *t;
	k->send_timeout_ns = send_timeout_ns;
	if (resolve(k, err, errlen) < 0)
		return -1;
	connect_socket(k);
	return 0;
}

/* A unixgram peer that went away (agent restarted) needs a new connect; for UDP an error is
 * transient (ICMP port unreachable, full buffers) and the socket stays. */
static void
send_failed(gb_statsd_sock *k, int err, gb_statsd_stats *st)
{
	st->send_errors++;
	if (k->target.kind == GB_STATSD_UNIXGRAM && err != EAGAIN && err != EWOULDBLOCK &&
	    err != ENOBUFS) {
		gb__statsd_sock_close(k);
		k->next_connect_ns = 0;
	}
}

/* A unixgram target whose queue is full (the agent reads more slowly than we send) makes the
 * send fail with EAGAIN. Records stay in the ring until they are sent, so waiting here is
 * backpressure into the ring rather than loss: waits for room until *deadline (set on the
 * first wait for this datagram), unless the target is congested. Returns true when the send
 * is worth trying again; false marks the target congested. */
static bool
wait_for_room(gb_statsd_sock *k, uint64_t *deadline)
{
	uint64_t now = gb__clock_mono_ns();

	if (k->congested || k->send_timeout_ns == 0)
		return false;
	if (*deadline == 0)
		*deadline = now + k->send_timeout_ns;
	while (now < *deadline) {
		struct pollfd p = { .fd = k->fd, .events = POLLOUT };
		int rc = poll(&p, 1, (int)((*deadline - now + GB_NS_PER_MS - 1) / GB_NS_PER_MS));

		if (rc > 0)
			return true; /* room, or an error the next send reports */
		if (rc < 0 && errno != EINTR)
			break;
		now = gb__clock_mono_ns();
	}
	k->congested = true;
	return false;
}

/* Sends the queued datagrams with as few sendmmsg calls as the errors allow. */
void
gb__statsd_sock_send(gb_statsd_sock *k, char (*pkt)[GB_STATSD_UNIX_MAX], const size_t *len,
    size_t nq, gb_statsd_stats *st)
{
	struct mmsghdr m[GB_STATSD_QUEUE];
	struct iovec iov[GB_STATSD_QUEUE];
	bool retried = false;
	uint64_t deadline = 0; /* of the wait for room for datagram i */
	size_t i = 0;

	for (size_t j = 0; j < nq; j++) {
		iov[j] = (struct iovec){ .iov_base = pkt[j], .iov_len = len[j] };
		m[j] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[j], .msg_iovlen = 1 } };
	}
	while (i < nq) {
		int n;

		if (k->fd < 0 && gb__clock_mono_ns() >= k->next_connect_ns)
			connect_socket(k);
		if (k->fd < 0) {
			st->send_errors += nq - i;
			return;
		}
		n = sendmmsg(k->fd, m + i, (unsigned)(nq - i), MSG_NOSIGNAL);
		if (n <= 0) { /* the datagram at i failed: count it, go on with the next */
			int e = errno;

			if (k->target.kind == GB_STATSD_UNIXGRAM && (e == EAGAIN || e == EWOULDBLOCK) &&
			    wait_for_room(k, &deadline))
				continue;
			send_failed(k, e, st);
			/* UDP reports the port unreachable of an earlier datagram on a later send,
			 * which it does not send: the target may be back, so try that one again */
			if (e == ECONNREFUSED && k->target.kind == GB_STATSD_UDP && !retried) {
				retried = true;
				continue;
			}
			retried = false;
			deadline = 0;
			i++;
			continue;
		}
		retried = false;
		k->congested = false;
		deadline = 0;
		for (size_t j = i; j < i + (size_t)n; j++) {
			st->packets_sent++;
			st->bytes_sent += len[j];
		}
		i += (size_t)n;
	}
}
