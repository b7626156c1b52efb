/*
 * dogstatsd_recv.c - a test DogStatsD receiver: binds a UDP port or a unixgram path, checks
 * every datagram with the strict checker, and appends what it got to a file the tests read:
 * each valid line as is, each invalid one as "!INVALID <why>: <line>", and a summary line
 * "#dgram <bytes> <lines>" per datagram. Runs until SIGTERM.
 *
 *   dogstatsd-recv (--udp PORT | --unix PATH) --out FILE [--max BYTES]
 * With --udp 0 it prints the port it bound ("port N") on stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "udp", required_argument, NULL, 'u' }, { "unix", required_argument, NULL, 'x' },
		{ "out", required_argument, NULL, 'o' }, { "max", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *udp = NULL, *unix_path = NULL, *out = NULL;
	size_t max = 8192;
	static char buf[65536];
	struct sigaction sa;
	FILE *f;
	int fd, o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'u': udp = optarg; break;
		case 'x': unix_path = optarg; break;
		case 'o': out = optarg; break;
		case 'm': max = (size_t)strtoul(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if ((udp == NULL) == (unix_path == NULL) || out == NULL || (f = fopen(out, "a")) == NULL) {
		fprintf(stderr, "usage: dogstatsd-recv (--udp PORT | --unix PATH) --out FILE\n");
		return 2;
	}
	if (udp != NULL) {
		struct sockaddr_in sa4 = { .sin_family = AF_INET,
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons((uint16_t)atoi(udp)) };
		socklen_t sl = sizeof(sa4);

		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (bind(fd, (struct sockaddr *)&sa4, sizeof(sa4)) < 0) {
			perror("dogstatsd-recv: bind");
			return 1;
		}
		getsockname(fd, (struct sockaddr *)&sa4, &sl);
		printf("port %u\n", ntohs(sa4.sin_port));
	} else {
		struct sockaddr_un su = { .sun_family = AF_UNIX };

		snprintf(su.sun_path, sizeof(su.sun_path), "%s", unix_path);
		unlink(unix_path);
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (bind(fd, (struct sockaddr *)&su, sizeof(su)) < 0) {
			perror("dogstatsd-recv: bind");
			return 1;
		}
		printf("ready\n");
	}
	int rcv = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	fflush(stdout);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stop) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		const char *why = "";
		size_t start = 0, lines = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("dogstatsd-recv: recv");
			return 1;
		}
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
		fflush(f);
	}
	fclose(f);
	if (unix_path != NULL)
		unlink(unix_path);
	return 0;
}
