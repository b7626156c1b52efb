/*
 * statsd_socket.c - the sink's way to the agent: a non-blocking socket, full datagrams sent in
 * batches through sendmmsg (or, to the agent's stream socket, one length-framed message
 * each), a failed one counted and forgotten, a target that went away reconnected, a UDP host
 * name resolved again now and then, and a slow Unix-socket agent waited for within a bound.
 * Over UDP, where the kernel has generic segmentation offload (UDP_SEGMENT, Linux 4.18), a run
 * of datagrams of one length goes down as one message that the kernel cuts into the same
 * datagrams again (the receiver sees each on its own): one trip through the stack instead of
 * one per datagram. A send the kernel or the route refuses that way is sent again datagram by
 * datagram, and the socket stops using it.
 */
#include "statsd_internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"

#define RECONNECT_NS (500ull * GB_NS_PER_MS)
#define GSO_MAX_SEGMENTS 64   /* the kernel's UDP_MAX_SEGMENTS before Linux 6.x raised it */
#define GSO_MAX_BYTES 65000   /* a message's payload: within IPv4's and IPv6's 64 KiB */

void
gb__statsd_sock_close(gb_statsd_sock *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

static bool
is_unix(const gb_statsd_sock *k)
{
	return k->target.kind != GB_STATSD_UDP;
}

static int
open_connected(const gb_statsd_sock *k, int type)
{
	int fd = socket(k->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&k->addr, k->addrlen) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Opens and connects the socket; on failure leaves fd -1 and retries after RECONNECT_NS. A
 * unix:// target whose socket turns out to be a stream socket (EPROTOTYPE) becomes one. */
static void
connect_socket(gb_statsd_sock *k)
{
	int fd;

	k->next_connect_ns = gb__clock_mono_ns() + RECONNECT_NS;
	fd = open_connected(k, k->stream ? SOCK_STREAM : SOCK_DGRAM);
	if (fd < 0 && errno == EPROTOTYPE && k->target.guess_stream && !k->stream) {
		k->stream = true;
		fd = open_connected(k, SOCK_STREAM);
	}
	if (fd < 0)
		return;
	if (is_unix(k)) {
		int sz = GB_STATSD_UNIX_MAX * 32;

		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		k->gso = false;
	} else {
		int none = 0; /* no segmenting by default: each message asks for it */

		k->gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &none, sizeof(none)) == 0;
	}
	k->fd = fd;
}

/* Looks up the UDP host into addr; an error names the host. */
static int
lookup(const gb_statsd_sock *k, struct sockaddr_storage *addr, socklen_t *addrlen, char *err,
    size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	int rc = getaddrinfo(k->target.host, k->target.port, &hints, &ai);

	if (rc != 0) {
		snprintf(err, errlen, "StatsD host \"%s\": %s", k->target.host, gai_strerror(rc));
		return -1;
	}
	if (ai->ai_addrlen > sizeof(*addr)) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "StatsD host \"%s\": address too long", k->target.host);
		return -1;
	}
	memset(addr, 0, sizeof(*addr));
	memcpy(addr, ai->ai_addr, ai->ai_addrlen);
	*addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int
resolve(gb_statsd_sock *k, char *err, size_t errlen)
{
	if (is_unix(k)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&k->addr;

		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, k->target.path, strlen(k->target.path) + 1);
		k->addrlen = sizeof(*un);
		return 0;
	}
	k->next_resolve_ns = gb__clock_mono_ns() + k->resolve_interval_ns;
	return lookup(k, &k->addr, &k->addrlen, err, errlen);
}

/* A UDP host name may point elsewhere now (a restarted agent pod, a moved service): looks it
 * up again and, when the address changed, reconnects to the new one. A failed lookup keeps
 * the address we have and is tried again after a wait that doubles from RECONNECT_NS up to
 * the resolve interval: the lookup runs on the drain thread, so a resolver that does not
 * answer holds the drain for its timeout at each try, and the tries must thin out. */
static void
resolve_again(gb_statsd_sock *k)
{
	struct sockaddr_storage addr;
	socklen_t len;
	char err[64];
	uint64_t now = gb__clock_mono_ns();

	if (lookup(k, &addr, &len, err, sizeof(err)) < 0) {
		k->resolve_backoff_ns = k->resolve_backoff_ns == 0 ? RECONNECT_NS :
		    k->resolve_backoff_ns * 2 < k->resolve_interval_ns ? k->resolve_backoff_ns * 2 :
		    k->resolve_interval_ns;
		k->next_resolve_ns = gb__clock_mono_ns() + k->resolve_backoff_ns;
		return;
	}
	k->resolve_backoff_ns = 0;
	k->next_resolve_ns = now + k->resolve_interval_ns;
	if (len == k->addrlen && memcmp(&addr, &k->addr, len) == 0)
		return;
	k->addr = addr;
	k->addrlen = len;
	gb__statsd_sock_close(k);
	connect_socket(k);
}

int
gb__statsd_sock_open(gb_statsd_sock *k, const gb_statsd_target *t, uint64_t send_timeout_ns,
    uint64_t resolve_interval_ns, char *err, size_t errlen)
{
	k->target = *t;
	k->stream = t->kind == GB_STATSD_UNIXSTREAM;
	k->send_timeout_ns = send_timeout_ns;
	k->resolve_interval_ns = resolve_interval_ns ? resolve_interval_ns :
	    GB_STATSD_DEFAULT_RESOLVE_NS;
	if (resolve(k, err, errlen) < 0)
		return -1;
	connect_socket(k);
	return 0;
}

/* A Unix-socket peer that went away (agent restarted) needs a new connect; for UDP an error
 * is transient (ICMP port unreachable, full buffers) and the socket stays, but the host is
 * looked up again before the next send. */
static void
send_failed(gb_statsd_sock *k, int err, gb_statsd_stats *st)
{
	st->send_errors++;
	if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)
		return;
	if (is_unix(k)) {
		gb__statsd_sock_close(k);
		k->next_connect_ns = 0;
	} else if (k->resolve_backoff_ns == 0) { /* not while lookups fail: they back off */
		uint64_t soon = gb__clock_mono_ns() + RECONNECT_NS; /* not on every failed datagram */

		if (k->next_resolve_ns > soon)
			k->next_resolve_ns = soon;
	}
}

/* A Unix-socket target whose queue is full (the agent reads more slowly than we send) makes
 * the send fail with EAGAIN. Records stay in the ring until they are sent, so waiting here is
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

/* Writes one frame (length, then the message) on the stream socket. Returns 0, or -1 with
 * errno: nothing of the frame was written (the connection is still usable after EAGAIN), or
 * the frame was cut (errno ETIMEDOUT, the connection closed so the agent drops the part). */
static int
write_frame(gb_statsd_sock *k, const char *msg, size_t len)
{
	uint8_t hdr[4] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
		(uint8_t)(len >> 24) };
	size_t off = 0, total = len + 4;
	uint64_t deadline = 0;

	while (off < total) {
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 0 };
		ssize_t n;

		if (off < 4)
			iov[mh.msg_iovlen++] = (struct iovec){ hdr + off, 4 - off };
		iov[mh.msg_iovlen++] = (struct iovec){ (char *)(uintptr_t)msg + (off > 4 ? off - 4 : 0),
			off > 4 ? len - (off - 4) : len };
		n = sendmsg(k->fd, &mh, MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (off == 0 && !wait_for_room(k, &deadline))
			return -1;
		if (off > 0) {
			/* a frame begun must be finished or the stream is lost: wait for it even on a
			 * congested target, within the send timeout (at least RECONNECT_NS) */
			struct pollfd p = { .fd = k->fd, .events = POLLOUT };
			uint64_t wait = k->send_timeout_ns > RECONNECT_NS ? k->send_timeout_ns : RECONNECT_NS;

			if (poll(&p, 1, (int)(wait / GB_NS_PER_MS)) <= 0) {
				gb__statsd_sock_close(k);
				errno = ETIMEDOUT;
				return -1;
			}
		}
	}
	k->congested = false;
	return 0;
}

/* The stream target: one frame per message. A connection the agent closed (EPIPE,
 * ECONNRESET, ENOTCONN) is opened again and the message tried once more on it; what still
 * cannot be written is counted as a send error. */
static void
send_stream(gb_statsd_sock *k, const char *pkt, size_t stride, const size_t *len, size_t nq,
    gb_statsd_stats *st)
{
	for (size_t i = 0; i < nq; i++) {
		bool again = false;

		for (;;) {
			if (k->fd < 0 && (again || gb__clock_mono_ns() >= k->next_connect_ns))
				connect_socket(k);
			if (k->fd < 0) {
				st->send_errors += nq - i;
				return;
			}
			if (write_frame(k, pkt + i * stride, len[i]) == 0) {
				st->packets_sent++;
				st->bytes_sent += len[i];
				break;
			}
			int e = errno;
			if (!again && (e == EPIPE || e == ECONNRESET || e == ENOTCONN)) {
				gb__statsd_sock_close(k);
				again = true;
				continue;
			}
			send_failed(k, e, st);
			break;
		}
	}
}

/* The messages of one sendmmsg: at most one per datagram, each with room for a UDP_SEGMENT. */
struct msgs {
	struct mmsghdr m[GB_STATSD_QUEUE_UDP];
	struct iovec iov[GB_STATSD_QUEUE_UDP];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[GB_STATSD_QUEUE_UDP];
	size_t first[GB_STATSD_QUEUE_UDP + 1];
};

/* Whether datagram a goes before datagram b: the longer first (when longest), else the one
 * queued first. */
static bool
goes_before(size_t a, size_t b, const size_t *len, bool longest)
{
	if (longest && len[a] != len[b])
		return len[a] > len[b];
	return a < b;
}

/* Sorts the datagrams at order[0, n) (at most GB_STATSD_QUEUE_UDP: an insertion sort) longest
 * first, those of one length in queue order; or, !longest, back into queue order. */
static void
sort_order(size_t *order, size_t n, const size_t *len, bool longest)
{
	for (size_t a = 1; a < n; a++) {
		size_t d = order[a], b = a;

		for (; b > 0 && goes_before(d, order[b - 1], len, longest); b--)
			order[b] = order[b - 1];
		order[b] = d;
	}
}

/* The messages for the datagrams at order[i, nq): with GSO, a run of one length and one
 * shorter datagram after it make one message (a UDP_SEGMENT of that length in its control
 * data); every other datagram is a message of its own. first[j] is the position in order of
 * message j's first datagram, first[n] nq. Returns n. */
static size_t
build_messages(const gb_statsd_sock *k, const char *pkt, size_t stride, const size_t *len,
    const size_t *order, size_t i, size_t nq, struct msgs *mm)
{
	size_t n = 0;

	while (i < nq) {
		size_t seg = len[order[i]], j = i + 1, bytes = seg;
		struct msghdr *h = &mm->m[n].msg_hdr;

		while (k->gso && j < nq && j - i < GSO_MAX_SEGMENTS &&
		    bytes + len[order[j]] <= GSO_MAX_BYTES && len[order[j]] <= seg) {
			bytes += len[order[j]];
			if (len[order[j++]] < seg)
				break; /* only the last segment may be shorter */
		}
		mm->first[n] = i;
		*h = (struct msghdr){ .msg_iov = &mm->iov[i], .msg_iovlen = j - i };
		for (size_t d = i; d < j; d++)
			mm->iov[d] = (struct iovec){
				.iov_base = (char *)(uintptr_t)(pkt + order[d] * stride),
				.iov_len = len[order[d]] };
		if (j - i > 1) {
			struct cmsghdr *c;
			uint16_t gso = (uint16_t)seg;

			/* the kernel reads the whole buffer, the alignment padding too */
			memset(mm->ctl[n].buf, 0, sizeof(mm->ctl[n].buf));
			h->msg_control = mm->ctl[n].buf;
			h->msg_controllen = sizeof(mm->ctl[n].buf);
			c = CMSG_FIRSTHDR(h);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(gso));
			memcpy(CMSG_DATA(c), &gso, sizeof(gso));
		}
		n++;
		i = j;
	}
	mm->first[n] = nq;
	return n;
}

/* Sends the queued datagrams with as few sendmmsg calls as the errors allow. With GSO they go
 * longest first, so that datagrams of one length make one run even when other lengths came
 * between them (UDP keeps no order between datagrams, and the agent makes nothing of it). A
 * GSO message the kernel refuses (EIO: no checksum offload on the route's device; EINVAL: a
 * segment past the route's MTU, or checksums turned off) was not sent at all: GSO is turned
 * off for this socket and the datagrams not sent yet go one message each, in queue order, so
 * none is lost or sent twice. */
void
gb__statsd_sock_send(gb_statsd_sock *k, const char *pkt, size_t stride, const size_t *len,
    size_t nq, gb_statsd_stats *st)
{
	struct msgs mm;
	size_t order[GB_STATSD_QUEUE_UDP]; /* the datagrams in the order they are sent */
	bool retried = false;
	uint64_t deadline = 0; /* of the wait for room for datagram i */
	size_t i = 0;

	if (!is_unix(k) && gb__clock_mono_ns() >= k->next_resolve_ns)
		resolve_again(k);
	if (k->stream) {
		send_stream(k, pkt, stride, len, nq, st);
		return;
	}
	for (size_t j = 0; j < nq; j++)
		order[j] = j;
	if (k->gso)
		sort_order(order, nq, len, true);
	while (i < nq) {
		size_t nm, d;
		int n;

		if (k->fd < 0 && gb__clock_mono_ns() >= k->next_connect_ns)
			connect_socket(k);
		if (k->fd < 0) {
			st->send_errors += nq - i;
			return;
		}
		if (k->stream) { /* unix:// found a stream socket on reconnecting */
			send_stream(k, pkt + i * stride, stride, len + i, nq - i, st);
			return;
		}
		nm = build_messages(k, pkt, stride, len, order, i, nq, &mm);
		n = sendmmsg(k->fd, mm.m, (unsigned)nm, MSG_NOSIGNAL);
		if (n <= 0) { /* the message at i failed: count it, go on with the next */
			int e = errno;

			d = mm.first[1] - i; /* its datagrams */
			if (d > 1 && (e == EIO || e == EINVAL)) {
				k->gso = false;
				sort_order(order + i, nq - i, len, false);
				continue;
			}
			if (is_unix(k) && (e == EAGAIN || e == EWOULDBLOCK) &&
			    wait_for_room(k, &deadline))
				continue;
			send_failed(k, e, st);
			/* UDP reports the port unreachable of an earlier datagram on a later send,
			 * which it does not send: the target may be back, so try that one again */
			if (e == ECONNREFUSED && k->target.kind == GB_STATSD_UDP && !retried) {
				retried = true;
				continue;
			}
			st->send_errors += d - 1; /* the message's other datagrams */
			retried = false;
			deadline = 0;
			i += d;
			continue;
		}
		retried = false;
		k->congested = false;
		deadline = 0;
		for (size_t j = i; j < mm.first[n]; j++) {
			st->packets_sent++;
			st->bytes_sent += len[order[j]];
		}
		i = mm.first[n];
	}
}
