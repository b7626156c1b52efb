/*
 * dogstatsd_recv.c - a test DogStatsD receiver: binds a UDP port or a unixgram path, checks
 * every datagram with the strict checker, and appends what it got to a file the tests read:
 * each valid line as is, each invalid one as "!INVALID <why>: <line>", and a summary line
 * "#dgram <bytes> <lines>" per datagram. Runs until SIGTERM. Datagrams the kernel dropped
 * because this receiver fell behind (SO_RXQ_OVFL) are reported as "#overflow <total>", so a
 * test can tell its own receiver's losses from the collector's. With --unixstream it is the
 * agent's stream socket instead: it accepts connections one after another and reads each
 * message after its 4-byte little-endian length, checked like a datagram (a length over the
 * limit is reported "!INVALID frame ..." and the connection dropped, as the agent does).
 *
 *   dogstatsd-recv (--udp PORT [--bind ADDR] | --unix PATH | --unixstream PATH) --out FILE
 *                  [--max BYTES]
 * With --udp 0 it prints the port it bound ("port N") on stdout; --bind takes an IPv4 or IPv6
 * address (default 127.0.0.1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "dogstatsd_check.h"

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Writes what one datagram (or frame) of n bytes holds. */
static void
report(FILE *f, const char *buf, ssize_t n, size_t max)
{
	const char *why = "";
	size_t start = 0, lines = 0;

	if ((size_t)n > max)
		fprintf(f, "!INVALID datagram of %zd bytes over %zu\n", n, max);
	if (n == 0 || buf[n - 1] != '\n')
		fprintf(f, "!INVALID datagram not ending in a newline\n");
	for (ssize_t i = 0; i <= n; i++) {
		if (i < n && buf[i] != '\n')
			continue;
		if ((size_t)i > start || i < n) {
			if (dsd_check_line(buf + start, (size_t)i - start, &why) < 0)
				fprintf(f, "!INVALID %s: %.*s\n", why, (int)((size_t)i - start), buf + start);
			else
				fprintf(f, "%.*s\n", (int)((size_t)i - start), buf + start);
			lines++;
		}
		start = (size_t)i + 1;
	}
	fprintf(f, "#dgram %zd %zu\n", n, lines);
}

/* Reads exactly len bytes; 1 done, 0 the peer closed (or a stop signal), -1 error. */
static int
read_full(int fd, void *p, size_t len)
{
	size_t off = 0;

	while (off < len && !stop) {
		ssize_t n = read(fd, (char *)p + off, len - off);

		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return off == len;
}

/* The stream socket: one connection at a time, frames until it closes. */
static int
serve_stream(int lfd, FILE *f, char *buf, size_t cap, size_t max)
{
	while (!stop) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("dogstatsd-recv: accept");
			return 1;
		}
		fprintf(f, "#connection\n");
		for (;;) {
			uint8_t h[4];
			uint32_t len;

			if (read_full(fd, h, 4) != 1)
				break;
			len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
			    (uint32_t)h[3] << 24;
			if (len > max || len > cap) {
				fprintf(f, "!INVALID frame of %u bytes over %zu\n", len, max);
				break;
			}
			if (read_full(fd, buf, len) != 1) {
				fprintf(f, "!INVALID frame cut at the end of the connection\n");
				break;
			}
			report(f, buf, (ssize_t)len, max);
			fflush(f);
		}
		close(fd);
	}
	return 0;
}

/* A UDP socket bound to addr (IPv4 or IPv6) and port; prints the port. */
static int
bind_udp(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	if (getaddrinfo(addr, port, &hints, &ai) != 0) {
		fprintf(stderr, "dogstatsd-recv: bad address %s port %s\n", addr, port);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("dogstatsd-recv: bind");
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	printf("port %u\n", ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port));
	return fd;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "udp", required_argument, NULL, 'u' }, { "unix", required_argument, NULL, 'x' },
		{ "out", required_argument, NULL, 'o' }, { "max", required_argument, NULL, 'm' },
		{ "unixstream", required_argument, NULL, 's' }, { "bind", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	const char *udp = NULL, *unix_path = NULL, *out = NULL, *bind_addr = "127.0.0.1";
	int stream = 0;
	size_t max = 8192;
	static char buf[65536];
	struct sigaction sa;
	FILE *f;
	int fd, o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'u': udp = optarg; break;
		case 'x': unix_path = optarg; break;
		case 's': unix_path = optarg; stream = 1; break;
		case 'b': bind_addr = optarg; break;
		case 'o': out = optarg; break;
		case 'm': max = (size_t)strtoul(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if ((udp == NULL) == (unix_path == NULL) || out == NULL || (f = fopen(out, "a")) == NULL) {
		fprintf(stderr, "usage: dogstatsd-recv (--udp PORT [--bind ADDR] | --unix PATH | "
		    "--unixstream PATH) --out FILE\n");
		return 2;
	}
	if (udp != NULL) {
		if ((fd = bind_udp(bind_addr, udp)) < 0)
			return 1;
	} else {
		struct sockaddr_un su = { .sun_family = AF_UNIX };

		snprintf(su.sun_path, sizeof(su.sun_path), "%s", unix_path);
		unlink(unix_path);
		fd = socket(AF_UNIX, stream ? SOCK_STREAM : SOCK_DGRAM, 0);
		if (bind(fd, (struct sockaddr *)&su, sizeof(su)) < 0 || (stream && listen(fd, 8) < 0)) {
			perror("dogstatsd-recv: bind");
			return 1;
		}
		printf("ready\n");
	}
	int rcv = 8 << 20, on = 1;
	/* FORCE passes rmem_max when privileged; otherwise the plain request is capped by it */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on));
	fflush(stdout);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (stream) {
		int rc = serve_stream(fd, f, buf, sizeof(buf), max);

		fclose(f);
		unlink(unix_path);
		return rc;
	}
	uint32_t overflow = 0;
	while (!stop) {
		union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(uint32_t))]; } ctl;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl,
			.msg_controllen = sizeof(ctl) };
		/* the file is flushed only when no datagram is waiting, so a burst is taken fast */
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			fflush(f);
			n = recvmsg(fd, &mh, 0);
		}
		struct cmsghdr *cm;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("dogstatsd-recv: recv");
			return 1;
		}
		for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
			uint32_t total;

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SO_RXQ_OVFL)
				continue;
			memcpy(&total, CMSG_DATA(cm), sizeof(total));
			if (total != overflow)
				fprintf(f, "#overflow %u\n", total);
			overflow = total;
		}
		report(f, buf, n, max);
	}
	fclose(f);
	if (unix_path != NULL)
		unlink(unix_path);
	return 0;
}
